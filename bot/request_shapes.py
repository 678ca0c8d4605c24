"""Whether a Slack request's body, once read, has the shape Slack gives it: what `POST /slack/events` checks
before Bolt dispatches it, so that a signed request Bolt cannot work with is answered 400 with the reason
instead of a 500 (a listener or Bolt's own matchers tripping over a missing or mistyped field), or a 200 whose
work then fails after the ack.

The shapes, from Slack's references (only what Bolt and syncbot's listeners read, never more):
- a slash command (a form): ``command`` (``/name``), ``team_id`` and ``user_id``
  (https://docs.slack.dev/interactivity/implementing-slash-commands#app_command_handling);
- an interaction (a form whose ``payload`` field holds JSON): a ``type``, a ``user`` object with its ``id``, a
  ``team`` object with its ``id`` (``null`` only for an org-wide install, ``is_enterprise_install``); a
  block_actions has a non-empty ``actions`` list of objects with an ``action_id``, and its ``trigger_id``; a
  view_submission or view_closed a ``view`` object with its ``callback_id`` and, when it has a ``state``,
  ``state.values`` an object of blocks, each an object of inputs; a shortcut or message_action its
  ``callback_id``
  (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload,
  https://docs.slack.dev/reference/interaction-payloads/view-interactions-payload);
- an Events API request (JSON): a ``type``; an ``event_callback`` has ``team_id``, ``event_id`` and an
  ``event`` object with its ``type`` and, when it names a ``user``, that user's id as a string
  (https://docs.slack.dev/apis/events-api/#callback-field, https://docs.slack.dev/reference/events/app_home_opened); a
  ``url_verification`` its ``challenge``.
Slack's SSL check (an unsigned form with ``ssl_check=1``) is not checked: Bolt answers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl

#: How the body came: a plain form (a slash command), a form's ``payload`` field (an interaction), or JSON.
BodyKind = Literal["form", "payload", "json"]


def body_kind(text: str, content_type: str) -> BodyKind:
    """How ``text`` came: JSON when it starts with ``{`` or is declared JSON (as Bolt reads it,
    slack_bolt.request.internals.parse_body), an interaction when it is a form with a ``payload`` field, else
    a plain form."""
    if text.startswith("{") or content_type.split(";", 1)[0].strip().lower() == "application/json":
        return "json"
    return "payload" if "payload" in form_fields(text) else "form"


def form_fields(text: str) -> dict[str, str]:
    """The fields of a form body (the last value of a repeated name, as Bolt keeps it)."""
    return dict(parse_qsl(text, keep_blank_values=True))


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _object_with(value: Any, key: str) -> bool:
    return isinstance(value, Mapping) and _text(value.get(key))


def problem(body: Mapping[str, Any], kind: BodyKind) -> str | None:
    """What is wrong with the shape of ``body`` (a sentence naming the field), or None when it is Slack's."""
    if kind == "form":
        return _command_problem(body)
    if kind == "payload":
        return _interaction_problem(body)
    return _event_problem(body)


def _command_problem(body: Mapping[str, Any]) -> str | None:
    if body.get("ssl_check"):
        return None
    command = body.get("command")
    if not _text(command) or not str(command).startswith("/"):
        return "a slash command needs its `command` (such as /sync-log)"
    for field in ("team_id", "user_id"):
        if not _text(body.get(field)):
            return f"a slash command needs its `{field}`"
    return None


def _interaction_problem(body: Mapping[str, Any]) -> str | None:
    kind = body.get("type")
    if not _text(kind):
        return "an interaction needs its `type`"
    if not _object_with(body.get("user"), "id"):
        return "an interaction needs a `user` object with its `id`"
    team = body.get("team")
    if not _object_with(team, "id") and not (team is None and "team" in body and body.get("is_enterprise_install")):
        return "an interaction needs a `team` object with its `id`"
    for key in ("container", "view", "channel", "message", "state"):
        if body.get(key) is not None and not isinstance(body.get(key), Mapping):
            return f"an interaction's `{key}` must be an object"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or not all(_object_with(a, "action_id") for a in actions):
            return "a block_actions interaction needs a list of `actions`, each with its `action_id`"
        if not _text(body.get("trigger_id")):  # every click carries one (it opens a modal for 3 s)
            return "a block_actions interaction needs its `trigger_id`"
    elif kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, Mapping) or not isinstance(view.get("callback_id"), str):
            return f"a {kind} interaction needs a `view` object with its `callback_id`"
        state = view.get("state")
        if state is not None and not _state_of_blocks(state):
            return f"a {kind} interaction's `view.state` needs `values`: an object of blocks, each an object of inputs"
    elif kind in ("shortcut", "message_action") and not isinstance(body.get("callback_id"), str):
        return f"a {kind} interaction needs its `callback_id`"
    return None


def _state_of_blocks(state: Any) -> bool:
    """``view.state`` as Slack sends it: ``{"values": {block_id: {action_id: {...}}}}``."""
    values = state.get("values") if isinstance(state, Mapping) else None
    return isinstance(values, Mapping) and all(
        isinstance(block, Mapping) and all(isinstance(element, Mapping) for element in block.values())
        for block in values.values())


def _event_problem(body: Mapping[str, Any]) -> str | None:
    kind = body.get("type")
    if not _text(kind):
        return "a JSON request needs its `type`"
    if kind == "url_verification" and not _text(body.get("challenge")):
        return "a url_verification needs its `challenge`"
    if kind == "event_callback":
        if not _object_with(body.get("event"), "type"):
            return "an event_callback needs an `event` object with its `type`"
        for field in ("event_id", "team_id"):
            if not _text(body.get(field)):
                return f"an event_callback needs its `{field}`"
        user = body["event"].get("user")
        if user is not None and not isinstance(user, str):
            return "an event's `user` must be a user id"  # app_home_opened, message...: a string
    return None
