"""Background training for the labelling app, and the event log its page streams."""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blobsift.exceptions import BlobsiftError
from blobsift.metrics import MIN_HELDOUT_POSITIVES, too_few_positives
from blobsift.project import Project
from blobsift.report import TOO_FEW_POSITIVES
from blobsift.store import ModelRecord
from blobsift.types import ProgressEvent

__all__ = ["EventHub", "TrainingJob", "model_summary"]

#: The summary's held-out estimates, withheld when made from too few positives.
_ESTIMATES = ("f1", "f1_ci", "precision", "recall")


class EventHub:
    """Numbered events (kind + JSON data) that server-sent-event streams replay; thread safe.

    Parameters
    ----------
    keep : int
        How many recent events to keep for late or reconnecting listeners.
    """

    def __init__(self, keep: int = 2000) -> None:
        self._events: deque[tuple[int, str, dict[str, Any]]] = deque(maxlen=keep)
        self._next = 1
        self._lock = threading.Lock()

    def publish(self, kind: str, data: dict[str, Any]) -> int:
        """Append an event; returns its id."""
        with self._lock:
            event_id = self._next
            self._next += 1
            self._events.append((event_id, kind, data))
            return event_id

    def since(self, last_id: int) -> list[tuple[int, str, dict[str, Any]]]:
        """The kept events with an id above ``last_id``, oldest first."""
        with self._lock:
            return [event for event in self._events if event[0] > last_id]

    @property
    def last_id(self) -> int:
        """The id of the latest event (0 before any)."""
        with self._lock:
            return self._next - 1


class TrainingJob:
    """Train a model in a background thread, one job at a time, publishing its progress.

    Events (``kind`` ``"training"``) carry ``phase``: ``"started"``, ``"progress"`` (with
    ``model_phase`` — "siamese" or "cnn" —, ``stage`` — "pretrain", "finetune" or "epoch"
    —, ``done``, ``total``, ``loss`` and, for epochs, ``val_f1``), ``"scoring"``, ``"done"``
    (with the new model's summary) or ``"failed"`` (with ``error``).

    Parameters
    ----------
    root : path-like
        The project folder; the thread opens its own connection.
    hub : EventHub
        Where progress goes.
    after : callable
        ``after(project, record)`` runs in the thread once the model is recorded (the app
        scores its candidates there) before ``"done"`` is published.
    options : dict, optional
        Keyword arguments of :meth:`Project.train` (e.g. ``epochs``).
    """

    def __init__(
        self,
        root: str | Path,
        hub: EventHub,
        after: Callable[[Project, ModelRecord], None],
        options: dict[str, Any] | None = None,
    ) -> None:
        self.root = Path(root)
        self.hub = hub
        self.after = after
        self.options = dict(options or {})
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.state: dict[str, Any] = {"phase": "idle"}

    @property
    def running(self) -> bool:
        """True while a training thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> bool:
        """Start training unless a job is running; returns whether it started."""
        with self._lock:
            if self.running:
                return False
            self._publish({"phase": "started", "started_at": time.time()})
            self._thread = threading.Thread(target=self._run, name="blobsift-train", daemon=True)
            self._thread.start()
            return True

    def join(self, timeout: float | None = None) -> None:
        """Wait for the current job (if any) to finish."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _publish(self, data: dict[str, Any]) -> None:
        self.state = data
        self.hub.publish("training", data)

    def _progress(self, event: ProgressEvent) -> None:
        """Publish a ``Project.train`` progress event (Phase 1 steps or Phase 2 epochs)."""
        details = event.details
        loss = details.get("train_loss") if event.stage == "epoch" else details.get("loss")
        self._publish(
            {
                "phase": "progress",
                "model_phase": details.get("phase"),
                "stage": event.stage,
                "done": event.done,
                "total": event.total,
                "loss": loss,
                "val_f1": details.get("val_f1"),
            }
        )

    def _run(self) -> None:
        try:
            with Project(self.root) as project:
                record = project.train(progress=self._progress, **self.options)
                self._publish({"phase": "scoring", "model_id": record.id})
                self.after(project, record)
            self._publish({"phase": "done", **model_summary(record)})
        except BlobsiftError as error:
            self._publish({"phase": "failed", "error": str(error)})
        except Exception as error:  # the page must hear of any failure, not hang
            traceback.print_exc()
            self._publish({"phase": "failed", "error": f"{type(error).__name__}: {error}"})


def model_summary(record: ModelRecord) -> dict[str, Any]:
    """The JSON summary of a model version the page shows.

    Held-out estimates (``f1``, ``f1_ci``, ``precision``, ``recall``) from fewer than
    :data:`~blobsift.metrics.MIN_HELDOUT_POSITIVES` positives are sent as None, with the
    reason in ``estimates`` (None where the estimates stand).
    """
    metrics = record.metrics
    summary = {
        "model_id": record.id,
        "created_at": record.created_at,
        "model_phase": record.phase,
        "phase_reason": record.phase_reason,
        "n_labels": record.n_labels,
        "n_positive": record.n_positive,
        "threshold": record.threshold,
        "f1": metrics.get("f1"),
        "f1_ci": metrics.get("f1_ci"),
        "precision": metrics.get("precision"),
        "recall": metrics.get("recall"),
        "estimates": None,
    }
    positives = metrics.get("n_positive")
    if too_few_positives(positives):
        summary.update({name: None for name in _ESTIMATES})
        summary["estimates"] = (
            f"{TOO_FEW_POSITIVES}: {positives} signal, {MIN_HELDOUT_POSITIVES} needed"
        )
    return summary
