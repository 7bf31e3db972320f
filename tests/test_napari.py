"""The napari plugin: reader, writer and widget, in a real viewer.

Skipped, with the reason, only outside CI when napari, pytest-qt or Xvfb is missing;
under ``CI`` they must run. The viewer's canvas draws with OpenGL, and Qt's offscreen
platform draws no images with Mesa here, so the tests start a private Xvfb display for the
session and run Qt on it (``xcb``), never on the user's own display. Screenshots go to
``$BLOBSIFT_SCREENSHOTS`` (default: a pytest temporary folder).
"""

import importlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest


def _missing() -> list[str]:
    missing = []
    for module, package in (("napari", "'blobsift[napari]'"), ("pytestqt", "pytest-qt")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{package} (pip install {package})")
    if shutil.which("Xvfb") is None:
        missing.append("Xvfb (apt-get install xvfb)")
    return missing


if _missing():
    _REASON = "the napari tests need " + " and ".join(_missing())
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{_REASON}; under CI they must run, not skip.", pytrace=False)
    pytest.skip(_REASON, allow_module_level=True)

import npe2  # noqa: E402

from blobsift.exceptions import InvalidInputError  # noqa: E402
from blobsift.io import read_candidates  # noqa: E402
from blobsift.napari._layers import LABEL_NAMES, colours  # noqa: E402
from blobsift.project import Project  # noqa: E402
from blobsift.simulate import simulate_image, truth_labels, write_simulated_images  # noqa: E402
from blobsift.store import default_who  # noqa: E402
from project_helpers import label_candidates, objects_of, write_images  # noqa: E402

MANIFEST = Path(__file__).parents[1] / "src" / "blobsift" / "napari" / "napari.yaml"
#: Training that takes seconds: Phase 1 without pre-training, few steps.
FAST = {
    "phase": "siamese",
    "pretrain": False,
    "siamese__finetune_steps": 30,
    "siamese__n_folds": 2,
}
WIDGET_IMAGE = {"shape": (128, 128), "n_spots": 18, "decoys_per_spot": 1.5}

pytestmark = [
    # napari 0.9 on PyQt5 (PyQt6 6.12's wheels need a Qt 6.12 this index does not have)
    pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning"),
    pytest.mark.filterwarnings("ignore:napari support for the PyQt5 backend:FutureWarning"),
]


@pytest.fixture(scope="session", autouse=True)
def _display():
    """A private Xvfb display for Qt, set before Qt starts.

    Qt keeps its connection until the interpreter exits, so the server must outlive the
    session: a shell watcher stops it once this process is gone.
    """
    read, write = os.pipe()
    script = (
        f"( {shutil.which('Xvfb')} -displayfd {write} -screen 0 1600x1000x24 -nolisten tcp "
        f"& server=$!; while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
        "kill $server ) >/dev/null 2>&1 &"
    )
    subprocess.run(["sh", "-c", script], pass_fds=(write,), check=True)
    os.close(write)
    with os.fdopen(read) as pipe:
        display = f":{pipe.readline().strip()}"
    os.environ.update(DISPLAY=display, QT_QPA_PLATFORM="xcb")
    return display


@pytest.fixture(scope="module", autouse=True)
def _plugin():
    """The blobsift manifest, registered as its entry point registers it once installed."""
    manager = npe2.PluginManager.instance()
    if "blobsift" not in {m.name for m in manager.iter_manifests()}:
        manager.register(npe2.PluginManifest.from_file(MANIFEST))
    return manager.get_manifest("blobsift")


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("BLOBSIFT_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def scored_project(tmp_path_factory):
    """Two detected images, labels from the truth on the first, one model, one prediction."""
    root = tmp_path_factory.mktemp("napari-project")
    paths = write_images(root / "data", 2, seed=0)
    with Project.create(root / "project") as project:
        project.add_images(paths)
        project.detect(threshold=4.5)
        table = label_candidates(project.candidates("img0.tif"), objects_of(2, seed=0))
        project.add_labels(
            table["image"].tolist(),
            table["row"].tolist(),
            table["col"].tolist(),
            table["label"].tolist(),
            who="truth",
        )
        project.train(**FAST)
        predictions = project.predict()
    return root / "project", predictions


def _points(viewer, image):
    (layer,) = [
        x
        for x in viewer.layers
        if x.metadata.get("blobsift_image") == image and x.metadata.get("blobsift_layer")
    ]
    return layer


def test_manifest_matches_the_package_entry_point(_plugin):  # noqa: PT019
    import tomllib

    pyproject = tomllib.loads((MANIFEST.parents[3] / "pyproject.toml").read_text())
    entry = pyproject["project"]["entry-points"]["napari.manifest"]["blobsift"]
    assert entry == "blobsift.napari:napari.yaml"
    assert "napari/napari.yaml" in pyproject["tool"]["setuptools"]["package-data"]["blobsift"]
    assert "napari" not in pyproject["project"]["optional-dependencies"]["all"][0]
    for command in _plugin.contributions.commands:
        module, name = command.python_name.split(":")
        assert callable(getattr(importlib.import_module(module), name))


def test_importing_the_plugin_package_loads_no_qt():
    import subprocess
    import sys

    code = (
        "import sys, blobsift.napari, blobsift.napari._reader, blobsift.napari._writer; "
        "print(','.join(m for m in ('napari', 'qtpy', 'PyQt5', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_reader_shows_a_projects_images_labels_and_predictions(
    make_napari_viewer, scored_project, shots
):
    root, predictions = scored_project
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1000, 800)
    viewer.open(str(root), plugin="blobsift")
    viewer.screenshot(str(shots / "napari-reader.png"), canvas_only=False)
    with Project(root) as project:
        images = project.images()
        assert [x.name for x in viewer.layers if x._type_string == "image"] == [
            r.name for r in images
        ]
        for record in images:
            layer = _points(viewer, record.name)
            expected = project.candidates(record.id, with_labels=True)
            np.testing.assert_allclose(layer.data, expected[["row", "col"]].to_numpy())
            names = [LABEL_NAMES[v] for v in expected["label"]]
            assert layer.features["label"].tolist() == names
            np.testing.assert_allclose(layer.border_color, colours(names))
            np.testing.assert_allclose(layer.size, 4 * expected["sigma"].to_numpy())
            np.testing.assert_allclose(layer.features["score"], expected["score"])
            mine = predictions[predictions["image"] == record.name]
            np.testing.assert_allclose(layer.features["probability"], mine["probability"])
            assert (layer.features["decision"] == "signal").sum() == mine["decision"].sum()
    first = _points(viewer, images[0].name)
    assert {"signal", "noise"} <= set(first.features["label"])
    assert viewer.layers[images[0].name].visible
    assert not viewer.layers[images[1].name].visible


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_reader_opens_a_predictions_file_coloured_by_decision(
    make_napari_viewer, scored_project, suffix
):
    from blobsift.batch import write_predictions

    root, predictions = scored_project
    written = write_predictions(predictions, root / "predictions" / "napari-test.csv")
    (path,) = [p for p in written if p.suffix == suffix]
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="blobsift")
    for name, part in predictions.groupby("image"):
        layer = _points(viewer, name)
        assert layer.name == f"napari-test [{name}]"
        np.testing.assert_allclose(layer.data, part[["row", "col"]].to_numpy())
        np.testing.assert_allclose(layer.features["probability"], part["probability"])
        decided = np.where(part["decision"] == 1, "signal", "noise")
        np.testing.assert_allclose(layer.border_color, colours(decided))
        assert viewer.layers[name].data.shape == (96, 96)  # found through the project


def test_reader_leaves_other_files_to_other_readers(tmp_path):
    from blobsift.napari._reader import napari_get_reader

    other = tmp_path / "shapes.csv"
    other.write_text("index,axis-0,axis-1\n0,1,2\n")
    (tmp_path / "folder").mkdir()
    assert napari_get_reader(str(other)) is None
    assert napari_get_reader(str(tmp_path / "folder")) is None
    assert napari_get_reader([str(other), str(other)]) is None


def test_writer_round_trip_through_import_candidates(make_napari_viewer, scored_project, tmp_path):
    import napari

    root, _ = scored_project
    viewer = make_napari_viewer()
    viewer.open(str(root), plugin="blobsift")
    layer = _points(viewer, "img1.tif")
    layer.add([[5.5, 7.25]])  # a point added by hand: no sigma or score
    (written,) = napari.save_layers(str(tmp_path / "out.csv"), [layer], plugin="blobsift")
    back = read_candidates(written)
    np.testing.assert_array_equal(np.c_[back.row, back.col], layer.data)
    np.testing.assert_array_equal(back.sigma[:-1], layer.features["sigma"][:-1])
    np.testing.assert_array_equal(back.score[:-1], layer.features["score"][:-1])
    assert np.isnan(back.sigma[-1])
    assert np.isnan(back.score[-1])
    assert set(back.image) == {"img1.tif"}
    with Project(root) as project:
        before = project.candidates("img0.tif")
        project.import_candidates(back, source="napari-test")
        after = project.candidates("img1.tif")
        np.testing.assert_array_equal(after[["row", "col"]].to_numpy(), layer.data)
        assert project.candidates("img0.tif").equals(before)


def test_writer_refuses_points_that_are_not_2d(tmp_path):
    from blobsift.napari._writer import write_points

    with pytest.raises(InvalidInputError, match=r"2D points \(row, col\).*\(3, 3\)"):
        write_points(str(tmp_path / "x.csv"), np.zeros((3, 3)), {"name": "stack"})
    assert not (tmp_path / "x.csv").exists()


def _press(viewer, layer, key, qtbot):
    from qtpy.QtCore import Qt

    viewer.layers.selection.active = layer
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, getattr(Qt.Key, f"Key_{key.upper()}"))


def test_widget_detect_label_train_predict(make_napari_viewer, qtbot, tmp_path, shots):
    from blobsift.napari._widget import SiftWidget

    (path,) = write_simulated_images(tmp_path / "data", 1, seed=3, **WIDGET_IMAGE)
    objects = {path.name: simulate_image(seed=3, **WIDGET_IMAGE).objects}
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    viewer.open(str(path))
    widget = SiftWidget(viewer, train_options=FAST)
    viewer.window.add_dock_widget(widget, name="blobsift")

    widget.create_project(tmp_path / "project")
    widget.threshold_box.setValue(4.5)
    points = widget.detect()
    with Project(tmp_path / "project") as project:
        found = project.candidates()
    np.testing.assert_allclose(points.data, found[["row", "col"]].to_numpy())
    truth = truth_labels(found[["image", "row", "col"]], objects)
    signal, noise = np.flatnonzero(truth == 1), np.flatnonzero(truth == 0)
    assert len(signal) >= 4
    assert len(noise) >= 4

    points.selected_data = set(signal.tolist())
    _press(viewer, points, "s", qtbot)  # the key, through napari's key bindings
    points.selected_data = set(noise.tolist())
    widget.label_selected("noise")  # the button
    with Project(tmp_path / "project") as project:
        events = project.label_events()
        labels = project.candidates(with_labels=True)["label"].to_numpy()
    np.testing.assert_array_equal(labels, truth)
    assert set(events["who"]) == {default_who()}
    assert set(events["source"]) == {"napari"}
    assert (points.features["label"] == "signal").sum() == len(signal)

    widget.undo()  # the latest event: the last noise point goes back to unlabelled
    assert points.features["label"][noise[-1]] == "unlabelled"
    with Project(tmp_path / "project") as project:
        assert len(project.labels()) == len(truth) - 1
    points.selected_data = {int(noise[-1])}
    widget.label_selected("noise")

    seen = []
    widget.training_progress.connect(lambda done, total, stage: seen.append((done, total)))
    worker = widget.train()
    qtbot.waitUntil(lambda: widget.model is not None, timeout=120_000)
    qtbot.waitUntil(lambda: not worker.is_running, timeout=10_000)
    assert seen  # the bar moved while it trained
    assert max(total for _, total in seen) > 0
    assert widget.model.n_labels == len(truth)
    assert widget.progress_bar.value() == 1

    widget.predict()
    qtbot.waitUntil(lambda: f"kept [{path.name}]" in viewer.layers, timeout=60_000)
    kept = viewer.layers[f"kept [{path.name}]"]
    probability = widget.predictions["probability"].to_numpy()
    assert len(kept.data) == (probability >= widget.model.threshold).sum()
    with Project(tmp_path / "project") as project:
        assert len(project.prediction_runs()) == 1
        np.testing.assert_allclose(
            project.latest_predictions()["probability"], probability, rtol=1e-6
        )
    widget.probability_slider.setValue(0.0)
    assert len(kept.data) == len(probability)
    widget.probability_slider.setValue(widget.model.threshold)
    assert len(kept.data) == (probability >= widget.model.threshold).sum()
    np.testing.assert_allclose(points.features["probability"], probability, rtol=1e-6)

    viewer.layers.selection.active = kept
    qtbot.wait(200)
    shot = viewer.screenshot(str(shots / "napari-screenshot.png"), canvas_only=False)
    rgb = shot[..., :3].astype(int)
    green = (np.abs(rgb - np.array([51, 230, 77])) < 40).all(axis=-1)
    assert green.sum() > 50  # the kept rings are drawn
    assert shot.shape[1] > viewer.window._qt_viewer.canvas.native.width()  # with the widget


def test_widget_refuses_labelling_without_a_selection(make_napari_viewer, scored_project):
    from blobsift.napari._widget import SiftWidget

    root, _ = scored_project
    viewer = make_napari_viewer()
    viewer.open(str(root), plugin="blobsift")
    _, widget = viewer.window.add_plugin_dock_widget("blobsift", "sift candidates")
    assert isinstance(widget, SiftWidget)  # as the Plugins menu opens it
    assert widget.root == root  # adopted from the layers the reader opened
    with Project(root) as project:
        before = len(project.label_events())
    viewer.layers.selection.active = _points(viewer, "img0.tif")
    with pytest.raises(InvalidInputError, match="no points are selected"):
        widget.label_selected("signal")
    with pytest.raises(InvalidInputError, match="label must be one of"):
        widget.label_selected("maybe")
    with Project(root) as project:
        assert len(project.label_events()) == before
