"""The sync engine's refusals (``EngineError`` and its kinds, each a sentence fit for a user) and
``DependencyMissing``, a record that references one not in the provider yet."""

from __future__ import annotations

import datetime as dt

from sync.diagnosis import Kind
from sync.models import Entity, SyncLogEntry


class EngineError(Exception):
    """Base of the engine's refusals; ``str()`` is a sentence fit for a user."""


class NotFound(EngineError, LookupError):
    """No such entry, record or connection (in this account)."""


class InProgress(EngineError):
    """Someone is already syncing this record."""


class NothingToRetry(EngineError):
    """The entry is resolved already, or was retried already (``entry`` is the newest attempt)."""

    def __init__(self, message: str, entry: SyncLogEntry) -> None:
        super().__init__(message)
        self.entry = entry


class ConnectionUnavailable(EngineError):
    """The connection cannot take requests now (``kind``: auth_expired, rate_limited or subscription)."""

    def __init__(self, message: str, kind: Kind, until: dt.datetime | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.until = until


class DependencyMissing(Exception):
    """A record references another that is not in the provider yet."""

    def __init__(self, entity: Entity, record_id: int, label: str, fieldname: str, deleted: bool = False) -> None:
        super().__init__(f"{entity.value} {label}")
        self.deleted = deleted
        self.entity = entity
        self.record_id = record_id
        self.label = label
        self.fieldname = fieldname
