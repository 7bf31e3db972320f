"""Smoke test of the whole path on real microscopy frames (``shared/real-samples``).

The frames come without labels, so the test labels by a rule that needs no tuning (the
brightest candidates by detector score are signal, the faintest noise) and checks only
that each step runs and gives sane output: no figure here was tuned on these frames.

The folder is ``../shared/real-samples`` beside the repository (as in CI), or
``$BLOBSIFT_REAL_SAMPLES``. Without it the tests skip, except under ``CI``, where they fail.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from blobsift.detect import DetectSettings
from blobsift.project import Project
from blobsift.report import write_report

IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy", ".fits"}
N_RULE = 12  # labels of each class, by the rule


def _folder() -> Path:
    override = os.environ.get("BLOBSIFT_REAL_SAMPLES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "real-samples"


def _samples() -> list[Path]:
    folder = _folder()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def test_the_real_samples_are_there():
    if not _samples():
        reason = f"no real sample images in {_folder()} (set BLOBSIFT_REAL_SAMPLES)"
        if _in_ci():
            pytest.fail(f"{reason}; under CI the real-image smoke tests must run.")
        pytest.skip(reason)


@pytest.mark.parametrize("sample", _samples(), ids=lambda path: path.name)
def test_the_whole_path_runs_on_a_real_frame(sample, tmp_path):
    with Project.create(tmp_path / "project") as project:
        (record,) = project.add_images([sample])
        height, width = record.shape
        summary = project.detect()
        candidates = project.candidates()
        assert summary["candidates"] == len(candidates)
        assert 10 <= len(candidates) <= 50_000, f"{len(candidates)} candidates"
        assert candidates["row"].between(-0.5, height - 0.5).all()
        assert candidates["col"].between(-0.5, width - 0.5).all()
        low, high = DetectSettings().sigma_min, DetectSettings().sigma_max
        assert candidates["sigma"].between(low - 1e-6, high + 1e-6).all()
        assert np.isfinite(candidates["score"]).all()

        order = np.argsort(-candidates["score"].to_numpy(), kind="stable")
        chosen = np.r_[order[:N_RULE], order[-N_RULE:]]
        rows = candidates.iloc[chosen]
        project.add_labels(
            rows["image"].tolist(),
            rows["row"].tolist(),
            rows["col"].tolist(),
            [1] * N_RULE + [0] * N_RULE,
            who="rule",
        )
        model = project.train(
            phase="siamese", pretrain=False, siamese__finetune_steps=10, siamese__n_folds=2
        )
        assert model.phase == "siamese"
        assert (model.n_labels, model.n_positive) == (2 * N_RULE, N_RULE)
        assert 0.0 <= model.threshold <= 1.0

        predictions = project.predict()
        assert len(predictions) == len(candidates)
        assert predictions["probability"].between(0.0, 1.0).all()
        assert set(predictions["decision"]) <= {0, 1}

        index = write_report(project)
        assert "<html" in index.read_text(encoding="utf-8").lower()
        pictures = sorted(index.parent.glob("*.png"))
        assert pictures
        assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures)
