"""Token buckets for the stand-in's rate limits.

Slack answers a call over its limit with HTTP 429, a ``Retry-After`` header in seconds and
``{"ok": false, "error": "ratelimited"}`` (https://docs.slack.dev/apis/web-api/rate-limits).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from sandbox.slack.config import RateLimit


@dataclass
class _Bucket:
    tokens: float
    last: float


class RateLimiter:
    """One bucket per key; ``check`` takes a token or says how long to wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}

    def reset(self) -> None:
        """Forget every bucket (all full again)."""
        self._buckets.clear()

    def check(self, key: Hashable, limit: RateLimit) -> float | None:
        """Take one call from ``key``'s bucket. Returns ``None`` when allowed, else the seconds until a call fits."""
        now = self._clock()
        rate = limit.per_minute / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(limit.burst), last=now)
            self._buckets[key] = bucket
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.last) * rate)
        bucket.last = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        if rate <= 0:
            return 60.0
        return (1.0 - bucket.tokens) / rate


def retry_after_header(wait_s: float) -> int:
    """Slack sends whole seconds in ``Retry-After``; never 0 for a computed wait."""
    return max(1, math.ceil(wait_s))
