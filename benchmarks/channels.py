"""F1 against labels: science/reference/difference triplets against the difference alone.

braai, ZTF's real/bogus network, classifies transients on the triplet of a science
frame, its reference and their difference. This benchmark asks whether blobsift learns
more from the triplet than from the difference image alone at few labels: for each seed,
one pool of simulated difference-domain candidates (``simulate_crops(...,
domain="difference")``, 1 real : 10 bogus) gives nested label sets of each size, and every
model is scored on the same held-out candidates from other simulated images. The two
inputs are the same candidates and the same labels, cut from three channels (n, 3, 64, 64)
or from the difference only (n, 64, 64); only the input differs.

For each: F1 at the model's own threshold (chosen on its held-out labels), and best-F1,
the F1 of the best threshold on the test scores (the ranking's quality), as mean ± sd
over seeds, and triplet minus difference per seed.

Run: .venv/bin/python benchmarks/channels.py [--sizes 25,50,100,250] [--seeds 3]
     [--test-size 1000] [--phase auto]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from blobsift import Sifter
from blobsift.metrics import best_threshold, precision_recall_f1
from blobsift.simulate import LabelledCrops, simulate_crops
from blobsift.splits import nested_order

INPUTS = ("triplet", "difference")
METRICS = {"f1": "F1 at the model's own threshold", "best_f1": "best-F1 (ranking)"}


def _inputs(crops: LabelledCrops) -> dict[str, np.ndarray]:
    """The two inputs of one set of candidates: all three channels, or the difference."""
    assert crops.triplets is not None  # the difference domain always has them
    return {"triplet": crops.triplets, "difference": crops.crops}


def run(
    sizes: list[int], seeds: range, test_size: int, phase: str
) -> dict[str, dict[str, np.ndarray]]:
    """Fit both inputs at every size and seed; return metric -> input -> (seeds, sizes)."""
    shape = (len(seeds), len(sizes))
    results = {key: {i: np.full(shape, np.nan) for i in INPUTS} for key in (*METRICS, "seconds")}
    for row, seed in enumerate(seeds):
        pool = simulate_crops(max(sizes), seed=1000 + seed, domain="difference")
        order = nested_order(pool.labels)
        labels, train = pool.labels[order], {k: v[order] for k, v in _inputs(pool).items()}
        test = simulate_crops(test_size, seed=2000 + seed, domain="difference")
        for j, n in enumerate(sizes):
            for name, crops in train.items():
                start = time.perf_counter()
                model = Sifter(phase=phase, random_state=seed).fit(crops[:n], labels[:n])
                seconds = time.perf_counter() - start
                held_out = _inputs(test)[name]
                f1 = precision_recall_f1(test.labels, model.predict(held_out))["f1"]
                best = best_threshold(test.labels, model.predict_proba(held_out)[:, 1]).f1
                results["f1"][name][row, j] = f1
                results["best_f1"][name][row, j] = best
                results["seconds"][name][row, j] = seconds
                line = f"seed {seed} labels {n:>4} {name:>10}: F1 {f1:.3f} best-F1 {best:.3f}"
                print(f"{line} ({seconds:.0f} s, {model.phase_})", file=sys.stderr, flush=True)
    return results


def print_tables(
    results: dict[str, dict[str, np.ndarray]], sizes: list[int], test_size: int
) -> None:
    """Mean ± sd of each input, and the per-seed gain of the triplet."""
    n_seeds = results["f1"]["triplet"].shape[0]
    for key, title in METRICS.items():
        values = results[key]
        print(f"\n{title} on {test_size} held-out candidates (1:10), mean ± sd over {n_seeds} "
              "seeds")  # fmt: skip
        print(f"{'labels':>7} {'triplet':>15} {'difference':>15} {'triplet - diff':>15}   per seed")
        for j, n in enumerate(sizes):
            tri, diff = values["triplet"][:, j], values["difference"][:, j]
            gain = tri - diff
            cells = " ".join(f"{np.mean(v):>8.3f} ± {np.std(v):.3f}" for v in (tri, diff, gain))
            print(f"{n:>7} {cells}   {' '.join(f'{g:+.3f}' for g in gain)}")
    print("\nmean fit seconds")
    for j, n in enumerate(sizes):
        row = " ".join(f"{name} {np.mean(results['seconds'][name][:, j]):.1f}" for name in INPUTS)
        print(f"{n:>7} {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25,50,100,250")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--phase", default="auto", choices=("auto", "siamese", "cnn"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    results = run(sizes, seeds, args.test_size, args.phase)
    print_tables(results, sizes, args.test_size)


if __name__ == "__main__":
    main()
