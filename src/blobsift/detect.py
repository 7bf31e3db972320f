"""Multi-scale blob detection with a threshold in units of the image's own noise.

The detector is a difference-of-Gaussians (DoG) scale space, the classical fast
approximation of the scale-normalised Laplacian of Gaussian:

1. **Noise.** One robust estimate of the pixel noise for the whole image: the median
   absolute deviation of differences between neighbouring pixels on a fixed grid of small
   patches (robust to spots, smooth background and hot pixels).
2. **Scale space.** Gaussian blurs at ``n + 1`` widths (each computed from the previous one),
   and ``n`` DoG layers between neighbours, one per blob width ``sigma_min .. sigma_max``
   (spaced by at most a factor 1.75). Once a blur is 2 pixels wide the image is halved
   (every other pixel; less than 1 % aliases), so coarse layers cost a quarter: a small
   pyramid, one level deep. Each layer is divided by its own noise level (the pixel noise
   times the filter's L2 norm) so that its values are signal-to-noise ratios: the threshold
   means the same thing at every scale and on every image, whatever its brightness, offset
   or gain. A DoG matched to the
   blob width has about 92 % of the signal-to-noise ratio of the ideal matched filter.
3. **Peaks.** Maxima of the scale space: a pixel that is the maximum of the
   ``(2 min_distance + 1)``-square window around it (at least 3 x 3 pixels of its level) in
   its own layer and in the finer and coarser neighbouring layers, above ``threshold``. So a
   faint spot beside a large bright blob still peaks at its own scale. Ridges and edges
   (cosmic-ray tracks, rings) are dropped by the Hessian test of SIFT (ratio of principal
   curvatures below 5), plateaus keep their first pixel in raster order, and a pixel
   peaking in several layers counts once.
4. **Refinement.** Sub-pixel position from a parabola through the 3 x 3 neighbourhood in
   the peak's layer, and ``sigma`` from a parabola across neighbouring layers (sampled
   bilinearly at the refined position).

The image is processed in overlapping tiles (in parallel threads) whose halo covers every
filter and whose origins sit on the pyramid's grid, so the result does not depend on the
tiling (up to float32 rounding: positions agree to 1e-3 px). With OpenCV installed (the ``fast``
extra, ``opencv-python-headless``) the filters run through ``cv2``; otherwise through
``scipy.ndimage`` with the same kernels and borders (same candidates, about 4x slower).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from blobsift._validation import check_choice, check_in_range
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

_TRUNCATE = 2.5  # Gaussian kernels reach this many sigmas
_MAX_SCALE_STEP = 1.75  # largest ratio between neighbouring blob widths
#: Default tile side (pixels) for images processed tile by tile, and the smallest allowed.
DEFAULT_TILE = 2048
MIN_TILE = 16
_MIN_BAND = 256  # rows per band below which threads are not worth the halo
_DECIMATE_AT = 1.0  # halve the resolution when the blur reaches this many new pixels
_MAX_LEVEL = 1  # coarsest pyramid level (pixel size 2**level)
_EDGE_RATIO = 5.0  # largest ratio of principal curvatures of a blob (ridges have more)
_NOISE_PATCH = 32
_NOISE_GRID = 16
_BACKENDS = ("auto", "opencv", "scipy")


class CandidateBudgetWarning(UserWarning):
    """More peaks passed the threshold than ``max_candidates``; the strongest were kept."""


class NonFinitePixelWarning(UserWarning):
    """The image holds NaN or inf pixels; they were masked (filled) before filtering."""


def _setting(default: Any, metavar: str, text: str) -> Any:
    """A :class:`DetectSettings` field: its default and its command-line help."""
    return field(default=default, metadata={"metavar": metavar, "help": text})


@dataclass(frozen=True)
class DetectSettings:
    """What the detector looks for: the one home of the detection settings.

    The defaults, the checks, the command-line options (``--sigma-min`` ...) with their
    help, and the JSON a project stores for each detection run all come from here. How
    the work is done (``tile_size``, ``n_threads``, ``backend``) is not a setting: it does
    not change the candidates.

    Parameters
    ----------
    sigma_min, sigma_max : float
        Range of blob widths (Gaussian sigma, pixels) to look for; ``0 < sigma_min <=
        sigma_max``. Scales are spaced by at most a factor 1.75.
    threshold : float
        Minimum score, in units of the noise of the filtered image (a signal-to-noise
        ratio). On pure white noise, 4 passes about 50 noise peaks per megapixel, 5 about
        one, 6 none; the classifier sifts what passes. Because the score is relative to the
        image's own noise, the same value suits images of any brightness, offset or gain.
    min_distance : int
        A peak must be the maximum of the ``(2 min_distance + 1)``-square window around it,
        in its own scale and the neighbouring ones (peaks of different scales may be
        closer).
    border : int
        Drop candidates whose pixel lies within this many pixels of the image edge.
    max_candidates : int
        Candidate budget: if more peaks pass the threshold, the highest-scoring ones are
        kept and a :class:`CandidateBudgetWarning` says how many were dropped.

    Raises
    ------
    InvalidInputError
        If a setting is not a number of its kind or is out of range.
    """

    sigma_min: float = _setting(1.0, "PX", "smallest blob width (Gaussian sigma)")
    sigma_max: float = _setting(3.0, "PX", "largest blob width")
    threshold: float = _setting(4.0, "SNR", "minimum score, a signal-to-noise ratio")
    min_distance: int = _setting(1, "PX", "minimum distance between peaks")
    border: int = _setting(0, "PX", "drop candidates this close to the edge")
    max_candidates: int = _setting(100_000, "N", "keep at most N per image")

    def __post_init__(self) -> None:
        real = ("sigma_min", "sigma_max", "threshold")
        for name in real:
            value = getattr(self, name)
            if isinstance(value, str):
                raise InvalidInputError(
                    f"{name} must be a number; got str {value!r}; pass the number itself, not text."
                )
            if name == "threshold":
                check_in_range(value, name=name)
            else:
                check_in_range(value, name=name, low=0, low_inclusive=False)
            object.__setattr__(self, name, float(value))
        if self.sigma_max < self.sigma_min:
            raise InvalidInputError(
                f"sigma_max must be >= sigma_min; got sigma_min={self.sigma_min}, "
                f"sigma_max={self.sigma_max}."
            )
        for name, low in (("min_distance", 1), ("border", 0), ("max_candidates", 0)):
            object.__setattr__(self, name, _check_int(getattr(self, name), name=name, low=low))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The settings' names, in the order of the fields."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any] | None = None) -> DetectSettings:
        """Settings from a mapping (e.g. stored JSON); missing names take the defaults.

        Raises
        ------
        InvalidInputError
            If a name is not a setting, or a value is out of range.
        """
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(cls.names()))
        if unknown:
            raise InvalidInputError(
                f"unknown detection setting(s) {unknown}; valid: {sorted(cls.names())}."
            )
        return cls(**settings)

    def with_changes(self, **changes: Any) -> DetectSettings:
        """A copy with some settings changed (checked like the originals)."""
        return self.from_mapping({**self.as_dict(), **changes}) if changes else self

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values, keyed by name."""
        return asdict(self)


# --------------------------------------------------------------------------------------
# Filter backends
# --------------------------------------------------------------------------------------
def _cv2() -> Any | None:
    try:
        import cv2
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return cv2


def _resolve_backend(backend: str) -> str:
    check_choice(backend, _BACKENDS, name="backend")
    if backend == "auto":
        return "opencv" if _cv2() is not None else "scipy"
    if backend == "opencv" and _cv2() is None:
        raise InvalidInputError(
            "backend='opencv' needs OpenCV; install it with `pip install blobsift[fast]` "
            "(opencv-python-headless) or use backend='scipy'."
        )
    return backend


def _blur_opencv(image: np.ndarray, kernel: np.ndarray, out: np.ndarray) -> None:
    cv2 = _cv2()
    cv2.sepFilter2D(image, cv2.CV_32F, kernel, kernel, dst=out, borderType=cv2.BORDER_REFLECT)


def _difference_opencv(a: np.ndarray, b: np.ndarray, factor: float, out: np.ndarray) -> None:
    _cv2().addWeighted(a, factor, b, -factor, 0.0, dst=out)


def _difference_numpy(a: np.ndarray, b: np.ndarray, factor: float, out: np.ndarray) -> None:
    np.subtract(a, b, out=out)
    out *= np.float32(factor)


def _blur_scipy(image: np.ndarray, kernel: np.ndarray, out: np.ndarray) -> None:
    from scipy import ndimage

    ndimage.correlate1d(image, kernel, axis=1, output=out, mode="reflect")
    ndimage.correlate1d(out, kernel, axis=0, output=out, mode="reflect")


def _window_max_opencv(values: np.ndarray, radius: int) -> np.ndarray:
    """Maximum over a (2 radius + 1)-square window; pixels outside the array are ignored."""
    cv2 = _cv2()
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(values, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=-np.inf)


def _window_max_scipy(values: np.ndarray, radius: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.maximum_filter(values, size=2 * radius + 1, mode="constant", cval=-np.inf)


# --------------------------------------------------------------------------------------
# The plan: kernels and constants shared by every tile
# --------------------------------------------------------------------------------------
def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(_TRUNCATE * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


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
    align: int  # tile origins are multiples of this (2**deepest level)


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
    align = 2 ** max(levels)
    halo = reach + (min_distance + 3) * align
    halo = -(-halo // align) * align
    return _Plan(sigmas, step, tuple(increments), tuple(decimate), levels, 1.0 / norms, halo, align)


# --------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------
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
    return differences[np.isfinite(differences)]


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
    if height * width <= (_NOISE_GRID * _NOISE_PATCH) ** 2:
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
    if noise == 0.0 and isinstance(image, np.ndarray) and len(patches) > 1:
        # The patches are flat (e.g. a noiseless synthetic background): use every pixel.
        noise = _robust_sigma(_pair_differences(image))
    return background, noise


# --------------------------------------------------------------------------------------
# One tile
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Settings:
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
    subtract_background: bool


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


def _as_float32(block: np.ndarray, settings: _Settings) -> np.ndarray:
    """Convert a tile to float32 without overflow, subtracting the background if useful."""
    block = np.asarray(block)
    if settings.subtract_background and np.isfinite(settings.background):
        # float64 arithmetic keeps uint32/int64/float64 precision before the cast.
        return np.ascontiguousarray(
            np.subtract(block, settings.background, dtype=np.float64), dtype=np.float32
        )
    return np.ascontiguousarray(block, dtype=np.float32)


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
    return (determinant > 0) & (trace * trace * ratio < (ratio + 1) ** 2 * determinant)


def _radius_at(level: int, min_distance: int) -> int:
    return max(1, -(-min_distance // 2**level))


def _gather(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """values[rows, cols] with indices clipped into the array."""
    height, width = values.shape
    return values[np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)]


def _to_level(coordinate: np.ndarray, source: int, target: int) -> np.ndarray:
    """Nearest pixel at level ``target`` of a pixel at level ``source``."""
    if target <= source:
        return coordinate * 2 ** (source - target)
    factor = 2 ** (target - source)
    return (coordinate + factor // 2) // factor


def _scale_space_peaks(
    layers: list[np.ndarray], plan: _Plan, settings: _Settings
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
    return top * (1 - fr) + bottom * fr


def _parabola_offset(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Vertex of the parabola through (-1, left), (0, centre), (1, right), in [-0.5, 0.5]."""
    curvature = left - 2 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    offset = np.where(np.isfinite(left) & np.isfinite(right), offset, 0.0)
    return np.clip(offset, -0.5, 0.5)


def _detect_tile(image: Any, core: tuple[int, int, int, int], settings: _Settings) -> _TileResult:
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

    n = plan.sigmas.size
    scale = 1.0 / settings.noise
    layers: list[np.ndarray] = []
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
        layers.append(layer)
        current = following
        if plan.decimate[i + 1]:
            current = np.ascontiguousarray(current[::2, ::2])
    del current

    rows, cols, layer_index, score = _scale_space_peaks(layers, plan, settings)
    factor = 2 ** np.asarray(plan.levels, dtype=np.int64)[layer_index]
    pixel_row, pixel_col = rows * factor + e0, cols * factor + f0  # full-resolution pixel
    keep = (pixel_row >= r0) & (pixel_row < r1) & (pixel_col >= c0) & (pixel_col < c1)
    b = settings.border
    if b > 0:
        keep &= (pixel_row >= b) & (pixel_row < height - b) & (pixel_col >= b)
        keep &= pixel_col < width - b
    if non_finite_mask is not None:
        keep &= ~non_finite_mask[pixel_row - e0, pixel_col - f0]
    # A pixel peaking in several layers counts once, at its strongest.
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
    rows, cols, layer_index, score = rows[chosen], cols[chosen], layer_index[chosen], score[chosen]
    factor, pixel_row, pixel_col = factor[chosen], pixel_row[chosen], pixel_col[chosen]

    # Sub-pixel refinement in the peak's layer, and of the scale across layers.
    d_row = np.zeros(rows.size)
    d_col = np.zeros(rows.size)
    lower = np.full(rows.size, np.nan)
    upper = np.full(rows.size, np.nan)
    for i in np.unique(layer_index).tolist():
        here = layer_index == i
        r, c, v = rows[here], cols[here], score[here]
        layer = layers[i]
        d_row[here] = _parabola_offset(
            _neighbour_values(layer, r, c, -1, 0).astype(np.float64),
            v,
            _neighbour_values(layer, r, c, 1, 0).astype(np.float64),
        )
        d_col[here] = _parabola_offset(
            _neighbour_values(layer, r, c, 0, -1).astype(np.float64),
            v,
            _neighbour_values(layer, r, c, 0, 1).astype(np.float64),
        )
        position_row = (r + d_row[here]) * 2 ** plan.levels[i]
        position_col = (c + d_col[here]) * 2 ** plan.levels[i]
        for j, target in ((i - 1, lower), (i + 1, upper)):
            if 0 <= j < n:
                size = 2 ** plan.levels[j]
                target[here] = _sample(layers[j], position_row / size, position_col / size)
    d_scale = _parabola_offset(lower, score, upper)
    sigma = plan.sigmas[layer_index] * plan.step**d_scale
    return _TileResult(
        row=(rows + d_row) * factor + e0,
        col=(cols + d_col) * factor + f0,
        pixel_row=pixel_row,
        pixel_col=pixel_col,
        sigma=sigma,
        score=score,
        peaks=total,
        non_finite=non_finite,
    )


# --------------------------------------------------------------------------------------
# Tiling and the public function
# --------------------------------------------------------------------------------------
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


def _check_int(value: Any, *, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidInputError(f"{name} must be an integer >= {low}; got {value!r}.")
    return int(value)


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
        ratio), ordered by descending score. Empty for a constant image.

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
    settings = _Settings(
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
        subtract_background=dtype.itemsize > 2 and dtype != np.float32,
    )
    tiles = _tiles(shape, tile_size, n_threads, settings.plan.align)
    if n_threads == 1 or len(tiles) == 1:
        results = [_detect_tile(image, core, settings) for core in tiles]
    else:
        with ThreadPoolExecutor(max_workers=min(n_threads, len(tiles))) as pool:
            results = list(pool.map(lambda core: _detect_tile(image, core, settings), tiles))

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
