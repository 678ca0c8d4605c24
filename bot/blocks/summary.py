"""The Monday summary of one account's sync log (:class:`sync.summary.WeeklySummary`).

The help article asks people to "check the sync log weekly" and to "set a calendar reminder to check the sync
log every Monday. A 2-minute review can prevent hours of cleanup later." This message is that review: attempts
by status with the change against the week before, errors by kind and by entity, the oldest unresolved
entries, the records failing most, and Retry All Errors + View log. A quiet week is one line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from bot.blocks import ids
from bot.blocks.kit import Block, Message, actions, button, context, fields_section, header, message, section
from bot.blocks.messages import STATUS_EMOJI, attr, kind_info_for
from bot.blocks.text import (
    TzLike,
    entity_name,
    format_date,
    format_time,
    mrkdwn,
    plural,
    record_name,
    signed,
)
from sync.diagnosis import severity

WEEKLY_TIP = ("Tip: set a calendar reminder to check the sync log every Monday. "
              "A 2-minute review can prevent hours of cleanup later.")
_STATUSES = (("synced", "Synced"), ("error", "Errors"), ("warning", "Warnings"), ("info", "Info"))
_LIST_MAX = 10


def _title(kind: str) -> str:
    info = kind_info_for(kind)
    return info.title if info is not None and info.kind.value == kind else mrkdwn(kind, 60)


def _versus(now: int, before: int) -> str:
    return f"{now:,} ({signed(now - before)} vs last week)"


def _bullets(counts: Mapping[str, int], name: Any, previous: Mapping[str, int] | None = None) -> str:
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    lines = []
    for key, count in rows[:_LIST_MAX]:
        line = f"• {name(str(key))}: *{count:,}*"
        if previous is not None:
            line += f" ({signed(count - previous.get(key, 0))})"
        lines.append(line)
    if len(rows) > _LIST_MAX:
        lines.append(f"• …and {len(rows) - _LIST_MAX:,} more")
    return "\n".join(lines)


def weekly_summary_message(summary: Any, *, tz: TzLike = None, account_name: str | None = None,
                           connection_id: int | None = None, now: dt.datetime | None = None) -> Message:
    """The Monday summary. ``summary`` is a (duck-typed) :class:`sync.summary.WeeklySummary`."""
    now = now or attr(summary, "until") or dt.datetime.now(dt.UTC)
    since, until = attr(summary, "since"), attr(summary, "until")
    span = f"{format_date(since, tz)} to {format_date(until, tz)}"
    by_status: Mapping[str, int] = attr(summary, "attempts_by_status", {})
    before: Mapping[str, int] = attr(summary, "previous_attempts_by_status", {})
    errors_by_kind: Mapping[str, int] = attr(summary, "errors_by_kind", {})
    open_errors = int(attr(summary, "open_errors", 0))
    who = f" for {mrkdwn(account_name, 200)}" if account_name else ""

    if not errors_by_kind and open_errors == 0:
        synced = int(by_status.get("synced", 0))
        line = (f"Quiet week in the sync log{who} ({span}): "
                f"{plural(synced, 'record')} synced, no errors or warnings.")
        return message(line, [section(f"{STATUS_EMOJI['synced']} {line}")])

    blocks: list[Block | None] = [
        header(f"Weekly sync summary{': ' + account_name if account_name else ''}"),
        context(f"{span} · compared with the week before"),
        fields_section([f"*{label}*\n{_versus(int(by_status.get(key, 0)), int(before.get(key, 0)))}"
                        for key, label in _STATUSES
                        if key in ("synced", "error") or by_status.get(key) or before.get(key)]),
        section("*Errors and warnings by kind*\n" + _bullets(errors_by_kind, _title,
                                                 attr(summary, "previous_errors_by_kind", {})))
        if errors_by_kind else None,
        section("*Errors and warnings by record type*\n"
                + _bullets(attr(summary, "errors_by_entity", {}), entity_name))
        if attr(summary, "errors_by_entity") else None,
    ]

    oldest = list(attr(summary, "oldest_open", []))[:_LIST_MAX]
    if open_errors:
        lines = [f"*Still open: {plural(open_errors, 'error')}*"]
        if oldest:
            lines.append("Oldest unresolved:")
        for entry in oldest:
            created = attr(entry, "created_at")
            age = ""
            if created is not None:
                created = created if created.tzinfo else created.replace(tzinfo=dt.UTC)
                age = f" ({plural(max(0, (now - created).days), 'day')} old)"
            info = kind_info_for(attr(entry, "kind"))
            record = record_name(attr(entry, "entity"), attr(entry, "record_label"), attr(entry, "record_id"))
            emoji = STATUS_EMOJI.get(severity(attr(entry, "kind"), attr(entry, "status")), STATUS_EMOJI["error"])
            lines.append(f"• {emoji} *{mrkdwn(record, 200)}* · {info.title if info else 'Error'} · since "
                         f"{format_time(created, tz)}{age}")
        blocks.append(section("\n".join(lines)))

    failing = list(attr(summary, "most_failing", []))[:_LIST_MAX]
    if failing:
        lines = ["*Failing most*"]
        for entity, record_id, label, count in failing:
            lines.append(f"• {mrkdwn(record_name(entity, label, record_id), 200)}: {plural(int(count), 'failure')}")
        blocks.append(section("\n".join(lines)))

    buttons = [button("View log", ids.VIEW_LOG, "open")]
    if open_errors:
        buttons.insert(0, button("Retry All Errors", ids.RETRY_ALL, connection_id, style="primary"))
    blocks.append(actions(buttons))
    blocks.append(context(WEEKLY_TIP))

    errors = int(by_status.get("error", 0))
    text = (f"Weekly sync summary{who} ({span}): {int(by_status.get('synced', 0)):,} synced, "
            f"{plural(errors, 'error')} ({signed(errors - int(before.get('error', 0)))} vs last week), "
            f"{open_errors:,} still open.")
    return message(text, blocks)
