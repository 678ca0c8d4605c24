"""Issue 14, found by trying to break it.
kill -9 of `syncbot retry-all` after it reconciled an old payment batch (copies found by reading
QuickBooks, a fresh requestid R2 stored, the batch re-dated) and before it recorded the outcome. The window is
held open by another transaction holding the notifications table (as a busy database would: a long report, a
VACUUM FULL, another writer); PostgreSQL only (SQLite's one write lock would stop the R2 commit too)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from sync.models import Link, PushBatch
from tests.batch_faults import leftovers, outcomes, payment_count, seed
from tests.conftest import PG_ENV, QBO
from tests.test_batch_faults_engine import _lose_batch
from tests.test_reconcile_faults import _age
from tests.test_retry_all_faults import _cli_env


@pytest.mark.skipif(not os.environ.get(PG_ENV), reason="PostgreSQL only")
def test_retry_all_killed_between_reconciling_and_recording_writes_no_payment_twice(services: Any,
                                                                                  qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    parked = _lose_batch(services, qbo, cid)  # R1: QuickBooks made both payments; the answer lost
    r1 = parked.request_id
    assert payment_count(qbo) == 2
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.advance_clock(7200)  # QuickBooks forgot R1
    _age(services, parked.id)  # and so did syncbot (3600 s)
    env = _cli_env(services)
    blocker = create_engine(services.settings.database_url)
    conn = blocker.connect()
    trans = conn.begin()
    conn.execute(text("LOCK TABLE notifications IN EXCLUSIVE MODE"))  # reads pass, writes wait
    proc = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with services.sessions() as session:
                now = session.scalar(select(PushBatch.request_id).where(PushBatch.id == parked.id))
            if now != r1 or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert now != r1, "the batch was reconciled (R2 stored)"
        time.sleep(1.0)  # it found both copies and now waits to record them
        assert proc.poll() is None, proc.communicate()[0]
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    finally:
        trans.rollback()
        conn.close()
        blocker.dispose()
    after_kill = payment_count(qbo)
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                              capture_output=True, text=True, timeout=300)
        print("$ syncbot retry-all ->", done.returncode, done.stdout.strip()[-300:], done.stderr.strip()[-300:])
    with services.sessions() as session:
        links = sorted(session.scalars(select(Link.remote_id).where(Link.entity == "payment")))
    live = sorted(str(p["Id"]) for p in qbo.standin.entities(qbo.realm, "Payment"))
    print("after kill:", after_kill, "payments:", live, "linked:", links, outcomes(qbo)[-3:], leftovers(services))
    assert len(live) == 2, f"each payment once in QuickBooks: found {live}, linked {links}"
