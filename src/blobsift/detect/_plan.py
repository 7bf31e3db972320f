"""The plan of a detection: the scale-space kernels and constants shared by every tile."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from blobsift.detect._local import BACKGROUND_BLOCK, BACKGROUND_REACH, SPREAD_BLOCK, SPREAD_REACH

_TRUNCATE = 2.5  # Gaussian kernels reach this many sigmas
_MAX_SCALE_STEP = 1.75  # largest ratio between neighbouring blob widths
_DECIMATE_AT = 1.0  # halve the resolution when the blur reaches this many new pixels
_MAX_LEVEL = 1  # coarsest pyramid level (pixel size 2**level)


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(_TRUNCATE * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    normalised: np.ndarray = kernel / kernel.sum()
    return normalised


def _centre_pad(kernel: np.ndarray, length: int) -> np.ndarray:
    padded = np.zeros(length)
    start = (length - kernel.size) // 2
    padded[start : start + kernel.size] = kernel
    return padded


def _dog_norm(inner: np.ndarray, outer: np.ndarray) -> float:
    """L2 norm of the separable-difference kernel ``inner x inner - outer x outer``."""
    length = max(inner.size, outer.size)
    a, b = _centre_pad(inner, length), _centre_pad(outer, length)
    squared = (a @ a) ** 2 + (b @ b) ** 2 - 2 * (a @ b) ** 2
    return float(np.sqrt(max(squared, 0.0)))


def _matched_ratio(step: float) -> float:
    """Ratio of the inner blur width to the blob width that maximises the DoG's SNR.

    For a Gaussian blob of width ``s`` filtered by ``G(u s) - G(step u s)`` in white noise,
    the SNR is proportional to ``u (1 / (1 + u^2) - 1 / (1 + step^2 u^2))``.
    """
    u = np.linspace(0.2, 4.0, 3801)
    snr = u * (1 / (1 + u**2) - 1 / (1 + (step * u) ** 2))
    return float(u[np.argmax(snr)])


@dataclass(frozen=True)
class _Plan:
    sigmas: np.ndarray  # (n,) blob width of each DoG layer
    step: float  # ratio between neighbouring blob widths
    increments: tuple[np.ndarray, ...]  # (n + 1,) float32 kernels, each blurs the previous
    decimate: tuple[bool, ...]  # (n + 1,) halve the resolution after blur j
    levels: tuple[int, ...]  # (n,) pyramid level of each layer (pixel size 2**level)
    inv_norms: np.ndarray  # (n,) 1 / L2 norm of each DoG kernel
    halo: int  # pixels of context a tile needs on each side (a multiple of ``align``)
    align: int  # tile origins are multiples of this (the pyramid's and the block grids')


def _upsample(kernel: np.ndarray, factor: int) -> np.ndarray:
    """The full-resolution kernel of a kernel applied at pixel size ``factor``."""
    if factor == 1:
        return kernel
    out = np.zeros((kernel.size - 1) * factor + 1)
    out[::factor] = kernel
    return out


def _make_plan(sigma_min: float, sigma_max: float, min_distance: int) -> _Plan:
    if sigma_max / sigma_min > 1.0 + 1e-9:
        octaves = math.log(sigma_max / sigma_min) / math.log(_MAX_SCALE_STEP)
        n = max(2, math.ceil(octaves - 0.05) + 1)
        step = (sigma_max / sigma_min) ** (1.0 / (n - 1))
    else:
        n, step = 1, _MAX_SCALE_STEP
    sigmas = sigma_min * step ** np.arange(n)
    ratio = _matched_ratio(step)
    widths = ratio * sigma_min * step ** np.arange(n + 1)
    increments, effective, decimate, blur_levels = [], [], [], []
    level, reach = 0, 0
    previous_width, previous_kernel = 0.0, np.ones(1)
    for j, width in enumerate(widths):
        extra = math.sqrt(width**2 - previous_width**2) / 2**level
        increment = _gaussian_kernel(extra)
        increments.append(increment.astype(np.float32))
        blur_levels.append(level)
        reach += (increment.size // 2) * 2**level
        previous_kernel = np.convolve(previous_kernel, _upsample(increment, 2**level))
        effective.append(previous_kernel)
        previous_width = width
        # Halve the resolution once the blur is wide enough that little aliases (a Gaussian
        # of 1 new pixel keeps < 1 % at the new Nyquist frequency); never after the last.
        halve = j < n and level < _MAX_LEVEL and width / 2 ** (level + 1) >= _DECIMATE_AT
        decimate.append(halve)
        level += int(halve)
    # Layer i = B_i - B_(i+1), computed at the level of B_(i+1).
    levels = tuple(blur_levels[i + 1] for i in range(n))
    norms = np.array([_dog_norm(effective[i], effective[i + 1]) for i in range(n)])
    pixel = 2 ** max(levels)  # the coarsest layer's pixel size
    align = math.lcm(pixel, BACKGROUND_BLOCK, SPREAD_BLOCK)
    # The background reaches into the blurs, whose layers reach into their spread maps.
    halo = BACKGROUND_REACH + reach + SPREAD_REACH + (min_distance + 3) * pixel
    halo = -(-halo // align) * align
    return _Plan(sigmas, step, tuple(increments), tuple(decimate), levels, 1.0 / norms, halo, align)


@dataclass(frozen=True)
class _TileContext:
    """What every tile of one image needs: the plan, the settings, the noise, the filters."""

    plan: _Plan
    threshold: float
    min_distance: int
    border: int
    max_candidates: int
    background: float
    noise: float
    shape: tuple[int, int]
    blur: Callable[[np.ndarray, np.ndarray, np.ndarray], None]
    window_max: Callable[[np.ndarray, int], np.ndarray]
    difference: Callable[[np.ndarray, np.ndarray, float, np.ndarray], None]
    median: Callable[[np.ndarray], np.ndarray]
    upsample: Callable[[np.ndarray, int], np.ndarray]
    subtract_background: bool
