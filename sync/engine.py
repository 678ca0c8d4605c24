"""The sync engine: push JobsiteOn records to the provider, pull the provider's changes, and fix what failed.

Every attempt writes one sync log entry (first as `pending`, committed before the provider call, so a crash
leaves a trace and its requestid); every error and every resolution writes a notification in the same
transaction (the outbox). What the engine promises:

- **One write per intent.** A record is claimed (`record_claims`) before it is pushed: a second Retry of the same
  entry while the first runs gets `InProgress`, and a finished one gets `NothingToRetry`. Every write carries a
  QuickBooks `requestid`; a retry after an uncertain outcome (timeout, gateway error) reuses it, so a write whose
  answer was lost is not done twice.
- **Chains.** A new attempt of a record supersedes its open entries (`superseded_by_id`); when the record syncs,
  the whole chain is resolved (`resolved_at`, `resolved_by`).
- **Connection-wide failures** (auth_expired, rate_limited, subscription) open one incident per connection, mark
  the connection (expired / rate_limited until `paused_until` / suspended) and stop the run; `resume` retries
  every entry that waited on it and syncs what changed meanwhile.
- **Conflicts** (5010, a stale SyncToken) re-read the object and try once more; only a second 5010 is logged.

`SyncEngine` is composed of parts, one module each: `sync.engine_claims` (record claims), `sync.engine_base` (what
the parts share: connections, records, links, entries and their outbox rows, incidents), `sync.engine_push` (one
record), `sync.engine_batches` (batches of 30, stored before they are sent, resent or reconciled),
`sync.engine_fixes` (an entry's fixes), `sync.engine_pulls` (CDC). This module holds the runs (sync now, retry
all, pause and resume, crash recovery) and exports the engine's public names; `sync.engine_errors` and
`sync.engine_values` hold its refusals and small values.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from sync.diagnosis import Diagnosis, Kind
from sync.engine_base import (
    CDC_LOOKBACK,
    CONNECTION_KINDS,
    PARKED,
    PULL_ENTITIES,
    PUSH_ORDER,
    UNCERTAIN_HTTP,
    connection_topic,
    in_doubt,
    new_request_id,
    record_topic,
)
from sync.engine_batches import BatchPushes
from sync.engine_claims import claim_owner, owner_is_dead
from sync.engine_errors import (
    ConnectionUnavailable,
    DependencyMissing,
    EngineError,
    InProgress,
    NotFound,
    NothingToRetry,
)
from sync.engine_fixes import FILLABLE_FIELDS, EntryFixes, FieldChoices
from sync.engine_pulls import Pulls
from sync.engine_values import EngineConfig, Progress, RunSummary, Target
from sync.log import open_clause, open_counts, open_entries, retryable
from sync.models import (
    RECORD_MODELS,
    ConnectionStatus,
    Direction,
    Entity,
    Incident,
    Invoice,
    InvoiceLine,
    Link,
    RecordClaim,
    Status,
    SyncLogEntry,
)
from sync.providers.base import ProviderError
from sync.providers.quickbooks import payload_hash

log = logging.getLogger("syncbot.engine")


class SyncEngine(EntryFixes, BatchPushes, Pulls):
    """Runs syncs for connections. Thread-safe: every method opens its own sessions.

    ``provider_for(connection)`` returns the Provider bound to that connection (tokens, realm). ``clock`` gives
    the current UTC time (injectable for tests).
    """

    # ------------------------------------------------------------------------------------------ runs

    def open_errors(self, connection_id: int, kinds: Sequence[str] | None = None) -> list[SyncLogEntry]:
        """The connection's open errors that Retry All can retry (``sync.log.retryable``: a record's push; one per
        record), oldest first. Every open error, retryable or not: ``sync.log.open_entries``."""
        with self.sessions() as session:
            stmt = select(SyncLogEntry).where(
                SyncLogEntry.connection_id == connection_id, SyncLogEntry.direction == Direction.PUSH,
                open_clause(), SyncLogEntry.record_id.is_not(None))
            if kinds:
                stmt = stmt.where(SyncLogEntry.kind.in_(list(kinds)))
            entries = list(session.scalars(stmt.order_by(SyncLogEntry.id)))
            session.expunge_all()
            return entries

    def retry_all(self, connection_id: int, actor: str, progress: Progress | None = None) -> RunSummary:
        """Retry every open error of the connection that offers Retry (:meth:`retry_all_errors`), through
        batches (batches cut short first: what their answers settle is not retried again). Raises
        ConnectionUnavailable."""
        self._ready(connection_id)
        targets = [Target(Entity(e.entity), e.record_id or 0, True) for e in self.retry_all_errors(connection_id)]
        return self.push_many(connection_id, targets, actor, progress, resend=False)

    def retry_all_errors(self, connection_id: int) -> list[SyncLogEntry]:
        """The open errors Retry All retries (``sync.log.retryable``: a record's push whose card offers Retry),
        oldest first; the Retry All offer counts the others by kind."""
        return [e for e in self.open_errors(connection_id) if retryable(e)]

    def _uncertain_creates(self, connection_id: int) -> list[Target]:
        """Records whose create went out but whose outcome is unknown (no answer, or the process died during it)
        and that have no copy linked: QuickBooks may hold a copy a pull would take for a new record of its own.
        Sync Now sends them again (same requestid) before it pulls."""
        uncertain = [e for e in self.open_errors(connection_id) if in_doubt(e)]
        if not uncertain:
            return []
        with self.sessions() as session:
            linked = set(session.execute(select(Link.entity, Link.record_id).where(
                Link.connection_id == connection_id,
                Link.record_id.in_({e.record_id for e in uncertain if e.record_id is not None}))).tuples())
        return [Target(Entity(e.entity), e.record_id or 0, True) for e in uncertain
                if (e.entity, e.record_id) not in linked]

    def changed_records(self, connection_id: int) -> list[Target]:
        """Records that are not in the provider yet, or changed since their last push, in push order."""
        out: list[Target] = []
        with self.sessions() as session:
            conn = self._connection(session, connection_id)
            provider = self.provider_for(conn)
            links = {(lk.entity, lk.record_id): lk for lk in session.scalars(
                select(Link).where(Link.connection_id == connection_id))}
            for entity in PUSH_ORDER:
                model = RECORD_MODELS[entity]
                stmt = select(model).where(model.account_id == conn.account_id).order_by(model.id)
                if entity == Entity.INVOICE:
                    stmt = stmt.options(selectinload(Invoice.lines).selectinload(InvoiceLine.item))
                records: Iterable[Any] = session.scalars(stmt)  # a select of one of four classes: typed as Base
                for record in records:
                    link = links.get((entity.value, record.id))
                    if link is None:
                        out.append(Target(entity, record.id))
                        continue
                    if link.remote_deleted:
                        continue  # waits for Re-create or Unlink
                    try:
                        refs = self._refs(session, connection_id, entity, record)
                        digest = payload_hash(provider.payload(entity, record, refs))
                    except DependencyMissing:
                        digest = ""
                    if digest != link.synced_hash:
                        out.append(Target(entity, record.id))
        return out

    def sync_now(self, connection_id: int, actor: str, progress: Progress | None = None, *,
                 try_early: bool = False) -> RunSummary:
        """Pull what changed in the provider, then push what changed in JobsiteOn. Raises ConnectionUnavailable.

        ``try_early`` (Sync Now clicked in Slack, `/sync-log resume`): on a connection paused by a rate limit, ask
        QuickBooks once with one cheap request (:meth:`try_resume`) instead of refusing until the pause is over.

        Batches cut short are sent again first; while one is still unsettled (QuickBooks unreachable again, or
        another process's batch in flight) nothing is pulled or pushed: the copies it may have made in QuickBooks
        would come back as records of their own. The run then says how many records wait (``waiting``)."""
        if try_early and self._rate_limited(connection_id):
            return self.try_resume(connection_id, actor, progress)
        self._ready(connection_id)
        uncertain = self._uncertain_creates(connection_id)
        first = self.push_many(connection_id, uncertain, actor, resend=False) if uncertain else RunSummary()
        with self.sessions() as session:
            waiting = len(self._in_open_batches(session, connection_id))
        left = len(self._uncertain_creates(connection_id))
        if waiting or left or first.stopped or first.failure:
            first.skipped += waiting + left
            first.waiting += waiting + left
            return first
        summary = self.pull(connection_id, actor)
        if summary.stopped:
            return summary
        pushed = self.push_many(connection_id, self.changed_records(connection_id), actor, progress, resend=False)
        pushed.pulled = summary.pulled
        for key in ("synced", "errors", "warnings"):
            setattr(pushed, key, getattr(pushed, key) + getattr(first, key))
        with self.sessions() as session, session.begin():
            self._connection(session, connection_id).last_sync_at = self.clock()
        return pushed

    # ------------------------------------------------------------------------------------------ connection

    def pause(self, connection_id: int, seconds: float | None = None) -> dt.datetime:
        """Pause a rate-limited connection for ``seconds`` (default: 15 minutes). Returns paused_until (UTC)."""
        with self.sessions() as session, session.begin():
            conn = self._connection(session, connection_id)
            conn.status = ConnectionStatus.RATE_LIMITED.value
            conn.paused_until = self.clock() + dt.timedelta(
                seconds=seconds if seconds is not None else self.config.rate_limit_pause_seconds)
            self._open_incident(session, conn, Kind.RATE_LIMITED, "Paused: too many API calls in a short period.")
            return conn.paused_until

    def _rate_limited(self, connection_id: int) -> bool:
        """Whether the connection is paused by a rate limit (its pause running, or over and not resumed yet: the
        scheduler's resume has not come by, so its incident is still open)."""
        with self.sessions() as session:
            return self._connection(session, connection_id).status == ConnectionStatus.RATE_LIMITED

    def try_resume(self, connection_id: int, actor: str, progress: Progress | None = None) -> RunSummary:
        """Before a rate-limit pause is over, try once whether QuickBooks takes requests again: one cheap
        request (``Provider.probe``, a CompanyInfo read). When it is answered, :meth:`resume` (the incident
        closes, the waiting records go, then what changed syncs). When QuickBooks still throttles, the pause
        starts again from now (its Retry-After, else ``rate_limit_pause_seconds``: the help article's 15
        minutes), the incident's message is drawn again with the new time, and ConnectionUnavailable carries
        it (``until``). Any other failure of that request is recorded as a run failure would be (an expired
        authorization replaces the incident with auth_expired) and raised as ConnectionUnavailable too; a
        connection that is not paused simply resumes."""
        with self.sessions() as session:
            conn = self._connection(session, connection_id)
            if conn.status in (ConnectionStatus.EXPIRED, ConnectionStatus.REVOKED) or not conn.realm_id:
                self._ensure_available(conn)
            provider = self.provider_for(conn)
        provider.lift_pause()  # this process's own pause must not hold the one request back
        try:
            self._keep_company_name(connection_id, provider.probe())
        except ProviderError as exc:
            diag = exc.diagnosis
            if diag.kind == Kind.RATE_LIMITED:
                until = self._pause_again(connection_id, diag)
                log.info("event=early_resume_throttled connection_id=%s paused_until=%s", connection_id,
                         until.isoformat())
                raise ConnectionUnavailable("QuickBooks still asks us to slow down; syncing resumes by itself.",
                                            Kind.RATE_LIMITED, until) from None
            self._record_run_failure(connection_id, diag, RunSummary())
            with self.sessions() as session:
                conn = self._connection(session, connection_id)
                kind = diag.kind if diag.kind in CONNECTION_KINDS else Kind.RATE_LIMITED
                paused_until = conn.paused_until if kind == Kind.RATE_LIMITED else None
            log.warning("event=early_resume_failed connection_id=%s kind=%s", connection_id, diag.label)
            raise ConnectionUnavailable(f"QuickBooks did not take the request ({diag.label}).", kind,
                                        paused_until) from None
        log.info("event=early_resume connection_id=%s actor=%s", connection_id, actor)
        return self.resume(connection_id, actor, resolution="resumed", progress=progress)

    def read_company_name(self, connection_id: int) -> str | None:
        """Read the company's name from the provider (one CompanyInfo read, ``Provider.probe``) and keep it on the
        connection, for the cards to name the company; done when the connection is authorized, never while a card
        is drawn. A refused or unanswered read leaves the name as it was (None: cards name the realm id) and
        changes nothing else. Returns the name kept."""
        with self.sessions() as session:
            conn = self._connection(session, connection_id)
            if not conn.realm_id:
                return None
            provider = self.provider_for(conn)
        try:
            name = provider.probe()
        except ProviderError as exc:
            log.warning("event=company_name_unread connection_id=%s kind=%s", connection_id, exc.diagnosis.label)
            return None
        self._keep_company_name(connection_id, name)
        return name

    def _keep_company_name(self, connection_id: int, name: str | None) -> None:
        """Store the company's name read from CompanyInfo on the connection (when it is new)."""
        if not name:
            return
        with self.sessions() as session, session.begin():
            conn = self._connection(session, connection_id)
            if conn.company_name != name:
                conn.company_name = name

    def _pause_again(self, connection_id: int, diag: Diagnosis) -> dt.datetime:
        """QuickBooks throttled again: the pause restarts from now, and the incident's message shows the new
        time (a notification on the connection's topic). Returns the new paused_until (UTC)."""
        with self.sessions() as session, session.begin():
            conn = self._connection(session, connection_id)
            seconds = diag.retry_after if diag.retry_after else self.config.rate_limit_pause_seconds
            conn.status = ConnectionStatus.RATE_LIMITED.value
            conn.paused_until = self.clock() + dt.timedelta(seconds=seconds)
            incident = self._open_incident(session, conn, Kind.RATE_LIMITED, diag.details)
            self._notify(session, conn, "incident_updated", connection_topic(conn.id), incident=incident)
            return conn.paused_until

    def resume(self, connection_id: int, actor: str, resolution: str = "resumed",
               progress: Progress | None = None) -> RunSummary:
        """Bring a connection back after a reconnect or when its pause is over: mark it connected, close the
        incident, retry every entry that waited on it, then sync what changed. Raises ConnectionUnavailable
        when it still cannot be used (no tokens)."""
        with self.sessions() as session, session.begin():
            conn = self._connection(session, connection_id)
            if conn.status == ConnectionStatus.RATE_LIMITED or conn.status == ConnectionStatus.SUSPENDED:
                conn.status = ConnectionStatus.CONNECTED.value
            conn.paused_until = None
            self._ensure_available(conn)
            self.provider_for(conn).lift_pause()
            now = self.clock()
            for incident in list(session.scalars(select(Incident).where(Incident.connection_id == conn.id,
                                                                        Incident.resolved_at.is_(None)))):
                incident.resolved_at, incident.resolved_by, incident.resolution = now, actor, resolution
                self._notify(session, conn, "incident_resolved", connection_topic(conn.id), incident=incident)
            self._resolve_connection_steps(session, conn.id, actor)
        waiting = [Target(Entity(e.entity), e.record_id or 0, True)
                   for e in self.open_errors(connection_id, [k.value for k in CONNECTION_KINDS])]
        summary = self.push_many(connection_id, waiting, actor, progress) if waiting else RunSummary()
        if summary.stopped or summary.failure:
            return summary
        rest = self.sync_now(connection_id, actor, progress)
        for key in ("synced", "errors", "warnings", "skipped", "waiting", "pulled", "unchanged"):
            setattr(summary, key, getattr(summary, key) + getattr(rest, key))
        for kind, n in rest.by_kind.items():
            summary.by_kind[kind] = summary.by_kind.get(kind, 0) + n
        summary.stopped, summary.failure = rest.stopped, rest.failure
        return summary

    def recover_pending(self, older_than_seconds: float | None = None) -> int:
        """Settle attempts left `pending` by a process that died during them (killed mid-Retry, mid-batch).

        An attempt counts as abandoned at once, whatever its age, when no claim holds its record (attempts run
        under their record's claim: a run whose outcome could not be recorded, a database error, released it) or
        the claim belongs to a process of this machine that no longer runs (a restart after a crash or a kill);
        else when it and its claim are older than ``older_than_seconds`` (default: the claim lease, after which
        the engine lets another worker take the record's claim over too). A live worker's attempt is left alone.
        It becomes an error whose outcome is uncertain, so the retry reuses its requestid and a write that did
        happen is not done twice; its record's message is drawn again through the outbox (it said "Retrying…").
        One that a later attempt of the record has overtaken is handed to that attempt instead (superseded, and resolved
        when that one synced). First, batches cut short are sent again as they were (:meth:`resend_batches`),
        which settles their attempts with QuickBooks' real answers; and claims of processes of this machine that
        no longer run are dropped, so their records are not skipped for the length of the lease. Called when
        `syncbot serve` and `syncbot demo` start, by every CLI command that writes, and by the scheduler's resume
        job. Returns how many attempts were settled as interrupted."""
        age = self.config.claim_lease_seconds if older_than_seconds is None else older_than_seconds
        self.resend_batches()
        settled = 0
        cutoff = self.clock() - dt.timedelta(seconds=age)
        with self.sessions() as session, session.begin():
            dead = {owner for owner in session.scalars(select(RecordClaim.owner).distinct()) if owner_is_dead(owner)}
            if dead:
                session.execute(delete(RecordClaim).where(RecordClaim.owner.in_(dead)).where(
                    ~select(SyncLogEntry.id).where(
                        SyncLogEntry.status == Status.PENDING, SyncLogEntry.connection_id == RecordClaim.connection_id,
                        SyncLogEntry.entity == RecordClaim.entity, SyncLogEntry.record_id == RecordClaim.record_id,
                    ).exists()))
        with self.sessions() as session, session.begin():
            pending = list(session.scalars(select(SyncLogEntry).where(SyncLogEntry.status == Status.PENDING)
                                           .order_by(SyncLogEntry.id)))
            for entry in pending:
                if entry.connection_id is None or entry.record_id is None:
                    continue
                claim = session.get(RecordClaim, (entry.connection_id, entry.entity, entry.record_id))
                if claim is not None and owner_is_dead(claim.owner):
                    session.delete(claim)  # its holder is gone: the record is free again
                elif claim is not None and (entry.created_at is None or entry.created_at >= cutoff
                                            or claim.claimed_at >= cutoff):
                    continue  # a live worker may still be on it
                # else no claim holds the record: nobody is writing it (an attempt runs under its record's claim,
                # released only after its outcome is recorded), so a run whose recording failed left it
                self._settle_interrupted(session, entry)
                settled += 1
                later = session.scalars(select(SyncLogEntry).where(
                    SyncLogEntry.connection_id == entry.connection_id, SyncLogEntry.entity == entry.entity,
                    SyncLogEntry.record_id == entry.record_id, SyncLogEntry.direction == entry.direction,
                    SyncLogEntry.id > entry.id).order_by(SyncLogEntry.id.desc()).limit(1)).first()
                if later is not None:  # overtaken: the later attempt's message is the current one
                    entry.superseded_by_id = later.id
                    if later.status == Status.SYNCED or later.resolved_at is not None:
                        entry.resolved_at = later.resolved_at or later.created_at
                        entry.resolved_by = later.resolved_by or later.actor
                    continue
                conn = self._connection(session, entry.connection_id)
                self._notify(session, conn, "error", record_topic(conn.id, entry.entity, entry.record_id), entry)
                log.warning("event=pending_recovered connection_id=%s entity=%s record_id=%s entry_id=%s",
                            conn.id, entry.entity, entry.record_id, entry.id)
        return settled

    def counts(self, connection_id: int) -> dict[str, int]:
        """Open errors of the connection by kind (``sync.log.open_counts``: the one definition)."""
        with self.sessions() as session:
            return open_counts(session, connection_id=connection_id)

    def open_entries(self, connection_id: int) -> list[SyncLogEntry]:
        """Every open error of the connection (``sync.log.open_entries``), retryable or not, oldest first."""
        with self.sessions() as session:
            entries = open_entries(session, connection_id=connection_id)
            session.expunge_all()
            return entries


__all__ = [
    "CDC_LOOKBACK", "CONNECTION_KINDS", "FILLABLE_FIELDS", "PARKED", "PULL_ENTITIES", "PUSH_ORDER", "UNCERTAIN_HTTP",
    "ConnectionUnavailable", "DependencyMissing", "EngineConfig", "EngineError", "FieldChoices", "InProgress",
    "NotFound", "NothingToRetry", "Progress", "RunSummary", "SyncEngine", "claim_owner", "connection_topic",
    "new_request_id", "record_topic",
]
