"""Running images in this process: one after the other, or one per core in threads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blobsift.batch._work import ScoringPlan, predict_one

__all__ = ["run_here"]


def run_here(
    todo: list[str],
    model: Any,
    plan: ScoringPlan,
    cores: int,
    report: Callable[[dict[str, Any], Any], None],
) -> None:
    """Process images in this process: one per core at a time, in threads.

    Reading, filtering and inference release the GIL, so ``cores`` images in flight keep
    every core busy, also through the single-threaded steps of each image (one detector
    thread each unless ``plan.n_threads`` says otherwise; one image alone uses every core). At most
    ``2 x cores`` images are in flight, so memory stays bounded on long lists.
    ``report(record, frame)`` is called, in this thread, as each image finishes.
    """
    if cores <= 1 or len(todo) <= 1:
        for name in todo:
            report(*predict_one(name, model, plan, plan.n_threads or cores))
        return
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pending: set[Any] = set()
    queue = iter(todo)
    with ThreadPoolExecutor(max_workers=cores, thread_name_prefix="blobsift") as pool:
        try:
            while True:
                for name in queue:
                    pending.add(pool.submit(predict_one, name, model, plan, plan.n_threads or 1))
                    if len(pending) >= 2 * cores:
                        break
                if not pending:
                    return
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    report(*future.result())
        finally:
            for future in pending:
                future.cancel()
