"""The commands on models: ``train``, ``predict``, ``report``, ``label`` (the app) and ``demo``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blobsift.cli._bars import _Bars, _run_with_bars
from blobsift.cli._options import _detect_settings
from blobsift.cli._output import _emit, _expand, _open
from blobsift.types import ProgressEvent


def _train(args: argparse.Namespace) -> int:
    from blobsift.report import format_metric, format_threshold

    options: dict[str, Any] = {}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    with _open(args) as project:
        record = _run_with_bars(
            args,
            lambda bars: project.train(
                phase=args.phase,
                target_precision=args.target_precision,
                target_recall=args.target_recall,
                random_state=args.seed,
                pretrain=not args.no_pretrain,
                progress=bars,
                **options,
            ),
        )
        metrics = record.metrics
        document = {
            "model_id": record.id,
            "path": str(record.path),
            "phase": record.phase,
            "phase_reason": record.phase_reason,
            "threshold": record.threshold,
            "threshold_rule": metrics.get("threshold_rule"),
            "n_labels": record.n_labels,
            "n_positive": record.n_positive,
            "label_set_hash": record.label_set_hash,
            "metrics": metrics,
        }
        _emit(
            args,
            document,
            [
                f"model {record.id}: {record.n_labels} labels ({record.n_positive} signal)",
                f"  phase      {record.phase} ({record.phase_reason})",
                f"  F1         {format_metric(metrics, 'f1')}",
                f"  precision  {format_metric(metrics, 'precision')}",
                f"  recall     {format_metric(metrics, 'recall')}",
                f"  threshold  {format_threshold(record)}",
                f"  file       {record.path}.safetensors",
            ],
        )
    return 0


def _predict(args: argparse.Namespace) -> int:
    with _open(args) as project:
        images = _expand(args.images) if args.images else None
        output = args.output
        if output is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            output = project.root / "predictions" / f"predictions-{stamp}.csv"
        frame = _run_with_bars(
            args,
            lambda bars: project.predict(
                images,
                model=args.model,
                progress=bars,
                scheduler=args.scheduler,
                output=output,
                **_detect_settings(args),
            ),
        )
        failed = frame.attrs.get("failed", {})
        warned = frame.attrs.get("warnings", {})
        written = list(frame.attrs.get("files", []))
        if args.overlays and len(frame):
            from blobsift.report import write_overlays

            folder = Path(output).with_name(Path(output).stem + "-overlays")
            written += _run_with_bars(
                args, lambda bars: write_overlays(project, frame, folder, progress=bars)
            )
        n_signal = int(frame["decision"].sum()) if len(frame) else 0
        n_images = frame["image"].nunique() if len(frame) else 0
        _emit(
            args,
            {
                "candidates": len(frame),
                "signal": n_signal,
                "images": n_images,
                "failed": failed,
                "warnings": warned,
                "files": [str(p) for p in written],
            },
            [
                f"{n_signal} of {len(frame)} candidates in {n_images} image(s) predicted signal",
                *[f"  failed {image}: {reason}" for image, reason in failed.items()],
                *[
                    f"  warning {image}: {text}"
                    for image, texts in warned.items()
                    for text in texts
                ],
                *[f"  wrote {p}" for p in written],
            ],
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    from blobsift.report import write_report

    with _open(args) as project:
        index = _run_with_bars(
            args,
            lambda bars: write_report(
                project, args.model, output=args.output, image=args.image, progress=bars
            ),
        )
        pictures = sorted(str(p) for p in index.parent.glob("*.png"))
        _emit(
            args,
            {"report": str(index), "pictures": pictures},
            [f"report: {index}", *[f"  {p}" for p in pictures]],
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from blobsift.demo import DEMO_DOMAINS, run_demos, summary_lines

    domains = list(DEMO_DOMAINS) if args.domain == "both" else [args.domain]
    options: dict[str, Any] = {} if args.epochs is None else {"epochs": args.epochs}
    if args.no_pretrain:
        options["pretrain"] = False
    bars = _Bars(enabled=not args.quiet)

    def progress(event: ProgressEvent) -> None:
        if event.stage == "round":
            bars.close()
            if bars.enabled:
                tqdm.write(
                    f"{event.details['domain']} round {event.done}/{event.total}: "
                    f"{event.details['labels']} labels ({event.details['positives']} signal), "
                    "training ...",
                    file=sys.stderr,
                )
        elif event.stage == "scored":
            bars.close()
            if bars.enabled:
                scored = event.details
                tqdm.write(
                    f"  model {scored['model_id']} ({scored['phase']}, "
                    f"{scored['seconds']:.0f} s): F1 {scored['f1']:.3f} on the new images",
                    file=sys.stderr,
                )
        else:
            bars(event)

    try:
        results = run_demos(
            args.folder,
            domains,
            label_counts=args.labels,
            rounds=3 if args.quick else None,
            new_images=args.new_images,
            seed=args.seed,
            progress=progress,
            **options,
        )
    finally:
        bars.close()
    lines = [line for result in results.values() for line in [*summary_lines(result), ""]]
    _emit(args, {name: asdict(result) for name, result in results.items()}, lines[:-1])
    return 0


def _label(args: argparse.Namespace) -> int:
    from blobsift.app.serve import serve

    options = {} if args.epochs is None else {"train_options": {"epochs": args.epochs}}
    serve(
        args.project,
        announce=lambda line: print(line, flush=True),
        host=args.host,
        port=args.port,
        token=args.token,
        open_browser=not args.no_browser,
        who=args.who,
        debug=args.debug,
        **options,
    )
    return 0
