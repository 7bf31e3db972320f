"""The commands on a project's images, candidates and labels, and its summary.

``init``, ``add-images``, ``detect``, ``import-candidates``, ``import-labels``,
``export-labels``, ``export``, ``info`` and ``relocate``: each parses nothing itself
(:mod:`blobsift.cli._parser` does), calls the library and prints its result.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from blobsift.cli._bars import _run_with_bars
from blobsift.cli._options import _detect_settings
from blobsift.cli._output import _emit, _expand, _open


def _init(args: argparse.Namespace) -> int:
    from blobsift.project import Project

    with Project.create(args.project, detect_channel=args.detect_channel) as project:
        added = []
        if args.images:
            paths = _expand(args.images)
            added = _run_with_bars(args, lambda bars: project.add_images(paths, progress=bars))
        _emit(
            args,
            {
                "project": str(project.root),
                "images": len(added),
                "detect_channel": project.detect_channel,
                "channels": project.n_channels,
            },
            [f"created project {project.root} ({len(added)} image(s){_stacks(project)})"],
        )
    return 0


def _stacks(project: Any) -> str:
    """How a project of stacks reads its images, for a summary line ("" for 2D images)."""
    if project.detect_channel is None:
        return ""
    count = "" if project.n_channels is None else f" of {project.n_channels} channels"
    return f"; stacks{count}, detected on channel {project.detect_channel}"


def _add_images(args: argparse.Namespace) -> int:
    with _open(args) as project:
        before = {r.id for r in project.images()}
        paths = _expand(args.images)
        records = _run_with_bars(args, lambda bars: project.add_images(paths, progress=bars))
        new = [r for r in records if r.id not in before]
        _emit(
            args,
            {"added": [str(r.path) for r in new], "already_present": len(records) - len(new)},
            [f"added {len(new)} image(s); {len(records) - len(new)} already in the project"],
        )
    return 0


def _detect(args: argparse.Namespace) -> int:
    with _open(args) as project:
        images = _expand(args.images) if args.images else None
        if args.detect_channel is not None:
            project.set_detect_channel(args.detect_channel)
        summary = _run_with_bars(
            args,
            lambda bars: project.detect(
                images,
                force=args.force,
                progress=bars,
                n_threads=args.threads,
                **_detect_settings(args),
            ),
        )
        _emit(
            args,
            summary,
            [
                f"detected {summary['candidates']} candidates in {summary['images']} image(s); "
                f"{summary['skipped']} image(s) already detected with these settings"
            ],
        )
    return 0


def _import_candidates(args: argparse.Namespace) -> int:
    from blobsift.io import read_candidates

    columns = {"y": "row", "x": "col"} if args.xy else None
    candidates = read_candidates(args.csv, columns=columns, image=args.image)
    with _open(args) as project:
        summary = _run_with_bars(
            args,
            lambda bars: project.import_candidates(candidates, source=str(args.csv), progress=bars),
        )
        _emit(
            args,
            summary,
            [f"imported {summary['candidates']} candidates for {summary['images']} image(s)"],
        )
    return 0


def _import_labels(args: argparse.Namespace) -> int:
    from blobsift.store import AlreadyImportedWarning

    with _open(args) as project, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        count = _run_with_bars(
            args,
            lambda bars: project.import_labels(
                args.csv, who=args.who, progress=bars, again=args.again
            ),
        )
        counts = project.info()["labels"]
    notes = [str(w.message) for w in caught]
    for note in notes:
        print(f"blobsift: warning: {note}", file=sys.stderr)
    already = any(issubclass(w.category, AlreadyImportedWarning) for w in caught)
    _emit(
        args,
        {"imported": count, "already_imported": already, "warnings": notes, "labels": counts},
        [
            (
                "the file was already imported; nothing applied (see the warning)"
                if already
                else f"imported {count} label(s)"
            )
            + f"; the project now has {counts['signal']} signal, {counts['noise']} noise and "
            f"{counts['unsure']} unsure labels"
        ],
    )
    return 0


def _export_labels(args: argparse.Namespace) -> int:
    with _open(args) as project:
        count = project.export_labels(args.csv, include_unsure=args.include_unsure)
        _emit(
            args,
            {"exported": count, "path": str(args.csv)},
            [f"wrote {count} label(s) to {args.csv}"],
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from blobsift.export import export_project

    output = args.output or args.project / "exports" / f"{args.what}-{args.format}"
    with _open(args) as project:
        written = export_project(
            project, output, format=args.format, what=args.what, image=args.image
        )
    _emit(
        args,
        {"format": args.format, "what": args.what, "files": [str(p) for p in written]},
        [f"wrote {args.what} of {len(written)} image(s) as {args.format}:"]
        + [f"  {p}" for p in written],
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    with _open(args) as project:
        info = project.info(verify=args.verify)
        latest = info.get("latest_model")
        if latest:
            _withhold_estimates(latest, project.model(latest["id"]))
    labels = info["labels"]
    lines = [
        f"project    {info['project']} (schema {info['schema_version']})",
        f"images     {info['images']} ({info['images_missing']} missing, "
        f"{info['images_without_candidates']} without candidates)"
        + (
            f"; stacks of {info['channels']} channels, detected on channel {info['detect_channel']}"
            if info["detect_channel"] is not None
            else ""
        ),
        f"candidates {info['candidates']} current, from {info['detection_runs']} run(s)"
        + (
            f" ({info['unfinished_detection_runs']} unfinished)"
            if info["unfinished_detection_runs"]
            else ""
        )
        + (
            f" ({info['interrupted_detection_runs']} interrupted)"
            if info["interrupted_detection_runs"]
            else ""
        ),
        f"labels     {labels['signal']} signal, {labels['noise']} noise, {labels['unsure']} "
        f"unsure ({info['label_events']} events)",
        f"models     {info['models']}",
    ]
    if latest:
        f1 = latest.get("estimates") or ("-" if latest["f1"] is None else f"{latest['f1']:.3f}")
        lines.append(
            f"latest     model {latest['id']}: {latest['phase']}, {latest['n_labels']} labels, "
            f"F1 {f1}, threshold {latest['threshold']:.3f}"
            + (" (labels changed since: train again)" if latest["labels_changed_since"] else "")
        )
    for problem in info.get("image_problems", []):
        lines.append(f"PROBLEM    {problem['message']}")
    _emit(args, info, lines)
    return 1 if info.get("image_problems") else 0


def _withhold_estimates(summary: dict[str, Any], record: Any) -> None:
    """Withhold a model summary's held-out estimates if too few positives were held out.

    An F1, precision or recall from fewer than
    :data:`~blobsift.metrics.MIN_HELDOUT_POSITIVES` signal labels is no estimate: the
    numbers become None and ``summary["estimates"]`` says why.
    """
    from blobsift.metrics import too_few_positives
    from blobsift.report import TOO_FEW_POSITIVES

    n_positive = record.metrics.get("n_positive", record.n_positive)
    if too_few_positives(n_positive):
        summary.update(f1=None, precision=None, recall=None)
        summary["estimates"] = f"{TOO_FEW_POSITIVES} ({n_positive} signal)"


def _relocate(args: argparse.Namespace) -> int:
    with _open(args) as project:
        record = project.relocate_image(args.image, args.new_path)
        _emit(
            args,
            {"image": record.name, "id": record.id, "path": str(record.path)},
            [f"image {record.id} now at {record.path}"],
        )
    return 0
