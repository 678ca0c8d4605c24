"""Stored batches and uncertain writes under faults (the engine in-process, against the stand-in over HTTP):
one QuickBooks write per intent, nothing lost or left stuck. Found by trying to break them; each test asserts
the promise."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from sync.models import Invoice, InvoiceLine, Link, Notification, Payment, PushBatch, SyncLogEntry
from tests.batch_faults import THROTTLE, books, leftovers, local_payment_count, outcomes, payment_count, seed
from tests.conftest import QBO


def _lose_batch(services: Any, qbo: QBO, connection_id: int) -> PushBatch:
    qbo.standin.lose_next(qbo.realm, 3, path_contains="batch")  # the client resends twice
    run = services.engine.retry_all(connection_id, "U_ADMIN")
    assert run.stopped == "unknown", run.as_dict()
    with services.sessions() as session:
        return session.scalars(select(PushBatch).where(PushBatch.settled_at.is_(None))).one()


# ---------------------------------------------------------------- D1: a resend answered 429/401 forgets the batch

def test_a_lost_payment_batch_resent_into_a_429_stays_parked_and_each_payment_is_written_once(services: Any,
                                                                                       qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=3, payments=3, fail="payments")
    parked = _lose_batch(services, qbo, cid)
    assert payment_count(qbo) == 3, "QuickBooks did the (lost) batch"
    # the next resend meets QuickBooks' throttle (429): says nothing about the first send
    qbo.standin.fail_next(qbo.realm, 1, 429, "application/xml", THROTTLE, path_contains="batch")
    services.engine.recover_pending()  # what every CLI command does first
    with services.sessions() as session:
        b = session.get(PushBatch, parked.id)
        kinds = [e.kind for e in services.engine.open_errors(cid)]
    print("batch settled_at after a 429 on resend:", b.settled_at, "member kinds:", kinds)
    services.engine.resume(cid, "U_ADMIN")  # pause over (or `syncbot resume`)
    print("payments in QuickBooks:", payment_count(qbo), "batch outcomes:", outcomes(qbo))
    assert payment_count(qbo) == 3, f"each payment once; QuickBooks has {payment_count(qbo)}"


def test_a_lost_invoice_batch_resent_into_a_401_is_settled_after_reconnect_without_duplicates(
        services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=4)
    _lose_batch(services, qbo, cid)
    qbo.standin.expire_tokens(qbo.realm, refresh=True)  # the connection expired while the batch was parked
    services.engine.recover_pending()
    with services.sessions() as session:
        unsettled = session.scalars(select(PushBatch).where(PushBatch.settled_at.is_(None))).all()
    print("unsettled batches after a 401 on resend:", len(unsettled))
    # the operator reconnects (real OAuth flow), finish_authorization resumes
    from sync.models import Connection
    from tests.conftest import connect
    with services.sessions() as session:
        account_id = session.get(Connection, cid).account_id
    connect(services, qbo, account_id)
    services.engine.resume(cid, "U_ADMIN")
    errs = services.engine.open_errors(cid)
    print("open errors after reconnect+resume:", [(e.record_label, e.kind, e.codes) for e in errs])
    print("invoice copies:", dict(books(qbo, "Invoice", "DocNumber")))
    assert errs == [], "the invoices QuickBooks made from the lost batch are linked, not refused as duplicates"


# ---------------------------------------------------------------- D2: lost single create + edit -> fresh requestid

def test_a_lost_payment_create_edited_then_retried_keeps_its_requestid_and_is_written_once(services: Any,
                                                                                         qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=1, payments=1, fail="payments")
    err = services.engine.open_errors(cid)[0]
    qbo.standin.lose_next(qbo.realm, 3, path_contains="payment")
    first = services.engine.retry_entry(err.id, "U_ADMIN")
    print("after lost answer:", first.status, first.kind, "QuickBooks payments:", payment_count(qbo))
    with services.sessions() as session, session.begin():  # JobsiteOn: the payment's amount corrected
        session.execute(update(Payment).values(amount_cents=1200))
    second = services.engine.retry_entry(first.id, "U_ADMIN")
    print("retry after edit:", second.status, "requestids:", outcomes(qbo, "payment"))
    assert payment_count(qbo) == 1, f"one payment in QuickBooks; it has {payment_count(qbo)}"


def test_a_lost_invoice_create_edited_then_retried_syncs(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=1)
    err = services.engine.open_errors(cid)[0]
    qbo.standin.lose_next(qbo.realm, 3, path_contains="invoice")
    services.engine.retry_entry(err.id, "U_ADMIN")
    with services.sessions() as session, session.begin():
        session.execute(update(InvoiceLine).values(quantity=3))
    newest = services.engine.open_errors(cid)[0]
    second = services.engine.retry_entry(newest.id, "U_ADMIN")
    print("retry after edit:", second.status, second.kind, second.codes, (second.details or "")[:160])
    assert second.status == "synced", "the invoice QuickBooks made is found (it has the same DocNumber) and updated"


# ---------------------------------------------------------------- D3: record deleted in JobsiteOn while parked

def test_a_record_deleted_while_its_batch_is_parked_does_not_block_the_batch(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=3)
    parked = _lose_batch(services, qbo, cid)
    victim = parked.items[0]["record_id"]
    with services.sessions() as session, session.begin():  # the JobsiteOn feed deletes an invoice
        session.execute(InvoiceLine.__table__.delete().where(InvoiceLine.invoice_id == victim))
        session.execute(Invoice.__table__.delete().where(Invoice.id == victim))
    for attempt in range(2):
        try:
            services.engine.recover_pending()
            print("recover_pending ok")
        except Exception as exc:
            print(f"attempt {attempt}: recover_pending raised {type(exc).__name__}: {exc}")
    print("leftovers:", leftovers(services), "batch outcomes:", outcomes(qbo))
    assert leftovers(services)["unsettled_batches"] == 0, "the batch is settled (the deleted record's item dropped)"


# ---------------------------------------------------------------- D4: Mark resolved on a parked member

def test_mark_resolved_on_a_parked_payment_keeps_its_copy_linked(services: Any, qbo: QBO) -> None:
    """A parked payment's error ("unknown") is marked resolved by hand; the resend's answer for it is then
    dropped (entry resolved: skipped), so QuickBooks' copy is never linked; the next Sync Now pulls that copy as
    a NEW JobsiteOn payment and pushes the original as a second QuickBooks payment."""
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    _lose_batch(services, qbo, cid)
    err = services.engine.open_errors(cid)[0]
    services.engine.mark_resolved(err.id, "U_ADMIN")
    run = services.engine.retry_all(cid, "U_ADMIN")  # resends the parked batch first
    print("retry_all:", run.as_dict(), leftovers(services))
    run = services.engine.sync_now(cid, "U_ADMIN")
    print("sync_now:", run.as_dict())
    with services.sessions() as session:
        links = session.scalars(select(Link).where(Link.entity == "payment")).all()
    local = local_payment_count(services)
    print("QuickBooks payments:", payment_count(qbo), "JobsiteOn payments:", local, "payment links:", len(links))
    assert payment_count(qbo) == 2 and local == 2, "each payment once on each side"


# ---------------------------------------------------------------- D5: reconcile links another record's copy

def test_reconcile_never_takes_another_records_copy(services: Any, qbo: QBO) -> None:
    """Invoice A (B-00000) is in QuickBooks. JobsiteOn renumbers A to B-00009 (not synced yet) and gives a new
    invoice B the number B-00000: B's create is refused (6140, A's copy holds the number). Retry All's batch
    answer for B is lost; later (beyond QuickBooks' memory) the batch is reconciled: B's number is looked up,
    A's copy found, and taken as B's answer; the single-write path checks _linked_elsewhere, this one does not."""
    from sync.models import Connection
    from sync.records import import_records
    from tests.batch_faults import data
    _, cid = seed(services, qbo, invoices=1)
    services.engine.retry_all(cid, "U_ADMIN")  # A synced
    with services.sessions() as session:
        account_id = session.get(Connection, cid).account_id
    d = data(1)
    d["invoices"].append({**d["invoices"][0], "ref": "INVB", "number": "B-00099"})
    with services.sessions() as session, session.begin():
        import_records(session, account_id, d)
    d["invoices"][0]["number"] = "B-00009"  # A renumbered ...
    d["invoices"][1]["number"] = "B-00000"  # ... and its old number given to B
    with services.sessions() as session, session.begin():
        import_records(session, account_id, d)
    # B's first push (alone) is refused 6140
    inv_b = max(services.engine.changed_records(cid), key=lambda t: t.record_id)
    services.engine.push_many(cid, [inv_b], "setup")
    print("B:", [(e.record_label, e.kind, e.codes) for e in services.engine.open_errors(cid)])
    qbo.standin.lose_next(qbo.realm, 3, path_contains="batch")
    services.engine.retry_all(cid, "U_ADMIN")  # B's Retry All: answer lost
    services.engine.config.requestid_memory_seconds = 0  # beyond QuickBooks' memory
    for _ in range(2):
        try:
            run = services.engine.retry_all(cid, "U_ADMIN")
            print("retry_all:", run.as_dict())
        except Exception as exc:
            print("retry_all raised", type(exc).__name__, str(exc).splitlines()[0][:200])
    print("leftovers:", leftovers(services))
    assert leftovers(services)["unsettled_batches"] == 0, "the batch is settled"


# ---------------------------------------------------------------- D6: payment batches after QuickBooks forgot


def test_a_payment_batch_resent_after_quickbooks_forgot_its_requestid_is_found_not_written_again(
        services: Any, qbo: QBO) -> None:
    """A payment has no unique name, so its copy is looked for by customer, date, amount and invoice: two
    payments whose batch answer was lost, resent two hours later (QuickBooks has forgotten the requestid), are
    linked to the copies QuickBooks made, not made again."""
    import datetime as dt
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    parked = _lose_batch(services, qbo, cid)
    assert payment_count(qbo) == 2, "QuickBooks did the (lost) batch"
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.advance_clock(7200)
    with services.sessions() as session, session.begin():
        b = session.get(PushBatch, parked.id)
        assert b is not None
        b.created_at = b.created_at - dt.timedelta(hours=2)
    services.engine.recover_pending()
    assert payment_count(qbo) == 2, "each payment is in QuickBooks once"
    with services.sessions() as session:
        linked = set(session.scalars(select(Link.remote_id).where(Link.entity == "payment")))
    assert linked == {str(p["Id"]) for p in qbo.standin.entities(qbo.realm, "Payment")}
    assert services.engine.open_errors(cid) == [] and leftovers(services)["unsettled_batches"] == 0


def test_two_equal_payments_after_quickbooks_forgot_get_one_copy_each(services: Any, qbo: QBO) -> None:
    """Two JobsiteOn payments alike in customer, date, amount and invoice: one copy found in QuickBooks is taken
    by one of them only; the other is written (a payment of its own), not linked to the same copy."""
    import datetime as dt
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    with services.sessions() as session, session.begin():
        first, second = session.scalars(select(Payment).order_by(Payment.id)).all()
        second.contact_id, second.invoice_id = first.contact_id, first.invoice_id
        second.amount_cents, second.paid_on = first.amount_cents, first.paid_on
    parked = _lose_batch(services, qbo, cid)
    assert payment_count(qbo) == 2
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.advance_clock(7200)
    with services.sessions() as session, session.begin():
        b = session.get(PushBatch, parked.id)
        assert b is not None
        b.created_at = b.created_at - dt.timedelta(hours=2)
    services.engine.recover_pending()
    with services.sessions() as session:
        linked = list(session.scalars(select(Link.remote_id).where(Link.entity == "payment")))
    assert len(linked) == len(set(linked)) == 2, "each payment linked to a copy of its own"
    assert payment_count(qbo) == 2


# ---------------------------------------------------------------- D6b: payment batch reconciled twice

def test_an_old_payment_batch_lost_again_on_resend_is_not_written_again(services: Any, qbo: QBO) -> None:
    """Realistic memory (syncbot: 3600 s). A payment batch's answer is lost; two hours later (QuickBooks forgot
    its requestid) it is reconciled (its copies found by customer, date, amount and invoice) and what is left
    resent under a fresh requestid R2, whose answer is lost too; a minute later the next run must not resend it
    under yet another fresh requestid R3, as QuickBooks surely remembers R2: batch.created_at (re-dated when R2
    was stored) decides."""
    import datetime as dt
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    parked = _lose_batch(services, qbo, cid)  # 2 payments made (R1)
    qbo.standin.configure(requestid_memory_seconds=600)
    qbo.standin.advance_clock(7200)
    with services.sessions() as session, session.begin():
        b = session.get(PushBatch, parked.id)
        b.created_at = b.created_at - dt.timedelta(hours=2)
    qbo.standin.lose_next(qbo.realm, 3, path_contains="batch")
    services.engine.recover_pending()  # reconciled: the copies found, nothing left to write under R2
    after_first = payment_count(qbo)
    services.engine.recover_pending()  # a minute later: R3
    print("payments after R1:", 2, "after R2:", after_first, "after the next resend:", payment_count(qbo))
    print("batch requests:", outcomes(qbo))
    assert payment_count(qbo) <= after_first, "a requestid sent a minute ago is reused, not replaced"


# ---------------------------------------------------------------- D7: record edited between lost batch and resend

def test_an_invoice_edited_between_its_lost_batch_and_the_resend_syncs(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=1)
    _lose_batch(services, qbo, cid)
    with services.sessions() as session, session.begin():
        session.execute(update(InvoiceLine).values(quantity=5))
    run = services.engine.retry_all(cid, "U_ADMIN")
    with services.sessions() as session:
        last = session.scalars(select(SyncLogEntry).where(SyncLogEntry.entity == "invoice")
                               .order_by(SyncLogEntry.id.desc())).first()
    print("run:", run.as_dict())
    print("entry:", last.status, last.kind, (last.details or "")[:300])
    assert last.kind != "total_mismatch", "an older version resent is not a QuickBooks total mismatch"


# ---------------------------------------------------------------- D8: resume loses a database failure

def test_resume_reports_a_database_failure(services: Any, qbo: QBO) -> None:
    from tests.test_retry_all_faults import _accept_notifications, _refuse_notifications_after
    _, cid = seed(services, qbo, invoices=60)
    _refuse_notifications_after(services, 10)
    try:
        run = services.engine.resume(cid, "U_ADMIN")
    finally:
        _accept_notifications(services)
    print("resume summary:", run.as_dict())
    assert run.failure is not None, "resume's summary says the database refused a write"


# ---------------------------------------------------------------- D9: sync-now while a payment batch is parked

def test_sync_now_does_not_pull_a_lost_batchs_payments_as_new_ones(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=2, payments=2, fail="payments")
    _lose_batch(services, qbo, cid)
    before = local_payment_count(services)
    try:
        services.engine.sync_now(cid, "U_ADMIN")  # the operator's next step: `syncbot sync-now`
    except Exception as exc:
        print("sync_now raised", type(exc).__name__, str(exc).splitlines()[0][:160])
    try:
        services.engine.recover_pending()  # what every later command does first
    except Exception as exc:
        print("recover_pending raised", type(exc).__name__, str(exc).splitlines()[0][:160])
    after = local_payment_count(services)
    print("JobsiteOn payments before/after:", before, after, "QuickBooks:", payment_count(qbo),
          "leftovers:", leftovers(services))
    assert after == before, f"JobsiteOn has {after} payments, was {before}"


def test_an_older_version_resent_is_not_called_a_total_mismatch(services: Any, qbo: QBO) -> None:
    from sync.models import Connection
    from sync.records import import_records
    from tests.batch_faults import data
    _, cid = seed(services, qbo, invoices=1)
    _lose_batch(services, qbo, cid)
    d = data(1)
    d["invoices"][0]["lines"][0]["quantity"] = "5"  # JobsiteOn: the invoice edited (re-imported)
    with services.sessions() as session, session.begin():
        account_id = session.get(Connection, cid).account_id
        import_records(session, account_id, d)
    run = services.engine.retry_all(cid, "U_ADMIN")
    with services.sessions() as session:
        session.scalars(select(SyncLogEntry).where(SyncLogEntry.entity == "invoice")
                               .order_by(SyncLogEntry.id.desc())).first()
    print("run:", run.as_dict())
    with services.sessions() as session:
        chain = [(e.id, e.status, e.kind, e.actor, (e.details or "")[:200]) for e in session.scalars(
            select(SyncLogEntry).where(SyncLogEntry.entity == "invoice").order_by(SyncLogEntry.id))]
        events = [(n.event, n.entry_id) for n in session.scalars(select(Notification).order_by(Notification.id))]
    for c in chain:
        print("entry:", c)
    print("notifications:", events)
    assert not [c for c in chain if c[2] == "total_mismatch"], "an older version resent is not a total mismatch"


def test_a_lost_customer_create_renamed_then_retried_makes_no_second_customer(
        services: Any, qbo: QBO) -> None:
    from sync.models import Connection
    from sync.records import import_records
    from tests.batch_faults import ISE, data
    _, cid = seed(services, qbo, invoices=1)
    services.engine.retry_all(cid, "U_ADMIN")
    with services.sessions() as session:
        account_id = session.get(Connection, cid).account_id
    d = data(1)
    d["contacts"].append({"ref": "CNEW", "display_name": "Brk Newco"})
    with services.sessions() as session, session.begin():
        import_records(session, account_id, d)
    qbo.standin.fail_next(qbo.realm, 1, 500, "application/json", ISE, path_contains="batch")
    services.engine.sync_now(cid, "setup")
    err = services.engine.open_errors(cid)[0]
    qbo.standin.lose_next(qbo.realm, 3, path_contains="customer")
    services.engine.retry_entry(err.id, "U_ADMIN")  # the create's answer is lost
    d["contacts"][-1]["display_name"] = "Brk Newco Ltd"  # JobsiteOn: the name corrected
    with services.sessions() as session, session.begin():
        import_records(session, account_id, d)
    newest = services.engine.open_errors(cid)[0]
    out = services.engine.retry_entry(newest.id, "U_ADMIN")
    names = sorted(c["DisplayName"] for c in qbo.standin.entities(qbo.realm, "Customer") if "Newco" in c["DisplayName"])
    print("retry:", out.status, "QuickBooks customers:", names)
    assert len(names) == 1, f"one customer for one JobsiteOn contact: {names}"
