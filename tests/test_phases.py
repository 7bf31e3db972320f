"""The Phase 1 -> Phase 2 policy and Sifter's automatic choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blobsift import Sifter
from blobsift.classify.cnn import CNNClassifier
from blobsift.classify.phases import recommend_phase
from blobsift.classify.siamese import SiameseClassifier
from blobsift.exceptions import InvalidInputError, NotFittedError
from blobsift.nn.models import CropEncoder, transferable_state
from blobsift.simulate import simulate_crops

FAST = {"siamese__finetune_steps": 40, "siamese__pretrain_steps": 5, "epochs": 3}


def test_under_100_labels_phase1_is_recommended_whatever_the_scores():
    phase, reason = recommend_phase([(25, 0.5), (50, 0.7), (80, 0.7)])
    assert phase == "siamese"
    assert "80 labels" in reason
    assert "100+" in reason


def test_a_plateau_at_100_labels_switches_to_phase2():
    phase, reason = recommend_phase([(50, 0.80), (75, 0.84), (120, 0.845)])
    assert phase == "cnn"
    assert "plateau" in reason
    assert "0.840" in reason
    assert "0.845" in reason


def test_a_still_improving_phase1_is_kept_past_100_labels():
    phase, reason = recommend_phase([(60, 0.70), (90, 0.76), (130, 0.82)])
    assert phase == "siamese"
    assert "improving" in reason
    assert "+0.060" in reason


def test_only_recent_increments_count_and_order_does_not_matter():
    # 0.9 at 25 labels is old news; at 200 the recent reference is 0.70 at 150
    assert recommend_phase([(200, 0.80), (25, 0.90), (150, 0.70)])[0] == "siamese"
    # a drop over the recent increments is a plateau
    assert recommend_phase([(100, 0.85), (150, 0.80)])[0] == "cnn"


def test_without_an_earlier_score_phase2_is_tried_at_100_labels():
    phase, reason = recommend_phase([(150, 0.8)])
    assert phase == "cnn"
    assert "no Phase 1 score" in reason


@pytest.mark.parametrize("history", [[], [(100, float("nan"))], [(-5, 0.5)]])
def test_bad_histories_are_refused(history):
    with pytest.raises(InvalidInputError):
        recommend_phase(history)


# -- Sifter ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def labelled():
    return simulate_crops(110, seed=21)


def test_auto_uses_phase1_under_100_labels_and_records_why(tmp_path):
    data = simulate_crops(60, seed=22)
    sifter = Sifter(random_state=0, **FAST).fit(data.crops, data.labels)
    assert sifter.phase_ == "siamese"
    assert isinstance(sifter.estimator_, SiameseClassifier)
    assert "100+" in sifter.phase_reason_
    assert sifter.phase_history_[-1][0] == 60
    sifter.save(tmp_path / "m")
    loaded = Sifter.load(tmp_path / "m")
    assert (loaded.phase_, loaded.phase_reason_) == (sifter.phase_, sifter.phase_reason_)
    assert loaded.phase_history_ == [tuple(e) for e in sifter.phase_history_]
    assert np.allclose(loaded.predict_proba(data.crops), sifter.predict_proba(data.crops))


def test_auto_follows_an_improving_history_past_100_labels(labelled):
    sifter = Sifter(random_state=0, **FAST).fit(
        labelled.crops, labelled.labels, history=[(60, 0.0), (80, 0.1)]
    )
    assert sifter.phase_ == "siamese"
    assert "improving" in sifter.phase_reason_
    assert set(sifter.phase_scores_) == {"siamese"}


@pytest.mark.slow
def test_auto_tries_phase2_on_a_plateau_but_keeps_it_only_if_better(labelled, tmp_path):
    plateau = [(60, 1.0), (80, 1.0)]  # Phase 1 cannot improve on a perfect score
    sifter = Sifter(random_state=0, **FAST).fit(labelled.crops, labelled.labels, history=plateau)
    scores = sifter.phase_scores_
    assert set(scores) == {"siamese", "cnn"}
    assert "plateau" in sifter.phase_reason_
    if scores["cnn"] < scores["siamese"] + 0.02:
        assert sifter.phase_ == "siamese"
        assert "does not beat" in sifter.phase_reason_
    else:
        assert sifter.phase_ == "cnn"
        assert isinstance(sifter.estimator_, CNNClassifier)
    # a CNN that barely trains is clearly worse than the gallery: it is not kept
    weak = Sifter(random_state=0, **{**FAST, "epochs": 1, "cnn__n_folds": 2})
    weak.set_params(cnn__learning_rate=1e-6)
    weak.fit(labelled.crops, labelled.labels, history=plateau)
    assert weak.phase_scores_["cnn"] < weak.phase_scores_["siamese"] - 0.02
    assert weak.phase_ == "siamese"
    assert "does not beat" in weak.phase_reason_
    # the Phase 1 gallery is kept alongside Phase 2 and survives save/load
    sifter.save(tmp_path / "both")
    loaded = Sifter.load(tmp_path / "both")
    assert loaded.gallery_ is not None
    assert np.array_equal(
        loaded.kneighbors(labelled.crops[:4], 2)[1], sifter.kneighbors(labelled.crops[:4], 2)[1]
    )


def test_kneighbors_needs_a_phase1_gallery():
    data = simulate_crops(40, seed=23)
    sifter = Sifter(phase="cnn", random_state=0, epochs=2).fit(data.crops, data.labels)
    with pytest.raises(NotFittedError, match="Phase 1"):
        sifter.kneighbors(data.crops[:2])


def test_options_are_routed_to_the_phase_that_has_them():
    sifter = Sifter(epochs=4, k=3, siamese__learning_rate=0.01, cnn__n_folds=2)
    routed = sifter._phase_options()
    assert routed["cnn"] == {"epochs": 4, "n_folds": 2}
    assert routed["siamese"] == {"k": 3, "learning_rate": 0.01}
    for bad in ({"nonsense": 1}, {"gpu__k": 1}, {"siamese__epochs": 3}):
        with pytest.raises(InvalidInputError):
            Sifter(**bad)._phase_options()


def test_phase2_members_can_start_from_the_pretrained_encoder():
    from blobsift.classify.siamese import ENCODER_ARCHITECTURE

    encoder = CropEncoder(16, **ENCODER_ARCHITECTURE)
    state = transferable_state(encoder)
    assert not any(name.startswith("head.4.") for name in state)
    member = CNNClassifier()._build_member(state)
    for name, value in state.items():
        assert torch.equal(member.state_dict()[name], value)
    with pytest.raises(InvalidInputError, match="architecture"):
        CNNClassifier(architecture={"channels": [8, 16, 32]})._build_member(state)
