"""Small simulated projects for the store, CLI and reliability tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from blobsift.simulate import simulate_image, truth_labels, write_simulated_images

SHAPE = (96, 96)
_OPTIONS = {"shape": SHAPE, "n_spots": 14, "decoys_per_spot": 1.5}


def write_images(folder: Path, n: int, *, seed: int = 0, prefix: str = "img") -> list[Path]:
    """Write ``n`` small simulated TIFF images; returns their paths."""
    return list(write_simulated_images(folder, n, seed=seed, prefix=prefix, **_OPTIONS))


def objects_of(n: int, *, seed: int = 0, prefix: str = "img") -> dict[str, pd.DataFrame]:
    """The ground-truth objects of the images :func:`write_images` wrote, by file name."""
    return {f"{prefix}{k}.tif": simulate_image(seed=seed + k, **_OPTIONS).objects for k in range(n)}


def label_candidates(candidates: pd.DataFrame, objects: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Label each candidate from the truth: 1 near a spot, else 0 (image,row,col,label)."""
    table = candidates[["image", "row", "col"]].reset_index(drop=True)
    return table.assign(label=truth_labels(table, objects))
