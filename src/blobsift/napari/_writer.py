"""The napari writer: a Points layer as blobsift's candidate CSV.

The file has the columns ``blobsift import-candidates`` and
:func:`blobsift.read_candidates` read: ``image`` (when the layer knows its image),
``row``, ``col``, ``sigma``, ``score``. Points added by hand have NaN sigma and score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError

__all__ = ["write_points"]


def write_points(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write one Points layer as a candidate CSV (npe2 single-layer writer).

    Parameters
    ----------
    path : str
        The CSV file to write.
    data : (n, 2) array
        Point positions as (row, col), as napari holds them.
    attributes : dict
        The layer's attributes; ``metadata["blobsift_image"]`` names the image and the
        ``sigma`` and ``score`` features are written when present.

    Returns
    -------
    list of str
        The written path.

    Raises
    ------
    InvalidInputError
        If the points are not 2D (row, col).
    """
    from blobsift.io import write_candidates
    from blobsift.types import Candidates

    positions = np.asarray(data, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise InvalidInputError(
            f"a candidate CSV holds 2D points (row, col); layer "
            f"{attributes.get('name', '')!r} has points of shape {positions.shape}. Save the "
            "points of one 2D image (one plane of a stack) instead."
        )
    features = attributes.get("features")
    columns = {}
    for name in ("sigma", "score"):
        if features is not None and name in features:
            columns[name] = np.asarray(features[name], dtype=np.float64)
    image = (attributes.get("metadata") or {}).get("blobsift_image") or None
    candidates = Candidates(row=positions[:, 0], col=positions[:, 1], image=image, **columns)
    return [str(write_candidates(candidates, path))]
