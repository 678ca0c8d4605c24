"""What one batch of records needs from the database, read for the whole batch at once.

A batch of 30 records used to cost a query per record for each thing the engine reads (the record and its lines,
its link, the links of what it references, its open entries, its chain), twice: to prepare the batch and to record
its outcomes. :class:`ChunkReads` reads each of these with one query for the batch and answers the engine's
per-record helpers (``SyncEngine._load_record``, ``_link``, ``_open_entries``, ...) from them while it is attached to
the session (:meth:`attach`). The rows are the session's own objects, so what the transaction changes on them is
seen; a helper asked about something not read here (``UNREAD``) queries as before. Invoices (with their lines,
items and contact) are read as plain rows (:class:`InvoiceRow`), not ORM objects: the batch path only reads them;
so are the links read to prepare a batch (:class:`LinkRow`; those read to record outcomes are the session's).
The records a batch was prepared from are not loaded a second time to record its outcomes:
:meth:`ChunkReads.known_records` reads only whether each is still there and when it last changed.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from sqlalchemy import Result, and_, bindparam, exists, or_, select
from sqlalchemy.orm import Session, selectinload

from sync.diagnosis import Kind
from sync.log import OPEN_STATUSES
from sync.models import (
    RECORD_MODELS,
    Contact,
    Direction,
    Entity,
    Invoice,
    InvoiceLine,
    Item,
    Link,
    Notification,
    Payment,
    Status,
    SyncLogEntry,
    table_of,
)
from sync.prebuilt import by_entity, records_clause, records_params, shaped

_KEY = "syncbot.chunk_reads"


class _Unread(enum.Enum):
    UNREAD = "unread"


#: The answer of a look-up whose rows were not read for the batch: the caller queries.
UNREAD = _Unread.UNREAD

Key = tuple[str, int]

_R = TypeVar("_R", bound="RowRecord")


# correlated, through the notifications' entry_id index: not a scan of every notification ever written
_UNLINKED = exists().where(Notification.entry_id == SyncLogEntry.id, Notification.event == "unlinked")


def _push_entries(count: int) -> Any:
    return select(SyncLogEntry).where(
        SyncLogEntry.connection_id == bindparam("b_conn"),
        records_clause(SyncLogEntry.entity, SyncLogEntry.record_id, count, "b_"),
        SyncLogEntry.direction == Direction.PUSH, SyncLogEntry.superseded_by_id.is_(None),
        or_(and_(SyncLogEntry.status.in_(OPEN_STATUSES), SyncLogEntry.resolved_at.is_(None)),
            SyncLogEntry.status == Status.PENDING)).order_by(SyncLogEntry.id)


def _outcome_entries(count: int) -> Any:
    return select(SyncLogEntry, _UNLINKED).where(
        SyncLogEntry.connection_id == bindparam("b_conn"),
        records_clause(SyncLogEntry.entity, SyncLogEntry.record_id, count, "b_"),
        or_(SyncLogEntry.id.in_(bindparam("b_entry_ids", expanding=True)),
            and_(SyncLogEntry.status.in_(OPEN_STATUSES), SyncLogEntry.resolved_at.is_(None)),
            and_(SyncLogEntry.status == Status.INFO, SyncLogEntry.superseded_by_id.is_(None),
                 _UNLINKED))).order_by(SyncLogEntry.id)


def _links(by_record: int, by_remote: int) -> Any:
    return select(Link).where(Link.connection_id == bindparam("b_conn"), or_(
        records_clause(Link.entity, Link.record_id, by_record, "b_"),
        records_clause(Link.entity, Link.remote_id, by_remote, "b_remote_")))


def _link_rows(by_record: int) -> Any:
    links = table_of(Link)
    return select(links).where(links.c.connection_id == bindparam("b_conn"),
                               records_clause(links.c.entity, links.c.record_id, by_record, "b_"))


class RowRecord:
    """A record read for a batch as a Core row rather than an ORM object: its columns as attributes, named as its
    mapped class names them. Read-only in use: the batch path builds payloads, labels and totals from it."""

    id: int

    def __init__(self, columns: Iterable[tuple[str, Any]]) -> None:
        self.__dict__.update(columns)

    @classmethod
    def all_of(cls: type[_R], result: Result[Any]) -> list[_R]:
        """One record per row of ``result`` (a select of its table's columns)."""
        keys = tuple(result.keys())
        return [cls(zip(keys, row, strict=True)) for row in result]


class ContactRow(RowRecord):
    """A contact's columns (:class:`sync.models.Contact`)."""

    display_name: str

    @property
    def label(self) -> str:
        return self.display_name


class ItemRow(RowRecord):
    """An item's columns (:class:`sync.models.Item`)."""

    name: str

    @property
    def label(self) -> str:
        return self.name


class LineRow(RowRecord):
    """An invoice line's columns (:class:`sync.models.InvoiceLine`), its ``item`` and its ``invoice``."""

    item_id: int
    invoice_id: int
    item: ItemRow | None
    invoice: InvoiceRow


class LinkRow(RowRecord):
    """A link's columns (:class:`sync.models.Link`), read to prepare a batch, which only reads them."""

    entity: str
    record_id: int
    remote_id: str
    sync_token: str | None
    synced_hash: str | None
    remote_deleted: bool
    tax_code: str | None


class LinkView(Protocol):
    """What reading a link needs: a :class:`sync.models.Link` or a :class:`LinkRow`."""

    @property
    def remote_id(self) -> str: ...

    @property
    def sync_token(self) -> str | None: ...

    @property
    def synced_hash(self) -> str | None: ...

    @property
    def remote_deleted(self) -> bool: ...

    @property
    def tax_code(self) -> str | None: ...


class InvoiceRow(RowRecord):
    """An invoice's columns (:class:`sync.models.Invoice`), its ``lines`` by position and its ``contact``."""

    number: str
    contact_id: int
    contact: ContactRow | None

    def __init__(self, columns: Iterable[tuple[str, Any]]) -> None:
        super().__init__(columns)
        self.lines: list[LineRow] = []

    @property
    def label(self) -> str:
        return self.number


_INVOICES_TABLE, _LINES_TABLE, _ITEMS_TABLE, _CONTACTS_TABLE = (
    table_of(m) for m in (Invoice, InvoiceLine, Item, Contact))
# built once (not per batch): the lists of ids are expanding parameters
_INVOICES = select(_INVOICES_TABLE).where(_INVOICES_TABLE.c.id.in_(bindparam("ids", expanding=True)),
                                          _INVOICES_TABLE.c.account_id == bindparam("account_id"))
_LINES = select(_LINES_TABLE).where(_LINES_TABLE.c.invoice_id.in_(bindparam("ids", expanding=True))).order_by(
    _LINES_TABLE.c.position, _LINES_TABLE.c.id)
_ITEMS = select(_ITEMS_TABLE).where(_ITEMS_TABLE.c.id.in_(bindparam("ids", expanding=True)))
_CONTACTS = select(_CONTACTS_TABLE).where(_CONTACTS_TABLE.c.id.in_(bindparam("ids", expanding=True)))


class ChunkReads:
    """The rows one batch of a connection's records needs, read with one query per kind, by (entity, record id).

    Only the connection ``connection_id`` of the account ``account_id`` is answered for."""

    def __init__(self, session: Session, connection_id: int, account_id: int) -> None:
        self.session = session
        self.connection_id = connection_id
        self.account_id = account_id
        self._records: dict[Key, Any] = {}
        self._updated: dict[Key, Any] = {}  # when a record read by known_records was last changed (as read now)
        self._links: dict[Key, Link | None] = {}
        self._link_rows: dict[Key, LinkRow | None] = {}  # read as rows to prepare a batch (read_link_rows)
        self._known_links: dict[int, Link] = {}  # every link read or added, by id(): the by-remote look-ups
        self._remote_read: set[tuple[str, str]] = set()
        self._entries: dict[Key, list[SyncLogEntry]] = {}
        self._unlinked: set[int] = set()  # entry ids an Unlink wrote ("unlinked" notification)
        self._entries_read = ""  # "push" (read_push_entries) or "outcome" (read_outcome_entries)

    @classmethod
    def attach(cls, session: Session, connection_id: int, account_id: int) -> ChunkReads:
        """New reads attached to ``session`` for the rest of its life: the engine's helpers answer from them."""
        reads = cls(session, connection_id, account_id)
        session.info[_KEY] = reads
        return reads

    @staticmethod
    def of(session: Session) -> ChunkReads | None:
        """The reads attached to ``session`` (:meth:`attach`), or None."""
        reads: ChunkReads | None = session.info.get(_KEY)
        return reads

    # ---------------------------------------------------------------------------------------------- reading

    def read_records(self, entity: Entity, record_ids: Collection[int]) -> list[Any]:
        """The account's records ``record_ids`` of ``entity`` in one query (an invoice with its lines, their
        items and its contact, as :class:`InvoiceRow`; a payment with its contact and invoice); the ones not found
        are remembered as gone. Returns those found."""
        found: list[Any]
        if entity == Entity.INVOICE:
            found = self._read_invoices(record_ids)
        else:
            model = RECORD_MODELS[entity]
            stmt = select(model).where(model.id.in_(sorted(record_ids)), model.account_id == self.account_id)
            if entity == Entity.PAYMENT:
                stmt = stmt.options(selectinload(Payment.contact), selectinload(Payment.invoice))
            found = list(self.session.scalars(stmt))  # a select of one of four classes: typed as Base
        for record_id in record_ids:
            self._records[(entity.value, record_id)] = None
        for record in found:
            self._records[(entity.value, record.id)] = record
        return found

    def _read_invoices(self, record_ids: Collection[int]) -> list[InvoiceRow]:
        """The account's invoices ``record_ids`` with their lines (by position), the lines' items and the
        invoices' contacts, as plain rows (no ORM objects: building those was most of a batch's reading): one
        query per table, as ``selectinload`` would make."""
        found = {invoice.id: invoice for invoice in InvoiceRow.all_of(self.session.execute(
            _INVOICES, {"ids": sorted(record_ids), "account_id": self.account_id}))}
        if not found:
            return []
        lines = LineRow.all_of(self.session.execute(_LINES, {"ids": sorted(found)}))
        item_ids = sorted({line.item_id for line in lines})
        by_item = {item.id: item for item in ItemRow.all_of(self.session.execute(
            _ITEMS, {"ids": item_ids}))} if item_ids else {}
        by_contact = {contact.id: contact for contact in ContactRow.all_of(self.session.execute(
            _CONTACTS, {"ids": sorted({invoice.contact_id for invoice in found.values()})}))}
        for invoice in found.values():
            invoice.contact = by_contact.get(invoice.contact_id)
        for line in lines:
            line.item, line.invoice = by_item.get(line.item_id), found[line.invoice_id]
            line.invoice.lines.append(line)
        return list(found.values())

    def known_records(self, entity: Entity, records: Mapping[int, Any]) -> None:
        """Records read earlier in the run (``records``, by id: detached, with what :meth:`read_records` loaded),
        answered again without loading them twice: one query reads whether each is still in the account and when
        it was last changed (:meth:`updated_at`); the ones not found are remembered as gone."""
        model = RECORD_MODELS[entity]
        for record_id in records:
            self._records[(entity.value, record_id)] = None
        stmt = shaped(("known", entity), lambda: select(model.id, model.updated_at).where(
            model.id.in_(bindparam("b_ids", expanding=True)), model.account_id == bindparam("b_account")))
        for row in self.session.execute(stmt, {"b_ids": sorted(records), "b_account": self.account_id}):
            self._records[(entity.value, row.id)] = records[row.id]
            self._updated[(entity.value, row.id)] = row.updated_at

    def read_links(self, keys: Iterable[Key], remote_ids: Iterable[tuple[str, str]] = ()) -> None:
        """The connection's links of the records ``keys`` and those holding the provider ids ``remote_ids``
        ((entity, remote id)), in one query."""
        keys = {(str(entity), int(record_id)) for entity, record_id in keys}
        by_remote: dict[str, set[str]] = {}
        for entity, remote_id in remote_ids:
            by_remote.setdefault(str(entity), set()).add(str(remote_id))
        by_record = by_entity(keys)
        if not by_record and not by_remote:
            return
        for key in keys:
            self._links[key] = None
        stmt = shaped(("links", len(by_record), len(by_remote)), lambda: _links(len(by_record), len(by_remote)))
        for link in self.session.scalars(stmt, {"b_conn": self.connection_id, **records_params(by_record, "b_"),
                                                **records_params(by_remote, "b_remote_")}):
            self._known_links[id(link)] = link
            if (link.entity, link.record_id) in keys:
                self._links[(link.entity, link.record_id)] = link
        for entity, ids in by_remote.items():
            self._remote_read.update((entity, remote_id) for remote_id in ids)

    def read_link_rows(self, keys: Iterable[Key]) -> None:
        """The connection's links of the records ``keys`` as plain rows (:class:`LinkRow`, answered by
        :meth:`link_row`), in one query: preparing a batch only reads its links, and building ORM objects cost
        more than the query."""
        keys = {(str(entity), int(record_id)) for entity, record_id in keys}
        by_record = by_entity(keys)
        if not by_record:
            return
        for key in keys:
            self._link_rows[key] = None
        stmt = shaped(("link_rows", len(by_record)), lambda: _link_rows(len(by_record)))
        for link in LinkRow.all_of(self.session.execute(stmt, {"b_conn": self.connection_id,
                                                               **records_params(by_record, "b_")})):
            self._link_rows[(link.entity, link.record_id)] = link

    def read_push_entries(self, keys: Iterable[Key]) -> None:
        """The records' push entries an attempt reads before it is sent: open (``sync.log.open_clause``) or
        pending, in one query."""
        keys = set(keys)
        groups = by_entity(keys)
        rows = self.session.scalars(shaped(("push_entries", len(groups)), lambda: _push_entries(len(groups))),
                                    {"b_conn": self.connection_id, **records_params(groups, "b_")})
        self._keep_entries(keys, rows)
        self._entries_read = "push"

    def read_outcome_entries(self, keys: Iterable[Key], entry_ids: Collection[int]) -> None:
        """What recording the records' outcomes reads, in one query: the attempts ``entry_ids``, and each
        record's entries a success settles (errors and warnings not resolved: its chain; an Unlink's entry not
        superseded)."""
        keys = set(keys)
        groups = by_entity(keys)
        rows = self.session.execute(
            shaped(("outcome_entries", len(groups)), lambda: _outcome_entries(len(groups))),
            {"b_conn": self.connection_id, "b_entry_ids": sorted(entry_ids), **records_params(groups, "b_")})
        entries: list[SyncLogEntry] = []
        for row in rows:
            entry, was_unlinked = row[0], row[1]
            entries.append(entry)
            if was_unlinked:
                self._unlinked.add(entry.id)
        self._keep_entries(keys, entries)
        self._entries_read = "outcome"

    def _keep_entries(self, keys: set[Key], rows: Iterable[SyncLogEntry]) -> None:
        for key in keys:
            self._entries[(str(key[0]), int(key[1]))] = []
        for entry in rows:
            self._entries.setdefault((entry.entity, entry.record_id or 0), []).append(entry)

    # ---------------------------------------------------------------------------------------------- answers

    def record(self, account_id: int, entity: str, record_id: int) -> Any:
        """The account's record (None: not found in the account), or UNREAD."""
        if account_id != self.account_id:
            return UNREAD
        return self._records.get((str(entity), record_id), UNREAD)

    def updated_at(self, account_id: int, entity: str, record_id: int) -> Any:
        """When the record read by :meth:`known_records` was last changed, as the database holds it now, or UNREAD
        (the record was read otherwise, or not at all: its ``updated_at`` is the one to go by)."""
        if account_id != self.account_id:
            return UNREAD
        return self._updated.get((str(entity), record_id), UNREAD)

    def link(self, connection_id: int, entity: str, record_id: int) -> Link | _Unread | None:
        """The record's link (None: it has none), or UNREAD."""
        if connection_id != self.connection_id:
            return UNREAD
        return self._links.get((str(entity), record_id), UNREAD)

    def link_row(self, connection_id: int, entity: str, record_id: int) -> LinkRow | _Unread | None:
        """The record's link as read by :meth:`read_link_rows` (None: it has none), or UNREAD."""
        if connection_id != self.connection_id:
            return UNREAD
        return self._link_rows.get((str(entity), record_id), UNREAD)

    def added_link(self, link: Link) -> None:
        """A link the transaction added: answered from now on."""
        self._known_links[id(link)] = link
        self._links[(link.entity, link.record_id)] = link

    def linked_elsewhere(self, connection_id: int, entity: str, remote_id: str, record_id: int) -> bool | _Unread:
        """Whether a link of another record than ``record_id`` holds ``remote_id``, or UNREAD."""
        if connection_id != self.connection_id or (str(entity), remote_id) not in self._remote_read:
            return UNREAD
        return any(link.entity == entity and link.remote_id == remote_id and link.record_id != record_id
                   for link in self._known_links.values())

    def _entries_of(self, connection_id: int | None, entity: str, record_id: int | None,
                    read: str = "") -> list[SyncLogEntry] | _Unread:
        if connection_id != self.connection_id or (read and read != self._entries_read):  # not read for this
            return UNREAD
        return self._entries.get((str(entity), record_id or 0), UNREAD)

    def open_entries(self, connection_id: int, entity: str, record_id: int) -> list[SyncLogEntry] | _Unread:
        """The record's open push entries, oldest first, or UNREAD."""
        entries = self._entries_of(connection_id, entity, record_id)
        if entries is UNREAD:
            return UNREAD
        return [e for e in entries if e.direction == Direction.PUSH and e.status in OPEN_STATUSES
                and e.resolved_at is None and e.superseded_by_id is None]

    def pending_entries(self, connection_id: int, entity: str, record_id: int) -> list[SyncLogEntry] | _Unread:
        """The record's pending push entries not superseded, or UNREAD."""
        entries = self._entries_of(connection_id, entity, record_id, "push")
        if entries is UNREAD:
            return UNREAD
        return [e for e in entries if e.direction == Direction.PUSH and e.status == Status.PENDING
                and e.superseded_by_id is None]

    def forget_entries(self, connection_id: int, entity: str, record_id: int) -> None:
        """The transaction wrote an entry of the record: its entries are queried again from now on."""
        if connection_id == self.connection_id:
            self._entries.pop((str(entity), record_id), None)

    def chain(self, entry: SyncLogEntry) -> list[SyncLogEntry] | _Unread:
        """The entries a success of ``entry`` resolves (see ``SyncEngine._finish_success``), or UNREAD."""
        entries = self._entries_of(entry.connection_id, entry.entity, entry.record_id, "outcome")
        if entries is UNREAD:
            return UNREAD
        return [e for e in entries if e.id != entry.id and e.status in OPEN_STATUSES and e.resolved_at is None
                and (e.direction == entry.direction or (e.direction == Direction.PULL and e.kind == Kind.NOT_FOUND))]

    def unlinked(self, entry: SyncLogEntry) -> list[SyncLogEntry] | _Unread:
        """The record's Unlink entries a success of ``entry`` supersedes, or UNREAD."""
        entries = self._entries_of(entry.connection_id, entry.entity, entry.record_id, "outcome")
        if entries is UNREAD:
            return UNREAD
        return [e for e in entries if e.id != entry.id and e.id in self._unlinked and e.status == Status.INFO
                and e.superseded_by_id is None]
