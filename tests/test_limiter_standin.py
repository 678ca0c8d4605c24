"""The realm limiter against the QuickBooks stand-in over real HTTP (no fake clock, nothing of ours mocked): it lets
the whole budget of a window through and QuickBooks' meter refuses none of it, nor the request after it; a 429
pauses the realm for one metered minute, or for the server's Retry-After as given. The stand-in meters a sliding
window of admission times (sandbox/quickbooks/throttle.py; docs/platform-facts.md, "QuickBooks: throttling")."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import delete

from sync.db import db_now
from sync.diagnosis import Kind
from sync.models import Connection, QboBudget, QboSpend
from sync.providers.base import BatchOp, ProviderError
from tests.conftest import QBO, Connected


def _provider(services: Any, connected: Connected) -> Any:
    with services.sessions() as session:
        conn = session.get(Connection, connected.connection_id)
        assert conn is not None
        return services.provider_for(conn)


def _customers(prefix: str, count: int) -> list[BatchOp]:
    return [BatchOp(key=f"b{i}", entity="contact", payload={"DisplayName": f"{prefix} Customer {i:03d}"})
            for i in range(count)]


def test_the_whole_budget_goes_through_in_one_window_and_quickbooks_refuses_none(
        services: Any, qbo: QBO, connected: Connected) -> None:
    """A budget of 100 units a (5-second) minute on both sides, no margin, 100 ms per request: batches of 30, 30,
    30 and 10 customers from four threads spend exactly 100; the stand-in's busiest window holds exactly 100 and
    it sends no 429. The next batch waits for the window (the limiter's room is 0) and, when it goes, QuickBooks
    refuses it neither: its window never held more than the budget."""
    budget, minute = 100, 5.0
    qbo.standin.clear_throttle(qbo.realm)  # what connecting spent (the OAuth flow's company read) is forgotten
    with services.sessions() as session, session.begin():
        session.execute(delete(QboSpend))
    qbo.standin.configure(requests_per_minute=budget, minute_seconds=minute, max_concurrent=10,
                          batch_metering="per_item", latency_seconds=0.1)
    config = services.limiter.config
    config.requests_per_minute, config.minute_seconds, config.margin = budget, minute, 0.0
    config.batch_metering = "per_item"
    provider = _provider(services, connected)
    sizes = [30, 30, 30, 10]
    with ThreadPoolExecutor(max_workers=len(sizes)) as pool:
        answers = list(pool.map(lambda n: provider.batch(_customers(f"W{n[0]}", n[1]), f"rq-window-{n[0]}"),
                                enumerate(sizes)))
    assert [len(a) for a in answers] == sizes
    stats = qbo.standin.stats(qbo.realm)
    assert (stats["throttled"], stats["window_peak"]) == (0, budget), stats
    assert services.limiter.room(qbo.realm) == 0

    sent = threading.Event()

    def one_more() -> None:
        provider.batch(_customers("Next", 1), "rq-window-next")
        sent.set()

    worker = threading.Thread(target=one_more, daemon=True)
    worker.start()
    assert not sent.wait(0.5), "the 101st unit waits for the window"
    assert qbo.standin.stats(qbo.realm)["requests"] == stats["requests"], "and is not sent meanwhile"
    worker.join(minute * 4)
    assert sent.is_set()
    after = qbo.standin.stats(qbo.realm)
    assert (after["throttled"], after["window_peak"], after["requests"]) == (0, budget, stats["requests"] + 1)


def _pause_after_429(services: Any, connected: Connected) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """Read once into an exhausted window: (the database's time before, after, the stored pause's end)."""
    provider = _provider(services, connected)
    with services.sessions() as session:
        before = db_now(session)
    with pytest.raises(ProviderError) as err:
        provider.read("contact", "1")
    assert err.value.diagnosis.kind == Kind.RATE_LIMITED
    with services.sessions() as session:
        after = db_now(session)
        budget = session.get(QboBudget, connected_realm(services, connected))
        assert budget is not None and budget.paused_until is not None
        return before, after, budget.paused_until


def connected_realm(services: Any, connected: Connected) -> str:
    with services.sessions() as session:
        conn = session.get(Connection, connected.connection_id)
        assert conn is not None and conn.realm_id
        return conn.realm_id


def test_a_429_without_retry_after_pauses_the_realm_for_one_metered_minute(
        services: Any, qbo: QBO, connected: Connected) -> None:
    """QuickBooks sends no Retry-After (Intuit: wait 60 s); with the minute shrunk to 7 s the pause is 7 s, not
    60: the stored end of the pause is one metered minute after the 429."""
    services.limiter.config.minute_seconds = 7.0
    qbo.standin.configure(minute_seconds=30.0)
    qbo.standin.exhaust_throttle(qbo.realm)
    before, after, until = _pause_after_429(services, connected)
    assert before + dt.timedelta(seconds=7) <= until <= after + dt.timedelta(seconds=7)


def test_a_retry_after_in_a_shrunk_minute_is_kept_as_given(services: Any, qbo: QBO, connected: Connected) -> None:
    """A Retry-After is the server's own word: kept as is (here 30 s, the stand-in's window), not scaled to the
    limiter's 7-second minute."""
    services.limiter.config.minute_seconds = 7.0
    qbo.standin.configure(minute_seconds=30.0, retry_after_header=True)
    qbo.standin.exhaust_throttle(qbo.realm)
    before, after, until = _pause_after_429(services, connected)
    assert before + dt.timedelta(seconds=29) <= until <= after + dt.timedelta(seconds=30)


def test_per_item_batches_are_cut_to_fill_each_window_of_the_budget(services: Any, qbo: QBO,
                                                                    connected: Connected) -> None:
    """Batches of 30 alone fit 16 x 30 = 480 of 500 units in a window: the provider cuts the first group to the room
    left now and each next group to a whole budget."""
    provider = _provider(services, connected)
    services.limiter.config.batch_metering = "per_item"
    qbo.standin.clear_throttle(qbo.realm)
    with services.sessions() as session, session.begin():
        session.execute(delete(QboSpend))
    assert provider.batch_sizes(1000) == [30] * 16 + [20] + [30] * 16 + [20]
    with services.limiter.slot(qbo.realm, cost=5):
        pass
    assert provider.batch_sizes(530) == [30] * 16 + [15] + [30, 5]
    services.limiter.config.batch_metering = "per_request"
    assert provider.batch_sizes(70) == [30, 30, 10]


def test_retry_all_spends_the_whole_budget_of_a_window_and_meets_no_429(services: Any, qbo: QBO) -> None:
    """Retry All of 100 failing invoices, 100 units a minute on both sides, per_item metering: one window carries
    exactly the whole budget (30 + 30 + 30 + 10), QuickBooks refuses nothing, all are synced. (That the rest would
    wait for the window is the limiter's test above; a shrunk minute short enough to wait for here would be shorter
    than the engine's own time for 100 records on a loaded machine.)"""
    from tests.batch_faults import seed

    _, connection_id = seed(services, qbo, invoices=100)
    budget = 100
    qbo.standin.configure(requests_per_minute=budget, minute_seconds=60.0, batch_metering="per_item")
    config = services.limiter.config
    config.requests_per_minute, config.minute_seconds, config.margin = budget, 60.0, 0.0
    config.batch_metering = "per_item"
    qbo.standin.clear_throttle(qbo.realm)
    with services.sessions() as session, session.begin():
        session.execute(delete(QboSpend))
    summary = services.engine.retry_all(connection_id, "U_ADMIN")
    stats = qbo.standin.stats(qbo.realm)
    assert (summary.synced, summary.errors) == (100, 0), summary.as_dict()
    assert (stats["throttled"], stats["window_peak"]) == (0, budget), stats
    assert services.limiter.room(qbo.realm) == 0
