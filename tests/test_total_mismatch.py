"""A total mismatch resolved in Slack (issue 15, point 4): the card's figures side by side, and its fixes end to end
against the QuickBooks stand-in over real HTTP: Keep QuickBooks' totals, Send JobsiteOn's tax and retry, Mark
resolved, Open in QuickBooks.

The demo's invoice JS-1001: 750.45 taxable, JobsiteOn taxes it at 8.25 % (61.91, total 812.36), QuickBooks'
automated sales tax at 8.875 % (66.60, total 817.05).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.blocks import error_message, ids
from sandbox.quickbooks.rules import AST_TAX_CODE
from sandbox.slack import config as slack_cfg
from sandbox.slack.blockkit import validate_blocks
from sync.diagnosis import diagnose_totals
from sync.engine import ConnectionUnavailable, NotFound, NothingToRetry
from sync.models import Invoice, Link, SyncLogEntry
from sync.records import recompute_invoice
from tests.conftest import CHANNEL, QBO, Connected, Stack, wait_for


def mismatch(services: Any, connected: Connected, qbo: QBO) -> SyncLogEntry:
    """Sync with QuickBooks' automated sales tax at 8.875 %: JS-1001's open total mismatch."""
    qbo.standin.set_tax(qbo.realm, True, 8.875)
    services.engine.sync_now(connected.connection_id, "U_ADMIN")
    found = [e for e in services.engine.open_errors(connected.connection_id) if e.record_label == "JS-1001"]
    assert [(e.status, e.kind) for e in found] == [("warning", "total_mismatch")]
    return found[0]


def qbo_invoice(qbo: QBO) -> dict[str, Any]:
    [invoice] = [o for o in qbo.standin.entities(qbo.realm, "Invoice") if o["DocNumber"] == "JS-1001"]
    return invoice


def local_invoice(services: Any) -> Invoice:
    with services.sessions() as session:
        invoice = session.scalars(select(Invoice).where(Invoice.number == "JS-1001")).one()
        session.expunge(invoice)
        return invoice


def invoice_link(services: Any) -> Link:
    with services.sessions() as session:
        link = session.scalars(select(Link).where(Link.entity == "invoice")).one()
        session.expunge(link)
        return link


def record_entries(services: Any) -> list[SyncLogEntry]:
    with services.sessions() as session:
        return list(session.scalars(select(SyncLogEntry).where(SyncLogEntry.record_label == "JS-1001")
                                    .order_by(SyncLogEntry.id)))


# ------------------------------------------------------------------------------------------------ the card


def visible(msg: dict[str, Any]) -> str:
    out = []
    for block in msg["blocks"]:
        if block["type"] == "section":
            out += [block["text"]["text"]] if "text" in block else [f["text"] for f in block["fields"]]
        elif block["type"] == "context":
            out += [el["text"] for el in block["elements"]]
    return "\n".join(out)


def buttons(msg: dict[str, Any]) -> list[str]:
    return [el["text"]["text"] for b in msg["blocks"] if b["type"] == "actions" for el in b["elements"]]


def button_named(msg: dict[str, Any], name: str) -> dict[str, Any]:
    return next(el for b in msg["blocks"] if b["type"] == "actions" for el in b["elements"]
                if el["text"]["text"] == name)


def test_the_card_shows_both_sides_line_by_line_with_each_tax_rate() -> None:
    reply = {"Invoice": {"Id": "130", "TotalAmt": 817.05, "TxnTaxDetail": {
        "TxnTaxCodeRef": {"value": "2"}, "TotalTax": 66.60,
        "TaxLine": [{"Amount": 66.60, "DetailType": "TaxLineDetail",
                     "TaxLineDetail": {"PercentBased": True, "TaxPercent": 8.875, "NetAmountTaxable": 750.45}}]},
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 650.00},
                 {"DetailType": "SalesItemLineDetail", "Amount": 100.45}]}}
    diag = diagnose_totals(Decimal("812.36"), Decimal("61.91"), reply,
                           [("Framing labor x 10", Decimal("650.00")), ("Drywall sheet x 7", Decimal("100.45"))],
                           ours_rate=Decimal("8.250"))
    assert diag is not None
    data = {**diag.data, "web_url": "https://app.qbo.intuit.com/app/invoice?txnId=130"}
    entry = SyncLogEntry(id=41, created_at=dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC), account_id=1,
                         connection_id=7, entity="invoice", record_id=3, record_label="JS-1001", direction="push",
                         status="warning", kind="total_mismatch", details=diag.details, data=data, attempt=1)
    msg = error_message(entry, tz="America/Chicago")
    assert validate_blocks(msg["blocks"], "message") == []
    seen = visible(msg)
    assert ("*Tax* JobsiteOn 61.91 at 8.25 % · QuickBooks 66.60 at 8.875 % (+4.69)\n"
            "*Total* JobsiteOn 812.36 · QuickBooks 817.05 (+4.69) · "
            "<https://app.qbo.intuit.com/app/invoice?txnId=130|Open in QuickBooks>") in seen  # a link
    assert "Lines that differ" not in seen  # the lines agree: only the tax differs
    assert buttons(msg) == ["Keep QuickBooks' totals", "Send JobsiteOn's tax and retry", "Mark resolved",
                            "Details", "View log"]
    keep = button_named(msg, "Keep QuickBooks' totals")
    assert (keep["action_id"], keep["value"], keep["style"]) == (ids.KEEP_PROVIDER_TOTALS, "41", "primary")
    assert keep["confirm"]["text"]["text"] == ("JobsiteOn's invoice JS-1001 takes QuickBooks' tax 66.60 (8.875 %) "
                                               "and total 817.05. QuickBooks is not changed.")
    send = button_named(msg, "Send JobsiteOn's tax and retry")
    assert (send["action_id"], send["value"]) == (ids.SEND_OWN_TAX, "41")
    assert "JobsiteOn's tax 61.91 stated" in send["confirm"]["text"]["text"]


def test_the_card_lists_the_lines_that_differ() -> None:
    reply = {"TotalAmt": 108.00, "TxnTaxDetail": {"TotalTax": 7.00},
             "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 101.00},
                      {"DetailType": "SalesItemLineDetail", "Amount": 0.00, "LineNum": 2}]}
    diag = diagnose_totals(Decimal("107.00"), Decimal("7.00"), reply, [("Framing labor x 1", Decimal("100.00"))],
                           ours_rate=Decimal("7"))
    assert diag is not None
    entry = SyncLogEntry(id=5, entity="invoice", record_label="JS-7", status="warning", kind="total_mismatch",
                         data=dict(diag.data), attempt=1, connection_id=7)
    seen = visible(error_message(entry))
    assert "*Subtotal* JobsiteOn 100.00 · QuickBooks 101.00 (+1.00)" in seen
    assert "*Tax* 7.00 at 7 % · QuickBooks" not in seen and "*Tax* JobsiteOn 7.00 at 7 % · QuickBooks 7.00" in seen
    assert ("*Lines that differ*\n• Framing labor x 1: JobsiteOn 100.00 · QuickBooks 101.00\n"
            "• A line only in QuickBooks: 0.00") in seen
    assert "Open in QuickBooks" not in buttons(error_message(entry))  # no page named: no link


def test_a_mismatch_quickbooks_refused_offers_retry_instead_of_keeping_its_totals() -> None:
    entry = SyncLogEntry(id=6, entity="invoice", record_label="JS-8", status="error", kind="total_mismatch",
                         details="6070: Amount calculation incorrect", codes="6070", attempt=1, connection_id=7)
    assert buttons(error_message(entry)) == ["Send JobsiteOn's tax and retry", "Retry", "Mark resolved", "Details",
                                             "View log"]


# ------------------------------------------------------------------------------------------------ the stand-in


def test_quickbooks_keeps_a_tax_stated_with_its_tax_code(services: Any, qbo: QBO, connected: Connected) -> None:
    """Automated sales tax ignores a TotalTax sent alone and keeps one sent with TxnTaxCodeRef, through later
    updates that do not touch the tax; one that sends the tax without the code is computed again."""
    qbo.standin.set_tax(qbo.realm, True, 8.875)
    customer = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Tax Test"})
    item = qbo.standin.create_entity(qbo.realm, "Item", {"Name": "Labor", "IncomeAccountRef": {"value": "79"}})
    line = {"Amount": 100.00, "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": 100,
                                    "TaxCodeRef": {"value": "TAX"}}}
    token = qbo.standin.issue_tokens(qbo.realm)["access_token"]

    def post(body: dict[str, Any]) -> dict[str, Any]:
        resp = httpx.post(f"{qbo.url}/v3/company/{qbo.realm}/invoice", json=body, params={"minorversion": "75"},
                          headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        assert resp.status_code == 200, resp.text
        return resp.json()["Invoice"]

    alone = post({"CustomerRef": {"value": customer["Id"]}, "Line": [line], "TxnTaxDetail": {"TotalTax": 7.00}})
    assert (alone["TxnTaxDetail"]["TotalTax"], alone["TotalAmt"]) == (8.88, 108.88)  # computed: 8.875 %
    assert alone["TxnTaxDetail"]["TxnTaxCodeRef"] == {"value": AST_TAX_CODE}  # the code AST assigned
    stated = post({"Id": alone["Id"], "SyncToken": alone["SyncToken"], "sparse": True,
                   "TxnTaxDetail": {"TxnTaxCodeRef": {"value": AST_TAX_CODE}, "TotalTax": 7.00}})
    assert (stated["TxnTaxDetail"]["TotalTax"], stated["TotalAmt"]) == (7.0, 107.0)
    renamed = post({"Id": alone["Id"], "SyncToken": stated["SyncToken"], "sparse": True, "DocNumber": "T-2"})
    assert renamed["TotalAmt"] == 107.0  # an update of other fields keeps the stated tax
    again = post({"Id": alone["Id"], "SyncToken": renamed["SyncToken"], "sparse": True,
                  "TxnTaxDetail": {"TotalTax": 7.00}})
    assert again["TotalAmt"] == 108.88  # the tax sent without its code: computed again


def test_the_invoice_page_of_quickbooks_shows_its_figures(services: Any, qbo: QBO, connected: Connected) -> None:
    entry = mismatch(services, connected, qbo)
    url = entry.data["web_url"]
    assert url == f"{qbo.url}/app/invoice?txnId={qbo_invoice(qbo)['Id']}"
    page = httpx.get(url)
    assert page.status_code == 200
    assert "Invoice JS-1001" in page.text and "817.05" in page.text and "8.875 %" in page.text
    assert httpx.get(f"{qbo.url}/app/invoice?txnId=99999").status_code == 404


# ------------------------------------------------------------------------------------------------ the engine


def test_keep_quickbooks_totals_writes_them_to_the_jobsiteon_invoice(services: Any, qbo: QBO,
                                                                     connected: Connected) -> None:
    entry = mismatch(services, connected, qbo)
    assert entry.data["ours"] == {"subtotal": "750.45", "tax": "61.91", "total": "812.36", "rate": "8.25"}
    assert entry.data["theirs"] == {"subtotal": "750.45", "tax": "66.60", "total": "817.05", "rate": "8.875"}
    writes = qbo.standin.write_count(qbo.realm)
    in_quickbooks = qbo_invoice(qbo)

    done = services.engine.keep_provider_totals(entry.id, "Olivia", account_id=connected.account_id)

    assert (done.status, done.resolved_by) == ("synced", "Olivia")
    assert "Kept QuickBooks' totals" in (done.details or "")
    invoice = local_invoice(services)
    assert (invoice.tax_cents, invoice.total_cents, invoice.tax_rate) == (6660, 81705, Decimal("8.875"))
    closed = services.engine.get_entry(entry.id)
    assert (closed.resolved_by, closed.superseded_by_id) == ("Olivia", done.id)
    assert qbo.standin.write_count(qbo.realm) == writes and qbo_invoice(qbo) == in_quickbooks  # QuickBooks as it was
    assert not [e for e in services.engine.open_errors(connected.connection_id) if e.entity == "invoice"]
    services.engine.sync_now(connected.connection_id, "U_ADMIN")  # nothing left to send, no mismatch again
    assert record_entries(services)[-1].id == done.id
    assert qbo.standin.write_count(qbo.realm) == writes

    with pytest.raises(NothingToRetry):  # a second click changes nothing
        services.engine.keep_provider_totals(entry.id, "Olivia", account_id=connected.account_id)


def test_send_jobsiteon_tax_makes_quickbooks_keep_it(services: Any, qbo: QBO, connected: Connected) -> None:
    entry = mismatch(services, connected, qbo)

    result = services.engine.send_own_tax(entry.id, "Olivia", account_id=connected.account_id)

    assert (result.status, result.kind) == ("synced", None)
    assert services.engine.get_entry(entry.id).resolved_by == "Olivia"
    held = qbo_invoice(qbo)
    assert (held["TxnTaxDetail"]["TotalTax"], held["TotalAmt"]) == (61.91, 812.36)
    assert held["TxnTaxDetail"]["TxnTaxCodeRef"] == {"value": AST_TAX_CODE}
    assert invoice_link(services).tax_code == AST_TAX_CODE
    invoice = local_invoice(services)
    assert (invoice.tax_cents, invoice.tax_rate) == (6191, Decimal("8.25"))  # JobsiteOn unchanged

    with services.sessions() as session, session.begin():  # an edit in JobsiteOn later: its tax is stated again
        row = session.scalars(select(Invoice).where(Invoice.number == "JS-1001")).one()
        row.lines[0].quantity = Decimal("12")
        recompute_invoice(row)
        tax, total = row.tax_cents, row.total_cents
    services.engine.sync_now(connected.connection_id, "U_ADMIN")
    assert record_entries(services)[-1].status == "synced"
    held = qbo_invoice(qbo)
    assert (round(held["TxnTaxDetail"]["TotalTax"] * 100), round(held["TotalAmt"] * 100)) == (tax, total)


def test_keep_quickbooks_totals_is_refused_when_the_lines_differ_too(services: Any, qbo: QBO,
                                                                    connected: Connected) -> None:
    entry = mismatch(services, connected, qbo)
    held = qbo_invoice(qbo)  # someone adds an hour of framing to the invoice in QuickBooks
    lines = [ln for ln in held["Line"] if ln["DetailType"] == "SalesItemLineDetail"]
    lines[0] = {**lines[0], "Amount": 715.00, "SalesItemLineDetail": {**lines[0]["SalesItemLineDetail"], "Qty": 11}}
    qbo.standin.update_entity(qbo.realm, "Invoice", held["Id"], {"Line": lines})
    with pytest.raises(NothingToRetry, match=r"line amounts differ too \(subtotal: JobsiteOn 750.45, QuickBooks "
                                             r"815.45\)"):
        services.engine.keep_provider_totals(entry.id, "Olivia", account_id=connected.account_id)
    invoice = local_invoice(services)
    assert (invoice.tax_cents, invoice.total_cents, invoice.tax_rate) == (6191, 81236, Decimal("8.25"))
    assert services.engine.get_entry(entry.id).resolved_at is None


def test_the_fixes_refuse_what_they_cannot_do_and_change_nothing(services: Any, qbo: QBO,
                                                                 connected: Connected) -> None:
    entry = mismatch(services, connected, qbo)
    engine = services.engine
    with pytest.raises(NotFound):  # another account's entry
        engine.send_own_tax(entry.id, "Olivia", account_id=connected.account_id + 1)
    validation = next(e for e in engine.open_errors(connected.connection_id) if e.kind == "validation")
    with pytest.raises(NothingToRetry, match="not a total mismatch"):
        engine.keep_provider_totals(validation.id, "Olivia", account_id=connected.account_id)
    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    engine.sync_now(connected.connection_id, "U_ADMIN")  # the connection now waits for Reconnect
    with pytest.raises(ConnectionUnavailable):
        engine.send_own_tax(entry.id, "Olivia", account_id=connected.account_id)
    with pytest.raises(ConnectionUnavailable):
        engine.keep_provider_totals(entry.id, "Olivia", account_id=connected.account_id)
    assert engine.get_entry(entry.id).resolved_at is None and engine.get_entry(entry.id).superseded_by_id is None
    assert invoice_link(services).tax_code is None
    assert local_invoice(services).tax_cents == 6191


# ------------------------------------------------------------------------------------------------ in Slack


def card(stack: Stack) -> dict[str, Any]:
    return next(m for m in stack.messages() if "Total mismatch" in m["text"])


def test_a_click_on_send_jobsiteon_tax_turns_the_card_synced(stack: Stack, qbo: QBO) -> None:
    qbo.standin.set_tax(qbo.realm, True, 8.875)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    shown = card(stack)
    assert "*Tax* JobsiteOn 61.91 at 8.25 % · QuickBooks 66.60 at 8.875 % (+4.69)" in str(shown["blocks"])
    with stack.rt.services.sessions() as session:
        entries_before = session.scalar(select(func.count()).select_from(SyncLogEntry))

    # a plain member, a tampered value and another account's entry change nothing, and each is told why
    stack.driver.click(ids.SEND_OWN_TAX, channel_id=CHANNEL, message_ts=shown["ts"],
                       user_id=slack_cfg.MEMBER_USER_ID)
    assert "Owner or Admin" in str(wait_for(lambda: stack.ephemerals(slack_cfg.MEMBER_USER_ID)))
    stack.driver.click(ids.SEND_OWN_TAX, channel_id=CHANNEL, message_ts=shown["ts"], value="41 OR 1=1")
    assert "not valid" in str(wait_for(lambda: stack.ephemerals(slack_cfg.OWNER_USER_ID)))
    stack.driver.click(ids.KEEP_PROVIDER_TOTALS, channel_id=CHANNEL, message_ts=shown["ts"], value="999999")
    assert "not found in your account" in str(wait_for(
        lambda: [e for e in stack.ephemerals(slack_cfg.OWNER_USER_ID) if "not found" in str(e)]))
    with stack.rt.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SyncLogEntry)) == entries_before
    assert qbo_invoice(qbo)["TotalAmt"] == 817.05

    assert stack.driver.click(ids.SEND_OWN_TAX, channel_id=CHANNEL, message_ts=shown["ts"],
                              user_id=slack_cfg.ADMIN_USER_ID).status_code == 200

    def synced() -> Any:
        stack.deliver()
        msg = stack.message(shown["ts"])
        return msg if "Synced" in msg["text"] else None

    msg = wait_for(synced)
    assert ":white_check_mark:" in str(msg["blocks"])
    assert "Send JobsiteOn's tax and retry" not in str(msg["blocks"])  # the fixes are gone with the mismatch
    assert qbo_invoice(qbo)["TotalAmt"] == 812.36
