"""Routes of the review page: current labels and likely mislabels.

``/api/review`` lists the current labels; ``/api/mislabels`` those the latest model most
confidently contradicts (:func:`blobsift.active.likely_mislabels`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query

from blobsift.active import likely_mislabels
from blobsift.app._state import State
from blobsift.types import Label

__all__ = ["router"]

router = APIRouter()
if TYPE_CHECKING:
    Shown = str  # built from the vocabulary at run time, which mypy cannot follow
else:
    #: Which labels the review page lists: all, or those of one word.
    Shown = Literal[("all", *Label.words())]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/api/review")
def review(
    state: State,
    label: Shown = "all",
    limit: Limit = 60,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """A page of the current labels, newest first."""
    table = state.labels.current().table.iloc[::-1]
    if label != "all":
        table = table[table["label"] == Label.from_word(label)]
    page = table.iloc[offset : offset + limit]
    return {"total": len(table), "items": state.label_rows(page)}


@router.get("/api/mislabels")
def mislabels(state: State, limit: Limit = 60) -> dict[str, Any]:
    """Current labels the latest model's held-out scores most confidently contradict."""
    if not state.models:
        return {"model_id": None, "items": []}
    record = state.models[-1]
    heldout = state.project.call(lambda p: p.heldout_scores(record.id))
    table = state.labels.current().table
    merged = heldout.merge(
        table, on=["image_id", "row", "col"], suffixes=("_trained", ""), how="inner"
    )
    merged = merged[merged["label"] == merged["label_trained"]]
    order, score = likely_mislabels(
        merged["label"].to_numpy(), merged["probability"].to_numpy(), record.threshold, limit
    )
    picked = merged.iloc[order]
    items = state.label_rows(picked.drop(columns=["image_trained"]))
    for item, p, s in zip(items, picked["probability"].tolist(), score.tolist(), strict=True):
        item["heldout_proba"] = float(p)
        item["disagreement"] = float(s)
    return {"model_id": record.id, "threshold": record.threshold, "items": items}
