"""Issue 14, found by trying to break it.
Slack's refusals on the request path, by class, against the Slack stand-in over HTTP."""
from __future__ import annotations

import json
from typing import Any

import pytest

from bot.blocks import ids
from tests.conftest import QBO, Stack, wait_for
from tests.test_request_faults import FORM, OWNER, TEAM, _click, _form
from tests.test_slack_flows import deliver_all


def _card_with(stack: Stack, action_id: str) -> dict[str, Any]:
    for m in stack.messages():
        if action_id in json.dumps(m.get("blocks") or []):
            return m
    raise AssertionError(f"no message with {action_id}")


@pytest.mark.parametrize("error", ["view_too_large", "invalid_blocks"])
def test_a_modal_slack_refuses_as_too_large_opens_in_short_form(stack: Stack, qbo: QBO, error: str) -> None:
    """Contact support opens a modal (views.open, with the entry's details): refused as too large, the modal
    still opens in short form (README: "a click's own update, a Home tab or a modal too: the request path sends
    them once more in short form"). Seen: one views.open, refused; the click fails after its ack
    (event=after_ack_failed fn=contact_support, SlackApiError view_too_large). The handler calls views.open on
    the WebClient Bolt hands it (slack_bolt/app/app.py builds a plain WebClient per request), not on syncbot's
    GuardedWebClient, so neither the short form nor the ADMIN memory applies there (handlers/actions.py
    fill_field and contact_support; bot/replies.Reply built from that client for modals, ephemerals and DMs)."""
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})  # a duplicate
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    entry = stack.rt.services.engine.open_errors(stack.connection_id)[0]
    trigger = stack.driver.link.mint_trigger_id(TEAM, OWNER)
    stack.slack.standin.inject_fault("views.open", 1, error=error)
    body = _form(_click(actions=[{"action_id": ids.CONTACT_SUPPORT, "block_id": "b0", "type": "button",
                                  "value": str(entry.id), "action_ts": "1700000000.1"}], trigger_id=trigger))
    response, _ = stack.driver.send(body, FORM)
    assert response.status_code == 200
    wait_for(lambda: len(stack.slack.standin.calls("views.open")) >= 2, timeout=5)
    opened = stack.slack.standin.calls("views.open")
    assert [c.ok for c in opened] == [False, True], [(c.ok, c.error) for c in opened]


@pytest.mark.parametrize("refusal", [{"error": "ratelimited", "status": 429, "retry_after": 1},
                                     {"error": "service_unavailable", "status": 503}],
                         ids=["ratelimited", "service_unavailable"])
def test_a_late_answer_whose_dm_slack_refuses_once_still_arrives(stack: Stack, refusal: dict[str, Any]) -> None:
    """tests/test_request_faults.py's own setup (/sync-log sync-now typed in #general, where syncbot is not a
    member; the response_url answers 404: the counts go as a DM), plus one rate limit (wait and retry) or one
    outage (back off and retry) on that DM's post. No modal is open here: the DM is the only place the counts
    can reach. Seen: event=answer_dm_failed error=ratelimited, and nothing more: the counts are lost
    (bot/replies.py _direct_message tries once, on Bolt's plain WebClient)."""
    from sandbox.slack import config as slack_cfg
    from tests.test_request_faults import _dm

    stack.slack.standin.inject_fault("response_url", status=404, error="no_service")
    dm = stack.slack.standin.dm_channel_id(TEAM, OWNER)
    stack.slack.standin.inject_fault("chat.postMessage", 1, match={"channel": dm}, **refusal)
    started = stack.driver.slash_command("/sync-log", "sync-now", channel_id=slack_cfg.GENERAL_CHANNEL_ID)
    assert started.status_code == 200
    try:
        wait_for(lambda: [m for m in _dm(stack, OWNER) if "Sync Now finished" in m["text"]], timeout=20)
    finally:
        print("chat.postMessage calls:", [(c.params.get("channel"), c.ok, c.error)
                                          for c in stack.slack.standin.calls("chat.postMessage")])
