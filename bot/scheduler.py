"""Scheduled work: the weekly log summary, token-expiry reminders, automatic resume after a rate-limit pause,
access-token refresh ahead of expiry, and retention of old log entries.

How it is built (docs/architecture.md, "A scheduled job"):

- **APScheduler 3** (``BackgroundScheduler``) runs five jobs, each process with its own memory job store, as
  APScheduler's user guide asks ("job stores must never be shared between schedulers"). Nothing is lost by
  keeping them in memory: each job is a method of :class:`Jobs` that takes ``now`` (UTC) and decides from the
  database what is due (a summary's scheduled moment, a token's expiry), so it is idempotent, a new leader finds
  what the old one left, and it can be tested with any clock.
- **One process runs them**: a lease row (``scheduler_leases``) that the holder renews every
  ``lease_seconds / 3``; the others keep their APScheduler paused and take over when the lease expires (a
  crashed leader is replaced within ``lease_seconds`` plus one renewal). On SQLite there is one process anyway.
- **Exactly once**: a due summary or reminder is queued as a row of ``scheduled_sends`` with a unique key (the
  account and the scheduled moment; the connection, token and threshold) in the same transaction as its outbox
  notification, so two runners, a retried job or a replayed tick never queue it twice; the notifier delivers
  it with the same claims as every other message, so a crash or a Slack outage delays it and never doubles it.
- **Downtime**: the summary job looks back ``summary_grace`` (default 24 hours) for a scheduled moment that was
  not queued: a process that comes back at 11:00 after being down at Monday 09:00 sends that week's summary
  once. A moment found later than the grace is recorded as ``missed`` and logged as a warning, never silently.
- **Failures**: a job that raises is logged (``event=scheduled_job_failed``) and runs again at its next tick;
  the scheduler goes on. Per-account and per-connection work is isolated the same way.

Platform facts used here: Intuit refresh tokens live 100 days without use and at most five years in all
(docs/platform-facts.md, "QuickBooks: OAuth 2.0", from Intuit's authorization FAQ and the five-year policy); the
help article asks to "reconnect proactively every 90 days" and to review the sync log every Monday.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import hashlib
import logging
import os
import socket
import threading
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.config import SchedulerConfig
from bot.lease import Lease
from bot.models import Job, JobAttempt, ScheduledSend
from bot.services import Services
from sync.diagnosis import Kind
from sync.engine import ConnectionUnavailable
from sync.models import (
    Account,
    Connection,
    ConnectionStatus,
    Notification,
    Status,
    SyncLogEntry,
    utcnow,
)
from sync.providers.base import ProviderError

log = logging.getLogger("syncbot.scheduler")

#: Days before a refresh token's expiry when a reminder goes out (each once per token).
REMINDER_DAYS = (14, 7, 3, 1)
#: The help article: "reconnect proactively every 90 days".
PROACTIVE_DAYS = 90
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
AUTO_ACTOR = "syncbot (automatic)"


# ------------------------------------------------------------------------------------------------ time


def zone(name: str | None) -> dt.tzinfo:
    """The IANA zone ``name``, or UTC when empty or unknown."""
    try:
        return ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


@functools.cache
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def canonical_zone(name: str | None) -> str | None:
    """The IANA zone ``name`` as the tz database spells it, whatever the case (``america/chicago`` gives
    ``America/Chicago``); None when no zone has that name."""
    return _zone_names().get((name or "").strip().lower())


def parse_time(text: str) -> tuple[int, int]:
    """``"9:00"``, ``"09:30"``, ``"9"`` or ``"9am"`` / ``"2:30pm"`` -> (hour, minute). Raises ValueError."""
    raw = text.strip().lower()
    if not raw.isascii():
        raise ValueError(f"not a time of day: {text!r} (try 9:00 or 14:30)")
    suffix = None
    for s in ("am", "pm"):
        if raw.endswith(s):
            suffix, raw = s, raw[: -len(s)].strip()
    hour_text, _, minute_text = raw.partition(":")
    if not hour_text.isdigit() or (minute_text and not minute_text.isdigit()) or len(hour_text) > 2 \
            or len(minute_text) not in (0, 2):
        raise ValueError(f"not a time of day: {text!r} (try 9:00 or 14:30)")
    hour, minute = int(hour_text), int(minute_text or 0)
    if suffix is not None:
        if not 1 <= hour <= 12:
            raise ValueError(f"not a time of day: {text!r}")
        hour = hour % 12 + (12 if suffix == "pm" else 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"not a time of day: {text!r} (try 9:00 or 14:30)")
    return hour, minute


def last_scheduled(now: dt.datetime, tz: dt.tzinfo, weekday: int, hour: int, minute: int) -> dt.datetime:
    """The latest moment at or before ``now`` (UTC) that is ``weekday`` (0 = Monday) at ``hour:minute`` wall
    time in ``tz``, as UTC. Daylight saving is the zone's: 09:00 stays 09:00 local across the change; a wall
    time that does not exist on the day (skipped by a spring-forward) moves forward by the gap (02:30 is sent
    at 03:30); one that happens twice (fall-back) is sent at its first occurrence."""
    local = now.astimezone(tz)
    day = local.date() - dt.timedelta(days=(local.weekday() - weekday) % 7)
    for _ in range(3):
        # fold=0 (PEP 495): an ambiguous wall time is its first occurrence; one in a gap is read with the
        # offset before the gap, which lands as far after the gap as it was into it (02:30 -> 03:30)
        moment = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz).astimezone(dt.UTC)
        if moment <= now:
            return moment
        day -= dt.timedelta(days=7)
    raise AssertionError("unreachable: a week earlier is always in the past")


def _fingerprint(secret: str) -> str:
    """A short one-way tag of a token, to tell one token from its successor without keeping it."""
    return hashlib.sha256(b"syncbot-token-tag:" + secret.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ jobs


@dataclass
class JobResult:
    """What one run of one job did (for logs and tests)."""

    queued: int = 0
    missed: int = 0
    done: int = 0
    failed: int = 0


class Jobs:
    """The scheduled jobs' bodies. Each takes ``now`` (UTC), reads what is due from the database, and is safe to
    run again or in two processes at once (the unique keys of ``scheduled_sends``, the engine's record claims).

    ``on_queued`` is called after something was put in the outbox (the Slack runtime wakes its notifier).
    """

    def __init__(self, services: Services, config: SchedulerConfig | None = None,
                 on_queued: Callable[[], None] | None = None) -> None:
        self.services = services
        self.sessions = services.sessions
        self.config = config or SchedulerConfig()
        self.on_queued = on_queued

    # ---------------------------------------------------------------------------------------- queueing

    def _queue(self, session: Session, job: str, key: str, account_id: int, connection_id: int | None,
               due_at: dt.datetime, topic_prefix: str, data: dict[str, Any], outcome: str = "queued") -> bool:
        """Insert the send (and its outbox notification unless missed) in one transaction. False when the key
        was queued before, by this process or another."""
        exists = session.scalar(select(ScheduledSend.id).where(ScheduledSend.job == job, ScheduledSend.key == key))
        if exists is not None:
            return False
        send = ScheduledSend(job=job, key=key, account_id=account_id, connection_id=connection_id, due_at=due_at,
                             outcome=outcome, data=data, created_at=utcnow())
        session.add(send)
        session.flush()  # IntegrityError when another runner queued it a moment ago: see _each
        if outcome == "queued":
            session.add(Notification(account_id=account_id, connection_id=connection_id,
                                     topic=f"{topic_prefix}:{send.id}", event=job, created_at=utcnow()))
        return True

    def _each(self, query: Any, body: Callable[[Session, int], None]) -> None:
        """Run ``body(session, id)`` for each id of ``query``, each in its own transaction: a failure of one is
        logged and rolled back without stopping the others; a unique-key conflict means another runner queued
        the same thing first, which is the point."""
        with self.sessions() as session:
            ids = list(session.scalars(query))
        for row_id in ids:
            try:
                with self.sessions() as session, session.begin():
                    body(session, row_id)
            except IntegrityError:
                log.info("event=scheduled_send_taken id=%s: another runner queued it", row_id)
            except Exception:
                log.exception("event=scheduled_item_failed id=%s", row_id)

    # ---------------------------------------------------------------------------------------- summary

    def summaries(self, now: dt.datetime) -> JobResult:
        """Queue each account's weekly summary whose scheduled moment (weekday and time in the account's zone)
        passed within the grace and was not queued yet. Moments before the account existed are skipped."""
        result = JobResult()

        def body(session: Session, account_id: int) -> None:
            account = session.get(Account, account_id)
            if account is None:
                return
            try:
                hour, minute = parse_time(account.summary_time)
            except ValueError:
                hour, minute = 9, 0
            due = last_scheduled(now, zone(account.timezone), account.summary_weekday % 7, hour, minute)
            if account.created_at and due < account.created_at:
                return
            late = now - due
            missed = late > self.config.summary_grace
            data = {"since": (due - dt.timedelta(days=7)).isoformat(), "until": due.isoformat(),
                    "timezone": account.timezone}
            if self._queue(session, "summary", f"{account.id}:{due.isoformat()}", account.id, None, due,
                           "summary", data, outcome="missed" if missed else "queued"):
                if missed:
                    result.missed += 1
                    log.warning("event=summary_missed account_id=%s due_at=%s late_seconds=%d", account.id,
                                due.isoformat(), late.total_seconds())
                else:
                    result.queued += 1
                    log.info("event=summary_queued account_id=%s due_at=%s late_seconds=%d", account.id,
                             due.isoformat(), late.total_seconds())

        self._each(select(Account.id).where(Account.summary_enabled.is_(True)), body)
        return self._done(result)

    def summary_now(self, account_id: int, now: dt.datetime) -> bool:
        """Queue the account's weekly summary of the seven days before ``now`` at once, as the scheduled one goes
        out (the notifier posts it to the channel; its key is this moment, so it never stands for a scheduled
        one). For the demo (`/sync-log demo summary`). False when the account does not exist."""
        with self.sessions() as session, session.begin():
            account = session.get(Account, account_id)
            if account is None:
                return False
            data = {"since": (now - dt.timedelta(days=7)).isoformat(), "until": now.isoformat(),
                    "timezone": account.timezone, "on_demand": True}
            queued = self._queue(session, "summary", f"{account.id}:now:{now.isoformat()}", account.id, None, now,
                                 "summary", data)
        self._done(JobResult(queued=int(queued)))
        return queued

    def reminder_now(self, connection_id: int, now: dt.datetime, days: int = REMINDER_DAYS[0]) -> bool:
        """Queue a token-expiry reminder for the connection at once, as it goes out ``days`` days before the
        refresh token expires (the notifier posts it to the channel and DMs the admins). For the demo
        (`/sync-log demo reminder`), whose fresh token has about 100 days left. False without such a connection."""
        with self.sessions() as session, session.begin():
            conn = session.get(Connection, connection_id)
            if conn is None:
                return False
            data = {"basis": "refresh", "threshold_days": days,
                    "expires_at": (now + dt.timedelta(days=days, hours=1)).isoformat(), "on_demand": True}
            queued = self._queue(session, "reminder", f"{conn.id}:now:{now.isoformat()}", conn.account_id, conn.id,
                                 now, "reminder", data)
        self._done(JobResult(queued=int(queued)))
        return queued

    # ---------------------------------------------------------------------------------------- reminders

    def reminders(self, now: dt.datetime) -> JobResult:
        """Queue a reminder for each connection whose refresh token (rolling, or its five-year hard limit)
        expires within 14, 7, 3 or 1 days, and when it was connected 90 days ago. Each threshold goes out once
        per token: the most urgent threshold reached, so a process that was down does not send the ones it
        slept through. An expired token is not reminded: its auth_expired incident says it."""
        result = JobResult()
        live = (ConnectionStatus.CONNECTED.value, ConnectionStatus.RATE_LIMITED.value)

        def body(session: Session, connection_id: int) -> None:
            conn = session.get(Connection, connection_id)
            if conn is None or conn.refresh_token_enc is None:
                return
            token_tag = _fingerprint(self.services.box.decrypt(conn.refresh_token_enc))
            for basis, expires, tag in (("refresh", conn.refresh_expires_at, token_tag),
                                        ("hard", conn.refresh_hard_expires_at,
                                         conn.refresh_hard_expires_at.isoformat()
                                         if conn.refresh_hard_expires_at else "")):
                if expires is None or expires <= now:
                    continue
                reached = [d for d in REMINDER_DAYS if expires - now <= dt.timedelta(days=d)]
                if not reached:
                    continue
                threshold = min(reached)
                data = {"basis": basis, "threshold_days": threshold, "expires_at": expires.isoformat()}
                if self._queue(session, "reminder", f"{conn.id}:{basis}:{tag}:{threshold}", conn.account_id,
                               conn.id, expires - dt.timedelta(days=threshold), "reminder", data):
                    result.queued += 1
                    log.info("event=expiry_reminder_queued connection_id=%s basis=%s threshold_days=%s",
                             conn.id, basis, threshold)
            if conn.connected_at and now - conn.connected_at >= dt.timedelta(days=PROACTIVE_DAYS):
                data = {"basis": "age", "connected_at": conn.connected_at.isoformat(),
                        "expires_at": conn.refresh_expires_at.isoformat() if conn.refresh_expires_at else None}
                if self._queue(session, "reminder", f"{conn.id}:age:{conn.connected_at.isoformat()}",
                               conn.account_id, conn.id, conn.connected_at + dt.timedelta(days=PROACTIVE_DAYS),
                               "reminder", data):
                    result.queued += 1
                    log.info("event=proactive_reconnect_queued connection_id=%s", conn.id)

        self._each(select(Connection.id).where(Connection.status.in_(live)), body)
        return self._done(result)

    # ---------------------------------------------------------------------------------------- resume

    def resume(self, now: dt.datetime) -> JobResult:
        """Resume each rate-limited connection whose pause is over: the engine closes the incident (its message
        turns to Resumed), retries the waiting records and syncs what changed. Before that, settle attempts a
        process killed during them left pending (``SyncEngine.recover_pending``): back to error, their message
        (which said "Retrying…") drawn again."""
        result = JobResult()
        try:
            result.queued += self.services.engine.recover_pending()  # each redraws its message
        except Exception:
            log.exception("event=pending_recovery_failed")
            result.failed += 1
        with self.sessions() as session:
            due = list(session.scalars(select(Connection.id).where(
                Connection.status == ConnectionStatus.RATE_LIMITED.value,
                or_(Connection.paused_until.is_(None), Connection.paused_until <= now))))
        for connection_id in due:
            try:
                summary = self.services.engine.resume(connection_id, AUTO_ACTOR, resolution="resumed")
                result.done += 1
                log.info("event=connection_auto_resumed connection_id=%s synced=%s errors=%s", connection_id,
                         summary.synced, summary.errors)
            except ConnectionUnavailable as exc:
                log.warning("event=auto_resume_blocked connection_id=%s kind=%s", connection_id, exc.kind.value)
                result.failed += 1
            except Exception:
                log.exception("event=auto_resume_failed connection_id=%s", connection_id)
                result.failed += 1
        return self._done(result, woke=result.done > 0)

    # ---------------------------------------------------------------------------------------- refresh

    def refresh(self, now: dt.datetime) -> JobResult:
        """Refresh access tokens that expire within ``refresh_ahead``. A refresh Intuit refuses marks the
        connection expired and opens its auth_expired incident at once (the team gets Reconnect now, not at
        the next failed sync)."""
        result = JobResult()
        horizon = now + self.config.refresh_ahead
        with self.sessions() as session:
            due = list(session.scalars(select(Connection.id).where(
                Connection.status.in_((ConnectionStatus.CONNECTED.value, ConnectionStatus.RATE_LIMITED.value)),
                Connection.refresh_token_enc.is_not(None),
                or_(Connection.access_expires_at.is_(None), Connection.access_expires_at <= horizon))))
        for connection_id in due:
            try:
                if self.services.tokens.refresh_if_expiring(connection_id, self.config.refresh_ahead, now):
                    result.done += 1
            except ProviderError as exc:
                result.failed += 1
                log.warning("event=scheduled_refresh_failed connection_id=%s kind=%s", connection_id,
                            exc.diagnosis.label)
                if exc.diagnosis.kind == Kind.AUTH_EXPIRED:
                    self.services.engine.connection_failed(connection_id, exc.diagnosis)
                    result.queued += 1
            except Exception:
                result.failed += 1
                log.exception("event=scheduled_refresh_failed connection_id=%s", connection_id)
        return self._done(result)

    # ---------------------------------------------------------------------------------------- retention

    def retention(self, now: dt.datetime) -> JobResult:
        """Delete, in batches of ``prune_batch``, info and synced entries older than ``retention_days``, errors
        and warnings resolved before then, and delivered notifications older than that. Open errors stay
        whatever their age."""
        cutoff = now - dt.timedelta(days=self.config.retention_days)
        result = JobResult()
        prunable = and_(SyncLogEntry.created_at < cutoff, or_(
            SyncLogEntry.status.in_((Status.INFO.value, Status.SYNCED.value)),
            and_(SyncLogEntry.status.in_((Status.ERROR.value, Status.WARNING.value)),
                 SyncLogEntry.resolved_at.is_not(None), SyncLogEntry.resolved_at < cutoff)))
        while True:
            with self.sessions() as session, session.begin():
                ids = list(session.scalars(select(SyncLogEntry.id).where(prunable)
                                           .order_by(SyncLogEntry.id).limit(self.config.prune_batch)))
                if not ids:
                    break
                for column in (SyncLogEntry.superseded_by_id, SyncLogEntry.retry_of_id):
                    session.execute(update(SyncLogEntry).where(column.in_(ids)).values({column: None}))
                session.execute(update(Notification).where(Notification.entry_id.in_(ids)).values(entry_id=None))
                session.execute(delete(SyncLogEntry).where(SyncLogEntry.id.in_(ids)))
                result.done += len(ids)
            if len(ids) < self.config.prune_batch:
                break
        with self.sessions() as session, session.begin():
            gone = session.execute(delete(Notification).where(Notification.delivered_at.is_not(None),
                                                              Notification.delivered_at < cutoff))
            result.done += int(getattr(gone, "rowcount", 0) or 0)
        with self.sessions() as session, session.begin():  # finished jobs (bot.jobs) and their starts
            old_jobs = select(Job.id).where(Job.finished_at.is_not(None), Job.finished_at < cutoff)
            session.execute(delete(JobAttempt).where(JobAttempt.job_id.in_(old_jobs)))
            gone = session.execute(delete(Job).where(Job.finished_at.is_not(None), Job.finished_at < cutoff))
            result.done += int(getattr(gone, "rowcount", 0) or 0)
        if result.done:
            log.info("event=retention_pruned rows=%d cutoff=%s", result.done, cutoff.isoformat())
        return result

    def _done(self, result: JobResult, woke: bool = False) -> JobResult:
        if (result.queued or woke) and self.on_queued is not None:
            self.on_queued()
        return result


# ------------------------------------------------------------------------------------------------ schedule


def set_summary(services: Services, account_id: int, *, enabled: bool, weekday: int | None = None,
                time_text: str | None = None, timezone: str | None = None, replace_timezone: bool = False,
                now: dt.datetime | None = None) -> Account:
    """Change an account's weekly summary (``/sync-log summary monday 9:00`` or ``off``). ``timezone``: an IANA
    name to adopt when the account has none yet (the Slack user's ``tz``), or to set whatever the account had
    with ``replace_timezone``. The moment that just passed under the
    new schedule is marked as skipped, so changing the schedule never sends a summary at once. Raises
    ValueError for a bad weekday or time."""
    now = now or utcnow()
    with services.sessions() as session, session.begin():
        account = session.get(Account, account_id)
        if account is None:
            raise ValueError(f"no account {account_id}")
        account.summary_enabled = enabled
        if weekday is not None:
            if not 0 <= weekday <= 6:
                raise ValueError("weekday must be 0 (Monday) to 6 (Sunday)")
            account.summary_weekday = weekday
        if time_text is not None:
            hour, minute = parse_time(time_text)
            account.summary_time = f"{hour:02d}:{minute:02d}"
        if timezone and zone(timezone) is not dt.UTC and (
                replace_timezone or not account.timezone or account.timezone == "UTC"):
            account.timezone = timezone
        if enabled:
            hour, minute = parse_time(account.summary_time)
            due = last_scheduled(now, zone(account.timezone), account.summary_weekday, hour, minute)
            key = f"{account.id}:{due.isoformat()}"
            if session.scalar(select(ScheduledSend.id).where(ScheduledSend.job == "summary",
                                                             ScheduledSend.key == key)) is None:
                session.add(ScheduledSend(job="summary", key=key, account_id=account.id, due_at=due,
                                          outcome="skipped", created_at=now, data={"reason": "schedule changed"}))
        session.flush()
        session.expunge(account)
        return account


# ------------------------------------------------------------------------------------------------ runner

_thread_owner = threading.local()


def run_job(name: str) -> None:
    """The job reference stored in APScheduler's job store (``bot.scheduler:run_job``): runs job ``name`` of the
    :class:`Scheduler` whose executor runs this thread."""
    owner: Scheduler | None = getattr(_thread_owner, "scheduler", None)
    if owner is None:
        raise RuntimeError("run_job called outside a syncbot scheduler's executor")
    owner.run(name)


def _bind(owner: Scheduler) -> None:
    _thread_owner.scheduler = owner


class _OwnedExecutor(BasePoolExecutor):
    """APScheduler's pool executor whose threads know which :class:`Scheduler` they serve."""

    def __init__(self, owner: Scheduler, workers: int = 2) -> None:
        super().__init__(concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="syncbot-job",
                                                               initializer=_bind, initargs=(owner,)))


class Scheduler:
    """APScheduler with a memory job store, running the :class:`Jobs` only while this process holds the lease.

    ``clock`` gives ``now`` to the jobs (tests travel in time with time-machine, which moves it too).
    ``runs`` counts the jobs this process ran (for logs and tests).
    """

    JOBS = ("summaries", "reminders", "resume", "refresh", "retention")

    def __init__(self, services: Services, config: SchedulerConfig | None = None,
                 on_queued: Callable[[], None] | None = None, holder: str | None = None,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.services = services
        self.config = config or SchedulerConfig()
        self.jobs = Jobs(services, self.config, on_queued)
        self.clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # judged by the database's clock, not ``clock``: replicas' own clocks may differ (bot/lease.py)
        self.lease = Lease(services.sessions, self.holder, self.config.lease_seconds, name="scheduler")
        self.runs: Counter[str] = Counter()
        self.leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._aps = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},  # this process's own (never shared between schedulers)
            executors={"default": _OwnedExecutor(self)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone=dt.UTC)
        self._aps.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    # ---------------------------------------------------------------------------------------- jobs

    def triggers(self) -> dict[str, BaseTrigger]:
        """Each job's trigger (UTC)."""
        hour, minute = parse_time(self.config.retention_at)
        out: dict[str, BaseTrigger] = {name: IntervalTrigger(seconds=seconds, timezone=dt.UTC)
                                       for name, seconds in self.config.intervals.items()}
        out["retention"] = CronTrigger(hour=hour, minute=minute, timezone=dt.UTC)
        return out

    def run(self, name: str) -> None:
        """Run job ``name`` now with the scheduler's clock; failures are logged, never raised to APScheduler
        (so it keeps the job and runs it at the next tick)."""
        if name not in self.JOBS:
            log.error("event=unknown_scheduled_job name=%s", name)
            return
        self.runs[name] += 1
        try:
            result = getattr(self.jobs, name)(self.clock())
            log.debug("event=scheduled_job_done name=%s result=%s", name, result)
        except Exception:
            log.exception("event=scheduled_job_failed name=%s", name)

    def _ensure_jobs(self) -> None:
        """Add the jobs missing from the store; reschedule those whose trigger changed (a process that leads
        again keeps their next run times)."""
        for name, trigger in self.triggers().items():
            job = self._aps.get_job(name)
            if job is None:
                self._aps.add_job("bot.scheduler:run_job", trigger, args=[name], id=name, name=name,
                                  replace_existing=True)
            elif str(job.trigger) != str(trigger):
                self._aps.reschedule_job(name, trigger=trigger)

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("event=scheduled_job_missed name=%s scheduled_at=%s", event.job_id,
                        event.scheduled_run_time)
        else:
            log.error("event=scheduled_job_error name=%s error=%r", event.job_id, event.exception)

    # ---------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start: APScheduler paused, and the lease loop that resumes it while this process leads."""
        self._aps.start(paused=True)
        self._thread = threading.Thread(target=self._lead, name="syncbot-scheduler-lease", daemon=True)
        self._thread.start()

    def _lead(self) -> None:
        renew = max(0.2, self.config.lease_seconds / 3)
        while not self._stop.is_set():
            try:
                leading = self.lease.acquire()
            except Exception:
                log.exception("event=scheduler_lease_failed holder=%s", self.holder)
                leading = False
            if leading and not self.leading:
                log.info("event=scheduler_leading holder=%s", self.holder)
                try:
                    self._ensure_jobs()
                    self._aps.resume()
                    self.leading = True
                except Exception:
                    log.exception("event=scheduler_start_failed holder=%s", self.holder)
            elif not leading and self.leading:
                log.warning("event=scheduler_lease_lost holder=%s", self.holder)
                self._aps.pause()
                self.leading = False
            self._stop.wait(renew)

    def stop(self, release: bool = True) -> None:
        """Stop the lease loop and APScheduler (waiting for a running job). ``release``: give the lease up so
        another process takes over at once (False simulates a crash: the lease runs out by itself)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._aps.running:
            self._aps.shutdown(wait=True)
        if release and self.leading:
            try:
                self.lease.release()
            except Exception:
                log.exception("event=scheduler_lease_release_failed holder=%s", self.holder)
        self.leading = False
