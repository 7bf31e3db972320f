"""What every command shares: printing its result, expanding file patterns, opening a project."""

from __future__ import annotations

import argparse
import glob
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from blobsift.exceptions import InvalidInputError


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
    from blobsift.project import Project

    return Project(args.project)
