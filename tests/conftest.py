"""Shared fixtures: the database (SQLite, or PostgreSQL from SYNCBOT_TEST_DATABASE_URL), the QuickBooks
stand-in served over real HTTP on loopback, and syncbot's services wired to both."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import bot.models  # noqa: F401  (the Slack side's tables)
from sandbox.slack import config as slack_cfg
from sandbox.slack.driver import SlackDriver
from sync import db
from sync.models import Base

PG_ENV = "SYNCBOT_TEST_DATABASE_URL"


def _reset_schema(url: str) -> None:
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database for the test session."""
    url = os.environ.get(PG_ENV) or f"sqlite:///{tmp_path_factory.mktemp('db') / 'syncbot-test.db'}"
    _reset_schema(url)
    db.upgrade(url)
    return url


@pytest.fixture()
def clean_db(database_url: str) -> Iterator[str]:
    """The session's database with every table emptied before the test."""
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()
    yield database_url


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return Path(__file__).parent / "fixtures"


def pytest_report_header(config: Any) -> str:
    return f"database: {'PostgreSQL (' + PG_ENV + ')' if os.environ.get(PG_ENV) else 'SQLite'}"


# ------------------------------------------------------------------------------------------ QuickBooks stand-in


@dataclass
class QBO:
    """The QuickBooks stand-in served on loopback: its base ``url`` and its state object."""

    url: str
    standin: Any
    realm: str

    def settings(self, database_url: str, **extra: Any) -> Any:
        from cryptography.fernet import Fernet

        from bot.config import Settings

        values = {
            "DATABASE_URL": database_url, "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "QBO_API_URL": self.url, "QBO_AUTH_URL": f"{self.url}/connect/oauth2",
            "QBO_TOKEN_URL": f"{self.url}/oauth2/v1/tokens/bearer",
            "QBO_REVOKE_URL": f"{self.url}/v2/oauth2/tokens/revoke",
            "QBO_REDIRECT_URI": "http://127.0.0.1:3000/oauth/quickbooks/callback",
            "QBO_TIMEOUT_SECONDS": 5.0,
        }
        values.update(extra)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def qbo_server() -> Iterator[tuple[Any, Any]]:
    from sandbox.quickbooks import create_app
    from sandbox.serve import serve_in_thread

    app = create_app()
    server = serve_in_thread(app)
    yield server, app.state.standin
    server.stop()


@pytest.fixture()
def qbo(qbo_server: tuple[Any, Any]) -> QBO:
    """The stand-in, reset to its initial state (one sandbox company)."""
    from sandbox.quickbooks import DEFAULT_REALM

    server, standin = qbo_server
    standin.reset()
    return QBO(url=server.url, standin=standin, realm=DEFAULT_REALM)


@pytest.fixture()
def services(clean_db: str, qbo: QBO) -> Iterator[Any]:
    """syncbot's services on the test database and the stand-in."""
    from bot.services import build_services

    svc = build_services(qbo.settings(clean_db), migrate=False)
    yield svc
    svc.close()


@dataclass
class Connected:
    account_id: int
    connection_id: int


def connect(services: Any, qbo: QBO, account_id: int, by: str = "U_ADMIN") -> Any:
    """Run the real OAuth authorization-code flow against the stand-in and store the tokens."""
    from sandbox.quickbooks.consent import click_connect
    from sync.connections import ensure_connection, finish_authorization

    with services.sessions() as session, session.begin():
        connection_id = ensure_connection(session, account_id).id
    callback = click_connect(services.oauth.authorization_url("test-state"), qbo.realm)
    assert callback["state"] == "test-state"
    return connection_id, finish_authorization(services.sessions, services.oauth, services.tokens,
                                               services.engine, connection_id, callback["code"],
                                               callback["realmId"], by, resume=False)


@pytest.fixture()
def connected(services: Any, qbo: QBO, fixtures_dir: Path) -> Connected:
    """An account with the demo records, connected to the stand-in's company (nothing synced yet)."""
    from sync.connections import ensure_account
    from sync.records import import_records

    with services.sessions() as session, session.begin():
        account_id = ensure_account(session, "Sandbox Builders", "America/Chicago").id
        import_records(session, account_id, json.loads((fixtures_dir / "records_demo.json").read_text()))
    connection_id, _ = connect(services, qbo, account_id)
    return Connected(account_id, connection_id)


# ------------------------------------------------------------------------------------------ the Slack app

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

    def add_duplicates(self, qbo: QBO, names: list[str]) -> None:
        """JobsiteOn contacts named ``names`` whose names QuickBooks already has: each fails as a duplicate at the
        next sync."""
        from sync.models import Contact

        with self.rt.services.sessions() as session, session.begin():
            for name in names:
                session.add(Contact(account_id=self.account_id, display_name=name))
        for name in names:
            qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": name})


def stop_all(*stops: Callable[[], Any], socket_handler: Any = None, slack: Any = None) -> None:
    """Tear a stack down: the Socket Mode client first (its socket dropped, so its reader does not wait out its
    receive timeout), then each of ``stops`` in the order given."""
    if socket_handler is not None:
        socket_handler.client.auto_reconnect_enabled = False
        if slack is not None:
            slack.socket_mode.disconnect(None)
        socket_handler.close()
    for stop in stops:
        stop()


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
    """Our server on loopback with the Slack stand-in as Slack and the QuickBooks stand-in as QuickBooks;
    the workspace is bound to the connected account."""
    from bot.app import build_app
    from bot.server import create_server
    from bot.services import build_services
    from bot.wiring import build_runtime
    from sandbox.serve import free_port, serve_in_thread
    from sandbox.slack import serve_standin

    slack = serve_standin()
    port = free_port()
    settings = qbo.settings(clean_db, SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN=slack_cfg.DEFAULT_BOT_TOKEN,
                            SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_DEFAULT_CHANNEL=CHANNEL,
                            PUBLIC_URL=f"http://127.0.0.1:{port}",
                            QBO_REDIRECT_URI=f"http://127.0.0.1:{port}/oauth/quickbooks/callback",
                            TOKEN_ENCRYPTION_KEYS=services.settings.token_encryption_keys.get_secret_value())
    svc = build_services(settings, migrate=False)
    svc.limiter = services.limiter
    rt = build_runtime(svc)
    rt.notifier.post_interval = 0.0
    rt.start_jobs()  # the jobs (Sync Now, Retry All, clicks' fixes) run in this process, as `serve` does
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


