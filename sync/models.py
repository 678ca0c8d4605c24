"""The domain's tables (SQLAlchemy 2.0 typed ORM).

Accounts (JobsiteOn companies) own connections to accounting systems and the JobsiteOn records that sync
through them (contacts, items, invoices, payments). A link ties a record to its copy in the provider. Every sync
attempt writes one sync log entry; every error and every resolution also writes a notification (the outbox, in
the same transaction) which the Slack side delivers.

Conventions: times are timezone-aware UTC; money is integer cents; quantities and tax rates are exact decimals
stored as text (portable across SQLite and PostgreSQL without float rounding).
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as text (quantities, tax rates in percent)."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class Base(DeclarativeBase):
    """Declarative base with named constraints (Alembic batch mode on SQLite needs names)."""

    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class Entity(enum.StrEnum):
    """The JobsiteOn record types that sync."""

    CONTACT = "contact"
    ITEM = "item"
    INVOICE = "invoice"
    PAYMENT = "payment"


class Direction(enum.StrEnum):
    """push: JobsiteOn to the provider; pull: the provider to JobsiteOn."""

    PUSH = "push"
    PULL = "pull"


class Status(enum.StrEnum):
    """Status of a sync log entry. `pending` is an attempt in flight (written before the provider call)."""

    PENDING = "pending"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    SYNCED = "synced"


class ConnectionStatus(enum.StrEnum):
    """State of a connection to a provider."""

    CONNECTED = "connected"
    EXPIRED = "expired"
    RATE_LIMITED = "rate_limited"
    REVOKED = "revoked"
    SUSPENDED = "suspended"


class Account(Base):
    """A JobsiteOn company."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The weekly log summary: on (default) or off, the weekday (0 = Monday) and the local time "HH:MM",
    #: in ``timezone``.
    summary_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    summary_weekday: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    summary_time: Mapped[str] = mapped_column(String(5), default="09:00", server_default="09:00")

    connections: Mapped[list[Connection]] = relationship(back_populates="account")


class Connection(Base):
    """An account's connection to an accounting system (one QuickBooks company = one realm).

    Tokens are stored encrypted (`sync.crypto.SecretBox`); `*_expires_at` are UTC. `refresh_hard_expires_at` is
    Intuit's absolute five-year limit (November 2025 policy), `refresh_expires_at` the rolling 100-day one.
    """

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("account_id", "provider"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32), default="quickbooks")
    realm_id: Mapped[str | None] = mapped_column(String(64))
    #: The company's name in the provider (QuickBooks' CompanyInfo.CompanyName), read when the connection is
    #: authorized (and by Sync Now's early try); None until known: cards then name the realm id.
    company_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=ConnectionStatus.EXPIRED.value)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    refresh_hard_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    connected_by: Mapped[str | None] = mapped_column(String(100))
    paused_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cdc_cursor: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_sync_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    token_version: Mapped[int] = mapped_column(Integer, default=0)

    account: Mapped[Account] = relationship(back_populates="connections")


class Contact(Base):
    """A JobsiteOn contact (a customer). Syncs to a QuickBooks Customer."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    external_ref: Mapped[str | None] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    company: Mapped[str | None] = mapped_column(String(200))
    bill_line1: Mapped[str | None] = mapped_column(String(500))
    bill_city: Mapped[str | None] = mapped_column(String(100))
    bill_region: Mapped[str | None] = mapped_column(String(100))
    bill_postal_code: Mapped[str | None] = mapped_column(String(30))
    bill_country: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def label(self) -> str:
        return self.display_name


class Item(Base):
    """A JobsiteOn item (product or service). Syncs to a QuickBooks Item (Type Service)."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    external_ref: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    sku: Mapped[str | None] = mapped_column(String(100))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    income_account: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def label(self) -> str:
        return self.name


class Invoice(Base):
    """A JobsiteOn invoice: lines of item x quantity x rate, each with a tax code (TAX or NON).

    `subtotal_cents`, `tax_cents` and `total_cents` are JobsiteOn's own figures, compared after every write with
    what QuickBooks computed (total_mismatch).
    """

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    external_ref: Mapped[str | None] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(21))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    issue_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    tax_rate: Mapped[Decimal] = mapped_column(DecimalText, default=Decimal("0"))
    subtotal_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact] = relationship()
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.position", cascade="all, delete-orphan")

    @property
    def label(self) -> str:
        return self.number


class InvoiceLine(Base):
    """One line of an invoice: quantity x rate (cents) of an item, with a tax code."""

    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    description: Mapped[str | None] = mapped_column(String(4000))
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    rate_cents: Mapped[int] = mapped_column(BigInteger)
    tax_code: Mapped[str] = mapped_column(String(10), default="TAX")

    invoice: Mapped[Invoice] = relationship(back_populates="lines")
    item: Mapped[Item] = relationship()


class Payment(Base):
    """A payment received from a contact, applied to an invoice."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    external_ref: Mapped[str | None] = mapped_column(String(64))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[str | None] = mapped_column(String(50))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact] = relationship()
    invoice: Mapped[Invoice | None] = relationship()

    @property
    def label(self) -> str:
        """``Payment $250.00 on Nov 20``: how people tell payments apart (they have no number of their own)."""
        when = f" on {self.paid_on:%b} {self.paid_on.day}" if self.paid_on else ""
        return f"Payment ${(self.amount_cents or 0) / 100:,.2f}{when}"


RECORD_MODELS: dict[Entity, type[Contact] | type[Item] | type[Invoice] | type[Payment]] = {
    Entity.CONTACT: Contact,
    Entity.ITEM: Item,
    Entity.INVOICE: Invoice,
    Entity.PAYMENT: Payment,
}


class Link(Base):
    """A JobsiteOn record's copy in the provider: its id, the SyncToken last seen, and the hash of what was
    last pushed (a record whose payload hash differs has changed since).

    ``tax_code`` (invoices): set by "Send JobsiteOn's tax" on a total mismatch, the provider's tax code JobsiteOn's
    tax is stated with, so that every push of the invoice sends its tax explicitly and QuickBooks keeps it instead
    of computing its own; None: the provider's calculation stands."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("connection_id", "entity", "record_id", name="uq_links_record"),
        UniqueConstraint("connection_id", "entity", "remote_id", name="uq_links_remote"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int] = mapped_column(Integer)
    remote_id: Mapped[str] = mapped_column(String(64))
    sync_token: Mapped[str | None] = mapped_column(String(32))
    synced_hash: Mapped[str | None] = mapped_column(String(64))
    synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    remote_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    tax_code: Mapped[str | None] = mapped_column(String(64))


#: The open errors (``sync.log.open_clause``) as SQL, for the partial index that lists them (migration 0019).
OPEN_WHERE = "status IN ('error', 'warning') AND resolved_at IS NULL AND superseded_by_id IS NULL"

#: What the migrations keep outside these models: the free-text search of the sync log (migration 0019), on
#: SQLite an FTS5 table (and its shadow tables) kept by triggers, on PostgreSQL trigram indexes. Autogenerate and
#: tests/test_schema.py leave these names alone (``unmodelled``).
UNMODELLED_PREFIXES = ("sync_log_fts", "ix_sync_log_trgm_")


def unmodelled(name: str | None) -> bool:
    """Is ``name`` (a table, trigger or index) one the migrations keep outside the models?"""
    return bool(name) and str(name).startswith(UNMODELLED_PREFIXES)


class SyncLogEntry(Base):
    """One sync attempt of one record (or of a connection-wide step), as the sync log shows it.

    `attempt` counts attempts of the same record and direction since it last synced. A retried entry points to
    its new attempt through `superseded_by_id`; an entry is resolved once its record synced (`resolved_at`).
    `request_id` is the idempotency key (QuickBooks `requestid`) the attempt used; `data` holds structured
    details (totals of a total_mismatch, the provider's raw reply trimmed, its links as ``links``: [[text, url]], and
    ``meaning``: which of its kind's meanings the words named, a key of ``sync.diagnosis.MEANINGS``).
    """

    __tablename__ = "sync_log"
    __table_args__ = (
        Index("ix_sync_log_account_id_desc", "account_id", "id"),
        Index("ix_sync_log_record", "connection_id", "entity", "record_id"),
        Index("ix_sync_log_open", "connection_id", "status", "resolved_at"),
        # the self-references: deleting entries (retention) checks them row by row, a scan each without these
        Index("ix_sync_log_superseded_by_id", "superseded_by_id"),
        Index("ix_sync_log_retry_of_id", "retry_of_id"),
        # /sync-log's filters, each read newest first with LIMIT (migration 0019): an index per filter whose
        # matches may be rare in a big log, so a page and its capped count stop early instead of walking it all
        Index("ix_sync_log_account_status", "account_id", "status", "id"),
        Index("ix_sync_log_account_kind", "account_id", "kind", "id"),
        Index("ix_sync_log_account_entity", "account_id", "entity", "id"),
        Index("ix_sync_log_account_created", "account_id", "created_at", "id"),
        Index("ix_sync_log_connection_id", "connection_id", "id"),
        Index("ix_sync_log_account_open", "account_id", "id", postgresql_where=text(OPEN_WHERE),
              sqlite_where=text(OPEN_WHERE)),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int | None] = mapped_column(Integer)
    record_label: Mapped[str | None] = mapped_column(String(500))
    remote_id: Mapped[str | None] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[str | None] = mapped_column(Text)
    codes: Mapped[str | None] = mapped_column(String(200))
    field: Mapped[str | None] = mapped_column(String(200))
    http_status: Mapped[int | None] = mapped_column(Integer)
    intuit_tid: Mapped[str | None] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(50))
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    actor: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("sync_log.id", ondelete="SET NULL"))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("sync_log.id", ondelete="SET NULL"))
    #: The batch request this attempt was sent in (`PushBatch`); None for a single write.
    batch_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                                 ForeignKey("push_batches.id", ondelete="SET NULL"), index=True)

    @property
    def is_open(self) -> bool:
        """An error or warning not yet resolved nor handed to a newer attempt: an open error, the same test as
        ``sync.log.open_clause`` (the one definition every surface counts by)."""
        return (self.status in (Status.ERROR, Status.WARNING) and self.resolved_at is None
                and self.superseded_by_id is None)


class Incident(Base):
    """A connection-wide failure (auth_expired, rate_limited, subscription): one per connection at a time,
    however many records wait on it."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_open", "connection_id", "resolved_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    details: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolution: Mapped[str | None] = mapped_column(String(32))


class Notification(Base):
    """The outbox: one row per thing to tell the team (an error, a resolution, an incident opening or closing),
    written in the same transaction as the change it reports. The Slack side delivers it and sets
    `delivered_at`; `topic` groups the notifications that update one message (a record, or a connection)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "delivered_at", "id"),
                      Index("ix_notifications_entry_id", "entry_id"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("sync_log.id", ondelete="SET NULL"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    topic: Mapped[str] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RecordClaim(Base):
    """A short-lived claim on one record of one connection: whoever inserts the row first syncs it; the
    others are told it is already in progress. Claims older than the engine's lease are taken over."""

    __tablename__ = "record_claims"

    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"),
                                               primary_key=True)
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PushBatch(Base):
    """One QuickBooks batch request, stored (members, payloads, requestid) in the transaction that writes its
    attempts' pending entries, before it is sent. After a crash the same batch is sent again as it was, so
    QuickBooks answers it from its requestid memory instead of doing the work twice; `settled_at` is set in
    the transaction that records its outcomes.

    `created_at`: when its current `request_id` was first used (a batch reconciled after QuickBooks may have
    forgotten its requestid goes out under a new one, from then on). `owner`: the claim owner sending it, or
    ``""`` when parked (its answer was lost, or nobody could send it: the next push sends it again). `items`:
    one per member, ``{"key": bId, "entry_id", "entity", "record_id", "payload" (as sent), "digest",
    "remote": [Id, SyncToken] | None, "deps": [[entity, record_id, remote_id, label], ...]}``.
    """

    __tablename__ = "push_batches"
    __table_args__ = (Index("ix_push_batches_open", "connection_id", "settled_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(36))
    owner: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class QboBudget(Base):
    """A QuickBooks company's (realm's) request budget, shared by every process (`sync.providers.limiter`): its
    row is locked by each check of the realm's limits, and holds the pause a 429 asks for."""

    __tablename__ = "qbo_budgets"

    realm_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    paused_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class QboSpend(Base):
    """One request sent (or being sent) to a realm: when (the database's clock), its cost in budget units,
    whether a batch, and when it was done (None while it is out)."""

    __tablename__ = "qbo_spends"
    __table_args__ = (Index("ix_qbo_spends_realm_at", "realm_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    cost: Mapped[int] = mapped_column(Integer)
    is_batch: Mapped[bool] = mapped_column(Boolean, default=False)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


def table_of(model: type[Base]) -> Table:
    """The Core ``Table`` a mapped class is mapped to, for bulk statements (``insert(table_of(Link))``).
    DeclarativeBase types ``__table__`` as a FromClause; every class here is mapped to a Table. Raises TypeError
    for one that is not."""
    mapped = model.__table__
    if not isinstance(mapped, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return mapped
