"""What the store hands out (image and model records), and the values it writes.

Small helpers shared by the tables: timestamps, JSON of numpy values, the content hash
of an image file and the login name label events are recorded under.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "AlreadyImportedWarning",
    "ImageRecord",
    "LabelConflictWarning",
    "ModelRecord",
    "content_hash",
    "default_who",
    "plain",
]


def now() -> str:
    """The current UTC time, as ISO 8601 text with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def default_who() -> str:
    """The name label events are recorded under when no ``who`` is given: the login name."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"


def to_json(value: Any) -> str:
    """``value`` as JSON text with sorted keys (numpy values and paths as plain ones)."""
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def content_hash(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of a file's bytes (of every file, by relative path, for a folder).

    Parameters
    ----------
    path : str or path-like
        An image file, or a directory such as a Zarr store.

    Returns
    -------
    str
        The hex digest.
    """
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file is not path:
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ImageRecord:
    """An image of a project, as recorded when it was added."""

    id: int
    path: Path
    name: str
    sha256: str
    shape: tuple[int, int]
    size_bytes: int
    added_at: str


@dataclass(frozen=True)
class ModelRecord:
    """A trained model version of a project.

    ``path`` is the model file's stem: ``path.safetensors`` + ``path.json``. ``sifter``
    is the fitted model itself where the record comes from training it (it is not
    stored; a record read from the database has None).
    """

    id: int
    created_at: str
    kind: str
    phase: str
    phase_reason: str
    label_set_hash: str
    n_labels: int
    n_positive: int
    metrics: dict[str, Any]
    threshold: float
    settings: dict[str, Any]
    path: Path
    extra: dict[str, Any] = field(default_factory=dict)
    sifter: Any = field(default=None, compare=False, repr=False)


class LabelConflictWarning(UserWarning):
    """An import gave positions that were already labelled another label (it was applied)."""


class AlreadyImportedWarning(UserWarning):
    """A label file with the same content was imported before; nothing was applied again."""


def image_record(row: dict[str, Any]) -> ImageRecord:
    """The record of an ``images`` row."""
    return ImageRecord(
        id=row["id"],
        path=Path(row["path"]),
        name=row["name"],
        sha256=row["sha256"],
        shape=(row["height"], row["width"]),
        size_bytes=row["size_bytes"],
        added_at=row["added_at"],
    )


def plain(value: Any) -> Any:
    """Make numpy scalars and containers JSON-friendly."""
    return json.loads(to_json(value)) if not callable(value) else None


def nan_none(value: Any) -> float | None:
    """A float, or None (SQL NULL) for NaN."""
    value = float(value)
    return None if np.isnan(value) else value


def isna(value: Any) -> bool:
    """True for None and NaN."""
    return value is None or (isinstance(value, float) and np.isnan(value))
