"""Who may reach a stand-in, and who may change it through its control endpoints (``/_control/...``).

The stand-ins listen on loopback only, but a web page from any site, open in the same browser, can still send
requests there. So:

- every request (the APIs, the pages, the control endpoints, the WebSocket) is refused with 403 when its
  ``Host`` is not a loopback name: an IP literal in 127.0.0.0/8, ``[::1]`` or ``localhost``
  (:class:`LoopbackHostMiddleware`). A site that points its own domain at 127.0.0.1 (DNS rebinding) is
  same-origin to the browser, so it could otherwise *read* what the stand-in answers (the tokens of
  ``/_control/realms/{realm}/tokens``), but it names itself in ``Host`` (``evil.example``,
  ``127.0.0.1.nip.io``);
- a request that changes something (:func:`refusal`) is refused
  - with 403 when a browser says it comes from another origin: ``Sec-Fetch-Site`` other than ``same-origin`` or
    ``none`` (typed in the address bar), or an ``Origin`` that is not this server's own: a "simple"
    cross-origin POST (``text/plain`` or a form, no preflight) reaches the server even though the page cannot
    read the answer, and for ``/_control/drive/...`` that would be a click sent to syncbot signed as Slack
    signs it (CSRF);
  - with 415 when its body is not of the expected type (JSON for the control APIs, a form for the QuickBooks
    panel): a cross-origin page cannot send ``application/json`` without a CORS preflight, which the stand-ins
    never grant.

Programs (the tests, ``syncbot demo``, curl, syncbot itself) talk to ``127.0.0.1`` and send neither browser
header, and are let through.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


#: What a Host header may look like (RFC 9110 uri-host [":" port]): a name or IPv4 literal, or a bracketed IPv6
#: literal, then digits of a port; "127.0.0.1:8700@evil.com" and the like are not hosts.
_HOST_SHAPE = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def host_name(host: str) -> str:
    """The name part of a ``Host`` header: ``127.0.0.1:8700`` -> ``127.0.0.1``, ``[::1]:80`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.index("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_host(host: str) -> bool:
    """Whether a ``Host`` header names this machine's loopback: ``localhost``, an IP literal in 127.0.0.0/8, or
    ``::1`` (with or without a port). ``127.0.0.1.nip.io`` and other names that merely resolve there are not."""
    if not _HOST_SHAPE.fullmatch(host.strip()):  # a name or an IP literal with an optional port, nothing else
        return False
    name = host_name(host)
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback and (address.version == 4 or address == ipaddress.IPv6Address("::1"))


def host_refusal(host: str) -> str | None:
    """The sentence a request with this ``Host`` is refused with (403), or None when it names loopback."""
    if is_loopback_host(host):
        return None
    return (f"refused: the stand-in answers loopback names only (127.0.0.1, localhost, [::1]), not Host "
            f"{host[:80]!r}; open it at http://127.0.0.1:<port>/")


class LoopbackHostMiddleware:
    """ASGI middleware: every HTTP request and WebSocket whose ``Host`` is not loopback gets 403 and a sentence
    (JSON ``{"ok": false, "error"}`` when the client asks for JSON or calls an API, plain text otherwise)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        message = host_refusal(headers.get("host", ""))
        if message is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":  # refused before the handshake: the client sees HTTP 403
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        path = str(scope.get("path", ""))
        as_json = path.startswith(("/_control/", "/api/", "/v3/", "/oauth2/", "/v2/")) and \
            not path.startswith("/_control/panel")
        body: bytes
        if as_json:
            body, ctype = json.dumps({"ok": False, "error": message}).encode(), b"application/json"
        else:
            body, ctype = (message + "\n").encode(), b"text/plain; charset=utf-8"
        start: dict[str, Any] = {"type": "http.response.start", "status": 403,
                                 "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]}
        await send(start)
        await send({"type": "http.response.body", "body": body})


def refusal(request: Request, body: bytes, expected: str = JSON) -> tuple[int, str] | None:
    """Why a request that changes state must be refused, as (HTTP status, message); None when it may go on.

    ``body`` is the request's raw body (an empty body needs no Content-Type); ``expected``: its media type.
    The ``Host`` is checked here as well, though :class:`LoopbackHostMiddleware` refuses a foreign one first."""
    host_problem = host_refusal(request.headers.get("host", ""))
    if host_problem is not None:
        return 403, host_problem
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        return 403, (f"refused: a page of another site may not drive the stand-in (Sec-Fetch-Site: {site}); "
                     "use the stand-in's own page")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    if origin is not None and origin.rstrip("/").lower() != own:
        return 403, (f"refused: a page of another origin ({origin}) may not drive the stand-in; "
                     "use the stand-in's own page")
    if body and _media_type(request) != expected:
        return 415, f"send the body as {expected} (Content-Type: {expected}), not {_media_type(request) or 'none'}"
    return None
