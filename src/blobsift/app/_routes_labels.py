"""Routes that write labels: one, a grid page, undo and relabel.

``/api/label``, ``/api/labels``, ``/api/undo`` and ``/api/relabel``.

Every write goes through :class:`~blobsift.app.labels.CurrentLabels` to the store (one
committed transaction) before the response acknowledges it with the event id; the labels
the app shows are read back from the store, never mirrored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from blobsift.app._models import LabelIn, LabelsIn, RelabelIn, UndoIn
from blobsift.app._state import State
from blobsift.exceptions import InvalidInputError
from blobsift.project import Project
from blobsift.types import Label

__all__ = ["router"]

router = APIRouter()


@router.post("/api/label")
def label(body: LabelIn, state: State) -> dict[str, Any]:
    """Label one candidate."""
    event = state.write_labels([body], source="web", session=body.session)[0]
    return {"event_id": event, "id": body.id, "label": body.label}


@router.post("/api/labels")
def labels(body: LabelsIn, state: State) -> dict[str, Any]:
    """Label a page of candidates in one transaction."""
    events = state.write_labels(body.items, source="web:grid", session=body.session)
    return {"event_ids": events, "count": len(events)}


@router.post("/api/undo")
def undo(body: UndoIn, state: State) -> JSONResponse:
    """Undo the latest label of a session; 409 when the store refuses."""
    session = state.session_of(body.session)

    def undo_latest(p: Project) -> tuple[int, Any] | None:
        event = p.undo(who=state.who, session=session)
        if event is None:
            return None
        log = p.label_events()
        return event, log[log["id"] == event].iloc[0]

    try:
        done = state.labels.write(undo_latest, events=lambda d: [] if d is None else [d[0]])
    except InvalidInputError as error:
        return JSONResponse({"detail": str(error)}, status_code=409)
    if done is None:
        return JSONResponse({"event_id": None, "id": None, "label": None})
    event, row = done
    k = state.pool.find(int(row["image_id"]), float(row["row"]), float(row["col"]))
    cid = None if k is None else state.pool.ids[k]
    value = row["label"]
    restored = None if value is None or np.isnan(value) else Label(int(value)).word
    state.hub.publish("label", {"id": cid, "label": restored, "event_id": event})
    return JSONResponse({"event_id": event, "id": cid, "label": restored})


@router.post("/api/relabel")
def relabel(body: RelabelIn, state: State) -> dict[str, Any]:
    """Give a labelled position (named by its current label event) a new label."""
    image_id, row, col = state.label_position(body.event_id)
    value = int(Label.from_word(body.label))
    session = state.session_of(body.session)
    event = state.labels.write(
        lambda p: p.label(
            image_id, row, col, value, who=state.who, source="web:review", session=session
        ),
        events=lambda event: [event],
    )
    state.hub.publish("label", {"id": None, "label": body.label, "event_id": event})
    return {"event_id": event, "label": body.label}
