"""Issue 14, found by trying to break it.
`syncbot retry-all` SIGKILLed while it reads QuickBooks to reconcile an old payment batch (the
stand-in holds each request for its latency; the kill lands while a query is out), then run to the end."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import select

from sync.models import Link
from tests.batch_faults import leftovers, outcomes, payment_count, seed
from tests.conftest import QBO
from tests.test_batch_faults_engine import _lose_batch
from tests.test_reconcile_faults import _age
from tests.test_retry_all_faults import _cli_env


def _queries(qbo: QBO) -> int:
    return sum(1 for e in qbo.standin.request_log(qbo.realm) if "query" in e["path"])


def test_retry_all_killed_during_a_reconciliation_read_writes_each_payment_once(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=3, payments=3, fail="payments")
    parked = _lose_batch(services, qbo, cid)
    assert payment_count(qbo) == 3
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.advance_clock(7200)
    _age(services, parked.id)
    env = _cli_env(services)
    for nth in (1, 2):  # killed during the first read, then (next run) during the second
        before = _queries(qbo)
        qbo.standin.configure(latency_seconds=3.0)
        proc = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while _queries(qbo) < before + nth and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[0]
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        time.sleep(3.0)
    qbo.standin.configure(latency_seconds=0.0)
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                              capture_output=True, text=True, timeout=300)
        print("$ syncbot retry-all ->", done.returncode, done.stdout.strip()[-200:])
    with services.sessions() as session:
        links = sorted(session.scalars(select(Link.remote_id).where(Link.entity == "payment")))
    live = sorted(str(p["Id"]) for p in qbo.standin.entities(qbo.realm, "Payment"))
    print("payments:", live, "linked:", links, outcomes(qbo)[-3:], leftovers(services))
    assert live == links and len(live) == 3
    assert services.engine.open_errors(cid) == [] and leftovers(services) == {
        "pending": 0, "unsettled_batches": 0, "claims": 0}
    assert done.returncode == 0
