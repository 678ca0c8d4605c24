"""The Slack stand-in's state and the helpers every group of its methods shares: the workspace's tables,
the clock, ids, channels and messages, views; :class:`ApiResponse` and the ``ok: false`` error raised inside a
method. :class:`sandbox.slack.standin.SlackStandIn` is this plus its Web API (`sandbox.slack.web_api`) and
what Slack does with an app's answers (`sandbox.slack.answers`)."""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox import checks
from sandbox.slack.blockkit import error_body, validate_blocks, validate_view
from sandbox.slack.config import RateLimit, SlackStandInConfig
from sandbox.slack.ratelimit import RateLimiter
from sandbox.slack.state import (
    Call,
    Channel,
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


class ApiError(Exception):
    """An ``ok: false`` answer raised from inside a method handler."""

    def __init__(self, error: str, extra: dict[str, Any] | None = None, status: int = 200) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra or {}
        self.status = status


def truthy(value: Any) -> bool:
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



class StandInCore:
    """The stand-in's state (see :class:`sandbox.slack.standin.SlackStandIn`) and shared helpers."""

    def __init__(self, config: SlackStandInConfig | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.RLock()
        self._monotonic = monotonic
        self.config = config or SlackStandInConfig()
        self.config.check()
        self.public_url: str | None = self.config.public_url
        self.reset()

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

    def freeze_rate_limits(self) -> None:
        """Stop the clock of the rate-limit buckets (for tests): a bucket then refills only when :meth:`reset`
        starts the clock again, so a test sees the limits whatever the speed of the machine it runs on."""
        with self._lock:
            frozen = self._monotonic()
            self._limiter = RateLimiter(lambda: frozen)

    def advance_clock(self, seconds: float) -> None:
        """Move the stand-in's clock forward (expires response_urls and trigger_ids without sleeping) by 0 to ten
        years. Raises ValueError, changing nothing, for anything else (NaN, infinity, a negative number, text)."""
        with self._lock:
            self._clock_offset = checks.advance(self._clock_offset, seconds)
            self._touch()

    def _touch(self) -> None:
        self.version += 1

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

    def _channel_id(self, channel: str) -> str:
        if channel in self.channels:
            return channel
        name = channel.lstrip("#")
        for ch in self.channels.values():
            if ch.name == name:
                return ch.id
        raise KeyError(channel)

    def teams_by_token(self) -> dict[str, Team]:
        with self._lock:
            return {t.bot_token: t for t in self.teams.values()}

    @staticmethod
    def _missing_scope(team: Team, needed: str) -> dict[str, Any]:
        return {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(team.scopes or [])}

    def _bucket_channel(self, team: Team, ref: str) -> str:
        """The channel id a ``channel`` argument names (id, "#name" or a user's DM), without side effects."""
        if ref in self.channels:
            return ref
        name = ref.lstrip("#")
        for ch in self.channels.values():
            if ch.team_id == team.team_id and ((not ch.is_im and ch.name == name) or (ch.is_im and ch.im_user == ref)):
                return ch.id
        return ref

    def _user_in_team(self, team: Team, user_id: Any, error: str = "user_not_found") -> User:
        user = self.users.get(str(user_id)) if user_id else None
        if user is None or user.team_id != team.team_id:
            raise ApiError(error)
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
            raise ApiError("channel_not_found")
        channel = self.channels.get(ref)
        if channel is None:
            name = ref.lstrip("#")
            channel = next((c for c in self.channels.values()
                            if c.team_id == team.team_id and not c.is_im and c.name == name), None)
        if channel is None and allow_user and ref in self.users and self.users[ref].team_id == team.team_id:
            channel = self._open_dm(team, ref)
        if channel is None or channel.team_id != team.team_id:
            raise ApiError("channel_not_found")
        if channel.is_private and not channel.bot_member:
            raise ApiError("channel_not_found")
        return channel

    def _check_can_post(self, channel: Channel) -> None:
        if channel.is_archived:
            raise ApiError("is_archived")
        if not channel.bot_member and not self.config.chat_write_public:
            raise ApiError("not_in_channel")

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
                raise ApiError("invalid_blocks_format") from exc
            if not isinstance(blocks, list):
                raise ApiError("invalid_blocks_format")
            problems = validate_blocks(blocks, "message")
            if problems:
                raise ApiError("invalid_blocks", {k: v for k, v in error_body("invalid_blocks", problems).items()
                                                   if k not in ("ok", "error")})
        if params.get("attachments") not in (None, ""):
            try:
                attachments = _json_param(params["attachments"])
            except ValueError as exc:
                raise ApiError("invalid_attachments") from exc
            if not isinstance(attachments, list):
                raise ApiError("invalid_attachments")
        text = params.get("text")
        if text is not None and not isinstance(text, str):
            text = str(text)
        if require and not text and not blocks and not attachments:
            raise ApiError("no_text")
        if text is not None and len(text) > self.config.text_max_chars:
            if self.config.text_over_limit == "error":
                raise ApiError("msg_too_long")
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
            raise ApiError("invalid_metadata_format") from exc
        if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str) \
                or not isinstance(metadata.get("event_payload"), dict):
            raise ApiError("invalid_metadata_schema")
        return metadata

    def _parse_view(self, params: dict[str, Any], expected: Literal["modal", "home"] | None) -> dict[str, Any]:
        """views.* take ``view`` as JSON; invalid views answer ``invalid_arguments`` with the problems in
        ``response_metadata.messages`` (https://docs.slack.dev/reference/methods/views.open)."""
        raw = params.get("view")
        if raw in (None, ""):
            raise ApiError("invalid_arguments", {"response_metadata": {"messages": ["[ERROR] missing required "
                                                                                      "field: view"]}})
        try:
            view = _json_param(raw)
        except ValueError as exc:
            raise ApiError("invalid_arguments", {"response_metadata": {
                "messages": ["[ERROR] view must be a JSON object [json-pointer:/view]"]}}) from exc
        kind = expected or (view.get("type") if isinstance(view, dict) else None)
        if kind not in ("modal", "home"):
            kind = "modal"
        problems = validate_view(view, kind)
        if problems:
            raise ApiError("invalid_arguments", {"response_metadata": {"messages": [f"[ERROR] {p}"
                                                                                     for p in problems]}})
        if len(json.dumps(view)) > 250_000:
            raise ApiError("view_too_large")
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

    def _exchange_trigger(self, team: Team, params: dict[str, Any]) -> str | None:
        """Trigger checks (https://docs.slack.dev/reference/methods/views.open): ``invalid_trigger_id``,
        ``expired_trigger_id`` after 3 s, ``exchanged_trigger_id`` on reuse. Returns the trigger's user."""
        tid = str(params.get("trigger_id") or params.get("interactivity_pointer") or "")
        trig = self._triggers.get(tid)
        if not self.config.check_trigger_ids:
            return trig.user_id if trig else None
        if trig is None or trig.team_id != team.team_id:
            raise ApiError("invalid_trigger_id")
        if trig.used:
            raise ApiError("exchanged_trigger_id")
        if self.now() - trig.created > self.config.trigger_ttl_s:
            raise ApiError("expired_trigger_id")
        trig.used = True
        return trig.user_id

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

    def _replace_view(self, old: View, new: View) -> None:
        for stack in self._modals.values():
            for i, v in enumerate(stack):
                if v is old:
                    stack[i] = new
        for key, v in self._home.items():
            if v is old:
                self._home[key] = new
        self._touch()

    def _seed(self) -> None:
        """Fill a fresh workspace (SlackStandIn: the demo's team, people and channels)."""
