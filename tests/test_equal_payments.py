"""Issue 14, found by trying to break it.
Two JobsiteOn payments alike in customer, date, amount and invoice, each created singly with its
answer lost (QuickBooks made both), then retried at the same moment by two `syncbot retry` processes after
QuickBooks forgot the requestids: each reads QuickBooks first and finds the same two copies."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

from sqlalchemy import select

from sync.models import Link, Payment, SyncLogEntry
from tests.batch_faults import outcomes, payment_count, seed
from tests.conftest import QBO
from tests.test_retry_all_faults import _cli_env


def test_two_equal_lost_payments_retried_at_once_after_quickbooks_forgot(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    with services.sessions() as session, session.begin():
        first, second = session.scalars(select(Payment).order_by(Payment.id)).all()
        second.contact_id, second.invoice_id = first.contact_id, first.invoice_id
        second.amount_cents, second.paid_on = first.amount_cents, first.paid_on
    qbo.standin.configure(requestid_memory_seconds=600)
    retried = []
    for err in services.engine.open_errors(cid):
        qbo.standin.lose_next(qbo.realm, 3, path_contains="payment")
        retried.append(services.engine.retry_entry(err.id, "U_ADMIN").id)
    assert payment_count(qbo) == 2, "QuickBooks made both; both answers lost"
    with services.sessions() as session, session.begin():
        for e in session.scalars(select(SyncLogEntry).where(SyncLogEntry.entity == "payment")):
            e.created_at = e.created_at - dt.timedelta(hours=2)
    qbo.standin.advance_clock(7200)
    qbo.standin.configure(latency_seconds=1.0)  # the two reads overlap
    env = _cli_env(services)
    procs = [subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "retry", str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in retried]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    qbo.standin.configure(latency_seconds=0.0)
    print("retries:", [(p.returncode, o.strip()[-160:]) for p, o in zip(procs, outs, strict=True)])
    done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                          capture_output=True, text=True, timeout=300)
    print("retry-all:", done.returncode, done.stdout.strip()[-200:])
    with services.sessions() as session:
        links = sorted(session.scalars(select(Link.remote_id).where(Link.entity == "payment")))
    live = sorted(str(p["Id"]) for p in qbo.standin.entities(qbo.realm, "Payment"))
    print("payments:", live, "linked:", links, outcomes(qbo, "payment")[-4:])
    assert len(live) == 2 and links == live, "each payment once, linked to its own copy"
    assert services.engine.open_errors(cid) == []
