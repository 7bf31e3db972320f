"""Candidates against the ground truth: which drawn object each candidate is.

:func:`pair_with_truth` is the one pairing of candidates with simulated objects (one to
one, nearest first, within a radius; :func:`blobsift.positions.match_positions`), used by
:func:`truth_labels` (a perfect labeller) and by
:func:`blobsift.simulate.candidate_kinds` (the difference domain's transients).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from blobsift.positions import match_positions

__all__ = ["pair_with_truth", "truth_labels"]


def pair_with_truth(positions: np.ndarray, objects: pd.DataFrame, radius: float) -> np.ndarray:
    """Pair candidates with drawn objects, one to one, nearest first, within ``radius``.

    Parameters
    ----------
    positions : (n, 2) array
        Candidate positions (row, col).
    objects : pandas.DataFrame
        Ground-truth objects with columns ``row`` and ``col``.
    radius : float
        Largest distance in pixels between a candidate and its object.

    Returns
    -------
    (n,) int64 array
        For each candidate, the position (0-based, in row order) of its object in
        ``objects``, or -1 where none is near.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    index = np.full(len(positions), -1, dtype=np.int64)
    ia, ib = match_positions(positions, objects[["row", "col"]].to_numpy(), radius)
    index[ia] = ib
    return index


def truth_labels(
    candidates: pd.DataFrame, objects: Mapping[str, pd.DataFrame], radius: float = 2.0
) -> np.ndarray:
    """Label candidates from the ground truth, as a perfect labeller would.

    Within each image, candidates and drawn objects are paired one to one, nearest first,
    within ``radius`` pixels; a candidate takes the label of its object (1 for a spot, 0 for
    a decoy) and is noise (0) when no object is near it.

    Parameters
    ----------
    candidates : pandas.DataFrame
        Columns ``image``, ``row``, ``col``.
    objects : mapping
        ``image`` value -> that image's ground-truth ``objects``.
    radius : float
        Largest distance in pixels between a candidate and its object.

    Returns
    -------
    (n,) int64 array
        The label of each candidate, in the order of ``candidates``.
    """
    images = candidates["image"].to_numpy()
    positions = candidates[["row", "col"]].to_numpy(dtype=np.float64)
    labels = np.zeros(len(candidates), dtype=np.int64)
    for image in pd.unique(images):
        where = np.flatnonzero(images == image)
        truth = objects[image]
        index = pair_with_truth(positions[where], truth, radius)
        paired = index >= 0
        labels[where[paired]] = truth["label"].to_numpy()[index[paired]]
    return labels
