"""Stratified splits of labelled crops for validation with few positives."""

from __future__ import annotations

import numpy as np

from blobsift.exceptions import InvalidInputError

__all__ = ["feasible_folds", "nested_order", "stratified_folds"]


def nested_order(labels: np.ndarray) -> np.ndarray:
    """Return an order of ``labels`` whose every prefix keeps the class ratio.

    Label sets taken as growing prefixes of this order are nested, and each holds its
    share of every class (within one member); members of a class keep their given order.

    Parameters
    ----------
    labels : (n,) array
        Class of each item.

    Returns
    -------
    (n,) int64 array
        A permutation of ``range(n)``.
    """
    labels = np.asarray(labels)
    rank = np.empty(labels.size)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        rank[members] = (np.arange(members.size) + 0.5) / members.size
    return np.argsort(rank, kind="stable")


def stratified_folds(
    labels: np.ndarray, n_folds: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split indices into ``n_folds`` (train, validation) pairs with the classes spread evenly.

    Each class is shuffled and dealt round-robin over the folds, so every validation fold
    gets ``count // n_folds`` or one more of each class, and every index is validated
    exactly once.

    Raises
    ------
    InvalidInputError
        If ``n_folds < 2`` or a class has fewer members than folds.
    """
    labels = np.asarray(labels)
    if n_folds < 2:
        raise InvalidInputError(f"n_folds must be >= 2; got {n_folds}.")
    fold_of = np.empty(labels.size, dtype=np.int64)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        if members.size < n_folds:
            raise InvalidInputError(
                f"class {value} has {members.size} labels, fewer than n_folds={n_folds}."
            )
        members = rng.permutation(members)
        # Start each class at a random fold so small classes do not all fill fold 0.
        fold_of[members] = (np.arange(members.size) + rng.integers(n_folds)) % n_folds
    every = np.arange(labels.size)
    return [(every[fold_of != k], every[fold_of == k]) for k in range(n_folds)]


def feasible_folds(labels: np.ndarray, wanted: int) -> int:
    """Return ``wanted`` folds, capped at the rarer class's size, and at least 2."""
    return max(2, int(min(wanted, np.bincount(np.asarray(labels), minlength=2).min())))
