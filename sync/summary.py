"""The weekly summary's figures (the Monday message, `/sync-log summary preview`): one week of an account's sync log
against the week before, its open errors and the records failing most, read through the filters of
:mod:`sync.log`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync.log import LogFilter, apply_filter, counts, open_counts, prepare_session
from sync.models import Status, SyncLogEntry


@dataclass
class WeeklySummary:
    """The figures of one week of an account's sync log (UTC bounds), and the week before for comparison."""

    since: dt.datetime
    until: dt.datetime
    attempts_by_status: dict[str, int]
    errors_by_kind: dict[str, int]
    errors_by_entity: dict[str, int]
    previous_attempts_by_status: dict[str, int]
    previous_errors_by_kind: dict[str, int]
    open_errors: int
    oldest_open: list[SyncLogEntry]
    most_failing: list[tuple[str, int | None, str | None, int]]  # (entity, record id, label, failures)

    @property
    def quiet(self) -> bool:
        """No error or warning this week and none open."""
        return not self.errors_by_kind and self.open_errors == 0

    def change(self, status: str) -> int:
        """This week's count of ``status`` minus last week's."""
        return self.attempts_by_status.get(status, 0) - self.previous_attempts_by_status.get(status, 0)


def weekly_summary(session: Session, account_id: int, until: dt.datetime, days: int = 7,
                   top: int = 5) -> WeeklySummary:
    """The summary of the ``days`` before ``until`` (UTC) for one account."""
    since = until - dt.timedelta(days=days)
    prev_since = since - dt.timedelta(days=days)
    week = LogFilter(account_id=account_id, since=since, until=until)
    prev = LogFilter(account_id=account_id, since=prev_since, until=since)
    failing = (Status.ERROR.value, Status.WARNING.value)
    errors_week = replace(week, statuses=failing)
    open_f = LogFilter(account_id=account_id, open_only=True)
    prepare_session(session)
    open_count = sum(open_counts(session, account_id=account_id).values())
    oldest = list(session.scalars(apply_filter(select(SyncLogEntry), open_f).order_by(SyncLogEntry.id.asc())
                                  .limit(top)))
    most_rows = session.execute(
        apply_filter(select(SyncLogEntry.entity, SyncLogEntry.record_id, func.max(SyncLogEntry.record_label),
                      func.count()), errors_week)
        .where(SyncLogEntry.record_id.is_not(None))
        .group_by(SyncLogEntry.entity, SyncLogEntry.record_id)
        .order_by(func.count().desc(), SyncLogEntry.entity, SyncLogEntry.record_id).limit(top)).all()
    return WeeklySummary(
        since=since, until=until,
        attempts_by_status=counts(session, week, "status"),
        errors_by_kind=counts(session, errors_week, "kind"),
        errors_by_entity=counts(session, errors_week, "entity"),
        previous_attempts_by_status=counts(session, prev, "status"),
        previous_errors_by_kind=counts(session, replace(prev, statuses=failing), "kind"),
        open_errors=int(open_count), oldest_open=oldest,
        most_failing=[(str(e), r, lbl, int(n)) for e, r, lbl, n in most_rows],
    )
