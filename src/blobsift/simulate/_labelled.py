"""The labelled crops every simulated domain returns."""

from __future__ import annotations

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
