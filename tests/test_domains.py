"""Learning on both simulated domains: the learner must beat the trivial baseline on each."""

import numpy as np
import pytest

from blobsift import Sifter
from blobsift.classify.baselines import BrightnessCut
from blobsift.classify.cnn import CNNClassifier
from blobsift.metrics import best_threshold, precision_recall_f1
from blobsift.simulate import DOMAINS, simulate_crops


@pytest.mark.parametrize("domain", DOMAINS)
def test_sifter_beats_the_brightness_cut_at_100_labels(domain):
    # 100 labels (about 1 signal in 10) and 600 held-out crops from other simulated images.
    train = simulate_crops(100, seed=11, domain=domain)
    test = simulate_crops(600, seed=12, domain=domain)
    sifter = Sifter(random_state=0).fit(train.crops, train.labels)
    cut = BrightnessCut().fit(train.crops, train.labels)
    learned = precision_recall_f1(test.labels, sifter.predict(test.crops))["f1"]
    baseline = precision_recall_f1(test.labels, cut.predict(test.crops))["f1"]
    # Measured: spots 0.88 against 0.19, difference imaging 0.72 against 0.16.
    assert learned >= 0.6
    assert learned >= baseline + 0.3


@pytest.mark.slow
@pytest.mark.parametrize("domain", DOMAINS)
def test_the_phase_auto_keeps_at_300_labels_is_the_better_one_on_held_out_crops(domain):
    # 300 labels after a plateau of Phase 1, so that auto weighs Phase 2 (a probe, then
    # the full ensemble if the probe is within reach); both phases are then scored on
    # 1,000 held-out crops from other images. Phase 2 trains for 20 epochs (not 100) to
    # keep the test short; the property holds for any budget.
    train = simulate_crops(300, seed=21, domain=domain)
    test = simulate_crops(1000, seed=22, domain=domain)
    options = {"random_state": 0, "epochs": 20}
    auto = Sifter(**options).fit(train.crops, train.labels, history=[(200, 1.0), (250, 1.0)])
    assert "plateau" in auto.phase_reason_
    if auto.phase_ == "cnn":
        cnn = auto.estimator_
    else:
        cnn = Sifter(phase="cnn", **options).fit(train.crops, train.labels)
    held_out = {
        phase: precision_recall_f1(test.labels, model.predict(test.crops))["f1"]
        for phase, model in (("siamese", auto.gallery_), ("cnn", cnn))
    }
    other = "cnn" if auto.phase_ == "siamese" else "siamese"
    # The kept phase is not worse on held-out crops than the one set aside by more than
    # 0.04. On difference imaging the two phases are within 0.03 of each other, and the
    # fits move by that much between CPUs (the same code and seeds: Phase 2 scored 0.767
    # on one machine and 0.786 on another), so a tighter bound would test the hardware.
    # Measured (F1): spots, Phase 1 kept, 0.908 against Phase 2's 0.865 (its probe scored
    # 0.74 against Phase 1's 1.00); difference imaging, Phase 1 kept, 0.761 against 0.767
    # and 0.786 (probe 0.73 against 0.96).
    assert held_out[auto.phase_] >= held_out[other] - 0.04, (auto.phase_, held_out)


@pytest.mark.slow
@pytest.mark.parametrize("domain", DOMAINS)
def test_the_distilled_network_agrees_with_the_ensemble_it_was_distilled_from(domain, tmp_path):
    # 200 labels and 1,000 unlabelled candidates; 1,000 held-out crops from other images.
    train = simulate_crops(200, seed=31, domain=domain)
    unlabeled = simulate_crops(1000, seed=32, domain=domain).crops
    test = simulate_crops(1000, seed=33, domain=domain)
    options = {"epochs": 20, "random_state": 0}
    ensemble = CNNClassifier(**options).fit(train.crops, train.labels)
    distilled = CNNClassifier(predict_with="distilled", **options).fit(
        train.crops, train.labels, unlabeled=unlabeled
    )
    # The same seed trains the same fold models: the student's teacher is `ensemble`.
    np.testing.assert_array_equal(distilled.oof_proba_, ensemble.oof_proba_)
    assert distilled.threshold_ == ensemble.threshold_
    assert len(distilled.members_) == 1 < len(ensemble.members_)
    teacher, student = (m.predict_proba(test.crops)[:, 1] for m in (ensemble, distilled))
    f1 = [
        precision_recall_f1(test.labels, p >= ensemble.threshold_)["f1"] for p in (teacher, student)
    ]
    best = [best_threshold(test.labels, p).f1 for p in (teacher, student)]
    # Stated tolerance: held-out F1 (at the shared threshold) and best-F1 within 0.04 of
    # the ensemble's, the same decision on at least 97% of the crops, and probabilities
    # at most 0.07 apart on average. Measured: spots F1 0.788 against 0.810, best-F1 0.821
    # against 0.834, 99.1% agreement, 0.049 apart; difference imaging 0.817 against
    # 0.821, 0.833 against 0.854, 99.0%, 0.031.
    assert min(best) >= 0.75, best  # both learnt the problem
    assert f1[1] >= f1[0] - 0.04, f1
    assert best[1] >= best[0] - 0.04, best
    assert np.mean((student >= distilled.threshold_) == (teacher >= ensemble.threshold_)) >= 0.97
    assert np.mean(np.abs(student - teacher)) <= 0.07
    distilled.save(tmp_path / "distilled")
    loaded = CNNClassifier.load(tmp_path / "distilled")
    assert loaded.cv_metrics_["n_members"] == 1
    np.testing.assert_allclose(loaded.predict_proba(test.crops)[:, 1], student, atol=1e-5)
