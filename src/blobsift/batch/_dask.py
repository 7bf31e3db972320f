"""The Dask side of :func:`blobsift.batch.predict_images` (imported only with a scheduler).

The only module of blobsift that imports dask / distributed.

The model travels once per worker as a :class:`ModelPlugin` (the model file's bytes,
loaded when the plugin is set up on a worker, including workers that join or replace a
dead one later); each task is one image and looks the model up by the plugin's name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distributed import Client, as_completed, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from blobsift.batch._journal import failure_record
from blobsift.batch._work import ScoringPlan, model_bytes, predict_one
from blobsift.exceptions import InvalidInputError
from blobsift.types import Progress, ProgressEvent

__all__ = ["ModelPlugin", "run_on_cluster"]


class ModelPlugin(WorkerPlugin):
    """A worker plugin carrying a saved Sifter's bytes, loaded once on each worker.

    Parameters
    ----------
    name : str
        The plugin's name; tasks find the model as ``get_worker().plugins[name].model``.
    weights, config : bytes
        The ``.safetensors`` and ``.json`` files of the model.
    threads : int
        Cores each inference may use on the worker.
    """

    def __init__(self, name: str, weights: bytes, config: bytes, threads: int) -> None:
        self.name = name
        self.weights = weights
        self.config = config
        self.threads = threads
        self.model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "model": None}

    def setup(self, worker: Any) -> None:
        """Load the model (once, when the plugin reaches the worker).

        For prediction only (:func:`~blobsift.classify.graph_model.load_predictor`): from
        its exported graph, so the worker never imports torch, unless the file has none.
        """
        from blobsift.classify.graph_model import load_predictor

        with tempfile.TemporaryDirectory(prefix="blobsift-model-") as folder:
            Path(folder, "model.safetensors").write_bytes(self.weights)
            Path(folder, "model.json").write_bytes(self.config)
            self.model = load_predictor(Path(folder, "model"), threads=self.threads)

    def teardown(self, worker: Any) -> None:
        """Drop the model."""
        self.model = None


def _worker_task(path: str, plugin: str, plan: ScoringPlan) -> tuple[dict[str, Any], Any]:
    """One image on a Dask worker, with the model its plugin loaded."""
    loaded = get_worker().plugins[plugin]
    assert isinstance(loaded, ModelPlugin)  # run_on_cluster registers it under this name
    return predict_one(path, loaded.model, plan, plan.n_threads or 1)


def _client(scheduler: Any) -> tuple[Client, bool]:
    """Return (Client, whether it was created here and must be closed here)."""
    if isinstance(scheduler, Client):
        return scheduler, False
    if isinstance(scheduler, str) or hasattr(scheduler, "scheduler_address"):
        return Client(scheduler, timeout="60s", set_as_default=False), True
    raise InvalidInputError(
        "scheduler must be None (run here), a scheduler address such as "
        "'tcp://10.0.0.5:8786', a distributed.Client or a cluster object; got "
        f"{type(scheduler).__name__}."
    )


def run_on_cluster(
    scheduler: Any,
    todo: list[str],
    model: Any,
    plan: ScoringPlan,
    report: Callable[[dict[str, Any], Any], None],
    progress: Progress | None,
    total: int,
    skipped: int,
) -> None:
    """Run one task per image on the cluster; ``report(record, frame)`` as each finishes.

    ``model`` is a model file or a fitted Sifter, sent once to each worker; each task
    uses ``plan.n_threads`` cores (default one). ``progress`` first receives the dashboard
    link (``details["dashboard"]``) with ``skipped`` of ``total`` images done.
    """
    threads = int(plan.n_threads or 1)
    client, own = _client(scheduler)
    futures: list[Any] = []
    name = ""
    try:
        weights, config = model_bytes(model)
        run = os.urandom(4).hex()  # runs sharing a client never remove each other's model
        name = f"blobsift-model-{hashlib.sha256(weights + config).hexdigest()[:12]}-{run}"
        client.register_plugin(ModelPlugin(name, weights, config, threads), name=name)
        if progress is not None:
            link = getattr(client, "dashboard_link", None)
            event = ProgressEvent("predict", skipped, total, details={"dashboard": link})
            progress(event)
        futures = [
            client.submit(
                _worker_task,
                path,
                name,
                plan,
                key=f"blobsift-predict-{run}-{i}",
                pure=False,
            )
            for i, path in enumerate(todo)
        ]
        image_of = {future.key: path for future, path in zip(futures, todo, strict=True)}
        for future in as_completed(futures, loop=client.loop):
            try:
                record, frame = future.result()
            except Exception as error:  # e.g. KilledWorker: this image killed every worker
                record, frame = failure_record(image_of[future.key], error), None
            future.release()
            report(record, frame)
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            with contextlib.suppress(Exception):
                client.cancel(pending)
        if name:
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(name)
        if own:
            client.close()
