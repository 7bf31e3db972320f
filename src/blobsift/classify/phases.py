"""When to move from Phase 1 (Siamese gallery) to Phase 2 (direct CNN).

Two decisions, both from the phase history (one :class:`PhaseRecord` per fit so far):

- :func:`recommend_phase`: has Phase 1 plateaued, so that Phase 2 should be tried?
- :func:`phase2_retry`: was Phase 2 tried recently and not kept? Then it is not tried
  again until the labels have grown by :data:`PHASE2_RETRY_GROWTH`.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil
from typing import Any, NamedTuple

import numpy as np

from blobsift.exceptions import InvalidInputError
from blobsift.metrics import MIN_HELDOUT_POSITIVES, too_few_positives

__all__ = [
    "PHASE2_MIN_LABELS",
    "PHASE2_RETRY_GROWTH",
    "PHASES",
    "PLATEAU_TOLERANCE",
    "PhaseRecord",
    "phase2_retry",
    "phase_records",
    "recommend_phase",
]

#: What ``Sifter(phase=...)`` accepts: choose automatically, Phase 1 or Phase 2.
PHASES = ("auto", "siamese", "cnn")

#: Labels below which Phase 2 is never recommended (the specification's threshold).
PHASE2_MIN_LABELS = 100
#: A Phase 1 score gain smaller than this over the recent label increments is a plateau.
PLATEAU_TOLERANCE = 0.01
#: Phase 2, tried and not kept at n labels, is tried again from this many times n labels.
PHASE2_RETRY_GROWTH = 2.0
#: "Recent" label increments: the earlier scores at no fewer than this share of the labels.
_RECENT_SHARE = 0.5


class PhaseRecord(NamedTuple):
    """One fit in the phase history.

    A plain ``(labels, score)`` pair is a record too, with the other fields unknown.

    Attributes
    ----------
    labels : int
        Labels the fit had.
    score : float
        Phase 1's held-out score (see :data:`~blobsift.classify.sifter.PHASE_SCORES`).
    positives : int or None
        Signal labels among them: a score from fewer than
        :data:`~blobsift.metrics.MIN_HELDOUT_POSITIVES` is no evidence of a plateau.
    phase2_score : float or None
        Phase 2's held-out score if it was tried in that fit and not kept (a short probe's
        or the full ensemble's); None if it was not tried, or was kept.
    """

    labels: int
    score: float
    positives: int | None = None
    phase2_score: float | None = None

    @classmethod
    def from_fit(
        cls, labels: int, positives: int, phase: str, phase_scores: dict[str, float]
    ) -> PhaseRecord | None:
        """The record of a fit from its phase and held-out scores (``Sifter.phase_scores_``).

        None if the fit did not train Phase 1 (there is no Phase 1 score to record).
        """
        if phase_scores.get("siamese") is None:
            return None
        phase2 = phase_scores.get("cnn", phase_scores.get("cnn_probe"))
        return cls(
            int(labels),
            float(phase_scores["siamese"]),
            int(positives),
            None if phase == "cnn" or phase2 is None else float(phase2),
        )


def phase_records(history: Sequence[Any], *, name: str = "history") -> list[PhaseRecord]:
    """Check a phase history and return it as :class:`PhaseRecord` entries, by labels.

    Parameters
    ----------
    history : sequence
        ``(labels, score)`` pairs or :class:`PhaseRecord`-like sequences of 2 to 4 fields.
    name : str
        How errors name ``history``.

    Raises
    ------
    InvalidInputError
        If an entry is not a (labels >= 0, finite score, ...) sequence.
    """
    records = []
    for index, entry in enumerate(history):
        try:
            labels, score, *rest = entry
            if len(rest) > 2:
                raise ValueError
            positives, phase2 = [*rest, None, None][:2]
            record = PhaseRecord(
                int(labels),
                float(score),
                None if positives is None else int(positives),
                None if phase2 is None else float(phase2),
            )
        except (TypeError, ValueError):
            record = None
        if (
            record is None
            or record.labels < 0
            or not np.isfinite(record.score)
            or (record.phase2_score is not None and not np.isfinite(record.phase2_score))
        ):
            raise InvalidInputError(
                f"{name}[{index}] must be (number of labels >= 0, finite score[, positives[, "
                f"Phase 2 score]]); got {entry!r}."
            )
        records.append(record)
    return sorted(records, key=lambda record: record.labels)


def recommend_phase(
    history: Sequence[Any],
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

    A score from fewer than :data:`~blobsift.metrics.MIN_HELDOUT_POSITIVES` positives is
    not an estimate: earlier such scores are left out of the comparison, and if the latest
    is one, nothing can show a plateau and Phase 1 is kept.

    Parameters
    ----------
    history : sequence of (int, float) or PhaseRecord
        ``(number of labels, held-out Phase 1 score)`` pairs, e.g. the average precision
        of each model trained so far, or :class:`PhaseRecord` entries (which also know the
        positives). Order does not matter; the entry with most labels is the current one.
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
    >>> recommend_phase([(50, 1.0, 4), (120, 1.0, 4)])[0]
    'siamese'
    """
    if len(history) == 0:
        raise InvalidInputError("history is empty; it needs at least the current (labels, score).")
    records = phase_records(history)
    current = records[-1]
    labels, score = current.labels, current.score
    if labels < min_labels:
        return "siamese", (
            f"{labels} labels: Phase 2 needs {min_labels}+, so the Siamese gallery (Phase 1), "
            "which learns from few labels, is used."
        )
    if too_few_positives(current.positives):
        return "siamese", (
            f"{labels} labels but only {current.positives} signal: too few positives to "
            f"estimate Phase 1's held-out score ({MIN_HELDOUT_POSITIVES} needed), so nothing "
            "shows a plateau and Phase 1 is kept."
        )
    recent = [
        record
        for record in records[:-1]
        if _RECENT_SHARE * labels <= record.labels < labels
        and not too_few_positives(record.positives)
    ]
    if not recent:
        return "cnn", (
            f"{labels} labels and no Phase 1 score from the recent label increments (with "
            f"{MIN_HELDOUT_POSITIVES}+ positives) to show it still improving: the direct CNN "
            "(Phase 2) is tried."
        )
    reference = max(recent, key=lambda record: record.score)
    ref_labels, ref_score = reference.labels, reference.score
    gain = score - ref_score
    change = (
        f"Phase 1's held-out score went from {ref_score:.3f} at {ref_labels} labels to "
        f"{score:.3f} at {labels}"
    )
    if gain < tolerance:
        return "cnn", f"{change} ({gain:+.3f} < {tolerance}): it has plateaued, so Phase 2 is used."
    return "siamese", f"{change} ({gain:+.3f}): it is still improving, so Phase 1 is kept."


def phase2_retry(history: Sequence[Any], *, growth: float = PHASE2_RETRY_GROWTH) -> str | None:
    """Why Phase 2 should not be tried now, or None if nothing in the history says so.

    Phase 2 tried at ``n`` labels and not kept is not tried again before ``growth * n``
    labels: with few more labels its held-out score will not have moved much, and trying
    it costs most of a fit's time.

    Parameters
    ----------
    history : sequence of PhaseRecord
        The phase history, the current fit included (see :func:`phase_records`).
    growth : float
        Factor the labels must grow by after a Phase 2 that was not kept.

    Returns
    -------
    str or None
        A sentence saying when Phase 2 lost and when it is tried again; None to try it.

    Examples
    --------
    >>> phase2_retry([(100, 0.9, 9, 0.8), (150, 0.9, 14)]) is not None
    True
    >>> phase2_retry([(100, 0.9, 9, 0.8), (200, 0.9, 18)]) is None
    True
    """
    records = phase_records(history)
    labels = records[-1].labels
    lost = [record for record in records[:-1] if record.phase2_score is not None]
    if not lost or labels >= growth * lost[-1].labels:
        return None
    last = lost[-1]
    return (
        f"Phase 2 was tried at {last.labels} labels and not kept (held-out score "
        f"{last.phase2_score:.3f} against Phase 1's {last.score:.3f}); it is tried again "
        f"from {ceil(growth * last.labels)} labels."
    )
