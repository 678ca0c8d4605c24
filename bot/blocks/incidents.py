"""The messages about a whole connection: its incident (authorization expired, rate limit, subscription: with the
records waiting on it, and Reconnected / Resumed when it closes), and the digest a flood of record errors folds into.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from bot.blocks import ids
from bot.blocks.kit import (
    Block,
    Message,
    actions,
    button,
    context,
    message,
    section,
)
from bot.blocks.messages import STATUS_EMOJI, attr, kind_info_for, notice_line
from bot.blocks.text import (
    TzLike,
    actor_name,
    format_time,
    mrkdwn,
    plural,
    provider_name,
    slack_date,
)
from sync.diagnosis import KINDS, FixAction, Kind

# ------------------------------------------------------------------------------------------------ incidents


def company_label(connection: Any) -> str:
    """``QuickBooks company Acme Builders LLC``: the company's name as QuickBooks gives it (CompanyInfo, kept on
    the connection when it was authorized), else its realm id (``QuickBooks company 9130…``), else ``QuickBooks``;
    escaped. Every surface that names a connection's company uses this."""
    label = provider_name(attr(connection, "provider"))
    name = attr(connection, "company_name") or attr(connection, "realm_id")
    if name:
        label += f" company {mrkdwn(name, 200)}"
    return label


def connection_label(connection: Any, account_name: str | None = None) -> str:
    """``QuickBooks company Acme Builders LLC`` (· account), escaped."""
    label = company_label(connection)
    if account_name:
        label += f" · {mrkdwn(account_name, 200)}"
    return label


def _waiting(count: int) -> str:
    if count <= 0:
        return "No records are waiting on it yet."
    verb = "is" if count == 1 else "are"
    return f"*{plural(count, 'record')} {verb} waiting* on this connection."


def resumes_at(until: dt.datetime | None, tz: TzLike) -> tuple[str, str]:
    """When a rate-limit pause ends, as the incident card says it: (mrkdwn with Slack's date token, plain text
    for the notification's fallback)."""
    if until is None:
        sentence = "This resolves automatically: syncbot resumes by itself in about 15 minutes"
        return sentence, sentence
    return (f"This resolves automatically: syncbot resumes by itself *{slack_date(until, tz)}*",
            f"This resolves automatically: syncbot resumes by itself at {format_time(until, tz)}")


def incident_message(incident: Any, connection: Any, waiting_count: int, *, tz: TzLike = None,
                     reconnect_url: str | None = None, account_name: str | None = None,
                     notice: str | None = None) -> Message:
    """The one message of a connection-wide failure (auth_expired, rate_limited, subscription), with the running
    count of records waiting on it; once resolved, "Reconnected by Name" or "Resumed" with a green check (or,
    for an incident another kind took over, "Ended": the next message says what the connection waits for now).

    auth_expired offers Reconnect (a URL button to ``reconnect_url``); rate_limited says when syncbot resumes
    by itself (``connection.paused_until``, as Slack's date token so each viewer reads their own time) and offers
    Sync Now, the help article's fix ("Wait 15 minutes and click Sync Now to retry"): one request tries whether
    QuickBooks takes requests again before that (:meth:`sync.engine.SyncEngine.try_resume`); subscription offers
    Sync Now. ``notice``: a click on it just refused (:func:`click_notice`, mrkdwn).
    """
    info = kind_info_for(attr(incident, "kind")) or KINDS[Kind.UNKNOWN]
    where = connection_label(connection, account_name)
    conn_id = attr(connection, "id", attr(incident, "connection_id"))
    opened = slack_date(attr(incident, "opened_at"), tz)
    blocks: list[Block | None] = []
    buttons: list[dict[str, Any]] = []

    if attr(incident, "resolved_at") is not None and attr(incident, "resolution") == "replaced":
        when = slack_date(attr(incident, "resolved_at"), tz)
        blocks.append(section(f"{STATUS_EMOJI['info']} *Ended: {info.title}* · {when} · {where}\n"
                              "The connection met another problem since: see the newer message below."))
        blocks.append(context(f"Was: {info.title} since {opened}"))
        blocks.append(actions([button("View log", ids.VIEW_LOG, "open")]))
        return message(f"Ended: {info.title}: {where}", blocks)

    if attr(incident, "resolved_at") is not None:
        actor = attr(incident, "resolved_by")
        reconnected = attr(incident, "resolution") == "reconnected" or info.kind == Kind.AUTH_EXPIRED
        word = "Reconnected" if reconnected else "Resumed"
        person = actor_name(actor) != "syncbot"
        by = f" by {mrkdwn(actor_name(actor), 200)}" if person else ("" if reconnected else " automatically")
        when = slack_date(attr(incident, "resolved_at"), tz)
        blocks.append(section(f"{STATUS_EMOJI['synced']} *{word}*{by} · {when} · {where}"))
        if waiting_count > 0:
            verb = "is" if waiting_count == 1 else "are"
            blocks.append(section(f"{plural(waiting_count, 'waiting record')} {verb} syncing again."))
        blocks.append(context(f"Was: {info.title} since {opened}"))
        buttons.append(button("View log", ids.VIEW_LOG, "open"))
        text = f"{word}{by}: {where}"
        blocks.append(actions(buttons))
        return message(text, blocks)

    if info.kind == Kind.RATE_LIMITED:
        until = attr(connection, "paused_until")
        resume, plain_resume = resumes_at(until, tz)
        blocks.append(section(f"{STATUS_EMOJI['warning']} *{info.title}* · {where}\n"
                              f"{info.cause} {resume}. To try before then, click *Sync Now*: syncbot asks "
                              "QuickBooks once, and resumes at once if the limit is over."))
        blocks.append(section(_waiting(waiting_count)))
        buttons.append(button("Sync Now", ids.SYNC_NOW, conn_id, style="primary"))
        buttons.append(button("View log", ids.VIEW_LOG, f"kind:{info.kind.value} open"))
        text = f"{info.title}: {where}. {plain_resume}."
    else:
        blocks.append(section(f"{STATUS_EMOJI['error']} *{info.title}* · {where}\n{info.cause} {info.fix}"))
        after = "once you reconnect" if info.kind == Kind.AUTH_EXPIRED else "once the connection works again"
        blocks.append(section(f"{_waiting(waiting_count)} They sync again automatically {after}."
                              if waiting_count > 0 else _waiting(waiting_count)))
        # QuickBooks' own words are in the sync log (View log), as a record card keeps them behind Details
        if info.kind == Kind.AUTH_EXPIRED:
            buttons.append(button("Reconnect", ids.RECONNECT, conn_id, url=reconnect_url, style="primary"))
        elif FixAction.SYNC_NOW in info.actions:
            buttons.append(button("Sync Now", ids.SYNC_NOW, conn_id, style="primary"))
        buttons.append(button("View log", ids.VIEW_LOG, f"kind:{info.kind.value} open"))
        text = f"Error: {info.title}: {where}. {plural(waiting_count, 'record')} waiting."
    blocks.append(context(f"Since {opened}"))
    if notice:
        blocks.append(context(notice_line(notice)))
    blocks.append(actions(buttons))
    return message(text, blocks)


# ------------------------------------------------------------------------------------------------ digest


def digest_message(counts_by_kind: Mapping[str, int], total: int, since: dt.datetime, *, tz: TzLike = None,
                   connection_id: int | None = None) -> Message:
    """One message for a burst of record errors instead of one each: the count by kind, View log, Retry All."""
    when = format_time(since, tz)
    lines = []
    for kind, count in sorted(counts_by_kind.items(), key=lambda kv: (-kv[1], str(kv[0])))[:30]:
        info = kind_info_for(kind)
        name = info.title if info is not None and info.kind.value == str(kind) else mrkdwn(kind, 60)
        lines.append(f"• {name}: *{count:,}*")
    blocks: list[Block | None] = [
        section(f"{STATUS_EMOJI['error']} *{plural(total, 'sync error')} since {when}*\n"
                "Too many to post one by one, so here they are together. Each one is in the sync log "
                "with its cause and fix."),
        section("\n".join(lines)) if lines else None,
        actions([
            button("View log", ids.VIEW_LOG, f"open since:{_iso(since)}"),
            button("Retry All Errors", ids.RETRY_ALL, connection_id, style="primary"),
        ]),
    ]
    return message(f"{plural(total, 'sync error')} since {when}", blocks)


def _iso(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
