"""Intensity context: Sifter with and without the image noise of its crops, and baselines.

On both simulated domains, with the image noise varying between images and across each
one (``simulate_crops(..., noise_variation=V)``), every method trains on the same nested
label sets and is scored on the same held-out crops (other images), for several seeds:

* sifter +U        Sifter(phase="auto") with 3,000 unlabelled crops, no image noise
* sifter +U +noise the same fitted with ``noise=``: it tries the intensity-context head
                   and keeps it where held-out labels show it helps (the log says
                   whether it did, and the held-out average precision without and with)
* forest           baseline: random forest on hand-made features (per-crop SNR units)
* brightness       baseline: the F1-best cut on the centre contrast (raw units)

F1 at each method's own threshold and best-F1 (the ranking), mean ± sd over seeds.

Then the shift test of issue 13: both Sifters fitted at the largest label count on images
of constant noise (``noise_variation=0``) score held-out crops of the same kind as drawn,
after a gain change (crops and noise doubled), and with the noise alone doubled
(Gaussian noise of sqrt(3) image sigmas added to each crop, the signal unchanged).

Run: .venv/bin/python benchmarks/intensity.py [--sizes 50,100,250] [--seeds 2]
     [--domains spots,difference] [--variation 1.0] [--test-size 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from blobsift import Sifter
from blobsift.classify.baselines import BrightnessCut, FeatureForest
from blobsift.classify.pretraining import PretrainedEncoders
from blobsift.metrics import best_threshold, precision_recall_f1
from blobsift.simulate import DOMAINS, LabelledCrops, simulate_crops
from blobsift.splits import nested_order

METHODS = ("sifter +U", "sifter +U +noise", "forest", "brightness")
UNLABELED = 3000


def crops_of(n: int, seed: int, domain: str, variation: float) -> LabelledCrops:
    """Simulated crops of a domain with their image noise, without triplets."""
    data = simulate_crops(n, seed=seed, domain=domain, noise_variation=variation)
    return data._replace(triplets=None)


def scores_of(model: Any, crops: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
    """Signal probability of a Sifter (with ``noise`` if given), else decision function."""
    if isinstance(model, Sifter):
        return model.predict_proba(crops, noise=noise)[:, 1]
    return model.decision_function(crops)


def evaluate(model: Any, test: LabelledCrops, with_noise: bool) -> tuple[float, float]:
    """(F1 at the model's threshold, best-F1) on ``test``."""
    noise = test.noise if with_noise else None
    scores = scores_of(model, test.crops, noise)
    decisions = (
        (scores >= model.threshold_).astype(np.int64)
        if isinstance(model, Sifter)
        else model.predict(test.crops)
    )
    f1 = precision_recall_f1(test.labels, decisions)["f1"]
    return f1, best_threshold(test.labels, scores).f1


def fit(
    method: str, seed: int, pool: LabelledCrops, n: int, unlabeled: np.ndarray, cache: Any
) -> Any:
    if method == "forest":
        return FeatureForest(random_state=seed).fit(pool.crops[:n], pool.labels[:n])
    if method == "brightness":
        return BrightnessCut().fit(pool.crops[:n], pool.labels[:n])
    assert pool.noise is not None
    noise = pool.noise[:n] if method.endswith("+noise") else None
    return Sifter(random_state=seed).fit(
        pool.crops[:n], pool.labels[:n], unlabeled=unlabeled, encoders=cache, noise=noise
    )


def context_note(model: Any) -> str:
    """Whether a Sifter kept its context head, and the held-out scores it was chosen on."""
    metrics = getattr(getattr(model, "estimator_", None), "cv_metrics_", {})
    if "context_scores" not in metrics:
        return ""
    scores = metrics["context_scores"]
    kept = "kept" if metrics["intensity_context"] else "dropped"
    return f"context {kept} (held-out AP {scores['without']:.3f} -> {scores['with']:.3f})"


def learning_curve(
    domain: str,
    sizes: list[int],
    seeds: range,
    variation: float,
    test_size: int,
    methods: list[str],
) -> dict[str, np.ndarray]:
    """metric/method -> (seeds, sizes) on images whose noise varies by ``variation``."""
    results = {f"{k} {m}": np.full((len(seeds), len(sizes)), np.nan)
               for k in ("f1", "best_f1") for m in methods}  # fmt: skip
    for row, seed in enumerate(seeds):
        pool = crops_of(max(sizes), 1000 + seed, domain, variation)
        order = nested_order(pool.labels)
        pool = pool._replace(
            crops=pool.crops[order], labels=pool.labels[order], noise=pool.noise[order]
        )
        unlabeled = crops_of(UNLABELED, 3000 + seed, domain, variation).crops
        test = crops_of(test_size, 2000 + seed, domain, variation)
        cache = PretrainedEncoders()
        for j, n in enumerate(sizes):
            for method in methods:
                start = time.perf_counter()
                model = fit(method, seed, pool, n, unlabeled, cache)
                f1, best = evaluate(model, test, method.endswith("+noise"))
                results[f"f1 {method}"][row, j] = f1
                results[f"best_f1 {method}"][row, j] = best
                print(f"{domain} V={variation} seed {seed} labels {n:>4} {method:>17}: F1 "
                      f"{f1:.3f} best-F1 {best:.3f} ({time.perf_counter() - start:.0f} s) "
                      f"{getattr(model, 'phase_', '')} {context_note(model)}", file=sys.stderr,
                      flush=True)  # fmt: skip
    return results


def shift_test(domain: str, n: int, seeds: range, test_size: int) -> dict[str, np.ndarray]:
    """F1 / best-F1 of both Sifters fitted on constant-noise images, as drawn and shifted."""
    cases = ("as drawn", "gain x2", "noise x2")
    results = {f"{k} {m} {c}": np.full(len(seeds), np.nan) for k in ("f1", "best_f1")
               for m in METHODS[:2] for c in cases}  # fmt: skip
    for row, seed in enumerate(seeds):
        pool = crops_of(n, 1000 + seed, domain, 0.0)
        unlabeled = crops_of(UNLABELED, 3000 + seed, domain, 0.0).crops
        test = crops_of(test_size, 2000 + seed, domain, 0.0)
        assert test.noise is not None
        rng = np.random.default_rng(seed)
        added = np.sqrt(3.0) * test.noise[:, None, None] * rng.standard_normal(test.crops.shape)
        shifted = {
            "as drawn": test,
            "gain x2": test._replace(crops=2 * test.crops, noise=2 * test.noise),
            "noise x2": test._replace(crops=test.crops + added, noise=2 * test.noise),
        }
        cache = PretrainedEncoders()
        for method in METHODS[:2]:
            model = fit(method, seed, pool, n, unlabeled, cache)
            for case, data in shifted.items():
                f1, best = evaluate(model, data, method.endswith("+noise"))
                results[f"f1 {method} {case}"][row] = f1
                results[f"best_f1 {method} {case}"][row] = best
                print(f"{domain} shift seed {seed} {method:>17} {case}: F1 {f1:.3f} best-F1 "
                      f"{best:.3f} {context_note(model)}", file=sys.stderr, flush=True)  # fmt: skip
    return results


def cell(values: np.ndarray) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100,250")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--variation", type=float, default=1.0)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--skip-shift", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = range(args.seeds)
    methods = args.methods.split(",")
    if set(methods) - set(METHODS):
        parser.error(f"unknown methods {sorted(set(methods) - set(METHODS))}; known: {METHODS}")
    for domain in args.domains.split(","):
        results = learning_curve(domain, sizes, seeds, args.variation, args.test_size, methods)
        for key, title in (("f1", "F1 at own threshold"), ("best_f1", "best-F1 (ranking)")):
            print(f"\n[{domain}, noise_variation={args.variation}] {title}, {args.test_size} "
                  f"held-out crops, mean ± sd over {len(seeds)} seeds")  # fmt: skip
            print(f"{'labels':>6} " + " ".join(f"{m:>17}" for m in methods))
            for j, n in enumerate(sizes):
                cells = " ".join(f"{cell(results[f'{key} {m}'][:, j]):>17}" for m in methods)
                print(f"{n:>6} {cells}")
        if args.skip_shift:
            continue
        shift = shift_test(domain, max(sizes), seeds, args.test_size)
        print(f"\n[{domain}] fitted on {max(sizes)} labels of constant-noise images; "
              "F1 / best-F1 on held-out crops")  # fmt: skip
        print(f"{'case':>10} " + " ".join(f"{m:>33}" for m in METHODS[:2]))
        for case in ("as drawn", "gain x2", "noise x2"):
            cells = " ".join(
                f"{cell(shift[f'f1 {m} {case}'])} / {cell(shift[f'best_f1 {m} {case}'])}"
                for m in METHODS[:2]
            )
            print(f"{case:>10} {cells}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
