"""The estimators follow scikit-learn's conventions: clone, set_params, fit returns self,
no global side effects; progress arrives as ProgressEvents."""

import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone

from blobsift import InvalidInputError, Sifter
from blobsift.classify.cnn import CNNClassifier
from blobsift.classify.pretraining import PretrainedEncoders, pretraining_key
from blobsift.classify.siamese import SiameseClassifier
from blobsift.simulate import simulate_crops
from blobsift.types import ProgressEvent

SIAMESE = {"pretrain_steps": 10, "finetune_steps": 10, "augment": False, "n_folds": 2}
CNN = {"epochs": 2, "n_folds": 2, "refit": True, "augment": False}


@pytest.fixture(scope="module")
def data():
    return simulate_crops(40, seed=2)


@pytest.mark.parametrize(
    "estimator",
    [
        Sifter(random_state=0, epochs=5, k=3),
        Sifter(phase="cnn", cnn__patience=4, siamese__pretrain_cache="somewhere"),
        SiameseClassifier(k=3, random_state=1),
        CNNClassifier(epochs=7, architecture={"hidden": 16}),
    ],
    ids=["sifter", "sifter-prefixed", "siamese", "cnn"],
)
def test_clone_gives_an_unfitted_estimator_with_equal_params(estimator):
    copied = clone(estimator)
    assert type(copied) is type(estimator)
    assert copied.get_params() == estimator.get_params()
    assert not hasattr(copied, "threshold_")


@pytest.mark.parametrize("cls", [SiameseClassifier, CNNClassifier])
def test_phase_classifiers_refuse_unknown_parameters(cls):
    with pytest.raises(InvalidInputError, match="bogus"):
        cls().set_params(bogus=1)


def test_sifter_refuses_unknown_option_names_at_once():
    with pytest.raises(InvalidInputError, match="bogus"):
        Sifter(bogus=1)
    with pytest.raises(InvalidInputError, match="magic"):
        Sifter(magic__k=3)
    with pytest.raises(InvalidInputError, match="no option 'epochs'"):
        Sifter(siamese__epochs=3)
    sifter = Sifter(epochs=5)
    with pytest.raises(InvalidInputError, match="bogus"):
        sifter.set_params(bogus=1, phase="cnn")
    assert sifter.phase == "auto"  # nothing is set when a name is refused
    assert sifter.get_params()["epochs"] == 5
    assert sifter.set_params(k=2, phase="siamese") is sifter
    assert sifter.get_params()["k"] == 2


@pytest.mark.parametrize(
    ("make", "fit"),
    [
        (lambda: SiameseClassifier(random_state=0, **SIAMESE), {"unlabeled": True}),
        (lambda: CNNClassifier(random_state=0, **CNN), {}),
        (lambda: Sifter(phase="cnn", random_state=0, **CNN), {}),
    ],
    ids=["siamese", "cnn", "sifter"],
)
def test_fit_returns_self_and_leaves_the_global_torch_rng_alone(data, make, fit):
    kwargs = {"unlabeled": simulate_crops(30, seed=5).crops} if fit else {}
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    estimator = make()
    assert estimator.fit(data.crops, data.labels, **kwargs) is estimator
    assert torch.equal(torch.random.get_rng_state(), before)
    # and the fit is still reproducible whatever the caller's state
    torch.manual_seed(99)
    again = make().fit(data.crops, data.labels, **kwargs)
    np.testing.assert_allclose(
        again.predict_proba(data.crops), estimator.predict_proba(data.crops), rtol=1e-5, atol=1e-6
    )


def test_a_pretrained_encoder_is_reused_from_the_cache_given(data, monkeypatch):
    import blobsift.classify.siamese as siamese

    calls = []
    real = siamese.pretrain_encoder
    monkeypatch.setattr(
        siamese, "pretrain_encoder", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    pool = simulate_crops(30, seed=5).crops
    cache = PretrainedEncoders()
    first = SiameseClassifier(random_state=0, **SIAMESE).fit(
        data.crops, data.labels, unlabeled=pool, encoders=cache
    )
    second = SiameseClassifier(random_state=0, **SIAMESE).fit(
        data.crops, data.labels, unlabeled=pool, encoders=cache
    )
    assert len(calls) == 1
    assert len(cache) == 1
    np.testing.assert_array_equal(first.oof_proba_, second.oof_proba_)
    SiameseClassifier(random_state=0, **SIAMESE).fit(data.crops, data.labels, unlabeled=pool)
    assert len(calls) == 2  # no process-wide cache: without one, the fit pre-trains


def test_the_cache_is_shared_not_copied_and_bounded():
    cache = PretrainedEncoders(size=2)
    assert copy.deepcopy(cache) is cache
    for i in range(3):
        cache.fetch(pretraining_key(np.zeros((2, 4, 4)), [i]), lambda: {"w": torch.zeros(1)})
    assert len(cache) == 2
    with pytest.raises(InvalidInputError, match="size"):
        PretrainedEncoders(size=0)


def test_a_sifter_keeps_its_encoders_across_refits(data, monkeypatch):
    pool = simulate_crops(30, seed=5).crops
    sifter = Sifter(
        phase="siamese", random_state=0, **{f"siamese__{k}": v for k, v in SIAMESE.items()}
    )
    sifter.fit(data.crops, data.labels, unlabeled=pool)
    assert len(sifter._encoders) == 1
    import blobsift.classify.siamese as siamese

    monkeypatch.setattr(siamese, "pretrain_encoder", None)  # a second pre-training would fail
    sifter.fit(data.crops, data.labels, unlabeled=pool)
    assert clone(sifter).get_params() == sifter.get_params()


def test_sifter_forwards_progress_events_with_the_phase(data):
    events = []
    options = {f"siamese__{k}": v for k, v in SIAMESE.items()}
    Sifter(phase="cnn", random_state=0, callback=events.append, **options, **CNN).fit(
        data.crops, data.labels, unlabeled=simulate_crops(30, seed=5).crops
    )
    assert all(isinstance(event, ProgressEvent) for event in events)
    stages = {event.stage for event in events}
    assert stages == {"pretrain", "finetune", "epoch"}
    for event in events:
        assert event["phase"] == ("cnn" if event.stage == "epoch" else "siamese")
        assert 1 <= event.done <= event.total
    epochs = [event for event in events if event.stage == "epoch"]
    assert [event.done for event in epochs] == [1, 2]
    keys = {"epoch", "total_epochs", "train_loss", "val_f1", "is_best", "phase"}
    assert keys <= set(epochs[0].details)
    assert "loss" in next(event for event in events if event.stage == "pretrain").details
