"""The append-only label log: events, undo, client sessions and label-file imports.

The current label of a position is its latest event; undo is a new event. Which stored
position an event joins is decided by the caller (``place``), inside the transaction
that writes the events, so two writers never place against a stale log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.exceptions import InvalidInputError
from blobsift.store._database import Database, inserted_id
from blobsift.store._records import default_who, now
from blobsift.types import Progress, ProgressEvent

__all__ = ["LabelTables", "Position", "WrittenLabels"]

#: A labelled position: (image id, row, col).
Position = tuple[int, float, float]
#: ``place(current) -> positions``: given the current label of every stored position of
#: the events' images, the stored (or new) position of each event, in order.
Placer = Callable[[dict[Position, int | None]], list[Position]]

_LABEL_EVENT_COLUMNS = [
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
_LABEL_COLUMNS = [
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


@dataclass(frozen=True)
class WrittenLabels:
    """What :meth:`LabelTables.append_labels` did."""

    event_ids: list[int]
    relabelled: int
    already_imported: dict[str, Any] | None


class LabelTables(Database):
    """Label events (append-only; the database refuses UPDATE and DELETE) and imports."""

    def append_labels(
        self,
        image_ids: Sequence[int],
        values: Sequence[int | None],
        place: Placer,
        *,
        who: str,
        source: str,
        session: str | None = None,
        progress: Progress | None = None,
        file: tuple[str, Path] | None = None,
        again: bool = False,
    ) -> WrittenLabels:
        """Write label events in one transaction.

        ``place`` maps the current labels of the events' images to each event's position
        (and may raise to refuse the batch: nothing is written then). With ``file`` (its
        content hash and path) the import is recorded with its events; if the same
        content was imported before (and not ``again``), nothing is written and the
        earlier import is returned in ``already_imported``.
        """
        n = len(values)
        with self.write() as conn:
            if file is not None and not again:
                earlier = self.earlier_import(file[0])
                if earlier is not None:
                    return WrittenLabels([], 0, earlier)
            current: dict[Position, int | None] = {}
            for image_id in sorted({int(i) for i in image_ids}):
                for r, c, value in conn.execute(
                    "SELECT e.row, e.col, e.label FROM label_events e JOIN (SELECT MAX(id) AS id"
                    " FROM label_events WHERE image_id = ? GROUP BY row, col) last ON last.id "
                    "= e.id",
                    (image_id,),
                ):
                    current[(image_id, r, c)] = value
            keys = place(current)
            relabelled = {
                key
                for key, value in zip(keys, values, strict=True)
                if current.get(key) is not None and current[key] != value
            }
            when = now()
            event_ids: list[int] = []
            for k, (image_id, row, col) in enumerate(keys):
                cursor = conn.execute(
                    "INSERT INTO label_events (image_id, row, col, label, who, created_at, "
                    "source, session) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (image_id, row, col, values[k], who, when, source, session),
                )
                event_ids.append(inserted_id(cursor))
                if progress is not None and ((k + 1) % 1000 == 0 or k + 1 == n):
                    progress(ProgressEvent("label", k + 1, n))
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
        return WrittenLabels(event_ids, len(relabelled), None)

    def earlier_import(self, sha256: str) -> dict[str, Any] | None:
        """The first recorded import of a label file with this content hash, if any."""
        rows = self.query(
            "SELECT * FROM label_imports WHERE sha256 = ? ORDER BY id LIMIT 1", (sha256,)
        )
        return rows[0] if rows else None

    def label_imports(self) -> list[dict[str, Any]]:
        """Every recorded label import (file, content hash, who, when, events)."""
        return self.query("SELECT * FROM label_imports ORDER BY id")

    def undo(self, *, who: str | None = None, session: str | None = None) -> int | None:
        """Undo the latest label event (of ``who``, of ``session``) by its reverse.

        Returns the new event's id, or None when there is nothing to undo.

        Raises
        ------
        InvalidInputError
            If the position was labelled again after that event.
        """
        with self.write() as conn:
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
                    now(),
                    event_id,
                    session,
                ),
            )
            return inserted_id(cursor)

    def last_label_event(self) -> int:
        """The id of the newest label event (0 before any)."""
        return int(self.one("SELECT COALESCE(MAX(id), 0) FROM label_events"))

    def label_events(self) -> Any:
        """The whole label log as a DataFrame (oldest first)."""
        import pandas as pd

        rows = self.query(
            "SELECT e.id, e.image_id, i.name AS image, e.row, e.col, e.label, e.who, "
            "e.created_at, e.source, e.undoes, e.session FROM label_events e JOIN images i ON "
            "i.id = e.image_id ORDER BY e.id"
        )
        return pd.DataFrame(rows, columns=_LABEL_EVENT_COLUMNS)

    def labels(self, image_id: int | None = None, *, include_unsure: bool = True) -> Any:
        """The current label of every labelled position (cleared ones left out).

        Columns ``image_id``, ``image`` (name), ``path``, ``row``, ``col``, ``label``,
        ``who``, ``created_at``, ``event_id``; ordered by event id.
        """
        import pandas as pd

        where, params = "", []
        if image_id is not None:
            where, params = " AND e.image_id = ?", [int(image_id)]
        if not include_unsure:
            where += " AND e.label IN (0, 1)"
        rows = self.query(
            "SELECT e.image_id, i.name AS image, i.path, e.row, e.col, e.label, e.who, "
            "e.created_at, e.id AS event_id FROM label_events e JOIN images i ON i.id = "
            "e.image_id JOIN (SELECT MAX(id) AS id FROM label_events GROUP BY image_id, row, "
            f"col) last ON last.id = e.id WHERE e.label IS NOT NULL{where} ORDER BY e.id",
            params,
        )
        frame = pd.DataFrame(rows, columns=_LABEL_COLUMNS)
        return frame.astype({"row": float, "col": float, "label": np.int64})
