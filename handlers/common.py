"""What every listener does first: find the tenant and the user, and check permission."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.runtime import SlackRuntime
from bot.workspaces import READ_REFUSAL, REFUSAL, Tenant, Tenants, UserInfo

log = logging.getLogger("syncbot.handlers")

NOT_SET_UP = ("syncbot is not set up for this workspace yet: an Owner or Admin of JobsiteOn has to connect it "
              "first.")


#: Where bot.app's middleware leaves the request's :class:`TenantLookup` in its BoltContext.
TENANT_KEY = "syncbot_tenant"


class TenantLookup:
    """The tenant of a request's team, read on first use and then kept for the request: a listener that acks
    without needing it (a click stored as a job) costs no query before its ack, and one that needs it (a
    command, a Sync Now's connection, the work after an ack) reads it once. In single-workspace mode the first
    read binds the workspace (bot.workspaces.Tenants.get), wherever it happens."""

    _UNREAD = object()

    def __init__(self, tenants: Tenants, team_id: str | None) -> None:
        self.tenants = tenants
        self.team_id = team_id
        self._tenant: object = self._UNREAD

    def get(self) -> Tenant | None:
        if self._tenant is self._UNREAD:
            self._tenant = self.tenants.get(self.team_id)
        return self._tenant  # type: ignore[return-value]


def looked_up(rt: SlackRuntime, team_id: str | None, context: Mapping[str, Any] | None) -> Tenant | None:
    """The tenant of ``team_id``: the request's :class:`TenantLookup` when it is for that team, else read now."""
    lookup = context.get(TENANT_KEY) if context is not None else None
    if isinstance(lookup, TenantLookup) and lookup.team_id == team_id:
        return lookup.get()
    return rt.tenants.get(team_id)


def who(rt: SlackRuntime, team_id: str | None, user_id: str | None, change: bool,
        context: Mapping[str, Any] | None = None,
        anyone: bool = False) -> tuple[Tenant | None, UserInfo | None, str | None]:
    """(tenant, user, refusal). ``change``: the action changes something (Owners and Admins only); else it
    reads the log; ``anyone``: any person of the workspace may (Contact support about a message they can see).
    A refusal is a sentence to show the user ephemerally. ``context``: the request's BoltContext, whose tenant
    (:class:`TenantLookup`, for the same team) is used instead of reading it again."""
    tenant = looked_up(rt, team_id, context)
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
