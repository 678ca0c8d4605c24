"""A lease in the database (``scheduler_leases``): which process runs the scheduled jobs, which one delivers the
outbox. One row per lease name; the holder renews it; when the holder dies, another process takes it once it
expired. Works on PostgreSQL and SQLite alike (a conditional UPDATE, or the first INSERT).

Expiry is judged by the database's clock (`sync.db.db_now`), never a process's own: a replica whose clock runs
a minute ahead would otherwise find a live holder's lease expired and take it, and both would run the jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models import SchedulerLease
from sync.db import db_now


class Lease:
    """A named lease in ``scheduler_leases``: :meth:`acquire` takes it when free or expired, or renews it when
    held, in one conditional UPDATE (or the first INSERT), so two processes never both hold it."""

    def __init__(self, sessions: Any, holder: str, seconds: float, name: str = "scheduler",
                 clock: Callable[[Session], dt.datetime] = db_now) -> None:
        self.sessions = sessions
        self.holder = holder
        self.seconds = seconds
        self.name = name
        #: The time the lease is judged by, read in the session that takes or reads it (the database's).
        self.clock = clock

    def acquire(self) -> bool:
        """Take or renew the lease; True while this holder has it."""
        with self.sessions() as session, session.begin():
            now = self.clock(session)
            until = now + dt.timedelta(seconds=self.seconds)
            taken = session.execute(update(SchedulerLease).where(
                SchedulerLease.name == self.name,
                or_(SchedulerLease.holder == self.holder, SchedulerLease.expires_at < now))
                .values(holder=self.holder, expires_at=until)
                .execution_options(synchronize_session=False))
            if taken.rowcount:
                return True
        try:
            with self.sessions() as session, session.begin():
                if session.get(SchedulerLease, self.name) is not None:
                    return False
                session.add(SchedulerLease(name=self.name, holder=self.holder, acquired_at=now, expires_at=until))
            return True
        except IntegrityError:
            return False

    def release(self) -> None:
        """Give the lease up (a clean stop), so another process takes over at once."""
        with self.sessions() as session, session.begin():
            session.execute(delete(SchedulerLease).where(SchedulerLease.name == self.name,
                                                         SchedulerLease.holder == self.holder))

    def holder_now(self) -> str | None:
        """Who holds an unexpired lease now (None when nobody)."""
        with self.sessions() as session:
            row = session.get(SchedulerLease, self.name)
            return row.holder if row is not None and row.expires_at >= self.clock(session) else None
