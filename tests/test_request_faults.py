"""Issue 14, the request path: what Slack's requests meet on the way in and what their answers meet on the way
out. Against the stand-ins over real HTTP, with requests signed exactly as Slack signs them
(sandbox.slack.SlackDriver): a signed body of the wrong shape is refused with 400 and changes nothing."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from sandbox.slack import config as slack_cfg
from sync.models import SyncLogEntry
from tests.conftest import CHANNEL, Stack

FORM = "application/x-www-form-urlencoded"
TEAM = slack_cfg.DEFAULT_TEAM_ID
OWNER = slack_cfg.OWNER_USER_ID


def _state(stack: Stack) -> tuple[int, int, int, int]:
    """What a malformed request must leave as it was: the log, the channel, the owner's ephemerals and the
    Web API calls syncbot made."""
    with stack.rt.services.sessions() as session:
        entries = session.scalar(select(func.count()).select_from(SyncLogEntry))
    return (entries or 0, len(stack.messages()), len(stack.ephemerals(OWNER)),
            len(stack.slack.standin.calls()))


def _click(**changes: Any) -> dict[str, Any]:
    """A block_actions payload as Slack sends it for a click on Sync Now, with ``changes`` (None: key removed)."""
    payload: dict[str, Any] = {
        "type": "block_actions", "team": {"id": TEAM, "domain": "sandbox"},
        "user": {"id": OWNER, "username": "owner", "team_id": TEAM}, "api_app_id": slack_cfg.DEFAULT_APP_ID,
        "token": "sandbox-verification-token", "trigger_id": "1.2.3",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": CHANNEL},
        "channel": {"id": CHANNEL, "name": "sync-errors"},
        "actions": [{"action_id": "sync_now", "block_id": "b0", "type": "button", "value": "1",
                     "action_ts": "1700000000.1"}]}
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def _command(**changes: str | None) -> str:
    fields: dict[str, str] = {"token": "sandbox-verification-token", "team_id": TEAM, "team_domain": "sandbox",
                              "channel_id": CHANNEL, "channel_name": "sync-errors", "user_id": OWNER,
                              "user_name": "owner", "command": "/sync-log", "text": "sync-now",
                              "api_app_id": slack_cfg.DEFAULT_APP_ID, "trigger_id": "1.2.3"}
    for key, value in changes.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return urlencode(fields)


def _event(**changes: Any) -> str:
    envelope: dict[str, Any] = {
        "token": "sandbox-verification-token", "team_id": TEAM, "api_app_id": slack_cfg.DEFAULT_APP_ID,
        "type": "event_callback", "event_id": "Ev0MALFORMED", "event_time": 1700000000,
        "event": {"type": "app_home_opened", "user": OWNER, "channel": "D0000000001", "tab": "home",
                  "event_ts": "1700000000.000100"}}
    for key, value in changes.items():
        if value is None:
            envelope.pop(key, None)
        else:
            envelope[key] = value
    return json.dumps(envelope)


def _form(payload: Any) -> str:
    return urlencode({"payload": json.dumps(payload)})


MALFORMED: list[tuple[str, str, str, str]] = [
    # (id, body, content type, a word the 400's error names)
    ("interaction-without-type", _form(_click(type=None)), FORM, "type"),
    ("interaction-type-not-text", _form(_click(type=42)), FORM, "type"),
    ("interaction-without-team", _form(_click(team=None)), FORM, "team"),
    ("interaction-team-without-id", _form(_click(team={"domain": "sandbox"})), FORM, "team"),
    ("interaction-team-as-text", _form(_click(team=TEAM)), FORM, "team"),
    ("interaction-without-user", _form(_click(user=None)), FORM, "user"),
    ("interaction-user-as-text", _form(_click(user=OWNER)), FORM, "user"),
    ("interaction-user-id-not-text", _form(_click(user={"id": 7})), FORM, "user"),
    ("block-actions-without-actions", _form(_click(actions=None)), FORM, "actions"),
    ("block-actions-actions-not-a-list", _form(_click(actions={"action_id": "sync_now"})), FORM, "actions"),
    ("block-actions-empty-actions", _form(_click(actions=[])), FORM, "actions"),
    ("block-actions-action-not-object", _form(_click(actions=["sync_now"])), FORM, "actions"),
    ("block-actions-action-without-id", _form(_click(actions=[{"type": "button"}])), FORM, "actions"),
    ("block-actions-container-not-object", _form(_click(container="message")), FORM, "container"),
    ("view-submission-without-view", _form(_click(type="view_submission", actions=None, container=None)),
     FORM, "view"),
    ("view-submission-view-not-object", _form(_click(type="view_submission", actions=None, container=None,
                                                     view="V1")), FORM, "view"),
    ("command-without-command", _command(command=None), FORM, "command"),
    ("command-without-team", _command(team_id=None), FORM, "team_id"),
    ("command-without-user", _command(user_id=None), FORM, "user_id"),
    ("command-empty-form", "", FORM, "command"),
    ("event-callback-without-event", _event(event=None), "application/json", "event"),
    ("event-callback-event-not-object", _event(event="app_home_opened"), "application/json", "event"),
    ("event-callback-event-without-type", _event(event={"user": OWNER}), "application/json", "event"),
    ("event-callback-without-event-id", _event(event_id=None), "application/json", "event_id"),
    ("event-callback-without-team", _event(team_id=None), "application/json", "team_id"),
    ("json-without-type", json.dumps({"team_id": TEAM, "event": {"type": "app_home_opened"}}),
     "application/json", "type"),
]


@pytest.mark.parametrize(("body", "content_type", "named"), [case[1:] for case in MALFORMED],
                         ids=[case[0] for case in MALFORMED])
def test_a_signed_payload_of_the_wrong_shape_is_refused_with_400_and_changes_nothing(
        stack: Stack, body: str, content_type: str, named: str) -> None:
    before = _state(stack)
    response, _ = stack.driver.send(body, content_type)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith("invalid payload:") and named in error and "nothing was done" in error
    time.sleep(0.2)  # anything started after an ack would have shown by now
    assert _state(stack) == before
    forged, _ = stack.driver.send(body, content_type, forge=True)
    assert forged.status_code == 401  # the signature is checked first: nothing is said to a forger
    stale, _ = stack.driver.send(body, content_type, skew_s=-400)
    assert stale.status_code == 401


def test_well_formed_requests_still_pass(stack: Stack) -> None:
    """The shape check refuses only what is malformed: Slack's own requests (the driver's) still work, and so do
    Slack's SSL check (unsigned) and URL verification."""
    assert stack.driver.ssl_check().status_code == 200
    challenge = stack.driver.url_verification("abc")
    assert challenge.status_code == 200 and "abc" in challenge.response.text
    status = stack.driver.slash_command("/sync-log", "status")
    assert status.status_code == 200 and status.json()
    assert stack.driver.app_home_opened().status_code == 200
