"""Local statistics on a grid of blocks: the background and the spread of a scale layer.

Both are robust and cheap. One mean per block of pixels, the median over the 5 x 5
neighbouring blocks (so a spot, a dense cluster of spots or a hot pixel moves no value), and
bilinear interpolation between block centres. The grid starts at pixel (0, 0) of what it is
given, so tiles whose origins are multiples of the block size see the same grid as the
whole image.

* **Background**: blocks of 3 x 3 pixels, so the median spans 15 x 15 pixels: structures
  larger than spots (nuclei, cytoplasm, tissue edges, the flanks of saturated bodies) are
  followed, spots are not. The detector subtracts it before filtering.
* **Spread**: the noise of a scale layer (already in units of the image's global noise),
  from the mean absolute value in blocks of 8 x 8 full-resolution pixels, so on a bright or
  textured structure (a nucleus) scores are relative to the noise and clutter there, not to
  the image's average. It never falls below 1, the global estimate: dim regions do not get
  their noise peaks promoted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

BACKGROUND_BLOCK = 3  # pixels per block side of the background grid
SPREAD_BLOCK = 8  # full-resolution pixels per block side of the spread grid
_MEDIAN_BLOCKS = 5  # the median runs over this many blocks square
_MIN_SPREAD = 1.0  # the local spread never falls below the global noise
_ABS_TO_SIGMA = math.sqrt(math.pi / 2)  # sigma / mean |x| of a Gaussian


class _Filters(Protocol):
    """The two filters the maps need (a :class:`~blobsift.detect._plan._TileContext`)."""

    @property
    def median(self) -> Callable[[np.ndarray], np.ndarray]: ...

    @property
    def upsample(self) -> Callable[[np.ndarray, int], np.ndarray]: ...


def _reach(block: int) -> int:
    """Pixels beyond which a value of the map no longer depends on the input (one side)."""
    return (_MEDIAN_BLOCKS // 2 + 2) * block  # median radius, interpolation, partial block


#: Pixels of context the background and the spread need (each, one side).
BACKGROUND_REACH = _reach(BACKGROUND_BLOCK)
SPREAD_REACH = _reach(SPREAD_BLOCK)


def _block_means(values: np.ndarray, block: int) -> np.ndarray:
    """Mean of each ``block`` x ``block`` block (those at the far edges may be partial).

    By strided slices: ``block`` sums of every ``block``-th row, then of every
    ``block``-th column of those (a few passes over memory, no small reductions).
    """
    height, width = values.shape
    rows, cols = -(-height // block), -(-width // block)
    across = np.zeros((rows, width), dtype=np.float32)
    for i in range(min(block, height)):
        part = values[i::block]
        across[: part.shape[0]] += part
    sums = np.zeros((rows, cols), dtype=np.float32)
    for j in range(min(block, width)):
        part = across[:, j::block]
        sums[:, : part.shape[1]] += part
    heights = np.minimum(block, height - block * np.arange(rows))
    widths = np.minimum(block, width - block * np.arange(cols))
    sums /= np.outer(heights, widths).astype(np.float32)
    return sums


def _interpolate(
    grid: np.ndarray, block: int, shape: tuple[int, ...], upsample: Callable[..., np.ndarray]
) -> np.ndarray:
    """Block values interpolated between block centres, cut to ``shape`` pixels."""
    interpolated: np.ndarray = upsample(grid, block)[: shape[0], : shape[1]]
    return interpolated


def local_background(tile: np.ndarray, filters: _Filters) -> np.ndarray:
    """Background of a float32 tile: the 15-pixel median of 3 x 3 block means."""
    grid = filters.median(_block_means(tile, BACKGROUND_BLOCK))
    return _interpolate(grid, BACKGROUND_BLOCK, tile.shape, filters.upsample)


def local_spread(layer: np.ndarray, block: int, filters: _Filters) -> np.ndarray:
    """Noise of a float32 scale layer from blocks of ``block`` of its pixels; at least 1."""
    grid = _block_means(np.abs(layer), block)
    grid *= np.float32(_ABS_TO_SIGMA)
    grid = filters.median(grid)
    np.maximum(grid, np.float32(_MIN_SPREAD), out=grid)
    return _interpolate(grid, block, layer.shape, filters.upsample)
