"""The Slack app end to end: our server on loopback, the Slack stand-in as Slack, the QuickBooks stand-in as
QuickBooks. Requests are signed exactly as Slack signs them (sandbox.slack.SlackDriver)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from sandbox.slack import config as slack_cfg
from sync.models import Contact, SyncLogEntry
from tests.conftest import CHANNEL, QBO, Stack, wait_for


def error_messages(stack: Stack) -> list[dict[str, Any]]:
    return [m for m in stack.messages() if "Error" in m["text"] or "Warning" in m["text"]]


def test_error_arrives_with_diagnosis_and_retry_turns_it_synced_in_place(stack: Stack, qbo: QBO) -> None:
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
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
