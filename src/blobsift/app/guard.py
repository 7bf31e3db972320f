"""The labelling app's gate: access token, Host check, origin check, body limits, headers.

:class:`Guard` is plain ASGI middleware (it does not buffer responses, so event streams
pass through). It answers

- **401** when a token is set and the request carries none that matches (query
  ``?token=``, header ``X-Blobsift-Token`` or ``Authorization: Bearer``, or the cookie a
  token in the query sets);
- **421** when the app runs without a token (loopback only) and the Host header is not a
  loopback name, which stops DNS-rebinding pages from reaching it;
- **403** for a state-changing request (POST, PUT, PATCH, DELETE) that a browser sent from
  another origin: an ``Origin`` header other than the app's own, or ``Sec-Fetch-Site``
  ``cross-site`` or ``same-site`` (another port of the same host is another site's page);
- **413** for a request body over ``max_body`` bytes, and **415** for a POST whose body
  is not JSON (so a cross-site form cannot post labels).

Every response, refusals included, carries :data:`SECURITY_HEADERS`: a strict
Content-Security-Policy (scripts, styles and images from the app only; no inline script;
no framing, which stops one-key labelling from being clickjacked), ``nosniff`` and no
referrer.
"""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import parse_qs, urlsplit

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blobsift.exceptions import InvalidInputError

__all__ = [
    "COOKIE",
    "CSP",
    "MAX_BODY",
    "MIN_TOKEN_LENGTH",
    "SECURITY_HEADERS",
    "Guard",
    "check_token",
    "is_loopback",
    "new_token",
]

#: Cookie that carries the token once a URL with ``?token=`` was opened (``_PORT`` is
#: appended: cookies ignore ports, and two apps on one host must not clash).
COOKIE = "blobsift_token"
#: Largest accepted request body, in bytes.
MAX_BODY = 64 * 1024
#: Shortest access token accepted (``new_token`` makes 32 characters).
MIN_TOKEN_LENGTH = 16
#: The page's Content-Security-Policy: everything from the app itself, nothing inline.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: Headers on every response (the CSP is left off only for ``open_paths``).
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def new_token() -> str:
    """A fresh random access token (URL safe)."""
    return secrets.token_urlsafe(24)


def check_token(token: str | None) -> None:
    """Refuse an access token too short to resist guessing.

    Raises
    ------
    InvalidInputError
        If ``token`` has fewer than :data:`MIN_TOKEN_LENGTH` characters.
    """
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise InvalidInputError(
            f"the access token (--token) must have at least {MIN_TOKEN_LENGTH} characters; "
            f"got {len(token)}. "
            "Choose a longer one, or leave --token out to get a fresh random one."
        )


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
    """ASGI middleware enforcing the token, the Host and origin checks and the body limits.

    Parameters
    ----------
    app : ASGI app
    token : str or None
        The access token; None when the app is bound to loopback (then the Host check
        applies instead).
    max_body : int
        Largest request body in bytes.
    open_paths : sequence of str
        Paths served without the Content-Security-Policy (the debug mode's ``/docs``).
    """

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        max_body: int = MAX_BODY,
        open_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request, or pass it on (adding the token cookie when due)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        extra = dict(SECURITY_HEADERS)
        if scope.get("path") in self.open_paths:
            del extra["content-security-policy"]
        refusal = self._refusal(scope, headers)
        if refusal is None and self.token is not None and self._query_token(scope) is not None:
            extra["set-cookie"] = f"{_cookie_name(scope)}={self.token}; {_COOKIE_FLAGS}"
        send = _with_headers(send, extra)
        if refusal is not None:
            status, detail = refusal
            await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
            return
        await self.app(scope, self._limited(receive), send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        if self.token is None:
            host = _host_name(headers.get("host", ""))
            if host and not is_loopback(host):
                return 421, f"this server answers on loopback names only, not {host!r}."
        elif not self._authorised(scope, headers):
            return 401, "missing or wrong access token; open the URL the server printed."
        if scope["method"] in _WRITES:
            foreign = _foreign_origin(headers)
            if foreign is not None:
                return 403, (
                    f"refused a {scope['method']} from {foreign}: labels change only from "
                    "this app's own page (open the URL the server printed)."
                )
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
        offered.extend(_cookie_values(headers.get("cookie", ""), _cookie_name(scope)))
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


_COOKIE_FLAGS = "Path=/; HttpOnly; SameSite=Strict"


def _cookie_values(header: str, name: str) -> list[str]:
    """The values of cookie ``name`` in a ``Cookie`` header (``a=1; b=2``).

    Parsed pair by pair, so that another cookie of the same host with a value
    ``http.cookies.SimpleCookie`` rejects (quotes, JSON, spaces) leaves this one readable.
    """
    values = []
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            values.append(value.strip().strip('"'))
    return values


def _foreign_origin(headers: dict[str, str]) -> str | None:
    """Where a browser request came from, if not from this app's own origin; else None.

    A request without ``Origin`` and ``Sec-Fetch-Site`` (curl, httpx, scripts) is not a
    browser page's and passes; the token and Host checks cover it.
    """
    site = headers.get("sec-fetch-site", "").lower()
    if site in ("cross-site", "same-site"):
        return f"a {site} page"
    origin = headers.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin)
    own = headers.get("host", "").lower()
    if parts.scheme in ("http", "https") and own and parts.netloc.lower() == own:
        return None
    return f"origin {origin!r}"


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    """``send`` that adds ``extra`` headers to the response (replacing any of those names)."""
    added = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    names = {k for k, _ in added if k != b"set-cookie"}

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
            message = {**message, "headers": [*kept, *added]}
        await send(message)

    return sending
