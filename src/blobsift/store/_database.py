"""The connection to ``project.db``: opening, migrating, and one write transaction."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from blobsift.exceptions import ProjectError
from blobsift.store._schema import statements

__all__ = ["DB_NAME", "Database"]

DB_NAME = "project.db"


def _versions() -> tuple[dict[int, str], int]:
    """The migrations and the newest version, read from :mod:`blobsift.store` when asked.

    They are looked up on the package at each opening (not bound at import), so that a
    test can stand in an older schema to write a database of an earlier version.
    """
    from blobsift import store

    return store.MIGRATIONS, store.SCHEMA_VERSION


class Database:
    """One SQLite connection to a project database, brought to the current schema.

    Parameters
    ----------
    db : path
        The database file (made if missing).
    root : path, optional
        The project folder, as errors name it (default the file's folder).

    Raises
    ------
    ProjectError
        If the file is not a database, or was written by a newer blobsift.
    """

    def __init__(self, db: Path, *, root: Path | None = None) -> None:
        self.root = db.parent if root is None else root
        self.conn = connect(db)
        try:
            self._migrate()
        except BaseException:
            self.conn.close()
            raise

    def _stored_version(self) -> int:
        newest = _versions()[1]
        row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        version = row[0] or 0
        if version > newest:
            raise ProjectError(
                f"{str(self.root)!r} was written by a newer blobsift (schema version "
                f"{version}; this one reads up to {newest}). Upgrade blobsift."
            )
        return int(version)

    def _migrate(self) -> None:
        """Apply the missing migrations in one transaction.

        Foreign keys are off while it runs (SQLite's way to rebuild a table that others
        refer to) and checked before the commit: a migration that would leave a dangling
        reference rolls back whole.
        """
        migrations, newest = _versions()
        if self._stored_version() == newest:
            return
        conn = self.conn
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            with self.write():
                version = self._stored_version()  # another process may have migrated
                for target in range(version + 1, newest + 1):
                    for statement in statements(migrations[target]):
                        conn.execute(statement)
                    conn.execute("DELETE FROM schema_version")
                    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (target,))
                dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
                if dangling:
                    raise ProjectError(
                        f"upgrading {str(self.root)!r} to schema {newest} would leave "
                        f"{len(dangling)} dangling reference(s) (first: {dangling[0]}); nothing "
                        "was changed. Report this with a copy of project.db."
                    )
        finally:
            conn.execute("PRAGMA foreign_keys = ON")

    @property
    def schema_version(self) -> int:
        """The schema version of the database."""
        return int(self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of a query, as dicts keyed by column name."""
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first value of the first row of a query."""
        return self.conn.execute(sql, params).fetchone()[0]


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The row id an ``INSERT`` through ``cursor`` gave its new row."""
    rowid = cursor.lastrowid
    assert rowid is not None  # set by every successful INSERT
    return rowid


def connect(db: Path) -> sqlite3.Connection:
    """Open (or make) a project database: WAL, full sync, foreign keys, a version table.

    Raises
    ------
    ProjectError
        If the file is not an SQLite database.
    """
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
