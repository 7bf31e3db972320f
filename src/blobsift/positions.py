"""Which candidate is at this position: the one home of position matching.

A label is stored at a position, not at a candidate: candidates may be detected again
with other settings, imported from another detector, or not exist at all. Whenever a label
(or a true position) has to be paired with a candidate, the pairing is done here: one to
one, nearest first, within a radius in pixels. The other questions of proximity live here
too: the nearest candidate to one position (:func:`nearest_within`) and the pairs of
candidates of one image that lie within the radius of each other (:func:`close_pairs`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from blobsift.types import Label

__all__ = ["PositionIndex", "close_pairs", "match_labels", "match_positions", "nearest_within"]


def match_positions(a: np.ndarray, b: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Pair positions of ``a`` and ``b`` one to one, nearest first, within ``radius``.

    Parameters
    ----------
    a, b : (n, 2) and (m, 2) arrays
        Positions as (row, col).
    radius : float
        Largest distance of a pair, in pixels.

    Returns
    -------
    index_a, index_b : int arrays
        Paired rows of ``a`` and ``b``; each row appears at most once.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    if not len(a) or not len(b):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    from scipy.spatial import cKDTree

    pairs = cKDTree(a).sparse_distance_matrix(cKDTree(b), radius, output_type="ndarray")
    order = np.lexsort((pairs["j"], pairs["i"], pairs["v"]))
    used_a: set[int] = set()
    used_b: set[int] = set()
    out_a, out_b = [], []
    for k in order:
        i, j = int(pairs["i"][k]), int(pairs["j"][k])
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out_a.append(i)
            out_b.append(j)
    return np.asarray(out_a, np.int64), np.asarray(out_b, np.int64)


def match_labels(candidates: Any, labels: Any, radius: float) -> np.ndarray:
    """The current label of each candidate: labels matched per image by :func:`match_positions`.

    Parameters
    ----------
    candidates : pandas.DataFrame
        With columns ``image_id``, ``row``, ``col`` (as :meth:`Project.candidates`).
    labels : pandas.DataFrame
        With columns ``image_id``, ``row``, ``col``, ``label`` (as :meth:`Project.labels`).
    radius : float
        Largest distance between a candidate and its label, in pixels.

    Returns
    -------
    (len(candidates),) int64 array
        Each candidate's label, or ``Label.UNLABELLED`` (-2) where none matches.
    """
    out = np.full(len(candidates), Label.UNLABELLED, dtype=np.int64)
    image_ids = candidates["image_id"].to_numpy()
    positions = candidates[["row", "col"]].to_numpy(dtype=np.float64)
    for image_id, mine in labels.groupby("image_id"):
        rows = np.flatnonzero(image_ids == image_id)
        ia, ib = match_positions(positions[rows], mine[["row", "col"]].to_numpy(), radius)
        out[rows[ia]] = mine["label"].to_numpy()[ib]
    return out


class PositionIndex:
    """Labelled positions of one image, found by proximity (a grid of ``radius`` cells)."""

    def __init__(self, radius: float) -> None:
        self.radius = radius
        self.cell = max(radius, 1e-9)
        self.grid: dict[tuple[int, int], list[tuple[float, float]]] = {}

    def add(self, row: float, col: float) -> None:
        """Add a position."""
        key = (int(np.floor(row / self.cell)), int(np.floor(col / self.cell)))
        self.grid.setdefault(key, []).append((row, col))

    def nearest(self, row: float, col: float) -> tuple[float, float] | None:
        """The added position nearest to (row, col) within the radius, or None."""
        key = (int(np.floor(row / self.cell)), int(np.floor(col / self.cell)))
        best, best_d = None, np.inf
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                for r, c in self.grid.get((key[0] + dr, key[1] + dc), ()):
                    d = np.hypot(r - row, c - col)
                    if d <= self.radius and d < best_d:
                        best, best_d = (r, c), d
        return best


def nearest_within(positions: np.ndarray, row: float, col: float, radius: float) -> int | None:
    """The row of ``positions`` nearest to (row, col) if it lies within ``radius``, else None.

    Parameters
    ----------
    positions : (n, 2) array
        Positions as (row, col).
    row, col : float
        The position asked about.
    radius : float
        Largest distance, in pixels.
    """
    points = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    if not len(points):
        return None
    distance = np.hypot(points[:, 0] - row, points[:, 1] - col)
    best = int(np.argmin(distance))
    return best if distance[best] <= radius else None


def close_pairs(positions: np.ndarray, groups: np.ndarray, radius: float) -> np.ndarray:
    """Every pair of positions in one group (an image) within ``radius`` of each other.

    Parameters
    ----------
    positions : (n, 2) array
        Positions as (row, col).
    groups : (n,) array
        The group (image) of each position; positions of different groups never pair.
    radius : float
        Largest distance of a pair, in pixels.

    Returns
    -------
    (k, 2) int64 array
        Row indices ``(i, j)`` with ``i < j``, ordered by ``i`` then ``j``.
    """
    from scipy.spatial import cKDTree

    points = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(groups)
    pairs = [np.empty((0, 2), np.int64)]
    for value in np.unique(labels):
        mine = np.flatnonzero(labels == value)
        found = cKDTree(points[mine]).query_pairs(radius, output_type="ndarray")
        pairs.append(np.sort(mine[found], axis=1).astype(np.int64))
    out = np.concatenate(pairs)
    return out[np.lexsort((out[:, 1], out[:, 0]))]
