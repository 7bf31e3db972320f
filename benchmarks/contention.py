"""Two blobsift fits at once on the same cores: do they share them or starve each other?

Each fit is a real ``CNNClassifier.fit`` (2 folds, a few epochs, on simulated crops) in its
own process with 2 torch threads. Three ways, in one run:

* alone            one fit, the machine otherwise idle (the reference);
* two, sleeping    two fits at once with blobsift's default (``OMP_WAIT_POLICY=PASSIVE``,
                   set by ``import blobsift``): idle OpenMP threads sleep;
* two, spinning    the baseline: two fits at once with OpenMP's spinning idle threads
                   (``OMP_WAIT_POLICY=ACTIVE``, how blobsift ran before).

Two fits that share 2 cores fairly take about twice as long as one alone (ratio ~2).

Run: .venv/bin/python benchmarks/contention.py [--labels 300] [--epochs 6]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

_FIT = """
import sys, time
import blobsift, torch
from blobsift import CNNClassifier
from blobsift.simulate import simulate_crops
torch.set_num_threads(2)
data = simulate_crops({labels}, seed=0)
start = time.perf_counter()
CNNClassifier(n_folds=2, epochs={epochs}, patience={epochs}, random_state=0).fit(
    data.crops, data.labels
)
print(time.perf_counter() - start)
"""


def _fits(count: int, policy: str | None, script: str) -> list[float]:
    """Seconds of each of ``count`` fits started together under the OpenMP wait policy."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    children = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    seconds = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"a fit failed (exit {child.returncode})")
        seconds.append(float(out.strip().splitlines()[-1]))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    script = _FIT.format(labels=args.labels, epochs=args.epochs)
    started = time.perf_counter()
    alone = _fits(1, None, script)[0]
    rows = [("alone", [alone]), ("two, sleeping (default)", _fits(2, None, script)),
            ("two, spinning (baseline)", _fits(2, "ACTIVE", script))]  # fmt: skip
    print(f"{args.labels} labels, {args.epochs} epochs, 2 folds, 2 torch threads per fit")
    print(f"{'way':<26}{'fit seconds':>20}{'vs alone':>10}")
    for name, seconds in rows:
        shown = " / ".join(f"{s:.1f}" for s in seconds)
        print(f"{name:<26}{shown:>20}{max(seconds) / alone:>9.1f}x")
    print(f"(benchmark wall {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
