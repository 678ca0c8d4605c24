"""Importing JobsiteOn records: validated first, all or nothing, errors name the record and field."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sync import db
from sync.connections import ensure_account
from sync.models import Contact, Invoice, Payment
from sync.records import RecordsFileError, import_records, invoice_totals, validate


@pytest.fixture()
def demo(fixtures_dir: Path) -> dict[str, Any]:
    return json.loads((fixtures_dir / "records_demo.json").read_text())


def test_invoice_totals_round_half_up() -> None:
    # 10 x 65.00 + 7 x 14.35 = 650.00 + 100.45 = 750.45; 8.25 % = 61.912... -> 61.91
    assert invoice_totals([(Decimal("10"), 6500, "TAX"), (Decimal("7"), 1435, "TAX")], Decimal("8.25")) == (
        75045, 6191, 81236)
    assert invoice_totals([(Decimal("1"), 1000, "NON")], Decimal("10")) == (1000, 0, 1000)


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda d: d["contacts"][1].pop("display_name"), "contacts[1] (ref C2).display_name"),
    (lambda d: d["contacts"][0].update(email="not-an-email"), "contacts[0] (ref C1).email"),
    (lambda d: d["items"][0].update(unit_price="12.345"), "items[0] (ref I1).unit_price"),
    (lambda d: d["invoices"][0].update(contact="C9"), "invoices[0] (ref INV1).contact"),
    (lambda d: d["invoices"][0]["lines"][1].update(item="I9"), "invoices[0] (ref INV1).lines[1].item"),
    (lambda d: d["invoices"][0]["lines"][0].update(quantity="0"), "invoices[0] (ref INV1).lines[0].quantity"),
    (lambda d: d["invoices"][0].update(issue_date="2026-13-01"), "invoices[0] (ref INV1).issue_date"),
    (lambda d: d["payments"][0].update(invoice="INV7"), "payments[0] (ref P1).invoice"),
    (lambda d: d["contacts"].append(dict(d["contacts"][0])), "contacts[3] (ref C1).ref"),
    (lambda d: d["invoices"][0].update(tax="61.91", total="900.00"), "invoices[0] (ref INV1).total"),
    (lambda d: d["account"].update(timezone="Mars/Base"), "account.timezone"),
    (lambda d: d["items"][0].update(colour="red"), "items[0] (ref I1).colour"),
])
def test_bad_file_names_record_and_field(demo: dict[str, Any], mutate: Any, where: str) -> None:
    data = copy.deepcopy(demo)
    mutate(data)
    with pytest.raises(RecordsFileError) as err:
        validate(data)
    assert any(p.startswith(where) for p in err.value.problems), err.value.problems


def test_import_all_or_nothing_and_update_by_ref(clean_db: str, demo: dict[str, Any]) -> None:
    engine = db.make_engine(clean_db)
    sessions = db.make_sessionmaker(engine)
    try:
        with sessions() as session, session.begin():
            account_id = ensure_account(session).id
        bad = copy.deepcopy(demo)
        bad["payments"][0]["contact"] = "nobody"
        with pytest.raises(RecordsFileError), sessions() as session, session.begin():
            import_records(session, account_id, bad)
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Contact)) == 0

        with sessions() as session, session.begin():
            counts = import_records(session, account_id, demo)
        assert counts == {"contacts": 3, "items": 3, "invoices": 1, "payments": 1}
        with sessions() as session:
            inv = session.scalars(select(Invoice)).one()
            assert (inv.subtotal_cents, inv.tax_cents, inv.total_cents) == (75045, 6191, 81236)
            assert [ln.quantity for ln in inv.lines] == [Decimal("10"), Decimal("7")]
            assert session.scalars(select(Payment)).one().amount_cents == 10000

        demo["contacts"][0]["email"] = "new@riverside.test"
        with sessions() as session, session.begin():
            import_records(session, account_id, demo)
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Contact)) == 3
            assert session.scalars(select(Contact).where(Contact.external_ref == "C1")).one().email == \
                "new@riverside.test"
    finally:
        engine.dispose()


@pytest.mark.parametrize(("mutate", "where", "says"), [
    (lambda d: d["invoices"][0]["lines"][0].update(quantity="1e30"), "invoices[0] (ref INV1).lines[0].quantity",
     "at most"),
    (lambda d: d["invoices"][0]["lines"][0].update(quantity="0.00001"), "invoices[0] (ref INV1).lines[0].quantity",
     "four decimals"),
    (lambda d: d["payments"][0].update(amount="1e400"), "payments[0] (ref P1).amount", "at most"),
    (lambda d: d["payments"][0].update(amount="0"), "payments[0] (ref P1).amount", "greater than 0"),
    (lambda d: d["items"][0].update(unit_price="99999999999999999999.00"), "items[0] (ref I1).unit_price",
     "at most"),
    (lambda d: d["items"][0].update(unit_price="9" * 5000), "items[0] (ref I1).unit_price", "is not an amount"),
    (lambda d: d["contacts"][0].update(display_name="\u202eevil\u0007\x1b[31mRED"),
     "contacts[0] (ref C1).display_name", "control characters"),
])
def test_hostile_values_are_refused(demo: dict[str, Any], mutate: Any, where: str, says: str) -> None:
    data = copy.deepcopy(demo)
    mutate(data)
    with pytest.raises(RecordsFileError) as err:
        validate(data)
    assert any(p.startswith(where) and says in p for p in err.value.problems), err.value.problems


def test_a_later_file_may_reference_records_already_imported(clean_db: str, demo: dict[str, Any]) -> None:
    engine = db.make_engine(clean_db)
    sessions = db.make_sessionmaker(engine)
    try:
        with sessions() as session, session.begin():
            account_id = ensure_account(session).id
            import_records(session, account_id, demo)
        later = {"payments": [{"ref": "P2", "contact": "C1", "invoice": "INV1", "amount": "25.00",
                               "date": "2026-11-25"}]}
        with sessions() as session, session.begin():
            assert import_records(session, account_id, later)["payments"] == 1
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Payment)) == 2
    finally:
        engine.dispose()
