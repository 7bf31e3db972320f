"""The lazy 2D float32 view of an image file: :class:`LazyImage`.

A :class:`LazyImage` wraps the stored array a format reader (:mod:`blobsift.io._formats`)
opened, with its axes, and applies the channel and page choices: ``image[r0:r1, c0:c1]``
reads only that region. Integers become float32 exactly (never wrapped); float data beyond
the float32 range is refused.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Self

import numpy as np

from blobsift.exceptions import ImageReadError

__all__ = ["COLOUR_DTYPES", "LUMA_WEIGHTS", "LazyImage", "Page"]

#: ITU-R BT.601 luma weights, as Pillow's ``convert("L")``.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_PROJECTIONS = ("max", "mean")
#: Pixel types read as colour when the file says RGB(A); other multi-plane data is a stack.
COLOUR_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
_FLOAT32_MAX = float(np.finfo(np.float32).max)

Page = int | str | None


class HeldFile:
    """What a lazy reader shares: the open file it may hold, closed once, as a context.

    A subclass sets ``self._resource`` (an object with ``close()``, or None).
    """

    _resource: Any = None

    def close(self) -> None:
        """Close the underlying file, if one is held open (lazy TIFF)."""
        resource, self._resource = self._resource, None
        if resource is not None:
            resource.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class LazyImage(HeldFile):
    """A 2D float32 view of an image file that reads only what it is sliced with.

    Created by :func:`blobsift.io.open_image`. ``image[r0:r1, c0:c1]`` returns a float32
    array of that region (with the file's channel and page choices applied);
    ``np.asarray(image)`` or :meth:`read` reads it all.

    Attributes
    ----------
    path : pathlib.Path
        The file or directory it reads.
    shape : (int, int)
        (H, W) of the 2D image.
    dtype : numpy.dtype
        Always float32 (the dtype regions are returned in).
    source_dtype : numpy.dtype
        The pixel type stored in the file.
    axes : str
        The axes of the stored array (e.g. ``"ZYX"``, ``"YXS"``).
    """

    ndim = 2

    def __init__(
        self,
        path: Path,
        data: Any,
        axes: str,
        *,
        channel: int | None,
        page: Page,
        rgb: bool,
        resource: Any = None,
    ) -> None:
        self.path = path
        self.axes = axes
        self._data = data
        self._resource = resource  # an open file to close with the image, if any
        self.source_dtype = np.dtype(data.dtype)
        self.dtype = np.dtype(np.float32)
        _check_pixel_type(path, self.source_dtype)
        shape = tuple(int(s) for s in data.shape)
        if len(shape) != len(axes) or "Y" not in axes or "X" not in axes:
            raise ImageReadError(
                f"cannot read image {str(path)!r}: it holds a {len(shape)}D array of shape "
                f"{shape}, not an image with rows and columns."
            )
        self.shape = (shape[axes.index("Y")], shape[axes.index("X")])
        if 0 in shape:
            raise ImageReadError(
                f"cannot read image {str(path)!r}: it is empty (shape {shape}, axes {axes})."
            )
        self._channel_index, self._weights = _choose_channel(path, shape, axes, channel, rgb)
        self._page_index, self._projection = _choose_page(path, shape, axes, page)

    def __repr__(self) -> str:
        return f"LazyImage({str(self.path)!r}, shape={self.shape}, axes={self.axes!r})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        image = self.read()
        return image if dtype is None else image.astype(dtype)

    def read(self) -> np.ndarray:
        """Read the whole 2D image as float32."""
        return self[:, :]

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key, slice(None))
        if len(key) != 2:
            raise IndexError(f"a LazyImage takes 2 indices (rows, cols); got {len(key)}.")
        squeeze = [isinstance(k, (int, np.integer)) for k in key]
        rows, cols = (
            slice(int(k), int(k) + 1 or None) if isinstance(k, (int, np.integer)) else k
            for k in key
        )
        if not (isinstance(rows, slice) and isinstance(cols, slice)):
            raise IndexError("a LazyImage takes integers or slices, e.g. image[0:256, 0:256].")
        region = self._region(rows, cols)
        if squeeze[0]:
            region = region[0]
        if squeeze[1]:
            region = region[..., 0]
        return region

    def _region(self, rows: slice, cols: slice) -> np.ndarray:
        index: list[Any] = []
        kept: list[str] = []  # the axes left after indexing, in stored order
        for position, axis in enumerate(self.axes):
            if axis in "YX":
                index.append(rows if axis == "Y" else cols)
                kept.append(axis)
            elif axis == "C":
                index.append(self._channel_index)
                if self._weights is not None:
                    kept.append("C")
            elif position in self._page_index:
                index.append(self._page_index[position])
            else:
                index.append(slice(None))
                kept.append("P")
        try:
            block = np.asarray(self._data[tuple(index)])
        except Exception as error:
            raise ImageReadError(
                f"cannot read image {str(self.path)!r}: reading its pixels failed "
                f"({type(error).__name__}: {error})."
            ) from error
        order = [i for i, a in enumerate(kept) if a == "P"]
        order += [kept.index("Y"), kept.index("X")] + [i for i, a in enumerate(kept) if a == "C"]
        block = np.transpose(block, order)
        if self._weights is not None:
            block = np.tensordot(block.astype(np.float64), self._weights, axes=([-1], [0]))
        if block.ndim > 2:
            pages = block.reshape(-1, *block.shape[-2:])
            if self._projection == "max":
                block = pages.max(axis=0)
            else:
                block = pages.mean(axis=0, dtype=np.float64)
        return _to_float32(self.path, block)


def _check_pixel_type(path: Path, dtype: np.dtype) -> None:
    if dtype.kind == "b":
        return
    if dtype.kind not in "uif":
        raise ImageReadError(
            f"cannot read image {str(path)!r}: its pixel type {dtype} is not real-valued "
            "numbers (complex, text or object arrays are not images)."
        )


def _to_float32(path: Path, block: np.ndarray) -> np.ndarray:
    """Convert to C-contiguous float32; integers of any width never overflow."""
    if block.dtype == np.float32:
        return np.ascontiguousarray(block)
    if block.dtype.kind == "f" and block.dtype.itemsize > 4 and block.size:
        with np.errstate(invalid="ignore"):
            too_big = np.nanmax(np.abs(block), initial=0.0)
        if np.isfinite(too_big) and too_big > _FLOAT32_MAX:
            raise ImageReadError(
                f"cannot read image {str(path)!r}: values up to {too_big:.3g} exceed the "
                "float32 range; rescale the data first."
            )
    return np.ascontiguousarray(block, dtype=np.float32)


def _choose_channel(
    path: Path, shape: tuple[int, ...], axes: str, channel: int | None, rgb: bool
) -> tuple[Any, np.ndarray | None]:
    """Return (index into the channel axis, luminance weights or None)."""
    if "C" not in axes:
        if channel not in (None, 0):
            raise ImageReadError(
                f"cannot read image {str(path)!r} with channel={channel!r}: it has a single "
                "channel; leave channel=None."
            )
        return None, None
    count = shape[axes.index("C")]
    if channel is None:
        if rgb and count in (3, 4):
            return slice(0, 3), np.array(LUMA_WEIGHTS)
        if rgb and count == 2:  # grey + alpha
            return 0, None
        if count == 1:
            return 0, None
        raise ImageReadError(
            f"cannot read image {str(path)!r}: it has {count} channels (axes {axes}, shape "
            f"{shape}); pass channel=0..{count - 1} to choose one."
        )
    if not -count <= channel < count:
        raise ImageReadError(
            f"cannot read image {str(path)!r}: channel={channel} is out of range; it has "
            f"{count} channel(s) (0..{count - 1})."
        )
    return int(channel) % count, None


def _choose_page(
    path: Path, shape: tuple[int, ...], axes: str, page: Page
) -> tuple[dict[int, int], str | None]:
    """Return ({position of a page axis: index}, projection) for axes other than Y, X, C.

    Page axes of length 1 are always indexed at 0; with a projection the others are left
    out of the dict (read whole, then reduced).
    """
    page_axes = [(i, size) for i, (a, size) in enumerate(zip(axes, shape, strict=True))]
    page_axes = [(i, size) for i, size in page_axes if axes[i] not in "YXC"]
    singles = {i: 0 for i, size in page_axes if size == 1}
    multi = [(i, size) for i, size in page_axes if size > 1]
    total = int(np.prod([size for _, size in multi])) if multi else 1
    if isinstance(page, str):
        if page not in _PROJECTIONS:
            raise ImageReadError(
                f"cannot read image {str(path)!r}: page must be an integer or one of "
                f"{list(_PROJECTIONS)}; got {page!r}."
            )
        return singles, page
    if page is None:
        if multi:
            names = "".join(axes[i] for i, _ in multi)
            planes = (
                " Its samples (axis S) are planes, not colour: only uint8/uint16 RGB(A) is "
                "read as colour."
                if "S" in names
                else ""
            )
            raise ImageReadError(
                f"cannot read image {str(path)!r}: it holds {total} pages (axes {axes}, shape "
                f"{shape}; page axes {names}), not one 2D image.{planes} Pass "
                f"page=<0..{total - 1}> for one page, or page='max' / page='mean' for a "
                "projection."
            )
        return singles, None
    if not -total <= page < total:
        raise ImageReadError(
            f"cannot read image {str(path)!r}: page={page} is out of range; it has {total} "
            f"page(s) (0..{total - 1})."
        )
    index = dict(singles)
    if multi:
        position = np.unravel_index(int(page) % total, [size for _, size in multi])
        index.update({i: int(p) for (i, _), p in zip(multi, position, strict=True)})
    return index, None
