"""A project of science/reference/difference stacks end to end, and its edges.

Triplet images are simulated and written to disk; detection runs on the difference
channel, the labels come from the simulator's truth, and the project trains, predicts
(its own images and one from outside) and reports on (n, 3, 64, 64) crops. Also: the
command line's ``--detect-channel``, the web app's crops of three channels, the project
setting in the store, and the clear errors where channels do not match.
"""

from __future__ import annotations

import io
import json
import sqlite3

import numpy as np
import pytest
import tifffile
from PIL import Image

from blobsift import predict_images
from blobsift.crops import extract_crops
from blobsift.exceptions import InvalidInputError
from blobsift.io import read_stack
from blobsift.project import Project
from blobsift.simulate import truth_labels, write_simulated_images

SHAPE = (160, 160)
DIFFERENCE = 2
FAST = {
    "siamese__finetune_steps": 30,
    "siamese__n_folds": 2,
    "siamese__augment": False,
    "siamese__backend": "torch",
}


def _write_triplets(folder, n, seed=0, prefix="sim"):
    return write_simulated_images(
        folder, n, seed=seed, prefix=prefix, domain="difference", triplets=True, shape=SHAPE
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """init -> add -> detect on the difference -> label by truth -> train -> predict -> report."""
    root = tmp_path_factory.mktemp("triplets")
    truth = _write_triplets(root / "data", 3)
    outside = list(_write_triplets(root / "new", 1, seed=10, prefix="new"))
    project = Project.create(root / "project", detect_channel=DIFFERENCE)
    project.add_images(list(truth))
    detected = project.detect(threshold=5.0)
    candidates = project.candidates()
    labels = truth_labels(candidates, {path.name: table for path, table in truth.items()})
    project.add_labels(
        candidates["image_id"].tolist(),
        candidates["row"].tolist(),
        candidates["col"].tolist(),
        labels.tolist(),
        who="truth",
    )
    record = project.train(phase="siamese", pretrain=False, **FAST)
    predicted = project.predict([*truth, *outside], output=root / "out" / "predictions.csv")
    from blobsift.report import write_report

    report = write_report(project)
    yield {
        "root": root,
        "project": project,
        "truth": truth,
        "outside": outside,
        "detected": detected,
        "labels": labels,
        "record": record,
        "predicted": predicted,
        "report": report,
    }
    project.close()


def test_a_triplet_project_trains_predicts_and_reports(trained):
    project, record = trained["project"], trained["record"]
    assert project.detect_channel == DIFFERENCE
    assert project.n_channels == 3
    assert trained["detected"]["images"] == 3
    labels = trained["labels"]
    assert labels.sum() >= 5
    assert (labels == 0).sum() >= 5
    # the model saw every channel and was recorded with its held-out figures
    assert record.sifter.n_channels_ == 3
    assert record.n_labels == len(labels)
    assert 0 < record.threshold < 1
    # detection ran on the difference channel: the stored candidates are its candidates
    first = next(iter(trained["truth"]))
    from blobsift.detect import detect_blobs

    found = detect_blobs(read_stack(first)[DIFFERENCE], threshold=5.0)
    stored = project.candidates(first.name)
    np.testing.assert_allclose(stored[["row", "col"]], np.column_stack([found.row, found.col]))
    # prediction: the project's images on their candidates, the outside one detected anew
    predicted = trained["predicted"]
    assert predicted.attrs["failed"] == {}
    assert set(predicted["image"]) == {p.name for p in trained["truth"]} | {
        str(trained["outside"][0])
    }
    assert (trained["root"] / "out" / "predictions.csv").is_file()
    mine = predicted[predicted["image"] == first.name]
    crops = extract_crops(read_stack(first), mine[["row", "col"]].to_numpy())
    assert crops.shape[1:] == (3, 64, 64)
    np.testing.assert_allclose(
        mine["probability"], record.sifter.predict_proba(crops)[:, 1], atol=1e-6
    )
    # the report: galleries of three channels side by side, detections on the difference
    folder = trained["report"].parent
    for name in ("false_positives.png", "detections.png", "pr_curve.png"):
        assert (folder / name).is_file()
    assert "Detections" in trained["report"].read_text(encoding="utf-8")


def test_the_outside_image_scores_as_a_batch_of_stacks(trained):
    project, outside = trained["project"], str(trained["outside"][0])
    model = project.model().path
    batch = predict_images([outside], model, threshold=5.0, detect_channel=DIFFERENCE)
    mine = trained["predicted"]
    mine = mine[mine["image"] == outside].reset_index(drop=True)
    np.testing.assert_allclose(batch["probability"], mine["probability"], atol=1e-6)
    tiled = predict_images([outside], model, threshold=5.0, detect_channel=DIFFERENCE, tile_size=64)
    # the same crops (tests/test_scoring.py: exactly); the network batches them by tile
    np.testing.assert_allclose(tiled["probability"], batch["probability"], atol=1e-6)
    with pytest.raises(InvalidInputError, match="trained on crops of 3 channels"):
        predict_images([outside], model, threshold=5.0)


def test_a_model_of_other_channels_is_refused_by_the_project(trained, tmp_path):
    from blobsift import Sifter
    from blobsift.simulate import simulate_crops

    data = simulate_crops(60, positive_fraction=0.3, seed=1, domain="difference")
    single = Sifter(phase="siamese", random_state=0, **FAST).fit(data.crops, data.labels)
    single.save(tmp_path / "single")
    with pytest.raises(InvalidInputError, match=r"crops of 1 channel\(s\), but this project"):
        trained["project"].predict(model=tmp_path / "single", record=False)


def test_images_of_other_channels_are_refused(trained, tmp_path):
    project = trained["project"]
    tifffile.imwrite(tmp_path / "pair.tif", np.zeros((2, 80, 80), np.float32))
    with pytest.raises(InvalidInputError, match="has 2 channel"):
        project.add_images([tmp_path / "pair.tif"])
    with Project.create(tmp_path / "p", detect_channel=3) as other:
        with pytest.raises(InvalidInputError, match="detect_channel=3 is out of range"):
            other.add_images(list(trained["truth"]))
        assert other.images() == []
    with pytest.raises(InvalidInputError, match="detect_channel"):
        Project.create(tmp_path / "q", detect_channel=-1)


def test_the_web_app_shows_the_three_channels_side_by_side(trained):
    from fastapi.testclient import TestClient

    from blobsift.app import create_app

    with TestClient(create_app(trained["project"].root), base_url="http://127.0.0.1") as client:
        assert client.get("/api/status").json()["channels"] == 3
        cid = "1-0"  # every candidate is labelled: none is queued, all can be shown
        plain = Image.open(io.BytesIO(client.get(f"/api/crop/{cid}.png").content))
        marked = Image.open(io.BytesIO(client.get(f"/api/crop/{cid}.png?mark=true").content))
        context = Image.open(io.BytesIO(client.get(f"/api/context/{cid}.png").content))
    assert plain.size == (3 * 64, 64)  # three crops wide
    assert marked.size == (3 * 64, 64)
    assert context.size == (2 * SHAPE[1], 2 * SHAPE[0])  # the detection channel, 2x
    grey = np.asarray(plain).astype(int)
    rgb = np.asarray(marked.convert("RGB")).astype(int)
    ticked = (rgb != grey[..., None]).any(axis=2)
    # each channel's centre is marked, at the same place in each
    for k in range(3):
        assert ticked[:, 64 * k : 64 * (k + 1)].any()
        np.testing.assert_array_equal(ticked[:, 64 * k : 64 * (k + 1)], ticked[:, :64])
    # each channel is stretched on its own: the panels differ
    assert not np.array_equal(grey[:, :64], grey[:, 128:])


def test_the_command_line_detects_on_the_chosen_channel(tmp_path, capsys):
    from blobsift.cli import main

    truth = _write_triplets(tmp_path / "data", 1)
    project = tmp_path / "run"
    pattern = str(tmp_path / "data" / "*.tif")
    assert main(["init", str(project), "--images", pattern, "--detect-channel", "2"]) == 0
    assert "stacks of 3 channels, detected on channel 2" in capsys.readouterr().out
    assert main(["detect", str(project), "--threshold", "5", "--quiet", "--json"]) == 0
    on_difference = json.loads(capsys.readouterr().out)["candidates"]
    assert main(["detect", str(project), "--detect-channel", "0", "--quiet", "--json"]) == 0
    on_science = json.loads(capsys.readouterr().out)
    assert on_science["skipped"] == 0  # another channel is another detection
    assert main(["info", str(project), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["detect_channel"] == 0
    assert info["channels"] == 3
    stack = read_stack(next(iter(truth)))
    from blobsift.detect import detect_blobs

    assert on_difference == len(detect_blobs(stack[2], threshold=5.0))
    assert on_science["candidates"] == len(detect_blobs(stack[0]))
    with pytest.raises(SystemExit) as refused:
        main(["init", str(tmp_path / "bad"), "--detect-channel", "-1"])
    assert refused.value.code == 2
    assert "--detect-channel: expected a whole number >= 0" in capsys.readouterr().err


def test_an_old_project_reads_as_2d_images_and_keeps_its_labels(tmp_path, monkeypatch):
    from blobsift import store
    from project_helpers import write_images

    paths = write_images(tmp_path / "data", 1)
    with monkeypatch.context() as old:
        old.setattr(store, "MIGRATIONS", {k: store.MIGRATIONS[k] for k in (1, 2, 3)})
        old.setattr(store, "SCHEMA_VERSION", 3)
        with Project.create(tmp_path / "p") as project:  # as schema 3 wrote them
            size = paths[0].stat().st_size
            project.store.add_images([(paths[0], store.content_hash(paths[0]), (96, 96), size)])
            project.add_labels([paths[0].name], [40.0], [41.0], [1], who="old")
            assert project.schema_version == 3
    with Project(tmp_path / "p") as project:
        assert project.schema_version == store.SCHEMA_VERSION == 4
        assert project.detect_channel is None
        assert project.n_channels == 1
        assert project.labels()[["row", "col", "label"]].values.tolist() == [[40.0, 41.0, 1]]
        assert project.read_image(paths[0].name).ndim == 2
    tables = sqlite3.connect(tmp_path / "p" / "project.db").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    )
    assert "project_settings" in {name for (name,) in tables}


def test_a_gallery_of_three_channel_crops_is_three_crops_wide(tmp_path):
    from blobsift.report._figures import plot_crop_gallery

    rng = np.random.default_rng(0)
    crops = rng.normal(size=(2, 3, 64, 64)).astype(np.float32)
    with Image.open(plot_crop_gallery(crops, ["a", "b"], tmp_path / "wide.png")) as png:
        wide = png.size
    with Image.open(plot_crop_gallery(crops[:, 0], ["a", "b"], tmp_path / "one.png")) as png:
        single = png.size
    assert wide[1] == single[1]
    assert wide[0] > 2.2 * single[0]


def test_predictions_on_an_outside_stack_export_with_its_plane_size(trained, tmp_path):
    from blobsift.export import export_project

    written = export_project(trained["project"], tmp_path, format="trackmate")
    outside = trained["outside"][0]
    mine = [path for path in written if path.stem == outside.stem]
    assert len(mine) == 1, written
    settings = mine[0].read_text(encoding="utf-8")
    height, width = read_stack(outside).shape[1:]
    # the image's plane, not the stack's (C, H, W) nor a refusal for its channels
    assert f'width="{width}"' in settings
    assert f'height="{height}"' in settings
