"""One writer per export format: (points, temporary file, image) -> None.

Each writer gets the columns of :func:`~blobsift.export._points.point_columns` and writes
one file in its format (see :mod:`blobsift.export` for the layouts and coordinates);
:data:`WRITERS` maps the format names to them. The caller makes the write atomic.
"""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._version import __version__
from blobsift.export._points import (
    CLASS_NAMES,
    CLASSES,
    DEFAULT_SIGMA,
    ImageInfo,
    feature_names,
    point_measurements,
)
from blobsift.types import Label

__all__ = ["WRITERS"]

_COLOURS = {
    Label.SIGNAL: (0, 200, 0),
    Label.NOISE: (230, 0, 0),
    Label.UNSURE: (240, 200, 0),
    Label.UNLABELLED: (0, 170, 255),
}
_DS9_COLOURS = {
    Label.SIGNAL: "green",
    Label.NOISE: "red",
    Label.UNSURE: "yellow",
    Label.UNLABELLED: "cyan",
}
_NAMESPACE = uuid.UUID("1b0b51f7-0000-4000-8000-000000000000")


def _write_napari(points: dict[str, Any], target: Path, image: ImageInfo) -> None:
    import pandas as pd

    table = pd.DataFrame(
        {
            "index": np.arange(len(points["row"])),
            "axis-0": points["row"],
            "axis-1": points["col"],
            "class": points["class"],
            **{name: points[name] for name in feature_names(points)},
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
        f"blobsift class ({', '.join(f'{int(c)} {c.word}' for c in CLASSES)})",
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


def _write_trackmate(points: dict[str, Any], target: Path, image: ImageInfo) -> None:
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
        **{name.upper(): points[name] for name in feature_names(points) if name != "score"},
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


def _write_qupath(points: dict[str, Any], target: Path, image: ImageInfo) -> None:
    features = []
    for row, col, value, measurements in zip(
        points["row"].tolist(),
        points["col"].tolist(),
        points["class_value"].tolist(),
        point_measurements(points),
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


def _write_ds9(points: dict[str, Any], target: Path, image: ImageInfo) -> None:
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


def _write_imagej_roi(points: dict[str, Any], target: Path, image: ImageInfo) -> None:
    from roifile import ROI_TYPE, ImagejRoi

    groups = {int(label): k + 1 for k, label in enumerate(CLASSES)}
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


WRITERS: dict[str, Callable[[dict[str, Any], Path, ImageInfo], None]] = {
    "napari": _write_napari,
    "trackmate": _write_trackmate,
    "qupath": _write_qupath,
    "ds9": _write_ds9,
    "imagej-roi": _write_imagej_roi,
}
