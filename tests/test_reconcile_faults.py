"""Issue 14, found by trying to break it.
a batch reconciled after QuickBooks forgot its requestid, whose resend under the fresh requestid
(R2) is lost too. Only the members not found in QuickBooks went out under R2; the copies found by reading are
not stored anywhere. The next resend (within QuickBooks' memory of R2) sends the whole stored batch under R2:
QuickBooks answers from its memory with R2's answer, which has no item for the members found by reading."""
from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from sync.models import Link, PushBatch
from tests.batch_faults import leftovers, outcomes, payment_count, seed
from tests.conftest import QBO
from tests.test_batch_faults_engine import _lose_batch


def _age(services: Any, batch_id: int, hours: float = 2) -> None:
    with services.sessions() as session, session.begin():
        b = session.get(PushBatch, batch_id)
        assert b is not None
        b.created_at = b.created_at - dt.timedelta(hours=hours)


def test_partially_reconciled_batch_whose_resend_is_lost_writes_each_payment_once(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=3, payments=3, fail="payments")
    parked = _lose_batch(services, qbo, cid)  # R1: QuickBooks made 3 payments, the answer lost
    assert payment_count(qbo) == 3
    # someone deletes one of the three copies in QuickBooks meanwhile
    victim = qbo.standin.entities(qbo.realm, "Payment")[0]
    qbo.standin.delete_entity(qbo.realm, "Payment", str(victim["Id"]))
    assert payment_count(qbo) == 2
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.advance_clock(7200)  # QuickBooks forgot R1
    _age(services, parked.id)
    qbo.standin.lose_next(qbo.realm, 3, path_contains="batch")  # R2's answer lost too (client resends)
    services.engine.recover_pending()  # reconciled: 2 found, 1 sent under R2 (lost)
    after_r2 = payment_count(qbo)
    services.engine.recover_pending()  # a minute later, R2 remembered: the whole batch under R2
    services.engine.retry_all(cid, "U_ADMIN")  # and the operator's Retry All
    services.engine.retry_all(cid, "U_ADMIN")
    print("payments after R2:", after_r2, "now:", payment_count(qbo))
    print("batch requests:", outcomes(qbo), leftovers(services))
    with services.sessions() as session:
        links = list(session.scalars(select(Link.remote_id).where(Link.entity == "payment")))
    live = {str(p["Id"]) for p in qbo.standin.entities(qbo.realm, "Payment")}
    print("links:", links, "live:", live, "open:", [(e.record_id, e.kind, (e.details or "")[:120])
                                                      for e in services.engine.open_errors(cid)])
    assert payment_count(qbo) == 3, f"3 payments wanted in QuickBooks, found {payment_count(qbo)}"
    assert sorted(links) == sorted(live), "each payment linked to its own copy"


@pytest.mark.parametrize("deleted", [0, 1], ids=["all-found", "one-deleted-in-quickbooks"])
def test_reconciled_batch_whose_answers_cannot_be_recorded_writes_nothing_twice(services: Any, qbo: QBO,
                                                                                deleted: int) -> None:
    """The batch is reconciled (its copies found by reading QuickBooks, a fresh requestid R2 stored and the
    batch re-dated), then the database refuses to record the outcome (a full disk: the test trigger of
    tests/test_retry_all_faults.py). The README: "each record is then done, exactly as it was, or in a stored
    batch the next run sends again". The next run must not write the payments found by reading a second time."""
    from tests.test_retry_all_faults import _accept_notifications, _refuse_notifications_after

    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    parked = _lose_batch(services, qbo, cid)  # R1: QuickBooks made both payments; the answer lost
    assert payment_count(qbo) == 2
    for victim in qbo.standin.entities(qbo.realm, "Payment")[:deleted]:
        qbo.standin.delete_entity(qbo.realm, "Payment", str(victim["Id"]))
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.advance_clock(7200)
    _age(services, parked.id)
    _refuse_notifications_after(services, 0)
    try:
        with contextlib.suppress(Exception):
            print("first:", services.engine.retry_all(cid, "U_ADMIN").as_dict())
    finally:
        _accept_notifications(services)
    wanted = 2  # the deleted copy, if any, is made again: one per payment
    after_first = payment_count(qbo)
    for _ in range(2):
        print("again:", services.engine.retry_all(cid, "U_ADMIN").as_dict())
    print("payments: after first", after_first, "now", payment_count(qbo), outcomes(qbo), leftovers(services))
    with services.sessions() as session:
        links = sorted(session.scalars(select(Link.remote_id).where(Link.entity == "payment")))
    live = sorted(str(p["Id"]) for p in qbo.standin.entities(qbo.realm, "Payment"))
    assert payment_count(qbo) == wanted, f"{wanted} payments wanted in QuickBooks, found {live} (linked {links})"


def test_reconciled_invoice_batch_whose_answers_cannot_be_recorded_ends_linked_not_refused(services: Any,
                                                                                          qbo: QBO) -> None:
    """The invoice form of the above: the second write is refused by QuickBooks as a duplicate DocNumber (the
    stand-in, like a company that forbids duplicate numbers), so the books keep one copy each but the invoices
    are left as open "duplicate" errors, unlinked: issue 14's first symptom ("each needing a manual Link to
    existing")."""
    from tests.batch_faults import books
    from tests.test_retry_all_faults import _accept_notifications, _refuse_notifications_after

    _, cid = seed(services, qbo, invoices=3)
    parked = _lose_batch(services, qbo, cid)
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.advance_clock(7200)
    _age(services, parked.id)
    _refuse_notifications_after(services, 0)
    try:
        with contextlib.suppress(Exception):
            services.engine.retry_all(cid, "U_ADMIN")
    finally:
        _accept_notifications(services)
    for _ in range(2):
        services.engine.retry_all(cid, "U_ADMIN")
    opened = [(e.record_label, e.kind) for e in services.engine.open_errors(cid)]
    print("books:", dict(books(qbo, "Invoice", "DocNumber")), "open errors:", opened, outcomes(qbo)[-2:])
    assert set(books(qbo, "Invoice", "DocNumber").values()) == {1}
    assert opened == [], "each invoice linked to the copy QuickBooks holds"
