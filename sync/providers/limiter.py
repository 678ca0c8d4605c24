"""One QuickBooks Online budget per company (realm), shared by every syncbot process on the database.

Intuit ("Rate limits and throttles", Accounting API docs; docs/platform-facts.md, "QuickBooks: throttling"): per
realm, 500 requests per minute, at most 10 concurrent requests, and at most 40 batch requests per minute. Sources differ
on whether each batch item counts against the 500 (Intuit's batch sample says it does), so the cost of a batch is a
setting: ``per_item`` (default) or ``per_request``. A 429 pauses the realm until its Retry-After, or for one metered
minute (``minute_seconds``: Intuit says wait 60 s and documents no Retry-After).

What is metered, and how strictly syncbot counts. Intuit does not say whether "500 per minute" is a fixed
(calendar) minute, a sliding minute or a token bucket; the stand-in (``sandbox/quickbooks/throttle.py``) meters a
sliding minute of admission times, the strictest of the three. A client that never has more than 500 units in any 60
seconds is refused by none of them (a fixed minute is one such interval; a bucket of 500 refilled at 500/min admits
``500 + 500 t/60`` in any ``t`` seconds), whereas a token bucket's own traffic (500 at once, then 500 more spread
over the next minute) draws 429s from a sliding meter. So the budget is an exact sliding window, with no margin:

- QuickBooks stamps a request somewhere between the moment syncbot counted it (``at``) and the moment its answer
  came back (``done_at``); a request whose process died was answered or dropped within ``slot_seconds`` (the
  request timeout). A unit therefore counts until ``minute_seconds`` after ``done_at`` (or after
  ``at + slot_seconds`` while unknown): then QuickBooks' stamp is at least a minute older than any request syncbot
  sends from now on, in every meter above. The whole budget is usable (500 units in a window, not 480 or 490), and
  the cost is only that each unit frees one answer's latency later than its send time would say.
- ``clock_resolution`` (2 ms) covers the database clock's rounding (SQLite's is to the millisecond).

How it is shared: every request is a row of ``qbo_spends`` (when, its cost, whether a batch, when it was done),
written in the same transaction that checks the realm's limits; that transaction first locks the realm's row
of ``qbo_budgets`` (an UPDATE of it: a row lock on PostgreSQL, SQLite's write lock), so two replicas never both
take the last unit of a minute. Times are the database's clock (`sync.db.db_now`). A request whose process died
stops counting as out after ``slot_seconds``. Plain SQL rather than pyrate-limiter 4's PostgreSQL and SQLite
buckets: those count a rate, but not the requests still out (the 10 concurrent) nor a pause after a 429, and they
keep a connection pool of their own beside ours.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sync.db import db_now
from sync.models import QboBudget, QboSpend, table_of

_BUDGETS, _SPENDS = table_of(QboBudget), table_of(QboSpend)
# Every request runs these: built once (building a statement costs several times executing it on SQLite)
_LOCK = update(_BUDGETS).where(_BUDGETS.c.realm_id == bindparam("b_realm")).values(
    realm_id=_BUDGETS.c.realm_id).returning(_BUDGETS.c.paused_until)  # a no-op write: the row lock
_COUNTING = select(_SPENDS.c.at, _SPENDS.c.done_at, _SPENDS.c.cost, _SPENDS.c.is_batch).where(
    _SPENDS.c.realm_id == bindparam("b_realm"), _SPENDS.c.at > bindparam("b_after"),
    or_(_SPENDS.c.done_at > bindparam("b_since"), _SPENDS.c.done_at.is_(None)))
_SPEND = insert(_SPENDS).values(
    realm_id=bindparam("b_realm", type_=_SPENDS.c.realm_id.type), at=bindparam("b_at", type_=_SPENDS.c.at.type),
    cost=bindparam("b_cost", type_=_SPENDS.c.cost.type),
    is_batch=bindparam("b_is_batch", type_=_SPENDS.c.is_batch.type)).returning(_SPENDS.c.id)
_DONE = update(_SPENDS).where(_SPENDS.c.id == bindparam("b_id")).values(
    done_at=bindparam("b_done_at", type_=_SPENDS.c.done_at.type))


@dataclass
class LimiterConfig:
    """Limits for one realm. ``minute_seconds`` is the window (60 s in production, shrunk in benchmarks)."""

    requests_per_minute: int = 500
    batch_per_minute: int = 40
    max_concurrent: int = 10
    minute_seconds: float = 60.0
    batch_metering: str = "per_item"
    margin: float = 0.0  # optional extra fraction of the window (none is needed: see the module's docstring)
    clock_resolution: float = 0.002  # seconds added to each unit's end: the database clock's rounding
    slot_seconds: float = 120.0  # a request out longer than this (its process died) stops counting as out
    poll_seconds: float = 0.05  # how often a request waiting on another process's release looks again

    def batch_cost(self, items: int) -> int:
        """Units of the per-minute budget that one batch of ``items`` operations spends."""
        return max(1, items) if self.batch_metering == "per_item" else 1


class RealmLimiter:
    """Blocks callers until a request fits every limit of its realm, counted in the database for every process.
    Thread-safe.

    ``sessions`` is the database's session factory; ``clock`` gives the time a session's checks are judged by
    (the database's, by default; tests pass their own).
    """

    def __init__(self, sessions: Callable[[], Session], config: LimiterConfig | None = None,
                 clock: Callable[[Session], dt.datetime] = db_now) -> None:
        self.sessions = sessions
        self.config = config or LimiterConfig()
        self._clock = clock
        self._cond = threading.Condition()
        self._sweeps = itertools.count()
        self.throttled = 0  # 429s reported back to this process

    @property
    def window(self) -> float:
        """Seconds a unit counts after QuickBooks may have stamped it (its answer, or its timeout)."""
        return self.config.minute_seconds * (1 + self.config.margin) + self.config.clock_resolution

    def _spends(self, session: Session, realm: str,
                now: dt.datetime) -> tuple[list[tuple[dt.datetime, int, bool]], int]:
        """What the realm's spends hold at ``now``, read with one query: those that still count against its
        windows, as (when the unit stops counting, cost, whether a batch), soonest first; and how many requests
        are still out (no answer yet, sent less than ``slot_seconds`` ago). A unit stops counting ``window``
        after its answer came back (``done_at``), or, while no answer is known, after ``at + slot_seconds`` (the
        latest QuickBooks can have received it: the request timed out by then). (The requests still out are
        among the rows read: sent after ``now - slot_seconds``, later than ``now - window - slot_seconds``.)"""
        window = dt.timedelta(seconds=self.window)
        slot = dt.timedelta(seconds=self.config.slot_seconds)
        since = now - window
        rows: list[Any] = list(session.execute(_COUNTING, {"b_realm": realm, "b_after": since - slot,
                                                           "b_since": since}))
        sent_since = now - slot
        out = sum(1 for at, done, _cost, _batch in rows if done is None and at > sent_since)
        ends = [((done if done is not None else at + slot) + window, cost, bool(batch))
                for at, done, cost, batch in rows]
        return sorted((e for e in ends if e[0] > now), key=lambda e: e[0]), out

    # ------------------------------------------------------------------------------------------------ the budget

    def _lock(self, session: Session, realm: str) -> dt.datetime | None:
        """Lock the realm's row for this transaction (creating it the first time); returns its pause's end (None:
        not paused). One statement once the row exists: a no-op UPDATE (the row lock, SQLite's write lock) that
        returns the pause."""
        row = session.execute(_LOCK, {"b_realm": realm}).first()
        if row is None:
            try:
                with session.begin_nested():
                    session.execute(insert(_BUDGETS).values(realm_id=realm))
                return None
            except IntegrityError:  # another process made it meanwhile: lock theirs
                row = session.execute(_LOCK, {"b_realm": realm}).one()
        paused_until: dt.datetime | None = row[0]
        return paused_until

    def _wait_time(self, session: Session, realm: str, paused_until: dt.datetime | None, cost: int,
                   is_batch: bool, now: dt.datetime) -> float:
        """Seconds until a request of ``cost`` fits (0 or less: now)."""
        cfg = self.config
        waits = [(paused_until - now).total_seconds() if paused_until else 0.0]
        counting, out = self._spends(session, realm, now)
        if out >= cfg.max_concurrent:
            waits.append(cfg.poll_seconds)
        spent = sum(c for _, c, _ in counting)
        if spent + cost > cfg.requests_per_minute and counting:
            need, freed = spent + cost - cfg.requests_per_minute, 0
            for end, c, _ in counting:  # wait until enough units stop counting, soonest first
                freed += c
                if freed >= need:
                    waits.append((end - now).total_seconds())
                    break
        batches = [end for end, _, b in counting if b]
        if is_batch and len(batches) >= cfg.batch_per_minute:
            waits.append((batches[len(batches) - cfg.batch_per_minute] - now).total_seconds())
        return max(waits)

    def _take(self, realm: str, cost: int, is_batch: bool) -> tuple[int | None, float]:
        """One try: (the spend's id, 0) when the request fits now, else (None, seconds to wait)."""
        with self.sessions() as session, session.begin():
            paused_until = self._lock(session, realm)
            now = self._clock(session)
            wait = self._wait_time(session, realm, paused_until, cost, is_batch, now)
            if wait > 0:
                return None, wait
            spend_id: int = session.execute(_SPEND, {"b_realm": realm, "b_at": now, "b_cost": cost,
                                                "b_is_batch": is_batch}).scalar_one()
            if next(self._sweeps) % 50 == 0:  # forget what no window looks at any more
                old = now - dt.timedelta(seconds=2 * (self.window + self.config.slot_seconds))
                session.execute(delete(QboSpend).where(QboSpend.realm_id == realm, QboSpend.at < old))
            return int(spend_id), 0.0

    def _done(self, spend_id: int) -> None:
        with self.sessions() as session, session.begin():
            session.execute(_DONE, {"b_id": spend_id, "b_done_at": self._clock(session)})

    @contextmanager
    def slot(self, realm: str, cost: int = 1, is_batch: bool = False) -> Iterator[None]:
        """Hold a slot for one request of ``cost`` budget units on ``realm`` (blocks until it fits). Raises
        SQLAlchemyError when the database cannot be reached (nothing was sent)."""
        cost = min(cost, self.config.requests_per_minute)
        while True:
            spend_id, wait = self._take(realm, cost, is_batch)
            if spend_id is not None:
                break
            with self._cond:  # a release in this process wakes us at once; another process's, at the next look
                self._cond.wait(timeout=min(wait, 1.0))
        try:
            yield
        finally:
            try:
                self._done(spend_id)
            finally:
                with self._cond:
                    self._cond.notify_all()

    # ------------------------------------------------------------------------------------------------ pauses

    def pause(self, realm: str, seconds: float) -> None:
        """Stop all requests to ``realm`` for ``seconds`` (after a 429), in every process."""
        with self.sessions() as session, session.begin():
            paused_until = self._lock(session, realm)
            until = self._clock(session) + dt.timedelta(seconds=seconds)
            if paused_until is None or paused_until < until:
                session.execute(update(QboBudget).where(QboBudget.realm_id == realm).values(paused_until=until))
        self.throttled += 1
        with self._cond:
            self._cond.notify_all()

    def resume(self, realm: str) -> None:
        """Lift a pause early (the connection was resumed by hand or by the scheduler)."""
        with self.sessions() as session, session.begin():
            session.execute(update(QboBudget).where(QboBudget.realm_id == realm).values(paused_until=None))
        with self._cond:
            self._cond.notify_all()

    def spent(self, realm: str) -> dict[str, Any]:
        """What the realm's window holds now (for tests, benchmarks and logs): units spent, batch requests, and
        requests still out."""
        with self.sessions() as session:
            now = self._clock(session)
            counting, out = self._spends(session, realm, now)
        return {"units": sum(c for _, c, _ in counting), "batches": sum(1 for _, _, b in counting if b),
                "out": int(out)}

    def room(self, realm: str) -> int:
        """Units of the realm's per-minute budget that a request could spend now (0 to ``requests_per_minute``)."""
        return max(0, self.config.requests_per_minute - int(self.spent(realm)["units"]))
