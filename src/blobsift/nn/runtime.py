"""Running exported networks without torch: numpy in, onnxruntime, numpy out.

What a process that only predicts needs from :mod:`blobsift.nn`: :class:`OnnxRunner` (an
onnxruntime session run in batches) and :data:`ONNX_KEY`, the name under which model
files carry each network's ONNX graph. Neither this module nor what it imports loads
torch; exporting a graph (:func:`blobsift.nn.onnx.export_onnx`) does.
"""

from __future__ import annotations

import numpy as np

from blobsift.nn.threads import onnx_session_options

__all__ = ["ONNX_KEY", "OnnxRunner"]

#: The name of the ONNX graph's tensor in model files.
ONNX_KEY = "onnx_graph"


class OnnxRunner:
    """An onnxruntime session over an exported model, run in batches.

    Parameters
    ----------
    model_bytes : bytes
        An ONNX model (from :func:`~blobsift.nn.onnx.export_onnx`).
    threads : int, optional
        Intra-op threads; the cores available to the process when None. Either way one
        inter-op thread and no spin-waiting (see
        :func:`~blobsift.nn.threads.onnx_session_options`).
    """

    def __init__(self, model_bytes: bytes, threads: int | None = None) -> None:
        import onnxruntime

        self._session = onnxruntime.InferenceSession(
            model_bytes,
            sess_options=onnx_session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        self._input = self._session.get_inputs()[0].name

    def run(self, crops: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Return the model output for normalised crops (N, C, S, S): shape (N, outputs).

        Batches of 256 are as fast per crop as larger ones on CPU, and keep the
        intermediate activations small.
        """
        outputs = [
            self._session.run(None, {self._input: crops[start : start + batch_size]})[0]
            for start in range(0, len(crops), batch_size)
        ]
        return np.concatenate(outputs) if outputs else np.empty((0, 1), np.float32)
