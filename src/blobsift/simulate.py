"""Simulated images and labelled crops with a known answer.

The simulator stands in for a fluorescence or astronomical image: point-like spots
(pixel-integrated Gaussian PSFs, brightness down to the detection limit) on a smooth,
structured background, with Poisson photon noise, camera gain, offset and read noise.
It adds what a blob detector also fires on — hot pixels, cosmic-ray tracks, out-of-focus
blobs and rings — and, for crops, the strongest noise peaks of the background. Real spots
are signal (label 1); everything else is noise (label 0).

Everything is seeded and nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import ndimage, special

from blobsift._validation import CROP_SIZE, check_in_range
from blobsift.crops import extract_crops
from blobsift.exceptions import InvalidInputError

__all__ = [
    "DECOY_KINDS",
    "LabelledCrops",
    "SimulatedImage",
    "simulate_crops",
    "simulate_image",
    "truth_labels",
    "write_simulated_images",
]

#: Kinds of false candidates the simulator draws, in addition to noise peaks.
DECOY_KINDS = ("hot_pixel", "cosmic_ray", "defocused")

_OFFSET_ADU = 100.0
_FOOTPRINT_FRACTION = 0.5  # a pixel belongs to an object above this many noise sigmas


@dataclass(frozen=True)
class SimulatedImage:
    """A simulated image and its ground truth.

    Attributes
    ----------
    image : (H, W) float32 array
        Pixel values in camera units (ADU).
    objects : pandas.DataFrame
        One row per drawn object with columns ``row``, ``col`` (true sub-pixel centre),
        ``sigma`` (PSF or blob width in pixels, 0 for hot pixels), ``snr`` (peak amplitude
        over the local noise), ``kind`` (``"spot"`` or one of :data:`DECOY_KINDS`) and
        ``label`` (1 for spots, 0 for decoys).
    background : (H, W) float32 array
        The expected image without objects (offset plus sky), in ADU.
    noise : (H, W) float32 array
        The standard deviation of the noise at each pixel, in ADU.
    footprint : (H, W) bool array
        Pixels where some object rises above half the local noise level.
    """

    image: np.ndarray
    objects: pd.DataFrame
    background: np.ndarray
    noise: np.ndarray
    footprint: np.ndarray


class LabelledCrops(NamedTuple):
    """Crops centred on candidates, with their labels and what each candidate really is."""

    crops: np.ndarray
    """(n, size, size) float32 raw intensities."""
    labels: np.ndarray
    """(n,) int64: 1 signal, 0 noise."""
    kinds: np.ndarray
    """(n,) str: ``"spot"``, ``"noise_peak"`` or one of :data:`DECOY_KINDS`."""


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, scale: int) -> np.ndarray:
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


def _gaussian(shape: tuple[int, int], row: float, col: float, sigma: float, peak: float) -> Patch:
    rows, cols = _window(shape, row, col, int(np.ceil(4 * sigma)) + 1)
    profile_r = _pixel_integrated_gaussian(row, sigma, rows.start, rows.stop)
    profile_c = _pixel_integrated_gaussian(col, sigma, cols.start, cols.stop)
    return rows, cols, peak * np.outer(profile_r, profile_c)


def _ring(
    shape: tuple[int, int], row: float, col: float, radius: float, width: float, peak: float
) -> Patch:
    rows, cols = _window(shape, row, col, int(np.ceil(radius + 4 * width)) + 1)
    rr, cc = np.mgrid[rows, cols]
    distance = np.hypot(rr - row, cc - col)
    return rows, cols, peak * np.exp(-0.5 * ((distance - radius) / width) ** 2)


def _track(
    shape: tuple[int, int], row: float, col: float, length: float, angle: float, peak: float
) -> Patch:
    width, half = 0.6, 0.5 * length
    dr, dc = np.sin(angle), np.cos(angle)
    rows, cols = _window(shape, row, col, int(np.ceil(half + 3)) + 1)
    rr, cc = np.mgrid[rows, cols]
    along = np.clip((rr - row) * dr + (cc - col) * dc, -half, half)
    distance = np.hypot(rr - row - along * dr, cc - col - along * dc)
    return rows, cols, peak * np.exp(-0.5 * (distance / width) ** 2)


def _hot_pixel(shape: tuple[int, int], row: float, col: float, peak: float) -> Patch:
    rows, cols = _window(shape, row, col, 0)
    return rows, cols, np.full((rows.stop - rows.start, cols.stop - cols.start), peak)


def simulate_image(
    shape: tuple[int, int] = (512, 512),
    n_spots: int = 100,
    seed: int | np.random.Generator | None = None,
    *,
    decoys_per_spot: float = 2.0,
    spot_sigma: tuple[float, float] = (1.0, 2.0),
    spot_snr: tuple[float, float] = (1.5, 30.0),
    background: tuple[float, float] = (20.0, 400.0),
    read_noise: float = 2.0,
) -> SimulatedImage:
    """Draw a camera image of spots and detector decoys with its ground truth.

    Parameters
    ----------
    shape : (int, int)
        Image shape (rows, cols).
    n_spots : int
        Number of real spots.
    seed : int, Generator or None
        Seed for reproducible images.
    decoys_per_spot : float
        Hot pixels, cosmic-ray tracks and out-of-focus blobs/rings drawn per spot
        (split evenly between the three kinds).
    spot_sigma : (float, float)
        Range of the Gaussian PSF width in pixels.
    spot_snr : (float, float)
        Range of the spot's peak amplitude over the local noise, drawn log-uniformly:
        the low end lies at the detection limit.
    background : (float, float)
        Range of the mean background level in photons; the image's level is drawn from
        it, so images differ in brightness.
    read_noise : float
        Camera read noise in ADU.

    Returns
    -------
    SimulatedImage
        The image in ADU and its objects (row, col, sigma, snr, kind, label).
    """
    if len(shape) != 2 or min(shape) < 1:
        raise InvalidInputError(f"shape must be two positive integers; got {shape}.")
    if n_spots < 0:
        raise InvalidInputError(f"n_spots must be >= 0; got {n_spots}.")
    check_in_range(decoys_per_spot, name="decoys_per_spot", low=0)
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))

    level = float(np.exp(rng.uniform(*np.log(background))))
    gain = float(rng.uniform(0.5, 4.0))  # ADU per photon
    structure = _smooth_field(shape, rng, scale=max(8, min(shape) // 4))
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    tilt = rng.uniform(-0.3, 0.3, size=2)
    gradient = 1 + tilt[0] * rows / shape[0] + tilt[1] * cols / shape[1]
    sky = level * (0.4 + 1.2 * structure) * gradient  # photons
    sky = np.maximum(sky, 1.0)
    read_photons = read_noise / gain
    noise_photons = np.sqrt(sky + read_photons**2)

    signal = np.zeros(shape, dtype=np.float64)
    footprint = np.zeros(shape, dtype=bool)
    records: list[tuple[float, float, float, float, str, int]] = []

    def paint(patch: Patch) -> None:
        rows, cols, values = patch
        signal[rows, cols] += values
        footprint[rows, cols] |= values > _FOOTPRINT_FRACTION * noise_photons[rows, cols]

    def place() -> tuple[float, float]:
        return float(rng.uniform(0, shape[0] - 1)), float(rng.uniform(0, shape[1] - 1))

    def log_uniform(low: float, high: float) -> float:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    for _ in range(n_spots):
        row, col = place()
        sigma = float(rng.uniform(*spot_sigma))
        snr = log_uniform(*spot_snr)
        paint(_gaussian(shape, row, col, sigma, snr * float(noise_photons[int(row), int(col)])))
        records.append((row, col, sigma, snr, "spot", 1))

    n_each = rng.multinomial(round(decoys_per_spot * n_spots), [1 / 3] * 3)
    for kind, count in zip(DECOY_KINDS, n_each, strict=True):
        for _ in range(count):
            row, col = place()
            local_noise = float(noise_photons[int(row), int(col)])
            if kind == "hot_pixel":
                snr, sigma = log_uniform(4.0, 80.0), 0.0
                row, col = float(round(row)), float(round(col))
                patch = _hot_pixel(shape, row, col, snr * local_noise)
            elif kind == "cosmic_ray":
                snr, sigma = log_uniform(6.0, 80.0), 0.6
                length, angle = rng.uniform(3, 18), rng.uniform(0, np.pi)
                patch = _track(shape, row, col, length, angle, snr * local_noise)
            elif rng.random() < 0.5:
                snr, sigma = log_uniform(2.0, 10.0), float(rng.uniform(3.5, 7.0))
                patch = _gaussian(shape, row, col, sigma, snr * local_noise)
            else:
                snr, sigma = log_uniform(2.0, 10.0), float(rng.uniform(3.0, 6.0))
                width = rng.uniform(0.8, 1.5)
                patch = _ring(shape, row, col, sigma, width, snr * local_noise)
            paint(patch)
            records.append((row, col, sigma, snr, kind, 0))

    photons = rng.poisson(sky + signal).astype(np.float64)
    image = _OFFSET_ADU + gain * photons + rng.normal(0.0, read_noise, size=shape)
    objects = pd.DataFrame(records, columns=["row", "col", "sigma", "snr", "kind", "label"])
    objects = objects.astype({"label": np.int64})
    return SimulatedImage(
        image=image.astype(np.float32),
        objects=objects,
        background=(_OFFSET_ADU + gain * sky).astype(np.float32),
        noise=(gain * noise_photons).astype(np.float32),
        footprint=footprint,
    )


def _blob_response(simulated: SimulatedImage, sigma: float = 1.5) -> np.ndarray:
    """Spot-scale LoG response of the background-subtracted image, in its own noise units."""
    whitened = (simulated.image - simulated.background) / simulated.noise
    response = -ndimage.gaussian_laplace(whitened, sigma) * sigma**2
    spread = 1.4826 * np.median(np.abs(response - np.median(response)))
    return response / max(float(spread), 1e-12)


def _detected(objects: pd.DataFrame, response: np.ndarray, threshold: float) -> np.ndarray:
    """Which objects a spot detector at ``threshold`` reports.

    Spots and hot pixels must reach the threshold near their centre; cosmic rays and
    out-of-focus blobs are always reported (a multi-scale detector fires at their scale).
    """
    near = ndimage.maximum_filter(response, size=3)
    rows = np.clip(np.round(objects["row"].to_numpy()).astype(int), 0, response.shape[0] - 1)
    cols = np.clip(np.round(objects["col"].to_numpy()).astype(int), 0, response.shape[1] - 1)
    always = objects["kind"].isin(["cosmic_ray", "defocused"]).to_numpy()
    return always | (near[rows, cols] >= threshold)


def _noise_peaks(simulated: SimulatedImage, response: np.ndarray, threshold: float) -> np.ndarray:
    """(row, col) of every local maximum of ``response`` above ``threshold`` off all objects."""
    peaks = (response == ndimage.maximum_filter(response, size=5)) & (response >= threshold)
    peaks &= ~ndimage.binary_dilation(simulated.footprint, iterations=3)
    return np.argwhere(peaks).astype(np.float64)


def simulate_crops(
    n: int,
    positive_fraction: float = 1 / 11,
    seed: int | np.random.Generator | None = None,
    *,
    size: int = CROP_SIZE,
    image_shape: tuple[int, int] = (512, 512),
    noise_peak_share: float = 0.6,
    localisation_error: float = 0.5,
    detection_threshold: float = 3.5,
) -> LabelledCrops:
    """Draw labelled crops around detector candidates at a realistic class ratio.

    Candidates are what a spot detector with a threshold of ``detection_threshold`` noise
    sigmas reports on simulated images: the objects it fires on (positions blurred by its
    localisation error) and the noise peaks of the background above the threshold. Spots
    too faint to be detected are no candidates, as in a real pipeline. Crops hold
    neighbouring objects too, so the label belongs to the centre.

    Parameters
    ----------
    n : int
        Number of crops.
    positive_fraction : float
        Share of signal crops (default 1/11, i.e. 1 real : 10 false).
    seed : int, Generator or None
        Seed for reproducible crops.
    size : int
        Crop side length.
    image_shape : (int, int)
        Shape of the simulated images the crops are cut from.
    noise_peak_share : float
        Share of the noise crops that are background noise peaks (the rest are hot
        pixels, cosmic rays and out-of-focus blobs in equal parts).
    localisation_error : float
        Standard deviation, in pixels, of the candidate position around the true centre.
    detection_threshold : float
        The simulated detector's threshold on its spot-scale response, in noise sigmas.

    Returns
    -------
    LabelledCrops
        ``crops`` (n, size, size) float32, ``labels`` (n,) int64, ``kinds`` (n,) str,
        shuffled.
    """
    if n < 0:
        raise InvalidInputError(f"n must be >= 0; got {n}.")
    check_in_range(positive_fraction, name="positive_fraction", low=0, high=1)
    check_in_range(noise_peak_share, name="noise_peak_share", low=0, high=1, high_inclusive=False)
    rng = np.random.default_rng(seed)
    n_pos = round(n * positive_fraction)
    n_neg = n - n_pos
    n_peaks = round(n_neg * noise_peak_share)
    decoys_per_spot = (n_neg - n_peaks) / n_pos if n_pos else 2.0
    spots_per_image = 10
    wanted = {"spot": n_pos, "decoy": n_neg - n_peaks, "noise_peak": n_peaks}
    pools: dict[str, list[np.ndarray]] = {key: [] for key in wanted}
    kinds_pool: list[np.ndarray] = []

    def have(key: str) -> int:
        return sum(len(chunk) for chunk in pools[key])

    while any(have(key) < count for key, count in wanted.items()):
        simulated = simulate_image(
            image_shape, n_spots=spots_per_image, seed=rng, decoys_per_spot=decoys_per_spot
        )
        response = _blob_response(simulated)
        objects = simulated.objects[_detected(simulated.objects, response, detection_threshold)]
        jitter = rng.normal(0.0, localisation_error, size=(len(objects), 2))
        positions = objects[["row", "col"]].to_numpy() + jitter
        crops = extract_crops(simulated.image, positions, size=size)
        is_spot = objects["label"].to_numpy() == 1
        pools["spot"].append(crops[is_spot])
        pools["decoy"].append(crops[~is_spot])
        kinds_pool.append(objects["kind"].to_numpy()[~is_spot])
        peaks = rng.permutation(_noise_peaks(simulated, response, detection_threshold))
        pools["noise_peak"].append(extract_crops(simulated.image, peaks, size=size))

    def take(key: str, count: int) -> np.ndarray:
        stacked = (
            np.concatenate(pools[key]) if pools[key] else np.empty((0, size, size), np.float32)
        )
        return stacked[:count]

    decoy_kinds = np.concatenate(kinds_pool)[: wanted["decoy"]] if kinds_pool else np.empty(0, str)
    crops = np.concatenate(
        [take("spot", n_pos), take("decoy", wanted["decoy"]), take("noise_peak", n_peaks)]
    )
    labels = np.concatenate([np.ones(n_pos, np.int64), np.zeros(n_neg, np.int64)])
    kinds = np.concatenate(
        [
            np.full(n_pos, "spot", dtype=object),
            decoy_kinds.astype(object),
            np.full(n_peaks, "noise_peak", dtype=object),
        ]
    ).astype(str)
    order = rng.permutation(n)
    return LabelledCrops(crops[order], labels[order], kinds[order])


def write_simulated_images(
    folder: str | os.PathLike[str],
    n: int,
    *,
    seed: int = 0,
    prefix: str = "sim",
    **options: Any,
) -> dict[Path, pd.DataFrame]:
    """Write ``n`` simulated images as TIFF files and return their ground truth.

    Image ``k`` is ``simulate_image(seed=seed + k, **options)``, written as
    ``<folder>/<prefix><k>.tif`` (float32).

    Parameters
    ----------
    folder : path-like
        Where the files go; created if missing.
    n : int
        Number of images.
    seed : int
        Seed of the first image.
    prefix : str
        File-name prefix.
    **options
        :func:`simulate_image` arguments (``shape``, ``n_spots``, ``decoys_per_spot``, ...).

    Returns
    -------
    dict
        File path -> the image's ``objects`` table (see :class:`SimulatedImage`).
    """
    import tifffile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for k in range(n):
        simulated = simulate_image(seed=seed + k, **options)
        path = folder / f"{prefix}{k}.tif"
        tifffile.imwrite(path, simulated.image)
        truth[path] = simulated.objects
    return truth


def truth_labels(
    candidates: pd.DataFrame, objects: Mapping[str, pd.DataFrame], radius: float = 2.0
) -> np.ndarray:
    """Label candidates from the ground truth, as a perfect labeller would.

    Within each image, candidates and drawn objects are paired one to one, nearest first,
    within ``radius`` pixels; a candidate takes the label of its object (1 for a spot, 0 for
    a decoy) and is noise (0) when no object is near it.

    Parameters
    ----------
    candidates : pandas.DataFrame
        Columns ``image``, ``row``, ``col``.
    objects : mapping
        ``image`` value -> that image's ground-truth ``objects``.
    radius : float
        Largest distance in pixels between a candidate and its object.

    Returns
    -------
    (n,) int64 array
        The label of each candidate, in the order of ``candidates``.
    """
    from blobsift.store import match_positions

    images = candidates["image"].to_numpy()
    positions = candidates[["row", "col"]].to_numpy(dtype=np.float64)
    labels = np.zeros(len(candidates), dtype=np.int64)
    for image in pd.unique(images):
        where = np.flatnonzero(images == image)
        truth = objects[image]
        ia, ib = match_positions(positions[where], truth[["row", "col"]].to_numpy(), radius)
        labels[where[ia]] = truth["label"].to_numpy()[ib]
    return labels
