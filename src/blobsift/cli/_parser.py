"""The argument parser of the ``blobsift`` command: every command, its options and its help."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from blobsift._version import __version__
from blobsift.classify.phases import PHASES
from blobsift.cli._commands_model import _demo, _label, _predict, _report, _train
from blobsift.cli._commands_project import (
    _add_images,
    _detect,
    _export,
    _export_labels,
    _import_candidates,
    _import_labels,
    _info,
    _init,
    _relocate,
)
from blobsift.cli._options import (
    _add_detect_channel,
    _add_detect_options,
    _command,
    _counts,
    _fraction,
    _port,
    _positive_int,
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

    _add_init(commands, common)
    _add_add_images(commands, common)
    _add_detect(commands, common)
    _add_import_candidates(commands, common)
    _add_import_labels(commands, common)
    _add_export_labels(commands, common)
    _add_export(commands, common)
    _add_train(commands, common)
    _add_predict(commands, common)
    _add_report(commands, common)
    _add_info(commands, common)
    _add_relocate(commands, common)
    _add_label(commands, common)
    _add_demo(commands, common)
    return parser


def _add_init(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``init`` command."""
    init = _command(
        commands,
        "init",
        common,
        "create a project folder",
        "Create a project folder with project.db, models/ and reports/, and optionally add images.",
        [
            "blobsift init run1",
            "blobsift init run1 --images 'data/*.tif'",
            "blobsift init run1 --images 'triplets/*.fits' --detect-channel 2",
        ],
    )
    init.add_argument("project", type=Path, help="the project folder to create")
    init.add_argument(
        "--images", nargs="+", metavar="PATTERN", help="image files or glob patterns to add"
    )
    _add_detect_channel(init, "make a project of stacks")
    init.set_defaults(run=_init)


def _add_add_images(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``add-images`` command."""
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


def _add_detect(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``detect`` command."""
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
    _add_detect_channel(detect, "detect on channel N from now on (the project's setting)")
    _add_detect_options(detect)
    detect.set_defaults(run=_detect)


def _add_import_candidates(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``import-candidates`` command."""
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


def _add_import_labels(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``import-labels`` command."""
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


def _add_export_labels(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``export-labels`` command."""
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


def _add_export(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``export`` command."""
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


def _add_train(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``train`` command."""
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


def _add_predict(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``predict`` command."""
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


def _add_report(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``report`` command."""
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


def _add_info(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``info`` command."""
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


def _add_relocate(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``relocate`` command."""
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


def _add_label(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``label`` command."""
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


def _add_demo(commands: Any, common: argparse.ArgumentParser) -> None:
    """The ``demo`` command."""
    demo = _command(
        commands,
        "demo",
        common,
        "the whole path on built-in simulated images",
        "Simulate images with a known answer and run the whole path on them, in each "
        "domain (fluorescence-like spots, astronomical difference images): create a "
        "project in FOLDER/DOMAIN, detect candidates, let a simulated labeller label them "
        "in rounds (25, 50, 100, 250 and 1000 labels for spots; 25 to 500 for difference "
        "imaging), train after each round, sift new simulated images with every model and "
        "score it against their truth, and write the report. Prints a table of the rounds "
        "per domain and where the reports are. A folder an earlier demo wrote is replaced.",
        [
            "blobsift demo",
            "blobsift demo /tmp/demo --quick",
            "blobsift demo --domain difference --labels 25,100",
        ],
    )
    demo.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=Path("blobsift-demo"),
        help="the folder of the projects to create (default: ./blobsift-demo)",
    )
    demo.add_argument(
        "--domain",
        choices=["spots", "difference", "both"],
        default="both",
        help="the simulated domain (default: both, one after the other)",
    )
    demo.add_argument(
        "--quick", action="store_true", help="only the first 3 rounds (to 100 labels)"
    )
    demo.add_argument(
        "--labels",
        type=_counts,
        default=None,
        metavar="N,N,...",
        help="labels after each round, in every domain (default: the domain's)",
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
