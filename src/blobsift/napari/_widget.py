"""The napari widget: detect or import candidates, label them, train and predict.

It works on a project folder (opened, or created for the chosen image) through
:class:`blobsift.Project`, exactly as the CLI and the web app do: label events are written
with the login name as ``who`` (see :func:`blobsift.store.default_who`) and ``source``
``"napari"``; training and prediction run in napari thread workers that open their own
connection, so the viewer stays responsive while the progress bar moves.

Keys on a candidates layer (its selected points): ``s`` signal, ``n`` noise, ``u``
unsure. ``s`` replaces the Points layer's select-mode key there (``3`` still selects).
Training and prediction are :class:`~blobsift.napari._training.ModelSteps`.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from blobsift.detect import DetectSettings
from blobsift.exceptions import BlobsiftError, InvalidInputError, ProjectError
from blobsift.napari._layers import colours, points_candidates, project_points
from blobsift.napari._training import ModelSteps
from blobsift.project import Project
from blobsift.store import ModelRecord, default_who
from blobsift.types import Label

if TYPE_CHECKING:
    import napari

__all__ = ["SiftWidget"]

#: Keys that label the selected points of a candidates layer: each label's first letter.
LABEL_KEYS = {label.word[0]: label.word for label in Label.given()}
PHASES = ("auto", "siamese", "cnn")


class SiftWidget(ModelSteps, QWidget):
    """Dock widget: candidates → labels → model → kept candidates, in one project.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (napari passes it).
    train_options : dict, optional
        Keyword arguments of :meth:`blobsift.Project.train` (e.g. ``phase``,
        ``pretrain``, ``epochs``); the phase chosen in the widget applies unless this
        names one.
    who : str, optional
        Recorded as the author of every label; default the login name.
    """

    #: (done, total, stage) from the training thread.
    training_progress = Signal(int, int, str)

    def __init__(
        self,
        napari_viewer: napari.Viewer,
        *,
        train_options: dict[str, Any] | None = None,
        who: str | None = None,
    ) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.train_options = dict(train_options or {})
        self.who = who or default_who()
        self.root: Path | None = None
        self.model: ModelRecord | None = None
        self.predictions: Any = None
        self.worker: Any = None
        self._build()
        self.training_progress.connect(self._show_progress)
        layers = self.viewer.layers
        layers.events.inserted.connect(self._layers_changed)
        layers.events.removed.connect(self._layers_changed)
        layers.events.inserted.connect(self._bind_label_keys)
        for layer in layers:
            self._bind_label_keys(layer)
        self._layers_changed()
        self._adopt_project()

    # -- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        self.project_label = QLabel("no project")
        self.project_label.setWordWrap(True)
        open_button = QPushButton("Open project…")
        open_button.clicked.connect(self._ask_open)
        new_button = QPushButton("New project for image…")
        new_button.clicked.connect(self._ask_create)
        project_row = QHBoxLayout()
        project_row.addWidget(open_button)
        project_row.addWidget(new_button)

        self.image_box = QComboBox()
        self.points_box = QComboBox()
        self.threshold_box = QDoubleSpinBox()
        self.threshold_box.setRange(0.5, 100.0)
        self.threshold_box.setSingleStep(0.5)
        self.threshold_box.setValue(DetectSettings().threshold)
        self.detect_button = QPushButton("Detect candidates")
        self.detect_button.clicked.connect(self._safely(self.detect))
        self.use_points_button = QPushButton("Use as candidates")
        self.use_points_button.clicked.connect(self._safely(self.use_points))
        candidates = QFormLayout()
        candidates.addRow("image", self.image_box)
        candidates.addRow("detector threshold", self.threshold_box)
        candidates.addRow(self.detect_button)
        candidates.addRow("or points", self.points_box)
        candidates.addRow(self.use_points_button)

        label_row = QHBoxLayout()
        for key, name in LABEL_KEYS.items():
            button = QPushButton(f"{name} ({key})")
            button.clicked.connect(self._safely(lambda _=False, n=name: self.label_selected(n)))
            label_row.addWidget(button)
        undo_button = QPushButton("undo")
        undo_button.clicked.connect(self._safely(self.undo))
        label_row.addWidget(undo_button)

        self.phase_box = QComboBox()
        self.phase_box.addItems(PHASES)
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self._safely(self.train))
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.predict_button = QPushButton("Predict")
        self.predict_button.clicked.connect(self._safely(self.predict))
        self.probability_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.probability_slider.setRange(0.0, 1.0)
        self.probability_slider.setValue(0.5)
        self.probability_slider.valueChanged.connect(self._show_kept)
        model = QFormLayout()
        model.addRow("phase", self.phase_box)
        model.addRow(self.train_button)
        model.addRow(self.progress_bar)
        model.addRow(self.predict_button)
        model.addRow("keep probability ≥", self.probability_slider)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        for title, part in (
            ("Project", project_row),
            ("Candidates", candidates),
            ("Label the selected points", label_row),
            ("Model", model),
        ):
            box = QGroupBox(title)
            if title == "Project":
                inner = QVBoxLayout(box)
                inner.addWidget(self.project_label)
                inner.addLayout(part)
            else:
                box.setLayout(part)
            layout.addWidget(box)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def _safely(self, action: Any) -> Any:
        """A button handler that shows a blobsift error in the widget instead of raising."""

        def run(*_: Any) -> None:
            try:
                action()
            except BlobsiftError as error:
                self._say(str(error), error=True)

        return run

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        if error:
            from napari.utils.notifications import show_error

            show_error(text)

    # -- layers -------------------------------------------------------------------------
    def _layers_changed(self, *_: Any) -> None:
        from napari.layers import Image, Points

        for box, kind in ((self.image_box, Image), (self.points_box, Points)):
            chosen = box.currentText()
            names = [layer.name for layer in self.viewer.layers if isinstance(layer, kind)]
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            if chosen in names:
                box.setCurrentText(chosen)
            box.blockSignals(False)

    def _bind_label_keys(self, event_or_layer: Any) -> None:
        from napari.layers import Points

        layer = getattr(event_or_layer, "value", event_or_layer)
        if not (isinstance(layer, Points) and "blobsift_layer" in layer.metadata):
            return
        me = weakref.ref(self)
        for key, name in LABEL_KEYS.items():

            def press(pressed: Any, name: str = name) -> None:
                widget = me()
                if widget is not None:
                    widget._safely(lambda: widget.label_selected(name, pressed))()

            layer.bind_key(key, press, overwrite=True)

    def _chosen(self, box: QComboBox, what: str) -> Any:
        name = box.currentText()
        if not name or name not in self.viewer.layers:
            raise InvalidInputError(f"choose {what} first (the viewer has none, or it was closed).")
        return self.viewer.layers[name]

    def _put_layer(self, data: tuple[Any, dict[str, Any], str]) -> Any:
        """Add a Points layer, or update the one of the same name in place."""
        from napari.layers import Layer, Points

        points, kwargs, kind = data
        existing = next((x for x in self.viewer.layers if x.name == kwargs["name"]), None)
        if not isinstance(existing, Points):
            if existing is not None:
                self.viewer.layers.remove(existing)
            return self.viewer.add_layer(Layer.create(points, kwargs, kind))
        existing.data = points
        existing.features = kwargs["features"]
        existing.size = kwargs["size"]
        existing.border_color = kwargs["border_color"]
        existing.metadata.update(kwargs["metadata"])
        existing.selected_data = set()
        existing.refresh()
        return existing

    def _candidate_layer(self, name: str) -> Any:
        for layer in self.viewer.layers:
            meta = layer.metadata
            if meta.get("blobsift_image") == name and meta.get("blobsift_layer") == "candidates":
                return layer
        return None

    # -- project ------------------------------------------------------------------------
    def _adopt_project(self) -> None:
        """Use the project of layers the reader opened, if there is one."""
        for layer in self.viewer.layers:
            root = layer.metadata.get("blobsift_project")
            if root:
                self.open_project(root)
                return

    def _project(self) -> Project:
        if self.root is None:
            raise ProjectError(
                "no project is open; use 'Open project…' for a project folder or 'New "
                "project for image…' to make one."
            )
        return Project(self.root)

    def _ask_open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a blobsift project folder")
        if folder:
            self._safely(lambda: self.open_project(folder))()

    def _ask_create(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the new project")
        if folder:
            self._safely(lambda: self.create_project(folder))()

    def open_project(self, folder: str | Path) -> None:
        """Work in an existing project folder."""
        with Project(folder) as project:
            self.root = project.root
            models = project.models()
            self._show_summary(project)
        self.model = models[-1] if models else None
        if self.model is not None:
            self.probability_slider.setValue(self.model.threshold)

    def _show_summary(self, project: Project) -> None:
        info = project.info()
        counts = info["labels"]
        self.project_label.setText(
            f"{project.root}\n{info['images']} image(s), {info['candidates']} candidates, "
            f"labels: {counts['signal']} signal, {counts['noise']} noise, "
            f"{counts['unsure']} unsure; {info['models']} models"
        )

    def create_project(self, folder: str | Path) -> None:
        """Make a new project in ``folder`` holding the chosen image, and work in it."""
        layer = self._chosen(self.image_box, "an image layer")
        with Project.create(folder) as project:
            self._image_record(project, layer)
        self.open_project(folder)

    def _image_record(self, project: Project, layer: Any) -> Any:
        """The project's record of an image layer's file, adding the image if needed.

        A layer with no file behind it is saved as a TIFF under ``PROJECT/images`` first.
        """
        data = np.asarray(layer.data)
        if data.ndim != 2 or getattr(layer, "rgb", False):
            raise InvalidInputError(
                f"blobsift detects and labels on 2D grey images; layer {layer.name!r} has "
                f"shape {data.shape}{' (RGB)' if getattr(layer, 'rgb', False) else ''}. "
                "Choose a 2D image layer (split the channels or planes first)."
            )
        source = layer.metadata.get("blobsift_image_path") or layer.source.path
        if source is None:
            source = self._save_layer(project, layer.name, data)
            layer.metadata["blobsift_image_path"] = str(source)
        path = Path(source).resolve()
        known = {record.path: record for record in project.images()}
        record = known.get(path) or project.add_images([path])[0]
        layer.metadata["blobsift_image"] = record.name
        return record

    @staticmethod
    def _save_layer(project: Project, name: str, data: np.ndarray) -> Path:
        import tifffile

        folder = project.root / "images"
        folder.mkdir(exist_ok=True)
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "image"
        path, k = folder / f"{stem}.tif", 1
        while path.exists():  # never overwrite: another image's labels describe it
            k += 1
            path = folder / f"{stem}-{k}.tif"
        tifffile.imwrite(path, data.astype(np.float32))
        return path

    # -- candidates ---------------------------------------------------------------------
    def _show_candidates(self, project: Project, record: Any) -> Any:
        return self._put_layer(project_points(project, record))

    def detect(self) -> Any:
        """Detect candidates in the chosen image (a recorded detection run); show them."""
        layer = self._chosen(self.image_box, "an image layer")
        with self._project() as project:
            record = self._image_record(project, layer)
            summary = project.detect([record.id], threshold=self.threshold_box.value())
            points = self._show_candidates(project, record)
            self._show_summary(project)
        done = "detected" if summary["images"] else "already detected with these settings:"
        self._say(f"{record.name}: {done} {len(points.data)} candidates")
        return points

    def use_points(self) -> Any:
        """Import the chosen Points layer as the chosen image's candidates; show them."""
        image = self._chosen(self.image_box, "an image layer")
        chosen = self._chosen(self.points_box, "a Points layer")
        found = points_candidates(chosen.data, chosen.features, layer=chosen.name, image=None)
        with self._project() as project:
            record = self._image_record(project, image)
            found = found.with_image(str(record.id))
            project.import_candidates(found, source=f"napari:{chosen.name}")
            points = self._show_candidates(project, record)
            self._show_summary(project)
        self._say(f"{record.name}: {len(points.data)} candidates from {chosen.name!r}")
        return points

    # -- labels -------------------------------------------------------------------------
    def _labelling_layer(self, layer: Any = None) -> Any:
        from napari.layers import Points

        if layer is None:
            active = self.viewer.layers.selection.active
            if isinstance(active, Points) and "blobsift_layer" in active.metadata:
                layer = active
            elif self.image_box.currentText() in self.viewer.layers:
                image = self.viewer.layers[self.image_box.currentText()]
                layer = self._candidate_layer(image.metadata.get("blobsift_image", ""))
        if layer is None:
            raise InvalidInputError(
                "select points on a candidates layer first (detect candidates, or open a "
                "project, to get one)."
            )
        return layer

    def label_selected(self, name: str, layer: Any = None) -> list[int]:
        """Label the selected points of a candidates layer; returns the new event ids.

        Parameters
        ----------
        name : {"signal", "noise", "unsure"}
        layer : napari.layers.Points, optional
            Default: the active layer if it is a candidates layer, else the candidates
            layer of the chosen image.
        """
        if name not in Label.words():
            raise InvalidInputError(f"label must be one of {sorted(Label.words())}; got {name!r}.")
        layer = self._labelling_layer(layer)
        chosen = sorted(layer.selected_data)
        if not chosen:
            raise InvalidInputError(
                f"no points are selected on {layer.name!r}; select some (select mode, key 3) "
                "and press s, n or u."
            )
        image = layer.metadata["blobsift_image"]
        positions = np.asarray(layer.data)[chosen]
        with self._project() as project:
            events = project.add_labels(
                [image] * len(chosen),
                positions[:, 0].tolist(),
                positions[:, 1].tolist(),
                [int(Label.from_word(name))] * len(chosen),
                who=self.who,
                source="napari",
            )
            self._show_summary(project)
        self._recolour(layer, chosen, name)
        self._say(f"{len(chosen)} point(s) of {image} labelled {name}")
        return events

    @staticmethod
    def _recolour(layer: Any, chosen: list[int], name: str) -> None:
        features = layer.features
        features.loc[features.index[chosen], "label"] = name
        layer.features = features
        if layer.metadata.get("blobsift_colour_by") == "label":
            border = np.asarray(layer.border_color).copy()
            border[chosen] = colours([name] * len(chosen))
            layer.border_color = border
        layer.refresh()

    def undo(self) -> None:
        """Undo this labeller's latest label event and redraw its image's candidates."""
        with self._project() as project:
            event = project.undo(who=self.who)
            if event is None:
                self._say("nothing to undo")
                return
            row = project.label_events().set_index("id").loc[event]
            self._show_candidates(project, project.image(int(row["image_id"])))
            self._show_summary(project)
        self._say(f"undid a label of {row['image']}")
