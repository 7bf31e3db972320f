"""The trivial baselines a learner must beat, measured beside it on the same crops.

* :class:`BrightnessCut`: one contrast feature (the centre 3x3 mean minus the crop's
  median, in raw units) cut at the F1-best threshold on the labelled crops. A learner that
  does not beat it has learned nothing useful.
* :class:`FeatureForest`: a random forest on hand-made filter features at the crop centre
  (Gaussian, LoG, gradient, Hessian and structure-tensor eigenvalues at several scales),
  what interactive object classifiers such as ilastik use. It needs scikit-learn.

Both have ``fit(X, y)``, ``decision_function(X)`` (a ranking score, for best-F1 and
precision-recall curves) and ``predict(X)`` (0/1 at the baseline's own threshold).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from scipy import ndimage

from blobsift._validation import check_both_classes, check_crops, check_labels
from blobsift.crops import normalise_crops
from blobsift.metrics import best_threshold

__all__ = ["BrightnessCut", "FeatureForest", "centre_contrast", "centre_features"]

#: Filter scales (pixels) of the forest's features.
SCALES = (0.7, 1.0, 1.6, 3.5, 5.0)


def _fit_input(crops: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    x = check_crops(crops)
    y = check_labels(labels, len(x))
    check_both_classes(y)
    return x, y


def centre_contrast(crops: Any) -> np.ndarray:
    """Return the centre 3x3 mean minus the crop median of each crop, in raw units.

    Parameters
    ----------
    crops : array of shape (n, H, W)
        Raw crops.

    Returns
    -------
    ndarray of shape (n,), float64.
    """
    x = np.asarray(check_crops(crops), dtype=np.float64)
    if x.shape[0] == 0:
        return np.zeros(0)
    c = x.shape[-1] // 2
    centre = x[:, c - 1 : c + 2, c - 1 : c + 2].mean(axis=(1, 2))
    return centre - np.median(x.reshape(len(x), -1), axis=1)


def centre_features(crops: Any) -> np.ndarray:
    """Return hand-made filter features at the centre of each normalised crop.

    At each scale in :data:`SCALES`: the Gaussian-smoothed intensity and the
    scale-normalised Laplacian of Gaussian at the centre, the Gaussian gradient magnitude
    averaged over the centre 3x3, and the eigenvalues of the Hessian and of the structure
    tensor at the centre; before them the centre 3x3 mean, the centre pixel and the crop's
    spread.

    Every feature but the structure tensor is a linear filter read at a centre pixel, so
    it is one dot product of the crop with a fixed kernel (:func:`_point_kernels`), not a
    filter over the whole crop: about 10x faster, and the same as filtering the crop with
    ``scipy.ndimage`` (to float32 rounding).

    Parameters
    ----------
    crops : array of shape (n, 64, 64)
        Raw crops; each is normalised by its own median and noise level first.

    Returns
    -------
    ndarray of shape (n, 3 + 7 * len(SCALES)).
    """
    x = normalise_crops(check_crops(crops))[:, 0]
    n, size = len(x), x.shape[-1]
    c = size // 2
    centre = (slice(None), slice(c - 1, c + 2), slice(c - 1, c + 2))
    features = [x[centre].mean(axis=(1, 2)), x[:, c, c], x.std(axis=(1, 2))]
    kernels = _point_kernels(size)
    points = (x.reshape(n, -1) @ kernels).reshape(n, len(SCALES), _POINTS_PER_SCALE)
    for index, s in enumerate(SCALES):
        smoothed, log, gradient, hessian = np.split(points[:, index], [1, 2, 20], axis=1)
        features += [smoothed[:, 0], log[:, 0]]
        gr, gc = gradient[:, :9], gradient[:, 9:]
        features.append(np.sqrt(gr**2 + gc**2).mean(axis=1))
        features += _eigenvalues(*hessian.T)
        features += _eigenvalues(*_structure_tensor(x, s, kernels[:, index * _POINTS_PER_SCALE]).T)
    return np.column_stack(features)


def _structure_tensor(x: np.ndarray, s: float, smoothing: np.ndarray) -> np.ndarray:
    """The structure tensor's entries rr, cc and rc at the centre of (n, S, S) crops: (n, 3).

    The gradient is needed within the smoothing's radius r of the centre, which depends on
    the crop within 2r: where that window fits in the crop, only the window is filtered
    (the same values; the largest scale needs the whole crop). ``smoothing`` is the
    scale's centre-reading Gaussian from :func:`_point_kernels`.
    """
    n, size = len(x), x.shape[-1]
    c = size // 2
    reach = 2 * int(_TRUNCATE * s + 0.5)  # scipy's kernel radius, twice
    if reach < c:
        window = slice(c - reach, c + reach + 1)
        x = x[:, window, window]
        smoothing = smoothing.reshape(size, size)[window, window]
    sig = (0, s, s)
    gr = ndimage.gaussian_filter(x, sig, order=(0, 1, 0), truncate=_TRUNCATE)
    gc = ndimage.gaussian_filter(x, sig, order=(0, 0, 1), truncate=_TRUNCATE)
    products = np.stack([gr * gr, gc * gc, gr * gc], axis=1)
    return products.reshape(n, 3, -1) @ smoothing.ravel()


#: Gaussian kernels reach this many sigmas (scipy.ndimage's default).
_TRUNCATE = 4.0
#: Linear responses per scale in :func:`_point_kernels`: the smoothed intensity, the
#: scale-normalised LoG, the two gradient components at each of the centre 3x3 pixels and
#: the Hessian's entries rr, cc and rc.
_POINTS_PER_SCALE = 1 + 1 + 2 * 9 + 3


@functools.cache
def _point_kernels(size: int) -> np.ndarray:
    """Kernels that read Gaussian-derivative filters at the centre of a crop by a dot product.

    The response of ``scipy.ndimage.gaussian_filter(crop, s, order)`` at pixel ``p`` is
    the dot product of the crop with that filter's adjoint applied to a unit impulse at
    ``p``, which is the same filter applied to the impulse, times ``(-1)^order`` (odd
    derivative kernels are antisymmetric). Exact as long as the kernel (radius 4 s) does
    not reach the crop's edge: 21 pixels at the largest scale, 32 in a 64-pixel crop.

    Returns
    -------
    ndarray of shape (size * size, len(SCALES) * _POINTS_PER_SCALE), float32.
    """
    c = size // 2
    impulse = np.zeros((size, size))
    impulse[c, c] = 1.0
    around = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
    columns = []
    for s in SCALES:

        def read(order: tuple[int, int], s: float = s) -> np.ndarray:
            kernel = ndimage.gaussian_filter(impulse, s, order=order, truncate=_TRUNCATE)
            return (-1) ** sum(order) * kernel

        columns.append(read((0, 0)))
        columns.append((read((2, 0)) + read((0, 2))) * s**2)
        for order in ((1, 0), (0, 1)):
            columns += [np.roll(read(order), shift, axis=(0, 1)) for shift in around]
        columns += [read(order) for order in ((2, 0), (0, 2), (1, 1))]
    return np.stack([column.ravel() for column in columns], axis=1).astype(np.float32)


def _eigenvalues(arr: np.ndarray, acc: np.ndarray, arc: np.ndarray) -> list[np.ndarray]:
    """Both eigenvalues of the symmetric 2x2 matrices [[arr, arc], [arc, acc]]."""
    root = np.sqrt(((arr - acc) / 2) ** 2 + arc**2)
    return [(arr + acc) / 2 + root, (arr + acc) / 2 - root]


class BrightnessCut:
    """Signal where the centre contrast exceeds the F1-best cut on the labelled crops.

    Attributes
    ----------
    threshold_ : float
        The contrast cut, in the crops' raw units.
    """

    def fit(self, X: Any, y: Any) -> BrightnessCut:  # noqa: N803
        """Choose the F1-best contrast cut on labelled crops; return ``self``."""
        crops, labels = _fit_input(X, y)
        self.threshold_ = best_threshold(labels, centre_contrast(crops)).threshold
        return self

    def decision_function(self, X: Any) -> np.ndarray:  # noqa: N803
        """Return the centre contrast of each crop (higher is more signal-like)."""
        return centre_contrast(X)

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Return 1 where the contrast reaches the cut, else 0."""
        return (self.decision_function(X) >= self.threshold_).astype(np.int64)


class FeatureForest:
    """A random forest on :func:`centre_features`, threshold 0.5 (as ilastik uses it).

    Parameters
    ----------
    random_state : int
        Seed of the forest.
    n_jobs : int
        Worker threads of the forest.
    """

    def __init__(self, random_state: int = 0, n_jobs: int = 2) -> None:
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any) -> FeatureForest:  # noqa: N803
        """Fit the forest on labelled crops; return ``self``."""
        crops, labels = _fit_input(X, y)
        return self.fit_features(centre_features(crops), labels)

    def fit_features(self, features: Any, y: Any) -> FeatureForest:
        """Fit the forest on :func:`centre_features` computed beforehand; return ``self``.

        The features cost far more than the forest, so several fits on growing label sets
        (or predictions on the same crops) can compute them once.
        """
        from sklearn.ensemble import RandomForestClassifier

        features = np.asarray(features, dtype=np.float64)
        labels = check_labels(y, len(features))
        check_both_classes(labels)
        self.forest_ = RandomForestClassifier(
            n_estimators=200,
            class_weight="balanced",
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(features, labels)
        return self

    def decision_function(self, X: Any) -> np.ndarray:  # noqa: N803
        """Return the forest's signal probability of each crop."""
        return self.decision_from_features(centre_features(X))

    def decision_from_features(self, features: Any) -> np.ndarray:
        """Return the signal probability of crops given their :func:`centre_features`."""
        return self.forest_.predict_proba(np.asarray(features, dtype=np.float64))[:, 1]

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Return 1 where the signal probability reaches 0.5, else 0."""
        return self.predict_from_features(centre_features(X))

    def predict_from_features(self, features: Any) -> np.ndarray:
        """Return 1 where the signal probability of :func:`centre_features` reaches 0.5."""
        return (self.decision_from_features(features) >= 0.5).astype(np.int64)
