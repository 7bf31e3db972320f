"""Intensity context: crops weighed by their brightness relative to their image's noise."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from blobsift import Sifter
from blobsift.classify.context import ContextHead, context_features
from blobsift.classify.siamese import SiameseClassifier
from blobsift.crops import crops_for, extract_crops, normalise_crops
from blobsift.detect import estimate_noise
from blobsift.exceptions import InvalidInputError, ModelFileError
from blobsift.metrics import average_precision
from blobsift.scoring import score_candidates
from blobsift.simulate import simulate_crops

FAST = {"pretrain_steps": 0, "finetune_steps": 30, "augment": False, "random_state": 0}


def _spots(n: int, rng: np.random.Generator, amplitude: float, noise: float) -> np.ndarray:
    """``n`` 64x64 crops of a centred Gaussian spot on flat Gaussian noise."""
    rows, cols = np.mgrid[0:64, 0:64] - 32
    spot = amplitude * np.exp(-(rows**2 + cols**2) / (2 * 1.5**2))
    return (100 + spot + noise * rng.standard_normal((n, 64, 64))).astype(np.float32)


@pytest.fixture(scope="module")
def brightness_task():
    """Signal and noise that differ only in brightness relative to the image's noise.

    Every crop holds a spot 8 of its own noise sigmas bright; signal sits on image-level
    noise, noise crops on patches 3x noisier than their image (and 3x brighter), so
    per-crop normalisation makes both classes look the same.
    """
    rng = np.random.default_rng(0)

    def draw(n_pos: int, n_neg: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        crops = np.concatenate([_spots(n_pos, rng, 8.0, 1.0), _spots(n_neg, rng, 24.0, 3.0)])
        labels = np.r_[np.ones(n_pos, np.int64), np.zeros(n_neg, np.int64)]
        return crops, labels, np.ones(len(crops))

    return draw(20, 60), draw(20, 60)


@pytest.fixture(scope="module")
def fitted(brightness_task):
    (crops, labels, noise), _ = brightness_task
    with_noise = SiameseClassifier(**FAST).fit(crops, labels, noise=noise)
    without = SiameseClassifier(**FAST).fit(crops, labels)
    return with_noise, without


# -- normalise_crops with the image's noise ----------------------------------------------
def test_normalising_by_the_image_noise_keeps_brightness_and_gain_invariance():
    rng = np.random.default_rng(1)
    crops = _spots(4, rng, 10.0, 1.0)
    noise = np.array([1.0, 1.0, 2.0, 0.5])
    out = normalise_crops(crops, noise)
    assert out.shape == (4, 1, 64, 64)
    assert out.dtype == np.float32
    # scaling the image and its noise together (and any offset) changes nothing
    np.testing.assert_allclose(normalise_crops(crops * 7.5 + 1234.0, noise * 7.5), out, atol=2e-3)
    # the same crop against a noisier image is fainter; per-crop normalisation cannot tell
    centre = out[:, 0, 31:34, 31:34].mean(axis=(1, 2))
    assert centre[2] < centre[0] < centre[3]
    own = normalise_crops(crops)[:, 0, 31:34, 31:34].mean(axis=(1, 2))
    assert np.ptp(own) < 0.5 * (centre[3] - centre[2])


def test_normalise_crops_takes_noise_per_crop_or_per_channel_and_refuses_bad_noise():
    rng = np.random.default_rng(2)
    crops = np.stack([_spots(3, rng, 6.0, 1.0), _spots(3, rng, 6.0, 2.0)], axis=1)
    per_channel = normalise_crops(crops, np.array([[1.0, 2.0]] * 3))
    np.testing.assert_array_equal(per_channel[:, 1:], normalise_crops(crops[:, 1], np.full(3, 2.0)))
    np.testing.assert_array_equal(
        normalise_crops(crops, np.ones(3)), normalise_crops(crops, np.ones((3, 2)))
    )
    for bad in (np.ones(2), np.ones((3, 3)), np.array([1.0, 0.0, 1.0]), [1.0, np.nan, 1.0], "x"):
        with pytest.raises(InvalidInputError, match="noise"):
            normalise_crops(crops, bad)


def test_context_features_are_relative_to_the_image_noise():
    rng = np.random.default_rng(3)
    crops = _spots(5, rng, 10.0, 1.0)
    noise = rng.uniform(0.5, 2.0, 5)
    features = context_features(crops, noise)
    assert features.shape == (5, 2)
    np.testing.assert_allclose(context_features(crops * 3 + 50, noise * 3), features, atol=2e-3)
    # the second feature: log(crop noise / image noise), about log(1 / noise) here
    np.testing.assert_allclose(features[:, 1], -np.log(noise), atol=0.15)


# -- learning with it -----------------------------------------------------------------
def test_the_image_noise_separates_what_per_crop_normalisation_cannot(brightness_task, fitted):
    _, (crops, labels, noise) = brightness_task
    with_noise, without = fitted
    assert with_noise.intensity_context_
    assert not without.intensity_context_
    assert with_noise.cv_metrics_["intensity_context"] is True
    gain = with_noise.cv_metrics_["context_scores"]
    assert gain["with"] > gain["without"] + 0.1
    assert average_precision(labels, with_noise.decision_function(crops, noise=noise)) > 0.95
    assert average_precision(labels, without.decision_function(crops)) < 0.8
    assert (with_noise.predict(crops, noise=noise) == labels).mean() > 0.9


def test_a_model_fitted_on_low_noise_scores_the_same_when_gain_and_noise_double(
    brightness_task, fitted
):
    _, (crops, _, noise) = brightness_task
    model, _ = fitted
    as_drawn = model.predict_proba(crops, noise=noise)
    np.testing.assert_allclose(model.predict_proba(2 * crops, noise=2 * noise), as_drawn, atol=1e-3)
    # absolute brightness means nothing: the same crops against a 2x noisier image are
    # judged fainter, not brighter
    fainter = model.decision_function(crops, noise=2 * noise)
    assert not np.allclose(fainter, as_drawn[:, 1], atol=1e-3)


def test_the_context_head_is_dropped_where_it_adds_nothing():
    rng = np.random.default_rng(8)
    crops = np.concatenate([_spots(12, rng, 8.0, 1.0), _spots(36, rng, 0.0, 1.0)])
    labels = np.r_[np.ones(12, np.int64), np.zeros(36, np.int64)]
    model = SiameseClassifier(**FAST).fit(crops, labels, noise=np.ones(48))
    assert not model.intensity_context_  # the shapes tell them apart; brightness adds nothing
    assert model.cv_metrics_["intensity_context"] is False
    assert model.cv_metrics_["context_scores"]["without"] > 0.99
    plain = SiameseClassifier(**FAST).fit(crops, labels)
    np.testing.assert_array_equal(model.predict_proba(crops), plain.predict_proba(crops))
    assert model.threshold_ == plain.threshold_


def test_a_context_model_needs_noise_and_refuses_noise_of_the_wrong_shape(brightness_task, fitted):
    _, (crops, _, noise) = brightness_task
    with_noise, without = fitted
    with pytest.raises(InvalidInputError, match="fitted with the image noise"):
        with_noise.predict(crops[:3])
    with pytest.raises(InvalidInputError, match="noise"):
        with_noise.predict(crops[:3], noise=noise[:2])
    # a model fitted without it ignores it (after checking it)
    np.testing.assert_array_equal(
        without.predict_proba(crops[:3], noise=noise[:3]), without.predict_proba(crops[:3])
    )


def test_the_model_file_records_the_context_head(brightness_task, fitted, tmp_path):
    _, (crops, _, noise) = brightness_task
    model, without = fitted
    model.save(tmp_path / "m")
    without.save(tmp_path / "plain")
    loaded = SiameseClassifier.load(tmp_path / "m")
    assert loaded.intensity_context_
    np.testing.assert_allclose(
        loaded.predict_proba(crops, noise=noise), model.predict_proba(crops, noise=noise)
    )
    with pytest.raises(InvalidInputError, match="fitted with the image noise"):
        loaded.predict(crops)
    assert not SiameseClassifier.load(tmp_path / "plain").intensity_context_
    config = json.loads((tmp_path / "m.json").read_text())
    assert len(config["intensity_context"]["coef"]) == 3
    config["intensity_context"]["coef"] = [1.0, 2.0]
    (tmp_path / "m.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="intensity_context"):
        SiameseClassifier.load(tmp_path / "m")


def test_sifter_passes_the_noise_to_its_phase_and_its_file(brightness_task, tmp_path):
    (crops, labels, noise), (test, test_labels, test_noise) = brightness_task
    sifter = Sifter(phase="siamese", **FAST).fit(crops, labels, noise=noise)
    assert sifter.intensity_context_
    assert sifter.estimator_.intensity_context_
    proba = sifter.predict_proba(test, noise=test_noise)
    np.testing.assert_allclose(proba, sifter.estimator_.predict_proba(test, noise=test_noise))
    assert average_precision(test_labels, proba[:, 1]) > 0.95
    sifter.save(tmp_path / "s")
    assert "intensity_context" not in json.loads((tmp_path / "s.json").read_text())
    loaded = Sifter.load(tmp_path / "s")
    np.testing.assert_allclose(loaded.predict_proba(test, noise=test_noise), proba)
    with pytest.raises(InvalidInputError, match="fitted with the image noise"):
        loaded.decision_function(test)


def test_the_context_head_is_a_balanced_logistic_regression():
    rng = np.random.default_rng(4)
    labels = np.r_[np.ones(30, np.int64), np.zeros(120, np.int64)]
    features = np.column_stack([labels * 2.0 + rng.normal(0, 1, 150), rng.normal(0, 1, 150)])
    scores = np.full(150, 0.5)
    head, heldout = ContextHead.fit_with_heldout(scores, features, labels, rng)
    assert heldout.shape == (150,)
    assert average_precision(labels, heldout) > 0.6
    assert head.coef[1] > 0.5
    assert abs(head.coef[2]) < 0.5
    again = ContextHead.from_config(json.loads(json.dumps(head.to_config())), "x")
    np.testing.assert_array_equal(again.apply(scores, features), head.apply(scores, features))


# -- where the noise comes from -------------------------------------------------------
class _Recorder:
    """A context model that scores each crop by its image noise (and records it)."""

    intensity_context_ = True
    threshold_ = 0.5

    def __init__(self) -> None:
        self.noise: list[np.ndarray] = []

    def predict_proba(self, crops, noise=None):
        self.noise.append(np.asarray(noise))
        p = np.asarray(noise, dtype=np.float64) / 100 + crops[:, 32, 32] * 0
        return np.column_stack([1 - p, p])


def test_scoring_passes_the_whole_image_noise_tiled_or_whole():
    rng = np.random.default_rng(5)
    image = (100 + 3.0 * rng.standard_normal((300, 260))).astype(np.float32)
    image[:, 200:] *= 2  # a noisier part: tiles must still get the whole image's noise
    positions = rng.uniform(0, 259, size=(40, 2))
    level = estimate_noise(image)[1]
    whole, tiled = _Recorder(), _Recorder()
    expected = score_candidates(image, positions, whole)
    np.testing.assert_array_equal(score_candidates(image, positions, tiled, tile_size=64), expected)
    np.testing.assert_allclose(expected, level / 100)
    assert len(tiled.noise) > 1
    assert all(np.all(n == level) for n in tiled.noise)


def test_scoring_a_context_model_tiled_equals_whole(brightness_task):
    (crops, labels, _), _ = brightness_task
    rng = np.random.default_rng(6)
    image = (100 + rng.standard_normal((256, 256))).astype(np.float32)
    positions = rng.uniform(20, 236, size=(30, 2))
    level = estimate_noise(image)[1]
    model = SiameseClassifier(**FAST).fit(crops, labels, noise=np.full(len(crops), level))
    whole = score_candidates(image, positions, model)
    # the same up to the network's rounding, which depends on how crops are batched
    # (tiles batch them otherwise; the noise itself is exact: see the test above)
    tiled = score_candidates(image, positions, model, tile_size=64)
    np.testing.assert_allclose(tiled, whole, rtol=1e-7, atol=1e-9)
    direct = model.predict_proba(extract_crops(image, positions), noise=np.full(30, level))
    np.testing.assert_allclose(whole, direct[:, 1])


def test_crops_for_gives_each_row_the_noise_of_its_image():
    rng = np.random.default_rng(7)
    images = {"a": rng.normal(0, 1.0, (80, 80)), "b": rng.normal(0, 4.0, (80, 80))}
    table = pd.DataFrame({"image_id": ["b", "a", "b"], "row": [10, 20, 30], "col": [5, 6, 7]})
    crops, noise = crops_for(table, images.__getitem__, image_noise=lambda p: estimate_noise(p)[1])
    np.testing.assert_array_equal(crops, crops_for(table, images.__getitem__))
    assert noise[0] == noise[2] == estimate_noise(images["b"])[1]
    assert noise[1] == estimate_noise(images["a"])[1]
    assert 3.5 < noise[0] / noise[1] < 4.5


# -- simulated noise that varies ------------------------------------------------------
@pytest.mark.parametrize("domain", ["spots", "difference"])
def test_simulated_crops_carry_their_image_noise_which_can_vary(domain):
    options = {"seed": 3, "domain": domain, "image_shape": (256, 256)}
    plain = simulate_crops(44, **options)
    again = simulate_crops(44, **options, noise_variation=0.0)
    np.testing.assert_array_equal(plain.crops, again.crops)
    assert plain.noise is not None
    assert plain.noise.shape == (44,)
    assert (plain.noise > 0).all()
    varied = simulate_crops(44, **options, noise_variation=2.0)
    assert varied.noise is not None
    assert np.median(varied.noise) > 1.3 * np.median(plain.noise)
    own = normalise_crops(varied.crops)  # the crops' own noise follows the image's
    assert own.shape == (44, 1, 64, 64)
    with pytest.raises(InvalidInputError, match="noise_variation"):
        simulate_crops(4, domain=domain, noise_variation=-1.0)


def test_a_project_trains_with_the_image_noise_and_predicts_with_it(tmp_path):
    from project_helpers import label_candidates, new_project, objects_of, write_images

    images = write_images(tmp_path / "data", 2, seed=0)
    with new_project(tmp_path / "p", images) as project:
        project.detect(threshold=4.5)
        table = label_candidates(project.candidates(), objects_of(2, seed=0))
        project.add_labels(table["image"], table["row"], table["col"], table["label"])
        record = project.train(phase="siamese", pretrain=False, intensity_context=True, **FAST)
        assert "context_scores" in record.sifter.cv_metrics_  # tried (kept where it helps)
        assert record.settings["intensity_context"] is True
        frame = project.predict()
        loaded = project.load_model()
        assert loaded.intensity_context_ == record.sifter.intensity_context_
        crops, _, labelled = project.training_data()
        noise = [estimate_noise(project.read_image(i))[1] for i in labelled["image_id"]]
        expected = loaded.predict_proba(crops, noise=noise)[:, 1]
        np.testing.assert_allclose(record.sifter.predict_proba(crops, noise=noise)[:, 1], expected)
        assert len(frame) == len(project.candidates())
