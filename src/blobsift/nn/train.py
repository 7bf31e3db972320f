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

from typing import Any

import numpy as np
import torch
from torch import nn

from blobsift._validation import check_both_classes, check_choice, check_crops, check_in_range
from blobsift.nn.augment import Augmentation
from blobsift.nn.data import _as_label_tensor, network_input
from blobsift.nn.loop import (
    SAMPLINGS,
    WARMUP_EPOCHS,
    EarlyStopping,
    Sampling,
    Trainer,
    predict_logits,
    resolve_device,
    run_epochs,
    summarise_logits,
    trivial_f1,
)
from blobsift.nn.losses import FocalLoss
from blobsift.types import Progress

__all__ = ["evaluate_classifier", "train_classifier"]


def _to_crop_tensor(crops: Any, name: str) -> torch.Tensor:
    if isinstance(crops, torch.Tensor):
        crops = crops.detach().cpu().numpy()
    size = np.asarray(crops).shape[-1]
    return torch.from_numpy(check_crops(crops, name=name, size=size, channels=True))


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
        Maps (B, C, H, W) normalised crops to (B, 1) logits.
    crops : Tensor or array of shape (N, H, W) or (N, C, H, W)
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
        Apply :func:`~blobsift.crops.normalise_crops` first.

    Returns
    -------
    dict
        ``loss``, ``precision``, ``recall``, ``f1`` at ``threshold``; ``best_f1`` with its
        ``best_threshold``, ``best_precision``, ``best_recall``; ``average_precision``; ``n``.
    """
    x = _to_crop_tensor(crops, "crops")
    y = _as_label_tensor(labels, len(x))
    if normalize:
        x = network_input(x)
    elif x.dim() == 3:
        x = x.unsqueeze(1)
    logits = predict_logits(model, x, resolve_device(device), batch_size)
    return summarise_logits(logits, y, criterion or FocalLoss(), threshold)


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
    callback: Progress | None = None,
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
    train_crops, val_crops : Tensor or array of shape (N, H, W) or (N, C, H, W)
        Raw crops; each is normalised per crop (:func:`~blobsift.crops.normalise_crops`).
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
        Called after every epoch with a :class:`~blobsift.types.ProgressEvent` of stage
        ``"epoch"`` (``done`` = epoch, 1-based; ``total`` = ``epochs``) whose values are the
        specification's keys ``epoch``, ``total_epochs``, ``train_loss``, ``val_f1``,
        ``is_best``, and ``val_loss``, ``lr``; ``event["val_f1"]`` reads them.
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
    x_val = network_input(_to_crop_tensor(val_crops, "val_crops"))
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
    stopper = EarlyStopping(
        early_stop_patience, start_epoch=min(warmup_epochs, epochs - 1), baseline=trivial_f1(y_val)
    )

    def validate() -> dict[str, float]:
        logits = predict_logits(trainer.model, x_val, resolved)
        return summarise_logits(logits, y_val, trainer.criterion, 0.5)

    records = run_epochs([trainer], epochs, validate, stopper, callback=callback)
    history: dict[str, Any] = {"train_loss": [record.train_loss for record in records]}
    for key, name in (
        ("val_loss", "loss"), ("val_f1", "best_f1"), ("val_precision", "best_precision"),
        ("val_recall", "best_recall"), ("val_threshold", "best_threshold"),
        ("val_average_precision", "average_precision"),
    ):  # fmt: skip
        history[key] = [record.metrics[name] for record in records]
    history["lr"] = [record.lr for record in records]
    best = stopper.best_epoch
    history.update(
        best_epoch=best + 1,
        best_f1=history["val_f1"][best],
        best_threshold=history["val_threshold"][best],
        epochs_run=len(history["train_loss"]),
    )
    return history
