"""What every blobsift crop classifier shares: parameters, input checks, threshold, files.

* :class:`CropScorer`: the prediction half (``predict_proba``, ``decision_function``,
  ``predict`` at ``threshold_``, input checks, the intensity context), numpy only, so a
  model run from its exported graph (:class:`~blobsift.classify.graph_model.GraphModel`)
  shares it without torch;
* :class:`CropClassifier`: a scorer that is also an estimator: parameters, fitting
  helpers, the threshold's choice and model files.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from blobsift._validation import (
    MAPPING,
    Constraint,
    check_both_classes,
    check_channels,
    check_crops,
    check_labels,
    check_params,
    crop_channels,
    integer,
    one_of,
    real,
)
from blobsift.classify.context import ContextHead, context_features
from blobsift.crops import check_image_noise
from blobsift.exceptions import InvalidInputError, ModelFileError, NotFittedError
from blobsift.metrics import OperatingPoint, average_precision, best_threshold, binary_counts

__all__ = [
    "CONTEXT_MARGIN",
    "PREDICT_CHUNK",
    "THRESHOLD_RULES",
    "CropClassifier",
    "CropScorer",
    "config_entry",
    "context_from_config",
    "describe_threshold_rule",
    "jsonable_params",
    "network_config",
]

_MISSING = object()
_CONTEXT_KEY = "intensity_context"
_THRESHOLD = real(0, 1)

#: How a classifier's decision threshold was chosen (its ``threshold_rule_``), in words.
THRESHOLD_RULES: dict[str, str] = {
    "fixed": "fixed at 0.5, where a crop is as close to signal as to noise",
    "best_f1": (
        "the F1-best threshold on out-of-fold scores, pulled towards 0.5 while positives are few"
    ),
    "target_precision": "the highest-recall threshold with out-of-fold precision {target}+",
    "target_recall": "the highest-precision threshold with out-of-fold recall {target}+",
    "target_missed": "the F1-best threshold on out-of-fold scores: none reached {target}",
}
_THRESHOLD_PRIOR = 0.5  # the decision point of a model trained on class-balanced batches
_THRESHOLD_PRIOR_STRENGTH = 5  # positives at which the held-out threshold gets half weight
#: How much the intensity-context head must raise the held-out average precision of a
#: model's scores to be kept (see ``CropClassifier._fit_context``). On the simulated
#: domains, whose objects are drawn relative to their local noise, a head kept for any
#: gain at all lowered the test ranking (best-F1 0.906 -> 0.872 at 250 spots labels).
CONTEXT_MARGIN = 0.01
#: Crops normalised and scored at a time in prediction (a few MB of network input).
PREDICT_CHUNK = 4096


class CropScorer:
    """The prediction half of every blobsift model: scores, decisions, input checks.

    A fitted scorer has ``threshold_``, ``classes_``, ``n_channels_`` and ``context_``;
    subclasses implement ``_positive_proba`` (the network's signal probability of checked
    crops) and :meth:`limit_threads`. Nothing here needs torch.
    """

    classes_: np.ndarray
    threshold_: float
    #: Channels of each crop the model was fitted on (1 for a model file that does not
    #: record it: single-channel files from before channels were introduced).
    n_channels_: int = 1
    #: The intensity-context head fitted on the image noise of the crops (None when
    #: ``fit`` got no ``noise``): see :mod:`blobsift.classify.context`.
    context_: ContextHead | None = None

    def _check_crops(self, X: Any, name: str = "X") -> np.ndarray:  # noqa: N803
        """``X`` as checked crops with the channels this model was fitted on."""
        crops = check_crops(X, name=name, channels=True)
        check_channels(crops, self.n_channels_, name=name)
        return crops

    def _check_noise(self, noise: Any, crops: np.ndarray, name: str = "noise") -> np.ndarray:
        """``noise`` checked against ``crops``: (n, C) positive levels."""
        return check_image_noise(noise, len(crops), channels=crop_channels(crops), name=name)

    @property
    def intensity_context_(self) -> bool:
        """Whether the model weighs image noise (so ``predict_proba`` needs ``noise``).

        True when ``fit`` got ``noise`` and kept the intensity-context head; the model
        file records the head (``intensity_context``).
        """
        return self.context_ is not None

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y) or "
                f"{type(self).__name__}.load(path) first."
            )

    # -- prediction ---------------------------------------------------------------------
    def limit_threads(self, threads: int) -> None:
        """Run this model's inference on at most ``threads`` cores.

        For a process that shares its machine, such as a Dask worker beside others.
        """
        raise NotImplementedError

    def _positive_proba(self, crops: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, X: Any, *, noise: Any = None) -> np.ndarray:  # noqa: N803
        """Return class probabilities, shape (n, 2); columns follow ``classes_ == [0, 1]``.

        Parameters
        ----------
        X : array of shape (n, 64, 64) or (n, C, 64, 64)
            Raw crops of any real dtype, with the channels the model was fitted on.
        noise : array of shape (n,) or (n, C), optional
            The noise level of each crop's image (:func:`blobsift.detect.estimate_noise`),
            in the crops' units. Required by a model that kept its intensity context
            (``intensity_context_``); any other model checks it and does not use it.

        Raises
        ------
        InvalidInputError
            If ``X`` is not crops, or its crops have another number of channels than
            the model's (the message names both); if the model was fitted with image noise
            and ``noise`` is missing, or ``noise`` is not one positive level per crop.
        """
        self._check_fitted()
        crops = self._check_crops(X)
        head = self.context_
        if head is not None and noise is None:
            raise InvalidInputError(
                f"this {type(self).__name__} was fitted with the image noise of its crops "
                "(intensity context): pass noise=, the noise level of each crop's image "
                "(blobsift.detect.estimate_noise(image)[1]); scoring an image passes it."
            )
        levels = None if noise is None else self._check_noise(noise, crops)
        positive = self._positive_proba(crops).astype(np.float64)
        if head is not None and levels is not None:
            positive = head.apply(positive, context_features(crops, levels))
        return np.column_stack([1.0 - positive, positive])

    def decision_function(self, X: Any, *, noise: Any = None) -> np.ndarray:  # noqa: N803
        """Return the probability of signal, shape (n,): the ranking score.

        (scikit-learn's name; ``predict`` compares it with ``threshold_``.) ``noise`` as
        in :meth:`predict_proba`.
        """
        return self.predict_proba(X, noise=noise)[:, 1]

    def predict(self, X: Any, *, noise: Any = None) -> np.ndarray:  # noqa: N803
        """Return 0/1 decisions at ``threshold_`` (chosen on held-out labels), shape (n,).

        ``noise`` as in :meth:`predict_proba`.
        """
        return (self.decision_function(X, noise=noise) >= self.threshold_).astype(np.int64)


class CropClassifier(CropScorer):
    """Base class of the estimators: scikit-learn style parameters, threshold, files.

    Prediction is :class:`CropScorer`'s. Subclasses implement ``fit``,
    ``_positive_proba``, ``_tensors``/``_file_config`` and
    ``_restore``. Constructors only store their keyword arguments; ``fit`` checks them
    against ``_parameter_constraints`` (as scikit-learn does), and so does ``load``.
    """

    #: Name written into model files and used to pick the class on load.
    kind: ClassVar[str] = ""
    #: Fewest labels of each class that ``fit`` accepts.
    min_per_class: ClassVar[int] = 2
    #: The allowed values of each constructor parameter.
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}

    # -- parameters ---------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters; unknown names raise with the list of valid ones."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise InvalidInputError(
                    f"{type(self).__name__} has no parameter {name!r}; valid: {valid}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if defaults.get(name, inspect.Parameter.empty) != value
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _validate_params(self, where: str | None = None) -> None:
        """Check every parameter against ``_parameter_constraints``.

        Parameters
        ----------
        where : str, optional
            Prefix of the parameter names in messages; by default "<Class> parameter ".

        Raises
        ------
        InvalidInputError
            Naming the first parameter that is not allowed, what is allowed and what was
            given.
        """
        prefix = f"{type(self).__name__} parameter " if where is None else where
        check_params(self.get_params(), self._parameter_constraints, where=prefix)

    # -- fitting ------------------------------------------------------------------------
    def _check_fit_input(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        crops = check_crops(X, name="X", channels=True)
        labels = check_labels(y, len(crops), name="y")
        check_both_classes(labels, name="y", minimum=self.min_per_class)
        self.n_channels_ = crop_channels(crops)
        return crops, labels

    def _fit_context(
        self,
        crops: np.ndarray,
        labels: np.ndarray,
        noise: np.ndarray | None,
        scores: np.ndarray,
        rng: np.random.Generator,
        metrics: dict[str, Any],
    ) -> None:
        """Fit the intensity-context head on held-out ``scores``, if it earns its place.

        With ``noise``, the head (:class:`~blobsift.classify.context.ContextHead`) is
        fitted, and its own out-of-fold probabilities are compared with ``scores``: it is
        kept only if their average precision is at least :data:`CONTEXT_MARGIN` higher.
        Kept, the threshold is chosen again on those probabilities, which replace
        ``oof_proba_`` and the held-out F1, precision and recall in ``metrics`` (the
        model's ``cv_metrics_``). ``metrics`` records whether it was kept
        (``intensity_context``) and both average precisions (``context_scores``).
        """
        self.context_ = None
        metrics["intensity_context"] = False
        if noise is None:
            return
        features = context_features(crops, noise)
        head, heldout = ContextHead.fit_with_heldout(scores, features, labels, rng)
        compared = {
            "without": average_precision(labels, scores),
            "with": average_precision(labels, heldout),
        }
        metrics["context_scores"] = compared
        if compared["with"] < compared["without"] + CONTEXT_MARGIN:
            return
        point, rule = self._choose_threshold(labels, heldout)
        self.context_ = head
        self.oof_proba_ = heldout
        self.threshold_ = point.threshold
        metrics.update(
            f1=point.f1,
            precision=point.precision,
            recall=point.recall,
            threshold_rule=rule,
            intensity_context=True,
        )

    def _with_channels(self, architecture: dict[str, Any]) -> dict[str, Any]:
        """``architecture`` with this model's ``in_channels`` (absent for one channel)."""
        network = {k: v for k, v in architecture.items() if k != "in_channels"}
        if self.n_channels_ != 1:
            network["in_channels"] = self.n_channels_
        return network

    def _restore_channels(self, network: dict[str, Any], where: str) -> None:
        """Set ``n_channels_`` from a model file's network config (1 when absent)."""
        self.n_channels_ = config_entry(network, "in_channels", where, integer(1), default=1)

    def _choose_threshold(
        self, labels: np.ndarray, scores: np.ndarray
    ) -> tuple[OperatingPoint, str]:
        """Pick the operating point on held-out scores (best F1 or the user's target).

        The F1-best threshold of a handful of positives is mostly noise, so it is shrunk
        towards 0.5 — the decision point of a classifier trained on class-balanced batches
        — with weight ``n_pos / (n_pos + 5)``: a third of the way at 2 positives, 95% of
        the way at 100. The returned point reports the held-out scores at that threshold;
        the rule (a key of :data:`THRESHOLD_RULES`) says how it was chosen.
        """
        target_precision = getattr(self, "target_precision", None)
        target_recall = getattr(self, "target_recall", None)
        point = best_threshold(
            labels, scores, target_precision=target_precision, target_recall=target_recall
        )
        if target_precision is not None:
            met = point.precision >= target_precision
            return point, "target_precision" if met else "target_missed"
        if target_recall is not None:
            return point, "target_recall" if point.recall >= target_recall else "target_missed"
        n_pos = int(np.sum(labels))
        weight = n_pos / (n_pos + _THRESHOLD_PRIOR_STRENGTH)
        threshold = weight * point.threshold + (1 - weight) * _THRESHOLD_PRIOR
        counts = binary_counts(labels, scores >= threshold)
        return OperatingPoint(threshold, counts.precision, counts.recall, counts.f1), "best_f1"

    @property
    def threshold_rule_(self) -> str | None:
        """How ``threshold_`` was chosen: a key of :data:`THRESHOLD_RULES`.

        It is kept with the held-out metrics (``cv_metrics_["threshold_rule"]``), in the
        model file and the project's record; None for a model saved before it was recorded.
        """
        self._check_fitted()
        return getattr(self, "cv_metrics_", {}).get("threshold_rule")

    # -- prediction ---------------------------------------------------------------------
    def limit_threads(self, threads: int) -> None:
        """Run this model's inference on at most ``threads`` cores (torch and onnxruntime).

        For a process that shares its machine, such as a Dask worker beside others.
        """
        import torch

        torch.set_num_threads(threads)
        fitted = getattr(self, "estimator_", self)
        graph = getattr(fitted, "graph_", None)
        if graph is not None:
            graph.limit_threads(threads)

    # -- files --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Save as ``path.safetensors`` (weights) + ``path.json`` (everything else)."""
        from blobsift._version import __version__
        from blobsift.nn.serialize import save_model_file

        self._check_fitted()
        config = {
            "kind": self.kind,
            "blobsift_version": __version__,
            "params": jsonable_params(self.get_params()),
            "threshold": float(self.threshold_),
            **self._context_config(),
            **self._file_config(),
        }
        return save_model_file(path, self._tensors(), config)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Load a model saved with :meth:`save`; never executes code from the file.

        The weights and any stored ONNX graph must match the checksums in the JSON, and
        every value in the JSON must be one ``fit`` could have produced.

        Raises
        ------
        ModelFileError
            Naming the file and the first key or tensor that is missing, damaged or not
            allowed.
        """
        from blobsift.nn.serialize import load_model_file, model_paths

        tensors, config = load_model_file(path)
        weights_path, config_path = model_paths(path)
        if cls.kind and config.get("kind") != cls.kind:
            raise ModelFileError(
                f"{config_path} holds a {config.get('kind')!r} model, not a {cls.kind!r} one."
            )
        try:
            return cls._from_config(tensors, config, source=str(weights_path))
        except (TypeError, ValueError, RuntimeError) as error:
            raise ModelFileError(
                f"{config_path} is not a usable {cls.__name__} file: {error} Restore the "
                "model files as saved, or retrain the model."
            ) from None

    @classmethod
    def _from_config(
        cls, tensors: dict[str, Any], config: dict[str, Any], *, where: str = "", source: str
    ) -> Self:
        """Rebuild a fitted model from its weights and its description (see :meth:`save`).

        ``where`` prefixes key names in errors (the description's place in the file);
        ``source`` is the weights file.
        """
        if not isinstance(config, dict):
            raise ModelFileError(f"{where or 'the model description'} must be a JSON object.")
        model = cls()
        model.set_params(**config_entry(config, "params", where, MAPPING))
        model._validate_params(where=f"{where}params.")
        model.threshold_ = float(config_entry(config, "threshold", where, _THRESHOLD))
        model.classes_ = np.array([0, 1])
        model._restore(tensors, config, where=where, source=source)
        head = context_from_config(config, where, model.n_channels_)
        if head is not None:  # (a Sifter's head is its estimator's, set by ``_restore``)
            model.context_ = head
        return model

    def _context_config(self) -> dict[str, Any]:
        """The model file's intensity-context entry (none without a context head)."""
        return {} if self.context_ is None else {_CONTEXT_KEY: self.context_.to_config()}

    def _tensors(self) -> dict[str, Any]:
        raise NotImplementedError

    def _file_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore(
        self, tensors: dict[str, Any], config: dict[str, Any], *, where: str, source: str
    ) -> None:
        raise NotImplementedError


def context_from_config(config: dict[str, Any], where: str, channels: int) -> ContextHead | None:
    """The intensity-context head a model description holds, if any, checked.

    Parameters
    ----------
    config : dict
        A (part of a) model file's JSON description.
    where : str
        Its place in the file, prefixed to key names in errors.
    channels : int
        The model's channels; the head takes 1 + 2 x channels inputs.

    Raises
    ------
    ModelFileError
        If the head has the wrong number of coefficients.
    InvalidInputError
        If an entry of the head is not allowed (``load`` turns it into a ModelFileError).
    """
    context = config_entry(config, _CONTEXT_KEY, where, default=None)
    if context is None:
        return None
    head = ContextHead.from_config(context, f"{where}{_CONTEXT_KEY}")
    if len(head.coef) != 1 + 2 * channels:
        raise ModelFileError(
            f"{where}{_CONTEXT_KEY} holds {len(head.coef)} coefficients; a "
            f"model of {channels} channel(s) has {1 + 2 * channels}."
        )
    return head


def network_config(config: dict[str, Any], where: str, name: str) -> dict[str, Any]:
    """The network configuration in a model description's ``architecture``, checked.

    ``architecture`` must be a mapping whose ``name`` is ``name`` (the registered network)
    and whose ``config`` is a mapping, which is returned; ``where`` prefixes key names in
    errors (see :func:`config_entry`).
    """
    spec = config_entry(config, "architecture", where, MAPPING)
    config_entry(spec, "name", f"{where}architecture.", one_of(name))
    network: dict[str, Any] = config_entry(spec, "config", f"{where}architecture.", MAPPING)
    return network


def config_entry(
    config: dict[str, Any],
    key: str,
    where: str = "",
    constraint: Constraint | None = None,
    default: Any = _MISSING,
) -> Any:
    """Return ``config[key]`` of a model file, checked against ``constraint``.

    Parameters
    ----------
    config : dict
        A (part of a) model file's JSON description.
    key : str
        The entry to read.
    where : str
        Prefix of ``key`` in errors: the place of ``config`` in the file (e.g. "estimator.").
    constraint : Constraint, optional
        What the value must be.
    default : optional
        Returned when the entry is absent; without one, absence raises.

    Raises
    ------
    ModelFileError
        If the entry is missing (and has no default).
    InvalidInputError
        If the value violates ``constraint`` (``load`` turns it into a ModelFileError).
    """
    if key not in config:
        if default is _MISSING:
            raise ModelFileError(f"the key {where}{key} is missing.")
        return default
    value = config[key]
    if constraint is not None:
        constraint(value, f"{where}{key}")
    return value


def describe_threshold_rule(rule: str | None, target: float | None = None) -> str:
    """Say in words how a threshold was chosen.

    Parameters
    ----------
    rule : str or None
        A key of :data:`THRESHOLD_RULES` (a ``threshold_rule_``); None when the model did
        not record it.
    target : float, optional
        The target precision or recall, for the rules that aim at one.

    Returns
    -------
    str
    """
    if rule not in THRESHOLD_RULES:
        return "chosen by a rule this model did not record (it is from an earlier version)"
    return THRESHOLD_RULES[rule].format(target="the target" if target is None else target)


def jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    """Keep the parameters a JSON file can hold (callbacks and devices are dropped)."""
    kept: dict[str, Any] = {}
    for name, value in params.items():
        if value is None or isinstance(value, bool | int | float | str):
            kept[name] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, int | float) for v in value):
            kept[name] = list(value)
        elif isinstance(value, dict):
            kept[name] = value
    return kept
