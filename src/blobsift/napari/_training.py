"""Training and prediction for the napari widget, in thread workers.

:class:`ModelSteps` is the part of :class:`~blobsift.napari._widget.SiftWidget` that trains
a model on the project's labels and scores the chosen image with it: each runs in a napari
thread worker that opens its own connection to the project, so the viewer stays
responsive; training reports its :class:`~blobsift.types.ProgressEvent` events to the
progress bar through the widget's ``training_progress`` signal.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from blobsift.napari._layers import points_layer
from blobsift.project import Project
from blobsift.store import ModelRecord
from blobsift.types import ProgressEvent

if TYPE_CHECKING:
    from qtpy.QtWidgets import QComboBox, QProgressBar, QPushButton
    from superqt import QLabeledDoubleSlider

__all__ = ["ModelSteps"]


class ModelSteps:
    """Train and predict buttons of :class:`~blobsift.napari._widget.SiftWidget`.

    A mixin: the widget provides the controls (``phase_box``, ``train_button``,
    ``progress_bar``, ``predict_button``, ``probability_slider``, ``image_box``), the
    ``training_progress`` signal and the helpers it uses (``_project``, ``_chosen``,
    ``_image_record``, ``_put_layer``, ``_show_candidates``, ``_show_summary``, ``_say``).
    """

    model: ModelRecord | None
    predictions: Any
    worker: Any
    root: Path | None
    train_options: dict[str, Any]

    if TYPE_CHECKING:  # provided by the widget
        phase_box: QComboBox
        train_button: QPushButton
        progress_bar: QProgressBar
        predict_button: QPushButton
        probability_slider: QLabeledDoubleSlider
        image_box: QComboBox
        training_progress: Any  # the widget's Signal(int, int, str)

        def _project(self) -> Project: ...
        def _chosen(self, box: QComboBox, what: str) -> Any: ...
        def _image_record(self, project: Project, layer: Any) -> Any: ...
        def _put_layer(self, data: tuple[Any, dict[str, Any], str]) -> Any: ...
        def _show_candidates(self, project: Project, record: Any) -> Any: ...
        def _show_summary(self, project: Project) -> None: ...
        def _say(self, text: str, *, error: bool = False) -> None: ...

    def train(self) -> Any:
        """Train a model on the project's labels in a thread worker; returns the worker."""
        from napari.qt.threading import create_worker

        root = self._project_root()
        options = {"phase": self.phase_box.currentText(), **self.train_options}
        report = self.training_progress.emit

        def progress(event: ProgressEvent) -> None:
            report(int(event.done or 0), int(event.total or 0), event.stage)

        def work() -> ModelRecord:
            with Project(root) as project:
                return project.train(progress=progress, **options)

        self.train_button.setEnabled(False)
        self.progress_bar.setRange(0, 0)
        self._say("training…")
        self.worker = create_worker(work)
        self.worker.returned.connect(self._trained)
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(lambda: self.train_button.setEnabled(True))
        self.worker.start()
        return self.worker

    def _project_root(self) -> Path:
        with self._project() as project:
            return project.root

    def _show_progress(self, done: int, total: int, stage: str) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(min(done, max(total, 1)))
        self.progress_bar.setFormat(f"{stage} %v/%m")

    def _trained(self, record: ModelRecord) -> None:
        self.model = record
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1)
        self.progress_bar.setFormat("trained")
        with self._project() as project:
            self._show_summary(project)
        self.probability_slider.setValue(record.threshold)
        f1 = record.metrics.get("f1")
        score = "" if f1 is None else f", held-out F1 {f1:.2f}"
        self._say(
            f"model {record.id}: {record.phase} from {record.n_labels} labels "
            f"({record.n_positive} signal){score}; threshold {record.threshold:.2f}"
        )

    def _failed(self, error: BaseException) -> None:
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self._say(f"failed: {error}", error=True)

    def predict(self) -> Any:
        """Score the chosen image's candidates with the latest model in a thread worker.

        When it finishes, a Points layer ``kept [NAME]`` shows the candidates whose
        probability reaches the slider's value (the model's threshold at first).
        """
        from napari.qt.threading import create_worker

        layer = self._chosen(self.image_box, "an image layer")
        with self._project() as project:
            record = self._image_record(project, layer)
            project.model()  # a clear error now, not in the thread, if there is none
            root = project.root

        def work() -> tuple[ModelRecord, Any, Any]:
            with Project(root) as project:
                return project.model(), project.predict([record.path]), record

        self.predict_button.setEnabled(False)
        self._say("predicting…")
        self.worker = create_worker(work)
        self.worker.returned.connect(self._predicted)
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(lambda: self.predict_button.setEnabled(True))
        self.worker.start()
        return self.worker

    def _predicted(self, result: tuple[ModelRecord, Any, Any]) -> None:
        self.model, self.predictions, record = result
        self.predictions.attrs["image"] = record.name
        if self.probability_slider.value() == self.model.threshold:
            self._show_kept()
        else:
            self.probability_slider.setValue(self.model.threshold)  # redraws through _show_kept
        with self._project() as project:
            self._show_candidates(project, record)
            self._show_summary(project)

    def _show_kept(self, *_: Any) -> None:
        frame = self.predictions
        if frame is None:
            return
        cut = float(self.probability_slider.value())
        kept = frame[frame["probability"] >= cut]
        image = frame.attrs["image"]
        metadata = {
            "blobsift_image": image,
            "blobsift_layer": "kept",
            "blobsift_project": str(self.root),
        }
        points, kwargs, kind = points_layer(
            kept, name=f"kept [{image}]", colour_by="decision", metadata=metadata
        )
        self._put_layer((points, {**kwargs, "symbol": "square"}, kind))
        self._say(
            f"{image}: {len(kept)} of {len(frame)} candidates kept at probability ≥ {cut:.2f}"
        )
