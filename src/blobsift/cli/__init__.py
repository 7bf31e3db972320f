"""The ``blobsift`` command line: a thin shell over the library.

Every command parses its arguments, calls the API, shows progress and prints results
(``--json`` prints one JSON document instead). Errors from blobsift become one line on
stderr and exit code 2.

Modules
-------
``_parser``
    :func:`build_parser`: every command, its options and its help.
``_options``
    Option types (numbers checked on parsing), the detection options built from
    :class:`~blobsift.detect.DetectSettings`, and the layout of a command's help.
``_commands_project``
    Commands on images, candidates and labels, and the project's summary (``info``).
``_commands_model``
    Commands on models (``train``, ``predict``, ``report``), the app (``label``) and the
    ``demo``.
``_bars``
    Progress bars on stderr: the command line's progress consumer.
``_output``
    Printing a result as text or JSON, expanding file patterns, opening a project.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence

from blobsift.cli._parser import build_parser
from blobsift.exceptions import BlobsiftError

__all__ = ["build_parser", "main"]


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
