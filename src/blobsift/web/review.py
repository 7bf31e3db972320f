"""Likely mislabels: labels a model confidently disagrees with."""

from __future__ import annotations

import numpy as np

__all__ = ["disagreement"]


def disagreement(labels: np.ndarray, proba: np.ndarray, threshold: float) -> np.ndarray:
    """How confidently a model contradicts each 0/1 label, from 0 (agrees) to 1.

    A label disagrees when its held-out probability falls on the other side of the
    decision threshold; the confidence is the distance past the threshold as a share of
    the room on that side (a signal label scored 0, or a noise label scored 1, gives 1).

    Parameters
    ----------
    labels : (n,) array of {0, 1}
    proba : (n,) array
        Held-out (out-of-fold) signal probabilities of the labelled crops.
    threshold : float
        The model's decision threshold.

    Returns
    -------
    (n,) float array
        0 where the model agrees with the label.
    """
    labels = np.asarray(labels, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    below = np.clip((threshold - proba) / max(threshold, 1e-9), 0.0, 1.0)
    above = np.clip((proba - threshold) / max(1.0 - threshold, 1e-9), 0.0, 1.0)
    return np.where(labels == 1, below, above)
