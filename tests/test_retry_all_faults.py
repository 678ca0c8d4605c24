"""`syncbot retry-all` killed with SIGKILL at random points, then run to the end: every failing invoice is written
to QuickBooks exactly once, none is lost or left "Retrying…", on SQLite and on PostgreSQL.

Real processes (the CLI, as an operator runs it) against the QuickBooks stand-in over HTTP; each request takes a
while (the stand-in's latency), so the kills land while batches are out: QuickBooks does the work and the answer
never reaches the process that sent it."""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from sync.models import Invoice, Link, PushBatch, RecordClaim, Status, SyncLogEntry, utcnow
from tests.batch_faults import wide_budget
from tests.conftest import QBO, connect

INVOICES = 240
#: QBO-39: QuickBooks' 500 InternalServerError, which makes the first push of every invoice fail.
INTERNAL_SERVER_ERROR = (
    '{"fault":{"error":[{"message":"message=InternalServerError; errorCode=003100; statusCode=500",'
    '"detail":null,"code":"3100","element":null}],"type":"SERVICE"},"time":1519164488680}')


def _records(invoices: int) -> dict[str, Any]:
    return {
        "account": {"name": "Kill Builders", "timezone": "UTC"},
        "contacts": [{"ref": f"C{i}", "display_name": f"Kill Customer {i:03d}"} for i in range(20)],
        "items": [{"ref": f"I{j}", "name": f"Kill Service {j}", "unit_price": "45.50", "income_account": "79"}
                  for j in range(3)],
        "invoices": [{"ref": f"INV{k}", "number": f"K-{k:05d}", "contact": f"C{k % 20}", "issue_date": "2026-11-02",
                      "tax_rate": "8.25", "lines": [{"item": f"I{k % 3}", "quantity": str(1 + k % 4),
                                                     "rate": "45.50", "tax_code": "TAX"}]}
                     for k in range(invoices)],
    }


def _cli_env(services: Any) -> dict[str, str]:
    s = services.settings
    return {**os.environ, "DATABASE_URL": s.database_url,
            "TOKEN_ENCRYPTION_KEYS": s.token_encryption_keys.get_secret_value(),
            "QBO_API_URL": s.qbo_api_url, "QBO_AUTH_URL": s.qbo_auth_url, "QBO_TOKEN_URL": s.qbo_token_url,
            "QBO_REVOKE_URL": s.qbo_revoke_url, "QBO_LIMIT_MINUTE_SECONDS": "1", "QBO_TIMEOUT_SECONDS": "30",
            "LOG_LEVEL": "ERROR"}  # a child's pipe is read when it ends: only errors (`-v` asks for INFO)


def _retry_all(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _batches_sent(qbo: QBO) -> int:
    return sum(1 for e in qbo.standin.request_log(qbo.realm) if e["path"].strip("/") == "batch")


def _seed(services: Any, qbo: QBO, invoices: int) -> tuple[int, int]:
    """An account whose contacts and items are in QuickBooks and whose ``invoices`` invoices each have an open
    error (their first push met QuickBooks' 500). Returns (account id, connection id)."""
    from sync.connections import ensure_account
    from sync.records import import_records

    qbo.standin.configure(minute_seconds=1.0)  # the throttle is not what these tests are about
    data = _records(invoices)
    with services.sessions() as session, session.begin():
        account_id = ensure_account(session, "Kill Builders", "UTC").id
        import_records(session, account_id, {**data, "invoices": []})
    connection_id, _ = connect(services, qbo, account_id)
    assert services.engine.sync_now(connection_id, "setup").errors == 0
    with services.sessions() as session, session.begin():
        import_records(session, account_id, data)
    qbo.standin.fail_next(qbo.realm, math.ceil(invoices / 30), 500, "application/json", INTERNAL_SERVER_ERROR,
                          path_contains="batch")
    with wide_budget(services):
        services.engine.sync_now(connection_id, "setup")
    assert len(services.engine.open_errors(connection_id)) == invoices
    return account_id, connection_id


@pytest.fixture()
def failing_invoices(services: Any, qbo: QBO) -> tuple[int, int]:
    return _seed(services, qbo, INVOICES)


def _copies(qbo: QBO) -> Counter[str]:
    """How many times each invoice number is in QuickBooks' books."""
    return Counter(str(inv.get("DocNumber")) for inv in qbo.standin.entities(qbo.realm, "Invoice"))


def test_a_member_of_a_batch_whose_answer_was_lost_is_not_written_a_second_way(services: Any, qbo: QBO) -> None:
    """QuickBooks did the batch but its answer was lost (a gateway 504). Retry on one of its invoices sends the
    stored batch again first, under its requestid (QuickBooks answers from its memory): the invoice is synced
    from that answer, not created a second time by a single write."""
    _, connection_id = _seed(services, qbo, 5)
    qbo.standin.lose_next(qbo.realm, 5, path_contains="batch")  # the client resends too
    run = services.engine.retry_all(connection_id, "U_ADMIN")
    assert run.stopped == "unknown", "no answer: the run stops there"
    assert sorted(_copies(qbo).values()) == [1] * 5, "QuickBooks did the work"
    with services.sessions() as session:
        parked = session.scalars(select(PushBatch).where(PushBatch.settled_at.is_(None))).one()
    assert parked.owner == "" and len(parked.items) == 5, "kept, members and all, to be sent again"
    errors = services.engine.open_errors(connection_id)
    assert len(errors) == 5 and all(e.kind == "unknown" and e.batch_id == parked.id for e in errors)

    retried = services.engine.retry_entry(errors[0].id, "U_ADMIN")
    assert retried.status == "synced"
    assert services.engine.open_errors(connection_id) == [], "the batch's answer settled every member"
    assert sorted(_copies(qbo).values()) == [1] * 5, "nothing written twice"
    assert [e["outcome"] for e in qbo.standin.request_log(qbo.realm) if e["path"].strip("/") == "batch"][-1] \
        == "replayed"


def test_a_batch_older_than_quickbooks_memory_is_reconciled_by_reading_first(services: Any, qbo: QBO) -> None:
    """The lost batch is sent again only after QuickBooks has forgotten its requestid: syncbot looks each invoice
    up by its number before writing, and links the copy it finds instead of making a second one."""
    _, connection_id = _seed(services, qbo, 4)
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.lose_next(qbo.realm, 5, path_contains="batch")  # the client resends too
    services.engine.retry_all(connection_id, "U_ADMIN")
    qbo.standin.advance_clock(3600)  # QuickBooks forgot the requestid
    services.engine.config.requestid_memory_seconds = 0  # and syncbot knows it may have

    run = services.engine.retry_all(connection_id, "U_ADMIN")
    assert services.engine.open_errors(connection_id) == [], run.as_dict()
    assert sorted(_copies(qbo).values()) == [1] * 4, "each invoice once: found by its number, linked"
    with services.sessions() as session:
        links = {lk.remote_id for lk in session.scalars(select(Link).where(Link.entity == "invoice"))}
    assert links == {str(inv["Id"]) for inv in qbo.standin.entities(qbo.realm, "Invoice")}
    batches = [e["outcome"] for e in qbo.standin.request_log(qbo.realm) if e["path"].strip("/") == "batch"]
    assert "replayed" not in batches, "not sent again: read first"


def test_retry_all_killed_at_random_points_writes_each_invoice_once(services: Any, qbo: QBO,
                                                                   failing_invoices: tuple[int, int]) -> None:
    account_id, connection_id = failing_invoices
    env = _cli_env(services)
    qbo.standin.configure(latency_seconds=0.15)  # batches are out long enough for a kill to land during one
    rng = random.Random(14)
    kills = 0
    outputs: list[str] = []
    for _ in range(5):
        before = _batches_sent(qbo)
        proc = _retry_all(env)
        target = before + rng.randint(1, 3)
        deadline = time.monotonic() + 60
        while proc.poll() is None and _batches_sent(qbo) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.12))  # somewhere inside the request, or just after its answer
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        outputs.append(proc.communicate(timeout=30)[0])
    assert kills >= 3, f"the kills landed while retry-all ran: {outputs}"

    qbo.standin.configure(latency_seconds=0.0)
    for _ in range(3):  # then run to the end, as an operator would
        done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            break
    assert done.returncode == 0, done.stdout + done.stderr

    books = _copies(qbo)
    twice = {number: n for number, n in books.items() if n > 1}
    assert twice == {}, f"written to QuickBooks more than once: {twice}"
    assert sum(books.values()) == INVOICES, "every invoice is in QuickBooks"
    with services.sessions() as session:
        linked = session.scalar(select(func.count()).select_from(Link).where(
            Link.connection_id == connection_id, Link.entity == "invoice"))
        invoices = session.scalar(select(func.count()).select_from(Invoice).where(Invoice.account_id == account_id))
        pending = session.scalar(select(func.count()).select_from(SyncLogEntry).where(
            SyncLogEntry.status == Status.PENDING))
        open_batches = session.scalar(select(func.count()).select_from(PushBatch).where(
            PushBatch.settled_at.is_(None)))
        claims = session.scalar(select(func.count()).select_from(RecordClaim))
    assert (linked, invoices) == (INVOICES, INVOICES), "every invoice linked to its one copy"
    assert services.engine.open_errors(connection_id) == [], "no error left open"
    assert (pending, open_batches, claims) == (0, 0, 0), "nothing left Retrying…, unsent or claimed"
    replayed = [e for e in qbo.standin.request_log(qbo.realm) if e["outcome"] == "replayed"]
    assert replayed, "a batch cut short was sent again under its requestid and answered from QuickBooks' memory"


def _refuse_notifications_after(services: Any, resolved: int) -> None:
    """A real database error from the middle of a run on: the database refuses to insert an outbox notification
    once ``resolved`` resolutions are in it (a trigger, as a full disk or a dropped connection would refuse)."""
    from sqlalchemy import text

    with services.db_engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text(
                "CREATE TRIGGER refuse_notifications BEFORE INSERT ON notifications WHEN (SELECT count(*) FROM "
                f"notifications WHERE event = 'resolved') >= {resolved} BEGIN SELECT RAISE(ABORT, "
                "'disk full (a test trigger)'); END"))
        else:
            conn.execute(text(
                "CREATE FUNCTION refuse_notifications() RETURNS trigger AS $$ BEGIN IF (SELECT count(*) FROM "
                f"notifications WHERE event = 'resolved') >= {resolved} THEN RAISE EXCEPTION "
                "'disk full (a test trigger)'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER refuse_notifications BEFORE INSERT ON notifications FOR EACH ROW "
                              "EXECUTE FUNCTION refuse_notifications()"))


def _accept_notifications(services: Any) -> None:
    from sqlalchemy import text

    with services.db_engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS refuse_notifications" + (
            "" if conn.dialect.name == "sqlite" else " ON notifications")))
        if conn.dialect.name != "sqlite":
            conn.execute(text("DROP FUNCTION IF EXISTS refuse_notifications()"))


def test_a_database_error_mid_run_stops_it_saying_so_and_the_next_run_finishes_without_writing_twice(
        services: Any, qbo: QBO) -> None:
    _, connection_id = _seed(services, qbo, 120)
    _refuse_notifications_after(services, 30)
    try:
        run = services.engine.retry_all(connection_id, "U_ADMIN")
    finally:
        _accept_notifications(services)
    assert run.failure is not None and "disk full" in run.failure, run.as_dict()
    assert 30 <= run.synced < 120
    with services.sessions() as session:
        linked = set(session.scalars(select(Link.record_id).where(Link.entity == "invoice")))
        entries = list(session.scalars(select(SyncLogEntry).where(SyncLogEntry.entity == "invoice",
                                                                  SyncLogEntry.superseded_by_id.is_(None))))
    # each invoice done (synced, linked) or exactly as it was (its error open), or in a batch kept to send again
    for entry in entries:
        assert (entry.status == "synced" and entry.record_id in linked) or (
            entry.status == "error" and entry.actor == "setup" and entry.record_id not in linked) or (
            entry.status == "pending" and entry.batch_id is not None), (entry.status, entry.actor)
    assert set(_copies(qbo).values()) <= {1}

    again = services.engine.retry_all(connection_id, "U_ADMIN")
    assert again.failure is None and services.engine.open_errors(connection_id) == [], again.as_dict()
    assert sorted(_copies(qbo).values()) == [1] * 120, "every invoice once"
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SyncLogEntry).where(
            SyncLogEntry.status == Status.PENDING)) == 0


def _owner_of(pid: int) -> str:
    from sync.engine import claim_owner

    host, boot, _pid, rand = claim_owner().split("/")
    return f"{host}/{boot}/{pid}/{rand}"


def test_retry_all_drops_a_dead_processs_claims_and_says_what_a_live_one_holds(services: Any, qbo: QBO) -> None:
    """A process killed after claiming records but before writing their attempts: its claims do not make the
    CLI skip those records for the 5-minute lease. A record a live process holds is not tried, and the run says
    how many and why and exits 1 instead of 0."""
    _, connection_id = _seed(services, qbo, 3)
    errors = services.engine.open_errors(connection_id)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        with services.sessions() as session, session.begin():
            for entry, owner in ((errors[0], _owner_of(dead.pid)), (errors[1], _owner_of(alive.pid))):
                session.add(RecordClaim(connection_id=connection_id, entity=entry.entity,
                                        record_id=entry.record_id, owner=owner, claimed_at=utcnow()))
        env = _cli_env(services)
        done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "synced 2," in done.stdout
        assert "1 record not tried: 1 being synced by another process. Run the command again" in done.stdout
        assert [e.record_id for e in services.engine.open_errors(connection_id)] == [errors[1].record_id]
    finally:
        alive.kill()
        alive.wait()
    done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "synced 1," in done.stdout, done.stdout + done.stderr
    assert services.engine.open_errors(connection_id) == []
