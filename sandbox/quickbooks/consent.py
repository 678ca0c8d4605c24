"""Click "Connect" on the stand-in's Intuit consent page, as a person in a browser would.

Used by the tests and the offline demo to finish a real OAuth authorization-code flow over HTTP: GET the
authorize URL, submit the page's form, and read the redirect's ``code``, ``state`` and ``realmId``.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urljoin, urlparse

import httpx

_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def click_connect(authorize_url: str, realm_id: str | None = None, timeout: float = 10.0) -> dict[str, str]:
    """Approve the consent page at ``authorize_url`` (optionally choosing ``realm_id``).

    Returns the callback's query parameters (``code``, ``state``, ``realmId``). Raises RuntimeError when the
    page refuses the request (its reason in the message).
    """
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        page = client.get(authorize_url)
        if page.status_code != 200:
            raise RuntimeError(f"consent page refused the request ({page.status_code}): {page.text[:300]}")
        form = {unescape(k): unescape(v) for k, v in _INPUT.findall(page.text)}
        form["decision"] = "connect"
        if realm_id:
            form["realm"] = realm_id
        else:
            match = re.search(r'<option value="([^"]+)"', page.text)
            if match:
                form["realm"] = unescape(match.group(1))
        resp = client.post(urljoin(authorize_url, "/connect/oauth2/approve"), data=form)
        if resp.status_code != 302:
            raise RuntimeError(f"approve refused ({resp.status_code}): {resp.text[:300]}")
    query = parse_qs(urlparse(resp.headers["location"]).query)
    return {k: v[0] for k, v in query.items()}
