import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tifffile

from blobsift.cli import main
from blobsift.detect import detect_blobs
from blobsift.io import read_image
from blobsift.metrics import best_threshold
from blobsift.project import Project
from project_helpers import label_candidates, objects_of, trained_by_cli, write_images

COMMANDS = ["init", "add-images", "detect", "import-candidates", "import-labels",
            "export-labels", "train", "predict", "report", "info", "relocate"]  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n"


def run_json(capsys, *argv):
    capsys.readouterr()
    assert main([*argv, "--json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """init -> detect -> import-labels -> train, once, through the command line."""
    root = tmp_path_factory.mktemp("cli")
    made = trained_by_cli(root, name="run1", n_new=1, new_seed=20, import_options=["--who", "sim"],
                          train_options=["--epochs", "3", "--quiet"])  # fmt: skip
    made.new = made.new[0]
    return made


@pytest.fixture
def small(tmp_path):
    """A fresh project with two images (no labels, no model)."""
    images = write_images(tmp_path / "data", 2, seed=3)
    assert main(["init", str(tmp_path / "p"), "--quiet"]) == 0
    assert main(["add-images", str(tmp_path / "p"), *map(str, images), "--quiet"]) == 0
    return SimpleNamespace(project=tmp_path / "p", images=images, root=tmp_path)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as excinfo:
        main([command, "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"blobsift {command} " in out
    assert "--json" in out


def test_info_summarises_the_project(pipeline, capsys):
    info = run_json(capsys, "info", str(pipeline.project))
    assert info["images"] == 3
    assert info["labels"] == {
        "signal": int((pipeline.table["label"] == 1).sum()),
        "noise": int((pipeline.table["label"] == 0).sum()),
        "unsure": 0,
    }
    assert info["label_events"] == len(pipeline.table)
    assert info["candidates"] == len(pipeline.table)
    assert info["models"] >= 1
    assert info["latest_model"]["labels_changed_since"] is False
    capsys.readouterr()
    assert main(["info", str(pipeline.project)]) == 0
    assert "labels     " in capsys.readouterr().out


def test_train_records_the_model_its_metrics_and_phase(pipeline):
    with Project(pipeline.project) as project:
        record = project.models()[0]
        assert record.n_labels == len(pipeline.table)
        assert record.n_positive == int(pipeline.table["label"].sum())
        assert record.label_set_hash == project.label_set_hash()
        assert record.phase in ("siamese", "cnn")
        assert record.phase_reason
        assert record.settings["epochs"] == 3
        assert 0.0 < record.threshold < 1.0
        for name in ("f1", "precision", "recall"):
            low, high = record.metrics[f"{name}_ci"]
            assert 0.0 <= low <= record.metrics[name] <= high <= 1.0
        assert record.path.with_name(record.path.name + ".safetensors").is_file()
        assert record.path.with_name(record.path.name + ".json").is_file()
        heldout = project.heldout_scores(record.id)
        assert len(heldout) == record.n_labels
        decided = heldout["probability"] >= record.threshold
        tp = int((decided & (heldout["label"] == 1)).sum())
        assert record.metrics["precision"] == pytest.approx(tp / max(int(decided.sum()), 1))


def test_train_with_a_target_precision_picks_that_operating_point(pipeline, capsys):
    out = run_json(capsys, "train", str(pipeline.project), "--epochs", "3",
                   "--target-precision", "0.9")  # fmt: skip
    with Project(pipeline.project) as project:
        record = project.model(out["model_id"])
        heldout = project.heldout_scores(record.id)
    assert record.settings["target_precision"] == 0.9
    expected = best_threshold(heldout["label"].to_numpy(), heldout["probability"].to_numpy(),
                              target_precision=0.9)  # fmt: skip
    assert out["threshold"] == pytest.approx(expected.threshold)
    assert out["metrics"]["precision"] == pytest.approx(expected.precision)


def test_predict_writes_csv_and_parquet_with_the_contract_columns(pipeline, capsys):
    csv = pipeline.root / "out" / "pred.csv"
    out = run_json(capsys, "predict", str(pipeline.project), "--output", str(csv))
    assert out["files"] == [str(csv), str(csv.with_suffix(".parquet"))]
    frame = pd.read_csv(csv)
    columns = ["image", "row", "col", "sigma", "score", "probability", "decision"]
    assert frame.columns.tolist() == columns
    parquet = pd.read_parquet(csv.with_suffix(".parquet"))
    assert parquet.columns.tolist() == columns
    np.testing.assert_allclose(parquet["probability"], frame["probability"], rtol=1e-6)
    assert len(frame) == len(pipeline.table)
    with Project(pipeline.project) as project:
        threshold = project.model().threshold
        assert len(project.prediction_runs()) >= 1
    assert (frame["decision"] == (parquet["probability"] >= threshold)).all()
    assert out["signal"] == int(frame["decision"].sum())


def test_predict_sifts_new_images_without_adding_them(pipeline, capsys):
    csv = pipeline.root / "new.csv"
    out = run_json(capsys, "predict", str(pipeline.project), "--images", str(pipeline.new),
                   "--model", "1", "--output", str(csv), "--overlays")  # fmt: skip
    overlay = pipeline.root / "new-overlays" / "new0.tif.png"
    assert str(overlay) in out["files"]
    assert overlay.read_bytes()[:8] == PNG
    frame = pd.read_csv(csv)
    expected = detect_blobs(read_image(pipeline.new), threshold=4.5)  # the project's settings
    assert len(frame) == len(expected) == out["candidates"]
    assert set(frame["image"]) == {str(pipeline.new)}
    np.testing.assert_allclose(frame["row"], expected.row)
    with Project(pipeline.project) as project:
        assert len(project.images()) == 3


def test_report_writes_the_page_figures_and_model_card(pipeline, capsys):
    out = run_json(capsys, "report", str(pipeline.project), "--model", "1",
                   "--output", str(pipeline.root / "report"))  # fmt: skip
    index = pipeline.root / "report" / "index.html"
    assert out["report"] == str(index)
    page = index.read_text()
    for text in ("Model card", "Phase history", "F1 (95% interval)", "Trained on"):
        assert text in page
    names = ["pr_curve", "f1_vs_labels", "false_positives", "false_negatives", "detections"]
    for name in names:
        assert f"src='{name}.png'" in page
        assert (pipeline.root / "report" / f"{name}.png").read_bytes()[:8] == PNG
    card = json.loads((pipeline.root / "report" / "model_card.json").read_text())
    assert card["model_id"] == 1
    assert card["trained_on"]["labels"] == len(pipeline.table)
    assert card["trained_on"]["images"] == ["img0.tif", "img1.tif", "img2.tif"]


def test_export_labels_writes_the_current_labels(pipeline, capsys):
    csv = pipeline.root / "exported.csv"
    out = run_json(capsys, "export-labels", str(pipeline.project), str(csv))
    frame = pd.read_csv(csv)
    assert out["exported"] == len(frame) == len(pipeline.table)
    assert frame.columns.tolist() == ["image", "row", "col", "label"]
    key = ["image", "row", "col"]
    left = frame.sort_values(key).reset_index(drop=True)
    right = pipeline.table.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


def test_add_images_skips_those_already_there(small, capsys):
    out = run_json(capsys, "add-images", str(small.project), str(small.root / "data" / "*.tif"))
    assert out == {"added": [], "already_present": 2}


def test_import_candidates_from_an_xy_table(small, capsys):
    csv = small.root / "spots.csv"
    csv.write_text("x,y,score\n10,20,5\n30.5,40,6\n")
    out = run_json(capsys, "import-candidates", str(small.project), str(csv),
                   "--image", "img0.tif", "--xy")  # fmt: skip
    assert out["candidates"] == 2
    with Project(small.project) as project:
        found = project.candidates("img0.tif")
    assert found[["row", "col", "score"]].values.tolist() == [[20, 10, 5], [40, 30.5, 6]]


def test_detect_resumes_and_info_verify_reports_a_changed_image(small, capsys):
    first = run_json(capsys, "detect", str(small.project), "--threshold", "5")
    assert first["images"] == 2
    again = run_json(capsys, "detect", str(small.project), "--threshold", "5")
    assert (again["images"], again["skipped"]) == (0, 2)
    tifffile.imwrite(small.images[0], np.zeros((96, 96), np.float32))
    capsys.readouterr()
    assert main(["info", str(small.project), "--verify"]) == 1
    assert "PROBLEM" in capsys.readouterr().out
    assert main(["detect", str(small.project), "--force", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blobsift: error: image 'img0.tif'")
    assert "changed since it was added" in err


def test_relocate_points_a_moved_image_at_its_new_path(small, capsys):
    moved = small.root / "moved.tif"
    small.images[1].rename(moved)
    assert main(["detect", str(small.project), "--quiet"]) == 2
    assert "relocate" in capsys.readouterr().err
    out = run_json(capsys, "relocate", str(small.project), "img1.tif", str(moved))
    assert out["path"] == str(moved.resolve())
    assert main(["detect", str(small.project), "--quiet"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "{root}/nowhere"], "is not a blobsift project"),
        (["train", "{project}"], "needs at least"),
        (["predict", "{project}"], "has no model yet"),
        (["report", "{project}"], "has no model yet"),
        (["add-images", "{project}", "{root}/none*.tif"], "no file matches"),
        (["import-labels", "{project}", "{root}/missing.csv"], "does not exist"),
        (["init", "{project}"], "already holds"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(small, capsys, argv, message):
    argv = [a.format(root=small.root, project=small.project) for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("blobsift: error: ")
    assert message in err
    assert "\n" not in err


def test_bad_option_values_exit_with_usage(small, capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["train", str(small.project), "--target-precision", "1.5"])
    assert excinfo.value.code == 2
    with pytest.raises(SystemExit):
        main(["train", str(small.project), "--target-precision", "0.9", "--target-recall", "0.9"])
    assert "not allowed with" in capsys.readouterr().err


def test_predict_with_a_model_file_matches_predict_images(pipeline, capsys):
    from blobsift import predict_images

    with Project(pipeline.project) as project:
        stem = project.model(1).path
    model_file = stem.with_name(stem.name + ".json")
    csv = pipeline.root / "by_file.csv"
    argv = ["--images", str(pipeline.new), "--model", str(model_file), "--detect-threshold", "6"]
    run_json(capsys, "predict", str(pipeline.project), *argv, "--output", str(csv))
    frame = pd.read_csv(csv)
    expected = predict_images([pipeline.new], model_file, threshold=6.0)
    assert len(frame) == len(expected) > 0
    np.testing.assert_allclose(frame["probability"], expected["probability"], rtol=1e-5)
    assert frame["decision"].tolist() == expected["decision"].tolist()
    with Project(pipeline.project) as project:
        last = project.prediction_runs()[-1]
    assert last["model_id"] is None
    assert json.loads(last["settings"])["threshold"] == 6.0


def test_train_phase1_without_pretraining_and_the_phase_history(pipeline, capsys):
    cache = pipeline.project / "models" / "pretrained"
    cached = sorted(cache.iterdir())  # the fixture's training pre-trained once
    assert cached
    out = run_json(capsys, "train", str(pipeline.project), "--phase", "siamese", "--no-pretrain")
    with Project(pipeline.project) as project:
        record = project.model(out["model_id"])
        history = project.phase_history()
        with_phase1 = [m for m in project.models() if "siamese" in m.metrics["phase_scores"]]
    assert record.phase == "siamese"
    assert record.settings["pretrain"] is False
    assert sorted(cache.iterdir()) == cached
    assert history[-1] == (record.n_labels, record.metrics["phase_scores"]["siamese"])
    assert len(history) == len(with_phase1)


def test_info_shows_no_f1_from_too_few_positives(small, capsys):
    assert main(["detect", str(small.project), "--quiet"]) == 0
    with Project(small.project) as opened:
        table = label_candidates(opened.candidates(), objects_of(2, seed=3))
    few = pd.concat([table[table["label"] == 1].head(3), table[table["label"] == 0].head(20)])
    few.to_csv(small.root / "few.csv", index=False)
    assert main(["import-labels", str(small.project), str(small.root / "few.csv"), "--quiet"]) == 0
    argv = ["train", str(small.project), "--epochs", "1", "--no-pretrain", "--quiet"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["info", str(small.project)]) == 0
    (latest,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("latest")]
    assert "F1 too few positives to estimate (3 signal)," in latest
    info = run_json(capsys, "info", str(small.project))["latest_model"]
    assert (info["f1"], info["precision"], info["recall"]) == (None, None, None)
    assert info["estimates"] == "too few positives to estimate (3 signal)"
