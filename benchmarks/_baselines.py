"""Baselines the benchmarks compare blobsift with, measured in the same run.

* ``SpecRecipe``: the specification's Phase 2 recipe as written — its model
  (:class:`SignalClassifier` defaults), a random 80/20 split, batch 8, focal loss with
  alpha 0.25, no sampling and no augmentation, early stopping on validation F1, and a
  fixed 0.5 threshold — optionally with its own ``balance_dataset(target_ratio=0.3)``.
  It runs on the training loop with the specification's crash bugs fixed (otherwise it
  could not run at all below 8 crops or 6 epochs) and on normalised crops.
* ``FeatureForest``: a random forest on hand-made filter features at the crop centre
  (Gaussian, LoG, gradient, Hessian and structure-tensor eigenvalues at several scales),
  what interactive object classifiers such as ilastik use.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from sklearn.ensemble import RandomForestClassifier

from blobsift import FocalLoss, SignalClassifier, balance_dataset, train_classifier
from blobsift.nn.data import normalize_crops

SCALES = (0.7, 1.0, 1.6, 3.5, 5.0)


def _centre_features(crops: np.ndarray) -> np.ndarray:
    x = normalize_crops(torch.from_numpy(crops)).numpy()[:, 0]
    c = x.shape[-1] // 2
    centre = (slice(None), slice(c - 1, c + 2), slice(c - 1, c + 2))
    features = [x[centre].mean(axis=(1, 2)), x[:, c, c], x.std(axis=(1, 2))]
    for s in SCALES:
        sig = (0, s, s)
        smooth = ndimage.gaussian_filter(x, sig)
        features.append(smooth[:, c, c])
        features.append(ndimage.gaussian_laplace(x, sig)[:, c, c] * s**2)
        grad = ndimage.gaussian_gradient_magnitude(x, sig)
        features.append(grad[centre].mean(axis=(1, 2)))
        hrr = ndimage.gaussian_filter(x, sig, order=(0, 2, 0))[:, c, c]
        hcc = ndimage.gaussian_filter(x, sig, order=(0, 0, 2))[:, c, c]
        hrc = ndimage.gaussian_filter(x, sig, order=(0, 1, 1))[:, c, c]
        root = np.sqrt(((hrr - hcc) / 2) ** 2 + hrc**2)
        features += [(hrr + hcc) / 2 + root, (hrr + hcc) / 2 - root]
        gr = ndimage.gaussian_filter(x, sig, order=(0, 1, 0))
        gc = ndimage.gaussian_filter(x, sig, order=(0, 0, 1))
        jrr = ndimage.gaussian_filter(gr * gr, sig)[:, c, c]
        jcc = ndimage.gaussian_filter(gc * gc, sig)[:, c, c]
        jrc = ndimage.gaussian_filter(gr * gc, sig)[:, c, c]
        root = np.sqrt(((jrr - jcc) / 2) ** 2 + jrc**2)
        features += [(jrr + jcc) / 2 + root, (jrr + jcc) / 2 - root]
    return np.column_stack(features)


class FeatureForest:
    """Random forest on hand-made filter features, threshold 0.5 (as ilastik uses it)."""

    def __init__(self, random_state: int = 0) -> None:
        self.forest = RandomForestClassifier(
            n_estimators=200, class_weight="balanced", random_state=random_state, n_jobs=2
        )

    def fit(self, crops: np.ndarray, labels: np.ndarray) -> FeatureForest:
        self.forest.fit(_centre_features(crops), labels)
        return self

    def predict(self, crops: np.ndarray) -> np.ndarray:
        return self.forest.predict(_centre_features(crops))


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

    def predict(self, crops: np.ndarray) -> np.ndarray:
        self.model.eval()
        with torch.inference_mode():
            logits = self.model(normalize_crops(torch.from_numpy(crops)))
        return (torch.sigmoid(logits).reshape(-1) >= 0.5).long().numpy()


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

    def predict(self, crops: np.ndarray) -> np.ndarray:
        from blobsift.crops import centre_window

        window = np.ascontiguousarray(centre_window(crops, self.size))
        self.model.eval()
        with torch.inference_mode():
            logits = self.model(normalize_crops(torch.from_numpy(window)))
        return (torch.sigmoid(logits).reshape(-1) >= self.threshold).long().numpy()
