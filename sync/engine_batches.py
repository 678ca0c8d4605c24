"""Many records pushed in batches of 30 (``BatchPushes``): claimed and read a batch at a time, stored whole
(``push_batches``) before they are sent, the answers recorded with one statement per kind, and batches cut
short sent again or reconciled by reading QuickBooks."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from sync.chunk_reads import UNREAD, ChunkReads, LinkView
from sync.db import error_line, write_lock
from sync.diagnosis import Diagnosis, Kind, make_diagnosis
from sync.engine_base import (
    CONNECTION_KINDS,
    PARKED,
    PUSH_ORDER,
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
from sync.engine_claims import owner_is_dead
from sync.engine_errors import ConnectionUnavailable, DependencyMissing, NotFound
from sync.engine_push import RecordPushes
from sync.engine_values import DepLink, Failed, Progress, RunSummary, Successes, Target
from sync.models import Connection, Entity, Link, Notification, PushBatch, Status, SyncLogEntry, table_of
from sync.providers.base import BatchOp, Provider, ProviderError, Written
from sync.providers.quickbooks import MAX_BATCH, QBO_NAMES, dumps, payload_text

log = logging.getLogger("syncbot.engine")

_BATCHES = table_of(PushBatch)
# a batch this process owns and has not settled: settled, or parked (its answer lost); built once, not per batch
_OWNED = and_(_BATCHES.c.id == bindparam("b_id"), _BATCHES.c.settled_at.is_(None),
              _BATCHES.c.owner == bindparam("b_owner"))
_SETTLE = update(_BATCHES).where(_OWNED).values(settled_at=bindparam("b_now", type_=_BATCHES.c.settled_at.type))
_PARK = update(_BATCHES).where(_OWNED).values(owner=bindparam("b_parked", type_=_BATCHES.c.owner.type))
# a batch stored (one row) and its attempts pointed at it
_INSERT_BATCH = insert(_BATCHES).returning(_BATCHES.c.id)
_ENTRIES = table_of(SyncLogEntry)
_SET_BATCH = update(_ENTRIES).where(_ENTRIES.c.id.in_(bindparam("b_ids", expanding=True))).values(
    batch_id=bindparam("b_batch"))
# what _write_successes writes (executemany: an UPDATE's SET clause is the parameters' other keys)
_LINKS = table_of(Link)
_INSERT_LINKS = insert(_LINKS)
_UPDATE_LINKS = update(_LINKS).where(_LINKS.c.id == bindparam("b_id"))
_UPDATE_ENTRIES = update(_ENTRIES).where(_ENTRIES.c.id == bindparam("b_id"))
_RESOLVE = update(_ENTRIES).where(_ENTRIES.c.id.in_(bindparam("b_ids", expanding=True))).values(
    resolved_at=bindparam("b_now", type_=_ENTRIES.c.resolved_at.type), resolved_by=bindparam("b_actor"))
_INSERT_NOTIFICATIONS = insert(table_of(Notification))
_CONNECTIONS = table_of(Connection)
_LAST_SYNC = update(_CONNECTIONS).where(_CONNECTIONS.c.id == bindparam("b_id")).values(
    last_sync_at=bindparam("b_now", type_=_CONNECTIONS.c.last_sync_at.type))


def _deps_of(item: Mapping[str, Any]) -> tuple[DepLink, ...]:
    """The links a stored batch item's record depends on (its ``deps``), as :meth:`RecordPushes._attempt` takes
    them; built only for the members that are sent again alone or looked for."""
    return tuple(DepLink(Entity(e), int(r), str(rid), str(label)) for e, r, rid, label in item.get("deps", []))


class BatchPushes(RecordPushes):
    """The batch path."""

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
            made: list[tuple[int, Target, str, str, LinkView | None, Any]] = []
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
                link = self._link_read(session, conn.id, t.entity, t.record_id)
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
                batch_id = session.execute(_INSERT_BATCH, {
                    "connection_id": conn.id, "request_id": request_id, "owner": self._owner,
                    "created_at": self.clock(), "items": items}).scalar_one()
                session.execute(_SET_BATCH, {"b_ids": [it["entry_id"] for it in items], "b_batch": batch_id})
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
            outcome: Written | Failed
            if isinstance(answer, Written):
                outcome = answer
            elif answer.kind == Kind.CONFLICT and remote is not None:
                # re-read the SyncToken and send this one alone
                outcome = self._attempt(provider, Entity(it["entity"]), it["payload"], remote, new_request_id(),
                                        _deps_of(it))
            elif answer.kind == Kind.NOT_FOUND:
                outcome = self._locate_not_found(provider, Entity(it["entity"]), remote, _deps_of(it), answer)
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
            taken = session.execute(_PARK if lost else _SETTLE, {"b_id": batch_id, "b_owner": self._owner,
                                                                  "b_parked": PARKED, "b_now": self.clock()})
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
        with nothing to write; and the connection's ``last_sync_at`` (the session's object set to match)."""
        if successes.new_links:
            session.execute(_INSERT_LINKS, successes.new_links)
        if successes.links:
            session.execute(_UPDATE_LINKS, successes.links)
        if successes.entries:
            session.execute(_UPDATE_ENTRIES, successes.entries)
        if successes.resolved:
            session.execute(_RESOLVE, {"b_ids": successes.resolved, "b_now": successes.now,
                                       "b_actor": successes.actor})
        if successes.notifications:
            session.execute(_INSERT_NOTIFICATIONS, successes.notifications)
        if successes.entries:  # written here too, not by a flush of the Connection (the unit of work's overhead)
            session.execute(_LAST_SYNC, {"b_id": conn.id, "b_now": successes.now})
            set_committed_value(conn, "last_sync_at", successes.now)
