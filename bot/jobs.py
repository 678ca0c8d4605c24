"""Work accepted from Slack that must outlive the process that accepted it: Sync Now, Retry All and a click's fix
(retry, unlink, ...), and the resume after a Reconnect. Each is a row of ``jobs`` (`bot.models.Job`), committed
before the request is answered (:meth:`JobQueue.enqueue`); the worker processes (`syncbot serve`, roles ``all``
and ``worker``) run them on a few threads each (:meth:`JobQueue.start`).

How a job is claimed, on PostgreSQL (several replicas): a thread opens a transaction on a connection of its own,
``SELECT ... WHERE finished_at IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED``, and for a Retry All, Sync Now
or resume also ``pg_try_advisory_xact_lock(ADVISORY_KEY, connection_id)`` (taken elsewhere: that job is left for
later and the next one is looked at), so one company runs one of those at a time. The transaction stays open while
the job runs (the work itself uses other sessions); the job is marked finished in it, then committed. When the
process dies, PostgreSQL ends its connection: the row lock and the advisory lock go with it and another worker
claims the job. No lease, no clock. The work is safe to run again: the engine keeps its batches under requestids
and its record claims, and settles what a dead process left pending (`SyncEngine.recover_pending`) before a job
runs again.

On SQLite (the embedded default: one process) there are no row locks: the claim is the same query without
``SKIP LOCKED``, and this process keeps in memory which jobs and connections its own threads run. A job left
unfinished when the process starts belonged to a process that died, and runs again. Those are the only two
differences (:meth:`JobQueue._claim`).

Each start is counted first, durably, in a short transaction of its own (a row of ``job_attempts``): a job that
kills its process every time (a poison job) is given up at its ``max_attempts``-th start, its person told. A job
whose payload cannot be run (an unknown kind, a tampered payload: :class:`BadJob`) or whose work raised is
finished at once with its error logged, never run again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Job, JobAttempt
from sync.models import utcnow

log = logging.getLogger("syncbot.jobs")

#: Kinds of which one per connection runs at a time (on every replica together).
SERIAL_KINDS = frozenset({"retry_all", "sync_now", "resume"})
#: The first key of PostgreSQL's two-key advisory locks taken for SERIAL_KINDS (the second: the connection id).
ADVISORY_KEY = 160_017
#: A job's row, with its id back (SQLite 3.35+ and PostgreSQL).
_ENQUEUE = insert(Job).returning(Job.id)
TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(CAST(:key AS integer), CAST(:conn AS integer))")


class BadJob(ValueError):
    """A job that cannot be run as stored (unknown kind, a payload of the wrong shape): finished with this error,
    never tried again."""


class SealedForOthers(BadJob):
    """A job whose sealed values (its response_url, trigger_id) this process's TOKEN_ENCRYPTION_KEYS cannot open:
    a wrong key, or a key rotation not rolled out to this replica yet. Left to a replica whose keys open it (this
    process skips it from now on; the start is not counted); finished as bad only once it is older than
    :data:`SEALED_GRACE_SECONDS` (no replica could open it: a tampered value)."""


#: How long a job no replica's keys could open stays unfinished, for a replica that can, before it is finished as
#: bad (seconds; a response_url it would answer through lasts 30 minutes).
SEALED_GRACE_SECONDS = 3600.0


@dataclass(frozen=True)
class Claimed:
    """A job a thread holds: what it runs, and how many times it was started (this start included)."""

    id: int
    kind: str
    connection_id: int | None
    payload: Mapping[str, Any]
    attempt: int = 0
    created_at: dt.datetime | None = None


Runner = Callable[[Claimed], None]


class JobQueue:
    """The jobs table, as a queue. ``run(job)`` does a job's work (raises BadJob for a payload it cannot run);
    ``give_up(job)`` tells the person a job that was started ``max_attempts`` times without finishing is dropped;
    ``failed(job)`` tells them a job whose work raised (it is not run again)."""

    def __init__(self, db_engine: Engine, sessions: sessionmaker[Session], run: Runner,
                 give_up: Runner | None = None, *, threads: int = 4, max_attempts: int = 3,
                 poll_seconds: float = 0.5, failed: Runner | None = None) -> None:
        self.db_engine = db_engine
        self.sessions = sessions
        self.run = run
        self.give_up = give_up
        self.failed = failed
        self.threads = threads
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.worker = f"{socket.gethostname()[:64]}:{os.getpid()}"
        self.postgres = db_engine.dialect.name == "postgresql"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: SQLite only: what this process's threads run (no row locks there to say it).
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._busy: set[int] = set()
        #: Jobs this process's keys cannot open (:class:`SealedForOthers`): left to other replicas.
        self._not_mine: set[int] = set()

    # -------------------------------------------------------------------------------------------- enqueue

    def enqueue(self, kind: str, connection_id: int | None, payload: Mapping[str, Any]) -> int:
        """Store a job (committed when this returns) and wake this process's workers; other processes find it
        within ``poll_seconds``. Returns its id. It runs before a request's ack, so it is one INSERT ... RETURNING
        and its commit on a pooled connection (no ORM session, nothing read)."""
        with self.db_engine.begin() as conn:
            job_id = int(conn.execute(_ENQUEUE, {"kind": kind, "connection_id": connection_id,
                                                 "payload": dict(payload), "created_at": utcnow(),
                                                 "attempts": 0}).scalar_one())
        log.info("event=job_enqueued job_id=%s kind=%s connection_id=%s", job_id, kind, connection_id)
        self._wake.set()
        return job_id

    # -------------------------------------------------------------------------------------------- workers

    def start(self) -> None:
        """Start the worker threads (once)."""
        if self._threads:
            return
        self._stop.clear()
        for n in range(self.threads):
            thread = threading.Thread(target=self._loop, name=f"syncbot-job-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs; wait up to ``timeout`` seconds for the ones running (a job still running when the
        process exits is run again by another worker: its claim ends with the process)."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads = []

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                ran = self.run_one()
            except Exception:  # the database went away...: look again after a pause
                log.exception("event=job_worker_failed")
                ran = False
            if not ran:
                self._wake.wait(self.poll_seconds)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no job is unfinished (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.sessions() as session:
                if not session.scalar(select(func.count()).select_from(Job).where(Job.finished_at.is_(None))):
                    return
            time.sleep(0.05)
        raise TimeoutError("jobs still unfinished")

    # -------------------------------------------------------------------------------------------- one job

    def run_one(self) -> bool:
        """Claim one job and run it to the end; False when there was none to claim."""
        conn = self.db_engine.connect()
        try:
            job = self._claim(conn)
            if job is None:
                return False
            if not self.postgres:  # nothing to hold on SQLite: the connection goes back to the pool meanwhile
                conn.close()
            try:
                self._run_claimed(conn if self.postgres else None, job)
            finally:
                if not self.postgres:
                    with self._lock:
                        self._running.discard(job.id)
                        if job.connection_id is not None:
                            self._busy.discard(job.connection_id)
            return True
        finally:
            conn.close()

    def _claim(self, conn: Connection) -> Claimed | None:
        """The oldest unfinished job no other worker holds, held by ``conn``'s open transaction (PostgreSQL: its
        row lock and, for SERIAL_KINDS, the connection's advisory lock), or None. The only place SQLite and
        PostgreSQL differ."""
        after = 0
        with self._lock if not self.postgres else contextlib.nullcontext():
            while True:
                query = select(Job.id, Job.kind, Job.connection_id, Job.payload, Job.created_at).where(
                    Job.finished_at.is_(None), Job.id > after).order_by(Job.id).limit(1)
                if self._not_mine:
                    query = query.where(Job.id.not_in(self._not_mine))
                if self.postgres:
                    query = query.with_for_update(skip_locked=True)
                elif self._running:
                    query = query.where(Job.id.not_in(self._running))
                row = conn.execute(query).first()
                if row is None:
                    conn.rollback()
                    return None
                serial = row.kind in SERIAL_KINDS and row.connection_id is not None
                if serial and self.postgres:
                    free = bool(conn.execute(TRY_LOCK, {"key": ADVISORY_KEY, "conn": int(row.connection_id)}).scalar())
                else:
                    free = not serial or row.connection_id not in self._busy
                if not free:  # this company runs a Retry All or Sync Now now: leave this one for later
                    conn.rollback()
                    after = int(row.id)
                    continue
                if not self.postgres:
                    self._running.add(int(row.id))
                    if serial:
                        self._busy.add(int(row.connection_id))
                    conn.commit()  # nothing to hold on SQLite: the sets above say it
                payload = row.payload if isinstance(row.payload, Mapping) else {}
                return Claimed(int(row.id), str(row.kind), row.connection_id, payload, created_at=row.created_at)

    def _count_attempt(self, job_id: int) -> int:
        """Record this start of ``job_id`` in a short transaction of its own; how many starts it has had."""
        with self.sessions() as session, session.begin():
            session.execute(insert(JobAttempt).values(job_id=job_id, worker=self.worker, started_at=utcnow()))
            return int(session.scalar(select(func.count()).select_from(JobAttempt).where(
                JobAttempt.job_id == job_id)) or 0)

    def _leave_to_others(self, conn: Connection | None, job: Claimed, error: str) -> None:
        """Give ``job`` back unfinished (its start uncounted) and skip it in this process from now on."""
        if conn is not None:
            conn.rollback()  # PostgreSQL: the claim's row and advisory locks go; another replica takes the job
        with self.sessions() as session, session.begin():
            last = session.scalar(select(func.max(JobAttempt.id)).where(JobAttempt.job_id == job.id,
                                                                        JobAttempt.worker == self.worker))
            if last is not None:
                session.execute(delete(JobAttempt).where(JobAttempt.id == last))
        with self._lock:
            self._not_mine.add(job.id)
        log.error("event=job_sealed_for_other_keys job_id=%s kind=%s worker=%s error=%s: this process's "
                  "TOKEN_ENCRYPTION_KEYS cannot open it; left to a replica whose keys can", job.id, job.kind,
                  self.worker, error[:200])

    @staticmethod
    def _tell(answer: Runner | None, job: Claimed, why: str) -> None:
        """Tell the person of a job that will not finish (``answer``: ``give_up`` or ``failed``); an answer that
        fails is logged (``event=job_<why>_answer_failed``), never raised: the job's row is finished anyway."""
        if answer is None:
            return
        try:
            answer(job)
        except Exception:
            log.exception("event=job_%s_answer_failed job_id=%s", why, job.id)

    def _run_claimed(self, conn: Connection | None, job: Claimed) -> None:
        attempt = self._count_attempt(job.id)
        job = dataclasses.replace(job, attempt=attempt)
        started = time.monotonic()
        outcome, error = "done", None
        if attempt > self.max_attempts:
            outcome, error = "gave_up", f"started {attempt - 1} times without finishing"
            log.error("event=job_given_up job_id=%s kind=%s attempts=%d", job.id, job.kind, attempt - 1)
            self._tell(self.give_up, job, "give_up")
        else:
            log.info("event=job_started job_id=%s kind=%s attempt=%d worker=%s", job.id, job.kind, attempt,
                     self.worker)
            try:
                self.run(job)
            except SealedForOthers as exc:
                if job.created_at is None or (utcnow() - job.created_at).total_seconds() < SEALED_GRACE_SECONDS:
                    self._leave_to_others(conn, job, str(exc))
                    return
                outcome, error = "bad", str(exc)[:500]
                log.error("event=job_bad job_id=%s kind=%s error=%s", job.id, job.kind, error)
            except BadJob as exc:
                outcome, error = "bad", str(exc)[:500]
                log.error("event=job_bad job_id=%s kind=%s error=%s", job.id, job.kind, error)
            except Exception as exc:
                outcome, error = "failed", f"{type(exc).__name__}: {exc}"[:500]
                log.exception("event=job_failed job_id=%s kind=%s", job.id, job.kind)
                self._tell(self.failed, job, "failed")  # the person was told "the counts follow": say it stopped
        with contextlib.ExitStack() as stack:
            if conn is None:  # SQLite: a short transaction of its own
                conn = stack.enter_context(self.db_engine.connect())
            conn.execute(update(Job).where(Job.id == job.id).values(
                finished_at=utcnow(), outcome=outcome, error=error, attempts=attempt))
            conn.commit()  # PostgreSQL: the claim's transaction, which ends here (its locks with it)
        log.info("event=job_finished job_id=%s kind=%s outcome=%s seconds=%.2f", job.id, job.kind, outcome,
                 time.monotonic() - started)
