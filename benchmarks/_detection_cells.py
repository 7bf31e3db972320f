"""Recall at an equal candidate budget on realistic cell backgrounds (``--backgrounds cells``).

A few images of :func:`blobsift.simulate.simulate_cells_image` (nuclei and cytoplasm
autofluorescence, tissue edges, saturated bodies, spots on nuclei and in dense clusters).
Every detector runs once per image with a low threshold; its candidates are ranked by its
own score and the top ``k`` kept, for ``k`` = 1x, 3x and 10x the true spot count. Recall is
the share of true spots matched one to one within ``radius`` pixels
(:func:`blobsift.positions.match_positions`), pooled over the images. MP/s is the image
area over the time of the detector's own call (scores looked up afterwards are not timed).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from blobsift.detect import CandidateBudgetWarning, DetectSettings, detect_blobs, estimate_noise
from blobsift.positions import match_positions
from blobsift.simulate import CellsImage, simulate_cells_image

BUDGETS = (1, 3, 10)
OURS = "blobsift detect_blobs (thr 1.5)"
BASELINE = "median 15 px + 3-scale LoG"  # speeds are also given relative to it
SIGMA_MIN, SIGMA_MAX = 1.0, 3.0
#: A detector: image -> (positions (n, 2), scores (n,)); higher score = more spot-like.
Detector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class Run:
    seconds: float
    positions: np.ndarray  # ranked, best first
    scores: np.ndarray


def _ranked(positions: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="stable")
    return np.asarray(positions, float).reshape(-1, 2)[order], np.asarray(scores, float)[order]


def _normalised(image: np.ndarray) -> np.ndarray:
    background, noise = estimate_noise(image)
    return ((image - background) / noise).astype(np.float32)


def ours(threads: int, threshold: float = 1.5) -> Detector:
    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CandidateBudgetWarning)
            found = detect_blobs(
                image,
                threshold=threshold,
                sigma_min=SIGMA_MIN,
                sigma_max=SIGMA_MAX,
                max_candidates=10**6,
                n_threads=threads,
            )
        return found.positions, found.score

    return run


def median_log(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median-filter background (15 px) and a 3-scale scale-normalised LoG, 3x3 maxima."""
    residual = image - ndimage.median_filter(image, size=15)
    response = np.max(
        [-ndimage.gaussian_laplace(residual, s) * s**2 for s in (1.0, 1.5, 2.0)], axis=0
    )
    peaks = (response == ndimage.maximum_filter(response, size=3)) & (response > 0)
    rows, cols = np.nonzero(peaks)
    return np.column_stack([rows, cols]).astype(float), response[rows, cols]


def sep_extract(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import sep

    sep.set_extract_pixstack(10**7)
    sep.set_sub_object_limit(10**5)
    data = np.ascontiguousarray(image, dtype=np.float32)
    background = sep.Background(data)
    found = sep.extract(data - background, 2.0, err=background.globalrms, minarea=3)
    return np.column_stack([found["y"], found["x"]]), found["peak"]


def _log_scores(normalised: np.ndarray, blobs: np.ndarray) -> np.ndarray:
    """Scale-normalised LoG of each blob at its own sigma (the blob_log response)."""
    scores = np.zeros(len(blobs))
    rows, cols = blobs[:, 0].astype(int), blobs[:, 1].astype(int)
    for sigma in np.unique(blobs[:, 2]):
        mine = blobs[:, 2] == sigma
        response = -ndimage.gaussian_laplace(normalised, sigma) * sigma**2
        scores[mine] = response[rows[mine], cols[mine]]
    return scores


def blob_log(image: np.ndarray, wanted: int, timer: list[float]) -> tuple[np.ndarray, np.ndarray]:
    from skimage.feature import blob_log as skimage_blob_log

    normalised = _normalised(image)
    threshold = 0.4
    for _ in range(5):  # lower the threshold until the largest budget can be filled
        start = time.perf_counter()
        blobs = skimage_blob_log(
            normalised, min_sigma=SIGMA_MIN, max_sigma=SIGMA_MAX, num_sigma=5, threshold=threshold
        )
        timer[0] = time.perf_counter() - start
        if len(blobs) >= wanted:
            break
        threshold /= 2
    return blobs[:, :2], _log_scores(normalised, blobs)


def bigfish_spots(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """big-fish ``detect_spots`` (LoG at sigma 1.5, 3x3 maxima) at a low threshold."""
    from bigfish.detection import detect_spots

    data = image.astype(np.float64)
    spots = detect_spots(data, threshold=1.0, log_kernel_size=1.5, minimum_distance=1)
    response = -ndimage.gaussian_laplace(data, 1.5)
    return spots.astype(float), response[spots[:, 0], spots[:, 1]]


def bigfish_auto(image: np.ndarray) -> np.ndarray:
    """big-fish ``detect_spots`` with its automatic (elbow) threshold: what a user gets."""
    from bigfish.detection import detect_spots

    spots = detect_spots(image.astype(np.float64), log_kernel_size=1.5, minimum_distance=1)
    return np.asarray(spots, float)


def _available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def detectors(threads: int) -> dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]]:
    found: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
        OURS: ours(threads),
        BASELINE: median_log,
    }
    if _available("sep"):
        found["sep extract (2 sigma, by peak)"] = sep_extract
    found["skimage blob_log"] = blob_log
    if _available("bigfish"):
        found["big-fish detect_spots (thr 1)"] = bigfish_spots
    return found


def _stats(run: Run, sim: CellsImage, k: int, radius: float) -> tuple[int, np.ndarray, float]:
    """(matched count, matched spot mask, share of unmatched candidates on nuclei)."""
    spots = sim.objects[sim.objects["label"] == 1]
    truth = spots[["row", "col"]].to_numpy(float)
    top = run.positions[:k]
    index_top, index_truth = match_positions(top, truth, radius)
    matched = np.zeros(len(truth), bool)
    matched[index_truth] = True
    false = np.setdiff1d(np.arange(len(top)), index_top)
    rows = np.clip(np.round(top[false, 0]).astype(int), 0, sim.image.shape[0] - 1)
    cols = np.clip(np.round(top[false, 1]).astype(int), 0, sim.image.shape[1] - 1)
    nuclei = getattr(sim, "nuclei", None)
    if nuclei is None or not len(false):
        return int(matched.sum()), matched, float("nan")
    on_nuclei = float(np.mean(nuclei[rows, cols] > 0))
    return int(matched.sum()), matched, on_nuclei


def run_cells(size: int, n_images: int, seed: int, threads: int, radius: float) -> None:
    n_spots = max(20, size * size // 2600)
    sims = [
        simulate_cells_image((size, size), n_spots=n_spots, seed=seed + i) for i in range(n_images)
    ]
    rows = []
    thresholds: dict[int, list[float]] = {k: [] for k in BUDGETS}
    default_ratio = []
    default = DetectSettings().threshold
    for name, detector in detectors(threads).items():
        runs = []
        for sim in sims:
            if detector is blob_log:
                timer = [0.0]
                positions, scores = blob_log(sim.image, max(BUDGETS) * n_spots, timer)
                seconds = timer[0]
            else:
                detector(sim.image[:64, :64])  # warm-up
                start = time.perf_counter()
                positions, scores = detector(sim.image)
                seconds = time.perf_counter() - start
            runs.append(Run(seconds, *_ranked(positions, scores)))
        row: dict[str, object] = {
            "method": name,
            "MP/s": sum(s.image.size for s in sims) / 1e6 / sum(r.seconds for r in runs),
            "cands/spot": np.mean([len(r.positions) / n_spots for r in runs]),
        }
        pairs = list(zip(runs, sims, strict=True))
        for k in BUDGETS:
            matched = sum(_stats(r, s, k * n_spots, radius)[0] for r, s in pairs)
            row[f"R@{k}x"] = matched / (n_spots * len(sims))
        masks = [_stats(r, s, 3 * n_spots, radius)[1] for r, s in pairs]
        contexts = [s.objects.loc[s.objects["label"] == 1, "context"].to_numpy() for s in sims]
        for context in ("free", "nucleus", "cluster"):
            hits = np.concatenate([m[c == context] for m, c in zip(masks, contexts, strict=True)])
            row[f"R@3x {context}"] = hits.mean()
        row["false@3x on nuclei"] = np.nanmean(
            [_stats(r, s, 3 * n_spots, radius)[2] for r, s in pairs]
        )
        rows.append(row)
        if name == OURS:
            for k in BUDGETS:
                thresholds[k] += [
                    float(r.scores[min(k * n_spots, len(r.scores)) - 1]) for r in runs
                ]
            default_ratio = [float(np.sum(r.scores > default)) / n_spots for r in runs]
    table = pd.DataFrame(rows)
    base = table.loc[table["method"] == BASELINE, "MP/s"].iloc[0]
    table.insert(2, f"speed vs {BASELINE.split()[0]}", table["MP/s"] / base)
    nucleus_area = np.mean([(s.nuclei > 0).mean() for s in sims])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nRecall at an equal candidate budget on {n_images} cell-background images of "
        f"{size}x{size} ({n_spots} spots each: 35 % on nuclei, 25 % in clusters); match "
        f"within {radius:g} px; {threads} thread(s); load average {load:.1f} on "
        f"{os.cpu_count()} CPUs; nuclei cover {100 * nucleus_area:.0f} % of the pixels.\n"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        "\ndetect_blobs score of the k-th candidate (the threshold giving k candidates), "
        "median over images: "
        + ", ".join(f"{k}x: {np.median(thresholds[k]):.2f}" for k in BUDGETS)
        + f"; at the default threshold {default:g}: {np.mean(default_ratio):.1f} candidates per "
        "true spot."
    )
    if _available("bigfish"):
        auto = [len(bigfish_auto(s.image)) / n_spots for s in sims]
        print(f"big-fish automatic threshold: {np.mean(auto):.1f} candidates per true spot.")
