"""Issue 14, point 3: the embedded default (SQLite: WAL, a busy timeout, one writer at a time as SQLite allows)
holds the load PostgreSQL holds. Several `syncbot` processes write to one database at once (Sync Now and Retry
All on one connection, over a few hundred invoices half of whose batches fail), while the notifier delivers
the errors they raise from this process. No database error reaches anyone, and at the end every invoice is
in QuickBooks once with no error left open (the failures were QuickBooks' 500s: the last Retry All finishes
them); nothing is left pending, claimed or half-sent."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from collections import Counter

from sqlalchemy import select

from sync.models import Invoice
from tests.batch_faults import ISE, data, leftovers
from tests.conftest import QBO, Stack
from tests.test_retry_all_faults import _cli_env

N = int(os.environ.get("LOAD_INVOICES", "600"))


def _run(env: dict[str, str], *commands: str) -> list[tuple[int, str]]:
    procs = [subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", c], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in commands]
    return [(p.returncode, out) for p in procs for out in [p.communicate(timeout=900)[0]]]


def test_several_processes_and_the_notifier_on_one_database(stack: Stack, qbo: QBO) -> None:
    from sync.records import import_records

    services = stack.rt.services
    qbo.standin.configure(minute_seconds=1.0)
    full = data(N, 0)
    with services.sessions() as session, session.begin():
        import_records(session, stack.account_id, {**full, "invoices": []})
    services.engine.sync_now(stack.connection_id, "setup")  # the customers and the item the invoices refer to
    with services.sessions() as session, session.begin():
        import_records(session, stack.account_id, full)
    qbo.standin.fail_next(qbo.realm, math.ceil(N / 30 / 2), 500, "application/json", ISE, path_contains="batch")
    env = _cli_env(services)

    stop = threading.Event()
    notifier_errors: list[str] = []

    def deliver() -> None:
        while not stop.is_set():
            try:
                stack.rt.notifier.deliver()
            except Exception as exc:
                notifier_errors.append(repr(exc))

    thread = threading.Thread(target=deliver)
    thread.start()
    try:
        runs = _run(env, "sync-now", "retry-all", "sync-now")
        runs += _run(env, "retry-all", "sync-now")
    finally:
        stop.set()
        thread.join()
    for code, out in runs:
        assert "database" not in out.lower() and "Traceback" not in out, out
        assert code == 0 or "not tried" in out, out  # a skip is explained, never silent
    assert notifier_errors == []

    final = _run(env, "retry-all")[0]
    assert final[0] == 0, final[1]
    assert leftovers(services) == {"pending": 0, "unsettled_batches": 0, "claims": 0}
    copies = Counter(str(i["DocNumber"]) for i in qbo.standin.entities(qbo.realm, "Invoice"))
    with services.sessions() as session:
        numbers = list(session.scalars(select(Invoice.number).where(Invoice.account_id == stack.account_id,
                                                                    Invoice.number.like("B-%"))))
    assert len(numbers) == N
    assert {n: c for n, c in copies.items() if c > 1} == {}, "an invoice written twice"
    assert [n for n in numbers if copies[n] != 1] == [], "an invoice the runs left out of QuickBooks"
    open_labels = [str(e.record_label) for e in services.engine.open_errors(stack.connection_id)]
    assert [label for label in open_labels if "B-" in label] == [], "an invoice whose error stayed open"
