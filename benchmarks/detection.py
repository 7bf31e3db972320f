"""Detection benchmark: speed and recall at a fixed candidate budget, vs other detectors.

One simulated image (``blobsift.simulate.simulate_image``: spots down to the detection limit
plus hot pixels, cosmic rays and out-of-focus blobs), every method held to the same budget
of ``3 x`` the true spot count, and recall = the share of true spots with a candidate within
``--radius`` pixels. ``detect_blobs`` runs with ``max_candidates=budget``, once with its
default threshold and once with threshold 1.5; methods without a candidate cap get their
threshold bisected until they return at most the budget.
skimage ``blob_log`` and ``blob_dog`` always run (same sigma range, their other defaults);
``sep`` and a plain OpenCV DoG run when installed. Speed ratios are relative to the first
``detect_blobs`` row in the same run. Last, ``extract_crops`` cuts 3,000 crops.

    python benchmarks/detection.py            # 2048 x 2048, 1,000 spots (simulation ~1 min)
    python benchmarks/detection.py --quick    # 1024 x 1024, 250 spots
    python benchmarks/detection.py --backgrounds cells --size 1024 --images 3

``--backgrounds cells`` instead measures recall at budgets of 1x, 3x and 10x the true
count on realistic cell backgrounds (nuclei, tissue edges, saturation, spot clusters),
each detector ranked by its own score (see ``benchmarks/_detection_cells.py``).

``--profile`` prints the time of each stage of ``detect_blobs`` on the simulated image, on 1
and 2 threads (see ``benchmarks/_detection_profile.py``).

``--thresholds 2.2 3 4`` prints candidates per true spot and recall at each threshold on
four domains (cells, plain spots, difference images, pure noise; 3 images of 1024 x 1024
each), what the default threshold is chosen on (see ``benchmarks/_detection_thresholds.py``).

The simulated image is cached under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from blobsift.crops import extract_crops
from blobsift.detect import CandidateBudgetWarning, DetectSettings, detect_blobs, estimate_noise

RESULTS = Path(__file__).resolve().parent / "results"
SIGMA_MIN, SIGMA_MAX = 1.0, 3.0


def load_image(size: int, spots: int, seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    RESULTS.mkdir(exist_ok=True)
    cache = RESULTS / f"detection_sim_{size}_{spots}_{seed}.npz"
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        objects = pd.DataFrame({k[4:]: data[k] for k in data.files if k.startswith("obj_")})
        return data["image"], objects
    from blobsift.simulate import simulate_image

    sim = simulate_image((size, size), n_spots=spots, seed=seed)
    columns = {f"obj_{c}": sim.objects[c].to_numpy() for c in sim.objects.columns}
    columns["obj_kind"] = columns["obj_kind"].astype(str)
    np.savez(cache, image=sim.image, **columns)
    return sim.image, sim.objects


def timed(function: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def bisect_threshold(
    run: Callable[[float], np.ndarray], budget: int, low: float, high: float, steps: int
) -> float:
    """Largest-count threshold (geometric bisection) whose output fits the budget."""
    best = high
    for _ in range(steps):
        middle = float(np.sqrt(low * high))
        count = len(run(middle))
        if count > budget:
            low = middle
        else:
            best, high = middle, middle
            if count >= 0.98 * budget:
                break
    return best


def recall(positions: np.ndarray, truth: np.ndarray, radius: float) -> float:
    if len(positions) == 0:
        return 0.0
    distance, _ = cKDTree(positions).query(truth)
    return float(np.mean(distance <= radius))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, help="image side (default 2048; --thresholds 1024)")
    parser.add_argument("--spots", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="threads for every method")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (fast methods)")
    parser.add_argument("--radius", type=float, default=2.0, help="match radius, pixels")
    parser.add_argument("--bisect-steps", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="1024 x 1024 with 250 spots")
    parser.add_argument(
        "--backgrounds",
        choices=("plain", "cells"),
        default="plain",
        help="cells: recall at 1x/3x/10x budgets on realistic cell backgrounds",
    )
    parser.add_argument("--images", type=int, default=3, help="images (--backgrounds cells)")
    parser.add_argument(
        "--profile", action="store_true", help="per-stage times of detect_blobs, 1 and 2 threads"
    )
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        metavar="T",
        help="candidates per true spot and recall at these thresholds on four domains "
        "(--size, default 1024 here; --images)",
    )
    args = parser.parse_args()
    if args.thresholds:
        from _detection_thresholds import run_thresholds

        run_thresholds(args.thresholds, args.size or 1024, args.images, args.seed)
        return
    args.size = args.size or 2048
    if args.backgrounds == "cells":
        from _detection_cells import run_cells

        run_cells(args.size, args.images, args.seed, args.threads, args.radius)
        return
    if args.quick:
        args.size, args.spots = 1024, 250

    image, objects = load_image(args.size, args.spots, args.seed)
    if args.profile:
        from _detection_profile import run_profile

        run_profile(image, args.repeats)
        return
    spots = objects[objects["label"] == 1]
    truth = spots[["row", "col"]].to_numpy(dtype=float)
    bright = spots["snr"].to_numpy() >= 5
    budget = 3 * len(spots)
    megapixels = image.size / 1e6
    background, noise = estimate_noise(image)
    normalised = ((image - background) / noise).astype(np.float32)  # helps the baselines
    rows = []

    def add(name: str, seconds: float, positions: np.ndarray, note: str = "") -> None:
        rows.append(
            {
                "method": name,
                "MP/s": megapixels / seconds,
                "ms": 1e3 * seconds,
                "candidates": len(positions),
                "recall": recall(positions, truth, args.radius),
                "recall snr>=5": recall(positions, truth[bright], args.radius),
                "note": note,
            }
        )

    # -- detect_blobs: default settings, budget as max_candidates ---------------------------
    default = DetectSettings().threshold
    for threshold, note in ((default, f"defaults (threshold {default:g})"), (1.5, "threshold 1.5")):

        def ours(threshold: float = threshold) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CandidateBudgetWarning)
                found = detect_blobs(
                    image, threshold=threshold, max_candidates=budget, n_threads=args.threads
                )
            return found.positions

        ours()  # warm-up
        seconds, positions = timed(ours, args.repeats)
        add("blobsift detect_blobs", seconds, positions, note + ", max_candidates=budget")

    # -- scikit-image ---------------------------------------------------------------------
    from skimage.feature import blob_dog, blob_log

    for name, function in (("skimage blob_log", blob_log), ("skimage blob_dog", blob_dog)):

        def run(threshold: float, function: Callable = function) -> np.ndarray:
            blobs = function(
                normalised, min_sigma=SIGMA_MIN, max_sigma=SIGMA_MAX, threshold=threshold
            )
            return blobs[:, :2]

        threshold = bisect_threshold(run, budget, 1e-3, 10.0, args.bisect_steps)
        seconds, positions = timed(lambda run=run, t=threshold: run(t), 1)
        add(name, seconds, positions, f"threshold={threshold:.3g} (bisected)")

    # -- sep (source extraction), when installed ----------------------------------------
    try:
        import sep
    except ImportError:
        sep = None
    if sep is not None:
        sep.set_extract_pixstack(10**7)
        sep.set_sub_object_limit(10**5)
        data = np.ascontiguousarray(image, dtype=np.float32)

        def run_sep(threshold: float) -> np.ndarray:
            background_map = sep.Background(data)
            found = sep.extract(
                data - background_map, threshold, err=background_map.globalrms, minarea=3
            )
            return np.column_stack([found["y"], found["x"]])

        threshold = bisect_threshold(run_sep, budget, 0.3, 20.0, args.bisect_steps)
        seconds, positions = timed(lambda: run_sep(threshold), min(args.repeats, 3))
        add("sep extract", seconds, positions, f"thresh={threshold:.3g} sigma (bisected)")

    # -- a plain OpenCV DoG, when installed -------------------------------------------------
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        cv2.setNumThreads(args.threads)

        def run_cv2() -> np.ndarray:
            inner = cv2.GaussianBlur(image, (0, 0), 1.6)
            outer = cv2.GaussianBlur(image, (0, 0), 1.6 * 1.6)
            dog = cv2.subtract(inner, outer)
            peaks = (dog == cv2.dilate(dog, np.ones((3, 3), np.uint8))) & (dog > 0)
            r, c = np.nonzero(peaks)
            keep = np.argsort(-dog[r, c])[:budget]
            return np.column_stack([r[keep], c[keep]]).astype(float)

        run_cv2()
        seconds, positions = timed(run_cv2, args.repeats)
        add("OpenCV DoG (1 scale)", seconds, positions, "top budget by response")

    table = pd.DataFrame(rows)
    ours_rate = table.loc[0, "MP/s"]
    table.insert(2, "speed vs detect_blobs", table["MP/s"] / ours_rate)

    # -- extract_crops -----------------------------------------------------------------------
    rng = np.random.default_rng(args.seed)
    crop_positions = rng.uniform(0, args.size - 1, size=(3000, 2))
    extract_crops(image, crop_positions)
    crop_seconds, _ = timed(lambda: extract_crops(image, crop_positions), 7)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nDetection on a {args.size}x{args.size} float32 simulated image: {len(spots)} spots "
        f"+ {len(objects) - len(spots)} decoys; budget {budget} candidates (3x spots); "
        f"recall within {args.radius:g} px; {args.threads} thread(s); "
        f"load average at the end {load:.1f} on {os.cpu_count()} CPUs.\n"
    )
    formatters = {
        "MP/s": "{:.1f}".format,
        "ms": "{:.0f}".format,
        "speed vs detect_blobs": "{:.3f}".format,
        "recall": "{:.3f}".format,
        "recall snr>=5": "{:.3f}".format,
    }
    print(table.to_string(index=False, formatters=formatters))
    blob_log_rate = table.loc[table["method"] == "skimage blob_log", "MP/s"].iloc[0]
    print(
        f"\ndetect_blobs: {ours_rate:.1f} MP/s = {ours_rate / blob_log_rate:.0f}x blob_log "
        f"(targets: >= 100 MP/s, >= 50x blob_log, recall >= 0.97)."
    )
    print(
        f"extract_crops: 3000 crops of 64x64 from {args.size}x{args.size} in "
        f"{1e3 * crop_seconds:.1f} ms (target < 20 ms)."
    )


if __name__ == "__main__":
    main()
