"""The labelling app: a FastAPI application over a project (``blobsift label``).

Candidates and crops are addressed by id only (``IMAGE-INDEX`` for candidates, label event
ids, model gallery rows); no file path ever comes from the client. Every label is written
through :class:`~blobsift.store.Project` (one committed transaction) before the response
that acknowledges it with the event id.

Labels are read from the store only (:class:`~blobsift.web.labels.CurrentLabels`), so
labels other processes write show in the queue and the counts; a watcher polls the label
log and tells the pages (event ``labels``) when they came from elsewhere. Each browser tab
sends its own ``session`` id with its labels, and undo undoes that session's labels only;
a client that sends none shares the server's session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from blobsift.classify.phases import PHASE2_MIN_LABELS
from blobsift.exceptions import BlobsiftError, InvalidInputError, ModelFileError, ProjectError
from blobsift.store import ModelRecord, Project, default_who
from blobsift.web.db import ProjectThread
from blobsift.web.guard import MAX_BODY, Guard
from blobsift.web.imaging import context_png, crop_png
from blobsift.web.labels import CurrentLabels
from blobsift.web.pool import UNLABELLED, CandidatePool
from blobsift.web.review import disagreement
from blobsift.web.suggest import ORDERS, rank
from blobsift.web.training import EventHub, TrainingJob, model_summary

__all__ = ["LABELS", "create_app"]

#: Label words the API accepts, and their values in the store.
LABELS = {"signal": 1, "noise": 0, "unsure": -1}
_NAMES = {value: name for name, value in LABELS.items()}
_STATIC = resources.files("blobsift.web") / "static"
#: Seconds an event stream stays open before the browser reconnects (and resumes).
STREAM_SECONDS = 20.0
#: Seconds between two looks at the label log for labels written by other processes.
POLL_SECONDS = 1.0
_NEIGHBOURS = 6
_MISLABEL_MIN = 0.5  # smallest disagreement listed as a likely mislabel
_IMAGE_CACHE = "private, max-age=86400"

Word = Literal["signal", "noise", "unsure"]
#: A browser tab's session id (the page makes a random one per tab).
_SESSION = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$")


class GridItem(BaseModel):
    """One label of one candidate."""

    id: str = Field(max_length=40)
    label: Word


class LabelIn(GridItem):
    """One label of one candidate, from a client session."""

    session: str | None = _SESSION


class LabelsIn(BaseModel):
    """Labels of a page of candidates (the grid view), written in one transaction."""

    items: list[GridItem] = Field(min_length=1, max_length=200)
    session: str | None = _SESSION


class RelabelIn(BaseModel):
    """A new label for a labelled position, named by its current label event."""

    event_id: int
    label: Word
    session: str | None = _SESSION


class UndoIn(BaseModel):
    """Which session's latest label to undo."""

    session: str | None = _SESSION


class QueueIn(BaseModel):
    """What the page asks of the queue."""

    order: Literal["useful", "random", "score"] = "useful"
    n: int = Field(default=10, ge=1, le=100)
    exclude: list[str] = Field(default_factory=list, max_length=400)


class _State:
    """Everything the routes share: database thread, candidates, events, training."""

    def __init__(
        self,
        root: Path,
        who: str,
        train_options: dict[str, Any],
        seed: int,
    ) -> None:
        self.root = root
        self.session = secrets.token_hex(6)
        self.who = who
        self.seed = seed
        self.db = ProjectThread(root)
        self.pool = self.db.call(CandidatePool.load)
        self.hub = EventHub()
        self.labels = CurrentLabels(self.db, self.pool, self._labelled_elsewhere)
        self.job = TrainingJob(root, self.hub, self._after_training, train_options)
        self.models: list[ModelRecord] = self.db.call(lambda p: p.models())
        self._gallery: dict[int, tuple[Any, Any]] = {}
        self.problem: str | None = None
        if self.models:
            latest = self.models[-1]
            try:
                sifter = self.db.call(lambda p: p.load_model(latest.id))
            except (ProjectError, ModelFileError) as error:  # label on, without scores
                self.problem = f"the latest model cannot be loaded: {error}"
            else:
                self.pool.set_scores(self.pool.score_all(sifter), latest.threshold, latest.id)

    def _after_training(self, project: Project, record: ModelRecord) -> None:
        sifter = project.load_model(record.id)
        self.pool.set_scores(self.pool.score_all(sifter), record.threshold, record.id)
        self.models = project.models()

    def _labelled_elsewhere(self, count: int, mark: int) -> None:
        self.hub.publish("labels", {"external": count, "label_event_id": mark})

    # -- labels -------------------------------------------------------------------------
    def session_of(self, session: str | None) -> str:
        """A client's session id: its own, or the server's for a client that sends none."""
        return session or self.session

    def write_labels(self, items: list[GridItem], source: str, session: str | None) -> list[int]:
        rows = [self.pool.index(item.id) for item in items]
        values = [LABELS[item.label] for item in items]
        pool = self.pool
        events = self.labels.write(
            lambda p: p.add_labels(
                [int(pool.image_id[k]) for k in rows],
                [float(pool.row[k]) for k in rows],
                [float(pool.col[k]) for k in rows],
                values,
                who=self.who,
                source=source,
                session=self.session_of(session),
            ),
            events=lambda ids: ids,
        )
        for item, event in zip(items, events, strict=True):
            self.hub.publish("label", {"id": item.id, "label": item.label, "event_id": event})
        return events

    def label_position(self, event_id: int) -> tuple[int, float, float]:
        """(image id, row, col) of a current label, by its event id."""
        table = self.labels.current().table
        found = table[table["event_id"] == event_id]
        if not len(found):
            raise InvalidInputError(f"no current label with event id {event_id}.")
        first = found.iloc[0]
        return int(first["image_id"]), float(first["row"]), float(first["col"])

    # -- model gallery ------------------------------------------------------------------
    def gallery(self) -> tuple[ModelRecord, Any, Any] | None:
        """(record, sifter, held-out table) of the latest Phase 1 (siamese) model."""
        siamese = [record for record in self.models if record.phase == "siamese"]
        if not siamese:
            return None
        record = siamese[-1]
        if record.id not in self._gallery:  # keep the latest gallery only
            try:
                loaded = self.db.call(
                    lambda p: (p.load_model(record.id), p.heldout_scores(record.id))
                )
            except (ProjectError, ModelFileError) as error:
                self.problem = f"the Phase 1 gallery cannot be loaded: {error}"
                return None
            self._gallery = {record.id: loaded}
        sifter, heldout = self._gallery[record.id]
        return record, sifter, heldout

    def neighbours(self, k: int) -> list[dict[str, Any]]:
        found = self.gallery()
        if found is None:
            return []
        record, sifter, heldout = found
        similarity, index = sifter.kneighbors(self.pool.crop(k)[None], _NEIGHBOURS)
        out = []
        for sim, row in zip(similarity[0].tolist(), index[0].tolist(), strict=True):
            if row >= len(heldout):  # gallery crops added after training have no record
                continue
            out.append(
                {
                    "similarity": float(sim),
                    "label": _NAMES[int(heldout["label"].iloc[row])],
                    "src": f"/api/gallery/{record.id}/{int(row)}.png",
                }
            )
        return out


def _label_rows(state: _State, table: Any) -> list[dict[str, Any]]:
    """JSON rows for current labels (newest first) with their candidate and model score."""
    pool = state.pool
    proba = pool.proba
    rows = []
    for image_id, image, row, col, label, who, when, event in zip(
        table["image_id"].tolist(),
        table["image"].tolist(),
        table["row"].tolist(),
        table["col"].tolist(),
        table["label"].tolist(),
        table["who"].tolist(),
        table["created_at"].tolist(),
        table["event_id"].tolist(),
        strict=True,
    ):
        k = pool.find(int(image_id), row, col)
        rows.append(
            {
                "event_id": int(event),
                "id": None if k is None else pool.ids[k],
                "image": image,
                "row": row,
                "col": col,
                "label": _NAMES[int(label)],
                "who": who,
                "created_at": when,
                "proba": None if k is None or proba is None else float(proba[k]),
                "src": f"/api/label-crop/{int(event)}.png",
            }
        )
    return rows


def _png(data: bytes) -> Response:
    # Cacheable: the page adds this server's session to every image URL, so prefetched
    # crops show without a second request and a restarted server never shows stale ones.
    return Response(data, media_type="image/png", headers={"Cache-Control": _IMAGE_CACHE})


def _static_file(name: str) -> Path:
    return Path(str(_STATIC / name))


def create_app(
    project: str | Path | Project,
    *,
    token: str | None = None,
    who: str | None = None,
    train_options: dict[str, Any] | None = None,
    seed: int = 0,
    max_body: int = MAX_BODY,
    stream_seconds: float = STREAM_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    debug: bool = False,
) -> FastAPI:
    """Build the labelling app of a project.

    Parameters
    ----------
    project : path-like or Project
        The project folder (of a Project only its folder is used: the app opens its own
        connection, on a thread of its own, and training opens another).
    token : str, optional
        Access token every request must carry (see :mod:`blobsift.web.guard`); None for
        an app bound to loopback, which then only answers loopback Host names.
    who : str, optional
        Recorded as the author of every label; default the login name.
    train_options : dict, optional
        Keyword arguments of :meth:`Project.train` for the ``t`` key (e.g. ``epochs``).
    seed : int
        Seed of the queue orders.
    max_body : int
        Largest request body in bytes.
    stream_seconds : float
        How long one event stream stays open before the browser reconnects.
    poll_seconds : float
        How often the app looks for labels written by other processes (while it runs
        under a server; requests look too).
    debug : bool
        Serve the API description (``/openapi.json``) and its page (``/docs``, which
        loads its script from a CDN and so goes without the Content-Security-Policy).

    Returns
    -------
    FastAPI
        With ``app.state.web`` holding the shared state; its lifespan watches the label
        log and closes the database.
    """
    root = project.root if isinstance(project, Project) else Path(project).resolve()
    state = _State(root, who or default_who(), dict(train_options or {}), seed)

    async def watch_labels() -> None:
        while True:
            await asyncio.sleep(poll_seconds)
            await asyncio.to_thread(state.labels.current)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = asyncio.create_task(watch_labels())
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            state.db.close()

    app = FastAPI(
        title="blobsift labelling",
        lifespan=lifespan,
        docs_url="/docs" if debug else None,
        redoc_url=None,
        openapi_url="/openapi.json" if debug else None,
    )
    app.state.web = state
    app.add_middleware(
        Guard, token=token, max_body=max_body, open_paths=("/docs",) if debug else ()
    )
    app.mount("/static", StaticFiles(directory=_static_file("")), name="static")

    @app.exception_handler(BlobsiftError)
    async def blobsift_error(request: Request, error: BlobsiftError) -> JSONResponse:
        status = 404 if isinstance(error, InvalidInputError | ProjectError) else 400
        return JSONResponse({"detail": str(error)}, status_code=status)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(_static_file("index.html"), headers={"Cache-Control": "no-store"})

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        current = state.labels.current()
        proba, threshold = state.pool.scores()
        counts = current.counts()
        models = [model_summary(record) for record in state.models]
        latest = models[-1] if models else None
        decided = int(counts.get(1, 0) + counts.get(0, 0))
        return {
            "project": state.root.name,
            "who": state.who,
            "session": state.session,
            "problem": state.problem,
            "candidates": len(state.pool),
            "unlabelled": int(state.pool.open_for_labels(current.of_candidate).sum()),
            "labels": {name: int(counts.get(value, 0)) for name, value in LABELS.items()},
            "models": models,
            "latest": latest,
            "scored_by": state.pool.model_id,
            "threshold": threshold if proba is not None else None,
            "phase2": {
                "min_labels": PHASE2_MIN_LABELS,
                "labels_to_go": max(0, PHASE2_MIN_LABELS - decided),
            },
            "training": {"running": state.job.running, **state.job.state},
            "gallery": state.gallery() is not None,
            "orders": list(ORDERS),
            "last_event_id": state.hub.last_id,
            "label_event_id": current.mark,
        }

    @app.post("/api/queue")
    def queue(body: QueueIn) -> dict[str, Any]:
        pool = state.pool
        labels = state.labels.current().of_candidate
        proba, threshold = pool.scores()
        queued = np.zeros(len(labels), dtype=bool)
        for cid in body.exclude:
            queued[pool.index(cid)] = True
        open_ = pool.open_for_labels(labels)
        available = open_ & ~queued
        chosen = rank(
            body.order,
            available,
            body.n,
            descriptors=pool.descriptors,
            detector_score=pool.score,
            proba=proba,
            threshold=threshold,
            anchors=(labels != UNLABELLED) | queued,
            seed=state.seed,
        )
        items = [pool.item(int(k), labels[k]) for k in chosen]
        return {"items": items, "remaining": int(available.sum())}

    @app.get("/api/candidate/{cid}")
    def candidate(cid: str) -> dict[str, Any]:
        k = state.pool.index(cid)
        label = state.labels.current().of_candidate[k]
        return {**state.pool.item(k, label), "neighbours": state.neighbours(k)}

    @app.get("/api/crop/{cid}.png")
    def crop(cid: str, high: float = Query(99.5, ge=50.0, le=100.0)) -> Response:
        return _png(crop_png(state.pool.crop(state.pool.index(cid)), high=high))

    @app.get("/api/context/{cid}.png")
    def context(cid: str) -> Response:
        pool = state.pool
        k = pool.index(cid)
        pixels = pool.images(int(pool.image_id[k]))
        return _png(context_png(pixels, pool.row[k], pool.col[k]))

    @app.get("/api/label-crop/{event_id}.png")
    def label_crop(event_id: int, high: float = Query(99.5, ge=50.0, le=100.0)) -> Response:
        image_id, row, col = state.label_position(event_id)
        return _png(crop_png(state.pool.crop_at(image_id, row, col), high=high))

    @app.get("/api/gallery/{model_id}/{row}.png")
    def gallery_crop(model_id: int, row: int) -> Response:
        found = state.gallery()
        if found is None or found[0].id != model_id or not 0 <= row < len(found[2]):
            raise InvalidInputError(f"no gallery crop {row} of model {model_id}.")
        heldout = found[2].iloc[row]
        crop = state.pool.crop_at(int(heldout["image_id"]), heldout["row"], heldout["col"])
        return _png(crop_png(crop))

    @app.post("/api/label")
    def label(body: LabelIn) -> dict[str, Any]:
        event = state.write_labels([body], source="web", session=body.session)[0]
        return {"event_id": event, "id": body.id, "label": body.label}

    @app.post("/api/labels")
    def labels(body: LabelsIn) -> dict[str, Any]:
        events = state.write_labels(body.items, source="web:grid", session=body.session)
        return {"event_ids": events, "count": len(events)}

    @app.post("/api/undo")
    def undo(body: UndoIn) -> JSONResponse:
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
        restored = None if value is None or np.isnan(value) else _NAMES[int(value)]
        state.hub.publish("label", {"id": cid, "label": restored, "event_id": event})
        return JSONResponse({"event_id": event, "id": cid, "label": restored})

    @app.post("/api/relabel")
    def relabel(body: RelabelIn) -> dict[str, Any]:
        image_id, row, col = state.label_position(body.event_id)
        value = LABELS[body.label]
        session = state.session_of(body.session)
        event = state.labels.write(
            lambda p: p.label(
                image_id, row, col, value, who=state.who, source="web:review", session=session
            ),
            events=lambda event: [event],
        )
        state.hub.publish("label", {"id": None, "label": body.label, "event_id": event})
        return {"event_id": event, "label": body.label}

    @app.get("/api/review")
    def review(
        label: Literal["all", "signal", "noise", "unsure"] = "all",
        limit: int = Query(60, ge=1, le=500),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        table = state.labels.current().table.iloc[::-1]
        if label != "all":
            table = table[table["label"] == LABELS[label]]
        page = table.iloc[offset : offset + limit]
        return {"total": len(table), "items": _label_rows(state, page)}

    @app.get("/api/mislabels")
    def mislabels(limit: int = Query(60, ge=1, le=500)) -> dict[str, Any]:
        if not state.models:
            return {"model_id": None, "items": []}
        record = state.models[-1]
        heldout = state.db.call(lambda p: p.heldout_scores(record.id))
        table = state.labels.current().table
        merged = heldout.merge(
            table, on=["image_id", "row", "col"], suffixes=("_trained", ""), how="inner"
        )
        merged = merged[merged["label"] == merged["label_trained"]]
        score = disagreement(
            merged["label"].to_numpy(), merged["probability"].to_numpy(), record.threshold
        )
        order = np.argsort(-score, kind="stable")
        order = order[score[order] >= _MISLABEL_MIN][:limit]
        picked = merged.iloc[order]
        items = _label_rows(state, picked.drop(columns=["image_trained"]))
        for item, p, s in zip(
            items, picked["probability"].tolist(), score[order].tolist(), strict=True
        ):
            item["heldout_proba"] = float(p)
            item["disagreement"] = float(s)
        return {"model_id": record.id, "threshold": record.threshold, "items": items}

    @app.post("/api/train")
    def train() -> JSONResponse:
        if not state.job.start():
            return JSONResponse({"started": False, "detail": "already training"}, 409)
        return JSONResponse({"started": True}, 202)

    @app.get("/api/events")
    async def events(request: Request, after: int | None = None) -> StreamingResponse:
        header = request.headers.get("last-event-id", "")
        last = after if after is not None else int(header) if header.isdigit() else 0
        return StreamingResponse(
            _stream(request, state.hub, last, stream_seconds),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return app


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
