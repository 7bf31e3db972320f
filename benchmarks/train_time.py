"""Seconds for Sifter.fit on 1,000 labelled crops (2 CPU threads), vs the spec's recipe.

Target: under 60 s. The baseline is the specification's recipe (its 78-MFLOP model,
batch 8, 75 epochs with patience 15, 80/20 split) fitted on the same labels in the same
run; skip it with --no-baseline.

Run: .venv/bin/python benchmarks/train_time.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _baselines import SpecRecipe
from blobsift import Sifter
from blobsift.simulate import simulate_crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = simulate_crops(args.labels, seed=0)
    rows = []
    start = time.perf_counter()
    sifter = Sifter(random_state=0).fit(data.crops, data.labels)
    rows.append(("Sifter (default)", time.perf_counter() - start,
                 len(sifter.estimator_.history_["train_loss"])))  # fmt: skip
    if not args.no_baseline:
        start = time.perf_counter()
        SpecRecipe(random_state=0).fit(data.crops, data.labels)
        rows.append(("spec recipe (baseline)", time.perf_counter() - start, None))
    print(f"fit on {args.labels} labels ({int(data.labels.sum())} signal), 2 threads")
    print(f"{'':26} {'seconds':>8} {'epochs':>7} {'vs baseline':>12}")
    baseline = rows[-1][1]
    for name, seconds, epochs in rows:
        print(f"{name:26} {seconds:>8.1f} {epochs or '-':>7} {seconds / baseline:>11.2f}x")
    print("target: Sifter under 60 s")


if __name__ == "__main__":
    main()
