"""kill -9 at chosen moments (the stand-in's latency holds each request open; the kill lands once the request is
in the stand-in's log of requests begun... we poll its request log / stats), then the command run again."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from typing import Any

from sync.models import PushBatch
from tests.batch_faults import leftovers, outcomes, payment_count, seed
from tests.conftest import QBO
from tests.test_batch_faults_cli import cli
from tests.test_batch_faults_engine import _lose_batch
from tests.test_retry_all_faults import _cli_env


def _kill_when(services: Any, qbo: QBO, args: list[str], path: str, wait_after: float = 0.5) -> None:
    """Start `syncbot ARGS`, wait until the stand-in has begun a request whose path contains PATH (its stats of
    requests in flight), then SIGKILL it (timed: see below)."""
    proc = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", *args], env=_cli_env(services),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    before = len([e for e in qbo.standin.request_log(qbo.realm) if path in e["path"]])
    # the stand-in logs a request when it ends: start-up takes ~1.5 s, then the request is held for the latency
    # (4 s); the kill at 3.5 s lands while it is out (the stand-in still does the work)
    time.sleep(wait_after)
    os.kill(proc.pid, signal.SIGKILL)
    out = proc.communicate()[0]
    print(f"killed `syncbot {' '.join(args)}` (rc {proc.returncode}); output: {out.strip()[-200:]!r}; "
          f"matching requests before: {before}")


def test_kill_a_single_payment_retry_mid_create_then_retry(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=1, payments=1, fail="payments")
    err = services.engine.open_errors(cid)[0]
    qbo.standin.configure(latency_seconds=4.0)
    _kill_when(services, qbo, ["retry", str(err.id)], "payment", wait_after=3.5)  # start-up ~1.5 s, then 4 s out
    time.sleep(4.0)
    qbo.standin.configure(latency_seconds=0.0)
    print("payments after the kill:", payment_count(qbo))
    cli(services, "retry", str(err.id))
    newest = services.engine.open_errors(cid)
    if newest:
        cli(services, "retry", str(newest[0].id))
    print("payment requests:", outcomes(qbo, "payment"), leftovers(services))
    assert payment_count(qbo) == 1


def test_kill_during_the_resend_of_a_parked_payment_batch(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    _lose_batch(services, qbo, cid)
    qbo.standin.configure(latency_seconds=4.0)
    _kill_when(services, qbo, ["retry-all"], "batch", wait_after=3.5)
    time.sleep(4.0)
    qbo.standin.configure(latency_seconds=0.0)
    r = cli(services, "retry-all")
    print("batch requests:", outcomes(qbo), leftovers(services), "payments:", payment_count(qbo))
    assert payment_count(qbo) == 2 and r.returncode == 0


def test_kill_during_the_reconciled_resend_of_an_old_payment_batch(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    parked = _lose_batch(services, qbo, cid)
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.advance_clock(7200)
    with services.sessions() as session, session.begin():
        b = session.get(PushBatch, parked.id)
        b.created_at = b.created_at - dt.timedelta(hours=2)
    qbo.standin.configure(latency_seconds=4.0)
    _kill_when(services, qbo, ["retry-all"], "batch", wait_after=3.5)
    time.sleep(4.0)
    after_kill = payment_count(qbo)
    qbo.standin.configure(latency_seconds=0.0)
    cli(services, "retry-all")
    print("payments: 2 -> after killed resend", after_kill, "-> after next run", payment_count(qbo))
    print("batch requests:", outcomes(qbo), leftovers(services))
    assert payment_count(qbo) <= after_kill


def test_kill_a_single_payment_retry_mid_create_then_retry_all(services: Any, qbo: QBO) -> None:
    """As K1, but the operator then runs `syncbot retry-all` (not `retry N`): the record goes out in a batch under
    the batch's fresh requestid, not the interrupted attempt's: QuickBooks makes a second payment."""
    _, cid = seed(services, qbo, invoices=1, payments=1, fail="payments")
    err = services.engine.open_errors(cid)[0]
    qbo.standin.configure(latency_seconds=4.0)
    _kill_when(services, qbo, ["retry", str(err.id)], "payment", wait_after=3.5)
    time.sleep(4.0)
    qbo.standin.configure(latency_seconds=0.0)
    print("payments after the kill:", payment_count(qbo))
    cli(services, "retry-all")
    print("requests:", outcomes(qbo, ""), leftovers(services))
    assert payment_count(qbo) == 1, f"QuickBooks has {payment_count(qbo)} payments"


def test_kill_a_single_invoice_retry_mid_create_then_retry_all(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=1)
    err = services.engine.open_errors(cid)[0]
    qbo.standin.configure(latency_seconds=4.0)
    _kill_when(services, qbo, ["retry", str(err.id)], "invoice", wait_after=3.5)
    time.sleep(4.0)
    qbo.standin.configure(latency_seconds=0.0)
    r = cli(services, "retry-all")
    errs = services.engine.open_errors(cid)
    print("open errors:", [(e.record_label, e.kind, e.codes) for e in errs])
    assert r.returncode == 0 and not errs
