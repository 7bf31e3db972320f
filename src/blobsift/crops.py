"""Square crops centred on candidate positions, and their per-crop normalisation.

* :func:`extract_crops`: the crops of one image; :func:`crops_for`: of a table spanning
  many images (each image read once);
* :func:`centre_window`: the central part of each crop a network is fed;
* :func:`normalise_crops` (with :func:`robust_noise`): every crop on one scale, in numpy,
  so that models, baselines and the web app's suggestions share it without torch; by its
  own noise, or by its image's (:func:`check_image_noise` checks those levels).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, overload

import numpy as np

from blobsift._validation import CROP_SIZE, as_array, check_integer
from blobsift.exceptions import InvalidInputError

__all__ = [
    "CROP_SIZE",
    "centre_window",
    "check_image_noise",
    "crops_for",
    "extract_crops",
    "normalise_crops",
    "robust_noise",
]

_MAX_POSITION = 2.0**53  # beyond, float positions are no longer whole pixels
_MAD_TO_SIGMA = 1.4826
_ASINH_SCALE = 3.0  # noise sigmas at which the intensity compression sets in


def _centres(candidates: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return integer (row, col) centres from ``Candidates`` or an (n, 2) array."""
    try:
        if hasattr(candidates, "row") and hasattr(candidates, "col"):
            rows = np.asarray(candidates.row, dtype=np.float64).reshape(-1)
            cols = np.asarray(candidates.col, dtype=np.float64).reshape(-1)
        else:
            positions = np.asarray(candidates, dtype=np.float64)
            if positions.ndim != 2 or positions.shape[1] < 2:
                raise InvalidInputError(
                    "candidates must be a Candidates table or an array of shape (n, 2) "
                    f"holding (row, col); got shape {positions.shape}."
                )
            rows, cols = positions[:, 0], positions[:, 1]
    except (TypeError, ValueError) as error:
        if isinstance(error, InvalidInputError):
            raise
        raise InvalidInputError(
            f"candidate positions must be numbers (row, col); got {type(candidates).__name__} "
            f"that is not ({error})."
        ) from None
    if rows.size and not (
        np.abs(rows).max() < _MAX_POSITION and np.abs(cols).max() < _MAX_POSITION
    ):
        raise InvalidInputError(
            f"candidate positions must be finite and below {_MAX_POSITION:g} in size; got "
            "NaN, inf or a larger value."
        )
    return np.floor(rows + 0.5).astype(np.int64), np.floor(cols + 0.5).astype(np.int64)


def _reflect(index: np.ndarray, length: int) -> np.ndarray:
    """Map indices outside [0, length) back inside, mirroring without repeating the edge."""
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = np.abs(index) % period
    return np.where(index >= length, period - index, index)


def extract_crops(image: np.ndarray, candidates: Any, size: int = CROP_SIZE) -> np.ndarray:
    """Cut a ``size`` x ``size`` window centred on each candidate.

    The pixel nearest to the candidate's (sub-pixel) position lands at index
    ``(size // 2, size // 2)`` of its crop. Windows that reach past the image border are
    filled by mirror reflection (without repeating the edge pixel).

    A stack of aligned channels (C, H, W) gives crops of every channel at the same
    positions.

    Parameters
    ----------
    image : (H, W) or (C, H, W) array
        A 2D image, or a stack of channels (:func:`blobsift.io.read_stack`), of any real
        dtype.
    candidates : Candidates or (n, 2) array
        Positions as (row, col).
    size : int
        Side length of each crop.

    Returns
    -------
    crops : (n, size, size) or (n, C, size, size) float32 array
        One crop per candidate, in the candidates' order; ``(0, size, size)`` (or
        ``(0, C, size, size)``) when there are no candidates.
    """
    image = as_array(image, "image", "a 2D array (H, W) or a stack (C, H, W)")
    if image.ndim not in (2, 3):
        raise InvalidInputError(
            f"image must be 2D (H, W) or a stack of channels (C, H, W); got shape "
            f"{image.shape}. Use read_image(path), read_stack(path) or pick a channel first."
        )
    if image.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"image must hold real numbers; got dtype {image.dtype}. Use read_image(path)."
        )
    size = check_integer(size, name="size", low=1)
    rows, cols = _centres(candidates)
    crops = np.empty((rows.size, *image.shape[:-2], size, size), dtype=np.float32)
    if rows.size == 0:
        return crops
    if image.size == 0:
        raise InvalidInputError(f"image is empty (shape {image.shape}); nothing to crop.")
    half = size // 2
    top, left = rows - half, cols - half
    height, width = image.shape[-2:]
    inside = (top >= 0) & (left >= 0) & (top + size <= height) & (left + size <= width)
    # Whole windows: one slice copy each (about 2x faster than a fancy-indexed gather).
    for index, r, c in zip(
        np.flatnonzero(inside).tolist(), top[inside].tolist(), left[inside].tolist(), strict=True
    ):
        crops[index] = image[..., r : r + size, c : c + size]
    border = np.flatnonzero(~inside)
    if border.size:
        offsets = np.arange(size)
        row_index = _reflect(top[border, None] + offsets, height)
        col_index = _reflect(left[border, None] + offsets, width)
        # (C, n, size, size) for a stack: the candidates' axis goes first.
        gathered = image[..., row_index[:, :, None], col_index[:, None, :]]
        crops[border] = np.moveaxis(gathered, -3, 0)
    return crops


def centre_window(crops: np.ndarray, size: int) -> np.ndarray:
    """Return the central ``size`` x ``size`` window of each crop (a view, no copy).

    Parameters
    ----------
    crops : (n, S, S) array
    size : int
        Window side, at most ``S``; ``S - size`` should be even to stay centred.
    """
    full = crops.shape[-1]
    if size > full:
        raise InvalidInputError(f"window size {size} exceeds the crop size {full}.")
    start = (full - size) // 2
    return crops[..., start : start + size, start : start + size]


@overload
def crops_for(
    table: Any,
    reader: Callable[[Any], np.ndarray],
    *,
    image_column: str = ...,
    size: int = ...,
    image_noise: None = None,
) -> np.ndarray: ...
@overload
def crops_for(
    table: Any,
    reader: Callable[[Any], np.ndarray],
    *,
    image_column: str = ...,
    size: int = ...,
    image_noise: Callable[[np.ndarray], float | np.ndarray],
) -> tuple[np.ndarray, np.ndarray]: ...
def crops_for(
    table: Any,
    reader: Callable[[Any], np.ndarray],
    *,
    image_column: str = "image_id",
    size: int = CROP_SIZE,
    image_noise: Callable[[np.ndarray], float | np.ndarray] | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Cut the crop of every row of a table that spans many images, in the table's order.

    This is the one place where crops are cut image by image: each image is read once,
    by ``reader``, and released before the next is read.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``row``, ``col`` and ``image_column`` (what ``reader`` takes to read the
        image: an id, a name, a path).
    reader : callable
        ``reader(image) -> (H, W) array``, or ``(C, H, W)`` stacks of channels: every
        image of the table must then have the same C.
    image_column : str
        The column naming each row's image.
    size : int
        Side length of each crop.
    image_noise : callable, optional
        ``image_noise(pixels) -> float``, the noise level of an image (e.g. the second
        value of :func:`blobsift.detect.estimate_noise`): given, each crop also gets the
        noise of its image, computed while the image is read.

    Returns
    -------
    crops : (len(table), size, size) or (len(table), C, size, size) float32 array
    noise : (len(table),) or (len(table), C) float64 array
        Only with ``image_noise``: the noise level of each row's image (per channel).

    Raises
    ------
    InvalidInputError
        If the images differ in their number of channels.
    """
    crops = np.empty((len(table), size, size), dtype=np.float32)
    noise = np.empty(len(table), dtype=np.float64)
    positions = table[["row", "col"]].to_numpy(dtype=np.float64)
    groups: dict[Hashable, np.ndarray] = table.groupby(image_column, sort=True).indices
    for number, (image, rows) in enumerate(groups.items()):
        pixels = reader(image)
        cut = extract_crops(pixels, positions[rows], size)
        if number == 0 and cut.shape[1:] != crops.shape[1:]:
            crops = np.empty((len(table), *cut.shape[1:]), dtype=np.float32)
            noise = np.empty((len(table), *cut.shape[1:-2]), dtype=np.float64)
        if cut.shape[1:] != crops.shape[1:]:
            raise InvalidInputError(
                f"the images of the table differ in their channels: image {image!r} gives "
                f"crops of shape {cut.shape[1:]}, an earlier one {crops.shape[1:]}. Every "
                "image must have the same number of channels."
            )
        crops[rows] = cut
        if image_noise is not None:
            noise[rows] = image_noise(pixels)
    return crops if image_noise is None else (crops, noise)


def _lower_median(values: np.ndarray) -> np.ndarray:
    """Median of each row of a 2-D array; the lower middle value for an even count.

    (As torch's ``median`` does, which the trained models' normalisation was built on.)
    """
    middle = (values.shape[1] - 1) // 2
    return np.partition(values, middle, axis=1)[:, middle]


def robust_noise(crops: Any) -> np.ndarray:
    """Estimate each crop's pixel noise from the MAD of horizontal pixel differences.

    Differences of neighbouring pixels cancel smooth background structure, and the median
    ignores the few pixels that hold a spot, so the estimate reflects the noise only.

    Parameters
    ----------
    crops : array of shape (B, H, W)

    Returns
    -------
    ndarray of shape (B,), float32
        The noise standard deviation of each crop (0 for a constant crop).
    """
    crops = np.asarray(crops, dtype=np.float32)
    rows = crops[:, ::2]  # every other row: half the sorting, and plenty of pixels
    diffs = (rows[:, :, 1:] - rows[:, :, :-1]).reshape(len(crops), -1)
    if diffs.shape[1] == 0:
        return np.zeros(len(crops), dtype=np.float32)
    centre = _lower_median(diffs)
    mad = _lower_median(np.abs(diffs - centre[:, None]))
    return (mad * np.float32(_MAD_TO_SIGMA / np.sqrt(2.0))).astype(np.float32)


def normalise_crops(crops: Any, noise: Any = None) -> np.ndarray:
    """Put raw crops of any brightness, gain and offset on one scale.

    Each crop has its median background subtracted and is divided by a noise level: its
    own (:func:`robust_noise`), or with ``noise`` the noise of the image it comes from, so
    that its brightness is kept relative to that image. The result, in noise sigmas, is
    compressed with ``asinh`` so that hot pixels and cosmic rays hundreds of sigmas bright
    do not dominate. The output is invariant to any positive gain and offset applied to
    the raw crop (and, with ``noise``, the same gain applied to the noise).

    Crops of several channels are normalised per crop and per channel: each channel of
    each crop on its own scale.

    Parameters
    ----------
    crops : array of shape (B, H, W) or (B, C, H, W)
        Raw intensities (any real dtype).
    noise : array of shape (B,) or (B, C), optional
        The robust noise level (> 0, in the crops' units) of the image each crop comes
        from (:func:`blobsift.detect.estimate_noise`), per crop or per crop and channel.

    Returns
    -------
    ndarray of shape (B, C, H, W), float32
        What the networks are fed (``torch.from_numpy`` makes it their input tensor); C is
        1 for (B, H, W) crops.

    Raises
    ------
    InvalidInputError
        If ``noise`` does not give one positive finite level per crop (and channel).
    """
    crops = np.asarray(crops)
    if noise is not None:
        planes = crops.reshape(len(crops), -1, *crops.shape[-2:])
        levels = check_image_noise(noise, len(crops), channels=planes.shape[1])
        batch, channels, height, width = planes.shape
        return _normalised(
            planes.reshape(batch * channels, height, width), levels.reshape(-1)
        ).reshape(batch, channels, height, width)
    if crops.ndim == 4 and crops.shape[1] != 1:
        batch, channels, height, width = crops.shape
        flat = normalise_crops(crops.reshape(batch * channels, height, width))
        return flat.reshape(batch, channels, height, width)
    if crops.ndim == 4:
        crops = crops[:, 0]
    return _normalised(crops)


def check_image_noise(noise: Any, n: int, *, channels: int = 1, name: str = "noise") -> np.ndarray:
    """Check the image noise levels of ``n`` crops; return them as (n, channels) float32.

    Parameters
    ----------
    noise : array of shape (n,) or (n, channels)
        One positive finite level per crop (for every channel), or per crop and channel.
    n : int
        The number of crops.
    channels : int
        Channels of each crop.
    name : str
        The argument's name in messages.

    Raises
    ------
    InvalidInputError
        Naming the shape expected and found, or the first level that is not positive.
    """
    try:
        levels = np.asarray(noise, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"{name} must be numbers: the noise level of each crop's image; got "
            f"{type(noise).__name__}."
        ) from None
    if levels.ndim == 1 and levels.shape == (n,):
        levels = np.repeat(levels[:, None], channels, axis=1)
    if levels.shape != (n, channels):
        raise InvalidInputError(
            f"{name} must hold the image noise level of each of the {n} crops: shape ({n},)"
            f"{'' if channels == 1 else f' or ({n}, {channels})'}; got shape {levels.shape}."
        )
    bad = ~(np.isfinite(levels) & (levels > 0))
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InvalidInputError(
            f"{name} must be positive and finite (the image's pixel noise); got "
            f"{levels[index]!r} at {index[0] if channels == 1 else index}."
        )
    return levels.astype(np.float32)


def _normalised(crops: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
    """Normalise (B, H, W) crops by their own noise, or by ``noise`` (B,): (B, 1, H, W)."""
    crops = crops.astype(np.float32, copy=False)
    if crops.shape[0] == 0:
        empty: np.ndarray = crops[:, None].copy()
        return empty
    n = len(crops)
    # The median of every other pixel in each direction: a quarter of the sorting.
    background = _lower_median(crops[:, ::2, ::2].reshape(n, -1))
    if noise is None:
        noise = robust_noise(crops)
        # A constant (or nearly noise-free) crop: fall back to the spread of its values,
        # then 1. The spread is computed for those crops only (most crops have noise).
        weak = np.flatnonzero(~(noise > np.float32(1e-6) * (np.abs(background) + 1)))
        if weak.size:
            flat = crops[weak].reshape(weak.size, -1)
            noise[weak] = flat.std(axis=1, ddof=1) if flat.shape[1] > 1 else np.nan
        noise = np.where(noise > 1e-12, noise, np.float32(1.0)).astype(np.float32)
    scale = np.float32(_ASINH_SCALE)
    normalised = np.empty((n, 1, *crops.shape[1:]), dtype=np.float32)
    plane = normalised[:, 0]
    np.subtract(crops, background[:, None, None], out=plane)
    plane /= (scale * noise)[:, None, None]
    _arcsinh_inplace(plane)
    plane *= scale
    return normalised


_ASINH_LARGE = np.float32(1e18)  # beyond, x * x overflows float32: asinh(x) = log(2x)


def _arcsinh_inplace(x: np.ndarray) -> None:
    """Overwrite the float32 array ``x`` with ``arcsinh(x)``, about 3x faster than numpy's.

    ``log(|x| + sqrt(x^2 + 1))`` with the sign of ``x``: vectorised ``log`` and ``sqrt``
    beat ``np.arcsinh``'s scalar loop, and one scratch buffer serves every step. It
    agrees with ``np.arcsinh`` to about 2e-7 (absolute, near 0) and 1e-7 (relative).
    """
    magnitude = np.abs(x)
    huge = magnitude > _ASINH_LARGE
    any_huge = bool(huge.any())
    if any_huge:
        np.minimum(magnitude, _ASINH_LARGE, out=magnitude)
    work = np.multiply(magnitude, magnitude)
    work += 1
    np.sqrt(work, out=work)
    work += magnitude
    np.log(work, out=work)
    if any_huge:
        work[huge] = np.log(np.abs(x[huge]), dtype=np.float32) + np.float32(np.log(2.0))
    np.copysign(work, x, out=x)
