from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select

from sync.models import PushBatch, RecordClaim, Status, SyncLogEntry
from tests.conftest import QBO, connect

ISE = ('{"fault":{"error":[{"message":"message=InternalServerError; errorCode=003100; statusCode=500",'
       '"detail":null,"code":"3100","element":null}],"type":"SERVICE"},"time":1519164488680}')
THROTTLE = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse '
            'xmlns="http://schema.intuit.com/finance/v3" time="2026-12-07T00:00:00.000-08:00"><Fault type="SERVICE">'
            '<Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>'
            '<Detail>The request limit was reached.</Detail></Error></Fault></IntuitResponse>')


def data(invoices: int = 5, payments: int = 0) -> dict[str, Any]:
    return {
        "account": {"name": "Breaker Builders", "timezone": "UTC"},
        "contacts": [{"ref": f"C{i}", "display_name": f"Brk Customer {i:03d}"} for i in range(5)],
        "items": [{"ref": "I0", "name": "Brk Service", "unit_price": "45.50", "income_account": "79"}],
        "invoices": [{"ref": f"INV{k}", "number": f"B-{k:05d}", "contact": f"C{k % 5}", "issue_date": "2026-11-02",
                      "tax_rate": "8.25", "lines": [{"item": "I0", "quantity": "2", "rate": "45.50",
                                                     "tax_code": "TAX"}]} for k in range(invoices)],
        "payments": [{"ref": f"P{k}", "contact": f"C{k % 5}", "invoice": f"INV{k}", "amount": "10.00",
                      "date": "2026-11-20", "method": "Check"} for k in range(payments)],
    }


@contextmanager
def wide_budget(services: Any) -> Iterator[None]:
    """The limiter's per-minute budget opened wide while every batch is answered by an injected failure (which
    costs QuickBooks' budget nothing): the engine then cuts batches of 30 only (``batch_sizes`` fills a window's
    room otherwise), as many as ``ceil(n / 30)`` failures injected."""
    config = services.limiter.config
    was, config.requests_per_minute = config.requests_per_minute, 10**9
    try:
        yield
    finally:
        config.requests_per_minute = was


def seed(services: Any, qbo: QBO, invoices: int = 5, payments: int = 0, fail: str = "invoices") -> tuple[int, int]:
    """Contacts and items synced; then ``fail`` (invoices or payments) each with an open error (QBO 500)."""
    from sync.connections import ensure_account
    from sync.records import import_records

    qbo.standin.configure(minute_seconds=1.0)
    full = data(invoices, payments)
    first = {**full, "invoices": [] if fail == "invoices" else full["invoices"], "payments": []}
    with services.sessions() as session, session.begin():
        account_id = ensure_account(session, "Breaker Builders", "UTC").id
        import_records(session, account_id, first)
    connection_id, _ = connect(services, qbo, account_id)
    assert services.engine.sync_now(connection_id, "setup").errors == 0
    with services.sessions() as session, session.begin():
        import_records(session, account_id, full)
    n = invoices if fail == "invoices" else payments
    qbo.standin.fail_next(qbo.realm, math.ceil(n / 30), 500, "application/json", ISE, path_contains="batch")
    with wide_budget(services):
        services.engine.sync_now(connection_id, "setup")
    assert len(services.engine.open_errors(connection_id)) == n
    return account_id, connection_id


def books(qbo: QBO, entity: str, key: str) -> Counter[str]:
    return Counter(str(o.get(key)) for o in qbo.standin.entities(qbo.realm, entity))


def payment_count(qbo: QBO) -> int:
    return len(qbo.standin.entities(qbo.realm, "Payment"))


def local_payment_count(services: Any) -> int:
    """How many payments JobsiteOn holds (a copy pulled back from QuickBooks would add one)."""
    from sync.models import Payment

    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Payment)) or 0)


def leftovers(services: Any) -> dict[str, int]:
    with services.sessions() as session:
        return {
            "pending": session.scalar(select(func.count()).select_from(SyncLogEntry).where(
                SyncLogEntry.status == Status.PENDING)),
            "unsettled_batches": session.scalar(select(func.count()).select_from(PushBatch).where(
                PushBatch.settled_at.is_(None))),
            "claims": session.scalar(select(func.count()).select_from(RecordClaim)),
        }


def outcomes(qbo: QBO, path: str = "batch") -> list[tuple[str, str, int]]:
    return [(e["outcome"], str(e.get("requestid")), e["status"]) for e in qbo.standin.request_log(qbo.realm)
            if path in e["path"]]
