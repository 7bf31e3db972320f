"""Candidates per true spot and recall by threshold, on four domains (``--thresholds``).

What the default threshold is chosen on. For each threshold, ``detect_blobs`` (its other
settings at their defaults) runs on a few seeded images of each domain:

* **cells**: :func:`blobsift.simulate.simulate_cells_image` (spots on nuclei, in clusters,
  beside saturated bodies), its default spot density;
* **plain spots**: :func:`blobsift.simulate.simulate_image` (spots down to the detection
  limit, hot pixels, cosmic rays, out-of-focus blobs);
* **difference**: the difference image of
  :func:`blobsift.simulate.simulate_difference_image` (transients the real spots; star
  residuals, cosmic rays and hot pixels the rest), every count scaled with the area;
* **pure noise**: white Gaussian noise, where every candidate is a false alarm.

"cands/spot" is the number of candidates over the number of true spots and "recall" the
share of true spots paired one to one within 2 pixels
(:func:`blobsift.positions.match_positions`), both pooled over the images; pure noise gives
candidates per megapixel.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from blobsift.detect import DetectSettings, detect_blobs
from blobsift.positions import match_positions
from blobsift.simulate import simulate_cells_image, simulate_difference_image, simulate_image

RADIUS = 2.0


def _difference(shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    defaults = inspect.signature(simulate_difference_image).parameters
    area = shape[0] * shape[1] / 512**2
    counts = {
        name: max(round(defaults[name].default * area), 1)
        for name in ("n_transients", "n_stars", "n_cosmic_rays", "n_hot_pixels")
    }
    sim = simulate_difference_image(shape, seed=seed, **counts)
    truth = sim.objects[sim.objects["label"] == 1]
    return sim.difference, truth[["row", "col"]].to_numpy(float)


def _with_spots(
    simulate: Callable[..., Any], shape: tuple[int, int], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    area = shape[0] * shape[1] / 512**2  # the simulators' default density: 100 per 512^2
    sim = simulate(shape, n_spots=round(100 * area), seed=seed)
    truth = sim.objects[sim.objects["label"] == 1]
    return sim.image, truth[["row", "col"]].to_numpy(float)


def domains(size: int, n_images: int, seed: int) -> dict[str, list[tuple[np.ndarray, ...]]]:
    """Seeded (image, true positions) pairs of each domain; pure noise has no positions."""
    shape = (size, size)
    seeds = range(seed, seed + n_images)
    rng = np.random.default_rng(seed)
    return {
        "cells": [_with_spots(simulate_cells_image, shape, s) for s in seeds],
        "plain spots": [_with_spots(simulate_image, shape, s) for s in seeds],
        "difference": [_difference(shape, s) for s in seeds],
        "pure noise": [
            (rng.normal(100.0, 5.0, shape).astype(np.float32), np.empty((0, 2))) for _ in seeds
        ],
    }


def measure(images: list[tuple[np.ndarray, ...]], threshold: float) -> tuple[float, float]:
    """(candidates per true spot, recall) pooled over the images; per MP without spots."""
    found, matched, truths, pixels = 0, 0, 0, 0
    for image, truth in images:
        candidates = detect_blobs(image, threshold=threshold)
        found += len(candidates)
        matched += len(match_positions(candidates.positions, truth, RADIUS)[0])
        truths += len(truth)
        pixels += image.size
    if truths == 0:
        return found / (pixels / 1e6), float("nan")
    return found / truths, matched / truths


def run_thresholds(thresholds: list[float], size: int, n_images: int, seed: int) -> None:
    data = domains(size, n_images, seed)
    rows = []
    for threshold in sorted(thresholds):
        row: dict[str, float] = {"threshold": threshold}
        for name, images in data.items():
            ratio, recall = measure(images, threshold)
            if name == "pure noise":
                row["noise cands/MP"] = ratio
            else:
                row[f"{name} cands/spot"], row[f"{name} recall"] = ratio, recall
        rows.append(row)
    table = pd.DataFrame(rows)
    spots = {name: sum(len(t) for _, t in images) for name, images in data.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nCandidates per true spot and recall (one to one within {RADIUS:g} px) by "
        f"threshold; {n_images} seeded {size}x{size} images per domain (true spots: "
        + ", ".join(f"{name} {count}" for name, count in spots.items() if count)
        + f"); default threshold {DetectSettings().threshold:g}; load {load:.1f}.\n"
    )
    formats = {c: "{:.3f}".format for c in table.columns if c.endswith("recall")}
    formats.update({c: "{:.1f}".format for c in table.columns if c.endswith("/spot")})
    formats.update({"threshold": "{:g}".format, "noise cands/MP": "{:,.0f}".format})
    print(table.to_string(index=False, formatters=formats))
    if len(table) > 1:
        base = table.iloc[0]
        print(f"\nChange from threshold {base['threshold']:g}:")
        for _, other in table.iloc[1:].iterrows():
            parts = []
            for name in ("cells", "plain spots", "difference"):
                given_up = base[f"{name} recall"] - other[f"{name} recall"]
                fewer = base[f"{name} cands/spot"] / other[f"{name} cands/spot"]
                parts.append(f"{name} recall -{given_up:.3f}, {fewer:.1f}x fewer candidates")
            fewer = base["noise cands/MP"] / max(other["noise cands/MP"], 1e-9)
            parts.append(f"noise {fewer:.1f}x fewer")
            print(f"  {other['threshold']:g}: " + "; ".join(parts))
