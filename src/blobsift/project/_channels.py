"""The channels of a project: 2D images, or stacks of aligned channels detected on one.

A project of stacks (science/reference/difference triplets, the channels of one field)
keeps its choice in the project settings of the store, under ``"channels"``: the channel
candidates are detected on and how many channels every image has. Its images are read
as (C, H, W) stacks (:func:`blobsift.io.read_stack`), so crops, training and prediction
see every channel. A project without the setting reads 2D images, as it always did.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

import numpy as np

from blobsift._validation import check_integer
from blobsift.exceptions import InvalidInputError
from blobsift.project._base import ProjectBase

__all__ = ["ChannelsMixin"]

_KEY = "channels"


class ChannelsMixin(ProjectBase):
    """Which channel a project detects on, and reading its images with their channels."""

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        *,
        exist_ok: bool = False,
        match_radius: float = 2.0,
        detect_channel: int | None = None,
    ) -> Self:
        """Make a new project folder (``project.db``, ``models/``, ``reports/``).

        Parameters
        ----------
        root : str or path-like
            The folder; created if missing. It may exist but must not hold a project
            unless ``exist_ok``.
        exist_ok : bool
            Open an existing project instead of refusing.
        match_radius : float
            See :class:`~blobsift.project.Project`.
        detect_channel : int, optional
            Make a project of stacks: its images are aligned channels (C, H, W),
            candidates are detected on this channel and crops cut from all of them (see
            :meth:`set_detect_channel`). Default: 2D images.

        Returns
        -------
        Project
        """
        project = super().create(root, exist_ok=exist_ok, match_radius=match_radius)
        if detect_channel is not None:
            try:
                project.set_detect_channel(detect_channel)
            except BaseException:
                project.close()
                raise
        return project

    @property
    def detect_channel(self) -> int | None:
        """The channel candidates are detected on in a project of stacks; None for 2D."""
        channel = self._channels().get("detect_channel")
        return None if channel is None else int(channel)

    @property
    def n_channels(self) -> int | None:
        """The channels of every image (1 for 2D; None before a stack project has images)."""
        if self.detect_channel is None:
            return 1
        count = self._channels().get("count")
        return None if count is None else int(count)

    def set_detect_channel(self, channel: int | None) -> None:
        """Make this a project of stacks detected on ``channel``, or of 2D images (None).

        Every image already in the project is opened as a stack, to check that all have
        the same number of channels and that ``channel`` is one of them. Labels are kept
        (they belong to positions); models trained on crops of another number of
        channels refuse the new crops, so train again.

        Parameters
        ----------
        channel : int or None
            The index of the detection channel (e.g. 2 for the difference image of a
            science/reference/difference triplet), or None for 2D images.

        Raises
        ------
        InvalidInputError
            If ``channel`` is not an integer >= 0, or some image lacks that channel.
        ImageReadError
            If an image cannot be read as a stack, or the images differ in channels.
        """
        if channel is None:
            self._store.set_setting(_KEY, None)
            return
        channel = check_integer(channel, name="detect_channel", low=0)
        count = None
        for record in self._store.images():
            count = self._check_count(record.path, _stack_shape(record.path)[0], count)
        _check_channel(channel, count)
        self._store.set_setting(_KEY, {"detect_channel": channel, "count": count})

    def _channels(self) -> dict[str, Any]:
        value = self._store.setting(_KEY, {})
        return value if isinstance(value, dict) else {}

    def _image_shape(self, path: Path, expected: int | None) -> tuple[tuple[int, int], int]:
        """((H, W), channels) of a new image after reading all its pixels.

        In a project of stacks the image must have ``expected`` channels (those of the
        images before it; any number > the detection channel for the first).
        """
        if self.detect_channel is None:
            return _readable_shape(path, stacked=False)[1:], 1
        shape = _readable_shape(path, stacked=True)
        count = self._check_count(path, shape[0], expected)
        _check_channel(self.detect_channel, count, path)
        return shape[1:], count

    def _check_count(self, path: Path, count: int, expected: int | None) -> int:
        if expected is not None and count != expected:
            raise InvalidInputError(
                f"image {str(path)!r} has {count} channel(s), the project's other images "
                f"{expected}; every image of a project of stacks must have the same channels, "
                "in the same order."
            )
        return count

    def _count_setting(self, count: int | None) -> tuple[str, Any] | None:
        """The setting to store with new images: a stack project's first images' channels."""
        channels = self._channels()
        if count is None or not channels or channels.get("count") is not None:
            return None
        return _KEY, {**channels, "count": count}

    def read_file(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Read an image file as this project reads its images, without any hash check.

        For images outside the project (an image of the project is read with
        :meth:`read_image`).

        Returns
        -------
        (H, W) float32 array, or (C, H, W) in a project of stacks.
        """
        from blobsift.io import read_image, read_stack

        return read_image(path) if self.detect_channel is None else read_stack(path)

    def plane_shape(self, path: str | os.PathLike[str]) -> tuple[int, int]:
        """(H, W) of an image file opened as this project opens its images (no pixels read).

        For images outside the project: a stack's planes in a project of stacks, where
        the file opened as a 2D image would be refused for its channels.
        """
        from blobsift.io import open_image

        if self.detect_channel is not None:
            return _stack_shape(Path(path))[1:]
        with open_image(path) as lazy:
            height, width = lazy.shape
        return height, width

    def detection_plane(self, pixels: np.ndarray) -> np.ndarray:
        """The 2D image candidates are detected on, of pixels :meth:`read_image` gave.

        The detection channel of a stack; a 2D image itself.
        """
        channel = self.detect_channel
        return pixels if channel is None else pixels[channel]


def _check_channel(channel: int, count: int | None, path: Path | None = None) -> None:
    if count is not None and channel >= count:
        where = f"image {str(path)!r} has" if path is not None else "the project's images have"
        raise InvalidInputError(
            f"detect_channel={channel} is out of range: {where} {count} channel(s); choose "
            f"0..{count - 1}."
        )


def _stack_shape(path: Path) -> tuple[int, int, int]:
    """(C, H, W) of an image file opened as a stack (its pixels are not read)."""
    from blobsift.io import open_stack

    with open_stack(path) as stack:
        return stack.shape


def _readable_shape(path: Path, *, stacked: bool) -> tuple[int, int, int]:
    """The (C, H, W) of an image file after reading all its pixels, in blocks of ~64 MB.

    Raises
    ------
    ImageReadError
        Naming the file, if it is not an image or its pixel data cannot be read.
    """
    from blobsift.io import open_image, open_stack

    with open_stack(path) if stacked else open_image(path) as lazy:
        channels, height, width = (1, *lazy.shape) if len(lazy.shape) == 2 else lazy.shape
        step = max(1, (1 << 24) // max(1, width * channels))
        for start in range(0, height, step):
            lazy[:, start : start + step, :] if stacked else lazy[start : start + step, :]
    return (channels, height, width)
