"""The labelling app's gate: access token, Host check, body size and type limits.

:class:`Guard` is plain ASGI middleware (it does not buffer responses, so event streams
pass through). It answers

- **401** when a token is set and the request carries none that matches (query
  ``?token=``, header ``X-Blobsift-Token`` or ``Authorization: Bearer``, or the cookie a
  token in the query sets);
- **421** when the app runs without a token (loopback only) and the Host header is not a
  loopback name, which stops DNS-rebinding pages from reaching it;
- **413** for a request body over ``max_body`` bytes, and **415** for a POST whose body
  is not JSON (so a cross-site form cannot post labels).
"""

from __future__ import annotations

import ipaddress
import secrets
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["COOKIE", "MAX_BODY", "Guard", "is_loopback", "new_token"]

#: Cookie that carries the token once a URL with ``?token=`` was opened (``_PORT`` is
#: appended: cookies ignore ports, and two apps on one host must not clash).
COOKIE = "blobsift_token"
#: Largest accepted request body, in bytes.
MAX_BODY = 64 * 1024


def new_token() -> str:
    """A fresh random access token (URL safe)."""
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The host part of a Host header (``[::1]:8000`` -> ``::1``)."""
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware enforcing the token, the Host check and the body limits.

    Parameters
    ----------
    app : ASGI app
    token : str or None
        The access token; None when the app is bound to loopback (then the Host check
        applies instead).
    max_body : int
        Largest request body in bytes.
    """

    def __init__(self, app: ASGIApp, token: str | None, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request, or pass it on (adding the token cookie when due)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, detail = refusal
            await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
            return
        if self.token is not None and self._query_token(scope) is not None:
            send = _with_cookie(send, _cookie_name(scope), self.token)
        await self.app(scope, self._limited(receive), send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        if self.token is None:
            host = _host_name(headers.get("host", ""))
            if host and not is_loopback(host):
                return 421, f"this server answers on loopback names only, not {host!r}."
        elif not self._authorised(scope, headers):
            return 401, "missing or wrong access token; open the URL the server printed."
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return 413, f"request body over {self.max_body} bytes."
        if scope["method"] == "POST":
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return 415, "POST bodies must be JSON (Content-Type: application/json)."
        return None

    def _query_token(self, scope: Scope) -> str | None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        values = query.get("token")
        return values[0] if values else None

    def _authorised(self, scope: Scope, headers: dict[str, str]) -> bool:
        token = (self.token or "").encode()
        offered = [self._query_token(scope), headers.get("x-blobsift-token")]
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            offered.append(bearer[7:].strip())
        cookie = SimpleCookie()
        cookie.load(headers.get("cookie", ""))
        name = _cookie_name(scope)
        if name in cookie:
            offered.append(cookie[name].value)
        return any(
            value is not None and secrets.compare_digest(value.encode(), token) for value in offered
        )

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that fails with 413 once a (chunked) body passes the limit."""
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"request body over {self.max_body} bytes.")
            return message

        return limited


def _cookie_name(scope: Scope) -> str:
    server = scope.get("server") or ("", 0)
    return f"{COOKIE}_{server[1]}"


def _with_cookie(send: Send, name: str, token: str) -> Send:
    """``send`` that adds the token cookie to the response headers."""
    cookie = f"{name}={token}; Path=/; HttpOnly; SameSite=Strict"

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
            message = {**message, "headers": headers}
        await send(message)

    return sending
