"""The database schema: the SQL of every version and the migrations between them.

The schema is the file format of ``project.db``: :data:`MIGRATIONS` maps each version to
the script that brings a database from the version before to it, and
:data:`SCHEMA_VERSION` is the newest. A database carries its version in the
``schema_version`` table.
"""

from __future__ import annotations

import sqlite3

__all__ = [
    "CURRENT_RUNS",
    "MARK_INTERRUPTED",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "UNFINISHED_RUNS",
    "statements",
]

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


#: Schema 3: the client session of each label event (undo belongs to a session), NULL
#: for events from outside the labelling app.
_LABEL_SESSIONS = """
ALTER TABLE label_events ADD COLUMN session TEXT;
"""

#: Schema 4: settings of the whole project, by key (JSON values), such as the channels of
#: a project of stacks. Nothing else changes: a project without them is as it was.
_PROJECT_SETTINGS = """
CREATE TABLE project_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

#: version -> SQL script that brings a database from ``version - 1`` to ``version``.
MIGRATIONS: dict[int, str] = {
    1: _SCHEMA_V1,
    2: _SCHEMA_V2_RUN_STATUS_AND_LABEL_IMPORTS,
    3: _LABEL_SESSIONS,
    4: _PROJECT_SETTINGS,
}
SCHEMA_VERSION = max(MIGRATIONS)

#: The latest detection run of each image (the one its current candidates come from).
CURRENT_RUNS = "SELECT image_id, MAX(run_id) AS run_id FROM run_images GROUP BY image_id"
#: Is a detection run still marked ``running``?
UNFINISHED_RUNS = "SELECT 1 FROM detection_runs WHERE status = 'running' LIMIT 1"
#: Mark every run still ``running`` as ``interrupted``.
MARK_INTERRUPTED = "UPDATE detection_runs SET status = 'interrupted' WHERE status = 'running'"


def statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers keep their BEGIN ... END)."""
    out, buffer = [], ""
    for line in script.strip().splitlines():
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        out.append(buffer.strip())
    return out
