"""Small simulated projects for the store, CLI and reliability tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace

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


@contextlib.contextmanager
def new_project(folder: Path, images: Sequence[Path]) -> Iterator[object]:
    """A new project in ``folder`` holding ``images`` (closed afterwards)."""
    from blobsift.project import Project

    with Project.create(folder) as project:
        project.add_images(images)
        yield project


def trained_by_cli(
    root: Path,
    *,
    name: str,
    n_new: int,
    new_seed: int,
    import_options: Sequence[str],
    train_options: Sequence[str],
) -> SimpleNamespace:
    """init -> detect -> import-labels -> train through the command line, once.

    Three images (seed 0) under ``root/data`` and ``n_new`` others under ``root/new``;
    the labels (from the truth) are written to ``root/labels.csv``. Returns ``root``,
    ``project`` (``root/name``), ``table`` (the labels) and ``new`` (the other images).
    """
    from blobsift.cli import main
    from blobsift.project import Project

    write_images(root / "data", 3, seed=0)
    new = write_images(root / "new", n_new, seed=new_seed, prefix="new")
    project = root / name
    assert main(["init", str(project), "--images", str(root / "data" / "*.tif"), "--quiet"]) == 0
    assert main(["detect", str(project), "--threshold", "4.5", "--quiet"]) == 0
    with Project(project) as opened:
        table = label_candidates(opened.candidates(), objects_of(3, seed=0))
    table.to_csv(root / "labels.csv", index=False)
    assert main(["import-labels", str(project), str(root / "labels.csv"), *import_options]) == 0
    assert main(["train", str(project), *train_options]) == 0
    return SimpleNamespace(root=root, project=project, table=table, new=new)
