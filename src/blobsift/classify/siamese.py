"""Phase 1: a Siamese encoder whose embeddings are compared with a labelled gallery."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from numpy.random import Generator
from torch import Tensor

from blobsift._validation import (
    BOOLEAN,
    CALLBACK,
    FRACTION,
    MAPPING,
    PATH,
    SEED,
    check_choice,
    check_labels,
    integer,
    one_of,
    real,
)
from blobsift.classify.base import PREDICT_CHUNK, CropClassifier, config_entry, network_config
from blobsift.classify.cnn import DEFAULT_ARCHITECTURE
from blobsift.classify.gallery import (
    checked_gallery,
    gallery_scores,
    leave_one_out_scores,
    nearest_neighbours,
)
from blobsift.classify.pretraining import PretrainedEncoders, pretraining_key
from blobsift.crops import centre_window
from blobsift.metrics import OperatingPoint, average_precision, binary_counts
from blobsift.nn.contrastive import calibrate_batch_norm, finetune_head, pretrain_encoder
from blobsift.nn.data import network_input
from blobsift.nn.loop import seeded
from blobsift.nn.models import CropEncoder, transferable_state
from blobsift.nn.onnx import ONNX_KEY, ExportedGraph
from blobsift.splits import feasible_folds, stratified_folds
from blobsift.types import Progress

__all__ = ["ENCODER_ARCHITECTURE", "SiameseClassifier"]

#: The encoder ``SiameseClassifier`` trains by default: the Phase 2 network's body
#: (:data:`~blobsift.classify.cnn.DEFAULT_ARCHITECTURE`) with an embedding head, so a
#: pre-trained encoder can start the Phase 2 classifier.
ENCODER_ARCHITECTURE: dict[str, Any] = {**DEFAULT_ARCHITECTURE, "dropout": 0.1}
_MAX_UNLABELED = 4000  # unlabelled crops kept for pre-training (a random subset beyond)
_DECISION_POINT = 0.5
_N_VIEWS = 8  # augmented views of each labelled crop for the pair training
_BACKENDS = ("auto", "onnx", "torch")


class SiameseClassifier(CropClassifier):
    """Few-label classifier: an embedding network and a gallery of labelled embeddings.

    A shared encoder (:class:`~blobsift.nn.models.CropEncoder`) maps each crop to a
    unit-length embedding. Given unlabelled crops, ``fit`` first pre-trains it without
    labels (contrastive learning over two augmentations of each crop); it then trains on
    class-balanced labelled pairs (contrastive loss). A crop is scored by its similarity
    to the labelled gallery: the ``k`` nearest neighbours of each class, turned into a
    probability by :func:`~blobsift.classify.gallery.gallery_scores`.

    The held-out metrics come from stratified cross-validation: each fold's encoder is
    trained on the other folds, whose crops form its gallery. The final encoder is trained
    on every label and the gallery holds every labelled crop. The decision threshold is
    0.5 (as close to signal as to noise) unless a target precision or recall is set.

    Parameters
    ----------
    embedding_dim : int
        Length of the embedding.
    k : int
        Neighbours per class in the score.
    temperature : float
        Kernel width of the score on the cosine-similarity scale.
    pretrain_steps : int
        Self-supervised steps on the unlabelled crops (when ``fit`` is given some).
    finetune_steps : int
        Steps on labelled pairs (64 pairs each) that train the encoder's head over its
        frozen body; 0 keeps the (pre-trained) encoder as is.
    n_folds : int or None
        Cross-validation folds; by default 5, never more than the rarer class has labels.
    learning_rate : float
        Peak AdamW learning rate of the pair training.
    augment : bool
        Train on 8 augmented views of each labelled crop instead of the crop alone.
    architecture : dict or None
        Encoder arguments; :data:`ENCODER_ARCHITECTURE` when None.
    pretrain_cache : str or None
        A folder where pre-trained encoders are kept by a digest of their crops and
        settings, so that later fits on the same candidates (in other processes too)
        skip pre-training (within a process, pass ``fit`` a :class:`PretrainedEncoders`).
    backend : {"auto", "onnx", "torch"}
        Inference engine of the encoder: onnxruntime ("auto" falls back to torch if it
        fails) or torch.
    target_precision, target_recall : float or None
        Choose the threshold for this precision (or recall) instead of best F1.
    random_state : int or None
        Seed.
    callback : callable or None
        Called every 10 optimiser steps with a :class:`~blobsift.types.ProgressEvent`:
        stage ``"pretrain"`` or ``"finetune"``, ``done`` steps of ``total``, values
        ``{"loss"}``.

    Attributes
    ----------
    encoder_ : CropEncoder
        The trained encoder.
    gallery_embeddings_ : ndarray of shape (g, embedding_dim)
    gallery_labels_ : ndarray of shape (g,)
        The labelled gallery: the training crops in the order given, then any crops added
        with :meth:`add_to_gallery`.
    pretrain_state_ : dict or None
        The encoder weights after pre-training (before any label was used), to start a
        Phase 2 classifier from.
    oof_proba_ : ndarray
        Out-of-fold probability of every training label.
    cv_metrics_ : dict
        Out-of-fold F1, precision, recall and average precision, counts, and
        ``loo_average_precision``: each labelled crop scored by the final encoder against
        the rest of the gallery (optimistic, as the encoder saw every label; out-of-fold
        scores err the other way, as each fold's gallery lacks a fifth of the few
        positives a nearest-neighbour score depends on).
    """

    kind = "siamese"
    _parameter_constraints = {  # noqa: RUF012 (read-only)
        "embedding_dim": integer(1),
        "k": integer(1),
        "temperature": real(0, low_open=True),
        "pretrain_steps": integer(0),
        "finetune_steps": integer(0),
        "n_folds": integer(2, optional=True),
        "learning_rate": real(0, low_open=True),
        "augment": BOOLEAN,
        "architecture": MAPPING,
        "pretrain_cache": PATH,
        "backend": one_of(*_BACKENDS),
        "target_precision": FRACTION,
        "target_recall": FRACTION,
        "random_state": SEED,
        "callback": CALLBACK,
    }

    def __init__(
        self,
        embedding_dim: int = 32,
        k: int = 5,
        temperature: float = 0.1,
        pretrain_steps: int = 200,
        finetune_steps: int = 200,
        n_folds: int | None = None,
        learning_rate: float = 3e-3,
        augment: bool = True,
        architecture: dict[str, Any] | None = None,
        pretrain_cache: str | None = None,
        backend: str = "auto",
        target_precision: float | None = None,
        target_recall: float | None = None,
        random_state: int | None = None,
        callback: Progress | None = None,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.k = k
        self.temperature = temperature
        self.pretrain_steps = pretrain_steps
        self.finetune_steps = finetune_steps
        self.n_folds = n_folds
        self.learning_rate = learning_rate
        self.augment = augment
        self.architecture = architecture
        self.pretrain_cache = pretrain_cache
        self.backend = backend
        self.target_precision = target_precision
        self.target_recall = target_recall
        self.random_state = random_state
        self.callback = callback

    # -- the encoder --------------------------------------------------------------------
    def _architecture(self) -> dict[str, Any]:
        """The encoder's configuration; ``in_channels`` follows the crops (see ``fit``)."""
        return self._with_channels({**ENCODER_ARCHITECTURE, **(self.architecture or {})})

    def _window(self, crops: np.ndarray) -> torch.Tensor:
        size = self._architecture()["crop_size"]
        return torch.from_numpy(np.ascontiguousarray(centre_window(crops, size)))

    def _new_encoder(self) -> CropEncoder:
        return CropEncoder(self.embedding_dim, **self._architecture())

    @staticmethod
    def _embed(encoder: CropEncoder, windows: torch.Tensor) -> np.ndarray:
        encoder.eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, len(windows), PREDICT_CHUNK):
                chunk = network_input(windows[start : start + PREDICT_CHUNK])
                parts.append(encoder(chunk).numpy())
        if not parts:
            return np.empty((0, encoder.config["embedding_dim"]), dtype=np.float32)
        return np.concatenate(parts)

    def _score(self, queries: np.ndarray, gallery: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return gallery_scores(queries @ gallery.T, labels, k=self.k, temperature=self.temperature)

    # -- fitting ------------------------------------------------------------------------
    def fit(
        self,
        X: Any,  # noqa: N803
        y: Any,
        *,
        unlabeled: Any = None,
        encoders: PretrainedEncoders | None = None,
        noise: Any = None,
    ) -> SiameseClassifier:
        """Pre-train on ``unlabeled`` (if given), train on labelled pairs, build the gallery.

        Parameters
        ----------
        X : array of shape (n, 64, 64) or (n, C, 64, 64)
            Raw labelled crops; they form the gallery. The encoder takes C input
            channels, and predictions need crops of C too.
        y : array of shape (n,)
            Labels: 1 signal, 0 noise; at least 2 of each.
        unlabeled : array of shape (m, 64, 64) or (m, C, 64, 64), optional
            Unlabelled candidate crops for self-supervised pre-training (a random 4,000
            are used when there are more).
        encoders : PretrainedEncoders, optional
            The cache of pre-trained encoders to reuse and fill: pre-training on the same
            crops with the same settings then runs once per cache (and once per
            ``pretrain_cache`` folder). Without one, this fit pre-trains unless the folder
            holds the encoder.
        noise : array of shape (n,) or (n, C), optional
            The noise level of each labelled crop's image: an intensity-context head
            (:mod:`~blobsift.classify.context`) is fitted on the gallery's leave-one-out
            scores and kept if it raises their held-out average precision
            (``intensity_context_``); predictions then need the noise of their crops'
            images too.

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
        init_seed, pretrain_seed, view_seed = (int(s) for s in rng.integers(2**31 - 1, size=3))
        windows = self._window(crops)
        with seeded(init_seed):  # the caller's torch state stays as it was
            encoder = self._new_encoder()
            if pool is None:
                calibrate_batch_norm(encoder, windows)
                self.pretrain_state_ = None
            else:
                cache = PretrainedEncoders() if encoders is None else encoders
                encoder.load_state_dict(self._pretrained(pool, pretrain_seed, cache))
                self.pretrain_state_ = transferable_state(encoder)
        with seeded(view_seed):  # dropout draws from the global generator
            loo = self._fit_gallery(encoder, windows, labels, rng, view_seed)
        self._fit_context(crops, labels, levels, loo, rng, self.cv_metrics_)
        return self

    def _fit_gallery(
        self, encoder: CropEncoder, windows: Tensor, labels: np.ndarray, rng: Generator, seed: int
    ) -> np.ndarray:
        """Train the head on labelled pairs, fold by fold then on all; set the gallery.

        Returns the leave-one-out gallery score of each label (see ``cv_metrics_``).
        """
        features = self._view_features(encoder, windows, seed)
        label_tensor = torch.from_numpy(labels)

        def trained(index: np.ndarray) -> CropEncoder:
            model = copy.deepcopy(encoder)
            if self.finetune_steps > 0:
                finetune_head(
                    model, features[index], label_tensor[index], steps=self.finetune_steps,
                    learning_rate=self.learning_rate,
                    generator=torch.Generator().manual_seed(int(rng.integers(2**31 - 1))),
                    callback=self.callback,
                )  # fmt: skip
            return model

        def embed(model: CropEncoder, index: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model.embed_features(features[index, 0]).numpy()

        folds = stratified_folds(labels, self._n_folds(labels), rng)
        oof = np.empty(len(labels))
        for train, val in folds:
            model = trained(train)
            oof[val] = self._score(embed(model, val), embed(model, train), labels[train])
        every = np.arange(len(labels))
        self.encoder_ = trained(every)
        self.graph_ = self._exported_graph()
        self.gallery_embeddings_ = embed(self.encoder_, every)
        self.gallery_labels_ = labels.copy()
        self.oof_proba_ = oof
        point, rule = self._gallery_threshold(labels, oof)
        loo = leave_one_out_scores(
            self.gallery_embeddings_, labels, k=self.k, temperature=self.temperature
        )
        self.threshold_ = point.threshold
        self.classes_ = np.array([0, 1])
        self.cv_metrics_: dict[str, Any] = {
            "f1": point.f1, "precision": point.precision, "recall": point.recall,
            "average_precision": average_precision(labels, oof),
            "loo_average_precision": average_precision(labels, loo),
            "n_labels": len(labels), "n_positive": int(labels.sum()), "n_folds": len(folds),
            "pretrained": self.pretrain_state_ is not None, "threshold_rule": rule,
        }  # fmt: skip
        return loo

    def _pretrained(
        self, pool: np.ndarray, seed: int, cache: PretrainedEncoders
    ) -> dict[str, torch.Tensor]:
        """Encoder weights pre-trained on ``pool``, from ``cache`` (and ``pretrain_cache``)."""
        rng = np.random.default_rng(seed)
        if len(pool) > _MAX_UNLABELED:
            pool = pool[np.sort(rng.choice(len(pool), _MAX_UNLABELED, replace=False))]
        settings = [self._architecture(), self.embedding_dim, self.pretrain_steps, seed]

        def train() -> dict[str, torch.Tensor]:
            encoder = self._new_encoder()
            with seeded(seed):
                pretrain_encoder(
                    encoder, self._window(pool), steps=self.pretrain_steps,
                    generator=torch.Generator().manual_seed(seed), callback=self.callback,
                )  # fmt: skip
            return {k: v.clone() for k, v in encoder.state_dict().items()}

        return cache.fetch(pretraining_key(pool, settings), train, folder=self.pretrain_cache)

    def _view_features(
        self, encoder: CropEncoder, windows: torch.Tensor, seed: int
    ) -> torch.Tensor:
        """Body features of each crop and of augmented views of it: (n, views, F).

        View 0 is the crop itself; the gallery and the queries use it.
        """
        from blobsift.nn.augment import Augmentation

        n_views = _N_VIEWS if self.augment else 1
        generator = torch.Generator().manual_seed(seed)
        augment = Augmentation()
        encoder.eval()
        views = []
        with torch.inference_mode():
            for view in range(n_views):
                crops = windows if view == 0 else augment(windows, generator)
                views.append(encoder.body(network_input(crops)))
        return torch.stack(views, dim=1)

    def _gallery_threshold(self, labels: np.ndarray, oof: np.ndarray) -> tuple[OperatingPoint, str]:
        """0.5, the point where a crop is as close to signal as to noise; or the target's.

        The score compares the same number of neighbours of each class, so 0.5 is its
        natural decision point. A threshold fitted to the out-of-fold scores does not
        carry over: each fold's gallery lacks a fifth of the labels, and scores shift with
        the gallery's size. With a target precision or recall the out-of-fold scores are
        all there is to aim with.
        """
        if self.target_precision is not None or self.target_recall is not None:
            return self._choose_threshold(labels, oof)
        counts = binary_counts(labels, oof >= _DECISION_POINT)
        point = OperatingPoint(_DECISION_POINT, counts.precision, counts.recall, counts.f1)
        return point, "fixed"

    def _n_folds(self, labels: np.ndarray) -> int:
        return feasible_folds(labels, 5 if self.n_folds is None else self.n_folds)

    def add_to_gallery(self, X: Any, y: Any) -> SiameseClassifier:  # noqa: N803
        """Add newly labelled crops to the gallery without retraining the encoder.

        The threshold is kept. Refit when many labels have been added: the
        learning-curve benchmark measures what retraining gains.

        Parameters
        ----------
        X : array of shape (n, 64, 64) or (n, C, 64, 64)
            Raw crops (NaN or inf refused).
        y : array of shape (n,)
            Their 0/1 labels.

        Returns
        -------
        self
        """
        self._check_fitted()
        crops = self._check_crops(X)
        labels = check_labels(y, len(crops), name="y")
        embeddings = self._embed_crops(crops)
        self.gallery_embeddings_ = np.concatenate([self.gallery_embeddings_, embeddings])
        self.gallery_labels_ = np.concatenate([self.gallery_labels_, labels])
        return self

    # -- prediction ---------------------------------------------------------------------
    def _exported_graph(
        self, graph: bytes | None = None, source: str | None = None
    ) -> ExportedGraph:
        return ExportedGraph(
            lambda: self.encoder_, self._architecture()["crop_size"], graph, source=source,
            channels=self.n_channels_,
        )  # fmt: skip

    def _embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Embed raw crops with the final encoder, on onnxruntime unless told otherwise."""
        check_choice(self.backend, _BACKENDS, name="backend")
        runner = self.graph_.runner(self.backend)
        windows = self._window(crops)
        if runner is None:
            return self._embed(self.encoder_, windows)
        parts = [
            runner.run(network_input(windows[start : start + PREDICT_CHUNK]).numpy())
            for start in range(0, len(windows), PREDICT_CHUNK)
        ]
        return np.concatenate(parts) if parts else self._embed(self.encoder_, windows)

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803
        """Return the unit-length embedding of each crop, shape (n, embedding_dim)."""
        self._check_fitted()
        return self._embed_crops(self._check_crops(X))

    def _positive_proba(self, crops: np.ndarray) -> np.ndarray:
        queries = self._embed_crops(crops)
        return self._score(queries, self.gallery_embeddings_, self.gallery_labels_)

    def kneighbors(self, X: Any, k: int = 5) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """The ``k`` most similar labelled crops of each crop: why it was called what it was.

        Parameters
        ----------
        X : array of shape (n, 64, 64) or (n, C, 64, 64)
            Raw crops.
        k : int
            Neighbours to return (at most the gallery size).

        Returns
        -------
        similarities : ndarray of shape (n, k)
            Cosine similarities, most similar first.
        indices : ndarray of shape (n, k)
            Gallery indices: the training crops in the order ``fit`` got them, then added
            ones. ``gallery_labels_[indices]`` are the neighbours' labels.
        """
        queries = self.transform(X)
        return nearest_neighbours(queries @ self.gallery_embeddings_.T, k)

    # -- files --------------------------------------------------------------------------
    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"encoder.{k}": v for k, v in self.encoder_.state_dict().items()}
        tensors["gallery_embeddings"] = torch.from_numpy(self.gallery_embeddings_)
        tensors["gallery_labels"] = torch.from_numpy(self.gallery_labels_.astype(np.int64))
        for name, value in (self.pretrain_state_ or {}).items():
            tensors[f"pretrained.{name}"] = value
        graph = self.graph_.as_tensor()  # the inference graph travels along (protobuf)
        if graph is not None:
            tensors[ONNX_KEY] = graph
        return tensors

    def _file_config(self) -> dict[str, Any]:
        return {
            "architecture": {
                "name": "crop_encoder",
                "config": {**self._architecture(), "embedding_dim": self.embedding_dim},
            },
            "metrics": self.cv_metrics_,
        }

    def _restore(
        self, tensors: dict[str, torch.Tensor], config: dict[str, Any], *, where: str, source: str
    ) -> None:
        from blobsift.nn.models import build_model
        from blobsift.nn.serialize import load_state_exactly

        network = network_config(config, where, "crop_encoder")
        self._restore_channels(network, f"{where}architecture.config.")
        expected = {**self._architecture(), "embedding_dim": self.embedding_dim}
        config_entry(config["architecture"], "config", f"{where}architecture.", one_of(expected))
        encoder = build_model("crop_encoder", network)
        assert isinstance(encoder, CropEncoder), "the name was checked: 'crop_encoder'"
        state = {k[len("encoder.") :]: v for k, v in tensors.items() if k.startswith("encoder.")}
        load_state_exactly(encoder, state, "encoder")
        pretrained = {
            k[len("pretrained.") :]: v for k, v in tensors.items() if k.startswith("pretrained.")
        }
        if pretrained:  # a transferable state: all but the last layer
            fresh = build_model("crop_encoder", network)
            last = set(fresh.state_dict()) - set(transferable_state(fresh))
            load_state_exactly(fresh, pretrained, "pretrained", may_lack=last)
        self.encoder_ = encoder.eval()
        self.gallery_embeddings_, self.gallery_labels_ = checked_gallery(
            tensors, self.embedding_dim
        )
        graph = tensors.get(ONNX_KEY)
        graph_bytes = None if graph is None else graph.numpy().tobytes()
        self.graph_ = self._exported_graph(graph_bytes, source)
        self.pretrain_state_ = pretrained or None
        self.cv_metrics_ = config_entry(config, "metrics", where, MAPPING, default={})
