"""The ``details`` of a diagnosis: provider text made readable (markup stripped, links kept as "text (url)"),
trimmed to :data:`DETAILS_LIMIT`, secrets redacted; and the headers read from a reply (Retry-After,
intuit_tid).
"""

from __future__ import annotations

import email.utils
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from sync.diagnosis.kinds import DETAILS_LIMIT, FaultError

# --------------------------------------------------------------------------------------------------
# Text helpers: readable, trimmed, no secrets

_ANCHOR = re.compile(
    r"<a\b[^>]*?\bhref\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+))[^>]*>(.{0,2000}?)</a\s*>", re.I | re.S
)
_LINK_SCHEME = re.compile(r"\s*(?:https?://|mailto:)", re.I)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_SCRIPT = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_MARKUP_DECL = re.compile(r"<![^>]*>|<\?[^>]*\?>")
#: Names whose value is a secret, in any case and spelling (``access_token``, ``accessToken``, ``access-token``,
#: ``x_refresh_token``, ``clientSecret``, ``Set-Cookie``...). ``SyncToken`` and ``token_type`` are not secrets.
_SECRET_NAME = (
    r"(?:[A-Za-z0-9]{1,24}[_-]){0,2}"
    r"(?:(?:access|refresh|id|auth|bearer|session|csrf|oauth|api|xsrf)[_-]?token|token|"
    r"client[_-]?secret|secret|password|passwd|api[_-]?key|"
    r"(?:proxy-)?authorization|set-cookie|cookie)"
)
_Q = r"(?:\\?[\"']|&quot;|&#3[49];|&apos;)"  # a quote, also JSON-escaped or as an HTML entity
#: Credentials of an Authorization header: an optional scheme, then ``k="v", k2="v2"`` parameters or one token.
_CREDENTIALS = (
    r"(?:(?:Bearer|Basic|Digest|OAuth|Negotiate|NTLM|Token|AWS4-HMAC-SHA256)\s+)?"
    r"(?:[\w-]+=(?:\"[^\"]*\"|&quot;.*?&quot;)(?:\s*,\s*[\w-]+=(?:\"[^\"]*\"|&quot;.*?&quot;))*"
    r"|[^\s,;\"'<>&]+)"
)
#: Cookies: ``name=value`` pairs and attributes (``Path=/``, ``HttpOnly``) joined by ``;``.
_COOKIES = r"[^\s;=,\"'<>]+=[^\s;\"'<>]*(?:\s*;\s*[^\s;=,\"'<>()]+(?:=[^\s;\"'<>]*)?)*"
_HEADER_VALUE = re.compile(
    r"(?<![\w-])(?P<key>(?:proxy-)?authorization)(?P<sep>\s*[:=]\s*)(?P<value>" + _CREDENTIALS + r")"
    r"|(?<![\w-])(?P<ckey>set-cookie|cookie)(?P<csep>\s*[:=]\s*)(?P<cvalue>" + _COOKIES + r")",
    re.I,
)
_KEY_VALUE = re.compile(
    r"(?<![\w-])(?P<key>" + _Q + r"?" + _SECRET_NAME + _Q + r"?)(?![\w-])(?P<sep>\s*[:=]\s*)"
    r"(?P<value>\\\"(?:[^\\]|\\(?!\"))*\\\"|\\\"[^\s\\]*"  # an escaped JSON string inside a string: \"...\"
    r"|&quot;.*?&quot;|&quot;[^\s&]*"  # HTML-escaped quotes
    r"|\"(?:[^\"\\]|\\.)*\"|\"[^\"\s]*|'[^']*'|'[^'\s]*"  # quoted (cut short: to the next space)
    r"|[^\s&,;}\])\"'<>]+)",  # unquoted, to the next separator
    re.I,
)
_XML_SECRET = re.compile(
    r"((?:<|&lt;)(?:[\w.-]+:)?(?P<tag>" + _SECRET_NAME + r")\b[^<>&]*(?:>|&gt;))"
    r"(?:[^<&]*(?=(?:<|&lt;)/(?:[\w.-]+:)?(?P=tag)\b)|[^<&\s]*)",  # to its closing tag, else to the next space
    re.I,
)
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # not the prose "Malformed bearer token: too short" (the gateway's own words) nor "Basic authentication"
    (re.compile(r"\b(Bearer|Basic|Digest)\s+(?!(?:tokens?|auth\w*|credentials?|realm|scheme)\b)"
                r"[A-Za-z0-9._~+/=:-]{6,}", re.I), r"\1 [redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?"), "[redacted]"),  # JWT / JWE
    (re.compile(r"\bAB11\d{9,}[A-Za-z0-9]{8,}"), "[redacted]"),  # Intuit refresh tokens
)


#: An unquoted value after ``key:`` that is a short word followed by more lower-case words is prose.
_PROSE_VALUE = re.compile(r"[A-Za-z][a-z]{0,7}\Z")
_PROSE_NEXT = re.compile(r" [a-z]{2,}\b")


def _redact_key_value(m: re.Match[str]) -> str:
    group = "value" if m.group("value") is not None else "cvalue"
    key = m.group("key") if group == "value" else m.group("ckey")
    sep = m.group("sep") if group == "value" else m.group("csep")
    value = m.group(group)
    if _PROSE_VALUE.match(value) and ":" in sep and "=" not in sep and _PROSE_NEXT.match(m.string, m.end(group)):
        return m.group(0)  # "token: too short or too long" is a sentence about a token, not a token
    head = m.string[m.start(group) : m.start(group) + 24]
    if re.match(r"(?:\\?[\"']|&quot;)?\s*(?:[\w-]+\s+)?\[redacted\]", head):  # a second pass changes nothing
        return m.group(0)
    for quote in ('\\"', "&quot;", '"', "'"):
        if value.startswith(quote):
            closed = len(value) >= 2 * len(quote) and value.endswith(quote)
            return f"{key}{sep}{quote}[redacted]{quote if closed else ''}"
    return f"{key}{sep}[redacted]"


def _redact(text: str) -> str:
    """Secrets out of provider text: the values of secret-named keys in every form (``key=v``,
    ``key: v``, ``"key": "v"``, ``\\"key\\":\\"v\\"``, ``<key>v</key>``, any case), header values
    (``Authorization:``, ``Cookie:``, ``Set-Cookie:`` to the end of the line), bearer/basic credentials,
    JWTs and Intuit refresh tokens. intuit_tid and request ids are kept. Run on the whole text *before*
    anything is trimmed."""
    text = _HEADER_VALUE.sub(_redact_key_value, text)
    text = _KEY_VALUE.sub(_redact_key_value, text)
    text = _XML_SECRET.sub(lambda m: f"{m.group(1)}[redacted]", text)
    for pattern, repl in _SHAPES:
        text = pattern.sub(repl, text)
    return text


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _trim(text: str, limit: int = DETAILS_LIMIT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


#: Markup longer than this is cut before the regexes run (they may backtrack on unclosed tags); details keep
#: 2,000 characters anyway.
MARKUP_SCAN_LIMIT = 20_000


#: The http(s) links of provider text: (text, url) as they read in ``details`` ("text (url)"), both plain text.
Links = list[tuple[str, str]]
_WEB_LINK = re.compile(r"https?://[^\s/]", re.I)


def _anchor(m: re.Match[str], links: Links | None = None) -> str:
    """One ``<a href=URL>text</a>`` → ``text (URL)``; just ``URL`` when the text is the URL; just the text
    for a link that means nothing outside the page (relative, ``javascript:``, ``#fragment``). An http(s) link
    shown as ``text (URL)`` is added to ``links`` (entities decoded, as ``details`` will read)."""
    url = next(g for g in m.group(1, 2, 3) if g is not None).strip()
    label = _collapse(_TAG.sub(" ", m.group(4)))
    if not _LINK_SCHEME.match(html.unescape(url)):
        return f" {label} "
    if not label or html.unescape(label).rstrip("/") == html.unescape(url).rstrip("/"):
        return f" {url} "
    if links is not None and _WEB_LINK.match(html.unescape(url)):
        links.append((_collapse(html.unescape(label)), html.unescape(url)))
    return f" {label} ({url}) "


def _strip_markup(text: str, links: Links | None = None) -> str:
    """Provider text with HTML in it: anchors → ``text (url)``, other tags dropped, entities decoded."""
    text = text[:MARKUP_SCAN_LIMIT]
    text = _ANCHOR.sub(lambda m: _anchor(m, links), text)
    return html.unescape(_TAG.sub("", text))


def _html_excerpt(text: str, links: Links | None = None) -> str:
    text = text[:MARKUP_SCAN_LIMIT]
    title_m = _TITLE.search(text)
    title = _collapse(html.unescape(_TAG.sub("", title_m.group(1)))) if title_m else ""
    anchored = _ANCHOR.sub(lambda m: _anchor(m, links), _MARKUP_DECL.sub(" ", _SCRIPT.sub(" ", text)))
    body = _collapse(html.unescape(_TAG.sub(" ", anchored)))
    if title and not body.lower().startswith(title.lower()):
        body = f"{title}: {body}" if body else title
    return body


def _reason(status: int | None) -> str:
    if status is None:
        return ""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _humanize_message(message: str | None) -> str | None:
    """``"message=ThrottleExceeded; errorCode=003001; statusCode=403"`` → ``"ThrottleExceeded"``."""
    if not message:
        return None
    m = re.match(r"\s*message\s*=\s*([^;]+)", message)
    return m.group(1).strip() if m else message


def _error_line(e: FaultError, links: Links | None = None) -> str:
    msg = _collapse(_strip_markup(_redact(_humanize_message(e.message) or ""), links))
    det = _collapse(_strip_markup(_redact(e.detail or ""), links))
    both = msg and det and not det.lower().startswith(msg.lower())
    text = f"{msg} — {det}" if both else (det or msg or "(no message)")
    if not e.code:
        line = text
    elif e.code.isdigit():
        line = f"{e.code} {text}"
    else:  # a named code reads as a heading: "AuthenticationFailed: Malformed bearer token"
        line = f"{e.code}: {text}" if text != "(no message)" else e.code
    if e.element and e.element not in line:
        line += f" (field: {e.element})"
    return line


def _shown_links(links: Iterable[tuple[str, str]], details: str) -> tuple[tuple[str, str], ...]:
    """The links whose ``text (url)`` the finished details still show (not cut, not redacted away), once each."""
    out: list[tuple[str, str]] = []
    for text, url in links:
        if (text, url) not in out and f"{text} ({url})" in details:
            out.append((text, url))
    return tuple(out[:50])


def _finish_details(lines: Sequence[str], intuit_tid: str | None) -> str:
    """The details text: lines joined, secrets redacted (before any cut), trimmed, the intuit_tid kept."""
    text = _redact("\n".join(line for line in lines if line))
    if intuit_tid:
        tid = _redact(_collapse(intuit_tid)[:200])
        text = _trim(text, DETAILS_LIMIT - len(tid) - 14) + f"\nintuit_tid: {tid}"
    return _trim(text)


# --------------------------------------------------------------------------------------------------
# Headers


def _header(headers: Mapping[str, str] | None, *names: str) -> str | None:
    if not headers:
        return None
    lower = {str(k).lower(): v for k, v in headers.items()}
    for name in names:
        value = lower.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return min(MAX_RETRY_AFTER, max(0.0, (when - datetime.now(UTC)).total_seconds()))
    return min(MAX_RETRY_AFTER, max(0.0, seconds)) if math.isfinite(seconds) else None


#: A Retry-After beyond an hour is not believed (a bogus header must not freeze a realm).
MAX_RETRY_AFTER = 3600.0


def _listify(value: Any) -> list[Any]:
    """A JSON value that may be one object or a list of them, as a list (None: empty)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
