"""Buttons (block_actions): ack at once, check the clicker and the entry's account, then bot.operations.

Every answer goes through a :class:`bot.replies.Reply` built from the click: the response_url of a message, or a
modal and a DM for a click on the App Home or in a modal (Slack sends those no response_url)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import operations
from bot.blocks import ids
from bot.jobs import BadJob
from bot.replies import Reply
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo
from handlers.common import ack_first, ack_first_on, ids_from, int_value, looked_up, who
from sync.engine import NotFound
from sync.log import FilterError

log = logging.getLogger("syncbot.handlers")

ENTRY_ACTIONS = {ids.RETRY: "retry", ids.UNLINK: "unlink", ids.RECREATE: "recreate",
                 ids.LINK_EXISTING: "link_existing", ids.MARK_RESOLVED: "mark_resolved",
                 ids.KEEP_PROVIDER_TOTALS: "keep_provider_totals", ids.SEND_OWN_TAX: "send_own_tax"}


def _action(body: dict[str, Any]) -> dict[str, Any]:
    return (body.get("actions") or [{}])[0]


def _where(body: dict[str, Any]) -> tuple[str | None, str | None]:
    container = body.get("container") or {}
    if container.get("type") != "message" or container.get("is_ephemeral"):
        return None, None
    return container.get("channel_id"), container.get("message_ts")


def _refuse(reply: Reply, text: str) -> None:
    reply.now({"text": text})


def _allowed(rt: SlackRuntime, body: dict[str, Any], reply: Reply, change: bool,
             context: BoltContext, card_action: str | None = None) -> tuple[Tenant, UserInfo] | None:
    """The clicker's tenant and user, or None after telling them why not (to them only). ``card_action``: the
    click is an entry's button on its card (``retry``, ``details``...): a refusal is also shown on that card,
    where the person clicked (bot.operations.show_on_card)."""
    tenant, user, refusal = who(rt, *ids_from(body), change=change, context=context)
    if refusal or tenant is None or user is None:
        _refuse(reply, refusal or "Not allowed.")
        channel, ts = _where(body)
        value = _action(body).get("value")
        # Reconnect's and Sync Now's value: the connection (the card's record, or incident, is read off the message)
        by_connection = card_action in ("reconnect", "sync_now")
        entry_id = None if by_connection else int_value(value)
        if card_action and tenant is not None and user is not None and channel and ts and (
                entry_id is not None or by_connection):
            operations.show_on_card(rt, tenant, entry_id, channel, ts,
                                    operations.refusal_notice(rt, tenant, user, card_action, change))
        return None
    return tenant, user


def entry_button(rt: SlackRuntime, body: dict[str, Any], client: WebClient, respond: Respond | None,
                 context: BoltContext | None) -> None:
    """An entry's fix button (Retry, Unlink...): check the clicker and the entry, then the action."""
    action = _action(body)
    reply = Reply.to_click(client, body, respond)
    allowed = _allowed(rt, body, reply, change=True, context=context,
                       card_action=ENTRY_ACTIONS.get(str(action.get("action_id"))))
    if allowed is None:
        return
    tenant, user = allowed
    entry_id = int_value(action.get("value"))
    if entry_id is None:
        log.warning("event=tampered_value team_id=%s action_id=%s", tenant.team_id, action.get("action_id"))
        _refuse(reply, "That button is not valid any more.")
        return
    channel, ts = _where(body)
    operations.entry_action(rt, tenant, user, ENTRY_ACTIONS[action["action_id"]], entry_id, reply, channel, ts)


def sync_now_button(rt: SlackRuntime, body: dict[str, Any], client: WebClient, respond: Respond | None,
                    context: BoltContext | None) -> None:
    """Sync Now (a message's or the App Home's button)."""
    reply = Reply.to_click(client, body, respond)
    allowed = _allowed(rt, body, reply, change=True, context=context, card_action="sync_now")
    if allowed is None:
        return
    tenant, user = allowed
    operations.run_sync_now(rt, tenant, user, reply, connection_value=_action(body).get("value"))


def retry_all_confirm_button(rt: SlackRuntime, body: dict[str, Any], client: WebClient, respond: Respond | None,
                             context: BoltContext | None) -> None:
    """Retry All's confirmation."""
    reply = Reply.to_click(client, body, respond)
    allowed = _allowed(rt, body, reply, change=True, context=context)
    if allowed is None:
        return
    tenant, user = allowed
    operations.run_retry_all(rt, tenant, user, _action(body).get("value"), reply)


#: The buttons whose click is stored as a job before it is acked (`bot.jobs`): the job's kind, and its work.
DURABLE_CLICKS: dict[str, tuple[str, Callable[..., None]]] = {
    **{action_id: ("entry_action", entry_button) for action_id in ENTRY_ACTIONS},
    ids.SYNC_NOW: ("sync_now", sync_now_button), ids.RETRY_ALL_CONFIRM: ("retry_all", retry_all_confirm_button)}


def run_click(rt: SlackRuntime, body: dict[str, Any], respond: Respond | None) -> None:
    """Run a click stored by :func:`durable_click`, in the worker that claimed its job: the permission check and
    the action, as the listener would have after its ack (the action runs in this job, not in another)."""
    action_id = str(_action(body).get("action_id"))
    team_id, _user = ids_from(body)
    if action_id not in DURABLE_CLICKS or not team_id:
        raise BadJob(f"the stored click's button {action_id[:40]!r} is not one that is stored")
    DURABLE_CLICKS[action_id][1](rt, body, rt.clients.for_team(team_id), respond, None)


def durable_click(rt: SlackRuntime) -> Callable[..., None]:
    """A listener that stores the click as a job (committed), then acks empty: the permission check and the
    work run in whichever worker claims the job, here or on another replica, and a replica that dies after the
    ack loses nothing. The job carries the click as Slack sent it, less the message's blocks, with its
    response_url and trigger_id sealed (`bot.operations.store_click`)."""

    def listener(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        kind = DURABLE_CLICKS[str(_action(body).get("action_id"))][0]
        # an entry's fix needs nothing read before its ack; Sync Now and Retry All carry their connection, so
        # that one company runs one of them at a time (bot.jobs.SERIAL_KINDS)
        tenant = looked_up(rt, context.team_id, context) if kind != "entry_action" else None
        connection_id = tenant.connection_id if tenant is not None else None
        operations.store_click(rt, kind, connection_id, body)
        ack()

    return listener


def register(app: App, rt: SlackRuntime) -> None:
    for action_id in DURABLE_CLICKS:
        app.action(action_id)(durable_click(rt))

    @app.action(ids.FILL_FIELD)
    @ack_first_on(rt)
    def fill_field(body: dict[str, Any], client: WebClient, respond: Respond, context: BoltContext) -> None:
        reply = Reply.to_click(client, body, respond)
        allowed = _allowed(rt, body, reply, change=True, context=context, card_action="fill_field")
        if allowed is None:
            return
        tenant, _user = allowed
        try:
            operations.open_fill_field(rt, tenant, client, body["trigger_id"], int_value(_action(body).get("value")))
        except (NotFound, ValueError):
            _refuse(reply, "That sync log entry was not found in your account.")

    @app.action(ids.CONTACT_SUPPORT)
    @ack_first_on(rt)
    def contact_support(body: dict[str, Any], client: WebClient, respond: Respond, context: BoltContext) -> None:
        reply = Reply.to_click(client, body, respond)
        tenant, user, refusal = who(rt, *ids_from(body), change=False, context=context, anyone=True)
        if refusal or tenant is None or user is None:
            _refuse(reply, refusal or "Not allowed.")
            return
        try:
            view = operations.contact_support(rt, tenant, user, int_value(_action(body).get("value")))
        except NotFound:
            _refuse(reply, "That sync log entry was not found in your account.")
            return
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(ids.ENTRY_DETAILS)
    @ack_first_on(rt)
    def entry_details(body: dict[str, Any], client: WebClient, respond: Respond, context: BoltContext) -> None:
        reply = Reply.to_click(client, body, respond)
        allowed = _allowed(rt, body, reply, change=False, context=context, card_action="details")
        if allowed is None:
            return
        tenant, user = allowed
        try:
            view = operations.entry_details(rt, tenant, user, int_value(_action(body).get("value")))
        except NotFound:
            _refuse(reply, "That sync log entry was not found in your account.")
            return
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(ids.RECONNECT)
    @ack_first_on(rt)
    def reconnect(body: dict[str, Any], client: WebClient, respond: Respond, context: BoltContext) -> None:
        reply = Reply.to_click(client, body, respond)
        allowed = _allowed(rt, body, reply, change=True, context=context, card_action="reconnect")
        if allowed is None:
            return
        tenant, user = allowed
        reply.now(operations.reconnect_link(rt, tenant, user))

    @app.action(ids.RECONNECT_LINK)
    def reconnect_link(ack: Ack) -> None:
        ack()  # a URL button: the browser opens the link; acking avoids Slack's warning icon

    @app.action(ids.OPEN_IN_PROVIDER)
    def open_in_provider(ack: Ack) -> None:
        ack()  # a URL button (the invoice in QuickBooks): the browser opens it

    @app.action(ids.OPEN_RELATED)
    def open_related(ack: Ack) -> None:
        ack()  # a URL button to another record's card: Slack opens the message

    @app.action(ids.RETRY_ALL)
    @ack_first_on(rt)
    def retry_all(body: dict[str, Any], client: WebClient, respond: Respond, context: BoltContext) -> None:
        reply = Reply.to_click(client, body, respond)
        allowed = _allowed(rt, body, reply, change=True, context=context)
        if allowed is None:
            return
        tenant, _user = allowed
        reply.now(operations.retry_all_prompt(rt, tenant))

    @app.action(ids.RETRY_ALL_CANCEL)
    @ack_first_on(rt)
    def retry_all_cancel(body: dict[str, Any], client: WebClient, respond: Respond, context: BoltContext) -> None:
        Reply.to_click(client, body, respond).replace({"text": "Retry All cancelled: nothing was changed."})

    def log_button(body: dict[str, Any], client: WebClient, respond: Respond, context: BoltContext) -> None:
        reply = Reply.to_click(client, body, respond)
        action = _action(body)
        allowed = _allowed(rt, body, reply, change=False, context=context,
                           card_action="view_log" if action.get("action_id") == ids.VIEW_ENTRY_LOG else None)
        if allowed is None:
            return
        tenant, user = allowed
        before = after = None
        words_text = str(action.get("value") or "")
        if action["action_id"] in (ids.LOG_NEXT, ids.LOG_PREV):
            try:
                value = json.loads(words_text)
                before, after = int_value(value.get("before")), int_value(value.get("after"))
                words_text = str(value.get("q") or "")
            except (ValueError, AttributeError):
                _refuse(reply, "That button is not valid any more.")
                return
        elif action["action_id"] == ids.VIEW_ENTRY_LOG:
            try:
                entry = rt.services.engine.get_entry(int_value(words_text) or 0, account_id=tenant.account_id)
            except NotFound:
                _refuse(reply, "That sync log entry was not found in your account.")
                return
            words_text = f'entity:{entry.entity} "{entry.record_label or ""}"'
        try:
            message = operations.log_message(rt, tenant, user, operations.split_words(words_text),
                                             before=before, after=after)
        except (FilterError, operations.BadWords) as exc:
            _refuse(reply, str(exc))
            return
        in_log = (body.get("container") or {}).get("is_ephemeral") and action["action_id"] in (
            ids.LOG_NEXT, ids.LOG_PREV)
        if in_log:
            reply.replace(message)
        else:
            reply.now(message)

    for action_id in (ids.VIEW_LOG, ids.VIEW_ENTRY_LOG, ids.LOG_NEXT, ids.LOG_PREV):
        app.action(action_id)(ack_first(rt, log_button))
