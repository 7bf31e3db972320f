"""Robust estimate of an image's background level and pixel noise."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError

__all__ = ["estimate_noise"]

_NOISE_PATCH = 32
_NOISE_GRID = 16


def _patch_origins(length: int) -> np.ndarray:
    count = min(_NOISE_GRID, max(1, length // _NOISE_PATCH))
    return np.linspace(0, max(length - _NOISE_PATCH, 0), count).round().astype(np.int64)


def _read_float(image: Any, rows: slice, cols: slice) -> np.ndarray:
    return np.asarray(image[rows, cols])


def _robust_sigma(differences: np.ndarray) -> float:
    """Noise sigma from differences of two independent pixels (MAD, then mean-abs fallback)."""
    if differences.size == 0:
        return 0.0
    centre = np.median(differences)
    deviation = np.abs(differences - centre)
    sigma = 1.4826 * float(np.median(deviation)) / math.sqrt(2.0)
    if sigma == 0.0:  # quantised or mostly flat images: fall back to the mean deviation
        sigma = math.sqrt(math.pi / 2) * float(deviation.mean()) / math.sqrt(2.0)
    return sigma


def _pair_differences(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block, dtype=np.float64)
    width = block.shape[1] - block.shape[1] % 2
    differences = (block[:, 1:width:2] - block[:, 0:width:2]).ravel()
    finite: np.ndarray = differences[np.isfinite(differences)]
    return finite


def estimate_noise(image: Any) -> tuple[float, float]:
    """Estimate an image's background level and pixel noise robustly.

    The noise is the median absolute deviation of differences between horizontally
    neighbouring pixels, read from a fixed grid of up to 16 x 16 patches of 32 x 32 pixels,
    so spots, hot pixels and smooth background barely move it and a lazy (tiled) array is
    read only in those patches. NaN and inf pixels are ignored.

    Parameters
    ----------
    image : (H, W) array-like
        The image (any real dtype; numpy, memory-mapped or lazy array with slicing).

    Returns
    -------
    background : float
        Median pixel value of the patches (NaN if no pixel is finite).
    noise : float
        Standard deviation of the pixel noise; 0.0 for a constant image.
    """
    shape = tuple(int(s) for s in image.shape)
    if len(shape) != 2:
        raise InvalidInputError(f"image must be 2D (H, W); got shape {shape}.")
    height, width = shape
    sampled = height * width > (_NOISE_GRID * _NOISE_PATCH) ** 2
    if not sampled:
        patches = [np.asarray(image[:, :], dtype=np.float64)]
    else:
        patches = [
            np.asarray(
                _read_float(image, slice(r, r + _NOISE_PATCH), slice(c, c + _NOISE_PATCH)),
                dtype=np.float64,
            )
            for r in _patch_origins(height)
            for c in _patch_origins(width)
        ]
    values = np.concatenate([p.ravel() for p in patches])
    values = values[np.isfinite(values)]
    background = float(np.median(values)) if values.size else math.nan
    noise = _robust_sigma(np.concatenate([_pair_differences(p) for p in patches]))
    if noise == 0.0 and isinstance(image, np.ndarray) and sampled:
        # The patches are flat (e.g. a noiseless synthetic background): use every pixel.
        noise = _robust_sigma(_pair_differences(image))
    return background, noise
