"""PNG rendering of crops and image regions for the labelling app."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["context_png", "crop_png", "stretch"]

#: Side, in image pixels, of the region shown around a candidate.
CONTEXT_SIZE = 192
_MARK = (255, 64, 160)  # magenta: visible on a grey-scale image
_WINDOW = (80, 200, 255)


def stretch(pixels: np.ndarray, low: float = 1.0, high: float = 99.5) -> np.ndarray:
    """Map the ``low``-``high`` percentile range of ``pixels`` to 0-255 (uint8).

    Parameters
    ----------
    pixels : 2D array
    low, high : float
        Percentiles mapped to black and white; ``high`` is raised to ``low`` + epsilon
        when they meet. Non-finite pixels become black.

    Returns
    -------
    uint8 array of the same shape
    """
    values = np.asarray(pixels, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    lo, hi = np.percentile(values[finite], [low, max(high, low)])
    if hi <= lo:
        hi = lo + 1e-12
    scaled = np.clip((np.where(finite, values, lo) - lo) / (hi - lo), 0.0, 1.0)
    return np.round(scaled * 255).astype(np.uint8)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def crop_png(crop: np.ndarray, *, high: float = 99.5) -> bytes:
    """A crop as a grey-scale PNG, contrast-stretched between its 1st and ``high`` percentile.

    Parameters
    ----------
    crop : (h, w) array
    high : float
        Upper percentile mapped to white (lower values show faint structure brighter).

    Returns
    -------
    bytes
        The PNG file.
    """
    return _png(Image.fromarray(stretch(crop, 1.0, high), mode="L"))


def context_png(
    image: np.ndarray,
    row: float,
    col: float,
    *,
    size: int = CONTEXT_SIZE,
    crop_size: int = 64,
    scale: int = 2,
) -> bytes:
    """The region of ``image`` around a candidate, with the candidate and its crop marked.

    Parameters
    ----------
    image : (H, W) array
    row, col : float
        The candidate's position.
    size : int
        Side of the region in image pixels (smaller where the image is smaller).
    crop_size : int
        Side of the crop window outlined around the candidate.
    scale : int
        Upscaling factor of the PNG (nearest neighbour, so pixels stay sharp).

    Returns
    -------
    bytes
        An RGB PNG.
    """
    height, width = image.shape
    top = int(np.clip(round(row) - size // 2, 0, max(height - size, 0)))
    left = int(np.clip(round(col) - size // 2, 0, max(width - size, 0)))
    region = image[top : top + size, left : left + size]
    grey = Image.fromarray(stretch(region, 1.0, 99.8), mode="L").convert("RGB")
    picture = grey.resize((grey.width * scale, grey.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(picture)
    y, x = (row - top + 0.5) * scale, (col - left + 0.5) * scale
    half = crop_size / 2 * scale
    draw.rectangle((x - half, y - half, x + half, y + half), outline=_WINDOW, width=1)
    radius = 7 * scale
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=_MARK, width=2)
    return _png(picture)
