"""The napari reader: a blobsift project folder, or a table of candidates or predictions.

- A **project folder** (``project.db`` inside) opens as its images, each with a Points
  layer of its current candidates coloured by label (signal, noise, unsure, unlabelled)
  and carrying the latest predictions' ``probability`` and ``decision``.
- A **table** (CSV, TSV or Parquet; the Parquet folder of ``predict --output x.parquet``
  too) with ``row`` and ``col`` columns (``blobsift predict`` output, a candidate list, a
  label export) opens as one Points layer per image, coloured by decision when it has one,
  else by label; each image named by its ``image`` column is opened beside its points when
  its file is found (as given, next to the table, or in the project the table belongs to).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blobsift.io import TABLE_SUFFIXES, table_columns
from blobsift.napari._layers import image_layer, points_layer, project_points
from blobsift.store import DB_NAME

__all__ = ["napari_get_reader", "read_project", "read_table"]

LayerData = tuple[Any, dict[str, Any], str]


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """Return the reader of ``path`` if it is a blobsift project or table, else None.

    Parameters
    ----------
    path : str or list of str
        What napari was asked to open; lists of more than one path are left to others.

    Returns
    -------
    callable or None
        ``reader(path) -> list of layer data tuples``.
    """
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    target = Path(os.fspath(path))
    if target.is_dir() and (target / DB_NAME).is_file():
        return _single(read_project)
    if target.suffix.lower() in TABLE_SUFFIXES and target.exists():
        try:
            columns = table_columns(target)
        except (OSError, ValueError, ImportError):
            return None
        if {"row", "col"} <= columns:
            return _single(read_table)
    return None


def _single(read: Callable[[Path], list[LayerData]]) -> Callable[[Any], list[LayerData]]:
    def reader(path: Any) -> list[LayerData]:
        return read(Path(path[0] if isinstance(path, list) else path))

    return reader


def read_project(root: Path) -> list[LayerData]:
    """Layers of a project: every image (only the first visible) and its candidates.

    Raises
    ------
    ImageChangedError
        If an image file moved or changed since it was added (relocate or restore it).
    """
    from blobsift.project import Project

    layers: list[LayerData] = []
    with Project(root) as project:
        for k, record in enumerate(project.images()):
            metadata = {
                "blobsift_image": record.name,
                "blobsift_image_path": str(record.path),
                "blobsift_project": str(project.root),
            }
            pixels = project.read_image(record)
            layers.append(image_layer(pixels, name=record.name, metadata=metadata, visible=k == 0))
            data, kwargs, kind = project_points(project, record)
            layers.append((data, {**kwargs, "visible": k == 0}, kind))
    return layers


def _owning_project(path: Path) -> Path | None:
    """The project folder a table lies in (``PROJECT/predictions/x.csv`` or beside it)."""
    for folder in (path.parent, path.parent.parent):
        if (folder / DB_NAME).is_file():
            return folder
    return None


def _image_file(name: str, table_path: Path, project: Any) -> Path | None:
    """Find the file of an image named in a table, or None."""
    given = Path(name)
    for candidate in (given, table_path.parent / given):
        if candidate.is_file():
            return candidate
    if project is not None:
        from blobsift.exceptions import InvalidInputError

        try:
            return project.image(name).path
        except InvalidInputError:
            return None
    return None


def read_table(path: Path) -> list[LayerData]:
    """Layers of a candidate, label or prediction table: points (and images) per image.

    Raises
    ------
    InvalidInputError
        If the table's row/col hold anything but finite numbers.
    """
    from blobsift.io import read_image, read_table
    from blobsift.project import Project
    from blobsift.types import Candidates, Label

    frame = read_table(path)
    Candidates.from_pandas(frame)  # the same checks as import-candidates, same messages
    colour_by = "decision" if "decision" in frame.columns else "label"
    if "label" in frame.columns:  # 1/0/-1 or the words; anything else shows unlabelled
        labels = [Label.parse(value) for value in frame["label"]]
        frame["label"] = [int(Label.UNLABELLED if x is None else x) for x in labels]
    if "image" not in frame.columns:
        frame = frame.assign(image="")
    root = _owning_project(path)
    project = Project(root) if root is not None else None
    layers: list[LayerData] = []
    try:
        for k, (name, part) in enumerate(frame.groupby("image", sort=False)):
            file = _image_file(name, path, project) if name else None
            metadata = {"blobsift_image": Path(name).name}
            if project is not None:
                metadata["blobsift_project"] = str(project.root)
            if file is not None:
                meta = {**metadata, "blobsift_image_path": str(file)}
                layers.append(
                    image_layer(read_image(file), name=file.name, metadata=meta, visible=k == 0)
                )
            title = f"{path.stem} [{Path(name).name}]" if name else path.stem
            data, kwargs, kind = points_layer(
                part,
                name=title,
                colour_by=colour_by,
                metadata={**metadata, "blobsift_layer": "table"},
            )
            layers.append((data, {**kwargs, "visible": k == 0}, kind))
    finally:
        if project is not None:
            project.close()
    return layers
