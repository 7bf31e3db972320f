"""What is recorded of each finished image: its journal record and the warnings it raised.

:func:`collect_warnings` catches, per thread, the warnings shown while one image is worked
on; :func:`journal_record` makes the record (:data:`STATUS_COLUMNS`) that the prediction
journal ``OUTPUT.status.jsonl`` holds for it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = ["STATUS_COLUMNS", "collect_warnings", "failure_record", "journal_record"]

#: Fields of a journal record (one per finished image) in ``OUTPUT.status.jsonl``.
STATUS_COLUMNS = ("image", "status", "n_candidates", "error", "seconds", "worker", "warnings")

_image_warnings = threading.local()  # .caught: the list of the image this thread works on
_router_lock = threading.Lock()
_router_users = 0
_shown_before: Any = None  # warnings.showwarning as it was before the router


def _route_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """Send a warning to the image this thread works on, or show it as before."""
    caught = getattr(_image_warnings, "caught", None)
    if caught is None:
        _shown_before(message, category, filename, lineno, file, line)
    else:
        caught.append(f"{category.__name__}: {message}")


@contextlib.contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Collect, as text, the warnings shown while this thread works on one image.

    The warning filters decide as always (an ``"error"`` filter still raises); what would
    be shown goes to the list instead, for the image's journal record. Threads working on
    other images collect their own; warnings of other threads are shown as before.

    Yields
    ------
    list of str
        ``"Category: message"`` of each warning, filled as they come.
    """
    global _router_users, _shown_before
    with _router_lock:
        if _router_users == 0:
            _shown_before = warnings.showwarning
            warnings.showwarning = _route_warning
        _router_users += 1
    caught: list[str] = []
    _image_warnings.caught = caught
    try:
        yield caught
    finally:
        _image_warnings.caught = None
        with _router_lock:
            _router_users -= 1
            if _router_users == 0 and warnings.showwarning is _route_warning:
                warnings.showwarning = _shown_before


def journal_record(
    image: str, frame: Any, error: str | None, seconds: float | None, caught: list[str]
) -> dict[str, Any]:
    """One image's journal record (the fields of :data:`STATUS_COLUMNS`).

    Parameters
    ----------
    image : str
        The image as named in the prediction table.
    frame : pandas.DataFrame or None
        Its prediction table; None if it failed.
    error : str or None
        Why it failed.
    seconds : float or None
        How long it took (None: it never ran to an end on a worker).
    caught : list of str
        The warnings raised while it was processed (:func:`collect_warnings`).

    Returns
    -------
    dict
        ``image, status ("done" or "failed"), n_candidates, error, seconds, worker
        (host name), warnings``.
    """
    return {
        "image": image,
        "status": "failed" if frame is None else "done",
        "n_candidates": 0 if frame is None else len(frame),
        "error": error,
        "seconds": None if seconds is None else round(seconds, 4),
        "worker": None if seconds is None else socket.gethostname(),
        "warnings": caught,
    }


def failure_record(image: str, error: BaseException) -> dict[str, Any]:
    """The journal record of an image whose task raised ``error`` (e.g. a killed worker)."""
    return journal_record(image, None, f"{type(error).__name__}: {error}", None, [])
