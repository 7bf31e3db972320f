"""Hardening of the command line: bad paths and values are one-line errors that leave
nothing behind; predictions are written as images finish, with their warnings journalled."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pandas as pd
import pytest

from blobsift import predict_images
from blobsift import scoring as crops_module  # where prediction cuts its crops
from blobsift.cli import main
from blobsift.detect import detect_blobs
from blobsift.exceptions import OutputError
from blobsift.io import read_image
from blobsift.project import Project
from project_helpers import trained_by_cli, write_images

UNWRITABLE = Path("/proc/blobsift-no-such-folder")  # no one, root included, creates files here


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project with candidates, labels and one quickly trained model."""
    root = tmp_path_factory.mktemp("hardening-cli")
    return trained_by_cli(root, name="p", n_new=2, new_seed=30, import_options=["--quiet"],
                          train_options=["--epochs", "1", "--no-pretrain", "--quiet"])  # fmt: skip


def _journal(output: Path) -> list[dict]:
    text = Path(str(output) + ".status.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _one_line_error(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("blobsift: error: ")
    assert "\n" not in err
    assert "Traceback" not in captured.err
    return err


def _bad_outputs(root: Path, name: str) -> list[tuple[Path, str]]:
    folder = root / f"{name}-folder"
    folder.mkdir(exist_ok=True)
    a_file = root / f"{name}-file.txt"
    a_file.write_text("not a folder")
    return [
        (folder, "is a folder"),
        (a_file / name, "is a file, not a folder"),
        (UNWRITABLE / name, "not writable"),
    ]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux)")
def test_export_labels_to_a_bad_path_is_one_line_and_leaves_nothing(trained, capsys):
    for target, message in _bad_outputs(trained.root, "labels.csv"):
        before = _listing(trained.root)
        err = _one_line_error(capsys, ["export-labels", str(trained.project), str(target)])
        assert message in err
        assert str(target) in err
        assert _listing(trained.root) == before  # no .tmp, no partial file


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux)")
def test_predict_to_a_bad_output_is_one_line_records_nothing_and_leaves_nothing(trained, capsys):
    with Project(trained.project) as project:
        runs = len(project.prediction_runs())
    for target, message in _bad_outputs(trained.root, "pred.csv"):
        before = _listing(trained.root)
        argv = ["predict", str(trained.project), "--output", str(target), "--quiet"]
        err = _one_line_error(capsys, argv)
        assert message in err
        assert _listing(trained.root) == before
    with Project(trained.project) as project:
        assert len(project.prediction_runs()) == runs


def test_report_into_an_existing_file_is_one_line_and_keeps_the_file(trained, capsys):
    existing = trained.root / "notes.txt"
    existing.write_text("my notes")
    before = _listing(trained.root)
    argv = ["report", str(trained.project), "--output", str(existing), "--quiet"]
    err = _one_line_error(capsys, argv)
    assert "is a file" in err
    assert "folder" in err
    assert existing.read_text() == "my notes"
    assert _listing(trained.root) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["label", "{p}", "--port", "99999"], "0-65535"),
        (["label", "{p}", "--port", "-1"], "0-65535"),
        (["label", "{p}", "--port", "http"], "0-65535"),
        (["train", "{p}", "--epochs", "0"], ">= 1"),
        (["train", "{p}", "--epochs", "-1"], ">= 1"),
        (["train", "{p}", "--epochs", "2.5"], ">= 1"),
        (["label", "{p}", "--epochs", "0"], ">= 1"),
        (["demo", "{p}", "--epochs", "0"], ">= 1"),
        (["detect", "{p}", "--threads", "0"], ">= 1"),
    ],
)
def test_bad_numbers_are_usage_errors_before_anything_runs(tmp_path, capsys, argv, message):
    argv = [a.format(p=tmp_path / "p") for a in argv]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert argv[-1] in err  # names what was given
    assert not (tmp_path / "p").exists()


def test_predict_writes_rows_as_images_finish_and_the_final_name_only_at_the_end(trained):
    output = trained.root / "incremental.csv"
    partial = output.with_name(output.name + ".partial")
    seen = []

    def progress(event):
        assert not output.exists()
        rows = pd.read_csv(partial)
        seen.append((event.done, sorted(set(rows["image"])), len(rows)))

    with Project(trained.project) as project:
        counts = project.candidates().groupby("image").size()
        images = [r.path for r in project.images()] + trained.new
        frame = project.predict(images, output=output, progress=progress)
    assert [done for done, _, _ in seen] == list(range(1, len(images) + 1))
    assert seen[2][1] == sorted(counts.index)  # the 3 project images, each once it finished
    assert seen[2][2] == counts.sum()
    assert not partial.exists()
    written = pd.read_csv(output)
    assert len(written) == len(frame) == seen[-1][2]
    journal = _journal(output)
    assert [r["status"] for r in journal] == ["done"] * len(images)
    assert frame.attrs["files"][0] == output


def _warn_with_every_crop_call(monkeypatch):
    real = crops_module.extract_crops

    def extract_crops(image, centres, *args, **kwargs):
        warnings.warn(f"odd pixels near {len(centres)} centres", UserWarning, stacklevel=2)
        return real(image, centres, *args, **kwargs)

    monkeypatch.setattr(crops_module, "extract_crops", extract_crops)


def test_warnings_inside_an_image_go_to_its_journal_record(trained, monkeypatch, capsys):
    _warn_with_every_crop_call(monkeypatch)
    output = trained.root / "warned.csv"
    argv = ["predict", str(trained.project), "--output", str(output), "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # every image warns, also with equal counts
        assert main(argv) == 0
    out = capsys.readouterr().out
    with Project(trained.project) as project:
        counts = project.candidates().groupby("image").size().to_dict()
    journal = _journal(output)
    assert {r["image"]: r["warnings"] for r in journal} == {
        image: [f"UserWarning: odd pixels near {n} centres"] for image, n in counts.items()
    }
    assert out.count("warning img") == len(counts)


def test_warnings_are_journalled_per_image_when_images_run_in_threads(
    trained, monkeypatch, tmp_path
):
    _warn_with_every_crop_call(monkeypatch)
    with Project(trained.project) as project:
        model = project.model().path
    paths = [str(p) for p in write_images(tmp_path / "more", 6, seed=50)]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    shown_before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        frame = predict_images(paths, model, output=tmp_path / "t.csv", threshold=4.5)
    sizes = frame.groupby("image").size().to_dict()
    assert frame.attrs["warnings"] == {
        path: [f"UserWarning: odd pixels near {sizes[path]} centres"] for path in paths
    }
    assert warnings.showwarning is shown_before  # the run leaves the warnings module as it was


def test_output_error_is_an_os_error_of_the_package_tree():
    import blobsift

    assert issubclass(OutputError, OSError)
    assert issubclass(OutputError, blobsift.BlobsiftError)
    assert blobsift.OutputError is OutputError


def test_a_detector_warning_is_in_the_record_of_the_image_that_raised_it(trained, tmp_path):
    with Project(trained.project) as project:
        model = project.model().path
    paths = [str(p) for p in write_images(tmp_path / "budget", 2, seed=60)]
    found = {path: len(detect_blobs(read_image(path), threshold=4.5)) for path in paths}
    budget = min(found.values()) - 1  # every image has more peaks than it may keep
    output = tmp_path / "budget.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # as outside the test suite: warnings are shown
        frame = predict_images(paths, model, output=output, threshold=4.5, max_candidates=budget)
    records = {r["image"]: r for r in _journal(output)}
    for path in paths:
        assert records[path]["status"] == "done"
        assert records[path]["n_candidates"] == budget
        (text,) = records[path]["warnings"]
        assert text.startswith("CandidateBudgetWarning: ")
        assert f"{found[path]} peaks" in text
    assert frame.attrs["warnings"] == {path: records[path]["warnings"] for path in paths}
