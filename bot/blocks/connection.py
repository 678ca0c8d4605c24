"""A connection's authorization in messages: when it ends, the expiry reminder, the Reconnect link, its token state
and `/sync-log status`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from bot.blocks import ids
from bot.blocks.incidents import company_label, connection_label
from bot.blocks.kit import (
    Block,
    Message,
    actions,
    button,
    context,
    message,
    section,
)
from bot.blocks.messages import EXPIRY_ADVICE, STATUS_EMOJI, attr, notice_line
from bot.blocks.text import (
    CONNECTION_STATUS,
    TzLike,
    format_time,
    plural,
    provider_name,
    slack_date,
)

# ------------------------------------------------------------------------------------------------ expiry


def authorization_ends(connection: Any) -> dt.datetime | None:
    """When the connection's authorization runs out (UTC): the earlier of Intuit's rolling 100-day and absolute
    five-year limits; None when unknown."""
    ends = [t if t.tzinfo else t.replace(tzinfo=dt.UTC)
            for t in (attr(connection, "refresh_expires_at"), attr(connection, "refresh_hard_expires_at"))
            if t is not None]
    return min(ends) if ends else None


def expiry_reminder(connection: Any, days_left: int, *, reconnect_url: str | None = None,
                    account_name: str | None = None, reason: str = "refresh", sample: bool = False,
                    tz: TzLike = None, notice: str | None = None) -> Message:
    """A warning that the connection's authorization runs out in ``days_left`` days, with Reconnect.

    ``reason``: ``refresh`` (the refresh token expires after 100 days without use), ``hard`` (its five-year
    limit, Intuit's November 2025 policy) or ``age`` (connected 90 days ago: the help article's "reconnect
    proactively every 90 days"). ``sample``: sent on demand (`/sync-log demo reminder`) with a made-up
    ``days_left``, so a context line says so and gives the connection's real expiry (:func:`authorization_ends`,
    as Slack's date token). ``notice``: a line drawn under the buttons (a refused click, :func:`refusal_notice`)."""
    where = connection_label(connection, account_name)
    if reason == "age":
        headline = "was connected 90 days ago"
    elif days_left < 0:
        headline = "has expired"
    elif days_left == 0:
        headline = "expires today"
    else:
        headline = f"expires in {plural(days_left, 'day')}"
    if reason == "hard" and days_left >= 0:
        headline += " (its five-year limit)"
    emoji = STATUS_EMOJI["error"] if days_left <= 0 and reason != "age" else ":warning:"
    blocks: list[Block | None] = [
        section(f"{emoji} *Your {provider_name(attr(connection, 'provider'))} connection {headline}* · {where}\n"
                f"{EXPIRY_ADVICE} Reconnecting takes a minute, and the sync carries on without a gap."),
        actions([button("Reconnect", ids.RECONNECT, attr(connection, "id"), url=reconnect_url, style="primary")]),
    ]
    text = f"Your {provider_name(attr(connection, 'provider'))} connection {headline}: reconnect."
    if sample:
        ends = authorization_ends(connection)
        really = (f"your connection really expires {slack_date(ends, tz)}" if ends is not None
                  else "your connection's real expiry is not known")
        blocks.append(context(f"Sample reminder: {really}."))
        text = f"Sample reminder: {text}"
    if notice:
        blocks.append(context(notice_line(notice)))
    return message(text, blocks)


# ------------------------------------------------------------------------------------------------ reconnect


def reconnect_link(url: str, connection: Any, *, account_name: str | None = None,
                   minutes: int = 10) -> Message:
    """The personal, single-use link an Owner or Admin gets after clicking Reconnect (ephemeral): it expires in
    ``minutes`` and works once, for the person it was made for."""
    where = connection_label(connection, account_name)
    blocks: list[Block | None] = [
        section(f":link: *Reconnect {provider_name(attr(connection, 'provider'))}* · {where}\n"
                f"This link is yours alone, works once and expires in {minutes} minutes. Sign in to "
                f"{provider_name(attr(connection, 'provider'))}, approve, and the sync resumes automatically."),
        actions([button(f"Open {provider_name(attr(connection, 'provider'))}", ids.RECONNECT_LINK,
                        attr(connection, "id"), url=url, style="primary")]),
    ]
    return message("Reconnect: open your personal link (works once, expires in "
                   f"{minutes} minutes).", blocks)


#: Connection states whose authorization is gone: no refresh-token countdown, only Reconnect.
RECONNECT_STATES = frozenset({"expired", "revoked"})
#: Days before expiry from which the token is said to need reconnecting soon.
EXPIRY_WARNING_DAYS = 14


def token_state(status: object, days: int | None) -> str:
    """The token as the App Home card and `/sync-log status` say it: ``expired — reconnect`` when the
    connection's authorization is gone (whatever the refresh token's own date says), else the days left."""
    if str(status or "") in RECONNECT_STATES or (days is not None and days < 0):
        return "expired — reconnect"
    if days is None:
        return "expiry unknown"
    if days <= EXPIRY_WARNING_DAYS:
        return f"expires in {plural(days, 'day')}: reconnect soon"
    return f"expires in {plural(days, 'day')}"


def status_message(rows: Sequence[tuple[Any, Mapping[str, int], int | None]], *, tz: TzLike = None) -> Message:
    """`/sync-log status`: each connection's state, last sync, days until the token expires and open errors.
    ``rows``: (connection, open errors by kind, days left or None)."""
    if not rows:
        return message("No connection yet: /sync-log connect.",
                       [section("No QuickBooks connection yet. `/sync-log connect` starts one.")])
    lines = []
    for conn, counts, days in rows:
        status = str(attr(conn, "status") or "unknown")
        state = CONNECTION_STATUS.get(status, ("", status.replace("_", " ")))[1]
        last = attr(conn, "last_sync_at")
        last_text = format_time(last, tz) if last else "never"
        days_text = f"token: {token_state(attr(conn, 'status'), days)}"
        errors = sum(counts.values())
        lines.append(f"*{company_label(conn)}*: "
                     f"{state} · last sync {last_text} · {days_text} · {plural(errors, 'open error')}")
    return message("Connections: " + "; ".join(line.replace("*", "") for line in lines)[:2900],
                   [section("\n".join(lines))])
