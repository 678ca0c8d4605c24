"""The Slack app in Socket Mode, end to end: our app connects to the Slack stand-in exactly as `syncbot serve` does with
SLACK_APP_TOKEN set (bot.socket_mode.start_socket_mode: apps.connections.open on SLACK_API_URL, then the WebSocket),
with no signing secret; commands, clicks and events arrive as Socket Mode envelopes (sandbox.slack.socket_mode) and
their acks come back the way Slack reads them. The QuickBooks stand-in plays QuickBooks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.blocks import ids
from sandbox.slack import config as slack_cfg
from sandbox.slack.socket_mode import SocketDriver, SocketModeHub
from sync.models import SyncLogEntry
from tests.conftest import CHANNEL, QBO, Connected, Stack, stop_all, wait_for

#: The client's ping interval in these tests (seconds): a dropped connection is replaced at the next check.
PING_INTERVAL_S = 2.0


@pytest.fixture()
def socket_stack(clean_db: str, qbo: QBO, connected: Connected, services: Any) -> Iterator[Stack]:
    """Our app in Socket Mode on the Slack stand-in (no SLACK_SIGNING_SECRET), its HTTP server (health, OAuth) on
    loopback, the workspace bound to the connected account; ``driver`` is a SocketDriver."""
    from bot.app import build_app
    from bot.server import create_server
    from bot.services import build_services
    from bot.socket_mode import start_socket_mode
    from bot.wiring import build_runtime
    from sandbox.serve import free_port, serve_in_thread
    from sandbox.slack import serve_standin

    slack = serve_standin()
    port = free_port()
    settings = qbo.settings(clean_db, SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN=slack_cfg.DEFAULT_BOT_TOKEN,
                            SLACK_APP_TOKEN=slack_cfg.DEFAULT_APP_TOKEN, SLACK_DEFAULT_CHANNEL=CHANNEL,
                            PUBLIC_URL=f"http://127.0.0.1:{port}",
                            QBO_REDIRECT_URI=f"http://127.0.0.1:{port}/oauth/quickbooks/callback",
                            TOKEN_ENCRYPTION_KEYS=services.settings.token_encryption_keys.get_secret_value())
    assert settings.slack_signing_secret is None
    svc = build_services(settings, migrate=False)
    svc.limiter = services.limiter
    rt = build_runtime(svc)
    rt.notifier.post_interval = 0.0
    rt.start_jobs()
    app = build_app(rt)
    handler = start_socket_mode(app, settings, ping_interval=PING_INTERVAL_S)
    server = serve_in_thread(create_server(rt, app, socket_mode=True), port=port)  # as `syncbot serve` does
    driver = SocketDriver(slack.socket_mode, slack.standin)
    try:
        assert driver.slash_command("/sync-log", "help").status_code == 200  # binds the workspace
        yield Stack(rt, server.url, slack, driver, connected.connection_id, connected.account_id)
    finally:
        stop_all(driver.close, server.stop, rt.close, svc.close, slack.stop, socket_handler=handler, slack=slack)


def _hub(stack: Stack) -> SocketModeHub:
    hub: SocketModeHub = stack.slack.socket_mode
    return hub


def _acme_error(stack: Stack, qbo: QBO) -> tuple[dict[str, Any], dict[str, Any]]:
    """A duplicate-name error for Acme Corp, delivered to the channel: (the QuickBooks customer, the message)."""
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    return existing, next(m for m in stack.messages() if "Acme Corp" in m["text"])


def _entries(stack: Stack) -> int:
    with stack.rt.services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(SyncLogEntry)) or 0)


def test_connects_with_the_app_token_on_the_stand_in_and_needs_no_signing_secret(socket_stack: Stack) -> None:
    hub = _hub(socket_stack)
    assert hub.opens and all(o == {"ok": True, "app_id": slack_cfg.DEFAULT_APP_ID} for o in hub.opens)
    assert len(hub.connections()) == 1
    help_text = str(socket_stack.driver.slash_command("/sync-log", "help").json())
    assert "/sync-log errors" in help_text and "retry-all" in help_text
    # Slack's requests come over the socket only: the HTTP endpoint does not take them
    events = httpx.post(f"{socket_stack.url}/slack/events", content=b"command=%2Fsync-log&text=help",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert events.status_code == 503
    assert httpx.get(f"{socket_stack.url}/healthz").json() == {"ok": True}


def test_sync_log_errors_answers_through_the_socket(socket_stack: Stack, qbo: QBO) -> None:
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    socket_stack.rt.services.engine.sync_now(socket_stack.connection_id, "U_ADMIN")
    answer = socket_stack.driver.slash_command("/sync-log", "errors")
    assert answer.status_code == 200
    body = str(answer.json())
    assert "Acme Corp" in body and "Permit fee" in body and "Riverside Dental" not in body
    only_items = str(socket_stack.driver.slash_command("/sync-log", "errors entity:item").json())
    assert "Permit fee" in only_items and "Acme Corp" not in only_items


def test_retry_click_turns_the_error_synced_in_place(socket_stack: Stack, qbo: QBO) -> None:
    existing, acme = _acme_error(socket_stack, qbo)
    text = str(acme["blocks"])
    assert "A record with the same name or identifier already exists" in text and "Rename or merge" in text
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    result = socket_stack.driver.click(ids.RETRY, channel_id=CHANNEL, message_ts=acme["ts"])
    assert result.status_code == 200

    def synced() -> Any:
        msg = socket_stack.message(acme["ts"])
        return msg if ":white_check_mark:" in str(msg["blocks"]) else None

    msg = wait_for(synced)
    assert "Synced" in str(msg["blocks"]) and ids.RETRY not in str(msg["blocks"])
    assert any("Retrying" in str(edit) for edit in msg.get("edits", [])), "it said Retrying... first"
    assert len([m for m in socket_stack.messages() if "Acme Corp" in m["text"]]) == 1, "the same message"


def test_a_member_is_refused_and_nothing_changes(socket_stack: Stack, qbo: QBO) -> None:
    _, acme = _acme_error(socket_stack, qbo)
    before = _entries(socket_stack)
    result = socket_stack.driver.click(ids.RETRY, channel_id=CHANNEL, message_ts=acme["ts"],
                                       user_id=slack_cfg.MEMBER_USER_ID)
    assert result.status_code == 200
    refusal = wait_for(lambda: socket_stack.ephemerals(slack_cfg.MEMBER_USER_ID))
    assert "Owner or Admin" in str(refusal)
    assert _entries(socket_stack) == before
    assert socket_stack.message(acme["ts"])["text"] == acme["text"]


def test_app_home_opens(socket_stack: Stack, qbo: QBO) -> None:
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    socket_stack.rt.services.engine.sync_now(socket_stack.connection_id, "U_ADMIN")
    assert socket_stack.driver.app_home_opened(slack_cfg.OWNER_USER_ID).status_code == 200
    view = str(wait_for(lambda: socket_stack.slack.standin.home_view(slack_cfg.OWNER_USER_ID)))
    assert "QuickBooks" in view and ids.SYNC_NOW in view and ids.RETRY_ALL in view and "Acme Corp" in view
    socket_stack.driver.app_home_opened(slack_cfg.MEMBER_USER_ID)
    member_view = str(wait_for(lambda: socket_stack.slack.standin.home_view(slack_cfg.MEMBER_USER_ID)))
    assert "Owner or Admin" in member_view and "Acme Corp" not in member_view


@pytest.mark.parametrize("reason", ["refresh_requested", None], ids=["slack-refreshes", "connection-drops"])
def test_the_client_reconnects_and_commands_work_again(socket_stack: Stack, qbo: QBO, reason: str | None) -> None:
    hub = _hub(socket_stack)
    accepted, opened = hub.accepted, len(hub.opens)
    assert hub.disconnect(reason) == 1  # Slack's disconnect message, or the connection just drops
    hub.wait_connected(accepted_more_than=accepted, timeout=8 * PING_INTERVAL_S)
    assert len(hub.opens) > opened and hub.opens[-1]["ok"], "a new URL from apps.connections.open"
    wait_for(lambda: len(hub.connections()) == 1, timeout=8 * PING_INTERVAL_S)  # the old one is gone
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    socket_stack.rt.services.engine.sync_now(socket_stack.connection_id, "U_ADMIN")
    assert "Acme Corp" in str(socket_stack.driver.slash_command("/sync-log", "errors").json())


def test_an_envelope_no_listener_handles_is_acked_and_changes_nothing(socket_stack: Stack) -> None:
    before = _entries(socket_stack)
    result = socket_stack.driver.event({"type": "reaction_added", "user": slack_cfg.OWNER_USER_ID,
                                        "reaction": "thumbsup", "item_user": slack_cfg.OWNER_USER_ID,
                                        "item": {"type": "message", "channel": CHANNEL, "ts": "1.000001"},
                                        "event_ts": "1.000002"})
    assert result.status_code == 200 and result.response.content == b""
    assert _entries(socket_stack) == before
    assert _hub(socket_stack).unexpected == []


def test_the_stand_in_refuses_what_slack_refuses(socket_stack: Stack) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(base_url=socket_stack.slack.api_url)
    for token, error in [(slack_cfg.DEFAULT_BOT_TOKEN, "not_allowed_token_type"), ("xapp-1-A0-1-nope", "invalid_auth")]:
        with pytest.raises(SlackApiError) as refused:
            client.apps_connections_open(app_token=token)
        assert refused.value.response["error"] == error
    as_param = httpx.post(f"{socket_stack.slack.api_url}apps.connections.open",
                          data={"token": slack_cfg.DEFAULT_APP_TOKEN}).json()
    assert as_param == {"ok": False, "error": "invalid_auth"}  # the token belongs in the Authorization header
    with pytest.raises(ValueError, match="not signed"):
        socket_stack.driver.slash_command("/sync-log", "help", forge=True)


def _serve_env(clean_db: str, qbo: QBO, services: Any, slack_api_url: str, app_token: str) -> dict[str, str]:
    settings = qbo.settings(clean_db)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QBO_", "SYNCBOT_"))}
    env.update({"DATABASE_URL": clean_db,
                "TOKEN_ENCRYPTION_KEYS": services.settings.token_encryption_keys.get_secret_value(),
                "QBO_API_URL": settings.qbo_api_url, "QBO_AUTH_URL": settings.qbo_auth_url,
                "QBO_TOKEN_URL": settings.qbo_token_url, "QBO_REVOKE_URL": settings.qbo_revoke_url,
                "SLACK_API_URL": slack_api_url, "SLACK_BOT_TOKEN": slack_cfg.DEFAULT_BOT_TOKEN,
                "SLACK_APP_TOKEN": app_token, "SLACK_DEFAULT_CHANNEL": CHANNEL, "SCHEDULER_ENABLED": "false",
                "LOG_LEVEL": "ERROR"})
    return env


def test_syncbot_serve_runs_in_socket_mode_until_ctrl_c(clean_db: str, qbo: QBO, connected: Connected,
                                                         services: Any, tmp_path: Path) -> None:
    """`syncbot serve` itself, as an operator runs it: SLACK_APP_TOKEN and no SLACK_SIGNING_SECRET."""
    from sandbox.serve import free_port
    from sandbox.slack import serve_standin

    slack = serve_standin()
    port = free_port()
    env = _serve_env(clean_db, qbo, services, slack.api_url, slack_cfg.DEFAULT_APP_TOKEN)
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        slack.socket_mode.wait_connected(timeout=60)
        with SocketDriver(slack.socket_mode, slack.standin) as driver:
            assert "/sync-log errors" in str(driver.slash_command("/sync-log", "help").json())
        wait_for(lambda: _get_ok(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        slack.stop()
    assert proc.returncode == 0, output
    assert "Socket Mode" in output
    assert slack.socket_mode.connections() == [], "the connection was closed on the way out"
    assert slack_cfg.DEFAULT_APP_TOKEN not in output


def _get_ok(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize(("app_token", "says"), [("xapp-1-A0000000001-1-unknown", "invalid_auth"),
                                                 (slack_cfg.DEFAULT_BOT_TOKEN, "app-level token")])
def test_syncbot_serve_refuses_a_bad_app_token(clean_db: str, qbo: QBO, services: Any,
                                               monkeypatch: pytest.MonkeyPatch, app_token: str, says: str) -> None:
    from typer.testing import CliRunner

    from bot import config
    from bot.cli import app
    from sandbox.slack import serve_standin

    slack = serve_standin()
    try:
        for key in [k for k in os.environ if k.startswith("SLACK_")]:
            monkeypatch.delenv(key)
        for key, value in _serve_env(clean_db, qbo, services, slack.api_url, app_token).items():
            monkeypatch.setenv(key, value)
        config.get_settings.cache_clear()
        result = CliRunner().invoke(app, ["serve", "--host", "127.0.0.1"], catch_exceptions=False)
    finally:
        config.get_settings.cache_clear()
        slack.stop()
    assert result.exit_code == 2
    assert "cannot open Socket Mode" in result.output and says in result.output
    assert app_token not in result.output


# ------------------------------------------------------------------------------------------ issue 14 over the socket


@pytest.mark.parametrize(("kind", "payload"), [
    ("interactive", {"type": "block_actions", "team": {"id": slack_cfg.DEFAULT_TEAM_ID},
                     "user": {"id": slack_cfg.OWNER_USER_ID}, "actions": {"action_id": ids.SYNC_NOW}}),
    ("interactive", {"type": "block_actions", "user": slack_cfg.OWNER_USER_ID,
                     "team": {"id": slack_cfg.DEFAULT_TEAM_ID}, "actions": [{"action_id": ids.SYNC_NOW}]}),
    ("interactive", {"team": {"id": slack_cfg.DEFAULT_TEAM_ID}, "user": {"id": slack_cfg.OWNER_USER_ID}}),
    ("slash_commands", {"team_id": slack_cfg.DEFAULT_TEAM_ID, "user_id": slack_cfg.OWNER_USER_ID,
                        "text": "sync-now"}),
    ("slash_commands", {"command": "/sync-log", "user_id": slack_cfg.OWNER_USER_ID, "text": "sync-now"}),
    ("events_api", {"type": "event_callback", "team_id": slack_cfg.DEFAULT_TEAM_ID, "event_id": "Ev0NOEVENT"}),
    ("events_api", {"type": "event_callback", "team_id": slack_cfg.DEFAULT_TEAM_ID, "event_id": "Ev0BADEVENT",
                    "event": "app_home_opened"}),
], ids=["actions-not-a-list", "user-as-text", "no-type", "command-without-command", "command-without-team",
        "event-callback-without-event", "event-not-an-object"])
def test_a_malformed_envelope_is_acked_empty_logged_and_changes_nothing(
        socket_stack: Stack, kind: Any, payload: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import time

    before = (_entries(socket_stack), len(socket_stack.ephemerals(slack_cfg.OWNER_USER_ID)),
              len(socket_stack.slack.standin.calls()))
    with caplog.at_level(logging.WARNING, logger="syncbot.socket_mode"):
        ack = _hub(socket_stack).send(kind, payload, timeout=5)
    assert ack.payload is None  # acked empty: Slack neither retries it nor shows an error
    time.sleep(0.2)
    assert (_entries(socket_stack), len(socket_stack.ephemerals(slack_cfg.OWNER_USER_ID)),
            len(socket_stack.slack.standin.calls())) == before
    assert any("event=slack_request_unreadable" in r.getMessage() and "mode=socket" in r.getMessage()
               for r in caplog.records)


def test_an_event_slack_delivers_again_over_the_socket_is_worked_once(socket_stack: Stack) -> None:
    first = socket_stack.driver.app_home_opened(slack_cfg.OWNER_USER_ID)
    socket_stack.driver.app_home_opened(slack_cfg.OWNER_USER_ID, event_id=first.event_id, retry_num=1)
    socket_stack.rt.replies.shutdown(wait=True)
    publishes = [c for c in socket_stack.slack.standin.calls("views.publish") if c.ok]
    assert len(publishes) == 1
