"""Simulated images and labelled crops with a known answer, in two domains.

* ``"spots"`` (the default) stands in for a fluorescence image: point-like spots
  (pixel-integrated Gaussian PSFs, brightness down to the detection limit) on a smooth,
  structured background, with Poisson photon noise, camera gain, offset and read noise,
  and what a blob detector also fires on — hot pixels, cosmic-ray tracks, out-of-focus
  blobs and rings, and the strongest noise peaks of the background
  (:func:`simulate_image`).
* ``"difference"`` stands in for astronomical difference imaging (real/bogus): a science
  and a reference frame of one star field (power-law fluxes, Moffat PSFs of different
  widths, a sub-pixel misregistration, sky, Poisson and read noise, saturation), the
  difference image after PSF matching, transients injected into the science frame, and
  what the subtraction leaves behind — dipoles of misregistered stars, residuals of
  bright and saturated stars, cosmic rays and hot pixels
  (:func:`simulate_difference_image`).

Real objects (spots, transients) are signal (label 1); everything else is noise (label 0).
Everything is seeded and nothing is downloaded.

Modules
-------
- :mod:`~blobsift.simulate._spots`: the spots domain (:func:`simulate_image`, its crops).
- :mod:`~blobsift.simulate._difference`: the difference domain's frames and truth
  (:func:`simulate_difference_image`); :mod:`~blobsift.simulate._subtraction` observes and
  subtracts them; :mod:`~blobsift.simulate._difference_crops` names and cuts candidates.
- :mod:`~blobsift.simulate._cells`: spots on a realistic cell background (nuclei,
  cytoplasm, tissue edges, saturation, spot clusters: :func:`simulate_cells_image`).
- :mod:`~blobsift.simulate._draw`: the shapes both domains draw (PSFs, tracks, pixels).
- :mod:`~blobsift.simulate._labelled`: :class:`LabelledCrops` and the crop pool both
  domains fill.
- :mod:`~blobsift.simulate._truth`: candidates paired with the ground truth
  (:func:`truth_labels`).
- this module: :func:`simulate_crops` and :func:`write_simulated_images`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from blobsift._validation import CROP_SIZE, check_choice, check_in_range
from blobsift.exceptions import InvalidInputError
from blobsift.simulate._cells import BACKGROUNDS, CellsImage, simulate_cells_image
from blobsift.simulate._difference import (
    DIFFERENCE_DECOY_KINDS,
    DifferenceImage,
    simulate_difference_image,
)
from blobsift.simulate._difference_crops import candidate_kinds, difference_crops
from blobsift.simulate._labelled import LabelledCrops
from blobsift.simulate._spots import DECOY_KINDS, SimulatedImage, simulate_image, spot_crops
from blobsift.simulate._truth import truth_labels

__all__ = [
    "BACKGROUNDS",
    "DECOY_KINDS",
    "DIFFERENCE_DECOY_KINDS",
    "DOMAINS",
    "CellsImage",
    "DifferenceImage",
    "LabelledCrops",
    "SimulatedImage",
    "candidate_kinds",
    "simulate_cells_image",
    "simulate_crops",
    "simulate_difference_image",
    "simulate_image",
    "truth_labels",
    "write_simulated_images",
]

#: The simulated domains: fluorescence-like spots and astronomical difference imaging.
DOMAINS = ("spots", "difference")

#: Defaults of the spots domain's detector options.
_SPOT_OPTIONS = {"noise_peak_share": 0.6, "localisation_error": 0.5}
#: Detection threshold of each domain, in noise sigmas of its detector's response.
_THRESHOLDS = {"spots": 3.5, "difference": 5.0}


def simulate_crops(
    n: int,
    positive_fraction: float = 1 / 11,
    seed: int | np.random.Generator | None = None,
    *,
    size: int = CROP_SIZE,
    image_shape: tuple[int, int] = (512, 512),
    noise_peak_share: float | None = None,
    localisation_error: float | None = None,
    detection_threshold: float | None = None,
    domain: str = "spots",
    noise_variation: float = 0.0,
) -> LabelledCrops:
    """Draw labelled crops around detector candidates at a realistic class ratio.

    Candidates are what a detector reports on simulated images. Objects too faint to be
    detected are no candidates, as in a real pipeline. Crops hold neighbouring objects
    too, so the label belongs to the centre.

    * ``domain="spots"``: a spot detector with a threshold of ``detection_threshold``
      noise sigmas on the images of :func:`simulate_image`: the objects it fires on
      (positions blurred by its localisation error) and the noise peaks of the background
      above the threshold.
    * ``domain="difference"``: :func:`~blobsift.detect.detect_blobs` at
      ``detection_threshold`` on the difference images of
      :func:`simulate_difference_image`; the candidates are where it fires and the bogus
      ones come in the mix it finds them (see :data:`DIFFERENCE_DECOY_KINDS`).

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
    noise_peak_share : float, optional
        Spots domain only: share of the noise crops that are background noise peaks (the
        rest are hot pixels, cosmic rays and out-of-focus blobs in equal parts); default
        0.6.
    localisation_error : float, optional
        Spots domain only: standard deviation, in pixels, of the candidate position around
        the true centre; default 0.5.
    detection_threshold : float, optional
        The detector's threshold in noise sigmas of its response; default 3.5 for spots
        (the spot-scale LoG response) and 5 for difference (``detect_blobs``).
    domain : {"spots", "difference"}
        The simulated domain.
    noise_variation : float
        ``v`` >= 0: each image's noise (the difference image's, in that domain) is raised
        by a factor drawn in ``[1, 1 + v]`` and by a gradient across it spanning another
        ``1 + v``, the objects keeping their brightness (see
        :func:`~blobsift.simulate._variation.vary_noise`); 0 leaves the images as drawn.

    Returns
    -------
    LabelledCrops
        ``crops`` (n, size, size) float32, ``labels`` (n,) int64, ``kinds`` (n,) str,
        shuffled; for the difference domain also ``triplets`` (n, 3, size, size) float32:
        the science, reference and difference crops at the same positions (``crops`` is
        the difference); ``noise`` (n,): the noise level of each crop's image
        (:func:`~blobsift.detect.estimate_noise` on the image ``crops`` come from).
    """
    check_choice(domain, DOMAINS, name="domain")
    if n < 0:
        raise InvalidInputError(f"n must be >= 0; got {n}.")
    check_in_range(positive_fraction, name="positive_fraction", low=0, high=1)
    check_in_range(noise_variation, name="noise_variation", low=0)
    threshold = _THRESHOLDS[domain] if detection_threshold is None else detection_threshold
    rng = np.random.default_rng(seed)
    if domain == "spots":
        given = {"noise_peak_share": noise_peak_share, "localisation_error": localisation_error}
        options = {
            key: _SPOT_OPTIONS[key] if value is None else value for key, value in given.items()
        }
        return spot_crops(
            n,
            positive_fraction,
            rng,
            size=size,
            image_shape=image_shape,
            detection_threshold=threshold,
            noise_variation=noise_variation,
            **options,
        )
    for name, value in (
        ("noise_peak_share", noise_peak_share),
        ("localisation_error", localisation_error),
    ):
        if value is not None:
            raise InvalidInputError(
                f"{name} applies to domain='spots' only; got {name}={value!r} with "
                "domain='difference', whose candidates are where detect_blobs fires. "
                f"Leave {name} out."
            )
    return difference_crops(
        n, positive_fraction, rng, size=size, image_shape=image_shape,
        detection_threshold=threshold, noise_variation=noise_variation,
    )  # fmt: skip


def write_simulated_images(
    folder: str | os.PathLike[str],
    n: int,
    *,
    seed: int = 0,
    prefix: str = "sim",
    domain: str = "spots",
    triplets: bool = False,
    **options: Any,
) -> dict[Path, pd.DataFrame]:
    """Write ``n`` simulated images as TIFF files and return their ground truth.

    Image ``k`` is ``simulate_image(seed=seed + k, **options)`` (spots), or the
    ``difference`` of ``simulate_difference_image(seed=seed + k, **options)``, written as
    ``<folder>/<prefix><k>.tif`` (float32). With ``triplets`` each difference-domain
    file is a stack of three pages: science, reference and difference (read it with
    :func:`blobsift.io.read_stack`; detect on channel 2).

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
    domain : {"spots", "difference"}
        The simulated domain.
    triplets : bool
        Difference domain only: write science/reference/difference stacks.
    **options
        :func:`simulate_image` arguments (``shape``, ``n_spots``, ``decoys_per_spot``, ...)
        or :func:`simulate_difference_image` arguments (``shape``, ``n_transients``, ...).

    Returns
    -------
    dict
        File path -> the image's ``objects`` table (see :class:`SimulatedImage` and
        :class:`DifferenceImage`).
    """
    import tifffile

    check_choice(domain, DOMAINS, name="domain")
    if triplets and domain != "difference":
        raise InvalidInputError(
            f"triplets=True needs domain='difference' (science, reference and difference "
            f"frames); got domain={domain!r}."
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for k in range(n):
        path = folder / f"{prefix}{k}.tif"
        if domain == "spots":
            spots = simulate_image(seed=seed + k, **options)
            tifffile.imwrite(path, spots.image)
            truth[path] = spots.objects
        else:
            difference = simulate_difference_image(seed=seed + k, **options)
            if triplets:
                frames = (difference.science, difference.reference, difference.difference)
                tifffile.imwrite(path, np.stack(frames), photometric="minisblack")
            else:
                tifffile.imwrite(path, difference.difference)
            truth[path] = difference.objects
    return truth
