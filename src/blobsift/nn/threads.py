"""How many cores torch and onnxruntime use, so that blobsift processes share a machine.

* :func:`available_cores`: the cores this process may run on (its CPU affinity, which a
  container or ``taskset`` narrows), not the machine's;
* :func:`torch_threads`: a block that trains or predicts with torch on at most that many
  threads (never more than the caller allowed with ``torch.set_num_threads``), and gives
  the caller's setting back after;
* :func:`onnx_session_options`: onnxruntime options with an explicit intra-op thread
  count, one inter-op thread and no spin-waiting: idle worker threads sleep instead of
  keeping a core busy, so a second process on the same cores is not starved.

torch's own idle threads (OpenMP) sleep too: ``import blobsift`` sets
``OMP_WAIT_POLICY=PASSIVE`` unless the environment already chooses, before torch loads.

Only :func:`torch_threads` imports torch (when called), so a process that runs exported
graphs alone (:mod:`blobsift.nn.runtime`) never loads it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["available_cores", "onnx_session_options", "torch_threads"]


def available_cores() -> int:
    """The number of cores this process may run on (at least 1).

    Its CPU affinity where the platform has one (Linux), else the machine's core count.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def torch_threads(threads: int | None = None) -> Iterator[int]:
    """Run the block on at most ``threads`` torch intra-op threads; yield the count used.

    Parameters
    ----------
    threads : int, optional
        The most threads wanted; by default :func:`available_cores`. The count used is
        also never more than the caller's ``torch.get_num_threads()`` (e.g. set by
        :meth:`~blobsift.classify.base.CropClassifier.limit_threads`) nor than the cores
        available. The caller's setting is restored afterwards.
    """
    import torch

    before = torch.get_num_threads()
    wanted = available_cores() if threads is None else max(1, int(threads))
    used = max(1, min(wanted, before, available_cores()))
    if used != before:
        torch.set_num_threads(used)
    try:
        yield used
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def onnx_session_options(threads: int | None = None) -> Any:
    """Session options for onnxruntime: explicit threads, and none left spinning.

    Parameters
    ----------
    threads : int, optional
        Intra-op threads; by default :func:`available_cores`.

    Returns
    -------
    onnxruntime.SessionOptions
        ``threads`` intra-op threads, 1 inter-op thread, sequential execution, every graph
        optimisation (``ORT_ENABLE_ALL``: the fastest level measured on these networks),
        and no spinning: onnxruntime's worker threads otherwise spin for a while after
        every run, which keeps the cores busy between the calls of a process that
        alternates inference with other work (and spinning was slower here too).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = available_cores() if threads is None else max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options
