"""A per-realm client-side limiter that keeps syncbot under QuickBooks Online's throttles.

Intuit ("Rate limits and throttles", Accounting API docs; DESIGN.md): per realm, 500 requests per minute, at most
10 concurrent requests, and at most 40 batch requests per minute. Sources differ on whether each batch item counts
against the 500 (Intuit's batch sample says it does), so the cost of a batch is a setting: ``per_item`` (default)
or ``per_request``. Windows are sliding; a small safety margin absorbs the delay between our clock and the
server's. A 429 pauses the realm until its Retry-After (or 60 s, DESIGN.md: none is documented).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class LimiterConfig:
    """Limits for one realm. ``minute_seconds`` is the window (60 s in production, shrunk in benchmarks)."""

    requests_per_minute: int = 500
    batch_per_minute: int = 40
    max_concurrent: int = 10
    minute_seconds: float = 60.0
    batch_metering: str = "per_item"
    margin: float = 0.02  # fraction of the window added as slack against clock/latency skew

    def batch_cost(self, items: int) -> int:
        """Units of the per-minute budget that one batch of ``items`` operations spends."""
        return max(1, items) if self.batch_metering == "per_item" else 1


@dataclass
class _RealmState:
    stamps: deque[tuple[float, int]] = field(default_factory=deque)  # (time, cost)
    spent: int = 0
    batch_stamps: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    paused_until: float = 0.0


class RealmLimiter:
    """Blocks callers until a request fits every limit of its realm. Thread-safe; one per process.

    ``clock`` and ``sleep`` are injectable (monotonic seconds) for tests.
    """

    def __init__(self, config: LimiterConfig | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config or LimiterConfig()
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._realms: dict[str, _RealmState] = {}
        self.throttled = 0  # 429s reported back to us

    @property
    def window(self) -> float:
        return self.config.minute_seconds * (1 + self.config.margin)

    def _state(self, realm: str) -> _RealmState:
        return self._realms.setdefault(realm, _RealmState())

    def _expire(self, st: _RealmState, now: float) -> None:
        horizon = now - self.window
        while st.stamps and st.stamps[0][0] <= horizon:
            st.spent -= st.stamps.popleft()[1]
        while st.batch_stamps and st.batch_stamps[0] <= horizon:
            st.batch_stamps.popleft()

    def _wait_time(self, st: _RealmState, cost: int, is_batch: bool, now: float) -> float:
        cfg = self.config
        waits = [st.paused_until - now]
        if st.in_flight >= cfg.max_concurrent:
            waits.append(0.05)
        if st.spent + cost > cfg.requests_per_minute and st.stamps:
            # wait until enough old stamps leave the window
            need = st.spent + cost - cfg.requests_per_minute
            freed = 0
            for stamp, c in st.stamps:
                freed += c
                if freed >= need:
                    waits.append(stamp + self.window - now)
                    break
        if is_batch and len(st.batch_stamps) >= cfg.batch_per_minute:
            waits.append(st.batch_stamps[0] + self.window - now)
        return max(waits)

    @contextmanager
    def slot(self, realm: str, cost: int = 1, is_batch: bool = False) -> Iterator[None]:
        """Hold a slot for one request of ``cost`` budget units on ``realm`` (blocks until it fits)."""
        cost = min(cost, self.config.requests_per_minute)
        with self._cond:
            while True:
                st = self._state(realm)
                now = self._clock()
                self._expire(st, now)
                wait = self._wait_time(st, cost, is_batch, now)
                if wait <= 0:
                    break
                self._cond.wait(timeout=min(wait, 1.0))
            st.stamps.append((now, cost))
            st.spent += cost
            if is_batch:
                st.batch_stamps.append(now)
            st.in_flight += 1
        try:
            yield
        finally:
            with self._cond:
                st.in_flight -= 1
                self._cond.notify_all()

    def pause(self, realm: str, seconds: float) -> None:
        """Stop all requests to ``realm`` for ``seconds`` (after a 429)."""
        with self._cond:
            st = self._state(realm)
            st.paused_until = max(st.paused_until, self._clock() + seconds)
            self.throttled += 1
            self._cond.notify_all()

    def resume(self, realm: str) -> None:
        """Lift a pause early (the connection was resumed by hand or by the scheduler)."""
        with self._cond:
            self._state(realm).paused_until = 0.0
            self._cond.notify_all()
