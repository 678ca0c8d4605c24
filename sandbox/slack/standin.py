"""The Slack Web API stand-in's state and behaviour, independent of HTTP.

:class:`SlackStandIn` answers ``handle_api(method, params, token)`` the way https://slack.com/api/<method> does
(https://docs.slack.dev/apis/web-api/): HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``,
HTTP 429 with ``Retry-After`` when rate limited. It keeps the workspace (teams, users, channels, messages,
threads, ephemerals, Home tabs, modals), records every call, and takes injected faults.
All methods are thread-safe: uvicorn serves from its own thread while tests read state from theirs.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import pickle
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sandbox import checks
from sandbox.slack import config as cfg
from sandbox.slack.blockkit import error_body, validate_blocks, validate_view
from sandbox.slack.config import RateLimit, SlackStandInConfig
from sandbox.slack.ratelimit import RateLimiter, retry_after_header
from sandbox.slack.state import (
    Call,
    Channel,
    Edit,
    Ephemeral,
    Fault,
    Message,
    ResponseUrl,
    Team,
    Trigger,
    User,
    View,
)

SUPPORTED_METHODS = (
    "auth.test", "chat.postMessage", "chat.update", "chat.delete", "chat.postEphemeral", "chat.getPermalink",
    "views.publish", "views.open", "views.update", "views.push", "users.info", "conversations.open",
    "conversations.info", "conversations.join", "conversations.history", "conversations.replies",
)

#: The bot scope each method needs (its reference page's "Scopes" fact), checked when a team's ``scopes`` are
#: set. conversations.history and conversations.replies need the history scope of the channel's type
#: (channels:history, groups:history, im:history: :data:`HISTORY_SCOPES`), checked by their handlers.
METHOD_SCOPES = {
    "chat.postMessage": "chat:write", "chat.update": "chat:write", "chat.delete": "chat:write",
    "chat.postEphemeral": "chat:write", "users.info": "users:read", "conversations.open": "im:write",
    "conversations.info": "channels:read",
}
HISTORY_SCOPES = {"public": "channels:history", "private": "groups:history", "im": "im:history"}


@dataclass
class ApiResponse:
    """What to answer over HTTP: status, JSON (dict) or text body, headers, and a delay before answering."""

    status: int
    body: dict[str, Any] | str | None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _ApiError(Exception):
    """An ``ok: false`` answer raised from inside a method handler."""

    def __init__(self, error: str, extra: dict[str, Any] | None = None, status: int = 200) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra or {}
        self.status = status


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return False


def _json_param(value: Any) -> Any:
    """Slack takes blocks/view/attachments as a JSON-encoded string (form) or as JSON itself (JSON body)."""
    if isinstance(value, str):
        return json.loads(value)
    return value


class SlackStandIn:
    """A Slack workspace with our app installed, answering Web API calls.

    Read state with :meth:`calls`, :meth:`messages`, :meth:`message`, :meth:`ephemerals`, :meth:`home_view`,
    :meth:`open_views`; shape it with :meth:`add_team`, :meth:`add_user`, :meth:`add_channel`,
    :meth:`set_bot_membership`, :meth:`archive_channel`, :meth:`set_token_state`; inject trouble with
    :meth:`inject_fault`, :meth:`set_update_error`, :meth:`set_rate_limit`; mint what Slack mints for a request with
    :meth:`mint_response_url` and :meth:`mint_trigger_id`.
    """

    def __init__(self, config: SlackStandInConfig | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.RLock()
        self._monotonic = monotonic
        self.config = config or SlackStandInConfig()
        self.config.check()
        self.public_url: str | None = self.config.public_url
        self.reset()

    # ------------------------------------------------------------------------------------------------------
    # lifecycle and clock
    # ------------------------------------------------------------------------------------------------------
    def reset(self, config: SlackStandInConfig | None = None) -> None:
        """Forget everything (state, calls, faults, buckets, clock offset); reseed when the config says so."""
        with self._lock:
            if config is not None:
                self.config = config
                self.public_url = config.public_url or self.public_url
            self.teams: dict[str, Team] = {}
            self.users: dict[str, User] = {}
            self.channels: dict[str, Channel] = {}
            self._messages: dict[str, list[Message]] = {}
            self._deleted: dict[str, list[Message]] = {}
            self._ephemerals: list[Ephemeral] = []
            self._home: dict[tuple[str, str], View] = {}
            self._modals: dict[tuple[str, str], list[View]] = {}
            self._response_urls: dict[str, ResponseUrl] = {}
            self._triggers: dict[str, Trigger] = {}
            self._calls: list[Call] = []
            self._faults: list[Fault] = []
            self._update_errors: dict[tuple[str, str], str] = {}
            self._rate_limits: dict[str, RateLimit] = self.config.effective_rate_limits()
            self.rate_limits_enabled = self.config.rate_limits_enabled
            self._limiter = RateLimiter(self._monotonic)
            self._clock_offset = 0.0
            self._last_ts = 0.0
            self._seq = itertools.count(1)
            self._ids = itertools.count(1)
            self.version = 0
            if self.config.seed:
                self._seed()

    def now(self) -> float:
        """Slack's wall clock: ``time.time()`` plus whatever :meth:`advance_clock` added."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the stand-in's clock forward (expires response_urls and trigger_ids without sleeping) by 0 to ten
        years. Raises ValueError, changing nothing, for anything else (NaN, infinity, a negative number, text)."""
        with self._lock:
            self._clock_offset = checks.advance(self._clock_offset, seconds)
            self._touch()

    def _touch(self) -> None:
        self.version += 1

    def _next_ts(self) -> str:
        """A message ts: "seconds.micro" as Slack writes it ("1700000000.000100"), unique and increasing."""
        now = max(self.now(), self._last_ts + 0.000001)
        self._last_ts = round(now, 6)
        return f"{self._last_ts:.6f}"

    def _new_id(self, prefix: str) -> str:
        """A fresh Slack-shaped id ("U0SB00000A7"), never one the workspace already uses."""
        taken = set(self.users) | set(self.channels) | {t.bot_id for t in self.teams.values()}
        while True:
            candidate = f"{prefix}0SB{next(self._ids):06X}"
            if candidate not in taken:
                return candidate

    def _seed(self) -> None:
        team = self.add_team(cfg.DEFAULT_TEAM_ID, "JobsiteOn Demo", "jobsiteon-demo", cfg.DEFAULT_BOT_TOKEN,
                             bot_user_id=cfg.DEFAULT_BOT_USER_ID, bot_id=cfg.DEFAULT_BOT_ID, app_id=cfg.DEFAULT_APP_ID)
        t = team.team_id
        self.add_user(t, cfg.OWNER_USER_ID, "olivia", "Olivia Owner", is_owner=True, is_primary_owner=True,
                      is_admin=True, tz="America/Chicago")
        self.add_user(t, cfg.ADMIN_USER_ID, "adam", "Adam Admin", is_admin=True, tz="America/New_York")
        self.add_user(t, cfg.MEMBER_USER_ID, "mia", "Mia Member", tz="Europe/London")
        everyone = [cfg.OWNER_USER_ID, cfg.ADMIN_USER_ID, cfg.MEMBER_USER_ID]
        self.add_channel(t, cfg.ERRORS_CHANNEL_ID, "sync-errors", bot_member=True, members=everyone)
        self.add_channel(t, cfg.GENERAL_CHANNEL_ID, "general", bot_member=False, members=everyone)
        self.add_channel(t, cfg.ARCHIVED_CHANNEL_ID, "old-syncs", bot_member=True, members=everyone, is_archived=True)
        self.add_channel(t, cfg.PRIVATE_CHANNEL_ID, "finance-private", is_private=True, bot_member=False,
                         members=[cfg.OWNER_USER_ID])

    # ------------------------------------------------------------------------------------------------------
    # shaping the workspace
    # ------------------------------------------------------------------------------------------------------
    def add_team(self, team_id: str, name: str, domain: str, bot_token: str, *, bot_user_id: str | None = None,
                 bot_id: str | None = None, app_id: str = cfg.DEFAULT_APP_ID, bot_name: str = "syncbot") -> Team:
        """Install the app in a workspace; its bot user is added as a user too."""
        with self._lock:
            team = Team(team_id=team_id, name=name, domain=domain, bot_token=bot_token,
                        bot_user_id=bot_user_id or self._new_id("U"), bot_id=bot_id or self._new_id("B"),
                        app_id=app_id, bot_name=bot_name)
            self.teams[team_id] = team
            self.users[team.bot_user_id] = User(id=team.bot_user_id, team_id=team_id, name=bot_name,
                                                real_name=bot_name, is_bot=True)
            self._touch()
            return team

    def add_user(self, team_id: str, user_id: str, name: str, real_name: str | None = None, *,
                 is_admin: bool = False, is_owner: bool = False, is_primary_owner: bool = False,
                 is_bot: bool = False, deleted: bool = False, tz: str = "America/Chicago",
                 tz_offset: int | None = None, tz_label: str | None = None, email: str | None = None) -> User:
        """Add (or replace) a member of ``team_id`` with roles and time zone."""
        with self._lock:
            user = User(id=user_id, team_id=team_id, name=name, real_name=real_name or name, is_admin=is_admin,
                        is_owner=is_owner, is_primary_owner=is_primary_owner, is_bot=is_bot, deleted=deleted,
                        tz=tz, tz_offset=tz_offset, tz_label=tz_label, email=email)
            self.users[user_id] = user
            self._touch()
            return user

    def add_channel(self, team_id: str, channel_id: str, name: str, *, is_private: bool = False,
                    is_archived: bool = False, bot_member: bool = True, members: list[str] | None = None) -> Channel:
        """Add (or replace) a channel; ``bot_member`` says whether our bot was invited."""
        with self._lock:
            channel = Channel(id=channel_id, team_id=team_id, name=name, is_private=is_private,
                              is_archived=is_archived, bot_member=bot_member, members=set(members or []))
            self.channels[channel_id] = channel
            self._messages.setdefault(channel_id, [])
            self._touch()
            return channel

    def set_bot_membership(self, channel_id: str, member: bool = True) -> None:
        """Invite the bot to (or remove it from) a channel."""
        with self._lock:
            self.channels[channel_id].bot_member = member
            self._touch()

    def archive_channel(self, channel_id: str, archived: bool = True) -> None:
        """Archive (or unarchive) a channel."""
        with self._lock:
            self.channels[channel_id].is_archived = archived
            self._touch()

    def set_scopes(self, team_id: str, scopes: list[str] | None) -> None:
        """Grant the team's bot token only ``scopes`` (``None``: every scope). A method needing another answers
        ``missing_scope`` with ``needed`` and ``provided``, as Slack does."""
        with self._lock:
            self.teams[team_id].scopes = None if scopes is None else list(scopes)
            self._touch()

    def set_token_state(self, team_id: str, state: Literal["active", "revoked", "inactive"]) -> None:
        """Make the team's bot token answer ``token_revoked`` or ``account_inactive`` (or work again)."""
        with self._lock:
            self.teams[team_id].token_state = state
            self._touch()

    def post_as_user(self, channel_id: str, user_id: str, text: str,
                     blocks: list[dict[str, Any]] | None = None, thread_ts: str | None = None) -> Message:
        """A human posts a message (which the bot then cannot chat.update: ``cant_update_message``)."""
        with self._lock:
            channel = self.channels[channel_id]
            msg = Message(ts=self._next_ts(), channel=channel_id, team_id=channel.team_id, text=text,
                          blocks=copy.deepcopy(blocks), user=user_id, thread_ts=thread_ts)
            self._store_message(channel, msg)
            return copy.deepcopy(msg)

    # ------------------------------------------------------------------------------------------------------
    # faults and limits
    # ------------------------------------------------------------------------------------------------------
    def inject_fault(self, method: str, count: int = 1, *, status: int | None = None, error: str | None = None,
                     retry_after: int | None = None, delay: float | None = None, body: str | None = None,
                     match: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                     after: bool = False) -> Fault:
        """Answer the next ``count`` calls of ``method`` with the given trouble; see :class:`Fault` (``after``:
        the call takes effect and its answer is lost)."""
        with self._lock:
            fault = Fault(method=method, count=count, status=status, error=error, retry_after=retry_after,
                          delay=delay, body=body, match=match, extra=dict(extra) if extra else None, after=after)
            self._faults.append(fault)
            self._touch()
            return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._update_errors.clear()
            self._touch()

    def faults(self) -> list[Fault]:
        with self._lock:
            return copy.deepcopy(self._faults)

    def set_update_error(self, channel_id: str, ts: str, error: str | None = "cant_update_message") -> None:
        """Make chat.update of (channel, ts) answer ``error`` (``None`` clears), e.g. an edit window closed."""
        with self._lock:
            if error is None:
                self._update_errors.pop((channel_id, ts), None)
            else:
                self._update_errors[(channel_id, ts)] = error
            self._touch()

    def set_rate_limit(self, method: str, per_minute: float, burst: int,
                       scope: Literal["method", "channel"] = "method") -> None:
        """Replace one method's limit (and empty its buckets). ValueError, nothing changed, for a limit that is
        not finite and sane (see :func:`sandbox.slack.config.check_rate_limit`)."""
        limit = RateLimit(per_minute=per_minute, burst=burst, scope=scope)
        cfg.check_rate_limit(method, limit)
        with self._lock:
            self._rate_limits[method] = limit
            self._limiter.reset()

    def reset_rate_limits(self) -> None:
        """Refill every bucket."""
        with self._lock:
            self._limiter.reset()

    # ------------------------------------------------------------------------------------------------------
    # minting what Slack sends along with a request
    # ------------------------------------------------------------------------------------------------------
    def mint_response_url(self, team_id: str, channel_id: str, user_id: str, *,
                          source: Literal["command", "block_actions", "view_submission"] = "command",
                          message_ts: str | None = None, is_ephemeral: bool = False) -> ResponseUrl:
        """Mint a response_url on this stand-in (``{public_url}/response_url/{id}``)."""
        with self._lock:
            rid = f"{team_id}/{next(self._ids)}/{secrets.token_hex(12)}"
            base = (self.public_url or "http://127.0.0.1").rstrip("/")
            ru = ResponseUrl(id=rid, url=f"{base}/response_url/{rid}", team_id=team_id, channel_id=channel_id,
                             user_id=user_id, created=self.now(), source=source, message_ts=message_ts,
                             is_ephemeral=is_ephemeral)
            self._response_urls[rid] = ru
            return copy.deepcopy(ru)

    def response_url(self, rid: str) -> ResponseUrl | None:
        with self._lock:
            ru = self._response_urls.get(rid)
            return copy.deepcopy(ru) if ru else None

    def mint_trigger_id(self, team_id: str, user_id: str) -> str:
        """Mint a trigger_id, shaped like Slack's ("132456.7890123.abcdef")."""
        with self._lock:
            tid = f"{int(self.now() * 1000)}.{next(self._ids)}.{secrets.token_hex(16)}"
            self._triggers[tid] = Trigger(trigger_id=tid, team_id=team_id, user_id=user_id, created=self.now())
            return tid

    # ------------------------------------------------------------------------------------------------------
    # reading state
    # ------------------------------------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[Call]:
        """Every call answered so far (oldest first), optionally of one method ("response_url" included)."""
        with self._lock:
            return [copy.deepcopy(c) for c in self._calls if method is None or c.method == method]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def _channel_id(self, channel: str) -> str:
        if channel in self.channels:
            return channel
        name = channel.lstrip("#")
        for ch in self.channels.values():
            if ch.name == name:
                return ch.id
        raise KeyError(channel)

    def messages(self, channel: str) -> list[Message]:
        """The channel's messages now (edits applied, deletions gone), oldest first, each with its thread."""
        with self._lock:
            return copy.deepcopy(self._messages.get(self._channel_id(channel), []))

    def message(self, channel: str, ts: str) -> Message | None:
        """One message or thread reply by ts."""
        with self._lock:
            found = self._find_message(self._channel_id(channel), ts)
            return copy.deepcopy(found) if found else None

    def deleted_messages(self, channel: str) -> list[Message]:
        """Messages removed by chat.delete or ``delete_original``."""
        with self._lock:
            return copy.deepcopy(self._deleted.get(self._channel_id(channel), []))

    def ephemerals(self, user: str, channel: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages shown to ``user`` (optionally in one channel), oldest first."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals
                    if e.user == user and (channel is None or e.channel == self._channel_id(channel))]

    def home_view(self, user: str, team_id: str | None = None) -> dict[str, Any] | None:
        """The Home tab view last published for ``user`` (as views.publish returned it), or ``None``."""
        with self._lock:
            for (t, u), view in self._home.items():
                if u == user and (team_id is None or t == team_id):
                    return view.to_api()
            return None

    def open_views(self, user: str | None = None) -> list[dict[str, Any]]:
        """The modal views open now (each user's stack, bottom first), as views.open returned them plus
        ``user_id`` (whose screen they are on)."""
        with self._lock:
            return [{**v.to_api(), "user_id": u} for (_, u), stack in self._modals.items() for v in stack
                    if user is None or u == user]

    def dm_channel_id(self, team_id: str, user_id: str) -> str:
        """The bot's DM channel with ``user_id`` (opened when needed)."""
        with self._lock:
            return self._open_dm(self.teams[team_id], user_id).id

    def snapshot(self) -> dict[str, Any]:
        """Everything, as JSON-ready dicts (for ``GET /_control/state``)."""
        with self._lock:
            return {
                "version": self.version,
                "now": self.now(),
                "public_url": self.public_url,
                "rate_limits_enabled": self.rate_limits_enabled,
                "teams": [{**vars(t), "url": t.url} for t in self.teams.values()],
                "users": [u.to_api() for u in self.users.values()],
                "channels": [{**c.to_api(), "team_id": c.team_id, "members": sorted(c.members)}
                             for c in self.channels.values()],
                "messages": {cid: [m.to_dict() for m in msgs] for cid, msgs in self._messages.items()},
                "ephemerals": [e.to_dict() for e in self._ephemerals],
                "home_views": {u: v.to_api() for (_, u), v in self._home.items()},
                "open_views": [{**v.to_api(), "user_id": v.user_id} for stack in self._modals.values() for v in stack],
                "faults": [f.to_dict() for f in self._faults],
                "calls": len(self._calls),
            }

    # ------------------------------------------------------------------------------------------------------
    # the Web API
    # ------------------------------------------------------------------------------------------------------
    def handle_api(self, method: str, params: dict[str, Any], token: str | None,
                   content_type: str | None = None) -> ApiResponse:
        """Answer one call of https://slack.com/api/<method> and record it."""
        with self._lock:
            team = self.teams_by_token().get(token or "")
            call = Call(seq=next(self._seq), method=method, params=self._recordable(params), token=token,
                        team_id=team.team_id if team else None, time=self.now())
            resp = self._answer(method, params, token, call)
            if self.config.charset_warnings and content_type and isinstance(resp.body, dict) and resp.status == 200:
                self._charset_warning(resp.body, content_type.lower())
            self._record(call, resp)
            return resp

    def teams_by_token(self) -> dict[str, Team]:
        with self._lock:
            return {t.bot_token: t for t in self.teams.values()}

    @staticmethod
    def _recordable(params: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in params.items():
            if key == "token":
                continue
            if key in ("blocks", "attachments", "view", "metadata") and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            out[key] = copy.deepcopy(value)
        return out

    def _record(self, call: Call, resp: ApiResponse) -> None:
        call.status = resp.status
        if isinstance(resp.body, dict):
            call.ok = bool(resp.body.get("ok"))
            call.error = resp.body.get("error")
            call.response = copy.deepcopy(resp.body)
        else:
            call.ok = False
            call.response = resp.body
        if "Retry-After" in resp.headers:
            call.retry_after = int(resp.headers["Retry-After"])
        self._calls.append(call)
        self._touch()

    @staticmethod
    def _warn(body: dict[str, Any], warning: str, message: str | None = None) -> None:
        """Slack reports warnings in ``warning`` (comma-joined) and ``response_metadata.warnings``
        (https://docs.slack.dev/apis/web-api/#responses)."""
        meta = body.setdefault("response_metadata", {})
        warnings = meta.setdefault("warnings", [])
        if warning not in warnings:
            warnings.append(warning)
        if message is not None:
            meta.setdefault("messages", []).append(f"[WARN] {message}")
        body["warning"] = ",".join(warnings)

    def _charset_warning(self, body: dict[str, Any], content_type: str) -> None:
        """``missing_charset`` for a non-form body (JSON) without a charset, as seen in SL-13;
        ``superfluous_charset`` for a form body with one (slackapi/python-slack-sdk#692)."""
        if content_type.startswith("multipart/"):
            return
        if content_type.startswith("application/x-www-form-urlencoded"):
            if "charset" in content_type:
                self._warn(body, "superfluous_charset",
                           "A Content-Type HTTP header was presented with a charset where none is expected")
        elif "charset" not in content_type:
            self._warn(body, "missing_charset",
                       "A Content-Type HTTP header was presented but did not declare a charset, such as a 'utf-8'")

    def _take_fault(self, method: str, params: dict[str, Any]) -> Fault | None:
        for fault in self._faults:
            if fault.method not in (method, "*"):
                continue
            if fault.match and any(str(params.get(k)) != str(v) for k, v in fault.match.items()):
                continue
            fault.count -= 1
            if fault.count <= 0:
                self._faults.remove(fault)
            return fault
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> ApiResponse | None:
        """The answer a fault dictates, or ``None`` when it only delays a normal answer."""
        if fault.retry_after is not None:
            return ApiResponse(429, {"ok": False, "error": "ratelimited"},
                               {"Retry-After": str(fault.retry_after)}, fault.delay or 0.0)
        if fault.status is not None:
            if fault.body is not None:
                return ApiResponse(fault.status, fault.body, {"Content-Type": "text/html"}, fault.delay or 0.0)
            error = fault.error or ("internal_error" if fault.status >= 500 else "invalid_request")
            return ApiResponse(fault.status, {"ok": False, "error": error, **(fault.extra or {})}, {},
                               fault.delay or 0.0)
        if fault.error is not None:
            return ApiResponse(200, {"ok": False, "error": fault.error, **(fault.extra or {})}, {}, fault.delay or 0.0)
        return None

    def _answer(self, method: str, params: dict[str, Any], token: str | None, call: Call) -> ApiResponse:
        delay = 0.0
        fault = self._take_fault(method, params)
        if fault is not None:
            faulted = self._fault_response(fault)
            if faulted is not None and fault.after:  # Slack does the work; its answer is lost on the way
                self._answer_normally(method, params, token, 0.0)
                return faulted
            if faulted is not None:
                return faulted
            delay = fault.delay or 0.0
        return self._answer_normally(method, params, token, delay)

    def _answer_normally(self, method: str, params: dict[str, Any], token: str | None, delay: float) -> ApiResponse:
        handler: Callable[[Team, dict[str, Any]], dict[str, Any]] | None = getattr(
            self, "_api_" + method.replace(".", "_"), None)
        if handler is None or method not in SUPPORTED_METHODS:
            return ApiResponse(200, {"ok": False, "error": "unknown_method", "req_method": method}, delay=delay)
        if not token:
            return ApiResponse(200, {"ok": False, "error": "not_authed"}, delay=delay)
        team = self.teams_by_token().get(token)
        if team is None:
            return ApiResponse(200, {"ok": False, "error": "invalid_auth"}, delay=delay)
        if team.token_state == "revoked":
            return ApiResponse(200, {"ok": False, "error": "token_revoked"}, delay=delay)
        if team.token_state == "inactive":
            return ApiResponse(200, {"ok": False, "error": "account_inactive"}, delay=delay)
        needed = METHOD_SCOPES.get(method)
        if needed and team.scopes is not None and needed not in team.scopes:
            return ApiResponse(200, self._missing_scope(team, needed), delay=delay)
        limited = self._check_rate_limit(team, method, params)
        if limited is not None:
            limited.delay = delay
            return limited
        try:
            body = handler(team, params)
        except _ApiError as exc:
            return ApiResponse(exc.status, {"ok": False, "error": exc.error, **exc.extra}, delay=delay)
        return ApiResponse(200, body, delay=delay)

    @staticmethod
    def _missing_scope(team: Team, needed: str) -> dict[str, Any]:
        return {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(team.scopes or [])}

    def _check_rate_limit(self, team: Team, method: str, params: dict[str, Any]) -> ApiResponse | None:
        if not self.rate_limits_enabled:
            return None
        limit = self._rate_limits.get(method)
        if limit is None:
            return None
        key: tuple[str, ...] = (team.team_id, method)
        if limit.scope == "channel":
            key = (*key, self._bucket_channel(team, str(params.get("channel", ""))))
        wait = self._limiter.check(key, limit)
        if wait is None:
            return None
        return ApiResponse(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after_header(wait))})

    def _bucket_channel(self, team: Team, ref: str) -> str:
        """The channel id a ``channel`` argument names (id, "#name" or a user's DM), without side effects."""
        if ref in self.channels:
            return ref
        name = ref.lstrip("#")
        for ch in self.channels.values():
            if ch.team_id == team.team_id and ((not ch.is_im and ch.name == name) or (ch.is_im and ch.im_user == ref)):
                return ch.id
        return ref

    # -- helpers for handlers --------------------------------------------------------------------------------
    def _user_in_team(self, team: Team, user_id: Any, error: str = "user_not_found") -> User:
        user = self.users.get(str(user_id)) if user_id else None
        if user is None or user.team_id != team.team_id:
            raise _ApiError(error)
        return user

    def _open_dm(self, team: Team, user_id: str) -> Channel:
        for ch in self.channels.values():
            if ch.is_im and ch.team_id == team.team_id and ch.im_user == user_id:
                return ch
        ch = Channel(id=self._new_id("D"), team_id=team.team_id, name=user_id, is_private=True, is_im=True,
                     im_user=user_id, bot_member=True, members={user_id}, created=int(self.now()))
        self.channels[ch.id] = ch
        self._messages.setdefault(ch.id, [])
        return ch

    def _resolve_channel(self, team: Team, ref: Any, allow_user: bool = True) -> Channel:
        """A channel by id, by name ("#sync-errors"), or a user id (the app's DM with them) like Slack accepts.

        A private channel the bot is not in is invisible: ``channel_not_found`` (SL-13).
        """
        if not ref or not isinstance(ref, str):
            raise _ApiError("channel_not_found")
        channel = self.channels.get(ref)
        if channel is None:
            name = ref.lstrip("#")
            channel = next((c for c in self.channels.values()
                            if c.team_id == team.team_id and not c.is_im and c.name == name), None)
        if channel is None and allow_user and ref in self.users and self.users[ref].team_id == team.team_id:
            channel = self._open_dm(team, ref)
        if channel is None or channel.team_id != team.team_id:
            raise _ApiError("channel_not_found")
        if channel.is_private and not channel.bot_member:
            raise _ApiError("channel_not_found")
        return channel

    def _check_can_post(self, channel: Channel) -> None:
        if channel.is_archived:
            raise _ApiError("is_archived")
        if not channel.bot_member and not self.config.chat_write_public:
            raise _ApiError("not_in_channel")

    def _content(self, params: dict[str, Any], *, require: bool = True) -> tuple[
            str | None, list[dict[str, Any]] | None, list[dict[str, Any]] | None, list[str]]:
        """Parse and check ``text``, ``blocks`` and ``attachments`` as chat.postMessage does.

        https://docs.slack.dev/reference/methods/chat.postMessage: blocks as a JSON array (else
        ``invalid_blocks_format``), each checked (``invalid_blocks``); text at most 40,000 characters
        (``msg_too_long``); neither text, blocks nor attachments: ``no_text``.
        """
        warnings: list[str] = []
        blocks: list[dict[str, Any]] | None = None
        attachments: list[dict[str, Any]] | None = None
        if params.get("blocks") not in (None, ""):
            try:
                blocks = _json_param(params["blocks"])
            except ValueError as exc:
                raise _ApiError("invalid_blocks_format") from exc
            if not isinstance(blocks, list):
                raise _ApiError("invalid_blocks_format")
            problems = validate_blocks(blocks, "message")
            if problems:
                raise _ApiError("invalid_blocks", {k: v for k, v in error_body("invalid_blocks", problems).items()
                                                   if k not in ("ok", "error")})
        if params.get("attachments") not in (None, ""):
            try:
                attachments = _json_param(params["attachments"])
            except ValueError as exc:
                raise _ApiError("invalid_attachments") from exc
            if not isinstance(attachments, list):
                raise _ApiError("invalid_attachments")
        text = params.get("text")
        if text is not None and not isinstance(text, str):
            text = str(text)
        if require and not text and not blocks and not attachments:
            raise _ApiError("no_text")
        if text is not None and len(text) > self.config.text_max_chars:
            if self.config.text_over_limit == "error":
                raise _ApiError("msg_too_long")
            text = text[: self.config.text_max_chars]
            warnings.append("message_truncated")
        return text, blocks, attachments, warnings

    def _find_message(self, channel_id: str, ts: str) -> Message | None:
        for msg in self._messages.get(channel_id, []):
            if msg.ts == ts:
                return msg
            for reply in msg.replies:
                if reply.ts == ts:
                    return reply
        return None

    def _store_message(self, channel: Channel, msg: Message) -> None:
        if msg.thread_ts:
            parent = self._find_message(channel.id, msg.thread_ts)
            if parent is not None and parent.is_reply:
                parent = self._find_message(channel.id, parent.thread_ts or "")
            if parent is not None:
                msg.thread_ts = parent.ts
                if parent.thread_ts is None:
                    parent.thread_ts = parent.ts
                parent.replies.append(msg)
                if msg.reply_broadcast:
                    self._messages[channel.id].append(copy.deepcopy(msg))
                self._touch()
                return
        self._messages.setdefault(channel.id, []).append(msg)
        self._touch()

    def _remove_message(self, channel_id: str, msg: Message) -> None:
        msgs = self._messages.get(channel_id, [])
        if msg in msgs:
            msgs.remove(msg)
        else:
            for parent in msgs:
                if msg in parent.replies:
                    parent.replies.remove(msg)
        self._deleted.setdefault(channel_id, []).append(msg)
        self._touch()

    # -- methods --------------------------------------------------------------------------------------------
    def _api_auth_test(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/auth.test"""
        return {"ok": True, "url": team.url, "team": team.name, "user": team.bot_name, "team_id": team.team_id,
                "user_id": team.bot_user_id, "bot_id": team.bot_id, "is_enterprise_install": False}

    def _api_chat_postMessage(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/chat.postMessage"""
        channel = self._resolve_channel(team, params.get("channel"))
        self._check_can_post(channel)
        text, blocks, attachments, warnings = self._content(params)
        metadata = self._metadata(params)
        msg = Message(ts=self._next_ts(), channel=channel.id, team_id=team.team_id, text=text or "",
                      blocks=blocks, attachments=attachments, user=team.bot_user_id, bot_id=team.bot_id,
                      app_id=team.app_id, thread_ts=params.get("thread_ts") or None,
                      reply_broadcast=_truthy(params.get("reply_broadcast")), metadata=metadata)
        self._store_message(channel, msg)
        body: dict[str, Any] = {"ok": True, "channel": channel.id, "ts": msg.ts, "message": msg.to_api()}
        for w in warnings:
            self._warn(body, w)
        return body

    @staticmethod
    def _metadata(params: dict[str, Any]) -> dict[str, Any] | None:
        """``metadata`` of chat.postMessage / chat.update: a JSON object with ``event_type`` and ``event_payload``
        (https://docs.slack.dev/messaging/message-metadata), as a JSON string (form) or JSON itself."""
        metadata = params.get("metadata")
        if metadata in (None, ""):
            return None
        try:
            metadata = _json_param(metadata)
        except ValueError as exc:
            raise _ApiError("invalid_metadata_format") from exc
        if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str) \
                or not isinstance(metadata.get("event_payload"), dict):
            raise _ApiError("invalid_metadata_schema")
        return metadata

    def _api_chat_update(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/chat.update: only the bot's own messages; ephemeral messages
        and messages created through a response_url cannot be updated (SL-11)."""
        channel = self._resolve_channel(team, params.get("channel"), allow_user=False)
        ts = str(params.get("ts") or "")
        if channel.is_archived:
            raise _ApiError("is_inactive")
        msg = self._find_message(channel.id, ts)
        if msg is None:
            raise _ApiError("message_not_found")
        injected = self._update_errors.get((channel.id, ts))
        if injected:
            raise _ApiError(injected)
        if msg.user != team.bot_user_id or msg.via_response_url:
            raise _ApiError("cant_update_message")
        text, blocks, attachments, warnings = self._content(params)
        msg.edits.append(Edit(text=msg.text, blocks=copy.deepcopy(msg.blocks), replaced_at_ts=self._next_ts(),
                              via="chat.update"))
        if text is not None:
            msg.text = text
        if "blocks" in params:
            msg.blocks = blocks
        if "attachments" in params:
            msg.attachments = attachments
        if params.get("metadata") not in (None, ""):
            msg.metadata = self._metadata(params)
        msg.edited_ts = msg.edits[-1].replaced_at_ts
        self._touch()
        body: dict[str, Any] = {"ok": True, "channel": channel.id, "ts": msg.ts, "text": msg.text,
                                "message": msg.to_api()}
        for w in warnings:
            self._warn(body, w)
        return body

    def _api_chat_delete(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/chat.delete"""
        channel = self._resolve_channel(team, params.get("channel"), allow_user=False)
        ts = str(params.get("ts") or "")
        msg = self._find_message(channel.id, ts)
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.user != team.bot_user_id:
            raise _ApiError("cant_delete_message")
        self._remove_message(channel.id, msg)
        return {"ok": True, "channel": channel.id, "ts": ts}

    def _api_chat_postEphemeral(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/chat.postEphemeral: the user must be in the channel
        (``user_not_in_channel``); the answer carries ``message_ts``."""
        channel = self._resolve_channel(team, params.get("channel"))
        self._check_can_post(channel)
        user = self._user_in_team(team, params.get("user"))
        if not channel.is_im and user.id not in channel.members:
            raise _ApiError("user_not_in_channel")
        if channel.is_im and channel.im_user != user.id:
            raise _ApiError("user_not_in_channel")
        text, blocks, _attachments, warnings = self._content(params)
        eph = Ephemeral(message_ts=self._next_ts(), channel=channel.id, user=user.id, team_id=team.team_id,
                        text=text or "", blocks=blocks, thread_ts=params.get("thread_ts") or None)
        self._ephemerals.append(eph)
        self._touch()
        body: dict[str, Any] = {"ok": True, "message_ts": eph.message_ts}
        for w in warnings:
            self._warn(body, w)
        return body

    def _api_chat_getPermalink(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/chat.getPermalink"""
        channel = self._resolve_channel(team, params.get("channel"), allow_user=False)
        ts = str(params.get("message_ts") or "")
        msg = self._find_message(channel.id, ts)
        if msg is None:
            raise _ApiError("message_not_found")
        link = f"{team.url}archives/{channel.id}/p{ts.replace('.', '')}"
        if msg.is_reply:
            link += f"?thread_ts={msg.thread_ts}&cid={channel.id}"
        return {"ok": True, "channel": channel.id, "permalink": link}

    def _parse_view(self, params: dict[str, Any], expected: Literal["modal", "home"] | None) -> dict[str, Any]:
        """views.* take ``view`` as JSON; invalid views answer ``invalid_arguments`` with the problems in
        ``response_metadata.messages`` (https://docs.slack.dev/reference/methods/views.open)."""
        raw = params.get("view")
        if raw in (None, ""):
            raise _ApiError("invalid_arguments", {"response_metadata": {"messages": ["[ERROR] missing required "
                                                                                      "field: view"]}})
        try:
            view = _json_param(raw)
        except ValueError as exc:
            raise _ApiError("invalid_arguments", {"response_metadata": {
                "messages": ["[ERROR] view must be a JSON object [json-pointer:/view]"]}}) from exc
        kind = expected or (view.get("type") if isinstance(view, dict) else None)
        if kind not in ("modal", "home"):
            kind = "modal"
        problems = validate_view(view, kind)
        if problems:
            raise _ApiError("invalid_arguments", {"response_metadata": {"messages": [f"[ERROR] {p}"
                                                                                     for p in problems]}})
        if len(json.dumps(view)) > 250_000:
            raise _ApiError("view_too_large")
        return view

    def _new_hash(self) -> str:
        return f"{int(self.now())}.{secrets.token_hex(4)}"

    def _make_view(self, team: Team, user_id: str, data: dict[str, Any], view_id: str | None = None,
                   root: str | None = None, previous: str | None = None) -> View:
        vid = view_id or self._new_id("V")
        return View(id=vid, team_id=team.team_id, user_id=user_id, type=data["type"],
                    blocks=copy.deepcopy(data.get("blocks", [])), hash=self._new_hash(), app_id=team.app_id,
                    bot_id=team.bot_id, title=copy.deepcopy(data.get("title")),
                    submit=copy.deepcopy(data.get("submit")), close=copy.deepcopy(data.get("close")),
                    private_metadata=data.get("private_metadata", ""), callback_id=data.get("callback_id", ""),
                    external_id=data.get("external_id", ""), clear_on_close=bool(data.get("clear_on_close")),
                    notify_on_close=bool(data.get("notify_on_close")), root_view_id=root or vid,
                    previous_view_id=previous)

    def _api_views_publish(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/views.publish: ``hash_conflict`` when ``hash`` is stale."""
        user = self._user_in_team(team, params.get("user_id"))
        data = self._parse_view(params, "home")
        current = self._home.get((team.team_id, user.id))
        if params.get("hash") and current is not None and params["hash"] != current.hash:
            raise _ApiError("hash_conflict")
        view = self._make_view(team, user.id, data, view_id=current.id if current else None)
        self._home[(team.team_id, user.id)] = view
        self._touch()
        return {"ok": True, "view": view.to_api()}

    def _exchange_trigger(self, team: Team, params: dict[str, Any]) -> str | None:
        """Trigger checks (https://docs.slack.dev/reference/methods/views.open): ``invalid_trigger_id``,
        ``expired_trigger_id`` after 3 s, ``exchanged_trigger_id`` on reuse. Returns the trigger's user."""
        tid = str(params.get("trigger_id") or params.get("interactivity_pointer") or "")
        trig = self._triggers.get(tid)
        if not self.config.check_trigger_ids:
            return trig.user_id if trig else None
        if trig is None or trig.team_id != team.team_id:
            raise _ApiError("invalid_trigger_id")
        if trig.used:
            raise _ApiError("exchanged_trigger_id")
        if self.now() - trig.created > self.config.trigger_ttl_s:
            raise _ApiError("expired_trigger_id")
        trig.used = True
        return trig.user_id

    def _api_views_open(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/views.open"""
        user_id = self._exchange_trigger(team, params) or "UNKNOWN"
        data = self._parse_view(params, "modal")
        if data.get("external_id") and self._view_by_external_id(team, data["external_id"]) is not None:
            raise _ApiError("duplicate_external_id")
        view = self._make_view(team, user_id, data)
        self._modals[(team.team_id, user_id)] = [view]
        self._touch()
        return {"ok": True, "view": view.to_api()}

    def _api_views_push(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/views.push: "A modal can hold up to 3 views at a time"
        (https://docs.slack.dev/surfaces/modals)."""
        user_id = self._exchange_trigger(team, params) or "UNKNOWN"
        data = self._parse_view(params, "modal")
        stack = self._modals.get((team.team_id, user_id))
        if not stack:
            raise _ApiError("not_found")
        if len(stack) >= 3:
            raise _ApiError("push_limit_reached")
        view = self._make_view(team, user_id, data, root=stack[0].id, previous=stack[-1].id)
        stack.append(view)
        self._touch()
        return {"ok": True, "view": view.to_api()}

    def _view_by_external_id(self, team: Team, external_id: str) -> View | None:
        for stack in self._modals.values():
            for v in stack:
                if v.team_id == team.team_id and v.external_id == external_id:
                    return v
        for v in self._home.values():
            if v.team_id == team.team_id and v.external_id == external_id:
                return v
        return None

    def _view_by_id(self, view_id: str) -> View | None:
        for stack in self._modals.values():
            for v in stack:
                if v.id == view_id:
                    return v
        for v in self._home.values():
            if v.id == view_id:
                return v
        return None

    def _api_views_update(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/views.update: ``not_found`` for an unknown view_id or
        external_id, ``hash_conflict`` for a stale hash."""
        target: View | None = None
        if params.get("view_id"):
            target = self._view_by_id(str(params["view_id"]))
        elif params.get("external_id"):
            target = self._view_by_external_id(team, str(params["external_id"]))
        if target is None or target.team_id != team.team_id:
            raise _ApiError("not_found")
        if params.get("hash") and params["hash"] != target.hash:
            raise _ApiError("hash_conflict")
        data = self._parse_view(params, target.type)
        fresh = self._make_view(team, target.user_id, data, view_id=target.id, root=target.root_view_id,
                                previous=target.previous_view_id)
        self._replace_view(target, fresh)
        return {"ok": True, "view": fresh.to_api()}

    def _replace_view(self, old: View, new: View) -> None:
        for stack in self._modals.values():
            for i, v in enumerate(stack):
                if v is old:
                    stack[i] = new
        for key, v in self._home.items():
            if v is old:
                self._home[key] = new
        self._touch()

    def _api_users_info(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/users.info: roles (is_owner, is_admin, is_primary_owner) and tz."""
        user = self._user_in_team(team, params.get("user"))
        return {"ok": True, "user": user.to_api()}

    def _api_conversations_open(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/conversations.open (one user: the app's DM with them)."""
        if params.get("channel"):
            channel = self._resolve_channel(team, params["channel"], allow_user=False)
            return {"ok": True, "channel": channel.to_api() if _truthy(params.get("return_im")) else {"id": channel.id}}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            raise _ApiError("users_list_not_supplied")
        if len(users) > 1:
            raise _ApiError("not_supported", {"detail": "the stand-in opens one-to-one DMs only"})
        user = self._user_in_team(team, users[0])
        existed = any(c.is_im and c.team_id == team.team_id and c.im_user == user.id for c in self.channels.values())
        channel = self._open_dm(team, user.id)
        self._touch()
        body: dict[str, Any] = {"ok": True, "channel": channel.to_api() if _truthy(params.get("return_im"))
                                else {"id": channel.id}}
        if existed:
            body["no_op"] = True
            body["already_open"] = True
        return body

    def _api_conversations_info(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/conversations.info"""
        channel = self._resolve_channel(team, params.get("channel"), allow_user=False)
        return {"ok": True, "channel": channel.to_api()}

    def _api_conversations_join(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/conversations.join: public channels only."""
        ref = params.get("channel")
        channel = self.channels.get(str(ref)) if ref else None
        if channel is None or channel.team_id != team.team_id:
            raise _ApiError("channel_not_found")
        if channel.is_im or channel.is_private:
            raise _ApiError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise _ApiError("is_archived")
        body: dict[str, Any] = {"ok": True, "channel": {}}
        if channel.bot_member:
            self._warn(body, "already_in_channel")
        channel.bot_member = True
        self._touch()
        body["channel"] = channel.to_api()
        return body

    def _readable(self, team: Team, params: dict[str, Any]) -> Channel:
        """The channel conversations.history / .replies read: the history scope of its type, and the bot a member
        (``not_in_channel``; a private channel it is not in does not exist for it: ``channel_not_found``)."""
        channel = self._resolve_channel(team, params.get("channel"), allow_user=False)
        needed = HISTORY_SCOPES["im" if channel.is_im else "private" if channel.is_private else "public"]
        if team.scopes is not None and needed not in team.scopes:
            raise _ApiError("missing_scope", {k: v for k, v in self._missing_scope(team, needed).items()
                                              if k not in ("ok", "error")})
        if not channel.bot_member:
            raise _ApiError("not_in_channel")
        return channel

    @staticmethod
    def _page(messages: list[Message], params: dict[str, Any], default_limit: int = 100) -> tuple[
            list[Message], str]:
        """``oldest`` / ``latest`` (``inclusive``), ``limit`` (at most 999) and ``cursor`` (our cursor: an offset)."""
        def ts_arg(name: str) -> float | None:
            value = params.get(name)
            if value in (None, ""):
                return None
            try:
                return float(value)
            except (TypeError, ValueError):
                raise _ApiError(f"invalid_ts_{name}") from None

        oldest, latest, inclusive = ts_arg("oldest"), ts_arg("latest"), _truthy(params.get("inclusive"))
        kept = [m for m in messages
                if (oldest is None or float(m.ts) > oldest or (inclusive and float(m.ts) == oldest))
                and (latest is None or float(m.ts) < latest or (inclusive and float(m.ts) == latest))]
        try:
            limit = max(1, min(999, int(params.get("limit") or default_limit)))
            start = int(params.get("cursor") or 0)
        except (TypeError, ValueError):
            raise _ApiError("invalid_cursor") from None
        page = kept[start:start + limit]
        return page, str(start + limit) if start + limit < len(kept) else ""

    @staticmethod
    def _listed(msg: Message, with_metadata: bool) -> dict[str, Any]:
        out = msg.to_api()
        if not with_metadata:
            out.pop("metadata", None)
        return out

    def _api_conversations_history(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/conversations.history: the channel's messages (not thread
        replies), newest first; each message's ``metadata`` only with ``include_all_metadata``."""
        channel = self._readable(team, params)
        newest_first = list(reversed(self._messages.get(channel.id, [])))
        page, cursor = self._page(newest_first, params)
        with_metadata = _truthy(params.get("include_all_metadata"))
        return {"ok": True, "messages": [self._listed(m, with_metadata) for m in page], "has_more": bool(cursor),
                "pin_count": 0, "channel_actions_ts": None, "channel_actions_count": 0,
                "response_metadata": {"next_cursor": cursor}}

    def _api_conversations_replies(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/conversations.replies: a thread, its parent first, then the
        replies oldest first; ``metadata`` only with ``include_all_metadata``; an unknown ts: ``thread_not_found``."""
        channel = self._readable(team, params)
        parent = self._find_message(channel.id, str(params.get("ts") or ""))
        if parent is not None and parent.is_reply:
            parent = self._find_message(channel.id, parent.thread_ts or "")
        if parent is None:
            raise _ApiError("thread_not_found")
        page, cursor = self._page([parent, *parent.replies], params, default_limit=1000)
        with_metadata = _truthy(params.get("include_all_metadata"))
        return {"ok": True, "messages": [self._listed(m, with_metadata) for m in page], "has_more": bool(cursor),
                "response_metadata": {"next_cursor": cursor}}

    # ------------------------------------------------------------------------------------------------------
    # response_url
    # ------------------------------------------------------------------------------------------------------
    def handle_response_url(self, rid: str, payload: Any) -> ApiResponse:
        """Answer a POST to a minted response_url.

        Semantics from https://docs.slack.dev/interactivity/handling-user-interaction#message_responses:
        ``response_type`` ``ephemeral`` (default) or ``in_channel``; ``replace_original`` edits the message the
        interaction came from; ``delete_original`` deletes it; usable "up to 5 times within 30 minutes".
        Slack does not document the error answers; we send 404 ``expired_url`` / ``used_url`` as seen from
        hooks.slack.com, 400 ``invalid_payload`` for an unparseable body.
        """
        with self._lock:
            call = Call(seq=next(self._seq), method="response_url", params={"id": rid, "payload": payload},
                        token=None, team_id=None, time=self.now())
            resp = self._answer_response_url(rid, payload, call)
            self._record(call, resp)
            return resp

    def _answer_response_url(self, rid: str, payload: Any, call: Call) -> ApiResponse:
        params = payload if isinstance(payload, dict) else {}
        fault = self._take_fault("response_url", params)
        delay = 0.0
        if fault is not None:
            faulted = self._fault_response(fault)
            if faulted is not None:
                return faulted
            delay = fault.delay or 0.0
        ru = self._response_urls.get(rid)
        if ru is None:
            return ApiResponse(404, {"ok": False, "error": "no_service"}, delay=delay)
        call.team_id = ru.team_id
        if self.now() - ru.created > self.config.response_url_ttl_s:
            return ApiResponse(404, {"ok": False, "error": "expired_url"}, delay=delay)
        if ru.uses >= self.config.response_url_max_uses:
            return ApiResponse(404, {"ok": False, "error": "used_url"}, delay=delay)
        if not isinstance(payload, dict):
            return ApiResponse(400, {"ok": False, "error": "invalid_payload"}, delay=delay)
        team = self.teams.get(ru.team_id)
        channel = self.channels.get(ru.channel_id)
        if team is None or channel is None:
            return ApiResponse(404, {"ok": False, "error": "channel_not_found"}, delay=delay)
        try:
            body = self._apply_response(ru, team, channel, payload)
        except _ApiError as exc:
            status = 404 if exc.error == "message_not_found" else 400
            return ApiResponse(status, {"ok": False, "error": exc.error, **exc.extra}, delay=delay)
        ru.uses += 1
        self._touch()
        return ApiResponse(200, body, delay=delay)

    def _original(self, ru: ResponseUrl, channel: Channel) -> Message | Ephemeral | None:
        if ru.message_ts is None:
            return None
        if ru.is_ephemeral:
            return next((e for e in self._ephemerals if e.message_ts == ru.message_ts and e.channel == channel.id),
                        None)
        return self._find_message(channel.id, ru.message_ts)

    def _apply_response(self, ru: ResponseUrl, team: Team, channel: Channel,
                        payload: dict[str, Any]) -> dict[str, Any]:
        if _truthy(payload.get("delete_original")):
            original = self._original(ru, channel)
            if original is None:
                raise _ApiError("message_not_found")
            if isinstance(original, Ephemeral):
                self._ephemerals.remove(original)
            else:
                self._remove_message(channel.id, original)
            return {"ok": True}
        text, blocks, attachments, _warnings = self._content(payload)
        if _truthy(payload.get("replace_original")) and ru.message_ts is None and ru.source == "command":
            # a command's answer replacing its immediate answer before that was shown here (the app answered
            # at once): Slack had the ack first, so the ack is what gets replaced (apply_command_ack)
            eph = Ephemeral(message_ts=self._next_ts(), channel=channel.id, user=ru.user_id, team_id=team.team_id,
                            text=text or "", blocks=blocks, thread_ts=payload.get("thread_ts") or None,
                            via_response_url=True)
            self._ephemerals.append(eph)
            ru.message_ts, ru.is_ephemeral, ru.replaced_ack = eph.message_ts, True, True
            return {"ok": True}
        if _truthy(payload.get("replace_original")) and ru.message_ts is not None:
            original = self._original(ru, channel)
            if original is None:
                raise _ApiError("message_not_found")
            original.edits.append(Edit(text=original.text, blocks=copy.deepcopy(original.blocks),
                                       replaced_at_ts=self._next_ts(), via="response_url"))
            original.text = text or ""
            original.blocks = blocks
            if isinstance(original, Message):
                original.attachments = attachments
                original.edited_ts = original.edits[-1].replaced_at_ts
            return {"ok": True}
        thread_ts = payload.get("thread_ts") or None
        if payload.get("response_type") == "in_channel":
            msg = Message(ts=self._next_ts(), channel=channel.id, team_id=team.team_id, text=text or "",
                          blocks=blocks, attachments=attachments, user=team.bot_user_id, bot_id=team.bot_id,
                          app_id=team.app_id, thread_ts=thread_ts, via_response_url=True)
            self._store_message(channel, msg)
        else:
            self._ephemerals.append(Ephemeral(message_ts=self._next_ts(), channel=channel.id, user=ru.user_id,
                                              team_id=team.team_id, text=text or "", blocks=blocks,
                                              thread_ts=thread_ts, via_response_url=True))
        return {"ok": True}

    # ------------------------------------------------------------------------------------------------------
    # what Slack does with an app's answer to a view_submission
    # ------------------------------------------------------------------------------------------------------
    def apply_view_submission_ack(self, team_id: str, user_id: str, view_id: str,
                                  answer: dict[str, Any] | None) -> dict[str, Any]:
        """Apply the app's ack to a view_submission (https://docs.slack.dev/surfaces/modals#responding):
        an empty 200 closes the modal; ``response_action`` ``clear`` closes the stack, ``update`` replaces the
        view, ``push`` pushes one, ``errors`` keeps it open. Returns what happened."""
        with self._lock:
            key = (team_id, user_id)
            stack = self._modals.get(key, [])
            action = (answer or {}).get("response_action")
            team = self.teams[team_id]
            result: dict[str, Any] = {"response_action": action or "close"}
            if action == "errors":
                result["errors"] = (answer or {}).get("errors", {})
            elif action == "clear":
                self._modals.pop(key, None)
            elif action in ("update", "push"):
                data = (answer or {}).get("view")
                problems = validate_view(data, "modal")
                if problems:
                    result["problems"] = problems
                else:
                    assert isinstance(data, dict)
                    if action == "update":
                        current = next((v for v in stack if v.id == view_id), None)
                        if current is not None:
                            self._replace_view(current, self._make_view(
                                team, user_id, data, view_id=current.id, root=current.root_view_id,
                                previous=current.previous_view_id))
                    elif stack:
                        stack.append(self._make_view(team, user_id, data, root=stack[0].id, previous=stack[-1].id))
            else:
                remaining = [v for v in stack if v.id != view_id]
                if stack and stack[-1].id == view_id:
                    remaining = stack[:-1]
                if remaining:
                    self._modals[key] = remaining
                else:
                    self._modals.pop(key, None)
            self._touch()
            return result

    def close_view(self, team_id: str, user_id: str, view_id: str | None = None) -> None:
        """The user dismissed the modal (the whole stack when ``view_id`` is ``None``)."""
        with self._lock:
            key = (team_id, user_id)
            if view_id is None:
                self._modals.pop(key, None)
            else:
                stack = [v for v in self._modals.get(key, []) if v.id != view_id]
                if stack:
                    self._modals[key] = stack
                else:
                    self._modals.pop(key, None)
            self._touch()

    def set_view_state(self, view_id: str, values: dict[str, Any]) -> None:
        """What the user typed into a modal's inputs (``state.values``), as Slack keeps it."""
        with self._lock:
            view = self._view_by_id(view_id)
            if view is None:
                raise KeyError(view_id)
            view.state = {"values": copy.deepcopy(values)}
            self._touch()

    # ------------------------------------------------------------------------------------------------------
    # the demo page and keeping the workspace between runs
    # ------------------------------------------------------------------------------------------------------
    def page_state(self, user_id: str, channel_id: str | None = None) -> dict[str, Any]:
        """What the demo page shows to ``user_id``: the workspace's people and channels, the channel's messages
        (each with its thread), that user's ephemerals there, their Home tab, the app's DMs to them (the app's
        Messages tab) and open modals.

        ``channel_id`` defaults to the first channel the bot is in. Raises KeyError for an unknown channel.
        """
        with self._lock:
            channels = [c for c in self.channels.values() if not c.is_im]
            if channel_id is None:
                channel_id = next((c.id for c in channels if c.bot_member and not c.is_archived),
                                  channels[0].id if channels else "")
            channel = self.channels[channel_id]
            team = self.teams.get(channel.team_id)
            home = self._home.get((channel.team_id, user_id))
            dm = next((c for c in self.channels.values()
                       if c.is_im and c.team_id == channel.team_id and c.im_user == user_id), None)
            return {
                "version": self.version,
                "now": self.now(),
                "team": {"id": team.team_id, "name": team.name, "bot_user_id": team.bot_user_id,
                         "bot_name": team.bot_name} if team else None,
                "app_ready": bool(self.config.app_url and self.config.signing_secret),
                "links": [{"label": label, "url": url} for label, url in self.config.page_links],
                "users": [u.to_api() for u in self.users.values() if u.team_id == channel.team_id],
                "channels": [{"id": c.id, "name": c.name, "is_private": c.is_private, "is_archived": c.is_archived,
                              "bot_member": c.bot_member, "member": user_id in c.members} for c in channels],
                "channel": channel.id,
                "messages": [m.to_dict() for m in self._messages.get(channel.id, [])],
                "ephemerals": [e.to_dict() for e in self._ephemerals
                               if e.user == user_id and e.channel == channel.id],
                "home": home.to_api() if home else None,
                # the app's Messages tab: what the app sent this user as a DM (conversations.open + postMessage)
                "dm_channel": dm.id if dm else None,
                "dm": [m.to_dict() for m in self._messages.get(dm.id, [])] if dm else [],
                "modals": [v.to_api() for (t, u), stack in self._modals.items() for v in stack
                           if u == user_id and t == channel.team_id],
            }

    def apply_command_ack(self, team_id: str, channel_id: str, user_id: str, body: str,
                          content_type: str | None, response_url_id: str | None = None) -> str:
        """Show what the app answered a slash command with, as Slack does
        (https://docs.slack.dev/interactivity/implementing-slash-commands#responding_immediate_response):
        an empty body shows nothing; plain text or JSON ``{"text", "blocks"}`` is shown to the user alone
        (``response_type`` ``ephemeral``, the default) or posted in the channel (``in_channel``).
        With ``response_url_id`` (the command's response_url), an ephemeral ack is what a later answer with
        ``replace_original`` replaces; when that answer came first (the app answered at once), the ack is shown
        as already replaced by it. Returns ``"none"``, ``"ephemeral"``, ``"replaced"`` or ``"in_channel"``."""
        if not body.strip():
            return "none"
        payload: Any = None
        if (content_type or "").startswith("application/json"):
            with contextlib.suppress(ValueError):
                payload = json.loads(body)
        if not isinstance(payload, dict):
            payload = {"text": body}
        with self._lock:
            team = self.teams[team_id]
            channel = self.channels[channel_id]
            try:
                text, blocks, attachments, _warnings = self._content(payload)
            except _ApiError as exc:  # Slack shows nothing useful either; say why here
                text, blocks, attachments = f"(the app's answer was refused: {exc.error})", None, None
            if payload.get("response_type") == "in_channel":
                msg = Message(ts=self._next_ts(), channel=channel.id, team_id=team.team_id, text=text or "",
                              blocks=blocks, attachments=attachments, user=team.bot_user_id, bot_id=team.bot_id,
                              app_id=team.app_id)
                self._store_message(channel, msg)
                return "in_channel"
            ru = self._response_urls.get(response_url_id) if response_url_id else None
            if ru is not None and ru.replaced_ack and ru.message_ts is not None:
                answer = self._original(ru, channel)
                if isinstance(answer, Ephemeral):
                    answer.edits.append(Edit(text=text or "", blocks=copy.deepcopy(blocks),
                                             replaced_at_ts=answer.message_ts, via="response_url"))
                    self._touch()
                    return "replaced"
            eph = Ephemeral(message_ts=self._next_ts(), channel=channel.id, user=user_id, team_id=team.team_id,
                            text=text or "", blocks=blocks)
            self._ephemerals.append(eph)
            if ru is not None and ru.message_ts is None:
                ru.message_ts, ru.is_ephemeral = eph.message_ts, True
            self._touch()
            return "ephemeral"

    _SAVED: tuple[str, ...] = ("teams", "users", "channels", "_messages", "_deleted", "_ephemerals", "_home", "_modals",
              "_update_errors", "_clock_offset", "_last_ts", "version")

    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Write the workspace (people, channels, messages and threads, ephemerals, Home tabs, modals) to
        ``path`` (a pickle, written to a temporary file and renamed). Calls, faults, response_urls and
        trigger_ids are not kept: they expire anyway."""
        with self._lock:
            data = {name: getattr(self, name) for name in self._SAVED}
            data["_next_id"] = next(self._ids)
            self._ids = itertools.count(data["_next_id"] + 1)
            blob = pickle.dumps(data)
        target = Path(path)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(blob)
        tmp.replace(target)

    @staticmethod
    def _saved_problem(data: dict[str, Any]) -> str | None:
        """What makes a saved state unusable (a sentence), or None: its clock and counters must be finite."""
        for name in ("teams", "users", "channels", "_messages", "_deleted", "_home", "_modals", "_update_errors"):
            if not isinstance(data[name], dict):
                return f"{name} is not a mapping"
        if not isinstance(data["_ephemerals"], list):
            return "_ephemerals is not a list"
        for name, bound in (("_clock_offset", checks.Number(-checks.MAX_CLOCK_OFFSET_SECONDS,
                                                           checks.MAX_CLOCK_OFFSET_SECONDS)),
                            ("_last_ts", checks.Number(0, 10**11)), ("version", checks.Number(0, 2**62, True)),
                            ("_next_id", checks.Number(0, 2**62, True))):
            value = data.get(name, 1)
            if not bound.fits(value):
                return f"{name.strip('_').replace('_', ' ')} must be {bound}, not {value!r}"[:160]
        return None

    def load_state(self, path: str | os.PathLike[str]) -> None:
        """Replace the workspace by one :meth:`save_state` wrote (only load files this program wrote: pickle).
        Raises OSError when unreadable and ValueError when the file is not such a state."""
        try:
            data = pickle.loads(Path(path).read_bytes())  # our own file (demo-data/)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as exc:
            raise ValueError(f"{path}: not a saved Slack stand-in state ({exc})") from exc
        if not isinstance(data, dict) or any(name not in data for name in self._SAVED):
            raise ValueError(f"{path}: not a saved Slack stand-in state")
        problem = self._saved_problem(data)
        if problem is not None:
            raise ValueError(f"{path}: a corrupt Slack stand-in state: {problem}")
        with self._lock:
            for name in self._SAVED:
                setattr(self, name, data[name])
            self._ids = itertools.count(int(data.get("_next_id", 1)) + 1)
            self._touch()
