"""A click that could not act, shown on the card where it was clicked: the line that says who clicked what,
when, why and who can help (`notice`, `refusal_notice`), and the card drawn again with it (`show_on_card`)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot import blocks
from bot.models import SlackMessage
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo
from sync.engine import ConnectionUnavailable
from sync.models import SyncLogEntry, utcnow

log = logging.getLogger("syncbot.slack")

#: The button of each entry action, as the card labels it (what a refusal tells the person to click).
BUTTON_WORDS = {"retry": "Retry", "unlink": "Unlink", "recreate": "Re-create in QuickBooks",
                "link_existing": "Link to existing", "mark_resolved": "Mark resolved", "fill_field": "Fill in",
                "details": "Details", "contact_support": "Contact support", "reconnect": "Reconnect",
                "view_log": "View log",
                "sync_now": "Sync Now",
                "keep_provider_totals": "Keep QuickBooks' totals", "send_own_tax": "Send JobsiteOn's tax and retry"}


def notice(tenant: Tenant, user: UserInfo, action: str, reason: str, at: dt.datetime | None = None, *,
           outcome: str = "was refused") -> str:
    """The card's line for a click that could not act (``blocks.click_notice``): the button, who clicked, when
    (Slack's date token), and ``reason``."""
    return blocks.click_notice(BUTTON_WORDS.get(action, "That button"), user.name, at or utcnow(), reason,
                               tz=tenant.timezone, outcome=outcome)


def waiting_notice(exc: ConnectionUnavailable, button: str, tz: str | None) -> str:
    """Why a fix could not run while the connection waits, and what to click instead (after "Retry by … was
    refused:")."""
    if exc.kind == "auth_expired":
        return (f"the QuickBooks connection waits for Reconnect. An Owner or Admin clicks Reconnect (here or on the "
                f"connection's message); then {button} works.")
    if exc.kind == "rate_limited" and exc.until is not None:
        return (f"QuickBooks' rate-limit pause: syncing resumes by itself at "
                f"{blocks.format_time(exc.until, tz)}.")
    return str(exc)


def who_can_help(rt: SlackRuntime, tenant: Tenant) -> str:
    """Who a refused member can ask, by name: the account's admin list (up to three), else the workspace's
    Owners and Admins."""
    names = [rt.directory.user(tenant.team_id, uid).name for uid in tenant.admin_user_ids[:3]]
    if names:
        return ", ".join(names) + " or a workspace Owner or Admin"
    return "a workspace Owner or Admin"


def refusal_notice(rt: SlackRuntime, tenant: Tenant, user: UserInfo, action: str, change: bool = True) -> str:
    """The card's line for a click refused for permission (``blocks.click_notice``): who was refused and when,
    why, who can help, what to click."""
    button = BUTTON_WORDS.get(action, "that button")
    if change:
        return notice(tenant, user, action, f"it needs Owner or Admin permissions. Ask {who_can_help(rt, tenant)} "
                      f"to click {button}.")
    # one line on the card; the reply to the person says how an Owner or Admin opens reading to every member
    return notice(tenant, user, action, "reading the sync log needs Owner or Admin permissions. Ask "
                  f"{who_can_help(rt, tenant)}.")


def show_on_card(rt: SlackRuntime, tenant: Tenant, entry_id: int | None, channel: str, ts: str,
                 notice: str) -> None:
    """Draw the record's card (the message clicked, ``channel`` and ``ts``) from its newest state with
    ``notice`` on it: a refused click changes something where the person clicked, not only an "only visible to
    you" reply at the bottom of the channel. The next change of the record draws the card without it.

    The card is found by the message: only a record's own card of the tenant's account is drawn, and with
    ``entry_id`` (an entry button's value) only when that entry is the card's record, so a tampered value
    redraws nothing. Without it (Reconnect's value is the connection) the card's record is read off the message."""
    with rt.services.sessions() as session:
        topic = session.scalar(select(SlackMessage.topic).where(
            SlackMessage.account_id == tenant.account_id, SlackMessage.channel_id == channel, SlackMessage.ts == ts))
    message = _card_with_notice(rt, tenant, entry_id, str(topic or "").split(":"), notice, ts)
    if message is None:
        return
    try:
        rt.clients.for_team(tenant.team_id).chat_update(channel=channel, ts=ts, **message)
    except SlackApiError as exc:
        log.info("event=refusal_on_card_failed error=%s", exc.response.get("error"))


def _card_with_notice(rt: SlackRuntime, tenant: Tenant, entry_id: int | None, parts: list[str],
                      notice: str, ts: str) -> dict[str, Any] | None:
    """The card a message's topic (``parts``) names, drawn from its newest state with ``notice``: a token-expiry
    reminder (``reminder:S``, or its DM ``reminder:S:dm:U``), a connection's incident (``connection:C:incident:I``)
    or a record's card (``record:C:entity:R``); None for any other message,
    another account's, or an ``entry_id`` that is not the card's record."""
    if len(parts) in (2, 4) and parts[0] == "reminder" and parts[1].isdigit():  # a token-expiry reminder
        reminder = rt.notifier.render_reminder(int(parts[1]), tenant.timezone, notice=notice)
        return reminder[1] if reminder is not None and reminder[0] == tenant.account_id else None
    if (len(parts) == 4 and parts[0] == "connection" and parts[2] == "incident" and parts[1].isdigit()
            and parts[3].isdigit()):  # a connection's incident (Sync Now, Reconnect on it)
        drawn = rt.notifier.render_incident(int(parts[1]), int(parts[3]), tenant.timezone, notice=notice)
        return drawn[1] if drawn is not None and drawn[0].account_id == tenant.account_id else None
    if len(parts) != 4 or parts[0] != "record" or not parts[1].isdigit() or not parts[3].isdigit():
        return None  # not a record's card (a digest, an answer): its own message says what it can
    with rt.services.sessions() as session:
        newest = session.scalars(select(SyncLogEntry).where(
            SyncLogEntry.account_id == tenant.account_id, SyncLogEntry.connection_id == int(parts[1]),
            SyncLogEntry.entity == parts[2], SyncLogEntry.record_id == int(parts[3]),
            SyncLogEntry.status != "pending").order_by(SyncLogEntry.id.desc()).limit(1)).first()
        clicked = session.get(SyncLogEntry, entry_id) if entry_id is not None else None
        if newest is not None:
            session.expunge(newest)
    if newest is None:
        return None
    if entry_id is not None and (clicked is None or clicked.account_id != tenant.account_id or (
            clicked.connection_id, clicked.entity, clicked.record_id) != (
            newest.connection_id, newest.entity, newest.record_id)):
        log.warning("event=card_mismatch team_id=%s entry_id=%s ts=%s", tenant.team_id, entry_id, ts)
        return None
    return rt.notifier.render_record(newest, tenant.timezone, notice=notice)
