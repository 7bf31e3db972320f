"""Seconds for Sifter.fit on 1,000 labelled crops of both simulated domains, 2 CPU threads.

For each domain (``spots`` and ``difference``, see :func:`blobsift.simulate.simulate_crops`)
the table gives the phase ``fit`` kept, Phase 2's epochs when it was trained, and the
seconds of

* ``fit``: ``Sifter.fit`` on the labels alone (target: under 30 s);
* ``fit + pre-training``: the same fit with 3,000 unlabelled candidates of the domain,
  on which Phase 1 pre-trains its encoder first. The ``pre-training`` column is the time
  from the start of that fit to its last pre-training step (target: under 20 s).

The baseline is the specification's recipe (its 78-MFLOP model, batch 8, 75 epochs with
patience 15, 80/20 split) fitted on the same labels in the same run; skip it with
--no-baseline.

Run: .venv/bin/python benchmarks/train_time.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _baselines import SpecRecipe
from blobsift import Sifter
from blobsift.simulate import DOMAINS, simulate_crops
from blobsift.types import ProgressEvent

THREADS = 2
FIT_TARGET_S = 30.0
PRETRAIN_TARGET_S = 20.0


def _timed_fit(
    crops: np.ndarray, labels: np.ndarray, unlabeled: np.ndarray | None = None
) -> tuple[float, float | None, Sifter]:
    """(seconds, seconds to the last pre-training step or None, fitted Sifter)."""
    pretrained_at: list[float] = []

    def callback(event: ProgressEvent) -> None:
        if event.stage == "pretrain":
            pretrained_at.append(time.perf_counter())

    start = time.perf_counter()
    sifter = Sifter(random_state=0, callback=callback).fit(crops, labels, unlabeled=unlabeled)
    seconds = time.perf_counter() - start
    return seconds, (pretrained_at[-1] - start) if pretrained_at else None, sifter


def _row(
    name: str,
    sifter: Sifter | None,
    seconds: float,
    pretraining: float | None,
    baseline: float | None,
) -> None:
    """Print one row: the phase kept, Phase 2's epochs when it was trained, the seconds."""
    phase, epochs = "-", "-"
    if sifter is not None:
        phase = sifter.phase_
        if phase == "cnn":
            epochs = str(len(sifter.estimator_.history_["train_loss"]))
    pre = "-" if pretraining is None else f"{pretraining:.1f}"
    ratio = "-" if baseline is None else f"{seconds / baseline:.2f}x"
    print(f"  {name:32} {phase:>8} {epochs:>7} {seconds:>8.1f} {pre:>13} {ratio:>12}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--unlabeled", type=int, default=3000)
    parser.add_argument("--domains", nargs="+", choices=DOMAINS, default=list(DOMAINS))
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    print(f"Sifter.fit on {args.labels} labels, {THREADS} threads")
    heads = ("phase", "epochs", "seconds", "pre-training", "vs baseline")
    print(f"{'':34} {heads[0]:>8} {heads[1]:>7} {heads[2]:>8} {heads[3]:>13} {heads[4]:>12}")
    for domain in args.domains:
        data = simulate_crops(args.labels, seed=0, domain=domain)
        pool = simulate_crops(args.unlabeled, seed=1, domain=domain).crops
        print(f"{domain} ({int(data.labels.sum())} signal)", flush=True)
        baseline = None
        if not args.no_baseline:  # first, so that each row below prints as it is measured
            start = time.perf_counter()
            SpecRecipe(random_state=0).fit(data.crops, data.labels)
            baseline = time.perf_counter() - start
            _row("spec recipe (baseline)", None, baseline, None, baseline)
        seconds, _, sifter = _timed_fit(data.crops, data.labels)
        _row("fit", sifter, seconds, None, baseline)
        seconds, pretraining, sifter = _timed_fit(data.crops, data.labels, pool)
        _row(f"fit + pre-training on {args.unlabeled:,}", sifter, seconds, pretraining, baseline)
    print(f"targets: fit under {FIT_TARGET_S:.0f} s; pre-training under {PRETRAIN_TARGET_S:.0f} s")


if __name__ == "__main__":
    main()
