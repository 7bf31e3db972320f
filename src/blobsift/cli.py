"""The ``blobsift`` command line: a thin shell over the library.

Every command parses its arguments, calls the API, shows progress and prints results.
Errors from blobsift become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from blobsift import __version__
from blobsift.exceptions import BlobsiftError

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from blobsift.demo import LABEL_COUNTS, run_demo

    counts = tuple(args.labels) if args.labels else (25, 50, 100) if args.quick else LABEL_COUNTS
    bar: Any = None

    def progress(stage: str, info: dict[str, Any]) -> None:
        nonlocal bar
        if stage == "simulate":
            print(f"simulating {info['crops']} labelled crops ...", file=sys.stderr)
        elif stage == "train":
            if bar is not None:
                bar.close()
            bar = tqdm(desc=f"training on {info['labels']:>4} labels ({info['positives']} signal)",
                       unit="epoch", leave=False, file=sys.stderr)  # fmt: skip
        elif stage == "epoch" and bar is not None:
            bar.total = info["total_epochs"]
            bar.set_postfix(val_f1=f"{info['val_f1']:.3f}", loss=f"{info['train_loss']:.4f}")
            bar.update(1)

    rows, pictures = run_demo(
        args.output, label_counts=counts, test_size=args.test_size, seed=args.seed,
        progress=progress,
    )  # fmt: skip
    if bar is not None:
        bar.close()
    print(
        f"\nblobsift {__version__} demo: F1 on 3,000 held-out simulated crops (1 signal : 10 noise)"
    )
    columns = ("labels", "signal", "phase", "F1", "prec", "recall", "fit s")
    header = " ".join(f"{c:>6}" for c in columns) + "  spec expects"
    print(header)
    print("-" * len(header))
    for r in rows:
        expected = f"{r.expected[0]:.2f}-{r.expected[1]:.2f}" if r.expected else "-"
        verdict = ""
        if r.expected:
            verdict = (
                "above" if r.f1 > r.expected[1] else "within" if r.f1 >= r.expected[0] else "below"
            )
        print(f"{r.labels:>6} {r.positives:>6} {r.phase:>6} {r.f1:6.3f} {r.precision:6.3f} "
              f"{r.recall:6.3f} {r.seconds:6.1f}  {expected} {verdict}")  # fmt: skip
    print("\npictures:")
    for path in pictures:
        print(f"  {path}")
    return 0


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 25,50,100; got {text!r}") from None
    if any(count < 20 for count in counts):
        raise argparse.ArgumentTypeError("each label count must be at least 20")
    return counts


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``blobsift`` command."""
    parser = argparse.ArgumentParser(
        prog="blobsift",
        description="Sift the real signals out of blob-detector candidates with few labels.",
    )
    parser.add_argument("--version", action="version", version=f"blobsift {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train on built-in simulated data at 25-1000 labels and report F1",
        description="Simulate labelled candidate crops, train at growing label counts, score "
        "each model on held-out crops, and write a learning curve and galleries of mistakes.",
        epilog="examples:\n  blobsift demo\n  blobsift demo --quick --output /tmp/demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--output", type=Path, default=Path("blobsift-demo"),
                      help="folder for the PNGs (default: ./blobsift-demo)")  # fmt: skip
    demo.add_argument("--quick", action="store_true", help="only 25, 50 and 100 labels")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and training")
    demo.add_argument(
        "--labels",
        type=_counts,
        default=None,
        metavar="N,N,...",
        help="label counts to train on (default: 25,50,100,250,500,1000)",
    )
    demo.add_argument("--test-size", type=int, default=3000, metavar="N",
                      help="held-out crops to score on (default: 3000)")  # fmt: skip
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
    except KeyboardInterrupt:
        print("blobsift: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
