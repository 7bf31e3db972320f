"""F1 on held-out simulated crops against the number of labels, for Sifter and baselines.

Every method trains on the same nested label sets and is scored on the same held-out
crops (cut from other simulated images), for several seeds, in one run:

* Sifter                  blobsift's estimator (defaults)
* holdout                 the same recipe with one 80/20 split instead of the CV ensemble
* spec                    the specification's recipe as written (model, split, batch 8,
                          focal alpha 0.25, threshold 0.5)
* spec+balance            the same with its balance_dataset(target_ratio=0.3)
* forest                  a random forest on hand-made filter features

Run: .venv/bin/python benchmarks/learning_curve.py [--sizes 25,50,100] [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _baselines import FeatureForest, HoldoutRecipe, SpecRecipe
from blobsift import Sifter
from blobsift.metrics import precision_recall_f1
from blobsift.report import SPEC_EXPECTED_F1, plot_learning_curve
from blobsift.simulate import simulate_crops

METHODS = {
    "Sifter": lambda seed: Sifter(random_state=seed),
    "holdout": lambda seed: HoldoutRecipe(random_state=seed),
    "spec": lambda seed: SpecRecipe(random_state=seed),
    "spec+balance": lambda seed: SpecRecipe(balance=True, random_state=seed),
    "forest": lambda seed: FeatureForest(random_state=seed),
}


def nested_order(labels: np.ndarray) -> np.ndarray:
    """An order of the pool whose every prefix keeps the class ratio (nested label sets)."""
    rank = np.empty(len(labels))
    for value in (0, 1):
        members = np.flatnonzero(labels == value)
        rank[members] = (np.arange(members.size) + 0.5) / members.size
    return np.argsort(rank, kind="stable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25,50,100,250,500,1000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--test-size", type=int, default=3000)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--png", type=Path, default=Path("benchmarks/results/learning_curve.png"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",")
    f1 = {m: np.full((args.seeds, len(sizes)), np.nan) for m in methods}
    seconds = {m: np.zeros((args.seeds, len(sizes))) for m in methods}
    for row, seed in enumerate(range(args.first_seed, args.first_seed + args.seeds)):
        # One pool of 1,000 labels per seed, whatever sizes are run, so runs compare.
        pool = simulate_crops(max(1000, *sizes), seed=1000 + seed)
        order = nested_order(pool.labels)
        pool = pool._replace(crops=pool.crops[order], labels=pool.labels[order])
        test = simulate_crops(args.test_size, seed=2000 + seed)
        for j, n in enumerate(sizes):
            for method in methods:
                start = time.perf_counter()
                model = METHODS[method](seed).fit(pool.crops[:n], pool.labels[:n])
                seconds[method][row, j] = time.perf_counter() - start
                f1[method][row, j] = precision_recall_f1(test.labels, model.predict(test.crops))[
                    "f1"
                ]
                score, took = f1[method][row, j], seconds[method][row, j]
                print(f"seed {seed} labels {n:>5} {method:>13}: F1 {score:.3f} ({took:.0f} s)",
                      file=sys.stderr, flush=True)  # fmt: skip
    print(f"\nF1 on {args.test_size} held-out crops (1:10), mean ± sd over {args.seeds} seeds")
    print(f"{'labels':>7} " + " ".join(f"{m:>15}" for m in methods) + "   spec expects")
    others = [m for m in methods if m != "Sifter"]
    for j, n in enumerate(sizes):
        cells = " ".join(
            f"{np.mean(f1[m][:, j]):>8.3f} ± {np.std(f1[m][:, j]):.3f}" for m in methods
        )
        expected = SPEC_EXPECTED_F1.get(n)
        print(f"{n:>7} {cells}   {'{:.2f}-{:.2f}'.format(*expected) if expected else '-'}")
    if "Sifter" in methods:
        print("\nSifter minus baseline (mean F1 difference; ratio Sifter / baseline)")
        print(f"{'labels':>7} " + " ".join(f"{m:>15}" for m in others))
        for j, n in enumerate(sizes):
            ours = np.mean(f1["Sifter"][:, j])
            theirs = [np.mean(f1[m][:, j]) for m in methods if m != "Sifter"]
            cells = " ".join(
                f"{ours - t:>+8.3f} ({f'{ours / t:.2f}x' if t >= 0.01 else 'n/a'})" for t in theirs
            )
            print(f"{n:>7} {cells}")
    print("\nmean fit seconds")
    for j, n in enumerate(sizes):
        print(f"{n:>7} " + " ".join(f"{np.mean(seconds[m][:, j]):>15.1f}" for m in methods))
    path = plot_learning_curve({m: (sizes, f1[m].mean(axis=0).tolist()) for m in methods}, args.png)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main()
