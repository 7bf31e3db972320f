"""The one epoch loop of every direct classifier, and what it is built from.

* :class:`Trainer`: one model with its optimiser, warm-up + cosine schedule
  (:func:`warmup_cosine`) and batch stream, trained one epoch at a time;
* :func:`run_epochs`: trains trainers in lockstep, validates after each epoch, keeps the
  best state (:class:`EarlyStopping`), reports an :class:`EpochRecord` as a
  :class:`~blobsift.types.ProgressEvent` and puts the best weights back at the end.
  :func:`~blobsift.nn.train.train_classifier` runs it with one trainer and a validation
  set; :class:`~blobsift.classify.cnn.CNNClassifier` with one trainer per fold, scored on
  their pooled out-of-fold logits;
* :func:`predict_logits`, :func:`summarise_logits`: the validation step;
* :func:`seeded`: reproducible fits that leave the caller's torch random state alone.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from blobsift.metrics import average_precision, best_threshold, binary_counts
from blobsift.nn.augment import Augmentation
from blobsift.nn.data import balance_dataset, create_weighted_sampler, network_input
from blobsift.nn.losses import FocalLoss
from blobsift.nn.threads import torch_threads
from blobsift.types import Progress, ProgressEvent

__all__ = [
    "SAMPLINGS",
    "WARMUP_EPOCHS",
    "EarlyStopping",
    "EpochRecord",
    "Trainer",
    "default_focal_alpha",
    "predict_logits",
    "resolve_device",
    "run_epochs",
    "seeded",
    "summarise_logits",
    "trivial_f1",
    "warmup_cosine",
]

Sampling = Literal["none", "weighted", "oversample"]
SAMPLINGS: tuple[str, ...] = ("none", "weighted", "oversample")
WARMUP_EPOCHS = 5
_AUGMENT_CHUNK = 512  # crops augmented together


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Return ``device``, or CUDA when available and CPU otherwise when it is None."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator for the block, and give the caller's state back after.

    Layer initialisation and dropout draw from the global generator; an estimator's
    ``fit`` seeds it for reproducible results inside this block only, so fitting never
    changes the random state its caller sees.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def warmup_cosine(epochs: int, warmup_epochs: int = WARMUP_EPOCHS) -> Callable[[int], float]:
    """Learning-rate factor per epoch: linear warm-up from 0.1, then cosine decay to 0.

    The warm-up is shortened to leave at least one cosine epoch, so any ``epochs >= 1``
    works (the specification divided by ``epochs - warmup`` and failed for short runs).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}.")
    warmup = min(max(warmup_epochs, 0), epochs - 1)
    decay = epochs - warmup

    def factor(epoch: int) -> float:
        if epoch < warmup:
            return 0.1 + 0.9 * epoch / warmup
        progress = (epoch - warmup) / decay
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def trivial_f1(labels: torch.Tensor | np.ndarray) -> float:
    """F1 of calling every crop signal: what an untrained model scores at its lowest threshold."""
    share = float(np.mean(np.asarray(labels))) if len(labels) else 0.0
    return 2 * share / (1 + share)


def default_focal_alpha(sampling: str) -> float:
    """The focal-loss ``alpha`` that fits a sampling scheme.

    Balanced sampling already gives positives equal weight, so ``alpha`` is neutral (0.5);
    without it, ``alpha`` weights the rare positives up (0.75) instead of down (0.25).
    """
    return 0.75 if sampling == "none" else 0.5


class EarlyStopping:
    """Keep the best score and decide when to stop.

    Scores are tuples compared lexicographically (e.g. ``(f1, average_precision,
    -loss)``). Patience counts epochs without improvement, but only from ``start_epoch``
    on and only once the first score component has risen above ``baseline`` (the F1 of
    calling every crop signal, which any untrained model reaches at its lowest threshold).

    Parameters
    ----------
    patience : int
        Epochs without improvement before stopping.
    start_epoch : int
        First (0-based) epoch at which patience may count, e.g. the end of the warm-up.
    baseline : float
        The first score component must exceed this before patience counts.
    """

    def __init__(self, patience: int, start_epoch: int = 0, baseline: float = 0.0) -> None:
        self.patience = patience
        self.start_epoch = start_epoch
        self.baseline = baseline
        self.best_score: tuple[float, ...] | None = None
        self.best_epoch = -1
        self.waited = 0

    def update(self, epoch: int, score: tuple[float, ...]) -> bool:
        """Record the score of ``epoch``; return True if it is the best so far."""
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch, self.waited = score, epoch, 0
            return True
        if epoch >= self.start_epoch and self.best_score[0] > self.baseline:
            self.waited += 1
        return False

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` counted epochs passed without improvement."""
        return self.waited >= self.patience


def predict_logits(
    model: nn.Module, crops: torch.Tensor, device: torch.device, batch_size: int = 256
) -> torch.Tensor:
    """Run ``model`` over normalised ``crops`` (N, 1, H, W) in batches; return (N,) logits."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            batch = crops[start : start + batch_size].to(device)
            outputs.append(model(batch).reshape(-1).float().cpu())
    return torch.cat(outputs) if outputs else torch.empty(0)


def summarise_logits(
    logits: torch.Tensor, labels: torch.Tensor, criterion: nn.Module, threshold: float
) -> dict[str, float]:
    """Metrics of logits against labels; see :func:`evaluate_classifier` for the keys."""
    probs = torch.sigmoid(logits).numpy().astype(np.float64)
    truth = labels.numpy()
    counts = binary_counts(truth, probs >= threshold)
    best = best_threshold(truth, probs)
    return {
        "loss": float(criterion(logits, labels.float())) if len(labels) else 0.0,
        "precision": counts.precision,
        "recall": counts.recall,
        "f1": counts.f1,
        "best_f1": best.f1,
        "best_threshold": best.threshold,
        "best_precision": best.precision,
        "best_recall": best.recall,
        "average_precision": average_precision(truth, probs),
        "n": len(truth),
    }


class Trainer:
    """One model with its optimiser, schedule and data stream, trained epoch by epoch.

    :func:`train_classifier` drives one trainer; the cross-validated ensemble of
    :class:`~blobsift.classify.cnn.CNNClassifier` drives several in lockstep.

    Parameters
    ----------
    model : nn.Module
        Maps (B, 1, H, W) normalised crops to (B, 1) logits.
    crops : Tensor (N, H, W)
        Raw training crops.
    labels : Tensor (N,)
        Binary labels, or soft targets in [0, 1] (a teacher's probabilities, for
        distillation) for a ``criterion`` that takes them.
    epochs, learning_rate, batch_size, weight_decay, max_grad_norm, warmup_epochs
        The optimisation recipe.
    body_learning_rate : float
        The learning rate of everything but the model's ``head`` (its feature body), as a
        share of ``learning_rate``: below 1 fine-tunes a pre-trained body gently while a
        new head learns at the full rate. Ignored for a model without a ``head``.
    frozen_epochs : int
        Epochs at the start during which the body does not learn at all (learning rate
        0): the new head first fits the pre-trained features, so its first large
        gradients do not disturb them.
    sampling : {"none", "weighted", "oversample"}
        How batches are drawn: uniformly, by a class-balanced weighted sampler, or from a
        dataset with positives repeated to 30%.
    sampling_labels : Tensor (N,), optional
        The binary classes that ``sampling`` balances, where ``labels`` are soft targets
        (for distillation, the teacher's decisions); ``labels`` by default. Balancing by a
        function of the crop alone leaves the best prediction of each crop unchanged.
    criterion : nn.Module, optional
        Training loss; focal loss with :func:`default_focal_alpha` by default.
    augment : Augmentation, optional
        Applied to the raw crops of each batch before normalisation.
    device : torch.device
    generator : torch.Generator
        The only source of randomness (shuffling, sampling, augmentation).
    """

    def __init__(
        self,
        model: nn.Module,
        crops: torch.Tensor,
        labels: torch.Tensor,
        *,
        epochs: int,
        learning_rate: float,
        batch_size: int,
        weight_decay: float,
        sampling: str,
        device: torch.device,
        generator: torch.Generator,
        sampling_labels: torch.Tensor | None = None,
        criterion: nn.Module | None = None,
        augment: Augmentation | None = None,
        max_grad_norm: float = 1.0,
        warmup_epochs: int = WARMUP_EPOCHS,
        body_learning_rate: float = 1.0,
        frozen_epochs: int = 0,
    ) -> None:
        self.model = model.to(device)
        self.device = device
        self.labels = labels
        self.batch_size = batch_size
        self.sampling = sampling
        self.generator = generator
        self.augment = augment
        self.max_grad_norm = max_grad_norm
        self.criterion = criterion or FocalLoss(alpha=default_focal_alpha(sampling))
        # Without augmentation the normalised crops never change: normalise them once.
        self.crops = crops if augment is not None else network_input(crops)
        schedule = warmup_cosine(epochs, warmup_epochs)
        groups = _parameter_groups(model)

        def body_schedule(epoch: int) -> float:
            return 0.0 if epoch < frozen_epochs else body_learning_rate * schedule(epoch)

        self.optimizer = torch.optim.AdamW(groups, lr=learning_rate, weight_decay=weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, [schedule, body_schedule][: len(groups)]
        )
        classes = labels if sampling_labels is None else sampling_labels
        if sampling == "weighted":
            self._sampler = create_weighted_sampler(classes, generator=generator)
        elif sampling == "oversample":
            self._pool, _ = balance_dataset(torch.arange(len(labels)), classes, generator=generator)

    def _epoch_indices(self) -> torch.Tensor:
        if self.sampling == "weighted":
            return torch.tensor(list(self._sampler), dtype=torch.int64)
        pool = self._pool if self.sampling == "oversample" else torch.arange(len(self.labels))
        return pool[torch.randperm(len(pool), generator=self.generator)]

    def _chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (normalised crops, labels) of the epoch in chunks of whole batches.

        Augmentation and normalisation run on a chunk at once, which costs far less per
        crop than on one small batch at a time.
        """
        indices = self._epoch_indices()
        # Batch norm cannot train on one crop: fold a trailing single crop away.
        if len(indices) > self.batch_size and len(indices) % self.batch_size == 1:
            indices = indices[:-1]
        step = self.batch_size * max(1, _AUGMENT_CHUNK // self.batch_size)
        for start in range(0, len(indices), step):
            index = indices[start : start + step]
            x = self.crops[index]
            if self.augment is not None:
                x = network_input(self.augment(x, self.generator))
            yield x, self.labels[index]

    def train_epochs(self, epochs: int) -> None:
        """Train ``epochs`` epochs with no validation (e.g. for an epoch count found before)."""
        for _ in range(epochs):
            self.train_epoch()

    def train_epoch(self) -> float:
        """Train one epoch; return the mean training loss over its batches."""
        self.model.train()
        total, batches = 0.0, 0
        for chunk_x, chunk_y in self._chunks():
            for start in range(0, len(chunk_x), self.batch_size):
                x = chunk_x[start : start + self.batch_size].to(self.device)
                y = chunk_y[start : start + self.batch_size].to(self.device, torch.float32)
                self.optimizer.zero_grad(set_to_none=True)
                loss = self.criterion(self.model(x), y)
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.max_grad_norm)
                self.optimizer.step()
                total += float(loss.detach())
                batches += 1
        self.scheduler.step()
        return total / max(batches, 1)

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next epoch (the head's, where the body has its own)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def state(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the model's weights."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}


def _parameter_groups(model: nn.Module) -> list[dict[str, list[nn.Parameter]]]:
    """The model's parameters as optimiser groups: its ``head``, then the rest if any."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module):
        return [{"params": list(model.parameters())}]
    own = {id(p) for p in head.parameters()}
    body = [p for p in model.parameters() if id(p) not in own]
    groups = [{"params": list(head.parameters())}]
    return groups + ([{"params": body}] if body else [])


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of :func:`run_epochs` measured.

    Attributes
    ----------
    epoch : int
        1-based.
    total_epochs : int
        The most epochs the run may take.
    lr : float
        The learning rate the epoch trained at.
    train_loss : float
        Mean training loss over the epoch's batches (and over the trainers).
    metrics : dict
        The validation metrics after the epoch (:func:`summarise_logits`).
    is_best : bool
        Whether it is the best epoch so far (its weights are the ones kept so far).
    """

    epoch: int
    total_epochs: int
    lr: float
    train_loss: float
    metrics: dict[str, float]
    is_best: bool

    def event(self) -> ProgressEvent:
        """The progress event of this epoch: stage ``"epoch"``, the specification's keys."""
        details = {
            "epoch": self.epoch,
            "total_epochs": self.total_epochs,
            "train_loss": self.train_loss,
            "val_loss": self.metrics["loss"],
            "val_f1": self.metrics["best_f1"],
            "is_best": self.is_best,
            "lr": self.lr,
        }
        return ProgressEvent(
            stage="epoch", done=self.epoch, total=self.total_epochs, details=details
        )


def run_epochs(
    trainers: Sequence[Trainer],
    epochs: int,
    validate: Callable[[], dict[str, float]],
    stopper: EarlyStopping,
    *,
    callback: Progress | None = None,
    on_best: Callable[[], None] | None = None,
) -> list[EpochRecord]:
    """The one epoch loop: train, validate, keep the best state, report, stop early.

    Every trainer trains one epoch in lockstep; ``validate`` then measures them (one model
    on a validation set, or a fold ensemble on its pooled out-of-fold scores). An epoch is
    scored by (validation F1 at the best threshold, average precision, -loss); the best
    epoch's weights are kept and put back into every trainer's model at the end.

    Parameters
    ----------
    trainers : sequence of Trainer
        The models, trained together.
    epochs : int
        The most epochs to run.
    validate : callable
        ``validate() -> metrics`` (the keys of :func:`summarise_logits`) after each epoch.
    stopper : EarlyStopping
        Decides the best epoch and when to stop.
    callback : callable, optional
        Called after every epoch with :meth:`EpochRecord.event`.
    on_best : callable, optional
        Called after each new best epoch, to keep what goes with its weights (e.g. the
        out-of-fold scores).

    Returns
    -------
    list of EpochRecord
        One per epoch run.
    """
    with torch_threads():
        records = _epochs(trainers, epochs, validate, stopper, callback, on_best)
    return records


def _epochs(
    trainers: Sequence[Trainer],
    epochs: int,
    validate: Callable[[], dict[str, float]],
    stopper: EarlyStopping,
    callback: Progress | None,
    on_best: Callable[[], None] | None,
) -> list[EpochRecord]:
    """The body of :func:`run_epochs`."""
    best_states = [trainer.state() for trainer in trainers]
    records = []
    for epoch in range(epochs):
        lr = trainers[0].learning_rate
        train_loss = float(np.mean([trainer.train_epoch() for trainer in trainers]))
        metrics = validate()
        score = (metrics["best_f1"], metrics["average_precision"], -metrics["loss"])
        is_best = stopper.update(epoch, score)
        if is_best:
            best_states = [trainer.state() for trainer in trainers]
            if on_best is not None:
                on_best()
        record = EpochRecord(epoch + 1, epochs, lr, train_loss, metrics, is_best)
        records.append(record)
        if callback is not None:
            callback(record.event())
        if stopper.should_stop:
            break
    for trainer, state in zip(trainers, best_states, strict=True):
        trainer.model.load_state_dict(state)
    return records
