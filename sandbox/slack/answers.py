"""What Slack does with an app's answers: a POST to a response_url, the ack of a view_submission or a slash
command, and the state of the demo page."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

from sandbox.slack.blockkit import validate_view
from sandbox.slack.core import (
    ApiError,
    ApiResponse,
    StandInCore,
    truthy,
)
from sandbox.slack.state import (
    Call,
    Channel,
    Edit,
    Ephemeral,
    Message,
    ResponseUrl,
    Team,
)


class Answers(StandInCore):
    """response_urls, acks and the page's state."""

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
        except ApiError as exc:
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
        if truthy(payload.get("delete_original")):
            original = self._original(ru, channel)
            if original is None:
                raise ApiError("message_not_found")
            if isinstance(original, Ephemeral):
                self._ephemerals.remove(original)
            else:
                self._remove_message(channel.id, original)
            return {"ok": True}
        text, blocks, attachments, _warnings = self._content(payload)
        if truthy(payload.get("replace_original")) and ru.message_ts is None and ru.source == "command":
            # a command's answer replacing its immediate answer before that was shown here (the app answered
            # at once): Slack had the ack first, so the ack is what gets replaced (apply_command_ack)
            eph = Ephemeral(message_ts=self._next_ts(), channel=channel.id, user=ru.user_id, team_id=team.team_id,
                            text=text or "", blocks=blocks, thread_ts=payload.get("thread_ts") or None,
                            via_response_url=True)
            self._ephemerals.append(eph)
            ru.message_ts, ru.is_ephemeral, ru.replaced_ack = eph.message_ts, True, True
            return {"ok": True}
        if truthy(payload.get("replace_original")) and ru.message_ts is not None:
            original = self._original(ru, channel)
            if original is None:
                raise ApiError("message_not_found")
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
            except ApiError as exc:  # Slack shows nothing useful either; say why here
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

