"""Opening and making a project folder, and the checks every part of Project shares."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import numpy as np

from blobsift.exceptions import InvalidInputError, ProjectError
from blobsift.store import DB_NAME, Store, connect

__all__ = ["ProjectBase", "as_path", "real_number", "reference_list"]


class ProjectBase:
    """The folder, its :class:`~blobsift.store.Store` and the match radius."""

    def __init__(self, root: str | os.PathLike[str], *, match_radius: float = 2.0) -> None:
        self.root = as_path(root, name="root")
        self.match_radius = real_number(match_radius, name="match_radius")
        if not (np.isfinite(self.match_radius) and self.match_radius >= 0):
            raise InvalidInputError(
                f"match_radius must be a finite distance >= 0 in pixels; got {match_radius!r}."
            )
        db = self.root / DB_NAME
        if not db.is_file():
            raise ProjectError(
                f"{str(self.root)!r} is not a blobsift project (no {DB_NAME}); create one "
                "with `blobsift init FOLDER` or Project.create(folder)."
            )
        self._store = Store(db, root=self.root)
        #: image id -> (stat signature, when its hash was checked): see ``_checked``.
        self._hash_checked: dict[int, tuple[tuple[int, ...], int]] = {}

    @classmethod
    def create(
        cls, root: str | os.PathLike[str], *, exist_ok: bool = False, match_radius: float = 2.0
    ) -> Self:
        """Make a new project folder (``project.db``, ``models/``, ``reports/``).

        Parameters
        ----------
        root : str or path-like
            The folder; created if missing. It may exist but must not hold a project
            unless ``exist_ok``.
        exist_ok : bool
            Open an existing project instead of refusing.
        match_radius : float
            See :class:`~blobsift.project.Project`.

        Returns
        -------
        Project
        """
        root = as_path(root, name="root")
        if (root / DB_NAME).exists() and not exist_ok:
            raise ProjectError(
                f"{str(root)!r} already holds a blobsift project; open it with "
                "Project(folder) (or pass exist_ok=True)."
            )
        if root.exists() and not root.is_dir():
            raise ProjectError(f"{str(root)!r} exists and is not a folder.")
        for sub in ("", "models", "reports"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        connect(root / DB_NAME).close()
        return cls(root, match_radius=match_radius)

    @property
    def store(self) -> Store:
        """The project's database (:class:`~blobsift.store.Store`)."""
        return self._store

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._store.conn

    @property
    def schema_version(self) -> int:
        """The schema version of the database."""
        return self._store.schema_version

    @property
    def db_path(self) -> Path:
        """The SQLite database file."""
        return self.root / DB_NAME

    @property
    def models_dir(self) -> Path:
        """The folder of model files."""
        return self.root / "models"

    @property
    def reports_dir(self) -> Path:
        """The folder of reports."""
        return self.root / "reports"

    def close(self) -> None:
        """Close the database connection."""
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"


def as_path(value: Any, *, name: str) -> Path:
    """``value`` as a resolved Path if it is a str or path-like; else raise."""
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidInputError(
            f"{name} must hold file paths (str or pathlib.Path); got {type(value).__name__} "
            f"{value!r}."
        )
    return Path(value).resolve()


def real_number(value: Any, *, name: str) -> float:
    """``value`` as a float if it is a real number (not a bool or a string); else raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise InvalidInputError(
            f"{name} must be a number; got {type(value).__name__} {value!r}"
            + ("; pass the number itself, not text." if isinstance(value, str) else ".")
        )
    if isinstance(value, np.complexfloating):
        raise InvalidInputError(f"{name} must be a real number; got {value!r}.")
    return float(value)


def reference_list(refs: Any, *, name: str) -> list[Any]:
    """A list of references (paths, names, ids); a lone str or path is refused, not split."""
    if isinstance(refs, (str, bytes, os.PathLike)) or not isinstance(refs, Iterable):
        raise InvalidInputError(
            f"{name} must be a list of image paths, names or ids; got {type(refs).__name__} "
            f"{refs!r}. Pass [{refs!r}] for one."
        )
    return list(refs)
