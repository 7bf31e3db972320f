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
"""

from __future__ import annotations

import json
import os
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blobsift import __version__
from blobsift._atomic import atomic_write
from blobsift._validation import check_choice
from blobsift.exceptions import InvalidInputError

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
#: Class value -> name: 1/0 signal/noise (labels or decisions), -1 unsure, -2 no label.
CLASS_NAMES = {1: "signal", 0: "noise", -1: "unsure", -2: "unlabelled"}
_COLOURS = {1: (0, 200, 0), 0: (230, 0, 0), -1: (240, 200, 0), -2: (0, 170, 255)}
_DS9_COLOURS = {1: "green", 0: "red", -1: "yellow", -2: "cyan"}
#: Point columns carried as features, in this order, where the table has them.
FEATURES = ("sigma", "score", "label", "probability", "decision")
#: The sigma of a point without one (the detector's smallest blob width).
DEFAULT_SIGMA = 1.0
_NAMESPACE = uuid.UUID("1b0b51f7-0000-4000-8000-000000000000")


@dataclass(frozen=True)
class _Image:
    """What a writer may need to know about the image of the points."""

    name: str
    path: Path | None = None
    shape: tuple[int, int] | None = None
    wcs: Any = None


# --------------------------------------------------------------------------------------
# the points of one image
# --------------------------------------------------------------------------------------
def _points(table: Any, wcs: Any) -> dict[str, Any]:
    """Check a point table; return its columns as arrays, with ``class``, ``radius`` etc.

    The result maps ``row``, ``col``, the :data:`FEATURES` the table has, ``class_value``
    (int), ``class`` (names), ``radius`` and, with a WCS, ``ra`` and ``dec`` to arrays.
    """
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise InvalidInputError(
            f"table must be a pandas DataFrame with columns row and col; got "
            f"{type(table).__name__}. Use Candidates.to_pandas() for a Candidates table."
        )
    missing = [name for name in ("row", "col") if name not in table.columns]
    if missing:
        raise InvalidInputError(
            f"table lacks column(s) {missing}; it needs row and col (0-based pixel "
            f"positions) and may have {list(FEATURES)} (found {list(table.columns)})."
        )
    points: dict[str, Any] = {}
    for name in ("row", "col", *FEATURES):
        if name in table.columns:
            try:
                points[name] = table[name].to_numpy(dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidInputError(f"table column {name} must hold numbers.") from None
    rows, cols = points["row"], points["col"]
    if not (np.isfinite(rows).all() and np.isfinite(cols).all()):
        raise InvalidInputError("table columns row and col must be finite; got NaN or inf.")
    source = "decision" if "decision" in points else "label" if "label" in points else None
    classes = np.full(len(rows), -2.0) if source is None else points[source]
    bad = ~np.isin(classes, list(CLASS_NAMES))
    if bad.any():
        raise InvalidInputError(
            f"table column {source} must hold {sorted(CLASS_NAMES)} ({CLASS_NAMES}); got "
            f"{classes[bad][:3].tolist()}."
        )
    points["class_value"] = classes.astype(np.int64)
    points["class"] = np.array([CLASS_NAMES[value] for value in points["class_value"].tolist()])
    sigma = points.get("sigma", np.full(len(rows), np.nan))
    points["radius"] = np.where(np.isfinite(sigma), sigma, DEFAULT_SIGMA) * np.sqrt(2.0)
    if wcs is not None:
        sky = wcs.pixel_to_world(cols, rows).icrs
        points["ra"] = np.asarray(sky.ra.deg, dtype=np.float64).reshape(-1)
        points["dec"] = np.asarray(sky.dec.deg, dtype=np.float64).reshape(-1)
    return points


def _feature_names(points: dict[str, Any]) -> list[str]:
    return [name for name in (*FEATURES, "ra", "dec") if name in points]


def _measurements(points: dict[str, Any]) -> list[dict[str, float]]:
    """The finite features of each point (JSON has no NaN)."""
    names = _feature_names(points)
    if not names:
        return [{} for _ in range(len(points["row"]))]
    columns = [points[name].tolist() for name in names]
    return [
        {name: value for name, value in zip(names, values, strict=True) if np.isfinite(value)}
        for values in zip(*columns, strict=True)
    ]


# --------------------------------------------------------------------------------------
# writers: (points, temporary file, image) -> None
# --------------------------------------------------------------------------------------
def _write_napari(points: dict[str, Any], target: str, image: _Image) -> None:
    import pandas as pd

    table = pd.DataFrame(
        {
            "index": np.arange(len(points["row"])),
            "axis-0": points["row"],
            "axis-1": points["col"],
            "class": points["class"],
            **{name: points[name] for name in _feature_names(points)},
        }
    )
    whole = [name for name in ("label", "decision") if name in table]
    table = table.astype(dict.fromkeys(whole, "Int64"))
    table.to_csv(target, index=False, na_rep="nan")


def _java_double(value: float) -> str:
    """A float as Java's ``Double.valueOf`` reads it (TrackMate reads every feature so)."""
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


#: TrackMate spot features: key -> (name, short name, dimension, is int).
_TRACKMATE_FEATURES = {
    "QUALITY": ("Quality", "Quality", "QUALITY", False),
    "POSITION_X": ("X", "X", "POSITION", False),
    "POSITION_Y": ("Y", "Y", "POSITION", False),
    "POSITION_Z": ("Z", "Z", "POSITION", False),
    "POSITION_T": ("T", "T", "TIME", False),
    "FRAME": ("Frame", "Frame", "NONE", True),
    "RADIUS": ("Radius", "R", "LENGTH", False),
    "VISIBILITY": ("Visibility", "Visibility", "NONE", True),
    "CLASS": (
        "blobsift class (1 signal, 0 noise, -1 unsure, -2 unlabelled)",
        "Class",
        "NONE",
        True,
    ),
    "SIGMA": ("blobsift sigma", "Sigma", "LENGTH", False),
    "LABEL": ("blobsift label", "Label", "NONE", True),
    "PROBABILITY": ("blobsift probability of signal", "P(signal)", "NONE", False),
    "DECISION": ("blobsift decision (1 signal)", "Decision", "NONE", True),
    "RA": ("Right ascension (ICRS, deg)", "RA", "NONE", False),
    "DEC": ("Declination (ICRS, deg)", "Dec", "NONE", False),
}


def _trackmate_texts(key: str, values: Any) -> list[str]:
    """A spot feature's values as attribute texts (ints where TrackMate declares ints)."""
    is_int = _TRACKMATE_FEATURES[key][3]
    return [
        str(int(value)) if is_int and np.isfinite(value) else _java_double(value)
        for value in np.asarray(values, dtype=np.float64).tolist()
    ]


def _write_trackmate(points: dict[str, Any], target: str, image: _Image) -> None:
    height, width = image.shape or (0, 0)
    root = ET.Element("TrackMate", version="7.0.0")
    ET.SubElement(root, "Log").text = f"Exported by blobsift {__version__}."
    model = ET.SubElement(root, "Model", spatialunits="pixel", timeunits="frame")
    n = len(points["row"])
    features = {
        "QUALITY": points.get("score", np.full(n, np.nan)),
        "POSITION_X": points["col"],
        "POSITION_Y": points["row"],
        "POSITION_Z": np.zeros(n),
        "POSITION_T": np.zeros(n),
        "FRAME": np.zeros(n, dtype=np.int64),
        "RADIUS": points["radius"],
        "VISIBILITY": np.ones(n, dtype=np.int64),
        "CLASS": points["class_value"],
        **{name.upper(): points[name] for name in _feature_names(points) if name != "score"},
    }
    declarations = ET.SubElement(model, "FeatureDeclarations")
    spot_features = ET.SubElement(declarations, "SpotFeatures")
    for key in features:
        name, short, dimension, is_int = _TRACKMATE_FEATURES[key]
        ET.SubElement(
            spot_features,
            "Feature",
            feature=key,
            name=name,
            shortname=short,
            dimension=dimension,
            isint=str(is_int).lower(),
        )
    ET.SubElement(declarations, "EdgeFeatures")
    ET.SubElement(declarations, "TrackFeatures")
    spots = ET.SubElement(model, "AllSpots", nspots=str(n))
    frame = ET.SubElement(spots, "SpotsInFrame", frame="0")
    texts = {key: _trackmate_texts(key, values) for key, values in features.items()}
    names = points["class"].tolist()
    for k in range(n):
        attributes = {"ID": str(k), "name": f"{names[k]} {k}"}
        attributes.update((key, values[k]) for key, values in texts.items())
        ET.SubElement(frame, "Spot", attributes)
    ET.SubElement(model, "AllTracks")
    ET.SubElement(model, "FilteredTracks")
    settings = ET.SubElement(root, "Settings")
    path = image.path
    ET.SubElement(
        settings,
        "ImageData",
        filename="" if path is None else path.name,
        folder="" if path is None else str(path.parent),
        width=str(width),
        height=str(height),
        nslices="1",
        nframes="1",
        pixelwidth="1.0",
        pixelheight="1.0",
        voxeldepth="1.0",
        timeinterval="1.0",
    )
    ET.SubElement(
        settings,
        "BasicSettings",
        xstart="0",
        xend=str(max(width - 1, 0)),
        ystart="0",
        yend=str(max(height - 1, 0)),
        zstart="0",
        zend="0",
        tstart="0",
        tend="0",
    )
    radius = float(np.median(points["radius"])) if n else DEFAULT_SIGMA * np.sqrt(2)
    ET.SubElement(
        settings, "DetectorSettings", DETECTOR_NAME="MANUAL_DETECTOR", RADIUS=repr(radius)
    )
    ET.SubElement(settings, "InitialSpotFilter", feature="QUALITY", value="0.0", isabove="true")
    ET.SubElement(settings, "SpotFilterCollection")
    ET.SubElement(settings, "TrackerSettings", TRACKER_NAME="MANUAL_TRACKER")
    ET.SubElement(settings, "TrackFilterCollection")
    analyzers = ET.SubElement(settings, "AnalyzerCollection")
    for name in ("SpotAnalyzers", "EdgeAnalyzers", "TrackAnalyzers"):
        ET.SubElement(analyzers, name)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(target, encoding="UTF-8", xml_declaration=True)


def _write_qupath(points: dict[str, Any], target: str, image: _Image) -> None:
    features = []
    for row, col, value, measurements in zip(
        points["row"].tolist(),
        points["col"].tolist(),
        points["class_value"].tolist(),
        _measurements(points),
        strict=True,
    ):
        features.append(
            {
                "type": "Feature",
                "id": str(uuid.uuid5(_NAMESPACE, f"{image.name}:{row!r}:{col!r}")),
                "geometry": {"type": "Point", "coordinates": [col + 0.5, row + 0.5]},
                "properties": {
                    "objectType": "detection",
                    "classification": {"name": CLASS_NAMES[value], "color": _COLOURS[value]},
                    "measurements": measurements,
                },
            }
        )
    document = {"type": "FeatureCollection", "features": features}
    Path(target).write_text(json.dumps(document, allow_nan=False), encoding="utf-8")


def _write_ds9(points: dict[str, Any], target: str, image: _Image) -> None:
    from astropy import units as u
    from regions import (
        CirclePixelRegion,
        CircleSkyRegion,
        PixCoord,
        RegionMeta,
        Regions,
        RegionVisual,
    )

    values = points["class_value"].tolist()
    if image.wcs is None:
        shapes = [
            CirclePixelRegion(PixCoord(x=col, y=row), radius=radius)
            for row, col, radius in zip(
                points["row"].tolist(),
                points["col"].tolist(),
                points["radius"].tolist(),
                strict=True,
            )
        ]
    else:
        from astropy.coordinates import SkyCoord
        from astropy.wcs.utils import proj_plane_pixel_scales

        arcsec = float(np.mean(proj_plane_pixel_scales(image.wcs))) * 3600.0
        centres = SkyCoord(points["ra"], points["dec"], unit="deg", frame="icrs")
        radii = (points["radius"] * arcsec).tolist()
        shapes = [
            CircleSkyRegion(centre, radius=radius * u.arcsec)
            for centre, radius in zip(centres, radii, strict=True)
        ]
    for shape, value in zip(shapes, values, strict=True):
        shape.meta = RegionMeta({"tag": [CLASS_NAMES[value]]})
        shape.visual = RegionVisual({"color": _DS9_COLOURS[value]})
    Regions(shapes).write(target, format="ds9", overwrite=True)


def _write_imagej_roi(points: dict[str, Any], target: str, image: _Image) -> None:
    from roifile import ROI_TYPE, ImagejRoi

    groups = {1: 1, 0: 2, -1: 3, -2: 4}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for k, (row, col, value) in enumerate(
            zip(
                points["row"].tolist(),
                points["col"].tolist(),
                points["class_value"].tolist(),
                strict=True,
            )
        ):
            name = f"{k:06d}-{CLASS_NAMES[value]}"
            x, y = col + 0.5, row + 0.5
            roi = ImagejRoi.frompoints([[x, y]], name=name)
            roi.roitype = ROI_TYPE.POINT
            roi.group = groups[value]
            roi.stroke_color = bytes((255, *_COLOURS[value]))
            archive.writestr(f"{name}.roi", roi.tobytes())


_WRITERS: dict[str, Callable[[dict[str, Any], str, _Image], None]] = {
    "napari": _write_napari,
    "trackmate": _write_trackmate,
    "qupath": _write_qupath,
    "ds9": _write_ds9,
    "imagej-roi": _write_imagej_roi,
}


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


def _write(points: dict[str, Any], path: Path, format: str, image: _Image) -> Path:
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
    points = _points(table, wcs)
    name = image_file.name if image_file is not None else Path(path).stem
    image = _Image(name=name, path=image_file, shape=image_shape, wcs=wcs)
    return _write(points, Path(path), format, image)


# --------------------------------------------------------------------------------------
# a project's tables
# --------------------------------------------------------------------------------------
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


def _image_of(project: Any, key: Any) -> _Image:
    """The image of a table row: a project image id, or the path of an outside image."""
    from blobsift.io import open_image, read_wcs

    if isinstance(key, int):
        record = project.image(int(key))
        return _Image(record.name, record.path, record.shape, read_wcs(record.path))
    path = Path(str(key))
    shape = None
    if path.is_file():
        with open_image(path) as lazy:
            shape = lazy.shape
    return _Image(path.name, path, shape, read_wcs(path))


def _file_names(images: list[_Image], extension: str) -> list[str]:
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
        points = _points(table[table["image_key"] == key], info.wcs)
        written.append(_write(points, path, format, info))
    return written
