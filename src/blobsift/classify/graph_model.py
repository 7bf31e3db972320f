"""Predicting from a model file's exported graph alone: onnxruntime and numpy, no torch.

A saved model carries, beside its weights, the ONNX graph it predicts with (see
:mod:`blobsift.nn.serialize`). :func:`load_predictor` reads the file as numpy arrays and
returns a :class:`GraphModel` that scores crops with that graph, so a process that only
predicts (a batch run, a Dask worker) never imports torch: it starts faster and holds
about half the memory. Probabilities, threshold, channels and intensity context are the
full classifier's (:class:`~blobsift.classify.base.CropScorer` is their one
implementation); a Phase 1 model scores its embeddings against the stored gallery as
:class:`~blobsift.classify.siamese.SiameseClassifier` does.

The graph is trusted on its sha256, recorded in the file (format 2) beside the weights'.
The full classifier goes further and runs a stored graph only once it has computed what
the weights compute (:class:`~blobsift.nn.onnx.ExportedGraph`); that check needs torch,
and guards against a graph replaced *and* its checksum rewritten. A file without a graph
(format 1, or one whose export failed) is loaded in full instead.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from blobsift._validation import MAPPING, integer, one_of, real
from blobsift.classify.base import (
    PREDICT_CHUNK,
    CropClassifier,
    CropScorer,
    config_entry,
    context_from_config,
    network_config,
)
from blobsift.classify.gallery import checked_gallery, gallery_scores
from blobsift.crops import centre_window, normalise_crops
from blobsift.exceptions import ModelFileError

__all__ = ["GraphModel", "load_predictor"]

_NETWORKS = {"cnn": "signal_classifier", "siamese": "crop_encoder"}
_KINDS = ("sifter", *_NETWORKS)


class GraphModel(CropScorer):
    """A saved model that scores crops with its exported graph on onnxruntime.

    Made by :func:`load_predictor`; it predicts (``predict_proba``,
    ``decision_function``, ``predict``) as the model it was saved from does, and does
    nothing else (no fitting, no saving, no neighbours).

    Parameters
    ----------
    graph : bytes
        The ONNX graph: normalised (B, C, S, S) windows in; the signal probability (B, 1)
        of a Phase 2 model, or the unit-length embedding (B, D) of a Phase 1 one.
    crop_size : int
        S: the central window of each crop the graph is fed.
    threshold : float
        The decision threshold on the signal probability.
    channels : int
        C, the channels of each crop.
    context : ContextHead, optional
        The intensity-context head (then predictions need ``noise=``).
    gallery : (embeddings, labels, k, temperature), optional
        For a Phase 1 graph: the labelled gallery its embeddings are compared with
        (:func:`~blobsift.classify.gallery.gallery_scores`).
    threads : int, optional
        onnxruntime intra-op threads; the cores available when None.
    source : str
        The file the graph came from, named in errors.

    Attributes
    ----------
    kind_ : str
        The phase the graph predicts for: "cnn" or "siamese".
    """

    def __init__(
        self,
        graph: bytes,
        crop_size: int,
        threshold: float,
        *,
        channels: int = 1,
        context: Any = None,
        gallery: tuple[np.ndarray, np.ndarray, int, float] | None = None,
        threads: int | None = None,
        source: str = "the model file",
    ) -> None:
        self._graph = graph
        self._source = source
        self.crop_size_ = crop_size
        self.threshold_ = threshold
        self.classes_ = np.array([0, 1])
        self.n_channels_ = channels
        self.context_ = context
        self._gallery = gallery
        self.kind_ = "cnn" if gallery is None else "siamese"
        self._runner = self._session(threads)

    def _session(self, threads: int | None) -> Any:
        from blobsift.nn.runtime import OnnxRunner

        try:
            return OnnxRunner(self._graph, threads=threads)
        except Exception as error:  # onnxruntime raises its own types for a bad graph
            raise ModelFileError(
                f"the ONNX graph stored in {self._source} cannot be run: {error}. Restore "
                "the model files as saved, or retrain the model."
            ) from None

    def limit_threads(self, threads: int) -> None:
        """Run inference on at most ``threads`` onnxruntime intra-op threads."""
        self._runner = self._session(threads)

    def _positive_proba(self, crops: np.ndarray) -> np.ndarray:
        windows = centre_window(crops, self.crop_size_)
        out = np.empty(len(crops), dtype=np.float64)
        for start in range(0, len(crops), PREDICT_CHUNK):
            chunk = np.ascontiguousarray(windows[start : start + PREDICT_CHUNK])
            out[start : start + len(chunk)] = self._network_scores(normalise_crops(chunk))
        return out

    def _network_scores(self, normalised: np.ndarray) -> np.ndarray:
        """Scores (B,) of normalised windows, before any intensity-context head.

        The graph's output; for a Siamese model, its embeddings compared with the gallery.
        """
        output = self._runner.run(normalised)
        if self._gallery is None:
            scores: np.ndarray = output.reshape(-1)
            return scores
        embeddings, labels, k, temperature = self._gallery
        return gallery_scores(output @ embeddings.T, labels, k=k, temperature=temperature)


def load_predictor(path: str | os.PathLike[str], *, threads: int | None = None) -> CropScorer:
    """Load a saved model for prediction only: from its exported graph, without torch.

    Parameters
    ----------
    path : path-like
        A model saved by :meth:`Sifter.save <blobsift.classify.base.CropClassifier.save>`
        (or a saved ``CNNClassifier`` / ``SiameseClassifier``): either file or their stem.
    threads : int, optional
        Inference threads (:meth:`~blobsift.classify.base.CropScorer.limit_threads`).

    Returns
    -------
    CropScorer
        A :class:`GraphModel` when the file carries its prediction graph; otherwise (a
        format-1 file, or one saved without a graph) the full classifier, loaded with
        torch. Either predicts the same probabilities.

    Raises
    ------
    ModelFileError
        If the file is missing, damaged, does not match its checksums (a graph whose
        bytes were changed), or holds a value ``fit`` could not have produced.
    """
    from blobsift.nn.runtime import ONNX_KEY
    from blobsift.nn.serialize import load_model_file, model_paths

    tensors, config = load_model_file(path, arrays=True)
    weights_path, config_path = model_paths(path)
    kind = config.get("kind")
    if kind not in _KINDS:
        raise ModelFileError(
            f"{config_path} holds a {kind!r} model, not one of {list(_KINDS)}: it cannot "
            "predict crops."
        )
    if ONNX_KEY not in tensors:
        return _full_load(kind, path, threads)
    try:
        return _graph_model(tensors, config, kind, threads, str(weights_path))
    except ModelFileError:
        raise  # it names the file and the fix already
    except (TypeError, ValueError) as error:
        raise ModelFileError(
            f"{config_path} is not a usable model file: {error} Restore the model files as "
            "saved, or retrain the model."
        ) from None


def _graph_model(
    tensors: dict[str, np.ndarray],
    config: dict[str, Any],
    kind: str,
    threads: int | None,
    source: str,
) -> GraphModel:
    """The :class:`GraphModel` of a model file's arrays and description (checked)."""
    from blobsift.nn.runtime import ONNX_KEY

    threshold = config_entry(config, "threshold", "", real(0, 1))
    inner, where = config, ""
    if kind == "sifter":  # the estimator predicts; its arrays are the unprefixed ones
        where = "estimator."
        inner = {**config_entry(config, "estimator", "", MAPPING)}
        inner.setdefault("threshold", threshold)
        if config_entry(inner, "threshold", where, real(0, 1)) != threshold:
            raise ModelFileError(
                f"threshold ({threshold}) differs from estimator.threshold "
                f"({inner['threshold']}), which decides."
            )
    phase = config_entry(inner, "kind", where, one_of(*_NETWORKS))
    network = network_config(inner, where, _NETWORKS[phase])
    at = f"{where}architecture.config."
    crop_size = config_entry(network, "crop_size", at, integer(1))
    channels = config_entry(network, "in_channels", at, integer(1), default=1)
    gallery = None
    if phase == "siamese":
        params = config_entry(inner, "params", where, MAPPING)
        dim = config_entry(network, "embedding_dim", at, integer(1))
        k = config_entry(params, "k", f"{where}params.", integer(1))
        temperature = config_entry(params, "temperature", f"{where}params.", real(0, low_open=True))
        embeddings, labels = checked_gallery(tensors, dim)
        gallery = (embeddings, labels, int(k), float(temperature))
    return GraphModel(
        np.asarray(tensors[ONNX_KEY]).tobytes(),
        int(crop_size),
        float(inner["threshold"]),
        channels=int(channels),
        context=context_from_config(inner, where, int(channels)),
        gallery=gallery,
        threads=threads,
        source=source,
    )


def _full_load(kind: str, path: str | os.PathLike[str], threads: int | None) -> CropScorer:
    """The full classifier of a file without a graph (torch is imported)."""
    from blobsift.classify.cnn import CNNClassifier
    from blobsift.classify.siamese import SiameseClassifier
    from blobsift.classify.sifter import Sifter

    classes: dict[str, type[CropClassifier]] = {
        "sifter": Sifter,
        "cnn": CNNClassifier,
        "siamese": SiameseClassifier,
    }
    model = classes[kind].load(path)
    if threads is not None:
        model.limit_threads(threads)
    return model
