"""JobsiteOn records in and out: validate a records file, import it (all or nothing), compute invoice totals.

A records file is JSON:

    {"account": {"name": "Sandbox Builders", "timezone": "America/Chicago"},
     "contacts": [{"ref": "C1", "display_name": "Acme Corp", "email": "ap@acme.test", "phone": "555-0100",
                   "company": "Acme Corp", "bill_address": {"line1": "1 Main St", "city": "Austin",
                   "region": "TX", "postal_code": "78701", "country": "US"}}],
     "items": [{"ref": "I1", "name": "Framing labor", "sku": "LAB-1", "unit_price": "65.00",
                "income_account": "79"}],
     "invoices": [{"ref": "INV1", "number": "JS-1001", "contact": "C1", "issue_date": "2026-11-02",
                   "due_date": "2026-12-02", "tax_rate": "8.25",
                   "lines": [{"item": "I1", "quantity": "10", "rate": "65.00", "tax_code": "TAX"}],
                   "tax": "53.63", "total": "703.63"}],
     "payments": [{"ref": "P1", "contact": "C1", "invoice": "INV1", "amount": "100.00", "date": "2026-11-20",
                   "method": "Check"}]}

`ref` is the record's JobsiteOn id: importing again updates the records with the same refs (and the next sync
pushes what changed). Money is in dollars as a string or number with at most two decimals; an invoice's
`tax` and `total` are optional (computed from the lines and `tax_rate` when absent; checked when present).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.models import Account, Contact, Invoice, InvoiceLine, Item, Payment

#: A kind of record a records file imports (by ref).
_Record = TypeVar("_Record", Contact, Item, Invoice, Payment)


class RecordsFileError(ValueError):
    """The records file is not valid; ``problems`` lists "where: what" lines (record and field named)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


MAX_AMOUNT = Decimal("999999999.99")  # QuickBooks amounts are at most 99,999,999,999.99; we stay well inside
MAX_QUANTITY = Decimal("1000000")


def _decimal(value: Any, what: str) -> Decimal:
    text = str(value).strip()
    if len(text) > 40:
        raise ValueError(f"'{text[:20]}...' is not {what}")
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"'{value}' is not {what}") from exc
    if not number.is_finite():
        raise ValueError(f"'{value}' is not {what}")
    return number


def _money(value: Any) -> Decimal:
    amount = _decimal(value, "an amount")
    if amount < 0:
        raise ValueError("must not be negative")
    if amount > MAX_AMOUNT:
        raise ValueError(f"must be at most {MAX_AMOUNT}")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"'{value}' has more than two decimals")
    return amount


def _quantity(value: Any) -> Decimal:
    quantity = _decimal(value, "a quantity")
    if quantity <= 0:
        raise ValueError("must be greater than 0")
    if quantity > MAX_QUANTITY:
        raise ValueError(f"must be at most {MAX_QUANTITY}")
    if quantity != quantity.quantize(Decimal("0.0001")):
        raise ValueError(f"'{value}' has more than four decimals")
    return quantity


#: Characters refused in any text: control characters, and bidirectional overrides that disguise text.
_UNSAFE = {chr(c) for c in range(32) if chr(c) not in "\t"} | {chr(127)} | set("\u202a\u202b\u202c\u202d\u202e"
                                                                                "\u2066\u2067\u2068\u2069")


def unsafe_text(value: str) -> bool:
    """True when ``value`` holds control characters or bidirectional overrides."""
    return any(ch in _UNSAFE for ch in value)


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise ValueError("must be greater than 0")
    return amount


def to_cents(amount: Decimal) -> int:
    """Dollars (2 decimals) -> integer cents."""
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _safe_text(cls, value: Any) -> Any:
        if isinstance(value, str) and unsafe_text(value):
            raise ValueError("contains control characters or hidden direction marks")
        return value


class AccountIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}'") from exc
        return value


class AddressIn(_Strict):
    line1: str | None = Field(None, max_length=500)
    city: str | None = Field(None, max_length=100)
    region: str | None = Field(None, max_length=100)
    postal_code: str | None = Field(None, max_length=30)
    country: str | None = Field(None, max_length=100)


class ContactIn(_Strict):
    ref: str = Field(min_length=1, max_length=64)
    display_name: str = Field(min_length=1, max_length=500)
    email: str | None = Field(None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(None, max_length=50)
    company: str | None = Field(None, max_length=200)
    bill_address: AddressIn | None = None


class ItemIn(_Strict):
    ref: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    sku: str | None = Field(None, max_length=100)
    unit_price: Decimal = Decimal("0")
    income_account: str | None = Field(None, max_length=64)

    _price = field_validator("unit_price", mode="before")(classmethod(lambda cls, v: _money(v)))


class LineIn(_Strict):
    item: str = Field(min_length=1)
    quantity: Decimal
    rate: Decimal
    tax_code: Literal["TAX", "NON"] = "TAX"
    description: str | None = Field(None, max_length=4000)

    _rate = field_validator("rate", mode="before")(classmethod(lambda cls, v: _money(v)))
    _quantity = field_validator("quantity", mode="before")(classmethod(lambda cls, v: _quantity(v)))


class InvoiceIn(_Strict):
    ref: str = Field(min_length=1, max_length=64)
    number: str = Field(min_length=1, max_length=21)
    contact: str = Field(min_length=1)
    issue_date: dt.date
    due_date: dt.date | None = None
    tax_rate: Decimal = Field(Decimal("0"), ge=0, le=100)
    lines: list[LineIn] = Field(min_length=1)
    tax: Decimal | None = None
    total: Decimal | None = None

    _amounts = field_validator("tax", "total", mode="before")(
        classmethod(lambda cls, v: None if v is None else _money(v)))

    @model_validator(mode="after")
    def _dates(self) -> InvoiceIn:
        if self.due_date and self.due_date < self.issue_date:
            raise ValueError("due_date is before issue_date")
        return self


class PaymentIn(_Strict):
    ref: str = Field(min_length=1, max_length=64)
    contact: str = Field(min_length=1)
    invoice: str | None = None
    amount: Decimal
    date: dt.date
    method: str | None = Field(None, max_length=50)

    _amount = field_validator("amount", mode="before")(classmethod(lambda cls, v: _positive(_money(v))))


class RecordsFile(_Strict):
    account: AccountIn | None = None
    contacts: list[ContactIn] = []
    items: list[ItemIn] = []
    invoices: list[InvoiceIn] = []
    payments: list[PaymentIn] = []


def invoice_totals(lines: Iterable[tuple[Decimal, int, str]], tax_rate: Decimal) -> tuple[int, int, int]:
    """JobsiteOn's own figures of an invoice: (subtotal, tax, total) in cents.

    ``lines``: (quantity, rate in cents, tax code). Each line rounds half up to the cent; tax is
    ``tax_rate`` percent of the taxable lines, rounded half up once on the whole.
    """
    subtotal = taxable = 0
    for quantity, rate_cents, tax_code in lines:
        amount = int((quantity * rate_cents).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        subtotal += amount
        if tax_code == "TAX":
            taxable += amount
    tax = int((Decimal(taxable) * tax_rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return subtotal, tax, subtotal + tax


def recompute_invoice(invoice: Invoice) -> None:
    """Set an invoice's subtotal, tax and total from its lines and tax rate (after an edit in JobsiteOn)."""
    invoice.subtotal_cents, invoice.tax_cents, invoice.total_cents = invoice_totals(
        ((ln.quantity, ln.rate_cents, ln.tax_code) for ln in invoice.lines), invoice.tax_rate)


def _where(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = data
    for i, key in enumerate(loc):
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            node = node[key]
            ref = node.get("ref") if isinstance(node, dict) else None
            parts[-1] = f"{parts[-1]}[{key}]" + (f" (ref {ref})" if ref and i == 1 else "")
        else:
            node = node.get(key) if isinstance(node, dict) else None
            parts.append(str(key))
    return ".".join(parts)


def validate(data: Any, known: dict[str, set[str]] | None = None) -> RecordsFile:
    """Check a parsed records file: shape, values, references between records, and given totals.

    ``known``: refs already in the account ({"contacts": {...}, "items": ..., "invoices": ...}) that the file may
    reference without repeating them. Raises RecordsFileError naming each record (by position and ref) and
    field that is wrong.
    """
    known = known or {}
    if not isinstance(data, dict):
        raise RecordsFileError(["file: the top level must be a JSON object"])
    try:
        parsed = RecordsFile.model_validate(data)
    except ValidationError as exc:
        raise RecordsFileError([f"{_where(tuple(err['loc']), data)}: {err['msg']}"
                                for err in exc.errors()]) from None
    problems: list[str] = []
    for name, refs in (("contacts", [c.ref for c in parsed.contacts]), ("items", [it.ref for it in parsed.items]),
                       ("invoices", [inv.ref for inv in parsed.invoices]),
                       ("payments", [pay.ref for pay in parsed.payments])):
        seen: set[str] = set()
        for i, ref in enumerate(refs):
            if ref in seen:
                problems.append(f"{name}[{i}] (ref {ref}).ref: used twice")
            seen.add(ref)
    contact_refs = {c.ref for c in parsed.contacts} | known.get("contacts", set())
    item_refs = {c.ref for c in parsed.items} | known.get("items", set())
    invoice_refs = {c.ref for c in parsed.invoices} | known.get("invoices", set())
    numbers: set[str] = set()
    for i, inv in enumerate(parsed.invoices):
        where = f"invoices[{i}] (ref {inv.ref})"
        if inv.number in numbers:
            problems.append(f"{where}.number: {inv.number} used twice")
        numbers.add(inv.number)
        if inv.contact not in contact_refs:
            problems.append(f"{where}.contact: no contact with ref {inv.contact}")
        for j, line in enumerate(inv.lines):
            if line.item not in item_refs:
                problems.append(f"{where}.lines[{j}].item: no item with ref {line.item}")
        _, tax, total = invoice_totals(((ln.quantity, to_cents(ln.rate), ln.tax_code) for ln in inv.lines),
                                       inv.tax_rate)
        if inv.tax is not None and inv.total is not None:
            if to_cents(inv.total) - to_cents(inv.tax) != total - tax:
                problems.append(f"{where}.total: {inv.total} minus tax {inv.tax} is not the sum of the lines "
                                f"({(total - tax) / 100:.2f})")
        elif inv.tax is not None or inv.total is not None:
            problems.append(f"{where}: give both tax and total, or neither")
    for i, pay in enumerate(parsed.payments):
        where = f"payments[{i}] (ref {pay.ref})"
        if pay.contact not in contact_refs:
            problems.append(f"{where}.contact: no contact with ref {pay.contact}")
        if pay.invoice is not None and pay.invoice not in invoice_refs:
            problems.append(f"{where}.invoice: no invoice with ref {pay.invoice}")
    if problems:
        raise RecordsFileError(problems)
    return parsed


def import_records(session: Session, account_id: int, data: Any) -> dict[str, int]:
    """Validate ``data`` and write it into the account's records (insert or update by ref), all or nothing.

    The caller commits. Returns counts per entity. Raises RecordsFileError (nothing is written).
    """
    account = session.get(Account, account_id)
    if account is None:
        raise RecordsFileError([f"account {account_id}: does not exist"])

    def existing(model: type[_Record]) -> dict[str, _Record]:
        rows = session.scalars(select(model).where(model.account_id == account_id, model.external_ref.is_not(None)))
        # (the query leaves out rows without a ref: the test only tells the type checker)
        return {r.external_ref: r for r in rows if r.external_ref is not None}

    parsed = validate(data, {"contacts": set(existing(Contact)), "items": set(existing(Item)),
                             "invoices": set(existing(Invoice))})
    if parsed.account is not None:
        account.name, account.timezone = parsed.account.name, parsed.account.timezone

    contacts = existing(Contact)
    for c in parsed.contacts:
        contact = contacts.get(c.ref) or Contact(account_id=account_id, external_ref=c.ref,
                                                 display_name=c.display_name)
        addr = c.bill_address or AddressIn()
        contact.display_name, contact.email, contact.phone, contact.company = (c.display_name, c.email, c.phone,
                                                                               c.company)
        contact.bill_line1, contact.bill_city, contact.bill_region = addr.line1, addr.city, addr.region
        contact.bill_postal_code, contact.bill_country = addr.postal_code, addr.country
        session.add(contact)
        contacts[c.ref] = contact
    items = existing(Item)
    for it in parsed.items:
        item = items.get(it.ref) or Item(account_id=account_id, external_ref=it.ref, name=it.name)
        item.name, item.sku, item.income_account = it.name, it.sku, it.income_account
        item.unit_price_cents = to_cents(it.unit_price)
        session.add(item)
        items[it.ref] = item
    session.flush()
    invoices = existing(Invoice)
    for inv in parsed.invoices:
        invoice = invoices.get(inv.ref)
        if invoice is None:
            invoice = Invoice(account_id=account_id, external_ref=inv.ref, number=inv.number,
                              contact_id=contacts[inv.contact].id, issue_date=inv.issue_date)
            session.add(invoice)
        invoice.number, invoice.contact_id = inv.number, contacts[inv.contact].id
        invoice.issue_date, invoice.due_date, invoice.tax_rate = inv.issue_date, inv.due_date, inv.tax_rate
        invoice.lines = [InvoiceLine(position=j + 1, item_id=items[ln.item].id, description=ln.description,
                                     quantity=ln.quantity, rate_cents=to_cents(ln.rate), tax_code=ln.tax_code)
                         for j, ln in enumerate(inv.lines)]
        subtotal, tax, total = invoice_totals(((ln.quantity, to_cents(ln.rate), ln.tax_code) for ln in inv.lines),
                                              inv.tax_rate)
        if inv.tax is not None and inv.total is not None:
            tax, total = to_cents(inv.tax), to_cents(inv.total)
        invoice.subtotal_cents, invoice.tax_cents, invoice.total_cents = subtotal, tax, total
        invoices[inv.ref] = invoice
    session.flush()
    payments = existing(Payment)
    for p in parsed.payments:
        payment = payments.get(p.ref) or Payment(account_id=account_id, external_ref=p.ref,
                                                 contact_id=contacts[p.contact].id, amount_cents=0, paid_on=p.date)
        payment.contact_id = contacts[p.contact].id
        payment.invoice_id = invoices[p.invoice].id if p.invoice else None
        payment.amount_cents, payment.paid_on, payment.method = to_cents(p.amount), p.date, p.method
        session.add(payment)
    session.flush()
    return {"contacts": len(parsed.contacts), "items": len(parsed.items), "invoices": len(parsed.invoices),
            "payments": len(parsed.payments)}
