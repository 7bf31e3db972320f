"""When to move from Phase 1 (Siamese gallery) to Phase 2 (direct CNN)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from blobsift.exceptions import InvalidInputError

__all__ = ["PHASE2_MIN_LABELS", "PHASES", "PLATEAU_TOLERANCE", "recommend_phase"]

#: What ``Sifter(phase=...)`` accepts: choose automatically, Phase 1 or Phase 2.
PHASES = ("auto", "siamese", "cnn")

#: Labels below which Phase 2 is never recommended (the specification's threshold).
PHASE2_MIN_LABELS = 100
#: A Phase 1 score gain smaller than this over the recent label increments is a plateau.
PLATEAU_TOLERANCE = 0.01
#: "Recent" label increments: the earlier scores at no fewer than this share of the labels.
_RECENT_SHARE = 0.5


def recommend_phase(
    history: Sequence[tuple[int, float]],
    *,
    min_labels: int = PHASE2_MIN_LABELS,
    tolerance: float = PLATEAU_TOLERANCE,
) -> tuple[str, str]:
    """Recommend the learning phase from the history of Phase 1's held-out scores.

    The rule of the specification — switch to the direct CNN "when Siamese accuracy
    plateaus AND you have 100+ labels" — made precise: Phase 2 is recommended when the
    latest entry has at least ``min_labels`` labels and its Phase 1 score beats the best
    earlier score among the recent label increments (entries with at least half as many
    labels) by less than ``tolerance``. With 100+ labels but no recent earlier score to
    compare with, nothing shows Phase 1 still improving, so Phase 2 is recommended too
    (:class:`~blobsift.Sifter` then keeps it only if its held-out score beats Phase 1's).

    Parameters
    ----------
    history : sequence of (int, float)
        ``(number of labels, held-out Phase 1 score)`` pairs, e.g. the out-of-fold average
        precision of each model trained so far. Order does not matter; the entry with most
        labels is the current one.
    min_labels : int
        Fewest labels for Phase 2.
    tolerance : float
        Smallest score gain that counts as improving.

    Returns
    -------
    phase : {"siamese", "cnn"}
    reason : str
        One sentence a person can read.

    Examples
    --------
    >>> recommend_phase([(25, 0.60), (50, 0.70)])[0]
    'siamese'
    >>> recommend_phase([(50, 0.80), (80, 0.85), (120, 0.852)])[0]
    'cnn'
    """
    if len(history) == 0:
        raise InvalidInputError("history is empty; it needs at least the current (labels, score).")
    entries = np.array([(float(n), float(score)) for n, score in history], dtype=np.float64)
    if entries.ndim != 2 or not np.isfinite(entries).all() or (entries[:, 0] < 0).any():
        raise InvalidInputError(
            "history must hold (number of labels >= 0, finite score) pairs; got "
            f"{list(history)[:3]}..."
        )
    entries = entries[np.argsort(entries[:, 0], kind="stable")]
    labels, score = int(entries[-1, 0]), entries[-1, 1]
    if labels < min_labels:
        return "siamese", (
            f"{labels} labels: Phase 2 needs {min_labels}+, so the Siamese gallery (Phase 1), "
            "which learns from few labels, is used."
        )
    earlier = entries[:-1]
    recent = earlier[(earlier[:, 0] >= _RECENT_SHARE * labels) & (earlier[:, 0] < labels)]
    if len(recent) == 0:
        return "cnn", (
            f"{labels} labels and no Phase 1 score from the recent label increments to show it "
            "still improving: the direct CNN (Phase 2) is tried."
        )
    best = int(np.argmax(recent[:, 1]))
    ref_labels, ref_score = int(recent[best, 0]), recent[best, 1]
    gain = score - ref_score
    change = (
        f"Phase 1's held-out score went from {ref_score:.3f} at {ref_labels} labels to "
        f"{score:.3f} at {labels}"
    )
    if gain < tolerance:
        return "cnn", f"{change} ({gain:+.3f} < {tolerance}): it has plateaued, so Phase 2 is used."
    return "siamese", f"{change} ({gain:+.3f}): it is still improving, so Phase 1 is kept."
