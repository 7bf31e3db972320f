"""The labelled crops every simulated domain returns, and how a domain gathers them.

:class:`CropPool` collects candidate crops image by image, in groups (signal, decoys,
noise peaks), until each group has as many as asked; :meth:`CropPool.labelled` then takes
that many of each group, labels them and shuffles them into :class:`LabelledCrops`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np


class LabelledCrops(NamedTuple):
    """Crops centred on candidates, with their labels and what each candidate really is."""

    crops: np.ndarray
    """(n, size, size) float32 raw intensities."""
    labels: np.ndarray
    """(n,) int64: 1 signal, 0 noise."""
    kinds: np.ndarray
    """(n,) str: what each candidate is: the domain's signal kind (``"spot"``,
    ``"transient"``), one of its decoy kinds, or ``"noise_peak"``."""
    triplets: np.ndarray | None = None
    """(n, 3, size, size) float32 science, reference and difference crops at the same
    positions (difference domain); None for the spots domain."""
    noise: np.ndarray | None = None
    """(n,) float64: the robust noise level of the image each crop of ``crops`` was cut
    from (:func:`~blobsift.detect.estimate_noise`), for the intensity context."""


class CropPool:
    """Candidate crops gathered image by image, in groups, until each group has enough.

    Parameters
    ----------
    wanted : mapping
        Group name -> how many crops of it the result holds, in the order the result
        lists them before it is shuffled.
    signal : str
        The group whose crops are signal (label 1); every other group is noise (label 0).
    crop_shape : tuple of int
        The shape of one crop (``(size, size)``, or ``(3, size, size)`` for triplets).
    """

    def __init__(self, wanted: Mapping[str, int], signal: str, crop_shape: tuple[int, ...]):
        self.wanted = dict(wanted)
        self.signal = signal
        self.crop_shape = tuple(crop_shape)
        self._kinds: dict[str, list[np.ndarray]] = {group: [] for group in self.wanted}
        self._crops: dict[str, list[np.ndarray]] = {group: [] for group in self.wanted}
        self._noise: dict[str, list[np.ndarray]] = {group: [] for group in self.wanted}

    def add(self, group: str, kinds: np.ndarray, crops: np.ndarray, noise: float) -> None:
        """Add the crops of one group found on one image, with what each one is.

        ``noise`` is the image's noise level. The kinds keep their array type (object or
        str) until the result joins them.
        """
        self._kinds[group].append(np.asarray(kinds))
        self._crops[group].append(crops)
        self._noise[group].append(np.full(len(crops), noise, dtype=np.float64))

    def short(self) -> bool:
        """Whether some group still has fewer crops than wanted."""
        return any(
            sum(len(chunk) for chunk in self._crops[group]) < count
            for group, count in self.wanted.items()
        )

    def labelled(
        self, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (crops, labels, kinds, image noise): as many of each group as wanted, shuffled."""
        crops, kinds, noise = [], [], []
        for group, count in self.wanted.items():
            empty = np.empty((0, *self.crop_shape), np.float32)
            crops.append(np.concatenate([*self._crops[group], empty])[:count])
            kinds.append(np.concatenate([*self._kinds[group], np.empty(0, str)])[:count])
            noise.append(np.concatenate([*self._noise[group], np.empty(0)])[:count])
        labels = np.concatenate(
            [np.full(n, int(group == self.signal), np.int64) for group, n in self.wanted.items()]
        )
        all_kinds = np.concatenate(kinds).astype(str)
        order = rng.permutation(len(labels))
        joined = np.concatenate(crops)[order], labels[order], all_kinds[order]
        return (*joined, np.concatenate(noise)[order])
