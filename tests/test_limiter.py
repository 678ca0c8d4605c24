"""The per-realm budget keeps under QuickBooks' limits, counted in the database (shared by every process), measured
on a fake clock given to the limiter (no sleeping for a minute). Two limiters on one database stand for two
replicas: what one spends, the other sees."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sync.models import QboSpend
from sync.providers.limiter import LimiterConfig, RealmLimiter
from tests.conftest import wait_for


class FakeClock:
    """The time the limiters judge by (instead of the database's)."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)

    def __call__(self, _session: Any) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _blocked(lim: RealmLimiter, realm: str, cost: int = 1, is_batch: bool = False) -> threading.Event:
    """Start a request in a thread; the returned event is set once it got its slot and gave it back."""
    done = threading.Event()

    def go() -> None:
        with lim.slot(realm, cost, is_batch):
            pass
        done.set()

    threading.Thread(target=go, daemon=True).start()
    return done


def test_requests_per_minute_window_is_shared_by_two_processes(services: Any) -> None:
    clock = FakeClock()
    config = LimiterConfig(requests_per_minute=5, minute_seconds=10, margin=0.0, poll_seconds=0.05)
    one, two = RealmLimiter(services.sessions, config, clock=clock), RealmLimiter(services.sessions, config,
                                                                                   clock=clock)
    for lim in (one, two, one, two, one):
        with lim.slot("r1"):
            pass
    assert one.spent("r1") == {"units": 5, "batches": 0, "out": 0}
    done = _blocked(two, "r1")
    assert not done.wait(0.3), "the sixth request in the window waits, whichever replica sends it"
    with one.slot("r2"):  # another realm is not affected
        pass
    clock.advance(10.01)
    assert done.wait(3), "after the window passes it goes through"


def test_batch_metering_per_item_and_per_request() -> None:
    assert LimiterConfig(batch_metering="per_item").batch_cost(30) == 30
    assert LimiterConfig(batch_metering="per_request").batch_cost(30) == 1


def test_batch_requests_per_minute(services: Any) -> None:
    clock = FakeClock()
    lim = RealmLimiter(services.sessions, LimiterConfig(batch_per_minute=2, minute_seconds=10, margin=0.0,
                                                        batch_metering="per_request"), clock=clock)
    for _ in range(2):
        with lim.slot("r", cost=1, is_batch=True):
            pass
    with lim.slot("r", cost=1):  # a plain request still fits
        pass
    done = _blocked(lim, "r", 1, True)
    assert not done.wait(0.3)
    clock.advance(10.5)
    assert done.wait(3)


def test_concurrent_requests_are_counted_across_processes(services: Any) -> None:
    """At most ``max_concurrent`` requests out at once on a realm, whichever process sent them; a request whose
    process died stops counting after ``slot_seconds``."""
    clock = FakeClock()
    config = LimiterConfig(max_concurrent=2, minute_seconds=10, slot_seconds=30, poll_seconds=0.05)
    one, two = RealmLimiter(services.sessions, config, clock=clock), RealmLimiter(services.sessions, config,
                                                                                   clock=clock)
    with services.sessions() as session, session.begin():  # what a process killed with a request out leaves
        session.add(QboSpend(realm_id="r", at=clock.now, cost=1, is_batch=False))
    first = one.slot("r")
    first.__enter__()
    done = _blocked(two, "r")
    assert not done.wait(0.3), "a third request waits while two are out"
    first.__exit__(None, None, None)
    assert done.wait(3), "one came back: the other process's request goes"
    wait_for(lambda: two.spent("r")["out"] == 1)  # the dead one is still out
    clock.advance(31)
    assert _blocked(two, "r").wait(3)
    assert _blocked(two, "r").wait(3), "the dead process's request no longer counts as out"


def test_a_pause_after_429_holds_every_process(services: Any) -> None:
    clock = FakeClock()
    one, two = (RealmLimiter(services.sessions, LimiterConfig(poll_seconds=0.05), clock=clock) for _ in range(2))
    one.pause("r", 60)
    done = _blocked(two, "r")
    assert not done.wait(0.3)
    assert one.throttled == 1
    clock.advance(61)
    assert done.wait(3)
    one.pause("r", 60)
    done = _blocked(two, "r")
    assert not done.wait(0.3)
    two.resume("r")
    assert done.wait(3), "resumed by hand in another process"
