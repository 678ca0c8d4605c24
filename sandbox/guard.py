"""Who may change a stand-in through its control endpoints (``/_control/...``).

The stand-ins listen on loopback only, but a web page from any site, open in the same browser, can still send
requests there: a "simple" cross-origin POST (``text/plain`` or a form, no preflight) reaches the server even
though the page cannot read the answer. For ``/_control/drive/...`` that would be a click sent to syncbot signed
as Slack signs it (CSRF). So a request that changes something is refused

- with 403 when a browser says it comes from another origin: ``Sec-Fetch-Site`` other than ``same-origin`` or
  ``none`` (typed in the address bar), or an ``Origin`` that is not this server's own;
- with 403 when its ``Host`` is not a loopback name (127.x.x.x, ``localhost``, ``[::1]``): a site that points
  its own domain at 127.0.0.1 (DNS rebinding) is then same-origin to the browser, but names itself in ``Host``;
- with 415 when its body is not of the expected type (JSON for the control APIs, a form for the QuickBooks
  panel): a cross-origin page cannot send ``application/json`` without a CORS preflight, which the stand-ins
  never grant.

Programs (the tests, ``syncbot demo``, curl) send neither header and are let through.
"""

from __future__ import annotations

from starlette.requests import Request

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def refusal(request: Request, body: bytes, expected: str = JSON) -> tuple[int, str] | None:
    """Why a request that changes state must be refused, as (HTTP status, message); None when it may go on.

    ``body`` is the request's raw body (an empty body needs no Content-Type); ``expected``: its media type."""
    host = request.headers.get("host", "").lower()
    hostname = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
    if not (hostname in ("localhost", "::1") or hostname.startswith("127.")):
        return 403, f"refused: the stand-in answers loopback names only, not Host {host[:80]!r}"
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
