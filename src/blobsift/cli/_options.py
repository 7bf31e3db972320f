"""Option types and shared options: numbers checked on parsing, detection settings, command help.

The detection options (``--sigma-min`` ... ``--max-candidates``, and their ``--detect-``
prefixed forms of ``predict``) are built from the fields of
:class:`~blobsift.detect.DetectSettings`: their type from the default, their metavar and
help from the field's metadata, and the default in the help from the default itself.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from dataclasses import Field, fields
from typing import Any

from blobsift.detect import DetectSettings


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1]; got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1]; got {text!r}")
    return value


def _int_at_least(low: int, text: str) -> int:
    message = f"expected a whole number >= {low}; got {text!r}"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    if value < low:
        raise argparse.ArgumentTypeError(message)
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(1, text)


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


def _help_with_default(setting: Field[Any]) -> str:
    """A detection setting's help with its default: "largest blob width (default 3)"."""
    text, default = setting.metadata["help"], f"{setting.default:g}"
    if text.endswith(")"):  # "smallest blob width (Gaussian sigma; default 1)"
        return f"{text[:-1]}; default {default})"
    return f"{text} (default {default})"


def _add_detect_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Add the detection settings as options ``--{prefix}sigma-min`` ... to ``parser``."""
    group = parser.add_argument_group("detection settings (see blobsift.detect_blobs)")
    for setting in fields(DetectSettings):
        option = prefix + setting.name.replace("_", "-")
        group.add_argument(
            f"--{option}",
            dest=option.replace("-", "_"),
            type=type(setting.default),
            metavar=setting.metadata["metavar"],
            help=_help_with_default(setting),
        )


def _detect_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The detection settings given on the command line (with or without ``detect-``)."""
    prefix = "detect_" if hasattr(args, "detect_threshold") else ""
    settings = {}
    for name in DetectSettings.names():
        value = getattr(args, prefix + name, None)
        if value is not None:
            settings[name] = value
    return settings


def _add_detect_channel(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--detect-channel N``: a project of stacks, detected on channel N."""
    parser.add_argument(
        "--detect-channel",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help=f"{what}: its images are stacks of aligned channels (multi-page or "
        "multi-channel TIFF, NPY (C, H, W), FITS cube or HDUs, ...); candidates are detected "
        "on channel N (from 0) and crops cut from every channel",
    )


def _non_negative_int(text: str) -> int:
    return _int_at_least(0, text)
