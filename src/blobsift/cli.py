"""The ``blobsift`` command line: a thin shell over the library.

Every command parses its arguments, calls the API, shows progress and prints results
(``--json`` prints one JSON document instead). Errors from blobsift become one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import glob
import json
import sqlite3
import sys
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blobsift import __version__
from blobsift.classify.phases import PHASES
from blobsift.exceptions import BlobsiftError, InvalidInputError

__all__ = ["build_parser", "main"]


# --------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------
class _Bars:
    """Turn ``progress(stage, info)`` calls of the library into tqdm bars on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, info: dict[str, Any]) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if info.get("dashboard"):
            tqdm.write(f"Dask dashboard: {info['dashboard']}", file=sys.stderr)

        total = info.get("total", info.get("total_epochs"))
        done = info.get("done", info.get("epoch"))
        bar = self.bars.get(stage)
        if bar is None:
            unit = {"epoch": "epoch", "label": "label", "report": "figure", "pretrain": "step",
                    "finetune": "step"}.get(stage, "image")  # fmt: skip
            desc = {"epoch": "training Phase 2", "pretrain": "pre-training Phase 1",
                    "finetune": "training Phase 1"}.get(stage, stage)  # fmt: skip
            bar = self.bars[stage] = tqdm(
                total=total, desc=desc, unit=unit, file=sys.stderr, leave=False
            )
        if total is not None and bar.total != total:
            bar.total = total
        if "val_f1" in info:
            bar.set_postfix(val_f1=f"{info['val_f1']:.3f}")
        if done is not None:
            bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def _run_with_bars(args: argparse.Namespace, call: Any) -> Any:
    bars = _Bars(enabled=not args.quiet)
    try:
        return call(bars)
    finally:
        bars.close()


def _emit(args: argparse.Namespace, document: dict[str, Any], lines: Sequence[str]) -> None:
    """Print ``document`` as JSON (``--json``) or ``lines`` as text."""
    if args.json:
        print(json.dumps(document, indent=2, sort_keys=True, default=str))
    else:
        for line in lines:
            print(line)


def _expand(patterns: Sequence[str]) -> list[Path]:
    """Existing paths as they are; anything else is a glob pattern (``**`` recursive).

    A file named ``img[1].tif`` is that file, never ``img1.tif``; each pattern must match.
    """
    paths: list[Path] = []
    for pattern in patterns:
        if Path(pattern).exists():
            matches = [pattern]
        else:
            matches = sorted(glob.glob(pattern, recursive=True))
        if not matches:
            raise InvalidInputError(f"no file matches {pattern!r}.")
        paths.extend(Path(m) for m in matches)
    return list(dict.fromkeys(paths))


def _open(args: argparse.Namespace) -> Any:
    from blobsift.store import Project

    return Project(args.project)


def _detect_settings(args: argparse.Namespace) -> dict[str, Any]:
    names = ("sigma_min", "sigma_max", "threshold", "min_distance", "border", "max_candidates")
    prefix = "detect_" if hasattr(args, "detect_threshold") else ""
    settings = {}
    for name in names:
        value = getattr(args, prefix + name, None)
        if value is not None:
            settings[name] = value
    return settings


# --------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------
def _init(args: argparse.Namespace) -> int:
    from blobsift.store import Project

    with Project.create(args.project) as project:
        added = []
        if args.images:
            paths = _expand(args.images)
            added = _run_with_bars(args, lambda bars: project.add_images(paths, progress=bars))
        _emit(
            args,
            {"project": str(project.root), "images": len(added)},
            [f"created project {project.root} ({len(added)} image(s))"],
        )
    return 0


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
    from blobsift.types import read_candidates

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


def _train(args: argparse.Namespace) -> int:
    from blobsift.project_report import format_metric, format_threshold

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
            from blobsift.project_report import write_overlays

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
    from blobsift.project_report import write_report

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


def _info(args: argparse.Namespace) -> int:
    with _open(args) as project:
        info = project.info(verify=args.verify)
    labels = info["labels"]
    lines = [
        f"project    {info['project']} (schema {info['schema_version']})",
        f"images     {info['images']} ({info['images_missing']} missing, "
        f"{info['images_without_candidates']} without candidates)",
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
    latest = info.get("latest_model")
    if latest:
        f1 = "-" if latest["f1"] is None else f"{latest['f1']:.3f}"
        lines.append(
            f"latest     model {latest['id']}: {latest['phase']}, {latest['n_labels']} labels, "
            f"F1 {f1}, threshold {latest['threshold']:.3f}"
            + (" (labels changed since: train again)" if latest["labels_changed_since"] else "")
        )
    for problem in info.get("image_problems", []):
        lines.append(f"PROBLEM    {problem['message']}")
    _emit(args, info, lines)
    return 1 if info.get("image_problems") else 0


def _relocate(args: argparse.Namespace) -> int:
    with _open(args) as project:
        record = project.relocate_image(args.image, args.new_path)
        _emit(
            args,
            {"image": record.name, "id": record.id, "path": str(record.path)},
            [f"image {record.id} now at {record.path}"],
        )
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1]; got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1]; got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1; got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a port number 0-65535 (0: a free one); got {text!r}"
        ) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port number 0-65535 (0: a free one); got {text!r}"
        )
    return value


def _demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from blobsift.demo import LABEL_COUNTS, run_demo, summary_lines

    counts = args.labels or (LABEL_COUNTS[:3] if args.quick else LABEL_COUNTS)
    options: dict[str, Any] = {} if args.epochs is None else {"epochs": args.epochs}
    if args.no_pretrain:
        options["pretrain"] = False
    bars = _Bars(enabled=not args.quiet)

    def progress(stage: str, info: dict[str, Any]) -> None:
        if stage == "round":
            bars.close()
            if bars.enabled:
                tqdm.write(
                    f"round {info['round']}/{info['rounds']}: {info['labels']} labels "
                    f"({info['positives']} signal), training ...",
                    file=sys.stderr,
                )
        elif stage == "scored":
            bars.close()
            if bars.enabled:
                tqdm.write(
                    f"  model {info['model_id']} ({info['phase']}, {info['seconds']:.0f} s): "
                    f"F1 {info['f1']:.3f} on the new images",
                    file=sys.stderr,
                )
        else:
            bars(stage, info)

    try:
        result = run_demo(
            args.folder,
            label_counts=counts,
            new_images=args.new_images,
            seed=args.seed,
            progress=progress,
            **options,
        )
    finally:
        bars.close()
    _emit(args, asdict(result), summary_lines(result))
    return 0


def _label(args: argparse.Namespace) -> int:
    from blobsift.web.serve import serve

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


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 25,50,100; got {text!r}") from None
    if any(count < 20 for count in counts):
        raise argparse.ArgumentTypeError("each label count must be at least 20")
    return counts


def _command(
    commands: Any,
    name: str,
    common: argparse.ArgumentParser,
    help: str,
    description: str,
    examples: Sequence[str],
) -> argparse.ArgumentParser:
    epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
    return commands.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, width=88),
        epilog=epilog,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


#: Detection settings shared by ``detect`` and ``predict``: (option, type, metavar, help).
_DETECT_OPTIONS = (
    ("sigma-min", float, "PX", "smallest blob width (Gaussian sigma; default 1)"),
    ("sigma-max", float, "PX", "largest blob width (default 3)"),
    ("threshold", float, "SNR", "minimum score, a signal-to-noise ratio (default 4)"),
    ("min-distance", int, "PX", "minimum distance between peaks (default 1)"),
    ("border", int, "PX", "drop candidates this close to the edge (default 0)"),
    ("max-candidates", int, "N", "keep at most N per image (default 100000)"),
)


def _add_detect_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    group = parser.add_argument_group("detection settings (see blobsift.detect_blobs)")
    for option, kind, metavar, text in _DETECT_OPTIONS:
        group.add_argument(
            f"--{prefix}{option}",
            dest=f"{prefix}{option}".replace("-", "_"),
            type=kind,
            metavar=metavar,
            help=text,
        )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``blobsift`` command."""
    parser = argparse.ArgumentParser(
        prog="blobsift",
        description="Sift the real signals out of blob-detector candidates with few labels.",
        epilog="examples:\n  blobsift init run1 --images 'data/*.tif'\n  blobsift detect run1\n"
        "  blobsift import-labels run1 labels.csv\n  blobsift train run1\n"
        "  blobsift predict run1 --images 'more/*.tif'\n  blobsift report run1\n"
        "  blobsift demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"blobsift {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = _command(
        commands,
        "init",
        common,
        "create a project folder",
        "Create a project folder with project.db, models/ and reports/, and optionally add images.",
        ["blobsift init run1", "blobsift init run1 --images 'data/*.tif'"],
    )
    init.add_argument("project", type=Path, help="the project folder to create")
    init.add_argument(
        "--images", nargs="+", metavar="PATTERN", help="image files or glob patterns to add"
    )
    init.set_defaults(run=_init)

    add = _command(
        commands,
        "add-images",
        common,
        "add image files to a project",
        "Add image files (their path, content hash and shape are recorded). Images "
        "already in the project are skipped; one whose content changed is refused. Each "
        "new file's pixels are read once, so a truncated or corrupt file is refused now "
        "(and nothing is added). A name that exists as a file is taken literally (a file "
        "named 'img[1].tif' is that file); any other name is a glob pattern.",
        [
            "blobsift add-images run1 'data/*.tif'",
            "blobsift add-images run1 a.png b.png 'more/**/*.npy'",
        ],
    )
    add.add_argument("project", type=Path, help="the project folder")
    add.add_argument(
        "images",
        nargs="+",
        metavar="PATTERN",
        help="image files (taken literally when they exist) or glob patterns",
    )
    add.set_defaults(run=_add_images)

    detect = _command(
        commands,
        "detect",
        common,
        "detect candidate blobs in project images",
        "Detect candidates in every project image (or the ones given). Each "
        "image is saved as soon as it is done; run again with the same settings "
        "to resume after an interruption. Labels are kept: they belong to "
        "positions and match the new candidates.",
        [
            "blobsift detect run1",
            "blobsift detect run1 --threshold 5 --sigma-max 4",
            "blobsift detect run1 --images data/a.tif --force",
        ],
    )
    detect.add_argument("project", type=Path, help="the project folder")
    detect.add_argument("--images", nargs="+", metavar="PATTERN", help="only these project images")
    detect.add_argument(
        "--force", action="store_true", help="detect again where these settings already ran"
    )
    detect.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="detection threads (default: all CPUs)",
    )
    _add_detect_options(detect)
    detect.set_defaults(run=_detect)

    cand = _command(
        commands,
        "import-candidates",
        common,
        "import candidates found by another detector",
        "Import a CSV of candidates (columns image,row,col and optionally sigma,"
        "score) as a new detection run. Images are named by file name or path as "
        "added. A position must lie on its image, give or take the match radius of 2 px "
        "(-2 <= row <= height + 1, likewise col); a row outside refuses the whole file, "
        "naming its line. Positions near the edge are kept; their crops are completed by "
        "mirror reflection.",
        [
            "blobsift import-candidates run1 spots.csv",
            "blobsift import-candidates run1 a_spots.csv --image a.tif --xy",
        ],
    )
    cand.add_argument("project", type=Path, help="the project folder")
    cand.add_argument("csv", type=Path, help="the candidate CSV")
    cand.add_argument("--image", default=None, help="the image of every row (no image column)")
    cand.add_argument(
        "--xy", action="store_true", help="the file has x,y columns (x = col, y = row)"
    )
    cand.set_defaults(run=_import_candidates)

    imp = _command(
        commands,
        "import-labels",
        common,
        "import labels from a CSV",
        "Import labels from a CSV with columns image,row,col,label (label 1 signal, "
        "0 noise, -1 unsure, or the words signal/noise/unsure; nothing else, not True). "
        "Every row is checked first; a bad row refuses the whole file, naming its line: "
        "an unknown image, a position off its image by more than the match radius of 2 px "
        "(-2 <= row <= height + 1, likewise col; positions near the edge are kept and "
        "their crops completed by mirror reflection), or two rows giving one position "
        "(within the match radius) different labels. Labels are appended as events: "
        "nothing is overwritten. A position the project already labels differently takes "
        "the file's label, with a warning that counts them. The file's content hash is "
        "recorded: importing the same file again (say after an interrupted run) applies "
        "nothing and says so, unless --again.",
        [
            "blobsift import-labels run1 labels.csv",
            "blobsift import-labels run1 labels.csv --who alice",
        ],
    )
    imp.add_argument("project", type=Path, help="the project folder")
    imp.add_argument("csv", type=Path, help="the label CSV")
    imp.add_argument("--who", default=None, help="who labelled (default: your login name)")
    imp.add_argument(
        "--again", action="store_true", help="apply a file even if it was imported before"
    )
    imp.set_defaults(run=_import_labels)

    exp = _command(
        commands,
        "export-labels",
        common,
        "export the current labels to a CSV",
        "Write the current label of every labelled position as a CSV with columns "
        "image,row,col,label (1 signal, 0 noise).",
        ["blobsift export-labels run1 labels.csv"],
    )
    exp.add_argument("project", type=Path, help="the project folder")
    exp.add_argument("csv", type=Path, help="the CSV to write")
    exp.add_argument("--include-unsure", action="store_true", help="also write unsure (-1)")
    exp.set_defaults(run=_export_labels)

    from blobsift.export import FORMATS, WHAT

    export = _command(
        commands,
        "export",
        common,
        "export candidates, labels or predictions for napari, Fiji, QuPath or DS9",
        "Write the candidates (with their labels), the labels or the latest predictions "
        "of every project image (or one) in a tool's format, one file per image: napari "
        "points CSV, TrackMate XML (Fiji), QuPath GeoJSON, DS9 regions or an ImageJ ROI "
        "set. FITS images with a celestial WCS also get RA/Dec, and DS9 regions in sky "
        "coordinates.",
        [
            "blobsift export run1 --format qupath",
            "blobsift export run1 --format napari --what candidates --output out/",
            "blobsift export run1 --format ds9 --image field.fits --output field.reg",
        ],
    )
    export.add_argument("project", type=Path, help="the project folder")
    export.add_argument("--format", required=True, choices=FORMATS, help="the file format")
    export.add_argument(
        "--what", choices=WHAT, default="predictions", help="what to export (default predictions)"
    )
    export.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="PATH",
        help="a folder (one file per image), or one file when one image is exported "
        "(default: PROJECT/exports/WHAT-FORMAT/)",
    )
    export.add_argument("--image", default=None, help="only this image (file name or path)")
    export.set_defaults(run=_export)

    train = _command(
        commands,
        "train",
        common,
        "train a model on the current labels",
        "Train a Sifter on the current labels. The phase is chosen automatically "
        "(and the reason recorded); the model file goes to models/ and its "
        "held-out metrics, threshold, label-set hash and phase to the database.",
        [
            "blobsift train run1",
            "blobsift train run1 --target-precision 0.95",
            "blobsift train run1 --epochs 20 --json",
        ],
    )
    train.add_argument("project", type=Path, help="the project folder")
    target = train.add_mutually_exclusive_group()
    target.add_argument(
        "--target-precision",
        type=_fraction,
        default=None,
        metavar="P",
        help="threshold for this precision (highest recall reaching it)",
    )
    target.add_argument(
        "--target-recall",
        type=_fraction,
        default=None,
        metavar="R",
        help="threshold for this recall (highest precision reaching it)",
    )
    train.add_argument(
        "--phase",
        choices=PHASES,
        default="auto",
        help="learning phase: Phase 1 'siamese', Phase 2 'cnn', or 'auto' to choose from the "
        "labels and the project's phase history (default)",
    )
    train.add_argument(
        "--no-pretrain",
        action="store_true",
        help="skip pre-training Phase 1 on the project's candidates (faster, weaker at few "
        "labels; the pre-trained encoder is cached under models/pretrained)",
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="maximum training epochs (default: the classifier's)",
    )
    train.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    train.set_defaults(run=_train)

    predict = _command(
        commands,
        "predict",
        common,
        "score candidates with a model",
        "Score candidates with the latest model (or --model) and write CSV and "
        "Parquet with columns image,row,col,sigma,score,probability,decision. "
        "Without --images every project image is scored on its current "
        "candidates; images outside the project are detected and scored without "
        "being added. Rows are written to CSV.partial as each image finishes and "
        "the journal CSV.status.jsonl records each image (with the warnings it "
        "raised); when all are done the files are renamed to their names and the "
        "run is recorded, so a file under its name is always whole. An "
        "interrupted run is started again from the beginning.",
        [
            "blobsift predict run1",
            "blobsift predict run1 --images 'more/*.tif'",
            "blobsift predict run1 --model 3 --output out/predictions.csv --overlays",
            "blobsift predict run1 --images 'survey/*.tif' --scheduler tcp://10.0.0.5:8786",
        ],
    )
    predict.add_argument("project", type=Path, help="the project folder")
    predict.add_argument(
        "--images", nargs="+", metavar="PATTERN", help="images to sift (project images or new ones)"
    )
    predict.add_argument(
        "--model",
        default=None,
        metavar="ID|PATH",
        help="model id or model file (default: the latest model)",
    )
    predict.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="CSV",
        help="CSV to write; Parquet goes beside it "
        "(default: PROJECT/predictions/predictions-TIME.csv)",
    )
    predict.add_argument(
        "--overlays",
        action="store_true",
        help="also draw each image's candidates, coloured by decision (PNG per image, in "
        "a folder beside the CSV)",
    )
    predict.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="detect and score images outside the project on this Dask cluster "
        "(a distributed scheduler address, e.g. tcp://10.0.0.5:8786; needs "
        "blobsift[dask]); the model is sent once to each worker",
    )
    _add_detect_options(predict, prefix="detect-")
    predict.set_defaults(run=_predict)

    report = _command(
        commands,
        "report",
        common,
        "write the HTML report of a model",
        "Write an HTML page with PNG figures (precision-recall curve, F1 against "
        "labels with the specification's ranges, galleries of false positives and "
        "false negatives, detections drawn on an image, phase history) and a model "
        "card.",
        ["blobsift report run1", "blobsift report run1 --model 2 --output rep"],
    )
    report.add_argument("project", type=Path, help="the project folder")
    report.add_argument(
        "--model", type=int, default=None, metavar="ID", help="model id (default: the latest)"
    )
    report.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="report folder (default: PROJECT/reports/model-ID)",
    )
    report.add_argument("--image", default=None, help="image to draw detections on")
    report.set_defaults(run=_report)

    info = _command(
        commands,
        "info",
        common,
        "summarise a project",
        "Summarise images, candidates, labels and models. With --verify every "
        "image is hashed and images that moved or changed are listed (exit 1).",
        ["blobsift info run1", "blobsift info run1 --verify --json"],
    )
    info.add_argument("project", type=Path, help="the project folder")
    info.add_argument("--verify", action="store_true", help="check every image's content hash")
    info.set_defaults(run=_info)

    relocate = _command(
        commands,
        "relocate",
        common,
        "point an image at its new path",
        "Point a project image at the file it moved to; the file must hold "
        "exactly the same bytes (checked by hash).",
        ["blobsift relocate run1 a.tif /new/place/a.tif"],
    )
    relocate.add_argument("project", type=Path, help="the project folder")
    relocate.add_argument("image", help="the image (file name, path or id)")
    relocate.add_argument("new_path", type=Path, help="where the file is now")
    relocate.set_defaults(run=_relocate)

    label = _command(
        commands,
        "label",
        common,
        "label crops in the browser",
        "Start the labelling app (a local web page) and open it in the browser: one "
        "key per label (s signal, n noise, u unsure, z undo, t train), a grid view "
        "for pages of crops, live training and a review of likely mislabels. It "
        "listens on 127.0.0.1; any other --host requires a token, printed in the URL.",
        [
            "blobsift label run1",
            "blobsift label run1 --port 8765 --no-browser",
            "blobsift label run1 --host 0.0.0.0 --port 8765",
        ],
    )
    label.add_argument("project", type=Path, help="the project folder")
    label.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    label.add_argument(
        "--port", type=_port, default=0, metavar="N", help="port 0-65535 (default 0: a free one)"
    )
    label.add_argument(
        "--token",
        default=None,
        help="access token, at least 16 characters (default: a new one when --host is not "
        "loopback)",
    )
    label.add_argument("--no-browser", action="store_true", help="do not open the browser")
    label.add_argument("--who", default=None, help="who labels (default: your login name)")
    label.add_argument(
        "--debug",
        action="store_true",
        help="also serve the API description at /openapi.json and /docs",
    )
    label.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="maximum training epochs of the t key (default: the classifier's)",
    )
    label.set_defaults(run=_label)

    demo = _command(
        commands,
        "demo",
        common,
        "the whole path on built-in simulated images",
        "Simulate images with a known answer and run the whole path on them: create a "
        "project in FOLDER, detect candidates, let a simulated labeller label them in "
        "rounds (25, 50, 100, 250, 1000 labels), train after each round, sift new "
        "simulated images with every model and score it against their truth, and write "
        "the report. Prints a table of the rounds and where the report is. A folder an "
        "earlier demo wrote is replaced.",
        ["blobsift demo", "blobsift demo /tmp/demo --quick", "blobsift demo --labels 25,100"],
    )
    demo.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=Path("blobsift-demo"),
        help="the project folder to create (default: ./blobsift-demo)",
    )
    demo.add_argument("--quick", action="store_true", help="only 25, 50 and 100 labels")
    demo.add_argument(
        "--labels",
        type=_counts,
        default=None,
        metavar="N,N,...",
        help="labels after each round (default: 25,50,100,250,1000)",
    )
    demo.add_argument(
        "--new-images",
        type=int,
        default=6,
        metavar="N",
        help="new simulated images to score every model on (default: 6)",
    )
    demo.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="maximum training epochs (default: the classifier's)",
    )
    demo.add_argument(
        "--no-pretrain",
        action="store_true",
        help="skip pre-training Phase 1 on the unlabelled candidates (faster, weaker at few "
        "labels)",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of data and training")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``blobsift`` command; return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BlobsiftError as error:
        print(f"blobsift: error: {error}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as error:
        print(f"blobsift: error: the project database failed: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("blobsift: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
