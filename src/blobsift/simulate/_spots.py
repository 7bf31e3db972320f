"""The spots domain: fluorescence-like images of point-like spots and detector decoys.

Point-like spots (pixel-integrated Gaussian PSFs, brightness down to the detection limit)
on a smooth, structured background, with Poisson photon noise, camera gain, offset and
read noise. The simulator adds what a blob detector also fires on — hot pixels,
cosmic-ray tracks, out-of-focus blobs and rings — and, for crops, the strongest noise
peaks of the background. Real spots are signal (label 1); everything else is noise
(label 0).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from blobsift._validation import check_in_range
from blobsift.crops import extract_crops
from blobsift.detect import estimate_noise
from blobsift.exceptions import InvalidInputError
from blobsift.simulate._draw import (
    Patch,
    gaussian,
    hot_pixel,
    ring,
    smooth_field,
    track,
)
from blobsift.simulate._labelled import CropPool, LabelledCrops
from blobsift.simulate._variation import vary_noise

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
    structure = smooth_field(shape, rng, scale=max(8, min(shape) // 4))
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
        paint(gaussian(shape, row, col, sigma, snr * float(noise_photons[int(row), int(col)])))
        records.append((row, col, sigma, snr, "spot", 1))

    n_each = rng.multinomial(round(decoys_per_spot * n_spots), [1 / 3] * 3)
    for kind, count in zip(DECOY_KINDS, n_each, strict=True):
        for _ in range(count):
            row, col = place()
            local_noise = float(noise_photons[int(row), int(col)])
            if kind == "hot_pixel":
                snr, sigma = log_uniform(4.0, 80.0), 0.0
                row, col = float(round(row)), float(round(col))
                patch = hot_pixel(shape, row, col, snr * local_noise)
            elif kind == "cosmic_ray":
                snr, sigma = log_uniform(6.0, 80.0), 0.6
                length, angle = rng.uniform(3, 18), rng.uniform(0, np.pi)
                patch = track(shape, row, col, length, angle, snr * local_noise)
            elif rng.random() < 0.5:
                snr, sigma = log_uniform(2.0, 10.0), float(rng.uniform(3.5, 7.0))
                patch = gaussian(shape, row, col, sigma, snr * local_noise)
            else:
                snr, sigma = log_uniform(2.0, 10.0), float(rng.uniform(3.0, 6.0))
                width = rng.uniform(0.8, 1.5)
                patch = ring(shape, row, col, sigma, width, snr * local_noise)
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


def spot_crops(
    n: int,
    positive_fraction: float,
    rng: np.random.Generator,
    *,
    size: int,
    image_shape: tuple[int, int],
    noise_peak_share: float,
    localisation_error: float,
    detection_threshold: float,
    noise_variation: float = 0.0,
) -> LabelledCrops:
    """Draw labelled crops of the spots domain (see :func:`blobsift.simulate.simulate_crops`).

    Candidates are what a spot detector with a threshold of ``detection_threshold`` noise
    sigmas reports on simulated images: the objects it fires on (positions blurred by
    ``localisation_error``) and the noise peaks of the background above the threshold;
    ``noise_peak_share`` of the noise crops are noise peaks, the rest hot pixels, cosmic
    rays and out-of-focus blobs in equal parts.
    """
    check_in_range(noise_peak_share, name="noise_peak_share", low=0, high=1, high_inclusive=False)
    n_pos = round(n * positive_fraction)
    n_neg = n - n_pos
    n_peaks = round(n_neg * noise_peak_share)
    decoys_per_spot = (n_neg - n_peaks) / n_pos if n_pos else 2.0
    spots_per_image = 10
    wanted = {"spot": n_pos, "decoy": n_neg - n_peaks, "noise_peak": n_peaks}
    pool = CropPool(wanted, signal="spot", crop_shape=(size, size))
    while pool.short():
        simulated = simulate_image(
            image_shape, n_spots=spots_per_image, seed=rng, decoys_per_spot=decoys_per_spot
        )
        image, noise = vary_noise(simulated.image, simulated.noise, noise_variation, rng)
        simulated = dataclasses.replace(simulated, image=image, noise=noise)
        level = estimate_noise(simulated.image)[1]
        response = _blob_response(simulated)
        objects = simulated.objects[_detected(simulated.objects, response, detection_threshold)]
        jitter = rng.normal(0.0, localisation_error, size=(len(objects), 2))
        positions = objects[["row", "col"]].to_numpy() + jitter
        crops = extract_crops(simulated.image, positions, size=size)
        is_spot = objects["label"].to_numpy() == 1
        spots = np.full(int(is_spot.sum()), "spot", dtype=object)
        pool.add("spot", spots, crops[is_spot], level)
        decoys = objects["kind"].to_numpy().astype(object)[~is_spot]
        pool.add("decoy", decoys, crops[~is_spot], level)
        peaks = rng.permutation(_noise_peaks(simulated, response, detection_threshold))
        peak_kinds = np.full(len(peaks), "noise_peak", dtype=object)
        peak_crops = extract_crops(simulated.image, peaks, size=size)
        pool.add("noise_peak", peak_kinds, peak_crops, level)
    crops, labels, kinds, noise = pool.labelled(rng)
    return LabelledCrops(crops, labels, kinds, noise=noise)
