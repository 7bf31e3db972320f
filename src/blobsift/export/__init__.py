"""Export candidates, labels or predictions in the formats of the tools people use.

:func:`export_points` writes the points of one image (a table with ``row``, ``col`` and
any of ``sigma``, ``score``, ``label``, ``probability``, ``decision``) in one format;
:func:`export_project` does it for a project's candidates, labels or latest predictions,
one file per image. The formats, with the coordinate convention of each (blobsift's own
positions are 0-based (row, col) with pixel centres at integers):

============  =========  ===========================================================
format        extension  what it is, and its coordinates
============  =========  ===========================================================
napari        .csv       napari's points CSV (``index, axis-0, axis-1`` + features),
                         as napari's builtin reader opens it; axis-0 = row, axis-1 = col
trackmate     .xml       a TrackMate file (Fiji: *File > Import > Load a TrackMate
                         file*) of spots in frame 0; POSITION_X = col, POSITION_Y = row
                         in pixels (TrackMate's pixel centres are at integers too)
qupath        .geojson   a GeoJSON FeatureCollection of Point detections, each with a
                         QuPath ``classification``; x = col + 0.5, y = row + 0.5
                         (QuPath's origin is the top-left corner of the first pixel)
ds9           .reg       DS9 circles written by astropy's ``regions`` (``fits`` extra),
                         in image coordinates (x = col + 1, y = row + 1), or in sky
                         coordinates for FITS images with a celestial WCS
imagej-roi    .zip       an ImageJ ROI Manager set, one point ROI per object (written
                         by ``roifile``, the ``imagej`` extra); x = col + 0.5, y = row
                         + 0.5 (ImageJ's sub-pixel origin is a pixel corner)
============  =========  ===========================================================

Every object carries a class: ``signal``, ``noise``, ``unsure`` or ``unlabelled`` (from
``decision`` for predictions, else from ``label``), shown by colour where the format has
colours, and a radius of sigma * sqrt(2) pixels (a 2D Gaussian blob's radius). For FITS
images with a celestial WCS every format also carries ``ra`` and ``dec`` (ICRS, degrees).
Files are written atomically: a failed export never leaves a half-written file.

Modules: :mod:`~blobsift.export._points` (a point table checked, with class and radius),
:mod:`~blobsift.export._writers` (one writer per format) and this module (the formats,
:func:`export_points` and :func:`export_project`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._atomic import atomic_write
from blobsift._validation import check_choice
from blobsift.exceptions import InvalidInputError
from blobsift.export._points import CLASS_NAMES, ImageInfo, point_columns
from blobsift.export._writers import WRITERS as _WRITERS

__all__ = ["CLASS_NAMES", "EXTENSIONS", "FORMATS", "WHAT", "export_points", "export_project"]

#: Export format -> file extension.
EXTENSIONS = {
    "napari": ".csv",
    "trackmate": ".xml",
    "qupath": ".geojson",
    "ds9": ".reg",
    "imagej-roi": ".zip",
}
FORMATS = tuple(EXTENSIONS)
#: What a project export holds.
WHAT = ("candidates", "labels", "predictions")


#: Format -> (module it needs, the extra that installs it).
_NEEDS = {"ds9": ("regions", "fits"), "imagej-roi": ("roifile", "imagej")}


def _check_format(format: str) -> None:
    """Check that ``format`` is known and its writer's library is installed."""
    import importlib.util

    check_choice(format, FORMATS, name="format")
    module, extra = _NEEDS.get(format, (None, None))
    if module is not None and importlib.util.find_spec(module) is None:
        raise InvalidInputError(
            f"format {format!r} needs the {module} package, which is not installed; "
            f"install it with `pip install 'blobsift[{extra}]'`."
        )


def _write(points: dict[str, Any], path: Path, format: str, image: ImageInfo) -> Path:
    return atomic_write(
        path, lambda target: _WRITERS[format](points, target, image), what=f"the {format} export"
    )


def export_points(
    table: Any,
    path: str | os.PathLike[str],
    format: str,
    *,
    image_path: str | os.PathLike[str] | None = None,
    image_shape: tuple[int, int] | None = None,
    wcs: Any = None,
) -> Path:
    """Write the points of one image in a tool's format (atomically).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per point: ``row``, ``col`` (0-based pixel positions, as everywhere in
        blobsift) and any of ``sigma``, ``score``, ``label``, ``probability``,
        ``decision``. The class of each point comes from ``decision`` if present, else
        from ``label`` (1 signal, 0 noise, -1 unsure, -2 unlabelled).
    path : path-like
        The file to write.
    format : {"napari", "trackmate", "qupath", "ds9", "imagej-roi"}
        See the module docstring for each format's layout and coordinates.
    image_path : path-like, optional
        The image the points belong to: TrackMate files name it, so Fiji opens it with
        the spots; a FITS image's celestial WCS (when ``wcs`` is not given) adds RA/Dec.
    image_shape : (int, int), optional
        (height, width) of the image, for TrackMate's image settings.
    wcs : astropy.wcs.WCS, optional
        A celestial WCS: adds ``ra`` and ``dec`` (ICRS, degrees) to every format and
        writes DS9 regions in sky coordinates.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InvalidInputError
        For an unknown format (or one whose library is not installed), a table without
        finite ``row`` and ``col``, or a class column with other values; nothing is
        written then.
    """
    from blobsift.io import read_wcs

    _check_format(format)
    image_file = None if image_path is None else Path(image_path)
    if wcs is None and image_file is not None:
        wcs = read_wcs(image_file)
    points = point_columns(table, wcs)
    name = image_file.name if image_file is not None else Path(path).stem
    image = ImageInfo(name=name, path=image_file, shape=image_shape, wcs=wcs)
    return _write(points, Path(path), format, image)


def _project_table(project: Any, what: str, image: Any) -> Any:
    """The rows to export, with ``image_key`` naming each row's image."""
    if what == "candidates":
        table = project.candidates(image, with_labels=True)
    elif what == "labels":
        table = project.labels(image)
    else:
        table = project.predictions()
        if image is not None:
            table = table[table["image_id"] == project.image(image).id]
    keys = [_image_key(i, name) for i, name in zip(table["image_id"], table["image"], strict=True)]
    return table.assign(image_key=keys)


def _image_key(image_id: Any, name: Any) -> int | str:
    """A project image's id, or (for a prediction outside the project) the image's path."""
    if image_id is None or (isinstance(image_id, float) and np.isnan(image_id)):
        return str(name)
    return int(image_id)


def _image_of(project: Any, key: Any) -> ImageInfo:
    """The image of a table row: a project image id, or the path of an outside image."""
    from blobsift.io import read_wcs

    if isinstance(key, int):
        record = project.image(int(key))
        return ImageInfo(record.name, record.path, record.shape, read_wcs(record.path))
    path = Path(str(key))
    shape = project.plane_shape(path) if path.is_file() else None
    return ImageInfo(path.name, path, shape, read_wcs(path))


def _file_names(images: list[ImageInfo], extension: str) -> list[str]:
    """One file name per image: its stem, with a number where stems collide."""
    stems = [Path(image.name).stem or "image" for image in images]
    names = []
    for k, stem in enumerate(stems):
        names.append(f"{stem}-{k + 1}{extension}" if stems.count(stem) > 1 else stem + extension)
    return names


def export_project(
    project: Any,
    output: str | os.PathLike[str],
    *,
    format: str,
    what: str = "predictions",
    image: Any = None,
) -> list[Path]:
    """Export a project's candidates, labels or latest predictions, one file per image.

    Parameters
    ----------
    project : Project
        The project.
    output : path-like
        A folder, which gets one file per image named after it (``cells.tif`` ->
        ``cells.geojson``); or, when the selection holds one image, a file with the
        format's extension.
    format : {"napari", "trackmate", "qupath", "ds9", "imagej-roi"}
        See :func:`export_points`.
    what : {"candidates", "labels", "predictions"}
        Candidates carry their matched label (``unlabelled`` where none); labels include
        unsure ones; predictions are those of the latest recorded prediction run.
    image : optional
        Only this project image (id, path or name).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    InvalidInputError
        For an unknown format or ``what``, or a file ``output`` for several images.
    ProjectError
        For predictions, when the project has none recorded.
    """
    _check_format(format)
    check_choice(what, WHAT, name="what")
    extension = EXTENSIONS[format]
    table = _project_table(project, what, image)
    keys = list(dict.fromkeys(table["image_key"]))
    if image is not None and not keys:
        keys = [project.image(image).id]
    output = Path(output)
    single = output.suffix.lower() == extension
    if single and len(keys) != 1:
        raise InvalidInputError(
            f"output {str(output)!r} is one {extension} file, but the {what} span "
            f"{len(keys)} images; give a folder instead, or choose one image (--image)."
        )
    if output.suffix and not single and not output.is_dir():
        raise InvalidInputError(
            f"output {str(output)!r} must be a folder or a {extension} file for format "
            f"{format!r}; got a {output.suffix} file name."
        )
    images = [_image_of(project, key) for key in keys]
    paths = [output] if single else [output / name for name in _file_names(images, extension)]
    written = []
    for key, info, path in zip(keys, images, paths, strict=True):
        points = point_columns(table[table["image_key"] == key], info.wcs)
        written.append(_write(points, path, format, info))
    return written
