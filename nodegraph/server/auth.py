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
        ok = given is not None and hmac.compare_digest(given.encode(), expected.encode())
        if ok:
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
