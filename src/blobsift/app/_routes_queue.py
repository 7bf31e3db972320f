"""Routes of the status panel and the queue.

``/api/status``, ``/api/queue`` and ``/api/candidate/{id}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter

from blobsift.active import ORDERS, rank
from blobsift.app._models import QueueIn
from blobsift.app._state import State
from blobsift.app.training import model_summary
from blobsift.classify.phases import PHASE2_MIN_LABELS
from blobsift.classify.sifter import Sifter
from blobsift.types import Label

__all__ = ["router"]

router = APIRouter()


@router.get("/api/status")
def status(state: State) -> dict[str, Any]:
    """Counts, models, training state and what the page needs to resume."""
    current = state.labels.current()
    proba, threshold = state.pool.scores()
    counts = current.counts()
    models = [model_summary(record) for record in state.models]
    latest = models[-1] if models else None
    signal, noise = int(counts.get(Label.SIGNAL, 0)), int(counts.get(Label.NOISE, 0))
    decided = signal + noise
    return {
        "project": state.root.name,
        "who": state.who,
        "session": state.session,
        "problem": state.problem,
        "candidates": len(state.pool),
        "channels": state.channels,
        "unlabelled": int(state.pool.open_for_labels(current.of_candidate).sum()),
        "labels": {label.word: int(counts.get(label, 0)) for label in Label.given()},
        "models": models,
        "latest": latest,
        "scored_by": state.pool.model_id,
        "threshold": threshold if proba is not None else None,
        # Phase 1 trains once each class has the fewest labels a fit accepts.
        "phase1": {
            "min_per_class": Sifter.min_per_class,
            "signal": signal,
            "noise": noise,
            "available": min(signal, noise) >= Sifter.min_per_class,
        },
        "phase2": {
            "min_labels": PHASE2_MIN_LABELS,
            "labels": decided,
            "labels_to_go": max(0, PHASE2_MIN_LABELS - decided),
        },
        "training": {"running": state.job.running, **state.job.state},
        "gallery": state.gallery() is not None,
        "orders": list(ORDERS),
        "last_event_id": state.hub.last_id,
        "label_event_id": current.mark,
    }


@router.post("/api/queue")
def queue(body: QueueIn, state: State) -> dict[str, Any]:
    """The next candidates to label, in the order asked, leaving out ``exclude``."""
    pool = state.pool
    labels = state.labels.current().of_candidate
    proba, threshold = pool.scores()
    queued = np.zeros(len(labels), dtype=bool)
    for cid in body.exclude:
        queued[pool.index(cid)] = True
    available = pool.open_for_labels(labels) & ~queued
    chosen = rank(
        body.order,
        available,
        body.n,
        descriptors=pool.descriptors,
        detector_score=pool.score,
        proba=proba,
        threshold=threshold,
        anchors=(labels != Label.UNLABELLED) | queued,
        seed=state.seed,
    )
    items = [pool.item(int(k), labels[k]) for k in chosen]
    return {"items": items, "remaining": int(available.sum())}


@router.get("/api/candidate/{cid}")
def candidate(cid: str, state: State) -> dict[str, Any]:
    """One candidate, its current label and its Phase 1 neighbours."""
    k = state.pool.index(cid)
    label = state.labels.current().of_candidate[k]
    return {**state.pool.item(k, label), "neighbours": state.neighbours(k)}
