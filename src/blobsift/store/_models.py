"""The tables of model versions (with held-out scores) and of prediction runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.exceptions import ProjectError
from blobsift.store._database import Database, inserted_id
from blobsift.store._records import ModelRecord, isna, nan_none, now, to_json

__all__ = ["ModelTables"]

_PREDICTION_COLUMNS = [
    "image_id",
    "image",
    "row",
    "col",
    "sigma",
    "score",
    "probability",
    "decision",
]


class ModelTables(Database):
    """Models (kind, phase, label-set hash, metrics, threshold, file) and predictions."""

    # -- models -------------------------------------------------------------------------
    def add_model(
        self,
        values: dict[str, Any],
        heldout: tuple[Any, np.ndarray, np.ndarray] | None = None,
    ) -> int:
        """Record a model and the held-out score of each of its labels, in one transaction.

        ``values`` holds the ``models`` columns (``metrics`` and ``settings`` as dicts,
        ``path`` relative to the project); ``heldout`` is (label table with ``image_id``,
        ``row``, ``col``; labels; scores). Returns the model id.
        """
        row = {**values, "created_at": now()}
        row["metrics"] = to_json(row["metrics"])
        row["settings"] = to_json(row["settings"])
        names = list(row)
        with self.write() as conn:
            model_id = inserted_id(
                conn.execute(
                    f"INSERT INTO models ({', '.join(names)}) VALUES "
                    f"({', '.join('?' * len(names))})",
                    [row[name] for name in names],
                )
            )
            if heldout is not None:
                table, labels, scores = heldout
                conn.executemany(
                    "INSERT INTO model_heldout (model_id, image_id, row, col, label, probability)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    zip(
                        [model_id] * len(table),
                        table["image_id"].astype(int).tolist(),
                        table["row"].tolist(),
                        table["col"].tolist(),
                        labels.astype(int).tolist(),
                        scores.astype(float).tolist(),
                        strict=True,
                    ),
                )
        return model_id

    def models(self) -> list[ModelRecord]:
        """Every model version, oldest first."""
        return [self._model_record(row) for row in self.query("SELECT * FROM models ORDER BY id")]

    def model(self, model_id: int | None = None) -> ModelRecord:
        """A model version by id, or the latest one.

        Raises
        ------
        ProjectError
            If the project has no (such) model.
        """
        if model_id is None:
            rows = self.query("SELECT * FROM models ORDER BY id DESC LIMIT 1")
            if not rows:
                raise ProjectError(
                    f"project {str(self.root)!r} has no model yet; train one with "
                    "`blobsift train` first."
                )
        else:
            rows = self.query("SELECT * FROM models WHERE id = ?", (int(model_id),))
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

    def heldout_scores(self, model_id: int) -> Any:
        """The held-out score of each label a model was trained on (a DataFrame)."""
        import pandas as pd

        rows = self.query(
            "SELECT h.image_id, i.name AS image, h.row, h.col, h.label, h.probability FROM "
            "model_heldout h JOIN images i ON i.id = h.image_id WHERE h.model_id = ? "
            "ORDER BY h.rowid",
            (int(model_id),),
        )
        return pd.DataFrame(
            rows, columns=["image_id", "image", "row", "col", "label", "probability"]
        )

    # -- predictions --------------------------------------------------------------------
    def add_predictions(
        self,
        frame: Any,
        model_id: int | None,
        model_path: Path,
        settings: dict[str, Any],
        n_images: int,
    ) -> int:
        """Record a prediction run and its rows in one transaction; returns the run id.

        ``frame`` has the prediction columns and ``image_id`` (None outside the project).
        """
        with self.write() as conn:
            run_id = inserted_id(
                conn.execute(
                    "INSERT INTO prediction_runs (model_id, model_path, created_at, settings, "
                    "n_images, n_candidates, n_signal) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        model_id,
                        str(model_path),
                        now(),
                        to_json(settings),
                        n_images,
                        len(frame),
                        int(frame["decision"].sum()) if len(frame) else 0,
                    ),
                )
            )
            conn.executemany(
                "INSERT INTO predictions (run_id, image_id, image, row, col, sigma, score, "
                "probability, decision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        run_id,
                        None if isna(i) else int(i),
                        str(im),
                        float(r),
                        float(c),
                        nan_none(s),
                        nan_none(q),
                        float(p),
                        int(d),
                    )
                    for i, im, r, c, s, q, p, d in zip(
                        *(frame[name] for name in _PREDICTION_COLUMNS), strict=True
                    )
                ),
            )
        return run_id

    def prediction_runs(self) -> list[dict[str, Any]]:
        """Every recorded prediction run (id, model, when, counts)."""
        return self.query("SELECT * FROM prediction_runs ORDER BY id")

    def predictions(
        self,
        run_id: int | None = None,
        *,
        image_id: int | None = None,
        latest_per_image: bool = False,
    ) -> Any:
        """Recorded prediction rows, in the order predicted.

        By default the rows of one run (``run_id``, default the latest); with
        ``latest_per_image`` each project image's rows from the latest run that scored it
        (with a ``run_id`` column), ordered by image. ``image_id`` keeps one image's rows.

        Raises
        ------
        ProjectError
            If the project has no (such) prediction run.
        """
        where, params = "", []
        if image_id is not None:
            where, params = " AND p.image_id = ?", [int(image_id)]
        if latest_per_image:
            rows = self.query(
                "SELECT p.image_id, i.name AS image, p.row, p.col, p.sigma, p.score, "
                "p.probability, p.decision, p.run_id FROM predictions p JOIN (SELECT image_id, "
                "MAX(run_id) AS run_id FROM predictions WHERE image_id IS NOT NULL GROUP BY "
                "image_id) cur ON cur.image_id = p.image_id AND cur.run_id = p.run_id JOIN "
                f"images i ON i.id = p.image_id WHERE 1{where} ORDER BY p.image_id, p.rowid",
                params,
            )
            return _prediction_frame(rows, [*_PREDICTION_COLUMNS, "run_id"])
        runs = [run["id"] for run in self.prediction_runs()]
        if not runs:
            raise ProjectError(
                f"project {str(self.root)!r} has no predictions yet; run `blobsift predict` first."
            )
        if run_id is None:
            run_id = runs[-1]
        elif run_id not in runs:
            raise ProjectError(f"project has no prediction run {run_id}; its runs are {runs}.")
        rows = self.query(
            f"SELECT {', '.join('p.' + c for c in _PREDICTION_COLUMNS)} FROM predictions p "
            f"WHERE p.run_id = ?{where} ORDER BY p.rowid",
            [int(run_id), *params],
        )
        return _prediction_frame(rows, _PREDICTION_COLUMNS)


def _prediction_frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    """Prediction rows as a DataFrame with float positions, scores and probabilities."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype(
        {"row": float, "col": float, "sigma": float, "score": float, "probability": float}
    )
