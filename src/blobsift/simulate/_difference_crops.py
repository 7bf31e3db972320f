"""Candidates of the difference domain: what each one is, and labelled crops of them.

:func:`candidate_kinds` names what the subtraction left at each candidate from the ground
truth; :func:`difference_crops` cuts labelled crops (and science/reference/difference
triplets) around what :func:`~blobsift.detect.detect_blobs` finds on simulated pairs.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
from scipy import ndimage

from blobsift.crops import extract_crops
from blobsift.detect import DetectSettings, detect_blobs, estimate_noise
from blobsift.simulate._difference import MATCH_RADIUS, DifferenceImage, simulate_difference_image
from blobsift.simulate._labelled import CropPool, LabelledCrops
from blobsift.simulate._truth import pair_with_truth
from blobsift.simulate._variation import vary_noise

__all__ = ["candidate_kinds", "difference_crops"]

_COUNTS = ("n_transients", "n_stars", "n_cosmic_rays", "n_hot_pixels")  # scale with the area
_RESIDUAL_SNR = 1.0  # a star's residual claims candidates where it exceeds this many sigmas


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
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    objects = simulated.objects
    kinds = np.full(len(positions), "noise_peak", dtype=object)
    transients = objects[objects["kind"] == "transient"]
    kinds[pair_with_truth(positions, transients, MATCH_RADIUS) >= 0] = "transient"
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
    reach = int(MATCH_RADIUS)
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
    noise_variation: float = 0.0,
) -> LabelledCrops:
    """Draw labelled crops of the difference domain (see ``simulate_crops``).

    Each simulated pair gets as many transients, stars and artefacts per pixel as the
    defaults of :func:`simulate_difference_image` on 512 x 512 pixels. Candidates are
    what :func:`~blobsift.detect.detect_blobs` finds on the difference image at
    ``detection_threshold``, cut from the difference image (``crops``) and from all three
    images (``triplets``); the bogus candidates come in the mix the detector finds them.
    """
    n_pos = round(n * positive_fraction)
    area = image_shape[0] * image_shape[1] / 512**2
    defaults = inspect.signature(simulate_difference_image).parameters
    counts = {key: max(round(defaults[key].default * area), 1) for key in _COUNTS}
    settings = DetectSettings(threshold=detection_threshold)
    pool = CropPool({"real": n_pos, "bogus": n - n_pos}, signal="real", crop_shape=(3, size, size))
    while pool.short():
        simulated = simulate_difference_image(image_shape, seed=rng, **counts)
        image, noise = vary_noise(simulated.difference, simulated.noise, noise_variation, rng)
        simulated = dataclasses.replace(simulated, difference=image, noise=noise)
        level = estimate_noise(simulated.difference)[1]
        found = detect_blobs(simulated.difference, settings, n_threads=1)
        positions = np.column_stack([found.row, found.col])
        kinds = candidate_kinds(positions, simulated)
        images = (simulated.science, simulated.reference, simulated.difference)
        triplets = np.stack([extract_crops(image, positions, size=size) for image in images], 1)
        real = kinds == "transient"
        pool.add("real", kinds[real], triplets[real], level)
        pool.add("bogus", kinds[~real], triplets[~real], level)
    triplets, labels, kinds, levels = pool.labelled(rng)
    triplets = np.ascontiguousarray(triplets)
    difference = np.ascontiguousarray(triplets[:, 2])
    return LabelledCrops(difference, labels, kinds, triplets, levels)
