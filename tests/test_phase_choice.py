"""At 300+ labels ``phase="auto"`` keeps the phase that is better on held-out crops."""

from __future__ import annotations

import pytest

from blobsift import Sifter
from blobsift.metrics import best_threshold
from blobsift.simulate import DOMAINS, simulate_crops

# Small and fast: no pre-training, a short pair training and a short Phase 2.
FAST = {"siamese__finetune_steps": 40, "epochs": 8, "cnn__n_folds": 3}
# Each phase crippled in turn, so that held-out crops tell the two apart clearly.
WEAK_PHASE1 = {"siamese__finetune_steps": 0, "siamese__augment": False}
WEAK_PHASE2 = {"cnn__learning_rate": 1e-7}


@pytest.fixture(scope="module", params=DOMAINS)
def data(request):
    domain = request.param
    return simulate_crops(300, seed=41, domain=domain), simulate_crops(600, seed=42, domain=domain)


def _held_out(model, test):
    return best_threshold(test.labels, model.predict_proba(test.crops)[:, 1]).f1


@pytest.mark.slow
@pytest.mark.parametrize("weak", [WEAK_PHASE1, WEAK_PHASE2], ids=["phase1-weak", "phase2-weak"])
def test_auto_keeps_the_phase_that_is_better_on_held_out_crops(data, weak):
    train, test = data
    options = {**FAST, **weak}
    auto = Sifter(random_state=0, **options).fit(train.crops, train.labels)
    # Phase 2 as auto trains it (same seed), whether or not auto kept it
    cnn = Sifter(phase="cnn", random_state=0, **options).fit(train.crops, train.labels)
    phase1, phase2 = _held_out(auto.gallery_, test), _held_out(cnn, test)
    assert abs(phase1 - phase2) >= 0.05, (phase1, phase2)  # a clear case, not a coin toss
    better = "siamese" if phase1 > phase2 else "cnn"
    assert auto.phase_ == better, (auto.phase_reason_, phase1, phase2)
