"""The project's own settings: a key -> JSON value table (schema 4)."""

from __future__ import annotations

import json
from typing import Any

from blobsift.store._database import Database
from blobsift.store._records import to_json

__all__ = ["UPSERT_SETTING", "SettingsTable"]

#: Store a setting (key, JSON value), replacing what was there.
UPSERT_SETTING = (
    "INSERT INTO project_settings (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


class SettingsTable(Database):
    """Settings that belong to the whole project (such as its channels), by key."""

    def setting(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` where none is."""
        row = self.conn.execute(
            "SELECT value FROM project_settings WHERE key = ?", (key,)
        ).fetchone()
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``key``, replacing what was there; None removes it."""
        with self.write() as conn:
            if value is None:
                conn.execute("DELETE FROM project_settings WHERE key = ?", (key,))
            else:
                conn.execute(UPSERT_SETTING, (key, to_json(value)))
