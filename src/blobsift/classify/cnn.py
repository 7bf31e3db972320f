"""Phase 2: a direct CNN classifier, cross-validated into an ensemble of fold models."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from blobsift._validation import (
    BOOLEAN,
    CALLBACK,
    FRACTION,
    MAPPING,
    OPTIONAL_BOOLEAN,
    SEED,
    instance_of,
    integer,
    one_of,
    real,
)
from blobsift.classify.base import PREDICT_CHUNK, CropClassifier, config_entry, network_config
from blobsift.crops import centre_window
from blobsift.exceptions import InvalidInputError, ModelFileError
from blobsift.nn.augment import Augmentation
from blobsift.nn.data import network_input
from blobsift.nn.loop import (
    SAMPLINGS,
    WARMUP_EPOCHS,
    EarlyStopping,
    EpochRecord,
    Trainer,
    predict_logits,
    resolve_device,
    run_epochs,
    seeded,
    summarise_logits,
    trivial_f1,
)
from blobsift.nn.losses import FocalLoss
from blobsift.nn.onnx import ONNX_KEY, ExportedGraph
from blobsift.splits import feasible_folds, stratified_folds
from blobsift.types import Progress

__all__ = ["DEFAULT_ARCHITECTURE", "CNNClassifier"]

#: The network ``CNNClassifier`` trains by default: :class:`SignalClassifier` fed the
#: central 48x48 window of each 64x64 crop (normalised on that window). Its conv branch,
#: (16, 32, 64) channels over the central 32x32 pixels pooled around the centre, and its
#: fixed multi-scale filter branch (:class:`ScaleSpaceFeatures`) feed one small head:
#: about 8 MFLOP per crop. On the learning-curve benchmark this beats the specification's
#: flattened 78-MFLOP network at every label count, most at 25-250 labels.
DEFAULT_ARCHITECTURE: dict[str, Any] = {
    "channels": [16, 32, 64],
    "hidden": 64,
    "dropout": 0.5,
    "crop_size": 48,
    "input_size": 32,
    "head": "centre",
    "scale_features": True,
}
_REFIT_MAX_LABELS = 400  # "auto" refit adds a full-data member up to this many labels
_STEADY_FOLD_SIZE = 300  # training crops per fold up to which ``epochs`` applies in full
_BACKENDS = ("auto", "onnx", "torch")
_PREDICT_WITH = ("ensemble", "refit", "distilled")
_DISTIL_EPOCHS = 8  # the student starts from a trained member: a few epochs suffice
_DISTIL_UNLABELED = 2000  # unlabelled crops the student learns the ensemble's scores on


class _Ensemble(nn.Module):
    """Mean signal probability of several member networks: (B, 1, S, S) -> (B, 1)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        probs = [torch.sigmoid(member(crops)) for member in self.members]
        return torch.stack(probs).mean(dim=0)


class CNNClassifier(CropClassifier):
    """Direct CNN classifier of candidate crops (the specification's Phase 2), improved.

    ``fit`` splits the labels into stratified folds and trains one
    :class:`~blobsift.nn.models.SignalClassifier` per fold, all in lockstep. After every
    epoch the fold models score their held-out folds; the pooled out-of-fold scores cover
    *every* label, so early stopping and the decision threshold rest on all positives
    rather than the two or so an 80/20 split leaves at 100 labels. The fold models (and,
    up to 400 labels, one more model trained on every label for the best epoch count) are
    kept as an ensemble whose mean probability is the prediction.

    Parameters
    ----------
    n_folds : int or None
        Folds (and ensemble members); by default 5 up to 400 labels and 3 above (more
        labels leave enough positives per fold). Never more than the rarer class has
        labels, and at least 2.
    epochs : int
        Maximum epochs for small label sets. With more labels each epoch holds more
        steps, so the maximum shrinks in proportion beyond 300 training crops per fold
        (never below 30); ``patience`` shrinks with it.
    learning_rate : float
        Peak AdamW learning rate (after a 5-epoch warm-up, then cosine decay).
    batch_size : int or None
        Crops per step; by default 8 below 200 labels, growing to 32 at 800 and more.
    weight_decay : float
        AdamW weight decay.
    body_learning_rate : float
        For networks started from pre-trained weights (``fit(initial_weights=...)``):
        the learning rate of the body (convolutions and scale-space branch) as a share of
        ``learning_rate``; the head learns at the full rate.
    frozen_epochs : int
        For networks started from pre-trained weights: epochs at the start during which
        only the head learns.
    patience : int
        Early-stopping patience on out-of-fold F1 (counted after the warm-up).
    sampling : {"weighted", "oversample", "none"}
        Class-balanced batches (with focal alpha 0.5) or plain shuffling (alpha 0.75).
    augment : bool
        Random flips/rotations, sub-pixel shifts, gain/offset/gamma, noise and blur.
    refit : bool or None
        Add one more ensemble member trained on all labels for the best epoch count;
        by default up to 400 labels, where each fold model misses many of the few positives.
    predict_with : {"ensemble", "refit", "distilled"}
        What predicts: the mean of the members; the refit member alone (one network,
        so inference costs one network's time; the refit member is then always trained,
        and the fold models only choose the epoch count and the threshold); or one
        network distilled from the ensemble: a copy of the last member trained for a few
        more epochs to reproduce the ensemble's probabilities on the labelled crops and
        on up to 2,000 of ``fit``'s ``unlabeled`` crops (one network's inference, the
        ensemble's threshold and held-out scores).
    architecture : dict or None
        :class:`~blobsift.nn.models.SignalClassifier` arguments;
        :data:`DEFAULT_ARCHITECTURE` when None.
    target_precision, target_recall : float or None
        Choose the threshold for this precision (or recall) instead of best F1.
    backend : {"auto", "onnx", "torch"}
        Inference engine: onnxruntime (fast; "auto" falls back to torch if it fails) or
        torch.
    device : str or None
        Training device; CUDA when available, else CPU.
    random_state : int or None
        Seed for folds, initialisation, sampling and augmentation.
    callback : callable or None
        Called after each epoch with a :class:`~blobsift.types.ProgressEvent` of stage
        ``"epoch"`` (see :meth:`~blobsift.nn.loop.EpochRecord.event`): ``done`` epochs of
        ``total``, values ``epoch``, ``total_epochs``, ``train_loss``, ``val_f1``,
        ``is_best`` (and ``val_loss``, ``lr``).
    """

    kind = "cnn"
    _parameter_constraints = {  # noqa: RUF012 (read-only)
        "n_folds": integer(2, optional=True),
        "epochs": integer(1),
        "learning_rate": real(0, low_open=True),
        "batch_size": integer(1, optional=True),
        "weight_decay": real(0),
        "body_learning_rate": real(0),
        "frozen_epochs": integer(0),
        "patience": integer(0),
        "sampling": one_of(*SAMPLINGS),
        "augment": BOOLEAN,
        "refit": OPTIONAL_BOOLEAN,
        "predict_with": one_of(*_PREDICT_WITH),
        "architecture": MAPPING,
        "target_precision": FRACTION,
        "target_recall": FRACTION,
        "backend": one_of(*_BACKENDS),
        "device": instance_of((str, torch.device), "a torch device such as 'cpu' or 'cuda'"),
        "random_state": SEED,
        "callback": CALLBACK,
    }

    def __init__(
        self,
        n_folds: int | None = None,
        epochs: int = 100,
        learning_rate: float = 1e-3,
        batch_size: int | None = None,
        weight_decay: float = 1e-4,
        body_learning_rate: float = 1.0,
        frozen_epochs: int = 0,
        patience: int = 25,
        sampling: str = "weighted",
        augment: bool = True,
        refit: bool | None = None,
        predict_with: str = "ensemble",
        architecture: dict[str, Any] | None = None,
        target_precision: float | None = None,
        target_recall: float | None = None,
        backend: str = "auto",
        device: str | None = None,
        random_state: int | None = None,
        callback: Progress | None = None,
    ) -> None:
        self.n_folds = n_folds
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.body_learning_rate = body_learning_rate
        self.frozen_epochs = frozen_epochs
        self.patience = patience
        self.sampling = sampling
        self.augment = augment
        self.refit = refit
        self.predict_with = predict_with
        self.architecture = architecture
        self.target_precision = target_precision
        self.target_recall = target_recall
        self.backend = backend
        self.device = device
        self.random_state = random_state
        self.callback = callback

    # -- fitting ------------------------------------------------------------------------
    def _architecture(self) -> dict[str, Any]:
        """The network's configuration; ``in_channels`` follows the crops (see ``fit``)."""
        return self._with_channels({**DEFAULT_ARCHITECTURE, **(self.architecture or {})})

    def _window(self, crops: np.ndarray) -> np.ndarray:
        """The part of each crop the network is fed (its ``crop_size`` window)."""
        return np.ascontiguousarray(centre_window(crops, self._architecture()["crop_size"]))

    def _build_member(self, initial_weights: dict[str, torch.Tensor] | None = None) -> nn.Module:
        from blobsift.nn.models import SignalClassifier

        member = SignalClassifier(**self._architecture())
        if initial_weights is not None:
            try:
                _, unexpected = member.load_state_dict(initial_weights, strict=False)
            except RuntimeError as error:
                raise InvalidInputError(
                    f"initial_weights do not fit the architecture: {error}"
                ) from None
            if unexpected:
                raise InvalidInputError(
                    f"initial_weights hold weights the architecture lacks: {unexpected[:3]}."
                )
        return member

    def _refits(self, labels: np.ndarray) -> bool:
        if self.predict_with == "refit":
            return True
        if self.refit is not None:
            return bool(self.refit)
        return len(labels) <= _REFIT_MAX_LABELS

    def _n_folds(self, labels: np.ndarray) -> int:
        wanted = self.n_folds if self.n_folds is not None else 5 if len(labels) <= 400 else 3
        return feasible_folds(labels, wanted)

    def _schedule(self, n_train: int) -> tuple[int, int]:
        """Epochs and patience for folds of ``n_train`` crops (see ``epochs``)."""
        scale = min(1.0, _STEADY_FOLD_SIZE / max(n_train, 1))
        epochs = max(min(self.epochs, 30), round(self.epochs * scale))
        return epochs, max(5, round(self.patience * epochs / self.epochs))

    def _batch_size(self, n_labels: int) -> int:
        if self.batch_size is not None:
            return int(self.batch_size)
        return int(np.clip(8 * round(n_labels / 200), 8, 32))

    def fit(
        self,
        X: Any,  # noqa: N803
        y: Any,
        *,
        initial_weights: dict[str, torch.Tensor] | None = None,
        noise: Any = None,
        unlabeled: Any = None,
    ) -> CNNClassifier:
        """Train the fold ensemble and choose the threshold on out-of-fold scores.

        Parameters
        ----------
        X : array of shape (n, 64, 64) or (n, C, 64, 64)
            Raw crops of any real dtype (normalised internally, per crop and channel);
            the networks take C input channels, and predictions need crops of C too.
        y : array of shape (n,)
            Labels: 1 signal, 0 noise; at least 2 of each.
        initial_weights : dict, optional
            Weights every member starts from instead of a random initialisation, e.g. a
            pre-trained encoder's body (:func:`~blobsift.nn.models.transferable_state`).
            Names must be a subset of the network's.
        noise : array of shape (n,) or (n, C), optional
            The noise level of each crop's image: an intensity-context head
            (:mod:`~blobsift.classify.context`) is fitted on the out-of-fold scores and
            kept if it raises their held-out average precision (``intensity_context_``);
            predictions then need the noise of their crops' images too.
        unlabeled : array of shape (m, 64, 64) or (m, C, 64, 64), optional
            Unlabelled candidate crops, used only with ``predict_with="distilled"``: the
            distilled network also learns the ensemble's scores on (up to 2,000 of) them.

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
        self._validate_params()
        crops, labels = self._check_fit_input(X, y)
        levels = None if noise is None else self._check_noise(noise, crops)
        pool = None if unlabeled is None else self._check_crops(unlabeled, name="unlabeled")
        rng = np.random.default_rng(self.random_state)
        with seeded(int(rng.integers(2**31 - 1))):  # the caller's torch state stays as it was
            folds, stopper, records, best_oof = self._fit_members(
                crops, labels, rng, initial_weights
            )
        self.oof_proba_ = torch.sigmoid(best_oof).numpy().astype(np.float64)
        point, rule = self._choose_threshold(labels, self.oof_proba_)
        self.threshold_ = point.threshold
        if self.predict_with == "distilled":
            with seeded(int(rng.integers(2**31 - 1))):
                self.members_ = [self._distilled_member(crops, pool, rng)]
        self.classes_ = np.array([0, 1])
        history = {
            "train_loss": [record.train_loss for record in records],
            "val_loss": [record.metrics["loss"] for record in records],
            "val_f1": [record.metrics["best_f1"] for record in records],
            "val_average_precision": [record.metrics["average_precision"] for record in records],
        }
        self.history_ = {**history, "best_epoch": stopper.best_epoch + 1}
        self.graph_ = self._exported_graph()
        self.cv_metrics_: dict[str, Any] = {
            "f1": point.f1, "precision": point.precision, "recall": point.recall,
            "average_precision": history["val_average_precision"][stopper.best_epoch],
            "n_labels": len(labels), "n_positive": int(labels.sum()), "n_folds": len(folds),
            "n_members": len(self.members_), "threshold_rule": rule,
        }  # fmt: skip
        self._fit_context(crops, labels, levels, self.oof_proba_, rng, self.cv_metrics_)
        return self

    def _fit_members(
        self,
        crops: np.ndarray,
        labels: np.ndarray,
        rng: np.random.Generator,
        initial_weights: dict[str, torch.Tensor] | None,
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], EarlyStopping, list[EpochRecord], torch.Tensor]:
        """Train the fold models in lockstep (:func:`~blobsift.nn.loop.run_epochs`).

        Sets ``members_`` (with the refit member, if any); returns the folds, the stopper,
        the epoch records and the out-of-fold logits of the best epoch.
        """
        device = resolve_device(self.device)
        folds = stratified_folds(labels, self._n_folds(labels), rng)
        epochs, patience = self._schedule(len(folds[0][0]))
        x_all = torch.from_numpy(self._window(crops))
        y_all = torch.from_numpy(labels)
        augment = Augmentation() if self.augment else None
        pretrained = initial_weights is not None
        body_rate = self.body_learning_rate if pretrained else 1.0
        frozen = self.frozen_epochs if pretrained else 0

        def trainer(train: np.ndarray | slice, n_epochs: int) -> Trainer:
            return Trainer(
                self._build_member(initial_weights), x_all[train], y_all[train], epochs=n_epochs,
                learning_rate=self.learning_rate, batch_size=self._batch_size(len(y_all[train])),
                weight_decay=self.weight_decay, sampling=self.sampling, device=device,
                generator=torch.Generator().manual_seed(int(rng.integers(2**31 - 1))),
                augment=augment, body_learning_rate=body_rate, frozen_epochs=frozen,
            )  # fmt: skip

        trainers = [trainer(train, epochs) for train, _ in folds]
        held_out = [network_input(x_all[val]) for _, val in folds]
        stopper = EarlyStopping(
            patience, start_epoch=min(WARMUP_EPOCHS, epochs - 1), baseline=trivial_f1(labels)
        )
        oof = torch.empty(len(labels))
        best_oof = oof.clone()

        def validate() -> dict[str, float]:
            for fold, (_, val), x_val in zip(trainers, folds, held_out, strict=True):
                oof[val] = predict_logits(fold.model, x_val, device)
            return summarise_logits(oof, y_all, trainers[0].criterion, 0.5)

        def keep_best() -> None:
            best_oof.copy_(oof)

        records = run_epochs(
            trainers, epochs, validate, stopper, callback=self.callback, on_best=keep_best
        )
        self.members_ = [fold.model.to("cpu").eval() for fold in trainers]
        if self._refits(labels):
            # One more member trained on every label for the epochs the folds found best:
            # with few positives each fold model misses a large share of them.
            full = trainer(slice(None), stopper.best_epoch + 1)
            full.train_epochs(stopper.best_epoch + 1)
            self.members_.append(full.model.to("cpu").eval())
            if self.predict_with == "refit":
                self.members_ = self.members_[-1:]
        return folds, stopper, records, best_oof

    def _distilled_member(
        self, crops: np.ndarray, unlabeled: np.ndarray | None, rng: np.random.Generator
    ) -> nn.Module:
        """One network trained to reproduce the ensemble's probabilities (``predict_with``).

        The student starts as a copy of the last member (the refit one, if any) and trains
        with binary cross-entropy (focal loss with ``gamma=0`` and no ``alpha``) on the
        ensemble's probabilities as soft targets, on the labelled crops and up to
        ``_DISTIL_UNLABELED`` unlabelled ones, augmented as in training (the augmentations
        keep a crop's class, so its target stays valid). Batches balance the crops the
        ensemble calls signal (at ``threshold_``) with the others, as the members' batches
        balance the labels: the few signal crops are not drowned, and as the balance
        depends on the crop alone, the student's best prediction of each crop is still
        the ensemble's probability (so its threshold stays valid).
        """
        if unlabeled is not None and len(unlabeled) > _DISTIL_UNLABELED:
            unlabeled = unlabeled[rng.choice(len(unlabeled), _DISTIL_UNLABELED, replace=False)]
        window = self._window(crops if unlabeled is None else np.concatenate([crops, unlabeled]))
        device = resolve_device(self.device)
        # The teacher in torch: exporting the ensemble's graph only to score these would be
        # thrown away (predict_logits runs any module; the ensemble's output is probabilities).
        targets = predict_logits(self._ensemble(), network_input(window), device)
        decisions = (targets >= self.threshold_).to(torch.int64)
        both = 0 < int(decisions.sum()) < len(decisions)
        student = self._build_member()
        student.load_state_dict(self.members_[-1].state_dict())
        trainer = Trainer(
            student, torch.from_numpy(window), targets, epochs=_DISTIL_EPOCHS,
            learning_rate=self.learning_rate, batch_size=max(self._batch_size(len(window)), 32),
            weight_decay=self.weight_decay, sampling="weighted" if both else "none",
            sampling_labels=decisions, device=device,
            generator=torch.Generator().manual_seed(int(rng.integers(2**31 - 1))),
            criterion=FocalLoss(alpha=None, gamma=0.0), warmup_epochs=1,
            augment=Augmentation() if self.augment else None,
        )  # fmt: skip
        trainer.train_epochs(_DISTIL_EPOCHS)
        return trainer.model.to("cpu").eval()

    # -- prediction ---------------------------------------------------------------------
    def _ensemble(self) -> nn.Module:
        return _Ensemble(self.members_).eval()

    def _exported_graph(
        self, graph: bytes | None = None, source: str | None = None
    ) -> ExportedGraph:
        crop_size = self._architecture()["crop_size"]
        return ExportedGraph(
            self._ensemble, crop_size, graph, source=source, channels=self.n_channels_
        )

    def _positive_proba(self, crops: np.ndarray) -> np.ndarray:
        runner = self.graph_.runner(self.backend)
        ensemble = None if runner is not None else self._ensemble()
        crops = self._window(crops)
        out = np.empty(len(crops), dtype=np.float64)
        for start in range(0, len(crops), PREDICT_CHUNK):
            x = network_input(crops[start : start + PREDICT_CHUNK])
            if runner is not None:
                probs = runner.run(x.numpy()).reshape(-1)
            else:
                assert ensemble is not None, "built above as there is no runner"
                with torch.inference_mode():
                    probs = ensemble(x).reshape(-1).numpy()
            out[start : start + len(x)] = probs
        return out

    # -- files --------------------------------------------------------------------------
    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = {
            f"member{i}.{name}": tensor
            for i, member in enumerate(self.members_)
            for name, tensor in member.state_dict().items()
        }
        graph = self.graph_.as_tensor()  # the inference graph travels along (protobuf)
        if graph is not None:
            tensors[ONNX_KEY] = graph
        return tensors

    def _file_config(self) -> dict[str, Any]:
        return {
            "architecture": {"name": "signal_classifier", "config": self._architecture()},
            "n_members": len(self.members_),
            "metrics": self.cv_metrics_,
            "history": self.history_,
        }

    def _restore(
        self, tensors: dict[str, torch.Tensor], config: dict[str, Any], *, where: str, source: str
    ) -> None:
        from blobsift.nn.models import build_model
        from blobsift.nn.serialize import load_state_exactly

        network = network_config(config, where, "signal_classifier")
        self._restore_channels(network, f"{where}architecture.config.")
        n_members = config_entry(config, "n_members", where, integer(1))
        stored = {k.split(".", 1)[0] for k in tensors if k.startswith("member")}
        if stored != {f"member{i}" for i in range(n_members)}:
            raise ModelFileError(
                f"{where}n_members is {n_members} but the weights hold {len(stored)} members."
            )
        members = []
        for i in range(n_members):
            prefix = f"member{i}."
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            member = build_model("signal_classifier", network)
            load_state_exactly(member, state, f"member{i}")
            members.append(member.eval())
        self.architecture = network
        self.members_ = members
        graph = tensors.get(ONNX_KEY)
        graph_bytes = None if graph is None else graph.numpy().tobytes()
        self.graph_ = self._exported_graph(graph_bytes, source)
        self.cv_metrics_ = config_entry(config, "metrics", where, MAPPING, default={})
        self.history_ = config_entry(config, "history", where, MAPPING, default={})
