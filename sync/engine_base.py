"""What every part of the sync engine stands on (``EngineBase``): connections and their availability,
records and links, sync log entries and their outbox rows, incidents, how an attempt's success or failure is
written, and the small helpers the parts share."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from sync.chunk_reads import UNREAD, ChunkReads, LinkView
from sync.diagnosis import KINDS, Diagnosis, Kind, make_diagnosis
from sync.engine_claims import RecordClaims, claim_owner
from sync.engine_errors import ConnectionUnavailable, DependencyMissing, NotFound
from sync.engine_values import EngineConfig, Failed, Target
from sync.log import OPEN_STATUSES, open_clause
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
    Status,
    SyncLogEntry,
    table_of,
    utcnow,
)
from sync.providers.base import Provider, Written
from sync.providers.quickbooks import MAX_BATCH, dumps

log = logging.getLogger("syncbot.engine")

_ENTRIES = table_of(SyncLogEntry)
# a batch's attempts (executemany) and the UPDATE pointing what they supersede at them: built once, not per batch
_INSERT_ATTEMPTS = insert(_ENTRIES).returning(_ENTRIES.c.id, _ENTRIES.c.entity, _ENTRIES.c.record_id)
_SUPERSEDE = update(_ENTRIES).where(_ENTRIES.c.id == bindparam("b_old")).values(
    superseded_by_id=bindparam("b_new"))


#: The order records are pushed in: what others reference comes first.
PUSH_ORDER: tuple[Entity, ...] = (Entity.CONTACT, Entity.ITEM, Entity.INVOICE, Entity.PAYMENT)


#: The entities whose provider-side changes are pulled (invoices only for deletions).
PULL_ENTITIES: tuple[Entity, ...] = (Entity.CONTACT, Entity.INVOICE, Entity.PAYMENT)


CONNECTION_KINDS = frozenset(k for k, info in KINDS.items() if info.scope == "connection")


UNCERTAIN_HTTP = frozenset({502, 503, 504})


CDC_LOOKBACK = dt.timedelta(days=29)


#: The owner of a stored batch that nobody is sending now: ``resend_batches`` takes it over.
PARKED = ""


def record_topic(connection_id: int, entity: str, record_id: int | None) -> str:
    """The outbox topic of one record's message."""
    return f"record:{connection_id}:{entity}:{record_id}"


def connection_topic(connection_id: int) -> str:
    """The outbox topic of a connection's incident message."""
    return f"connection:{connection_id}"


def new_request_id() -> str:
    """A fresh QuickBooks requestid (32 hex characters: fits both the 50 and the batch 36 limits)."""
    return uuid.uuid4().hex


def label_of(record: Any) -> str:
    if record is None:
        return ""
    label = getattr(record, "label", None)
    return str(label) if label else f"#{getattr(record, 'id', '?')}"


def explained(diag: Diagnosis, sentence: str) -> Diagnosis:
    """The diagnosis with ``sentence`` put before the provider's details."""
    return dataclasses.replace(diag, details=f"{sentence} {diag.details}".strip())


def printable(text: str | None, limit: int) -> str:
    """Provider text fit to store: control characters (NUL breaks PostgreSQL text) replaced, cut to ``limit``."""
    if not text:
        return ""
    return "".join(ch if ch in "\n\t" or (ch.isprintable() or ch == " ") else "\ufffd" for ch in text[:limit])


def unreachable(entry: SyncLogEntry) -> bool:
    """QuickBooks did not answer (connection error, timeout) or only its gateway did (502/503/504, after the
    client's resends; an HTML page, or the gateway's own error object whose codes are names like ``BadGateway``,
    never QuickBooks' numeric ones): a run stops there instead of failing every record the same way."""
    numeric = [c for c in (entry.codes or "").split(",") if c.strip().isdigit()]
    return entry.status == Status.ERROR and entry.kind == Kind.UNKNOWN and (
        entry.http_status is None or entry.http_status in UNCERTAIN_HTTP) and not numeric


def no_answer(kind: str | None, http_status: int | None) -> bool:
    """A failure that leaves unknown whether QuickBooks did the work: no answer (a timeout, a dropped connection)
    or only a gateway's 502/503/504."""
    return kind == Kind.UNKNOWN and (http_status is None or http_status in UNCERTAIN_HTTP)


def in_doubt(entry: SyncLogEntry) -> bool:
    """Did the attempt end without knowing whether the provider did the work?"""
    if (entry.data or {}).get("interrupted"):  # syncbot stopped while the request was out (recover_pending)
        return True
    return no_answer(entry.kind, entry.http_status)


def found_copies(items: Sequence[Mapping[str, Any]]) -> dict[str, Written]:
    """The copies a reconciliation found in QuickBooks, as stored in a batch's items (``found``), by item key."""
    out: dict[str, Written] = {}
    for it in items:
        found = it.get("found")
        if isinstance(found, Mapping) and found.get("remote_id"):
            token = found.get("sync_token")
            out[str(it["key"])] = Written(remote_id=str(found["remote_id"]),
                                          sync_token=str(token) if token is not None else None,
                                          body=dict(found.get("body") or {}))
    return out


def readable_batch(items: Any) -> bool:
    """Do a stored batch's ``items`` have the shape syncbot wrote (:class:`PushBatch`)?"""
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        return False
    entities = {e.value for e in Entity}
    for it in items:
        if not (isinstance(it, dict) and isinstance(it.get("key"), str) and isinstance(it.get("entry_id"), int)
                and it.get("entity") in entities and isinstance(it.get("record_id"), int)
                and isinstance(it.get("payload"), dict)
                and (it.get("remote") is None or (isinstance(it["remote"], list) and len(it["remote"]) == 2))
                and all(isinstance(d, list) and len(d) == 4 for d in it.get("deps", []))):
            return False
    return len({it["key"] for it in items}) == len(items)


def reopen(entry: SyncLogEntry) -> None:
    """An attempt settled as an error without knowing QuickBooks' answer (interrupted, or its batch's answer
    lost) whose answer is now known: back to pending, its guessed failure cleared, so the answer is recorded on
    it as on any attempt."""
    if entry.status == Status.PENDING:
        return
    entry.status = Status.PENDING.value
    entry.kind = entry.details = entry.codes = entry.field = entry.intuit_tid = None
    entry.http_status = None
    data = {k: v for k, v in (entry.data or {}).items() if k not in ("interrupted", "links")}
    entry.data = data or None


def waits_on(entry: SyncLogEntry, missing: DependencyMissing) -> None:
    """Remember on the entry which record it waits on (``data["depends_on"]``: entity, record_id, label), so its
    message can lead to that record's own message and fix (a payment whose invoice was deleted)."""
    entry.data = {**(entry.data or {}), "depends_on": {
        "entity": missing.entity.value, "record_id": missing.record_id, "label": missing.label,
        "deleted": missing.deleted}}


def dependency_diagnosis(missing: DependencyMissing) -> Diagnosis:
    what = {"contact": "contact", "item": "item", "invoice": "invoice"}.get(missing.entity.value, "record")
    if missing.deleted:
        return make_diagnosis(
            Kind.NOT_FOUND,
            f"The {what} '{missing.label}' that this record references was deleted in QuickBooks. Re-create or "
            f"unlink the {what} first; this record syncs after it.", field=missing.fieldname,
            meaning="missing_reference")
    return make_diagnosis(
        Kind.VALIDATION,
        f"The {what} '{missing.label}' is not in QuickBooks yet, so this record cannot reference it. "
        f"Fix the {what}'s own sync error first; this record syncs after it.",
        field=missing.fieldname)


class EngineBase(RecordClaims):
    """The ground the engine's parts share. Thread-safe: every method opens its own sessions."""

    def __init__(self, sessions: sessionmaker[Session], provider_for: Callable[[Connection], Provider],
                 config: EngineConfig | None = None, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessions = sessions
        self.provider_for = provider_for
        self.config = config or EngineConfig()
        self.clock = clock
        self._owner = claim_owner()

    # ------------------------------------------------------------------------------------------ helpers

    def _connection(self, session: Session, connection_id: int, account_id: int | None = None) -> Connection:
        conn = session.get(Connection, connection_id)
        if conn is None or (account_id is not None and conn.account_id != account_id):
            raise NotFound(f"no connection {connection_id}")
        return conn

    def _ensure_available(self, conn: Connection) -> None:
        """Raise ConnectionUnavailable unless the connection can take requests now."""
        now = self.clock()
        if conn.status in (ConnectionStatus.EXPIRED, ConnectionStatus.REVOKED) or not conn.realm_id:
            raise ConnectionUnavailable("The QuickBooks connection needs to be reconnected.", Kind.AUTH_EXPIRED)
        if conn.status == ConnectionStatus.SUSPENDED:
            raise ConnectionUnavailable("The QuickBooks subscription is inactive.", Kind.SUBSCRIPTION)
        if conn.status == ConnectionStatus.RATE_LIMITED and conn.paused_until and conn.paused_until > now:
            raise ConnectionUnavailable("QuickBooks asked us to slow down; syncing resumes by itself.",
                                        Kind.RATE_LIMITED, conn.paused_until)

    def unavailable(self, connection_id: int) -> ConnectionUnavailable | None:
        """Why the connection cannot take requests now (what a Retry All or Sync Now would be refused with: an
        expired token, a rate-limit pause, a lapsed subscription), None when it can. Raises NotFound."""
        with self.sessions() as session:
            try:
                self._ensure_available(self._connection(session, connection_id))
            except ConnectionUnavailable as exc:
                return exc
        return None

    def _available_provider(self, connection_id: int) -> Provider:
        """The Provider of a connection that can take requests now. Raises NotFound, ConnectionUnavailable."""
        with self.sessions() as session:
            conn = self._connection(session, connection_id)
            self._ensure_available(conn)
            return self.provider_for(conn)

    @staticmethod
    def _linked_elsewhere(session: Session, connection_id: int, entity: str, remote_id: str, record_id: int) -> bool:
        """Whether the provider's object ``remote_id`` is already linked to another record than ``record_id``."""
        reads = ChunkReads.of(session)
        if reads is not None and (known := reads.linked_elsewhere(connection_id, entity, remote_id,
                                                                  record_id)) is not UNREAD:
            return known
        return session.scalars(select(Link.id).where(
            Link.connection_id == connection_id, Link.entity == entity, Link.remote_id == remote_id,
            Link.record_id != record_id).limit(1)).first() is not None

    @staticmethod
    def _load_record(session: Session, account_id: int, entity: Entity, record_id: int) -> Any:
        reads = ChunkReads.of(session)
        record = reads.record(account_id, entity, record_id) if reads is not None else UNREAD
        if record is UNREAD:
            model = RECORD_MODELS[entity]
            stmt = select(model).where(model.id == record_id, model.account_id == account_id)
            if entity == Entity.INVOICE:
                stmt = stmt.options(selectinload(Invoice.lines).selectinload(InvoiceLine.item),
                                    selectinload(Invoice.contact))
            record = session.scalars(stmt).one_or_none()
        if record is None:
            raise NotFound(f"no {entity.value} {record_id}")
        return record

    @staticmethod
    def _link(session: Session, connection_id: int, entity: str, record_id: int) -> Link | None:
        reads = ChunkReads.of(session)
        if reads is not None and (link := reads.link(connection_id, entity, record_id)) is not UNREAD:
            return link
        return session.scalars(select(Link).where(Link.connection_id == connection_id, Link.entity == entity,
                                                  Link.record_id == record_id)).one_or_none()

    @staticmethod
    def _link_read(session: Session, connection_id: int, entity: str, record_id: int) -> LinkView | None:
        """The record's link, to be read only: as a row when a batch being prepared read it so
        (``ChunkReads.read_link_rows``), else as :meth:`_link` answers."""
        reads = ChunkReads.of(session)
        if reads is not None and (row := reads.link_row(connection_id, entity, record_id)) is not UNREAD:
            return row
        return EngineBase._link(session, connection_id, entity, record_id)

    @staticmethod
    def _add_link(session: Session, link: Link) -> None:
        session.add(link)
        if (reads := ChunkReads.of(session)) is not None:
            reads.added_link(link)

    def _read_chunk(self, session: Session, conn: Connection, targets: Sequence[Target]) -> None:
        """Read what preparing ``targets`` for a batch needs, one query per kind (:mod:`sync.chunk_reads`): the
        records (with lines, items and contacts), their links and those of what they reference, their open and
        pending entries. ``_load_record``, ``_link_read``, ``_open_entries`` and ``_new_entry`` answer from them
        (the records and links as plain rows: preparing a batch only reads them)."""
        reads = ChunkReads.attach(session, conn.id, conn.account_id)
        keys = [(t.entity.value, t.record_id) for t in targets]
        deps: list[tuple[str, int]] = []
        for entity in dict.fromkeys(t.entity for t in targets):
            for record in reads.read_records(entity, [t.record_id for t in targets if t.entity == entity]):
                deps += [(dep.value, dep_id) for dep, dep_id, _label, _field in self._dependencies(entity, record)]
        reads.read_link_rows([*keys, *deps])  # read only while preparing: rows, not ORM objects
        reads.read_push_entries(keys)

    @staticmethod
    def _read_outcomes(session: Session, conn: Connection,
                       outcomes: Sequence[tuple[Mapping[str, Any], Written | Failed]],
                       records: Mapping[tuple[str, int], Any] | None = None) -> None:
        """Read what recording a batch's ``outcomes`` needs, one query per kind (:mod:`sync.chunk_reads`): the
        records, their links and those holding the provider ids written, the attempts and the entries a success
        resolves. ``records``: the records as the batch was prepared from them ((entity, id) -> record, detached),
        not loaded again: only whether each is still there and when it last changed are read."""
        reads = ChunkReads.attach(session, conn.id, conn.account_id)
        keys = [(str(it["entity"]), int(it["record_id"])) for it, _outcome in outcomes]
        records = records or {}
        for entity in dict.fromkeys(Entity(e) for e, _id in keys):
            ids = [record_id for e, record_id in keys if e == entity]
            known = {record_id: records[(entity.value, record_id)] for record_id in ids
                     if (entity.value, record_id) in records}
            if known:
                reads.known_records(entity, known)
            if len(known) < len(ids):
                reads.read_records(entity, [record_id for record_id in ids if record_id not in known])
        reads.read_links(keys, [(str(it["entity"]), outcome.remote_id) for it, outcome in outcomes
                                if isinstance(outcome, Written)])
        reads.read_outcome_entries(keys, [int(it["entry_id"]) for it, _outcome in outcomes])

    def _dependencies(self, entity: Entity, record: Any) -> list[tuple[Entity, int, str, str]]:
        """(entity, record id, label, field) of what ``record`` references, in push order."""
        if entity == Entity.INVOICE:
            deps = [(Entity.CONTACT, record.contact_id, record.contact.display_name, "CustomerRef")]
            seen: set[int] = set()
            for line in record.lines:
                if line.item_id not in seen:
                    seen.add(line.item_id)
                    deps.append((Entity.ITEM, line.item_id, line.item.name, "Line.SalesItemLineDetail.ItemRef"))
            return deps
        if entity == Entity.PAYMENT:
            deps = [(Entity.CONTACT, record.contact_id, record.contact.display_name, "CustomerRef")]
            if record.invoice_id:
                deps.append((Entity.INVOICE, record.invoice_id, record.invoice.number, "LinkedTxn"))
            return deps
        return []

    def _refs(self, session: Session, connection_id: int, entity: Entity, record: Any) -> dict[str, Any]:
        """The provider ids of what ``record`` references (and for an invoice whose own tax is to be stated
        explicitly, its link's ``tax_code``: see :meth:`send_own_tax`). Raises DependencyMissing."""
        refs: dict[str, Any] = {"items": {}}
        if entity == Entity.INVOICE:
            own = self._link_read(session, connection_id, entity, record.id)
            if own is not None and own.tax_code:
                refs["tax_code"] = own.tax_code
        for dep_entity, dep_id, label, fieldname in self._dependencies(entity, record):
            link = self._link_read(session, connection_id, dep_entity, dep_id)
            if link is None or link.remote_deleted:
                raise DependencyMissing(dep_entity, dep_id, label, fieldname,
                                        deleted=link is not None and link.remote_deleted)
            if dep_entity == Entity.CONTACT:
                refs["customer"] = link.remote_id
            elif dep_entity == Entity.ITEM:
                refs["items"][dep_id] = link.remote_id
            elif dep_entity == Entity.INVOICE:
                refs["invoice"] = link.remote_id
        return refs

    @staticmethod
    def _open_entries(session: Session, connection_id: int, entity: str, record_id: int,
                      direction: str = Direction.PUSH) -> list[SyncLogEntry]:
        reads = ChunkReads.of(session)
        if reads is not None and direction == Direction.PUSH and (
                entries := reads.open_entries(connection_id, entity, record_id)) is not UNREAD:
            return entries
        return list(session.scalars(select(SyncLogEntry).where(
            SyncLogEntry.connection_id == connection_id, SyncLogEntry.entity == entity,
            SyncLogEntry.record_id == record_id, SyncLogEntry.direction == direction,
            open_clause()).order_by(SyncLogEntry.id)))

    def _notify(self, session: Session, conn: Connection, event: str, topic: str,
                entry: SyncLogEntry | None = None, incident: Incident | None = None) -> None:
        session.add(Notification(account_id=conn.account_id, connection_id=conn.id, topic=topic, event=event,
                                 entry_id=entry.id if entry else None,
                                 incident_id=incident.id if incident else None, created_at=self.clock()))

    def _open_incident(self, session: Session, conn: Connection, kind: Kind, details: str) -> Incident:
        """The connection's open incident of ``kind``, opened (and announced) when there is none. An open
        incident of another kind is ended first (``resolution`` "replaced"): a rate-limit pause whose next
        request finds the authorization gone becomes an auth_expired incident, so its message offers Reconnect
        instead of waiting for a resume that cannot happen."""
        incident = session.scalars(select(Incident).where(
            Incident.connection_id == conn.id, Incident.resolved_at.is_(None))).first()
        if incident is not None and incident.kind != kind.value:
            incident.resolved_at, incident.resolved_by, incident.resolution = self.clock(), "system", "replaced"
            # the connection's own entries of the ended kind are over too (a pause that ended is no open error)
            for step in list(session.scalars(select(SyncLogEntry).where(
                    SyncLogEntry.connection_id == conn.id, SyncLogEntry.record_id.is_(None),
                    SyncLogEntry.kind == incident.kind, SyncLogEntry.status.in_(OPEN_STATUSES),
                    SyncLogEntry.resolved_at.is_(None)))):
                step.resolved_at, step.resolved_by = self.clock(), "system"
            self._notify(session, conn, "incident_resolved", connection_topic(conn.id), incident=incident)
            log.warning("event=incident_replaced connection_id=%s kind=%s by=%s", conn.id, incident.kind,
                        kind.value)
            session.flush()
            incident = None
        if incident is None:
            incident = Incident(account_id=conn.account_id, connection_id=conn.id, kind=kind.value,
                                details=details[:4000], opened_at=self.clock())
            session.add(incident)
            session.flush()
            self._notify(session, conn, "incident_opened", connection_topic(conn.id), incident=incident)
            log.warning("event=incident_opened connection_id=%s kind=%s", conn.id, kind.value)
        return incident

    def _apply_connection_failure(self, session: Session, conn: Connection, diag: Diagnosis) -> None:
        now = self.clock()
        if diag.kind == Kind.AUTH_EXPIRED:
            conn.status = ConnectionStatus.EXPIRED.value
        elif diag.kind == Kind.RATE_LIMITED:
            conn.status = ConnectionStatus.RATE_LIMITED.value
            seconds = diag.retry_after if diag.retry_after else self.config.rate_limit_pause_seconds
            conn.paused_until = now + dt.timedelta(seconds=seconds)
        elif diag.kind == Kind.SUBSCRIPTION:
            conn.status = ConnectionStatus.SUSPENDED.value
        assert diag.kind is not None
        self._open_incident(session, conn, diag.kind, diag.details)

    def _fill_failure(self, entry: SyncLogEntry, diag: Diagnosis) -> None:
        entry.status = diag.entry_status
        entry.kind = diag.kind.value if diag.kind else None
        entry.details = printable(diag.details, 10_000)
        entry.codes = printable(",".join(diag.codes), 200) or None
        entry.field = printable(diag.field, 200) or None
        entry.http_status = diag.http_status
        entry.intuit_tid = printable(diag.intuit_tid, 100) or None
        # the provider's links, so that a message can show them as links again (details say "text (url)")
        data = {k: v for k, v in (entry.data or {}).items() if k not in ("links", "meaning")}
        if diag.links:
            data["links"] = [[text, url] for text, url in diag.links]
        if diag.meaning:  # which of the kind's meanings (sync.diagnosis.MEANINGS) the words named
            data["meaning"] = diag.meaning
        entry.data = data or None

    def _finish_failure(self, session: Session, conn: Connection, entry: SyncLogEntry, diag: Diagnosis) -> None:
        """Record a failed attempt: the entry, the connection state, and the notification."""
        self._fill_failure(entry, diag)
        if diag.kind in CONNECTION_KINDS:
            self._apply_connection_failure(session, conn, diag)
            self._notify(session, conn, "incident_updated", connection_topic(conn.id), entry=entry)
        else:
            self._notify(session, conn, "error", record_topic(conn.id, entry.entity, entry.record_id), entry=entry)
        log.info("event=sync_failed connection_id=%s entity=%s record_id=%s kind=%s attempt=%s",
                 conn.id, entry.entity, entry.record_id, entry.kind, entry.attempt)

    def _finish_success(self, session: Session, conn: Connection, entry: SyncLogEntry, record: Any,
                        written: Written, payload_digest: str, provider: Provider, actor: str) -> None:
        """Record a successful write: the link, the entry (synced, or a total_mismatch warning), the chain. An
        attempt that repeated an uncertain create whose payload has changed since (``data["payload_changed"]``)
        may have been answered with the copy of the older content: the link is marked stale (the next sync
        sends the record as an update) and the totals are not compared with the older copy."""
        now = self.clock()
        older_copy = bool((entry.data or {}).get("payload_changed"))
        link = self._link(session, conn.id, entry.entity, entry.record_id or 0)
        if link is None:
            link = Link(connection_id=conn.id, entity=entry.entity, record_id=entry.record_id,
                        remote_id=written.remote_id)
            self._add_link(session, link)
        link.remote_id = written.remote_id
        link.sync_token = written.sync_token
        link.synced_hash = "" if older_copy else payload_digest
        link.synced_at = now
        link.remote_deleted = False
        entry.remote_id = written.remote_id
        entry.intuit_tid = written.intuit_tid
        warning = None if older_copy else provider.check(entry.entity, record, written)
        # resolve this record's earlier chain (open or superseded and not yet resolved); a pull that found the
        # record's copy deleted in QuickBooks is settled too: the record has a live copy again
        reads = ChunkReads.of(session)
        chain = reads.chain(entry) if reads is not None else UNREAD
        if chain is UNREAD:
            chain = list(session.scalars(select(SyncLogEntry).where(
                SyncLogEntry.connection_id == conn.id, SyncLogEntry.entity == entry.entity,
                SyncLogEntry.record_id == entry.record_id,
                or_(SyncLogEntry.direction == entry.direction,
                    and_(SyncLogEntry.direction == Direction.PULL, SyncLogEntry.kind == Kind.NOT_FOUND)),
                SyncLogEntry.id != entry.id, SyncLogEntry.status.in_((Status.ERROR, Status.WARNING)),
                SyncLogEntry.resolved_at.is_(None))))
        for old in chain:
            old.resolved_at = now
            old.resolved_by = actor
        # an Unlink's entry ("the next sync creates a fresh copy") is done once this attempt wrote the copy: it is
        # superseded by it, and its message is drawn again from this attempt (Synced), not left promising
        unlinked = reads.unlinked(entry) if reads is not None else UNREAD
        if unlinked is UNREAD:
            unlinked = list(session.scalars(select(SyncLogEntry).where(
                SyncLogEntry.connection_id == conn.id, SyncLogEntry.entity == entry.entity,
                SyncLogEntry.record_id == entry.record_id, SyncLogEntry.status == Status.INFO,
                SyncLogEntry.id != entry.id, SyncLogEntry.superseded_by_id.is_(None),
                SyncLogEntry.id.in_(select(Notification.entry_id).where(Notification.event == "unlinked")))))
        for old in unlinked:
            old.superseded_by_id = entry.id
        if warning is not None:
            self._fill_failure(entry, warning)
            entry.data = dict(warning.data) if warning.data else None
            self._notify(session, conn, "error", record_topic(conn.id, entry.entity, entry.record_id), entry=entry)
        else:
            entry.status = Status.SYNCED.value
            entry.kind = None
            if chain:
                entry.resolved_at = now
                entry.resolved_by = actor
            if chain or unlinked:
                self._notify(session, conn, "resolved", record_topic(conn.id, entry.entity, entry.record_id),
                             entry=entry)
        conn.last_sync_at = now

    def _new_entry(self, session: Session, conn: Connection, target: Target, record: Any, actor: str,
                   digest: str | None, retry_of: SyncLogEntry | None,
                   direction: Direction = Direction.PUSH, creating: bool = False,
                   sent: Mapping[str, Any] | None = None) -> SyncLogEntry:
        """A pending entry for a new attempt (:meth:`_attempt_values`), inserted now; it supersedes the record's
        open entries and ``retry_of``."""
        values, previous = self._attempt_values(session, conn, target, record, actor, digest, retry_of, direction,
                                                creating, sent)
        entry = SyncLogEntry(**values)
        session.add(entry)
        session.flush()
        for old in previous:
            old.superseded_by_id = entry.id
        if retry_of is not None and retry_of.superseded_by_id is None:
            retry_of.superseded_by_id = entry.id
        return entry

    def _attempt_values(self, session: Session, conn: Connection, target: Target, record: Any, actor: str,
                        digest: str | None, retry_of: SyncLogEntry | None,
                        direction: Direction = Direction.PUSH, creating: bool = False,
                        sent: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], list[SyncLogEntry]]:
        """The columns of a pending entry for a new attempt (every column but ``id`` and ``batch_id``), and the
        record's open entries it supersedes, oldest first. Reuses the requestid of an attempt whose outcome is
        uncertain when the payload is unchanged, or whatever changed when both are creates (``creating``: the
        record has no copy linked): QuickBooks then answers with the copy the first one made, if it made one,
        instead of making a second; ``data["payload_changed"]`` says the copy may hold the older content, which the
        next sync sends as an update. A reuse is marked ``data["reused_request_id"]`` (such an attempt goes out
        alone, never in a batch under another requestid). The caller holds the record's claim, so a pending attempt
        of the record is one whose process died (its claim was taken over): it is settled as interrupted first
        (flushed), and its requestid is reused like any uncertain attempt's.

        ``sent``: a single create's payload, kept as ``data["sent"]`` with the requestid it first went out under
        (a reuse carries the first one forward): should QuickBooks forget that requestid, the copy it may have made
        is looked for by what was sent, not by the record as it is now (`_forgotten_create`)."""
        # (rows read in full before writing: an open SQLite cursor under a write fails with "database is locked")
        reads = ChunkReads.of(session)
        pending = reads.pending_entries(conn.id, target.entity, target.record_id) if reads is not None and (
            direction == Direction.PUSH) else UNREAD
        if pending is UNREAD:
            pending = list(session.scalars(select(SyncLogEntry).where(
                SyncLogEntry.connection_id == conn.id, SyncLogEntry.entity == target.entity,
                SyncLogEntry.record_id == target.record_id, SyncLogEntry.direction == direction,
                SyncLogEntry.status == Status.PENDING, SyncLogEntry.superseded_by_id.is_(None))))
        for abandoned in pending:
            self._settle_interrupted(session, abandoned)
        if pending:
            session.flush()
        previous = self._open_entries(session, conn.id, target.entity, target.record_id, direction)
        last = previous[-1] if previous else retry_of
        request_id = new_request_id()
        data: dict[str, Any] | None = None
        if last is not None and last.request_id and in_doubt(last) and (last.payload_hash == digest or creating):
            request_id = last.request_id
            data = {"reused_request_id": True, **({"payload_changed": True} if last.payload_hash != digest else {})}
            first_sent = (last.data or {}).get("sent") if isinstance(last.data, dict) else None
            if creating and (first_sent or sent) is not None:
                data["sent"] = first_sent or json.loads(dumps(sent))
        elif creating and sent is not None:
            data = {"sent": json.loads(dumps(sent))}
        if reads is not None:  # the record's entries change: read them afresh should anything ask again
            reads.forget_entries(conn.id, target.entity, target.record_id)
        return {
            "created_at": self.clock(), "account_id": conn.account_id, "connection_id": conn.id,
            "entity": target.entity.value, "record_id": target.record_id, "record_label": label_of(record),
            "direction": direction.value, "status": Status.PENDING.value, "request_id": request_id,
            "payload_hash": digest,
            "attempt": (last.attempt + 1) if last is not None and last.resolved_at is None else 1,
            "actor": actor, "retry_of_id": retry_of.id if retry_of is not None else None, "data": data,
        }, previous

    @staticmethod
    def _insert_attempts(session: Session, attempts: Sequence[tuple[dict[str, Any], list[SyncLogEntry]]]) -> list[int]:
        """Insert pending entries (``attempts``: :meth:`_attempt_values` of records each pushed once here, all
        with the same columns) with one INSERT ... RETURNING, and point what each supersedes at it with one UPDATE
        (executemany), without the ORM's unit of work: a batch's attempts. Whatever the session holds is flushed
        first. Returns the new entries' ids, in the order of ``attempts``."""
        if not attempts:
            return []
        session.flush()
        returned = session.execute(_INSERT_ATTEMPTS, [values for values, _previous in attempts]).all()
        ids = {(str(row.entity), int(row.record_id or 0)): int(row.id) for row in returned}
        if len(ids) != len(attempts):
            raise ValueError("a batch's attempts are one per record")
        out = [ids[(str(values["entity"]), int(values["record_id"] or 0))] for values, _previous in attempts]
        handed = [(old, new_id) for (_values, previous), new_id in zip(attempts, out, strict=True) for old in previous]
        if handed:
            session.execute(_SUPERSEDE, [{"b_old": old.id, "b_new": new_id} for old, new_id in handed])
            for old, new_id in handed:  # what the session holds says so too, without a write of its own
                set_committed_value(old, "superseded_by_id", new_id)
        return out

    def _settle_interrupted(self, session: Session, entry: SyncLogEntry) -> None:
        """An attempt interrupted before QuickBooks answered: it keeps the error it retried (kind, field, codes:
        the message offers the same fixes again), says it was interrupted, and is marked ``data["interrupted"]``
        so its outcome counts as uncertain (:func:`in_doubt`: the next attempt reuses its requestid). Without
        an earlier error it is an unknown error."""
        note = ("The attempt was interrupted before QuickBooks answered (syncbot stopped during it). Retry it: if "
                "QuickBooks did the work, it is not done twice.")
        before = session.get(SyncLogEntry, entry.retry_of_id) if entry.retry_of_id else None
        if before is not None and before.kind and before.kind in KINDS and Kind(before.kind) not in CONNECTION_KINDS:
            diag = make_diagnosis(Kind(before.kind), f"{note} The error before it: {before.details or ''}".strip(),
                                  field=before.field)
            self._fill_failure(entry, diag)
            entry.codes = before.codes
        else:
            self._fill_failure(entry, make_diagnosis(Kind.UNKNOWN, note))
        entry.http_status = None
        entry.data = {**(entry.data or {}), "interrupted": True}
