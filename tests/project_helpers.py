"""Small simulated projects for the store, CLI and reliability tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from blobsift.simulate import simulate_image
from blobsift.store import match_positions

SHAPE = (96, 96)


def write_images(folder: Path, n: int, *, seed: int = 0, prefix: str = "img") -> list[Path]:
    """Write ``n`` small simulated TIFF images; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        simulated = simulate_image(SHAPE, n_spots=14, seed=seed + k, decoys_per_spot=1.5)
        path = folder / f"{prefix}{k}.tif"
        tifffile.imwrite(path, simulated.image)
        paths.append(path)
    return paths


def objects_of(n: int, *, seed: int = 0, prefix: str = "img") -> dict[str, pd.DataFrame]:
    """The ground-truth objects of the images :func:`write_images` wrote, by file name."""
    return {
        f"{prefix}{k}.tif": simulate_image(
            SHAPE, n_spots=14, seed=seed + k, decoys_per_spot=1.5
        ).objects
        for k in range(n)
    }


def label_candidates(candidates: pd.DataFrame, objects: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Label each candidate from the truth: 1 near a spot, else 0 (image,row,col,label)."""
    rows = []
    for name, part in candidates.groupby("image", sort=True):
        found = objects[name]
        ia, ib = match_positions(
            part[["row", "col"]].to_numpy(), found[["row", "col"]].to_numpy(), 2.0
        )
        label = np.zeros(len(part), dtype=np.int64)
        label[ia] = found["label"].to_numpy()[ib]
        rows.append(
            pd.DataFrame(
                {
                    "image": name,
                    "row": part["row"].to_numpy(),
                    "col": part["col"].to_numpy(),
                    "label": label,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)
