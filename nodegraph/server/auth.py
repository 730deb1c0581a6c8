"""The access token: required on every HTTP and websocket request when set (always, for a non-local host).

The token may come as ``?token=`` (the URL printed at start; the page then keeps it in a cookie), an
``Authorization: Bearer`` header, or an ``X-Nodegraph-Token`` header. Compared in constant time.
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from typing import Any, Callable
from urllib.parse import parse_qs

COOKIE = "nodegraph_token"
CSRF_HEADER = "x-nodegraph-csrf"  # and ``?csrf=`` where a header cannot be set (websocket, sendBeacon)


def is_local(host: str) -> bool:
    """Whether ``host`` (a name or an address to bind) is this machine's loopback only: ``localhost``, any of
    127.0.0.0/8, ``::1``. Parsed as an address, so ``127.evil.example`` is not local."""
    name = host.strip().lower().removeprefix("[").removesuffix("]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """``host`` as it goes in a URL: an IPv6 address in brackets (``[::1]``), anything else as it is."""
    name = host.removeprefix("[").removesuffix("]")
    try:
        return f"[{name}]" if ipaddress.ip_address(name).version == 6 else name
    except ValueError:
        return name


def new_token() -> str:
    return secrets.token_urlsafe(18)


def new_csrf_secret() -> str:
    """A per-server secret that only the editor's own page can learn (``GET /api/session``)."""
    return secrets.token_urlsafe(32)


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def csrf_given(scope: dict, headers: dict[str, str]) -> str | None:
    """The CSRF secret a request carries: the ``X-Nodegraph-CSRF`` header, else the ``csrf`` query parameter."""
    if headers.get(CSRF_HEADER):
        return headers[CSRF_HEADER]
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("csrf")
    return values[0] if values else None


def from_a_browser(headers: dict[str, str]) -> bool:
    """Whether a request shows what every browser adds and a page cannot remove: an ``Origin``, a
    ``Sec-Fetch-*`` header or a cookie. Programs (curl, Python clients) send none and need no CSRF secret:
    they could read it from ``/api/session`` anyway, and no other web page can make a request without them."""
    return "origin" in headers or "cookie" in headers or any(k.startswith("sec-fetch-") for k in headers)


def request_token(scope: dict) -> tuple[str | None, bool]:
    """The token a request carries, and whether it came in the query string (then we set the cookie)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0], True
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    if headers.get("x-nodegraph-token"):
        return headers["x-nodegraph-token"], False
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    if "cookie" in headers:
        cookie = SimpleCookie()
        try:
            cookie.load(headers["cookie"])
        except Exception:
            return None, False
        if COOKIE in cookie:
            return cookie[COOKIE].value, False
    return None, False


class TokenGuard:
    """ASGI middleware: refuse HTTP (401) and websocket (close 4401) requests without the right token."""

    def __init__(self, app: Any, get_token: Callable[[], str | None]) -> None:
        self.app = app
        self.get_token = get_token

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        expected = self.get_token()
        if scope["type"] not in ("http", "websocket") or not expected:
            return await self.app(scope, receive, send)
        given, from_query = request_token(scope)
        if _same(given, expected):
            if from_query and scope["type"] == "http":
                return await self.app(scope, receive, _with_cookie(send, expected))
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": "access token required"})
            return
        body = (b"This nodegraph server needs its access token: open the URL printed when it started "
                b"(it ends with ?token=...), or send the header 'Authorization: Bearer <token>'.\n")
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _with_cookie(send: Any, token: str) -> Any:
    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers.append((b"set-cookie", f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict".encode()))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_BODY_BYTES = 16 * 1024 * 1024  # an /api request body; the largest example graph is under 40 KB


class SameOriginGuard:
    """ASGI middleware: only the editor's own page may drive the server, whatever the token mode.

    - ``Host`` must be one of the server's own names (loopback names and the bound address), so a page on a
      rebound DNS name (DNS rebinding) gets 421 on every request; skipped when bound to every interface
      (``0.0.0.0``/``::``, where the token is required and the host's names are not known here).
    - A request that changes state (not GET/HEAD/OPTIONS) and every websocket handshake that carries an
      ``Origin`` must come from the server's own origin (``http://<Host>``): a page of another site, of
      another port of this host, or a ``file://`` page (Origin ``null``) gets 403, or its websocket is closed.
      Browsers always send Origin there; a client that sends none (curl, Python) is not a browser page.
    - The same requests, when they come from a browser (:func:`from_a_browser`), must also carry the server's
      CSRF secret (``X-Nodegraph-CSRF`` or ``?csrf=``, 403 otherwise), which the editor's page reads from
      ``GET /api/session``: a page of another origin cannot read that answer, so even one whose Origin
      passed (a same-site page in token mode sends the SameSite cookie) cannot change anything.
    - A state-changing ``/api`` request with a body must say ``Content-Type: application/json``, so no HTML
      form or "simple" cross-site request can carry one (415), and at most ``MAX_BODY_BYTES`` (413).
    """

    def __init__(self, app: Any, bound_host: str, csrf: str | None = None) -> None:
        self.app = app
        self.csrf = csrf
        self.check_host = bound_host not in ("0.0.0.0", "::", "")
        self.names = {"localhost", url_host(bound_host).lower(), bound_host.lower()}

    def _host_ok(self, host: str) -> bool:
        if not self.check_host:
            return True
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if host.startswith("["):
            name = host[: host.index("]") + 1]
        return name.lower() in self.names or is_local(name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        origin = headers.get("origin")
        changes_state = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        if not self._host_ok(host):
            return await _refuse(scope, send, 421, f"this server does not answer to the name {host!r}")
        if changes_state and origin is not None and origin.lower() not in {f"http://{host}".lower(),
                                                                           f"https://{host}".lower()}:
            return await _refuse(scope, send, 403, f"requests from {origin!r} may not drive this server")
        if (changes_state and self.csrf and from_a_browser(headers)
                and not _same(csrf_given(scope, headers), self.csrf)):
            return await _refuse(scope, send, 403, "this request lacks the editor page's CSRF secret "
                                                   "(reload the page)")
        if (scope.get("path") == "/api/session"
                and headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")):
            return await _refuse(scope, send, 403, "the session secret is for the editor's own page")
        if scope["type"] == "http" and changes_state and scope.get("path", "").startswith("/api/"):
            has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if has_body and kind != "application/json":
                return await _refuse(scope, send, 415, "send the request body as Content-Type: application/json")
            if "transfer-encoding" in headers or not headers.get("content-length", "0").isdigit():
                return await _refuse(scope, send, 411, "send the request body with a Content-Length")
            if int(headers.get("content-length", "0")) > MAX_BODY_BYTES:
                return await _refuse(scope, send, 413, f"request bodies are limited to "
                                                       f"{MAX_BODY_BYTES // (1024 * 1024)} MiB")
        return await self.app(scope, receive, send)


async def _refuse(scope: dict, send: Any, status: int, reason: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4403, "reason": reason[:120]})
        return
    body = (reason + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
