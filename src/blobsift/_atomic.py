"""Output files that are whole or absent: write beside, fsync, rename.

Every file blobsift writes for its user (prediction CSV and Parquet, exported labels,
reports, model files) goes through :func:`atomic_write`: the content goes to a temporary
file in the target's folder, is flushed to disk, and is renamed over the target in one
step, so a crash never leaves a half-written file under the final name. Output that grows
over a long run is written to a sibling and moved into place with :func:`publish` when it
is complete. Problems with the path become :class:`~blobsift.exceptions.OutputError`
naming the path, what is wrong and the fix; :func:`check_output_file` finds them before
any work is done.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from blobsift.exceptions import OutputError

__all__ = ["atomic_write", "check_output_file", "publish"]


def _refuse(what: str, path: Path, reason: str, fix: str) -> OutputError:
    return OutputError(f"cannot write {what} {str(path)!r}: {reason}; {fix}.")


def check_output_file(path: str | os.PathLike[str], *, what: str = "the output file") -> Path:
    """Check, creating nothing, that a file can be written at ``path``.

    Parameters
    ----------
    path : path-like
        The file to write (it may exist: it will be replaced).
    what : str
        How error messages name the file, e.g. ``"the prediction CSV"``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        If ``path`` is a folder, a part of it is a file, or its folder cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise _refuse(
            what, path, "it is a folder", f"give a file path such as {str(path / 'out')!r}"
        )
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise _refuse(
            what, path, f"{str(folder)!r} is a file, not a folder", "choose a path inside a folder"
        )
    try:  # the only reliable test (permissions, read-only or virtual file systems): try
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".blobsift-probe-")
    except OSError as error:
        raise _refuse(
            what, path, f"the folder {str(folder)!r} is not writable ({error.strerror})",
            "choose a folder you can write to",
        ) from None  # fmt: skip
    os.close(handle)
    os.unlink(probe)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform can)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def publish(temporary: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Flush the complete file ``temporary`` to disk and rename it to ``target`` in one step.

    ``temporary`` must lie in ``target``'s folder (a rename never crosses file systems).
    """
    temporary, target = Path(temporary), Path(target)
    descriptor = os.open(temporary, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, target)
    _fsync_folder(target.parent)
    return target


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[Path], object],
    *,
    what: str = "the output file",
) -> Path:
    """Write a file whole or not at all: ``write(temporary)``, fsync, rename to ``path``.

    Parameters
    ----------
    path : path-like
        The file to write; its folder is created. An existing file is replaced only once
        the new one is complete.
    write : callable
        Writes the whole content to the path it is given (a temporary file beside
        ``path``).
    what : str
        How error messages name the file.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        If ``path`` cannot be written (see :func:`check_output_file`) or writing fails
        (e.g. a full disk); the previous file, if any, is left as it was and no temporary
        file remains.
    """
    path = check_output_file(path, what=what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _refuse(what, path, error.strerror or str(error), "choose another path") from None
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        publish(temporary, path)
    except OSError as error:
        reason = f"writing failed ({error.strerror or error})"
        raise _refuse(what, path, reason, "free space or choose another path") from error
    finally:
        temporary.unlink(missing_ok=True)
    return path
