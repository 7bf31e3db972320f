"""``blobsift demo``: the whole path on simulated images, driven through the command line."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from blobsift.cli import main
from blobsift.cli._parser import build_parser
from blobsift.demo import BASELINES, DEMO_DOMAINS, DemoResult, DemoRound, run_demos, summary_lines
from blobsift.exceptions import InvalidInputError
from blobsift.metrics import MIN_HELDOUT_POSITIVES
from blobsift.project import Project
from blobsift.simulate import truth_labels
from blobsift.splits import nested_order

PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = (
    "pr_curve",
    "f1_vs_labels",
    "phase_history",
    "false_positives",
    "false_negatives",
    "detections",
)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """One tiny demo of both domains (2 rounds, 1 new image, 3 epochs, no pre-training) in
    a folder an earlier demo left."""
    root = tmp_path_factory.mktemp("demo") / "run"
    root.mkdir()
    (root / "demo.json").write_text("{}")
    (root / "stale.txt").write_text("from an earlier demo")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            ["demo", str(root), "--labels", "25,40", "--new-images", "1", "--epochs", "3",
             "--no-pretrain", "--quiet"]
        )  # fmt: skip
    return SimpleNamespace(code=code, root=root, out=out.getvalue())


@pytest.fixture(scope="module", params=list(DEMO_DOMAINS))
def demo(demos, request):
    """One domain's project of the demo, and its part of the printed summary."""
    folder = demos.root / request.param
    summary = json.loads((folder / "demo.json").read_text())
    heads = [i for i, line in enumerate(demos.out.splitlines()) if " demo, " in line]
    own = next(i for i in heads if f" demo, {request.param}: " in demos.out.splitlines()[i])
    end = min([i for i in heads if i > own], default=None)
    out = "\n".join(demos.out.splitlines()[own:end])
    return SimpleNamespace(
        code=demos.code, root=demos.root, folder=folder, out=out, summary=summary,
        domain=request.param,
    )  # fmt: skip


def _truth(folder):
    table = pd.read_csv(folder / "truth.csv")
    return {name: part for name, part in table.groupby("image")}


def test_demo_prints_one_row_per_round_and_where_the_report_is(demo):
    assert demo.code == 0
    lines = demo.out.splitlines()
    rows = [line.split() for line in lines if line.split()[:1] in (["25"], ["40"])]
    assert [row[0] for row in rows] == ["25", "40"]
    assert all(row[2] in ("siamese", "cnn") for row in rows)
    assert all(0.0 <= float(value) <= 1.0 for row in rows for value in row[3:6])
    report = demo.summary["report"]
    assert f"report:      {report}" in lines
    assert not (demo.root / "stale.txt").exists()  # the earlier demo's folder was replaced
    assert demo.summary["domain"] == demo.domain
    assert json.loads((demo.root / "demo.json").read_text())["projects"] == {
        name: str(demo.root.resolve() / name) for name in DEMO_DOMAINS
    }


def test_the_simulated_labeller_labels_by_the_truth_in_rounds(demo):
    rounds = demo.summary["rounds"]
    assert [r["labels"] for r in rounds] == [25, 40]
    with Project(demo.folder) as project:
        labels = project.labels(include_unsure=False)
        models = project.models()
        assert len(labels) == 40
        assert set(labels["who"]) == {"simulated labeller"}
        assert (labels["label"] == truth_labels(labels, _truth(demo.folder / "images"))).all()
        assert [m.n_labels for m in models] == [25, 40]
        assert [m.n_positive for m in models] == [r["positives"] for r in rounds]
        assert [m.id for m in models] == [r["model_id"] for r in rounds]
        assert [m.phase for m in models] == [r["phase"] for r in rounds]
        assert len(project.prediction_runs()) == 2  # every model sifted the new images
    assert 2 <= rounds[0]["positives"] < rounds[1]["positives"]


def test_every_model_is_scored_against_the_truth_of_new_images(demo):
    frame = pd.read_csv(demo.folder / "predictions" / "new-images.csv")
    frame["image"] = [Path(name).name for name in frame["image"]]
    truth = truth_labels(frame, _truth(demo.folder / "new-images"))
    assert demo.summary["new_candidates"] == len(frame)
    assert demo.summary["new_signal"] == truth.sum() > 0
    decided, real = frame["decision"].to_numpy() == 1, truth == 1
    last = demo.summary["rounds"][-1]
    assert last["precision"] == pytest.approx((decided & real).sum() / decided.sum())
    assert last["recall"] == pytest.approx((decided & real).sum() / real.sum())
    for r in demo.summary["rounds"]:
        assert 0.0 <= r["f1"] <= 1.0
        if r["positives"] < MIN_HELDOUT_POSITIVES:
            assert r["oof_f1"] is None  # too few positives to estimate
        else:
            assert 0.0 <= r["oof_f1"] <= 1.0
    # Learning: far better than calling every candidate signal.
    share = truth.mean()
    assert last["f1"] > 2 * (2 * share / (1 + share))


def test_every_round_scores_the_baselines_on_the_same_new_images(demo):
    frame = pd.read_csv(demo.folder / "predictions" / "new-images.csv")
    for r in demo.summary["rounds"]:
        assert set(r["baselines"]) == set(BASELINES)
        # an F1 on these candidates: a multiple of 2 / (2 tp + fp + fn), within [0, 1]
        assert all(0.0 <= f1 <= 1.0 for f1 in r["baselines"].values())
    assert len(frame) > 0
    row = next(line for line in demo.out.splitlines() if line.split()[:1] == ["40"])
    cells = row.split()
    assert float(cells[6]) == pytest.approx(
        demo.summary["rounds"][1]["baselines"]["brightness cut"], abs=5e-4
    )
    assert float(cells[7]) == pytest.approx(
        demo.summary["rounds"][1]["baselines"]["forest"], abs=5e-4
    )


def test_the_summary_compares_with_the_specification_and_withholds_few_positive_scores(
    tmp_path,
):
    def round_(labels, positives, f1, oof):
        return DemoRound(
            labels=labels, positives=positives, model_id=labels, phase="siamese",
            phase_reason="why", f1=f1, precision=f1, recall=f1, oof_f1=oof, seconds=1.0,
            expected={100: (0.82, 0.88), 250: (0.88, 0.93)}.get(labels),
            baselines={"brightness cut": 0.5, "forest": 0.6},
        )  # fmt: skip

    result = DemoResult(
        domain="spots", project=tmp_path,
        rounds=[round_(25, 2, 0.6, None), round_(100, 9, 0.85, 0.9), round_(250, 22, 0.8, 0.86)],
        new_images=1, new_candidates=10, new_signal=1, report=tmp_path / "index.html",
        predictions=[], seconds=3.0,
    )  # fmt: skip
    rows = {line.split()[0]: line for line in summary_lines(result) if line[:6].strip().isdigit()}
    assert "too few" in rows["25"]
    assert "0.900" in rows["100"]
    assert rows["100"].endswith("0.82-0.88 within")
    assert rows["250"].endswith("0.88-0.93 below")
    assert rows["250"].split()[6:8] == ["0.500", "0.600"]


def test_the_report_shows_every_figure(demo):
    index = demo.folder / "reports" / "model-2" / "index.html"
    assert demo.summary["report"] == str(index)
    page = index.read_text()
    for name in FIGURES:
        assert f"src='{name}.png'" in page
        assert (index.parent / f"{name}.png").read_bytes()[:8] == PNG
    assert "Phase history" in page
    assert "F1 on new images (ground truth)" in page
    overlay = demo.folder / "predictions" / "new-images-overlays" / "new0.tif.png"
    assert overlay.read_bytes()[:8] == PNG


def test_demo_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", str(tmp_path), "--quiet"]) == 2
    assert "not an earlier demo's folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "project.db").exists()


@pytest.mark.parametrize("labels", ["50,25", "25,25"])
def test_demo_refuses_label_counts_that_do_not_grow(tmp_path, capsys, labels):
    assert main(["demo", str(tmp_path / "run"), "--labels", labels, "--quiet"]) == 2
    assert "increasing" in capsys.readouterr().err


def test_nested_order_keeps_the_class_ratio_in_every_prefix():
    labels = np.random.default_rng(0).permutation(np.r_[np.zeros(90), np.ones(10)])
    order = nested_order(labels)
    assert sorted(order) == list(range(100))
    positives = np.cumsum(labels[order])
    for n in range(1, 101):
        assert abs(positives[n - 1] - n / 10) <= 1


def test_the_demo_shows_its_rounds_and_progress_on_stderr(tmp_path, capsys):
    argv = ["demo", str(tmp_path / "run"), "--domain", "spots", "--labels", "25",
            "--new-images", "1", "--epochs", "1", "--no-pretrain"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "spots round 1/1: 25 labels (" in err
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["demo.json", "spots"]
    assert "  model 1 (" in err
    assert "on the new images" in err
    assert "detect" in err  # the project's own stages draw bars


def test_the_demo_domains_simulate_their_own_images(demos):
    # spots: single-channel fluorescence-like images; difference imaging: the truth holds
    # transients (signal) and the bogus kinds (dipoles, star residuals, cosmic rays, ...)
    kinds = {
        name: set(pd.read_csv(demos.root / name / "images" / "truth.csv")["kind"])
        for name in DEMO_DOMAINS
    }
    assert "transient" in kinds["difference"]
    assert "transient" not in kinds["spots"]
    assert len(kinds["difference"] - {"transient"}) >= 2


def test_the_demo_command_offers_every_demo_domain_and_both():
    # The parser names the domains itself (importing blobsift.demo would load torch for
    # every command's --help): it must stay in step with DEMO_DOMAINS.
    parser = build_parser()
    action = next(
        a
        for sub in parser._subparsers._group_actions  # the sub-command parsers
        for a in sub.choices["demo"]._actions
        if a.dest == "domain"
    )
    assert set(action.choices) == {*DEMO_DOMAINS, "both"}
    assert parser.parse_args(["demo"]).domain == "both"


def test_run_demos_refuses_unknown_or_repeated_domains(tmp_path):
    for domains in (["spots", "spots"], ["galaxies"], []):
        with pytest.raises(InvalidInputError, match="domain"):
            run_demos(tmp_path / "run", domains)
    assert not (tmp_path / "run").exists()
