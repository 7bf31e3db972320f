"""Checks of user input shared by every public entry point.

Each check names the parameter, what is allowed, what was given and, where there is one,
the fix. None of them uses ``assert``.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError, SingleClassError

CROP_SIZE = 64
#: Largest crop magnitude accepted: normalisation runs in float32, which overflows when
#: differences of values near its limit (3.4e38) are taken.
MAX_CROP_MAGNITUDE = 1e30
_REAL_KINDS = "biuf"  # bool, signed and unsigned integers, floats

#: A parameter check: ``constraint(value, name)`` raises :class:`InvalidInputError`.
Constraint = Callable[[Any, str], None]


def as_array(value: Any, name: str, what: str) -> np.ndarray:
    """``np.asarray(value)``, with ragged or unconvertible input refused by name."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            f"{name} must be {what}; got a {type(value).__name__} that is not one ({error})."
        ) from None


def check_crops(
    crops: Any, *, name: str = "X", size: int = CROP_SIZE, channels: bool = False
) -> np.ndarray:
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
    channels : bool
        Also accept crops of several channels, (n, C, size, size), returned as they are
        (C > 1) or as (n, size, size) (C = 1).

    Raises
    ------
    InvalidInputError
        If the shape is not (n, size, size) (or (n, C, size, size) with ``channels``), the
        dtype is not real (bool, integer or float), or a value is NaN, inf or beyond
        ``MAX_CROP_MAGNITUDE``.
    """
    array = as_array(crops, name, f"a numeric array of shape (n, {size}, {size})")
    if array.dtype.kind not in _REAL_KINDS:
        raise InvalidInputError(
            f"{name} must hold real numbers; got dtype {array.dtype}. "
            "Pass crops as a numeric array of shape (n, 64, 64)."
        )
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    several = channels and array.ndim == 4 and array.shape[1] > 1
    if not several and (array.ndim != 3 or array.shape[1:] != (size, size)):
        allowed = f" or (n, C, {size}, {size})" if channels else ""
        raise InvalidInputError(
            f"{name} must have shape (n, {size}, {size}){allowed}; got {array.shape}. "
            f"Use extract_crops(image, candidates, size={size}) to make crops."
        )
    if several and array.shape[2:] != (size, size):
        raise InvalidInputError(
            f"{name} must have shape (n, C, {size}, {size}); got {array.shape}. "
            f"Use extract_crops(image, candidates, size={size}) on each channel."
        )
    if array.size and array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            indices = np.unique(np.nonzero(bad)[0])
            raise InvalidInputError(
                f"{name} holds NaN or inf values in {indices.size} crop(s) (first indices: "
                f"{indices[:5].tolist()}). Drop or repair those crops before calling."
            )
        can_be_huge = float(np.finfo(array.dtype).max) > MAX_CROP_MAGNITUDE  # not float16
        huge = np.abs(array) > MAX_CROP_MAGNITUDE if can_be_huge else bad
        if huge.any():
            indices = np.unique(np.nonzero(huge)[0])
            raise InvalidInputError(
                f"{name} holds values beyond ±{MAX_CROP_MAGNITUDE:g} in {indices.size} "
                f"crop(s) (first indices: {indices[:5].tolist()}); float32 arithmetic "
                "overflows there. Rescale those crops before calling."
            )
    return np.ascontiguousarray(array, dtype=np.float32)


def crop_channels(crops: np.ndarray) -> int:
    """The number of channels of checked crops: 1 for (n, H, W), C for (n, C, H, W)."""
    return 1 if crops.ndim == 3 else int(crops.shape[1])


def check_channels(crops: np.ndarray, expected: int, *, name: str = "X") -> None:
    """Raise :class:`InvalidInputError` unless checked crops have ``expected`` channels.

    Parameters
    ----------
    crops : ndarray
        Crops returned by :func:`check_crops` (``channels=True``).
    expected : int
        The channels the model was trained on.
    name : str
        The parameter name used in the message.
    """
    found = crop_channels(crops)
    if found != expected:
        shape = f"(n, {expected}, H, W)" if expected > 1 else "(n, H, W)"
        raise InvalidInputError(
            f"{name} has {found} channel(s) per crop but the model was trained on crops of "
            f"{expected} channel(s); pass crops of shape {shape}, in the channel order it "
            "was trained on."
        )


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
    array = as_array(labels, name, "a vector of 0/1 labels")
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must have shape (n,); got {array.shape}.")
    if n is not None and array.shape[0] != n:
        raise InvalidInputError(
            f"{name} has {array.shape[0]} labels but there are {n} crops; "
            "they must have the same length."
        )
    if array.dtype.kind not in _REAL_KINDS:
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
    """Return ``value`` if it is a real number in the given interval; otherwise raise."""
    if not _is_real(value):
        raise InvalidInputError(f"{name} must be a number; got {value!r} ({type(value).__name__}).")
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


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def check_integer(value: Any, *, name: str, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer (not a bool) in [low, high]."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(
            f"{name} must be an integer in {_interval(low, high, False, False)}; got "
            f"{value!r} ({type(value).__name__})."
        )
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidInputError(
            f"{name} must be an integer in {_interval(low, high, False, False)}; got {value}."
        )
    return number


def integer(
    low: int | None = None, high: int | None = None, *, optional: bool = False
) -> Constraint:
    """A :data:`Constraint`: an integer in [low, high] (or None when ``optional``)."""

    def constraint(value: Any, name: str) -> None:
        if not (optional and value is None):
            check_integer(value, name=name, low=low, high=high)

    return constraint


def real(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> Constraint:
    """A :data:`Constraint`: a finite number in the interval (or None when ``optional``)."""

    def constraint(value: Any, name: str) -> None:
        if not (optional and value is None):
            check_in_range(
                value, name=name, low=low, high=high, low_inclusive=not low_open,
                high_inclusive=not high_open,
            )  # fmt: skip

    return constraint


def one_of(*allowed: Any) -> Constraint:
    """A :data:`Constraint`: one of ``allowed`` (None only if listed)."""

    def constraint(value: Any, name: str) -> None:
        if not any(
            value is option or (option is not None and value == option) for option in allowed
        ):
            check_choice(value, allowed, name=name)  # raises with the list

    return constraint


def instance_of(
    types: type | tuple[type, ...], description: str, *, optional: bool = True
) -> Constraint:
    """A :data:`Constraint`: an instance of ``types`` (or None when ``optional``)."""

    def constraint(value: Any, name: str) -> None:
        if (optional and value is None) or isinstance(value, types):
            return
        raise InvalidInputError(
            f"{name} must be {description}{' or None' if optional else ''}; got {value!r} "
            f"({type(value).__name__})."
        )

    return constraint


#: Common constraints of the estimators' parameters.
BOOLEAN = instance_of((bool, np.bool_), "True or False", optional=False)
OPTIONAL_BOOLEAN = instance_of((bool, np.bool_), "True or False")
SEED = integer(0, 2**32 - 1, optional=True)
FRACTION = real(0, 1, low_open=True, optional=True)  # a target precision or recall
CALLBACK = instance_of(Callable, "a callable")  # type: ignore[arg-type]
MAPPING = instance_of(Mapping, "a dict")
PATH = instance_of((str, os.PathLike), "a path")


def check_params(
    params: Mapping[str, Any], constraints: Mapping[str, Constraint], *, where: str = ""
) -> None:
    """Check every parameter against its constraint; the first violation raises.

    Parameters
    ----------
    params : mapping
        Parameter values by name.
    constraints : mapping
        A :data:`Constraint` for each name; a name without one is refused too.
    where : str
        Prefix of the names in messages (e.g. ``"CNNClassifier parameter "``).

    Raises
    ------
    InvalidInputError
        Naming the parameter, what is allowed and what was given.
    """
    for name, value in params.items():
        if name not in constraints:
            raise InvalidInputError(
                f"{where}{name} is not a parameter; valid: {sorted(constraints)}."
            )
        constraints[name](value, f"{where}{name}")
