"""The labelling app: a FastAPI application over a project (``blobsift label``).

Candidates and crops are addressed by id only (``IMAGE-INDEX`` for candidates, label event
ids, model gallery rows); no file path ever comes from the client. Every label is written
through :class:`~blobsift.project.Project` (one committed transaction) before the response
that acknowledges it with the event id.

Labels are read from the store only (:class:`~blobsift.app.labels.CurrentLabels`), so
labels other processes write show in the queue and the counts; a watcher polls the label
log and tells the pages (event ``labels``) when they came from elsewhere. Each browser tab
sends its own ``session`` id with its labels, and undo undoes that session's labels only;
a client that sends none shares the server's session.

:func:`create_app` builds the app from the routers of ``_routes_*`` and the shared
:class:`~blobsift.app._state.AppState`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from blobsift.app import (
    _routes_images,
    _routes_labels,
    _routes_queue,
    _routes_review,
    _routes_training,
)
from blobsift.app._state import AppState
from blobsift.app.guard import MAX_BODY, Guard
from blobsift.exceptions import BlobsiftError, InvalidInputError, ProjectError
from blobsift.project import Project
from blobsift.store import default_who

__all__ = ["POLL_SECONDS", "STREAM_SECONDS", "create_app"]

_STATIC = resources.files("blobsift.app") / "static"
#: Seconds an event stream stays open before the browser reconnects (and resumes).
STREAM_SECONDS = 20.0
#: Seconds between two looks at the label log for labels written by other processes.
POLL_SECONDS = 1.0
_ROUTERS = (_routes_queue, _routes_labels, _routes_images, _routes_review, _routes_training)


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
        Access token every request must carry (see :mod:`blobsift.app.guard`); None for
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
        With ``app.state.web`` holding the shared :class:`~blobsift.app._state.AppState`;
        its lifespan watches the label log and closes the database.
    """
    root = project.root if isinstance(project, Project) else Path(project).resolve()
    state = AppState(root, who or default_who(), dict(train_options or {}), seed, stream_seconds)

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
            state.project.close()

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

    for module in _ROUTERS:
        app.include_router(module.router)
    return app
