"""One tile of an image: scale space, peaks and refinement; and the tiling of an image."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from blobsift.detect._local import SPREAD_BLOCK, local_background, local_spread
from blobsift.detect._peaks import _describe, _scale_space_peaks, _window_max_at
from blobsift.detect._plan import _TileContext

#: Default tile side (pixels) for images processed tile by tile, and the smallest allowed.
DEFAULT_TILE = 2048
MIN_TILE = 16
_MIN_BAND = 256  # rows per band below which threads are not worth the halo


@dataclass
class _TileResult:
    row: np.ndarray
    col: np.ndarray
    sigma: np.ndarray
    score: np.ndarray
    pixel_row: np.ndarray  # integer pixel of the peak (ties in score sort by it)
    pixel_col: np.ndarray
    peaks: int  # peaks above threshold in the tile's core, before the budget
    non_finite: int  # non-finite pixels in the tile's core


def _as_float32(block: np.ndarray, settings: _TileContext) -> np.ndarray:
    """Convert a tile to float32 without overflow, subtracting the background if useful."""
    block = np.asarray(block)
    if settings.subtract_background and np.isfinite(settings.background):
        # float64 arithmetic keeps uint32/int64/float64 precision before the cast.
        return np.ascontiguousarray(
            np.subtract(block, settings.background, dtype=np.float64), dtype=np.float32
        )
    return np.ascontiguousarray(block, dtype=np.float32)


#: Candidates described within this many pixels (Chebyshev) of a stronger one are dropped.
SAME_BLOB = 2


def _detect_tile(
    image: Any, core: tuple[int, int, int, int], settings: _TileContext
) -> _TileResult:
    """Detect peaks whose pixel lies in ``core`` = (r0, r1, c0, c1) of the full image."""
    plan = settings.plan
    height, width = settings.shape
    r0, r1, c0, c1 = core
    e0, e1 = max(r0 - plan.halo, 0), min(r1 + plan.halo, height)
    f0, f1 = max(c0 - plan.halo, 0), min(c1 + plan.halo, width)
    tile = _as_float32(image[e0:e1, f0:f1], settings)

    non_finite_mask, non_finite = None, 0
    # A finite sum proves every pixel finite (cheap); otherwise look pixel by pixel.
    with np.errstate(invalid="ignore", over="ignore"):
        total_sum = tile.sum(dtype=np.float32)
    if not np.isfinite(total_sum):
        finite = np.isfinite(tile)
        if not finite.all():
            non_finite_mask = ~finite
            if not tile.flags.writeable or np.shares_memory(tile, image):
                tile = tile.copy()
            fill = 0.0 if settings.subtract_background else settings.background
            tile[non_finite_mask] = fill if np.isfinite(fill) else 0.0
            non_finite = int(non_finite_mask[r0 - e0 : r1 - e0, c0 - f0 : c1 - f0].sum())

    background = local_background(tile, settings)
    tile = np.subtract(tile, background, out=background)  # a new array: the image is kept

    n = plan.sigmas.size
    scale = 1.0 / settings.noise
    unscaled: list[np.ndarray] = []  # in units of the global noise: for the description
    layers: list[np.ndarray] = []  # in units of the local spread: for the detection
    current = np.empty_like(tile)
    settings.blur(tile, plan.increments[0], current)
    del tile
    if plan.decimate[0]:
        current = np.ascontiguousarray(current[::2, ::2])
    for i in range(n):
        following = np.empty_like(current)
        settings.blur(current, plan.increments[i + 1], following)
        layer = np.empty_like(current)
        settings.difference(current, following, plan.inv_norms[i] * scale, layer)
        unscaled.append(layer)
        block = SPREAD_BLOCK // 2 ** plan.levels[i]
        spread = local_spread(layer, block, settings)
        layers.append(np.divide(layer, spread, out=spread))  # in the spread map: no new array
        current = following
        if plan.decimate[i + 1]:
            current = np.ascontiguousarray(current[::2, ::2])
    del current

    rows, cols, layer_index, score = _scale_space_peaks(layers, plan, settings)
    del layers
    row, col, sigma, pixel_row, pixel_col = _describe(unscaled, plan, rows, cols, layer_index)
    keep = np.ones(score.size, dtype=bool)
    if non_finite_mask is not None:
        factor = 2 ** np.asarray(plan.levels, dtype=np.int64)[layer_index]
        keep &= ~non_finite_mask[rows * factor, cols * factor]
        keep &= ~non_finite_mask[pixel_row, pixel_col]
    keep &= _strongest_nearby(pixel_row, pixel_col, score, (e1 - e0, f1 - f0), settings)
    # The tile's own candidates: those whose described pixel lies in its core.
    row, col, pixel_row, pixel_col = row + e0, col + f0, pixel_row + e0, pixel_col + f0
    keep &= (pixel_row >= r0) & (pixel_row < r1) & (pixel_col >= c0) & (pixel_col < c1)
    b = settings.border
    if b > 0:
        keep &= (pixel_row >= b) & (pixel_row < height - b) & (pixel_col >= b)
        keep &= pixel_col < width - b
    # A pixel found in several layers (or by several peaks) counts once, at its strongest.
    order = np.flatnonzero(keep)
    order = order[np.lexsort((layer_index[order], -score[order]))]
    flat_pixel = pixel_row[order] * width + pixel_col[order]
    _, first = np.unique(flat_pixel, return_index=True)
    chosen = order[np.sort(first)]
    total = int(chosen.size)
    if total > settings.max_candidates:
        chosen = chosen[
            np.lexsort((pixel_col[chosen], pixel_row[chosen], -score[chosen]))[
                : settings.max_candidates
            ]
        ]
    return _TileResult(
        row=row[chosen],
        col=col[chosen],
        pixel_row=pixel_row[chosen],
        pixel_col=pixel_col[chosen],
        sigma=sigma[chosen],
        score=score[chosen],
        peaks=total,
        non_finite=non_finite,
    )


def _strongest_nearby(
    pixel_row: np.ndarray,
    pixel_col: np.ndarray,
    score: np.ndarray,
    shape: tuple[int, int],
    settings: _TileContext,
) -> np.ndarray:
    """Which candidates score highest within ``SAME_BLOB`` pixels of their described pixel.

    One blob seen at two scales (or a dominated peak beside its maximum) is described at
    pixels a step or two apart; only the stronger is a candidate. The test looks at the
    candidates around each one, not at which of them survive, so it is the same in every
    tile whose halo covers them.
    """
    score = score.astype(np.float32)
    nearby = _window_max_at((pixel_row, pixel_col), score, SAME_BLOB, shape, settings.window_max)
    keep: np.ndarray = score >= nearby
    return keep


def _tiles(
    shape: tuple[int, int], tile_size: int | None, n_threads: int, align: int
) -> list[tuple[int, int, int, int]]:
    """Tile cores (r0, r1, c0, c1); origins are multiples of ``align`` (pyramid grid)."""
    height, width = shape
    size = DEFAULT_TILE if tile_size is None else tile_size
    band = min(size, height)
    if tile_size is None and n_threads > 1:
        # Enough bands to keep every thread busy, but not so thin that halos dominate.
        band = min(band, max(_MIN_BAND, math.ceil(height / n_threads)))
    band = -(-band // align) * align
    across = -(-min(size, width) // align) * align
    row_edges = [*range(0, height, band), height]
    col_edges = [*range(0, width, across), width]
    return [
        (row_edges[i], row_edges[i + 1], col_edges[j], col_edges[j + 1])
        for i in range(len(row_edges) - 1)
        for j in range(len(col_edges) - 1)
    ]
