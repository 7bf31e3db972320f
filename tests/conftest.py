"""Shared fixtures: seeded randomness, small simulated crop sets, one fitted model.

Also the one line at the end of a run that says the browser tests were skipped (outside
CI, where chromium or Playwright is missing) and how to install what they need.
"""

from __future__ import annotations

# isort: off
# blobsift before torch: importing it makes torch's idle OpenMP threads sleep
# (OMP_WAIT_POLICY=PASSIVE), which only works before torch loads. The tests start other
# processes (Dask workers, the CLI, the web server) that share the cores with this one.
import blobsift  # noqa: F401
import torch

# isort: on
import pytest

from blobsift.simulate import simulate_crops

#: Test module whose skips the end-of-run note counts.
BROWSER_TESTS = "test_web_browser.py::"


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


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say in one line that the browser tests were skipped, why, and how to run them."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if BROWSER_TESTS in report.nodeid
    ]
    if not skipped:
        return
    longrepr = skipped[0].longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    terminalreporter.write_line(
        f"NOTE: {len(skipped)} browser test(s) skipped: {reason}. "
        "Install chromium with `apt-get install chromium` to run them.",
        yellow=True,
        bold=True,
    )
