"""Multi-workspace mode: the app installed into two workspaces through Bolt's OAuth flow over real HTTP (our
server, the Slack stand-in's consent page and oauth.v2.access), each workspace bound to one account; workspace
B's clicks cannot touch workspace A's entries; tokens are encrypted at rest and never logged; uninstalling
deletes the installation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import select

from bot.blocks import ids
from bot.installations import raw_rows
from bot.models import Workspace
from sandbox.slack import config as slack_cfg
from sandbox.slack import oauth as slack_oauth
from sandbox.slack.driver import SlackDriver
from sync.models import Account, SyncLogEntry
from tests.conftest import QBO, SIGNING_SECRET, Connected, stop_all, wait_for

TEAM_A = slack_cfg.DEFAULT_TEAM_ID
TEAM_B = "T0000000002"
TOKEN_B = "xoxb-0000000002-other-workspace-token"
OWNER_B = "U0B00000001"
CHANNEL_A = slack_cfg.ERRORS_CHANNEL_ID
CHANNEL_B = "C0B00000001"


@dataclass
class Multi:
    rt: Any
    url: str
    slack: Any
    driver: SlackDriver
    connected: Connected

    def install(self, team_id: str, account_link: str | None = None) -> httpx.Response:
        """Click "Add to Slack" in a browser: /slack/install -> Slack's consent page -> /slack/oauth_redirect."""
        with httpx.Client(timeout=10) as browser:
            params = {"team": team_id} | ({"account": account_link} if account_link else {})
            start = browser.get(f"{self.url}/slack/install", params=params)
            assert start.status_code == 302, start.text
            cookies = "; ".join(c.split(";", 1)[0] for c in start.headers.get_list("set-cookie"))
            consent = browser.get(start.headers["location"])
            assert consent.status_code == 302, consent.text
            back = consent.headers["location"]
            assert back.startswith(f"{self.url}/slack/oauth_redirect?")
            return browser.get(back, headers={"Cookie": cookies})  # a browser sends Secure cookies back over https


def _multi(clean_db: str, qbo: QBO, connected: Connected, services: Any, *, socket: bool) -> Iterator[Multi]:
    """Many workspaces through Bolt's OAuth flow: over HTTP (signed requests on /slack/events), or in Socket Mode
    (an app-level token, no signing secret; the install flow still on HTTP, the requests over the socket)."""
    from bot.app import build_app
    from bot.server import create_server
    from bot.services import build_services
    from bot.socket_mode import start_socket_mode
    from bot.wiring import build_runtime
    from sandbox.serve import free_port, serve_in_thread
    from sandbox.slack import serve_standin
    from sandbox.slack.socket_mode import SocketDriver

    slack = serve_standin()
    standin = slack.standin
    standin.add_team(TEAM_B, "Other Co", "other-co", TOKEN_B)
    standin.add_user(TEAM_B, OWNER_B, "oscar", "Oscar Other", is_owner=True, is_primary_owner=True, is_admin=True)
    standin.add_channel(TEAM_B, CHANNEL_B, "sync-errors", bot_member=True, members=[OWNER_B])
    port = free_port()
    slack_env = ({"SLACK_APP_TOKEN": slack_cfg.DEFAULT_APP_TOKEN} if socket
                 else {"SLACK_SIGNING_SECRET": SIGNING_SECRET})
    settings = qbo.settings(clean_db, SLACK_API_URL=slack.api_url, **slack_env,
                            SLACK_CLIENT_ID=slack_oauth.CLIENT_ID, SLACK_CLIENT_SECRET=slack_oauth.CLIENT_SECRET,
                            PUBLIC_URL=f"http://127.0.0.1:{port}",
                            QBO_REDIRECT_URI=f"http://127.0.0.1:{port}/oauth/quickbooks/callback",
                            TOKEN_ENCRYPTION_KEYS=services.settings.token_encryption_keys.get_secret_value())
    svc = build_services(settings, migrate=False)
    svc.limiter = services.limiter
    rt = build_runtime(svc)
    rt.notifier.post_interval = 0.0
    rt.start_jobs()
    app = build_app(rt)
    handler = start_socket_mode(app, settings) if socket else None
    server = serve_in_thread(create_server(rt, app, socket_mode=socket), port=port)  # as `syncbot serve` does
    driver: SlackDriver = (SocketDriver(slack.socket_mode, standin) if socket
                           else SlackDriver(f"{server.url}/slack/events", SIGNING_SECRET, standin))
    try:
        yield Multi(rt, server.url, slack, driver, connected)
    finally:
        stop_all(driver.close, server.stop, rt.close, svc.close, slack.stop, socket_handler=handler, slack=slack)


@pytest.fixture()
def multi(clean_db: str, qbo: QBO, connected: Connected, services: Any) -> Iterator[Multi]:
    yield from _multi(clean_db, qbo, connected, services, socket=False)


@pytest.fixture()
def multi_socket(clean_db: str, qbo: QBO, connected: Connected, services: Any) -> Iterator[Multi]:
    yield from _multi(clean_db, qbo, connected, services, socket=True)


def _workspaces(m: Multi) -> dict[str, int]:
    with m.rt.services.sessions() as session:
        return {ws.team_id: ws.account_id for ws in session.scalars(select(Workspace))}


def _install_both(m: Multi) -> None:
    assert m.rt.install_links is not None
    page_a = m.install(TEAM_A, m.rt.install_links.mint(m.connected.account_id))
    assert page_a.status_code == 200 and "syncbot is installed" in page_a.text and "Sandbox Builders" in page_a.text
    page_b = m.install(TEAM_B)
    assert page_b.status_code == 200 and "Other Co" in page_b.text


def test_two_workspaces_install_and_each_is_bound_to_its_own_account(multi: Multi, qbo: QBO) -> None:
    _install_both(multi)
    bound = _workspaces(multi)
    assert bound[TEAM_A] == multi.connected.account_id
    assert bound[TEAM_B] != multi.connected.account_id
    with multi.rt.services.sessions() as session:
        assert session.get(Account, bound[TEAM_B]).name == "Other Co"  # a new, empty account
    assert len(multi.slack.standin.calls("oauth.v2.access")) == 2

    # each workspace talks with its own bot token
    assert "Sync errors now go to" in multi.driver.slash_command(
        "/sync-log", f"channel <#{CHANNEL_A}|sync-errors>", team_id=TEAM_A).response.text
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    multi.rt.services.engine.sync_now(multi.connected.connection_id, "U_ADMIN")
    multi.rt.notifier.deliver()
    posted = [c for c in multi.slack.standin.calls("chat.postMessage") if c.ok]
    assert posted and {c.team_id for c in posted} == {TEAM_A}
    assert any("Acme Corp" in m.text for m in multi.slack.standin.messages(CHANNEL_A))
    assert multi.slack.standin.messages(CHANNEL_B) == []

    # B reads its own (empty) log, never A's
    b_log = multi.driver.slash_command("/sync-log", "errors", team_id=TEAM_B, user_id=OWNER_B,
                                       channel_id=CHANNEL_B).response.text
    assert "Acme Corp" not in b_log


def test_workspace_b_cannot_touch_workspace_a_entries(multi: Multi, qbo: QBO) -> None:
    _install_both(multi)
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    multi.rt.services.engine.sync_now(multi.connected.connection_id, "U_ADMIN")
    with multi.rt.services.sessions() as session:
        acme = session.scalars(select(SyncLogEntry).where(SyncLogEntry.record_label == "Acme Corp")).one()
        entries_before = len(list(session.scalars(select(SyncLogEntry))))
    # B's owner crafts messages with fix buttons in B's channel and clicks them with A's entry id
    for action_id in (ids.RETRY, ids.MARK_RESOLVED, ids.UNLINK):
        crafted_blocks = [{"type": "actions", "elements": [{"type": "button", "action_id": action_id,
                                                            "value": "1", "text": {"type": "plain_text",
                                                                                   "text": "x"}}]}]
        crafted = multi.slack.standin.post_as_user(CHANNEL_B, OWNER_B, "crafted", blocks=crafted_blocks)
        result = multi.driver.click(action_id, channel_id=CHANNEL_B, message_ts=crafted.ts, user_id=OWNER_B,
                                    team_id=TEAM_B, value=str(acme.id))
        assert result.status_code == 200
    refusals = wait_for(lambda: len(multi.slack.standin.ephemerals(OWNER_B)) >= 3 and
                        multi.slack.standin.ephemerals(OWNER_B))
    assert all("not found in your account" in e.text for e in refusals)
    with multi.rt.services.sessions() as session:
        fresh = session.get(SyncLogEntry, acme.id)
        assert fresh.resolved_at is None and fresh.superseded_by_id is None
        assert len(list(session.scalars(select(SyncLogEntry)))) == entries_before
    # B's App Home shows B's account only
    b_home = multi.driver.app_home_opened(OWNER_B, team_id=TEAM_B)
    assert b_home.status_code == 200
    home = wait_for(lambda: multi.slack.standin.home_view(OWNER_B, TEAM_B))
    assert "Acme Corp" not in str(home)


def test_tokens_are_encrypted_at_rest_and_never_logged(multi: Multi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _install_both(multi)
    engine = multi.rt.services.db_engine
    for table in ("slack_installations", "slack_bots"):
        rows = raw_rows(engine, table)
        assert {r["team_id"] for r in rows} == {TEAM_A, TEAM_B}
        for row in rows:
            assert row["bot_token"] and not row["bot_token"].startswith("xox")
            assert slack_cfg.DEFAULT_BOT_TOKEN not in str(row) and TOKEN_B not in str(row)
    assert multi.rt.installations.bot_token(TEAM_B) == TOKEN_B  # decrypted on the way out
    multi.driver.slash_command("/sync-log", "status", team_id=TEAM_B, user_id=OWNER_B, channel_id=CHANNEL_B)
    for secret in (slack_cfg.DEFAULT_BOT_TOKEN, TOKEN_B, slack_oauth.CLIENT_SECRET):
        assert secret not in caplog.text


def test_forged_or_replayed_install_callbacks_change_nothing(multi: Multi) -> None:
    with httpx.Client(timeout=10) as browser:
        start = browser.get(f"{multi.url}/slack/install", params={"team": TEAM_B})
        consent = browser.get(start.headers["location"])
        back = consent.headers["location"]
        no_cookie = browser.get(back)  # another browser than the one that started
        assert no_cookie.status_code == 400 and "not installed" in no_cookie.text
        state = parse_qs(urlparse(back).query)["state"][0]
        forged = browser.get(f"{multi.url}/slack/oauth_redirect", params={"code": "x", "state": "forged"},
                             headers={"Cookie": "slack-app-oauth-state=forged"})
        assert forged.status_code == 401
        assert state
    assert _workspaces(multi) == {}
    assert raw_rows(multi.rt.services.db_engine, "slack_bots") == []
    bad_link = httpx.get(f"{multi.url}/slack/install", params={"account": f"{multi.connected.account_id}.1.x"})
    assert bad_link.status_code == 400


def test_uninstall_deletes_the_installation_and_a_reinstall_finds_the_same_account(multi: Multi) -> None:
    _install_both(multi)
    account_b = _workspaces(multi)[TEAM_B]
    assert multi.driver.event({"type": "app_uninstalled"}, team_id=TEAM_B).status_code == 200
    wait_for(lambda: multi.rt.installations.bot_token(TEAM_B) is None)
    assert {r["team_id"] for r in raw_rows(multi.rt.services.db_engine, "slack_bots")} == {TEAM_A}
    assert {r["team_id"] for r in raw_rows(multi.rt.services.db_engine, "slack_installations")} == {TEAM_A}
    multi.slack.standin.set_token_state(TEAM_B, "revoked")

    assert multi.install(TEAM_B).status_code == 200
    assert _workspaces(multi)[TEAM_B] == account_b
    assert multi.rt.installations.bot_token(TEAM_B) == TOKEN_B

    revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [slack_cfg.DEFAULT_BOT_USER_ID]}}
    assert multi.driver.event(revoked, team_id=TEAM_A).status_code == 200
    wait_for(lambda: multi.rt.installations.bot_token(TEAM_A) is None)
    assert multi.rt.installations.bot_token(TEAM_B) == TOKEN_B


def test_socket_mode_with_many_workspaces_installs_over_http_and_answers_over_the_socket(
        multi_socket: Multi, qbo: QBO) -> None:
    _install_both(multi_socket)  # /slack/install and /slack/oauth_redirect stay on HTTP in Socket Mode
    bound = _workspaces(multi_socket)
    assert bound[TEAM_A] == multi_socket.connected.account_id and bound[TEAM_B] != bound[TEAM_A]
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    multi_socket.rt.services.engine.sync_now(multi_socket.connected.connection_id, "U_ADMIN")
    a_log = str(multi_socket.driver.slash_command("/sync-log", "errors", team_id=TEAM_A).response.json())
    b_log = str(multi_socket.driver.slash_command("/sync-log", "errors", team_id=TEAM_B, user_id=OWNER_B,
                                                  channel_id=CHANNEL_B).response.json())
    assert "Acme Corp" in a_log and "Acme Corp" not in b_log  # each workspace reads its own account's log
    events = httpx.post(f"{multi_socket.url}/slack/events", content=b"command=%2Fsync-log&text=help",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert events.status_code == 503  # Slack's requests come over the socket only


def test_with_many_workspaces_requests_make_no_auth_test_after_the_first(multi: Multi) -> None:
    """Bolt authorizes each request with the workspace's stored bot token; its cache keeps the answer of
    auth.test, so five commands in each workspace cost one auth.test per workspace, not one per command."""
    _install_both(multi)
    multi.slack.standin.clear_calls()
    for _ in range(5):
        assert multi.driver.slash_command("/sync-log", "help", team_id=TEAM_A).status_code == 200
        assert multi.driver.slash_command("/sync-log", "help", team_id=TEAM_B, user_id=OWNER_B,
                                          channel_id=CHANNEL_B).status_code == 200
    assert len(multi.slack.standin.calls("auth.test")) <= 2
    multi.slack.standin.clear_calls()
    assert multi.driver.slash_command("/sync-log", "help", team_id=TEAM_A).status_code == 200
    assert multi.slack.standin.calls("auth.test") == []


def test_each_request_reads_no_bot_row_once_kept_and_an_uninstall_forgets_it(multi: Multi) -> None:
    """Bolt's authorize reads the team's bot row through SlackClients.find_bot, which keeps it as long as the
    team's clients: five commands cost at most one read of slack_bots; an uninstall drops the kept row at once."""
    from sqlalchemy import event

    _install_both(multi)
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "slack_bots" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    engine = multi.rt.services.db_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert multi.driver.slash_command("/sync-log", "help", team_id=TEAM_A).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(reads) <= 1, reads
    assert multi.rt.clients.find_bot(enterprise_id=None, team_id=TEAM_B) is not None
    assert multi.driver.event({"type": "app_uninstalled"}, team_id=TEAM_B).status_code == 200
    wait_for(lambda: multi.rt.clients.find_bot(enterprise_id=None, team_id=TEAM_B) is None)
    assert multi.rt.clients.find_bot(enterprise_id=None, team_id=TEAM_A) is not None
