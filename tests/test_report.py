"""What the report, the model card and the CLI say about a model's threshold and scores."""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from blobsift.classify.base import THRESHOLD_RULES, describe_threshold_rule
from blobsift.cli import main
from blobsift.metrics import MIN_HELDOUT_POSITIVES
from blobsift.project import Project
from blobsift.report import (
    TOO_FEW_POSITIVES,
    format_metric,
    format_threshold,
    model_card,
    plot_f1_history,
    write_report,
)
from blobsift.simulate import simulate_crops
from project_helpers import label_candidates, objects_of, write_images


def _project(root, positives):
    """A project of 3 small images whose labels hold ``positives`` signal and 30 noise."""
    write_images(root / "data", 3, seed=0)
    with Project.create(root / "p") as project:
        project.add_images(sorted((root / "data").glob("*.tif")))
        project.detect(threshold=4.5)
        table = label_candidates(project.candidates(), objects_of(3, seed=0))
        chosen = [*np.flatnonzero(table["label"] == 1)[:positives]]
        chosen += [*np.flatnonzero(table["label"] == 0)[:30]]
        table = table.iloc[chosen]
        assert int(table["label"].sum()) == positives
        images = {image.name: image.id for image in project.images()}
        project.add_labels(
            [images[name] for name in table["image"]],
            table["row"].tolist(),
            table["col"].tolist(),
            table["label"].tolist(),
            who="test",
        )
    return root / "p"


@pytest.fixture(scope="module")
def two_positives(tmp_path_factory):
    """A Phase 1 model trained through the CLI on 2 signal and 30 noise labels, reported."""
    root = tmp_path_factory.mktemp("report")
    folder = _project(root, 2)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train", str(folder), "--phase", "siamese", "--no-pretrain"]) == 0
    with Project(folder) as project:
        record = project.model()
        index = write_report(project)
        card = model_card(project, record)
    return SimpleNamespace(
        folder=folder,
        out=out.getvalue(),
        record=record,
        html=index.read_text(),
        card=card,
        saved=json.loads((index.parent / "model_card.json").read_text()),
    )


def _numbers(text):
    return re.findall(r"\d\.\d{3}", text)


def _line(text, start):
    return next(line for line in text.splitlines() if line.strip().startswith(start))


def test_a_phase1_model_says_its_threshold_is_fixed_not_best_f1(two_positives):
    model = two_positives
    assert model.record.metrics["threshold_rule"] == "fixed"
    assert model.saved["threshold_rule"] == "fixed"
    texts = (
        _line(model.out, "threshold"),
        model.html,
        model.card["operating_point"],
        model.saved["operating_point"],
    )
    for text in texts:
        assert "best F1" not in text
        assert "F1-best" not in text
        assert "fixed at 0.5" in text


def test_two_positives_show_no_heldout_f1_number(two_positives):
    model = two_positives
    f1_line = _line(model.out, "F1")
    assert TOO_FEW_POSITIVES in f1_line
    assert _numbers(f1_line) == []
    assert model.record.metrics["f1"] is not None  # the record keeps what was measured
    assert model.card["metrics"]["f1"] is None
    assert model.card["metrics"]["f1_ci"] is None
    assert TOO_FEW_POSITIVES in model.card["metrics"]["estimates"]
    row = re.search(r"<th>F1 \(95% interval\)</th><td>(.*?)</td>", model.html).group(1)
    assert TOO_FEW_POSITIVES in row
    assert _numbers(row) == []


def test_the_f1_figure_leaves_out_scores_from_too_few_positives(
    two_positives, tmp_path, monkeypatch
):
    import matplotlib.axes

    with Project(two_positives.folder) as project:
        models = project.models()
    drawn = []
    original = matplotlib.axes.Axes.errorbar

    def spy(self, x, y, *args, **kwargs):
        drawn.append(list(y))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    plot_f1_history(models, tmp_path / "f1.png")
    assert drawn == []  # no point (and no 0-1 bar) for the model with 2 positives
    assert (tmp_path / "f1.png").stat().st_size > 0
    with_five = [replace(m, metrics={**m.metrics, "n_positive": 5}) for m in models]
    plot_f1_history(with_five, tmp_path / "f1.png")
    assert [len(y) for y in drawn] == [len(models)]


def test_enough_positives_show_the_number_and_a_target_is_named(tmp_path):
    folder = _project(tmp_path, MIN_HELDOUT_POSITIVES + 2)
    with Project(folder) as project:
        record = project.train(
            phase="siamese", pretrain=False, target_recall=0.8, siamese__finetune_steps=0
        )
    assert TOO_FEW_POSITIVES not in format_metric(record.metrics, "f1")
    assert len(_numbers(format_metric(record.metrics, "f1"))) == 3  # value and interval
    rule = record.metrics["threshold_rule"]
    assert rule in ("target_recall", "target_missed")
    expected = f"{record.threshold:.4f}: {describe_threshold_rule(rule, 0.8)}"
    assert format_threshold(record) == expected
    assert "0.8" in expected


def test_format_metric_needs_the_stated_number_of_positives():
    metrics = {"f1": 1.0, "f1_ci": [1.0, 1.0], "n_positive": MIN_HELDOUT_POSITIVES - 1}
    assert format_metric(metrics, "f1").startswith(TOO_FEW_POSITIVES)
    enough = {**metrics, "n_positive": MIN_HELDOUT_POSITIVES}
    assert format_metric(enough, "f1") == "1.000 [1.000, 1.000]"
    assert format_metric({"f1": 0.5}, "f1") == "0.500"  # positives unknown: shown


def test_each_phase_records_how_its_threshold_was_chosen(tmp_path):
    from blobsift.classify.cnn import CNNClassifier
    from blobsift.classify.siamese import SiameseClassifier

    data = simulate_crops(60, seed=5)
    gallery = SiameseClassifier(finetune_steps=0, random_state=0).fit(data.crops, data.labels)
    cnn = CNNClassifier(epochs=2, n_folds=2, refit=False, random_state=0)
    cnn.fit(data.crops, data.labels)
    aimed = SiameseClassifier(finetune_steps=0, random_state=0, target_precision=0.5)
    aimed.fit(data.crops, data.labels)
    assert gallery.threshold_rule_ == "fixed"
    assert gallery.threshold_ == 0.5
    assert cnn.threshold_rule_ == "best_f1"
    assert aimed.threshold_rule_ in ("target_precision", "target_missed")
    rules = {gallery.threshold_rule_, cnn.threshold_rule_, aimed.threshold_rule_}
    assert rules <= set(THRESHOLD_RULES)
    cnn.save(tmp_path / "cnn")
    assert CNNClassifier.load(tmp_path / "cnn").threshold_rule_ == "best_f1"
    assert "earlier version" in describe_threshold_rule(None)
