"""The Phase 1 -> Phase 2 policy and Sifter's automatic choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blobsift import Sifter
from blobsift.classify import sifter as sifter_module
from blobsift.classify.cnn import CNNClassifier
from blobsift.classify.phases import PhaseRecord, phase2_retry, recommend_phase
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


def test_scores_from_too_few_positives_are_no_evidence_of_a_plateau():
    # 1.000 at 25, 50 and 100 labels, as the issue saw: with 2-4 positives not a plateau
    few = [(25, 1.0, 2), (50, 1.0, 4), (100, 1.0, 4)]
    phase, reason = recommend_phase(few)
    assert phase == "siamese"
    assert "plateaued" not in reason
    assert "too few positives" in reason
    # earlier scores from too few positives are left out: no recent score to compare with
    phase, reason = recommend_phase([(60, 1.0, 3), (80, 1.0, 4), (120, 1.0, 11)])
    assert phase == "cnn"
    assert "plateaued" not in reason
    assert "no Phase 1 score" in reason
    # the same scores with enough positives are a plateau
    assert "plateaued" in recommend_phase([(80, 1.0, 8), (120, 1.0, 11)])[1]


def test_phase2_is_not_retried_until_the_labels_have_grown():
    lost = PhaseRecord(100, 0.90, 9, phase2_score=0.70)
    reason = phase2_retry([(50, 0.8, 5), lost, PhaseRecord(150, 0.9, 14)])
    assert "tried at 100 labels and not kept" in reason
    assert "0.700" in reason
    assert "from 200 labels" in reason
    assert phase2_retry([lost, PhaseRecord(200, 0.9, 18)]) is None  # labels doubled
    assert phase2_retry([(100, 0.9), (150, 0.9)]) is None  # Phase 2 never lost
    # a later loss counts, an earlier one is forgotten
    later = PhaseRecord(300, 0.9, 27, phase2_score=0.8)
    assert "300 labels" in phase2_retry([lost, later, PhaseRecord(400, 0.9, 36)])


def test_phase_records_from_a_fit():
    scores = {"siamese": 0.9, "cnn_probe": 0.5}
    assert PhaseRecord.from_fit(120, 11, "siamese", scores) == (120, 0.9, 11, 0.5)
    assert PhaseRecord.from_fit(120, 11, "cnn", {"siamese": 0.9, "cnn": 0.95}).phase2_score is None
    assert PhaseRecord.from_fit(120, 11, "cnn", {"cnn": 0.95}) is None  # no Phase 1


@pytest.mark.parametrize(
    "history", [[], [(100, float("nan"))], [(-5, 0.5)], [(100, 0.5, 3, 0.1, 9)], [(100,)]]
)
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


def test_auto_skips_phase2_when_the_history_shows_it_lost_at_nearly_as_many_labels(labelled):
    history = [PhaseRecord(100, 1.0, 10, phase2_score=0.5)]  # a plateau, and Phase 2 lost
    sifter = Sifter(random_state=0, **FAST).fit(labelled.crops, labelled.labels, history=history)
    assert sifter.phase_ == "siamese"
    assert set(sifter.phase_scores_) == {"siamese"}  # no CNN trained, not even a probe
    assert "from 200 labels" in sifter.phase_reason_
    assert sifter.phase_history_[-1].phase2_score is None  # not tried this time


def test_auto_tries_phase2_again_once_the_labels_have_grown(labelled):
    history = [PhaseRecord(55, 1.0, 6, phase2_score=0.5)]  # 110 labels: doubled since
    sifter = Sifter(random_state=0, **FAST).fit(labelled.crops, labelled.labels, history=history)
    assert "cnn" in sifter.phase_scores_
    assert "plateau" in sifter.phase_reason_
    if sifter.phase_ == "siamese":  # lost again: the record says so, for the next fit
        assert sifter.phase_history_[-1].phase2_score == sifter.phase_scores_["cnn"]


def test_a_probe_that_shows_no_promise_spares_the_full_ensemble(labelled, monkeypatch):
    monkeypatch.setattr(sifter_module, "PROBE_OPTIONS", {"n_folds": 2, "epochs": 2, "refit": False})
    plateau = [(60, 1.0, 6), (80, 1.0, 8)]
    weak = Sifter(random_state=0, **{**FAST, "epochs": 4}, cnn__learning_rate=1e-7)
    weak.fit(labelled.crops, labelled.labels, history=plateau)
    assert set(weak.phase_scores_) == {"siamese", "cnn_probe"}
    assert weak.phase_ == "siamese"
    assert "short probe" in weak.phase_reason_
    assert weak.phase_history_[-1].phase2_score == weak.phase_scores_["cnn_probe"]
    # a probe that clears the bar leads to the full ensemble
    monkeypatch.setattr(sifter_module, "PROBE_ALLOWANCE", 2.0)
    keen = Sifter(random_state=0, **{**FAST, "epochs": 4}).fit(
        labelled.crops, labelled.labels, history=plateau
    )
    assert set(keen.phase_scores_) == {"siamese", "cnn_probe", "cnn"}
    assert "full ensemble is trained" in keen.phase_reason_


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
