"""Binary classification metrics, built from small validate -> count -> compute steps.

Conventions follow scikit-learn's ``zero_division=0``: a ratio whose denominator is
zero is 0. Scores are probabilities of the positive class (any monotone score works for
the curve functions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from blobsift._validation import check_labels
from blobsift.exceptions import InvalidInputError

__all__ = [
    "MIN_HELDOUT_POSITIVES",
    "BinaryCounts",
    "OperatingPoint",
    "average_precision",
    "best_threshold",
    "binary_counts",
    "metrics_with_intervals",
    "precision_recall_curve",
    "precision_recall_f1",
    "too_few_positives",
]

#: Fewest positives a held-out set needs for its F1, precision, recall or average precision
#: to count as an estimate. Below it, one positive more or less moves F1 by 0.2 or more and
#: a bootstrap interval spans most of [0, 1]: reports say "too few positives to estimate"
#: and the phase choice does not take such scores as evidence.
MIN_HELDOUT_POSITIVES = 5


@dataclass(frozen=True)
class BinaryCounts:
    """Confusion counts of a binary decision."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """Share of predicted positives that are positive."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """Share of positives that are predicted positive."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold on the score and what it achieves on the labels it was chosen on."""

    threshold: float
    precision: float
    recall: float
    f1: float


def too_few_positives(n_positive: int | None) -> bool:
    """Whether ``n_positive`` held-out positives are too few to estimate from.

    True below :data:`MIN_HELDOUT_POSITIVES`; an unknown count (None) is not too few.
    """
    return n_positive is not None and int(n_positive) < MIN_HELDOUT_POSITIVES


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def _check_pair(y_true: np.ndarray, values: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    labels = check_labels(y_true, name="y_true")
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.shape[0] != labels.shape[0]:
        raise InvalidInputError(
            f"y_true has {labels.shape[0]} labels but {name} has {values.shape[0]} values."
        )
    if not np.isfinite(values).all():
        raise InvalidInputError(f"{name} holds NaN or inf values.")
    return labels, values


def binary_counts(y_true: np.ndarray, y_pred: np.ndarray) -> BinaryCounts:
    """Count true/false positives/negatives of binary predictions."""
    labels, predicted = _check_pair(y_true, y_pred, "y_pred")
    predicted = check_labels(predicted, name="y_pred").astype(bool)
    truth = labels.astype(bool)
    return BinaryCounts(
        tp=int(np.sum(truth & predicted)),
        fp=int(np.sum(~truth & predicted)),
        fn=int(np.sum(truth & ~predicted)),
        tn=int(np.sum(~truth & ~predicted)),
    )


def precision_recall_f1(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Return precision, recall and F1 of binary predictions (scikit-learn compatible)."""
    counts = binary_counts(y_true, y_pred)
    return {"precision": counts.precision, "recall": counts.recall, "f1": counts.f1}


def precision_recall_curve(
    y_true: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score threshold (predict ``score >= t``).

    Returns
    -------
    precision, recall, thresholds : ndarray
        ``thresholds`` ascend; ``precision[i]``/``recall[i]`` belong to ``thresholds[i]``.
        The same points as :func:`sklearn.metrics.precision_recall_curve` without its final
        (precision=1, recall=0) point.
    """
    labels, values = _check_pair(y_true, scores, "scores")
    order = np.argsort(-values, kind="mergesort")
    values, labels = values[order], labels[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(values)), values.size - 1] if values.size else []
    tp = np.cumsum(labels)[last_of_run]
    predicted = np.asarray(last_of_run) + 1
    total_pos = labels.sum()
    precision = np.divide(tp, predicted, out=np.zeros(len(tp)), where=predicted > 0)
    recall = np.divide(tp, total_pos, out=np.zeros(len(tp)), where=total_pos > 0)
    return precision[::-1], recall[::-1], values[last_of_run][::-1]


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as a step sum (scikit-learn's definition)."""
    precision, recall, _ = precision_recall_curve(y_true, scores)
    if recall.size == 0 or recall[0] == 0:
        return 0.0
    recall_steps = -np.diff(np.r_[recall, 0.0])
    return float(np.sum(recall_steps * precision))


def best_threshold(
    y_true: np.ndarray,
    scores: np.ndarray,
    *,
    target_precision: float | None = None,
    target_recall: float | None = None,
) -> OperatingPoint:
    """Choose the score threshold of an operating point.

    By default the threshold that maximises F1. With ``target_precision`` it is the
    threshold with the highest recall whose precision reaches the target; with
    ``target_recall`` the one with the highest precision whose recall reaches it. If no
    threshold meets a target, the F1-best one is returned. The threshold returned lies
    midway between the chosen score and the next lower one, so small score changes do not
    flip the decision of the boundary crop.
    """
    if target_precision is not None and target_recall is not None:
        raise InvalidInputError("give target_precision or target_recall, not both.")
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    if thresholds.size == 0:
        return OperatingPoint(0.5, 0.0, 0.0, 0.0)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros_like(precision),
        where=(precision + recall) > 0,
    )
    candidates = np.ones(thresholds.size, dtype=bool)
    if target_precision is not None:
        candidates = precision >= target_precision
        key = recall
    elif target_recall is not None:
        candidates = recall >= target_recall
        key = precision
    else:
        key = f1
    if not candidates.any():
        candidates, key = np.ones(thresholds.size, dtype=bool), f1
    # Highest key; among ties the highest threshold (fewest predicted positives).
    masked = np.where(candidates, key, -np.inf)
    best = int(np.flatnonzero(masked == masked.max())[-1])
    threshold = thresholds[best]
    if best > 0:
        threshold = 0.5 * (thresholds[best] + thresholds[best - 1])
    return OperatingPoint(
        float(threshold), float(precision[best]), float(recall[best]), float(f1[best])
    )


def metrics_with_intervals(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """F1, precision and recall at ``threshold`` with bootstrap confidence intervals.

    Parameters
    ----------
    labels : (n,) array of {0, 1}
        Held-out labels.
    scores : (n,) array of float
        Held-out probabilities of signal.
    threshold : float
        Decision threshold (``score >= threshold`` is signal).
    n_boot : int
        Bootstrap resamples of the labels.
    seed : int
        Seed of the resampling.
    level : float
        Confidence level of the (percentile) intervals.

    Returns
    -------
    dict
        ``f1``, ``precision``, ``recall`` and ``f1_ci``, ``precision_ci``, ``recall_ci``
        (each a [low, high] pair), ``ci_level`` and ``n_heldout``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    decided = np.asarray(scores) >= threshold
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(labels), size=(n_boot, len(labels)))
    truth = labels[index].astype(bool)
    predicted = decided[index]
    tp = (truth & predicted).sum(axis=1)
    fp = (~truth & predicted).sum(axis=1)
    fn = (truth & ~predicted).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = {
            "precision": np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0),
            "recall": np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0),
        }
    point = precision_recall_f1(labels, decided.astype(np.int64))
    tail = 100 * (1 - level) / 2
    out: dict[str, Any] = {"ci_level": level, "n_heldout": len(labels)}
    for name, values in boot.items():
        out[name] = float(point[name])
        out[f"{name}_ci"] = [
            float(np.percentile(values, tail)),
            float(np.percentile(values, 100 - tail)),
        ]
    return out
