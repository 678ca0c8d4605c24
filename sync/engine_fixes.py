"""The fixes of one entry (``EntryFixes``): retry, mark resolved, unlink, re-create, link to an existing
object, fill in a field, and a total mismatch's keep QuickBooks' totals and send our own tax."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import delete, select

from sync.diagnosis import Kind
from sync.engine_base import printable, record_topic
from sync.engine_errors import ConnectionUnavailable, InProgress, NotFound, NothingToRetry
from sync.engine_push import RecordPushes
from sync.engine_values import Target
from sync.log import OPEN_STATUSES
from sync.models import Direction, Entity, Link, Status, SyncLogEntry
from sync.providers.base import Choice, Provider, ProviderError, Written
from sync.providers.quickbooks import REFERENCE_FIELDS, cents_to_amount, invoice_figures, payload_hash

log = logging.getLogger("syncbot.engine")


#: Fields a validation error may name that a user can fill from Slack: (entity, provider field) ->
#: (record attribute, max length).
FILLABLE_FIELDS: dict[tuple[str, str], tuple[str, int]] = {
    ("item", "IncomeAccountRef"): ("income_account", 64),
    ("item", "Name"): ("name", 100),
    ("item", "Sku"): ("sku", 100),
    ("contact", "DisplayName"): ("display_name", 500),
    ("contact", "PrimaryEmailAddr"): ("email", 200),
    ("contact", "PrimaryPhone"): ("phone", 50),
    ("contact", "CompanyName"): ("company", 200),
    ("invoice", "DocNumber"): ("number", 21),
}


@dataclass(frozen=True)
class FieldChoices:
    """The objects a reference field may be set to (``choices``, by name), or why they could not be loaded
    (``problem``), and the id the record holds now (``current``, perhaps not among them)."""

    choices: list[Choice]
    problem: str | None = None
    current: str | None = None


class EntryFixes(RecordPushes):
    """The fixes an error card offers, one entry at a time."""

    # ------------------------------------------------------------------------------------------ entries

    def get_entry(self, entry_id: int, account_id: int | None = None) -> SyncLogEntry:
        """The entry ``entry_id`` (of ``account_id`` when given). Raises NotFound."""
        with self.sessions() as session:
            entry = session.get(SyncLogEntry, entry_id)
            if entry is None or (account_id is not None and entry.account_id != account_id):
                raise NotFound(f"no sync log entry {entry_id}")
            session.expunge(entry)
            return entry

    def retry_entry(self, entry_id: int, actor: str, account_id: int | None = None) -> SyncLogEntry:
        """Retry the record of an open entry; the actor is recorded on the new attempt.

        Raises NotFound (also for another account's entry), NothingToRetry (resolved, or retried already: its
        ``entry`` is the newest attempt), InProgress (a retry is running), ConnectionUnavailable.
        """
        entry = self.get_entry(entry_id, account_id)
        connection_id, record_id = entry.connection_id, entry.record_id
        if record_id is None or connection_id is None:
            raise NothingToRetry("This entry is not about a record.", entry)
        if entry.direction == Direction.PULL:
            return self._retry_pull(entry, actor)
        with self._claimed(connection_id, entry.entity, record_id):
            entry = self.get_entry(entry_id, account_id)  # re-read under the claim
            newest = self._newest(entry)
            if newest.resolved_at is not None or newest.status in (Status.SYNCED, Status.INFO):
                raise NothingToRetry("This record is already resolved.", newest)
            if newest.status == Status.PENDING:
                raise InProgress("This record is being retried right now.")
            entry = newest  # an older attempt's button retries the record's current error (the same record)
            result = self._push_claimed(connection_id, Target(Entity(entry.entity), record_id, True),
                                        actor, entry.id)
            assert result is not None
            return result

    def _retry_pull(self, entry: SyncLogEntry, actor: str) -> SyncLogEntry:
        if entry.kind == Kind.NOT_FOUND:
            assert entry.record_id is not None and entry.connection_id is not None
            return self.recreate(entry.id, actor)
        raise NothingToRetry("Pulled changes are applied on the next Sync Now.", entry)

    def _newest(self, entry: SyncLogEntry) -> SyncLogEntry:
        """The newest attempt of ``entry``'s record: the end of its ``superseded_by_id`` chain, read in one query
        (a recursive CTE, on SQLite and PostgreSQL alike) however many attempts came after it."""
        with self.sessions() as session:
            chain = (select(SyncLogEntry.id.label("id"), SyncLogEntry.superseded_by_id.label("next_id"))
                     .where(SyncLogEntry.id == entry.id).cte("chain", recursive=True))
            chain = chain.union_all(select(SyncLogEntry.id, SyncLogEntry.superseded_by_id)
                                    .join(chain, SyncLogEntry.id == chain.c.next_id))
            newest_id = session.scalar(select(chain.c.id).where(chain.c.next_id.is_(None)))
            current = session.get(SyncLogEntry, newest_id if newest_id is not None else entry.id)
            assert current is not None
            session.expunge(current)
            return current

    def mark_resolved(self, entry_id: int, actor: str, account_id: int | None = None) -> SyncLogEntry:
        """Close an open entry by hand (e.g. a locked, deposited payment left as it is). Raises NotFound,
        NothingToRetry (resolved already), and InProgress while another fix of the record runs (its claim: two
        fixes clicked at once never both act)."""
        entry = self.get_entry(entry_id, account_id)
        with self._claimed_record(entry):
            return self._mark_resolved(entry_id, actor, account_id)

    @contextmanager
    def _claimed_record(self, entry: SyncLogEntry) -> Iterator[None]:
        """The claim of ``entry``'s record while a fix acts on it (nothing to claim for a connection's entry)."""
        if entry.connection_id is None or entry.record_id is None:
            yield
            return
        with self._claimed(entry.connection_id, entry.entity, entry.record_id):
            yield

    def _mark_resolved(self, entry_id: int, actor: str, account_id: int | None) -> SyncLogEntry:
        with self.sessions() as session, session.begin():
            entry = session.get(SyncLogEntry, entry_id)
            if entry is None or (account_id is not None and entry.account_id != account_id):
                raise NotFound(f"no sync log entry {entry_id}")
            if not entry.is_open:
                raise NothingToRetry("This entry is already resolved.", entry)
            entry.resolved_at = self.clock()
            entry.resolved_by = actor
            conn = self._connection(session, entry.connection_id or 0)
            self._notify(session, conn, "resolved", record_topic(conn.id, entry.entity, entry.record_id), entry)
            session.flush()
            session.expunge(entry)
            return entry

    def unlink(self, entry_id: int, actor: str, account_id: int | None = None) -> SyncLogEntry:
        """Forget the provider copy of the entry's record: the next sync creates a fresh copy. Returns the entry
        (now resolved: the record waits for the next sync). Raises NotFound, and NothingToRetry when the entry is
        no longer open (fixed meanwhile, e.g. by a Re-create that linked a fresh copy: forgetting that copy would
        make the next sync write the record a second time), and InProgress while another fix of the record runs."""
        entry = self.get_entry(entry_id, account_id)
        with self._claimed_record(entry):
            return self._unlink(entry_id, actor, account_id)

    def _unlink(self, entry_id: int, actor: str, account_id: int | None) -> SyncLogEntry:
        with self.sessions() as session, session.begin():
            entry = session.get(SyncLogEntry, entry_id)
            if entry is None or (account_id is not None and entry.account_id != account_id) or entry.record_id is None:
                raise NotFound(f"no sync log entry {entry_id}")
            if entry.resolved_at is not None or entry.status not in OPEN_STATUSES:
                session.expunge(entry)
                raise NothingToRetry("This error was fixed meanwhile: nothing was unlinked.", entry)
            conn = self._connection(session, entry.connection_id or 0)
            session.execute(delete(Link).where(Link.connection_id == conn.id, Link.entity == entry.entity,
                                               Link.record_id == entry.record_id))
            now = self.clock()
            info = SyncLogEntry(created_at=now, account_id=conn.account_id, connection_id=conn.id,
                                entity=entry.entity, record_id=entry.record_id, record_label=entry.record_label,
                                direction=Direction.PUSH.value, status=Status.INFO.value, actor=actor,
                                details="Unlinked: the next sync creates a fresh copy in QuickBooks.")
            session.add(info)
            for old in self._open_entries(session, conn.id, entry.entity, entry.record_id) + \
                    self._open_entries(session, conn.id, entry.entity, entry.record_id, Direction.PULL):
                old.resolved_at = now
                old.resolved_by = actor
            session.flush()
            self._notify(session, conn, "unlinked", record_topic(conn.id, entry.entity, entry.record_id), info)
            session.expunge(info)
            return info

    def recreate(self, entry_id: int, actor: str, account_id: int | None = None) -> SyncLogEntry:
        """Re-create a record whose provider copy was deleted (the help article's fix for a record not found):
        forget the deleted copy and push a fresh one now, as a new attempt of the entry (pull or push). When the
        copy is there again (restored in QuickBooks meanwhile), the record is synced to it instead, since a
        fresh copy would duplicate its name or number. When it syncs, the record's open errors are resolved and
        its message turns to Synced (the outbox).

        Raises NotFound, NothingToRetry (resolved already), InProgress, and ConnectionUnavailable when the
        connection cannot take requests (expired, paused, suspended): then nothing is changed and the entry
        stays open, as with Retry."""
        entry = self.get_entry(entry_id, account_id)
        if entry.record_id is None or entry.connection_id is None:
            raise NotFound(f"no record for entry {entry_id}")
        with self._claimed(entry.connection_id, entry.entity, entry.record_id):
            newest = self._newest(entry)
            if newest.resolved_at is not None or newest.status in (Status.SYNCED, Status.INFO):
                raise NothingToRetry("This record is already resolved.", newest)
            if newest.status == Status.PENDING:
                raise InProgress("This record is being synced right now.")
            provider = self._available_provider(entry.connection_id)  # blocked: nothing changed
            with self.sessions() as session:
                link = self._link(session, entry.connection_id, entry.entity, entry.record_id)
                gone_remote = link.remote_id if link is not None and link.remote_deleted else None
            back = self._restored(provider, entry.entity, gone_remote) if gone_remote else None
            with self.sessions() as session, session.begin():
                link = self._link(session, entry.connection_id, entry.entity, entry.record_id)
                if link is not None and link.remote_deleted:
                    if back is not None:  # restored in QuickBooks meanwhile: sync to it, a new copy would clash
                        link.remote_deleted, link.sync_token = False, back.sync_token
                        log.info("event=recreate_found_restored entry_id=%s remote_id=%s", entry.id, back.remote_id)
                    else:
                        session.delete(link)
            result = self._push_claimed(entry.connection_id, Target(Entity(entry.entity), entry.record_id, True),
                                        actor, newest.id)
            assert result is not None
            return result

    @staticmethod
    def _restored(provider: Provider, entity: str, remote_id: str) -> Written | None:
        """The provider's object ``remote_id`` when it is there again and active (restored after a deletion;
        QuickBooks keeps a deleted name list entry as ``Active: false``), else None: still deleted, or it could
        not be read now (the push that follows meets the same trouble and logs it)."""
        try:
            found = provider.read(entity, remote_id)
        except ProviderError:
            return None
        return None if (found.body or {}).get("Active") is False else found

    def link_existing(self, entry_id: int, actor: str, account_id: int | None = None) -> SyncLogEntry:
        """For a duplicate: link the record to the provider's object of the same name, then push to it."""
        entry = self.get_entry(entry_id, account_id)
        if entry.record_id is None or entry.connection_id is None or not entry.is_open:
            raise NothingToRetry("This entry is not an open error.", entry)
        provider = self._available_provider(entry.connection_id)
        try:
            found = provider.find_by_name(entry.entity, entry.record_label or "")
        except ProviderError as exc:
            raise NothingToRetry(f"QuickBooks could not be searched: {exc.diagnosis.details}", entry) from exc
        if found is None:
            raise NothingToRetry("No QuickBooks record of that name was found.", entry)
        with self.sessions() as session, session.begin():
            if self._linked_elsewhere(session, entry.connection_id, entry.entity, found.remote_id, entry.record_id):
                raise NothingToRetry("That QuickBooks record is already linked to another JobsiteOn record.", entry)
            link = self._link(session, entry.connection_id, entry.entity, entry.record_id)
            if link is None:
                session.add(Link(connection_id=entry.connection_id, entity=entry.entity, record_id=entry.record_id,
                                 remote_id=found.remote_id, sync_token=found.sync_token))
            else:
                link.remote_id, link.sync_token, link.remote_deleted = found.remote_id, found.sync_token, False
        return self.retry_entry(entry_id, actor, account_id)

    def field_choices(self, entry_id: int, account_id: int | None = None) -> FieldChoices | None:
        """What the field an open validation error names may be set to, when it refers to one of the provider's
        lists (an account, a term, a tax code): the list's active objects by name, loaded from the provider now
        (``choices``), or why they could not be (``problem``). None for a field filled with free text (a name,
        an email) or an entry that names no fillable field. Raises NotFound."""
        entry = self.get_entry(entry_id, account_id)
        named = (entry.field or "").split(".")[0]
        if entry.record_id is None or (entry.entity, named) not in FILLABLE_FIELDS or entry.connection_id is None:
            return None
        try:
            provider = self._available_provider(entry.connection_id)
            found = provider.choices(entry.entity, named)
        except ConnectionUnavailable as exc:
            return FieldChoices([], str(exc)) if (entry.entity, named) in REFERENCE_FIELDS else None
        except ProviderError as exc:
            log.info("event=field_choices_failed entry_id=%s kind=%s", entry_id, exc.diagnosis.label)
            return FieldChoices([], f"QuickBooks did not give its list ({exc.diagnosis.label}): try again "
                                    "in a moment.")
        if found is None:
            return None
        with self.sessions() as session:
            record = self._load_record(session, entry.account_id, Entity(entry.entity), entry.record_id)
            current = getattr(record, FILLABLE_FIELDS[(entry.entity, named)][0], None)
        return FieldChoices(found, None, str(current) if current not in (None, "") else None)

    def fill_field(self, entry_id: int, value: str, actor: str, account_id: int | None = None) -> str:
        """Save ``value`` into the record field a validation error named (``entry.field``), as a user would in
        JobsiteOn. Returns the record attribute set. Raises NotFound, and ValueError when the field cannot be
        filled this way or the value is unfit (the message says why)."""
        entry = self.get_entry(entry_id, account_id)
        if entry.record_id is None or not entry.field:
            raise ValueError("This error does not name a field to fill.")
        target = FILLABLE_FIELDS.get((entry.entity, entry.field.split(".")[0]))
        if target is None:
            raise ValueError(f"{entry.field} cannot be filled from here: open the record in JobsiteOn.")
        attribute, max_length = target
        value = (value or "").strip()
        if not value:
            raise ValueError("Enter a value.")
        if not value.isprintable():
            raise ValueError("Use letters, digits and punctuation only (no line breaks or control characters).")
        if len(value) > max_length:
            raise ValueError(f"At most {max_length} characters.")
        with self.sessions() as session, session.begin():
            record = self._load_record(session, entry.account_id, Entity(entry.entity), entry.record_id)
            setattr(record, attribute, value)
        log.info("event=field_filled entry_id=%s field=%s actor=%s", entry_id, entry.field, actor)
        return attribute

    # ------------------------------------------------------------------------------------------ total mismatch

    def _open_mismatch(self, entry_id: int, account_id: int | None) -> SyncLogEntry:
        """The newest attempt of an open total mismatch's invoice. Raises NotFound, NothingToRetry (not an open
        total mismatch: resolved meanwhile, or another kind), InProgress (a retry runs). Call under the claim."""
        entry = self.get_entry(entry_id, account_id)
        newest = self._newest(entry)
        if newest.status == Status.PENDING:
            raise InProgress("This record is being synced right now.")
        if newest.resolved_at is not None or newest.status in (Status.SYNCED, Status.INFO):
            raise NothingToRetry("This record is already resolved.", newest)
        if newest.kind != Kind.TOTAL_MISMATCH or newest.entity != Entity.INVOICE:
            raise NothingToRetry("This entry is not a total mismatch any more: its message shows what is wrong "
                                 "now.", newest)
        return newest

    def _provider_invoice(self, provider: Provider, entry: SyncLogEntry) -> tuple[Link, Written]:
        """The invoice's link and its copy as QuickBooks holds it now. Raises NothingToRetry when it has no copy
        or QuickBooks could not be read (nothing is changed)."""
        assert entry.connection_id is not None and entry.record_id is not None
        with self.sessions() as session:
            link = self._link(session, entry.connection_id, entry.entity, entry.record_id)
            if link is not None:
                session.expunge(link)
        if link is None or link.remote_deleted:
            raise NothingToRetry("This invoice has no copy in QuickBooks any more: Sync Now creates one.", entry)
        try:
            return link, provider.read(entry.entity, link.remote_id)
        except ProviderError as exc:
            said = (exc.diagnosis.details or "").strip().splitlines()[:1]
            raise NothingToRetry("QuickBooks could not be read, so nothing was changed"
                                 + (f": {printable(said[0], 300)}" if said else "."), entry) from exc

    def keep_provider_totals(self, entry_id: int, actor: str, account_id: int | None = None) -> SyncLogEntry:
        """For a total mismatch, the help article's fix done for the bookkeeper ("adjust the JobsiteOn record to
        match the target system's calculation"): QuickBooks' tax, its tax rate and its total, read from its copy
        now, are written to the JobsiteOn invoice, and the mismatch is resolved by a synced entry that says so
        (its message turns Synced). The copy in QuickBooks is not written: it already holds these figures.

        Refused, nothing changed (NothingToRetry), when the line amounts differ as well (QuickBooks' subtotal is
        not JobsiteOn's: taking its total would not add up; the lines are fixed in JobsiteOn), or QuickBooks
        cannot be read. Raises NotFound, InProgress, ConnectionUnavailable (connection blocked)."""
        entry = self.get_entry(entry_id, account_id)
        assert entry.connection_id is not None and entry.record_id is not None
        with self._claimed(entry.connection_id, entry.entity, entry.record_id):
            newest = self._open_mismatch(entry_id, account_id)
            provider = self._available_provider(entry.connection_id)
            link, copy = self._provider_invoice(provider, newest)
            subtotal, tax, total, rate, _code = invoice_figures(copy.body)
            with self.sessions() as session, session.begin():
                conn = self._connection(session, entry.connection_id)
                invoice = self._load_record(session, conn.account_id, Entity.INVOICE, entry.record_id)
                if subtotal != invoice.total_cents - invoice.tax_cents:
                    ours = cents_to_amount(invoice.total_cents - invoice.tax_cents)
                    raise NothingToRetry(
                        f"The line amounts differ too (subtotal: JobsiteOn {ours}, QuickBooks "
                        f"{cents_to_amount(subtotal)}), so QuickBooks' total would not add up in JobsiteOn. Correct "
                        "the lines in JobsiteOn (the message lists them), then Retry.", newest)
                before = (cents_to_amount(invoice.tax_cents), invoice.tax_rate)
                invoice.tax_cents, invoice.total_cents = tax, total
                if rate is not None:
                    invoice.tax_rate = rate
                row = session.get(Link, link.id)
                assert row is not None
                row.tax_code = None  # QuickBooks' calculation stands from now on
                row.sync_token = copy.sync_token
                # what QuickBooks holds is what JobsiteOn now says: the next sync has nothing to send
                row.synced_hash = payload_hash(provider.payload(
                    Entity.INVOICE, invoice, self._refs(session, conn.id, Entity.INVOICE, invoice)))
                now = self.clock()
                rate_text = f" ({rate.normalize():f} %)" if rate is not None else ""
                done = SyncLogEntry(
                    created_at=now, account_id=conn.account_id, connection_id=conn.id, entity=newest.entity,
                    record_id=newest.record_id, record_label=newest.record_label, direction=Direction.PUSH.value,
                    status=Status.SYNCED.value, actor=actor, remote_id=link.remote_id, attempt=newest.attempt,
                    resolved_at=now, resolved_by=actor, retry_of_id=newest.id,
                    details=(f"Kept QuickBooks' totals: the JobsiteOn invoice now has tax {cents_to_amount(tax)}"
                             f"{rate_text} and total {cents_to_amount(total)}, as QuickBooks computed them "
                             f"(it had tax {before[0]} at {before[1].normalize():f} %)."),
                    data={"fix": "keep_provider_totals"})
                session.add(done)
                session.flush()
                for old in self._open_entries(session, conn.id, newest.entity, entry.record_id):
                    old.resolved_at, old.resolved_by = now, actor
                    old.superseded_by_id = done.id
                self._notify(session, conn, "resolved", record_topic(conn.id, newest.entity, newest.record_id),
                             done)
                session.flush()
                session.expunge(done)
        log.info("event=kept_provider_totals entry_id=%s actor=%s", entry_id, actor)
        return done

    def send_own_tax(self, entry_id: int, actor: str, account_id: int | None = None) -> SyncLogEntry:
        """For a total mismatch: push the invoice again with JobsiteOn's tax stated explicitly, with the tax code
        QuickBooks put on its copy (``TxnTaxDetail.TxnTaxCodeRef`` beside ``TotalTax``: a company with automated
        sales tax then keeps the amount instead of computing its own; see
        :func:`sync.providers.quickbooks.invoice_payload` for Intuit's rule). The choice is kept on the invoice's
        link, so later pushes state the tax too. Returns the new attempt: synced when the totals now match (the
        message turns Synced), else the mismatch that remains (line amounts that differ).

        Refused, nothing changed (NothingToRetry), when QuickBooks' copy names no tax code or cannot be read.
        Raises NotFound, InProgress, ConnectionUnavailable (connection blocked)."""
        entry = self.get_entry(entry_id, account_id)
        assert entry.connection_id is not None and entry.record_id is not None
        with self._claimed(entry.connection_id, entry.entity, entry.record_id):
            newest = self._open_mismatch(entry_id, account_id)
            provider = self._available_provider(entry.connection_id)
            link, copy = self._provider_invoice(provider, newest)
            code = invoice_figures(copy.body)[4]
            if code is None:
                raise NothingToRetry("QuickBooks' copy of this invoice names no tax code to state the tax with: "
                                     "adjust the tax in QuickBooks or in JobsiteOn, then Retry.", newest)
            with self.sessions() as session, session.begin():
                row = session.get(Link, link.id)
                assert row is not None
                row.tax_code = code
            log.info("event=send_own_tax entry_id=%s tax_code=%s actor=%s", entry_id, code, actor)
            result = self._push_claimed(entry.connection_id, Target(Entity.INVOICE, newest.record_id or 0, True),
                                        actor, newest.id)
            assert result is not None
            return result
