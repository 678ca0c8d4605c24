"""The App Home tab: a card per connection and the latest errors, at most 100 blocks whatever the input size.

A card shows the connection's status, when its authorization runs out (days), the last sync, the open
errors by kind, and the buttons Sync Now, Retry All Errors and Reconnect. The latest errors follow, each with
Retry; an entry of the connection itself (authentication expired, rate limit...) has no record to retry: it
offers Reconnect where that is its fix, else no button. A Home tab holds at most 100 blocks
(https://docs.slack.dev/reference/block-kit/blocks): the errors keep their own budget, the cards fill the rest,
and what does not fit is counted and pointed to ``/sync-log``, never sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.blocks import ids
from bot.blocks.connection import authorization_ends, token_state
from bot.blocks.incidents import company_label
from bot.blocks.kit import Block, actions, button, context, divider, fields_section, fit, header, section
from bot.blocks.messages import (
    STATUS_EMOJI,
    WAITING_TITLES,
    attr,
    connection_waiting,
    entry_meaning,
    kind_info_for,
    of_record,
    row_button,
)
from bot.blocks.text import (
    CONNECTION_STATUS,
    VIEW_BLOCKS_MAX,
    TzLike,
    first_line,
    format_time,
    mrkdwn,
    plural,
    record_name,
)
from sync.diagnosis import severity

#: How many of the latest errors the tab lists.
LATEST_ERRORS_MAX = 10
_CARD_BLOCKS = 4  # section, fields, actions, divider

@dataclass
class ConnectionCard:
    """What the Home tab shows of one connection.

    ``connection`` is a (duck-typed) :class:`sync.models.Connection`; ``open_errors_by_kind`` the open errors
    of the connection by kind (``Engine.counts``); ``reconnect_url`` the signed start URL when the caller made
    one for this reader (without it, Reconnect is an action button and the handler answers with a fresh link).
    """

    connection: Any
    open_errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    account_name: str | None = None
    reconnect_url: str | None = None


def days_left(connection: Any, now: dt.datetime) -> int | None:
    """Whole days until the connection's authorization runs out (the earlier of Intuit's rolling 100-day and
    absolute five-year limits); None when unknown."""
    end = authorization_ends(connection)
    return None if end is None else (end - now).days


def _card(card: ConnectionCard, tz: TzLike, now: dt.datetime) -> list[Block]:
    conn = card.connection
    conn_id = attr(conn, "id")
    status = str(attr(conn, "status", "expired"))
    emoji, word = CONNECTION_STATUS.get(status, (":white_circle:", mrkdwn(status, 40)))
    if status == "rate_limited" and attr(conn, "paused_until") is not None:
        word = f"Paused until {format_time(attr(conn, 'paused_until'), tz)}: resumes by itself"
    title = company_label(conn)
    if card.account_name:
        title += f" · {mrkdwn(card.account_name, 200)}"

    left = days_left(conn, now)
    token = token_state(status, left)
    if token.startswith("expired"):
        token = f":red_circle: {token}"
    elif token.endswith("reconnect soon"):
        token = f":warning: {token}"

    counts = {str(k): int(v) for k, v in card.open_errors_by_kind.items() if int(v) > 0}
    total = sum(counts.values())
    by_kind = ", ".join(f"{_title(k)} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:11])
    errors = f"{total:,}" + (f" ({by_kind})" if by_kind else "")

    buttons = [button("Sync Now", ids.SYNC_NOW, conn_id)]
    if total:
        buttons.append(button("Retry All Errors", ids.RETRY_ALL, conn_id))
    primary = status in ("expired", "revoked")
    buttons.append(button("Reconnect", ids.RECONNECT, conn_id, url=card.reconnect_url,
                          style="primary" if primary else None))
    return [
        section(f"*{title}*\n{emoji} {word}"),
        fields_section([
            f"*Token*\n{token}",
            f"*Last sync*\n{format_time(attr(conn, 'last_sync_at'), tz)}",
            f"*Open errors*\n{errors}",
        ]),
        actions(buttons) or divider(),
        divider(),
    ]


def _title(kind: str) -> str:
    info = kind_info_for(kind)
    return info.title if info is not None and info.kind.value == kind else mrkdwn(kind, 60)


def _error_block(entry: Any, tz: TzLike, waiting: Mapping[int, str]) -> Block:
    status = str(attr(entry, "status", "error"))
    info = kind_info_for(attr(entry, "kind"), entry_meaning(entry))  # the card's words: its meaning's title
    record = mrkdwn(record_name(attr(entry, "entity"), attr(entry, "record_label"), attr(entry, "record_id")), 200)
    emoji = STATUS_EMOJI.get(severity(attr(entry, "kind"), status), ":red_circle:")  # the kind's severity
    waits = waiting.get(attr(entry, "connection_id")) if of_record(entry) else None
    line = (f"{emoji} *{record}* · {info.title if info else status} · "
            f"{format_time(attr(entry, 'created_at'), tz)}"
            + (f" · _{WAITING_TITLES[waits]}_" if waits in WAITING_TITLES else ""))
    details = first_line(attr(entry, "details"), 200)
    return section(f"{line}\n{details}" if details else line, accessory=row_button(entry, waits))


def home_refusal_view(text: str) -> dict[str, Any]:
    """The Home tab of someone who may not read the log: only ``text`` (mrkdwn: why, and whom to ask)."""
    return {"type": "home", "blocks": [section(text)]}


def home_view(cards: Sequence[ConnectionCard], latest_errors: Sequence[Any], *, tz: TzLike = None,
              now: dt.datetime | None = None) -> dict[str, Any]:
    """The Home tab view (``views.publish``): intro, a card per connection, the latest errors with Retry (or, while
    their connection waits, what their cards say: :func:`bot.blocks.messages.connection_waiting` of each card's
    connection)."""
    now = now or dt.datetime.now(dt.UTC)
    waiting = {attr(c.connection, "id"): w for c in cards if (w := connection_waiting(c.connection, now)[0])}
    top: list[Block] = [
        header("syncbot"),
        context("QuickBooks sync errors for your JobsiteOn account. Errors arrive in your channel with their "
                "fix; `/sync-log help` lists the commands."),
    ]
    errors = list(latest_errors)
    shown_errors = errors[:LATEST_ERRORS_MAX]
    tail: list[Block] = [header("Latest errors")]
    if shown_errors:
        tail.extend(_error_block(e, tz, waiting) for e in shown_errors)
        if len(errors) > len(shown_errors):
            tail.append(context(f"_{plural(len(errors) - len(shown_errors), 'more error')}: "
                                "`/sync-log open` lists them all._"))
    else:
        tail.append(section(f"{STATUS_EMOJI['synced']} No open errors."))

    room = VIEW_BLOCKS_MAX - len(top) - len(tail) - 1  # 1 for "more connections"
    fit_cards = max(0, room // _CARD_BLOCKS)
    body: list[Block] = []
    if not cards:
        body.append(section("No connection yet: `/sync-log connect` connects QuickBooks."))
        body.append(divider())
    for card in list(cards)[:fit_cards]:
        body.extend(_card(card, tz, now))
    if len(cards) > fit_cards:
        body.append(context(f"_{plural(len(cards) - fit_cards, 'more connection')} not shown: "
                            "`/sync-log status` lists every connection._"))
    return {"type": "home", "blocks": fit([*top, *body, *tail], VIEW_BLOCKS_MAX)}
