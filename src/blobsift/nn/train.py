"""Training and evaluation of a direct CNN classifier (the specification's Phase 2).

This implements the specification's recipe — focal loss, AdamW, warm-up then cosine
learning rate, gradient clipping, early stopping on validation F1 with best-state
restore — with its bugs fixed:

* the learning-rate schedule is defined for any ``epochs`` (no division by zero when
  ``epochs <= warmup``) and imports what it uses;
* a training set smaller than one batch still trains (the last batch is dropped only when
  it would hold a single crop, which batch norm cannot train on);
* evaluation runs in batches, so validation sets of any size fit in memory;
* the device defaults to CUDA only when it is available;
* validation F1 is measured at the F1-best threshold, not at a silent 0.5 that focal loss
  with ``alpha=0.25`` shifts the scores away from;
* the focal ``alpha`` follows the sampling: 0.5 when the sampler balances the classes
  (weighting positives down *and* oversampling them cancels out), 0.75 otherwise;
* early-stopping patience starts counting only after the warm-up and once validation
  F1 has risen above zero, so a slow start with few positives is not cut off at epoch 15;
* a best state is always kept (ties broken by average precision, then validation loss),
  and the library never prints: progress goes to ``callback``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from blobsift._validation import check_both_classes, check_choice, check_crops, check_in_range
from blobsift.metrics import average_precision, best_threshold, binary_counts
from blobsift.nn.augment import Augmentation
from blobsift.nn.data import (
    _as_label_tensor,
    balance_dataset,
    create_weighted_sampler,
    normalize_crops,
)
from blobsift.nn.losses import FocalLoss

__all__ = [
    "EarlyStopping",
    "Trainer",
    "default_focal_alpha",
    "evaluate_classifier",
    "predict_logits",
    "resolve_device",
    "summarise_logits",
    "train_classifier",
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


def _to_crop_tensor(crops: Any, name: str) -> torch.Tensor:
    if isinstance(crops, torch.Tensor):
        crops = crops.detach().cpu().numpy()
    return torch.from_numpy(check_crops(crops, name=name, size=np.asarray(crops).shape[-1]))


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


def evaluate_classifier(
    model: nn.Module,
    crops: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    device: str | torch.device | None = None,
    threshold: float = 0.5,
    *,
    batch_size: int = 256,
    criterion: nn.Module | None = None,
    normalize: bool = True,
) -> dict[str, float]:
    """Score a classifier on labelled crops, in batches.

    Parameters
    ----------
    model : nn.Module
        Maps (B, 1, H, W) normalised crops to (B, 1) logits.
    crops : Tensor or array of shape (N, H, W) or (N, 1, H, W)
        Raw crops (normalised here unless ``normalize=False``).
    labels : Tensor or array of shape (N,) or (N, 1)
        Binary labels.
    device : str or torch.device, optional
        Where to run; CUDA if available, else CPU.
    threshold : float
        Decision threshold for ``precision``, ``recall`` and ``f1``.
    batch_size : int
        Crops per forward pass (memory stays bounded for any N).
    criterion : nn.Module, optional
        Loss reported as ``loss``; ``FocalLoss()`` by default.
    normalize : bool
        Apply :func:`~blobsift.nn.data.normalize_crops` first.

    Returns
    -------
    dict
        ``loss``, ``precision``, ``recall``, ``f1`` at ``threshold``; ``best_f1`` with its
        ``best_threshold``, ``best_precision``, ``best_recall``; ``average_precision``; ``n``.
    """
    x = _to_crop_tensor(crops, "crops")
    y = _as_label_tensor(labels, len(x))
    if normalize:
        x = normalize_crops(x)
    elif x.dim() == 3:
        x = x.unsqueeze(1)
    logits = predict_logits(model, x, resolve_device(device), batch_size)
    return summarise_logits(logits, y, criterion or FocalLoss(), threshold)


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
        Binary labels.
    epochs, learning_rate, batch_size, weight_decay, max_grad_norm, warmup_epochs
        The optimisation recipe.
    sampling : {"none", "weighted", "oversample"}
        How batches are drawn: uniformly, by a class-balanced weighted sampler, or from a
        dataset with positives repeated to 30%.
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
        criterion: nn.Module | None = None,
        augment: Augmentation | None = None,
        max_grad_norm: float = 1.0,
        warmup_epochs: int = WARMUP_EPOCHS,
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
        self.crops = crops if augment is not None else normalize_crops(crops)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=learning_rate, weight_decay=weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(epochs, warmup_epochs)
        )
        if sampling == "weighted":
            self._sampler = create_weighted_sampler(labels, generator=generator)
        elif sampling == "oversample":
            self._pool, _ = balance_dataset(torch.arange(len(labels)), labels, generator=generator)

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
                x = normalize_crops(self.augment(x, self.generator))
            yield x, self.labels[index]

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
        """The learning rate of the next epoch."""
        return float(self.optimizer.param_groups[0]["lr"])

    def state(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the model's weights."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}


def train_classifier(
    model: nn.Module,
    train_crops: torch.Tensor | np.ndarray,
    train_labels: torch.Tensor | np.ndarray,
    val_crops: torch.Tensor | np.ndarray,
    val_labels: torch.Tensor | np.ndarray,
    epochs: int = 75,
    learning_rate: float = 1e-3,
    batch_size: int = 8,
    weight_decay: float = 1e-4,
    early_stop_patience: int = 15,
    device: str | torch.device | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    *,
    sampling: Sampling = "none",
    criterion: nn.Module | None = None,
    augment: Augmentation | None = None,
    max_grad_norm: float = 1.0,
    warmup_epochs: int = WARMUP_EPOCHS,
    seed: int | None = None,
) -> dict[str, list[float] | int | float]:
    """Train a direct CNN classifier with early stopping on validation F1.

    Parameters
    ----------
    model : nn.Module
        E.g. :class:`~blobsift.nn.models.SignalClassifier`; trained in place and left with
        its best validation state.
    train_crops, val_crops : Tensor or array of shape (N, H, W) or (N, 1, H, W)
        Raw crops; each is normalised per crop (:func:`~blobsift.nn.data.normalize_crops`).
    train_labels, val_labels : Tensor or array of shape (N,) or (N, 1)
        Binary labels; the training set needs both classes.
    epochs : int
        Maximum number of epochs.
    learning_rate : float
        Peak AdamW learning rate, reached after the warm-up.
    batch_size : int
        Crops per step (8-16 regularises through gradient noise).
    weight_decay : float
        AdamW decoupled weight decay.
    early_stop_patience : int
        Counted epochs without validation improvement before stopping (see
        :class:`EarlyStopping`).
    device : str or torch.device, optional
        CUDA if available, else CPU.
    callback : callable, optional
        Called after every epoch with a dict: ``epoch`` (1-based), ``total_epochs``,
        ``train_loss``, ``val_loss``, ``val_f1``, ``is_best``, ``lr``.
    sampling : {"none", "weighted", "oversample"}
        Batch sampling (see :class:`Trainer`).
    criterion : nn.Module, optional
        Training loss; by default focal loss (gamma 2) with :func:`default_focal_alpha`.
    augment : Augmentation, optional
        Random label-preserving changes of each training batch.
    max_grad_norm : float
        Gradient clipping norm.
    warmup_epochs : int
        Linear warm-up length.
    seed : int, optional
        Seed of shuffling, sampling and augmentation.

    Returns
    -------
    dict
        Per-epoch lists ``train_loss``, ``val_loss``, ``val_f1``, ``val_precision``,
        ``val_recall``, ``val_threshold``, ``val_average_precision``, ``lr``; and
        ``best_epoch`` (1-based), ``best_f1``, ``best_threshold``, ``epochs_run``.
    """
    check_in_range(learning_rate, name="learning_rate", low=0, low_inclusive=False)
    check_in_range(weight_decay, name="weight_decay", low=0)
    if epochs < 1 or batch_size < 1 or early_stop_patience < 1:
        raise ValueError(
            "epochs, batch_size and early_stop_patience must be >= 1; got "
            f"{epochs}, {batch_size}, {early_stop_patience}."
        )
    check_choice(sampling, SAMPLINGS, name="sampling")
    x_train = _to_crop_tensor(train_crops, "train_crops")
    y_train = _as_label_tensor(train_labels, len(x_train))
    check_both_classes(y_train.numpy(), name="train_labels")
    if len(x_train) < 2:
        raise ValueError("train_crops needs at least 2 crops.")
    x_val = normalize_crops(_to_crop_tensor(val_crops, "val_crops"))
    y_val = _as_label_tensor(val_labels, len(x_val))
    resolved = resolve_device(device)
    generator = torch.Generator().manual_seed(
        seed if seed is not None else int(torch.randint(0, 2**31 - 1, (1,)))
    )
    trainer = Trainer(
        model, x_train, y_train, epochs=epochs, learning_rate=learning_rate,
        batch_size=batch_size, weight_decay=weight_decay, sampling=sampling,
        device=resolved, generator=generator, criterion=criterion, augment=augment,
        max_grad_norm=max_grad_norm, warmup_epochs=warmup_epochs,
    )  # fmt: skip
    history: dict[str, Any] = {
        key: []
        for key in (
            "train_loss", "val_loss", "val_f1", "val_precision", "val_recall",
            "val_threshold", "val_average_precision", "lr",
        )
    }  # fmt: skip
    stopper = EarlyStopping(
        early_stop_patience, start_epoch=min(warmup_epochs, epochs - 1), baseline=trivial_f1(y_val)
    )
    best_state = trainer.state()
    for epoch in range(epochs):
        lr = trainer.learning_rate
        train_loss = trainer.train_epoch()
        metrics = summarise_logits(
            predict_logits(trainer.model, x_val, resolved), y_val, trainer.criterion, 0.5
        )
        for key, value in (
            ("train_loss", train_loss), ("val_loss", metrics["loss"]),
            ("val_f1", metrics["best_f1"]), ("val_precision", metrics["best_precision"]),
            ("val_recall", metrics["best_recall"]), ("val_threshold", metrics["best_threshold"]),
            ("val_average_precision", metrics["average_precision"]), ("lr", lr),
        ):  # fmt: skip
            history[key].append(value)
        score = (metrics["best_f1"], metrics["average_precision"], -metrics["loss"])
        is_best = stopper.update(epoch, score)
        if is_best:
            best_state = trainer.state()
        if callback is not None:
            callback({
                "epoch": epoch + 1, "total_epochs": epochs, "train_loss": train_loss,
                "val_loss": metrics["loss"], "val_f1": metrics["best_f1"],
                "is_best": is_best, "lr": lr,
            })  # fmt: skip
        if stopper.should_stop:
            break
    trainer.model.load_state_dict(best_state)
    best = stopper.best_epoch
    history.update(
        best_epoch=best + 1,
        best_f1=history["val_f1"][best],
        best_threshold=history["val_threshold"][best],
        epochs_run=len(history["train_loss"]),
    )
    return history
