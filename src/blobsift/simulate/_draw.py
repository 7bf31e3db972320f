"""Objects painted onto simulated images: each painter returns the patch it covers.

A patch is ``(rows, cols, values)``: the slices of the image it covers and the values to
add there. Pixel ``[i, j]`` covers ``[i - 0.5, i + 0.5) x [j - 0.5, j + 0.5)``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, special

#: Sub-pixel samples per axis where a profile is integrated over pixels numerically.
_OVERSAMPLE = 3
#: Largest half-width of the square a Moffat star is drawn on.
_MAX_REACH = 192
#: Samples evaluated at once when drawing stars (bounds the memory to about 100 MB).
_SAMPLES_PER_CHUNK = 4_000_000


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, scale: int) -> np.ndarray:
    """Return a smooth random field in [0, 1] with structure on the given length scale."""
    coarse = rng.standard_normal((shape[0] // scale + 3, shape[1] // scale + 3))
    field = ndimage.zoom(coarse, scale, order=3)[: shape[0], : shape[1]]
    field -= field.min()
    return field / max(float(field.max()), 1e-12)


def _pixel_integrated_gaussian(centre: float, sigma: float, start: int, stop: int) -> np.ndarray:
    """Integrate a unit-peak Gaussian over the pixels ``start .. stop - 1``.

    Pixel i covers ``[i - 0.5, i + 0.5)``; the result is scaled so that the centre pixel of
    a wide PSF is about 1.
    """
    edges = np.arange(start, stop + 1) - 0.5 - centre
    cdf = special.ndtr(edges / sigma)
    return np.diff(cdf) * sigma * np.sqrt(2 * np.pi)


Patch = tuple[slice, slice, np.ndarray]


def _window(shape: tuple[int, int], row: float, col: float, reach: int) -> tuple[slice, slice]:
    r0, r1 = max(int(row) - reach, 0), min(int(row) + reach + 1, shape[0])
    c0, c1 = max(int(col) - reach, 0), min(int(col) + reach + 1, shape[1])
    return slice(r0, max(r1, r0)), slice(c0, max(c1, c0))


def gaussian(shape: tuple[int, int], row: float, col: float, sigma: float, peak: float) -> Patch:
    rows, cols = _window(shape, row, col, int(np.ceil(4 * sigma)) + 1)
    profile_r = _pixel_integrated_gaussian(row, sigma, rows.start, rows.stop)
    profile_c = _pixel_integrated_gaussian(col, sigma, cols.start, cols.stop)
    return rows, cols, peak * np.outer(profile_r, profile_c)


def ring(
    shape: tuple[int, int], row: float, col: float, radius: float, width: float, peak: float
) -> Patch:
    rows, cols = _window(shape, row, col, int(np.ceil(radius + 4 * width)) + 1)
    rr, cc = np.mgrid[rows, cols]
    distance = np.hypot(rr - row, cc - col)
    return rows, cols, peak * np.exp(-0.5 * ((distance - radius) / width) ** 2)


def track(
    shape: tuple[int, int], row: float, col: float, length: float, angle: float, peak: float
) -> Patch:
    width, half = 0.6, 0.5 * length
    dr, dc = np.sin(angle), np.cos(angle)
    rows, cols = _window(shape, row, col, int(np.ceil(half + 3)) + 1)
    rr, cc = np.mgrid[rows, cols]
    along = np.clip((rr - row) * dr + (cc - col) * dc, -half, half)
    distance = np.hypot(rr - row - along * dr, cc - col - along * dc)
    return rows, cols, peak * np.exp(-0.5 * (distance / width) ** 2)


def hot_pixel(shape: tuple[int, int], row: float, col: float, peak: float) -> Patch:
    rows, cols = _window(shape, row, col, 0)
    return rows, cols, np.full((rows.stop - rows.start, cols.stop - cols.start), peak)


def moffat_alpha(fwhm: float, beta: float) -> float:
    """Return the core width ``alpha`` of a Moffat profile with the given FWHM and ``beta``."""
    return fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))


def moffat_reach(peak: np.ndarray, alpha: float, beta: float, floor: float) -> np.ndarray:
    """Return the radius (pixels) beyond which Moffat stars of ``peak`` stay below ``floor``."""
    ratio = np.maximum(np.asarray(peak, dtype=np.float64) / max(floor, 1e-12), 1.0)
    return np.ceil(alpha * np.sqrt(ratio ** (1 / beta) - 1)).astype(np.int64) + 2


def moffat_peak(flux: float | np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Return the central intensity of Moffat stars of total ``flux``."""
    return np.asarray(flux, dtype=np.float64) * (beta - 1) / (np.pi * alpha**2)


def moffat_image(
    shape: tuple[int, int],
    positions: np.ndarray,
    fluxes: np.ndarray,
    alpha: float,
    beta: float,
    floor: float,
) -> np.ndarray:
    """Render Moffat stars, each integrated over pixels, out to where it falls below ``floor``.

    Each star covers the square of its reach (at most 192 pixels) around its nearest
    pixel; stars of equal reach are drawn together.

    Parameters
    ----------
    shape : (int, int)
        Image shape.
    positions : (n, 2) array
        Star centres (row, col); they may lie outside the image.
    fluxes : (n,) array
        Total flux of each star.
    alpha, beta : float
        The Moffat profile ``(1 + r**2 / alpha**2) ** -beta``.
    floor : float
        Intensity below which a star's wings are left out.

    Returns
    -------
    (H, W) float64 array
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    fluxes = np.asarray(fluxes, dtype=np.float64).reshape(-1)
    peaks = moffat_peak(fluxes, alpha, beta)
    reaches = np.minimum(moffat_reach(peaks, alpha, beta, floor), _MAX_REACH)
    image = np.zeros(shape[0] * shape[1])
    offsets = (np.arange(_OVERSAMPLE) + 0.5) / _OVERSAMPLE - 0.5
    for radius in np.unique(reaches):
        members = np.flatnonzero(reaches == radius)
        steps = np.arange(-radius, radius + 1)
        side = len(steps)
        chunk = max(1, _SAMPLES_PER_CHUNK // (side * _OVERSAMPLE) ** 2)
        for start in range(0, len(members), chunk):
            stars = members[start : start + chunk]
            centre = np.floor(positions[stars] + 0.5).astype(np.int64)
            pixel_r = centre[:, :1] + steps  # (m, side)
            pixel_c = centre[:, 1:] + steps
            dr = ((pixel_r[:, :, None] + offsets).reshape(len(stars), -1)) - positions[stars, :1]
            dc = ((pixel_c[:, :, None] + offsets).reshape(len(stars), -1)) - positions[stars, 1:]
            density = (1 + (dr[:, :, None] ** 2 + dc[:, None, :] ** 2) * (1 / alpha**2)) ** -beta
            size = (len(stars), side, _OVERSAMPLE, side, _OVERSAMPLE)
            pixels = density.reshape(size).mean(axis=(2, 4)) * peaks[stars, None, None]
            inside = ((pixel_r >= 0) & (pixel_r < shape[0]))[:, :, None] & (
                (pixel_c >= 0) & (pixel_c < shape[1])
            )[:, None, :]
            flat = pixel_r[:, :, None] * shape[1] + pixel_c[:, None, :]
            image += np.bincount(flat[inside], weights=pixels[inside], minlength=image.size)
    return image.reshape(shape)
