"""Observing and subtracting a pair of frames: seeing, matching kernel, noise.

:func:`draw_setup` draws how a science/reference pair is observed (PSFs, sky, gain,
misregistration) and fits the kernel that matches the sharper PSF to the broader one;
:func:`observe` turns expected photons into a frame in ADU, :func:`subtract` makes the
difference image and :func:`difference_noise` its noise map. Used by
:func:`blobsift.simulate.simulate_difference_image`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, signal

from blobsift.simulate._draw import moffat_alpha, moffat_image

__all__ = [
    "OFFSET_ADU",
    "Setup",
    "convolve",
    "difference_noise",
    "draw_setup",
    "log_uniform",
    "observe",
    "psf_stamp",
    "subtract",
]

OFFSET_ADU = 100.0
_KERNEL_WIDTHS = (0.5, 1.0, 2.0)  # the matching kernel's Gaussians, in units of its width
_MAX_ROTATION_SHIFT = 0.1  # pixels the misregistration's rotation adds at the frame corners


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


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve an image with a square, symmetric kernel, repeating the edge pixels."""
    radius = kernel.shape[0] // 2
    return signal.fftconvolve(np.pad(image, radius, mode="edge"), kernel, mode="valid")


def psf_stamp(alpha: float, beta: float, half: int, centre: np.ndarray | None = None) -> np.ndarray:
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
    source, target = psf_stamp(*sharp, half), psf_stamp(*broad, half)
    single = np.array([float(width == 1.0) for width in _KERNEL_WIDTHS])

    def misfit(sigma: float) -> float:
        return float(np.sum((convolve(source, _kernel_image(sigma, single)) - target) ** 2))

    sigma = float(optimize.minimize_scalar(misfit, bounds=(0.05, half / 4), method="bounded").x)
    basis = [
        convolve(source, _kernel_image(sigma, np.eye(len(_KERNEL_WIDTHS))[k])).reshape(-1)
        for k in range(len(_KERNEL_WIDTHS))
    ]
    # Least squares with the weights summing to 1 (Lagrange multiplier in the last row).
    design = np.column_stack(basis)
    system = np.block([[2 * design.T @ design, np.ones((len(basis), 1))], [np.ones(len(basis)), 0]])
    rhs = np.append(2 * design.T @ target.reshape(-1), 1.0)
    return sigma, np.linalg.lstsq(system, rhs, rcond=None)[0][:-1]


@dataclass(frozen=True)
class Setup:
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
        return OFFSET_ADU + self.gain * self.sky[frame]

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


def log_uniform(rng: np.random.Generator, low: float, high: float, size: int | None = None) -> Any:
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def draw_setup(
    rng: np.random.Generator,
    shape: tuple[int, int],
    ranges: Mapping[str, tuple[float, float]],
    kernel_error: float,
) -> Setup:
    """Draw seeing, sky, gain and misregistration; fit the matching kernel."""
    fwhm = {
        "science": float(rng.uniform(*ranges["fwhm_science"])),
        "reference": float(rng.uniform(*ranges["fwhm_reference"])),
    }
    betas = {frame: float(rng.uniform(*ranges["beta"])) for frame in fwhm}
    psf = {frame: (moffat_alpha(fwhm[frame], betas[frame]), betas[frame]) for frame in fwhm}
    sharp = "reference" if fwhm["reference"] <= fwhm["science"] else "science"
    broad = "science" if sharp == "reference" else "reference"
    sky = {frame: float(log_uniform(rng, *ranges["sky"])) for frame in fwhm}
    gain = float(rng.uniform(0.5, 2.0))
    magnitude, angle = rng.uniform(*ranges["misregistration"]), rng.uniform(0, 2 * np.pi)
    shift = np.array([magnitude * np.sin(angle), magnitude * np.cos(angle)])
    half_diagonal = max(float(np.hypot(*shape)) / 2, 1.0)
    rotation = float(rng.uniform(-1, 1) * _MAX_ROTATION_SHIFT / half_diagonal)
    half = int(np.ceil(4 * max(fwhm.values())))
    kernel_sigma, weights = _matching_kernel(psf[sharp], psf[broad], half)
    kernel_sigma *= float(max(1 + kernel_error * rng.standard_normal(), 0.1))
    return Setup(
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


def observe(
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
        return np.minimum(OFFSET_ADU + gain * expected, saturation)
    photons = rng.poisson(depth * expected) / depth
    reads = rng.normal(0.0, read_noise / np.sqrt(depth), size=expected.shape)
    return np.minimum(OFFSET_ADU + gain * photons + reads, saturation)


def subtract(science: np.ndarray, reference: np.ndarray, setup: Setup) -> np.ndarray:
    """Science minus reference (ADU), both without sky, the sharper one convolved."""
    frames = {
        "science": science - setup.background("science"),
        "reference": reference - setup.background("reference"),
    }
    frames[setup.sharp] = convolve(frames[setup.sharp], setup.kernel)
    return frames["science"] - frames["reference"]


def difference_noise(
    expected: Mapping[str, np.ndarray], setup: Setup, read_noise: float, depth: float
) -> np.ndarray:
    """The difference image's noise (ADU) from both frames' variances, one convolved."""
    variance = {
        "science": setup.gain**2 * expected["science"] + read_noise**2,
        "reference": (setup.gain**2 * expected["reference"] + read_noise**2) / depth,
    }
    variance[setup.sharp] = convolve(variance[setup.sharp], setup.kernel**2)
    return np.sqrt(variance["science"] + variance["reference"])
