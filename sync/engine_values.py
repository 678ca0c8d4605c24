"""The sync engine's small values: its configuration (``EngineConfig``), what a run did (``RunSummary``),
the progress callback, and what its parts hand one another (a record to push, a failed attempt, a batch's
successes, a dependency's link)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync.diagnosis import Diagnosis, Kind
from sync.models import Entity, Status, SyncLogEntry
from sync.providers.base import Written


@dataclass
class RunSummary:
    """What a run did: counts of outcomes, and whether it stopped on a connection-wide failure."""

    synced: int = 0
    errors: int = 0
    warnings: int = 0
    skipped: int = 0
    #: of ``skipped``: records whose last attempt is in a batch not settled yet (its answer was lost, or its
    #: process died): they are sent again as that batch, never a second way
    waiting: int = 0
    pulled: int = 0
    unchanged: int = 0
    stopped: Kind | None = None
    #: Why the run stopped when it was not the provider: the database refused a write (its error's first line).
    #: What was done stays done; the rest is as it was, or in a stored batch that the next run sends again.
    failure: str | None = None
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, entry: SyncLogEntry) -> None:
        if entry.status == Status.SYNCED:
            self.synced += 1
        elif entry.status == Status.WARNING:
            self.warnings += 1
        elif entry.status == Status.ERROR:
            self.errors += 1
        if entry.kind:
            self.by_kind[entry.kind] = self.by_kind.get(entry.kind, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"synced": self.synced, "errors": self.errors, "warnings": self.warnings,
                "skipped": self.skipped, "waiting": self.waiting, "pulled": self.pulled, "unchanged": self.unchanged,
                "stopped": self.stopped.value if self.stopped else None, "failure": self.failure,
                "by_kind": dict(self.by_kind)}


Progress = Callable[[int, int], None]


@dataclass
class EngineConfig:
    """Tunables. ``rate_limit_pause_seconds``: pause after a 429 without Retry-After (help article: 15 min)."""

    rate_limit_pause_seconds: int = 900
    claim_lease_seconds: int = 300
    batch_workers: int = 4
    #: How long QuickBooks is trusted to remember a requestid (Intuit does not document it): a batch cut short
    #: longer ago than this is reconciled by reading QuickBooks before it is sent again (``_reconcile``).
    requestid_memory_seconds: int = 3600


@dataclass
class Target:
    entity: Entity
    record_id: int
    force: bool = False


@dataclass(frozen=True)
class Failed:
    """A failed attempt: its diagnosis and the provider objects found gone ((entity, record id or None for the
    record itself)). For a duplicate, ``namesake`` is the provider's object that holds the record's name, looked
    up right after the refusal (:meth:`SyncEngine._with_namesake`); ``looked`` says whether that look-up answered
    (a card offers "Link to existing" from what it stored, never asking QuickBooks as it is drawn)."""

    diagnosis: Diagnosis
    gone: tuple[tuple[str, int | None], ...] = ()
    namesake: Written | None = None
    looked: bool = False


@dataclass
class Successes:
    """What a batch's plain successes write (:meth:`SyncEngine._plain_success`), gathered to be written with one
    statement per kind (:meth:`SyncEngine._write_successes`) instead of through the ORM's unit of work."""

    now: dt.datetime
    actor: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    new_links: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class DepLink:
    entity: Entity
    record_id: int
    remote_id: str
    label: str
