"""Issue 14, the request path: what Slack's requests meet on the way in and what their answers meet on the way
out. Against the stand-ins over real HTTP, with requests signed exactly as Slack signs them
(sandbox.slack.SlackDriver):
- a signed body of the wrong shape is refused with 400 and changes nothing (forged or stale: 401);
- an event Slack delivers again (same event_id, X-Slack-Retry-Num), to the same or another replica on the same
  database, is worked once;
- an answer its response_url no longer takes (expired by the stand-in's clock, used up, 404) still reaches the
  person who asked, as an ephemeral where they asked or a DM."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from sandbox.slack import config as slack_cfg
from sandbox.slack.driver import SlackDriver
from sync.models import SyncLogEntry, utcnow
from tests.conftest import CHANNEL, QBO, SIGNING_SECRET, Stack, wait_for

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


# ------------------------------------------------------------------------------------------ an event is worked once


@contextlib.contextmanager
def another_replica(stack: Stack) -> Iterator[tuple[Any, SlackDriver]]:
    """A second syncbot process on the same database and the same Slack stand-in: its runtime and a driver that
    sends Slack's requests to it."""
    from bot.app import build_app
    from bot.server import create_server
    from bot.services import build_services
    from bot.wiring import build_runtime
    from sandbox.serve import serve_in_thread

    svc = build_services(stack.rt.settings, migrate=False)
    rt = build_runtime(svc)
    server = serve_in_thread(create_server(rt, build_app(rt)))
    driver = SlackDriver(f"{server.url}/slack/events", SIGNING_SECRET, stack.slack.standin)
    try:
        yield rt, driver
    finally:
        driver.close()
        server.stop()
        rt.close()
        svc.close()


def _home_publishes(stack: Stack, user: str) -> int:
    return len([c for c in stack.slack.standin.calls("views.publish") if c.ok and c.params.get("user_id") == user])


def _seen(stack: Stack) -> dict[str, Any]:
    from bot.models import SeenEvent

    with stack.rt.services.sessions() as session:
        return {row.event_id: row.received_at for row in session.scalars(select(SeenEvent))}


def test_an_event_slack_delivers_again_to_another_replica_is_worked_once(stack: Stack) -> None:
    first = stack.driver.app_home_opened(OWNER)
    assert first.status_code == 200
    wait_for(lambda: _home_publishes(stack, OWNER) == 1)  # the Home is published after the ack
    with another_replica(stack) as (rt, driver):
        # Slack did not see the ack in time: it sends the same event again, and the retries reach the other replica
        retry = driver.app_home_opened(OWNER, event_id=first.event_id, retry_num=1, retry_reason="http_timeout")
        assert retry.status_code == 200 and retry.acked_in_time
        again = driver.app_home_opened(OWNER, event_id=first.event_id, retry_num=2, retry_reason="http_error")
        assert again.status_code == 200
        # a new opening of the Home is another event: worked, wherever it arrives
        assert driver.app_home_opened(OWNER).status_code == 200
        wait_for(lambda: _home_publishes(stack, OWNER) >= 2)
        rt.replies.shutdown(wait=True)  # whatever the retries started has finished too
        assert _home_publishes(stack, OWNER) == 2, "one publish per event, none for the retries"
    assert len(_seen(stack)) == 2 and first.event_id in _seen(stack)


def test_the_same_event_twice_on_one_replica_is_worked_once(stack: Stack) -> None:
    first = stack.driver.app_home_opened(OWNER)
    retry = stack.driver.app_home_opened(OWNER, event_id=first.event_id, retry_num=1)
    assert first.status_code == retry.status_code == 200
    stack.rt.replies.shutdown(wait=True)
    assert _home_publishes(stack, OWNER) == 1


def test_an_event_id_longer_than_slacks_is_still_worked_once(stack: Stack) -> None:
    long_id = "Ev" + "L" * 200
    assert stack.driver.app_home_opened(OWNER, event_id=long_id).status_code == 200
    assert stack.driver.app_home_opened(OWNER, event_id=long_id, retry_num=1).status_code == 200
    stack.rt.replies.shutdown(wait=True)
    assert _home_publishes(stack, OWNER) == 1
    assert [len(event_id) for event_id in _seen(stack)] == [64]  # kept by its digest


def test_event_ids_are_forgotten_after_some_hours(stack: Stack) -> None:
    from sqlalchemy import update

    from bot.events import KEEP
    from bot.models import SeenEvent

    old = stack.driver.app_home_opened(OWNER)
    with stack.rt.services.sessions() as session, session.begin():
        session.execute(update(SeenEvent).where(SeenEvent.event_id == old.event_id).values(
            received_at=utcnow() - KEEP - dt.timedelta(minutes=1)))
    new = stack.driver.app_home_opened(OWNER)
    assert list(_seen(stack)) == [new.event_id], "the old id was pruned as the new one was taken on"


# ------------------------------------------------------------------------------------------ answers that come late


@contextlib.contextmanager
def slow_quickbooks(qbo: QBO, seconds: float = 0.4) -> Iterator[None]:
    """Every QuickBooks request answers ``seconds`` late: a run lasts long enough for Slack's clock to move on."""
    qbo.standin.configure(latency_seconds=seconds)
    try:
        yield
    finally:
        qbo.standin.configure(latency_seconds=0)


def _ephemerals_with(stack: Stack, user: str, words: str) -> list[dict[str, Any]]:
    return [e for e in stack.ephemerals(user) if words in e["text"]]


def _dm(stack: Stack, user: str) -> list[dict[str, Any]]:
    standin = stack.slack.standin
    return [m.to_dict() for m in standin.messages(standin.dm_channel_id(TEAM, user))]


def test_sync_now_that_ends_after_its_response_url_expired_still_answers(
        stack: Stack, qbo: QBO, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="syncbot.replies"), slow_quickbooks(qbo):
        started = stack.driver.slash_command("/sync-log", "sync-now")
        assert started.status_code == 200 and "Syncing now" in started.response.text
        stack.slack.standin.advance_clock(31 * 60)  # the run takes longer than the response_url's 30 minutes
        answer = wait_for(lambda: _ephemerals_with(stack, OWNER, "Sync Now finished"), timeout=60)[-1]
        # the job's thread logs where the answer went just after Slack took it: read the log before leaving INFO
        wait_for(lambda: any("event=answer_redirected" in r.getMessage() for r in caplog.records))
    assert answer["channel"] == CHANNEL and not answer["via_response_url"]  # chat.postEphemeral, where typed
    refused = [c for c in stack.slack.standin.calls("response_url") if c.status != 200]
    assert [(c.status, c.error) for c in refused] == [(404, "expired_url")]
    assert any("event=response_url_failed" in r.getMessage() and "expired_url" in r.getMessage()
               for r in caplog.records)
    assert any("event=answer_redirected" in r.getMessage() and "to=ephemeral" in r.getMessage()
               for r in caplog.records)


def test_retry_all_that_ends_after_its_response_url_was_used_up_still_answers(stack: Stack, qbo: QBO) -> None:
    from bot.blocks import ids

    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    prompt = stack.driver.slash_command("/sync-retry-all")
    assert "Retry all 2 open errors?" in prompt.response.text
    stack.slack.standin.apply_command_ack(TEAM, CHANNEL, OWNER, prompt.response.text,
                                         prompt.response.headers.get("content-type"), prompt.response_url_id)
    shown = _ephemerals_with(stack, OWNER, "Retry all 2 open errors?")[-1]
    with slow_quickbooks(qbo):
        confirm = stack.driver.click(ids.RETRY_ALL_CONFIRM, channel_id=CHANNEL, message_ts=shown["message_ts"],
                                     ephemeral=True)
        assert confirm.status_code == 200
        rid = confirm.response_url_id or ""
        wait_for(lambda: stack.slack.standin.response_url(rid).uses == 1)  # "Retrying 0 of 2..." in its place
        n = 0
        while stack.slack.standin.response_url(rid).uses < 5:  # a long run's progress updates use the posts up
            # (the job's own progress may take a post between the check and this one: then this one is refused)
            assert httpx.post(confirm.response_url or "", json={"text": f"progress {n}",
                                                                "replace_original": True}).status_code in (200, 404)
            n += 1
            assert n < 10
        answer = wait_for(lambda: _ephemerals_with(stack, OWNER, "Retry All finished"), timeout=60)[-1]
    assert "1 synced, 1 still failing" in answer["text"] and not answer["via_response_url"]  # Acme Corp synced
    refused = [c.error for c in stack.slack.standin.calls("response_url") if c.status != 200]
    assert refused and set(refused) == {"used_url"}  # the outcome met the used-up URL and went another way


def test_an_answer_refused_where_it_was_asked_arrives_as_a_direct_message(stack: Stack) -> None:
    # /sync-log sync-now typed in #general, where syncbot is not a member; the response_url answers 404
    stack.slack.standin.inject_fault("response_url", status=404, error="no_service")
    started = stack.driver.slash_command("/sync-log", "sync-now", channel_id=slack_cfg.GENERAL_CHANNEL_ID)
    assert started.status_code == 200
    dm = wait_for(lambda: [m for m in _dm(stack, OWNER) if "Sync Now finished" in m["text"]], timeout=60)
    assert len(dm) == 1
    postings = stack.slack.standin.calls("chat.postEphemeral")
    assert [c.error for c in postings] == ["not_in_channel"]  # tried where it was asked first
    assert not _ephemerals_with(stack, OWNER, "Sync Now finished")


def test_progress_never_spends_the_last_post_of_a_response_url(stack: Stack) -> None:
    """Reply against a response_url the stand-in minted, through Bolt's own Respond: six progress updates post
    four times, and the outcome takes the fifth, through the response_url (nothing redirected)."""
    from slack_bolt.context.respond import Respond

    from bot.replies import Reply

    standin = stack.slack.standin
    prompt = str(stack.rt.clients.request.chat_postMessage(channel=CHANNEL, text="Retry all 6 open errors?")["ts"])
    url = standin.mint_response_url(TEAM, CHANNEL, OWNER, source="block_actions", message_ts=prompt)
    reply = Reply(stack.rt.clients.request, respond=Respond(response_url=url.url), user_id=OWNER)
    for done in range(6):
        reply.replace({"text": f"Retrying {done} of 6..."})
    reply.later({"text": "Retry All finished: 6 synced"}, replace=True)
    assert standin.response_url(url.id).uses == 5
    assert standin.message(CHANNEL, prompt).text == "Retry All finished: 6 synced"
    assert [c.status for c in standin.calls("response_url")] == [200] * 5
    assert not standin.calls("chat.postEphemeral")


def test_a_command_whose_text_says_payload_is_answered(stack: Stack) -> None:
    """Bolt reads any form body with the word "payload" in it as an interaction's payload field (and, finding none,
    as an empty body): a /sync-log searching for "payload" was acked and answered nothing."""
    answer = stack.driver.slash_command("/sync-log", '"payload"')
    assert answer.status_code == 200 and answer.response.text
    assert "payload" in str(answer.json())
    assert stack.driver.slash_command("/sync-log", "help", channel_id=CHANNEL).json()["text"].startswith("syncbot")


# ------------------------------------------------------------------ too long: the request path's short form


def test_a_home_tab_slack_refuses_as_too_large_is_published_short(stack: Stack, qbo: QBO) -> None:
    """views.publish refused with view_too_large: the Home the person opened still shows, in short form (its
    first line, where the rest is, its buttons), instead of staying blank or stale."""
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    stack.slack.standin.inject_fault("views.publish", 1, error="view_too_large")
    assert stack.driver.app_home_opened(OWNER).status_code == 200
    wait_for(lambda: stack.slack.standin.home_view(OWNER, TEAM) is not None)
    home = stack.slack.standin.home_view(OWNER, TEAM)
    assert home is not None and home["type"] == "home"
    text = json.dumps(home)
    assert "Details left out: Slack refused the full view" in text
    publishes = stack.slack.standin.calls("views.publish")
    assert [c.ok for c in publishes] == [False, True], "refused once, then published short"


def test_a_card_update_slack_refuses_as_too_long_shows_the_short_form_then_the_outcome(
        stack: Stack, qbo: QBO) -> None:
    """A Retry click's "Retrying…" update refused with msg_blocks_too_long: the card the person clicked still
    changes (short form), and the outcome then reaches it through the outbox."""
    from tests.test_slack_flows import deliver_all

    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    stack.slack.standin.inject_fault("chat.update", 1, error="msg_blocks_too_long", match={"ts": acme["ts"]})
    assert stack.driver.click("entry_retry", channel_id=CHANNEL, message_ts=acme["ts"]).status_code == 200
    wait_for(lambda: any(c.ok for c in stack.slack.standin.calls("chat.update")))
    updates = stack.slack.standin.calls("chat.update")
    assert not updates[0].ok and updates[0].params.get("ts") == acme["ts"]
    assert "Details left out" in json.dumps(updates[1].params.get("blocks")), "the short form went out"

    def synced() -> bool:  # the retry runs after the ack; its outcome reaches the card through the outbox
        deliver_all(stack)
        return "Synced" in str(stack.message(acme["ts"])["text"])

    wait_for(synced, timeout=20)
