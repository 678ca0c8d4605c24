"""What every listener does first: find the tenant and the user, and check permission (the preamble,
:func:`permitted`, shared by buttons, slash commands and modal submissions), and ack first."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.runtime import SlackRuntime
from bot.workspaces import READ_REFUSAL, REFUSAL, Tenant, Tenants, UserInfo
from sync.engine import NotFound

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


#: What a request about an entry that is not (or no longer) in the asker's account is told.
ENTRY_NOT_FOUND = "That sync log entry was not found in your account."


class Request:
    """A request from Slack as its listener sees it (a click, a slash command, a modal's submission: each surface
    has its subclass): the runtime, who sent it, and how the surface tells them no (:meth:`refuse`). Once the
    preamble (:func:`permitted`) let it through, it knows the asker's ``tenant`` and ``user``."""

    def __init__(self, rt: SlackRuntime, team_id: str | None, user_id: str | None,
                 context: Mapping[str, Any] | None) -> None:
        self.rt = rt
        self.team_id, self.user_id = team_id, user_id
        self.context = context
        self._asker: tuple[Tenant, UserInfo] | None = None

    @property
    def tenant(self) -> Tenant:
        assert self._asker is not None, "only a permitted request has a tenant"
        return self._asker[0]

    @property
    def user(self) -> UserInfo:
        assert self._asker is not None, "only a permitted request has a user"
        return self._asker[1]

    def refuse(self, text: str) -> None:
        """Tell the asker ``text`` (to them only), the surface's own way."""
        raise NotImplementedError

    def refused(self, text: str, tenant: Tenant | None, user: UserInfo | None, change: bool) -> None:
        """The preamble refused the asker (``tenant`` and ``user`` when they are known; ``change``: what they
        asked changes something): :meth:`refuse`."""
        self.refuse(text)


R = TypeVar("R", bound=Request)


def permitted(*, change: bool, anyone: bool = False) -> Callable[[Callable[[R], None]], Callable[[R], None]]:
    """The preamble of every listener, in one place: check the asker (``change``: it changes something, Owners
    and Admins only; else it reads the log; ``anyone``: any person of the workspace may), tell them why not
    (:meth:`Request.refused`) or run ``work(request)``; an entry the work does not find in the account is refused
    with :data:`ENTRY_NOT_FOUND`."""

    def wrap(work: Callable[[R], None]) -> Callable[[R], None]:
        def run(request: R) -> None:
            tenant, user, refusal = who(request.rt, request.team_id, request.user_id, change=change,
                                        context=request.context, anyone=anyone)
            if refusal or tenant is None or user is None:
                request.refused(refusal or "Not allowed.", tenant, user, change)
                return
            request._asker = tenant, user
            try:
                work(request)
            except NotFound:
                request.refuse(ENTRY_NOT_FOUND)

        run.__name__ = run.__qualname__ = work.__name__  # Bolt's logs name the listener
        return run

    return wrap


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
