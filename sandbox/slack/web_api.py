"""The stand-in's Web API: one call of https://slack.com/api/<method> answered as Slack does (faults,
rate limits and warnings included): auth.test, chat.*, views.*, users.info and conversations.*."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from typing import Any

from sandbox.slack.core import (
    HISTORY_SCOPES,
    METHOD_SCOPES,
    SUPPORTED_METHODS,
    ApiError,
    ApiResponse,
    StandInCore,
    truthy,
)
from sandbox.slack.ratelimit import retry_after_header
from sandbox.slack.state import (
    Call,
    Channel,
    Edit,
    Ephemeral,
    Message,
    Team,
    View,
)


class WebApi(StandInCore):
    """``handle_api`` and a ``_api_<method>`` per supported method."""

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
        except ApiError as exc:
            return ApiResponse(exc.status, {"ok": False, "error": exc.error, **exc.extra}, delay=delay)
        return ApiResponse(200, body, delay=delay)

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
                      reply_broadcast=truthy(params.get("reply_broadcast")), metadata=metadata)
        self._store_message(channel, msg)
        body: dict[str, Any] = {"ok": True, "channel": channel.id, "ts": msg.ts, "message": msg.to_api()}
        for w in warnings:
            self._warn(body, w)
        return body

    def _api_chat_update(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/chat.update: only the bot's own messages; ephemeral messages
        and messages created through a response_url cannot be updated (SL-11)."""
        channel = self._resolve_channel(team, params.get("channel"), allow_user=False)
        ts = str(params.get("ts") or "")
        if channel.is_archived:
            raise ApiError("is_inactive")
        msg = self._find_message(channel.id, ts)
        if msg is None:
            raise ApiError("message_not_found")
        injected = self._update_errors.get((channel.id, ts))
        if injected:
            raise ApiError(injected)
        if msg.user != team.bot_user_id or msg.via_response_url:
            raise ApiError("cant_update_message")
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
            raise ApiError("message_not_found")
        if msg.user != team.bot_user_id:
            raise ApiError("cant_delete_message")
        self._remove_message(channel.id, msg)
        return {"ok": True, "channel": channel.id, "ts": ts}

    def _api_chat_postEphemeral(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/chat.postEphemeral: the user must be in the channel
        (``user_not_in_channel``); the answer carries ``message_ts``."""
        channel = self._resolve_channel(team, params.get("channel"))
        self._check_can_post(channel)
        user = self._user_in_team(team, params.get("user"))
        if not channel.is_im and user.id not in channel.members:
            raise ApiError("user_not_in_channel")
        if channel.is_im and channel.im_user != user.id:
            raise ApiError("user_not_in_channel")
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
            raise ApiError("message_not_found")
        link = f"{team.url}archives/{channel.id}/p{ts.replace('.', '')}"
        if msg.is_reply:
            link += f"?thread_ts={msg.thread_ts}&cid={channel.id}"
        return {"ok": True, "channel": channel.id, "permalink": link}

    def _api_views_publish(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/views.publish: ``hash_conflict`` when ``hash`` is stale."""
        user = self._user_in_team(team, params.get("user_id"))
        data = self._parse_view(params, "home")
        current = self._home.get((team.team_id, user.id))
        if params.get("hash") and current is not None and params["hash"] != current.hash:
            raise ApiError("hash_conflict")
        view = self._make_view(team, user.id, data, view_id=current.id if current else None)
        self._home[(team.team_id, user.id)] = view
        self._touch()
        return {"ok": True, "view": view.to_api()}

    def _api_views_open(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/views.open"""
        user_id = self._exchange_trigger(team, params) or "UNKNOWN"
        data = self._parse_view(params, "modal")
        if data.get("external_id") and self._view_by_external_id(team, data["external_id"]) is not None:
            raise ApiError("duplicate_external_id")
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
            raise ApiError("not_found")
        if len(stack) >= 3:
            raise ApiError("push_limit_reached")
        view = self._make_view(team, user_id, data, root=stack[0].id, previous=stack[-1].id)
        stack.append(view)
        self._touch()
        return {"ok": True, "view": view.to_api()}

    def _api_views_update(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/views.update: ``not_found`` for an unknown view_id or
        external_id, ``hash_conflict`` for a stale hash."""
        target: View | None = None
        if params.get("view_id"):
            target = self._view_by_id(str(params["view_id"]))
        elif params.get("external_id"):
            target = self._view_by_external_id(team, str(params["external_id"]))
        if target is None or target.team_id != team.team_id:
            raise ApiError("not_found")
        if params.get("hash") and params["hash"] != target.hash:
            raise ApiError("hash_conflict")
        data = self._parse_view(params, target.type)
        fresh = self._make_view(team, target.user_id, data, view_id=target.id, root=target.root_view_id,
                                previous=target.previous_view_id)
        self._replace_view(target, fresh)
        return {"ok": True, "view": fresh.to_api()}

    def _api_users_info(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/users.info: roles (is_owner, is_admin, is_primary_owner) and tz."""
        user = self._user_in_team(team, params.get("user"))
        return {"ok": True, "user": user.to_api()}

    def _api_conversations_open(self, team: Team, params: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/conversations.open (one user: the app's DM with them)."""
        if params.get("channel"):
            channel = self._resolve_channel(team, params["channel"], allow_user=False)
            return {"ok": True, "channel": channel.to_api() if truthy(params.get("return_im")) else {"id": channel.id}}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            raise ApiError("users_list_not_supplied")
        if len(users) > 1:
            raise ApiError("not_supported", {"detail": "the stand-in opens one-to-one DMs only"})
        user = self._user_in_team(team, users[0])
        existed = any(c.is_im and c.team_id == team.team_id and c.im_user == user.id for c in self.channels.values())
        channel = self._open_dm(team, user.id)
        self._touch()
        body: dict[str, Any] = {"ok": True, "channel": channel.to_api() if truthy(params.get("return_im"))
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
            raise ApiError("channel_not_found")
        if channel.is_im or channel.is_private:
            raise ApiError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise ApiError("is_archived")
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
            raise ApiError("missing_scope", {k: v for k, v in self._missing_scope(team, needed).items()
                                              if k not in ("ok", "error")})
        if not channel.bot_member:
            raise ApiError("not_in_channel")
        return channel

    @staticmethod
    def _page(messages: list[Message], params: dict[str, Any], default_limit: int = 100) -> tuple[
            list[Message], str]:
        """``oldest`` / ``latest`` (``inclusive``), ``limit`` (at most 999) and ``cursor`` (our cursor: an offset)."""
        def ts_arg(name: str) -> float | None:
            value = params.get(name)
            if value is None or value == "":
                return None
            try:
                return float(value)
            except (TypeError, ValueError):
                raise ApiError(f"invalid_ts_{name}") from None

        oldest, latest, inclusive = ts_arg("oldest"), ts_arg("latest"), truthy(params.get("inclusive"))
        kept = [m for m in messages
                if (oldest is None or float(m.ts) > oldest or (inclusive and float(m.ts) == oldest))
                and (latest is None or float(m.ts) < latest or (inclusive and float(m.ts) == latest))]
        try:
            limit = max(1, min(999, int(params.get("limit") or default_limit)))
            start = int(params.get("cursor") or 0)
        except (TypeError, ValueError):
            raise ApiError("invalid_cursor") from None
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
        with_metadata = truthy(params.get("include_all_metadata"))
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
            raise ApiError("thread_not_found")
        page, cursor = self._page([parent, *parent.replies], params, default_limit=1000)
        with_metadata = truthy(params.get("include_all_metadata"))
        return {"ok": True, "messages": [self._listed(m, with_metadata) for m in page], "has_more": bool(cursor),
                "response_metadata": {"next_cursor": cursor}}

