"""The browser labelling app (``blobsift label``): needs ``blobsift[app]`` (FastAPI, uvicorn).

A thin edge over a project: it reads candidates and labels from the store, writes labels
to it, ranks the queue with :mod:`blobsift.active` and scores with
:mod:`blobsift.scoring`. Build the app with :func:`create_app`, or serve it with
:func:`blobsift.app.serve.serve`.

Modules
-------
_factory
    :func:`create_app`: the FastAPI app, its lifespan (label-log watcher), static files.
_routes_queue, _routes_labels, _routes_images, _routes_review, _routes_training
    The API's routers by area: status and queue; label writes and undo; PNG crops; the
    review and mislabel lists; training and the event stream.
_state
    :class:`~blobsift.app._state.AppState`, what the routes share.
_models
    The request bodies (pydantic), label words from :class:`blobsift.types.Label`.
serialised
    :class:`~blobsift.app.serialised.SerialisedProject`: the app's one Project, every
    call serialised on one thread.
labels
    :class:`~blobsift.app.labels.CurrentLabels`: the labels, read from the store only.
pool
    :class:`~blobsift.app.pool.CandidatePool`: candidates, descriptors, model scores.
training
    Background training and the event log the page streams.
imaging
    PNG rendering of crops and image regions.
guard
    The ASGI gate: token, Host and origin checks, body limits, security headers.
serve
    Running the app under uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blobsift.app._factory import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``blobsift.app.serve`` can tell a user the app extra is missing.
    if name == "create_app":
        from blobsift.app._factory import create_app

        return create_app
    raise AttributeError(f"module 'blobsift.app' has no attribute {name!r}")
