"""``Sifter``: the estimator a user fits, which picks the learning phase itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal, overload

import numpy as np

from blobsift._validation import (
    BOOLEAN,
    CALLBACK,
    FRACTION,
    MAPPING,
    SEED,
    check_params,
    instance_of,
    one_of,
    real,
)
from blobsift.classify.base import CropClassifier, config_entry, jsonable_params
from blobsift.classify.cnn import CNNClassifier
from blobsift.classify.phases import (
    PHASES,
    PhaseRecord,
    phase2_retry,
    phase_records,
    recommend_phase,
)
from blobsift.classify.pretraining import PretrainedEncoders
from blobsift.classify.siamese import SiameseClassifier
from blobsift.exceptions import InvalidInputError, ModelFileError, NotFittedError
from blobsift.types import Progress, ProgressEvent

__all__ = ["PHASES", "Sifter"]

#: The held-out score of each phase that ``phase="auto"`` compares: average precision of
#: Phase 2's out-of-fold scores (optimistic: its early stopping chose the epoch on them)
#: and of Phase 1's leave-one-out gallery scores (optimistic: its encoder saw the labels).
#: Phase 1's out-of-fold scores are far too pessimistic to compare: each fold's gallery
#: lacks a fifth of the few positives a nearest-neighbour score rests on.
PHASE_SCORES = {"siamese": "loo_average_precision", "cnn": "average_precision"}
#: How much Phase 2's held-out score must beat Phase 1's for ``phase="auto"`` to switch.
#: Phase 2's early stopping picks its best epoch on those same held-out scores, which
#: flatters it; Phase 1's score involves no such choice.
SWITCH_MARGIN = 0.02
#: The short probe of Phase 2 that ``phase="auto"`` runs before the full ensemble: the same
#: network in 2 folds for 10 epochs (a short warm-up and cosine schedule), no refit or
#: distilled member (only its held-out scores count);
#: about a tenth of the full fit's steps at 1,000 labels and a twentieth at 250.
PROBE_OPTIONS: dict[str, Any] = {
    "n_folds": 2, "epochs": 10, "refit": False, "predict_with": "ensemble",
}  # fmt: skip
#: How far the probe's held-out score may fall short of what Phase 2 must reach (Phase 1's
#: score plus :data:`SWITCH_MARGIN`) for the full ensemble to be trained. The probe is
#: pessimistic (each fold model sees half the labels, for few epochs): in two demo runs at
#: 1,000 labels the full ensemble scored 0.011 and 0.023 above its probe. The allowance is
#: twice the larger gain, so a probe within reach still leads to the full fit.
PROBE_ALLOWANCE = 0.05
_PHASE_CLASSES: dict[str, type[SiameseClassifier] | type[CNNClassifier]] = {
    SiameseClassifier.kind: SiameseClassifier,
    CNNClassifier.kind: CNNClassifier,
}


class Sifter(CropClassifier):
    """Classify candidate crops as signal (1) or noise (0) from a few labels.

    Two learning phases, as in the specification: Phase 1, a Siamese encoder compared with
    the gallery of labelled crops (:class:`~blobsift.classify.siamese.SiameseClassifier`),
    learns from 20 labels on; Phase 2, the direct CNN
    (:class:`~blobsift.classify.cnn.CNNClassifier`), needs 100+. With ``phase="auto"``
    ``fit`` always trains Phase 1 (it is cheap, and its held-out score extends the phase
    history), asks :func:`~blobsift.classify.phases.recommend_phase` whether Phase 1 has
    plateaued, and if so decides cheaply whether Phase 2 is worth training:

    1. not if the history shows Phase 2 tried and not kept at more than half as many
       labels (:func:`~blobsift.classify.phases.phase2_retry`);
    2. not if a short probe (:data:`PROBE_OPTIONS`) scores more than
       :data:`PROBE_ALLOWANCE` below what Phase 2 must reach;
    3. otherwise the full ensemble is trained and kept only if its held-out score beats
       Phase 1's by 0.02 (so it never keeps a phase that held-out labels show to be worse).

    The score is an average precision of held-out probabilities (see
    :data:`PHASE_SCORES`): it rates the ranking, not one threshold, so neither phase's
    threshold choice tips the comparison.

    Parameters
    ----------
    phase : {"auto", "siamese", "cnn"}
        The learning phase, or "auto" to choose from the labels and the phase history.
    random_state : int or None
        Seed for reproducible fits.
    target_precision, target_recall : float or None
        Choose the decision threshold for this precision (or recall) on held-out labels
        instead of the F1-best one.
    cnn_from_pretrained : bool
        When ``fit`` gets unlabelled crops, start Phase 2's networks from Phase 1's
        pre-trained encoder instead of random weights.
    callback : callable or None
        Progress callback, called with the phases' :class:`~blobsift.types.ProgressEvent`
        (stage "pretrain", "finetune" or "epoch"; ``done`` of ``total``; the phase's own
        values) with ``details["phase"]`` added: "siamese" or "cnn".
    **options
        Further arguments of the phase classifiers: ``siamese__name=value`` or
        ``cnn__name=value`` for one of them; a plain ``name=value`` goes to the CNN if it
        has that parameter, else to the Siamese classifier (e.g. ``epochs=20``, ``k=3``).
        A name neither phase has is refused here and by :meth:`set_params`; values are
        checked by ``fit``.

    Attributes
    ----------
    phase_ : str
        The phase ``fit`` used; ``phase_reason_`` says why.
    estimator_ : CropClassifier
        The fitted classifier of that phase.
    gallery_ : SiameseClassifier or None
        The fitted Phase 1 classifier (also when Phase 2 was chosen): :meth:`kneighbors`
        uses it.
    phase_history_ : list of PhaseRecord
        The history given to ``fit`` plus this fit's record (labels, Phase 1 held-out
        score, positives, and Phase 2's score if it was tried and not kept).
    phase_scores_ : dict
        Held-out score of each phase trained (see :data:`PHASE_SCORES`), and
        ``"cnn_probe"``, the probe's, when one ran.
    threshold_ : float
        Decision threshold on the signal probability, chosen on held-out labels;
        ``threshold_rule_`` says how (see :data:`~blobsift.classify.base.THRESHOLD_RULES`).
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
    estimator_: SiameseClassifier | CNNClassifier
    gallery_: SiameseClassifier | None
    _parameter_constraints = {  # noqa: RUF012 (read-only)
        "phase": one_of(*PHASES),
        "random_state": SEED,
        "target_precision": FRACTION,
        "target_recall": FRACTION,
        "cnn_from_pretrained": BOOLEAN,
        "callback": CALLBACK,
    }

    def __init__(
        self,
        phase: str = "auto",
        random_state: int | None = None,
        target_precision: float | None = None,
        target_recall: float | None = None,
        cnn_from_pretrained: bool = True,
        callback: Progress | None = None,
        **options: Any,
    ) -> None:
        _route_options(options)  # unknown option names are refused at once
        self.phase = phase
        self.random_state = random_state
        self.target_precision = target_precision
        self.target_recall = target_recall
        self.cnn_from_pretrained = cnn_from_pretrained
        self.callback = callback
        self.options = options

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters, options included."""
        params = {name: getattr(self, name) for name in self._param_names() if name != "options"}
        return {**params, **self.options}

    def set_params(self, **params: Any) -> Sifter:
        """Set parameters; names that are not Sifter's own go to the phase classifiers.

        Raises
        ------
        InvalidInputError
            If a name is neither Sifter's nor a phase classifier's (nothing is set then).
        """
        own = set(self._param_names()) - {"options"}
        options = {**self.options, **{k: v for k, v in params.items() if k not in own}}
        _route_options(options)
        for name in own & set(params):
            setattr(self, name, params[name])
        self.options = options
        return self

    def _validate_params(self, where: str | None = None) -> None:
        """Check Sifter's own parameters and every phase classifier's (see the base class).

        Both phases are checked whichever ``fit`` trains, so a bad option of Phase 2 is
        refused before Phase 1 trains, and also when the labels never reach Phase 2.
        """
        own = {name: getattr(self, name) for name in self._parameter_constraints}
        prefix = "Sifter parameter " if where is None else where
        check_params(own, self._parameter_constraints, where=prefix)
        for kind, options in self._phase_options().items():
            estimator = self._phase_estimator(kind)
            check_params(
                {name: estimator.get_params()[name] for name in options},
                estimator._parameter_constraints,
                where=f"Sifter option {kind}__" if where is None else where,
            )

    # -- fitting ------------------------------------------------------------------------
    def _phase_options(self) -> dict[str, dict[str, Any]]:
        """Split ``options`` between the phase classifiers (see the class docstring)."""
        return _route_options(self.options)

    @overload
    def _phase_estimator(self, kind: Literal["siamese"]) -> SiameseClassifier: ...
    @overload
    def _phase_estimator(self, kind: Literal["cnn"]) -> CNNClassifier: ...
    @overload
    def _phase_estimator(self, kind: str) -> SiameseClassifier | CNNClassifier: ...
    def _phase_estimator(self, kind: str) -> SiameseClassifier | CNNClassifier:
        shared = {
            "random_state": self.random_state,
            "target_precision": self.target_precision,
            "target_recall": self.target_recall,
            "callback": self._phase_callback(kind),
        }
        return _PHASE_CLASSES[kind](**{**shared, **self._phase_options()[kind]})

    def _phase_callback(self, kind: str) -> Progress | None:
        callback = self.callback
        if callback is None:
            return None

        def forward(event: ProgressEvent) -> None:
            callback(replace(event, details={**event.details, "phase": kind}))

        return forward

    def fit(
        self,
        X: Any,  # noqa: N803
        y: Any,
        *,
        unlabeled: Any = None,
        history: Sequence[PhaseRecord | tuple[int, float]] = (),
        encoders: PretrainedEncoders | None = None,
        noise: Any = None,
    ) -> Sifter:
        """Fit the phase classifier(s) on raw crops ``X`` (n, [C,] 64, 64) and labels ``y``.

        Parameters
        ----------
        X : array of shape (n, 64, 64) or (n, C, 64, 64)
            Raw labelled crops, of one channel or of C (e.g. science, reference and
            difference); each channel is normalised on its own, and predictions need
            crops of the same C.
        y : array of shape (n,)
            Labels: 1 signal, 0 noise; at least 2 of each.
        unlabeled : array of shape (m, 64, 64), optional
            Unlabelled candidate crops: Phase 1 pre-trains its encoder on them (and is
            trained with ``phase="cnn"`` too, to start Phase 2 and for neighbours); with
            ``predict_with="distilled"``, Phase 2's one network also learns the ensemble's
            scores on them.
        history : sequence of PhaseRecord or (int, float)
            Earlier fits on this data set (``(number of labels, Phase 1 held-out score)``
            pairs will do), for ``phase="auto"``: see
            :func:`~blobsift.classify.phases.recommend_phase` and
            :func:`~blobsift.classify.phases.phase2_retry`.
        encoders : PretrainedEncoders, optional
            The cache of Phase 1's pre-trained encoders to reuse and fill; by default this
            Sifter's own, so refitting it on the same unlabelled crops pre-trains once.
        noise : array of shape (n,) or (n, C), optional
            The noise level of each labelled crop's image
            (:func:`blobsift.detect.estimate_noise`): the phase classifiers then try
            weighing each crop's brightness relative to its image
            (:mod:`~blobsift.classify.context`) and keep it where held-out labels show it
            helps (``intensity_context_``); predictions then need ``noise`` too
            (:func:`blobsift.scoring.score_candidates` passes it). Pre-training on
            ``unlabeled`` needs none: the context enters after the network.

        Returns
        -------
        self

        Raises
        ------
        InvalidInputError
            If a parameter is not allowed (checked before any training; the message names
            it, what is allowed and what was given), or ``X``/``y`` are not crops/labels.
        SingleClassError
            If a class has fewer than 2 labels.
        """
        self._validate_params()  # parameter and option errors before any training
        crops, labels = self._check_fit_input(X, y)
        levels = None if noise is None else self._check_noise(noise, crops)
        records = phase_records(history)
        self.gallery_ = None
        self.phase_scores_: dict[str, float] = {}
        if self.phase in ("auto", "siamese") or unlabeled is not None:
            if encoders is None:
                encoders = self.__dict__.setdefault("_encoders", PretrainedEncoders())
            self.gallery_ = self._phase_estimator("siamese").fit(
                crops, labels, unlabeled=unlabeled, encoders=encoders, noise=levels
            )
        if self.gallery_ is not None:
            self.phase_scores_["siamese"] = float(
                self.gallery_.cv_metrics_[PHASE_SCORES["siamese"]]
            )
        if self.phase == "auto":
            current = PhaseRecord(len(labels), self.phase_scores_["siamese"], int(labels.sum()))
            phase, reason = recommend_phase([*records, current])
            if phase == "cnn":
                phase, reason = self._worth_phase2([*records, current], crops, labels, reason)
        else:
            phase, reason = self.phase, f"phase={self.phase!r} was requested."
        estimator: SiameseClassifier | CNNClassifier | None = self.gallery_
        if phase == "cnn":
            cnn = self._phase_estimator("cnn")
            cnn.fit(
                crops, labels, initial_weights=self._pretrained_start(cnn), noise=levels,
                unlabeled=unlabeled,
            )  # fmt: skip
            self.phase_scores_["cnn"] = float(cnn.cv_metrics_[PHASE_SCORES["cnn"]])
            estimator = cnn
            if self.phase == "auto" and (
                self.phase_scores_["cnn"] < self.phase_scores_["siamese"] + SWITCH_MARGIN
            ):
                phase, estimator = "siamese", self.gallery_
                reason += (
                    f" But Phase 2's held-out score ({self.phase_scores_['cnn']:.3f}) does not "
                    f"beat Phase 1's ({self.phase_scores_['siamese']:.3f}) by {SWITCH_MARGIN}, "
                    "so Phase 1 is kept."
                )
        record = PhaseRecord.from_fit(len(labels), int(labels.sum()), phase, self.phase_scores_)
        self.phase_history_ = records if record is None else [*records, record]
        self.phase_, self.phase_reason_ = phase, reason
        assert estimator is not None, "Phase 1 is trained unless Phase 2 was"
        self.estimator_ = estimator
        self.context_ = estimator.context_
        self.threshold_ = self.estimator_.threshold_
        self.classes_ = np.array([0, 1])
        return self

    def _worth_phase2(
        self,
        history: list[PhaseRecord],
        crops: np.ndarray,
        labels: np.ndarray,
        reason: str,
    ) -> tuple[str, str]:
        """Decide cheaply whether Phase 2 is worth its full training (see the class doc).

        Returns the phase and the reason, extended by why Phase 2 is not trained.
        """
        retry = phase2_retry(history)
        if retry is not None:
            return "siamese", f"{reason} But {retry} So Phase 1 is kept."
        probe = self._phase_estimator("cnn")
        if probe.epochs <= PROBE_OPTIONS["epochs"]:
            return "cnn", reason  # the full fit is no dearer than the probe
        probe.set_params(**PROBE_OPTIONS)
        probe.fit(crops, labels, initial_weights=self._pretrained_start(probe))
        score = float(probe.cv_metrics_[PHASE_SCORES["cnn"]])
        self.phase_scores_["cnn_probe"] = score
        needed = self.phase_scores_["siamese"] + SWITCH_MARGIN - PROBE_ALLOWANCE
        if score < needed:
            return "siamese", (
                f"{reason} But a short probe of Phase 2 ({PROBE_OPTIONS['n_folds']} folds, "
                f"{PROBE_OPTIONS['epochs']} epochs) scored {score:.3f} on held-out labels, "
                f"below the {needed:.3f} that could beat Phase 1's "
                f"{self.phase_scores_['siamese']:.3f}, so Phase 1 is kept without training "
                "the full ensemble."
            )
        return "cnn", (
            f"{reason} A short probe of Phase 2 scored {score:.3f} (at least {needed:.3f}), so "
            "the full ensemble is trained."
        )

    def _pretrained_start(self, cnn: CNNClassifier) -> dict[str, Any] | None:
        """Phase 1's pre-trained encoder body, if Phase 2's network has the same body."""
        if not self.cnn_from_pretrained or self.gallery_ is None:
            return None

        def body(architecture: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in architecture.items() if k != "dropout"}

        if body(self.gallery_._architecture()) != body(cnn._architecture()):
            return None
        return self.gallery_.pretrain_state_

    @property
    def cv_metrics_(self) -> dict[str, Any]:
        """Held-out metrics of the fitted phase classifier."""
        self._check_fitted()
        return self.estimator_.cv_metrics_

    def kneighbors(self, X: Any, k: int = 5) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """The ``k`` most similar labelled crops of each crop in Phase 1's gallery.

        See :meth:`SiameseClassifier.kneighbors`; indices refer to the training crops in
        the order ``fit`` got them.

        Raises
        ------
        NotFittedError
            If no Phase 1 gallery was trained (``phase="cnn"``).
        """
        self._check_fitted()
        if self.gallery_ is None:
            raise NotFittedError(
                "this Sifter has no Phase 1 gallery (it was fitted with phase='cnn'); fit "
                "with phase='auto' or 'siamese' to get neighbours."
            )
        return self.gallery_.kneighbors(X, k)

    def _positive_proba(self, crops: np.ndarray) -> np.ndarray:
        return self.estimator_._positive_proba(crops)  # the context is the estimator's

    def _context_config(self) -> dict[str, Any]:
        return {}  # the estimator's description holds its context head

    # -- files --------------------------------------------------------------------------
    def _tensors(self) -> dict[str, Any]:
        tensors = dict(self.estimator_._tensors())
        if self.gallery_ is not None and self.gallery_ is not self.estimator_:
            tensors.update({f"gallery.{k}": v for k, v in self.gallery_._tensors().items()})
        return tensors

    def _file_config(self) -> dict[str, Any]:
        def describe(estimator: CropClassifier) -> dict[str, Any]:
            return {
                "kind": estimator.kind,
                "params": jsonable_params(estimator.get_params()),
                "threshold": float(estimator.threshold_),
                **estimator._context_config(),
                **estimator._file_config(),
            }

        config = {
            "phase": self.phase_,
            "phase_reason": self.phase_reason_,
            "phase_history": self.phase_history_,
            "phase_scores": self.phase_scores_,
            "estimator": describe(self.estimator_),
        }
        if self.gallery_ is not None and self.gallery_ is not self.estimator_:
            config["gallery"] = describe(self.gallery_)
        return config

    @staticmethod
    def _restore_phase(
        tensors: dict[str, Any], config: dict[str, Any], *, where: str, source: str
    ) -> SiameseClassifier | CNNClassifier:
        kind = config_entry(config, "kind", where, one_of(*_PHASE_CLASSES))
        return _PHASE_CLASSES[kind]._from_config(tensors, config, where=where, source=source)

    def _restore(
        self, tensors: dict[str, Any], config: dict[str, Any], *, where: str, source: str
    ) -> None:
        inner = {**config_entry(config, "estimator", where, MAPPING)}
        inner.setdefault("threshold", self.threshold_)
        self.estimator_ = self._restore_phase(
            tensors, inner, where=f"{where}estimator.", source=source
        )
        self.n_channels_ = self.estimator_.n_channels_
        self.context_ = self.estimator_.context_
        if self.estimator_.threshold_ != self.threshold_:
            raise ModelFileError(
                f"{where}threshold ({self.threshold_}) differs from {where}estimator.threshold "
                f"({self.estimator_.threshold_}), which decides."
            )
        # The kind picks the class (_PHASE_CLASSES): kind "siamese" is a SiameseClassifier.
        self.gallery_ = self.estimator_ if isinstance(self.estimator_, SiameseClassifier) else None
        if "gallery" in config:
            prefix = "gallery."
            own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            gallery = self._restore_phase(
                own, config_entry(config, "gallery", where, MAPPING), where=f"{where}gallery.",
                source=source,
            )  # fmt: skip
            if not isinstance(gallery, SiameseClassifier):
                raise ModelFileError(f"{where}gallery.kind must be 'siamese'.")
            self.gallery_ = gallery
        self.phase_ = config_entry(config, "phase", where, one_of(self.estimator_.kind))
        self.phase_reason_ = config_entry(config, "phase_reason", where, _TEXT, default="")
        history = config_entry(config, "phase_history", where, _LIST, default=[])
        self.phase_history_ = phase_records(history, name=f"{where}phase_history")
        scores = config_entry(config, "phase_scores", where, MAPPING, default={})
        for name, score in scores.items():
            one_of(*_PHASE_CLASSES, "cnn_probe")(name, f"{where}phase_scores key")
            real()(score, f"{where}phase_scores.{name}")
        self.phase_scores_ = scores


def _route_options(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Split Sifter options between the phase classifiers (see :class:`Sifter`).

    Raises
    ------
    InvalidInputError
        If a name has no phase prefix that exists, or no phase has that parameter.
    """
    routed: dict[str, dict[str, Any]] = {kind: {} for kind in _PHASE_CLASSES}
    for name, value in options.items():
        target: str | None
        kind, _, inner = name.partition("__")
        if inner:
            if kind not in _PHASE_CLASSES:
                raise InvalidInputError(
                    f"option {name!r}: prefix {kind!r} is not a phase; use "
                    f"{[k + '__' for k in _PHASE_CLASSES]}."
                )
            target, name = kind, inner
        else:
            target = next(
                (k for k in ("cnn", "siamese") if name in _PHASE_CLASSES[k]._param_names()),
                None,
            )
            if target is None:
                raise InvalidInputError(f"Sifter has no option {name!r}.")
        if name not in _PHASE_CLASSES[target]._param_names():
            raise InvalidInputError(f"the {target} phase has no option {name!r}.")
        routed[target][name] = value
    return routed


_TEXT = instance_of(str, "text", optional=False)
_LIST = instance_of(list, "a list", optional=False)
