"""Retry All, Sync Now, Retry and Resume under faults through the CLI, as an operator runs it (real processes
against the stand-in over HTTP)."""
from __future__ import annotations

import subprocess
import sys
from typing import Any

from sqlalchemy import update

from sync.models import Invoice, InvoiceLine, PushBatch
from tests.batch_faults import leftovers, local_payment_count, outcomes, payment_count, seed
from tests.conftest import QBO
from tests.test_batch_faults_engine import _lose_batch
from tests.test_retry_all_faults import _accept_notifications, _cli_env, _refuse_notifications_after


def cli(services: Any, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args], env=_cli_env(services),
                          capture_output=True, text=True, timeout=300)
    tail = (done.stdout + done.stderr).strip().splitlines()
    print(f"$ syncbot {' '.join(args)}  -> exit {done.returncode}")
    for line in ([*tail[:3], "...", *tail[-4:]]) if len(tail) > 8 else tail:
        print("    " + line[:220])
    return done


def test_cli_sync_now_with_a_parked_payment_batch(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    _lose_batch(services, qbo, cid)
    before = local_payment_count(services)
    a = cli(services, "sync-now")
    b = cli(services, "retry-all")
    cli(services, "sync-log", "errors")
    after = local_payment_count(services)
    print("JobsiteOn payments:", before, "->", after, "QuickBooks payments:", payment_count(qbo),
          "leftovers:", leftovers(services))
    assert "Traceback" not in a.stderr + b.stderr and after == before


def test_cli_record_deleted_while_parked(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=3)
    parked = _lose_batch(services, qbo, cid)
    victim = parked.items[0]["record_id"]
    with services.sessions() as session, session.begin():
        session.execute(InvoiceLine.__table__.delete().where(InvoiceLine.invoice_id == victim))
        session.execute(Invoice.__table__.delete().where(Invoice.id == victim))
    runs = [cli(services, "retry-all"), cli(services, "sync-now"), cli(services, "retry-all")]
    replayed = [o for o in outcomes(qbo) if o[0] == "replayed"]
    print("replays of the parked batch:", len(replayed), "leftovers:", leftovers(services))
    assert runs[-1].returncode == 0, "the operator can finish"


def test_cli_database_error_during_the_start_up_resend_is_a_plain_message(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=30)
    _lose_batch(services, qbo, cid)  # a parked batch of 30
    _refuse_notifications_after(services, 0)  # the database refuses (disk full) from now on
    try:
        runs = [cli(services, "retry-all"), cli(services, "sync-now")]
    finally:
        _accept_notifications(services)
    assert all("Traceback" not in r.stdout + r.stderr for r in runs), "a plain message, not a traceback"


def test_cli_a_tampered_stored_batch_is_not_sent_and_not_a_traceback(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=3)
    parked = _lose_batch(services, qbo, cid)
    items = [dict(it) for it in parked.items]
    del items[0]["key"]
    with services.sessions() as session, session.begin():
        session.execute(update(PushBatch).where(PushBatch.id == parked.id).values(items=items))
    runs = [cli(services, "retry-all"), cli(services, "retry", "1"), cli(services, "sync-log", "errors")]
    assert all("Traceback" not in r.stdout + r.stderr for r in runs)


def test_cli_resume_reports_a_database_failure(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=60)
    _refuse_notifications_after(services, 10)
    try:
        r = cli(services, "resume")
    finally:
        _accept_notifications(services)
    print("leftovers:", leftovers(services), "open errors:", len(services.engine.open_errors(cid)))
    assert r.returncode == 1, "the database refused a write: exit 1 saying so"


def test_cli_retry_one_record_while_its_batch_is_parked_and_quickbooks_is_down(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=3)
    _lose_batch(services, qbo, cid)
    err = services.engine.open_errors(cid)[0]
    qbo.standin.fail_next(qbo.realm, 20, 503, "text/html", "<html>503 Service Unavailable</html>")
    r1 = cli(services, "retry", str(err.id))
    r2 = cli(services, "retry-all")
    cli(services, "sync-log", "errors")
    print("leftovers:", leftovers(services))
    assert r1.returncode == 1 and r2.returncode == 1


def test_cli_retry_with_a_database_error_is_a_plain_message(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=1)
    err = services.engine.open_errors(cid)[0]
    _refuse_notifications_after(services, 0)
    try:
        r = cli(services, "retry", str(err.id))
    finally:
        _accept_notifications(services)
    print("leftovers:", leftovers(services))
    cli(services, "retry", str(err.id))
    cli(services, "retry-all")
    assert "Traceback" not in r.stdout + r.stderr


def test_cli_sync_now_when_the_start_up_resend_meets_a_503(services: Any, qbo: QBO) -> None:
    """As C1, but QuickBooks' gateway answers 503 to the start-up resend (the client's 3 tries): the batch is
    parked, the pull then runs and takes the lost batch's payments for new ones made in QuickBooks."""
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    _lose_batch(services, qbo, cid)
    before = local_payment_count(services)
    qbo.standin.fail_next(qbo.realm, 3, 503, "text/html", "<html>503</html>", path_contains="batch")
    a = cli(services, "sync-now")
    b = cli(services, "retry-all")
    after = local_payment_count(services)
    print("JobsiteOn payments:", before, "->", after, "QuickBooks payments:", payment_count(qbo),
          "leftovers:", leftovers(services))
    assert "Traceback" not in a.stderr + b.stderr and after == before


def test_cli_sync_now_after_a_lost_single_payment_create(services: Any, qbo: QBO) -> None:
    """`syncbot retry N` of a payment: QuickBooks makes it, the answer is lost. The operator then runs
    `syncbot sync-now`: its pull finds an unlinked QuickBooks payment and imports it as a NEW JobsiteOn payment;
    its push then resends the original create (same requestid: QuickBooks replays) and cannot link the answer
    (links.remote_id is unique), and every later run fails the same way."""
    _, cid = seed(services, qbo, invoices=1, payments=1, fail="payments")
    err = services.engine.open_errors(cid)[0]
    qbo.standin.lose_next(qbo.realm, 3, path_contains="payment")
    cli(services, "retry", str(err.id))
    before = local_payment_count(services)
    cli(services, "sync-now")
    cli(services, "sync-now")
    cli(services, "retry-all")
    after = local_payment_count(services)
    print("JobsiteOn payments:", before, "->", after, "QuickBooks payments:", payment_count(qbo),
          "leftovers:", leftovers(services), "open errors:",
          [(e.record_label, e.kind, (e.details or "")[:80]) for e in services.engine.open_errors(cid)])
    assert after == before


def test_cli_lost_single_payment_create_then_retry_all(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=1, payments=1, fail="payments")
    err = services.engine.open_errors(cid)[0]
    qbo.standin.lose_next(qbo.realm, 3, path_contains="payment")
    cli(services, "retry", str(err.id))
    cli(services, "retry-all")
    print("QuickBooks payments:", payment_count(qbo), "requests:", outcomes(qbo, ""))
    assert payment_count(qbo) == 1


def test_cli_a_lost_batch_answer_is_told_as_such_and_the_next_run_says_it_sent_it_again(services: Any,
                                                                                      qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=30)
    qbo.standin.lose_next(qbo.realm, 3, path_contains="batch")
    first = cli(services, "retry-all")
    assert first.returncode == 1
    assert "QuickBooks did not answer" in first.stdout and "nothing is written twice" in first.stdout
    second = cli(services, "retry-all")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "sent again 1 batch whose answer was lost" in second.stdout
    assert services.engine.open_errors(cid) == [] and leftovers(services) == {
        "pending": 0, "unsettled_batches": 0, "claims": 0}
