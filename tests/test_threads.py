"""Thread counts of torch and onnxruntime: explicit, capped by the process's cores."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch

from blobsift.nn.onnx import OnnxRunner, export_onnx
from blobsift.nn.threads import available_cores, onnx_session_options, torch_threads

_WAIT_POLICY = "import os, blobsift, torch; torch.ones(1); print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize(("chosen", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_torch_idle_threads_sleep_unless_the_user_chose(chosen, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if chosen is not None:
        env["OMP_WAIT_POLICY"] = chosen
    ran = subprocess.run(
        [sys.executable, "-c", _WAIT_POLICY], env=env, capture_output=True, text=True, check=True
    )
    assert ran.stdout.strip() == expected


def test_available_cores_follow_the_affinity():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    assert available_cores() == len(os.sched_getaffinity(0))


def test_torch_threads_never_exceed_the_callers_limit_and_are_restored():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch_threads() as used:  # the caller's 1 thread is the limit
            assert used == torch.get_num_threads() == 1
        torch.set_num_threads(max(2, available_cores()))
        with torch_threads(1) as used:
            assert used == torch.get_num_threads() == 1
        assert torch.get_num_threads() == max(2, available_cores())
        with torch_threads(10_000) as used:  # never more than the cores available
            assert used == min(torch.get_num_threads(), available_cores())
    finally:
        torch.set_num_threads(before)


def test_onnx_sessions_have_explicit_threads_and_do_not_spin():
    options = onnx_session_options(3)
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert onnx_session_options().intra_op_num_threads == available_cores()


def test_a_runner_with_these_options_computes_the_model():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1)).eval()
    runner = OnnxRunner(export_onnx(model, 4), threads=1)
    x = np.random.default_rng(0).normal(size=(5, 1, 4, 4)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.allclose(runner.run(x), expected, atol=1e-5)
