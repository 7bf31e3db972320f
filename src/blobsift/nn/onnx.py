"""Fast inference: export a network to ONNX, and check a stored graph against its weights.

Running a graph needs no torch: :class:`~blobsift.nn.runtime.OnnxRunner` and
:data:`~blobsift.nn.runtime.ONNX_KEY` live in :mod:`blobsift.nn.runtime` (re-exported
here).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from blobsift.exceptions import ModelFileError
from blobsift.nn.runtime import ONNX_KEY, OnnxRunner

__all__ = ["ONNX_KEY", "ExportedGraph", "OnnxRunner", "export_onnx"]

_PROBE_CROPS = 8  # normalised random crops on which a stored graph must match its weights
_PROBE_TOLERANCE = 1e-4  # onnxruntime and torch agree to about 1e-6 on the same weights


def export_onnx(model: nn.Module, crop_size: int, channels: int = 1) -> bytes:
    """Serialise ``model`` (normalised crops (B, C, S, S) -> (B, K) output) to ONNX bytes.

    ``channels`` is C, the channels of each crop.

    The batch axis is dynamic. The model is exported in eval mode; its training mode is
    restored afterwards.
    """
    was_training = model.training
    model.eval()
    example = torch.zeros(2, channels, crop_size, crop_size)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # TorchScript-based export is what runs without onnxscript; torch marks it
            # deprecated in favour of the dynamo exporter.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            torch.onnx.export(
                model,
                (example,),
                buffer,  # type: ignore[arg-type]  # legacy exporter writes file-likes; stub says path
                input_names=["crops"],
                output_names=["output"],
                dynamic_axes={"crops": {0: "batch"}, "output": {0: "batch"}},
                dynamo=False,
            )
    finally:
        model.train(was_training)
    return buffer.getvalue()


class ExportedGraph:
    """A model's ONNX graph, exported on first use, and its onnxruntime session.

    Model files carry the graph as a uint8 tensor (:meth:`as_tensor`), so loading a model
    neither re-exports it nor unpickles anything. A graph given from a file is run only
    once it has been shown to compute what the torch module (the file's weights) computes,
    on a few random crops: predictions never come from a graph the weights disagree with.

    Parameters
    ----------
    build : callable
        Returns the torch module to export ((B, C, S, S) normalised crops in).
    crop_size : int
        S.
    channels : int
        C, the channels of each crop.
    graph : bytes, optional
        An already exported graph (from a model file).
    source : str, optional
        Where ``graph`` came from, named in errors.
    """

    def __init__(
        self,
        build: Callable[[], nn.Module],
        crop_size: int,
        graph: bytes | None = None,
        *,
        source: str | None = None,
        channels: int = 1,
    ) -> None:
        self._build = build
        self._crop_size = crop_size
        self._channels = channels
        self._graph = graph
        self._unchecked = graph is not None
        self._source = source
        self._runner: OnnxRunner | None = None
        self._threads: int | None = None

    def graph(self) -> bytes:
        """The ONNX bytes (exported now if not yet)."""
        if self._graph is None:
            self._graph = export_onnx(self._build(), self._crop_size, self._channels)
        return self._graph

    def runner(self, backend: str) -> OnnxRunner | None:
        """The onnxruntime session for ``backend``, or None for torch.

        "onnx": export or session failures raise; "auto": they give None (torch);
        "torch": None.

        Raises
        ------
        ModelFileError
            If a graph from a model file disagrees with the module built from its weights.
        """
        if backend == "torch":
            return None
        if self._runner is None:
            try:
                runner = OnnxRunner(self.graph(), threads=self._threads)
            except Exception:
                if backend == "onnx":
                    raise
                return None
            if self._unchecked:
                self._check_against_weights(runner)
            self._runner = runner
        return self._runner

    def _check_against_weights(self, runner: OnnxRunner) -> None:
        generator = torch.Generator().manual_seed(0)
        shape = (_PROBE_CROPS, self._channels, self._crop_size, self._crop_size)
        probe = torch.randn(shape, generator=generator)
        model = self._build()
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                expected = model(probe).numpy()
        finally:
            model.train(was_training)
        found = runner.run(probe.numpy())
        difference = (
            float(np.max(np.abs(found - expected))) if found.shape == expected.shape else np.inf
        )
        if not difference <= _PROBE_TOLERANCE:
            raise ModelFileError(
                f"the ONNX graph stored in {self._source or 'the model file'} does not compute "
                f"what its weights compute (outputs differ by up to {difference:.3g}): the "
                "graph was replaced. Restore the model files as saved, or retrain the model."
            )
        self._unchecked = False

    def limit_threads(self, threads: int) -> None:
        """Run later sessions on ``threads`` cores (by default the cores available)."""
        self._threads = threads
        self._runner = None

    def as_tensor(self) -> torch.Tensor | None:
        """The graph as a uint8 tensor for a model file, or None if it cannot be exported."""
        try:
            graph = self.graph()
        except Exception:
            return None
        return torch.frombuffer(bytearray(graph), dtype=torch.uint8)
