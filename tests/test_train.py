"""The specification's training loop, with each of its bugs driven to the case that broke."""

import math

import numpy as np
import pytest
import torch

from blobsift import SignalClassifier, SingleClassError, evaluate_classifier, train_classifier
from blobsift.nn.loop import (
    EarlyStopping,
    default_focal_alpha,
    resolve_device,
    trivial_f1,
    warmup_cosine,
)


def _separable(n, n_pos, seed=0):
    """Flat noise crops; positives carry a bright Gaussian spot at the centre."""
    rng = np.random.default_rng(seed)
    crops = rng.normal(100.0, 5.0, size=(n, 64, 64)).astype(np.float32)
    rows, cols = np.mgrid[0:64, 0:64]
    spot = 60.0 * np.exp(-((rows - 32) ** 2 + (cols - 32) ** 2) / (2 * 1.5**2))
    labels = np.zeros(n, dtype=np.int64)
    labels[:n_pos] = 1
    crops[:n_pos] += spot.astype(np.float32)
    order = rng.permutation(n)
    return crops[order], labels[order]


def _tiny_model():
    return SignalClassifier(channels=(4, 8), hidden=8, input_size=16)


@pytest.mark.parametrize("epochs", [1, 3, 5, 6, 75])
def test_lr_schedule_is_defined_for_any_epoch_count(epochs):
    # The specification divided by (epochs - warmup): epochs <= 5 raised ZeroDivisionError.
    factor = warmup_cosine(epochs)
    values = [factor(e) for e in range(epochs)]
    assert all(math.isfinite(v) and 0 <= v <= 1 for v in values)
    assert max(values) == pytest.approx(1.0)


def test_lr_schedule_warms_up_then_decays():
    factor = warmup_cosine(75)
    assert factor(0) == pytest.approx(0.1)
    assert factor(5) == pytest.approx(1.0)
    assert factor(40) == pytest.approx(0.5 * (1 + math.cos(math.pi * 35 / 70)))
    assert factor(74) < 0.01


def test_training_set_smaller_than_one_batch_still_trains():
    # drop_last=True with 5 crops and batch 8 gave zero batches and a division by zero.
    crops, labels = _separable(5, 2)
    history = train_classifier(
        _tiny_model(), crops, labels, crops, labels, epochs=3, batch_size=8, seed=0
    )
    assert history["epochs_run"] == 3
    assert all(math.isfinite(loss) and loss > 0 for loss in history["train_loss"])


def test_a_trailing_single_crop_does_not_break_batch_norm():
    crops, labels = _separable(17, 4)  # 17 = 2 * 8 + 1
    history = train_classifier(
        _tiny_model(), crops, labels, crops, labels, epochs=2, batch_size=8, seed=0
    )
    assert all(math.isfinite(loss) for loss in history["train_loss"])


def test_default_device_works_without_cuda():
    # The specification defaulted to device='cuda', which fails on a CPU-only machine.
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    crops, labels = _separable(20, 5)
    model = _tiny_model()
    train_classifier(model, crops, labels, crops, labels, epochs=1, seed=0)
    assert next(model.parameters()).device.type == expected


def test_evaluation_runs_in_bounded_batches():
    # The specification pushed the whole validation set through one forward pass.
    crops, labels = _separable(300, 30)
    model = _tiny_model()
    sizes = []
    model.register_forward_hook(lambda module, args, out: sizes.append(args[0].shape[0]))
    metrics = evaluate_classifier(model, crops, labels, batch_size=64)
    assert max(sizes) == 64
    assert sum(sizes) == 300
    assert metrics["n"] == 300


def test_focal_alpha_follows_the_sampling():
    # alpha=0.25 down-weights positives; combined with oversampling the two fight.
    assert default_focal_alpha("weighted") == 0.5
    assert default_focal_alpha("oversample") == 0.5
    assert default_focal_alpha("none") > 0.5


def test_patience_waits_for_warmup_and_for_learning_to_start():
    # With few positives validation F1 stays 0 for a while; the specification counted
    # those epochs against patience and stopped at epoch 15 before learning anything.
    stopper = EarlyStopping(patience=3, start_epoch=5, baseline=0.18)
    for epoch in range(20):
        stopper.update(epoch, (0.18 if epoch % 2 else 0.0, 0.1, -1.0))
    assert not stopper.should_stop
    stopper.update(20, (0.6, 0.5, -0.5))
    for epoch in range(21, 24):
        stopper.update(epoch, (0.5, 0.4, -0.6))
    assert stopper.should_stop
    assert stopper.best_epoch == 20


def test_epochs_before_warmup_end_do_not_count():
    stopper = EarlyStopping(patience=2, start_epoch=5)
    stopper.update(0, (0.9,))
    for epoch in range(1, 5):
        stopper.update(epoch, (0.1,))
    assert not stopper.should_stop


def test_slow_start_is_not_cut_off_at_patience():
    # Validation crops that all look alike: no model can beat calling everything signal,
    # so validation F1 never rises above that trivial level and patience must not count.
    crops, labels = _separable(40, 4, seed=3)
    val_crops = np.repeat(crops[:1], 40, axis=0)
    history = train_classifier(
        _tiny_model(), crops, labels, val_crops, labels, epochs=12, early_stop_patience=2, seed=0
    )
    assert max(history["val_f1"]) == pytest.approx(trivial_f1(labels))
    assert history["epochs_run"] == 12


def test_best_state_is_restored():
    crops, labels = _separable(60, 12, seed=1)
    val_crops, val_labels = _separable(60, 12, seed=2)
    model = _tiny_model()
    history = train_classifier(model, crops, labels, val_crops, val_labels, epochs=8, seed=0)
    restored = evaluate_classifier(model, val_crops, val_labels)
    assert restored["best_f1"] == pytest.approx(history["best_f1"])
    assert history["best_f1"] == max(history["val_f1"])


def test_callback_gets_every_epoch_and_nothing_is_printed(capsys):
    crops, labels = _separable(30, 6)
    events = []
    train_classifier(
        _tiny_model(), crops, labels, crops, labels, epochs=4, seed=0, callback=events.append
    )
    assert [e["epoch"] for e in events] == [1, 2, 3, 4]
    assert {"train_loss", "val_f1", "is_best", "lr", "total_epochs"} <= set(events[0])
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("sampling", ["none", "weighted", "oversample"])
def test_training_learns_a_separable_problem(sampling):
    crops, labels = _separable(120, 12, seed=4)
    val_crops, val_labels = _separable(200, 20, seed=5)
    model = _tiny_model()
    train_classifier(
        model, crops, labels, val_crops, val_labels, epochs=10, sampling=sampling, seed=0
    )
    test_crops, test_labels = _separable(300, 30, seed=6)
    assert evaluate_classifier(model, test_crops, test_labels)["best_f1"] >= 0.95


def test_training_needs_both_classes():
    crops, labels = _separable(10, 0)
    with pytest.raises(SingleClassError):
        train_classifier(_tiny_model(), crops, labels, crops, labels, epochs=1)


def test_a_frozen_body_keeps_its_weights_while_the_head_learns():
    from blobsift.nn.loop import Trainer

    crops, labels = _separable(40, 8)
    model = _tiny_model()
    # learnt weights only: batch-norm running statistics follow the data in training mode
    body_before = {
        k: v.clone()
        for k, v in model.features.state_dict().items()
        if k.endswith(("weight", "bias"))
    }
    head_before = model.head[-1].weight.detach().clone()
    trainer = Trainer(
        model, torch.from_numpy(crops), torch.from_numpy(labels), epochs=4, learning_rate=1e-2,
        batch_size=8, weight_decay=1e-4, sampling="weighted", device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0), body_learning_rate=0.5, frozen_epochs=2,
    )  # fmt: skip
    assert [group["lr"] for group in trainer.optimizer.param_groups] == [1e-3, 0.0]
    trainer.train_epochs(2)
    after = model.features.state_dict()
    assert all(torch.equal(after[k], v) for k, v in body_before.items())
    assert not torch.equal(model.head[-1].weight, head_before)
    trainer.train_epoch()  # unfrozen: the body learns at half the head's rate
    head_lr, body_lr = (group["lr"] for group in trainer.optimizer.param_groups)
    assert body_lr == pytest.approx(0.5 * head_lr)
    assert not all(torch.equal(model.features.state_dict()[k], v) for k, v in body_before.items())
