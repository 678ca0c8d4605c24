"""The error kinds: each kind's cause, fix, buttons, scope and severity (:data:`KINDS`), the meanings of
shared codes (:data:`MEANINGS`), and the shapes a diagnosis is given in (:class:`FaultError`, :class:`Diagnosis`).
The rules that pick a kind are in the package docstring (`sync.diagnosis`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from enum import StrEnum
from typing import Any, Literal

DETAILS_LIMIT = 2000
ENDPOINTS = frozenset({"api", "token", "revoke"})


class Kind(StrEnum):
    """What went wrong, in the product's words (docs/platform-facts.md, "The help article")."""

    AUTH_EXPIRED = "auth_expired"
    DUPLICATE = "duplicate"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    VALIDATION = "validation"
    TOTAL_MISMATCH = "total_mismatch"
    UNKNOWN = "unknown"
    CLOSED_PERIOD = "closed_period"
    SUBSCRIPTION = "subscription"
    LOCKED = "locked"
    CONFLICT = "conflict"


class FixAction(StrEnum):
    """The buttons a diagnosis may offer."""

    RETRY = "retry"
    RECONNECT = "reconnect"
    UNLINK = "unlink"
    RECREATE = "recreate"
    LINK_EXISTING = "link_existing"
    FILL_FIELD = "fill_field"
    MARK_RESOLVED = "mark_resolved"
    SYNC_NOW = "sync_now"
    KEEP_PROVIDER_TOTALS = "keep_provider_totals"  # a total mismatch: take QuickBooks' figures into JobsiteOn
    SEND_OWN_TAX = "send_own_tax"  # a total mismatch: send JobsiteOn's tax explicitly and push again
    OPEN_IN_PROVIDER = "open_in_provider"  # a link to the record in QuickBooks' web app


@dataclass(frozen=True)
class KindInfo:
    """Cause, fix and buttons of one kind.

    ``scope`` "connection" means every call of the connection fails (one incident per connection);
    ``status`` is the sync log status of an entry of this kind.
    """

    kind: Kind
    title: str
    cause: str
    fix: str
    actions: tuple[FixAction, ...]
    scope: Literal["record", "connection"] = "record"
    status: Literal["error", "warning"] = "error"
    #: The key of the :data:`MEANINGS` entry these words come from; None for the kind's own words.
    meaning: str | None = None


_A = FixAction

#: Cause and fix in the help article's words; the four extra kinds (beyond the article's six) in ours.
KINDS: Mapping[Kind, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(
            Kind.AUTH_EXPIRED,
            "Authentication expired",
            "The integration's OAuth token has expired.",
            "Reconnect and re-authorize the connection; the sync resumes automatically.",
            (_A.RECONNECT,),
            scope="connection",
        ),
        KindInfo(
            Kind.DUPLICATE,
            "Duplicate record",
            "A record with the same name or identifier already exists.",
            "Rename or merge the duplicate in the target system, then click Retry.",
            (_A.RETRY, _A.LINK_EXISTING),
        ),
        KindInfo(
            Kind.NOT_FOUND,
            "Record not found",
            "The linked record was deleted in the target system.",
            "Re-create the record or unlink the JobsiteOn record and let the next sync create a fresh copy.",
            (_A.RECREATE, _A.UNLINK),
        ),
        KindInfo(
            Kind.RATE_LIMITED,
            "Rate limit exceeded",
            "Too many API calls in a short period.",
            "This resolves automatically: syncbot waits 15 minutes (or as long as QuickBooks asks) and syncs again.",
            (),
            scope="connection",
            status="warning",
        ),
        KindInfo(
            Kind.VALIDATION,
            "Field validation error",
            "A required field in the target system is empty or invalid.",
            "Open the record in JobsiteOn, fill in the missing field, save, and the next sync attempt will succeed.",
            (_A.FILL_FIELD, _A.RETRY),
        ),
        KindInfo(
            Kind.TOTAL_MISMATCH,
            "Total mismatch",
            "Calculated totals differ between systems due to tax or rounding.",
            "Compare line items and tax rates in both systems. Adjust the JobsiteOn record to match "
            "the target system's calculation.",
            (_A.KEEP_PROVIDER_TOTALS, _A.SEND_OWN_TAX, _A.RETRY, _A.MARK_RESOLVED, _A.OPEN_IN_PROVIDER),
            status="warning",
        ),
        KindInfo(
            Kind.UNKNOWN,
            "Unexpected error",
            "The target system returned an error that syncbot does not recognise.",
            "Click Retry. If the error persists after retrying, contact JobsiteOn support with the "
            "error timestamp and details.",
            (_A.RETRY,),
        ),
        KindInfo(
            Kind.CLOSED_PERIOD,
            "Closed period",
            "The transaction is dated on or before the closing date of the books: QuickBooks keeps that "
            "period closed.",
            "Change the date in JobsiteOn to one after the closing date, or ask your bookkeeper to reopen the "
            "period (or enter the closing-date password) in QuickBooks, then click Retry.",
            (_A.RETRY,),
        ),
        KindInfo(
            Kind.SUBSCRIPTION,
            "QuickBooks subscription inactive",
            "The QuickBooks company's subscription lapsed or the company is suspended, so every call "
            "of the connection fails.",
            "The company owner renews or reactivates the subscription in QuickBooks; then click Sync Now.",
            (_A.SYNC_NOW,),
            scope="connection",
        ),
        KindInfo(
            Kind.LOCKED,
            "Transaction deposited",
            "The payment or transaction was already deposited, so QuickBooks refuses to change it.",
            "Undo the deposit in QuickBooks, or leave the record as it is and mark the entry resolved.",
            (_A.RETRY, _A.MARK_RESOLVED),
        ),
        KindInfo(
            Kind.CONFLICT,
            "Changed in QuickBooks meanwhile",
            "Someone changed the record in QuickBooks since the last sync (stale SyncToken).",
            "Nothing to do: syncbot re-reads the record and retries once; if it fails again, click Retry.",
            (_A.RETRY,),
        ),
    )
}

#: Most specific first; see the package docstring (`sync.diagnosis`).
PRECEDENCE: tuple[Kind, ...] = (
    Kind.AUTH_EXPIRED,
    Kind.SUBSCRIPTION,
    Kind.RATE_LIMITED,
    Kind.NOT_FOUND,
    Kind.DUPLICATE,
    Kind.CONFLICT,
    Kind.CLOSED_PERIOD,
    Kind.LOCKED,
    Kind.TOTAL_MISMATCH,
    Kind.VALIDATION,
    Kind.UNKNOWN,
)
_RANK = {k: i for i, k in enumerate(PRECEDENCE)}


def severity(kind: object, status: object) -> str:
    """The severity an entry of ``kind`` stored with ``status`` is shown with, on every surface: for an error or
    a warning of a known kind, the kind's own (``KINDS[kind].status``: one severity per kind, whatever an older
    row stored); otherwise the stored status (synced, info, pending, or an entry without a kind)."""
    stored = str(status or "")
    if stored in ("error", "warning") and kind:
        try:
            return KINDS[Kind(str(kind))].status
        except ValueError:
            return stored
    return stored


@dataclass(frozen=True)
class Meaning:
    """One of the meanings a code carries besides its kind's usual one, told apart by the words of the
    error (its message, detail and element): its own title, cause, fix and buttons, within ``kind`` (which
    keeps deciding precedence, scope, severity and every count)."""

    key: str
    kind: Kind
    title: str
    cause: str
    fix: str
    actions: tuple[FixAction, ...]


#: The second (third...) meanings of a code, keyed by name; see "Reading the words" in `sync.diagnosis`.
MEANINGS: Mapping[str, Meaning] = {
    m.key: m
    for m in (
        Meaning(
            "inactive_reference",
            Kind.NOT_FOUND,
            "Uses an inactive record",
            "A record this one uses (a customer, item, account or tax code) has been made inactive in QuickBooks.",
            "Reactivate that record in QuickBooks, or choose another one in JobsiteOn, then click Retry. This "
            "record itself is fine: don't re-create or unlink it.",
            (_A.RETRY,),
        ),
        Meaning(
            "missing_reference",
            Kind.NOT_FOUND,
            "Uses a record QuickBooks doesn't have",
            "A record this one uses (the field below) is not in QuickBooks: it was deleted there, or never synced.",
            "Fix that record first (its own error offers Re-create), or choose another one in JobsiteOn, then "
            "click Retry. This record itself is fine: don't re-create or unlink it.",
            (_A.RETRY,),
        ),
        Meaning(
            "duplicate_number",
            Kind.DUPLICATE,
            "Duplicate number",
            "Another transaction in QuickBooks already uses this number.",
            "Give this record a number of its own in JobsiteOn (or fill it in here), save, then click Retry.",
            (_A.FILL_FIELD, _A.RETRY),
        ),
        Meaning(
            "inactive_choice",
            Kind.VALIDATION,
            "Chosen account is inactive",
            "The account (or term, or tax code) this record names has been made inactive in QuickBooks.",
            "Fill in another one from QuickBooks' list, or reactivate it in QuickBooks, then click Retry.",
            (_A.FILL_FIELD, _A.RETRY),
        ),
        Meaning(
            "too_long",
            Kind.VALIDATION,
            "Field too long",
            "A field is longer (or shorter) than QuickBooks allows; the details say the limit.",
            "Shorten the field in JobsiteOn (or fill it in here), save, and the next sync attempt will succeed.",
            (_A.FILL_FIELD, _A.RETRY),
        ),
        Meaning(
            "own_request",
            Kind.VALIDATION,
            "Request refused",
            "QuickBooks refused syncbot's own request, not the record's data: there is no field to fill.",
            "Click Retry. If the error persists after retrying, contact JobsiteOn support with the error "
            "timestamp and details.",
            (_A.RETRY,),
        ),
    )
}


def kind_info(kind: Kind, meaning: str | None = None) -> KindInfo:
    """The cause, fix and buttons of ``kind``, in the words of ``meaning`` when it is one of that kind's
    :data:`MEANINGS` (an unknown or foreign meaning, e.g. one stored by another version, gives the kind's own)."""
    info = KINDS[kind]
    m = MEANINGS.get(meaning) if meaning else None
    if m is None or m.kind is not kind:
        return info
    return dataclasses.replace(info, title=m.title, cause=m.cause, fix=m.fix, actions=m.actions, meaning=m.key)


@dataclass(frozen=True)
class FaultError:
    """One ``Error`` of a QuickBooks Fault, as sent (code normalised: ``"003200"`` → ``"3200"``)."""

    code: str | None
    message: str | None
    detail: str | None
    element: str | None


@dataclass(frozen=True)
class Diagnosis:
    """What a provider answer means. ``kind is None`` means success ("ok").

    ``items`` holds one Diagnosis per ``bId`` for a batch answer (empty otherwise). ``hint`` is an
    extra sentence when the kind's standard fix is not the whole story (wrong environment, the app's
    credentials refused, syncbot's own request at fault, a timeout that may have been applied).
    """

    kind: Kind | None
    http_status: int | None = None
    codes: tuple[str, ...] = ()
    errors: tuple[FaultError, ...] = ()
    fault_type: str | None = None
    details: str = ""
    field: str | None = None
    intuit_tid: str | None = None
    retry_after: float | None = None
    items: Mapping[str, Diagnosis] = dc_field(default_factory=dict, hash=False)
    hint: str | None = None
    #: Structured figures for the message (total_mismatch: ours/theirs totals and tax, in dollars as strings,
    #: and the lines that differ).
    data: Mapping[str, Any] = dc_field(default_factory=dict, hash=False)
    #: The provider's http(s) links (HTML anchors) as ``(text, url)``, each shown in ``details`` as "text (url)":
    #: what a renderer needs to make them links again (the Slack side shows ``<url|text>``).
    links: tuple[tuple[str, str], ...] = ()
    #: Which of the kind's :data:`MEANINGS` the words of the error name (None: the kind's own).
    meaning: str | None = None

    @property
    def ok(self) -> bool:
        """True for success."""
        return self.kind is None

    @property
    def info(self) -> KindInfo | None:
        """The kind's :class:`KindInfo`, None for success."""
        return None if self.kind is None else kind_info(self.kind, self.meaning)

    @property
    def cause(self) -> str | None:
        """The cause (help article words, or the meaning's), None for success."""
        return None if self.kind is None else kind_info(self.kind, self.meaning).cause

    @property
    def fix(self) -> str | None:
        """The fix (help article words, or the meaning's), None for success."""
        return None if self.kind is None else kind_info(self.kind, self.meaning).fix

    @property
    def label(self) -> str:
        """``"ok"`` or the kind's value."""
        return "ok" if self.kind is None else self.kind.value

    @property
    def actions(self) -> tuple[FixAction, ...]:
        """The buttons for this diagnosis (none for success)."""
        return () if self.kind is None else kind_info(self.kind, self.meaning).actions

    @property
    def scope(self) -> Literal["record", "connection"] | None:
        """``"connection"`` for connection-wide kinds, ``"record"`` otherwise, None for success."""
        return None if self.kind is None else KINDS[self.kind].scope

    @property
    def entry_status(self) -> Literal["error", "warning", "synced"]:
        """The sync log status: "synced" for success, else the kind's status (one severity per kind, whatever
        the reply: a total_mismatch is a warning whether found after the write or refused over tax)."""
        if self.kind is None:
            return "synced"
        return KINDS[self.kind].status
