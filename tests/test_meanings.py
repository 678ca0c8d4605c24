"""One code, several meanings, through the engine and into Slack (issue 15, point 10): a reply of QuickBooks
whose words give its code another meaning is logged with that meaning, and the record's message in the channel
says that meaning's cause and fix and offers its buttons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.blocks import ids
from sync.models import Contact, Invoice, Link, SyncLogEntry
from tests.conftest import CHANNEL, QBO, Connected, Stack, wait_for


def meaning_case(fixtures_dir: Path, case_id: str) -> dict[str, Any]:
    return next(c for c in json.loads((fixtures_dir / "qbo_meanings.json").read_text()) if c["id"] == case_id)


def buttons(message: dict[str, Any]) -> list[str]:
    return [el["action_id"] for b in message["blocks"] if b["type"] == "actions" for el in b["elements"]]


def test_a_6000_about_the_closing_date_is_logged_as_a_closed_period(services: Any, qbo: QBO,
                                                                    connected: Connected, fixtures_dir: Path) -> None:
    reply = meaning_case(fixtures_dir, "M-6000-CLOSED")
    services.engine.sync_now(connected.connection_id, "U_ADMIN")
    with services.sessions() as session, session.begin():
        invoice = session.scalars(select(Invoice).where(Invoice.number == "JS-1001")).one()
        invoice.due_date = invoice.due_date.replace(day=20)  # edited in JobsiteOn: the next sync sends it
        invoice_id = invoice.id
    qbo.standin.fail_next(qbo.realm, 1, status=reply["http_status"], content_type=reply["content_type"],
                          body=reply["body"], path_contains="invoice")
    entry = services.engine.sync_record(connected.connection_id, "invoice", invoice_id, "U_ADMIN")
    assert entry is not None
    assert (entry.status, entry.kind, entry.field) == ("error", "closed_period", None)
    assert "closing date of the books" in (entry.details or "")


def test_an_invoice_whose_customer_was_made_inactive_is_fixed_by_reactivating_it(stack: Stack, qbo: QBO) -> None:
    engine = stack.rt.services.engine
    engine.sync_now(stack.connection_id, "U_ADMIN")
    with stack.rt.services.sessions() as session, session.begin():
        contact = session.scalars(select(Contact).where(Contact.display_name == "Riverside Dental")).one()
        customer_id = session.scalars(select(Link.remote_id).where(Link.entity == "contact",
                                                                   Link.record_id == contact.id)).one()
        invoice = session.scalars(select(Invoice).where(Invoice.number == "JS-1001")).one()
        invoice.due_date = invoice.due_date.replace(day=20)
        invoice_id = invoice.id
    qbo.standin.delete_entity(qbo.realm, "Customer", customer_id)  # QuickBooks makes a customer inactive

    entry = engine.sync_record(stack.connection_id, "invoice", invoice_id, "U_ADMIN")
    assert entry is not None and (entry.kind, (entry.data or {}).get("meaning")) == ("not_found", "inactive_reference")
    with stack.rt.services.sessions() as session:  # the customer is not taken for deleted: nothing re-creates it
        assert not session.scalars(select(Link).where(Link.entity == "contact",
                                                      Link.remote_id == customer_id)).one().remote_deleted

    stack.deliver()
    card = wait_for(lambda: next((m for m in stack.messages() if "JS-1001" in m["text"]), None))
    text = json.dumps(card["blocks"])
    assert "Uses an inactive record" in text
    assert "Reactivate that record in QuickBooks, or choose another one in JobsiteOn" in text
    assert stack.driver.click(ids.ENTRY_DETAILS, channel_id=CHANNEL, message_ts=card["ts"]).status_code == 200
    details = wait_for(lambda: stack.slack.standin.open_views())
    assert "Riverside Dental" in json.dumps(details[-1])  # the details (behind Details) name the inactive customer
    assert ids.RETRY in buttons(card)
    assert ids.RECREATE not in buttons(card) and ids.UNLINK not in buttons(card)

    qbo.standin.restore_entity(qbo.realm, "Customer", customer_id)  # reactivated in QuickBooks
    assert stack.driver.click(ids.RETRY, channel_id=CHANNEL, message_ts=card["ts"]).status_code == 200

    def synced() -> Any:
        stack.deliver()
        return ":white_check_mark: *Synced*" in json.dumps(stack.message(card["ts"])["blocks"])

    wait_for(synced)
    customers = [c for c in qbo.standin.entities(qbo.realm, "Customer") if c["DisplayName"].startswith(
        "Riverside Dental")]
    assert len(customers) == 1  # reactivated, never re-created
    with stack.rt.services.sessions() as session:
        newest = session.scalars(select(SyncLogEntry).where(SyncLogEntry.record_id == invoice_id,
                                                            SyncLogEntry.entity == "invoice")
                                 .order_by(SyncLogEntry.id.desc())).first()
        assert newest is not None and newest.status == "synced"


def test_each_meanings_card_says_its_cause_and_fix_and_offers_its_buttons() -> None:
    import datetime as dt

    from bot.blocks.messages import error_message
    from sync.diagnosis import MEANINGS

    labels = {ids.RETRY: "Retry", ids.FILL_FIELD: "Fill in", ids.RECREATE: "Re-create", ids.UNLINK: "Unlink"}
    for key, meaning in MEANINGS.items():
        entry = SyncLogEntry(id=7, created_at=dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC), account_id=1,
                             connection_id=1, entity="item" if key == "inactive_choice" else "invoice", record_id=3,
                             record_label="JS-1001",
                             direction="push", status="error", kind=meaning.kind.value, attempt=1,
                             field={"duplicate_number": "DocNumber", "too_long": "DocNumber",
                                    "inactive_choice": "IncomeAccountRef"}.get(key),
                             details="QuickBooks' words", data={"meaning": key})
        msg = error_message(entry)
        text = json.dumps(msg["blocks"])
        assert meaning.title in text and meaning.cause in text and meaning.fix in text, key
        shown = [a for a in buttons(msg) if a in labels]
        assert shown == [{"retry": ids.RETRY, "fill_field": ids.FILL_FIELD}[a.value] for a in meaning.actions], key
        assert ids.RECREATE not in shown and ids.UNLINK not in shown
