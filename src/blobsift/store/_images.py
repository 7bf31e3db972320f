"""The tables of images, detection runs and candidates."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.store._database import Database, inserted_id
from blobsift.store._records import ImageRecord, image_record, nan_none, now, to_json
from blobsift.store._schema import CURRENT_RUNS, MARK_INTERRUPTED, UNFINISHED_RUNS
from blobsift.store._settings import UPSERT_SETTING
from blobsift.types import Candidates, Progress, ProgressEvent

__all__ = ["ImageTables", "settings_hash"]

_INSERT_CANDIDATE = (
    "INSERT INTO candidates (run_id, image_id, row, col, sigma, score) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_RUN_IMAGE = (
    "INSERT INTO run_images (run_id, image_id, image_sha256, n_candidates) VALUES (?, ?, ?, ?)"
)


def settings_hash(settings: dict[str, Any]) -> str:
    """The SHA-256 naming a run's settings (of their sorted JSON)."""
    return hashlib.sha256(to_json(settings).encode()).hexdigest()


class ImageTables(Database):
    """Images (path, content hash, shape), detection runs and their candidates."""

    # -- images -------------------------------------------------------------------------
    def images(self) -> list[ImageRecord]:
        """Every image, in the order they were added."""
        return [image_record(row) for row in self.query("SELECT * FROM images ORDER BY id")]

    def add_images(
        self,
        prepared: Iterable[tuple[Path, str, tuple[int, int], int]],
        setting: tuple[str, Any] | None = None,
    ) -> None:
        """Record ``(path, sha256, (height, width), size_bytes)`` images in one transaction.

        A path already recorded is left as it is. ``setting``, a project setting (key,
        value) that comes with the images (such as their channels), is stored in the same
        transaction.
        """
        with self.write() as conn:
            if setting is not None:
                conn.execute(UPSERT_SETTING, (setting[0], to_json(setting[1])))
            for path, digest, shape, size in prepared:
                conn.execute(
                    "INSERT OR IGNORE INTO images (path, name, sha256, height, width, size_bytes,"
                    " added_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (str(path), path.name, digest, shape[0], shape[1], size, now()),
                )

    def move_image(self, image_id: int, path: Path) -> None:
        """Point an image at another file (its name follows the file's)."""
        with self.write() as conn:
            conn.execute(
                "UPDATE images SET path = ?, name = ? WHERE id = ?",
                (str(path), path.name, image_id),
            )

    # -- detection runs -----------------------------------------------------------------
    def current_runs(self) -> dict[int, dict[str, Any]]:
        """Image id -> the latest run covering it (id, settings, hash of the image then)."""
        rows = self.query(
            "SELECT ri.image_id, ri.run_id, ri.image_sha256, d.settings, d.settings_hash, "
            "d.source FROM run_images ri JOIN detection_runs d ON d.id = ri.run_id "
            f"JOIN ({CURRENT_RUNS}) cur ON cur.image_id = ri.image_id AND cur.run_id = ri.run_id"
        )
        return {row["image_id"]: row for row in rows}

    def detection_runs(self) -> list[dict[str, Any]]:
        """Every detection run (id, source, settings, status, times, counts)."""
        rows = self.query(
            "SELECT d.*, COUNT(ri.image_id) AS n_images, COALESCE(SUM(ri.n_candidates), 0) "
            "AS n_candidates FROM detection_runs d LEFT JOIN run_images ri ON ri.run_id = d.id "
            "GROUP BY d.id ORDER BY d.id"
        )
        for row in rows:
            row["settings"] = json.loads(row["settings"])
        return rows

    def mark_interrupted(self) -> None:
        """Mark the runs still ``running`` (if any) as ``interrupted``."""
        if self.conn.execute(UNFINISHED_RUNS).fetchone() is not None:
            with self.write() as conn:
                conn.execute(MARK_INTERRUPTED)

    def start_detection(self, settings: dict[str, Any]) -> int:
        """Record a new ``running`` detection run; returns its id.

        Earlier runs still ``running`` are marked ``interrupted`` in the same transaction.
        """
        with self.write() as conn:
            conn.execute(MARK_INTERRUPTED)
            return inserted_id(
                conn.execute(
                    "INSERT INTO detection_runs (source, settings, settings_hash, status, "
                    "started_at) VALUES ('detect', ?, ?, 'running', ?)",
                    (to_json(settings), settings_hash(settings), now()),
                )
            )

    def finish_detection(self, run_id: int) -> None:
        """Mark a detection run ``complete``."""
        with self.write() as conn:
            conn.execute(
                "UPDATE detection_runs SET status = 'complete', finished_at = ? WHERE id = ?",
                (now(), run_id),
            )

    def store_candidates(self, run_id: int, record: ImageRecord, found: Candidates) -> None:
        """Record one image's candidates of a run, in one transaction."""
        with self.write() as conn:
            _insert_candidates(conn, run_id, record.id, record.sha256, found)

    def import_candidates(
        self,
        candidates: Candidates,
        image_ids: np.ndarray,
        settings: dict[str, Any],
        *,
        progress: Progress | None = None,
    ) -> int:
        """Record an imported (``complete``) run of checked candidates in one transaction.

        ``image_ids`` gives each row's image. Returns the run id.
        """
        sha = {r.id: r.sha256 for r in self.images()}
        with self.write() as conn:
            run_id = inserted_id(
                conn.execute(
                    "INSERT INTO detection_runs (source, settings, settings_hash, status, "
                    "started_at, finished_at) VALUES ('import', ?, ?, 'complete', ?, ?)",
                    (to_json(settings), settings_hash(settings), now(), now()),
                )
            )
            unique = np.unique(image_ids)
            for done, image_id in enumerate(unique, start=1):
                part = candidates[image_ids == image_id]
                _insert_candidates(conn, run_id, int(image_id), sha[int(image_id)], part)
                if progress is not None:
                    progress(ProgressEvent("import-candidates", done, len(unique)))
        return run_id

    def candidates(self, image_id: int | None = None) -> Any:
        """The current candidates (of one image, or all) as a DataFrame.

        Columns ``image_id``, ``image`` (name), ``row``, ``col``, ``sigma``, ``score``.
        """
        import pandas as pd

        where, params = "", []
        if image_id is not None:
            where, params = " AND c.image_id = ?", [int(image_id)]
        rows = self.query(
            "SELECT c.image_id, i.name AS image, c.row, c.col, c.sigma, c.score FROM candidates c"
            f" JOIN ({CURRENT_RUNS}) cur ON cur.image_id = c.image_id AND cur.run_id = c.run_id"
            f" JOIN images i ON i.id = c.image_id WHERE 1{where} ORDER BY c.image_id, c.id",
            params,
        )
        frame = pd.DataFrame(rows, columns=["image_id", "image", "row", "col", "sigma", "score"])
        return frame.astype({"row": float, "col": float, "sigma": float, "score": float})

    def count_candidates(self) -> int:
        """How many current candidates there are, over every image."""
        return int(
            self.one(
                f"SELECT COUNT(*) FROM candidates c JOIN ({CURRENT_RUNS}) cur ON cur.image_id = "
                "c.image_id AND cur.run_id = c.run_id"
            )
        )


def _insert_candidates(
    conn: Any, run_id: int, image_id: int, sha256: str, found: Candidates
) -> None:
    conn.executemany(
        _INSERT_CANDIDATE,
        (
            (run_id, image_id, float(r), float(c), nan_none(s), nan_none(q))
            for r, c, s, q in zip(found.row, found.col, found.sigma, found.score, strict=True)
        ),
    )
    conn.execute(_INSERT_RUN_IMAGE, (run_id, image_id, sha256, len(found)))
