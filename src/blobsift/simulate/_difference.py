"""The difference-imaging domain: real/bogus candidates of astronomical image subtraction.

A science and a reference frame show the same star field through different seeing:

* **Stars** at random positions with a power-law flux distribution (``N(>F) ~ F**-0.8``,
  from the noise level to saturation), Moffat PSFs of different widths and ``beta`` in the
  two frames, integrated over pixels.
* **Misregistration**: the science frame is displaced against the reference by a
  sub-pixel shift plus a small rotation about the frame centre, which the alignment
  missed.
* **Noise**: sky, Poisson photon noise and read noise; the reference is a deeper coadd
  (``reference_depth`` exposures, averaged). Pixels clip at the saturation level.
* **Subtraction**: both frames lose their sky; the sharper one is convolved with the
  kernel that best turns its PSF into the other's: three Gaussians fitted by least
  squares, as pipelines fit a small basis, with a deliberate error on their width. No
  sum of Gaussians turns one Moffat into another exactly, so bright stars leave
  residuals that grow with their flux (about 1% of the peak).
* **Real candidates**: transients injected into the science frame only: PSF-shaped,
  positive, with peak signal-to-noise ratios down to the detection limit, some of them on
  top of a star (a host).
* **Bogus candidates**: what the subtraction leaves: dipoles of misregistered stars (a
  positive and a negative lobe), residuals of bright and saturated stars, and cosmic rays
  and hot pixels of the science frame (the reference coadd has rejected its own).

Candidates are what :func:`blobsift.detect.detect_blobs` finds on the difference image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from blobsift._validation import check_in_range
from blobsift.exceptions import InvalidInputError
from blobsift.simulate._draw import hot_pixel, moffat_image, moffat_peak, moffat_reach, track
from blobsift.simulate._subtraction import (
    OFFSET_ADU,
    Setup,
    difference_noise,
    draw_setup,
    log_uniform,
    observe,
    psf_stamp,
    subtract,
)

#: Kinds of false candidates on a difference image, in addition to noise peaks.
DIFFERENCE_DECOY_KINDS = ("dipole", "bright_star", "cosmic_ray", "hot_pixel")

MATCH_RADIUS = 2.0  # pixels between a candidate and the point-like object it belongs to
_PAD = 16  # stars are drawn this far beyond the frame edges, so their light spills in
_BRIGHT_FLOOR_SNR = 50.0  # a saturated star's residual reaches where it is this bright
_STAR_FLUX_RANGE = 1e5  # brightest over faintest star flux
_STAR_COUNT_SLOPE = 0.8  # N(>F) ~ F**-slope
_WING_FLOOR = 0.05  # stars are drawn out to where they fall below this much of the sky noise


@dataclass(frozen=True)
class DifferenceImage:
    """A simulated science/reference pair, its difference image and the ground truth.

    Attributes
    ----------
    science, reference : (H, W) float32 arrays
        The two frames in camera units (ADU), aligned up to the misregistration.
    difference : (H, W) float32 array
        Science minus reference, both without sky, the sharper one convolved with the
        matching kernel (ADU).
    noise : (H, W) float32 array
        The standard deviation of the difference image's noise at each pixel (ADU).
    residual : (H, W) float32 array
        The difference image of the stars alone without noise: what the subtraction
        leaves of them (ADU).
    objects : pandas.DataFrame
        One row per drawn object with columns ``row``, ``col`` (true centre in the
        science frame), ``flux`` (photons), ``snr`` (peak amplitude over the difference
        image's local noise; for stars, their peak in the science frame), ``radius``
        (pixels from the centre within which the object claims candidates; for stars 0
        unless saturated, see :func:`candidate_kinds`), ``kind`` (``"transient"``,
        ``"star"``, ``"saturated_star"``, ``"cosmic_ray"`` or ``"hot_pixel"``) and
        ``label`` (1 for transients, 0 otherwise).
    conditions : mapping
        How the pair was observed and subtracted: ``fwhm_science``, ``fwhm_reference``,
        ``beta_science``, ``beta_reference`` (PSFs, pixels), ``shift_row``, ``shift_col``
        (misregistration at the frame centre, pixels), ``rotation`` (radians),
        ``kernel_sigma`` (the matching kernel's width as used, pixels) and ``convolved``
        (``"reference"`` or ``"science"``: the sharper frame).
    """

    science: np.ndarray
    reference: np.ndarray
    difference: np.ndarray
    noise: np.ndarray
    residual: np.ndarray
    objects: pd.DataFrame
    conditions: Mapping[str, Any]


def _check_pair(pair: tuple[float, float], *, name: str, low: float) -> tuple[float, float]:
    """Return a (low, high) range of numbers >= ``low`` with low <= high, or raise."""
    try:
        values = np.asarray(pair, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.empty(0)
    if values.shape != (2,) or not values[0] <= values[1]:
        raise InvalidInputError(
            f"{name} must be a (low, high) pair of numbers with low <= high; got {pair!r}."
        )
    for value in values:
        check_in_range(float(value), name=name, low=low)
    return float(values[0]), float(values[1])


def _paint(image: np.ndarray, patch: tuple[slice, slice, np.ndarray]) -> float:
    """Add a patch to an image; return its total."""
    rows, cols, values = patch
    image[rows, cols] += values
    return float(values.sum())


def _draw_artefacts(
    rng: np.random.Generator,
    science: np.ndarray,
    n_cosmic_rays: int,
    n_hot_pixels: int,
    noise: float,
) -> list[tuple[float, float, float, float, float, str, int]]:
    """Paint cosmic rays and hot pixels into the science frame; return their records."""
    shape = science.shape
    records = []
    for _ in range(n_cosmic_rays):
        row, col = rng.uniform(0, shape[0] - 1), rng.uniform(0, shape[1] - 1)
        length, direction = rng.uniform(0, 12), rng.uniform(0, np.pi)
        snr = float(log_uniform(rng, 5.0, 150.0))
        flux = _paint(science, track(shape, row, col, length, direction, snr * noise))
        records.append((row, col, flux, snr, length / 2 + MATCH_RADIUS, "cosmic_ray", 0))
    for _ in range(n_hot_pixels):
        row, col = float(rng.integers(0, shape[0])), float(rng.integers(0, shape[1]))
        snr = float(log_uniform(rng, 5.0, 300.0))
        flux = _paint(science, hot_pixel(shape, row, col, snr * noise))
        records.append((row, col, flux, snr, MATCH_RADIUS, "hot_pixel", 0))
    return records


def _draw_transients(
    rng: np.random.Generator,
    setup: Setup,
    count: int,
    snr_range: tuple[float, float],
    hosts: np.ndarray,
    hosted_fraction: float,
    noise: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw transient positions, fluxes and peak SNRs; ``noise`` is the difference's (ADU).

    A share of them sits within about a pixel of a host star (``hosts``: positions).
    """
    last = np.array(setup.shape) - 1
    positions = rng.uniform(0, 1, (count, 2)) * last
    hosted = (rng.random(count) < hosted_fraction) & (len(hosts) > 0)
    if hosted.any():
        chosen = hosts[rng.integers(0, len(hosts), int(hosted.sum()))]
        positions[hosted] = np.clip(chosen + rng.normal(0, 1.0, chosen.shape), 0, last)
    snrs = log_uniform(rng, *snr_range, count)
    # On the difference image a transient has the broader PSF's shape.
    peak = np.array([psf_stamp(*setup.psf[setup.broad], 2, 2 + p % 1).max() for p in positions])
    nearest = np.round(positions).astype(np.int64)
    local = noise[nearest[:, 0], nearest[:, 1]] / setup.gain  # photons
    return positions, snrs * local / peak.reshape(-1), snrs


def simulate_difference_image(
    shape: tuple[int, int] = (512, 512),
    n_transients: int = 14,
    seed: int | np.random.Generator | None = None,
    *,
    n_stars: int = 1200,
    n_cosmic_rays: int = 15,
    n_hot_pixels: int = 8,
    transient_snr: tuple[float, float] = (0.5, 40.0),
    hosted_fraction: float = 0.3,
    fwhm_science: tuple[float, float] = (2.5, 5.0),
    fwhm_reference: tuple[float, float] = (2.0, 3.5),
    beta: tuple[float, float] = (2.5, 4.5),
    misregistration: tuple[float, float] = (0.05, 0.3),
    kernel_error: float = 0.03,
    sky: tuple[float, float] = (200.0, 2000.0),
    reference_depth: float = 4.0,
    read_noise: float = 5.0,
    saturation: float = 60_000.0,
) -> DifferenceImage:
    """Draw a science and a reference frame of one star field and their difference image.

    See :mod:`blobsift.simulate` for the physics. Each frame draws its own PSF width and
    ``beta`` from the given ranges; the sharper frame is the one convolved. With the
    defaults, :func:`~blobsift.detect.detect_blobs` at threshold 5 finds about ten bogus
    candidates per real one.

    Parameters
    ----------
    shape : (int, int)
        Frame shape (rows, cols).
    n_transients : int
        Number of transients injected into the science frame.
    seed : int, Generator or None
        Seed for reproducible frames.
    n_stars : int
        Number of stars, from the sky noise level up (``N(>F) ~ F**-0.8``).
    n_cosmic_rays, n_hot_pixels : int
        Cosmic-ray hits (tracks of 0 to 12 pixels) and hot pixels in the science frame.
    transient_snr : (float, float)
        Range of the transients' peak amplitude over the difference image's local noise,
        drawn log-uniformly: the low end lies below the detection limit.
    hosted_fraction : float
        Share of the transients that sit on a star (within about a pixel of it).
    fwhm_science, fwhm_reference : (float, float)
        Ranges of the PSF's full width at half maximum in each frame, in pixels.
    beta : (float, float)
        Range of the Moffat ``beta`` (drawn for each frame; large is Gaussian-like).
    misregistration : (float, float)
        Range of the residual shift of the science frame at its centre, in pixels.
    kernel_error : float
        Standard deviation of the relative error of the matching kernel's width.
    sky : (float, float)
        Range of the sky level of each frame in photons per pixel (log-uniform).
    reference_depth : float
        Exposures averaged in the reference (its noise is this much lower in variance).
    read_noise : float
        Read noise of one exposure in ADU.
    saturation : float
        Level (ADU) at which pixels clip.

    Returns
    -------
    DifferenceImage
        The frames, the difference image, its noise map, the stars' expected residual,
        the objects and the conditions.
    """
    if len(shape) != 2 or min(shape) < 1:
        raise InvalidInputError(f"shape must be two positive integers; got {shape}.")
    counts = {
        "n_transients": n_transients,
        "n_stars": n_stars,
        "n_cosmic_rays": n_cosmic_rays,
        "n_hot_pixels": n_hot_pixels,
    }
    for name, count in counts.items():
        if count < 0:
            raise InvalidInputError(f"{name} must be >= 0; got {count}.")
    ranges = {
        "transient_snr": _check_pair(transient_snr, name="transient_snr", low=0.01),
        "fwhm_science": _check_pair(fwhm_science, name="fwhm_science", low=0.5),
        "fwhm_reference": _check_pair(fwhm_reference, name="fwhm_reference", low=0.5),
        "beta": _check_pair(beta, name="beta", low=1.5),
        "misregistration": _check_pair(misregistration, name="misregistration", low=0),
        "sky": _check_pair(sky, name="sky", low=1.0),
    }
    check_in_range(hosted_fraction, name="hosted_fraction", low=0, high=1)
    check_in_range(kernel_error, name="kernel_error", low=0, high=0.5)
    check_in_range(reference_depth, name="reference_depth", low=1)
    check_in_range(read_noise, name="read_noise", low=0)
    check_in_range(saturation, name="saturation", low=OFFSET_ADU, low_inclusive=False)
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    setup = draw_setup(rng, shape, ranges, kernel_error)
    sky_noise = np.sqrt(setup.sky["science"])  # photons

    # Stars: positions in the reference, displaced in the science frame.
    ref_positions = np.column_stack([rng.uniform(-_PAD, n + _PAD, n_stars) for n in shape])
    ref_positions = ref_positions.reshape(-1, 2)
    sci_positions = setup.displace(ref_positions)
    faintest = sky_noise / moffat_peak(1.0, *setup.psf["science"])
    fluxes = faintest * np.minimum(rng.pareto(_STAR_COUNT_SLOPE, n_stars) + 1, _STAR_FLUX_RANGE)
    stars_only = {}  # photons
    for frame, positions in (("science", sci_positions), ("reference", ref_positions)):
        floor = _WING_FLOOR * np.sqrt(setup.sky[frame])
        light = moffat_image(shape, positions, fluxes, *setup.psf[frame], floor)
        stars_only[frame] = setup.sky[frame] + light
    peak = {frame: moffat_peak(fluxes, *setup.psf[frame]) for frame in setup.psf}
    saturated = np.zeros(n_stars, dtype=bool)
    for frame in setup.psf:
        saturated |= setup.background(frame) + setup.gain * peak[frame] >= saturation

    # What else the science frame holds: artefacts and transients.
    expected = {frame: image.copy() for frame, image in stars_only.items()}
    records = _draw_artefacts(rng, expected["science"], n_cosmic_rays, n_hot_pixels, sky_noise)
    inside = np.all((sci_positions >= 0) & (sci_positions <= np.array(shape) - 1), axis=1)
    hosts = sci_positions[(peak["science"] > 3 * sky_noise) & ~saturated & inside]
    noise = difference_noise(expected, setup, read_noise, reference_depth)
    positions, transient_fluxes, snrs = _draw_transients(
        rng, setup, n_transients, ranges["transient_snr"], hosts, hosted_fraction, noise
    )
    floor = _WING_FLOOR * sky_noise
    expected["science"] += moffat_image(
        shape, positions, transient_fluxes, *setup.psf["science"], floor
    )
    for (row, col), flux, snr in zip(positions, transient_fluxes, snrs, strict=True):
        records.append((row, col, flux, snr, MATCH_RADIUS, "transient", 1))

    # Observation, subtraction, and the truth.
    science = observe(expected["science"], 1.0, setup.gain, read_noise, saturation, rng)
    reference = observe(
        expected["reference"], reference_depth, setup.gain, read_noise, saturation, rng
    )
    difference = subtract(science, reference, setup)
    noise = difference_noise(expected, setup, read_noise, reference_depth)
    residual = subtract(
        observe(stars_only["science"], 1.0, setup.gain, 0.0, saturation, None),
        observe(stars_only["reference"], 1.0, setup.gain, 0.0, saturation, None),
        setup,
    )
    at = np.round(np.clip(sci_positions, 0, np.array(shape) - 1)).astype(np.int64)
    floor = _BRIGHT_FLOOR_SNR * float(np.median(noise)) / setup.gain
    reach = moffat_reach(peak[setup.broad], *setup.psf[setup.broad], floor)
    stars = pd.DataFrame(
        {
            "row": sci_positions[:, 0],
            "col": sci_positions[:, 1],
            "flux": fluxes,
            "snr": setup.gain * peak["science"] / noise[at[:, 0], at[:, 1]],
            "radius": np.where(saturated, reach, 0).astype(np.float64),
            "kind": np.where(saturated, "saturated_star", "star"),
            "label": 0,
        }
    )
    others = pd.DataFrame(records, columns=list(stars.columns)).astype(dict(stars.dtypes))
    objects = pd.concat([others, stars], ignore_index=True).astype({"label": np.int64})
    return DifferenceImage(
        science=science.astype(np.float32),
        reference=reference.astype(np.float32),
        difference=difference.astype(np.float32),
        noise=noise.astype(np.float32),
        residual=residual.astype(np.float32),
        objects=objects,
        conditions=setup.conditions(),
    )
