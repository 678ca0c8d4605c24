"""The Slack app end to end: our server on loopback, the Slack stand-in as Slack, the QuickBooks stand-in as
QuickBooks. Requests are signed exactly as Slack signs them (sandbox.slack.SlackDriver)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from sandbox.slack import config as slack_cfg
from sync.models import Contact, SyncLogEntry
from tests.conftest import CHANNEL, QBO, Stack, wait_for


def error_messages(stack: Stack) -> list[dict[str, Any]]:
    return [m for m in stack.messages() if "Error" in m["text"] or "Warning" in m["text"]]


def test_error_arrives_with_diagnosis_and_retry_turns_it_synced_in_place(stack: Stack, qbo: QBO) -> None:
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    asked = qbo.standin.stats(qbo.realm)["requests"]
    stack.deliver()
    # the sync looked the name up when QuickBooks refused it: drawing the card asks QuickBooks nothing
    assert qbo.standin.stats(qbo.realm)["requests"] == asked
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    text = str(acme["blocks"])
    assert "A record with the same name or identifier already exists" in text  # the help article's cause
    assert "Rename or merge the duplicate" in text  # and its fix
    assert "entry_retry" in text

    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    result = stack.driver.click("entry_retry", channel_id=CHANNEL, message_ts=acme["ts"])
    assert result.status_code == 200 and result.acked_in_time

    def synced() -> Any:
        msg = stack.message(acme["ts"])
        return msg if ":white_check_mark:" in str(msg["blocks"]) else None

    msg = wait_for(synced)
    assert "Synced" in str(msg["blocks"]) and "entry_retry" not in str(msg["blocks"])
    assert any("Retrying" in str(edit) for edit in msg.get("edits", [])), "it said Retrying... first"
    assert len([m for m in stack.messages() if "Acme Corp" in m["text"]]) == 1, "the same message, not a new one"
    stack.rt.replies.shutdown(wait=True)  # the click's work is over: nothing more will touch the message
    stack.rt.jobs.wait_idle()
    updates = [c for c in stack.slack.standin.calls("chat.update") if c.params.get("ts") == acme["ts"]]
    assert len(updates) == 2, "Retrying..., then Synced: one update each, no redraw of what was drawn"


def test_non_admin_is_refused_and_nothing_changes(stack: Stack, qbo: QBO) -> None:
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    with stack.rt.services.sessions() as session:
        before = session.scalar(select(func.count()).select_from(SyncLogEntry))
    result = stack.driver.click("entry_retry", channel_id=CHANNEL, message_ts=acme["ts"],
                                user_id=slack_cfg.MEMBER_USER_ID)
    assert result.status_code == 200
    refusal = wait_for(lambda: stack.ephemerals(slack_cfg.MEMBER_USER_ID))
    assert "Owner or Admin" in str(refusal)
    time.sleep(0.3)
    with stack.rt.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SyncLogEntry)) == before
    assert stack.message(acme["ts"])["text"] == acme["text"]


def test_forged_and_stale_requests_are_refused(stack: Stack) -> None:
    assert stack.driver.slash_command("/sync-log", "sync-now", forge=True).status_code == 401
    assert stack.driver.slash_command("/sync-log", "sync-now", skew_s=-400).status_code == 401
    assert stack.driver.slash_command("/sync-log", "sync-now", skew_s=400).status_code == 401
    with stack.rt.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SyncLogEntry)) == 0


def test_another_workspaces_entry_id_is_refused(stack: Stack, qbo: QBO) -> None:
    from bot.models import Workspace
    from sync.models import Account

    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    with stack.rt.services.sessions() as session, session.begin():  # the entry now belongs to someone else
        other = Account(name="Other company")
        session.add(other)
        session.flush()
        entry = session.scalars(select(SyncLogEntry).where(SyncLogEntry.record_label == "Acme Corp")).first()
        foreign_id = entry.id
        ws = session.get(Workspace, slack_cfg.DEFAULT_TEAM_ID)
        ws.account_id = other.id
    result = stack.driver.click("entry_retry", channel_id=CHANNEL, message_ts=acme["ts"], value=str(foreign_id))
    assert result.status_code == 200
    refusal = wait_for(lambda: stack.ephemerals(slack_cfg.OWNER_USER_ID))
    assert "not found in your account" in str(refusal)
    assert stack.rt.services.engine.get_entry(foreign_id).superseded_by_id is None


def test_tampered_button_value_is_refused(stack: Stack, qbo: QBO) -> None:
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    result = stack.driver.click("entry_retry", channel_id=CHANNEL, message_ts=acme["ts"], value="1; DROP TABLE")
    assert result.status_code == 200
    assert "not valid" in str(wait_for(lambda: stack.ephemerals(slack_cfg.OWNER_USER_ID)))


def test_sync_log_filters_help_and_unknown_words(stack: Stack, qbo: QBO) -> None:
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    errors = stack.driver.slash_command("/sync-log", "errors")
    assert errors.status_code == 200
    body = str(errors.json())
    assert "Acme Corp" in body and "Permit fee" in body and "Riverside Dental" not in body
    only_items = str(stack.driver.slash_command("/sync-log", "errors entity:item").json())
    assert "Permit fee" in only_items and "Acme Corp" not in only_items
    assert "/sync-log" in str(stack.driver.slash_command("/sync-log", "help").json())
    unknown = str(stack.driver.slash_command("/sync-log", "frobnicate").json())
    assert "frobnicate" in unknown and "retry-all" in unknown  # the help, saying what was not understood
    bad = str(stack.driver.slash_command("/sync-log", "kind:nonsense").json())
    assert "unknown kind" in bad


def test_retry_all_asks_first_then_reports(stack: Stack, qbo: QBO) -> None:
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    prompt = stack.driver.slash_command("/sync-retry-all")
    assert "Retry all 2 open errors?" in str(prompt.json())
    with stack.rt.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 3


def test_healthz(stack: Stack) -> None:
    import httpx

    assert httpx.get(f"{stack.url}/healthz").json() == {"ok": True}


def test_oversized_and_malformed_requests_are_refused_cheaply(stack: Stack) -> None:
    import httpx

    url = f"{stack.url}/slack/events"
    streamed = httpx.post(url, content=(b"a" * (1 << 20) for _ in range(20)))
    assert streamed.status_code == 413
    odd_stamp = {"X-Slack-Request-Timestamp": "\u00b2".encode()}
    assert httpx.post(url, content=b"x=1", headers=odd_stamp).status_code in (400, 401)
    assert httpx.post(url, content=b"x=1", headers={"X-Slack-Request-Timestamp": "abc",
                                                    "X-Slack-Signature": "v0=00"}).status_code == 401
    assert httpx.get(f"{stack.url}/oauth/quickbooks/start", params={"state": "\u00e9.\u00e9"}).status_code == 400
    assert httpx.get(f"{stack.url}/oauth/quickbooks/start").status_code == 400


# ------------------------------------------------------------------------------------------ odd signed requests
# A signed request syncbot cannot read is refused with 400 and changes nothing; a signed request no listener
# handles (an action_id, view or event syncbot does not know) is acked at once and logged, since Slack shows the
# user an error for an interaction not acked within 3 seconds and retries an event that is not acked.


def _state(stack: Stack) -> tuple[int, int, int]:
    with stack.rt.services.sessions() as session:
        entries = session.scalar(select(func.count()).select_from(SyncLogEntry))
    return entries, len(stack.messages()), len(stack.ephemerals(slack_cfg.OWNER_USER_ID))


def _block_actions(stack: Stack, action_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "block_actions", "team": {"id": slack_cfg.DEFAULT_TEAM_ID, "domain": "sandbox"},
            "user": {"id": slack_cfg.OWNER_USER_ID, "username": "owner", "team_id": slack_cfg.DEFAULT_TEAM_ID},
            "api_app_id": stack.driver.api_app_id, "token": "sandbox-verification-token",
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": CHANNEL},
            "channel": {"id": CHANNEL, "name": "sync-errors"}, "trigger_id": "1.2.3",
            "actions": [{"action_id": action_id, "block_id": "b0", "type": "button", "value": "1",
                         "action_ts": "1700000000.1"}], **extra}


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("payload=%7Bnot+json", FORM),
        ("payload=", FORM),
        ("payload=%5B1%2C2%5D", FORM),
        ("payload=%22just+a+string%22", FORM),
        ("payload=null", FORM),
        ("payload=42", FORM),
        ("payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A", FORM),
        ("payload=%FF%FE", FORM),
        ("token=x&payload=%7Bnot+json&other=1", FORM),
        ('{"type": "event_callback", "event": ', "application/json"),
        ("[1, 2]", "application/json"),
        ("not json at all", "application/json; charset=utf-8"),
    ],
    ids=["not-json", "empty", "json-array", "json-string", "json-null", "json-number", "truncated", "not-utf8",
         "among-fields", "json-body-truncated", "json-body-array", "json-body-text"],
)
def test_a_signed_unparsable_payload_is_refused_with_400_and_changes_nothing(stack: Stack, body: str,
                                                                             content_type: str) -> None:
    before = _state(stack)
    response, _ = stack.driver.send(body, content_type)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("invalid payload:") and ("not JSON" in error or "not a JSON object" in error)
    assert _state(stack) == before
    forged, _ = stack.driver.send(body, content_type, forge=True)
    assert forged.status_code == 401  # the signature is checked first: nothing is said to a forger


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "action", "action_id": "no_such_action"},
        {"kind": "action", "action_id": "entry_retry_v0_old"},
        {"kind": "view_submission"},
        {"kind": "shortcut"},
        {"kind": "event"},
    ],
    ids=["unknown-action", "old-action-id", "unknown-view", "unknown-shortcut", "unknown-event"],
)
def test_a_signed_request_no_listener_handles_is_acked_and_logged(stack: Stack, payload: dict[str, str],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    import json
    import logging
    from urllib.parse import urlencode

    before = _state(stack)
    with caplog.at_level(logging.WARNING, logger="syncbot.server"):
        if payload["kind"] == "action":
            body = urlencode({"payload": json.dumps(_block_actions(stack, payload["action_id"]))})
            response, _ = stack.driver.send(body, "application/x-www-form-urlencoded")
            what = payload["action_id"]
        elif payload["kind"] == "view_submission":
            view = {"id": "V1", "type": "modal", "callback_id": "no_such_view", "state": {"values": {}}}
            submission = {key: value for key, value in _block_actions(stack, "x").items()
                          if key not in ("actions", "container", "channel")}
            body = urlencode({"payload": json.dumps({**submission, "type": "view_submission", "view": view})})
            response, _ = stack.driver.send(body, "application/x-www-form-urlencoded")
            what = "no_such_view"
        elif payload["kind"] == "shortcut":
            body = urlencode({"payload": json.dumps({"type": "shortcut", "callback_id": "no_such_shortcut",
                                                     "team": {"id": slack_cfg.DEFAULT_TEAM_ID},
                                                     "user": {"id": slack_cfg.OWNER_USER_ID},
                                                     "trigger_id": "1.2.3", "token": "t"})})
            response, _ = stack.driver.send(body, "application/x-www-form-urlencoded")
            what = "no_such_shortcut"
        else:
            result = stack.driver.event({"type": "reaction_added", "user": slack_cfg.OWNER_USER_ID,
                                         "reaction": "eyes", "item": {"type": "message", "channel": CHANNEL,
                                                                      "ts": "1700000000.000100"},
                                         "event_ts": "1700000000.2"})
            response = result.response
            what = "reaction_added"
    assert response.status_code == 200
    assert response.elapsed.total_seconds() <= 3.0
    assert response.text in ("", "{}")  # an empty ack: no error shown, nothing replaced
    assert any("slack_request_unhandled" in r.getMessage() and what in r.getMessage() for r in caplog.records)
    time.sleep(0.2)
    assert _state(stack) == before


def test_retry_refused_while_the_connection_is_expired_leaves_the_error_not_retrying(stack: Stack,
                                                                                    qbo: QBO) -> None:
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # the connection is now expired
    with stack.rt.services.sessions() as session:
        before = session.scalar(select(func.count()).select_from(SyncLogEntry))
    # clicked on the card as it was, before the notifier redrew it as waiting for Reconnect
    assert stack.driver.click("entry_retry", channel_id=CHANNEL, message_ts=acme["ts"]).status_code == 200
    refusal = wait_for(lambda: [e for e in stack.ephemerals(slack_cfg.OWNER_USER_ID) if "reconnect" in e["text"]])
    assert refusal
    stack.rt.replies.shutdown(wait=True)
    stack.rt.jobs.wait_idle()
    final = stack.message(acme["ts"])
    assert "Retrying" not in final["text"] and "Retrying" not in str(final["blocks"])
    # the card says why where the click was, and offers Reconnect instead of a Retry that cannot work
    assert re.search(r"Retry by \S+ at <!date\^\d+\^\{time\}\|[^>]+> was refused: the QuickBooks connection waits "
                     "for Reconnect", str(final["blocks"]))
    assert "Waiting for Reconnect" in str(final["blocks"]) and "entry_retry" not in str(final["blocks"])
    with stack.rt.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SyncLogEntry)) == before  # no attempt made


def test_duplicate_offers_the_existing_record_and_linking_turns_it_synced_in_place(stack: Stack, qbo: QBO) -> None:
    from bot.blocks import ids

    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    asked = qbo.standin.stats(qbo.realm)["requests"]
    stack.deliver()
    # the sync looked the name up when QuickBooks refused it: drawing the card asks QuickBooks nothing
    assert qbo.standin.stats(qbo.realm)["requests"] == asked
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    label = f"Acme Corp (Customer {existing['Id']})"
    assert f"Link to existing: {label}" in str(acme["blocks"])  # a query found it
    link = next(el for b in acme["blocks"] if b["type"] == "actions" for el in b["elements"]
                if el["action_id"] == ids.LINK_EXISTING)
    assert link["text"]["text"] == f"Link to existing: {label}" and link["confirm"]["confirm"]["text"] == "Link"
    customers = len(qbo.standin.entities(qbo.realm, "Customer"))

    assert stack.driver.click(ids.LINK_EXISTING, channel_id=CHANNEL, message_ts=acme["ts"],
                              value=link["value"]).status_code == 200
    msg = wait_for(lambda: (m := stack.message(acme["ts"])) and ":white_check_mark:" in str(m["blocks"]) and m)
    assert ids.LINK_EXISTING not in str(msg["blocks"])
    assert len(qbo.standin.entities(qbo.realm, "Customer")) == customers, "linked, no new customer created"
    with stack.rt.services.sessions() as session:
        entry = session.scalars(select(SyncLogEntry).where(SyncLogEntry.record_label == "Acme Corp",
                                                           SyncLogEntry.status == "synced")).one()
        assert entry.remote_id == existing["Id"]


def test_the_users_info_cache_is_bounded_and_keeps_the_most_recent(stack: Stack) -> None:
    """users.info answers are cached (no call per click), at most ``max_users`` of them: with room for two,
    a third user drops the least recently used, whose next look-up asks Slack again."""
    from bot.workspaces import Directory

    directory = Directory(lambda _team: stack.rt.clients.for_team(_team), max_users=2)
    calls = lambda: len(stack.slack.standin.calls("users.info"))  # noqa: E731
    stack.slack.standin.clear_calls()
    for user in (slack_cfg.OWNER_USER_ID, slack_cfg.ADMIN_USER_ID):
        assert directory.user(slack_cfg.DEFAULT_TEAM_ID, user).is_admin
    assert directory.user(slack_cfg.DEFAULT_TEAM_ID, slack_cfg.OWNER_USER_ID).is_admin and calls() == 2  # cached
    # the admin was used least recently: the member takes its place
    assert not directory.user(slack_cfg.DEFAULT_TEAM_ID, slack_cfg.MEMBER_USER_ID).is_admin
    assert directory.user(slack_cfg.DEFAULT_TEAM_ID, slack_cfg.OWNER_USER_ID).is_admin and calls() == 3
    assert directory.user(slack_cfg.DEFAULT_TEAM_ID, slack_cfg.ADMIN_USER_ID).is_admin and calls() == 4


def test_the_app_starts_without_warnings(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """An operator reads every warning at start as something to act on: Bolt's "token will be unused" (the token
    given beside a client that carries it) was one at every start."""
    import logging

    from bot.app import build_app

    caplog.set_level(logging.WARNING)
    app = build_app(stack.rt)
    assert app.client.token == stack.rt.settings.slack_bot_token.get_secret_value()  # Bolt's token: the client's
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
