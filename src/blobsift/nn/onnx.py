"""Fast inference: export a network to ONNX and run it with onnxruntime."""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

__all__ = ["OnnxRunner", "export_onnx"]


def export_onnx(model: nn.Module, crop_size: int) -> bytes:
    """Serialise ``model`` (normalised crops (B, 1, S, S) -> (B, 1) output) to ONNX bytes.

    The batch axis is dynamic. The model is exported in eval mode; its training mode is
    restored afterwards.
    """
    was_training = model.training
    model.eval()
    example = torch.zeros(2, 1, crop_size, crop_size)
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
                buffer,
                input_names=["crops"],
                output_names=["output"],
                dynamic_axes={"crops": {0: "batch"}, "output": {0: "batch"}},
                dynamo=False,
            )
    finally:
        model.train(was_training)
    return buffer.getvalue()


class OnnxRunner:
    """An onnxruntime session over an exported model, run in batches.

    Parameters
    ----------
    model_bytes : bytes
        An ONNX model from :func:`export_onnx`.
    threads : int, optional
        Intra-op threads; onnxruntime's default (all physical cores) when None.
    """

    def __init__(self, model_bytes: bytes, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def run(self, crops: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Return the model output for normalised crops (N, 1, S, S) as a (N,) array."""
        outputs = [
            self._session.run(None, {self._input: crops[start : start + batch_size]})[0]
            for start in range(0, len(crops), batch_size)
        ]
        return np.concatenate(outputs).reshape(-1) if outputs else np.empty(0, np.float32)
