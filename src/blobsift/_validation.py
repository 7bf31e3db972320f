"""Checks of user input shared by every public entry point.

Each check names the parameter, what is allowed, what was given and, where there is one,
the fix. None of them uses ``assert``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError, SingleClassError

CROP_SIZE = 64


def check_crops(crops: Any, *, name: str = "X", size: int = CROP_SIZE) -> np.ndarray:
    """Return ``crops`` as a C-contiguous float32 array of shape (n, size, size).

    Parameters
    ----------
    crops : array-like
        Raw crop intensities of any real dtype; a single (size, size) crop is refused so a
        caller cannot mistake a crop for a batch.
    name : str
        The parameter name used in error messages.
    size : int
        The expected side length of a crop.

    Raises
    ------
    InvalidInputError
        If the shape is not (n, size, size), the dtype is not real, or a value is NaN/inf.
    """
    array = np.asarray(crops)
    if (
        array.dtype == object
        or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool)
        or np.issubdtype(array.dtype, np.complexfloating)
    ):
        raise InvalidInputError(
            f"{name} must hold real numbers; got dtype {array.dtype}. "
            "Pass crops as a numeric array of shape (n, 64, 64)."
        )
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or array.shape[1:] != (size, size):
        raise InvalidInputError(
            f"{name} must have shape (n, {size}, {size}); got {array.shape}. "
            f"Use extract_crops(image, candidates, size={size}) to make crops."
        )
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.size and not np.isfinite(array).all():
        bad = np.unique(np.nonzero(~np.isfinite(array))[0])
        raise InvalidInputError(
            f"{name} holds NaN or inf values in {bad.size} crop(s) (first indices: "
            f"{bad[:5].tolist()}). Drop or repair those crops before calling."
        )
    return array


def check_labels(labels: Any, n: int | None = None, *, name: str = "y") -> np.ndarray:
    """Return binary labels as an int64 vector, checking values and length.

    Parameters
    ----------
    labels : array-like
        Labels in {0, 1} (bool, int or float holding exactly 0.0/1.0); shape (n,) or (n, 1).
    n : int, optional
        The number of crops the labels must match.
    name : str
        The parameter name used in error messages.

    Raises
    ------
    InvalidInputError
        If labels are not 1D, hold values outside {0, 1}, or their length differs from ``n``.
    """
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must have shape (n,); got {array.shape}.")
    if n is not None and array.shape[0] != n:
        raise InvalidInputError(
            f"{name} has {array.shape[0]} labels but there are {n} crops; "
            "they must have the same length."
        )
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InvalidInputError(
            f"{name} must hold 0 (noise) or 1 (signal); got dtype {array.dtype}."
        )
    values = np.unique(array)
    unexpected = [v for v in values.tolist() if v not in (0, 1)]
    if unexpected:
        raise InvalidInputError(
            f"{name} must hold only 0 (noise) and 1 (signal); got also {unexpected[:5]}."
        )
    return array.astype(np.int64)


def check_both_classes(labels: np.ndarray, *, name: str = "y", minimum: int = 1) -> None:
    """Raise :class:`SingleClassError` unless each class has at least ``minimum`` labels."""
    counts = np.bincount(labels, minlength=2)
    if counts.min() < minimum:
        raise SingleClassError(
            f"{name} needs at least {minimum} noise (0) and {minimum} signal (1) labels; "
            f"got {counts[0]} noise and {counts[1]} signal. Label more crops of the "
            "missing class."
        )


def check_choice(value: Any, allowed: Sequence[Any], *, name: str) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise raise with a suggestion."""
    if value in allowed:
        return value
    raise InvalidInputError(f"{name} must be one of {list(allowed)}; got {value!r}.")


def check_in_range(
    value: float,
    *,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` if it lies in the given interval; otherwise raise."""
    ok = np.isfinite(value)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        interval = (
            f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        )
        raise InvalidInputError(f"{name} must lie in {interval}; got {value!r}.")
    return value
