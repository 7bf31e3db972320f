"""The project database: SQL only (no detection, no crops, no models in memory).

:class:`Store` owns the SQLite connection of a ``project.db`` (WAL, foreign keys on) and
every write transaction (``BEGIN IMMEDIATE``), so a crash loses at most the transaction
in progress and two processes writing at once wait for each other. It records:

- **images**: path, content hash (SHA-256), shape;
- **detection runs** (settings as JSON) and their **candidates**; an image's current
  candidates are those of the latest run that covers it;
- **label events**, append-only (the database refuses UPDATE and DELETE), with their
  client sessions and the content hash of each imported label file;
- **models** with the held-out score of every label they were trained on, and
  **prediction runs** with their rows;
- **project settings** by key, such as the channels of a project of stacks.

The database carries its schema version; :data:`MIGRATIONS` upgrade older databases when
they are opened.

Modules
-------
_schema
    The SQL of every schema version, :data:`MIGRATIONS`, :data:`SCHEMA_VERSION`.
_database
    Opening, migrating, the write transaction and queries (:class:`Database`).
_records
    :class:`ImageRecord`, :class:`ModelRecord`, the import warnings, content hashes.
_images
    Images, detection runs and candidates.
_labels
    The label log: events, undo, sessions, label-file imports.
_models
    Model versions with their held-out scores, prediction runs.
_settings
    Settings of the whole project (its channels), by key.

:class:`blobsift.project.Project` composes the store with detection, crops and models.
"""

from __future__ import annotations

from blobsift.store._database import DB_NAME, Database, connect
from blobsift.store._images import ImageTables, settings_hash
from blobsift.store._labels import LabelTables, Position, WrittenLabels
from blobsift.store._models import ModelTables
from blobsift.store._records import (
    AlreadyImportedWarning,
    ImageRecord,
    LabelConflictWarning,
    ModelRecord,
    content_hash,
    default_who,
    plain,
)
from blobsift.store._schema import MIGRATIONS, SCHEMA_VERSION
from blobsift.store._settings import SettingsTable

__all__ = [
    "DB_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AlreadyImportedWarning",
    "Database",
    "ImageRecord",
    "LabelConflictWarning",
    "ModelRecord",
    "Position",
    "Store",
    "WrittenLabels",
    "connect",
    "content_hash",
    "default_who",
    "plain",
    "settings_hash",
]


class Store(ImageTables, LabelTables, ModelTables, SettingsTable):
    """Every table of a project database, behind one connection.

    Parameters
    ----------
    db : path
        The database file.
    root : path, optional
        The project folder (model paths are stored relative to it).
    """

    def counts(self) -> dict[str, int]:
        """How many rows the summary counts: runs (by status), imports, events, predictions."""
        one = self.one
        return {
            "detection_runs": one("SELECT COUNT(*) FROM detection_runs"),
            "unfinished_detection_runs": one(
                "SELECT COUNT(*) FROM detection_runs WHERE status = 'running'"
            ),
            "interrupted_detection_runs": one(
                "SELECT COUNT(*) FROM detection_runs WHERE status = 'interrupted'"
            ),
            "label_imports": one("SELECT COUNT(*) FROM label_imports"),
            "candidates": self.count_candidates(),
            "label_events": one("SELECT COUNT(*) FROM label_events"),
            "prediction_runs": one("SELECT COUNT(*) FROM prediction_runs"),
        }

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"
