"""The Slack Web API stand-in and the driver, over real HTTP (httpx and slack_sdk's WebClient).

Each test states the Slack behaviour it pins; the stand-in module docstrings cite the Slack pages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.serve import RunningServer, serve_in_thread
from sandbox.slack import SlackDriver, SlackStandIn, SlackStandInConfig, StandInServer, serve_standin, sign
from sandbox.slack.config import (
    ADMIN_USER_ID,
    ARCHIVED_CHANNEL_ID,
    DEFAULT_BOT_TOKEN,
    DEFAULT_BOT_USER_ID,
    DEFAULT_TEAM_ID,
    ERRORS_CHANNEL_ID,
    GENERAL_CHANNEL_ID,
    MEMBER_USER_ID,
    OWNER_USER_ID,
    PRIVATE_CHANNEL_ID,
)

SECRET = "sandbox-signing-secret"


@pytest.fixture(scope="module")
def server() -> Iterator[StandInServer]:
    srv = serve_standin()
    yield srv
    srv.stop()


@pytest.fixture
def standin(server: StandInServer) -> SlackStandIn:
    server.standin.reset(SlackStandInConfig())
    return server.standin


@pytest.fixture
def client(server: StandInServer, standin: SlackStandIn) -> WebClient:
    return WebClient(base_url=server.api_url, token=DEFAULT_BOT_TOKEN)


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, text: str = "Retry", value: str = "1") -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}, "value": value}


# ------------------------------------------------------------------------------------------------------------
# basics: auth, wire formats, round trips
# ------------------------------------------------------------------------------------------------------------
def test_auth_test_names_the_bot(client: WebClient) -> None:
    data = client.auth_test().data
    assert isinstance(data, dict)
    assert data["ok"] is True
    assert (data["team_id"], data["user_id"], data["bot_id"]) == (DEFAULT_TEAM_ID, DEFAULT_BOT_USER_ID, "B0000000001")
    assert data["url"] == "https://jobsiteon-demo.slack.com/"


def test_tokens_and_methods_answer_http_200_with_ok_false(server: StandInServer, standin: SlackStandIn) -> None:
    bad = httpx.post(server.api_url + "auth.test", headers={"Authorization": "Bearer xoxb-nope"})
    assert (bad.status_code, bad.json()) == (200, {"ok": False, "error": "invalid_auth"})
    none = httpx.post(server.api_url + "auth.test")
    assert none.json()["error"] == "not_authed"
    unknown = httpx.post(server.api_url + "chat.explode", headers={"Authorization": f"Bearer {DEFAULT_BOT_TOKEN}"})
    assert (unknown.status_code, unknown.json()["error"]) == (200, "unknown_method")
    standin.set_token_state(DEFAULT_TEAM_ID, "revoked")
    revoked = httpx.post(server.api_url + "auth.test", data={"token": DEFAULT_BOT_TOKEN})
    assert revoked.json()["error"] == "token_revoked"


def test_form_encoded_post_with_token_param_and_blocks_as_json_string(server: StandInServer,
                                                                        standin: SlackStandIn) -> None:
    blocks = [section("*Invoice JS-1001* failed")]
    resp = httpx.post(server.api_url + "chat.postMessage",
                      data={"token": DEFAULT_BOT_TOKEN, "channel": "#sync-errors", "text": "JS-1001 failed",
                            "blocks": json.dumps(blocks)})
    body = resp.json()
    assert body == {"ok": True, "channel": ERRORS_CHANNEL_ID, "ts": body["ts"], "message": body["message"]}
    [call] = standin.calls("chat.postMessage")
    assert call.params["blocks"] == blocks and call.token == DEFAULT_BOT_TOKEN and call.status == 200


def test_sl13_json_without_charset_draws_missing_charset_warning(server: StandInServer) -> None:
    resp = httpx.post(server.api_url + "chat.postMessage", headers={"Authorization": f"Bearer {DEFAULT_BOT_TOKEN}"},
                      json={"channel": PRIVATE_CHANNEL_ID, "text": "JS-1001 failed"})  # application/json, no charset
    body = resp.json()
    assert (resp.status_code, body["ok"], body["error"], body["warning"]) == (
        200, False, "channel_not_found", "missing_charset")
    assert body["response_metadata"]["warnings"] == ["missing_charset"]


def test_post_update_thread_permalink_delete_round_trip(client: WebClient, standin: SlackStandIn) -> None:
    first = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="JS-1001 failed",
                                    blocks=[section("failed", block_id="b1")])
    ts = first["ts"]
    assert first["message"]["user"] == DEFAULT_BOT_USER_ID and first["message"]["bot_id"] == "B0000000001"
    second = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="other")
    assert float(second["ts"]) > float(ts) and len(ts.split(".")[1]) == 6

    reply = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, thread_ts=ts, text="attempt 2 failed")
    updated = client.chat_update(channel=ERRORS_CHANNEL_ID, ts=ts, text="JS-1001 synced",
                                 blocks=[section("synced :white_check_mark:", block_id="b2")])
    assert updated["ts"] == ts and updated["text"] == "JS-1001 synced"

    msg = standin.message(ERRORS_CHANNEL_ID, ts)
    assert msg is not None
    assert msg.text == "JS-1001 synced" and msg.blocks == [section("synced :white_check_mark:", block_id="b2")]
    assert [e.text for e in msg.edits] == ["JS-1001 failed"] and msg.edited_ts is not None
    assert [r.text for r in msg.replies] == ["attempt 2 failed"] and msg.replies[0].ts == reply["ts"]
    assert [m.ts for m in standin.messages(ERRORS_CHANNEL_ID)] == [ts, second["ts"]]

    link = client.chat_getPermalink(channel=ERRORS_CHANNEL_ID, message_ts=ts)
    assert link["permalink"] == f"https://jobsiteon-demo.slack.com/archives/{ERRORS_CHANNEL_ID}/p{ts.replace('.', '')}"

    client.chat_delete(channel=ERRORS_CHANNEL_ID, ts=second["ts"])
    assert [m.ts for m in standin.messages(ERRORS_CHANNEL_ID)] == [ts]
    assert [m.ts for m in standin.deleted_messages(ERRORS_CHANNEL_ID)] == [second["ts"]]


def test_dm_by_user_id_and_conversations_methods(client: WebClient, standin: SlackStandIn) -> None:
    opened = client.conversations_open(users=OWNER_USER_ID)
    dm = opened["channel"]["id"]
    assert dm.startswith("D")
    again = client.conversations_open(users=OWNER_USER_ID)
    assert again["channel"]["id"] == dm and again["already_open"] is True
    posted = client.chat_postMessage(channel=OWNER_USER_ID, text="Invite me to #sync-errors")
    assert posted["channel"] == dm
    assert standin.messages(dm)[0].text == "Invite me to #sync-errors"

    info = client.conversations_info(channel=GENERAL_CHANNEL_ID)["channel"]
    assert (info["name"], info["is_member"], info["is_archived"]) == ("general", False, False)
    joined = client.conversations_join(channel=GENERAL_CHANNEL_ID)
    assert joined["channel"]["is_member"] is True
    client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="now I can post")
    with pytest.raises(SlackApiError) as exc:
        client.conversations_join(channel=PRIVATE_CHANNEL_ID)
    assert exc.value.response["error"] == "method_not_supported_for_channel_type"


def test_users_info_roles_and_time_zone(client: WebClient, standin: SlackStandIn) -> None:
    owner = client.users_info(user=OWNER_USER_ID)["user"]
    assert (owner["is_owner"], owner["is_admin"], owner["is_primary_owner"]) == (True, True, True)
    assert owner["tz"] == "America/Chicago" and owner["tz_offset"] in (-21600, -18000)
    admin = client.users_info(user=ADMIN_USER_ID)["user"]
    assert (admin["is_owner"], admin["is_admin"]) == (False, True)
    member = client.users_info(user=MEMBER_USER_ID)["user"]
    assert (member["is_owner"], member["is_admin"], member["real_name"], member["name"]) == (
        False, False, "Mia Member", "mia")
    assert member["team_id"] == DEFAULT_TEAM_ID
    standin.add_user(DEFAULT_TEAM_ID, "U0000000009", "tokyo", "Toshi", tz="Asia/Tokyo", tz_offset=32400)
    assert client.users_info(user="U0000000009")["user"]["tz_offset"] == 32400
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U404")
    assert exc.value.response["error"] == "user_not_found"


def test_ephemeral_messages_per_user(client: WebClient, standin: SlackStandIn) -> None:
    answer = client.chat_postEphemeral(channel=ERRORS_CHANNEL_ID, user=MEMBER_USER_ID,
                                       text="Only Owners and Admins can retry")
    [eph] = standin.ephemerals(MEMBER_USER_ID)
    assert eph.message_ts == answer["message_ts"] and eph.text == "Only Owners and Admins can retry"
    assert standin.ephemerals(OWNER_USER_ID) == [] and standin.messages(ERRORS_CHANNEL_ID) == []
    with pytest.raises(SlackApiError) as exc:
        client.chat_postEphemeral(channel=PRIVATE_CHANNEL_ID, user=MEMBER_USER_ID, text="x")
    assert exc.value.response["error"] == "channel_not_found"
    standin.add_channel(DEFAULT_TEAM_ID, "C0000000042", "owners-only", members=[OWNER_USER_ID])
    with pytest.raises(SlackApiError) as exc:
        client.chat_postEphemeral(channel="C0000000042", user=MEMBER_USER_ID, text="x")
    assert exc.value.response["error"] == "user_not_in_channel"


def test_home_tab_publish_and_hash_conflict(client: WebClient, standin: SlackStandIn) -> None:
    view = {"type": "home", "blocks": [section("Sync health: 2 errors")]}
    first = client.views_publish(user_id=OWNER_USER_ID, view=view)["view"]
    assert standin.home_view(OWNER_USER_ID)["blocks"] == view["blocks"]  # type: ignore[index]
    second = client.views_publish(user_id=OWNER_USER_ID, view=view, hash=first["hash"])["view"]
    assert second["id"] == first["id"] and second["hash"] != first["hash"]
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id=OWNER_USER_ID, view=view, hash=first["hash"])
    assert exc.value.response["error"] == "hash_conflict"
    assert standin.home_view(MEMBER_USER_ID) is None
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id=OWNER_USER_ID, view={"type": "home", "blocks": [section("x")] * 101})
    assert exc.value.response["error"] == "invalid_arguments"
    assert exc.value.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"]
    client.views_publish(user_id=OWNER_USER_ID, view={"type": "home", "blocks": [section("x")] * 100})


def test_modal_open_update_and_trigger_rules(client: WebClient, standin: SlackStandIn) -> None:
    modal = {"type": "modal", "callback_id": "fill_field", "title": {"type": "plain_text", "text": "Fix JS-1001"},
             "submit": {"type": "plain_text", "text": "Save"}, "private_metadata": "entry:42",
             "blocks": [{"type": "input", "block_id": "email", "label": {"type": "plain_text", "text": "Email"},
                         "element": {"type": "plain_text_input", "action_id": "value"}}]}
    trigger = standin.mint_trigger_id(DEFAULT_TEAM_ID, OWNER_USER_ID)
    opened = client.views_open(trigger_id=trigger, view=modal)["view"]
    [open_view] = standin.open_views(OWNER_USER_ID)
    assert open_view["id"] == opened["id"] and open_view["private_metadata"] == "entry:42"
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=trigger, view=modal)
    assert exc.value.response["error"] == "exchanged_trigger_id"
    stale = standin.mint_trigger_id(DEFAULT_TEAM_ID, OWNER_USER_ID)
    standin.advance_clock(3.5)
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=stale, view=modal)
    assert exc.value.response["error"] == "expired_trigger_id"
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id="1.2.made-up", view=modal)
    assert exc.value.response["error"] == "invalid_trigger_id"

    updated = client.views_update(view_id=opened["id"], hash=opened["hash"],
                                  view={**modal, "title": {"type": "plain_text", "text": "Saved"}})["view"]
    assert standin.open_views()[0]["title"]["text"] == "Saved" and updated["id"] == opened["id"]
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id="V404", view=modal)
    assert exc.value.response["error"] == "not_found"
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id=opened["id"], view={**modal, "title": {"type": "plain_text", "text": "x" * 25}})
    assert exc.value.response["error"] == "invalid_arguments"


# ------------------------------------------------------------------------------------------------------------
# Block Kit validation
# ------------------------------------------------------------------------------------------------------------
BLOCK_CASES: list[tuple[str, list[dict[str, Any]], str]] = [
    ("51 blocks", [section("x")] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
    ("section text 3001", [section("x" * 3001)],
     "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
    ("header 151", [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
     "must be less than 151 characters [json-pointer:/blocks/0/text/text]"),
    ("button text 76", [{"type": "actions", "elements": [button("a", text="t" * 76)]}],
     "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"),
    ("button value 2001", [{"type": "actions", "elements": [button("a", value="v" * 2001)]}],
     "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]"),
    ("action_id 256", [{"type": "actions", "elements": [button("a" * 256)]}],
     "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]"),
    ("26 actions elements", [{"type": "actions", "elements": [button(f"a{i}") for i in range(26)]}],
     "no more than 25 items allowed [json-pointer:/blocks/0/elements]"),
    ("11 fields", [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
     "no more than 10 items allowed [json-pointer:/blocks/0/fields]"),
    ("field 2001", [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
     "must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]"),
    ("context 11", [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
     "no more than 10 items allowed [json-pointer:/blocks/0/elements]"),
    ("unknown type", [{"type": "carousel"}], "unsupported type: carousel [json-pointer:/blocks/0/type]"),
    ("section without text", [{"type": "section"}], "missing required field: text [json-pointer:/blocks/0]"),
    ("button without text", [{"type": "actions", "elements": [{"type": "button", "action_id": "a"}]}],
     "missing required field: text [json-pointer:/blocks/0/elements/0]"),
]


@pytest.mark.parametrize(("blocks", "problem"), [(b, p) for _, b, p in BLOCK_CASES], ids=[c[0] for c in BLOCK_CASES])
def test_block_kit_limits_answer_invalid_blocks(client: WebClient, standin: SlackStandIn,
                                                blocks: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="fallback", blocks=blocks)
    resp = exc.value.response
    assert resp.status_code == 200 and resp["error"] == "invalid_blocks"
    assert problem in resp["errors"]
    assert f"[ERROR] {problem}" in resp["response_metadata"]["messages"]
    assert standin.messages(ERRORS_CHANNEL_ID) == []


def test_block_kit_limits_are_inclusive(client: WebClient) -> None:
    at_limits = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        section("s" * 3000),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10},
        {"type": "actions", "elements": [button("a" * 255, text="t" * 75, value="v" * 2000)]
         + [button(f"b{i}") for i in range(24)]},
    ]
    at_limits += [{"type": "divider"}] * (50 - len(at_limits))
    assert client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="ok", blocks=at_limits)["ok"] is True


def test_blocks_not_an_array_and_chat_update_validates_too(client: WebClient) -> None:
    ts = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="x")["ts"]
    with pytest.raises(SlackApiError) as exc:
        client.api_call("chat.postMessage", json={"channel": ERRORS_CHANNEL_ID, "blocks": {"type": "divider"}})
    assert exc.value.response["error"] == "invalid_blocks_format"
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel=ERRORS_CHANNEL_ID, ts=ts, text="x", blocks=[section("x" * 3001)])
    assert exc.value.response["error"] == "invalid_blocks"


def test_text_limits_no_text_and_msg_too_long(client: WebClient, standin: SlackStandIn) -> None:
    assert client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="x" * 40_000)["ok"] is True
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="x" * 40_001)
    assert exc.value.response["error"] == "msg_too_long"
    with pytest.raises(SlackApiError) as exc:  # api_call: chat_postMessage() warns client-side first
        client.api_call("chat.postMessage", json={"channel": ERRORS_CHANNEL_ID})
    assert exc.value.response["error"] == "no_text"


def test_sl09_both_answers_slack_gave_for_long_text(server: StandInServer, standin: SlackStandIn) -> None:
    client = WebClient(base_url=server.api_url, token=DEFAULT_BOT_TOKEN)
    standin.reset(SlackStandInConfig(text_max_chars=4000))
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="x" * 4500)
    assert exc.value.response["error"] == "msg_too_long"
    standin.reset(SlackStandInConfig(text_over_limit="truncate"))
    ok = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="x" * 45_000)
    assert ok["warning"] == "message_truncated" and ok["response_metadata"]["warnings"] == ["message_truncated"]
    assert len(standin.messages(ERRORS_CHANNEL_ID)[0].text) == 40_000


# ------------------------------------------------------------------------------------------------------------
# channels the bot cannot post to (SL-13)
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("channel", "error"), [
    (GENERAL_CHANNEL_ID, "not_in_channel"),
    (PRIVATE_CHANNEL_ID, "channel_not_found"),
    ("C404", "channel_not_found"),
    (ARCHIVED_CHANNEL_ID, "is_archived"),
])
def test_unpostable_channels_answer_200_ok_false(client: WebClient, standin: SlackStandIn, channel: str,
                                                 error: str) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=channel, text="JS-1001 failed")
    assert (exc.value.response.status_code, exc.value.response["error"]) == (200, error)
    [call] = standin.calls("chat.postMessage")
    assert (call.status, call.ok, call.error) == (200, False, error)


def test_bot_membership_can_be_changed(client: WebClient, standin: SlackStandIn) -> None:
    standin.set_bot_membership(PRIVATE_CHANNEL_ID, True)
    assert client.chat_postMessage(channel=PRIVATE_CHANNEL_ID, text="hi")["ok"] is True
    standin.set_bot_membership(ERRORS_CHANNEL_ID, False)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="hi")
    assert exc.value.response["error"] == "not_in_channel"


# ------------------------------------------------------------------------------------------------------------
# updates that fail (SL-11)
# ------------------------------------------------------------------------------------------------------------
def test_update_errors_message_not_found_and_cant_update(client: WebClient, standin: SlackStandIn,
                                                         server: StandInServer) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel=ERRORS_CHANNEL_ID, ts="1735689600.000100", text="Reconnected")
    assert exc.value.response["error"] == "message_not_found"

    human = standin.post_as_user(ERRORS_CHANNEL_ID, OWNER_USER_ID, "did it sync?")
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel=ERRORS_CHANNEL_ID, ts=human.ts, text="edited")
    assert exc.value.response["error"] == "cant_update_message"

    ru = standin.mint_response_url(DEFAULT_TEAM_ID, ERRORS_CHANNEL_ID, OWNER_USER_ID)
    assert httpx.post(ru.url, json={"response_type": "in_channel", "text": "posted via response_url"}).json() == {
        "ok": True}
    via_url = standin.messages(ERRORS_CHANNEL_ID)[-1]
    assert via_url.via_response_url
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel=ERRORS_CHANNEL_ID, ts=via_url.ts, text="edited")
    assert exc.value.response["error"] == "cant_update_message"

    ts = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="incident")["ts"]
    standin.set_update_error(ERRORS_CHANNEL_ID, ts, "cant_update_message")
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel=ERRORS_CHANNEL_ID, ts=ts, text="Reconnected")
    assert exc.value.response["error"] == "cant_update_message"
    standin.set_update_error(ERRORS_CHANNEL_ID, ts, None)
    client.chat_update(channel=ERRORS_CHANNEL_ID, ts=ts, text="Reconnected")
    client.chat_delete(channel=ERRORS_CHANNEL_ID, ts=ts)
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel=ERRORS_CHANNEL_ID, ts=ts, text="again")
    assert exc.value.response["error"] == "message_not_found"


# ------------------------------------------------------------------------------------------------------------
# rate limits and injected faults (SL-05)
# ------------------------------------------------------------------------------------------------------------
def test_post_message_is_limited_per_channel_with_retry_after(server: StandInServer, standin: SlackStandIn) -> None:
    headers = {"Authorization": f"Bearer {DEFAULT_BOT_TOKEN}"}
    standin.freeze_rate_limits()  # no token refills between the posts, however slow the machine
    answers = [httpx.post(server.api_url + "chat.postMessage", headers=headers,
                          json={"channel": ERRORS_CHANNEL_ID, "text": f"error {i}"}) for i in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[-1].json() == {"ok": False, "error": "ratelimited"}
    assert answers[-1].headers["Retry-After"] == "1"
    other = httpx.post(server.api_url + "chat.postMessage", headers=headers,
                       json={"channel": OWNER_USER_ID, "text": "another channel has its own bucket"})
    assert other.status_code == 200
    assert len(standin.messages(ERRORS_CHANNEL_ID)) == 5
    assert standin.calls("chat.postMessage")[5].retry_after == 1


def test_sl05_injected_429_raises_then_retry_handler_recovers(server: StandInServer, standin: SlackStandIn) -> None:
    plain = WebClient(base_url=server.api_url, token=DEFAULT_BOT_TOKEN)
    standin.inject_fault("chat.postMessage", retry_after=30)
    with pytest.raises(SlackApiError) as exc:
        plain.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="x")
    assert exc.value.response.status_code == 429 and exc.value.response.headers["retry-after"] == "30"

    retrying = WebClient(base_url=server.api_url, token=DEFAULT_BOT_TOKEN)
    retrying.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    standin.inject_fault("chat.postMessage", retry_after=0)
    assert retrying.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="JS-1001 failed")["ok"] is True
    assert [c.status for c in standin.calls("chat.postMessage")] == [429, 429, 200]
    assert [m.text for m in standin.messages(ERRORS_CHANNEL_ID)] == ["JS-1001 failed"]


def test_injected_5xx_errors_and_delays(server: StandInServer, standin: SlackStandIn, client: WebClient) -> None:
    standin.inject_fault("chat.update", status=503)
    ts = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="x")["ts"]
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel=ERRORS_CHANNEL_ID, ts=ts, text="y")
    assert exc.value.response.status_code == 503

    standin.inject_fault("*", count=2, status=500, body="<html>Internal Server Error</html>")
    retrying = WebClient(base_url=server.api_url, token=DEFAULT_BOT_TOKEN)
    retrying.retry_handlers.append(ServerErrorRetryHandler(
        max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(fixed_internal=0.0)))
    assert retrying.auth_test()["ok"] is True
    assert [c.status for c in standin.calls("auth.test")] == [500, 500, 200]

    standin.inject_fault("chat.postMessage", error="fatal_error", match={"channel": OWNER_USER_ID})
    assert client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="unaffected")["ok"] is True
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=OWNER_USER_ID, text="x")
    assert (exc.value.response.status_code, exc.value.response["error"]) == (200, "fatal_error")

    standin.inject_fault("users.info", delay=0.3)
    started = time.monotonic()
    assert client.users_info(user=OWNER_USER_ID)["ok"] is True
    assert time.monotonic() - started >= 0.3
    assert standin.faults() == []


def test_metadata_is_kept_by_post_and_update_and_read_back_with_include_all_metadata(
        client: WebClient, standin: SlackStandIn) -> None:
    meta = {"event_type": "syncbot_notification", "event_payload": {"topic": "record:1:contact:7"}}
    ts = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="one", metadata=meta)["ts"]
    client.chat_postMessage(channel=ERRORS_CHANNEL_ID, thread_ts=ts, text="a reply",
                            metadata={"event_type": "syncbot_notification", "event_payload": {"topic": "note"}})
    client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="two")
    plain = client.conversations_history(channel=ERRORS_CHANNEL_ID)["messages"]
    assert [m["text"] for m in plain] == ["two", "one"]  # newest first, no thread replies
    assert all("metadata" not in m for m in plain)
    full = client.conversations_history(channel=ERRORS_CHANNEL_ID, include_all_metadata=True, limit=1)
    assert [m["text"] for m in full["messages"]] == ["two"] and full["has_more"] is True
    rest = client.conversations_history(channel=ERRORS_CHANNEL_ID, include_all_metadata=True,
                                        cursor=full["response_metadata"]["next_cursor"])["messages"]
    assert rest[0]["metadata"] == meta
    assert client.conversations_history(channel=ERRORS_CHANNEL_ID, oldest=ts)["messages"][0]["text"] == "two"

    client.chat_update(channel=ERRORS_CHANNEL_ID, ts=ts, text="one, updated",
                       metadata={"event_type": "syncbot_notification", "event_payload": {"topic": "moved"}})
    assert standin.message(ERRORS_CHANNEL_ID, ts).metadata["event_payload"] == {"topic": "moved"}
    thread = client.conversations_replies(channel=ERRORS_CHANNEL_ID, ts=ts, include_all_metadata=True)["messages"]
    assert [m["text"] for m in thread] == ["one, updated", "a reply"]
    assert thread[1]["metadata"]["event_payload"] == {"topic": "note"}
    with pytest.raises(SlackApiError) as exc:
        client.conversations_history(channel=GENERAL_CHANNEL_ID)
    assert exc.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="x", metadata={"event_type": 1})
    assert exc.value.response["error"] == "invalid_metadata_schema"


def test_a_lost_answer_the_post_is_made_and_the_app_hears_an_error(client: WebClient, standin: SlackStandIn) -> None:
    standin.inject_fault("chat.postMessage", status=504, body="<html>504 Gateway Time-out</html>", after=True)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="made, answer lost")
    assert exc.value.response.status_code == 504
    assert [m.text for m in standin.messages(ERRORS_CHANNEL_ID)] == ["made, answer lost"]


def test_missing_scope_names_the_scope_needed(client: WebClient, standin: SlackStandIn) -> None:
    standin.set_scopes(DEFAULT_TEAM_ID, ["chat:write", "users:read", "im:write"])
    assert client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="x")["ok"] is True
    with pytest.raises(SlackApiError) as exc:
        client.conversations_history(channel=ERRORS_CHANNEL_ID)
    assert (exc.value.response["error"], exc.value.response["needed"]) == ("missing_scope", "channels:history")
    standin.set_scopes(DEFAULT_TEAM_ID, ["users:read"])
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="x")
    assert exc.value.response["needed"] == "chat:write" and exc.value.response["provided"] == "users:read"
    standin.inject_fault("views.publish", error="missing_scope", extra={"needed": "x:y", "provided": ""})
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id=OWNER_USER_ID, view={"type": "home", "blocks": []})
    assert exc.value.response["needed"] == "x:y"


# ------------------------------------------------------------------------------------------------------------
# response_url
# ------------------------------------------------------------------------------------------------------------
def test_response_url_five_uses_then_404(standin: SlackStandIn) -> None:
    ru = standin.mint_response_url(DEFAULT_TEAM_ID, ERRORS_CHANNEL_ID, MEMBER_USER_ID)
    hook = WebhookClient(ru.url)
    for i in range(5):
        assert hook.send(text=f"page {i}").status_code == 200
    sixth = hook.send(text="page 5")
    assert sixth.status_code == 404 and json.loads(sixth.body)["error"] == "used_url"
    assert [e.text for e in standin.ephemerals(MEMBER_USER_ID)] == [f"page {i}" for i in range(5)]
    assert [c.status for c in standin.calls("response_url")] == [200] * 5 + [404]


def test_response_url_expires_after_30_minutes(standin: SlackStandIn) -> None:
    ru = standin.mint_response_url(DEFAULT_TEAM_ID, ERRORS_CHANNEL_ID, MEMBER_USER_ID)
    standin.advance_clock(30 * 60 + 1)
    answer = httpx.post(ru.url, json={"text": "too late"})
    assert (answer.status_code, answer.json()["error"]) == (404, "expired_url")


def test_response_url_replace_and_delete_original(client: WebClient, standin: SlackStandIn) -> None:
    ts = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="JS-1001 failed",
                                 blocks=[{"type": "actions", "elements": [button("retry")]}])["ts"]
    ru = standin.mint_response_url(DEFAULT_TEAM_ID, ERRORS_CHANNEL_ID, OWNER_USER_ID, source="block_actions",
                                   message_ts=ts)
    assert httpx.post(ru.url, json={"replace_original": True, "text": "Retrying..."}).status_code == 200
    msg = standin.message(ERRORS_CHANNEL_ID, ts)
    assert msg is not None and msg.text == "Retrying..." and msg.edits[0].via == "response_url"
    assert httpx.post(ru.url, json={"delete_original": True}).status_code == 200
    assert standin.messages(ERRORS_CHANNEL_ID) == []
    bad = httpx.post(ru.url, json={"text": "x", "blocks": [section("x" * 3001)]})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_blocks"


# ------------------------------------------------------------------------------------------------------------
# the control API
# ------------------------------------------------------------------------------------------------------------
def test_control_api_shapes_and_reads_the_workspace(server: StandInServer, standin: SlackStandIn) -> None:
    with httpx.Client(base_url=server.url + "/_control/") as ctl:
        _drive_control_api(ctl, server)


def _drive_control_api(ctl: httpx.Client, server: StandInServer) -> None:
    ctl.post("teams", json={"team_id": "T2", "name": "Second", "domain": "second", "bot_token": "xoxb-two"})
    ctl.post("users", json={"team_id": "T2", "id": "U2OWNER", "name": "sam", "is_owner": True, "tz": "UTC"})
    ctl.post("channels", json={"team_id": "T2", "id": "C2", "name": "errors", "bot_member": False})
    two = WebClient(base_url=server.api_url, token="xoxb-two")
    with pytest.raises(SlackApiError):
        two.chat_postMessage(channel="C2", text="x")
    ctl.post("channels/C2/bot_membership", json={"member": True})
    assert two.chat_postMessage(channel="C2", text="hello T2")["ok"] is True
    assert two.users_info(user="U2OWNER")["user"]["is_owner"] is True
    with pytest.raises(SlackApiError):  # another workspace's user is not found
        two.users_info(user=OWNER_USER_ID)

    ctl.post("faults", json={"method": "chat.postMessage", "error": "fatal_error"})
    assert ctl.get("faults").json()["faults"][0]["error"] == "fatal_error"
    with pytest.raises(SlackApiError):
        two.chat_postMessage(channel="C2", text="x")
    minted = ctl.post("response_urls", json={"team_id": "T2", "channel_id": "C2", "user_id": "U2OWNER"}).json()
    assert minted["url"].startswith(server.url + "/response_url/")

    state = ctl.get("state").json()
    assert {t["team_id"] for t in state["teams"]} == {DEFAULT_TEAM_ID, "T2"}
    assert [m["text"] for m in ctl.get("messages/C2").json()["messages"]] == ["hello T2"]
    calls = ctl.get("calls", params={"method": "chat.postMessage"}).json()["calls"]
    assert [c["error"] for c in calls] == ["not_in_channel", None, "fatal_error"]
    version = ctl.get("version").json()["version"]
    ctl.post("reset")
    assert ctl.get("version").json()["version"] != version
    assert ctl.get("messages/C0000000001").json()["messages"] == []
    assert ctl.post("nonsense").status_code == 404


# ------------------------------------------------------------------------------------------------------------
# the driver: signatures as slack_sdk verifies them, payload shapes as Bolt parses them
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture
def recorder() -> Iterator[tuple[RunningServer, list[dict[str, Any]]]]:
    """A tiny app that checks each request with slack_sdk's SignatureVerifier and records it."""
    seen: list[dict[str, Any]] = []
    verifier = SignatureVerifier(SECRET)

    async def endpoint(request: Request) -> Response:
        body = (await request.body()).decode()
        valid = verifier.is_valid_request(body, dict(request.headers))
        seen.append({"body": body, "headers": dict(request.headers), "valid": valid})
        return JSONResponse({"valid": valid}, status_code=200 if valid else 401)

    srv = serve_in_thread(Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])]))
    yield srv, seen
    srv.stop()


def test_driver_signature_good_forged_and_stale(server: StandInServer, standin: SlackStandIn,
                                                recorder: tuple[RunningServer, list[dict[str, Any]]]) -> None:
    app_server, seen = recorder
    with SlackDriver(app_server.url + "/slack/events", SECRET, standin) as driver:
        good = driver.slash_command("/sync-log", "retry JS-1001")
        forged = driver.slash_command("/sync-log", "status", forge=True)
        stale = driver.slash_command("/sync-log", "status", skew_s=-400)
        retried = driver.app_home_opened(OWNER_USER_ID, retry_num=1)
    assert [good.status_code, forged.status_code, stale.status_code, retried.status_code] == [200, 401, 401, 200]
    headers = seen[0]["headers"]
    assert headers["x-slack-signature"] == sign(SECRET, headers["x-slack-request-timestamp"], seen[0]["body"])
    assert seen[3]["headers"]["x-slack-retry-num"] == "1"
    assert good.response_url is not None and good.response_url.startswith(server.url + "/response_url/")
    assert good.payload["response_url"] == good.response_url
    assert set(good.payload) >= {"command", "text", "team_id", "team_domain", "channel_id", "channel_name", "user_id",
                                 "user_name", "response_url", "trigger_id", "api_app_id"}
    assert (good.payload["channel_name"], good.payload["user_name"]) == ("sync-errors", "olivia")


SIGNING_APP_URL = "/slack/events"


def _bolt_app(server: StandInServer) -> App:
    """A small Bolt app wired the way syncbot is (sync App, threadpool dispatch, client pointed at the stand-in)."""
    app = App(client=WebClient(base_url=server.api_url, token=DEFAULT_BOT_TOKEN), signing_secret=SECRET)

    @app.command("/sync-log")
    def command(ack: Any, command: dict[str, Any], respond: Any, client: WebClient) -> None:
        ack()
        if command["text"] == "form":
            client.views_open(trigger_id=command["trigger_id"], view={
                "type": "modal", "callback_id": "fix", "title": {"type": "plain_text", "text": "Fix"},
                "submit": {"type": "plain_text", "text": "Save"}, "private_metadata": "entry:7",
                "blocks": [{"type": "input", "block_id": "email", "label": {"type": "plain_text", "text": "Email"},
                            "element": {"type": "plain_text_input", "action_id": "value"}}]})
            return
        respond(text=f"{len(command['text'])} chars", response_type="ephemeral")

    @app.action("retry")
    def retry(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"],
                           text=f"Retried by {body['user']['name']} ({body['actions'][0]['value']})",
                           blocks=[section("Synced :white_check_mark:")])

    @app.view("fix")
    def fix(ack: Any, view: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
        value = view["state"]["values"]["email"]["value"]["value"]
        if "@" not in value:
            ack(response_action="errors", errors={"email": "Enter an email address"})
            return
        ack()
        client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text=f"{view['private_metadata']} -> {value}")

    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        client.views_publish(user_id=event["user"], view={"type": "home", "blocks": [
            {"type": "actions", "elements": [button("refresh", "Refresh", "home")]}]})

    @app.action("refresh")
    def refresh(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_postEphemeral(channel=ERRORS_CHANNEL_ID, user=body["user"]["id"],
                                  text=f"refreshed from {body['container']['type']}")

    return app


@pytest.fixture
def bolt(server: StandInServer, standin: SlackStandIn) -> Iterator[SlackDriver]:
    app = _bolt_app(server)

    async def endpoint(request: Request) -> Response:
        bolt_request = to_bolt_request(request, await request.body())
        return to_starlette_response(await run_in_threadpool(app.dispatch, bolt_request))

    srv = serve_in_thread(Starlette(routes=[Route(SIGNING_APP_URL, endpoint, methods=["POST"])]))
    driver = SlackDriver(srv.url + SIGNING_APP_URL, SECRET, server.url)  # the stand-in reached by URL
    yield driver
    driver.close()
    srv.stop()


def _wait_for(predicate: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_driver_against_bolt_command_click_modal_and_home(bolt: SlackDriver, standin: SlackStandIn,
                                                          client: WebClient) -> None:
    result = bolt.slash_command("/sync-log", "status", user_id=MEMBER_USER_ID)
    assert result.status_code == 200 and result.acked_in_time
    _wait_for(lambda: standin.ephemerals(MEMBER_USER_ID))
    assert standin.ephemerals(MEMBER_USER_ID)[0].text == "6 chars"
    assert standin.response_url(result.response_url_id or "").uses == 1  # type: ignore[union-attr]

    ts = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="JS-1001 failed", blocks=[
        section("JS-1001 failed", block_id="entry"),
        {"type": "actions", "block_id": "buttons", "elements": [button("retry", "Retry", "entry:1001")]}])["ts"]
    click = bolt.click("retry", channel_id=ERRORS_CHANNEL_ID, message_ts=ts)
    assert click.status_code == 200
    assert click.payload["actions"][0] | {"action_ts": "-"} == {
        "action_id": "retry", "block_id": "buttons", "type": "button", "value": "entry:1001", "action_ts": "-",
        "text": {"type": "plain_text", "text": "Retry"}}
    _wait_for(lambda: standin.message(ERRORS_CHANNEL_ID, ts).edits)  # type: ignore[union-attr]
    assert standin.message(ERRORS_CHANNEL_ID, ts).text == "Retried by olivia (entry:1001)"  # type: ignore[union-attr]
    with pytest.raises(LookupError):
        bolt.click("unlink", channel_id=ERRORS_CHANNEL_ID, message_ts=ts)

    assert bolt.slash_command("/sync-log", "form").status_code == 200
    _wait_for(lambda: standin.open_views(OWNER_USER_ID))
    refused = bolt.submit_view(values={"email": {"value": "not-an-email"}})
    assert refused.view_ack == {"response_action": "errors", "errors": {"email": "Enter an email address"}}
    assert len(standin.open_views(OWNER_USER_ID)) == 1
    accepted = bolt.submit_view(values={"email": {"value": "ap@example.com"}})
    assert accepted.view_ack == {"response_action": "close"} and standin.open_views(OWNER_USER_ID) == []
    _wait_for(lambda: any(m.text == "entry:7 -> ap@example.com" for m in standin.messages(ERRORS_CHANNEL_ID)))

    opened = bolt.app_home_opened(OWNER_USER_ID)
    assert opened.status_code == 200 and opened.event_id and opened.event_id.startswith("Ev")
    _wait_for(lambda: standin.home_view(OWNER_USER_ID) is not None)
    assert bolt.click_in_view("refresh", user_id=OWNER_USER_ID).status_code == 200
    _wait_for(lambda: any(e.text == "refreshed from view" for e in standin.ephemerals(OWNER_USER_ID)))

    challenge = bolt.url_verification("abc123")
    assert challenge.json() == {"challenge": "abc123"}
    assert bolt.ssl_check().status_code == 200
    assert bolt.slash_command("/sync-log", "x", skew_s=-400).status_code == 401


def test_control_drive_lets_a_web_page_click_like_slack(bolt: SlackDriver, standin: SlackStandIn,
                                                         server: StandInServer, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="JS-1002 failed", blocks=[
        {"type": "actions", "elements": [button("retry", "Retry", "entry:1002")]}])["ts"]
    click = {"action_id": "retry", "channel_id": ERRORS_CHANNEL_ID, "message_ts": ts, "user_id": ADMIN_USER_ID}
    with httpx.Client(base_url=server.url + "/_control/") as ctl:
        assert ctl.post("drive/click", json=click).status_code == 409  # no app configured yet
        ctl.post("app", json={"app_url": bolt.app_url, "signing_secret": SECRET})
        answer = ctl.post("drive/click", json=click).json()
        assert answer["ok"] is True and answer["status"] == 200 and answer["response_url"]
        assert ctl.post("drive/click", json={**click, "action_id": "nope"}).status_code == 404
    _wait_for(lambda: standin.message(ERRORS_CHANNEL_ID, ts).edits)  # type: ignore[union-attr]
    assert standin.message(ERRORS_CHANNEL_ID, ts).text == "Retried by adam (entry:1002)"  # type: ignore[union-attr]


def test_control_drive_refuses_other_sites_and_says_what_is_wrong_with_a_malformed_click(
        bolt: SlackDriver, standin: SlackStandIn, server: StandInServer, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, text="JS-1002 failed", blocks=[
        {"type": "actions", "elements": [button("retry", "Retry", "entry:1002")]}])["ts"]
    click = {"action_id": "retry", "channel_id": ERRORS_CHANNEL_ID, "message_ts": ts, "user_id": ADMIN_USER_ID}
    with httpx.Client(base_url=server.url + "/_control/") as ctl:
        ctl.post("app", json={"app_url": bolt.app_url, "signing_secret": SECRET})
        # what a page of another site can send without a CORS preflight: JSON as text/plain, or a form
        as_text = ctl.post("drive/click", content=json.dumps(click), headers={"Content-Type": "text/plain"})
        assert as_text.status_code == 415 and "application/json" in as_text.json()["error"]
        as_form = ctl.post("drive/click", data={"action_id": "retry"})
        assert as_form.status_code == 415
        # what a browser says of a request from another site, even with JSON
        cross = ctl.post("drive/click", json=click, headers={"Sec-Fetch-Site": "cross-site",
                                                            "Origin": "https://evil.example"})
        assert cross.status_code == 403 and "another site" in cross.json()["error"]
        other_origin = ctl.post("drive/click", json=click, headers={"Origin": "https://evil.example"})
        assert other_origin.status_code == 403 and "evil.example" in other_origin.json()["error"]
        assert ctl.post("reset", headers={"Origin": "http://127.0.0.1:1"}).status_code == 403
        # DNS rebinding: a site whose name resolves to 127.0.0.1 is same-origin to the browser, but not loopback
        port = server.url.rsplit(":", 1)[1]
        rebound = ctl.post("drive/click", json=click, headers={"Host": f"evil.example:{port}",
                                                              "Origin": f"http://evil.example:{port}"})
        assert rebound.status_code == 403 and "loopback" in rebound.json()["error"]
        assert not standin.message(ERRORS_CHANNEL_ID, ts).edits, "nothing reached the app"  # type: ignore[union-attr]

        # malformed clicks: a 400 that says what is wrong, never a 500
        for body, says in (({**click, "action_id": 5}, "'action_id' must be a string"),
                           ({**click, "user_id": 5}, "'user_id' must be a string"),
                           ({**click, "message_ts": None}, "'message_ts' must be a string"),
                           ({**click, "value": {"entry": 1}}, "'value' must be a string"),
                           ({k: v for k, v in click.items() if k != "channel_id"}, "needs 'channel_id'"),
                           ({**click, "zzz": 1}, "takes no 'zzz'")):
            answer = ctl.post("drive/click", json=body)
            assert answer.status_code == 400 and says in answer.json()["error"], answer.text
        assert ctl.post("drive/event", json={"event": "x"}).status_code == 400

        # the stand-in's own page (same origin, JSON) still clicks
        own = ctl.post("drive/click", json=click, headers={"Sec-Fetch-Site": "same-origin", "Origin": server.url})
        assert own.status_code == 200 and own.json()["status"] == 200
    _wait_for(lambda: standin.message(ERRORS_CHANNEL_ID, ts).edits)  # type: ignore[union-attr]
    assert httpx.post(f"{server.url}/_control/reset", headers={"Host": f"localhost:{port}"}).status_code == 200


def test_every_request_with_a_host_that_is_not_loopback_is_refused(server: StandInServer,
                                                                    standin: SlackStandIn) -> None:
    """DNS rebinding: a page of evil.example (or 127.0.0.1.nip.io) resolving to 127.0.0.1 is same-origin to the
    browser, so it could READ the page's state or the API; every request must name loopback in Host."""
    port = server.url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1.nip.io:{port}", f"evil.example:{port}", f"127.evil.example:{port}", "[::2]",
                 f"0.0.0.0:{port}", "", f"127.0.0.1:{port}@evil.example", f"127.0.0.1 evil.example:{port}"):
        for method, path in (("GET", "/_control/page"), ("GET", "/_control/state"), ("GET", "/"),
                             ("GET", "/web/page.js"), ("POST", "/api/auth.test"), ("POST", "/_control/reset")):
            answer = httpx.request(method, f"{server.url}{path}", headers={"Host": host,
                                                                        "Authorization": f"Bearer {DEFAULT_BOT_TOKEN}"})
            assert answer.status_code == 403, (host, path, answer.text)
            assert "loopback" in answer.text and "xoxb" not in answer.text and "sync-errors" not in answer.text
    for host in (f"127.0.0.1:{port}", f"127.1.2.3:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert httpx.get(f"{server.url}/_control/version", headers={"Host": host}).status_code == 200, host
    assert WebClient(base_url=server.api_url, token=DEFAULT_BOT_TOKEN).auth_test()["ok"] is True


def test_malformed_control_requests_answer_400_and_change_nothing(server: StandInServer, standin: SlackStandIn,
                                                                  tmp_path: Any) -> None:
    """NaN, infinity, text or a wrong type in any control request: 400 with a sentence, and the stand-in as it
    was (it once applied {"advance": "nan"}, then every page answered 400 and the NaN was saved to demo-data/)."""
    with httpx.Client(base_url=server.url + "/_control/") as ctl:
        now = ctl.post("clock", json={"advance": 0}).json()["now"]
        before = {k: v for k, v in ctl.get("state").json().items() if k != "now"}
        bad = [("clock", {"advance": v}) for v in ("nan", "1e309", "10", -5, True, 10**12)]
        bad += [("clock", json.loads('{"advance": NaN}')), ("clock", json.loads('{"advance": Infinity}'))]
        bad += [("teams", {"team_id": 5, "name": [], "bot_token": {}}), ("teams", {"team_id": "T9", "name": "x"}),
                ("users", {"team_id": DEFAULT_TEAM_ID, "id": "U9", "name": "x", "tz_offset": "nan"}),
                ("users", {"team_id": DEFAULT_TEAM_ID, "id": "U9", "name": "x", "is_admin": "yes"}),
                ("channels", {"team_id": DEFAULT_TEAM_ID, "id": "C9", "name": "x", "members": "U1"}),
                ("faults", {"method": "auth.test", "count": "nan"}),
                ("faults", {"method": "auth.test", "delay": 1e308 * 10}),
                ("faults", {"method": "auth.test", "retry_after": -1}),
                ("faults", {"method": "auth.test", "status": 99}),
                ("rate_limits", {"enabled": False, "method": "chat.update", "per_minute": "nan", "burst": 5}),
                ("rate_limits", {"method": "chat.update", "per_minute": 5, "burst": 1.5}),
                ("rate_limits", {"method": "chat.update", "per_minute": 5}),
                ("teams/T0000000001/token", {"state": "gone"}),
                ("reset", {"config": {"response_url_ttl_s": "nan"}}),
                ("reset", {"config": {"trigger_ttl_s": json.loads("Infinity")}}),
                ("reset", {"config": {"rate_limits": {"chat.update": {"per_minute": -1, "burst": 1}}}}),
                ("reset", {"config": {"nonsense": 1}}),
                ("drive/click", {"action_id": "a", "channel_id": "C", "message_ts": "1", "skew_s": "nan"})]
        for path, body in bad:
            answer = ctl.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})
            assert answer.status_code in (400, 409) and answer.json()["error"], (path, body, answer.text)
        assert {k: v for k, v in ctl.get("state").json().items() if k != "now"} == before, "nothing changed"
        assert standin.rate_limits_enabled is True and standin.faults() == []
        page = ctl.get("page")
        assert page.status_code == 200, page.text
        assert abs(ctl.post("clock", json={"advance": 0}).json()["now"] - now) < 60
        ok = ctl.post("teams", json={"team_id": "T9", "name": "Nine", "bot_token": "xoxb-nine"})
        assert ok.status_code == 200 and ok.json()["team"]["domain"] == "t9"


def test_a_saved_state_with_a_non_finite_clock_is_refused_with_a_clear_message(standin: SlackStandIn,
                                                                               tmp_path: Any) -> None:
    import pickle

    saved = tmp_path / "slack.pickle"
    standin.save_state(saved)
    fresh = SlackStandIn(SlackStandInConfig())
    fresh.load_state(saved)
    for name, value in (("_clock_offset", float("nan")), ("_clock_offset", float("inf")), ("_last_ts", "x"),
                        ("teams", [])):
        data = pickle.loads(saved.read_bytes())
        data[name] = value
        corrupt = tmp_path / "corrupt.pickle"
        corrupt.write_bytes(pickle.dumps(data))
        with pytest.raises(ValueError, match="corrupt Slack stand-in state"):
            fresh.load_state(corrupt)
    assert fresh.page_state(OWNER_USER_ID) is not None and json.dumps(fresh.snapshot(), allow_nan=False)
