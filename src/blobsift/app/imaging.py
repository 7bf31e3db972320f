"""PNG rendering of crops and image regions for the labelling app."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["centre_ticks", "context_png", "crop_png", "stretch"]

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


def centre_ticks(size: int) -> list[tuple[int, int, int, int]]:
    """The four short ticks that mark the centre of a ``size`` x ``size`` crop.

    The candidate sits at pixel ``(size // 2, size // 2)`` of its crop (see
    :func:`~blobsift.crops.extract_crops`). The ticks point at it from above, below, left
    and right, leaving a gap around it so that the spot itself stays visible.

    Parameters
    ----------
    size : int
        Side of the crop, in pixels.

    Returns
    -------
    list of (top, left, bottom, right)
        Each tick as an inclusive pixel box, one pixel wide.
    """
    centre = size // 2
    gap = max(2, size // 10)
    length = max(2, size // 12)
    near, far = centre - gap, centre - gap - length + 1
    after, beyond = centre + gap, centre + gap + length - 1
    return [
        (far, centre, near, centre),  # above
        (after, centre, beyond, centre),  # below
        (centre, far, centre, near),  # left
        (centre, after, centre, beyond),  # right
    ]


def crop_png(crop: np.ndarray, *, high: float = 99.5, mark: bool = False) -> bytes:
    """A crop as a PNG, contrast-stretched between its 1st and ``high`` percentile.

    A crop of C channels (science, reference, difference, ...) shows them side by side,
    C crops wide, each channel stretched on its own.

    Parameters
    ----------
    crop : (h, w) or (C, h, w) array
    high : float
        Upper percentile mapped to white (lower values show faint structure brighter).
    mark : bool
        Draw :func:`centre_ticks` (in the context view's mark colour, so the PNG is RGB)
        on each channel to show which spot of the crop is the candidate; otherwise a
        grey-scale PNG.

    Returns
    -------
    bytes
        The PNG file.
    """
    planes = [crop] if crop.ndim == 2 else list(crop)
    grey = Image.fromarray(np.hstack([stretch(plane, 1.0, high) for plane in planes]), mode="L")
    if not mark:
        return _png(grey)
    picture = grey.convert("RGB")
    draw = ImageDraw.Draw(picture)
    height, width = planes[0].shape
    for offset in range(0, width * len(planes), width):
        for top, left, bottom, right in centre_ticks(min(height, width)):
            draw.rectangle((left + offset, top, right + offset, bottom), fill=_MARK)
    return _png(picture)


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
