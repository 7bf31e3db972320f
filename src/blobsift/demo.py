"""The demo: the main job on built-in simulated data, with the results as a table and PNGs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.metrics import precision_recall_f1
from blobsift.report import SPEC_EXPECTED_F1, plot_crop_gallery, plot_learning_curve
from blobsift.simulate import simulate_crops

__all__ = ["DemoRow", "run_demo"]

LABEL_COUNTS = (25, 50, 100, 250, 500, 1000)


@dataclass(frozen=True)
class DemoRow:
    """One line of the demo's table."""

    labels: int
    positives: int
    phase: str
    f1: float
    precision: float
    recall: float
    seconds: float
    expected: tuple[float, float] | None


def run_demo(
    output: str | os.PathLike[str],
    *,
    label_counts: Sequence[int] = LABEL_COUNTS,
    test_size: int = 3000,
    seed: int = 0,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
) -> tuple[list[DemoRow], list[Path]]:
    """Train on growing label sets of simulated crops and score each on held-out crops.

    Parameters
    ----------
    output : path-like
        Folder for the PNGs (learning curve, galleries of mistakes).
    label_counts : sequence of int
        Label-set sizes to train on (each a superset of the previous one).
    test_size : int
        Held-out crops, cut from other simulated images.
    seed : int
        Seed of the data and the training.
    progress : callable, optional
        Called as ``progress(stage, info)`` at each step and training epoch.

    Returns
    -------
    rows, pictures
        One :class:`DemoRow` per label count, and the PNG paths written.
    """
    from blobsift.classify.sifter import Sifter

    output = Path(output)
    report = progress or (lambda stage, info: None)
    report("simulate", {"crops": max(label_counts) + test_size})
    pool = simulate_crops(max(label_counts), seed=seed)
    test = simulate_crops(test_size, seed=seed + 1)
    rows: list[DemoRow] = []
    sifter = None
    for count in label_counts:
        crops, labels = pool.crops[:count], pool.labels[:count]
        report("train", {"labels": count, "positives": int(labels.sum())})
        start = time.perf_counter()
        sifter = Sifter(
            random_state=seed,
            callback=lambda event, n=count: report("epoch", {**event, "labels": n}),
        ).fit(crops, labels)
        seconds = time.perf_counter() - start
        scores = precision_recall_f1(test.labels, sifter.predict(test.crops))
        rows.append(
            DemoRow(count, int(labels.sum()), sifter.phase_, scores["f1"], scores["precision"],
                    scores["recall"], seconds, SPEC_EXPECTED_F1.get(count))
        )  # fmt: skip
    pictures = [
        plot_learning_curve(
            {"blobsift Sifter": ([r.labels for r in rows], [r.f1 for r in rows])},
            output / "learning_curve.png",
        )
    ]
    if sifter is not None:
        proba = sifter.predict_proba(test.crops)[:, 1]
        decided = proba >= sifter.threshold_
        for name, mask in (("false_positives", decided & (test.labels == 0)),
                           ("false_negatives", ~decided & (test.labels == 1))):  # fmt: skip
            index = np.flatnonzero(mask)[:30]
            captions = [f"{test.kinds[i]} p={proba[i]:.2f}" for i in index]
            pictures.append(
                plot_crop_gallery(test.crops[index], captions, output / f"{name}.png",
                                  title=f"{name.replace('_', ' ')} at {rows[-1].labels} labels")
            )  # fmt: skip
    return rows, pictures
