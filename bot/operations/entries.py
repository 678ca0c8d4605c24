"""An error card's fixes on one entry (Retry, Unlink, Re-create, Link, Mark resolved, Keep QuickBooks' totals,
Send JobsiteOn's tax), run as a job, with the card turned "Retrying…" meanwhile; its Details; Fill in the missing
field; and `/sync-log retry LABEL`. Each entry is read only in the clicker's account."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select

from bot import blocks
from bot.models import SlackMessage
from bot.operations import cards
from bot.operations.pages import home_changed
from bot.operations.stored import JobPayload, enqueue
from bot.replies import Reply
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo
from sync.engine import ConnectionUnavailable, EngineError, InProgress, NotFound, NothingToRetry, record_topic
from sync.log import open_clause
from sync.models import SyncLogEntry

log = logging.getLogger("syncbot.slack")


def account_entry(rt: SlackRuntime, tenant: Tenant, entry_id: int) -> SyncLogEntry:
    """The entry, only when it belongs to the tenant's account (else NotFound, as if it did not exist)."""
    return rt.services.engine.get_entry(entry_id, account_id=tenant.account_id)


def show_retrying(rt: SlackRuntime, tenant: Tenant, user: UserInfo, entry: SyncLogEntry,
                  channel: str | None, ts: str | None) -> None:
    """Turn the clicked message into "Retrying... (by Name)" at once (same ts)."""
    if not channel or not ts:
        return
    message = rt.notifier.render_record(entry, tenant.timezone, retrying_by=user.name)
    try:
        rt.clients.for_team(tenant.team_id).chat_update(channel=channel, ts=ts, **message)
    except SlackApiError as exc:
        log.info("event=retrying_update_failed error=%s", exc.response.get("error"))


def entry_action(rt: SlackRuntime, tenant: Tenant, user: UserInfo, action: str, entry_id: int,
                 reply: Reply, channel: str | None = None, ts: str | None = None) -> None:
    """Run a fix action on an entry after the ack: retry, unlink, recreate, link_existing, mark_resolved, and for a
    total mismatch keep_provider_totals and send_own_tax. The entry is checked here; the action is a job
    (`bot.jobs`, :func:`entry_job`), committed before this returns, which any worker runs: it turns the card to
    "Retrying…" first (in the job, so that it never comes after the outcome), then acts. The outcome reaches the
    message through the outbox (and the App Home); refusals go to the user (``reply``)."""
    if action not in ENTRY_FIXES:
        raise ValueError(f"unknown entry action {action!r}")
    try:
        entry = account_entry(rt, tenant, entry_id)
    except NotFound:
        log.warning("event=foreign_or_unknown_entry team_id=%s user_id=%s entry_id=%s", tenant.team_id,
                    user.user_id, entry_id)
        reply.now({"text": "That sync log entry was not found in your account."})
        return
    enqueue(rt, "entry_action", entry.connection_id, tenant, user, reply, action=action, entry_id=entry_id,
            channel=channel, ts=ts, clicked_at=rt.notifier.clock().isoformat())


#: The entry actions a job runs (the engine's method of each).
ENTRY_FIXES = ("retry", "unlink", "recreate", "link_existing", "mark_resolved", "keep_provider_totals",
               "send_own_tax")
#: The entry actions that push to QuickBooks: the message says Retrying… meanwhile.
PUSHES = ("retry", "send_own_tax")


def _is_card_of(rt: SlackRuntime, tenant: Tenant, entry: SyncLogEntry, channel: str, ts: str) -> bool:
    """Whether the message at ``channel``/``ts`` is the card of ``entry``'s record (the message its buttons were
    drawn on). A button value changed to another entry's id names a record whose card is elsewhere: acting on it
    would draw that record over this card (and leave its own card stale)."""
    topic = record_topic(entry.connection_id or 0, entry.entity, entry.record_id)
    with rt.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(SlackMessage).where(
            SlackMessage.account_id == tenant.account_id, SlackMessage.topic == topic,
            SlackMessage.channel_id == channel, SlackMessage.ts == ts)) == 1


def entry_job(rt: SlackRuntime, tenant: Tenant, user: UserInfo, reply: Reply, p: JobPayload) -> None:
    """An entry action's job (:func:`entry_action`)."""
    action, entry_id = p.choice("action", ENTRY_FIXES), p.integer("entry_id")
    channel, ts = p.text("channel"), p.text("ts")
    clicked_at = p.time("clicked_at")
    engine = rt.services.engine
    fn = {"retry": engine.retry_entry, "unlink": engine.unlink, "recreate": engine.recreate,
          "link_existing": engine.link_existing, "mark_resolved": engine.mark_resolved,
          "keep_provider_totals": engine.keep_provider_totals, "send_own_tax": engine.send_own_tax}[action]
    notice: str | None = None  # why the click was refused, shown on the card where it was clicked
    if channel and ts:
        try:
            clicked = account_entry(rt, tenant, entry_id)
        except NotFound:
            clicked = None
        if clicked is None or not _is_card_of(rt, tenant, clicked, channel, ts):
            log.warning("event=button_not_on_its_card team_id=%s user_id=%s entry_id=%s", tenant.team_id,
                        user.user_id, entry_id)
            reply.now({"text": "That button is not valid any more: nothing was changed."})
            return
        if action in PUSHES:
            show_retrying(rt, tenant, user, clicked, channel, ts)
    try:
        result = fn(entry_id, user.name, account_id=tenant.account_id)
        if not reply.through_response_url and not (channel and ts):  # clicked on the App Home: say how it went
            reply.now({"text": _outcome_text(action, result)})
    except NotFound:
        reply.now({"text": "That sync log entry was not found in your account."})
    except InProgress:
        notice = cards.notice(tenant, user, action, "already retrying this record: this card updates when it is "
                              "done.", clicked_at, outcome="was not needed")
        reply.now({"text": "Already retrying this record: the message updates when it is done."})
    except NothingToRetry as exc:
        notice = cards.notice(tenant, user, action, str(exc), clicked_at)
        reply.now({"text": f"{exc}"})
    except ConnectionUnavailable as exc:
        notice = cards.notice(tenant, user, action, cards.waiting_notice(
            exc, cards.BUTTON_WORDS.get(action, "that"), tenant.timezone), clicked_at)
        reply.now({"text": f"{exc} Use /sync-log reconnect." if exc.kind == "auth_expired" else str(exc)})
    except EngineError as exc:
        notice = cards.notice(tenant, user, action, str(exc), clicked_at)
        reply.now({"text": str(exc)})
    finally:
        home_changed(rt, tenant, user)
        rt.notifier.deliver()  # the outcome updates the same message now (and the App Homes)
        if notice is not None and channel and ts:
            cards.show_on_card(rt, tenant, entry_id, channel, ts, notice)
        elif action in PUSHES and channel and ts:
            _redraw_if_still_retrying(rt, tenant, entry_id, channel, ts, clicked_at)


def _newest_of(rt: SlackRuntime, entry: SyncLogEntry) -> SyncLogEntry | None:
    """The newest settled entry of ``entry``'s record (what its card is drawn from)."""
    with rt.services.sessions() as session:
        latest = session.scalars(select(SyncLogEntry).where(
            SyncLogEntry.connection_id == entry.connection_id, SyncLogEntry.entity == entry.entity,
            SyncLogEntry.record_id == entry.record_id, SyncLogEntry.status != "pending")
            .order_by(SyncLogEntry.id.desc()).limit(1)).first()
        if latest is not None:
            session.expunge(latest)
    return latest


def entry_details(rt: SlackRuntime, tenant: Tenant, user: UserInfo, entry_id: int | None) -> dict[str, Any]:
    """The Details modal of an entry of the tenant's account (what its card leaves off its face). Raises
    NotFound."""
    entry = account_entry(rt, tenant, entry_id or 0)
    with rt.services.sessions() as session:
        attempts = session.scalar(select(func.max(SyncLogEntry.attempt)).where(
            SyncLogEntry.connection_id == entry.connection_id, SyncLogEntry.entity == entry.entity,
            SyncLogEntry.record_id == entry.record_id)) or entry.attempt
    existing = (entry.data or {}).get("existing")
    found = existing.get("label") if isinstance(existing, dict) else None
    return blocks.details_modal(entry, tz=user.tz or tenant.timezone, attempts=attempts, found_existing=found)


def _outcome_text(action: str, result: Any) -> str:
    """What a fix action clicked on the App Home did, in one line (a click on a message shows it in the message)."""
    from bot.blocks.messages import entry_meaning, kind_info_for
    from sync.diagnosis import KINDS

    if not isinstance(result, SyncLogEntry):
        return "Done."
    what = blocks.escape_mrkdwn(blocks.record_name(result.entity, result.record_label, result.record_id))
    if action == "mark_resolved":
        return f":white_check_mark: {what} is marked resolved."
    if result.status in ("synced", "info") or result.resolved_at is not None:
        return f":white_check_mark: Synced: {what}."
    info = kind_info_for(result.kind, entry_meaning(result)) if result.kind in KINDS else None
    title = info.title if info is not None else "Error"
    return (f":x: Still failing: {what}: {title} (attempt {result.attempt}). Its message in the sync errors channel "
            "has the details and the fixes.")


def _redraw_if_still_retrying(rt: SlackRuntime, tenant: Tenant, entry_id: int, channel: str, ts: str,
                              clicked_at: dt.datetime) -> None:
    """When no notification updated the clicked message since ``clicked_at`` (UTC) (it was not the record's
    stored message, or the retry was refused and queued nothing), draw it from the newest state so it never stays
    on "Retrying...". A message the notifier has redrawn since the click is left alone (one update, not two)."""
    with rt.services.sessions() as session:
        redrawn = session.scalar(select(SlackMessage.id).where(
            SlackMessage.account_id == tenant.account_id, SlackMessage.channel_id == channel,
            SlackMessage.ts == ts, SlackMessage.updated_at >= clicked_at))
    if redrawn is not None:
        return
    latest = _newest_of(rt, rt.services.engine.get_entry(entry_id))
    if latest is None:
        return
    try:
        rt.clients.for_team(tenant.team_id).chat_update(
            channel=channel, ts=ts, **rt.notifier.render_record(latest, tenant.timezone))
    except SlackApiError as exc:
        log.info("event=redraw_failed error=%s", exc.response.get("error"))


def open_fill_field(rt: SlackRuntime, tenant: Tenant, client: WebClient, trigger_id: str,
                    entry_id: int | None) -> None:
    """Open the fill-field modal of an entry of the tenant's account. A field chosen from one of QuickBooks'
    lists opens at once saying it is loading (the trigger_id lasts 3 seconds, QuickBooks may take longer), then
    shows the list QuickBooks answered with. Raises NotFound (not the account's entry) and ValueError (it names
    no field)."""
    entry = rt.services.engine.get_entry(entry_id or 0, account_id=tenant.account_id)
    if not blocks.chooses_from_list(entry):
        client.views_open(trigger_id=trigger_id, view=blocks.fill_field_modal(entry))
        return
    opened = client.views_open(trigger_id=trigger_id, view=blocks.fill_field_modal(entry, loading=True))
    choices = rt.services.engine.field_choices(entry.id, account_id=tenant.account_id)
    view = opened.get("view") or {}
    try:
        client.views_update(view_id=view.get("id"), hash=view.get("hash"),
                            view=blocks.fill_field_modal(entry, choices))
    except SlackApiError as exc:  # closed meanwhile (not_found) or changed (hash_conflict): nothing to show
        log.info("event=fill_field_update_failed team_id=%s entry_id=%s error=%s", tenant.team_id, entry.id,
                 exc.response.get("error"))


def fill_field(rt: SlackRuntime, tenant: Tenant, user: UserInfo, entry_id: int | None,
               value: str | None) -> str | None:
    """Save the value the user typed or chose into the record, then retry it. Returns a problem to show in the
    modal, or None when it was saved. A chosen id is not checked against the list the modal showed: QuickBooks
    is the judge (the list may have changed since), and what it refuses comes back on the error's message."""
    if entry_id is None:
        return "This form is not valid any more."
    try:
        rt.services.engine.fill_field(entry_id, value or "", user.name, account_id=tenant.account_id)
    except NotFound:
        return "That sync log entry was not found in your account."
    except ValueError as exc:
        return str(exc)
    entry_action(rt, tenant, user, "retry", entry_id, Reply.nobody())
    return None


def retry_by_label(rt: SlackRuntime, tenant: Tenant, user: UserInfo, label: str, reply: Reply) -> str:
    """`/sync-log retry JS-1001`: retry the open entry of the record with that name or number."""
    if "\x00" in label:  # no record is named so (and PostgreSQL text cannot even hold it in a query)
        return f"No open error for `{blocks.escape_mrkdwn(label[:100])}`."
    with rt.services.sessions() as session:
        entry = session.scalars(select(SyncLogEntry).where(
            SyncLogEntry.account_id == tenant.account_id, SyncLogEntry.record_label == label,
            open_clause()).order_by(SyncLogEntry.id.desc()).limit(1)).first()
    if entry is None:
        return f"No open error for `{blocks.escape_mrkdwn(label[:100])}`."
    entry_action(rt, tenant, user, "retry", entry.id, reply)
    return f"Retrying {blocks.escape_mrkdwn(label[:100])}... the error message updates when it is done."
