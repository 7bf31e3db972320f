"""Active labelling: which candidate to show next, and which labels to look at again.

The ranking behind the labelling app, without the app (no web stack, no store): pure
numpy, deterministic given its inputs and seed.

- Queue order: :func:`rank` dispatches to :func:`rank_useful` (the "most useful next"
  order: uncertain, likely positive and diverse crops first), :func:`rank_random` or
  :func:`rank_by_score`; :func:`crop_descriptors` describes crops for the diversity.
- Likely mislabels: :func:`disagreement` scores how confidently a model contradicts each
  label, and :func:`likely_mislabels` lists the labels most worth a second look.
"""

from __future__ import annotations

import numpy as np

from blobsift.crops import centre_window, normalise_crops
from blobsift.exceptions import InvalidInputError

__all__ = [
    "MISLABEL_MIN",
    "ORDERS",
    "crop_descriptors",
    "disagreement",
    "likely_mislabels",
    "rank",
    "rank_by_score",
    "rank_random",
    "rank_useful",
]

#: Queue orders the labelling app offers; the first is the default.
ORDERS = ("useful", "random", "score")
#: Smallest :func:`disagreement` listed as a likely mislabel.
MISLABEL_MIN = 0.5

_DESCRIPTOR_WINDOW = 32  # central pixels of a crop that describe it
_DESCRIPTOR_BLOCK = 4  # block-average factor: a 32x32 window becomes 8x8 numbers


def crop_descriptors(crops: np.ndarray) -> np.ndarray:
    """Cheap appearance descriptors of crops, for the diversity of a queue.

    Each crop is normalised (:func:`blobsift.crops.normalise_crops`: background
    subtracted, in noise sigmas, ``asinh`` compressed), its central 32x32 window is
    averaged in 4x4 blocks, and the resulting 64 numbers are the descriptor.

    Parameters
    ----------
    crops : (n, 64, 64) array
        Raw crops.

    Returns
    -------
    (n, 64) float32 array
    """
    crops = np.asarray(crops, dtype=np.float32)
    if crops.shape[0] == 0:
        side = _DESCRIPTOR_WINDOW // _DESCRIPTOR_BLOCK
        return np.empty((0, side * side), np.float32)
    window = np.ascontiguousarray(centre_window(crops, _DESCRIPTOR_WINDOW))
    normalised = normalise_crops(window)[:, 0]
    n, side = len(normalised), _DESCRIPTOR_WINDOW // _DESCRIPTOR_BLOCK
    blocks = normalised.reshape(n, side, _DESCRIPTOR_BLOCK, side, _DESCRIPTOR_BLOCK)
    return blocks.mean(axis=(2, 4)).reshape(n, side * side).astype(np.float32)


def _unit_rows(descriptors: np.ndarray) -> np.ndarray:
    """Centre the descriptors on their mean and scale each row to unit length."""
    centred = descriptors - descriptors.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return centred / np.where(norms > 0, norms, 1.0)


def _percentile_rank(values: np.ndarray) -> np.ndarray:
    """Each value's rank scaled to [0, 1] (NaN ranks lowest; ties share the mean rank)."""
    n = len(values)
    if n <= 1:
        return np.ones(n)
    filled = np.where(np.isnan(values), -np.inf, values)
    order = np.argsort(filled, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n)
    _, inverse, counts = np.unique(filled, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse] / (n - 1)


def _uncertainty(proba: np.ndarray, threshold: float) -> np.ndarray:
    """1 at the decision threshold, falling linearly to 0 at probability 0 and 1."""
    below = proba < threshold
    span = np.where(below, max(threshold, 1e-9), max(1.0 - threshold, 1e-9))
    return np.clip(1.0 - np.abs(proba - threshold) / span, 0.0, 1.0)


def rank_useful(
    descriptors: np.ndarray,
    available: np.ndarray,
    k: int,
    *,
    proba: np.ndarray | None = None,
    threshold: float = 0.5,
    detector_score: np.ndarray | None = None,
    anchors: np.ndarray | None = None,
    positive_weight: float = 0.5,
    diversity_weight: float = 0.6,
    shortlist: int = 20,
    seed: int = 0,
) -> np.ndarray:
    """Choose the ``k`` most useful candidates to label next, best first.

    Each available candidate gets a usefulness: with a model, how close its signal
    probability is to the decision threshold (1 at the threshold, 0 at 0 or 1) plus
    ``positive_weight`` times the probability itself, since positives are rare and each
    one teaches more; without a model, the percentile rank of its detector score. The
    best ``shortlist * k`` are then taken greedily, each time the one whose usefulness
    minus ``diversity_weight`` times its largest cosine similarity to the anchors and the
    candidates already chosen is highest, so near-duplicates of what was labelled or
    queued wait.

    Parameters
    ----------
    descriptors : (n, d) array
        Appearance descriptors (:func:`crop_descriptors`) of every candidate.
    available : (n,) bool array
        Candidates that may be chosen (unlabelled, not already queued).
    k : int
        How many to choose (fewer when fewer are available).
    proba : (n,) array, optional
        The current model's signal probability of each candidate; None before any model.
    threshold : float
        The model's decision threshold.
    detector_score : (n,) array, optional
        Detector scores (NaN where unknown), used before there is a model.
    anchors : (n,) bool array, optional
        Candidates to stay away from: those labelled and those already queued.
    positive_weight, diversity_weight : float
        Weights of likely positives and of diversity (see above).
    shortlist : int
        How many candidates per chosen one the greedy diversity step considers.
    seed : int
        Seed of the tiny jitter that breaks ties.

    Returns
    -------
    (m,) int array
        Indices of the chosen candidates, ``m = min(k, available.sum())``.
    """
    descriptors = np.asarray(descriptors, dtype=np.float64)
    available = np.asarray(available, dtype=bool)
    n = len(descriptors)
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64)
        usefulness = _uncertainty(proba, threshold) + positive_weight * proba
    elif detector_score is not None:
        usefulness = _percentile_rank(np.asarray(detector_score, dtype=np.float64))
    else:
        usefulness = np.zeros(n)
    usefulness = usefulness + np.random.default_rng(seed).uniform(0.0, 1e-6, n)
    pool = np.flatnonzero(available)
    k = min(int(k), len(pool))
    if k <= 0:
        return np.empty(0, np.int64)
    keep = min(len(pool), max(shortlist * k, 200))
    pool = pool[np.argsort(-usefulness[pool], kind="stable")[:keep]]
    unit = _unit_rows(descriptors)
    similarity = np.full(len(pool), -1.0)
    anchor_ids = np.flatnonzero(anchors) if anchors is not None else np.empty(0, np.int64)
    for start in range(0, len(anchor_ids), 4096):
        block = unit[anchor_ids[start : start + 4096]]
        similarity = np.maximum(similarity, (unit[pool] @ block.T).max(axis=1))
    gain = usefulness[pool]
    chosen = np.empty(k, np.int64)
    free = np.ones(len(pool), dtype=bool)
    for step in range(k):
        value = np.where(free, gain - diversity_weight * np.clip(similarity, 0.0, None), -np.inf)
        best = int(np.argmax(value))
        chosen[step] = pool[best]
        free[best] = False
        similarity = np.maximum(similarity, unit[pool] @ unit[pool[best]])
    return chosen


def rank_random(available: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """``k`` available candidates in a random order that stays put as labels arrive.

    The order is one seeded permutation of all candidates, filtered to those available,
    so a reload shows the same next candidate.
    """
    available = np.asarray(available, dtype=bool)
    order = np.random.default_rng(seed).permutation(len(available))
    return order[available[order]][: max(int(k), 0)]


def rank_by_score(available: np.ndarray, k: int, detector_score: np.ndarray) -> np.ndarray:
    """``k`` available candidates by descending detector score (unknown scores last)."""
    available = np.asarray(available, dtype=bool)
    score = np.asarray(detector_score, dtype=np.float64)
    order = np.lexsort((np.arange(len(score)), -np.nan_to_num(score, nan=-np.inf)))
    return order[available[order]][: max(int(k), 0)]


def rank(
    order: str,
    available: np.ndarray,
    k: int,
    *,
    descriptors: np.ndarray,
    detector_score: np.ndarray,
    proba: np.ndarray | None = None,
    threshold: float = 0.5,
    anchors: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The next ``k`` candidates in queue order ``order`` (one of :data:`ORDERS`).

    Parameters
    ----------
    order : {"useful", "random", "score"}
        :func:`rank_useful`, :func:`rank_random` or :func:`rank_by_score`.
    available : (n,) bool array
        Candidates that may be chosen.
    k : int
        How many to choose.
    descriptors, detector_score, proba, threshold, anchors, seed
        As for :func:`rank_useful` (each order uses the ones it needs).

    Returns
    -------
    (m,) int array
        Indices of the chosen candidates, first to show first.

    Raises
    ------
    InvalidInputError
        For an unknown order.
    """
    if order == "useful":
        return rank_useful(
            descriptors,
            available,
            k,
            proba=proba,
            threshold=threshold,
            detector_score=detector_score,
            anchors=anchors,
            seed=seed,
        )
    if order == "random":
        return rank_random(available, k, seed=seed)
    if order == "score":
        return rank_by_score(available, k, detector_score)
    raise InvalidInputError(f"queue order must be one of {ORDERS}; got {order!r}.")


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


def likely_mislabels(
    labels: np.ndarray,
    proba: np.ndarray,
    threshold: float,
    limit: int,
    *,
    min_disagreement: float = MISLABEL_MIN,
) -> tuple[np.ndarray, np.ndarray]:
    """The labels a model most confidently contradicts, most confident first.

    Parameters
    ----------
    labels : (n,) array of {0, 1}
    proba : (n,) array
        Held-out signal probabilities of the labelled crops.
    threshold : float
        The model's decision threshold.
    limit : int
        How many to list at most.
    min_disagreement : float
        Smallest :func:`disagreement` listed.

    Returns
    -------
    index : (m,) int array
        Rows of ``labels`` listed, ``m <= limit`` (ties keep their order).
    score : (m,) float array
        Their disagreement.
    """
    score = disagreement(labels, proba, threshold)
    order = np.argsort(-score, kind="stable")
    order = order[score[order] >= min_disagreement][: max(int(limit), 0)]
    return order, score[order]
