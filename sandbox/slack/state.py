"""The workspace model of the Slack stand-in: teams, users, channels, messages, ephemerals, views, calls.

Each ``to_api`` renders the object the way Slack's Web API returns it; the page of each object type is cited.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass
class Team:
    """A workspace with our app installed: its bot token and bot user (https://docs.slack.dev/reference/methods/auth.test)."""

    team_id: str
    name: str
    domain: str
    bot_token: str
    bot_user_id: str
    bot_id: str
    app_id: str
    bot_name: str = "syncbot"
    token_state: Literal["active", "revoked", "inactive"] = "active"
    #: The bot token's scopes; ``None``: every scope a method asks for (a call needing one it lacks answers
    #: ``missing_scope`` with ``needed`` and ``provided``, https://docs.slack.dev/reference/methods/chat.postMessage#errors).
    scopes: list[str] | None = None

    @property
    def url(self) -> str:
        return f"https://{self.domain}.slack.com/"


@dataclass
class User:
    """A workspace member (https://docs.slack.dev/reference/objects/user-object).

    ``tz_offset`` is seconds east of UTC; left ``None`` it is computed from ``tz`` for the current date, as Slack does.
    """

    id: str
    team_id: str
    name: str
    real_name: str
    is_admin: bool = False
    is_owner: bool = False
    is_primary_owner: bool = False
    is_bot: bool = False
    is_restricted: bool = False
    deleted: bool = False
    tz: str = "America/Chicago"
    tz_label: str | None = None
    tz_offset: int | None = None
    email: str | None = None

    def _tz_facts(self) -> tuple[int, str]:
        if self.tz_offset is not None:
            return self.tz_offset, self.tz_label or self.tz
        try:
            now = dt.datetime.now(ZoneInfo(self.tz))
        except (ZoneInfoNotFoundError, ValueError):
            return 0, self.tz_label or self.tz
        offset = now.utcoffset() or dt.timedelta(0)
        return int(offset.total_seconds()), self.tz_label or (now.tzname() or self.tz)

    def to_api(self) -> dict[str, Any]:
        offset, label = self._tz_facts()
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": label,
            "tz_offset": offset,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": self.is_primary_owner,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "profile": {
                "real_name": self.real_name,
                "real_name_normalized": self.real_name,
                "display_name": self.name,
                "display_name_normalized": self.name,
                "email": self.email or f"{self.name}@example.com",
                "team": self.team_id,
            },
        }


@dataclass
class Channel:
    """A conversation (https://docs.slack.dev/reference/objects/conversation-object).

    ``bot_member`` says whether our bot is in it; ``members`` are human user ids.
    """

    id: str
    team_id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    is_im: bool = False
    im_user: str | None = None
    bot_member: bool = False
    members: set[str] = field(default_factory=set)
    created: int = 1700000000

    def to_api(self) -> dict[str, Any]:
        if self.is_im:
            return {
                "id": self.id, "created": self.created, "is_im": True, "is_org_shared": False,
                "user": self.im_user, "is_user_deleted": False, "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_member": self.bot_member,
            "num_members": len(self.members) + (1 if self.bot_member else 0),
            "context_team_id": self.team_id,
        }


@dataclass
class Edit:
    """One earlier version of a message, kept when chat.update or a response_url replaced it."""

    text: str
    blocks: list[dict[str, Any]] | None
    replaced_at_ts: str
    via: Literal["chat.update", "response_url"]


@dataclass
class Message:
    """A channel message and its thread (https://docs.slack.dev/reference/objects/message-object).

    ``user`` is the bot user id for the app's messages. ``via_response_url`` marks messages created through a
    response_url, which chat.update cannot edit (SL-11).
    """

    ts: str
    channel: str
    team_id: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    user: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    replies: list[Message] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    edited_ts: str | None = None
    via_response_url: bool = False
    metadata: dict[str, Any] | None = None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "text": self.text, "ts": self.ts, "team": self.team_id}
        if self.user is not None:
            out["user"] = self.user
        if self.bot_id is not None:
            out["bot_id"] = self.bot_id
            out["app_id"] = self.app_id
        if self.blocks is not None:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments is not None:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        if self.replies:
            out["reply_count"] = len(self.replies)
            out["latest_reply"] = self.replies[-1].ts
        if self.edited_ts is not None:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Ephemeral:
    """An ephemeral message shown to one user (https://docs.slack.dev/reference/methods/chat.postEphemeral)."""

    message_ts: str
    channel: str
    user: str
    team_id: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    via_response_url: bool = False
    edits: list[Edit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class View:
    """A modal or Home tab view (https://docs.slack.dev/reference/views/modal-views)."""

    id: str
    team_id: str
    user_id: str
    type: Literal["modal", "home"]
    blocks: list[dict[str, Any]]
    hash: str
    app_id: str
    bot_id: str
    title: dict[str, Any] | None = None
    submit: dict[str, Any] | None = None
    close: dict[str, Any] | None = None
    private_metadata: str = ""
    callback_id: str = ""
    external_id: str = ""
    clear_on_close: bool = False
    notify_on_close: bool = False
    root_view_id: str | None = None
    previous_view_id: str | None = None
    state: dict[str, Any] = field(default_factory=lambda: {"values": {}})

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
            "blocks": copy.deepcopy(self.blocks),
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": copy.deepcopy(self.state),
            "hash": self.hash,
            "clear_on_close": self.clear_on_close,
            "notify_on_close": self.notify_on_close,
            "root_view_id": self.root_view_id or self.id,
            "previous_view_id": self.previous_view_id,
            "app_id": self.app_id,
            "external_id": self.external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        if self.type == "modal":
            out["title"] = copy.deepcopy(self.title)
            out["submit"] = copy.deepcopy(self.submit)
            out["close"] = copy.deepcopy(self.close)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "api": self.to_api()}


@dataclass
class ResponseUrl:
    """A minted response_url: good for ``max_uses`` posts within ``ttl`` seconds of ``created``."""

    id: str
    url: str
    team_id: str
    channel_id: str
    user_id: str
    created: float
    source: Literal["command", "block_actions", "view_submission"] = "command"
    message_ts: str | None = None
    is_ephemeral: bool = False
    uses: int = 0
    #: a command's answer with replace_original came before its ack was shown (the ack counts as replaced)
    replaced_ack: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Trigger:
    """A minted trigger_id, exchangeable once within a few seconds for a modal."""

    trigger_id: str
    team_id: str
    user_id: str
    created: float
    used: bool = False


@dataclass
class Call:
    """One request the stand-in answered: what the app sent and what it got back."""

    seq: int
    method: str
    params: dict[str, Any]
    token: str | None
    team_id: str | None
    time: float
    status: int = 200
    ok: bool = False
    error: str | None = None
    response: Any = None
    retry_after: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fault:
    """Answer the next ``count`` calls of ``method`` ("*" for any; "response_url" for response_url posts)
    whose params contain ``match`` with: HTTP ``status`` (and ``error`` / raw ``body``), a Slack ``error``
    at HTTP 200 (``extra``: more fields of that answer, e.g. ``{"needed": "channels:history"}`` beside
    ``missing_scope``), a 429 with ``retry_after``, and/or after ``delay`` seconds (alone: a slow but normal
    answer).

    ``after``: the call is carried out first (the message is posted, updated...) and the fault's answer then
    replaces Slack's: the app never hears that it worked (a lost answer). With ``delay`` alone it is the normal
    answer, late (longer than the client's timeout, the answer is lost too)."""

    method: str
    count: int = 1
    status: int | None = None
    error: str | None = None
    retry_after: int | None = None
    delay: float | None = None
    body: str | None = None
    match: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None
    after: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
