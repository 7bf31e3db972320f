"""Progress bars: the command line's :data:`~blobsift.types.Progress` consumer."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from blobsift.types import Progress, ProgressEvent

_T = TypeVar("_T")

#: The unit a bar counts, by stage (default: images).
_UNITS = {"epoch": "epoch", "label": "label", "report": "figure", "pretrain": "step",
          "finetune": "step"}  # fmt: skip
#: A bar's description, by stage (default: the stage's name).
_DESCRIPTIONS = {"epoch": "training Phase 2", "pretrain": "pre-training Phase 1",
                 "finetune": "training Phase 1"}  # fmt: skip


class _Bars:
    """Turn the library's :class:`~blobsift.types.ProgressEvent` s into tqdm bars on stderr.

    One bar per stage, counting ``event.done`` of ``event.total``; a Phase 2 epoch shows
    its ``val_f1`` and a Dask run announces its dashboard link.

    Parameters
    ----------
    enabled : bool
        False (``--quiet``) draws nothing.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        dashboard = event.details.get("dashboard")
        if dashboard:
            tqdm.write(f"Dask dashboard: {dashboard}", file=sys.stderr)
        bar = self.bars.get(event.stage)
        if bar is None:
            bar = self.bars[event.stage] = tqdm(
                total=event.total,
                desc=_DESCRIPTIONS.get(event.stage, event.stage),
                unit=_UNITS.get(event.stage, "image"),
                file=sys.stderr,
                leave=False,
            )
        if event.total is not None and bar.total != event.total:
            bar.total = event.total
        val_f1 = event.details.get("val_f1")
        if val_f1 is not None:
            bar.set_postfix(val_f1=f"{val_f1:.3f}")
        bar.update(event.done - bar.n)

    def close(self) -> None:
        """Close every bar (a later event of a stage starts a new one)."""
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def _run_with_bars(args: argparse.Namespace, call: Callable[[Progress], _T]) -> _T:
    """``call(bars)`` with progress bars (none under ``--quiet``), closed afterwards."""
    bars = _Bars(enabled=not args.quiet)
    try:
        return call(bars)
    finally:
        bars.close()
