"""Multi-scale blob detection with a threshold in units of the local noise.

The detector is a difference-of-Gaussians (DoG) scale space, the classical fast
approximation of the scale-normalised Laplacian of Gaussian:

1. **Noise.** One robust estimate of the pixel noise for the whole image: the median
   absolute deviation of differences between neighbouring pixels on a fixed grid of small
   patches (robust to spots, smooth background and hot pixels).
2. **Background.** A local background robust to structures larger than the spots: the
   median over 15 x 15 pixels (of 3 x 3 block means, so it costs little), subtracted
   first. It follows nuclei, cytoplasm, tissue edges and the flanks of saturated bodies, so
   spots sitting on them are measured from their own base.
3. **Scale space.** Gaussian blurs at ``n + 1`` widths (each computed from the previous one),
   and ``n`` DoG layers between neighbours, one per blob width ``sigma_min .. sigma_max``
   (spaced by at most a factor 1.75). Once a blur is 2 pixels wide the image is halved
   (every other pixel; less than 1 % aliases), so coarse layers cost a quarter: a small
   pyramid, one level deep. Each layer is divided by its own noise level (the pixel noise
   times the filter's L2 norm), then by its **local spread**: the robust noise of the layer
   in blocks of 8 x 8 pixels (a median over 5 x 5 blocks of mean absolute values, never
   below the global estimate). So the values are signal-to-noise ratios relative to the
   noise and clutter where the blob sits (a textured bright nucleus is noisier at every
   scale than the empty slide beside it): the threshold means the same thing at every
   scale and on every image, whatever its brightness, offset or gain. A DoG matched to the
   blob width has about 92 % of the signal-to-noise ratio of the ideal matched filter.
4. **Peaks.** Maxima of each layer: a pixel that is the maximum of the
   ``(2 min_distance + 1)``-square window around it (at least 3 x 3 pixels of its level),
   above ``threshold``. A peak that is also the maximum of that window in the finer and
   coarser neighbouring layers (a maximum of the scale space) scores its value. One that a
   neighbouring scale dominates (a spot in a dense cluster, or beside a larger bright
   structure) still counts, at 0.4 times its value, unless it is below the coarser layer at
   its own pixel or a maximum of the scale space of a neighbouring layer lies within 2
   pixels (the same blob at another scale). Ridges and edges (cosmic-ray tracks, rings) are
   dropped by the Hessian test of SIFT (ratio of principal curvatures below 5), plateaus
   keep their first pixel in raster order, and a pixel found several times counts once.
5. **Description.** In layers of the global noise (so that a blob's width does not depend on
   the clutter around it): the layer with the largest value at the peak (its own scale)
   gives the sub-pixel position (a parabola through the 3 x 3 neighbourhood) and ``sigma``
   (a parabola across the neighbouring layers, sampled bilinearly at the position), unless
   its vertex lies more than 1 pixel away (a larger structure outshines the peak at that
   scale): then the layer the peak was found in does.

The image is processed in overlapping tiles (in parallel threads) whose halo covers every
filter and local map and whose origins sit on the pyramid's and the block grids, so the
result does not depend on the tiling (up to float32 rounding: positions agree to 1e-3 px).
With OpenCV installed (the ``fast`` extra, ``opencv-python-headless``) the filters run
through ``cv2``; otherwise through ``scipy.ndimage`` and numpy with the same kernels and
borders (same candidates, about 4x slower).

Modules
-------
``_settings``
    :class:`DetectSettings`, the one home of the detection settings (defaults, checks,
    command-line help).
``_noise``
    :func:`estimate_noise`: background level and pixel noise (step 1).
``_local``
    The local background and the local spread of a layer on a grid of blocks (steps 2-3).
``_plan``
    The scale-space plan: kernels, pyramid levels, noise normalisation, halo (step 3).
``_filters``
    The OpenCV and scipy filter backends.
``_peaks``
    Peaks of the scale space, the Hessian blob test and sub-pixel vertices (steps 4-5).
``_tiles``
    One tile from pixels to refined peaks, and the tiling of an image.
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from blobsift.detect._filters import (
    _blur_opencv,
    _blur_scipy,
    _difference_numpy,
    _difference_opencv,
    _median_opencv,
    _median_scipy,
    _resolve_backend,
    _upsample_numpy,
    _upsample_opencv,
    _window_max_opencv,
    _window_max_scipy,
)
from blobsift.detect._noise import estimate_noise
from blobsift.detect._plan import _make_plan, _TileContext
from blobsift.detect._settings import DetectSettings, _check_int
from blobsift.detect._tiles import DEFAULT_TILE, MIN_TILE, _detect_tile, _tiles
from blobsift.exceptions import InvalidInputError
from blobsift.types import Candidates

__all__ = [
    "DEFAULT_TILE",
    "MIN_TILE",
    "CandidateBudgetWarning",
    "DetectSettings",
    "NonFinitePixelWarning",
    "detect_blobs",
    "estimate_noise",
]


class CandidateBudgetWarning(UserWarning):
    """More peaks passed the threshold than ``max_candidates``; the strongest were kept."""


class NonFinitePixelWarning(UserWarning):
    """The image holds NaN or inf pixels; they were masked (filled) before filtering."""


def _check_image(image: Any) -> tuple[Any, tuple[int, int]]:
    if not hasattr(image, "shape") or not hasattr(image, "__getitem__"):
        image = np.asarray(image)
    shape = tuple(int(s) for s in image.shape)
    dtype = np.dtype(getattr(image, "dtype", np.float64))
    if len(shape) != 2:
        raise InvalidInputError(
            f"image must be 2D (H, W); got shape {shape}. For a stack or colour image use "
            "read_image(path, channel=..., page=...) or pick one plane first."
        )
    if dtype.kind not in "biuf":
        fix = " Pass np.abs(image) or image.real." if dtype.kind == "c" else ""
        raise InvalidInputError(f"image must hold real numbers; got dtype {dtype}.{fix}")
    if dtype.kind == "b" and isinstance(image, np.ndarray):
        image = image.astype(np.uint8)
    return image, (shape[0], shape[1])


def _warn_non_finite(count: int) -> None:
    warnings.warn(
        f"image has {count} NaN/inf pixel(s); they were filled with the background level "
        "before filtering and no candidate sits on them.",
        NonFinitePixelWarning,
        stacklevel=3,
    )


def detect_blobs(
    image: Any,
    settings: DetectSettings | None = None,
    *,
    tile_size: int | None = None,
    n_threads: int | None = None,
    backend: str = "auto",
    **options: Any,
) -> Candidates:
    """Find bright blobs with a multi-scale difference of Gaussians.

    Parameters
    ----------
    image : (H, W) array-like
        The image, any real dtype (integers are converted without overflow). NaN and inf
        pixels are masked: filled with the background level before filtering, never
        reported as candidates, and announced by one :class:`NonFinitePixelWarning`. A lazy
        array with ``shape`` and 2D slicing (zarr, memory map, :func:`blobsift.io.open_image`)
        is read tile by tile.
    settings : DetectSettings, optional
        What to look for (default ``DetectSettings()``).
    tile_size : int, optional
        Largest tile side in pixels (default 2048; memory stays bounded by about 8 x the
        tile's float32 size per thread). Results do not depend on it.
    n_threads : int, optional
        Threads working on tiles; default: the CPUs available to this process.
    backend : {"auto", "opencv", "scipy"}
        Filter implementation; "auto" uses OpenCV when installed.
    **options
        Settings changed from ``settings`` by name: ``sigma_min``, ``sigma_max``,
        ``threshold``, ``min_distance``, ``border``, ``max_candidates`` (see
        :class:`DetectSettings`).

    Returns
    -------
    Candidates
        Sub-pixel ``row``, ``col``, blob ``sigma`` and ``score`` (the signal-to-noise
        ratio over the local noise; 0.4 times it for a peak dominated by a neighbouring
        scale), ordered by descending score. Empty for a constant image.

    Raises
    ------
    InvalidInputError
        If the image is not 2D real data or a parameter is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(100, 5, (128, 128)).astype(np.float32)
    >>> image[40:43, 60:63] += 200
    >>> found = detect_blobs(image, threshold=8)
    >>> (round(found.row[0]), round(found.col[0]))
    (41, 61)
    """
    chosen = (settings or DetectSettings()).with_changes(**options)
    image, shape = _check_image(image)
    threshold, min_distance = chosen.threshold, chosen.min_distance
    max_candidates = chosen.max_candidates
    if tile_size is not None:
        tile_size = _check_int(tile_size, name="tile_size", low=MIN_TILE)
    if n_threads is None:
        n_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    n_threads = _check_int(n_threads, name="n_threads", low=1)
    backend = _resolve_backend(backend)

    if shape[0] * shape[1] == 0:
        return Candidates.empty()
    background, noise = estimate_noise(image)
    if not noise > 0 or not math.isfinite(noise):
        # A constant image has nothing to find; one without finite pixels is reported.
        if not math.isfinite(background) and isinstance(image, np.ndarray):
            _warn_non_finite(int(np.count_nonzero(~np.isfinite(image))))
        return Candidates.empty()

    dtype = np.dtype(getattr(image, "dtype", np.float64))
    context = _TileContext(
        plan=_make_plan(chosen.sigma_min, chosen.sigma_max, min_distance),
        threshold=threshold,
        min_distance=min_distance,
        border=chosen.border,
        max_candidates=max_candidates,
        background=background,
        noise=noise,
        shape=shape,
        blur=_blur_opencv if backend == "opencv" else _blur_scipy,
        window_max=_window_max_opencv if backend == "opencv" else _window_max_scipy,
        difference=_difference_opencv if backend == "opencv" else _difference_numpy,
        median=_median_opencv if backend == "opencv" else _median_scipy,
        upsample=_upsample_opencv if backend == "opencv" else _upsample_numpy,
        subtract_background=dtype.itemsize > 2 and dtype != np.float32,
    )
    tiles = _tiles(shape, tile_size, n_threads, context.plan.align)
    if n_threads == 1 or len(tiles) == 1:
        results = [_detect_tile(image, core, context) for core in tiles]
    else:
        with ThreadPoolExecutor(max_workers=min(n_threads, len(tiles))) as pool:
            results = list(pool.map(lambda core: _detect_tile(image, core, context), tiles))

    non_finite = sum(r.non_finite for r in results)
    if non_finite:
        _warn_non_finite(non_finite)
    row, col, sigma, score, pixel_row, pixel_col = (
        np.concatenate([getattr(r, name) for r in results])
        for name in ("row", "col", "sigma", "score", "pixel_row", "pixel_col")
    )
    total = sum(r.peaks for r in results)
    order = np.lexsort((pixel_col, pixel_row, -score))
    if total > max_candidates:
        order = order[:max_candidates]
        warnings.warn(
            f"{total} peaks passed threshold={threshold}; kept the {max_candidates} "
            "highest-scoring (max_candidates). Raise threshold or max_candidates to change this.",
            CandidateBudgetWarning,
            stacklevel=2,
        )
    return Candidates(row[order], col[order], sigma[order], score[order])
