"""Phase 1: pair sampling, contrastive losses, gallery scoring and the Siamese classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blobsift.classify.gallery import gallery_scores, leave_one_out_scores, nearest_neighbours
from blobsift.classify.siamese import SiameseClassifier
from blobsift.exceptions import InvalidInputError, SingleClassError
from blobsift.metrics import precision_recall_f1
from blobsift.nn.contrastive import nt_xent_loss, pair_loss, sample_pairs
from blobsift.simulate import simulate_crops

FAST = {"finetune_steps": 60, "pretrain_steps": 8}


# -- pair sampler -----------------------------------------------------------------------
@pytest.mark.parametrize("n_positive", [2, 3, 10])
def test_pairs_are_balanced_and_never_a_crop_with_itself(n_positive):
    labels = torch.tensor([1] * n_positive + [0] * 10 * n_positive)
    first, second, same = sample_pairs(labels, 4000, torch.Generator().manual_seed(0))
    assert not (first == second).any()
    assert torch.equal(same, (labels[first] == labels[second]).float())
    assert same.mean().item() == pytest.approx(0.5)
    signal_pairs = ((labels[first] == 1) & (labels[second] == 1)).float().mean().item()
    noise_pairs = ((labels[first] == 0) & (labels[second] == 0)).float().mean().item()
    assert signal_pairs == pytest.approx(0.25, abs=0.001)
    assert noise_pairs == pytest.approx(0.25, abs=0.001)
    # every positive takes part, though they are a tenth of the labels
    assert set(first[labels[first] == 1].tolist()) == set(range(n_positive))


def test_a_lone_positive_gives_no_same_class_signal_pair():
    labels = torch.tensor([1, 0, 0, 0, 0])
    first, second, same = sample_pairs(labels, 200, torch.Generator().manual_seed(1))
    assert not (first == second).any()
    assert not ((labels[first] == 1) & (labels[second] == 1)).any()
    assert same.sum().item() == 100  # the same-class half is all noise-noise


def test_pairs_need_both_classes():
    with pytest.raises(SingleClassError):
        sample_pairs(torch.zeros(10, dtype=torch.int64), 8, torch.Generator())


# -- losses -----------------------------------------------------------------------------
def test_pair_loss_matches_the_contrastive_formula():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    same = torch.tensor([1.0, 1.0, 0.0, 0.0])
    # distances: 0, sqrt(2), sqrt(2), 2 -> [0, 2, relu(1.5 - 1.414)^2, 0]
    expected = (0 + 2 + (1.5 - np.sqrt(2)) ** 2 + 0) / 4
    assert pair_loss(a, b, same, margin=1.5).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(InvalidInputError):
        pair_loss(a, b[:3], same)


def test_nt_xent_matches_a_direct_computation_and_rewards_agreeing_views():
    generator = torch.Generator().manual_seed(0)
    z1 = torch.nn.functional.normalize(torch.randn(6, 4, generator=generator), dim=1)
    z2 = torch.nn.functional.normalize(torch.randn(6, 4, generator=generator), dim=1)
    views = torch.cat([z1, z2])
    expected = 0.0
    for i in range(12):
        partner = (i + 6) % 12
        others = [j for j in range(12) if j != i]
        logits = torch.stack([views[i] @ views[j] / 0.5 for j in others])
        expected -= (views[i] @ views[partner] / 0.5 - torch.logsumexp(logits, 0)).item()
    assert nt_xent_loss(z1, z2, 0.5).item() == pytest.approx(expected / 12, rel=1e-5)
    assert nt_xent_loss(z1, z1, 0.5) < nt_xent_loss(z1, z2, 0.5)


# -- gallery ----------------------------------------------------------------------------
def _toy_gallery():
    rng = np.random.default_rng(0)
    centres = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = np.array([0] * 30 + [1] * 3)
    points = centres[labels] + 0.05 * rng.standard_normal((33, 3))
    return points / np.linalg.norm(points, axis=1, keepdims=True), labels, centres


def test_gallery_scores_separate_a_separable_toy_set_despite_the_imbalance():
    gallery, labels, centres = _toy_gallery()
    rng = np.random.default_rng(1)
    queries = centres[[0, 1, 0, 1]] + 0.05 * rng.standard_normal((4, 3))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    scores = gallery_scores(queries @ gallery.T, labels, k=5)
    assert (scores[[1, 3]] > 0.9).all()
    assert (scores[[0, 2]] < 0.1).all()
    # blind to the class ratio: adding far-away noise examples changes nothing
    far = -np.tile(centres[1], (20, 1))
    more = np.concatenate([gallery, far])
    more_labels = np.concatenate([labels, np.zeros(20, dtype=int)])
    assert np.allclose(gallery_scores(queries @ more.T, more_labels, k=5), scores)


def test_leave_one_out_scores_each_member_against_the_others():
    gallery, labels, _ = _toy_gallery()
    scores = leave_one_out_scores(gallery, labels, k=5)
    for i in (0, 31, 32):
        rest = np.arange(len(labels)) != i
        alone = gallery_scores(gallery[i : i + 1] @ gallery[rest].T, labels[rest], k=5)
        assert scores[i] == pytest.approx(alone[0])
    assert (scores[labels == 1] > 0.9).all()
    assert (scores[labels == 0] < 0.1).all()


def test_gallery_scores_refuse_a_one_class_gallery_and_bad_shapes():
    with pytest.raises(InvalidInputError, match="class 1"):
        gallery_scores(np.ones((2, 3)), np.zeros(3, dtype=int))
    with pytest.raises(InvalidInputError, match="shape"):
        gallery_scores(np.ones((2, 3)), np.array([0, 1]))


def test_nearest_neighbours_sorts_the_most_similar_first():
    similarity = np.array([[0.1, 0.9, 0.5, 0.7], [0.3, 0.2, 0.8, 0.1]])
    values, indices = nearest_neighbours(similarity, 3)
    assert indices.tolist() == [[1, 3, 2], [2, 0, 1]]
    assert np.allclose(values, [[0.9, 0.7, 0.5], [0.8, 0.3, 0.2]])
    with pytest.raises(InvalidInputError, match="k must"):
        nearest_neighbours(similarity, 5)


# -- the classifier ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    return simulate_crops(80, seed=11), simulate_crops(600, seed=12)


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    return SiameseClassifier(random_state=0, **FAST).fit(train.crops, train.labels)


@pytest.mark.slow
def test_siamese_learns_from_few_labels(fitted, data):
    _, test = data
    f1 = precision_recall_f1(test.labels, fitted.predict(test.crops))["f1"]
    assert f1 > 0.55  # about 0.75 measured; the feature forest scores about 0.7 here
    assert 0.0 <= fitted.cv_metrics_["f1"] <= 1.0
    assert fitted.cv_metrics_["n_positive"] == int(data[0].labels.sum())


def test_siamese_works_from_20_labels_with_2_positives():
    pool = simulate_crops(300, seed=5)
    index = np.concatenate([np.flatnonzero(pool.labels == 1)[:2],
                            np.flatnonzero(pool.labels == 0)[:18]])  # fmt: skip
    model = SiameseClassifier(random_state=0, **FAST).fit(pool.crops[index], pool.labels[index])
    proba = model.predict_proba(pool.crops[:50])
    assert proba.shape == (50, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert model.cv_metrics_["n_folds"] == 2


def test_kneighbors_finds_a_gallery_crop_itself_first(fitted, data):
    train, _ = data
    similarities, indices = fitted.kneighbors(train.crops[:10], k=4)
    assert indices.shape == similarities.shape == (10, 4)
    assert indices[:, 0].tolist() == list(range(10))
    assert np.allclose(similarities[:, 0], 1.0, atol=1e-5)
    assert (np.diff(similarities, axis=1) <= 1e-7).all()


def test_add_to_gallery_without_retraining(fitted, data):
    _, test = data
    model = SiameseClassifier(**FAST).set_params(random_state=0)
    model.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    encoder_before = {k: v.clone() for k, v in model.encoder_.state_dict().items()}
    signal = test.crops[test.labels == 1][:3]
    before = model.decision_function(signal)
    model.add_to_gallery(signal, np.ones(3, dtype=int))
    assert len(model.gallery_labels_) == len(fitted.gallery_labels_) + 3
    for name, value in model.encoder_.state_dict().items():
        assert torch.equal(value, encoder_before[name])
    after = model.decision_function(signal)
    assert (after > before).all()  # each now has itself as a signal neighbour
    _, indices = model.kneighbors(signal, k=1)
    assert indices[:, 0].tolist() == [len(model.gallery_labels_) - 3 + i for i in range(3)]
    bad = signal.copy()
    bad[0, 5, 5] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        model.add_to_gallery(bad, np.ones(3, dtype=int))


def test_onnxruntime_and_torch_give_the_same_embeddings(fitted, data):
    _, test = data
    on_ort = fitted.transform(test.crops[:40])
    assert fitted.graph_.runner("onnx") is not None
    fitted.set_params(backend="torch")
    try:
        on_torch = fitted.transform(test.crops[:40])
    finally:
        fitted.set_params(backend="auto")
    assert on_ort.shape == (40, 32)
    np.testing.assert_allclose(on_ort, on_torch, atol=1e-5)


def test_save_and_load_round_trip(fitted, data, tmp_path):
    _, test = data
    fitted.save(tmp_path / "phase1")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "phase1.safetensors"), "pt") as stored:
        assert "onnx_graph" in set(stored.keys())  # loading does not re-export
    loaded = SiameseClassifier.load(tmp_path / "phase1")
    assert np.allclose(loaded.predict_proba(test.crops), fitted.predict_proba(test.crops))
    assert loaded.threshold_ == fitted.threshold_
    neighbours = loaded.kneighbors(test.crops[:5])[1]
    assert np.array_equal(neighbours, fitted.kneighbors(test.crops[:5])[1])


def test_pretraining_uses_the_unlabelled_crops_and_is_reproducible(data):
    train, test = data
    unlabeled = simulate_crops(200, seed=13).crops
    first = SiameseClassifier(random_state=1, **FAST).fit(train.crops, train.labels,
                                                         unlabeled=unlabeled)  # fmt: skip
    again = SiameseClassifier(random_state=1, **FAST).fit(train.crops, train.labels,
                                                         unlabeled=unlabeled)  # fmt: skip
    plain = SiameseClassifier(random_state=1, **FAST).fit(train.crops, train.labels)
    assert first.cv_metrics_["pretrained"]
    assert not plain.cv_metrics_["pretrained"]
    assert first.pretrain_state_ is not None
    assert plain.pretrain_state_ is None
    assert np.array_equal(first.decision_function(test.crops), again.decision_function(test.crops))
    assert not np.allclose(first.decision_function(test.crops), plain.decision_function(test.crops))


def test_bad_gallery_input_is_refused(data):
    train, _ = data
    with pytest.raises(SingleClassError):
        SiameseClassifier(**FAST).fit(train.crops[:10], np.zeros(10, dtype=int))
    crops = train.crops.copy()
    crops[3, 0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        SiameseClassifier(**FAST).fit(crops, train.labels)
    with pytest.raises(InvalidInputError, match="unlabeled"):
        SiameseClassifier(**FAST).fit(train.crops, train.labels, unlabeled=np.zeros((4, 32, 32)))


def test_feasible_folds_never_exceed_the_rarer_class():
    from blobsift.splits import feasible_folds

    labels = np.array([1, 1, 1] + [0] * 30)
    assert feasible_folds(labels, 5) == 3
    assert feasible_folds(labels, 2) == 2
    assert feasible_folds(np.array([1, 0, 0, 0]), 5) == 2  # never fewer than 2
