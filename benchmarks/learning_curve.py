"""F1 on held-out simulated crops against the number of labels, for Sifter and baselines.

Every method trains on the same nested label sets and is scored on the same held-out
crops (cut from other simulated images), for several seeds, in one run. Methods marked +U
also get 3,000 unlabelled candidate crops (from other images) to pre-train on:

* auto +U          Sifter(phase="auto"): Phase 1, and Phase 2 where the policy says so
* siamese          Phase 1 (the Siamese gallery) without pre-training
* siamese +U       Phase 1 with self-supervised pre-training
* gallery-add +U   Phase 1 trained at the first size only; later labels are added to its
                   gallery without retraining
* cnn              Phase 2 (the direct CNN ensemble) from random weights
* cnn +U           Phase 2 started from the pre-trained encoder
* holdout          the Phase 2 recipe with one 80/20 split instead of the CV ensemble
* spec             the specification's recipe as written (model, split, batch 8, focal
                   alpha 0.25, threshold 0.5)
* spec+balance     the same with its balance_dataset(target_ratio=0.3)
* forest           a random forest on hand-made filter features: the baseline

Run: .venv/bin/python benchmarks/learning_curve.py [--sizes 25,50,100,250] [--seeds 3]
     [--methods "auto +U,siamese,cnn,forest"]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _baselines import HoldoutRecipe, SpecRecipe
from blobsift import Sifter
from blobsift.classify.baselines import FeatureForest
from blobsift.metrics import precision_recall_f1
from blobsift.report import SPEC_EXPECTED_F1, plot_learning_curve
from blobsift.simulate import simulate_crops
from blobsift.splits import nested_order

# name: (a model for a seed, whether it gets the unlabelled crops)
METHODS: dict[str, tuple[Callable[[int], Any], bool]] = {
    "auto +U": (lambda seed: Sifter(random_state=seed), True),
    "siamese": (lambda seed: Sifter(phase="siamese", random_state=seed), False),
    "siamese +U": (lambda seed: Sifter(phase="siamese", random_state=seed), True),
    "gallery-add +U": (lambda seed: Sifter(phase="siamese", random_state=seed), True),
    "cnn": (lambda seed: Sifter(phase="cnn", random_state=seed), False),
    "cnn +U": (lambda seed: Sifter(phase="cnn", random_state=seed), True),
    "holdout": (lambda seed: HoldoutRecipe(random_state=seed), False),
    "spec": (lambda seed: SpecRecipe(random_state=seed), False),
    "spec+balance": (lambda seed: SpecRecipe(balance=True, random_state=seed), False),
    "forest": (lambda seed: FeatureForest(random_state=seed), False),
}
DEFAULT_METHODS = ("auto +U", "siamese", "siamese +U", "gallery-add +U", "cnn", "cnn +U", "forest")
BASELINE = "forest"
UNLABELED = 3000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25,50,100,250")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--test-size", type=int, default=3000)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--png", type=Path, default=Path("benchmarks/results/learning_curve.png"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {list(METHODS)}")
    f1 = {m: np.full((args.seeds, len(sizes)), np.nan) for m in methods}
    seconds = {m: np.zeros((args.seeds, len(sizes))) for m in methods}
    for row, seed in enumerate(range(args.first_seed, args.first_seed + args.seeds)):
        # One pool of 1,000 labels per seed, whatever sizes are run, so runs compare.
        pool = simulate_crops(max(1000, *sizes), seed=1000 + seed)
        order = nested_order(pool.labels)
        pool = pool._replace(crops=pool.crops[order], labels=pool.labels[order])
        unlabeled = simulate_crops(UNLABELED, seed=3000 + seed).crops
        test = simulate_crops(args.test_size, seed=2000 + seed)
        grown = None
        for j, n in enumerate(sizes):
            for method in methods:
                factory, uses_unlabeled = METHODS[method]
                extra = {"unlabeled": unlabeled} if uses_unlabeled else {}
                start = time.perf_counter()
                if method == "gallery-add +U" and grown is not None:
                    have = len(grown.gallery_.gallery_labels_)
                    grown.gallery_.add_to_gallery(pool.crops[have:n], pool.labels[have:n])
                    model = grown
                else:
                    model = factory(seed).fit(pool.crops[:n], pool.labels[:n], **extra)
                    grown = model if method == "gallery-add +U" else grown
                seconds[method][row, j] = time.perf_counter() - start
                scores = precision_recall_f1(test.labels, model.predict(test.crops))
                f1[method][row, j] = scores["f1"]
                print(f"seed {seed} labels {n:>5} {method:>15}: F1 {scores['f1']:.3f} "
                      f"({seconds[method][row, j]:.0f} s) {getattr(model, 'phase_', '')} "
                      f"{getattr(model, 'phase_scores_', '')}",
                      file=sys.stderr, flush=True)  # fmt: skip
    print(f"\nF1 on {args.test_size} held-out crops (1:10), mean ± sd over {args.seeds} seeds")
    print(f"{'labels':>7} " + " ".join(f"{m:>15}" for m in methods) + "   spec expects")
    for j, n in enumerate(sizes):
        cells = " ".join(
            f"{np.mean(f1[m][:, j]):>8.3f} ± {np.std(f1[m][:, j]):.3f}" for m in methods
        )
        expected = SPEC_EXPECTED_F1.get(n)
        print(f"{n:>7} {cells}   {'{:.2f}-{:.2f}'.format(*expected) if expected else '-'}")
    if BASELINE in methods:
        others = [m for m in methods if m != BASELINE]
        print(f"\nminus the {BASELINE} baseline (mean F1 difference; ratio method / {BASELINE})")
        print(f"{'labels':>7} " + " ".join(f"{m:>17}" for m in others))
        for j, n in enumerate(sizes):
            base = np.mean(f1[BASELINE][:, j])
            cells = " ".join(
                f"{np.mean(f1[m][:, j]) - base:>+8.3f} "
                f"({f'{np.mean(f1[m][:, j]) / base:.2f}x' if base >= 0.01 else 'n/a':>6})"
                for m in others
            )
            print(f"{n:>7} {cells}")
    if {"auto +U", "siamese +U", "cnn +U"} <= set(methods):
        print("\nauto minus the better of its two phases (siamese +U, cnn +U); target >= -0.01")
        for j, n in enumerate(sizes):
            best = max(np.mean(f1[m][:, j]) for m in ("siamese +U", "cnn +U"))
            print(f"{n:>7} {np.mean(f1['auto +U'][:, j]) - best:>+8.3f}")
    print("\nmean fit seconds")
    print(f"{'labels':>7} " + " ".join(f"{m:>15}" for m in methods))
    for j, n in enumerate(sizes):
        print(f"{n:>7} " + " ".join(f"{np.mean(seconds[m][:, j]):>15.1f}" for m in methods))
    path = plot_learning_curve({m: (sizes, f1[m].mean(axis=0).tolist()) for m in methods}, args.png)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main()
