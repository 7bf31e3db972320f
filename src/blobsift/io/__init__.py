"""Read images of every common format as 2D float32 arrays, and candidate lists as CSV.

:func:`read_image` returns a 2D float32 array; :func:`open_image` returns a
:class:`LazyImage` that reads only the region it is sliced with (Zarr, memory-mappable NPY
and tiled TIFF are read lazily; other formats are loaded once), for tiled detection of
images larger than memory. :func:`read_stack` and :func:`open_stack` read every channel of
an image of aligned frames (science, reference and difference; the channels of one field)
as a (C, H, W) stack (:class:`LazyStack`).

Formats (recognised by content, not by name): TIFF/BigTIFF (tifffile), PNG, JPEG, BMP,
GIF, WebP (Pillow), NPY (numpy), FITS (astropy, the ``fits`` extra) and Zarr / OME-Zarr
directories (zarr, the ``zarr`` extra).

Every file is described by its axes: ``Y`` and ``X`` are the image, a *channel* axis (``C``,
or TIFF samples) is chosen with ``channel=`` (uint8/uint16 RGB(A) colour becomes luminance by
default; the planes of any other "RGB" image, such as a float stack tagged RGB, are pages) and
any other axis of length > 1 (``Z``, ``T``, TIFF pages, ...) is a *page* axis, chosen with
``page=`` (an index into all pages in order, or the projection ``"max"`` or ``"mean"``).
Failures raise :class:`~blobsift.exceptions.ImageReadError` naming the file and the reason.

Modules
-------
- :mod:`blobsift.io._lazy`: :class:`LazyImage`, the channel and page choices.
- :mod:`blobsift.io._stack`: :class:`LazyStack`, every channel of an image.
- :mod:`blobsift.io._formats`: recognising a format and the per-format readers.
- :mod:`blobsift.io._wcs`: :func:`read_wcs`, the celestial WCS of a FITS image.
- :mod:`blobsift.io._candidates`: :func:`read_candidates`,
  candidate lists as CSV files.
- :mod:`blobsift.io._tables`: :func:`read_table` and :func:`table_columns`, table files
  (CSV, TSV, Parquet) as DataFrames.
- this module: :func:`open_image`, :func:`read_image`, :func:`open_stack` and
  :func:`read_stack`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError
from blobsift.io._candidates import read_candidates
from blobsift.io._formats import (
    fail,
    open_fits,
    open_npy,
    open_pillow,
    open_tiff,
    open_zarr,
    sniff,
)
from blobsift.io._lazy import COLOUR_DTYPES, LUMA_WEIGHTS, LazyImage, Page
from blobsift.io._stack import LazyStack, stack_planes
from blobsift.io._tables import TABLE_SUFFIXES, read_table, table_columns
from blobsift.io._wcs import read_wcs

__all__ = [
    "LUMA_WEIGHTS",
    "TABLE_SUFFIXES",
    "LazyImage",
    "LazyStack",
    "Page",
    "open_image",
    "open_stack",
    "read_candidates",
    "read_image",
    "read_stack",
    "read_table",
    "read_wcs",
    "table_columns",
]


def open_image(
    path: str | os.PathLike[str], *, channel: int | None = None, page: Page = None
) -> LazyImage:
    """Open an image file as a lazy 2D float32 array.

    Zarr / OME-Zarr stores, NPY files (memory-mapped) and TIFF files (when zarr is
    installed) are read region by region as the result is sliced; other formats are read
    once. Pass the result to :func:`blobsift.detect.detect_blobs` to detect in tiles.

    Parameters
    ----------
    path : str or path-like
        The image file (or Zarr directory).
    channel : int, optional
        Channel to use. Default: luminance (BT.601) for uint8/uint16 RGB(A) colour, the only channel
        otherwise; required when a non-colour image has several channels.
    page : int, "max" or "mean", optional
        For stacks (multi-page TIFF, Z/T axes, animated images): one page by its index
        (in C order over all page axes), or a maximum / mean projection over all pages.
        Required when there is more than one page.

    Returns
    -------
    LazyImage
        Also a context manager: ``with open_image(path) as image: ...`` closes the file
        it may hold open.

    Raises
    ------
    InvalidInputError
        If ``path``, ``channel`` or ``page`` has the wrong type (checked first).
    ImageReadError
        If the file is missing, empty, corrupt, of an unknown format or pixel type, or is a
        stack or multi-channel image without ``page`` / ``channel``.
    """
    return _open(path, channel=channel, page=page, lazy=True)


def _stored(
    path: Path, *, page: Page, lazy: bool, frames: bool
) -> tuple[Any, str, bool, Any, Page]:
    """(data, axes, rgb, open file or None, page) of an image file, by its format."""
    if not path.exists():
        raise fail(path, "the file does not exist")
    kind = sniff(path)
    resource = None
    if kind == "tiff":
        data, axes, rgb, resource = open_tiff(path, lazy=lazy)
    elif kind == "pillow":
        data, axes, rgb, page = open_pillow(path, None if frames else page)
    elif kind == "npy":
        data, axes, rgb = open_npy(path)
    elif kind == "fits":
        data, axes, rgb = open_fits(path, frames=frames)
    else:
        data, axes, rgb = open_zarr(path)
    return data, axes, rgb, resource, page


def _open(
    path: str | os.PathLike[str], *, channel: int | None, page: Page, lazy: bool
) -> LazyImage:
    _check_arguments(path, channel, page)
    path = Path(path)
    data, axes, rgb, resource, page = _stored(path, page=page, lazy=lazy, frames=False)
    if rgb and np.dtype(data.dtype) not in COLOUR_DTYPES:
        # RGB(A) in name only (e.g. a float stack tifffile tagged RGB): its planes are a
        # stack that needs page= or a projection, unless a channel= picks one plane.
        rgb = False
        if channel is None:
            axes = axes.replace("C", "S")
    try:
        return LazyImage(path, data, axes, channel=channel, page=page, rgb=rgb, resource=resource)
    except Exception:
        if resource is not None:
            resource.close()
        raise


def open_stack(path: str | os.PathLike[str], *, page: Page = None) -> LazyStack:
    """Open an image of aligned frames as a lazy (C, H, W) float32 stack of channels.

    The channels are the file's channel axis (multi-channel TIFF or Zarr, the ``c`` axis
    of OME-Zarr, the samples of RGB(A) colour, kept apart rather than made luminance), or
    else its one axis of frames: the pages of a multi-page TIFF, the first axis of an NPY
    or FITS cube of shape (C, H, W), the image HDUs of a FITS file (all of one shape). A
    2D image is a stack of one channel. ``stack[k]`` is channel ``k`` as a lazy 2D image
    (for :func:`blobsift.detect.detect_blobs`); ``stack[:, r0:r1, c0:c1]`` reads a region
    of every channel.

    Parameters
    ----------
    path : str or path-like
        The image file (or Zarr directory).
    page : int, "max" or "mean", optional
        For files with axes of pages besides the channels (Z, T): one page by its index
        or a projection, as for :func:`open_image`.

    Returns
    -------
    LazyStack
        Also a context manager that closes the file it may hold open.

    Raises
    ------
    InvalidInputError
        If ``path`` or ``page`` has the wrong type.
    ImageReadError
        If the file cannot be read, its image HDUs differ in shape, it has several axes of
        frames and no channel axis, or it has pages besides the channels and no ``page``.

    Examples
    --------
    >>> with open_stack("triplet.tif") as stack:    # doctest: +SKIP
    ...     science, reference, difference = stack.read()
    """
    return _open_stack(path, page=page, lazy=True)


def read_stack(path: str | os.PathLike[str], page: Page = None) -> np.ndarray:
    """Read an image of aligned frames as a (C, H, W) float32 array.

    The channels are chosen as :func:`open_stack` says; a 2D image gives (1, H, W).

    Parameters
    ----------
    path : str or path-like
        Any image :func:`read_image` reads.
    page : int, "max" or "mean", optional
        For axes of pages besides the channels.

    Returns
    -------
    (C, H, W) float32 array

    Raises
    ------
    InvalidInputError, ImageReadError
        As :func:`open_stack`.
    """
    with _open_stack(path, page=page, lazy=False) as stack:
        return stack.read()


def _open_stack(path: str | os.PathLike[str], *, page: Page, lazy: bool) -> LazyStack:
    _check_arguments(path, None, page)
    path = Path(path)
    data, axes, _, resource, page = _stored(path, page=page, lazy=lazy, frames=True)
    try:
        return LazyStack(stack_planes(path, data, axes, page), resource=resource)
    except Exception:
        if resource is not None:
            resource.close()
        raise


def _check_arguments(path: Any, channel: Any, page: Any) -> None:
    """Refuse arguments of the wrong type before any file is touched."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(
            f"path must be a file path (a str or os.PathLike); got {type(path).__name__} {path!r}."
        )
    if channel is not None and (
        isinstance(channel, bool) or not isinstance(channel, (int, np.integer))
    ):
        raise InvalidInputError(
            f"channel must be an integer index or None; got {type(channel).__name__} {channel!r}."
        )
    if page is not None and (
        isinstance(page, bool) or not isinstance(page, (int, np.integer, str))
    ):
        raise InvalidInputError(
            f"page must be an integer, 'max', 'mean' or None; got {type(page).__name__} {page!r}."
        )


def read_image(
    path: str | os.PathLike[str], channel: int | None = None, page: Page = None
) -> np.ndarray:
    """Read an image file as a 2D float32 array.

    Parameters
    ----------
    path : str or path-like
        A TIFF, PNG, JPEG, BMP, GIF, WebP, NPY or FITS file, or a Zarr / OME-Zarr directory.
        The format is recognised from the content.
    channel : int, optional
        Channel to use. Default: luminance (BT.601 weights) for uint8/uint16 RGB(A)
        colour, the only
        channel otherwise; required when a non-colour image has several channels.
    page : int, "max" or "mean", optional
        For stacks (multi-page TIFF, Z/T axes, animated images): one page by index, or the
        maximum / mean projection over all pages. Required when there is more than one page.

    Returns
    -------
    (H, W) float32 array
        Pixel values as stored (integers converted exactly up to 2**24 and never wrapped).

    Raises
    ------
    InvalidInputError
        If ``path``, ``channel`` or ``page`` has the wrong type (checked first).
    ImageReadError
        With the file name and the reason: missing, empty, corrupt or unknown format, an
        unsupported pixel type, or a stack / multi-channel image without ``page`` /
        ``channel``.

    Examples
    --------
    >>> image = read_image("cells.tif")                 # doctest: +SKIP
    >>> stack_max = read_image("stack.tif", page="max")  # doctest: +SKIP
    """
    with _open(path, channel=channel, page=page, lazy=False) as image:
        return image.read()
