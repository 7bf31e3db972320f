"""Intensity context: a crop's brightness relative to its image, beside the network's score.

The networks see each crop on its own scale (:func:`~blobsift.crops.normalise_crops`), so
how bright a candidate is against its *image's* noise is lost to them. A
:class:`ContextHead` gives it back: a small logistic regression on the network's score
(its logit) and two context features per channel, both relative to the noise level of
the crop's image and so unchanged by any gain applied to the image and its noise:

* the centre contrast (centre 3x3 mean minus the crop's median) in image noise sigmas,
  ``asinh``-compressed as the networks' input is (:func:`context_features`);
* the log of the crop's own noise (:func:`~blobsift.crops.robust_noise`) over the image's.

It is fitted on held-out scores of the labelled crops (out-of-fold, or leave-one-out for
the gallery), with balanced class weights, so 0.5 stays its natural decision point; a
classifier keeps it only where it raises the held-out average precision of those scores
(:data:`~blobsift.classify.base.CONTEXT_MARGIN`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from blobsift._validation import real
from blobsift.crops import normalise_crops, robust_noise
from blobsift.exceptions import InvalidInputError
from blobsift.splits import feasible_folds, stratified_folds

__all__ = ["ContextHead", "context_features"]

_SCORE_CLIP = 1e-4  # probabilities are clipped to [1e-4, 1 - 1e-4] before the logit
_NOISE_RATIO_CLIP = 10.0  # |log(crop noise / image noise)| at most this
_PENALTY = 1.0  # L2 weight on the standardised coefficients (not the intercept)
_NEWTON_STEPS = 50
_FOLDS = 5


def context_features(crops: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The context features of each crop: contrast and noise, relative to its image.

    Parameters
    ----------
    crops : array of shape (n, H, W) or (n, C, H, W)
        Raw crops.
    noise : array of shape (n,) or (n, C)
        The noise level of each crop's image (see
        :func:`~blobsift.crops.check_image_noise`).

    Returns
    -------
    ndarray of shape (n, 2 * C), float64
        Per channel: the centre 3x3 mean of the crop normalised by its image's noise
        (asinh-compressed noise sigmas above the crop's median), then
        ``log(robust_noise(crop) / noise)``.
    """
    planes = np.asarray(crops).reshape(len(crops), -1, *np.shape(crops)[-2:])
    normalised = normalise_crops(planes, noise)
    levels = np.asarray(noise, dtype=np.float64).reshape(len(planes), -1)
    levels = np.broadcast_to(levels, planes.shape[:2])
    c = planes.shape[-1] // 2
    contrast = normalised[:, :, c - 1 : c + 2, c - 1 : c + 2].mean(axis=(2, 3))
    own = robust_noise(planes.reshape(-1, *planes.shape[-2:])).reshape(planes.shape[:2])
    ratio = np.log(np.maximum(own, 1e-30) / levels)
    ratio = np.clip(ratio, -_NOISE_RATIO_CLIP, _NOISE_RATIO_CLIP)
    features = np.stack([contrast.astype(np.float64), ratio], axis=2)
    return features.reshape(len(planes), -1)


def _design(scores: np.ndarray, features: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(scores, dtype=np.float64), _SCORE_CLIP, 1 - _SCORE_CLIP)
    return np.column_stack([np.log(clipped / (1 - clipped)), features])


def _logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted L2-penalised logistic regression by Newton's method: (coef, intercept)."""
    design = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], _PENALTY)
    penalty[0] = 0.0
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30, 30)))
        gradient = design.T @ (weights * (p - y)) + penalty * beta
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(beta)), gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta[1:], float(beta[0])


@dataclass(frozen=True, eq=False)
class ContextHead:
    """Logistic regression on (score logit, context features), on standardised inputs.

    Attributes
    ----------
    mean, scale : ndarray of shape (1 + 2C,)
        The standardisation of each input (the score's logit, then
        :func:`context_features`).
    coef : ndarray of shape (1 + 2C,)
        The coefficient of each standardised input.
    intercept : float
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, scores: np.ndarray, features: np.ndarray, labels: np.ndarray) -> ContextHead:
        """Fit on held-out scores and context features of labelled crops.

        Classes are weighted to count equally, so the head's 0.5 is where a crop is as
        likely signal as noise on a balanced set.
        """
        x = _design(scores, features)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        y = np.asarray(labels, dtype=np.float64)
        counts = np.bincount(labels, minlength=2).astype(np.float64)
        weights = (len(y) / (2 * counts))[labels]
        coef, intercept = _logistic((x - mean) / scale, y, weights)
        return cls(mean, scale, coef, intercept)

    @classmethod
    def fit_with_heldout(
        cls,
        scores: np.ndarray,
        features: np.ndarray,
        labels: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[ContextHead, np.ndarray]:
        """Fit on every label, and return the head's own out-of-fold probabilities too.

        The held-out probabilities (a head fitted on the other folds scores each fold)
        are what the threshold and the held-out metrics rest on.
        """
        folds = stratified_folds(labels, feasible_folds(labels, _FOLDS), rng)
        heldout = np.empty(len(labels))
        for train, val in folds:
            head = cls.fit(scores[train], features[train], labels[train])
            heldout[val] = head.apply(scores[val], features[val])
        return cls.fit(scores, features, labels), heldout

    def apply(self, scores: np.ndarray, features: np.ndarray) -> np.ndarray:
        """The signal probability of each crop given its score and context features."""
        x = (_design(scores, features) - self.mean) / self.scale
        if x.shape[1] != len(self.coef):
            raise InvalidInputError(
                f"the intensity context takes {len(self.coef) - 1} features per crop; got "
                f"{x.shape[1] - 1} (crops of another number of channels)."
            )
        return 1.0 / (1.0 + np.exp(-np.clip(x @ self.coef + self.intercept, -30, 30)))

    def to_config(self) -> dict[str, Any]:
        """The head as JSON-ready lists (a model file's ``intensity_context`` entry)."""
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
        }

    @classmethod
    def from_config(cls, config: Any, where: str) -> ContextHead:
        """Rebuild a head from :meth:`to_config`'s output, checking every value.

        Raises
        ------
        InvalidInputError
            Naming the entry (prefixed by ``where``) that is missing or not allowed.
        """
        if not isinstance(config, dict) or set(config) != {"mean", "scale", "coef", "intercept"}:
            raise InvalidInputError(
                f"{where} must be an object with keys mean, scale, coef and intercept."
            )
        arrays = {}
        for key in ("mean", "scale", "coef"):
            values = config[key]
            if not (
                isinstance(values, list)
                and len(values) >= 3
                and len(values) % 2 == 1
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            ):
                raise InvalidInputError(f"{where}.{key} must be a list of 1 + 2C numbers.")
            arrays[key] = np.asarray(values, dtype=np.float64)
        if not len(arrays["mean"]) == len(arrays["scale"]) == len(arrays["coef"]):
            raise InvalidInputError(f"{where}: mean, scale and coef differ in length.")
        if not (np.isfinite(np.concatenate(list(arrays.values()))).all()
                and (arrays["scale"] > 0).all()):  # fmt: skip
            raise InvalidInputError(f"{where} must hold finite numbers, scale positive.")
        real()(config["intercept"], f"{where}.intercept")
        return cls(arrays["mean"], arrays["scale"], arrays["coef"], float(config["intercept"]))
