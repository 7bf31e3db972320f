"""``Sifter``: the estimator a user fits, which picks the learning phase itself."""

from __future__ import annotations

from typing import Any

import numpy as np

from blobsift._validation import check_choice
from blobsift.classify.base import CropClassifier, jsonable_params
from blobsift.classify.cnn import CNNClassifier
from blobsift.exceptions import ModelFileError

__all__ = ["PHASES", "Sifter"]

PHASES = ("auto", "cnn")  # "siamese" joins when Phase 1 lands


class Sifter(CropClassifier):
    """Classify candidate crops as signal (1) or noise (0) from a few labels.

    Parameters
    ----------
    phase : {"auto", "cnn"}
        The learning phase: the direct CNN (Phase 2), or "auto" to choose from the labels.
        Until the Siamese gallery classifier (Phase 1) is available "auto" uses the CNN.
    random_state : int or None
        Seed for reproducible fits.
    target_precision, target_recall : float or None
        Choose the decision threshold for this precision (or recall) on held-out labels
        instead of the F1-best one.
    callback : callable or None
        Progress callback, called once per training epoch with a dict.
    **options
        Further keyword arguments for the phase's classifier (e.g. ``epochs``).

    Attributes
    ----------
    phase_ : str
        The phase ``fit`` used.
    estimator_ : CropClassifier
        The fitted phase classifier.
    threshold_ : float
        Decision threshold on the signal probability, chosen on held-out labels.
    classes_ : ndarray
        ``[0, 1]``.

    Examples
    --------
    >>> from blobsift import Sifter
    >>> from blobsift.simulate import simulate_crops
    >>> data = simulate_crops(200, seed=0)
    >>> sifter = Sifter(random_state=0, epochs=5).fit(data.crops, data.labels)
    >>> sifter.predict_proba(data.crops[:3]).shape
    (3, 2)
    """

    kind = "sifter"

    def __init__(
        self,
        phase: str = "auto",
        random_state: int | None = None,
        target_precision: float | None = None,
        target_recall: float | None = None,
        callback: Any = None,
        **options: Any,
    ) -> None:
        self.phase = phase
        self.random_state = random_state
        self.target_precision = target_precision
        self.target_recall = target_recall
        self.callback = callback
        self.options = options

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters, options included."""
        params = {name: getattr(self, name) for name in self._param_names() if name != "options"}
        return {**params, **self.options}

    def set_params(self, **params: Any) -> Sifter:
        """Set parameters; names that are not Sifter's own go to the phase classifier."""
        own = set(self._param_names()) - {"options"}
        for name, value in params.items():
            if name in own:
                setattr(self, name, value)
            else:
                self.options[name] = value
        return self

    def fit(self, X: Any, y: Any) -> Sifter:  # noqa: N803
        """Fit the phase classifier on raw crops ``X`` (n, 64, 64) and labels ``y`` (n,).

        Returns
        -------
        self
        """
        check_choice(self.phase, PHASES, name="phase")
        crops, labels = self._check_fit_input(X, y)
        self.phase_ = "cnn"
        self.phase_reason_ = (
            "phase='cnn' was requested"
            if self.phase == "cnn"
            else "the direct CNN is the only phase available"
        )
        estimator = CNNClassifier(
            random_state=self.random_state,
            target_precision=self.target_precision,
            target_recall=self.target_recall,
            callback=self.callback,
            **self.options,
        )
        self.estimator_ = estimator.fit(crops, labels)
        self.threshold_ = estimator.threshold_
        self.classes_ = np.array([0, 1])
        return self

    @property
    def cv_metrics_(self) -> dict[str, Any]:
        """Held-out metrics of the fitted phase classifier."""
        self._check_fitted()
        return self.estimator_.cv_metrics_

    def _positive_proba(self, crops: np.ndarray) -> np.ndarray:
        return self.estimator_._positive_proba(crops)

    def _tensors(self) -> dict[str, Any]:
        return self.estimator_._tensors()

    def _file_config(self) -> dict[str, Any]:
        return {
            "phase": self.phase_,
            "phase_reason": self.phase_reason_,
            "estimator": {
                "kind": self.estimator_.kind,
                "params": jsonable_params(self.estimator_.get_params()),
                **self.estimator_._file_config(),
            },
        }

    def _restore(self, tensors: dict[str, Any], config: dict[str, Any]) -> None:
        inner = config["estimator"]
        if inner.get("kind") != CNNClassifier.kind:
            raise ModelFileError(f"unknown phase classifier {inner.get('kind')!r}.")
        params = {k: v for k, v in inner["params"].items() if k in CNNClassifier._param_names()}
        params.pop("callback", None)
        estimator = CNNClassifier(**params)
        estimator.threshold_ = float(config["threshold"])
        estimator.classes_ = np.array([0, 1])
        estimator._restore(tensors, inner)
        self.estimator_ = estimator
        self.phase_ = config["phase"]
        self.phase_reason_ = config.get("phase_reason", "")
