"""The Slack Web API stand-in's state and behaviour, independent of HTTP.

:class:`SlackStandIn` answers ``handle_api(method, params, token)`` the way https://slack.com/api/<method> does
(https://docs.slack.dev/apis/web-api/): HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``,
HTTP 429 with ``Retry-After`` when rate limited. It keeps the workspace (teams, users, channels, messages,
threads, ephemerals, Home tabs, modals), records every call, and takes injected faults.
All methods are thread-safe: uvicorn serves from its own thread while tests read state from theirs.
"""

from __future__ import annotations

import copy
import itertools
import os
import pickle
import secrets
from pathlib import Path
from typing import Any, Literal

from sandbox import checks
from sandbox.slack import config as cfg
from sandbox.slack.answers import Answers
from sandbox.slack.config import RateLimit
from sandbox.slack.core import (
    SUPPORTED_METHODS,
    ApiResponse,
)
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
)
from sandbox.slack.web_api import WebApi

__all__ = ["SUPPORTED_METHODS", "ApiResponse", "SlackStandIn"]


class SlackStandIn(WebApi, Answers):
    """A Slack workspace with our app installed, answering Web API calls.

    Read state with :meth:`calls`, :meth:`messages`, :meth:`message`, :meth:`ephemerals`, :meth:`home_view`,
    :meth:`open_views`; shape it with :meth:`add_team`, :meth:`add_user`, :meth:`add_channel`,
    :meth:`set_bot_membership`, :meth:`archive_channel`, :meth:`set_token_state`; inject trouble with
    :meth:`inject_fault`, :meth:`set_update_error`, :meth:`set_rate_limit`; mint what Slack mints for a request with
    :meth:`mint_response_url` and :meth:`mint_trigger_id`.
    """

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

    def calls(self, method: str | None = None) -> list[Call]:
        """Every call answered so far (oldest first), optionally of one method ("response_url" included)."""
        with self._lock:
            return [copy.deepcopy(c) for c in self._calls if method is None or c.method == method]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

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

    # the workspace kept between runs of the demo: these attributes, pickled
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

