"""The stand-in's throttle: a company's sliding window (``Meter``) and whether a request is admitted (``admit``).

Throttling (Intuit "Rate limits and throttles"; docs/platform-facts.md, "QuickBooks: throttling"): per realm,
a sliding window of ``minute_seconds`` (real monotonic time, not the stand-in clock): more than ``requests_per_minute``
request units (a batch costs its item count with ``batch_metering="per_item"``, 1 with ``"per_request"``), more than
``batch_per_minute`` batches, or more than ``max_concurrent`` requests in flight -> 429. Real QBO sends no
Retry-After; ``retry_after_header=True`` adds one.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.quickbooks import faults
from sandbox.quickbooks.config import StandInConfig
from sandbox.quickbooks.wire import Reply


@dataclass
class Meter:
    """A realm's throttle window: (monotonic time, cost) of admitted requests, batch times, requests in flight."""

    calls: deque[tuple[float, int]] = field(default_factory=deque)
    batches: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    peak: int = 0  # the most units any window held (what a limit test compares with the limit)

    def prune(self, now: float, window: float) -> None:
        while self.calls and self.calls[0][0] <= now - window:
            self.calls.popleft()
        while self.batches and self.batches[0] <= now - window:
            self.batches.popleft()

    def used(self) -> int:
        return sum(cost for _, cost in self.calls)


def batch_cost(body: bytes) -> int:
    """What a batch request costs with ``batch_metering="per_item"``: its item count (at least 1)."""
    try:
        items = json.loads(body or b"{}").get("BatchItemRequest")
    except (ValueError, AttributeError):
        return 1
    return max(1, len(items)) if isinstance(items, list) else 1


def admit(meter: Meter, cfg: StandInConfig, cost: int, is_batch: bool, now: Callable[[], float]) -> Reply | None:
    """Throttle check (the 429 answer, dated by the stand-in clock ``now``, or None); on success record the cost
    and count the request in flight."""
    clock = time.monotonic()
    meter.prune(clock, cfg.minute_seconds)
    wait: float | None = None
    if meter.in_flight >= cfg.max_concurrent:
        wait = 1.0
    elif meter.used() + cost > cfg.requests_per_minute:
        wait = wait_for_units(meter, cost, cfg.requests_per_minute, clock, cfg.minute_seconds)
    elif is_batch and len(meter.batches) + 1 > cfg.batch_per_minute:
        wait = meter.batches[0] + cfg.minute_seconds - clock if meter.batches else cfg.minute_seconds
    if wait is not None:
        retry_after = max(1, math.ceil(wait)) if cfg.retry_after_header else None
        return faults.throttled(now(), retry_after)
    meter.calls.append((clock, cost))
    meter.peak = max(meter.peak, meter.used())
    if is_batch:
        meter.batches.append(clock)
    meter.in_flight += 1
    return None


def wait_for_units(meter: Meter, cost: int, limit: int, clock: float, window: float) -> float:
    """Seconds until enough of the window's units expire for ``cost`` more to fit."""
    excess = meter.used() + cost - limit
    for stamp, units in meter.calls:
        excess -= units
        if excess <= 0:
            return stamp + window - clock
    return window
