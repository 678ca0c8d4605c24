"""Text for Block Kit: mrkdwn escaping, cutting to Slack's limits, times in the reader's zone, names.

Slack treats ``&``, ``<`` and ``>`` as control characters in mrkdwn and in a message's ``text``: anything that
did not come from syncbot itself (QuickBooks details, record names, people's names, filter words) is escaped
with :func:`escape_mrkdwn` so that ``<!channel>`` or ``<https://evil|click>`` shows as typed and never pings
or links (https://docs.slack.dev/messaging/formatting-message-text, "Escaping text"). Text objects carrying
such text are also sent with ``verbatim: true`` so Slack does not auto-link bare URLs or names in them.

The one exception is the provider's own links in its details (:func:`linked_mrkdwn`): an HTML anchor
``<a href="https://...">text</a>``, a link the diagnosis already wrote as ``text (https://...)`` (its
``(text, url)`` pairs are stored with the entry), and a bare ``https://...`` become Slack links
``<https://...|text>`` (or ``<https://...>``); only http and https, never a URL written inside ``<...>``
(Slack's own link syntax, as typed by someone), never a text that names another address than the link's, and
everything else escaped. A link is kept whole or not at all when the text is cut.

Limits (a message or view carrying one text over its limit is refused whole, ``invalid_blocks``):

* section ``text`` 3000 characters, each of at most 10 ``fields`` 2000
  (https://docs.slack.dev/reference/block-kit/blocks/section-block);
* header 150, plain_text only (https://docs.slack.dev/reference/block-kit/blocks/header-block);
* button text 75, value 2000, url 3000 (https://docs.slack.dev/reference/block-kit/block-elements/button-element);
* context: at most 10 elements (https://docs.slack.dev/reference/block-kit/blocks/context-block);
* 50 blocks in a message, 100 in a modal or Home tab (https://docs.slack.dev/reference/block-kit/blocks);
* modal title, submit and close 24 (https://docs.slack.dev/reference/views/modal-views);
* input block label and hint 2000 (https://docs.slack.dev/reference/block-kit/blocks/input-block);
* confirmation dialog: title 100, text 300, confirm and deny 30
  (https://docs.slack.dev/reference/block-kit/composition-objects/confirmation-dialog-object);
* a message's ``text`` is cut by Slack at 40,000 characters (https://docs.slack.dev/reference/methods/chat.postMessage),
  and clients refuse far less in practice (situation SL-09): syncbot keeps it at most :data:`FALLBACK_TEXT_MAX`.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_MAX = 10
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
BUTTON_URL_MAX = 3000
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 2000
ACTIONS_ELEMENTS_MAX = 25
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
MODAL_TITLE_MAX = 24
PRIVATE_METADATA_MAX = 3000
INPUT_LABEL_MAX = 2000
INPUT_HINT_MAX = 2000
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
CONFIRM_BUTTON_MAX = 30
#: syncbot's own budget for a message's plain ``text`` fallback (Slack's hard cut is 40,000).
FALLBACK_TEXT_MAX = 3000
#: How much of the provider's details a message shows (the whole text is in the sync log).
DETAILS_SHOWN_MAX = 1800

ELLIPSIS = "…"
_PARTIAL_ENTITY = re.compile(r"&[#a-zA-Z0-9]*$")
#: Control characters other than newline and tab, and the bidi embedding, override and isolate characters
#: (U+202A-U+202E, U+2066-U+2069) that would make text read in another order than it was written.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")

TzLike = str | dt.tzinfo | None

PROVIDER_NAMES = {"quickbooks": "QuickBooks"}
ENTITY_NAMES = {"contact": "Contact", "item": "Item", "invoice": "Invoice", "payment": "Payment"}


# ---------------------------------------------------------------------------------------------- escaping


def escape_mrkdwn(text: object) -> str:
    """``text`` with Slack's three control characters replaced by entities (``&`` first), and without control
    characters (newline and tab kept) or bidi overrides (see :func:`clean`): what people typed is shown as
    typed, never reordered or hidden.

    >>> escape_mrkdwn("<!channel> & <https://evil|click>")
    '&lt;!channel&gt; &amp; &lt;https://evil|click&gt;'
    """
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clean(text: object) -> str:
    """``text`` as a string without control characters other than newline and tab (a carriage return ends a
    line), nor the bidi embedding, override and isolate characters (``None`` gives "")."""
    if text is None:
        return ""
    return _CONTROL.sub("", str(text).replace("\r\n", "\n").replace("\r", "\n"))


def truncate(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``ellipsis`` when cut (for plain_text)."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))].rstrip() + ellipsis


def truncate_mrkdwn(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """Already escaped mrkdwn cut to at most ``limit`` characters without splitting an ``&amp;``-style entity
    or a ``<...>`` link or mention (escaped text has no other ``<``)."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(ellipsis))]
    cut = _PARTIAL_ENTITY.sub("", cut)
    opened = cut.rfind("<")
    if opened > cut.rfind(">"):
        cut = cut[:opened]
    return cut.rstrip() + ellipsis


def mrkdwn(text: object, limit: int = SECTION_TEXT_MAX) -> str:
    """Untrusted text made safe for mrkdwn: cleaned, escaped, and cut to ``limit`` characters.

    The raw text is cut first (escaping only lengthens it), so 100 KB of details costs no more than a page.
    """
    raw = clean(text)[: limit + 1]
    return truncate_mrkdwn(escape_mrkdwn(raw), limit)


def code_block(text: object, limit: int, *, links: Iterable[Sequence[str]] | None = None) -> str:
    """Untrusted text in a mrkdwn code block of at most ``limit`` characters, fences included.

    Triple backticks inside are turned into quotes so they cannot close the block early. With ``links`` (the
    provider's ``(text, url)`` pairs, possibly empty) its links are made Slack links (:func:`linked_mrkdwn`):
    Slack keeps links inside a code block (a ``rich_text_preformatted`` holds text and link elements).
    """
    body = clean(text).replace("```", "'''").strip("\n") or " "
    inner = mrkdwn(body, max(1, limit - 8)) if links is None else linked_mrkdwn(body, max(1, limit - 8), links)
    return "```\n" + inner + "\n```"


# ------------------------------------------------------------------------------------------------ links

#: A URL longer than this stays text (Slack's own limit for a button's url is 3000).
LINK_URL_MAX = 2000
LINK_TEXT_MAX = 300
_HTML_ANCHOR = re.compile(
    r"<a\b[^<>]*?\bhref\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+))[^<>]*>(.{0,2000}?)</a\s*>", re.I | re.S)
_TAGS = re.compile(r"</?[A-Za-z][^<>]*>")
#: A bare web address: not right after ``<`` (Slack's link syntax typed by someone, shown as typed) nor inside a
#: word; it ends before spaces, quotes, ``<``, ``>``, ``|`` and backticks.
_BARE_URL = r"(?<![<\w@/.])https?://[^\s<>\"'`|]+"
_URL_TAIL = ".,;:!?'\"*_~"
_ADDRESS = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*://|www\.)|^\s*[\w-]+(?:\.[\w-]+)+\.[a-z]{2,}(?:[/:?#]|\s*$)", re.I)
_UNSAFE_IN_URL = re.compile(r"[\s<>|\"`\x00-\x1f\x7f]")


def _trim_url(url: str) -> str:
    """A bare URL without the punctuation that ends the sentence around it (a ``)`` only when unbalanced)."""
    while url:
        closer = url[-1] in ")]}" and url.count(url[-1]) > url.count({")": "(", "]": "[", "}": "{"}[url[-1]])
        if url[-1] not in _URL_TAIL and not closer:
            break
        url = url[:-1]
    return url


def _address_of(text: str) -> str:
    t = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text.strip(), flags=re.I)
    return t.removeprefix("www.").rstrip("/").lower()


def slack_link(url: str, text: str | None = None) -> str | None:
    """A Slack link ``<url|text>`` (``<url>`` without text, or when the text names another address than ``url``:
    a link never reads as going somewhere it does not), or None when ``url`` is not an http(s) URL or is too long.

    The URL is made safe for Slack's syntax: spaces, quotes, ``<``, ``>`` and ``|`` percent-encoded, ``&`` as
    ``&amp;``; the text is cleaned, collapsed to one line, cut and escaped."""
    url = clean(url).strip()
    if not re.match(r"https?://[^\s/<>|]", url, re.I):
        return None
    safe = _UNSAFE_IN_URL.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), url).replace("&", "&amp;")
    if len(safe) > LINK_URL_MAX:
        return None
    label = re.sub(r"\s+", " ", clean(text or "")).strip()
    if label and _ADDRESS.match(label) and _address_of(label) != _address_of(url):
        label = ""  # "https://intuit.com" over a link to somewhere else: show where it really goes
    if not label or label == url:
        return f"<{safe}>"
    return f"<{safe}|{escape_mrkdwn(truncate(label, LINK_TEXT_MAX))}>"


def _link_pieces(text: str, known: Sequence[tuple[str, str]]) -> list[tuple[str, str | None]]:
    """``text`` as pieces ``(shown, url)``: plain text (url None) and links (the text shown and its url)."""
    pieces: list[tuple[str, str | None]] = []
    known = sorted({(t, u) for t, u in known if t and u}, key=lambda tu: -len(tu[0]) - len(tu[1]))
    written = "|".join(re.escape(f"{t} ({u})") for t, u in known)
    pattern = re.compile((f"(?P<known>{written})|" if written else "") + f"(?P<bare>{_BARE_URL})", re.I)
    by_text = {f"{t} ({u})": (t, u) for t, u in known}
    last = 0
    for m in pattern.finditer(text):
        if m.lastgroup == "known":
            label, url = by_text.get(m.group(), (m.group(), ""))
            pieces.append((text[last:m.start()], None))
            pieces.append((label, url))
            last = m.end()
        else:
            url = _trim_url(m.group())
            pieces.append((text[last:m.start()], None))
            pieces.append((url, url))
            last = m.start() + len(url)
    pieces.append((text[last:], None))
    return pieces


def linked_mrkdwn(text: object, limit: int, links: Iterable[Sequence[str]] = ()) -> str:
    """Untrusted text as mrkdwn of at most ``limit`` characters whose web links are Slack links.

    In: the text (plain text that may hold HTML anchors and bare URLs), the limit, and the provider's links as
    ``(text, url)`` pairs that the text shows as ``text (url)``. Out: escaped mrkdwn where each of those, each
    ``<a href="http(s)://...">text</a>`` and each bare ``http(s)://...`` is a link (:func:`slack_link`); any other
    anchor keeps its text only (``mailto:`` its text and address), everything else is escaped; cut with an
    ellipsis between pieces, never inside a link or an entity.
    """
    raw = clean(text)
    scan = max(limit * 4, 4000)
    cut_raw = len(raw) > scan
    raw = raw[:scan]
    known = [(str(t), str(u)) for t, u in (tuple(x)[:2] for x in links if len(tuple(x)) >= 2)]
    pieces: list[tuple[str, str | None]] = []
    last = 0
    for m in _HTML_ANCHOR.finditer(raw):
        pieces.extend(_link_pieces(raw[last:m.start()], known))
        url = html.unescape(next(g for g in m.group(1, 2, 3) if g is not None)).strip()
        label = re.sub(r"\s+", " ", html.unescape(_TAGS.sub(" ", m.group(4)))).strip()
        if re.match(r"https?://", url, re.I):
            pieces.append((label or url, url))
        elif url.lower().startswith("mailto:") and url[7:]:
            pieces.append((f"{label} ({url[7:]})" if label and label != url[7:] else url[7:], None))
        else:
            pieces.append((label, None))
        last = m.end()
    pieces.extend(_link_pieces(raw[last:], known))

    out: list[str] = []
    used = 0
    room = limit - len(ELLIPSIS)  # what may be used while an ellipsis may still have to follow
    for index, (shown, href) in enumerate(pieces):
        rendered = (slack_link(href, shown) if href else None) or escape_mrkdwn(shown)
        last = index == len(pieces) - 1 and not cut_raw
        if used + len(rendered) <= (limit if last else room):
            out.append(rendered)
            used += len(rendered)
            continue
        out.append(_PARTIAL_ENTITY.sub("", escape_mrkdwn(shown)[: max(0, room - used)]).rstrip() + ELLIPSIS)
        return "".join(out)
    return "".join(out) + (ELLIPSIS if cut_raw else "")


def first_line(text: object, limit: int = 150) -> str:
    """The first non-empty line of untrusted text, escaped and cut (for compact lines)."""
    for line in clean(text).splitlines():
        if line.strip():
            return mrkdwn(line.strip(), limit)
    return ""


def plain(text: object, limit: int) -> str:
    """Text for a plain_text object: cleaned and cut; never empty (Slack refuses empty text)."""
    value = truncate(clean(text).strip(), limit)
    return value or "-"


def join_within(lines: list[str], limit: int, more: str = "_…and {n} more: see the sync log._",
                total: int | None = None, sep: str = "\n") -> str:
    """Escaped ``lines`` joined while they fit in ``limit`` characters, then a note counting the rest
    (``more`` with ``{n}``), so a cut list still says how much it left out. ``total`` is the full count when
    ``lines`` is already a prefix of a longer list."""
    total = max(total or 0, len(lines))
    reserve = len(more) + 12
    out: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + len(sep) + reserve > limit:
            break
        out.append(line)
        used += len(line) + len(sep)
    if len(out) < total:
        out.append(more.format(n=f"{total - len(out):,}"))
    return sep.join(out)


# ------------------------------------------------------------------------------------------------ times


def zone(tz: TzLike) -> dt.tzinfo:
    """The time zone ``tz`` names (an IANA name as users.info gives it, or a tzinfo); UTC when unknown."""
    if tz is None or tz == "":
        return dt.UTC
    if isinstance(tz, dt.tzinfo):
        return tz
    try:
        return ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _local(when: dt.datetime, tz: TzLike) -> dt.datetime:
    if when.tzinfo is None:  # stored times are UTC; SQLite may drop the zone
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(zone(tz))


def _clock(local: dt.datetime) -> str:
    hour = local.hour % 12 or 12
    return f"{hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"


def format_time(when: dt.datetime | None, tz: TzLike, *, year: bool = True) -> str:
    """``when`` in the reader's zone, e.g. ``Nov 30, 2026 9:05 AM EST`` (``never`` for None)."""
    if when is None:
        return "never"
    local = _local(when, tz)
    day = f"{local:%b} {local.day}, {local.year}" if year else f"{local:%b} {local.day}"
    return f"{day} {_clock(local)} {local.tzname() or ''}".rstrip()


def format_date(when: dt.datetime | None, tz: TzLike) -> str:
    """``when``'s date in the reader's zone, e.g. ``Nov 30, 2026``."""
    if when is None:
        return "never"
    local = _local(when, tz)
    return f"{local:%b} {local.day}, {local.year}"


def utc_stamp(when: dt.datetime | None) -> str:
    """``when`` in UTC as support reads it, e.g. ``2026-11-30 14:05:00 UTC``."""
    if when is None:
        return "unknown"
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return f"{when.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


# ------------------------------------------------------------------------------------------------ words


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 record``, ``3 records``."""
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def signed(count: int) -> str:
    """``+3``, ``-2``, ``±0``."""
    return f"+{count:,}" if count > 0 else (f"{count:,}" if count < 0 else "±0")


def actor_name(actor: str | None) -> str:
    """Who acted, as shown (never a mention): ``syncbot`` for the system, else the stored name as is."""
    name = clean(actor).strip()
    return "syncbot" if not name or name == "system" else name


def provider_name(provider: str | None) -> str:
    """``QuickBooks`` for ``quickbooks``."""
    return PROVIDER_NAMES.get((provider or "quickbooks").lower(), clean(provider) or "QuickBooks")


def entity_name(entity: str | None) -> str:
    """``Invoice`` for ``invoice``."""
    return ENTITY_NAMES.get((entity or "").lower(), clean(entity).capitalize() or "Record")


def record_name(entity: str | None, label: str | None, record_id: Any = None) -> str:
    """A record in the product's words, unescaped: ``Invoice INV-1042``, ``Payment 7``, ``Contact #12``."""
    kind = entity_name(entity)
    name = clean(label).strip()
    if not name:
        return f"{kind} #{record_id}" if record_id is not None else kind
    if name.lower().startswith(kind.lower()):
        return name
    return f"{kind} {name}"


def direction_text(direction: str | None, provider: str | None = None) -> str:
    """``Push: JobsiteOn → QuickBooks`` or ``Pull: QuickBooks → JobsiteOn``."""
    other = provider_name(provider)
    if (direction or "push") == "pull":
        return f"Pull: {other} → JobsiteOn"
    return f"Push: JobsiteOn → {other}"


#: The date token a card shows a time with: Slack draws it in each reader's own time zone
#: (https://docs.slack.dev/messaging/formatting-message-text, "Date formatting": ``<!date^UNIX^{tokens}|fallback>``;
#: ``{date_short_pretty}`` is "today", "yesterday" or "Dec 7", ``{time}`` the reader's clock).
SLACK_DATE_TOKENS = "{date_short_pretty} at {time}"


def slack_date(when: dt.datetime | None, tz: TzLike, tokens: str = SLACK_DATE_TOKENS) -> str:
    """``when`` as Slack's date formatting, ``<!date^1765090800^{date_short_pretty} at {time}|Dec 7, 2026 5:27 AM
    CST>``: each reader sees it in their own time zone; the fallback (clients that cannot format it, and the plain
    ``text``) is :func:`format_time` in ``tz``. ``never`` for None."""
    if when is None:
        return "never"
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    fallback = format_time(when, tz).replace("|", "/").replace(">", "")
    return f"<!date^{int(when.timestamp())}^{tokens}|{fallback}>"


def duration_text(seconds: float) -> str:
    """A span as people say it on a card: ``40 s``, ``5 min``, ``2 h``, ``3 days``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400 * 2:
        hours = seconds / 3600
        return f"{hours:.0f} h" if hours >= 10 or hours == int(hours) else f"{hours:.1f} h"
    return f"{int(seconds // 86400)} days"


#: A connection's state in words, with its dot (the App Home's card, `/sync-log status`).
CONNECTION_STATUS = {
    "connected": (":large_green_circle:", "Connected"),
    "expired": (":red_circle:", "Authentication expired: reconnect"),
    "rate_limited": (":large_yellow_circle:", "Paused: rate limit exceeded"),
    "revoked": (":red_circle:", "Disconnected: reconnect"),
    "suspended": (":red_circle:", "QuickBooks subscription inactive"),
}
