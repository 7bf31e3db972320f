"""Noise that varies between simulated images and across each one.

Real images differ in noise level (exposure, gain, background), and so do parts of one
image (vignetting, uneven illumination). :func:`vary_noise` adds Gaussian noise to a
simulated image so that its noise level becomes ``a * (1 + v * ramp)`` times what it was:
``a`` drawn per image, log-uniformly in ``[1, 1 + v]``, and ``ramp`` rising linearly from 0
to 1 across the image in a random direction. The objects keep their brightness, so a
candidate's contrast against the image's noise varies as it does in real data.
"""

from __future__ import annotations

import numpy as np

__all__ = ["vary_noise"]


def vary_noise(
    image: np.ndarray, noise: np.ndarray, variation: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Raise the noise of ``image`` between images and across it; no change at 0.

    Parameters
    ----------
    image : (H, W) array
        A simulated image.
    noise : (H, W) array
        The standard deviation of its noise at each pixel.
    variation : float
        ``v`` >= 0: the image's factor lies in ``[1, 1 + v]`` and the gradient across it
        spans another factor ``1 + v``.
    rng : Generator
        Random source.

    Returns
    -------
    image, noise : (H, W) float32 arrays
        The noisier image and its noise level at each pixel.
    """
    if variation == 0:
        return image, noise
    height, width = image.shape
    factor = float(np.exp(rng.uniform(0.0, np.log1p(variation))))
    angle = rng.uniform(0.0, 2 * np.pi)
    rows, cols = np.mgrid[0:height, 0:width]
    along = np.cos(angle) * rows / max(height - 1, 1) + np.sin(angle) * cols / max(width - 1, 1)
    ramp = (along - along.min()) / max(float(np.ptp(along)), 1e-12)
    scale = factor * (1.0 + variation * ramp)
    extra = noise * np.sqrt(scale**2 - 1.0)
    noisy = image + extra * rng.standard_normal(image.shape)
    return noisy.astype(np.float32), (noise * scale).astype(np.float32)
