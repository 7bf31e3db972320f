"""Prediction over project images (and images outside it), recorded and read back."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from blobsift._atomic import atomic_write
from blobsift.detect import DetectSettings
from blobsift.exceptions import InvalidInputError
from blobsift.project._train import TrainMixin
from blobsift.scoring import prediction_table, score_candidates
from blobsift.store import ImageRecord
from blobsift.types import Progress, ProgressEvent

__all__ = ["PredictMixin"]


class PredictMixin(TrainMixin):
    """Scoring candidates with a model, and the recorded predictions."""

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
            settings of the project, overridden by ``detect_settings``, and in a project
            of stacks on its :attr:`detect_channel`) and scored without being added.
        model : int or path-like, optional
            A model id or file; default the latest model.
        progress : callable, optional
            Called with a ``ProgressEvent("predict", done, total, item=image,
            details={"status": ...})`` per image.
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
        InvalidInputError
            If the model was trained on crops of another number of channels than the
            project's images have (checked first).
        """
        import pandas as pd

        from blobsift.batch import (
            COLUMNS,
            PredictionSink,
            check_run,
            collect_warnings,
            journal_record,
            parquet_beside,
            run_images,
        )

        model_id, model_path = self._resolve_model(model)
        sifter = self.load_model(model)
        self._check_model_channels(sifter)
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
        current = self._store.current_runs()
        for image_record in inside:
            if image_record.id not in current:
                raise InvalidInputError(
                    f"image {image_record.name!r} has no candidates yet; run `blobsift detect` "
                    "or `blobsift import-candidates` first."
                )
        settings: dict[str, Any] = {}
        plan = None
        if outside:
            detect_runs = [r for r in self.detection_runs() if r["source"] == "detect"]
            latest = detect_runs[-1]["settings"] if detect_runs else DetectSettings().as_dict()
            settings = {**latest, **detect_settings}
            if self.detect_channel is not None:
                settings["detect_channel"] = self.detect_channel
            _, plan = check_run(sifter, scheduler, settings)
        parquet = None if output is None else parquet_beside(Path(output))
        sink = None if output is None else PredictionSink(Path(output), resume=False)
        total = len(inside) + len(outside)
        records: list[dict[str, Any]] = []
        parts: list[Any] = []  # the project images' tables, in order
        external: dict[str, Any] = {}  # the others' tables by path (they finish in any order)

        def report(entry: dict[str, Any], frame: Any) -> None:
            records.append(entry)
            if sink is not None:
                sink.add(entry, frame)
            if progress is not None:
                details = {"status": entry["status"]}
                progress(ProgressEvent("predict", len(records), total, entry["image"], details))

        def report_external(entry: dict[str, Any], frame: Any) -> None:
            report(entry, frame)
            if frame is not None:
                external[entry["image"]] = frame.assign(image_id=None)

        try:
            for image_record in inside:
                start = time.perf_counter()
                with collect_warnings() as caught:
                    found = self.candidates(image_record.id)
                    pixels = self.read_image(image_record)
                    probability = score_candidates(pixels, found, sifter)
                part = prediction_table(image_record.name, found, probability, threshold)
                part.insert(1, "image_id", image_record.id)
                seconds = time.perf_counter() - start
                report(journal_record(image_record.name, part, None, seconds, caught), part)
                parts.append(part)
            if plan is not None:
                run_images(
                    outside, sifter, plan, report_external, scheduler=scheduler,
                    progress=progress, total=total, done=len(inside),
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
            written.append(sink.output)
            if parquet is not None:
                table = frame[list(COLUMNS)]
                write = partial(table.to_parquet, index=False)
                written.append(atomic_write(parquet, write, what="the prediction Parquet file"))
        if record:
            self._store.add_predictions(frame, model_id, model_path, settings, total)
        frame = frame[list(COLUMNS)]
        frame.attrs["failed"] = {r["image"]: r["error"] for r in records if r["status"] == "failed"}
        frame.attrs["warnings"] = {r["image"]: r["warnings"] for r in records if r["warnings"]}
        frame.attrs["files"] = written
        return frame

    def _check_model_channels(self, sifter: Any) -> None:
        """Refuse a model of crops of other channels than this project's images give."""
        trained = int(getattr(sifter, "n_channels_", 1))
        channels = self.n_channels
        if channels is not None and trained != channels:
            stacks = (
                f"stacks of {channels} channels (detected on channel {self.detect_channel})"
                if self.detect_channel is not None
                else "2D images (one channel)"
            )
            raise InvalidInputError(
                f"the model was trained on crops of {trained} channel(s), but this project's "
                f"images are {stacks}. Use a model trained on this project's images (`blobsift "
                "train`), or a project with the channels the model was trained on."
            )

    def prediction_runs(self) -> list[dict[str, Any]]:
        """Return every recorded prediction run (id, model, when, counts)."""
        return self._store.prediction_runs()

    def predictions(
        self, run_id: int | None = None, *, image: Any = None, latest_per_image: bool = False
    ) -> Any:
        """Return recorded predictions as a DataFrame: one run's, or each image's latest.

        Parameters
        ----------
        run_id : int, optional
            The prediction run (default the latest); ignored with ``latest_per_image``.
        image : optional
            Keep one project image's rows (id, path or name).
        latest_per_image : bool
            Each project image's rows from the latest run that scored it, whichever run
            that was, ordered by image (with a ``run_id`` column).

        Returns
        -------
        pandas.DataFrame
            Columns ``image_id`` (None for an image outside the project), ``image`` (the
            name of a project image, the path of an outside one), ``row``, ``col``,
            ``sigma``, ``score``, ``probability``, ``decision`` [, ``run_id``], in the
            order predicted.

        Raises
        ------
        ProjectError
            If the project has no (such) prediction run.
        """
        image_id = None if image is None else self.image(image).id
        return self._store.predictions(run_id, image_id=image_id, latest_per_image=latest_per_image)

    def latest_predictions(self, image: Any = None) -> Any:
        """Each project image's predictions from the latest run that scored it.

        The same as ``predictions(image=image, latest_per_image=True)``.
        """
        return self.predictions(image=image, latest_per_image=True)
