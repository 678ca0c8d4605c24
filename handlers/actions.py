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

from bot.blocks import ids
from bot.jobs import BadJob
from bot.operations import account, cards, entries, pages, parsing, runs, stored, support
from bot.replies import Reply
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo
from handlers.common import ENTRY_NOT_FOUND, Request, ack_first, ids_from, int_value, looked_up, permitted
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


#: The buttons drawn on a record's card (or an incident's, or a reminder's), by the name a refusal on the card gives
#: them (`bot.operations.cards.BUTTON_WORDS`): a refused click on one is also shown on the card where it was clicked.
CARD_ACTIONS = {**ENTRY_ACTIONS, ids.SYNC_NOW: "sync_now", ids.FILL_FIELD: "fill_field",
                ids.ENTRY_DETAILS: "details", ids.RECONNECT: "reconnect", ids.VIEW_ENTRY_LOG: "view_log"}


class Click(Request):
    """A button's click (the preamble is `handlers.common.permitted`): the click as Slack sent it, the workspace's
    client, and where the answer goes (a :class:`Reply` built from the click)."""

    def __init__(self, rt: SlackRuntime, body: dict[str, Any], client: WebClient, respond: Respond | None,
                 context: BoltContext | None) -> None:
        super().__init__(rt, *ids_from(body), context)
        self.body, self.client = body, client
        self.reply = Reply.to_click(client, body, respond)

    @property
    def action(self) -> dict[str, Any]:
        return _action(self.body)

    @property
    def value(self) -> int | None:
        """The button's value as an entry or connection id (None when it is not one: tampered)."""
        return int_value(self.action.get("value"))

    def refuse(self, text: str) -> None:
        self.reply.now({"text": text})

    def refused(self, text: str, tenant: Tenant | None, user: UserInfo | None, change: bool) -> None:
        """Told to the clicker; on a card's button (:data:`CARD_ACTIONS`) also shown on the card, where the person
        clicked (`bot.operations.cards.show_on_card`)."""
        self.refuse(text)
        card_action = CARD_ACTIONS.get(str(self.action.get("action_id")))
        channel, ts = _where(self.body)
        # Reconnect's and Sync Now's value: the connection (the card's record, or incident, is read off the message)
        by_connection = card_action in ("reconnect", "sync_now")
        entry_id = None if by_connection else self.value
        if card_action and tenant is not None and user is not None and channel and ts and (
                entry_id is not None or by_connection):
            cards.show_on_card(self.rt, tenant, entry_id, channel, ts,
                               cards.refusal_notice(self.rt, tenant, user, card_action, change))


#: A click's work: the listener's after the ack (`handlers.common.ack_first`, through :func:`on`), or a stored
#: click's job's (:func:`run_click`); its preamble is `handlers.common.permitted`.
ClickWork = Callable[[Click], None]


def on(app: App, rt: SlackRuntime, *action_ids: str) -> Callable[[ClickWork], ClickWork]:
    """Register ``work`` for ``action_ids``: acked at once (empty), then run after the ack (`ack_first`)."""

    def register_work(work: ClickWork) -> ClickWork:
        def after_ack(body: dict[str, Any], client: WebClient, respond: Respond | None,
                      context: BoltContext | None) -> None:
            work(Click(rt, body, client, respond, context))

        after_ack.__name__ = after_ack.__qualname__ = work.__name__  # Bolt's logs name the listener
        for action_id in action_ids:
            app.action(action_id)(ack_first(rt, after_ack))
        return work

    return register_work


@permitted(change=True)
def entry_button(c: Click) -> None:
    """An entry's fix button (Retry, Unlink...): the action on the clicked entry."""
    if c.value is None:
        log.warning("event=tampered_value team_id=%s action_id=%s", c.tenant.team_id, c.action.get("action_id"))
        c.refuse("That button is not valid any more.")
        return
    channel, ts = _where(c.body)
    entries.entry_action(c.rt, c.tenant, c.user, ENTRY_ACTIONS[c.action["action_id"]], c.value, c.reply,
                         channel, ts)


@permitted(change=True)
def sync_now_button(c: Click) -> None:
    """Sync Now (a message's or the App Home's button)."""
    runs.run_sync_now(c.rt, c.tenant, c.user, c.reply, connection_value=c.action.get("value"))


@permitted(change=True)
def retry_all_confirm_button(c: Click) -> None:
    """Retry All's confirmation."""
    runs.run_retry_all(c.rt, c.tenant, c.user, c.action.get("value"), c.reply)


#: The buttons whose click is stored as a job before it is acked (`bot.jobs`): the job's kind, and its work.
DURABLE_CLICKS: dict[str, tuple[str, ClickWork]] = {
    **{action_id: ("entry_action", entry_button) for action_id in ENTRY_ACTIONS},
    ids.SYNC_NOW: ("sync_now", sync_now_button), ids.RETRY_ALL_CONFIRM: ("retry_all", retry_all_confirm_button)}


def run_click(rt: SlackRuntime, body: dict[str, Any], respond: Respond | None) -> None:
    """Run a click stored by :func:`durable_click`, in the worker that claimed its job: the permission check and
    the action, as the listener would have after its ack (the action runs in this job, not in another)."""
    action_id = str(_action(body).get("action_id"))
    team_id, _user = ids_from(body)
    if action_id not in DURABLE_CLICKS or not team_id:
        raise BadJob(f"the stored click's button {action_id[:40]!r} is not one that is stored")
    DURABLE_CLICKS[action_id][1](Click(rt, body, rt.clients.for_team(team_id), respond, None))


def durable_click(rt: SlackRuntime) -> Callable[..., None]:
    """A listener that stores the click as a job (committed), then acks empty: the permission check and the
    work run in whichever worker claims the job, here or on another replica, and a replica that dies after the
    ack loses nothing. The job carries the click as Slack sent it, less the message's blocks, with its
    response_url and trigger_id sealed (`bot.operations.stored.store_click`)."""

    def listener(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        kind = DURABLE_CLICKS[str(_action(body).get("action_id"))][0]
        # an entry's fix needs nothing read before its ack; Sync Now and Retry All carry their connection, so
        # that one company runs one of them at a time (bot.jobs.SERIAL_KINDS)
        tenant = looked_up(rt, context.team_id, context) if kind != "entry_action" else None
        connection_id = tenant.connection_id if tenant is not None else None
        stored.store_click(rt, kind, connection_id, body)
        ack()

    return listener


@permitted(change=True)
def fill_field(c: Click) -> None:
    try:
        entries.open_fill_field(c.rt, c.tenant, c.client, c.body["trigger_id"], c.value)
    except ValueError:
        c.refuse(ENTRY_NOT_FOUND)


@permitted(change=False, anyone=True)
def contact_support(c: Click) -> None:
    view = support.contact_support(c.rt, c.tenant, c.user, c.value)
    c.client.views_open(trigger_id=c.body["trigger_id"], view=view)


@permitted(change=False)
def entry_details(c: Click) -> None:
    view = entries.entry_details(c.rt, c.tenant, c.user, c.value)
    c.client.views_open(trigger_id=c.body["trigger_id"], view=view)


@permitted(change=True)
def reconnect(c: Click) -> None:
    c.reply.now(account.reconnect_link(c.rt, c.tenant, c.user))


@permitted(change=True)
def retry_all(c: Click) -> None:
    c.reply.now(runs.retry_all_prompt(c.rt, c.tenant))


def retry_all_cancel(c: Click) -> None:
    c.reply.replace({"text": "Retry All cancelled: nothing was changed."})


@permitted(change=False)
def log_button(c: Click) -> None:
    """View log (a card's or the App Home's), and a log page's Next and Previous."""
    action = c.action
    before = after = None
    words_text = str(action.get("value") or "")
    if action["action_id"] in (ids.LOG_NEXT, ids.LOG_PREV):
        try:
            value = json.loads(words_text)
            before, after = int_value(value.get("before")), int_value(value.get("after"))
            words_text = str(value.get("q") or "")
        except (ValueError, AttributeError):
            c.refuse("That button is not valid any more.")
            return
    elif action["action_id"] == ids.VIEW_ENTRY_LOG:
        entry = c.rt.services.engine.get_entry(int_value(words_text) or 0, account_id=c.tenant.account_id)
        words_text = parsing.join_words(parsing.with_free_text([f"entity:{entry.entity}"], entry.record_label or ""))
    try:
        message = pages.log_message(c.rt, c.tenant, c.user, parsing.split_words(words_text),
                                    before=before, after=after)
    except (FilterError, parsing.BadWords) as exc:
        c.refuse(str(exc))
        return
    in_log = (c.body.get("container") or {}).get("is_ephemeral") and action["action_id"] in (
        ids.LOG_NEXT, ids.LOG_PREV)
    if in_log:
        c.reply.replace(message)
    else:
        c.reply.now(message)


def register(app: App, rt: SlackRuntime) -> None:
    """Every button's listener: the stored ones (:data:`DURABLE_CLICKS`), those run after their ack, and the URL
    buttons (acked only)."""
    for action_id in DURABLE_CLICKS:
        app.action(action_id)(durable_click(rt))
    for action_id, work in ((ids.FILL_FIELD, fill_field), (ids.CONTACT_SUPPORT, contact_support),
                            (ids.ENTRY_DETAILS, entry_details), (ids.RECONNECT, reconnect),
                            (ids.RETRY_ALL, retry_all), (ids.RETRY_ALL_CANCEL, retry_all_cancel)):
        on(app, rt, action_id)(work)
    on(app, rt, ids.VIEW_LOG, ids.VIEW_ENTRY_LOG, ids.LOG_NEXT, ids.LOG_PREV)(log_button)

    for action_id in (ids.RECONNECT_LINK, ids.OPEN_IN_PROVIDER, ids.OPEN_RELATED):
        # a URL button (Reconnect's link, the invoice in QuickBooks, another record's card): the browser or Slack
        # opens it; acking avoids Slack's warning icon
        app.action(action_id)(_ack_only)


def _ack_only(ack: Ack) -> None:
    ack()
