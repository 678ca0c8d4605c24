"""One QuickBooks Online budget per company (realm), shared by every syncbot process on the database.

Intuit ("Rate limits and throttles", Accounting API docs; docs/platform-facts.md, "QuickBooks: throttling"): per
realm, 500 requests per minute, at most 10 concurrent requests, and at most 40 batch requests per minute. Sources differ
on whether each batch item counts against the 500 (Intuit's batch sample says it does), so the cost of a batch is a
setting: ``per_item`` (default) or ``per_request``. A 429 pauses the realm until its Retry-After (or 60 s: none is
documented).

How it is shared: every request is a row of ``qbo_spends`` (when, its cost, whether a batch, whether it is still
out), written in the same transaction that checks the realm's limits; that transaction first locks the realm's row
of ``qbo_budgets`` (an UPDATE of it: a row lock on PostgreSQL, SQLite's write lock), so two replicas never both
take the last unit of a minute. Windows are sliding and judged by the database's clock (`sync.db.db_now`); a small
margin absorbs the delay between the database's clock and QuickBooks'. A request whose process died stops counting
as out after ``slot_seconds``. Plain SQL rather than pyrate-limiter 4's PostgreSQL and SQLite buckets: those count
a rate, but not the requests still out (the 10 concurrent) nor a pause after a 429, and they keep a connection pool
of their own beside ours.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sync.db import db_now
from sync.models import QboBudget, QboSpend


@dataclass
class LimiterConfig:
    """Limits for one realm. ``minute_seconds`` is the window (60 s in production, shrunk in benchmarks)."""

    requests_per_minute: int = 500
    batch_per_minute: int = 40
    max_concurrent: int = 10
    minute_seconds: float = 60.0
    batch_metering: str = "per_item"
    margin: float = 0.02  # fraction of the window added as slack against clock/latency skew
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
        return self.config.minute_seconds * (1 + self.config.margin)

    # ------------------------------------------------------------------------------------------------ the budget

    def _lock(self, session: Session, realm: str) -> QboBudget:
        """Lock the realm's row for this transaction (creating it the first time) and return it."""
        lock = (update(QboBudget).where(QboBudget.realm_id == realm).values(realm_id=QboBudget.realm_id)
                .execution_options(synchronize_session=False))  # a no-op write: the row lock, SQLite's write lock
        if not session.execute(lock).rowcount:  # type: ignore[attr-defined]
            try:
                with session.begin_nested():
                    session.execute(insert(QboBudget).values(realm_id=realm))
            except IntegrityError:  # another process made it meanwhile: lock theirs
                session.execute(lock)
        budget = session.get(QboBudget, realm, populate_existing=True)
        assert budget is not None
        return budget

    def _wait_time(self, session: Session, realm: str, budget: QboBudget, cost: int, is_batch: bool,
                   now: dt.datetime) -> float:
        """Seconds until a request of ``cost`` fits (0 or less: now)."""
        cfg = self.config
        since = now - dt.timedelta(seconds=self.window)
        waits = [(budget.paused_until - now).total_seconds() if budget.paused_until else 0.0]
        out = session.scalar(select(func.count()).select_from(QboSpend).where(
            QboSpend.realm_id == realm, QboSpend.done_at.is_(None),
            QboSpend.at > now - dt.timedelta(seconds=cfg.slot_seconds))) or 0
        if out >= cfg.max_concurrent:
            waits.append(cfg.poll_seconds)
        spends = list(session.execute(select(QboSpend.at, QboSpend.cost, QboSpend.is_batch).where(
            QboSpend.realm_id == realm, QboSpend.at > since).order_by(QboSpend.at)))
        spent = sum(c for _, c, _ in spends)
        if spent + cost > cfg.requests_per_minute and spends:
            need, freed = spent + cost - cfg.requests_per_minute, 0
            for at, c, _ in spends:  # wait until enough of the oldest leave the window
                freed += c
                if freed >= need:
                    waits.append((at - since).total_seconds())
                    break
        batches = [at for at, _, b in spends if b]
        if is_batch and len(batches) >= cfg.batch_per_minute:
            waits.append((batches[len(batches) - cfg.batch_per_minute] - since).total_seconds())
        return max(waits)

    def _take(self, realm: str, cost: int, is_batch: bool) -> tuple[int | None, float]:
        """One try: (the spend's id, 0) when the request fits now, else (None, seconds to wait)."""
        with self.sessions() as session, session.begin():
            budget = self._lock(session, realm)
            now = self._clock(session)
            wait = self._wait_time(session, realm, budget, cost, is_batch, now)
            if wait > 0:
                return None, wait
            spend_id = session.execute(insert(QboSpend).values(
                realm_id=realm, at=now, cost=cost, is_batch=is_batch).returning(QboSpend.id)).scalar_one()
            if next(self._sweeps) % 50 == 0:  # forget what no window looks at any more
                old = now - dt.timedelta(seconds=max(2 * self.window, self.config.slot_seconds))
                session.execute(delete(QboSpend).where(QboSpend.realm_id == realm, QboSpend.at < old))
            return int(spend_id), 0.0

    def _done(self, spend_id: int) -> None:
        with self.sessions() as session, session.begin():
            session.execute(update(QboSpend).where(QboSpend.id == spend_id).values(done_at=self._clock(session)))

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
            budget = self._lock(session, realm)
            until = self._clock(session) + dt.timedelta(seconds=seconds)
            if budget.paused_until is None or budget.paused_until < until:
                budget.paused_until = until
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
            since = now - dt.timedelta(seconds=self.window)
            rows = list(session.execute(select(QboSpend.cost, QboSpend.is_batch, QboSpend.done_at).where(
                QboSpend.realm_id == realm, QboSpend.at > since)))
        return {"units": sum(c for c, _, _ in rows), "batches": sum(1 for _, b, _ in rows if b),
                "out": sum(1 for _, _, d in rows if d is None)}
