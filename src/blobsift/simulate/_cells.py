"""Spots on a realistic cell background: nuclei, cytoplasm, tissue edges, saturation.

The spots of :func:`~blobsift.simulate.simulate_image` sit on a smooth sky; real
fluorescence images (smFISH, puncta) have a background a blob detector finds much harder:

* **tissue** covering part of the field, with a sharp edge to the empty slide,
* **nuclei**: smooth ellipses 10-40 px across with a granular texture (chromatin), and
  **cytoplasm** autofluorescence: a dimmer, wider glow around them,
* **saturated regions**: a few very bright autofluorescent bodies clipped at the camera's
  full well,
* spots **on bright structures** (a share placed inside nuclei) and **dense clusters** of
  spots (transcription sites: several spots within a few pixels).

:func:`simulate_cells_image` draws one such image with the spots' true positions, seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from blobsift._validation import check_in_range
from blobsift.exceptions import InvalidInputError
from blobsift.simulate._draw import gaussian, smooth_field
from blobsift.simulate._spots import SimulatedImage

__all__ = ["BACKGROUNDS", "CellsImage", "simulate_cells_image"]

#: Realistic background modes (``"cells"``: nuclei, cytoplasm, tissue edges, saturation).
BACKGROUNDS = ("cells",)
#: Where a spot was placed (the ``context`` column of the objects table).
SPOT_CONTEXTS = ("free", "nucleus", "cluster")

_OFFSET_ADU = 100.0
_FOOTPRINT_FRACTION = 0.5  # a pixel belongs to a spot above this many noise sigmas
_SATURATION_LEVELS = 30.0  # full well, in units of the sky level above the offset


@dataclass(frozen=True)
class CellsImage(SimulatedImage):
    """A simulated image on a cell background and its ground truth.

    The attributes of :class:`~blobsift.simulate.SimulatedImage` (``background`` is the
    expected image without spots: sky, tissue, cytoplasm, nuclei and the saturated bodies,
    clipped at ``saturation``; ``objects`` has one row per spot, nucleus and saturated
    body, with an extra column ``context``: ``"free"``, ``"nucleus"`` or ``"cluster"`` for
    spots, ``""`` otherwise), plus:

    Attributes
    ----------
    nuclei : (H, W) int32 array
        Label image of the nuclei (0 outside, k for the k-th nucleus).
    tissue : (H, W) bool array
        Pixels covered by tissue.
    saturated : (H, W) bool array
        Pixels clipped at the full well.
    saturation : float
        The full-well value in ADU (the image's maximum possible value).
    """

    nuclei: np.ndarray
    tissue: np.ndarray
    saturated: np.ndarray
    saturation: float


def _nuclei(
    shape: tuple[int, int],
    rng: np.random.Generator,
    tissue: np.ndarray,
    count: int,
    diameter: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float, float]]]:
    """Smooth elliptical nuclei inside the tissue: (profile in [0, 1], labels, records)."""
    profile = np.zeros(shape, dtype=np.float64)
    labels = np.zeros(shape, dtype=np.int32)
    inside = np.argwhere(tissue)
    records: list[tuple[float, float, float]] = []
    if not len(inside):
        return profile, labels, records
    for k in range(count):
        row, col = inside[rng.integers(len(inside))] + rng.uniform(-0.5, 0.5, size=2)
        half_axes = 0.5 * rng.uniform(*diameter) * np.array([1.0, rng.uniform(0.6, 1.0)])
        angle = rng.uniform(0, np.pi)
        reach = int(np.ceil(half_axes.max())) + 3
        r0, r1 = max(int(row) - reach, 0), min(int(row) + reach + 1, shape[0])
        c0, c1 = max(int(col) - reach, 0), min(int(col) + reach + 1, shape[1])
        rr, cc = np.mgrid[r0:r1, c0:c1]
        u = (rr - row) * np.cos(angle) + (cc - col) * np.sin(angle)
        v = -(rr - row) * np.sin(angle) + (cc - col) * np.cos(angle)
        radius = np.hypot(u / half_axes[0], v / half_axes[1])  # 1 on the rim
        edge = 1.5 / half_axes.min()  # a rim about 1.5 px wide
        value = 1 / (1 + np.exp((radius - 1) / edge))
        window = profile[r0:r1, c0:c1]
        mine = (value > 0.5) & (value > window)
        labels[r0:r1, c0:c1][mine] = k + 1
        np.maximum(window, value, out=window)
        records.append((float(row), float(col), float(half_axes.mean())))
    return profile, labels, records


def simulate_cells_image(
    shape: tuple[int, int] = (512, 512),
    n_spots: int = 100,
    seed: int | np.random.Generator | None = None,
    *,
    background: str = "cells",
    n_nuclei: int | None = None,
    nucleus_diameter: tuple[float, float] = (10.0, 40.0),
    nucleus_share: float = 0.35,
    cluster_share: float = 0.25,
    n_saturated: int = 3,
    spot_sigma: tuple[float, float] = (1.0, 2.0),
    spot_snr: tuple[float, float] = (2.0, 30.0),
    sky: tuple[float, float] = (20.0, 200.0),
    read_noise: float = 2.0,
) -> CellsImage:
    """Draw a camera image of spots on a realistic cell background, with its truth.

    Parameters
    ----------
    shape : (int, int)
        Image shape (rows, cols).
    n_spots : int
        Number of real spots.
    seed : int, Generator or None
        Seed for reproducible images.
    background : {"cells"}
        The background mode (see :data:`BACKGROUNDS`).
    n_nuclei : int, optional
        Number of nuclei; default one per 6,000 pixels.
    nucleus_diameter : (float, float)
        Range of the nuclei's long axis, in pixels.
    nucleus_share : float
        Share of the spots placed inside nuclei (on a bright structure).
    cluster_share : float
        Share of the spots placed in dense clusters of 4-12 spots within 2-5 px.
    n_saturated : int
        Number of bright autofluorescent bodies clipped at the full well.
    spot_sigma : (float, float)
        Range of the Gaussian PSF width in pixels.
    spot_snr : (float, float)
        Range of the spot's peak amplitude over the local noise (on its local background),
        drawn log-uniformly.
    sky : (float, float)
        Range of the sky level in photons; the image's level is drawn from it.
    read_noise : float
        Camera read noise in ADU.

    Returns
    -------
    CellsImage
        The image in ADU, its objects (spots have ``label`` 1) and the background's maps.
    """
    if background not in BACKGROUNDS:
        raise InvalidInputError(f"background must be one of {BACKGROUNDS}; got {background!r}.")
    if len(shape) != 2 or min(shape) < 16:
        raise InvalidInputError(f"shape must be two integers >= 16; got {shape}.")
    if n_spots < 0:
        raise InvalidInputError(f"n_spots must be >= 0; got {n_spots}.")
    check_in_range(nucleus_share, name="nucleus_share", low=0, high=1)
    check_in_range(cluster_share, name="cluster_share", low=0, high=1)
    if nucleus_share + cluster_share > 1:
        raise InvalidInputError(
            f"nucleus_share + cluster_share must be <= 1; got {nucleus_share + cluster_share}."
        )
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    n_nuclei = max(1, shape[0] * shape[1] // 6000) if n_nuclei is None else int(n_nuclei)

    level = float(np.exp(rng.uniform(*np.log(sky))))
    gain = float(rng.uniform(0.5, 4.0))  # ADU per photon
    # Tissue over about 55-85 % of the field, with a sharp (1.5 px) edge.
    coverage = ndimage.gaussian_filter(smooth_field(shape, rng, scale=max(8, min(shape) // 3)), 2)
    tissue = coverage > np.quantile(coverage, rng.uniform(0.15, 0.45))
    edge = ndimage.gaussian_filter(tissue.astype(np.float64), 1.5)
    texture = 0.85 + 0.3 * smooth_field(shape, rng, scale=4)  # chromatin-like granularity
    nuclei, labels, nucleus_records = _nuclei(shape, rng, tissue, n_nuclei, nucleus_diameter)
    brightness = np.zeros(n_nuclei + 1)
    brightness[1:] = rng.uniform(1.0, 4.0, size=n_nuclei)
    nucleus_level = ndimage.grey_dilation(brightness[labels], size=5)  # covers the soft rims
    nucleus_level[nucleus_level == 0] = brightness[1:].mean() if n_nuclei else 0.0
    cytoplasm = ndimage.gaussian_filter(nuclei, 8) * 3.0 * smooth_field(shape, rng, scale=12)
    structure = (
        0.5 * edge * (0.7 + 0.6 * smooth_field(shape, rng, scale=24))
        + 0.8 * cytoplasm * edge
        + nuclei * nucleus_level * texture
    )
    photons = level * (0.3 + structure)
    saturated_records = []
    for _ in range(n_saturated):
        row, col = rng.uniform(0, shape[0] - 1), rng.uniform(0, shape[1] - 1)
        sigma = float(rng.uniform(3.0, 8.0))
        rows, cols, values = gaussian(shape, row, col, sigma, level * rng.uniform(60, 150))
        photons[rows, cols] += values
        saturated_records.append((float(row), float(col), sigma))
    full_well = _OFFSET_ADU + gain * _SATURATION_LEVELS * level
    read_photons = read_noise / gain
    noise_photons = np.sqrt(photons + read_photons**2)
    expected = np.minimum(_OFFSET_ADU + gain * photons, full_well)

    # Spots: free in the tissue, inside nuclei, or in dense clusters; none where saturated.
    usable = expected < 0.5 * (full_well + _OFFSET_ADU)
    free_pixels = np.argwhere(usable & tissue)
    nucleus_pixels = np.argwhere(usable & (labels > 0))
    if not len(free_pixels):
        free_pixels = np.argwhere(usable)
    if not len(nucleus_pixels):
        nucleus_pixels = free_pixels
    n_nucleus = round(nucleus_share * n_spots)
    n_cluster = round(cluster_share * n_spots)
    centres: list[tuple[np.ndarray, str]] = []
    for pixels, count, context in (
        (nucleus_pixels, n_nucleus, "nucleus"),
        (free_pixels, n_spots - n_nucleus - n_cluster, "free"),
    ):
        picks = pixels[rng.integers(len(pixels), size=count)]
        centres += [(p + rng.uniform(-0.5, 0.5, size=2), context) for p in picks]
    while sum(context == "cluster" for _, context in centres) < n_cluster:
        centre = free_pixels[rng.integers(len(free_pixels))].astype(np.float64)
        size = min(int(rng.integers(4, 13)), n_cluster - sum(c == "cluster" for _, c in centres))
        spread = rng.uniform(2.0, 5.0)
        for _ in range(size):
            offset = rng.normal(0.0, spread / 2, size=2)
            centres.append((centre + offset, "cluster"))

    signal = np.zeros(shape, dtype=np.float64)
    footprint = np.zeros(shape, dtype=bool)
    records = []
    for position, context in centres:
        row = float(np.clip(position[0], 0, shape[0] - 1))
        col = float(np.clip(position[1], 0, shape[1] - 1))
        sigma = float(rng.uniform(*spot_sigma))
        snr = float(np.exp(rng.uniform(*np.log(spot_snr))))
        peak = snr * float(noise_photons[round(row), round(col)])
        rows, cols, values = gaussian(shape, row, col, sigma, peak)
        signal[rows, cols] += values
        footprint[rows, cols] |= values > _FOOTPRINT_FRACTION * noise_photons[rows, cols]
        records.append((row, col, sigma, snr, "spot", 1, context))
    records += [(r, c, s, 0.0, "nucleus", 0, "") for r, c, s in nucleus_records]
    records += [(r, c, s, 0.0, "saturated", 0, "") for r, c, s in saturated_records]

    counts = rng.poisson(photons + signal).astype(np.float64)
    image = _OFFSET_ADU + gain * counts + rng.normal(0.0, read_noise, size=shape)
    image = np.minimum(image, full_well)
    columns = ["row", "col", "sigma", "snr", "kind", "label", "context"]
    objects = pd.DataFrame(records, columns=columns).astype({"label": np.int64})
    return CellsImage(
        image=image.astype(np.float32),
        objects=objects,
        background=expected.astype(np.float32),
        noise=(gain * noise_photons).astype(np.float32),
        footprint=footprint,
        nuclei=labels,
        tissue=tissue,
        saturated=image >= full_well,
        saturation=float(np.float32(full_well)),
    )
