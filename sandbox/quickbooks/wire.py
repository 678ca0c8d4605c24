"""Small wire-level helpers shared by the QuickBooks Online stand-in: times, money, ids, replies.

In: epoch seconds (the stand-in clock), JSON-able values, Decimals. Out: the strings and byte bodies QBO puts on
the wire.

Platform facts (Intuit developer docs, "Accounting API" entity pages and the public client libraries):
- ``MetaData.CreateTime`` / ``LastUpdatedTime`` are ISO-8601 seconds with the company's UTC offset
  (``2015-04-28T17:20:15-07:00``); the envelope's ``time`` carries milliseconds
  (``2021-03-18T09:01:12.000-07:00``). Sandbox companies are on US Pacific time.
- Every API answer carries an ``intuit_tid`` header (a transaction id support asks for).
- JSON answers are ``application/json;charset=UTF-8``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

try:
    from zoneinfo import ZoneInfo

    COMPANY_TZ: dt.tzinfo = ZoneInfo("America/Los_Angeles")
except Exception:  # pragma: no cover - no tz database on this machine
    COMPANY_TZ = dt.timezone(dt.timedelta(hours=-8))

JSON_TYPE = "application/json;charset=UTF-8"
XML_TYPE = "application/xml"
HTML_TYPE = "text/html; charset=utf-8"
CENT = Decimal("0.01")


@dataclass
class Reply:
    """One HTTP answer of the stand-in: status, raw body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """Encode ``payload`` as QBO does (compact JSON, UTF-8) into a Reply."""
    return Reply(status, dumps(payload), JSON_TYPE, dict(headers or {}))


def dumps(payload: Any) -> bytes:
    """Compact JSON bytes (QBO sends no whitespace between tokens)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def to_local(ts: float) -> dt.datetime:
    """Epoch seconds -> aware datetime in the company's time zone."""
    return dt.datetime.fromtimestamp(ts, tz=COMPANY_TZ)


def meta_time(ts: float) -> str:
    """``MetaData`` timestamp: ``2015-04-28T17:20:15-07:00``."""
    return to_local(ts).isoformat(timespec="seconds")


def envelope_time(ts: float) -> str:
    """The ``time`` of an answer envelope: ``2021-03-18T09:01:12.000-07:00``."""
    return to_local(ts).isoformat(timespec="milliseconds")


def local_date(ts: float) -> str:
    """The company-local date (``YYYY-MM-DD``) at ``ts``, as QBO defaults ``TxnDate``."""
    return to_local(ts).date().isoformat()


def parse_time(text: str) -> dt.datetime | None:
    """Parse an ISO-8601 date or date-time as QBO accepts it (``Z``, offsets, or none = company time).

    A ``+`` that a client forgot to URL-encode arrives as a space and is put back. Returns None when unparseable.
    """
    raw = text.strip().replace(" ", "+")
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=COMPANY_TZ)
    return value


def intuit_tid() -> str:
    """A random transaction id shaped like QBO's ``intuit_tid`` header (``1-65f0c0de-0123...``)."""
    return f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"


def money(value: Any) -> Decimal:
    """A JSON number (or numeric string) as an exact Decimal; raises ValueError when it is not a number."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def cents(value: Decimal) -> Decimal:
    """Round half up to the cent, as QBO rounds line amounts and tax."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def amount_out(value: Decimal) -> float:
    """A Decimal amount as the JSON number QBO sends (``120.0``, ``4495.16``)."""
    return float(cents(value))
