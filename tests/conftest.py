"""Shared fixtures: seeded randomness, small simulated crop sets, one fitted model."""

from __future__ import annotations

import pytest
import torch

from blobsift.simulate import simulate_crops


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def crops_train():
    """300 labelled crops at 1:10 (27 positives)."""
    return simulate_crops(300, seed=11)


@pytest.fixture(scope="session")
def crops_test():
    """1,100 held-out labelled crops from other simulated images."""
    return simulate_crops(1100, seed=12)
