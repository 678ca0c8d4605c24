"""The provider's changes pulled through CDC (``Pulls``): deletions, contacts and payments written back to
JobsiteOn, and a run's connection-wide failure recorded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync.diagnosis import Diagnosis, Kind, make_diagnosis
from sync.engine_base import (
    CDC_LOOKBACK,
    CONNECTION_KINDS,
    PULL_ENTITIES,
    EngineBase,
    label_of,
    record_topic,
    unreachable,
)
from sync.engine_values import RunSummary
from sync.log import OPEN_STATUSES
from sync.models import RECORD_MODELS, Connection, Contact, Direction, Entity, Link, Payment, Status, SyncLogEntry
from sync.providers.base import Change, Provider, ProviderError
from sync.providers.quickbooks import payload_hash


class Pulls(EngineBase):
    """Pulls of the provider's changes."""

    # ------------------------------------------------------------------------------------------ pull

    def pull(self, connection_id: int, actor: str = "system") -> RunSummary:
        """Apply the provider's changes since the stored cursor (CDC): customers update or create contacts,
        payments update or create payments, a deleted linked object becomes a not_found entry."""
        summary = RunSummary()
        with self.sessions() as session:
            conn = self._connection(session, connection_id)
            self._ensure_available(conn)
            provider = self.provider_for(conn)
            now = self.clock()
            since = conn.cdc_cursor or conn.connected_at or now - CDC_LOOKBACK
            since = max(since, now - CDC_LOOKBACK)
        try:
            changes, server_time = provider.changes(list(PULL_ENTITIES), since)
        except ProviderError as exc:
            self._record_run_failure(connection_id, exc.diagnosis, summary)
            return summary
        for change in changes:
            with self.sessions() as session, session.begin():
                conn = self._connection(session, connection_id)
                entry = self._apply_change(session, conn, provider, change, actor)
                if entry is not None:
                    summary.count(entry)
                    summary.pulled += 1
        with self.sessions() as session, session.begin():
            conn = self._connection(session, connection_id)
            conn.cdc_cursor = min(server_time, self.clock())
            self._resolve_connection_steps(session, conn.id, actor)
        return summary

    def _resolve_connection_steps(self, session: Session, connection_id: int, actor: str) -> None:
        """The connection answered again: its own failed steps (a CDC pull that failed) are resolved."""
        now = self.clock()
        for entry in list(session.scalars(select(SyncLogEntry).where(
                SyncLogEntry.connection_id == connection_id, SyncLogEntry.record_id.is_(None),
                SyncLogEntry.status.in_(OPEN_STATUSES), SyncLogEntry.resolved_at.is_(None)))):
            entry.resolved_at, entry.resolved_by = now, actor

    def connection_failed(self, connection_id: int, diag: Diagnosis) -> None:
        """Record a failure met outside a sync run (the scheduler's token refresh refused): a connection entry
        in the log and, for connection-wide kinds, the connection's state and incident, at once."""
        self._record_run_failure(connection_id, diag, RunSummary())

    def _record_run_failure(self, connection_id: int, diag: Diagnosis, summary: RunSummary) -> None:
        """A failure of a connection-level call (CDC): connection-wide kinds open the incident; others are an
        entry of the connection."""
        with self.sessions() as session, session.begin():
            conn = self._connection(session, connection_id)
            entry = SyncLogEntry(created_at=self.clock(), account_id=conn.account_id, connection_id=conn.id,
                                 entity="connection", direction=Direction.PULL.value, status=Status.ERROR.value,
                                 actor="system")
            session.add(entry)
            session.flush()
            self._fill_failure(entry, diag)
            if diag.kind in CONNECTION_KINDS:
                self._apply_connection_failure(session, conn, diag)
                summary.stopped = diag.kind
            elif unreachable(entry):
                summary.stopped = Kind.UNKNOWN
            summary.count(entry)

    def _apply_change(self, session: Session, conn: Connection, provider: Provider, change: Change,
                      actor: str) -> SyncLogEntry | None:
        link = session.scalars(select(Link).where(Link.connection_id == conn.id, Link.entity == change.entity,
                                                  Link.remote_id == change.remote_id)).one_or_none()
        now = self.clock()

        def entry_for(record_id: int, label: str, status: Status, details: str) -> SyncLogEntry:
            e = SyncLogEntry(created_at=now, account_id=conn.account_id, connection_id=conn.id,
                             entity=change.entity, record_id=record_id, record_label=label,
                             remote_id=change.remote_id, direction=Direction.PULL.value, status=status.value,
                             details=details, actor=actor)
            session.add(e)
            session.flush()
            return e

        inactive = str(change.body.get("Active", "true")).lower() == "false"
        if change.deleted or (inactive and change.entity == Entity.CONTACT):
            if link is None or link.remote_deleted:
                return None
            link.remote_deleted = True
            record = session.get(RECORD_MODELS[Entity(change.entity)], link.record_id)
            label = label_of(record) if record is not None else str(link.record_id)
            what = "made inactive" if not change.deleted else "deleted"
            diag = make_diagnosis(Kind.NOT_FOUND, f"QuickBooks reports {change.entity} {label} (Id "
                                  f"{change.remote_id}) as {what}.")
            e = entry_for(link.record_id, label, Status.ERROR, diag.details)
            self._fill_failure(e, diag)
            self._notify(session, conn, "error", record_topic(conn.id, change.entity, link.record_id), e)
            return e
        sync_token = str(change.body.get("SyncToken")) if change.body.get("SyncToken") is not None else None
        if link is not None and link.sync_token == sync_token:
            return None  # our own write coming back
        if change.entity == Entity.CONTACT:
            return self._pull_contact(session, conn, provider, change, link, sync_token, entry_for)
        if change.entity == Entity.PAYMENT:
            return self._pull_payment(session, conn, provider, change, link, sync_token, entry_for)
        if link is not None:  # invoices: JobsiteOn is the source of truth; keep the SyncToken current
            link.sync_token = sync_token
        return None

    def _pull_contact(self, session: Session, conn: Connection, provider: Provider, change: Change,
                      link: Link | None, sync_token: str | None, entry_for: Any) -> SyncLogEntry | None:
        fields = provider.remote_fields(Entity.CONTACT, change.body)
        if not fields.get("display_name"):
            return None
        contact = session.get(Contact, link.record_id) if link is not None else None
        if contact is not None and link is not None and link.synced_hash and payload_hash(
                provider.payload(Entity.CONTACT, contact, {})) != link.synced_hash:
            # Changed on both sides since the last sync: JobsiteOn is the source of truth. Keep its edit (the
            # push that follows meets the stale SyncToken, re-reads and writes it) and say what QuickBooks had.
            theirs = ", ".join(f"{k}={v!r}" for k, v in fields.items() if v and getattr(contact, k) != v)
            return entry_for(contact.id, contact.display_name, Status.INFO,
                             "Changed in both JobsiteOn and QuickBooks since the last sync: JobsiteOn's version "
                             f"is kept and pushed. QuickBooks had: {theirs or 'the same values'}."[:2000])
        created = contact is None
        if contact is None and self._unlinked_namesake(session, conn, fields["display_name"]):
            # A JobsiteOn contact of that name waits for its own push: never make a second one here. Its push
            # meets the duplicate and the user links or renames (the help article's fix).
            return None
        if contact is None:
            contact = Contact(account_id=conn.account_id, display_name=fields["display_name"])
            session.add(contact)
        for key, value in fields.items():
            setattr(contact, key, value)
        session.flush()
        digest = payload_hash(provider.payload(Entity.CONTACT, contact, {}))
        if link is None:
            link = Link(connection_id=conn.id, entity=Entity.CONTACT.value, record_id=contact.id,
                        remote_id=change.remote_id)
            session.add(link)
        link.sync_token, link.synced_hash, link.synced_at = sync_token, digest, self.clock()
        verb = "Created from" if created else "Updated from"
        return entry_for(contact.id, contact.display_name, Status.SYNCED, f"{verb} QuickBooks customer "
                         f"{change.remote_id}.")

    @staticmethod
    def _unlinked_namesake(session: Session, conn: Connection, name: str) -> bool:
        linked = select(Link.record_id).where(Link.connection_id == conn.id, Link.entity == Entity.CONTACT.value)
        return session.scalars(select(Contact.id).where(
            Contact.account_id == conn.account_id, func.lower(Contact.display_name) == name.lower(),
            Contact.id.not_in(linked)).limit(1)).first() is not None

    def _pull_payment(self, session: Session, conn: Connection, provider: Provider, change: Change,
                      link: Link | None, sync_token: str | None, entry_for: Any) -> SyncLogEntry | None:
        fields = provider.remote_fields(Entity.PAYMENT, change.body)

        def local(entity: Entity, remote_id: str | None) -> int | None:
            if not remote_id:
                return None
            lk = session.scalars(select(Link).where(Link.connection_id == conn.id, Link.entity == entity,
                                                    Link.remote_id == remote_id)).one_or_none()
            return lk.record_id if lk is not None else None

        contact_id = local(Entity.CONTACT, fields.get("customer_remote_id"))
        invoice_id = local(Entity.INVOICE, fields.get("invoice_remote_id"))
        payment = session.get(Payment, link.record_id) if link is not None else None
        if payment is None:
            if contact_id is None:
                e = entry_for(0, f"QuickBooks payment {change.remote_id}", Status.INFO,
                              "Skipped: its customer is not linked to a JobsiteOn contact.")
                e.record_id = None
                return e
            payment = Payment(account_id=conn.account_id, contact_id=contact_id, amount_cents=0,
                              paid_on=fields.get("paid_on") or self.clock().date())
            session.add(payment)
        payment.amount_cents = fields["amount_cents"]
        if fields.get("paid_on"):
            payment.paid_on = fields["paid_on"]
        payment.invoice_id = invoice_id if invoice_id is not None else payment.invoice_id
        if contact_id is not None:
            payment.contact_id = contact_id
        session.flush()
        refs = self._refs(session, conn.id, Entity.PAYMENT, payment) if payment.contact_id else {}
        digest = payload_hash(provider.payload(Entity.PAYMENT, payment, refs)) if refs else None
        if link is None:
            link = Link(connection_id=conn.id, entity=Entity.PAYMENT.value, record_id=payment.id,
                        remote_id=change.remote_id)
            session.add(link)
        link.sync_token, link.synced_hash, link.synced_at = sync_token, digest, self.clock()
        return entry_for(payment.id, label_of(payment), Status.SYNCED,
                         f"Payment of {payment.amount_cents / 100:.2f} pulled from QuickBooks ({change.remote_id}).")
