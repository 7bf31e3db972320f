"""Active learning: F1 against labels for the "most useful next" queue order vs random order.

A simulated labeller labels candidate crops from a pool (simulated at 1:10) in the order a
strategy picks them; after each round a Sifter is refitted on everything labelled so far
and scored on held-out crops from other simulated images.

* random   the next labels are a random draw from the unlabelled pool
* useful   blobsift.active.rank_useful with the latest model's probabilities
           (uncertain, likely positive and diverse crops first): the app's default order

Both strategies start from the same random seed set. The target: "useful" reaches the F1
that "random" reaches at 250 labels with at least 30% fewer labels (ratio <= 0.70; the
label count is interpolated between measured sizes).

Each fit is what the app's "train now" does: Sifter(phase="auto", random_state=seed) given
the pool's crops to pre-train Phase 1 on (unlabelled, cached after the first fit) and the
phase history of the earlier fits, with epochs=30 for Phase 2 (the library's default is
100) so that 3 seeds take about 20 minutes on 2 cores; --epochs 100 runs the default
schedule. Both strategies use the same.

Run: .venv/bin/python benchmarks/active_learning.py [--quick] [--seeds 3] [--jobs 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from blobsift import Sifter
from blobsift.active import crop_descriptors, rank_useful
from blobsift.metrics import precision_recall_f1
from blobsift.simulate import simulate_crops

STRATEGIES = ("random", "useful")
TARGET_RATIO = 0.70


def seed_set(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random first batch holding at least 2 crops of each class (Sifter's minimum)."""
    while True:
        picked = rng.choice(len(labels), size=size, replace=False)
        counts = np.bincount(labels[picked], minlength=2)
        if counts.min() >= 2:
            return picked


def run_seed(
    seed: int, sizes: list[int], pool_size: int, test_size: int, epochs: int
) -> dict[str, list]:
    """F1 at each size for both strategies on one seed's pool and test set."""
    import torch

    torch.set_num_threads(1)
    pool = simulate_crops(pool_size, seed=3000 + seed)
    test = simulate_crops(test_size, seed=4000 + seed)
    descriptors = crop_descriptors(pool.crops)
    rng = np.random.default_rng(seed)
    first = seed_set(pool.labels, sizes[0], rng)
    order = np.concatenate([first, rng.permutation(np.setdiff1d(np.arange(pool_size), first))])
    out: dict[str, list] = {}
    first_f1, first_history = None, []  # both share the seed set: "random" reuses its fit
    for strategy in ("useful", "random"):
        labelled = np.zeros(pool_size, dtype=bool)
        labelled[first] = True
        scores, positives = [], []
        history: list[tuple[int, float]] = []
        for j, n in enumerate(sizes):
            if strategy == "random":
                labelled[:] = False
                labelled[order[:n]] = True
            start = time.perf_counter()
            if j == 0 and first_f1 is not None:
                f1, history = first_f1, list(first_history)
            else:
                model = Sifter(phase="auto", random_state=seed, epochs=epochs)
                model.fit(
                    pool.crops[labelled],
                    pool.labels[labelled],
                    unlabeled=pool.crops,
                    history=history,
                )
                history = model.phase_history_
                f1 = precision_recall_f1(test.labels, model.predict(test.crops))["f1"]
            if j == 0:
                first_f1, first_history = f1, list(history)
            scores.append(f1)
            positives.append(int(pool.labels[labelled].sum()))
            print(
                f"seed {seed} {strategy:>6} labels {n:>4} ({positives[-1]:>3} positive): "
                f"F1 {f1:.3f} ({time.perf_counter() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
            if strategy == "useful" and j + 1 < len(sizes):
                proba = model.predict_proba(pool.crops)[:, 1]
                chosen = rank_useful(
                    descriptors,
                    ~labelled,
                    sizes[j + 1] - n,
                    proba=proba,
                    threshold=model.threshold_,
                    anchors=labelled,
                    seed=seed,
                )
                labelled[chosen] = True
        out[strategy] = scores
        out[f"{strategy}_positives"] = positives
    return out


def labels_to_reach(sizes: list[int], f1: np.ndarray, target: float) -> float:
    """Labels at which the curve first reaches ``target`` (linear between sizes; inf if never)."""
    for j, value in enumerate(f1):
        if value >= target:
            if j == 0:
                return float(sizes[0])
            low, high = f1[j - 1], value
            share = (target - low) / (high - low) if high > low else 1.0
            return sizes[j - 1] + share * (sizes[j] - sizes[j - 1])
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25,50,100,150,200,250")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pool-size", type=int, default=3000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2, help="seeds run in parallel")
    parser.add_argument("--epochs", type=int, default=30, help="Sifter epochs (library: 100)")
    parser.add_argument("--quick", action="store_true", help="1 seed, 25-100 labels")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/active_learning"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds, pool_size, test_size = args.seeds, args.pool_size, args.test_size
    if args.quick:
        sizes, seeds, pool_size, test_size = [25, 50, 100], 1, 1500, 1000
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as executor:
        results = list(
            executor.map(
                run_seed,
                range(seeds),
                [sizes] * seeds,
                [pool_size] * seeds,
                [test_size] * seeds,
                [args.epochs] * seeds,
            )
        )
    f1 = {s: np.array([r[s] for r in results]) for s in STRATEGIES}
    pos = {s: np.array([r[f"{s}_positives"] for r in results]) for s in STRATEGIES}
    lines = [
        f"F1 on {test_size} held-out crops (1:10) against labels, mean ± sd over {seeds} "
        f"seed(s); pool of {pool_size}; Sifter epochs={args.epochs}; positives labelled "
        "in brackets",
        f"{'labels':>7} " + " ".join(f"{s:>22}" for s in STRATEGIES),
    ]
    for j, n in enumerate(sizes):
        cells = " ".join(
            f"{f1[s][:, j].mean():>8.3f} ± {f1[s][:, j].std():.3f} ({pos[s][:, j].mean():>5.1f})"
            for s in STRATEGIES
        )
        lines.append(f"{n:>7} {cells}")
    target = f1["random"][:, -1].mean()
    needed = labels_to_reach(sizes, f1["useful"].mean(axis=0), target)
    ratio = needed / sizes[-1]
    verdict = "met" if ratio <= TARGET_RATIO else "not met"
    lines += [
        "",
        f"random reaches F1 {target:.3f} at {sizes[-1]} labels; useful reaches it at "
        f"{needed:.0f} labels: ratio {ratio:.2f} (target <= {TARGET_RATIO:.2f}: {verdict})",
        f"took {time.perf_counter() - start:.0f} s",
    ]
    text = "\n".join(lines)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
