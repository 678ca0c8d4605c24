"""Issue 14, found by trying to break it.
Signed requests whose top-level shape passes bot/request_shapes.py but whose inner fields are not
what Slack sends (lists for objects, numbers for strings, JSON that is not an object). The promise (README,
"Slack's requests, checked"): a signed request that cannot be read or has not Slack's shape gets a 4xx, never a
500, and is not acked and then failed afterwards."""
from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.blocks import ids
from tests.conftest import Stack
from tests.test_request_faults import FORM, OWNER, TEAM, _click, _event, _form

JSON = "application/json"


def _view(**view: Any) -> dict[str, Any]:
    base = {"id": "V1", "type": "modal", "callback_id": ids.FILL_FIELD_VIEW, "private_metadata": "1",
            "state": {"values": {}}, "hash": "h"}
    base.update(view)
    return _click(type="view_submission", actions=None, container=None, channel=None, view=base)


CASES: list[tuple[str, str, str]] = [
    ("json-array", "[]", JSON),
    ("json-string", '"hello"', JSON),
    ("json-null", "null", JSON),
    ("json-number", "1", JSON),
    ("json-not-json", "{not json", JSON),
    ("payload-not-json", urlencode({"payload": "{not json"}), FORM),
    ("payload-array", urlencode({"payload": "[]"}), FORM),
    ("payload-null", urlencode({"payload": "null"}), FORM),
    ("payload-string", urlencode({"payload": '"x"'}), FORM),
    ("view-state-values-list", _form(_view(state={"values": []})), FORM),
    ("view-state-not-object", _form(_view(state="x")), FORM),
    ("view-state-block-not-object", _form(_view(state={"values": {ids.FILL_FIELD_BLOCK: "x"}})), FORM),
    ("view-state-input-not-object", _form(_view(state={"values": {ids.FILL_FIELD_BLOCK:
                                                                    {ids.FILL_FIELD_INPUT: "x"}}})), FORM),
    ("view-private-metadata-object", _form(_view(private_metadata={"a": 1})), FORM),
    ("view-callback-id-number", _form(_view(callback_id=5)), FORM),
    ("click-value-object", _form(_click(actions=[{"action_id": ids.RETRY, "value": {"a": 1}}])), FORM),
    ("click-log-next-value-list", _form(_click(actions=[{"action_id": ids.LOG_NEXT, "value": "[1]"}])), FORM),
    ("click-fill-field-without-trigger", _form(_click(actions=[{"action_id": ids.FILL_FIELD, "value": "1"}],
                                                      trigger_id=None)), FORM),
    ("click-channel-not-object-but-list", _form(_click(channel=["C1"])), FORM),
    ("click-container-message-ts-object", _form(_click(container={"type": "message", "message_ts": {"x": 1},
                                                                  "channel_id": "C1"})), FORM),
    ("event-user-object", _event(event={"type": "app_home_opened", "user": {"id": OWNER}, "tab": "home"}), JSON),
    ("event-without-user", _event(event={"type": "app_home_opened", "tab": "home"}), JSON),
    ("event-event-id-number", _event(event_id=12345), JSON),
    ("event-team-id-list", _event(team_id=[TEAM]), JSON),
    ("command-text-list-ish", urlencode([("command", "/sync-log"), ("team_id", TEAM), ("user_id", OWNER),
                                         ("text", "status"), ("channel_id", "")]), FORM),
    ("command-unknown-name", urlencode({"command": "/nope", "team_id": TEAM, "user_id": OWNER, "text": ""}), FORM),
]


@pytest.mark.parametrize(("body", "content_type"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_signed_malformed_request_gets_no_500_and_no_failure_after_the_ack(
        stack: Stack, caplog: pytest.LogCaptureFixture, body: str, content_type: str) -> None:
    caplog.set_level(logging.ERROR)
    response, _ = stack.driver.send(body, content_type)
    time.sleep(0.3)  # work started after an ack would have failed by now
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    print(response.status_code, response.text[:200], [(r.name, r.getMessage()[:200]) for r in failures])
    assert response.status_code < 500, response.text
    assert not failures, [(r.name, r.getMessage()[:300], r.exc_text and r.exc_text[-300:]) for r in failures]
