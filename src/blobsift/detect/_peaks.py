"""Peaks of the scale space: window maxima across scales, the blob test, sub-pixel vertices."""

from __future__ import annotations

import numpy as np

from blobsift.detect._plan import _Plan, _TileContext

_EDGE_RATIO = 5.0  # largest ratio of principal curvatures of a blob (ridges have more)


def _neighbour_values(
    values: np.ndarray, rows: np.ndarray, cols: np.ndarray, dr: int, dc: int
) -> np.ndarray:
    """Values at (rows + dr, cols + dc); -inf outside the array."""
    height, width = values.shape
    r, c = rows + dr, cols + dc
    inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
    out = np.full(rows.shape, -np.inf, dtype=values.dtype)
    out[inside] = values[r[inside], c[inside]]
    return out


def _is_blob_like(layer: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Hessian test at peaks: reject ridges and edges (tracks, rings), keep round blobs.

    A peak passes when both principal curvatures are negative and their ratio is below
    ``_EDGE_RATIO`` (the test of Lowe's SIFT detector).
    """
    height, width = layer.shape
    up, down = np.maximum(rows - 1, 0), np.minimum(rows + 1, height - 1)
    left, right = np.maximum(cols - 1, 0), np.minimum(cols + 1, width - 1)
    centre = layer[rows, cols].astype(np.float64)
    d_rr = layer[up, cols] + layer[down, cols] - 2 * centre
    d_cc = layer[rows, left] + layer[rows, right] - 2 * centre
    d_rc = 0.25 * (
        layer[down, right].astype(np.float64)
        - layer[down, left]
        - layer[up, right]
        + layer[up, left]
    )
    trace = d_rr + d_cc
    determinant = d_rr * d_cc - d_rc**2
    ratio = _EDGE_RATIO
    blob_like: np.ndarray = (determinant > 0) & (
        trace * trace * ratio < (ratio + 1) ** 2 * determinant
    )
    return blob_like


def _radius_at(level: int, min_distance: int) -> int:
    return max(1, -(-min_distance // (1 << level)))  # levels are >= 0


def _gather(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """values[rows, cols] with indices clipped into the array."""
    height, width = values.shape
    gathered: np.ndarray = values[np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)]
    return gathered


def _to_level(coordinate: np.ndarray, source: int, target: int) -> np.ndarray:
    """Nearest pixel at level ``target`` of a pixel at level ``source``."""
    if target <= source:
        finer: np.ndarray = coordinate * 2 ** (source - target)
        return finer
    factor = 2 ** (target - source)
    coarser: np.ndarray = (coordinate + factor // 2) // factor
    return coarser


def _scale_space_peaks(
    layers: list[np.ndarray], plan: _Plan, settings: _TileContext
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Peaks of the scale space above the threshold: (row, col, layer, score).

    ``row``/``col`` are pixels at the layer's own level. A peak is the maximum of the window
    of radius ``min_distance`` (in full-resolution pixels, at least one pixel of its level)
    around it in its own layer and in the neighbouring layers (finer and coarser scale, at
    the nearest pixel of their level), passes the Hessian blob test, and is the first pixel
    of a plateau in raster order.
    """
    n = len(layers)
    maxima: dict[int, np.ndarray] = {}

    def window_max(i: int) -> np.ndarray:
        if i not in maxima:
            radius = _radius_at(plan.levels[i], settings.min_distance)
            maxima[i] = settings.window_max(layers[i], radius)
        return maxima[i]

    found: list[tuple[np.ndarray, ...]] = []
    for i in range(n):
        maxima.pop(i - 2, None)  # bounded memory: at most three window maxima at a time
        layer, level = layers[i], plan.levels[i]
        width = layer.shape[1]
        flat = layer.ravel()
        above = np.flatnonzero(flat > settings.threshold)
        if above.size == 0:
            continue
        values = flat[above]
        keep = values >= window_max(i).ravel()[above]
        above, values = above[keep], values[keep]
        rows, cols = np.divmod(above, width)
        keep = np.ones(rows.size, dtype=bool)
        for j in (i - 1, i + 1):
            if 0 <= j < n:
                other = plan.levels[j]
                r, c = _to_level(rows, level, other), _to_level(cols, level, other)
                keep &= values >= _gather(window_max(j), r, c)
        rows, cols, values = rows[keep], cols[keep], values[keep]
        keep = _is_blob_like(layer, rows, cols)
        radius = _radius_at(level, settings.min_distance)
        for dr in range(-radius, 1):  # plateaus keep their first pixel in raster order
            for dc in range(-radius, radius + 1 if dr < 0 else 0):
                keep &= values != _neighbour_values(layer, rows, cols, dr, dc)
        count = int(keep.sum())
        found.append((rows[keep], cols[keep], np.full(count, i), values[keep].astype(np.float64)))
    if not found:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty, np.empty(0)
    rows, cols, layer_index, score = (np.concatenate(parts) for parts in zip(*found, strict=True))
    return rows, cols, layer_index, score


def _sample(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``values`` at fractional pixels (clipped to the array)."""
    height, width = values.shape
    rows = np.clip(rows, 0, height - 1)
    cols = np.clip(cols, 0, width - 1)
    r0 = np.minimum(np.floor(rows).astype(np.int64), max(height - 2, 0))
    c0 = np.minimum(np.floor(cols).astype(np.int64), max(width - 2, 0))
    r1, c1 = np.minimum(r0 + 1, height - 1), np.minimum(c0 + 1, width - 1)
    fr, fc = rows - r0, cols - c0
    top = values[r0, c0] * (1 - fc) + values[r0, c1] * fc
    bottom = values[r1, c0] * (1 - fc) + values[r1, c1] * fc
    sampled: np.ndarray = top * (1 - fr) + bottom * fr
    return sampled


def _parabola_offset(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Vertex of the parabola through (-1, left), (0, centre), (1, right), in [-0.5, 0.5]."""
    curvature = left - 2 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    offset = np.where(np.isfinite(left) & np.isfinite(right), offset, 0.0)
    return np.clip(offset, -0.5, 0.5)
