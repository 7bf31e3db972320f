"""``Project``: a project folder with its SQLite database, model files and reports.

A project folder holds ``project.db`` (SQLite in WAL mode, foreign keys on), ``models/``
(model files, :meth:`blobsift.Sifter.save` pairs), ``reports/`` and ``predictions/``.
The database records:

- **images**: path, content hash (SHA-256), shape. An image whose file moved or whose
  content changed is refused with :class:`~blobsift.exceptions.ImageChangedError`, never
  silently re-used;
- **detection runs** (settings as JSON) and their **candidates** (row, col, sigma, score).
  An image's current candidates are those of the latest run that covers it; each image is
  written in one transaction, so an interrupted detection leaves every image either with
  its new candidates or its old ones, and ``detect`` with the same settings resumes (a
  run left ``running`` is marked ``interrupted`` when the next one starts);
- **label events** (image, row, col, label, who, when), **append-only**: the database
  refuses UPDATE and DELETE on them. Each event is checked first (a position on its
  image, a label value, no two labels of one position in one call), and a label import
  records its file's content hash with its events, so that the same file is not applied
  twice. The current label of a position is its latest event;
  undo is a new event. A label belongs to a position in an image, not to a candidate, so it
  survives re-detection: it matches the nearest new candidate within ``match_radius``
  pixels. A new event within ``match_radius`` of a labelled position joins that position;
- **models** (kind, phase and the reason, label-set hash, metrics, threshold, file) with
  the held-out score of every label they were trained on, and **predictions**.

Every write is one transaction (``BEGIN IMMEDIATE``), so a crash loses at most the
transaction in progress and two processes writing at once wait for each other.
The database carries its schema version; :data:`MIGRATIONS` upgrade older databases when
they are opened.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import io
import json
import os
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from blobsift._atomic import atomic_write
from blobsift.exceptions import (
    ImageChangedError,
    ImageReadError,
    InvalidInputError,
    ModelFileError,
    ProjectError,
)
from blobsift.positions import PositionIndex, match_labels
from blobsift.types import Candidates, column_numbers, number_from_text

__all__ = [
    "DB_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AlreadyImportedWarning",
    "ImageRecord",
    "LabelConflictWarning",
    "ModelRecord",
    "Progress",
    "Project",
]

DB_NAME = "project.db"
#: Label values: 1 signal, 0 noise, -1 unsure; NULL (None) clears a position's label.
LABEL_VALUES = (-1, 0, 1)
#: Default detection settings (those of :func:`blobsift.detect.detect_blobs`).
DETECT_DEFAULTS: dict[str, Any] = {
    "sigma_min": 1.0,
    "sigma_max": 3.0,
    "threshold": 4.0,
    "min_distance": 1,
    "border": 0,
    "max_candidates": 100_000,
}

#: ``progress(stage, info)``: called by long operations; the CLI turns it into a bar.
Progress = Callable[[str, dict[str, Any]], None]

_SCHEMA_V1 = """
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE detection_runs (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL CHECK (source IN ('detect', 'import')),
    settings TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete')),
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE run_images (
    run_id INTEGER NOT NULL REFERENCES detection_runs(id),
    image_id INTEGER NOT NULL REFERENCES images(id),
    image_sha256 TEXT NOT NULL,
    n_candidates INTEGER NOT NULL,
    PRIMARY KEY (run_id, image_id)
);
CREATE INDEX run_images_by_image ON run_images(image_id, run_id);
CREATE TABLE candidates (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES detection_runs(id),
    image_id INTEGER NOT NULL REFERENCES images(id),
    row REAL NOT NULL,
    col REAL NOT NULL,
    sigma REAL,
    score REAL
);
CREATE INDEX candidates_by_run_image ON candidates(run_id, image_id);
CREATE TABLE label_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    row REAL NOT NULL,
    col REAL NOT NULL,
    label INTEGER CHECK (label IS NULL OR label IN (-1, 0, 1)),
    who TEXT NOT NULL,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    undoes INTEGER REFERENCES label_events(id)
);
CREATE INDEX label_events_by_position ON label_events(image_id, row, col, id);
CREATE TRIGGER label_events_no_update BEFORE UPDATE ON label_events
BEGIN SELECT RAISE(ABORT, 'label_events is append-only; add a new event instead'); END;
CREATE TRIGGER label_events_no_delete BEFORE DELETE ON label_events
BEGIN SELECT RAISE(ABORT, 'label_events is append-only; add a new event instead'); END;
CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    phase TEXT NOT NULL,
    phase_reason TEXT NOT NULL,
    label_set_hash TEXT NOT NULL,
    n_labels INTEGER NOT NULL,
    n_positive INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    threshold REAL NOT NULL,
    settings TEXT NOT NULL,
    path TEXT NOT NULL
);
CREATE TABLE model_heldout (
    model_id INTEGER NOT NULL REFERENCES models(id),
    image_id INTEGER NOT NULL REFERENCES images(id),
    row REAL NOT NULL,
    col REAL NOT NULL,
    label INTEGER NOT NULL CHECK (label IN (0, 1)),
    probability REAL NOT NULL
);
CREATE INDEX model_heldout_by_model ON model_heldout(model_id);
CREATE TABLE prediction_runs (
    id INTEGER PRIMARY KEY,
    model_id INTEGER REFERENCES models(id),
    model_path TEXT NOT NULL,
    created_at TEXT NOT NULL,
    settings TEXT NOT NULL,
    n_images INTEGER NOT NULL,
    n_candidates INTEGER NOT NULL,
    n_signal INTEGER NOT NULL
);
CREATE TABLE predictions (
    run_id INTEGER NOT NULL REFERENCES prediction_runs(id),
    image_id INTEGER REFERENCES images(id),
    image TEXT NOT NULL,
    row REAL NOT NULL,
    col REAL NOT NULL,
    sigma REAL,
    score REAL,
    probability REAL NOT NULL,
    decision INTEGER NOT NULL CHECK (decision IN (0, 1))
);
CREATE INDEX predictions_by_run ON predictions(run_id);
"""

#: The latest detection run of each image (the one its current candidates come from).
_CURRENT = "SELECT image_id, MAX(run_id) AS run_id FROM run_images GROUP BY image_id"

#: Schema 2 (store hardening): detection runs may be ``interrupted`` (SQLite cannot alter
#: a CHECK constraint, so the table is rebuilt with the same ids; migrations run with
#: foreign keys off and are checked before they commit), and every label import records
#: the content hash of its file and the range of its events, so a replay is recognised.
_SCHEMA_V2_RUN_STATUS_AND_LABEL_IMPORTS = """
CREATE TABLE detection_runs_v2 (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL CHECK (source IN ('detect', 'import')),
    settings TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'interrupted')),
    started_at TEXT NOT NULL,
    finished_at TEXT
);
INSERT INTO detection_runs_v2 (id, source, settings, settings_hash, status, started_at,
    finished_at)
SELECT id, source, settings, settings_hash, status, started_at, finished_at
FROM detection_runs ORDER BY id;
DROP TABLE detection_runs;
ALTER TABLE detection_runs_v2 RENAME TO detection_runs;
CREATE TABLE label_imports (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    file TEXT NOT NULL,
    who TEXT NOT NULL,
    created_at TEXT NOT NULL,
    n_events INTEGER NOT NULL,
    first_event INTEGER REFERENCES label_events(id),
    last_event INTEGER REFERENCES label_events(id)
);
CREATE INDEX label_imports_by_hash ON label_imports(sha256);
"""

_UNFINISHED_RUNS = "SELECT 1 FROM detection_runs WHERE status = 'running' LIMIT 1"
_MARK_INTERRUPTED = "UPDATE detection_runs SET status = 'interrupted' WHERE status = 'running'"

#: Schema 3: the client session of each label event (undo belongs to a session), NULL
#: for events from outside the labelling app.
_LABEL_SESSIONS = """
ALTER TABLE label_events ADD COLUMN session TEXT;
"""

#: version -> SQL script that brings a database from ``version - 1`` to ``version``.
MIGRATIONS: dict[int, str] = {
    1: _SCHEMA_V1,
    2: _SCHEMA_V2_RUN_STATUS_AND_LABEL_IMPORTS,
    3: _LABEL_SESSIONS,
}
SCHEMA_VERSION = max(MIGRATIONS)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def default_who() -> str:
    """The name label events are recorded under when no ``who`` is given: the login name."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"


def _json(value: Any) -> str:
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


def _readable_shape(path: Path) -> tuple[int, int]:
    """The (H, W) of an image file after reading all its pixels, in blocks of ~64 MB.

    Raises
    ------
    ImageReadError
        Naming the file, if it is not an image or its pixel data cannot be read.
    """
    from blobsift.io import open_image

    with open_image(path) as lazy:
        height, width = lazy.shape
        step = max(1, (1 << 24) // max(1, width))
        for start in range(0, height, step):
            lazy[start : start + step, :]
    return (height, width)


def _as_path(value: Any, *, name: str) -> Path:
    """``value`` as a resolved Path if it is a str or path-like; else raise."""
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidInputError(
            f"{name} must hold file paths (str or pathlib.Path); got {type(value).__name__} "
            f"{value!r}."
        )
    return Path(value).resolve()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


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

    ``path`` is the model file's stem: ``path.safetensors`` + ``path.json``.
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


class LabelConflictWarning(UserWarning):
    """An import gave positions that were already labelled another label (it was applied)."""


class AlreadyImportedWarning(UserWarning):
    """A label file with the same content was imported before; nothing was applied again."""


@dataclass(frozen=True)
class _LabelBatch:
    """Checked label events: image ids, positions, values, and how to name each in errors."""

    image_ids: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: list[int | None]
    describe: Callable[[int], str]


@dataclass(frozen=True)
class _WrittenLabels:
    """What :meth:`Project._append_labels` did."""

    event_ids: list[int]
    relabelled: int
    already_imported: dict[str, Any] | None


class Project:
    """A blobsift project folder: images, candidates, label events, models, predictions.

    Open an existing project with ``Project(folder)``; make a new one with
    :meth:`Project.create`. The object holds one SQLite connection; use it as a context
    manager or call :meth:`close`.

    Parameters
    ----------
    root : str or path-like
        The project folder (holding ``project.db``).
    match_radius : float
        Distance in pixels within which a label event joins an already labelled position,
        and within which a label matches a candidate.

    Raises
    ------
    ProjectError
        If the folder holds no project or was written by a newer blobsift.

    Examples
    --------
    >>> project = Project.create("run1")                     # doctest: +SKIP
    >>> project.add_images(["a.tif", "b.tif"])               # doctest: +SKIP
    >>> project.detect(threshold=5)                          # doctest: +SKIP
    >>> project.import_labels("labels.csv")                  # doctest: +SKIP
    >>> record = project.train()                             # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str], *, match_radius: float = 2.0) -> None:
        self.root = _as_path(root, name="root")
        self.match_radius = _real_number(match_radius, name="match_radius")
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
        self._conn = self._connect(db)
        self._migrate()

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def create(
        cls, root: str | os.PathLike[str], *, exist_ok: bool = False, match_radius: float = 2.0
    ) -> Project:
        """Make a new project folder (``project.db``, ``models/``, ``reports/``).

        Parameters
        ----------
        root : str or path-like
            The folder; created if missing. It may exist but must not hold a project
            unless ``exist_ok``.
        exist_ok : bool
            Open an existing project instead of refusing.
        match_radius : float
            See :class:`Project`.

        Returns
        -------
        Project
        """
        root = _as_path(root, name="root")
        if (root / DB_NAME).exists() and not exist_ok:
            raise ProjectError(
                f"{str(root)!r} already holds a blobsift project; open it with "
                "Project(folder) (or pass exist_ok=True)."
            )
        if root.exists() and not root.is_dir():
            raise ProjectError(f"{str(root)!r} exists and is not a folder.")
        for sub in ("", "models", "reports"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        conn = cls._connect(root / DB_NAME)
        conn.close()
        return cls(root, match_radius=match_radius)

    @staticmethod
    def _connect(db: Path) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(db, timeout=60.0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        except sqlite3.DatabaseError as error:
            raise ProjectError(f"cannot open the project database {str(db)!r}: {error}") from None
        return conn

    def _stored_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        version = row[0] or 0
        if version > SCHEMA_VERSION:
            raise ProjectError(
                f"{str(self.root)!r} was written by a newer blobsift (schema version "
                f"{version}; this one reads up to {SCHEMA_VERSION}). Upgrade blobsift."
            )
        return int(version)

    def _migrate(self) -> None:
        """Apply the missing :data:`MIGRATIONS` in one transaction.

        Foreign keys are off while it runs (SQLite's way to rebuild a table that others
        refer to) and checked before the commit: a migration that would leave a dangling
        reference rolls back whole.
        """
        if self._stored_version() == SCHEMA_VERSION:
            return
        conn = self._conn
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            with self._write():
                version = self._stored_version()  # another process may have migrated
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _statements(MIGRATIONS[target]):
                        conn.execute(statement)
                    conn.execute("DELETE FROM schema_version")
                    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (target,))
                dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
                if dangling:
                    raise ProjectError(
                        f"upgrading {str(self.root)!r} to schema {SCHEMA_VERSION} would leave "
                        f"{len(dangling)} dangling reference(s) (first: {dangling[0]}); nothing "
                        "was changed. Report this with a copy of project.db."
                    )
        finally:
            conn.execute("PRAGMA foreign_keys = ON")

    @property
    def schema_version(self) -> int:
        """The schema version of the database."""
        return int(self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

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
        self._conn.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self._conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- images -------------------------------------------------------------------------
    def add_images(
        self, paths: Iterable[str | os.PathLike[str]], *, progress: Progress | None = None
    ) -> list[ImageRecord]:
        """Add image files (hash and shape recorded); all or none are added.

        Images already in the project are skipped if their content is unchanged. Every new
        image's pixel data is read once (block by block) to check that the file is whole,
        so a truncated or corrupt file is refused here rather than when it is detected.

        Parameters
        ----------
        paths : iterable of path-like
            Image files (any format :func:`blobsift.read_image` reads).
        progress : callable, optional
            ``progress("add-images", {"done", "total", "image"})`` after each file.

        Returns
        -------
        list of ImageRecord
            The records of the given images, in order (new and already present).

        Raises
        ------
        ImageReadError
            If a file is missing, not a readable 2D image, or its pixel data cannot be read
            (truncated or corrupt); nothing is added.
        ImageChangedError
            If a path is already in the project with other content.
        InvalidInputError
            If ``paths`` is empty or a single path instead of a list.
        """
        paths = [_as_path(p, name="paths") for p in _reference_list(paths, name="paths")]
        if not paths:
            raise InvalidInputError("add_images needs at least one image path; got none.")
        known = {record.path: record for record in self.images()}
        prepared = []
        for done, path in enumerate(paths, start=1):
            if not path.exists():
                raise ImageReadError(f"cannot read image {str(path)!r}: the file does not exist.")
            digest = content_hash(path)
            record = known.get(path)
            if record is not None and record.sha256 != digest:
                raise ImageChangedError(
                    f"image {str(path)!r} is already in the project with other content (its "
                    "file changed since it was added); its labels describe the old pixels. "
                    "Restore the original file, or save the new one under another name."
                )
            shape = record.shape if record is not None else _readable_shape(path)
            prepared.append((path, digest, shape, _size(path)))
            if progress is not None:
                progress("add-images", {"done": done, "total": len(paths), "image": str(path)})
        with self._write() as conn:
            for path, digest, shape, size in prepared:
                conn.execute(
                    "INSERT OR IGNORE INTO images (path, name, sha256, height, width, size_bytes,"
                    " added_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (str(path), path.name, digest, shape[0], shape[1], size, _now()),
                )
        records = {record.path: record for record in self.images()}
        return [records[path] for path, *_ in prepared]

    def images(self) -> list[ImageRecord]:
        """Return every image of the project, in the order they were added."""
        return [_image_record(row) for row in self._query("SELECT * FROM images ORDER BY id")]

    def image(self, ref: int | str | os.PathLike[str] | ImageRecord) -> ImageRecord:
        """Find an image by id, by path (absolute, or relative to the current folder) or name.

        Raises
        ------
        InvalidInputError
            If no image (or more than one, for a file name) matches.
        """
        if isinstance(ref, ImageRecord):
            return ref
        return self._resolver()(ref)

    def _resolver(self) -> Callable[[Any], ImageRecord]:
        """A function mapping image references (id, path, name) to records, with a cache."""
        records = self.images()
        by_id = {r.id: r for r in records}
        by_path = {str(r.path): r for r in records}
        by_name: dict[str, list[ImageRecord]] = {}
        for r in records:
            by_name.setdefault(r.name, []).append(r)
        cache: dict[Any, ImageRecord] = {}

        def resolve(ref: Any) -> ImageRecord:
            if ref in cache:
                return cache[ref]
            found: ImageRecord | None = None
            if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
                found = by_id.get(int(ref))
            else:
                text = os.fspath(ref) if isinstance(ref, os.PathLike) else str(ref)
                found = by_path.get(text) or by_path.get(str(Path(text).resolve()))
                if found is None:
                    named = by_name.get(text, [])
                    if len(named) > 1:
                        raise InvalidInputError(
                            f"image name {text!r} is ambiguous: {len(named)} project images "
                            f"have it ({[str(r.path) for r in named[:3]]}); use the path."
                        )
                    found = named[0] if named else None
            if found is None:
                raise InvalidInputError(
                    f"image {ref!r} is not in the project (it has {len(records)} images, e.g. "
                    f"{[r.name for r in records[:3]]}); add it with `blobsift add-images` or "
                    "name it by its file name or path as added."
                )
            cache[ref] = found
            return found

        return resolve

    def verify_image(self, ref: Any) -> ImageRecord:
        """Check that an image's file is where it was and holds the same bytes.

        Raises
        ------
        ImageChangedError
            If the file is missing (moved or deleted) or its content hash changed.
        """
        record = self.image(ref)
        if not record.path.exists():
            raise ImageChangedError(
                f"image {record.name!r} (id {record.id}) is missing from {str(record.path)!r}; "
                "it moved or was deleted. If it moved, run `blobsift relocate PROJECT "
                f"{record.name} NEW_PATH`."
            )
        digest = content_hash(record.path)
        if digest != record.sha256:
            raise ImageChangedError(
                f"image {record.name!r} (id {record.id}) at {str(record.path)!r} changed since "
                f"it was added (content hash {digest[:12]}... is not {record.sha256[:12]}...); "
                "its candidates and labels describe the old pixels. Restore the original file."
            )
        return record

    def read_image(self, ref: Any) -> np.ndarray:
        """Read a project image as 2D float32 after checking its content hash."""
        from blobsift.io import read_image

        record = self.verify_image(ref)
        return read_image(record.path)

    def check_images(self) -> list[dict[str, Any]]:
        """Return the images whose file is missing or changed (``image``, ``problem``)."""
        problems = []
        for record in self.images():
            try:
                self.verify_image(record)
            except ImageChangedError as error:
                problem = "missing" if not record.path.exists() else "changed"
                problems.append(
                    {
                        "image": record.name,
                        "id": record.id,
                        "problem": problem,
                        "message": str(error),
                    }
                )
        return problems

    def relocate_image(self, ref: Any, new_path: str | os.PathLike[str]) -> ImageRecord:
        """Point an image at its new file, which must hold exactly the same bytes.

        Raises
        ------
        ImageChangedError
            If the new file's content hash differs from the recorded one.
        """
        record = self.image(ref)
        path = Path(new_path).resolve()
        if not path.exists():
            raise ImageReadError(f"cannot relocate to {str(path)!r}: the file does not exist.")
        if content_hash(path) != record.sha256:
            raise ImageChangedError(
                f"{str(path)!r} does not hold the same bytes as image {record.name!r} "
                f"(id {record.id}); refusing to relocate it there."
            )
        with self._write() as conn:
            conn.execute(
                "UPDATE images SET path = ?, name = ? WHERE id = ?",
                (str(path), path.name, record.id),
            )
        return self.image(record.id)

    # -- candidates ---------------------------------------------------------------------
    def detect(
        self,
        images: Iterable[Any] | None = None,
        *,
        force: bool = False,
        progress: Progress | None = None,
        n_threads: int | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        """Detect candidates in project images, one transaction per image.

        Images whose current candidates come from a detection with the same settings are
        skipped (so an interrupted run resumes) unless ``force``. Every setting is checked
        before anything is recorded. Each call marks earlier runs still ``running`` (killed
        or interrupted, they never finished) as ``interrupted``; their finished images keep
        their candidates. (A run that another process is still working on is marked too,
        and marks itself ``complete`` when it finishes.)

        Parameters
        ----------
        images : iterable, optional
            Image ids, paths or names; default every image.
        force : bool
            Detect again even where the same settings already ran.
        progress : callable, optional
            ``progress("detect", {"done", "total", "image", "candidates"})`` per image.
        n_threads : int, optional
            Threads for :func:`blobsift.detect_blobs`.
        **settings
            :func:`blobsift.detect_blobs` parameters (``sigma_min``, ``sigma_max``,
            ``threshold``, ``min_distance``, ``border``, ``max_candidates``).

        Returns
        -------
        dict
            ``run_id`` (None if nothing ran), ``images`` (detected), ``skipped`` and
            ``candidates`` (found in this run).

        Raises
        ------
        InvalidInputError
            If a setting is unknown, of the wrong type or out of range, or ``images`` is a
            single name instead of a list.
        """
        from blobsift.detect import detect_blobs

        settings = _checked_detect_settings(settings, n_threads)
        settings_hash = hashlib.sha256(_json(settings).encode()).hexdigest()
        if images is None:
            records = self.images()
        else:
            records = [self.image(i) for i in _reference_list(images, name="images")]
        current = self._current_runs()
        todo = []
        for record in records:
            run = current.get(record.id)
            same = run is not None and run["settings_hash"] == settings_hash
            if force or not same or run["image_sha256"] != record.sha256:
                todo.append(record)
        summary: dict[str, Any] = {
            "run_id": None,
            "images": 0,
            "skipped": len(records) - len(todo),
            "candidates": 0,
        }
        if not todo:
            if self._conn.execute(_UNFINISHED_RUNS).fetchone() is not None:
                with self._write() as conn:
                    conn.execute(_MARK_INTERRUPTED)
            return summary
        for record in todo:  # fail before starting if a file moved or changed
            self.verify_image(record)
        with self._write() as conn:
            conn.execute(_MARK_INTERRUPTED)
            run_id = conn.execute(
                "INSERT INTO detection_runs (source, settings, settings_hash, status, started_at)"
                " VALUES ('detect', ?, ?, 'running', ?)",
                (_json(settings), settings_hash, _now()),
            ).lastrowid
        summary["run_id"] = run_id
        for done, record in enumerate(todo, start=1):
            pixels = self.read_image(record)
            found = detect_blobs(pixels, n_threads=n_threads, **settings)
            self._store_candidates(run_id, record, found)
            summary["images"] += 1
            summary["candidates"] += len(found)
            if progress is not None:
                progress(
                    "detect",
                    {
                        "done": done,
                        "total": len(todo),
                        "image": record.name,
                        "candidates": len(found),
                    },
                )
        with self._write() as conn:
            conn.execute(
                "UPDATE detection_runs SET status = 'complete', finished_at = ? WHERE id = ?",
                (_now(), run_id),
            )
        return summary

    def _store_candidates(self, run_id: int, record: ImageRecord, found: Candidates) -> None:
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO candidates (run_id, image_id, row, col, sigma, score) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (run_id, record.id, float(r), float(c), _nan_none(s), _nan_none(q))
                    for r, c, s, q in zip(
                        found.row, found.col, found.sigma, found.score, strict=True
                    )
                ),
            )
            conn.execute(
                "INSERT INTO run_images (run_id, image_id, image_sha256, n_candidates) "
                "VALUES (?, ?, ?, ?)",
                (run_id, record.id, record.sha256, len(found)),
            )

    def import_candidates(
        self,
        candidates: Candidates,
        *,
        source: str = "",
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Import candidates found by another detector (all in one transaction).

        Every row is checked first: an unknown image, or a position outside its image
        (see :meth:`add_labels` for the rule), refuses the whole table, naming the rows.
        Positions within half a crop (32 px) of the edge are kept; their crops are
        completed by mirror reflection.

        Parameters
        ----------
        candidates : Candidates
            With an ``image`` column naming project images (id, path or file name).
        source : str
            Where they came from (recorded with the run's settings).
        progress : callable, optional
            ``progress("import-candidates", {"done", "total"})``.

        Returns
        -------
        dict
            ``run_id``, ``images`` and ``candidates``.

        Raises
        ------
        InvalidInputError
            If an image is unknown or a position lies outside its image; nothing is written.
        """
        if not isinstance(candidates, Candidates):
            raise InvalidInputError(
                f"candidates must be a Candidates table; got {type(candidates).__name__}."
            )
        if candidates.image is None:
            raise InvalidInputError(
                "imported candidates need an 'image' column naming the image of each row "
                "(or give the image, e.g. `import-candidates --image NAME`)."
            )
        resolve = self._resolver()
        ids = []
        for k, name in enumerate(candidates.image):
            try:
                ids.append(resolve(name).id)
            except InvalidInputError as error:
                raise InvalidInputError(f"{_candidate_row(k)}: {error}") from None
        ids = np.asarray(ids, dtype=np.int64)
        self._check_inside(ids, candidates.row, candidates.col, _candidate_row)
        records = {r.id: r for r in self.images()}
        settings = {"source": str(source), "detector": "external"}
        with self._write() as conn:
            run_id = conn.execute(
                "INSERT INTO detection_runs (source, settings, settings_hash, status, started_at,"
                " finished_at) VALUES ('import', ?, ?, 'complete', ?, ?)",
                (
                    _json(settings),
                    hashlib.sha256(_json(settings).encode()).hexdigest(),
                    _now(),
                    _now(),
                ),
            ).lastrowid
            unique = np.unique(ids)
            for done, image_id in enumerate(unique, start=1):
                part = candidates[ids == image_id]
                conn.executemany(
                    "INSERT INTO candidates (run_id, image_id, row, col, sigma, score) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        (run_id, int(image_id), float(r), float(c), _nan_none(s), _nan_none(q))
                        for r, c, s, q in zip(
                            part.row, part.col, part.sigma, part.score, strict=True
                        )
                    ),
                )
                conn.execute(
                    "INSERT INTO run_images (run_id, image_id, image_sha256, n_candidates) "
                    "VALUES (?, ?, ?, ?)",
                    (run_id, int(image_id), records[int(image_id)].sha256, len(part)),
                )
                if progress is not None:
                    progress("import-candidates", {"done": done, "total": len(unique)})
        return {"run_id": run_id, "images": len(np.unique(ids)), "candidates": len(candidates)}

    def _current_runs(self) -> dict[int, dict[str, Any]]:
        """Image id -> the latest run covering it (id, settings, hash of the image then)."""
        rows = self._query(
            "SELECT ri.image_id, ri.run_id, ri.image_sha256, d.settings, d.settings_hash, "
            "d.source FROM run_images ri JOIN detection_runs d ON d.id = ri.run_id "
            f"JOIN ({_CURRENT}) cur ON cur.image_id = ri.image_id AND cur.run_id = ri.run_id"
        )
        return {row["image_id"]: row for row in rows}

    def detection_runs(self) -> list[dict[str, Any]]:
        """Return every detection run (id, source, settings, status, times, counts)."""
        rows = self._query(
            "SELECT d.*, COUNT(ri.image_id) AS n_images, COALESCE(SUM(ri.n_candidates), 0) "
            "AS n_candidates FROM detection_runs d LEFT JOIN run_images ri ON ri.run_id = d.id "
            "GROUP BY d.id ORDER BY d.id"
        )
        for row in rows:
            row["settings"] = json.loads(row["settings"])
        return rows

    def candidates(self, image: Any = None, *, with_labels: bool = False) -> Any:
        """Return the current candidates as a DataFrame, optionally with matched labels.

        Parameters
        ----------
        image : optional
            One image (id, path or name); default every image.
        with_labels : bool
            Add a ``label`` column: the current label matched to each candidate within
            ``match_radius`` (nearest first, one to one), or -2 where none matches.

        Returns
        -------
        pandas.DataFrame
            Columns ``image_id``, ``image`` (name), ``row``, ``col``, ``sigma``, ``score``
            [, ``label``], ordered by image, then as found (by descending score for
            ``detect``, in file order for imported candidates).
        """
        import pandas as pd

        where, params = "", []
        if image is not None:
            where, params = " AND c.image_id = ?", [self.image(image).id]
        rows = self._query(
            "SELECT c.image_id, i.name AS image, c.row, c.col, c.sigma, c.score FROM candidates c"
            f" JOIN ({_CURRENT}) cur ON cur.image_id = c.image_id AND cur.run_id = c.run_id"
            f" JOIN images i ON i.id = c.image_id WHERE 1{where} ORDER BY c.image_id, c.id",
            params,
        )
        frame = pd.DataFrame(rows, columns=["image_id", "image", "row", "col", "sigma", "score"])
        frame = frame.astype({"row": float, "col": float, "sigma": float, "score": float})
        if with_labels:
            frame["label"] = match_labels(frame, self.labels(image), self.match_radius)
        return frame

    # -- labels -------------------------------------------------------------------------
    def add_labels(
        self,
        images: Sequence[Any],
        rows: Sequence[float],
        cols: Sequence[float],
        labels: Sequence[int | None],
        *,
        who: str | None = None,
        source: str = "api",
        session: str | None = None,
        progress: Progress | None = None,
    ) -> list[int]:
        """Append label events, all in one transaction (all or none).

        An event within ``match_radius`` of an already labelled position of the same image
        joins that position and becomes its current label: labelling a position again
        relabels it (the earlier events are kept). Within one call, events that fall on one
        position with different labels are a conflict and are refused; the same label
        twice is accepted.

        Parameters
        ----------
        images : sequence
            The image of each event (id, path or name).
        rows, cols : sequence of float
            Positions, in pixels with the centre of pixel ``[i, j]`` at ``(i, j)``. A
            position must lie on its image, give or take ``match_radius`` (so that the
            sub-pixel fit of a blob on the edge is kept): ``-r <= row <= height - 1 + r``
            and ``-r <= col <= width - 1 + r`` with ``r = match_radius``. Positions within
            half a crop (32 px) of the edge are accepted; their crops are completed by
            mirror reflection, as :func:`blobsift.extract_crops` does for candidates there.
        labels : sequence of int or None
            1 signal, 0 noise, -1 unsure (or the words ``signal``, ``noise``,
            ``unsure``), None to clear the position's label. Booleans are refused.
        who : str, optional
            Who labelled; default the login name.
        source : str
            Where the events came from (``"api"``, ``"import:labels.csv"``, ...).
        session : str, optional
            The client session that labelled (one per browser tab of the labelling app);
            :meth:`undo` with a session undoes only that session's events.
        progress : callable, optional
            ``progress("label", {"done", "total"})`` after each block of 1,000 events.

        Returns
        -------
        list of int
            The new event ids.

        Raises
        ------
        InvalidInputError
            If the lengths differ, an image is unknown, a position is not a finite number
            or lies outside its image, a label is not one of the values above, or two
            events of the call conflict. Nothing is written then.
        """
        n = len(images)
        if not (len(rows) == len(cols) == len(labels) == n):
            raise InvalidInputError(
                f"images, rows, cols and labels must have the same length; got {n}, "
                f"{len(rows)}, {len(cols)} and {len(labels)}."
            )
        batch = self._label_batch(
            images, rows, cols, labels, describe=lambda k: f"label {k} (0-based)"
        )
        written = self._append_labels(
            batch,
            who=_who(who),
            source=_text(source, name="source"),
            session=session,
            progress=progress,
        )
        return written.event_ids

    def label(
        self,
        image: Any,
        row: float,
        col: float,
        label: int | None,
        *,
        who: str | None = None,
        source: str = "api",
        session: str | None = None,
    ) -> int:
        """Append one label event; returns its id (see :meth:`add_labels`)."""
        return self.add_labels(
            [image], [row], [col], [label], who=who, source=source, session=session
        )[0]

    def _label_batch(
        self,
        images: Sequence[Any],
        rows: Any,
        cols: Any,
        labels: Sequence[Any],
        *,
        describe: Callable[[int], str],
    ) -> _LabelBatch:
        """Resolve and check label events; ``describe(k)`` names event ``k`` in errors."""
        resolve = self._resolver()
        ids = []
        for k, image in enumerate(images):
            try:
                ids.append(resolve(image).id)
            except InvalidInputError as error:
                raise InvalidInputError(f"{describe(k)}: {error}") from None
        rows_f = _coordinates(rows, name="rows", describe=describe)
        cols_f = _coordinates(cols, name="cols", describe=describe)
        values = []
        for k, value in enumerate(labels):
            number = _label_value(value)
            if number is None and value is not None:
                raise InvalidInputError(
                    f"{describe(k)}: label must be 1 (signal), 0 (noise), -1 (unsure) or "
                    f"None (clear), or the word signal/noise/unsure; got {value!r}."
                )
            values.append(number)
        batch = _LabelBatch(np.asarray(ids, dtype=np.int64), rows_f, cols_f, values, describe)
        self._check_inside(batch.image_ids, rows_f, cols_f, describe)
        return batch

    def _check_inside(
        self,
        image_ids: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        describe: Callable[[int], str],
    ) -> None:
        """Refuse positions off their image by more than ``match_radius`` (all reported)."""
        records = {r.id: r for r in self.images()}
        heights = np.array([records[int(i)].shape[0] for i in image_ids], dtype=np.float64)
        widths = np.array([records[int(i)].shape[1] for i in image_ids], dtype=np.float64)
        r = self.match_radius
        inside = (rows >= -r) & (rows <= heights - 1 + r) & (cols >= -r) & (cols <= widths - 1 + r)
        outside = np.flatnonzero(~inside)
        if outside.size:
            shown = "; ".join(
                f"{describe(int(k))}: (row {rows[k]:g}, col {cols[k]:g}) in "
                f"{records[int(image_ids[k])].name!r} of {int(heights[k])} rows x "
                f"{int(widths[k])} columns"
                for k in outside[:3]
            )
            raise InvalidInputError(
                f"{outside.size} position(s) lie outside their image ({shown}). A position "
                f"must lie within {r:g} px (the match radius) of the image's pixels: {-r:g} "
                f"<= row <= height - 1 + {r:g}, likewise col. Nothing was written; fix those "
                "rows (are row and col swapped, or given in another unit?)."
            )

    def _append_labels(
        self,
        batch: _LabelBatch,
        *,
        who: str,
        source: str,
        session: str | None = None,
        progress: Progress | None = None,
        file: tuple[str, Path] | None = None,
        again: bool = False,
    ) -> _WrittenLabels:
        """Write checked label events in one transaction (see :meth:`add_labels`).

        With ``file`` (its content hash and path) the import is recorded with its events.
        If the same content was imported before (and not ``again``), nothing is written
        and the earlier import is returned in ``already_imported``.
        """
        n = len(batch.values)
        with self._write() as conn:
            if file is not None and not again:
                earlier = self._earlier_import(file[0])
                if earlier is not None:
                    return _WrittenLabels([], 0, earlier)
            indexes: dict[int, PositionIndex] = {}
            current: dict[tuple[int, float, float], int | None] = {}
            for image_id in {int(i) for i in batch.image_ids}:
                index = indexes[image_id] = PositionIndex(self.match_radius)
                for r, c, value in conn.execute(
                    "SELECT e.row, e.col, e.label FROM label_events e JOIN (SELECT MAX(id) AS id"
                    " FROM label_events WHERE image_id = ? GROUP BY row, col) last ON last.id "
                    "= e.id",
                    (image_id,),
                ):
                    index.add(r, c)
                    current[(image_id, r, c)] = value
            keys = []
            for k in range(n):
                image_id = int(batch.image_ids[k])
                index = indexes[image_id]
                position = index.nearest(batch.rows[k], batch.cols[k])
                if position is None:
                    position = (float(batch.rows[k]), float(batch.cols[k]))
                    index.add(*position)
                keys.append((image_id, *position))
            _refuse_conflicts(keys, batch)
            relabelled = {
                key
                for key, value in zip(keys, batch.values, strict=True)
                if current.get(key) is not None and current[key] != value
            }
            when = _now()
            event_ids: list[int] = []
            for k, (image_id, row, col) in enumerate(keys):
                cursor = conn.execute(
                    "INSERT INTO label_events (image_id, row, col, label, who, created_at, "
                    "source, session) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (image_id, row, col, batch.values[k], who, when, source, session),
                )
                event_ids.append(int(cursor.lastrowid))
                if progress is not None and ((k + 1) % 1000 == 0 or k + 1 == n):
                    progress("label", {"done": k + 1, "total": n})
            if file is not None:
                conn.execute(
                    "INSERT INTO label_imports (sha256, file, who, created_at, n_events, "
                    "first_event, last_event) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        file[0],
                        str(file[1]),
                        who,
                        when,
                        n,
                        event_ids[0] if event_ids else None,
                        event_ids[-1] if event_ids else None,
                    ),
                )
        return _WrittenLabels(event_ids, len(relabelled), None)

    def _earlier_import(self, sha256: str) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT * FROM label_imports WHERE sha256 = ? ORDER BY id LIMIT 1", (sha256,)
        )
        return rows[0] if rows else None

    def label_imports(self) -> list[dict[str, Any]]:
        """Return every recorded label import (file, content hash, who, when, events)."""
        return self._query("SELECT * FROM label_imports ORDER BY id")

    def undo(self, *, who: str | None = None, session: str | None = None) -> int | None:
        """Undo the latest label event (of ``who``, of ``session``, if given) by its reverse.

        The new event restores the position's previous label (or clears it), and carries
        ``session``. Events are never removed. Undo again to undo the event before.

        Returns
        -------
        int or None
            The id of the new event, or None when there is nothing to undo.

        Raises
        ------
        InvalidInputError
            If the position was labelled again (by someone else) after that event.
        """
        with self._write() as conn:
            filters, params = "", []
            if who is not None:
                filters, params = " AND e.who = ?", [who]
            if session is not None:
                filters, params = f"{filters} AND e.session = ?", [*params, session]
            target = conn.execute(
                "SELECT id, image_id, row, col FROM label_events e WHERE e.undoes IS NULL AND "
                "NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes = e.id)"
                f"{filters} ORDER BY e.id DESC LIMIT 1",
                params,
            ).fetchone()
            if target is None:
                return None
            event_id, image_id, row, col = target
            later = conn.execute(
                "SELECT COUNT(*) FROM label_events WHERE image_id = ? AND row = ? AND col = ? "
                "AND id > ?",
                (image_id, row, col, event_id),
            ).fetchone()[0]
            if later:
                raise InvalidInputError(
                    f"cannot undo label event {event_id}: its position was labelled again "
                    "afterwards; label it anew instead."
                )
            previous = conn.execute(
                "SELECT label FROM label_events WHERE image_id = ? AND row = ? AND col = ? "
                "AND id < ? ORDER BY id DESC LIMIT 1",
                (image_id, row, col, event_id),
            ).fetchone()
            cursor = conn.execute(
                "INSERT INTO label_events (image_id, row, col, label, who, created_at, source, "
                "undoes, session) VALUES (?, ?, ?, ?, ?, ?, 'undo', ?, ?)",
                (
                    image_id,
                    row,
                    col,
                    None if previous is None else previous[0],
                    who or default_who(),
                    _now(),
                    event_id,
                    session,
                ),
            )
            return int(cursor.lastrowid)

    def last_label_event(self) -> int:
        """The id of the newest label event (0 before any): it grows with every label write.

        Cheap to ask; readers that cache labels (the labelling app) poll it to see writes
        by other processes.
        """
        row = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM label_events").fetchone()
        return int(row[0])

    def label_events(self) -> Any:
        """Return the whole label log as a DataFrame (oldest first; the audit trail)."""
        import pandas as pd

        rows = self._query(
            "SELECT e.id, e.image_id, i.name AS image, e.row, e.col, e.label, e.who, "
            "e.created_at, e.source, e.undoes, e.session FROM label_events e JOIN images i ON "
            "i.id = e.image_id ORDER BY e.id"
        )
        columns = [
            "id",
            "image_id",
            "image",
            "row",
            "col",
            "label",
            "who",
            "created_at",
            "source",
            "undoes",
            "session",
        ]
        return pd.DataFrame(rows, columns=columns)

    def labels(self, image: Any = None, *, include_unsure: bool = True) -> Any:
        """Return the current label of every labelled position (its latest event).

        Positions whose latest event cleared the label are left out.

        Returns
        -------
        pandas.DataFrame
            Columns ``image_id``, ``image`` (name), ``path``, ``row``, ``col``, ``label``,
            ``who``, ``created_at``, ``event_id``; ordered by event id.
        """
        import pandas as pd

        where, params = "", []
        if image is not None:
            where, params = " AND e.image_id = ?", [self.image(image).id]
        if not include_unsure:
            where += " AND e.label IN (0, 1)"
        rows = self._query(
            "SELECT e.image_id, i.name AS image, i.path, e.row, e.col, e.label, e.who, "
            "e.created_at, e.id AS event_id FROM label_events e JOIN images i ON i.id = "
            "e.image_id JOIN (SELECT MAX(id) AS id FROM label_events GROUP BY image_id, row, "
            f"col) last ON last.id = e.id WHERE e.label IS NOT NULL{where} ORDER BY e.id",
            params,
        )
        columns = [
            "image_id",
            "image",
            "path",
            "row",
            "col",
            "label",
            "who",
            "created_at",
            "event_id",
        ]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype({"row": float, "col": float, "label": np.int64})

    def import_labels(
        self,
        path: str | os.PathLike[str],
        *,
        who: str | None = None,
        progress: Progress | None = None,
        again: bool = False,
    ) -> int:
        """Import a label CSV with columns ``image,row,col,label`` (one transaction).

        ``image`` is the path or file name as added; ``label`` is 1 (signal), 0 (noise) or
        -1 (unsure), or the word signal, noise or unsure (any case); nothing else (not
        ``True``, not ``2``, not empty). Every row is checked before anything is written:
        a row whose position lies outside its image (see :meth:`add_labels`), or two rows
        that give one position different labels, refuse the whole file, naming the file's
        line numbers. Blank lines are skipped.

        A position that the project already labels differently takes the file's label (the
        earlier events are kept in the log); a :class:`LabelConflictWarning` counts such
        positions.

        The file's content hash is recorded with its events, so the same file imported
        again (say after an interrupted run whose import had committed) is recognised and
        not applied twice: nothing is written, an :class:`AlreadyImportedWarning` names
        the earlier import, and the result is 0. Pass ``again=True`` to apply it anyway.

        Returns
        -------
        int
            The number of label events added (0 for a file already imported).

        Raises
        ------
        InvalidInputError
            If the file is missing or not a CSV table, lacks a column, or a row is invalid.
        """
        path = _as_path(path, name="path")
        who = _who(who)
        if not path.is_file():
            raise InvalidInputError(f"label file {str(path)!r} does not exist or is not a file.")
        content = path.read_bytes()  # hashed and parsed from the same bytes
        digest = hashlib.sha256(content).hexdigest()
        earlier = None if again else self._earlier_import(digest)
        if earlier is None:
            frame, lines = _read_label_table(path, content)
            batch = self._label_batch(
                frame["image"].tolist(),
                frame["row"].to_numpy(),
                frame["col"].to_numpy(),
                frame["label"].tolist(),
                describe=lambda k: f"{path.name} line {lines[k]}",
            )
            written = self._append_labels(
                batch,
                who=who,
                source=f"import:{path.name}",
                progress=progress,
                file=(digest, path),
                again=again,
            )
            earlier = written.already_imported
        if earlier is not None:
            warnings.warn(
                f"label file {str(path)!r} was already imported (same content as "
                f"{earlier['file']!r}, imported by {earlier['who']} at {earlier['created_at']}"
                f" as {earlier['n_events']} events); nothing was applied again. Pass "
                "again=True (`import-labels --again`) to apply it once more.",
                AlreadyImportedWarning,
                stacklevel=2,
            )
            return 0
        if written.relabelled:
            warnings.warn(
                f"{written.relabelled} position(s) already had another label; the labels of "
                f"{path.name!r} replace them (the earlier events are kept in the label log, "
                "so the old labels can be restored).",
                LabelConflictWarning,
                stacklevel=2,
            )
        return len(written.event_ids)

    def export_labels(self, path: str | os.PathLike[str], *, include_unsure: bool = False) -> int:
        """Write the current labels to a CSV with columns ``image,row,col,label``.

        ``image`` is the file name where names are unique in the project, else the path.

        Returns
        -------
        int
            The number of rows written.
        """
        frame = self.labels(include_unsure=include_unsure)
        names = [r.name for r in self.images()]
        unique = len(set(names)) == len(names)
        out = frame.assign(image=frame["image"] if unique else frame["path"])
        out = out[["image", "row", "col", "label"]]
        write = partial(out.to_csv, index=False, float_format="%.17g")
        atomic_write(path, write, what="the label CSV")
        return len(out)

    def label_set_hash(self) -> str:
        """A SHA-256 naming the current 0/1 label set (image contents, positions, labels)."""
        return _label_set_hash(self.labels(include_unsure=False), self.images())

    # -- training -----------------------------------------------------------------------
    def training_data(self) -> tuple[np.ndarray, np.ndarray, Any]:
        """Return (crops, labels, table) of the current 0/1 labels, crops cut at each label.

        Images are read after checking their content hash.
        """
        table = self.labels(include_unsure=False)
        (crops,) = self._cut_crops(table)
        return crops, table["label"].to_numpy(dtype=np.int64), table

    def _cut_crops(self, *tables: Any) -> list[np.ndarray]:
        """Crops at the rows of each table (``image_id``, ``row``, ``col``), in its order.

        Each image is read (hash-checked) once for all the tables, and one at a time.
        """
        from blobsift.crops import extract_crops

        out = [np.empty((len(table), 64, 64), dtype=np.float32) for table in tables]
        groups = [table.groupby("image_id", sort=True).indices for table in tables]
        positions = [table[["row", "col"]].to_numpy() for table in tables]
        for image_id in sorted(set().union(*groups)):
            pixels = self.read_image(int(image_id))
            for group, where, crops in zip(groups, positions, out, strict=True):
                rows = group.get(image_id)
                if rows is not None:
                    crops[rows] = extract_crops(pixels, where[rows])
        return out

    def train(
        self,
        *,
        phase: str = "auto",
        target_precision: float | None = None,
        target_recall: float | None = None,
        random_state: int | None = 0,
        pretrain: bool = True,
        progress: Progress | None = None,
        **options: Any,
    ) -> ModelRecord:
        """Fit a :class:`~blobsift.Sifter` on the current labels and record a model version.

        The model file is written under ``models/`` first and recorded afterwards in one
        transaction with its metrics, threshold, label-set hash, phase decision and the
        held-out score of each label.

        Parameters
        ----------
        phase : {"auto", "siamese", "cnn"}
            Passed to :class:`~blobsift.Sifter`; "auto" lets it choose, given the phase
            history of this project's earlier models (:meth:`phase_history`).
        target_precision, target_recall : float, optional
            Choose the threshold for this precision (or recall) instead of best F1.
        random_state : int or None
            Seed.
        pretrain : bool
            Pre-train Phase 1's encoder on a sample of 3,000 of the project's candidates;
            the result is cached under ``models/pretrained``.
        progress : callable, optional
            ``progress(stage, info)`` as training goes: stage "pretrain" or "finetune"
            (Phase 1 steps) or "epoch" (Phase 2), with ``done`` and ``total``.
        **options
            Further :class:`~blobsift.Sifter` options (e.g. ``epochs``).

        Returns
        -------
        ModelRecord
        """
        from blobsift.classify.sifter import Sifter

        table = self.labels(include_unsure=False)
        sample = self._pretraining_sample() if pretrain else table.iloc[:0]
        crops, unlabeled = self._cut_crops(table, sample)
        labels = table["label"].to_numpy(dtype=np.int64)
        label_hash = _label_set_hash(table, self.images())
        callback = None if progress is None else (lambda info: progress(info["stage"], info))
        sifter = Sifter(
            phase=phase,
            random_state=random_state,
            target_precision=target_precision,
            target_recall=target_recall,
            callback=callback,
            **{"siamese__pretrain_cache": str(self.models_dir / "pretrained"), **options},
        ).fit(
            crops,
            labels,
            unlabeled=unlabeled if len(unlabeled) >= 2 else None,
            history=self._phase_records(),
        )
        heldout = _heldout_scores(sifter)
        metrics = dict(_plain(sifter.cv_metrics_))
        metrics["phase_scores"] = _plain(sifter.phase_scores_)
        if heldout is not None:
            metrics.update(metrics_with_intervals(labels, heldout, sifter.threshold_))
            metrics["heldout"] = "out-of-fold"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        stem = self.models_dir / f"model-{stamp}-{len(labels)}labels"
        self.models_dir.mkdir(exist_ok=True)
        sifter.save(stem)
        settings = {
            "phase": phase,
            "random_state": random_state,
            "target_precision": target_precision,
            "target_recall": target_recall,
            "pretrain": pretrain,
            **_plain(options),
        }
        kind = getattr(getattr(sifter, "estimator_", None), "kind", sifter.kind)
        with self._write() as conn:
            model_id = conn.execute(
                "INSERT INTO models (created_at, kind, phase, phase_reason, label_set_hash, "
                "n_labels, n_positive, metrics, threshold, settings, path) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _now(),
                    kind,
                    sifter.phase_,
                    getattr(sifter, "phase_reason_", ""),
                    label_hash,
                    len(labels),
                    int(labels.sum()),
                    _json(metrics),
                    float(sifter.threshold_),
                    _json(settings),
                    str(stem.relative_to(self.root)),
                ),
            ).lastrowid
            if heldout is not None:
                conn.executemany(
                    "INSERT INTO model_heldout (model_id, image_id, row, col, label, probability)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    zip(
                        [model_id] * len(table),
                        table["image_id"].astype(int).tolist(),
                        table["row"].tolist(),
                        table["col"].tolist(),
                        labels.astype(int).tolist(),
                        heldout.astype(float).tolist(),
                        strict=True,
                    ),
                )
        return self.model(model_id)

    def _pretraining_sample(self, limit: int = 3000, *, seed: int = 0) -> Any:
        """A seeded sample of ``limit`` current candidates, labelled or not, to pre-train on.

        It depends only on the candidates (not on the labels), so it stays the same as
        labelling goes on, and so does the cached pre-trained encoder.
        """
        candidates = self.candidates()
        if len(candidates) > limit:
            chosen = np.random.default_rng(seed).choice(len(candidates), limit, replace=False)
            candidates = candidates.iloc[np.sort(chosen)].reset_index(drop=True)
        return candidates

    def phase_history(self) -> list[tuple[int, float]]:
        """``(labels, Phase 1 held-out score)`` of every model so far that trained Phase 1."""
        return [(record.labels, record.score) for record in self._phase_records()]

    def _phase_records(self) -> list[Any]:
        """The phase history ``Sifter.fit`` gets: a PhaseRecord per model that trained Phase 1."""
        from blobsift.classify.phases import PhaseRecord

        records = [
            PhaseRecord.from_fit(
                record.n_labels,
                record.n_positive,
                record.phase,
                record.metrics.get("phase_scores") or {},
            )
            for record in self.models()
        ]
        return [record for record in records if record is not None]

    def models(self) -> list[ModelRecord]:
        """Return every model version, oldest first."""
        return [self._model_record(row) for row in self._query("SELECT * FROM models ORDER BY id")]

    def model(self, model_id: int | None = None) -> ModelRecord:
        """Return a model version by id, or the latest one.

        Raises
        ------
        ProjectError
            If the project has no (such) model.
        """
        if model_id is None:
            rows = self._query("SELECT * FROM models ORDER BY id DESC LIMIT 1")
            if not rows:
                raise ProjectError(
                    f"project {str(self.root)!r} has no model yet; train one with "
                    "`blobsift train` first."
                )
        else:
            rows = self._query("SELECT * FROM models WHERE id = ?", (int(model_id),))
            if not rows:
                ids = [m.id for m in self.models()]
                raise ProjectError(f"project has no model {model_id}; its models are {ids}.")
        return self._model_record(rows[0])

    def _model_record(self, row: dict[str, Any]) -> ModelRecord:
        return ModelRecord(
            id=row["id"],
            created_at=row["created_at"],
            kind=row["kind"],
            phase=row["phase"],
            phase_reason=row["phase_reason"],
            label_set_hash=row["label_set_hash"],
            n_labels=row["n_labels"],
            n_positive=row["n_positive"],
            metrics=json.loads(row["metrics"]),
            threshold=row["threshold"],
            settings=json.loads(row["settings"]),
            path=self.root / row["path"],
        )

    def heldout_scores(self, model_id: int | None = None) -> Any:
        """Return the held-out score of each label a model was trained on (a DataFrame)."""
        import pandas as pd

        record = self.model(model_id)
        rows = self._query(
            "SELECT h.image_id, i.name AS image, h.row, h.col, h.label, h.probability FROM "
            "model_heldout h JOIN images i ON i.id = h.image_id WHERE h.model_id = ? "
            "ORDER BY h.rowid",
            (record.id,),
        )
        return pd.DataFrame(
            rows, columns=["image_id", "image", "row", "col", "label", "probability"]
        )

    def _resolve_model(self, model: int | str | os.PathLike[str] | None) -> tuple[int | None, Path]:
        """(model id or None for an outside file, file stem) of a model reference."""
        if model is None or isinstance(model, int) or (isinstance(model, str) and model.isdigit()):
            record = self.model(None if model is None else int(model))
            return record.id, record.path
        path = Path(model).resolve()
        return None, path.with_suffix("") if path.suffix in (".json", ".safetensors") else path

    def load_model(self, model: int | str | os.PathLike[str] | None = None) -> Any:
        """Load a model: the latest, a model id, or a model file path.

        Returns
        -------
        Sifter

        Raises
        ------
        ProjectError
            If there is no such model or its file is missing.
        ModelFileError
            If the file is damaged or altered, or is not the model the project recorded:
            its threshold, kind or phase differ from the project's record of it.
        """
        from blobsift.classify.sifter import Sifter

        model_id, path = self._resolve_model(model)
        if not path.with_name(path.name + ".json").exists():
            raise ProjectError(
                f"model file {str(path)!r} is missing (expected {path.name}.safetensors and "
                f"{path.name}.json)."
            )
        sifter = Sifter.load(path)
        if model_id is not None:
            record = self.model(model_id)
            recorded = (record.threshold, record.kind, record.phase)
            found = (sifter.threshold_, sifter.estimator_.kind, sifter.phase_)
            if recorded != found:
                raise ModelFileError(
                    f"{path.name}.json is not the model {model_id} this project recorded: it "
                    f"holds threshold, kind and phase {found}, the project {recorded}. Restore "
                    "the file as saved, or train a new model with `blobsift train`."
                )
        return sifter

    # -- prediction ---------------------------------------------------------------------
    def predict(
        self,
        images: Iterable[str | os.PathLike[str]] | None = None,
        *,
        model: int | str | os.PathLike[str] | None = None,
        progress: Progress | None = None,
        record: bool = True,
        scheduler: Any = None,
        output: str | os.PathLike[str] | None = None,
        **detect_settings: Any,
    ) -> Any:
        """Score candidates with a model, write and record the predictions.

        Parameters
        ----------
        images : iterable of path-like, optional
            Default: every project image, scored on its current candidates. Paths of
            images outside the project are read, detected (with the latest detection
            settings of the project, overridden by ``detect_settings``) and scored without
            being added.
        model : int or path-like, optional
            A model id or file; default the latest model.
        progress : callable, optional
            ``progress("predict", {"done", "total", "image"})`` per image.
        record : bool
            Record the predictions in the database (after ``output`` is complete).
        scheduler : None, str or distributed.Client
            Where images outside the project are detected and scored: here (None) or on
            a Dask cluster (see :func:`blobsift.predict_images`). Project images are
            scored here on their stored candidates.
        output : path-like, optional
            A CSV file to write the predictions to, with a Parquet file of the same name
            beside it when pyarrow is installed. Rows are appended to ``OUTPUT.partial``
            as each image finishes, and the journal ``OUTPUT.status.jsonl`` records each
            image (with its warnings); when every image is done the files are renamed to
            their final names, so each is whole or absent. The path is checked before any
            image is scored. Every run starts the output afresh.
        **detect_settings
            Detection settings for images outside the project.

        Returns
        -------
        pandas.DataFrame
            Columns ``image, row, col, sigma, score, probability, decision``;
            ``frame.attrs["failed"]`` maps each image outside the project that could not
            be processed to the reason, ``frame.attrs["warnings"]`` each image whose
            processing raised warnings to their text, and ``frame.attrs["files"]`` lists
            the files written.

        Raises
        ------
        OutputError
            If ``output`` cannot be written there (checked first; nothing is left behind).
        """
        import pandas as pd

        from blobsift.batch import (
            COLUMNS,
            _check_run,
            _collect_warnings,
            _journal_record,
            _parquet_beside,
            _sift,
            _Sink,
        )
        from blobsift.crops import extract_crops

        model_id, model_path = self._resolve_model(model)
        sifter = self.load_model(model)
        threshold = float(sifter.threshold_)
        inside: list[ImageRecord] = []
        outside: list[str] = []
        if images is None:
            inside = self.images()
        else:
            by_path = {r.path: r for r in self.images()}
            for item in images:
                path = Path(item).resolve()
                if path in by_path:
                    inside.append(by_path[path])
                elif str(path) not in outside:
                    outside.append(str(path))
        current = self._current_runs()
        for image_record in inside:
            if image_record.id not in current:
                raise InvalidInputError(
                    f"image {image_record.name!r} has no candidates yet; run `blobsift detect` "
                    "or `blobsift import-candidates` first."
                )
        settings: dict[str, Any] = {}
        if outside:
            detect_runs = [r for r in self.detection_runs() if r["source"] == "detect"]
            settings = {
                **(detect_runs[-1]["settings"] if detect_runs else DETECT_DEFAULTS),
                **detect_settings,
            }
            _check_run(sifter, scheduler, settings)
        parquet = None if output is None else _parquet_beside(Path(output))
        sink = None if output is None else _Sink(Path(output), resume=False)
        total = len(inside) + len(outside)
        records: list[dict[str, Any]] = []
        parts: list[Any] = []  # the project images' tables, in order
        external: dict[str, Any] = {}  # the others' tables by path (they finish in any order)

        def report(entry: dict[str, Any], frame: Any) -> None:
            records.append(entry)
            if sink is not None:
                sink.add(entry, frame)
            if progress is not None:
                progress("predict", {"done": len(records), "total": total, "image": entry["image"]})

        def report_external(entry: dict[str, Any], frame: Any) -> None:
            report(entry, frame)
            if frame is not None:
                external[entry["image"]] = frame.assign(image_id=None)

        try:
            for image_record in inside:
                start = time.perf_counter()
                with _collect_warnings() as caught:
                    found = self.candidates(image_record.id)
                    pixels = self.read_image(image_record)
                    crops = extract_crops(pixels, found[["row", "col"]].to_numpy())
                    probability = sifter.predict_proba(crops)[:, 1]
                part = pd.DataFrame(
                    {
                        "image": image_record.name,
                        "image_id": image_record.id,
                        "row": found["row"].to_numpy(),
                        "col": found["col"].to_numpy(),
                        "sigma": found["sigma"].to_numpy(),
                        "score": found["score"].to_numpy(),
                        "probability": probability,
                        "decision": (probability >= threshold).astype(np.int64),
                    }
                )
                seconds = time.perf_counter() - start
                report(_journal_record(image_record.name, part, None, seconds, caught), part)
                parts.append(part)
            if outside:
                _sift(
                    outside, sifter, sifter, scheduler, settings, None, report_external,
                    progress, total, len(inside),
                )  # fmt: skip
        except BaseException:
            if sink is not None:
                sink.flush()  # the journal and OUTPUT.partial show how far it came
            raise
        ordered = parts + [external[name] for name in outside if name in external]
        if ordered:
            frame = pd.concat([p for p in ordered if len(p)] or ordered[:1], ignore_index=True)
        else:
            frame = pd.DataFrame(columns=[*COLUMNS, "image_id"])
        written: list[Path] = []
        if sink is not None:
            sink.commit()
            written.append(Path(output))
            if parquet is not None:
                table = frame[list(COLUMNS)]
                write = partial(table.to_parquet, index=False)
                written.append(atomic_write(parquet, write, what="the prediction Parquet file"))
        if record:
            self._record_predictions(frame, model_id, model_path, settings, total)
        frame = frame[list(COLUMNS)]
        frame.attrs["failed"] = {r["image"]: r["error"] for r in records if r["status"] == "failed"}
        frame.attrs["warnings"] = {r["image"]: r["warnings"] for r in records if r["warnings"]}
        frame.attrs["files"] = written
        return frame

    def _record_predictions(
        self,
        frame: Any,
        model_id: int | None,
        model_path: Path,
        settings: dict[str, Any],
        n_images: int,
    ) -> int:
        with self._write() as conn:
            run_id = conn.execute(
                "INSERT INTO prediction_runs (model_id, model_path, created_at, settings, "
                "n_images, n_candidates, n_signal) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    model_id,
                    str(model_path),
                    _now(),
                    _json(settings),
                    n_images,
                    len(frame),
                    int(frame["decision"].sum()) if len(frame) else 0,
                ),
            ).lastrowid
            conn.executemany(
                "INSERT INTO predictions (run_id, image_id, image, row, col, sigma, score, "
                "probability, decision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        run_id,
                        None if _isna(i) else int(i),
                        str(im),
                        float(r),
                        float(c),
                        _nan_none(s),
                        _nan_none(q),
                        float(p),
                        int(d),
                    )
                    for i, im, r, c, s, q, p, d in zip(
                        frame["image_id"],
                        frame["image"],
                        frame["row"],
                        frame["col"],
                        frame["sigma"],
                        frame["score"],
                        frame["probability"],
                        frame["decision"],
                        strict=True,
                    )
                ),
            )
        return int(run_id)

    def prediction_runs(self) -> list[dict[str, Any]]:
        """Return every recorded prediction run (id, model, when, counts)."""
        return self._query("SELECT * FROM prediction_runs ORDER BY id")

    def predictions(self, run_id: int | None = None) -> Any:
        """Return the predictions of a recorded run (default the latest) as a DataFrame.

        Returns
        -------
        pandas.DataFrame
            Columns ``image_id`` (None for an image outside the project), ``image`` (the
            name of a project image, the path of an outside one), ``row``, ``col``,
            ``sigma``, ``score``, ``probability``, ``decision``, in the order predicted.

        Raises
        ------
        ProjectError
            If the project has no (such) prediction run.
        """
        runs = [run["id"] for run in self.prediction_runs()]
        if not runs:
            raise ProjectError(
                f"project {str(self.root)!r} has no predictions yet; run `blobsift predict` first."
            )
        if run_id is None:
            run_id = runs[-1]
        elif run_id not in runs:
            raise ProjectError(f"project has no prediction run {run_id}; its runs are {runs}.")
        rows = self._query(
            "SELECT image_id, image, row, col, sigma, score, probability, decision FROM "
            "predictions WHERE run_id = ? ORDER BY rowid",
            (int(run_id),),
        )
        columns = ["image_id", "image", "row", "col", "sigma", "score", "probability", "decision"]
        return _prediction_frame(rows, columns)

    def latest_predictions(self, image: Any = None) -> Any:
        """Return each project image's predictions from the latest run that scored it.

        Parameters
        ----------
        image : optional
            One image (id, path or name); default every image.

        Returns
        -------
        pandas.DataFrame
            Columns ``image_id``, ``image`` (name), ``row``, ``col``, ``sigma``, ``score``,
            ``probability``, ``decision``, ``run_id``; ordered by image, then as scored.
        """
        where, params = "", []
        if image is not None:
            where, params = " WHERE p.image_id = ?", [self.image(image).id]
        rows = self._query(
            "SELECT p.image_id, i.name AS image, p.row, p.col, p.sigma, p.score, p.probability,"
            " p.decision, p.run_id FROM predictions p JOIN (SELECT image_id, MAX(run_id) AS "
            "run_id FROM predictions WHERE image_id IS NOT NULL GROUP BY image_id) cur ON "
            "cur.image_id = p.image_id AND cur.run_id = p.run_id JOIN images i ON i.id = "
            f"p.image_id{where} ORDER BY p.image_id, p.rowid",
            params,
        )
        columns = [
            "image_id",
            "image",
            "row",
            "col",
            "sigma",
            "score",
            "probability",
            "decision",
            "run_id",
        ]
        return _prediction_frame(rows, columns)

    # -- summary ------------------------------------------------------------------------
    def info(self, *, verify: bool = False) -> dict[str, Any]:
        """Return a summary: images, candidates, labels, models, predictions.

        ``unfinished_detection_runs`` counts runs still ``running`` (one in progress, or one
        killed since the last run started); ``interrupted_detection_runs`` those that a
        later run found unfinished.

        Parameters
        ----------
        verify : bool
            Also hash every image and list those missing or changed (reads every file).
        """
        one = lambda sql: self._conn.execute(sql).fetchone()[0]  # noqa: E731
        labels = self.labels()
        counts = labels["label"].value_counts().to_dict() if len(labels) else {}
        images = self.images()
        current = self._current_runs()
        n_candidates = one(
            f"SELECT COUNT(*) FROM candidates c JOIN ({_CURRENT}) cur ON cur.image_id = "
            "c.image_id AND cur.run_id = c.run_id"
        )
        models = self.models()
        info: dict[str, Any] = {
            "project": str(self.root),
            "schema_version": self.schema_version,
            "images": len(images),
            "images_missing": sum(not r.path.exists() for r in images),
            "images_without_candidates": sum(r.id not in current for r in images),
            "detection_runs": one("SELECT COUNT(*) FROM detection_runs"),
            "unfinished_detection_runs": one(
                "SELECT COUNT(*) FROM detection_runs WHERE status = 'running'"
            ),
            "interrupted_detection_runs": one(
                "SELECT COUNT(*) FROM detection_runs WHERE status = 'interrupted'"
            ),
            "label_imports": one("SELECT COUNT(*) FROM label_imports"),
            "candidates": n_candidates,
            "label_events": one("SELECT COUNT(*) FROM label_events"),
            "labels": {
                "signal": int(counts.get(1, 0)),
                "noise": int(counts.get(0, 0)),
                "unsure": int(counts.get(-1, 0)),
            },
            "label_set_hash": self.label_set_hash(),
            "models": len(models),
            "prediction_runs": one("SELECT COUNT(*) FROM prediction_runs"),
        }
        if models:
            latest = models[-1]
            info["latest_model"] = {
                "id": latest.id,
                "created_at": latest.created_at,
                "phase": latest.phase,
                "phase_reason": latest.phase_reason,
                "n_labels": latest.n_labels,
                "threshold": latest.threshold,
                "f1": latest.metrics.get("f1"),
                "precision": latest.metrics.get("precision"),
                "recall": latest.metrics.get("recall"),
                "path": str(latest.path),
                "labels_changed_since": latest.label_set_hash != info["label_set_hash"],
            }
        if verify:
            info["image_problems"] = self.check_images()
        return info


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _prediction_frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    """Prediction rows as a DataFrame with float positions, scores and probabilities."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype(
        {"row": float, "col": float, "sigma": float, "score": float, "probability": float}
    )


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers keep their BEGIN ... END)."""
    statements, buffer = [], ""
    for line in script.strip().splitlines():
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


#: The detection settings that are real numbers (the others are integers).
_REAL_SETTINGS = ("sigma_min", "sigma_max", "threshold")


def _candidate_row(k: int) -> str:
    """Candidate ``k`` of a table, as the row (and line) of the CSV it was read from."""
    return f"candidate row {k + 1} (line {k + 2} of its CSV)"


def _checked_detect_settings(settings: dict[str, Any], n_threads: Any) -> dict[str, Any]:
    """Every detection setting (defaults filled in), checked before a run is recorded.

    Real-valued settings are stored as floats, so ``threshold=5`` and ``threshold=5.0``
    name the same run. The ranges are those :func:`blobsift.detect_blobs` enforces; it
    checks them here on a 1 x 1 image, so both always agree.
    """
    from blobsift.detect import detect_blobs

    unknown = sorted(set(settings) - set(DETECT_DEFAULTS))
    if unknown:
        raise InvalidInputError(
            f"unknown detection setting(s) {unknown}; valid: {sorted(DETECT_DEFAULTS)}."
        )
    checked = {**DETECT_DEFAULTS, **settings}
    for name in _REAL_SETTINGS:
        checked[name] = _real_number(checked[name], name=name)
    detect_blobs(np.zeros((1, 1), np.float32), n_threads=n_threads, **checked)
    return checked


def _real_number(value: Any, *, name: str) -> float:
    """``value`` as a float if it is a real number (not a bool or a string); else raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise InvalidInputError(
            f"{name} must be a number; got {type(value).__name__} {value!r}"
            + ("; pass the number itself, not text." if isinstance(value, str) else ".")
        )
    if isinstance(value, np.complexfloating):
        raise InvalidInputError(f"{name} must be a real number; got {value!r}.")
    return float(value)


def _reference_list(refs: Any, *, name: str) -> list[Any]:
    """A list of references (paths, names, ids); a lone str or path is refused, not split."""
    if isinstance(refs, (str, bytes, os.PathLike)) or not isinstance(refs, Iterable):
        raise InvalidInputError(
            f"{name} must be a list of image paths, names or ids; got {type(refs).__name__} "
            f"{refs!r}. Pass [{refs!r}] for one."
        )
    return list(refs)


def _image_record(row: dict[str, Any]) -> ImageRecord:
    return ImageRecord(
        id=row["id"],
        path=Path(row["path"]),
        name=row["name"],
        sha256=row["sha256"],
        shape=(row["height"], row["width"]),
        size_bytes=row["size_bytes"],
        added_at=row["added_at"],
    )


def _nan_none(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def _isna(value: Any) -> bool:
    """True for None and NaN."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def _label_value(value: Any) -> int | None:
    """1/0/-1 from numbers holding them or the words signal/noise/unsure; else None.

    Booleans (and the text ``True``) are not labels: ``True`` is not 1 here.
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        words = {"signal": 1, "noise": 0, "unsure": -1}
        if text in words:
            return words[text]
        value = number_from_text(text)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number in LABEL_VALUES else None


def _coordinates(values: Any, *, name: str, describe: Callable[[int], str]) -> np.ndarray:
    """Positions as a 1D float64 array; non-numbers, NaN and inf are refused by event."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must be a sequence of numbers; got shape {array.shape}.")
    if array.size and array.dtype.kind not in "iuf":
        for k, value in enumerate(array.tolist()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInputError(
                    f"{describe(k)}: {name[:-1]} must be a number; got "
                    f"{type(value).__name__} {value!r}."
                )
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise InvalidInputError(
            f"{describe(int(bad[0]))}: {name[:-1]} must be a finite number; got "
            f"{array[bad[0]]!r} ({bad.size} such value(s) in {name})."
        )
    return array


def _refuse_conflicts(keys: list[tuple[int, float, float]], batch: _LabelBatch) -> None:
    """Refuse a batch in which one position gets different labels (all events kept)."""
    first: dict[tuple[int, float, float], int] = {}
    conflicts = []
    for k, key in enumerate(keys):
        seen = first.setdefault(key, k)
        if batch.values[seen] != batch.values[k]:
            conflicts.append((seen, k, key))
    if conflicts:
        shown = "; ".join(
            f"{batch.describe(a)} gives {batch.values[a]} and {batch.describe(b)} gives "
            f"{batch.values[b]} at (row {key[1]:g}, col {key[2]:g})"
            for a, b, key in conflicts[:3]
        )
        raise InvalidInputError(
            f"{len(conflicts)} label(s) conflict with another label of the same position "
            f"(positions within match_radius of each other are one position): {shown}. "
            "Nothing was written; keep one label per position."
        )


def _who(who: Any) -> str:
    """The name events are recorded under: ``who``, or the login name when None."""
    if who is None:
        return default_who()
    if not isinstance(who, str) or not who.strip():
        raise InvalidInputError(f"who must be a non-empty name (str); got {who!r}.")
    return who


def _text(value: Any, *, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a str; got {type(value).__name__} {value!r}.")
    return value


_LABEL_COLUMNS = ("image", "row", "col", "label")


def _read_label_table(path: Path, content: bytes) -> tuple[Any, list[int]]:
    """The rows of a label CSV (image, row, col as numbers, label as text) and their lines.

    ``content`` holds the file's bytes; ``path`` names it in errors.

    Blank lines are skipped; the line numbers are those of the file (the header is line
    1), assuming no cell spans lines.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(
            io.BytesIO(content),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InvalidInputError(
            f"label file {str(path)!r} is not a CSV table with the columns image,row,col,"
            f"label ({type(error).__name__})."
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in _LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"label file {str(path)!r} lacks column(s) {missing}; it needs image,row,col,"
            f"label (found {list(frame.columns)})."
        )
    frame = frame.loc[:, ~frame.columns.duplicated()].fillna("").astype(str)
    frame = frame.apply(lambda column: column.str.strip())
    frame = frame[(frame != "").any(axis=1)]
    lines = (frame.index.to_numpy() + 2).tolist()
    cells = frame[list(_LABEL_COLUMNS)]
    empty = np.flatnonzero((cells == "").any(axis=1).to_numpy())
    if empty.size:
        raise InvalidInputError(
            f"label file {str(path)!r} has empty cells on line(s) "
            f"{[lines[k] for k in empty[:5]]}; fill or remove them."
        )
    out = cells.reset_index(drop=True)
    for name in ("row", "col"):
        numbers, _ = column_numbers(out[name].to_numpy(dtype=object))
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            raise InvalidInputError(
                f"label file {str(path)!r}: {name} must be a finite number; line "
                f"{lines[bad[0]]} has {out[name].iloc[bad[0]]!r} ({bad.size} such line(s))."
            )
        out[name] = numbers
    return out, lines


def _label_set_hash(table: Any, images: list[ImageRecord]) -> str:
    sha = {r.id: r.sha256 for r in images}
    lines = sorted(
        f"{sha[int(i)]} {r:.3f} {c:.3f} {int(y)}"
        for i, r, c, y in zip(
            table["image_id"], table["row"], table["col"], table["label"], strict=True
        )
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _heldout_scores(sifter: Any) -> np.ndarray | None:
    for owner in (sifter, getattr(sifter, "estimator_", None)):
        scores = getattr(owner, "oof_proba_", None)
        if scores is not None:
            return np.asarray(scores, dtype=np.float64)
    return None


def _plain(value: Any) -> Any:
    """Make numpy scalars and containers JSON-friendly."""
    return json.loads(_json(value)) if not callable(value) else None


def metrics_with_intervals(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """F1, precision and recall at ``threshold`` with bootstrap confidence intervals.

    Parameters
    ----------
    labels : (n,) array of {0, 1}
        Held-out labels.
    scores : (n,) array of float
        Held-out probabilities of signal.
    threshold : float
        Decision threshold (``score >= threshold`` is signal).
    n_boot : int
        Bootstrap resamples of the labels.
    seed : int
        Seed of the resampling.
    level : float
        Confidence level of the (percentile) intervals.

    Returns
    -------
    dict
        ``f1``, ``precision``, ``recall`` and ``f1_ci``, ``precision_ci``, ``recall_ci``
        (each a [low, high] pair), ``ci_level`` and ``n_heldout``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    decided = np.asarray(scores) >= threshold
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(labels), size=(n_boot, len(labels)))
    truth = labels[index].astype(bool)
    predicted = decided[index]
    tp = (truth & predicted).sum(axis=1)
    fp = (~truth & predicted).sum(axis=1)
    fn = (truth & ~predicted).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = {
            "precision": np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0),
            "recall": np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0),
        }
    t = labels.astype(bool)
    tp0, fp0, fn0 = int((t & decided).sum()), int((~t & decided).sum()), int((t & ~decided).sum())
    point = {
        "precision": tp0 / (tp0 + fp0) if tp0 + fp0 else 0.0,
        "recall": tp0 / (tp0 + fn0) if tp0 + fn0 else 0.0,
        "f1": 2 * tp0 / (2 * tp0 + fp0 + fn0) if 2 * tp0 + fp0 + fn0 else 0.0,
    }
    tail = 100 * (1 - level) / 2
    out: dict[str, Any] = {"ci_level": level, "n_heldout": len(labels)}
    for name, values in boot.items():
        out[name] = float(point[name])
        out[f"{name}_ci"] = [
            float(np.percentile(values, tail)),
            float(np.percentile(values, 100 - tail)),
        ]
    return out
