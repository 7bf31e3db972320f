"""Baselines the benchmarks compare blobsift with, measured in the same run.

* ``SpecRecipe``: the specification's Phase 2 recipe as written — its model
  (:class:`SignalClassifier` defaults), a random 80/20 split, batch 8, focal loss with
  alpha 0.25, no sampling and no augmentation, early stopping on validation F1, and a
  fixed 0.5 threshold — optionally with its own ``balance_dataset(target_ratio=0.3)``.
  It runs on the training loop with the specification's crash bugs fixed (otherwise it
  could not run at all below 8 crops or 6 epochs) and on normalised crops.
* ``HoldoutRecipe``: blobsift's Phase 2 recipe validated on one 80/20 split.

The brightness cut and the random forest on hand-made features live in the package
(:mod:`blobsift.classify.baselines`), since the demo reports them too.
"""

from __future__ import annotations

import numpy as np
import torch

from blobsift import FocalLoss, SignalClassifier, balance_dataset, train_classifier
from blobsift.nn.data import network_input


class SpecRecipe:
    """The specification's recipe as written (see the module docstring)."""

    def __init__(self, balance: bool = False, random_state: int = 0) -> None:
        self.balance = balance
        self.random_state = random_state

    def fit(self, crops: np.ndarray, labels: np.ndarray) -> SpecRecipe:
        generator = torch.Generator().manual_seed(self.random_state)
        torch.manual_seed(self.random_state)
        order = torch.randperm(len(crops), generator=generator).numpy()
        split = int(0.8 * len(crops))
        train, val = order[:split], order[split:]
        x_train, y_train = torch.from_numpy(crops[train]), torch.from_numpy(labels[train])
        if self.balance:
            x_train, y_train = balance_dataset(x_train, y_train, 0.3, generator)
        self.model = SignalClassifier()
        train_classifier(
            self.model, x_train, y_train, crops[val], labels[val], batch_size=8,
            criterion=FocalLoss(alpha=0.25, gamma=2.0), sampling="none",
            seed=self.random_state,
        )  # fmt: skip
        return self

    def decision_function(self, crops: np.ndarray) -> np.ndarray:
        """The signal probability of each crop (a ranking score)."""
        self.model.eval()
        with torch.inference_mode():
            logits = self.model(network_input(crops))
        return torch.sigmoid(logits).reshape(-1).numpy()

    def predict(self, crops: np.ndarray) -> np.ndarray:
        return (self.decision_function(crops) >= 0.5).astype(np.int64)


class HoldoutRecipe:
    """blobsift's recipe (architecture, sampling, augmentation) with one 80/20 split.

    The same training as ``Sifter`` but validated on a single stratified 20% split, its
    threshold chosen there, and one model instead of the cross-validated fold ensemble:
    it isolates what the validation protocol is worth.
    """

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(self, crops: np.ndarray, labels: np.ndarray) -> HoldoutRecipe:
        from blobsift.classify.cnn import DEFAULT_ARCHITECTURE, CNNClassifier
        from blobsift.crops import centre_window
        from blobsift.nn.augment import Augmentation
        from blobsift.splits import stratified_folds

        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        # A 20% split, or a larger one when there are fewer than 5 positives.
        train, val = stratified_folds(labels, int(min(5, np.bincount(labels).min())), rng)[0]
        self.size = DEFAULT_ARCHITECTURE["crop_size"]
        window = np.ascontiguousarray(centre_window(crops, self.size))
        self.model = SignalClassifier(**DEFAULT_ARCHITECTURE)
        batch = CNNClassifier()._batch_size(len(train))
        history = train_classifier(
            self.model, window[train], labels[train], window[val], labels[val],
            batch_size=batch, sampling="weighted", augment=Augmentation(),
            seed=self.random_state,
        )  # fmt: skip
        self.threshold = history["best_threshold"]
        return self

    def decision_function(self, crops: np.ndarray) -> np.ndarray:
        """The signal probability of each crop (a ranking score)."""
        from blobsift.crops import centre_window

        window = np.ascontiguousarray(centre_window(crops, self.size))
        self.model.eval()
        with torch.inference_mode():
            logits = self.model(network_input(window))
        return torch.sigmoid(logits).reshape(-1).numpy()

    def predict(self, crops: np.ndarray) -> np.ndarray:
        return (self.decision_function(crops) >= self.threshold).astype(np.int64)
