"""The context cases of tests/fixtures/qbo_replies.json (real QuickBooks replies) through the engine: the
reply is served by the stand-in exactly as QuickBooks sent it, and the engine ends with the log entry the
case names."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sync.diagnosis import KINDS, Kind
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
    assert entry.data["ours"] == {"subtotal": "4495.16", "total": "4943.56", "tax": "448.40", "rate": "9.975"}
    assert entry.data["theirs"] == {"subtotal": "4495.16", "total": "4943.55", "tax": "448.39", "rate": "9.975"}
    assert entry.data["tax_difference"] == "-0.01"


# ------------------------------------------------------------------------------------------ batch answers
# Kinds of batch answer a breaking review sent (issue 7), served by the stand-in to a real Retry All: the log
# entries are what the diagnosis decided for each bId.

DUP_FAULT = {"Error": [{"Message": "Duplicate Name Exists Error", "Detail": "The name supplied already exists.",
                        "code": "6240", "element": "DisplayName"}], "type": "ValidationFault"}
KEYS = [f"b{i}" for i in range(4)]  # the engine's bIds for a chunk of up to four records


def _ok(key: str) -> dict[str, Any]:
    return {"bId": key, "Customer": {"Id": f"90{key[1:]}", "SyncToken": "0", "DisplayName": f"Fake {key}"}}


def _two_duplicates(services: Any, qbo: QBO, connected: Connected) -> list[int]:
    """Two contacts that fail as duplicates, then renamed in QuickBooks so that a true retry would sync them."""
    names = ["Batch Client A", "Batch Client B"]
    with services.sessions() as session, session.begin():
        contacts = [Contact(account_id=connected.account_id, display_name=n) for n in names]
        session.add_all(contacts)
        session.flush()
        ids = [c.id for c in contacts]
    existing = [qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": n})["Id"] for n in names]
    services.engine.sync_now(connected.connection_id, "U_ADMIN")
    for remote_id, name in zip(existing, names, strict=True):
        qbo.standin.update_entity(qbo.realm, "Customer", remote_id, {"DisplayName": f"{name} (old)"})
    return ids


def _latest(services: Any, contact_ids: list[int]) -> list[tuple[str, str | None]]:
    with services.sessions() as session:
        out = []
        for cid in contact_ids:
            entry = session.scalars(select(SyncLogEntry).where(SyncLogEntry.entity == "contact",
                                                               SyncLogEntry.record_id == cid)
                                    .order_by(SyncLogEntry.id.desc())).first()
            out.append((entry.status, entry.kind))
        return out


@pytest.mark.parametrize(
    ("items", "kind"),
    [
        ([item for k in KEYS for item in (_ok(k), {"bId": k, "Fault": DUP_FAULT})], "duplicate"),
        ([item for k in KEYS for item in ({"bId": k, "Fault": DUP_FAULT}, _ok(k))], "duplicate"),
        ([{"bid": k, "fault": {"error": [{"message": "Duplicate Name Exists Error", "code": 6240}]}} for k in KEYS]
         + [_ok(k) for k in KEYS], "duplicate"),
        ([{"bId": k} for k in KEYS], "unknown"),
        ([{"bId": k, "Customer": None} for k in KEYS], "unknown"),
        ([_ok("zz")], "unknown"),
    ],
    ids=["ok-then-fault", "fault-then-ok", "lower-case-fault-then-ok", "neither-object-nor-fault", "null-object",
         "bids-missing"],
)
def test_batch_answers_record_each_bids_worst_outcome(services: Any, qbo: QBO, connected: Connected,
                                                      items: list[dict[str, Any]], kind: str) -> None:
    contact_ids = _two_duplicates(services, qbo, connected)
    assert _latest(services, contact_ids) == [("error", "duplicate")] * 2
    qbo.standin.fail_next(qbo.realm, 1, status=200, content_type="application/json",
                          body=json.dumps({"BatchItemResponse": items, "time": "2025-05-05T06:24:09.669-07:00"}),
                          path_contains="batch")
    services.engine.retry_all(connected.connection_id, "U_ADMIN")
    assert _latest(services, contact_ids) == [("error", kind)] * 2  # never "synced" on a Fault or on nothing
    with services.sessions() as session:  # no record was linked to an object QuickBooks did not create
        remote_ids = set(session.scalars(select(Link.remote_id).where(Link.entity == "contact")).all())
        assert not remote_ids & {"900", "901", "902", "903"}


@pytest.mark.parametrize(
    ("status", "content_type", "body", "kind"),
    [
        (500, "application/json", json.dumps({"BatchItemResponse": [_ok(k) for k in KEYS]}), "unknown"),
        (400, "application/json", json.dumps({"Fault": {"Error": [{"Message": "Batch size exceeds allowed limit",
                                                                   "code": "1040"}], "type": "ValidationFault"}}),
         "unknown"),
        (200, "application/json", json.dumps({"Fault": {"Error": [], "type": "ValidationFault"}}), "unknown"),
    ],
    ids=["500-with-ok-items", "400-batch-too-large", "200-fault-without-errors"],
)
def test_a_failed_batch_envelope_is_every_records_outcome(services: Any, qbo: QBO, connected: Connected,
                                                          status: int, content_type: str, body: str,
                                                          kind: str) -> None:
    contact_ids = _two_duplicates(services, qbo, connected)
    qbo.standin.fail_next(qbo.realm, 3, status=status, content_type=content_type, body=body, path_contains="batch")
    services.engine.retry_all(connected.connection_id, "U_ADMIN")
    assert _latest(services, contact_ids) == [("error", kind)] * 2
    with services.sessions() as session:
        entries = session.scalars(select(SyncLogEntry).where(SyncLogEntry.entity == "contact",
                                                             SyncLogEntry.record_id.in_(contact_ids))
                                  .order_by(SyncLogEntry.id.desc()).limit(2)).all()
        assert all(e.kind != "validation" for e in entries)  # 1040 is not the record's field to fill


# ------------------------------------------------------------------------------------------ variants
# Variants of each kind (tests/fixtures/qbo_variants.json, those marked "engine"), served by the stand-in as the
# answer to one record's write, bytes as they are (charsets included): the log entry is the variant's kind.

VARIANTS = [v for v in json.loads((Path(__file__).parent / "fixtures" / "qbo_variants.json").read_text())
            if v.get("engine")]


@pytest.mark.parametrize("variant", VARIANTS, ids=[v["id"] for v in VARIANTS])
def test_a_variant_through_the_engine_ends_as_its_kind(services: Any, qbo: QBO, connected: Connected,
                                                       variant: dict[str, Any]) -> None:
    with services.sessions() as session, session.begin():
        contact = Contact(account_id=connected.account_id, display_name="Summit Roofing")
        session.add(contact)
        session.flush()
        contact_id = contact.id
    # more answers than the client's resends and its refresh-once: the answer stands
    qbo.standin.fail_next(qbo.realm, 10, status=variant["http_status"], content_type=variant["content_type"],
                          body=variant["body"].encode(variant.get("encoding") or "utf-8"), path_contains="customer",
                          headers=variant.get("headers"))
    entry = services.engine.sync_record(connected.connection_id, "contact", contact_id, "U_ADMIN")
    assert entry is not None
    assert entry.kind in variant["acceptable_kinds"], entry.details
    assert entry.status == KINDS[Kind(entry.kind)].status  # failed, with its kind's one severity
    assert entry.details and len(entry.details) <= 2000
    if entry.kind == "unknown":
        assert entry.field is None
