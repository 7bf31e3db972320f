"""napari layer data for blobsift tables: one Points layer builder for reader and widget.

Nothing here imports napari: a layer is a ``(data, kwargs, layer_type)`` tuple, the form
npe2 readers return and :meth:`napari.layers.Layer.create` takes. The way back, a Points
layer as :class:`~blobsift.types.Candidates`, is :func:`points_candidates` (for the writer
and the widget).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError
from blobsift.types import Candidates, Label

__all__ = [
    "DECISION_NAMES",
    "LABEL_NAMES",
    "colours",
    "image_layer",
    "points_candidates",
    "points_layer",
    "project_points",
]

#: Label codes (as in :meth:`blobsift.Project.candidates`) -> the names points show, in
#: the order of the ``label`` feature's categories.
LABEL_NAMES = {int(label): label.word for label in (*Label.given(), Label.UNLABELLED)}
#: The name of a candidate no model scored (its ``decision`` feature).
UNSCORED = "unscored"
#: Decision codes -> names.
DECISION_NAMES = {int(Label.SIGNAL): Label.SIGNAL.word, int(Label.NOISE): Label.NOISE.word}
DECISION_NAMES[-1] = UNSCORED

_COLOURS = {
    Label.SIGNAL.word: (0.2, 0.9, 0.3, 1.0),
    Label.NOISE.word: (1.0, 0.25, 0.35, 1.0),
    Label.UNSURE.word: (1.0, 0.8, 0.1, 1.0),
    Label.UNLABELLED.word: (0.55, 0.75, 1.0, 0.8),
    UNSCORED: (0.55, 0.75, 1.0, 0.8),
}
#: Ring diameter per unit of sigma (radius 2 sigma), and the size where sigma is unknown.
_SIZE_PER_SIGMA = 4.0
_DEFAULT_SIZE = 8.0


def colours(names: Any) -> np.ndarray:
    """RGBA colours (n, 4) of label or decision names."""
    return np.array([_COLOURS[name] for name in names], dtype=np.float32).reshape(-1, 4)


def _sizes(sigma: np.ndarray) -> np.ndarray:
    size = _SIZE_PER_SIGMA * sigma
    return np.where(np.isfinite(size) & (size > 0), size, _DEFAULT_SIZE)


def _column(table: Any, name: str, fill: float) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), fill)
    return table[name].to_numpy(dtype=np.float64, na_value=fill)


def points_layer(
    table: Any, *, name: str, colour_by: str, metadata: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any], str]:
    """A Points layer tuple of a candidate or prediction table.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``row``, ``col`` and optionally ``sigma``, ``score``, ``probability``,
        ``decision`` (0/1) and ``label`` (codes of :data:`LABEL_NAMES`).
    name : str
        The layer name.
    colour_by : {"label", "decision"}
        Which feature colours the rings.
    metadata : dict
        Layer metadata (``blobsift_image``, ``blobsift_project`` where known).

    Returns
    -------
    tuple
        ``(data, kwargs, "points")``: data (n, 2) as (row, col); points sized by sigma
        (diameter 4 sigma); features ``label``, ``decision``, ``score``, ``probability``,
        ``sigma``.
    """
    import pandas as pd

    labels = _column(table, "label", Label.UNLABELLED).astype(np.int64)
    decisions = _column(table, "decision", -1).astype(np.int64)
    sigma = _column(table, "sigma", np.nan)
    features = pd.DataFrame(
        {
            "label": pd.Categorical(
                [LABEL_NAMES[v] for v in labels], categories=list(LABEL_NAMES.values())
            ),
            "decision": pd.Categorical(
                [DECISION_NAMES[v] for v in decisions], categories=list(DECISION_NAMES.values())
            ),
            "score": _column(table, "score", np.nan),
            "probability": _column(table, "probability", np.nan),
            "sigma": sigma,
        }
    )
    data = table[["row", "col"]].to_numpy(dtype=np.float64).reshape(-1, 2)
    kwargs = {
        "name": name,
        "features": features,
        "feature_defaults": {
            "label": Label.UNLABELLED.word,
            "decision": UNSCORED,
            "score": np.nan,
            "probability": np.nan,
            "sigma": np.nan,
        },
        "size": _sizes(sigma),
        "face_color": "transparent",
        "border_color": colours(features[colour_by]),
        "border_width": 0.15,
        "border_width_is_relative": True,
        "metadata": {**metadata, "blobsift_colour_by": colour_by},
    }
    return data, kwargs, "points"


def image_layer(
    pixels: np.ndarray, *, name: str, metadata: dict[str, Any], visible: bool = True
) -> tuple[np.ndarray, dict[str, Any], str]:
    """An Image layer tuple, its contrast set from the 1st to 99.8th percentile."""
    finite = pixels[np.isfinite(pixels)]
    low, high = np.percentile(finite, [1.0, 99.8]) if finite.size else (0.0, 1.0)
    limits = [float(low), float(high) if high > low else float(low) + 1.0]
    kwargs = {
        "name": name,
        "metadata": metadata,
        "visible": visible,
        "contrast_limits": limits,
        "colormap": "gray",
    }
    return pixels, kwargs, "image"


def project_points(project: Any, record: Any) -> tuple[np.ndarray, dict[str, Any], str]:
    """The candidates layer of one project image: labels, and the latest predictions.

    Parameters
    ----------
    project : blobsift.Project
    record : blobsift.store.ImageRecord

    Returns
    -------
    tuple
        A Points layer tuple (see :func:`points_layer`) named ``candidates [NAME]``,
        coloured by label, with ``probability`` and ``decision`` from the latest
        prediction run that scored the image (NaN and "unscored" where none did).
    """
    from blobsift.positions import match_positions

    table = project.candidates(record.id, with_labels=True)
    table["probability"] = np.nan
    table["decision"] = -1
    scored = project.latest_predictions(record.id)
    ia, ib = match_positions(
        table[["row", "col"]].to_numpy(),
        scored[["row", "col"]].to_numpy(),
        project.match_radius,
    )
    table.loc[table.index[ia], "probability"] = scored["probability"].to_numpy()[ib]
    table.loc[table.index[ia], "decision"] = scored["decision"].to_numpy()[ib]
    metadata = {
        "blobsift_image": record.name,
        "blobsift_layer": "candidates",
        "blobsift_project": str(project.root),
    }
    return points_layer(
        table, name=f"candidates [{record.name}]", colour_by="label", metadata=metadata
    )


def points_candidates(
    data: Any, features: Mapping[str, Any] | None, *, layer: str, image: str | None
) -> Candidates:
    """The candidates a Points layer holds: its (row, col) points, ``sigma`` and ``score``.

    Parameters
    ----------
    data : (n, 2) array
        Point positions as (row, col), as napari holds them.
    features : mapping or DataFrame, optional
        The layer's features; ``sigma`` and ``score`` are taken when present (NaN
        otherwise, as for points added by hand).
    layer : str
        The layer's name, for error messages.
    image : str, optional
        The ``image`` column (the image the points belong to), or None.

    Raises
    ------
    InvalidInputError
        If the points are not 2D (row, col).
    """
    positions = np.asarray(data, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise InvalidInputError(
            f"candidates are 2D points (row, col); layer {layer!r} has points of shape "
            f"{positions.shape}. Use the points of one 2D image (one plane of a stack)."
        )
    columns = {
        name: np.asarray(features[name], dtype=np.float64)
        for name in ("sigma", "score")
        if features is not None and name in features
    }
    return Candidates(row=positions[:, 0], col=positions[:, 1], image=image, **columns)
