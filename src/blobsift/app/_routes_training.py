"""Routes of training and the event stream: ``/api/train`` and ``/api/events``.

The stream is server-sent events (``label``, ``labels``, ``training``) replayed from the
:class:`~blobsift.app.training.EventHub`; it stays open ``stream_seconds`` and the
browser reconnects, resuming after the last event id it saw.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from blobsift.app._state import State
from blobsift.app.training import EventHub

__all__ = ["router"]

router = APIRouter()


@router.post("/api/train")
def train(state: State) -> JSONResponse:
    """Start training in the background (202), unless it is already running (409)."""
    if not state.job.start():
        return JSONResponse({"started": False, "detail": "already training"}, 409)
    return JSONResponse({"started": True}, 202)


@router.get("/api/events")
async def events(request: Request, state: State, after: int | None = None) -> StreamingResponse:
    """The events after ``after`` (or the ``Last-Event-ID`` header), as a stream."""
    header = request.headers.get("last-event-id", "")
    last = after if after is not None else int(header) if header.isdigit() else 0
    return StreamingResponse(
        _stream(request, state.hub, last, state.stream_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sse(event_id: int, kind: str, data: dict[str, Any]) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"


async def _stream(request: Request, hub: EventHub, last: int, seconds: float) -> AsyncIterator[str]:
    """Server-sent events after ``last`` for ``seconds``, then end (the browser reconnects)."""
    yield "retry: 500\n\n"
    start = beat = time.monotonic()
    while time.monotonic() - start < seconds:
        for event_id, kind, data in hub.since(last):
            last = event_id
            yield _sse(event_id, kind, data)
        if time.monotonic() - beat > 5:
            beat = time.monotonic()
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.2)
