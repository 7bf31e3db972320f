"""The app's one Project, shared by the server's threads: every call serialised on one thread.

SQLite connections belong to the thread that opened them, while a web server answers
from a pool of threads. :class:`SerialisedProject` opens the app's :class:`Project` on a
dedicated thread and runs every database call of the app there, one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from blobsift.project import Project

__all__ = ["SerialisedProject"]

T = TypeVar("T")


class SerialisedProject:
    """A :class:`Project` opened in, and only used from, one dedicated thread.

    Every database call of the app goes through :meth:`call`, which runs it on this
    thread and waits for the result; so calls from the server's threads never interleave,
    and writes are committed when :meth:`call` returns.

    Parameters
    ----------
    root : path-like
        The project folder.
    """

    def __init__(self, root: str | Path) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blobsift-db")
        self._project = self._executor.submit(Project, root).result()

    def call(self, function: Callable[[Project], T]) -> T:
        """Run ``function(project)`` on the project's thread; return its result or raise."""
        return self._executor.submit(function, self._project).result()

    def close(self) -> None:
        """Close the connection and stop the thread."""
        self.call(lambda project: project.close())
        self._executor.shutdown()
