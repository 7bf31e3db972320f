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

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage, optimize, signal

from blobsift._validation import check_in_range
from blobsift.crops import extract_crops
from blobsift.exceptions import InvalidInputError
from blobsift.simulate._draw import (
    hot_pixel,
    moffat_alpha,
    moffat_image,
    moffat_peak,
    moffat_reach,
    track,
)
from blobsift.simulate._labelled import LabelledCrops

#: Kinds of false candidates on a difference image, in addition to noise peaks.
DIFFERENCE_DECOY_KINDS = ("dipole", "bright_star", "cosmic_ray", "hot_pixel")

_OFFSET_ADU = 100.0
_KERNEL_WIDTHS = (0.5, 1.0, 2.0)  # the matching kernel's Gaussians, in units of its width
_COUNTS = ("n_transients", "n_stars", "n_cosmic_rays", "n_hot_pixels")  # scale with the area
_PAD = 16  # stars are drawn this far beyond the frame edges, so their light spills in
_MATCH_RADIUS = 2.0  # pixels between a candidate and the point-like object it belongs to
_RESIDUAL_SNR = 1.0  # a star's residual claims candidates where it exceeds this many sigmas
_MAX_ROTATION_SHIFT = 0.1  # pixels the misregistration's rotation adds at the frame corners
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


def _gaussian_kernel(sigma: float, radius: int) -> np.ndarray:
    """A normalised 1D Gaussian kernel of ``2 radius + 1`` taps."""
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / max(sigma, 1e-3)) ** 2)
    return kernel / kernel.sum()


def _kernel_image(sigma: float, weights: np.ndarray) -> np.ndarray:
    """The matching kernel: Gaussians of widths ``sigma * _KERNEL_WIDTHS``, weighted."""
    radius = max(1, int(np.ceil(4 * sigma * max(_KERNEL_WIDTHS))))
    kernel = np.zeros((2 * radius + 1,) * 2)
    for width, weight in zip(_KERNEL_WIDTHS, weights, strict=True):
        profile = _gaussian_kernel(sigma * width, radius)
        kernel += weight * np.outer(profile, profile)
    return kernel


def _convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve an image with a square, symmetric kernel, repeating the edge pixels."""
    radius = kernel.shape[0] // 2
    return signal.fftconvolve(np.pad(image, radius, mode="edge"), kernel, mode="valid")


def _psf_stamp(
    alpha: float, beta: float, half: int, centre: np.ndarray | None = None
) -> np.ndarray:
    """A unit-flux Moffat PSF on a (2 half + 1)-square stamp, centred or at ``centre``."""
    where = np.array([[half, half]]) if centre is None else np.reshape(centre, (1, 2))
    return moffat_image((2 * half + 1,) * 2, where, np.ones(1), alpha, beta, 1e-9)


def _matching_kernel(
    sharp: tuple[float, float], broad: tuple[float, float], half: int
) -> tuple[float, np.ndarray]:
    """Fit the kernel that turns the sharp PSF into the broad one (least squares).

    First the best single Gaussian width ``sigma``, then the weights of Gaussians of
    ``sigma * _KERNEL_WIDTHS`` (summing to 1, so flux is conserved), as difference-imaging
    pipelines do with a small basis. Returns ``sigma`` and the weights.
    """
    source, target = _psf_stamp(*sharp, half), _psf_stamp(*broad, half)
    single = np.array([float(width == 1.0) for width in _KERNEL_WIDTHS])

    def misfit(sigma: float) -> float:
        return float(np.sum((_convolve(source, _kernel_image(sigma, single)) - target) ** 2))

    sigma = float(optimize.minimize_scalar(misfit, bounds=(0.05, half / 4), method="bounded").x)
    basis = [
        _convolve(source, _kernel_image(sigma, np.eye(len(_KERNEL_WIDTHS))[k])).reshape(-1)
        for k in range(len(_KERNEL_WIDTHS))
    ]
    # Least squares with the weights summing to 1 (Lagrange multiplier in the last row).
    design = np.column_stack(basis)
    system = np.block([[2 * design.T @ design, np.ones((len(basis), 1))], [np.ones(len(basis)), 0]])
    rhs = np.append(2 * design.T @ target.reshape(-1), 1.0)
    return sigma, np.linalg.lstsq(system, rhs, rcond=None)[0][:-1]


@dataclass(frozen=True)
class _Setup:
    """How one pair of frames is observed and subtracted."""

    shape: tuple[int, int]
    fwhm: dict[str, float]
    psf: dict[str, tuple[float, float]]  # frame -> Moffat (alpha, beta)
    sky: dict[str, float]  # frame -> photons per pixel
    gain: float  # ADU per photon, one camera for both frames
    shift: np.ndarray
    rotation: float
    sharp: str  # the frame that is convolved
    broad: str
    kernel_sigma: float
    kernel: np.ndarray

    def background(self, frame: str) -> float:
        """The sky of a frame in ADU."""
        return _OFFSET_ADU + self.gain * self.sky[frame]

    def displace(self, positions: np.ndarray) -> np.ndarray:
        """Where reference positions land in the science frame (the misregistration)."""
        offset = positions - (np.array(self.shape) - 1) / 2
        turn = self.rotation * np.column_stack([-offset[:, 1], offset[:, 0]])
        return positions + self.shift + turn

    def conditions(self) -> dict[str, Any]:
        """The public summary (see :attr:`DifferenceImage.conditions`)."""
        return {
            "fwhm_science": self.fwhm["science"],
            "fwhm_reference": self.fwhm["reference"],
            "beta_science": self.psf["science"][1],
            "beta_reference": self.psf["reference"][1],
            "shift_row": float(self.shift[0]),
            "shift_col": float(self.shift[1]),
            "rotation": self.rotation,
            "kernel_sigma": self.kernel_sigma,
            "convolved": self.sharp,
        }


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int | None = None) -> Any:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def _draw_setup(
    rng: np.random.Generator,
    shape: tuple[int, int],
    ranges: Mapping[str, tuple[float, float]],
    kernel_error: float,
) -> _Setup:
    """Draw seeing, sky, gain and misregistration; fit the matching kernel."""
    fwhm = {
        "science": float(rng.uniform(*ranges["fwhm_science"])),
        "reference": float(rng.uniform(*ranges["fwhm_reference"])),
    }
    betas = {frame: float(rng.uniform(*ranges["beta"])) for frame in fwhm}
    psf = {frame: (moffat_alpha(fwhm[frame], betas[frame]), betas[frame]) for frame in fwhm}
    sharp = "reference" if fwhm["reference"] <= fwhm["science"] else "science"
    broad = "science" if sharp == "reference" else "reference"
    sky = {frame: float(_log_uniform(rng, *ranges["sky"])) for frame in fwhm}
    gain = float(rng.uniform(0.5, 2.0))
    magnitude, angle = rng.uniform(*ranges["misregistration"]), rng.uniform(0, 2 * np.pi)
    shift = np.array([magnitude * np.sin(angle), magnitude * np.cos(angle)])
    half_diagonal = max(float(np.hypot(*shape)) / 2, 1.0)
    rotation = float(rng.uniform(-1, 1) * _MAX_ROTATION_SHIFT / half_diagonal)
    half = int(np.ceil(4 * max(fwhm.values())))
    kernel_sigma, weights = _matching_kernel(psf[sharp], psf[broad], half)
    kernel_sigma *= float(max(1 + kernel_error * rng.standard_normal(), 0.1))
    return _Setup(
        shape=shape,
        fwhm=fwhm,
        psf=psf,
        sky=sky,
        gain=gain,
        shift=shift,
        rotation=rotation,
        sharp=sharp,
        broad=broad,
        kernel_sigma=kernel_sigma,
        kernel=_kernel_image(kernel_sigma, weights),
    )


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
        snr = float(_log_uniform(rng, 5.0, 150.0))
        flux = _paint(science, track(shape, row, col, length, direction, snr * noise))
        records.append((row, col, flux, snr, length / 2 + _MATCH_RADIUS, "cosmic_ray", 0))
    for _ in range(n_hot_pixels):
        row, col = float(rng.integers(0, shape[0])), float(rng.integers(0, shape[1]))
        snr = float(_log_uniform(rng, 5.0, 300.0))
        flux = _paint(science, hot_pixel(shape, row, col, snr * noise))
        records.append((row, col, flux, snr, _MATCH_RADIUS, "hot_pixel", 0))
    return records


def _draw_transients(
    rng: np.random.Generator,
    setup: _Setup,
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
    snrs = _log_uniform(rng, *snr_range, count)
    # On the difference image a transient has the broader PSF's shape.
    peak = np.array([_psf_stamp(*setup.psf[setup.broad], 2, 2 + p % 1).max() for p in positions])
    nearest = np.round(positions).astype(np.int64)
    local = noise[nearest[:, 0], nearest[:, 1]] / setup.gain  # photons
    return positions, snrs * local / peak.reshape(-1), snrs


def _observe(
    expected: np.ndarray,
    depth: float,
    gain: float,
    read_noise: float,
    saturation: float,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """A frame in ADU: the mean of ``depth`` exposures of ``expected`` photons, clipped.

    Without ``rng``, the expected frame without noise.
    """
    if rng is None:
        return np.minimum(_OFFSET_ADU + gain * expected, saturation)
    photons = rng.poisson(depth * expected) / depth
    reads = rng.normal(0.0, read_noise / np.sqrt(depth), size=expected.shape)
    return np.minimum(_OFFSET_ADU + gain * photons + reads, saturation)


def _subtract(science: np.ndarray, reference: np.ndarray, setup: _Setup) -> np.ndarray:
    """Science minus reference (ADU), both without sky, the sharper one convolved."""
    frames = {
        "science": science - setup.background("science"),
        "reference": reference - setup.background("reference"),
    }
    frames[setup.sharp] = _convolve(frames[setup.sharp], setup.kernel)
    return frames["science"] - frames["reference"]


def _difference_noise(
    expected: Mapping[str, np.ndarray], setup: _Setup, read_noise: float, depth: float
) -> np.ndarray:
    """The difference image's noise (ADU) from both frames' variances, one convolved."""
    variance = {
        "science": setup.gain**2 * expected["science"] + read_noise**2,
        "reference": (setup.gain**2 * expected["reference"] + read_noise**2) / depth,
    }
    variance[setup.sharp] = _convolve(variance[setup.sharp], setup.kernel**2)
    return np.sqrt(variance["science"] + variance["reference"])


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
    check_in_range(saturation, name="saturation", low=_OFFSET_ADU, low_inclusive=False)
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    setup = _draw_setup(rng, shape, ranges, kernel_error)
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
        stars = moffat_image(shape, positions, fluxes, *setup.psf[frame], floor)
        stars_only[frame] = setup.sky[frame] + stars
    peak = {frame: moffat_peak(fluxes, *setup.psf[frame]) for frame in setup.psf}
    saturated = np.zeros(n_stars, dtype=bool)
    for frame in setup.psf:
        saturated |= setup.background(frame) + setup.gain * peak[frame] >= saturation

    # What else the science frame holds: artefacts and transients.
    expected = {frame: image.copy() for frame, image in stars_only.items()}
    records = _draw_artefacts(rng, expected["science"], n_cosmic_rays, n_hot_pixels, sky_noise)
    inside = np.all((sci_positions >= 0) & (sci_positions <= np.array(shape) - 1), axis=1)
    hosts = sci_positions[(peak["science"] > 3 * sky_noise) & ~saturated & inside]
    noise = _difference_noise(expected, setup, read_noise, reference_depth)
    positions, transient_fluxes, snrs = _draw_transients(
        rng, setup, n_transients, ranges["transient_snr"], hosts, hosted_fraction, noise
    )
    floor = _WING_FLOOR * sky_noise
    expected["science"] += moffat_image(
        shape, positions, transient_fluxes, *setup.psf["science"], floor
    )
    for (row, col), flux, snr in zip(positions, transient_fluxes, snrs, strict=True):
        records.append((row, col, flux, snr, _MATCH_RADIUS, "transient", 1))

    # Observation, subtraction, and the truth.
    science = _observe(expected["science"], 1.0, setup.gain, read_noise, saturation, rng)
    reference = _observe(
        expected["reference"], reference_depth, setup.gain, read_noise, saturation, rng
    )
    difference = _subtract(science, reference, setup)
    noise = _difference_noise(expected, setup, read_noise, reference_depth)
    residual = _subtract(
        _observe(stars_only["science"], 1.0, setup.gain, 0.0, saturation, None),
        _observe(stars_only["reference"], 1.0, setup.gain, 0.0, saturation, None),
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


def candidate_kinds(positions: np.ndarray, simulated: DifferenceImage) -> np.ndarray:
    """Say what each candidate on a simulated difference image is, from the ground truth.

    In this order: a ``"transient"`` where the candidate pairs with one (one to one,
    nearest first, within 2 pixels); the nearest cosmic ray or hot pixel within its
    ``radius``; ``"bright_star"`` within a saturated star's ``radius``; ``"dipole"`` where
    the stars' expected residual (:attr:`DifferenceImage.residual`) reaches one noise
    sigma within 2 pixels; otherwise a ``"noise_peak"``.

    Parameters
    ----------
    positions : (n, 2) array
        Candidate positions (row, col).
    simulated : DifferenceImage
        The image the candidates were found on.

    Returns
    -------
    (n,) str array
    """
    from blobsift.positions import match_positions

    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    objects = simulated.objects
    kinds = np.full(len(positions), "noise_peak", dtype=object)
    transients = objects[objects["kind"] == "transient"]
    paired, _ = match_positions(positions, transients[["row", "col"]].to_numpy(), _MATCH_RADIUS)
    kinds[paired] = "transient"
    names = {"cosmic_ray": "cosmic_ray", "hot_pixel": "hot_pixel", "saturated_star": "bright_star"}
    for group in (("cosmic_ray", "hot_pixel"), ("saturated_star",)):
        claimants = objects[objects["kind"].isin(group).to_numpy()]
        rest = np.flatnonzero(kinds == "noise_peak")
        if not len(claimants) or not len(rest):
            continue
        distance = np.hypot(
            positions[rest, :1] - claimants["row"].to_numpy()[None, :],
            positions[rest, 1:] - claimants["col"].to_numpy()[None, :],
        )
        distance[distance > claimants["radius"].to_numpy()[None, :]] = np.inf
        nearest = np.argmin(distance, axis=1)
        near = np.isfinite(distance[np.arange(len(rest)), nearest])
        kinds[rest[near]] = [names[kind] for kind in claimants["kind"].to_numpy()[nearest[near]]]
    rest = np.flatnonzero(kinds == "noise_peak")
    reach = int(_MATCH_RADIUS)
    strength = ndimage.maximum_filter(np.abs(simulated.residual) / simulated.noise, 2 * reach + 1)
    last = np.array(strength.shape) - 1
    at = np.clip(np.round(positions[rest]).astype(np.int64), 0, last)
    kinds[rest[strength[at[:, 0], at[:, 1]] >= _RESIDUAL_SNR]] = "dipole"
    return kinds.astype(str)


def difference_crops(
    n: int,
    positive_fraction: float,
    rng: np.random.Generator,
    *,
    size: int,
    image_shape: tuple[int, int],
    detection_threshold: float,
) -> LabelledCrops:
    """Draw labelled crops of the difference domain (see ``simulate_crops``).

    Each simulated pair gets as many transients, stars and artefacts per pixel as the
    defaults of :func:`simulate_difference_image` on 512 x 512 pixels. Candidates are
    what :func:`~blobsift.detect.detect_blobs` finds on the difference image at
    ``detection_threshold``, cut from the difference image (``crops``) and from all three
    images (``triplets``); the bogus candidates come in the mix the detector finds them.
    """
    from blobsift.detect import detect_blobs

    n_pos = round(n * positive_fraction)
    n_neg = n - n_pos
    area = image_shape[0] * image_shape[1] / 512**2
    defaults = inspect.signature(simulate_difference_image).parameters
    counts = {key: max(round(defaults[key].default * area), 1) for key in _COUNTS}
    pools: dict[bool, list[tuple[np.ndarray, np.ndarray]]] = {True: [], False: []}

    def have(signal: bool) -> int:
        return sum(len(kinds) for kinds, _ in pools[signal])

    while have(True) < n_pos or have(False) < n_neg:
        simulated = simulate_difference_image(image_shape, seed=rng, **counts)
        found = detect_blobs(simulated.difference, threshold=detection_threshold, n_threads=1)
        positions = np.column_stack([found.row, found.col])
        kinds = candidate_kinds(positions, simulated)
        images = (simulated.science, simulated.reference, simulated.difference)
        triplets = np.stack([extract_crops(image, positions, size=size) for image in images], 1)
        for is_signal in (True, False):
            keep = (kinds == "transient") == is_signal
            pools[is_signal].append((kinds[keep], triplets[keep]))

    def take(signal: bool, count: int) -> tuple[np.ndarray, np.ndarray]:
        kinds = np.concatenate([k for k, _ in pools[signal]] + [np.empty(0, str)])
        empty = np.empty((0, 3, size, size), np.float32)
        triplets = np.concatenate([t for _, t in pools[signal]] + [empty])
        return kinds[:count], triplets[:count]

    (signal_kinds, signal_triplets), (noise_kinds, noise_triplets) = (
        take(True, n_pos),
        take(False, n_neg),
    )
    kinds = np.concatenate([signal_kinds, noise_kinds]).astype(str)
    triplets = np.concatenate([signal_triplets, noise_triplets])
    labels = (kinds == "transient").astype(np.int64)
    order = rng.permutation(n)
    triplets = np.ascontiguousarray(triplets[order])
    return LabelledCrops(
        np.ascontiguousarray(triplets[:, 2]), labels[order], kinds[order], triplets
    )
