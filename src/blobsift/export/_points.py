"""The points of one image, checked and ready for a writer.

:func:`point_columns` checks a point table and returns its columns as arrays with what
every format carries: the ``class`` of each point (from ``decision``, else ``label``; see
:data:`CLASS_NAMES`), its ``radius`` and, for images with a celestial WCS, ``ra`` and
``dec``. :class:`ImageInfo` is what a writer may need to know about the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError
from blobsift.types import Label

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "DEFAULT_SIGMA",
    "FEATURES",
    "ImageInfo",
    "feature_names",
    "point_columns",
    "point_measurements",
]

#: The classes a point can have, in the order legends list them.
CLASSES = (*Label.given(), Label.UNLABELLED)
#: Class value -> name: 1/0 signal/noise (labels or decisions), -1 unsure, -2 no label.
CLASS_NAMES = {int(label): label.word for label in CLASSES}
#: Point columns carried as features, in this order, where the table has them.
FEATURES = ("sigma", "score", "label", "probability", "decision")
#: The sigma of a point without one (the detector's smallest blob width).
DEFAULT_SIGMA = 1.0


@dataclass(frozen=True)
class ImageInfo:
    """What a writer may need to know about the image of the points."""

    name: str
    path: Path | None = None
    shape: tuple[int, int] | None = None
    wcs: Any = None


def point_columns(table: Any, wcs: Any) -> dict[str, Any]:
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
    classes = np.full(len(rows), float(Label.UNLABELLED)) if source is None else points[source]
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


def feature_names(points: dict[str, Any]) -> list[str]:
    return [name for name in (*FEATURES, "ra", "dec") if name in points]


def point_measurements(points: dict[str, Any]) -> list[dict[str, float]]:
    """The finite features of each point (JSON has no NaN)."""
    names = feature_names(points)
    if not names:
        return [{} for _ in range(len(points["row"]))]
    columns = [points[name].tolist() for name in names]
    return [
        {name: value for name, value in zip(names, values, strict=True) if np.isfinite(value)}
        for values in zip(*columns, strict=True)
    ]
