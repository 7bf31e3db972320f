"""Training: crops at the labels, a Sifter fitted and recorded; model versions, loading."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from blobsift.crops import crops_for
from blobsift.exceptions import ModelFileError, ProjectError
from blobsift.metrics import metrics_with_intervals
from blobsift.project._label_files import LabelFilesMixin
from blobsift.project._labels import label_set_hash
from blobsift.scoring import image_noise as noise_of_image
from blobsift.store import ModelRecord, plain
from blobsift.types import Progress

__all__ = ["TrainMixin"]


class TrainMixin(LabelFilesMixin):
    """Training data, training, and the model versions of a project."""

    def training_data(self) -> tuple[np.ndarray, np.ndarray, Any]:
        """Return (crops, labels, table) of the current 0/1 labels, crops cut at each label.

        Images are read after checking their content hash.
        """
        table = self.labels(include_unsure=False)
        (crops,) = self._cut_crops(table)
        return crops, table["label"].to_numpy(dtype=np.int64), table

    def _cut_crops(self, *tables: Any, image_noise: bool = False) -> list[np.ndarray]:
        """Crops at the rows of each table (``image_id``, ``row``, ``col``), in its order.

        The tables are cut together by :func:`blobsift.crops.crops_for`, so each image is
        read (hash-checked) once for all of them, and one at a time. With
        ``image_noise``, the crops of each table are followed by the noise level of each
        row's image (:func:`blobsift.scoring.image_noise`), table by table.
        """
        import pandas as pd

        columns = ["image_id", "row", "col"]
        whole = pd.concat([table[columns] for table in tables], ignore_index=True)
        ends = np.cumsum([len(table) for table in tables])[:-1]
        if not image_noise:
            return np.split(crops_for(whole, self.read_image), ends)
        crops, noise = crops_for(whole, self.read_image, image_noise=noise_of_image)
        return [*np.split(crops, ends), *np.split(noise, ends)]

    def train(
        self,
        *,
        phase: str = "auto",
        target_precision: float | None = None,
        target_recall: float | None = None,
        random_state: int | None = 0,
        pretrain: bool = True,
        intensity_context: bool = False,
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
        intensity_context : bool
            Fit with the noise level of each labelled crop's image, so that the model
            weighs a candidate's brightness relative to its image (see
            :mod:`blobsift.classify.context`); candidates from any detector get it from
            their image. Scoring (:mod:`blobsift.scoring`) passes the noise on.
        progress : callable, optional
            Given to the Sifter as its ``callback``: called with a
            :class:`~blobsift.types.ProgressEvent` as training goes, stage "pretrain" or
            "finetune" (Phase 1 steps) or "epoch" (Phase 2).
        **options
            Further :class:`~blobsift.Sifter` options (e.g. ``epochs``).

        Returns
        -------
        ModelRecord
            The recorded model version, with the fitted :class:`~blobsift.Sifter` as its
            ``sifter``.
        """
        from blobsift.classify.sifter import Sifter

        table = self.labels(include_unsure=False)
        sample = self._pretraining_sample() if pretrain else table.iloc[:0]
        crops, unlabelled, *noise = self._cut_crops(table, sample, image_noise=intensity_context)
        labels = table["label"].to_numpy(dtype=np.int64)
        label_hash = label_set_hash(table, self.images())
        sifter = Sifter(
            phase=phase,
            random_state=random_state,
            target_precision=target_precision,
            target_recall=target_recall,
            callback=progress,
            **{"siamese__pretrain_cache": str(self.models_dir / "pretrained"), **options},
        ).fit(
            crops,
            labels,
            unlabeled=unlabelled if len(unlabelled) >= 2 else None,
            history=self._phase_records(),
            noise=noise[0] if noise else None,
        )
        heldout = _heldout_scores(sifter)
        metrics = dict(plain(sifter.cv_metrics_))
        metrics["phase_scores"] = plain(sifter.phase_scores_)
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
            **({"intensity_context": True} if intensity_context else {}),
            **plain(options),
        }
        values = {
            "kind": getattr(getattr(sifter, "estimator_", None), "kind", sifter.kind),
            "phase": sifter.phase_,
            "phase_reason": getattr(sifter, "phase_reason_", ""),
            "label_set_hash": label_hash,
            "n_labels": len(labels),
            "n_positive": int(labels.sum()),
            "metrics": metrics,
            "threshold": float(sifter.threshold_),
            "settings": settings,
            "path": str(stem.relative_to(self.root)),
        }
        scored = None if heldout is None else (table, labels, heldout)
        model_id = self._store.add_model(values, scored)
        return dataclasses.replace(self.model(model_id), sifter=sifter)

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
        return self._store.models()

    def model(self, model_id: int | None = None) -> ModelRecord:
        """Return a model version by id, or the latest one.

        Raises
        ------
        ProjectError
            If the project has no (such) model.
        """
        return self._store.model(model_id)

    def heldout_scores(self, model_id: int | None = None) -> Any:
        """Return the held-out score of each label a model was trained on (a DataFrame)."""
        return self._store.heldout_scores(self.model(model_id).id)

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
            assert sifter.estimator_ is not None  # a loaded Sifter is fitted
            found = (sifter.threshold_, sifter.estimator_.kind, sifter.phase_)
            if recorded != found:
                raise ModelFileError(
                    f"{path.name}.json is not the model {model_id} this project recorded: it "
                    f"holds threshold, kind and phase {found}, the project {recorded}. Restore "
                    "the file as saved, or train a new model with `blobsift train`."
                )
        return sifter


def _heldout_scores(sifter: Any) -> np.ndarray | None:
    for owner in (sifter, getattr(sifter, "estimator_", None)):
        scores = getattr(owner, "oof_proba_", None)
        if scores is not None:
            return np.asarray(scores, dtype=np.float64)
    return None
