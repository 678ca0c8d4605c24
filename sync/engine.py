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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from sync.chunk_reads import UNREAD, ChunkReads
from sync.db import error_line, write_lock
from sync.diagnosis import Diagnosis, Kind, make_diagnosis
from sync.engine_base import (
    CDC_LOOKBACK,
    CONNECTION_KINDS,
    PARKED,
    PULL_ENTITIES,
    PUSH_ORDER,
    UNCERTAIN_HTTP,
    connection_topic,
    dependency_diagnosis,
    found_copies,
    in_doubt,
    new_request_id,
    no_answer,
    readable_batch,
    record_topic,
    reopen,
    unreachable,
    waits_on,
)
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
from sync.engine_values import DepLink, EngineConfig, Failed, Progress, RunSummary, Successes, Target
from sync.log import open_clause, open_counts, open_entries, retryable
from sync.models import (
    RECORD_MODELS,
    Connection,
    ConnectionStatus,
    Direction,
    Entity,
    Incident,
    Invoice,
    InvoiceLine,
    Link,
    Notification,
    PushBatch,
    RecordClaim,
    Status,
    SyncLogEntry,
    table_of,
)
from sync.providers.base import BatchOp, Provider, ProviderError, Written
from sync.providers.quickbooks import MAX_BATCH, QBO_NAMES, dumps, payload_hash, payload_text

log = logging.getLogger("syncbot.engine")


class SyncEngine(EntryFixes, Pulls):
    """Runs syncs for connections. Thread-safe: every method opens its own sessions.

    ``provider_for(connection)`` returns the Provider bound to that connection (tokens, realm). ``clock`` gives
    the current UTC time (injectable for tests).
    """

    # ------------------------------------------------------------------------------------------ claims


    # ------------------------------------------------------------------------------------------ one record


    # ------------------------------------------------------------------------------------------ total mismatch


    # ------------------------------------------------------------------------------------------ many records

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

    def push_many(self, connection_id: int, targets: Sequence[Target], actor: str,
                  progress: Progress | None = None, resend: bool = True) -> RunSummary:
        """Push ``targets`` in batches of 30, entity by entity (contacts, items, invoices, payments), several
        batches in flight. Stops at a connection-wide failure (the rest keep their open entries). ``resend``:
        first check the connection and send batches cut short again (:meth:`_ready`); False for a caller that
        just did. Raises ConnectionUnavailable."""
        summary = RunSummary()
        if resend:
            self._ready(connection_id)
        total = len(targets)
        done = 0
        lock = threading.Lock()
        stop = threading.Event()
        seen: set[tuple[Entity, int]] = set()
        unique: list[Target] = []
        for t in targets:
            if (t.entity, t.record_id) not in seen:
                seen.add((t.entity, t.record_id))
                unique.append(t)

        def run_chunk(chunk: list[Target]) -> None:
            nonlocal done
            if stop.is_set():
                return
            try:
                entries = self._push_chunk(connection_id, chunk, actor, summary, lock)
            except SQLAlchemyError as exc:  # the database refused a write: stop, say so (nothing half-done)
                reason = error_line(exc)
                log.error("event=run_database_error connection_id=%s error=%s", connection_id, reason)
                with lock:
                    summary.failure = summary.failure or f"the database refused a write: {reason}"
                stop.set()
                return
            with lock:
                for entry in entries:
                    summary.count(entry)
                    if entry.kind in CONNECTION_KINDS or unreachable(entry):
                        summary.stopped = Kind(entry.kind or Kind.UNKNOWN)
                        stop.set()
                done += len(chunk)
                if progress:
                    progress(done, total)

        for entity in PUSH_ORDER:
            phase = [t for t in unique if t.entity == entity]
            cuts = list(itertools.accumulate(self._batch_sizes(connection_id, len(phase)), initial=0))
            chunks = [phase[a:b] for a, b in itertools.pairwise(cuts)]
            with ThreadPoolExecutor(max_workers=max(1, self.config.batch_workers)) as pool:
                list(pool.map(run_chunk, chunks))
            if stop.is_set():
                break
        return summary

    def _batch_sizes(self, connection_id: int, count: int) -> list[int]:
        """Batch sizes for ``count`` records: the provider's ``batch_sizes`` (QuickBooks: batches that fill its
        budget's windows exactly), else batches of ``MAX_BATCH``."""
        plain = [min(MAX_BATCH, count - i) for i in range(0, count, MAX_BATCH)]
        if not count:
            return plain
        try:
            with self.sessions() as session:
                sizes = getattr(self.provider_for(self._connection(session, connection_id)), "batch_sizes", None)
                cut = list(sizes(count)) if sizes else plain
        except SQLAlchemyError:
            return plain
        return cut if sum(cut) == count and all(0 < n <= MAX_BATCH for n in cut) else plain

    def _push_chunk(self, connection_id: int, chunk: list[Target], actor: str, summary: RunSummary,
                    lock: threading.Lock) -> list[SyncLogEntry]:
        won = self._try_claim_many(connection_id, [(t.entity.value, t.record_id) for t in chunk])
        claimed = [t for t in chunk if (t.entity.value, t.record_id) in won]
        with lock:
            summary.skipped += len(chunk) - len(claimed)
        try:
            return self._push_claimed_chunk(connection_id, claimed, actor, summary, lock)
        finally:
            try:
                self._release_many(connection_id, [(t.entity.value, t.record_id) for t in claimed])
            except SQLAlchemyError as exc:  # the claims go with this process (or its lease)
                log.error("event=claims_not_released connection_id=%s error=%s", connection_id, error_line(exc))

    def _push_claimed_chunk(self, connection_id: int, chunk: list[Target], actor: str, summary: RunSummary,
                            lock: threading.Lock) -> list[SyncLogEntry]:
        """Push claimed records as one batch request. The batch (members, payloads, requestid) is stored with the
        attempts' pending entries, in one transaction, before it is sent: a crash after that leaves it to
        :meth:`resend_batches`, which sends exactly the same request again. A record still waiting in such a
        batch is skipped (counted in ``summary.skipped``) rather than written a second way."""
        results: list[SyncLogEntry] = []
        items: list[dict[str, Any]] = []
        prepared: dict[tuple[str, int], Any] = {}  # the batch's records, kept to record its outcomes from
        with self.sessions() as session, session.begin():
            write_lock(session)  # reads the chunk, then writes its attempts and batch
            conn = self._connection(session, connection_id)
            try:
                self._ensure_available(conn)
            except ConnectionUnavailable:
                return []
            provider = self.provider_for(conn)
            waiting = self._in_open_batches(session, conn.id)
            self._read_chunk(session, conn, [t for t in chunk if (t.entity.value, t.record_id) not in waiting])
            singles: list[tuple[Target, int, str, dict[str, Any], str, tuple[str, str | None] | None,
                                list[DepLink], Mapping[str, Any] | None]] = []
            made: list[tuple[int, Target, str, str, Link | None, Any]] = []
            attempts: list[tuple[dict[str, Any], list[SyncLogEntry]]] = []
            for i, t in enumerate(chunk):
                if (t.entity.value, t.record_id) in waiting:
                    with lock:
                        summary.skipped += 1
                        summary.waiting += 1
                    continue
                try:
                    record = self._load_record(session, conn.account_id, t.entity, t.record_id)
                except NotFound:
                    continue
                link = self._link(session, conn.id, t.entity, t.record_id)
                try:
                    refs = self._refs(session, conn.id, t.entity, record)
                except DependencyMissing as missing:
                    entry = self._new_entry(session, conn, t, record, actor, None, None)
                    waits_on(entry, missing)
                    self._finish_failure(session, conn, entry, dependency_diagnosis(missing))
                    results.append(entry)
                    continue
                payload = provider.payload(t.entity, record, refs)
                text, digest = payload_text(payload)
                # unchanged since it synced, with nothing open (even when forced: another process's Retry All
                # may have synced it since this run listed it), or waiting for Re-create or Unlink
                if link is not None and ((link.remote_deleted and not t.force) or (
                        link.synced_hash == digest and not self._open_entries(session, conn.id, t.entity,
                                                                              t.record_id))):
                    with lock:
                        summary.unchanged += 1
                    continue
                values, previous = self._attempt_values(session, conn, t, record, actor, digest, None,
                                                        creating=link is None)
                remote = (link.remote_id, link.sync_token) if link is not None else None
                if (values["data"] or {}).get("reused_request_id"):  # repeats an uncertain write: alone, same id
                    entry = SyncLogEntry(**values)
                    session.add(entry)
                    session.flush()
                    for old in previous:
                        old.superseded_by_id = entry.id
                    singles.append((t, entry.id, entry.request_id or "", payload, digest, remote,
                                    self._dep_links(session, conn.id, t.entity, record),
                                    self._forgotten_create(session, entry, remote, payload)))
                    continue
                attempts.append((values, previous))
                made.append((i, t, text, digest, link, record))
            # the batch's attempts, inserted together (one INSERT, one UPDATE of what they supersede), then the
            # batch that names them, then their batch id
            batch_id: int | None = None
            request_id = new_request_id()
            for (i, t, text, digest, link, record), entry_id in zip(
                    made, self._insert_attempts(session, attempts), strict=True):
                prepared[(t.entity.value, t.record_id)] = record
                items.append({
                    "key": f"b{i}", "entry_id": entry_id, "entity": t.entity.value, "record_id": t.record_id,
                    "payload": json.loads(text), "digest": digest,  # as it goes on the wire
                    "remote": [link.remote_id, link.sync_token] if link is not None else None,
                    "deps": [[d.entity.value, d.record_id, d.remote_id, d.label]
                             for d in self._dep_links(session, conn.id, t.entity, record)]})
            if items:
                batch_id = session.execute(insert(table_of(PushBatch)).values(
                    connection_id=conn.id, request_id=request_id, owner=self._owner, created_at=self.clock(),
                    items=items).returning(table_of(PushBatch).c.id)).scalar_one()
                session.execute(update(table_of(SyncLogEntry)).where(
                    table_of(SyncLogEntry).c.id.in_([it["entry_id"] for it in items])).values(batch_id=batch_id))
            session.flush()
            session.expunge_all()
        for t, entry_id, request_id, payload, digest, remote, deps, name in singles:
            results.append(self._write_one(connection_id, t, entry_id, request_id, payload, digest, remote, deps,
                                           provider, actor, name))
        if batch_id is None:
            return results
        return results + self._send_batch(connection_id, batch_id, request_id, items, provider, actor,
                                          records=prepared)

    def resend_batches(self, connection_id: int | None = None) -> int:
        """Send again, exactly as stored, every batch cut short: stored but never answered because its process
        died (killed between storing it and recording its answers) or because its answer was lost (a timeout, a
        gateway error). The same members, payloads and requestid go out, so QuickBooks answers from its requestid
        memory and does no work twice; the answers are then recorded as any batch's (the members' messages turn
        Synced or show the real error). A batch counts as cut short when it was parked (answer lost, or nobody
        could send it), when its owner is a process of this machine that no longer runs, or when it is older than
        the claim lease. One older than ``requestid_memory_seconds`` is first reconciled by reading QuickBooks
        (:meth:`_reconcile`). A batch that cannot be sent now (connection blocked, QuickBooks unreachable) is
        parked for the next time. Called before every push and by :meth:`recover_pending`. Returns how many
        batches were settled."""
        now = self.clock()
        stale = now - dt.timedelta(seconds=self.config.claim_lease_seconds)
        with self.sessions() as session:
            stmt = select(PushBatch.id, PushBatch.owner, PushBatch.created_at, PushBatch.connection_id).where(
                PushBatch.settled_at.is_(None)).order_by(PushBatch.id)
            if connection_id is not None:
                stmt = stmt.where(PushBatch.connection_id == connection_id)
            rows = list(session.execute(stmt))
        settled = 0
        for batch_id, owner, created_at, conn_id in rows:
            if owner == self._owner or (owner != PARKED and created_at >= stale and not owner_is_dead(owner)):
                continue  # in flight here or in a live process
            with self.sessions() as session, session.begin():  # take it over: one process sends it again
                took = session.execute(update(PushBatch).where(
                    PushBatch.id == batch_id, PushBatch.settled_at.is_(None), PushBatch.owner == owner).values(
                    owner=self._owner))
                if not took.rowcount:  # type: ignore[attr-defined]
                    continue
                batch = session.get(PushBatch, batch_id)
                assert batch is not None
                items, request_id = list(batch.items or []), batch.request_id
                if not readable_batch(items):  # not as syncbot stored it: never send what it cannot read
                    self._give_up_batch(session, batch)
                    continue
            try:
                provider = self._available_provider(conn_id)
                known = found_copies(items)  # what an earlier reconciliation found (stored in the batch)
                if created_at < now - dt.timedelta(seconds=self.config.requestid_memory_seconds):
                    request_id = self._reconcile(conn_id, batch_id, items, provider, known)
            except (ConnectionUnavailable, NotFound, ProviderError) as exc:
                self._park(batch_id)
                log.info("event=batch_resend_later connection_id=%s batch_id=%s reason=%s", conn_id, batch_id,
                         type(exc).__name__)
                continue
            log.warning("event=batch_resent connection_id=%s batch_id=%s items=%s reconciled=%s", conn_id,
                        batch_id, len(items), len(known))
            self._send_batch(conn_id, batch_id, request_id, items, provider, "system", known, resend=True,
                             stored_at=created_at)
            with self.sessions() as session:
                batch = session.get(PushBatch, batch_id)
                settled += batch is not None and batch.settled_at is not None
        return settled

    def _give_up_batch(self, session: Session, batch: PushBatch) -> None:
        """A stored batch that cannot be read back (changed by hand, or by a bug): settled without sending, its
        members' attempts left as uncertain errors that say so (a Retry sends them singly under their own
        requestids). Logged as an error: what QuickBooks holds of it must be checked there."""
        log.error("event=batch_unreadable connection_id=%s batch_id=%s", batch.connection_id, batch.id)
        batch.settled_at = self.clock()
        note = ("This record was sent in a batch whose stored copy cannot be read back, so syncbot cannot send it "
                "again as it was. Check in QuickBooks whether it is there (link it), or Retry.")
        for entry in list(session.scalars(select(SyncLogEntry).where(SyncLogEntry.batch_id == batch.id))):
            if entry.status == Status.PENDING or (entry.is_open and in_doubt(entry)):
                self._fill_failure(entry, make_diagnosis(Kind.UNKNOWN, note))
                entry.data = {**(entry.data or {}), "interrupted": True}

    def _park(self, batch_id: int) -> None:
        """Give a batch this process could not send back to whoever can (``resend_batches``)."""
        with self.sessions() as session, session.begin():
            session.execute(update(PushBatch).where(PushBatch.id == batch_id, PushBatch.owner == self._owner,
                                                    PushBatch.settled_at.is_(None)).values(owner=PARKED))

    def _reconcile(self, connection_id: int, batch_id: int, items: Sequence[Mapping[str, Any]],
                   provider: Provider, known: dict[str, Written]) -> str:
        """A batch older than QuickBooks is trusted to remember its requestid: read QuickBooks before writing
        again. Each create not in ``known`` is looked for there (`Provider.find_copies`: a customer by
        DisplayName, an item by Name, an invoice by DocNumber, a payment by customer, date, amount and invoice): a
        copy found that no other record is linked to is that create's answer (linked, not written again), added to
        ``known``. What was found is stored in the batch (each item's ``found``) in the transaction that gives it
        a fresh requestid and dates it anew, so a run cut short after this still knows, and the rest go out under
        that requestid. Returns it. Raises ProviderError when QuickBooks cannot be read (nothing stored)."""
        for it in items:
            if it.get("remote") or str(it["key"]) in known:
                continue
            found = self._own_copy(provider, connection_id, it["entity"], it["payload"], int(it["record_id"]),
                                   taken={w.remote_id for w in known.values()})
            if found is not None:
                known[str(it["key"])] = found
        request_id = new_request_id()
        stored = [{**it, "found": {"remote_id": known[str(it["key"])].remote_id,
                                   "sync_token": known[str(it["key"])].sync_token,
                                   "body": dict(known[str(it["key"])].body)}}
                  if str(it["key"]) in known else dict(it) for it in items]
        with self.sessions() as session, session.begin():  # a new requestid, remembered from now on
            session.execute(update(PushBatch).where(PushBatch.id == batch_id).values(
                request_id=request_id, created_at=self.clock(), items=json.loads(dumps(stored))))
        return request_id

    def _edited_since(self, session: Session, conn: Connection, entity: Entity, record_id: int,
                      when: dt.datetime) -> bool:
        """Was the record changed in JobsiteOn after ``when``? False when it is gone (the caller says so)."""
        try:
            record = self._load_record(session, conn.account_id, entity, record_id)
        except NotFound:
            return False
        reads = ChunkReads.of(session)
        updated = reads.updated_at(conn.account_id, entity.value, record_id) if reads is not None else UNREAD
        if updated is UNREAD:
            updated = getattr(record, "updated_at", None)
        return updated is not None and updated > when

    def _keep_copy(self, session: Session, conn: Connection, entity: Entity, record_id: int,
                   written: Written) -> None:
        """Link the copy a write made to its record when nothing else is linked to it (stale: the next sync sends
        the record again as an update), so it is never pulled back as a record of its own nor made again."""
        if self._link(session, conn.id, entity, record_id) is not None:
            return
        try:
            self._load_record(session, conn.account_id, entity, record_id)
        except NotFound:
            return
        self._add_link(session, Link(connection_id=conn.id, entity=entity.value, record_id=record_id,
                                     remote_id=written.remote_id, sync_token=written.sync_token, synced_hash="",
                                     synced_at=self.clock()))

    def _send_batch(self, connection_id: int, batch_id: int, request_id: str, items: Sequence[Mapping[str, Any]],
                    provider: Provider, actor: str, known: Mapping[str, Written] | None = None,
                    resend: bool = False, stored_at: dt.datetime | None = None,
                    records: Mapping[tuple[str, int], Any] | None = None) -> list[SyncLogEntry]:
        """Send a stored batch (``items`` as :class:`PushBatch` keeps them) under ``request_id`` and record its
        outcomes, settling the batch in the same transaction. ``known``: answers already found by reading
        QuickBooks (:meth:`_reconcile`), whose items are not sent. ``resend``: the batch was sent before and
        what became of that is unknown, so a refusal of the whole request now (a 429, a 401, a 500) says nothing
        about it: the batch stays parked for the next time, never settled as failed. ``records``: the members'
        records as the batch was prepared from them (see :meth:`_read_outcomes`). Returns the entries finished;
        none when another process took the batch over meanwhile (its owner changed): that one records them."""
        known = dict(known or {})
        stored_at = stored_at or self.clock()
        ops = [BatchOp(str(it["key"]), Entity(it["entity"]), it["payload"],
                       (str(it["remote"][0]), it["remote"][1]) if it.get("remote") else None)
               for it in items if it["key"] not in known]
        answers: dict[str, Written | Diagnosis] = dict(known)
        lost = False  # no answer to the whole request: QuickBooks may have done the work
        if ops:
            try:
                answers.update(provider.batch(ops, request_id))
            except ProviderError as exc:
                answers.update({op.key: exc.diagnosis for op in ops})
                lost = resend or no_answer(exc.diagnosis.kind, exc.diagnosis.http_status)
        outcomes: list[tuple[Mapping[str, Any], Written | Failed]] = []
        for it in items:
            answer = answers[it["key"]]
            remote = (str(it["remote"][0]), it["remote"][1]) if it.get("remote") else None
            deps = tuple(DepLink(Entity(e), int(r), str(rid), str(label)) for e, r, rid, label in it.get("deps", []))
            outcome: Written | Failed
            if isinstance(answer, Written):
                outcome = answer
            elif answer.kind == Kind.CONFLICT and remote is not None:
                # re-read the SyncToken and send this one alone
                outcome = self._attempt(provider, Entity(it["entity"]), it["payload"], remote, new_request_id(), deps)
            elif answer.kind == Kind.NOT_FOUND:
                outcome = self._locate_not_found(provider, Entity(it["entity"]), remote, deps, answer)
            else:
                outcome = Failed(answer)
            outcomes.append((it, self._with_namesake(provider, Entity(it["entity"]), it["payload"], outcome)))
        try:
            return self._record_batch(connection_id, batch_id, outcomes, provider, actor, lost, stored_at, records)
        except SQLAlchemyError:
            # the answers could not be recorded: the batch is parked (when the database takes that) and sent
            # again by the next run, under its requestid, so QuickBooks answers it again without doing it twice
            with contextlib.suppress(SQLAlchemyError):
                self._park(batch_id)
            raise

    def _record_batch(self, connection_id: int, batch_id: int,
                      outcomes: Sequence[tuple[Mapping[str, Any], Written | Failed]], provider: Provider,
                      actor: str, lost: bool, stored_at: dt.datetime,
                      records: Mapping[tuple[str, int], Any] | None = None) -> list[SyncLogEntry]:
        """Record a batch's outcomes and settle it (or park it when its answer was lost), in one transaction. A
        record edited in JobsiteOn since the batch was stored (``stored_at``) got the older version written: its
        link is left stale (the next sync sends the edit) and its totals are not compared with the older copy."""
        results: list[SyncLogEntry] = []
        with self.sessions() as session, session.begin():  # the whole batch's outcomes in one transaction
            # settled, or (answer lost) parked for resend_batches to send again as it is; the entries still say
            # what happened meanwhile (an uncertain error, its requestid kept in the batch)
            taken = session.execute(update(PushBatch).where(
                PushBatch.id == batch_id, PushBatch.settled_at.is_(None), PushBatch.owner == self._owner).values(
                **({"owner": PARKED} if lost else {"settled_at": self.clock()})))
            if not taken.rowcount:  # type: ignore[attr-defined]
                log.warning("event=batch_taken_over connection_id=%s batch_id=%s", connection_id, batch_id)
                return []
            conn = self._connection(session, connection_id)
            # read after the UPDATE: on SQLite a transaction that reads and then writes fails at once ("database is
            # locked", not waiting for busy_timeout) when another connection wrote in between (WAL snapshots)
            self._read_outcomes(session, conn, outcomes, records)
            successes = Successes(self.clock(), actor)
            for it, outcome in outcomes:
                entity, record_id = Entity(it["entity"]), int(it["record_id"])
                if isinstance(outcome, Written) and self._linked_elsewhere(session, conn.id, entity.value,
                                                                           outcome.remote_id, record_id):
                    outcome = Failed(make_diagnosis(Kind.DUPLICATE, (
                        f"QuickBooks answered with {QBO_NAMES[entity]} {outcome.remote_id}, which is linked to "
                        "another record already. Check both in QuickBooks, then Retry.")))
                entry = session.get(SyncLogEntry, int(it["entry_id"]))
                if entry is None:
                    continue
                if entry.superseded_by_id is not None or entry.resolved_at is not None:
                    # marked resolved while the batch waited: the copy QuickBooks made is still this record's
                    if isinstance(outcome, Written):
                        self._keep_copy(session, conn, entity, record_id, outcome)
                    continue
                plain = entry.status == Status.PENDING  # not settled meanwhile: nothing to undo first
                reopen(entry)  # settled as interrupted while the batch waited: its outcome is known now
                if isinstance(outcome, Written) and self._edited_since(session, conn, entity, record_id, stored_at):
                    entry.data = {**(entry.data or {}), "payload_changed": True}
                if plain and isinstance(outcome, Written) and self._plain_success(session, conn, entry, outcome,
                                                                        str(it.get("digest") or ""), provider,
                                                                        successes):
                    results.append(entry)
                    continue
                try:
                    results.append(self._finish_in(session, conn, entry.id, Target(entity, record_id, True),
                                                   outcome, str(it.get("digest") or ""), provider, actor))
                except NotFound:  # the record was deleted in JobsiteOn while the batch waited
                    copy = f" QuickBooks holds its copy ({QBO_NAMES[entity]} {outcome.remote_id})." if isinstance(
                        outcome, Written) else ""
                    entry.status, entry.resolved_at, entry.resolved_by = Status.INFO.value, self.clock(), actor
                    entry.details = ("The record was deleted in JobsiteOn before QuickBooks' answer to its batch "
                                     f"was known.{copy}")
            self._write_successes(session, conn, successes)
            session.flush()
            session.expunge_all()
        return results

    def _plain_success(self, session: Session, conn: Connection, entry: SyncLogEntry, written: Written,
                       payload_digest: str, provider: Provider, successes: Successes) -> bool:
        """Record a batch member's successful write as :meth:`_finish_success` does, gathered in ``successes``
        (written by :meth:`_write_successes`, the session's objects set to match without a flush of their own),
        when it is plain: a pending attempt of a record still there, not edited since it was sent, whose totals
        agree, with no Unlink to supersede, and every row it touches read for the batch. Returns False, having
        changed nothing, for anything else: the caller records it through :meth:`_finish_in`."""
        reads = ChunkReads.of(session)
        if reads is None or entry.status != Status.PENDING or entry.record_id is None or (
                entry.data or {}).get("payload_changed"):
            return False
        record = reads.record(conn.account_id, entry.entity, entry.record_id)
        link = reads.link(conn.id, entry.entity, entry.record_id)
        chain = reads.chain(entry)
        unlinked = reads.unlinked(entry)
        if record is None or record is UNREAD or link is UNREAD or chain is UNREAD or unlinked is UNREAD or unlinked:
            return False
        if provider.check(entry.entity, record, written) is not None:  # a total mismatch: the ORM path says so
            return False
        now, actor = successes.now, successes.actor
        fields = {"remote_id": written.remote_id, "sync_token": written.sync_token, "synced_hash": payload_digest,
                  "synced_at": now, "remote_deleted": False}
        if link is None:
            link = Link(connection_id=conn.id, entity=entry.entity, record_id=entry.record_id, tax_code=None,
                        **fields)
            reads.added_link(link)  # a later member answered with the same id is then a duplicate
            successes.new_links.append({"connection_id": conn.id, "entity": entry.entity,
                                        "record_id": entry.record_id, "tax_code": None, **fields})
        else:
            for key, value in fields.items():
                set_committed_value(link, key, value)
            successes.links.append({"b_id": link.id, **fields})
        for old in chain:
            set_committed_value(old, "resolved_at", now)
            set_committed_value(old, "resolved_by", actor)
            successes.resolved.append(old.id)
        settled = {"status": Status.SYNCED.value, "kind": None, "remote_id": written.remote_id,
                   "intuit_tid": written.intuit_tid, "resolved_at": now if chain else entry.resolved_at,
                   "resolved_by": actor if chain else entry.resolved_by}
        for key, value in settled.items():
            set_committed_value(entry, key, value)
        successes.entries.append({"b_id": entry.id, **settled})
        if chain:
            successes.notifications.append({
                "account_id": conn.account_id, "connection_id": conn.id,
                "topic": record_topic(conn.id, entry.entity, entry.record_id), "event": "resolved",
                "entry_id": entry.id, "incident_id": None, "created_at": now})
        return True

    @staticmethod
    def _write_successes(session: Session, conn: Connection, successes: Successes) -> None:
        """Write what :meth:`_plain_success` gathered: one statement per kind of row (executemany), none for a kind
        with nothing to write."""
        entries, links = table_of(SyncLogEntry), table_of(Link)
        if successes.new_links:
            session.execute(insert(links), successes.new_links)
        if successes.links:
            # (executemany: the SET clause is the parameters' other keys)
            session.execute(update(links).where(links.c.id == bindparam("b_id")), successes.links)
        if successes.entries:
            session.execute(update(entries).where(entries.c.id == bindparam("b_id")), successes.entries)
        if successes.resolved:
            session.execute(update(entries).where(entries.c.id.in_(successes.resolved)).values(
                resolved_at=successes.now, resolved_by=successes.actor))
        if successes.notifications:
            session.execute(insert(table_of(Notification)), successes.notifications)
        if successes.entries:
            conn.last_sync_at = successes.now

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
