"""Issue 14, found by trying to break it.
a single payment create whose answer was lost, then the payment corrected in JobsiteOn (amount,
or date), retried after QuickBooks forgot the requestid. The README: "a create keeps its requestid even when the
record was edited meanwhile ... so is a single create retried that long after its answer was lost" (read first).
The read looks for the copy by the *current* customer, date and amount, which the edit changed."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from sync.models import Link, Payment, SyncLogEntry
from tests.batch_faults import outcomes, payment_count, seed
from tests.conftest import QBO


@pytest.mark.parametrize("edit", [{}, {"amount_cents": 1200}, {"paid_on": dt.date(2026, 11, 21)}],
                         ids=["unedited", "amount", "date"])
def test_lost_single_payment_create_edited_then_retried_after_quickbooks_forgot(services: Any, qbo: QBO,
                                                                                 edit: dict[str, Any]) -> None:
    _, cid = seed(services, qbo, invoices=1, payments=1, fail="payments")
    err = services.engine.open_errors(cid)[0]
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.lose_next(qbo.realm, 3, path_contains="payment")
    first = services.engine.retry_entry(err.id, "U_ADMIN")
    assert payment_count(qbo) == 1, "QuickBooks made it; the answer was lost"
    with services.sessions() as session, session.begin():
        if edit:
            session.execute(update(Payment).values(**edit))  # JobsiteOn: the payment corrected
        # two hours pass (syncbot's clock: the attempts are older than its requestid memory of 3600 s)
        for e in session.scalars(select(SyncLogEntry).where(SyncLogEntry.entity == "payment")):
            e.created_at = e.created_at - dt.timedelta(hours=2)
    qbo.standin.advance_clock(7200)  # and QuickBooks forgot the requestid
    second = services.engine.retry_entry(first.id, "U_ADMIN")
    print("retry:", second.status, second.kind, "requests:", outcomes(qbo, "payment"))
    with services.sessions() as session:
        links = list(session.scalars(select(Link.remote_id).where(Link.entity == "payment")))
    print("QuickBooks payments:", [(p["Id"], p.get("TotalAmt"), p.get("TxnDate"))
                                   for p in qbo.standin.entities(qbo.realm, "Payment")], "links:", links)
    assert payment_count(qbo) == 1, f"one payment in QuickBooks; it has {payment_count(qbo)}"


def test_payment_edited_while_its_lost_batch_waited_then_resent_after_quickbooks_forgot(services: Any,
                                                                                       qbo: QBO) -> None:
    """The batch path of the same: a payment batch's answer lost, one payment's amount corrected in JobsiteOn, the
    batch resent two hours later (reconciled by reading), then Retry All."""
    from tests.test_batch_faults_engine import _lose_batch
    from tests.test_reconcile_faults import _age

    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    parked = _lose_batch(services, qbo, cid)
    assert payment_count(qbo) == 2
    with services.sessions() as session, session.begin():
        first = session.scalars(select(Payment).order_by(Payment.id)).first()
        first.amount_cents = 1200
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.advance_clock(7200)
    _age(services, parked.id)
    print("recover:", services.engine.recover_pending())
    print("run 1:", services.engine.retry_all(cid, "U_ADMIN").as_dict())
    print("run 2:", services.engine.retry_all(cid, "U_ADMIN").as_dict())
    print("sync-now:", services.engine.sync_now(cid, "U_ADMIN").as_dict())
    print("open:", [(e.record_id, e.kind, (e.details or "")[:200]) for e in services.engine.open_errors(cid)])
    print("QuickBooks payments:", [(p["Id"], p.get("TotalAmt")) for p in qbo.standin.entities(qbo.realm, "Payment")],
          "requests:", outcomes(qbo, ""))
    assert payment_count(qbo) == 2
    amounts = sorted(float(p["TotalAmt"]) for p in qbo.standin.entities(qbo.realm, "Payment"))
    assert amounts == [10.0, 12.0], "the edit was sent as an update of the copy"


def test_lost_single_invoice_create_renumbered_then_retried_after_quickbooks_forgot(services: Any,
                                                                                  qbo: QBO) -> None:
    """The same for an invoice found by its DocNumber: the number corrected in JobsiteOn while the create's
    answer was lost; retried after QuickBooks forgot the requestid."""
    from sync.models import Invoice
    from tests.batch_faults import books

    _, cid = seed(services, qbo, invoices=1)
    err = services.engine.open_errors(cid)[0]
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.lose_next(qbo.realm, 3, path_contains="invoice")
    first = services.engine.retry_entry(err.id, "U_ADMIN")
    assert len(qbo.standin.entities(qbo.realm, "Invoice")) == 1
    with services.sessions() as session, session.begin():
        session.execute(update(Invoice).values(number="B-00000-A"))
        for e in session.scalars(select(SyncLogEntry).where(SyncLogEntry.entity == "invoice")):
            e.created_at = e.created_at - dt.timedelta(hours=2)
    qbo.standin.advance_clock(7200)
    second = services.engine.retry_entry(first.id, "U_ADMIN")
    print("retry:", second.status, second.kind, "books:", dict(books(qbo, "Invoice", "DocNumber")))
    assert len(qbo.standin.entities(qbo.realm, "Invoice")) == 1, dict(books(qbo, "Invoice", "DocNumber"))
