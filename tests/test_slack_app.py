"""The Slack app end to end: our server on loopback, the Slack stand-in as Slack, the QuickBooks stand-in as
QuickBooks. Requests are signed exactly as Slack signs them (sandbox.slack.SlackDriver)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from sandbox.slack import config as slack_cfg
from sandbox.slack.driver import SlackDriver
from sync.models import Contact, SyncLogEntry
from tests.conftest import QBO, Connected

SIGNING_SECRET = "test-signing-secret-0123456789"
CHANNEL = slack_cfg.ERRORS_CHANNEL_ID


@dataclass
class Stack:
    rt: Any
    url: str
    slack: Any
    driver: SlackDriver
    connection_id: int
    account_id: int

    def messages(self) -> list[dict[str, Any]]:
        return [m.to_dict() for m in self.slack.standin.messages(CHANNEL)]

    def message(self, ts: str) -> dict[str, Any]:
        return self.slack.standin.message(CHANNEL, ts).to_dict()

    def ephemerals(self, user: str) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.slack.standin.ephemerals(user)]

    def deliver(self) -> None:
        self.rt.notifier.deliver()


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture()
def stack(clean_db: str, qbo: QBO, connected: Connected, services: Any) -> Iterator[Stack]:
    from bot.app import build_app
    from bot.runtime import build_runtime
    from bot.server import create_server
    from bot.services import build_services
    from sandbox.serve import free_port, serve_in_thread
    from sandbox.slack import serve_standin

    slack = serve_standin()
    port = free_port()
    settings = qbo.settings(clean_db, SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN=slack_cfg.DEFAULT_BOT_TOKEN,
                            SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_DEFAULT_CHANNEL=CHANNEL,
                            PUBLIC_URL=f"http://127.0.0.1:{port}",
                            TOKEN_ENCRYPTION_KEYS=services.settings.token_encryption_keys.get_secret_value())
    svc = build_services(settings, migrate=False)
    svc.limiter = services.limiter
    rt = build_runtime(svc)
    rt.notifier.post_interval = 0.0
    server = serve_in_thread(create_server(rt, build_app(rt)), port=port)
    driver = SlackDriver(f"{server.url}/slack/events", SIGNING_SECRET, slack.standin)
    # the workspace binds to the account on its first request
    assert driver.slash_command("/sync-log", "help").status_code == 200
    yield Stack(rt, server.url, slack, driver, connected.connection_id, connected.account_id)
    driver.close()
    server.stop()
    rt.close()
    svc.close()
    slack.stop()


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
