"""What every listener does first: find the tenant and the user, and check permission."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.runtime import SlackRuntime
from bot.workspaces import READ_REFUSAL, REFUSAL, Tenant, UserInfo

log = logging.getLogger("syncbot.handlers")

NOT_SET_UP = ("syncbot is not set up for this workspace yet: an Owner or Admin of JobsiteOn has to connect it "
              "first.")


#: Where bot.app's middleware leaves ``(team_id, Tenant | None)`` in the BoltContext of a request.
TENANT_KEY = "syncbot_tenant"


def who(rt: SlackRuntime, team_id: str | None, user_id: str | None, change: bool,
        context: Mapping[str, Any] | None = None,
        anyone: bool = False) -> tuple[Tenant | None, UserInfo | None, str | None]:
    """(tenant, user, refusal). ``change``: the action changes something (Owners and Admins only); else it
    reads the log; ``anyone``: any person of the workspace may (Contact support about a message they can see).
    A refusal is a sentence to show the user ephemerally. ``context``: the request's BoltContext, whose tenant
    (looked up by the middleware for the same team) is used instead of reading it again."""
    looked_up = context.get(TENANT_KEY) if context is not None else None
    tenant = looked_up[1] if looked_up is not None and looked_up[0] == team_id else rt.tenants.get(team_id)
    if tenant is None or not user_id:
        return None, None, NOT_SET_UP
    user = rt.directory.user(tenant.team_id, user_id)
    if anyone and not change:
        return (tenant, user, None) if not user.is_bot_or_gone else (tenant, user, REFUSAL)
    allowed = rt.directory.may_change(tenant, user_id) if change else rt.directory.may_read(tenant, user_id)
    if not allowed:
        log.warning("event=permission_refused team_id=%s user_id=%s change=%s", team_id, user_id, change)
        return tenant, user, REFUSAL if change else READ_REFUSAL
    return tenant, user, None


def ack_first(rt: SlackRuntime, work: Callable[[dict[str, Any], WebClient, Respond, BoltContext], None]) -> Callable[
        ..., None]:
    """A listener that acks at once (empty) and runs ``work(body, client, respond, context)`` after the ack on
    the runtime's reply pool (``rt.after_ack``): Bolt answers Slack when the listener returns
    (``process_before_response``), so nothing the work does (the permission check, a users.info, a views.open,
    a chat.update) delays the ack."""

    def listener(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, context: BoltContext) -> None:
        ack()
        rt.after_ack(work, body, client, respond, context)

    listener.__name__ = listener.__qualname__ = getattr(work, "__name__", "listener")  # Bolt's logs name it
    return listener


def ack_first_on(rt: SlackRuntime) -> Callable[[Callable[[dict[str, Any], WebClient, Respond, BoltContext], None]],
                                               Callable[..., None]]:
    """:func:`ack_first` as a decorator."""
    return lambda work: ack_first(rt, work)


def ids_from(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(team_id, user_id) of a block_actions or view_submission payload."""
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    return team, (body.get("user") or {}).get("id")


def int_value(value: Any) -> int | None:
    """A button value that must be an entry or connection id (tampered values give None)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) < 19 else None
