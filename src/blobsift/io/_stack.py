"""The lazy (C, H, W) float32 view of an image of aligned frames: :class:`LazyStack`.

A stack is one :class:`~blobsift.io.LazyImage` per channel over the same stored array, so
every channel gets the pixel-type checks, page choices and lazy regions of a 2D image.
``stack[k]`` is channel ``k`` as a lazy 2D image (what detection takes);
``stack[:, r0:r1, c0:c1]`` reads that region of every channel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from blobsift.exceptions import ImageReadError
from blobsift.io._lazy import HeldFile, LazyImage, Page

__all__ = ["LazyStack", "stack_planes"]


class LazyStack(HeldFile):
    """A (C, H, W) float32 view of an image file of aligned frames (channels).

    Created by :func:`blobsift.io.open_stack`. ``stack[k]`` is channel ``k`` as a lazy
    2D :class:`~blobsift.io.LazyImage`; ``stack[:, r0:r1, c0:c1]`` returns a (C, h, w)
    float32 array of that region; ``np.asarray(stack)`` or :meth:`read` reads it all.

    Attributes
    ----------
    path : pathlib.Path
        The file or directory it reads.
    shape : (int, int, int)
        (C, H, W).
    dtype : numpy.dtype
        Always float32.
    axes : str
        The axes of the stored array, the channel axis as ``C``.
    """

    ndim = 3

    def __init__(self, planes: list[LazyImage], resource: Any = None) -> None:
        self._planes = planes
        self._resource = resource
        first = planes[0]
        self.path, self.axes, self.dtype = first.path, first.axes, first.dtype
        self.shape = (len(planes), *first.shape)

    def __repr__(self) -> str:
        return f"LazyStack({str(self.path)!r}, shape={self.shape}, axes={self.axes!r})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        stack = self.read()
        return stack if dtype is None else stack.astype(dtype)

    def __len__(self) -> int:
        return len(self._planes)

    def read(self) -> np.ndarray:
        """Read every channel whole: a (C, H, W) float32 array."""
        return self[:, :, :]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not -len(self) <= key < len(self):
                raise IndexError(f"channel {key} is out of range; the stack has {len(self)}.")
            return self._planes[int(key)]
        if not (isinstance(key, tuple) and len(key) == 3 and key[0] == slice(None)):
            raise IndexError(
                "a LazyStack takes a channel index (stack[k], a lazy 2D image) or all channels "
                "and a region (stack[:, r0:r1, c0:c1])."
            )
        return np.stack([plane[key[1], key[2]] for plane in self._planes])


def stack_planes(path: Path, data: Any, axes: str, page: Page) -> list[LazyImage]:
    """One :class:`LazyImage` per channel of a stored array.

    The channel axis is ``C`` (colour samples included: an RGB file is 3 channels, not
    luminance); without one, the one page axis longer than 1 (the frames of a multi-page
    TIFF, an NPY or FITS cube); an array with neither is one channel. Any other page axis
    is chosen with ``page``, as for :func:`~blobsift.io.open_image`.
    """
    shape = tuple(int(s) for s in getattr(data, "shape", ()))
    if "C" not in axes and len(shape) == len(axes):
        frames = [i for i, a in enumerate(axes) if a not in "YX" and shape[i] > 1]
        if len(frames) > 1:
            raise ImageReadError(
                f"cannot read image {str(path)!r} as a stack of channels: it has "
                f"{len(frames)} axes of frames (axes {axes}, shape {shape}) and none is "
                "marked as the channel axis. Store the channels on a C axis, or one axis of "
                "frames (e.g. an NPY of shape (C, H, W))."
            )
        if frames:
            axes = axes[: frames[0]] + "C" + axes[frames[0] + 1 :]
    if "C" not in axes:
        return [LazyImage(path, data, axes, channel=None, page=page, rgb=False)]
    count = shape[axes.index("C")] if len(shape) == len(axes) else 0
    if count == 0:  # let LazyImage say what is wrong with it
        return [LazyImage(path, data, axes, channel=0, page=page, rgb=False)]
    return [LazyImage(path, data, axes, channel=k, page=page, rgb=False) for k in range(count)]
