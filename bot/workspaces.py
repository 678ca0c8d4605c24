"""Which JobsiteOn account a Slack workspace acts on, and who in it may change anything.

Only the workspace's Owners and Admins (users.info `is_owner` / `is_admin` / `is_primary_owner`, cached for
minutes; https://docs.slack.dev/reference/methods/users.info) or users on the account's admin list may change
anything; by default only they may read the log (`open_reading` opens it to every member). The help article:
"You need Owner or Admin permissions."
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cachetools import TTLCache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Connection as SAConnection
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Workspace
from sync.models import Account, Connection, Notification

if TYPE_CHECKING:
    from sqlalchemy import Row

log = logging.getLogger("syncbot.workspaces")

REFUSAL = "You need Owner or Admin permissions to do that in syncbot (JobsiteOn's sync log)."
#: A member who may not read the log (the account keeps reading for those who may act): what to ask for.
READ_REFUSAL = ("You need Owner or Admin permissions to read JobsiteOn's sync log in syncbot. An Owner or Admin "
                "can open reading to every member with `/sync-log reading open`.")


@dataclass(frozen=True)
class Tenant:
    """The account a workspace is bound to, with what the handlers need to know of it."""

    team_id: str
    account_id: int
    account_name: str
    timezone: str
    channel_id: str | None
    connection_id: int | None
    admin_user_ids: tuple[str, ...]
    open_reading: bool
    channel_problem: str | None = None


def tenant_for(session: Session, team_id: str, auto_bind: bool) -> Tenant | None:
    """The tenant of ``team_id``. With ``auto_bind`` (single-workspace mode) an unbound workspace is bound to
    the first account that has no workspace yet; the caller commits. None when there is none."""
    tenant = _read_tenant(session, team_id)
    if tenant is not None or not auto_bind:
        return tenant
    ws = session.get(Workspace, team_id)
    if ws is None:
        bound = select(Workspace.account_id)
        account = session.scalars(select(Account).where(Account.id.not_in(bound)).order_by(Account.id)).first()
        if account is None:
            return None
        ws = Workspace(team_id=team_id, account_id=account.id, admin_user_ids=[])
        session.add(ws)
        session.flush()
        _deliver_waiting_now(session, account.id)
        log.info("event=workspace_bound team_id=%s account_id=%s", team_id, account.id)
    return _read_tenant(session, team_id)


#: The tenant of a bound workspace in one query: the workspace, its account and the account's first connection.
#: Built once: a statement object keeps its SQLAlchemy cache key, so each request only binds ``team_id``.
_TENANT_QUERY = (
    select(Workspace.channel_id, Workspace.admin_user_ids, Workspace.open_reading, Workspace.channel_problem,
           Account.id, Account.name, Account.timezone,
           select(func.min(Connection.id)).where(Connection.account_id == Workspace.account_id).scalar_subquery())
    .join(Account, Account.id == Workspace.account_id)
    .where(Workspace.team_id == bindparam("team_id")))
if TYPE_CHECKING:
    #: Its row: SQLAlchemy types a select of this many columns as a row of Any, which mypy unpacks as objects.
    _TenantRow = Row[str | None, list[str], bool, str | None, int, str, str, int | None]


def _read_tenant(db: Session | SAConnection, team_id: str) -> Tenant | None:
    """The tenant of a bound workspace (:data:`_TENANT_QUERY` on a session or a Core connection), or None."""
    row: _TenantRow | None = db.execute(_TENANT_QUERY, {"team_id": team_id}).first()
    if row is None:
        return None
    channel_id, admin_user_ids, open_reading, channel_problem, account_id, name, timezone, connection_id = row
    return Tenant(team_id=team_id, account_id=account_id, account_name=name, timezone=timezone or "UTC",
                  channel_id=channel_id, connection_id=connection_id, admin_user_ids=tuple(admin_user_ids or ()),
                  open_reading=bool(open_reading), channel_problem=channel_problem)


def _deliver_waiting_now(session: Session, account_id: int) -> None:
    """Notifications that waited for a workspace or a channel are due again at once."""
    session.execute(update(Notification).where(Notification.account_id == account_id,
                                               Notification.delivered_at.is_(None)).values(next_attempt_at=None))


class Tenants:
    """Looks tenants up (and binds them in single-workspace mode)."""

    def __init__(self, sessions: sessionmaker[Session], auto_bind: bool) -> None:
        self.sessions = sessions
        self.auto_bind = auto_bind

    def get(self, team_id: str | None) -> Tenant | None:
        """The tenant of ``team_id`` (bound now in single-workspace mode), or None. Runs on every request: a
        bound workspace costs one query, read through the session's Core connection (no ORM objects)."""
        if not team_id:
            return None
        with self.sessions() as session:
            tenant = _read_tenant(session.connection(), team_id)
            if tenant is None and self.auto_bind:
                tenant = tenant_for(session, team_id, auto_bind=True)
                session.commit()
            return tenant

    def set_channel(self, team_id: str, channel_id: str, user_id: str | None = None) -> None:
        """Send notifications to ``channel_id``; ``user_id`` (who set it) is told if it breaks."""
        with self.sessions() as session, session.begin():
            ws = session.get(Workspace, team_id)
            if ws is not None:
                ws.channel_id = channel_id
                ws.channel_problem = None
                _deliver_waiting_now(session, ws.account_id)
                ws.installer_user_id = user_id or ws.installer_user_id


    def edit_admins(self, team_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> bool:
        """Add and remove Slack user ids on the workspace's admin list; True when the list changed."""
        with self.sessions() as session, session.begin():
            ws = session.get(Workspace, team_id, with_for_update=True)
            if ws is None:
                return False
            before = list(ws.admin_user_ids or [])
            after = [u for u in before if u not in remove]
            after += [u for u in dict.fromkeys(add) if u not in after]
            ws.admin_user_ids = after
            return after != before

    def set_open_reading(self, team_id: str, open_reading: bool) -> None:
        """Whether every member may read the workspace's sync log (else Owners, Admins and the admin list)."""
        with self.sessions() as session, session.begin():
            ws = session.get(Workspace, team_id)
            if ws is not None:
                ws.open_reading = open_reading


    def bind_install(self, team_id: str, team_name: str | None, installer_user_id: str | None,
                     account_id: int | None = None) -> Tenant:
        """Bind a workspace that just installed the app (multi-workspace mode) and return its tenant.

        A workspace bound already keeps its account (a reinstall). Otherwise it is bound to ``account_id`` (from
        a signed install link, :class:`InstallLinks`) when that account exists and has no workspace yet, else
        to a new, empty account named after the workspace: a workspace never gets another's account by
        installing. ``installer_user_id`` is told when the channel breaks."""
        with self.sessions() as session, session.begin():
            ws = session.get(Workspace, team_id)
            if ws is None:
                account = session.get(Account, account_id) if account_id is not None else None
                taken = account is not None and session.scalars(
                    select(Workspace.team_id).where(Workspace.account_id == account.id)).first() is not None
                if account is None or taken:
                    if account_id is not None:
                        log.warning("event=install_link_unusable team_id=%s account_id=%s taken=%s", team_id,
                                    account_id, taken)
                    account = Account(name=(team_name or team_id)[:200])
                    session.add(account)
                    session.flush()
                ws = Workspace(team_id=team_id, account_id=account.id, admin_user_ids=[])
                session.add(ws)
                log.info("event=workspace_installed team_id=%s account_id=%s", team_id, account.id)
            elif account_id is not None and account_id != ws.account_id:
                log.warning("event=install_link_ignored team_id=%s bound_account_id=%s link_account_id=%s",
                            team_id, ws.account_id, account_id)
            ws.team_name = team_name or ws.team_name
            ws.installer_user_id = installer_user_id or ws.installer_user_id
            session.flush()
            _deliver_waiting_now(session, ws.account_id)
            tenant = tenant_for(session, team_id, auto_bind=False)
        assert tenant is not None
        return tenant


class InstallLinks:
    """Signed, expiring install links that bind the installing workspace to a given account:
    ``/slack/install?account=<token>`` with token ``<account_id>.<expires unix s>.<HMAC-SHA256>``."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.clock = clock

    def _sign(self, account_id: int, expires: int) -> str:
        return hmac.new(self.secret, f"install:{account_id}.{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def mint(self, account_id: int, ttl_s: int = 7 * 86400) -> str:
        """A token for ``account_id`` valid ``ttl_s`` seconds."""
        expires = int(self.clock()) + ttl_s
        return f"{account_id}.{expires}.{self._sign(account_id, expires)}"

    def verify(self, token: str | None) -> int | None:
        """The account id of a valid, unexpired token; None when it is absent, forged or expired."""
        parts = (token or "").split(".")
        if len(parts) != 3 or not all(p.isascii() and p.isalnum() for p in parts) or len(token or "") > 100:
            return None
        if not (parts[0].isdigit() and parts[1].isdigit()):
            return None
        account_id, expires = int(parts[0]), int(parts[1])
        if expires < self.clock() or not hmac.compare_digest(parts[2], self._sign(account_id, expires)):
            return None
        return account_id


@dataclass
class UserInfo:
    """What syncbot needs of a Slack user: whether they are an Owner or Admin, their name and time zone."""

    user_id: str
    name: str
    is_admin: bool
    tz: str | None
    #: A bot or a deactivated account: never a person to give rights to or to DM.
    is_bot_or_gone: bool = False


class Directory:
    """users.info with a cache (``ttl`` seconds, at most ``max_users`` answers, the least recently used dropped
    first: cachetools' TTLCache): Slack's answer decides Owner/Admin, plus the account's list.

    ``client_for(team_id)`` returns the WebClient of that workspace.
    """

    def __init__(self, client_for: Callable[[str], WebClient], ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, max_users: int = 10_000) -> None:
        self.client_for = client_for
        self.ttl = ttl
        self.clock = clock
        self._cache: TTLCache[tuple[str, str], UserInfo] = TTLCache(maxsize=max_users, ttl=ttl, timer=clock)
        self._lock = threading.Lock()

    def user(self, team_id: str, user_id: str) -> UserInfo:
        """The user's info (cached). A users.info failure counts as not an admin (never grants rights)."""
        key = (team_id, user_id)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
        try:
            answer = self.client_for(team_id).users_info(user=user_id)
            user = answer.get("user") or {}
            info = UserInfo(user_id=user_id,
                            name=str((user.get("profile") or {}).get("display_name") or user.get("real_name")
                                     or user.get("name") or user_id),
                            is_admin=bool(user.get("is_owner") or user.get("is_admin")
                                          or user.get("is_primary_owner")),
                            tz=user.get("tz"),
                            is_bot_or_gone=bool(user.get("is_bot") or user.get("deleted")
                                                or user.get("id") == "USLACKBOT"))
        except SlackApiError as exc:
            log.warning("event=users_info_failed team_id=%s user_id=%s error=%s", team_id, user_id,
                        exc.response.get("error"))
            return UserInfo(user_id=user_id, name=user_id, is_admin=False, tz=None)
        with self._lock:
            self._cache[key] = info
        return info

    def may_change(self, tenant: Tenant, user_id: str) -> bool:
        """Owners, Admins and the account's admin list may change anything."""
        return user_id in tenant.admin_user_ids or self.user(tenant.team_id, user_id).is_admin

    def may_read(self, tenant: Tenant, user_id: str) -> bool:
        """Reading the log: admins, or everyone when the account opened it."""
        return tenant.open_reading or self.may_change(tenant, user_id)
