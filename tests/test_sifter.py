"""The estimator contract of Sifter (and CNNClassifier behind it), on simulated crops."""

import json

import numpy as np
import pytest
from safetensors import safe_open

from blobsift import (
    InvalidInputError,
    ModelFileError,
    NotFittedError,
    Sifter,
    SingleClassError,
)
from blobsift.metrics import precision_recall_f1

FAST = {"epochs": 30, "patience": 8}


@pytest.fixture(scope="module")
def fitted(crops_train):
    return Sifter(phase="cnn", random_state=0, **FAST).fit(crops_train.crops, crops_train.labels)


def test_learns_to_sift_held_out_crops(fitted, crops_test):
    scores = precision_recall_f1(crops_test.labels, fitted.predict(crops_test.crops))
    assert scores["f1"] >= 0.70


def test_fitted_attributes(fitted, crops_train):
    assert fitted.phase_ == "cnn"
    assert list(fitted.classes_) == [0, 1]
    assert 0.0 < fitted.threshold_ < 1.0
    metrics = fitted.cv_metrics_
    assert metrics["n_labels"] == len(crops_train.labels)
    assert metrics["n_positive"] == crops_train.labels.sum()
    assert 0.0 < metrics["f1"] <= 1.0


def test_predict_proba_shape_and_columns(fitted, crops_test):
    proba = fitted.predict_proba(crops_test.crops[:50])
    assert proba.shape == (50, 2)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()


def test_predict_applies_the_chosen_threshold(fitted, crops_test):
    proba = fitted.predict_proba(crops_test.crops)[:, 1]
    np.testing.assert_array_equal(fitted.predict(crops_test.crops), proba >= fitted.threshold_)


def test_empty_in_empty_out(fitted):
    empty = np.zeros((0, 64, 64), dtype=np.float32)
    assert fitted.predict_proba(empty).shape == (0, 2)
    assert fitted.predict(empty).shape == (0,)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float64])
def test_any_real_dtype_gives_the_same_answer(fitted, crops_test, dtype):
    crops = np.clip(np.round(crops_test.crops[:40]), 0, None)
    reference = fitted.predict_proba(crops.astype(np.float32))
    np.testing.assert_allclose(fitted.predict_proba(crops.astype(dtype)), reference, atol=1e-6)


def test_gain_and_offset_do_not_change_the_answer(fitted, crops_test):
    crops = crops_test.crops[:40].astype(np.float64)
    np.testing.assert_allclose(
        fitted.predict_proba(3.0 * crops + 500.0), fitted.predict_proba(crops), atol=2e-3
    )


def test_onnx_and_torch_give_the_same_probabilities(fitted, crops_test):
    crops = crops_test.crops[:300]
    fitted.estimator_.backend = "onnx"
    onnx = fitted.predict_proba(crops)
    fitted.estimator_.backend = "torch"
    torch_probs = fitted.predict_proba(crops)
    fitted.estimator_.backend = "auto"
    np.testing.assert_allclose(onnx, torch_probs, atol=1e-5)


def test_save_and_load_round_trip(fitted, crops_test, tmp_path):
    weights, config = fitted.save(tmp_path / "model")
    assert weights.name == "model.safetensors"
    assert config.name == "model.json"
    loaded = Sifter.load(tmp_path / "model.json")
    assert loaded.threshold_ == fitted.threshold_
    assert loaded.phase_ == "cnn"
    np.testing.assert_allclose(
        loaded.predict_proba(crops_test.crops[:100]),
        fitted.predict_proba(crops_test.crops[:100]),
        atol=1e-6,
    )
    with safe_open(weights, framework="pt") as stored:
        assert "onnx_graph" in set(stored.keys())  # the inference graph travels along
    document = json.loads(config.read_text())
    assert document["format"] == "blobsift-model"
    assert document["estimator"]["metrics"]["n_labels"] == fitted.cv_metrics_["n_labels"]


def test_model_files_hold_no_pickle(fitted, tmp_path):
    weights, _ = fitted.save(tmp_path / "model")
    data = weights.read_bytes()
    assert b"\x80\x04\x95" not in data[:64]  # no pickle protocol header
    header_length = int.from_bytes(data[:8], "little")
    json.loads(data[8 : 8 + header_length])  # safetensors: a JSON header, then raw tensors


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (lambda w, c: w.write_bytes(b"not a tensor file"), "safetensors"),
        (lambda w, c: c.write_text("{ broken json"), "JSON"),
        (lambda w, c: c.write_text(json.dumps({"format": "other-tool"})), "not a blobsift"),
        (lambda w, c: w.unlink(), "does not exist"),
    ],
)
def test_corrupt_or_foreign_model_files_raise(fitted, tmp_path, corrupt, match):
    weights, config = fitted.save(tmp_path / "model")
    corrupt(weights, config)
    with pytest.raises(ModelFileError, match=match):
        Sifter.load(tmp_path / "model")


def test_weights_of_another_architecture_raise(fitted, tmp_path):
    _, config = fitted.save(tmp_path / "model")
    document = json.loads(config.read_text())
    document["estimator"]["architecture"]["config"]["hidden"] = 7
    config.write_text(json.dumps(document))
    with pytest.raises(ModelFileError):
        Sifter.load(tmp_path / "model")


def test_a_model_fitted_with_a_callback_saves(crops_train, tmp_path):
    events = []
    sifter = Sifter(phase="cnn", random_state=0, epochs=2, callback=events.append)
    sifter.fit(crops_train.crops[:60], crops_train.labels[:60])
    sifter.save(tmp_path / "model")
    assert len(events) == 2
    assert Sifter.load(tmp_path / "model").callback is None


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError, match="fit"):
        Sifter().predict(np.zeros((1, 64, 64)))


def _crops(n):
    return np.random.default_rng(0).normal(100, 5, (n, 64, 64))


@pytest.mark.parametrize(
    ("crops", "labels", "error", "match"),
    [
        (np.zeros((10, 32, 32)), np.r_[np.ones(3), np.zeros(7)], InvalidInputError, "64, 64"),
        (np.zeros((10, 64)), np.r_[np.ones(3), np.zeros(7)], InvalidInputError, "shape"),
        (np.full((10, 64, 64), np.nan), np.r_[np.ones(3), np.zeros(7)], InvalidInputError, "NaN"),
        (_crops(10), np.r_[np.full(3, 2), np.zeros(7)], InvalidInputError, "only 0"),
        (_crops(10), np.r_[np.ones(3), np.zeros(6)], InvalidInputError, "same length"),
        (_crops(10), np.zeros(10), SingleClassError, "signal"),
        (_crops(10), np.r_[np.ones(1), np.zeros(9)], SingleClassError, "at least 2"),
        (
            np.array([["a"] * 64] * 64)[None].repeat(4, 0),
            np.array([0, 1, 0, 1]),
            InvalidInputError,
            "real numbers",
        ),
    ],
)
def test_bad_input_gives_a_clear_error(crops, labels, error, match):
    with pytest.raises(error, match=match):
        Sifter(phase="cnn").fit(crops, labels)


def test_infinite_values_at_predict_are_refused(fitted):
    crops = _crops(3)
    crops[1, 5, 5] = np.inf
    with pytest.raises(InvalidInputError, match=r"crop\(s\)"):
        fitted.predict(crops)


def test_unknown_phase_is_refused():
    with pytest.raises(InvalidInputError, match="phase"):
        Sifter(phase="magic").fit(_crops(6), np.array([0, 1, 0, 1, 0, 1]))


def test_params_follow_the_scikit_learn_convention():
    sifter = Sifter(random_state=3, epochs=10)
    assert sifter.get_params()["epochs"] == 10
    sifter.set_params(epochs=20, phase="cnn")
    assert sifter.get_params()["epochs"] == 20
    assert sifter.phase == "cnn"
    assert not hasattr(sifter, "threshold_")


def test_fit_is_reproducible_with_a_seed(crops_train):
    subset = slice(0, 120)
    kwargs = {"phase": "cnn", "random_state": 5, "epochs": 3}
    a = Sifter(**kwargs).fit(crops_train.crops[subset], crops_train.labels[subset])
    b = Sifter(**kwargs).fit(crops_train.crops[subset], crops_train.labels[subset])
    np.testing.assert_array_equal(
        a.predict_proba(crops_train.crops[:20]), b.predict_proba(crops_train.crops[:20])
    )


def test_two_positives_among_twenty_labels_are_enough():
    rng = np.random.default_rng(1)
    crops = rng.normal(100, 5, (20, 64, 64))
    crops[:2, 30:34, 30:34] += 80
    labels = np.r_[np.ones(2), np.zeros(18)].astype(int)
    sifter = Sifter(phase="cnn", random_state=0, epochs=5).fit(crops, labels)
    assert sifter.cv_metrics_["n_folds"] == 2
    # Each fold model saw one positive; one more member trained on both joins the ensemble.
    assert sifter.cv_metrics_["n_members"] == 3
    assert sifter.predict_proba(crops).shape == (20, 2)
