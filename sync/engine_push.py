"""One record pushed to the provider (``RecordPushes``): claimed, its dependencies first, its attempt written
as pending and committed, the write (a conflict re-read once, a lost create found again, a duplicate's
namesake looked up), and the outcome settled."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from sync.diagnosis import Diagnosis, Kind, make_diagnosis
from sync.engine_base import EngineBase, dependency_diagnosis, explained, new_request_id, waits_on
from sync.engine_errors import DependencyMissing, InProgress
from sync.engine_values import DepLink, Failed, Target
from sync.models import Connection, Entity, PushBatch, SyncLogEntry
from sync.providers.base import Provider, ProviderError, Written
from sync.providers.quickbooks import QBO_NAMES, payload_hash

log = logging.getLogger("syncbot.engine")

#: Read before every batch and every single push: built once.
_IN_OPEN_BATCHES = select(SyncLogEntry.entity, SyncLogEntry.record_id).join(
    PushBatch, PushBatch.id == SyncLogEntry.batch_id).where(
    PushBatch.connection_id == bindparam("b_conn"), PushBatch.settled_at.is_(None))


class RecordPushes(EngineBase):
    """The single-record push path."""

    # ------------------------------------------------------------------------------------------ one record

    def resend_batches(self, connection_id: int | None = None) -> int:
        """Send the connection's batches cut short again (before a push, :meth:`_ready`): the batch path's work,
        :meth:`sync.engine_batches.BatchPushes.resend_batches`."""
        raise NotImplementedError

    def sync_record(self, connection_id: int, entity: Entity | str, record_id: int, actor: str = "system",
                    force: bool = False, retry_of_id: int | None = None) -> SyncLogEntry | None:
        """Push one record (and first what it references, when that is not in the provider yet).

        Returns the attempt's entry, or None when the record is unchanged since its last sync (and not forced).
        Raises InProgress, NotFound, ConnectionUnavailable.
        """
        entity = Entity(entity)
        with self._claimed(connection_id, entity, record_id):
            return self._push_claimed(connection_id, Target(entity, record_id, force), actor, retry_of_id)

    def _push_claimed(self, connection_id: int, target: Target, actor: str,
                      retry_of_id: int | None) -> SyncLogEntry | None:
        self._ready(connection_id)
        with self.sessions() as session:
            if (target.entity.value, target.record_id) in self._in_open_batches(session, connection_id):
                raise InProgress(f"{target.entity.value} {target.record_id} was sent in a batch whose answer "
                                 "QuickBooks has not given yet; it is sent again as that batch first")
            conn = self._connection(session, connection_id)
            record = self._load_record(session, conn.account_id, target.entity, target.record_id)
            deps = self._dependencies(target.entity, record)
        for dep_entity, dep_id, _label, _field in deps:
            self._push_dependency(connection_id, dep_entity, dep_id, actor)

        provider: Provider
        with self.sessions() as session, session.begin():
            conn = self._connection(session, connection_id)
            self._ensure_available(conn)
            provider = self.provider_for(conn)
            record = self._load_record(session, conn.account_id, target.entity, target.record_id)
            retry_of = session.get(SyncLogEntry, retry_of_id) if retry_of_id else None
            link = self._link(session, conn.id, target.entity, target.record_id)
            try:
                refs = self._refs(session, conn.id, target.entity, record)
            except DependencyMissing as missing:
                entry = self._new_entry(session, conn, target, record, actor, None, retry_of)
                waits_on(entry, missing)
                self._finish_failure(session, conn, entry, dependency_diagnosis(missing))
                return entry
            payload = provider.payload(target.entity, record, refs)
            digest = payload_hash(payload)
            if not target.force and link is not None and (link.remote_deleted or (
                    link.synced_hash == digest
                    and not self._open_entries(session, conn.id, target.entity, target.record_id))):
                return None  # unchanged, or deleted in the provider (waits for Re-create or Unlink)
            dep_links = self._dep_links(session, conn.id, target.entity, record)
            entry = self._new_entry(session, conn, target, record, actor, digest, retry_of, creating=link is None,
                                    sent=payload)
            remote = (link.remote_id, link.sync_token) if link is not None else None
            entry_id, request_id = entry.id, entry.request_id or new_request_id()
            look_first = self._forgotten_create(session, entry, remote, payload)
        return self._write_one(connection_id, target, entry_id, request_id, payload, digest, remote, dep_links,
                               provider, actor, look_first)

    def _write_one(self, connection_id: int, target: Target, entry_id: int, request_id: str,
                   payload: Mapping[str, Any], digest: str, remote: tuple[str, str | None] | None,
                   dep_links: Sequence[DepLink], provider: Provider, actor: str,
                   look_first: Mapping[str, Any] | None) -> SyncLogEntry:
        """One record's write under its attempt's stored ``request_id``, and its outcome recorded. ``look_first``:
        the payload to look the copy up by in QuickBooks first (a create repeated after QuickBooks may have
        forgotten its requestid)."""
        outcome: Written | Failed | None = None
        if look_first is not None:  # QuickBooks may have forgotten the requestid: read before writing again
            try:
                outcome = self._own_copy(provider, connection_id, target.entity.value, look_first, target.record_id)
            except ProviderError as exc:
                outcome = Failed(exc.diagnosis)
        if outcome is None:
            outcome = self._attempt(provider, target.entity, payload, remote, request_id, dep_links)
        outcome = self._with_namesake(provider, target.entity, payload, outcome)
        return self._finish(connection_id, entry_id, target, outcome, digest, provider, actor)

    def _own_copy(self, provider: Provider, connection_id: int, entity: str, payload: Mapping[str, Any],
                  record_id: int, taken: Collection[str] = ()) -> Written | None:
        """The copy in QuickBooks a lost create of ``payload`` made (`Provider.find_copies`), unless another
        record of this connection is linked to it, or it is in ``taken`` (remote ids already given to another
        record of the same batch): then it is that record's, not ours to take. Raises ProviderError when
        QuickBooks cannot be read."""
        copies = [c for c in provider.find_copies(entity, payload) if c.remote_id not in taken]
        if not copies:
            return None
        with self.sessions() as session:
            return next((c for c in copies
                         if not self._linked_elsewhere(session, connection_id, entity, c.remote_id, record_id)), None)

    def _forgotten_create(self, session: Session, entry: SyncLogEntry, remote: tuple[str, str | None] | None,
                          payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """What to look the record's copy up by in QuickBooks before writing, or None (write at once). Looked up
        when this attempt repeats a create whose outcome stayed uncertain (it reuses that attempt's requestid) for
        longer than QuickBooks is trusted to remember a requestid: by the payload first sent under it
        (``data["sent"]``; the record may have been edited since), else ``payload``."""
        if remote is not None or not entry.request_id:
            return None
        first = session.scalars(select(SyncLogEntry.created_at).where(
            SyncLogEntry.connection_id == entry.connection_id, SyncLogEntry.request_id == entry.request_id,
            SyncLogEntry.id != entry.id).order_by(SyncLogEntry.id).limit(1)).first()
        memory = dt.timedelta(seconds=self.config.requestid_memory_seconds)
        if first is None or first >= self.clock() - memory:
            return None
        sent = (entry.data or {}).get("sent") if isinstance(entry.data, dict) else None
        return sent if isinstance(sent, Mapping) else payload

    def _push_dependency(self, connection_id: int, entity: Entity, record_id: int, actor: str) -> None:
        """Push a referenced record when it is not linked or has changed; its failure is logged on its own."""
        # InProgress: someone else is pushing it right now; the referencing record will say if it is missing
        with contextlib.suppress(InProgress):
            self.sync_record(connection_id, entity, record_id, actor)

    def _dep_links(self, session: Session, connection_id: int, entity: Entity, record: Any) -> list[DepLink]:
        out = []
        for dep_entity, dep_id, label, _field in self._dependencies(entity, record):
            link = self._link_read(session, connection_id, dep_entity, dep_id)
            if link is not None:
                out.append(DepLink(dep_entity, dep_id, link.remote_id, label))
        return out

    def _attempt(self, provider: Provider, entity: Entity, payload: Mapping[str, Any],
                 remote: tuple[str, str | None] | None, request_id: str,
                 dep_links: Sequence[DepLink]) -> Written | Failed:
        """One write with its conflict re-read; a not_found says which object is gone (``gone``)."""
        try:
            return self._write(provider, entity, payload, remote, request_id)
        except ProviderError as exc:
            diag = exc.diagnosis
        if diag.kind != Kind.NOT_FOUND:
            return Failed(diag)
        return self._locate_not_found(provider, entity, remote, dep_links, diag)

    def _locate_not_found(self, provider: Provider, entity: Entity, remote: tuple[str, str | None] | None,
                          dep_links: Sequence[DepLink], diag: Diagnosis) -> Failed:
        """QuickBooks says 610/2500 both for the object itself and for what it references: read them to know."""
        candidates: list[tuple[str, str, int | None, str]] = []
        if remote is not None:
            candidates.append((entity.value, remote[0], None, "it"))
        candidates += [(d.entity.value, d.remote_id, d.record_id, d.label) for d in dep_links]
        for cand_entity, remote_id, record_id, label in candidates:
            try:
                found = provider.read(cand_entity, remote_id)
                inactive = str(found.body.get("Active", "true")).lower() == "false"
                if inactive and record_id is not None:
                    # a record it uses was made inactive: reactivating that one is the fix, so nothing is marked
                    # gone (re-creating or unlinking either record would make a second copy in QuickBooks)
                    return Failed(dataclasses.replace(
                        explained(diag, f"The {cand_entity} '{label}' it uses was made inactive in QuickBooks."),
                        meaning="inactive_reference"))
                if inactive:  # the record itself: QBO "deletes" names this way
                    raise ProviderError(make_diagnosis(Kind.NOT_FOUND, "made inactive"))
            except ProviderError as exc:
                if exc.diagnosis.kind != Kind.NOT_FOUND:
                    return Failed(diag)
                if record_id is None:
                    return Failed(dataclasses.replace(
                        explained(diag, "The linked record was deleted in QuickBooks."), meaning=None),
                        ((entity.value, None),))
                return Failed(dataclasses.replace(
                    explained(diag, f"The {cand_entity} '{label}' it uses was deleted in QuickBooks."),
                    meaning="missing_reference"), ((cand_entity, record_id),))
        return Failed(diag)

    def _write(self, provider: Provider, entity: Entity, payload: Mapping[str, Any],
               remote: tuple[str, str | None] | None, request_id: str) -> Written:
        if remote is None:
            return provider.create(entity, payload, request_id)
        try:
            return provider.update(entity, remote[0], remote[1], payload, request_id)
        except ProviderError as exc:
            if exc.diagnosis.kind != Kind.CONFLICT:
                raise
            # Stale SyncToken (5010): someone changed it in QuickBooks. Re-read and try once more.
            current = provider.read(entity, remote[0])
            return provider.update(entity, remote[0], current.sync_token, payload, new_request_id())

    def _finish(self, connection_id: int, entry_id: int, target: Target, outcome: Written | Failed,
                digest: str | None, provider: Provider, actor: str) -> SyncLogEntry:
        with self.sessions() as session, session.begin():
            conn = self._connection(session, connection_id)
            entry = self._finish_in(session, conn, entry_id, target, outcome, digest, provider, actor)
            session.flush()
            session.expunge(entry)
            return entry

    def _finish_in(self, session: Session, conn: Connection, entry_id: int, target: Target,
                   outcome: Written | Failed, digest: str | None, provider: Provider, actor: str) -> SyncLogEntry:
        """Record one attempt's outcome in ``session`` (the caller commits: a chunk commits once)."""
        entry = session.get(SyncLogEntry, entry_id)
        assert entry is not None
        if isinstance(outcome, Written):
            record = self._load_record(session, conn.account_id, target.entity, target.record_id)
            self._finish_success(session, conn, entry, record, outcome, digest or "", provider, actor)
        else:
            for gone_entity, gone_id in outcome.gone:
                link = self._link(session, conn.id, gone_entity, target.record_id if gone_id is None else gone_id)
                if link is not None:
                    link.remote_deleted = True
            self._finish_failure(session, conn, entry, outcome.diagnosis)
            if outcome.looked:
                self._keep_namesake(session, conn, entry, outcome.namesake)
        return entry

    @staticmethod
    def _with_namesake(provider: Provider, entity: Entity, payload: Mapping[str, Any],
                       outcome: Written | Failed) -> Written | Failed:
        """For a refused duplicate: ``outcome`` with the provider's object that holds the name ``payload`` was
        sent with (DisplayName, Name or DocNumber: ``Provider.find_copies``), one query made here, in the sync
        run, so that no card has to ask QuickBooks as it is drawn (a notifier waiting on a company's budget would
        hold up every workspace's delivery). A failed query is logged and leaves ``outcome`` as it was: the card
        then offers the other fixes, and the next attempt looks again."""
        if (not isinstance(outcome, Failed) or outcome.diagnosis.kind != Kind.DUPLICATE
                or entity == Entity.PAYMENT):  # a payment has no name: its copies are found another way
            return outcome
        try:
            found = provider.find_copies(entity.value, payload)
        except ProviderError as exc:
            log.info("event=namesake_lookup_failed entity=%s kind=%s", entity.value, exc.diagnosis.label)
            return outcome
        return dataclasses.replace(outcome, namesake=found[0] if found else None, looked=True)

    def _keep_namesake(self, session: Session, conn: Connection, entry: SyncLogEntry,
                       found: Written | None) -> None:
        """Store in ``entry.data["existing"]`` what "Link to existing" offers: a label such as ``Acme Corp
        (Customer 58)``, or None when nothing holds the name or that object is linked to another record."""
        label = None
        if found is not None and entry.record_id is not None and not self._linked_elsewhere(
                session, conn.id, entry.entity, found.remote_id, entry.record_id):
            label = f"{entry.record_label or found.remote_id} ({QBO_NAMES[Entity(entry.entity)]} {found.remote_id})"
        entry.data = {**(entry.data or {}), "existing": {"label": label,
                                                        "remote_id": found.remote_id if found else None}}

    def _ready(self, connection_id: int) -> None:
        """Before a run pushes: the connection can be used (else ConnectionUnavailable), and its batches cut short
        are sent again first (:meth:`resend_batches`)."""
        with self.sessions() as session:
            self._ensure_available(self._connection(session, connection_id))
        self.resend_batches(connection_id)

    @staticmethod
    def _in_open_batches(session: Session, connection_id: int) -> set[tuple[str, int]]:
        """(entity, record id) of the connection's records whose attempt is in a batch not settled yet (in flight,
        or cut short by a crash and waiting to be sent again). Usually none: one indexed look-up."""
        rows = session.execute(_IN_OPEN_BATCHES, {"b_conn": connection_id})
        return {(str(entity), int(record_id)) for entity, record_id in rows if record_id is not None}
