"""Run the labelling app with uvicorn (the ``blobsift label`` command)."""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from blobsift.app.guard import check_token, is_loopback, new_token
from blobsift.exceptions import BlobsiftError, InvalidInputError

__all__ = ["Prepared", "app_url", "bind", "prepare", "serve"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises
    ------
    InvalidInputError
        If the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        reason = "is in use" if error.errno == errno.EADDRINUSE else f"failed ({error.strerror})"
        raise InvalidInputError(
            f"cannot listen on {host}:{port}: the address {reason}; choose another --port."
        ) from None
    sock.listen(128)
    return sock


def app_url(host: str, port: int, token: str | None) -> str:
    """The URL a user opens (with ``?token=`` when the app needs one).

    For a wildcard address (``0.0.0.0``, ``::``) the URL names this machine instead.
    """
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    name = f"[{host}]" if ":" in host else host
    url = f"http://{name}:{port}/"
    return f"{url}?token={quote(token)}" if token else url


@dataclass
class Prepared:
    """A uvicorn server for the app, its listening socket and the URL to open."""

    server: Any
    sock: socket.socket
    url: str

    def run(self) -> None:
        """Serve until the server is told to exit (``server.should_exit = True``)."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()


def prepare(
    project: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    **app_options: Any,
) -> Prepared:
    """Build the app of ``project`` and a uvicorn server listening on ``host:port``.

    Parameters
    ----------
    project : path-like
        The project folder.
    host : str
        Address to bind. Anything but loopback requires a token: ``token`` or a fresh one.
    port : int
        Port; 0 picks a free one.
    token : str, optional
        Access token (also honoured on loopback when given), at least
        :data:`~blobsift.app.guard.MIN_TOKEN_LENGTH` characters.
    **app_options
        Further :func:`~blobsift.app.create_app` options (``who``, ``debug``, ...).

    Returns
    -------
    Prepared

    Raises
    ------
    InvalidInputError
        If the token is too short or the address cannot be bound.
    """
    check_token(token)
    try:
        import uvicorn

        from blobsift.app import create_app
    except ImportError as error:
        raise BlobsiftError(
            f"`blobsift label` needs the app extra ({error.name} is missing); install it with "
            "pip install 'blobsift[app]'."
        ) from None
    if not is_loopback(host) and not token:
        token = new_token()
    sock = bind(host, port)
    try:
        app = create_app(project, token=token, **app_options)
    except BaseException:
        sock.close()
        raise
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    return Prepared(uvicorn.Server(config), sock, app_url(host, sock.getsockname()[1], token))


def serve(
    project: str | Path,
    *,
    open_browser: bool = True,
    announce: Callable[[str], None] = print,
    **options: Any,
) -> None:
    """Serve the labelling app of ``project`` until interrupted.

    Parameters
    ----------
    project : path-like
        The project folder.
    open_browser : bool
        Open the URL in the default browser once the server listens (where there is a
        desktop: a terminal-only machine gets the URL printed only).
    announce : callable
        Receives the line with the URL.
    **options
        :func:`prepare` options (``host``, ``port``, ``token``, ``who``, ...).
    """
    prepared = prepare(project, **options)
    announce(f"blobsift labelling app for {Path(project).resolve()}: {prepared.url}")
    if open_browser and _has_desktop():
        threading.Timer(0.5, webbrowser.open, args=(prepared.url,)).start()
    prepared.run()


def _has_desktop() -> bool:
    """Whether a graphical browser can open (else webbrowser might start a text one here)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
