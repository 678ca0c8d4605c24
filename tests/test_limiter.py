"""The per-realm limiter keeps under QuickBooks' limits, measured on a fake clock (no sleeping)."""

from __future__ import annotations

import threading

from sync.providers.limiter import LimiterConfig, RealmLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_window() -> None:
    clock = FakeClock()
    lim = RealmLimiter(LimiterConfig(requests_per_minute=5, minute_seconds=10, margin=0.0), clock=clock)
    for _ in range(5):
        with lim.slot("r1"):
            pass
    blocked = threading.Event()
    done = threading.Event()

    def sixth() -> None:
        blocked.set()
        with lim.slot("r1"):
            done.set()

    t = threading.Thread(target=sixth, daemon=True)
    t.start()
    blocked.wait(1)
    assert not done.wait(0.3), "the sixth request in the window must wait"
    with lim.slot("r2"):  # another realm is not affected
        pass
    clock.now += 10.01
    assert done.wait(3), "after the window passes it goes through"
    t.join(2)


def test_batch_metering_per_item_and_per_request() -> None:
    assert LimiterConfig(batch_metering="per_item").batch_cost(30) == 30
    assert LimiterConfig(batch_metering="per_request").batch_cost(30) == 1


def test_batch_requests_per_minute() -> None:
    clock = FakeClock()
    lim = RealmLimiter(LimiterConfig(batch_per_minute=2, minute_seconds=10, margin=0.0,
                                     batch_metering="per_request"), clock=clock)
    for _ in range(2):
        with lim.slot("r", cost=1, is_batch=True):
            pass
    with lim.slot("r", cost=1):  # a plain request still fits
        pass
    done = threading.Event()
    t = threading.Thread(target=lambda: (lim.slot("r", 1, True).__enter__(), done.set()), daemon=True)
    t.start()
    assert not done.wait(0.3)
    clock.now += 10.5
    assert done.wait(3)


def test_pause_after_429() -> None:
    clock = FakeClock()
    lim = RealmLimiter(LimiterConfig(), clock=clock)
    lim.pause("r", 60)
    done = threading.Event()
    t = threading.Thread(target=lambda: (lim.slot("r").__enter__(), done.set()), daemon=True)
    t.start()
    assert not done.wait(0.3)
    assert lim.throttled == 1
    clock.now += 61
    assert done.wait(3)
