"""The ``/sync-log`` answers: a page of the sync log, and the help.

A page is an ephemeral message (at most 50 blocks, https://docs.slack.dev/reference/block-kit/blocks): a
header naming the filter, one compact section per entry (status emoji, record, kind, direction, when, the
first line of the details; a Retry button beside each open push error), Previous / Next buttons carrying the
keyset cursors of :class:`sync.log.Page` and the filter words, and the actions Retry All Errors and Sync Now.
A page larger than the message can hold (``sync.log.page`` allows 100 entries) is packed several entries to
a section, and whatever still does not fit is counted, never sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.blocks import ids
from bot.blocks.kit import Block, Message, actions, button, context, header, message, section
from bot.blocks.messages import (
    STATUS_EMOJI,
    WAITING_TITLES,
    attr,
    entry_meaning,
    kind_info_for,
    of_record,
    row_button,
)
from bot.blocks.text import (
    BUTTON_VALUE_MAX,
    MESSAGE_BLOCKS_MAX,
    SECTION_TEXT_MAX,
    TzLike,
    direction_text,
    first_line,
    format_time,
    mrkdwn,
    plural,
    record_name,
)
from sync.diagnosis import severity
from sync.log import short_text_note

#: Blocks a page keeps for itself: header, context, actions, the "not shown" note and the short-text note.
_RESERVED = 5


def _is_open(entry: Any) -> bool:
    return (str(attr(entry, "status", "")) in ("error", "warning") and attr(entry, "resolved_at") is None
            and attr(entry, "superseded_by_id") is None)


def entry_line(entry: Any, tz: TzLike, waiting: str | None = None) -> str:
    """One entry in one or two lines of mrkdwn: ``:red_circle: *Invoice INV-1042* · Duplicate record · Push… · when``
    then the first line of its details (escaped, cut). ``waiting``: what the entry's connection waits on
    (:func:`bot.blocks.messages.connection_waiting`): an open record's error says so, as its card does
    (``_Waiting for Reconnect_``)."""
    status = str(attr(entry, "status", "error"))
    emoji = STATUS_EMOJI.get(severity(attr(entry, "kind"), status), ":white_circle:")
    info = kind_info_for(attr(entry, "kind"), entry_meaning(entry))
    what = info.title if info is not None else status.capitalize()
    record = mrkdwn(record_name(attr(entry, "entity"), attr(entry, "record_label"), attr(entry, "record_id")), 200)
    parts = [f"{emoji} *{record}*", what, direction_text(attr(entry, "direction")).split(":")[0],
             format_time(attr(entry, "created_at"), tz, year=False)]
    if status in ("error", "warning") and not _is_open(entry):
        parts.append("_resolved_" if attr(entry, "resolved_at") is not None else "_retried_")
    elif waiting in WAITING_TITLES and _is_open(entry) and of_record(entry):
        parts.append(f"_{WAITING_TITLES[waiting]}_")
    line = " · ".join(parts)
    details = first_line(attr(entry, "details"), 150)
    return f"{line}\n{details}" if details else line


def _nav_value(key: str, cursor: int, filter_text: str) -> str:
    """``{"before"|"after": cursor, "q": words}`` cut so that the value stays within 2000 characters."""
    q = filter_text
    while True:
        value = json.dumps({key: cursor, "q": q}, separators=(",", ":"))
        if len(value) <= BUTTON_VALUE_MAX:
            return value
        q = q[: max(0, len(q) - max(1, len(value) - BUTTON_VALUE_MAX))]


def _pack(lines: list[str], room: int) -> tuple[list[Block], int]:
    """``lines`` packed into at most ``room`` sections of at most 3000 characters; how many did not fit."""
    blocks: list[Block] = []
    current: list[str] = []
    length = 0
    shown = 0
    for line in lines:
        add = len(line) + (2 if current else 0)
        if current and length + add > SECTION_TEXT_MAX:
            blocks.append(section("\n\n".join(current)))
            shown += len(current)
            current, length, add = [], 0, len(line)
            if len(blocks) >= room:
                break
        current.append(line)
        length += add
    else:
        if current:
            blocks.append(section("\n\n".join(current)))
            shown += len(current)
    return blocks, len(lines) - shown


def _span(page: Any, shown: int) -> str:
    """Which entries a page holds: ``entries 1-10 of 19`` (with an en dash); ``3 entries`` when it holds them all.
    Past the page's count cap (:class:`sync.log.Page`): ``entries 1-10 of more than 10,000``, and deeper than the
    cap ``10 entries past the newest 10,000``."""
    total = attr(page, "total")
    first = int(attr(page, "first", 1))
    if attr(page, "first_is_lower_bound", False):
        return f"{plural(shown, 'entry', 'entries')} past the newest {first - 1:,}"
    if total is None or (first == 1 and shown >= int(total) and not attr(page, "total_is_lower_bound", False)):
        return plural(shown, "entry", "entries")
    of = f"more than {int(total):,}" if attr(page, "total_is_lower_bound", False) else f"{int(total):,}"
    if shown == 1:
        return f"entry {first:,} of {of}"
    return f"entries {first:,}\u2013{first + shown - 1:,} of {of}"


def log_page(page: Any, *, tz: TzLike = None, filter_text: str = "", connection_id: int | None = None,
             waiting: Mapping[int, str] | None = None) -> Message:
    """The ``/sync-log`` answer for one :class:`sync.log.Page` (entries newest first, cursors, filter). ``waiting``:
    what each waiting connection waits on, by connection id (:func:`bot.blocks.messages.connection_waiting`): its
    records' rows say so and offer what their cards offer (:func:`bot.blocks.messages.row_button`)."""
    waiting = waiting or {}
    entries = list(attr(page, "entries", []))
    flt = attr(page, "filter")
    described = (flt.describe(len(entries)) if flt is not None and hasattr(flt, "describe")
                 else (filter_text or "all entries"))
    conn = connection_id if connection_id is not None else attr(flt, "connection_id") if flt is not None else None
    blocks: list[Block | None] = [header(f"Sync log: {described}")]
    words = f" · filter `{mrkdwn(filter_text, 300)}`" if filter_text.strip() else ""

    if not entries:
        blocks.append(section(f":white_check_mark: No entries match *{mrkdwn(described, 500)}*.\n"
                              "Try `/sync-log errors`, `/sync-log since:7d` or `/sync-log help`."))
    note = short_text_note(attr(page, "searched_newest", None))
    if note:
        blocks.append(context(f"_{note.capitalize()}._"))
    if entries:
        blocks.append(context(f"{_span(page, len(entries))}, newest first{words}"))
        room = MESSAGE_BLOCKS_MAX - _RESERVED
        if len(entries) <= room:
            for entry in entries:
                waits = waiting.get(attr(entry, "connection_id"))
                # the card's fix: Retry only where the card offers it, Reconnect while the connection waits for it
                accessory = row_button(entry, waits) if _is_open(entry) else None
                blocks.append(section(entry_line(entry, tz, waits), accessory=accessory))
        else:
            packed, hidden = _pack([entry_line(e, tz, waiting.get(attr(e, "connection_id"))) for e in entries],
                                   room)
            blocks.extend(packed)
            if hidden:
                blocks.append(context(f"_{plural(hidden, 'more entry', 'more entries')} on this page not shown: "
                                      "narrow the filter (e.g. `entity:invoice`, `since:24h`)._"))

    buttons: list[dict[str, Any]] = []
    prev_after = attr(page, "prev_after")
    next_before = attr(page, "next_before")
    if prev_after is not None:
        buttons.append(button("Previous", ids.LOG_PREV, _nav_value("after", int(prev_after), filter_text)))
    if next_before is not None:
        buttons.append(button("Next", ids.LOG_NEXT, _nav_value("before", int(next_before), filter_text)))
    buttons.append(button("Retry All Errors", ids.RETRY_ALL, conn))
    buttons.append(button("Sync Now", ids.SYNC_NOW, conn))
    blocks.append(actions(buttons))
    text = f"Sync log: {mrkdwn(described, 500)} ({_span(page, len(entries))})"
    return message(text, blocks)


HELP_COMMANDS: tuple[tuple[str, str], ...] = (
    ("/sync-log", "the latest entries of the sync log"),
    ("/sync-log errors", "the open errors: errors and warnings not resolved yet, each record once, as counted "
     "everywhere (`warnings` for the warnings only; `status:error` lists every failed attempt)"),
    ("/sync-log entity:invoice kind:duplicate since:7d direction:push",
     "filters: `entity:` contact, item, invoice, payment; `kind:` duplicate, not_found, validation…; "
     "`since:` 30m, 24h, 7d or a date; `direction:` push or pull; any other words search names and details "
     "(3 characters or more search the whole log)"),
    ("/sync-log retry-all", "retry every open error (asks first)"),
    ("/sync-log sync-now · /sync-log resume", "sync everything that changed, both ways; during a rate-limit "
     "pause, try once whether QuickBooks takes requests again and resume at once if it does"),
    ("/sync-log status", "the connection: status, token expiry, last sync, open errors"),
    ("/sync-log connect · /sync-log reconnect", "connect QuickBooks, or re-authorize it before the token expires"),
    ("/sync-log channel #name", "post sync errors to #name (invite @syncbot there first)"),
    ("/sync-log admins · admins add @name · admins remove @name",
     "who may act besides the workspace's Owners and Admins (Owners and Admins edit the list)"),
    ("/sync-log reading open · reading admins", "let every member read the sync log, or only those who may act"),
    ("/sync-log summary · summary monday 9:00 · summary off · summary preview",
     "when the weekly sync log summary goes out (in the account's time zone; add a zone such as "
     "America/Chicago to change it), turn it off, or see it now (only you)"),
    ("/sync-log help", "this help"),
)


def help_message() -> Message:
    """The ``/sync-log help`` answer: every command and filter, with the help article's habits."""
    lines = [f"• `{cmd}`: {what}" for cmd, what in HELP_COMMANDS]
    blocks: list[Block | None] = [
        header("syncbot: the sync log in Slack"),
        section("\n".join(lines)),
        context("Owners and Admins can retry and reconnect. Check the sync log every Monday: a 2-minute review "
                "can prevent hours of cleanup later. Reconnect proactively every 90 days."),
    ]
    return message("syncbot commands: /sync-log [errors|warnings|open] [entity: kind: since: direction:], "
                   "retry-all, sync-now, resume, status, connect, reconnect, channel #name, summary, help", blocks)
