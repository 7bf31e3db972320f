"""F1 on held-out simulated crops against the number of labels, for Sifter and baselines.

Every method trains on the same nested label sets and is scored on the same held-out
crops (cut from other simulated images), for several seeds and on each simulated domain
(``spots``: fluorescence-like; ``difference``: astronomical difference imaging), in one
run. Methods marked +U also get 3,000 unlabelled candidate crops (from other images) to
pre-train on:

* auto +U          Sifter(phase="auto"): Phase 1, and Phase 2 where the policy says so
* siamese          Phase 1 (the Siamese gallery) without pre-training
* siamese +U       Phase 1 with self-supervised pre-training
* gallery-add +U   Phase 1 trained at the first size only; later labels are added to its
                   gallery without retraining
* cnn              Phase 2 (the direct CNN ensemble) from random weights
* cnn +U           Phase 2 started from the pre-trained encoder
* cnn +U refit     the same, predicting with its one refit network (predict_with="refit")
* cnn +U distil    the same, predicting with one network distilled from the ensemble on
                   the labelled and unlabelled crops (predict_with="distilled")
* holdout          the Phase 2 recipe with one 80/20 split instead of the CV ensemble
* spec             baseline: the specification's recipe as written (model, split, batch 8,
                   focal alpha 0.25, threshold 0.5)
* spec+balance     the same with its balance_dataset(target_ratio=0.3)
* forest           baseline: a random forest on hand-made filter features (threshold 0.5)
* brightness       baseline: the F1-best cut on the labels of the centre contrast (centre
                   3x3 mean minus crop median, raw units)

With ``--ceiling N`` the run also estimates each domain's ceiling: a random forest and a
CNN ensemble (2 folds) trained on N labels (20,000 as the issue asks), scored on the first
seed's held-out crops; the tables then give every method's gap to it.

``--limit spec=250`` fits a method only up to that many labels (the specification's recipe
trains a 78-MFLOP network at batch 8 for up to 75 epochs: minutes per fit beyond 250
labels on 2 cores); its cells above are left out ("-").

For each method two numbers: F1 at the method's own threshold, and best-F1, the F1 of the
best threshold on the test set's scores (the ranking's quality; scores are
``predict_proba[:, 1]`` for Sifter, ``decision_function`` for the others). Both as mean ±
sd over seeds, and against the best baseline at each label count.

Run: .venv/bin/python benchmarks/learning_curve.py [--sizes 25,50,100,250,500,1000]
     [--seeds 3] [--domains spots,difference] [--methods "auto +U,forest,brightness"]
     [--ceiling 20000] [--limit spec=250]
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
from blobsift.classify.baselines import BrightnessCut, FeatureForest, centre_features
from blobsift.classify.pretraining import PretrainedEncoders
from blobsift.metrics import best_threshold, precision_recall_f1
from blobsift.report import SPEC_EXPECTED_F1, plot_learning_curve
from blobsift.simulate import DOMAINS, LabelledCrops, simulate_crops
from blobsift.splits import nested_order

# name: (a model for a seed, whether it gets the unlabelled crops)
METHODS: dict[str, tuple[Callable[[int], Any], bool]] = {
    "auto +U": (lambda seed: Sifter(random_state=seed), True),
    "siamese": (lambda seed: Sifter(phase="siamese", random_state=seed), False),
    "siamese +U": (lambda seed: Sifter(phase="siamese", random_state=seed), True),
    "gallery-add +U": (lambda seed: Sifter(phase="siamese", random_state=seed), True),
    "cnn": (lambda seed: Sifter(phase="cnn", random_state=seed), False),
    "cnn +U": (lambda seed: Sifter(phase="cnn", random_state=seed), True),
    "cnn +U refit": (
        lambda seed: Sifter(phase="cnn", predict_with="refit", random_state=seed),
        True,
    ),
    "cnn +U distil": (
        lambda seed: Sifter(phase="cnn", predict_with="distilled", random_state=seed),
        True,
    ),
    "holdout": (lambda seed: HoldoutRecipe(random_state=seed), False),
    "spec": (lambda seed: SpecRecipe(random_state=seed), False),
    "spec+balance": (lambda seed: SpecRecipe(balance=True, random_state=seed), False),
    "forest": (lambda seed: FeatureForest(random_state=seed), False),
    "brightness": (lambda seed: BrightnessCut(), False),
}
DEFAULT_METHODS = (
    "auto +U", "siamese", "siamese +U", "gallery-add +U", "cnn", "cnn +U",
    "spec", "forest", "brightness",
)  # fmt: skip
BASELINES = ("forest", "spec", "brightness")
UNLABELED = 3000
METRICS = {"f1": "F1 at the method's own threshold", "best_f1": "best-F1 (ranking)"}


def ranking_scores(model: Any, crops: np.ndarray) -> np.ndarray:
    """The signal probability of Sifter, the decision function of the other methods."""
    if hasattr(model, "predict_proba"):
        return model.predict_proba(crops)[:, 1]
    return model.decision_function(crops)


def forest_outputs(model: FeatureForest, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The forest's predictions and ranking scores from features computed once."""
    return model.predict_from_features(features), model.decision_from_features(features)


def crops_of(n: int, seed: int, domain: str) -> LabelledCrops:
    """Simulated crops of a domain, without the difference domain's triplets."""
    return simulate_crops(n, seed=seed, domain=domain)._replace(triplets=None)


def run_domain(
    domain: str,
    sizes: list[int],
    methods: list[str],
    seeds: range,
    test_size: int,
    limits: dict[str, int],
) -> dict[str, dict[str, np.ndarray]]:
    """Fit every method at every size and seed; return metric -> method -> (seeds, sizes)."""
    shape = (len(seeds), len(sizes))
    results = {key: {m: np.full(shape, np.nan) for m in methods} for key in (*METRICS, "seconds")}
    for row, seed in enumerate(seeds):
        # One pool of 1,000 labels per seed, whatever sizes are run, so runs compare.
        pool = crops_of(max(1000, *sizes), 1000 + seed, domain)
        order = nested_order(pool.labels)
        pool = pool._replace(crops=pool.crops[order], labels=pool.labels[order])
        needs_unlabeled = any(METHODS[m][1] for m in methods)
        # Every +U fit of this seed shares one cache, as a project's rounds do: the encoder
        # is pre-trained on the unlabelled crops once, not once per label count.
        encoders = PretrainedEncoders()
        unlabeled = crops_of(UNLABELED, 3000 + seed, domain).crops if needs_unlabeled else None
        test = crops_of(test_size, 2000 + seed, domain)
        # The forest's features cost far more than its fits: computed once per seed.
        features = (
            {"pool": centre_features(pool.crops), "test": centre_features(test.crops)}
            if "forest" in methods
            else {}
        )
        grown = None
        for j, n in enumerate(sizes):
            for method in methods:
                if n > limits.get(method, n):
                    continue
                factory, uses_unlabeled = METHODS[method]
                extra = {"unlabeled": unlabeled, "encoders": encoders} if uses_unlabeled else {}
                start = time.perf_counter()
                if method == "gallery-add +U" and grown is not None:
                    have = len(grown.gallery_.gallery_labels_)
                    grown.gallery_.add_to_gallery(pool.crops[have:n], pool.labels[have:n])
                    model = grown
                elif method == "forest":
                    model = factory(seed).fit_features(features["pool"][:n], pool.labels[:n])
                else:
                    model = factory(seed).fit(pool.crops[:n], pool.labels[:n], **extra)
                    grown = model if method == "gallery-add +U" else grown
                results["seconds"][method][row, j] = time.perf_counter() - start
                if method == "forest":
                    predicted, scores = forest_outputs(model, features["test"])
                else:
                    predicted, scores = model.predict(test.crops), ranking_scores(model, test.crops)
                f1 = precision_recall_f1(test.labels, predicted)["f1"]
                best = best_threshold(test.labels, scores).f1
                results["f1"][method][row, j] = f1
                results["best_f1"][method][row, j] = best
                print(f"{domain} seed {seed} labels {n:>5} {method:>15}: F1 {f1:.3f} "
                      f"best-F1 {best:.3f} ({results['seconds'][method][row, j]:.0f} s) "
                      f"{getattr(model, 'phase_', '')} {getattr(model, 'phase_scores_', '')}",
                      file=sys.stderr, flush=True)  # fmt: skip
    return results


def estimate_ceiling(domain: str, n: int, test_size: int, seed: int) -> dict[str, float]:
    """Best-F1 of a forest and a 2-fold CNN ensemble trained on ``n`` labels."""
    pool = crops_of(n, 5000 + seed, domain)
    test = crops_of(test_size, 2000 + seed, domain)
    ceiling = {}
    start = time.perf_counter()
    forest = FeatureForest(random_state=seed).fit_features(centre_features(pool.crops), pool.labels)
    ceiling["forest"] = best_threshold(
        test.labels, forest.decision_from_features(centre_features(test.crops))
    ).f1
    print(f"{domain} ceiling forest on {n} labels: best-F1 {ceiling['forest']:.3f} "
          f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    start = time.perf_counter()
    cnn = Sifter(phase="cnn", n_folds=2, refit=False, random_state=seed)
    cnn.fit(pool.crops, pool.labels)
    ceiling["cnn"] = best_threshold(test.labels, ranking_scores(cnn, test.crops)).f1
    print(f"{domain} ceiling cnn on {n} labels: best-F1 {ceiling['cnn']:.3f} "
          f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    return ceiling


def print_ceiling(
    domain: str,
    results: dict[str, dict[str, np.ndarray]],
    sizes: list[int],
    methods: list[str],
    ceiling: dict[str, float],
    n: int,
) -> None:
    """Print the domain's ceiling and each method's best-F1 gap to it."""
    top = max(ceiling.values())
    trained = ", ".join(f"{name} {value:.3f}" for name, value in ceiling.items())
    print(f"\n[{domain}] ceiling (best-F1 of models trained on {n} labels: {trained}): "
          f"{top:.3f}; best-F1 minus the ceiling")  # fmt: skip
    print(f"{'labels':>7} " + " ".join(f"{m:>15}" for m in methods))
    for j, size in enumerate(sizes):
        row = " ".join(f"{np.mean(results['best_f1'][m][:, j]) - top:>+15.3f}" for m in methods)
        print(f"{size:>7} {row}")


def _mean_sd(values: np.ndarray) -> str:
    """``mean ± sd`` over seeds, or "-" where the method was not fitted."""
    if np.isnan(values).any():
        return f"{'-':>15}"
    return f"{np.mean(values):>8.3f} ± {np.std(values):.3f}"


def print_tables(
    domain: str,
    results: dict[str, dict[str, np.ndarray]],
    sizes: list[int],
    methods: list[str],
    test_size: int,
) -> None:
    """Print F1 and best-F1 (mean ± sd), the gaps to the best baseline, and fit times."""
    n_seeds = next(iter(results["f1"].values())).shape[0]
    baselines = [m for m in BASELINES if m in methods]
    for key, title in METRICS.items():
        values = results[key]
        print(f"\n[{domain}] {title} on {test_size} held-out crops (1:10), "
              f"mean ± sd over {n_seeds} seeds")  # fmt: skip
        print(f"{'labels':>7} " + " ".join(f"{m:>15}" for m in methods) + "   spec expects")
        for j, n in enumerate(sizes):
            cells = " ".join(_mean_sd(values[m][:, j]) for m in methods)
            expected = SPEC_EXPECTED_F1.get(n)
            print(f"{n:>7} {cells}   {'{:.2f}-{:.2f}'.format(*expected) if expected else '-'}")
        if not baselines:
            continue
        print(f"\n[{domain}] {title}: minus the best baseline at each count "
              f"(of {', '.join(baselines)}; ratio method / best baseline)")  # fmt: skip
        print(f"{'labels':>7} {'best baseline':>14} " + " ".join(f"{m:>17}" for m in methods))
        for j, n in enumerate(sizes):
            measured = [m for m in baselines if not np.isnan(values[m][:, j]).any()]
            best_name = max(measured, key=lambda m: np.mean(values[m][:, j]))
            base = np.mean(values[best_name][:, j])
            cells = " ".join(
                f"{np.mean(values[m][:, j]) - base:>+8.3f} "
                f"({f'{np.mean(values[m][:, j]) / base:.2f}x' if base >= 0.01 else 'n/a':>6})"
                for m in methods
            )
            print(f"{n:>7} {best_name:>14} {cells}")
    if {"auto +U", "siamese +U", "cnn +U"} <= set(methods):
        print(f"\n[{domain}] auto minus the better of its two phases (siamese +U, cnn +U); "
              "target >= -0.01")  # fmt: skip
        for j, n in enumerate(sizes):
            best = max(np.mean(results["f1"][m][:, j]) for m in ("siamese +U", "cnn +U"))
            print(f"{n:>7} {np.mean(results['f1']['auto +U'][:, j]) - best:>+8.3f}")
    print(f"\n[{domain}] mean fit seconds")
    print(f"{'labels':>7} " + " ".join(f"{m:>15}" for m in methods))
    for j, n in enumerate(sizes):
        row = " ".join(f"{np.mean(results['seconds'][m][:, j]):>15.1f}" for m in methods)
        print(f"{n:>7} {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25,50,100,250,500,1000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--test-size", type=int, default=3000)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--ceiling", type=int, default=0, help="labels of the ceiling models")
    parser.add_argument("--limit", default="", help="METHOD=N,...: fit METHOD up to N labels")
    parser.add_argument("--png", type=Path, default=Path("benchmarks/results/learning_curve.png"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",")
    domains = args.domains.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {list(METHODS)}")
    if set(domains) - set(DOMAINS):
        parser.error(f"unknown domains {sorted(set(domains) - set(DOMAINS))}; known: {DOMAINS}")
    limits = {
        name: int(n)
        for name, _, n in (item.partition("=") for item in args.limit.split(",") if item)
    }
    if set(limits) - set(methods):
        parser.error(f"--limit names methods not run: {sorted(set(limits) - set(methods))}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for domain in domains:
        results = run_domain(domain, sizes, methods, seeds, args.test_size, limits)
        print_tables(domain, results, sizes, methods, args.test_size)
        if args.ceiling:
            ceiling = estimate_ceiling(domain, args.ceiling, args.test_size, seeds[0])
            print_ceiling(domain, results, sizes, methods, ceiling, args.ceiling)
        curves = {m: (sizes, results["f1"][m].mean(axis=0).tolist()) for m in methods}
        png = args.png.with_name(f"{args.png.stem}_{domain}{args.png.suffix}")
        path = plot_learning_curve(curves, png, title=f"F1 against number of labels ({domain})")
        print(f"\n[{domain}] plot: {path}", flush=True)


if __name__ == "__main__":
    main()
