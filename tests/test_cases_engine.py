"""The context cases of ../shared/cases/qbo_replies.json (copied to tests/fixtures) through the engine: the
reply is served by the stand-in exactly as QuickBooks sent it, and the engine ends with the log entry the
case names."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sync.models import Contact, Invoice, InvoiceLine, Item, Link, SyncLogEntry
from tests.conftest import QBO, Connected


def case(fixtures_dir: Path, case_id: str) -> dict[str, Any]:
    return next(c for c in json.loads((fixtures_dir / "qbo_replies.json").read_text()) if c["id"] == case_id)


def test_qbo23_cdc_with_a_deleted_linked_invoice_is_not_found(services: Any, qbo: QBO, connected: Connected,
                                                              fixtures_dir: Path) -> None:
    reply = case(fixtures_dir, "QBO-23")
    services.engine.sync_now(connected.connection_id, "U_ADMIN")
    with services.sessions() as session, session.begin():
        link = session.scalars(select(Link).where(Link.entity == "invoice")).one()
        link.remote_id = reply["context"]["linked_record"]["qbo_id"]  # the case's invoice is ours
    qbo.standin.fail_next(qbo.realm, 1, status=reply["http_status"], content_type=reply["content_type"],
                          body=reply["body"], path_contains="cdc")
    summary = services.engine.pull(connected.connection_id, "U_ADMIN")
    assert summary.stopped is None
    with services.sessions() as session:
        [entry] = session.scalars(select(SyncLogEntry).where(SyncLogEntry.direction == "pull",
                                                             SyncLogEntry.entity == "invoice")).all()
        assert (entry.status, entry.kind, entry.record_label) == ("error", "not_found", "JS-1001")
        assert session.scalars(select(Link).where(Link.entity == "invoice")).one().remote_deleted
        # the Account in the same answer is not ours and changes nothing
        assert session.scalars(select(SyncLogEntry).where(SyncLogEntry.direction == "pull")).all() == [entry]


def test_qbo32_totals_recomputed_by_quickbooks_is_total_mismatch(services: Any, qbo: QBO, connected: Connected,
                                                                 fixtures_dir: Path) -> None:
    reply = case(fixtures_dir, "QBO-32")
    ours = reply["context"]["ours"]
    with services.sessions() as session, session.begin():  # the invoice of the case, as JobsiteOn has it
        contact = session.scalars(select(Contact).where(Contact.display_name == "Riverside Dental")).one()
        item = session.scalars(select(Item).where(Item.name == "Framing labor")).one()
        invoice = Invoice(account_id=connected.account_id, number="JS-2044", contact_id=contact.id,
                          issue_date=__import__("datetime").date(2021, 3, 18), tax_rate=Decimal("9.975"),
                          subtotal_cents=449516, tax_cents=int(Decimal(str(ours["TotalTax"])) * 100),
                          total_cents=int(Decimal(str(ours["TotalAmt"])) * 100))
        invoice.lines = [InvoiceLine(position=1, item_id=item.id, quantity=Decimal("1"), rate_cents=449516,
                                     tax_code="TAX")]
        session.add(invoice)
        session.flush()
        invoice_id = invoice.id
    services.engine.sync_now(connected.connection_id, "U_ADMIN")
    qbo.standin.fail_next(qbo.realm, 1, status=reply["http_status"], content_type=reply["content_type"],
                          body=reply["body"], path_contains="invoice")
    with services.sessions() as session, session.begin():
        session.get(Invoice, invoice_id).due_date = __import__("datetime").date(2021, 4, 18)
    entry = services.engine.sync_record(connected.connection_id, "invoice", invoice_id, "U_ADMIN")
    assert entry is not None and (entry.status, entry.kind) == ("warning", "total_mismatch")
    assert entry.data["ours"] == {"total": "4943.56", "tax": "448.40"}
    assert entry.data["theirs"] == {"total": "4943.55", "tax": "448.39"}
    assert entry.data["tax_difference"] == "-0.01"
