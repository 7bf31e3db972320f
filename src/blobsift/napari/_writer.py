"""The napari writer: a Points layer as blobsift's candidate CSV.

The file has the columns ``blobsift import-candidates`` and
:func:`blobsift.read_candidates` read: ``image`` (when the layer knows its image),
``row``, ``col``, ``sigma``, ``score``. Points added by hand have NaN sigma and score.
"""

from __future__ import annotations

from typing import Any

from blobsift.napari._layers import points_candidates

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
    image = (attributes.get("metadata") or {}).get("blobsift_image") or None
    features = attributes.get("features")
    name = attributes.get("name", "")
    candidates = points_candidates(data, features, layer=name, image=image)
    return [str(candidates.to_csv(path))]
