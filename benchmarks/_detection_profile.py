"""Where ``detect_blobs`` spends its time, stage by stage (``--profile``).

The stages are the detector's own functions, wrapped here with timers (nothing in the
package knows about them): each stage's time excludes the stages it calls, and what is not
in any stage is "tile body" (conversion, the finite check, sorting, the core and the
duplicate masks) or "rest" (outside the tiles: concatenating and ordering). With 2 threads
the stage times are summed over the threads (CPU time, roughly); the wall time and MP/s of
each thread count come from separate runs without the timers (best of ``repeats``).
OpenCV's own thread pool is set to the same count, so "1 thread" means one core.

The wall times also include the dense fallback of the clearance and same-blob checks
(window maxima of whole images instead of a KD-tree over the points: the code path before
the KD-tree), measured in the same run on the same image.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

import blobsift.detect as detect_module
from blobsift.detect import detect_blobs
from detection import timed

# By their modules' names: ``blobsift.detect._tiles`` is also the name of a function there.
_peaks = importlib.import_module("blobsift.detect._peaks")
_tiles = importlib.import_module("blobsift.detect._tiles")

#: (module, attribute, stage name): the functions timed as stages.
STAGES = (
    (detect_module, "estimate_noise", "noise estimate"),
    (_tiles, "local_background", "local background"),
    (detect_module, "_blur_opencv", "blur"),
    (detect_module, "_blur_scipy", "blur"),
    (detect_module, "_difference_opencv", "difference"),
    (detect_module, "_difference_numpy", "difference"),
    (_tiles, "local_spread", "local spread"),
    (detect_module, "_window_max_opencv", "window max (dense)"),
    (detect_module, "_window_max_scipy", "window max (dense)"),
    (_tiles, "_scale_space_peaks", "peaks"),
    (_tiles, "_describe", "description"),
    (_tiles, "_strongest_nearby", "same-blob check"),
    (detect_module, "_detect_tile", "tile body"),
)


class _Clock:
    """Exclusive time per stage: a stage's time excludes the stages it calls (per thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.lock = threading.Lock()
        self.local = threading.local()

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def stage(*args: Any, **kwargs: Any) -> Any:
            stack = self.local.__dict__.setdefault("stack", [])
            stack.append(0.0)  # time spent in the stages this one calls
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                total = time.perf_counter() - start
                inner = stack.pop()
                if stack:
                    stack[-1] += total
                with self.lock:
                    self.seconds[name] = self.seconds.get(name, 0.0) + total - inner

        return stage


@contextmanager
def _timers(clock: _Clock) -> Iterator[None]:
    saved = [(module, name, getattr(module, name)) for module, name, _ in STAGES]
    try:
        for module, name, stage in STAGES:
            setattr(module, name, clock.wrap(stage, getattr(module, name)))
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


@contextmanager
def _opencv_threads(threads: int) -> Iterator[None]:
    try:
        import cv2
    except ImportError:
        yield
        return
    before = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


@contextmanager
def _dense_peak_checks() -> Iterator[None]:
    """Force the dense fallback of the clearance and same-blob checks."""
    before = _peaks.SPARSE_SHARE
    _peaks.SPARSE_SHARE = -1.0
    try:
        yield
    finally:
        _peaks.SPARSE_SHARE = before


def run_profile(image: np.ndarray, repeats: int) -> None:
    megapixels = image.size / 1e6
    columns: dict[str, dict[str, float]] = {}
    walls: dict[str, tuple[float, int]] = {}
    variants = [
        (f"{t} thread{'s' * (t > 1)}{', dense checks' * dense}", t, dense)
        for dense in (False, True)
        for t in (1, 2)
    ]
    for label, threads, use_dense in variants:
        with _opencv_threads(threads), _dense_peak_checks() if use_dense else _no_change():

            def run(threads: int = threads) -> Any:
                return detect_blobs(image, n_threads=threads)

            run()  # warm-up
            seconds, found = timed(run, repeats)
            walls[label] = (seconds, len(found))
            if use_dense:
                continue
            clock = _Clock()
            with _timers(clock):
                start = time.perf_counter()
                run()
                profiled = time.perf_counter() - start
            staged = dict(clock.seconds)
            if threads == 1:  # with more, the stages overlap in time
                staged["rest"] = profiled - sum(staged.values())
            columns[label] = staged
    order = [*dict.fromkeys(stage for _, _, stage in STAGES), "rest"]
    table = pd.DataFrame(
        {f"ms, {label}": [1e3 * columns[label].get(s, 0.0) for s in order] for label in columns},
        index=order,
    )
    table = table[(table > 0).any(axis=1)]
    first = table.columns[0]
    table.insert(1, "share, 1 thread", table[first] / table[first].sum())
    print(
        f"\ndetect_blobs stages on a {image.shape[0]}x{image.shape[1]} {image.dtype} image "
        f"(default settings; one profiled run each; ms, exclusive of the stages called; "
        f"2-thread times summed over threads):\n"
    )
    print(table.to_string(float_format=lambda v: f"{v:.1f}" if v >= 1 else f"{v:.3f}"))
    print(f"\nWall time without timers (best of {repeats}):\n")
    summary = pd.DataFrame(
        [
            {"run": label, "ms": 1e3 * s, "MP/s": megapixels / s, "candidates": n}
            for label, (s, n) in walls.items()
        ]
    )
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


@contextmanager
def _no_change() -> Iterator[None]:
    yield
