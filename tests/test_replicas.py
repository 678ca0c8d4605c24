"""Issue 16: several syncbot processes on one database behave like one syncbot. These tests start real
processes against one database: the migration race needs PostgreSQL (SYNCBOT_TEST_DATABASE_URL) and is skipped
on SQLite, the one-process embedded default; the roles run on both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, select, text

from tests.conftest import PG_ENV

needs_pg = pytest.mark.skipif(not os.environ.get(PG_ENV), reason="several replicas need PostgreSQL")


@pytest.fixture()
def fresh_pg() -> Iterator[str]:
    """An empty PostgreSQL database of its own on the test server (dropped afterwards): its SQLAlchemy URL."""
    from bench.replicas import fresh_database

    with fresh_database(os.environ[PG_ENV], "replicas") as url:
        yield url


@needs_pg
def test_replicas_starting_at_once_on_an_empty_database_migrate_it_once(fresh_pg: str) -> None:
    """Three `syncbot db upgrade` at once (as three replicas starting together each migrate first): every one
    ends well and the schema is at the newest revision, made once."""
    env = {**os.environ, "DATABASE_URL": fresh_pg, "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    procs = [subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "db", "upgrade"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]
    outs = [(p.returncode, out) for p in procs for out in [p.communicate(timeout=120)[0]]]
    assert [code for code, _ in outs] == [0, 0, 0], outs
    assert all("database is up to date" in out for _, out in outs), outs
    from alembic.script import ScriptDirectory

    from sync.db import alembic_config
    head = ScriptDirectory.from_config(alembic_config(fresh_pg)).get_current_head()
    engine = create_engine(fresh_pg)
    try:
        with engine.connect() as conn:
            assert list(conn.execute(text("select version_num from alembic_version")).scalars()) == [head]
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------------ roles


def _serve(stack: Any, *roles: str, port: int, verbose: bool = False) -> subprocess.Popen[str]:
    from tests.test_retry_all_faults import _cli_env

    s = stack.rt.settings
    env = {**_cli_env(stack.rt.services), "SLACK_API_URL": s.slack_api_url,
           "SLACK_BOT_TOKEN": s.slack_bot_token.get_secret_value(),
           "SLACK_SIGNING_SECRET": s.slack_signing_secret.get_secret_value(),
           "SLACK_DEFAULT_CHANNEL": s.slack_default_channel or "", "SCHEDULER_LEASE_SECONDS": "1",
           "PYTHONUNBUFFERED": "1"}
    args = [a for r in roles for a in ("--role", r)]
    return subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", *(["-v"] if verbose else []),
                             "serve", "--host",
                             "127.0.0.1", "--port", str(port), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


def test_a_worker_process_delivers_and_answers_no_requests(stack: Any, qbo: Any) -> None:
    """`syncbot serve --role worker`: the sync error waiting in the outbox reaches the channel through it, and it
    listens on no port (Slack's requests go to the web processes)."""
    from sandbox.serve import free_port
    from tests.conftest import wait_for

    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    assert not any("Acme Corp" in m["text"] for m in stack.messages())
    port = free_port()
    worker = _serve(stack, "worker", port=port)
    try:
        wait_for(lambda: any("Acme Corp" in m["text"] for m in stack.messages()), timeout=30)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        out = _stop(worker)
    assert "running as worker" in out, out


def test_a_web_process_answers_slack_and_leaves_delivery_to_the_workers(stack: Any, qbo: Any) -> None:
    """`syncbot serve --role web` answers a signed slash command; the error it leaves in the outbox is delivered
    once a worker runs."""
    from sandbox.serve import free_port
    from sandbox.slack.driver import SlackDriver
    from tests.conftest import SIGNING_SECRET, wait_for

    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    port = free_port()
    web = _serve(stack, "web", port=port)
    try:
        wait_for(lambda: _answers(port), timeout=30)
        driver = SlackDriver(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, stack.slack.standin)
        try:
            assert "Acme Corp" in driver.slash_command("/sync-log", "errors").response.text
        finally:
            driver.close()
        assert not any("Acme Corp" in m["text"] for m in stack.messages()), "the web process delivered"
        worker = _serve(stack, "worker", port=free_port())
        try:
            wait_for(lambda: any("Acme Corp" in m["text"] for m in stack.messages()), timeout=30)
        finally:
            _stop(worker)
    finally:
        _stop(web)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


# ------------------------------------------------------------------------------------------------ one budget


def test_three_processes_share_one_quickbooks_budget_and_meet_no_429(services: Any, qbo: Any) -> None:
    """Three `syncbot retry-all` at once on one company whose QuickBooks takes 60 request units a (1-second)
    minute: the budget is counted in the database, so together they stay under it and QuickBooks refuses none
    (each counting its own would spend three times the limit); every invoice is in QuickBooks once."""
    from collections import Counter

    from tests.batch_faults import seed
    from tests.test_retry_all_faults import _cli_env

    seed(services, qbo, invoices=180)
    # QuickBooks and syncbot both count 60 units a (1-second) minute, with no margin: a unit counts in syncbot's
    # window until a minute after its answer came back, so however loaded the machine, QuickBooks has stamped it
    # more than a minute before the next request that needs its room (three budgets of their own would spend 180)
    qbo.standin.configure(requests_per_minute=60, minute_seconds=1.0)
    env = {**_cli_env(services), "QBO_REQUESTS_PER_MINUTE": "60", "QBO_LIMIT_MINUTE_SECONDS": "1",
           "QBO_LIMIT_MARGIN": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outs = [out for p in procs for out in [p.communicate(timeout=300)[0]]]
    assert qbo.standin.stats(qbo.realm)["throttled"] == 0, outs
    copies = Counter(str(i["DocNumber"]) for i in qbo.standin.entities(qbo.realm, "Invoice"))
    assert len(copies) == 180 and set(copies.values()) == {1}, outs


@needs_pg
def test_three_retry_alls_of_3000_records_stay_within_the_companys_minute_and_write_each_once(
        services: Any, qbo: Any) -> None:
    """The issue's scale: 3,000 failing invoices of one company whose QuickBooks takes 500 request units a
    (1-second) minute; three `syncbot retry-all` processes at once on one PostgreSQL. QuickBooks refuses none
    (429s: 0), no window of QuickBooks' ever held more than the limit, and every invoice is in QuickBooks once."""
    from collections import Counter

    from tests.batch_faults import seed
    from tests.test_retry_all_faults import _cli_env

    services.limiter.config.minute_seconds = 1.0  # the setup's own syncs spend the same shrunk minute
    _, connection_id = seed(services, qbo, invoices=3000)
    qbo.standin.configure(requests_per_minute=500, minute_seconds=1.0)
    before = qbo.standin.stats(qbo.realm)
    env = {**_cli_env(services), "QBO_REQUESTS_PER_MINUTE": "500", "QBO_LIMIT_MINUTE_SECONDS": "1",
           "QBO_LIMIT_MARGIN": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outs = [out for p in procs for out in [p.communicate(timeout=600)[0]]]
    after = qbo.standin.stats(qbo.realm)
    assert after["throttled"] == before["throttled"] == 0, outs
    assert after["window_peak"] <= 500, after
    copies = Counter(str(i["DocNumber"]) for i in qbo.standin.entities(qbo.realm, "Invoice"))
    assert len(copies) == 3000 and set(copies.values()) == {1}, outs
    assert services.engine.open_errors(connection_id) == [], outs  # and every one is synced


# ------------------------------------------------------------------------------------------------ delivery


@needs_pg
def test_three_replicas_deliver_a_burst_together_and_post_each_message_once(stack: Any) -> None:
    """Twelve accounts, each in a channel of its own, record five sync errors each (as the engine records them:
    the entry and its outbox row together). Three `syncbot serve --role worker` on one PostgreSQL deliver them
    together (each topic claimed by one replica at a time, each channel's pace kept in the database): every
    process posts some, every error has one message, and no message is posted twice."""
    from collections import Counter

    from bot.models import Workspace
    from sandbox.serve import free_port
    from sandbox.slack import config as slack_cfg
    from sync.engine import record_topic
    from sync.models import Account, Connection, ConnectionStatus, Notification, SyncLogEntry, utcnow
    from tests.conftest import wait_for

    channels = [f"CBURST{i:04d}" for i in range(12)]
    with stack.rt.services.sessions() as session, session.begin():
        for n, channel in enumerate(channels):
            stack.slack.standin.add_channel(slack_cfg.DEFAULT_TEAM_ID, channel, f"syncs-{n}", bot_member=True,
                                            members=[slack_cfg.OWNER_USER_ID])
            account = Account(name=f"Builders {n}", timezone="America/Chicago")
            session.add(account)
            session.flush()
            session.add(Workspace(team_id=f"TBURST{n:04d}", account_id=account.id, channel_id=channel))
            conn = Connection(account_id=account.id, realm_id=f"9130BURST{n:04d}",
                              status=ConnectionStatus.CONNECTED.value)
            session.add(conn)
            session.flush()
            for record_id in range(1, 6):
                entry = SyncLogEntry(account_id=account.id, connection_id=conn.id, entity="contact",
                                     record_id=record_id,
                                     record_label=f"Client {n}-{record_id}", direction="push", status="error",
                                     kind="duplicate", details="The name supplied already exists.",
                                     codes="6240", http_status=400, attempt=1, actor="test", created_at=utcnow())
                session.add(entry)
                session.flush()
                session.add(Notification(account_id=account.id, topic=record_topic(conn.id, "contact", record_id),
                                         event="error", entry_id=entry.id, created_at=utcnow()))
    workers = [_serve(stack, "worker", port=free_port(), verbose=True) for _ in range(3)]
    try:
        def pending() -> int:
            with stack.rt.services.sessions() as session:
                return session.scalar(select(func.count()).select_from(Notification).where(
                    Notification.delivered_at.is_(None))) or 0
        wait_for(lambda: pending() == 0, timeout=120)
    finally:
        outs = [_stop(w) for w in workers]
    posts = [c for c in stack.slack.standin.calls("chat.postMessage") if c.ok and c.params.get("channel") in channels]
    assert len(posts) == 60, (Counter(c.params.get("channel") for c in posts), [o[-3000:] for o in outs])
    for channel in channels:
        texts = [m.text for m in stack.slack.standin.messages(channel)]
        assert len(texts) == 5 and len(set(texts)) == 5, texts
    posted_by = [out.count("event=slack_posted") for out in outs]
    assert sum(posted_by) == 60 and all(n > 0 for n in posted_by), posted_by
