"""Peaks of the scale space: window maxima across scales, the blob test, sub-pixel vertices."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import cKDTree

from blobsift.detect._plan import _Plan, _TileContext

_EDGE_RATIO = 5.0  # largest ratio of principal curvatures of a blob (ridges have more)
_DOMINATED_SCORE = 0.4  # score of a peak dominated by a neighbouring scale, per unit value
_SHIFT = 1.0  # pixels a peak's vertex may move when described at another scale
_CLEARANCE = 2  # pixels between a dominated peak and a scale-space maximum of another layer
#: Window maxima over at most this many points per pixel use a KD-tree over the points;
#: over more, a window maximum of the whole image (the same values, faster when dense).
SPARSE_SHARE = 0.003


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


def _window_max_at(
    points: tuple[np.ndarray, np.ndarray],
    values: np.ndarray,
    radius: int,
    shape: tuple[int, int],
    window_max: Callable[[np.ndarray, int], np.ndarray],
    queries: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Largest value of the points in the ``(2 radius + 1)``-square window around each query.

    ``points`` and ``queries`` (default: the points) are (rows, cols) of pixels of an array
    of ``shape``; queries are clipped into it. -inf where no point is in the window. Few
    points: a KD-tree over them (Chebyshev distance); many: the window maximum of an image
    of their values.
    """
    height, width = shape
    values = values.astype(np.float32)
    if queries is not None:
        queries = (np.clip(queries[0], 0, height - 1), np.clip(queries[1], 0, width - 1))
    if values.size > SPARSE_SHARE * height * width:
        image = np.full(shape, -np.inf, dtype=np.float32)
        np.maximum.at(image, points, values)
        dense: np.ndarray = window_max(image, radius)[points if queries is None else queries]
        return dense
    reach = radius + 0.5  # integer pixels: within radius + 0.5 is within radius
    tree = cKDTree(np.column_stack(points))
    if queries is None:
        best = values.copy()
        pairs = tree.query_pairs(reach, p=np.inf, output_type="ndarray")
        np.maximum.at(best, pairs[:, 0], values[pairs[:, 1]])
        np.maximum.at(best, pairs[:, 1], values[pairs[:, 0]])
        return best
    best = np.full(queries[0].size, -np.inf, dtype=np.float32)
    if values.size and queries[0].size:
        pairs = tree.sparse_distance_matrix(
            cKDTree(np.column_stack(queries)), reach, p=np.inf, output_type="ndarray"
        )
        np.maximum.at(best, pairs["j"], values[pairs["i"]])
    return best


def _scale_space_peaks(
    layers: list[np.ndarray], plan: _Plan, settings: _TileContext
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Peaks of the scale space above the threshold: (row, col, layer, score).

    ``row``/``col`` are pixels at the layer's own level. A peak is the maximum of the window
    of radius ``min_distance`` (in full-resolution pixels, at least one pixel of its level)
    around it in its own layer, passes the Hessian blob test, and is the first pixel of a
    plateau in raster order. Its ``score`` is its ``value`` if it is also the maximum of
    that window in the neighbouring layers (finer and coarser scale, at the nearest pixel of
    their level): a maximum of the scale space. A peak dominated by a neighbouring scale (a
    spot in a dense cluster, or on a brighter structure, whose blend peaks at a coarser
    scale) is kept with ``_DOMINATED_SCORE`` times its value, if it is not below the coarser
    layer at its own pixel and no maximum of the scale space of a neighbouring layer lies
    within ``_CLEARANCE`` pixels (that would be the same blob seen at another scale).
    """
    n = len(layers)
    maxima: dict[int, np.ndarray] = {}

    def window_max(i: int) -> np.ndarray:
        if i not in maxima:
            radius = _radius_at(plan.levels[i], settings.min_distance)
            maxima[i] = settings.window_max(layers[i], radius)
        return maxima[i]

    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for i in range(n):
        maxima.pop(i - 2, None)  # bounded memory: at most three window maxima at a time
        layer, level = layers[i], plan.levels[i]
        flat = layer.ravel()
        above = np.flatnonzero(flat > settings.threshold)
        values = flat[above]
        keep = values >= window_max(i).ravel()[above]
        above, values = above[keep], values[keep]
        rows, cols = np.divmod(above, layer.shape[1])
        maximal = np.ones(rows.size, dtype=bool)
        kept = values * _DOMINATED_SCORE > settings.threshold
        for j in (i - 1, i + 1):
            if 0 <= j < n:
                other = plan.levels[j]
                r, c = _to_level(rows, level, other), _to_level(cols, level, other)
                maximal &= values >= _gather(window_max(j), r, c)
                if j > i:
                    kept &= values >= _gather(layers[j], r, c)
        keep = maximal | kept
        rows, cols, values, maximal = rows[keep], cols[keep], values[keep], maximal[keep]
        keep = _is_blob_like(layer, rows, cols)
        radius = _radius_at(level, settings.min_distance)
        for dr in range(-radius, 1):  # plateaus keep their first pixel in raster order
            for dc in range(-radius, radius + 1 if dr < 0 else 0):
                keep &= values != _neighbour_values(layer, rows, cols, dr, dc)
        found.append((rows[keep], cols[keep], values[keep], maximal[keep]))
    maxima.clear()

    # Dominated peaks next to a scale-space maximum of a neighbouring layer are dropped.
    maximum_pixels = [(rows[maximal], cols[maximal]) for rows, cols, _, maximal in found]
    parts: list[tuple[np.ndarray, ...]] = []
    for i, (rows, cols, values, maximal) in enumerate(found):
        keep = maximal.copy()
        alone = ~maximal
        for j in (i - 1, i + 1):
            if 0 <= j < n and alone.any():
                level, other = plan.levels[i], plan.levels[j]
                r, c = _to_level(rows[alone], level, other), _to_level(cols[alone], level, other)
                marks = np.ones(maximum_pixels[j][0].size, dtype=np.float32)
                radius = _radius_at(other, _CLEARANCE)
                near = _window_max_at(
                    maximum_pixels[j], marks, radius, layers[j].shape, settings.window_max, (r, c)
                )
                alone[alone] = near < 0  # no maximum of layer j in the window
        keep |= alone
        score = np.where(maximal, values, values * _DOMINATED_SCORE)[keep]
        parts.append((rows[keep], cols[keep], np.full(score.size, i), score.astype(np.float64)))
    rows, cols, layer_index, score = (np.concatenate(p) for p in zip(*parts, strict=True))
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


def _vertices(
    layers: list[np.ndarray],
    plan: _Plan,
    rows: np.ndarray,
    cols: np.ndarray,
    layer_index: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Refined (row, col, sigma, pixel row, pixel col) of peaks at pixels of their layer.

    Each peak is refined in its layer ``layer_index``, around its pixel (``rows``/``cols``
    at that layer's level): the position is the vertex of a parabola through the 3 x 3
    neighbourhood (returned at full resolution, with the pixel); ``sigma`` the vertex of
    a parabola across the neighbouring layers, sampled bilinearly at that position.
    """
    n = len(layers)
    size = 2 ** np.asarray(plan.levels, dtype=np.int64)[layer_index]
    row = np.zeros(rows.size)
    col = np.zeros(rows.size)
    value = np.zeros(rows.size)
    lower = np.full(rows.size, np.nan)
    upper = np.full(rows.size, np.nan)
    for i in np.unique(layer_index).tolist():
        here = layer_index == i
        layer, r, c = layers[i], rows[here], cols[here]
        v = layer[r, c].astype(np.float64)
        value[here] = v
        d_row = _parabola_offset(
            _neighbour_values(layer, r, c, -1, 0).astype(np.float64),
            v,
            _neighbour_values(layer, r, c, 1, 0).astype(np.float64),
        )
        d_col = _parabola_offset(
            _neighbour_values(layer, r, c, 0, -1).astype(np.float64),
            v,
            _neighbour_values(layer, r, c, 0, 1).astype(np.float64),
        )
        row[here], col[here] = (r + d_row) * size[here], (c + d_col) * size[here]
        for j, target in ((i - 1, lower), (i + 1, upper)):
            if 0 <= j < n:
                other = 2 ** plan.levels[j]
                target[here] = _sample(layers[j], row[here] / other, col[here] / other)
    sigma = plan.sigmas[layer_index] * plan.step ** _parabola_offset(lower, value, upper)
    return row, col, sigma, rows * size, cols * size


def _brightest_near(
    layer: np.ndarray, level: int, pixel_row: np.ndarray, pixel_col: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest value near full-resolution pixels: (value, row, col) at ``level``.

    Among the (up to 2 x 2) pixels of ``level`` nearest to each full-resolution pixel.
    """
    size = 2**level
    height, width = layer.shape
    best = np.full(pixel_row.size, -np.inf)
    best_row = np.zeros(pixel_row.size, dtype=np.int64)
    best_col = np.zeros(pixel_row.size, dtype=np.int64)
    row_options = (pixel_row // size, -(-pixel_row // size))
    col_options = (pixel_col // size, -(-pixel_col // size))
    for r in row_options:
        for c in col_options:
            r, c = np.minimum(r, height - 1), np.minimum(c, width - 1)
            here = layer[r, c]
            better = here > best
            best[better], best_row[better], best_col[better] = here[better], r[better], c[better]
    return best, best_row, best_col


def _describe(
    layers: list[np.ndarray],
    plan: _Plan,
    rows: np.ndarray,
    cols: np.ndarray,
    layer_index: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Position and width of peaks at pixels of their detection layer (see :func:`_vertices`).

    ``layers`` are in units of the global noise, so that a blob's width does not depend on
    the noise and clutter around it. A peak is described in the layer with the largest value
    at its pixel (the blob's own scale), unless that layer's vertex lies more than
    ``_SHIFT`` pixels away (a larger structure there outshines the peak at that scale): then
    in its detection layer ``layer_index``.
    """
    size = 2 ** np.asarray(plan.levels, dtype=np.int64)[layer_index]
    pixel_row, pixel_col = rows * size, cols * size
    best = np.zeros(rows.size, dtype=np.int64)
    best_value = np.full(rows.size, -np.inf)
    base_row, base_col = np.zeros_like(rows), np.zeros_like(cols)
    for i, layer in enumerate(layers):
        value, r, c = _brightest_near(layer, plan.levels[i], pixel_row, pixel_col)
        better = value > best_value
        best[better], best_value[better] = i, value[better]
        base_row[better], base_col[better] = r[better], c[better]
    described = _vertices(layers, plan, base_row, base_col, best)
    moved = np.hypot(described[0] - pixel_row, described[1] - pixel_col) > _SHIFT
    if moved.any():
        own = _vertices(layers, plan, rows[moved], cols[moved], layer_index[moved])
        for values, replacement in zip(described, own, strict=True):
            values[moved] = replacement
    return described
