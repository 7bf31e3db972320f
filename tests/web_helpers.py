"""Small projects and a live server for the labelling-app tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from blobsift.project import Project
from project_helpers import label_candidates, objects_of, write_images

#: Training settings that keep the app's ``t`` key fast in tests.
FAST_TRAINING = {
    "siamese__pretrain_steps": 20,
    "siamese__finetune_steps": 30,
    "siamese__n_folds": 2,
    "cnn__epochs": 2,
    "cnn__n_folds": 2,
}


def make_project(
    root: Path, *, n_images: int = 3, truth_labels: int = 0, flipped: int = 0, prefix: str = "img"
) -> Path:
    """A detected project of simulated images; the first ``truth_labels`` candidates labelled.

    Labels come from the simulation's truth, at least 3 of each class among them; the
    first ``flipped`` noise crops are labelled signal instead (planted mislabels). Image
    files are named ``{prefix}{k}.tif``.
    """
    paths = write_images(root / "data", n_images, seed=0, prefix=prefix)
    with Project.create(root / "project") as project:
        project.add_images(paths)
        project.detect(threshold=2.8)
        if truth_labels:
            table = label_candidates(
                project.candidates(), objects_of(n_images, seed=0, prefix=prefix)
            )
            signal = table[table["label"] == 1].head(max(3, truth_labels // 4))
            noise = table[table["label"] == 0].head(truth_labels - len(signal))
            picked = table.loc[sorted([*signal.index, *noise.index])].copy()
            picked.loc[noise.index[:flipped], "label"] = 1
            project.add_labels(
                picked["image"].tolist(),
                picked["row"].tolist(),
                picked["col"].tolist(),
                picked["label"].tolist(),
                who="truth",
            )
    return root / "project"


@contextmanager
def running_server(project: Path, **options: Any) -> Iterator[Any]:
    """Serve the app of ``project`` on a free loopback port in a thread; yields ``Prepared``."""
    from blobsift.app.serve import prepare

    prepared = prepare(project, stream_seconds=2.0, **options)
    thread = threading.Thread(target=prepared.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not prepared.server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield prepared
    finally:
        prepared.server.should_exit = True
        thread.join(10)
        prepared.server.config.app.state.web.job.join(60)
