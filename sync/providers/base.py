"""The Provider protocol: what the sync engine needs of an accounting system, whatever it is.

One module per system implements it (`quickbooks.py` first). A provider speaks in plain dicts (the system's own
wire objects) and raises ProviderError carrying a `sync.diagnosis.Diagnosis` for every failure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sync.diagnosis import Diagnosis


class ProviderError(Exception):
    """A provider call failed; ``diagnosis`` says what kind of failure and carries the provider's details."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(f"{diagnosis.label}: {diagnosis.details[:200]}")
        self.diagnosis = diagnosis


@dataclass(frozen=True)
class Written:
    """A successful write: the provider's id, its new version token and the object as the provider stored it."""

    remote_id: str
    sync_token: str | None
    body: Mapping[str, Any]
    intuit_tid: str | None = None


@dataclass(frozen=True)
class BatchOp:
    """One operation of a batch: ``key`` is ours (bId), ``remote`` is (id, sync_token) for an update."""

    key: str
    entity: str
    payload: Mapping[str, Any]
    remote: tuple[str, str | None] | None = None


@dataclass(frozen=True)
class Change:
    """One object the provider reports as changed (pull), or as deleted (``deleted``)."""

    entity: str
    remote_id: str
    deleted: bool
    body: Mapping[str, Any] = field(default_factory=dict)
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class Choice:
    """One object of a provider's list that a record's field may refer to (an account, a term, a tax code): the
    ``id`` the field holds and the ``name`` people know it by."""

    id: str
    name: str


class Provider(Protocol):
    """An accounting system connection, bound to one connection's tokens and realm."""

    name: str

    def lift_pause(self) -> None: ...

    def probe(self) -> str | None: ...

    def payload(self, entity: str, record: Any, refs: Mapping[str, Any]) -> dict[str, Any]: ...

    def check(self, entity: str, record: Any, written: Written) -> Diagnosis | None: ...

    def remote_fields(self, entity: str, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def create(self, entity: str, payload: Mapping[str, Any], request_id: str) -> Written: ...

    def update(self, entity: str, remote_id: str, sync_token: str | None, payload: Mapping[str, Any],
               request_id: str) -> Written: ...

    def read(self, entity: str, remote_id: str) -> Written: ...

    def find_by_name(self, entity: str, name: str) -> Written | None: ...

    def find_copies(self, entity: str, payload: Mapping[str, Any]) -> list[Written]: ...
    def choices(self, entity: str, field: str) -> list[Choice] | None: ...

    def batch(self, ops: Sequence[BatchOp], request_id: str) -> dict[str, Written | Diagnosis]: ...

    def changes(self, entities: Sequence[str], since: dt.datetime) -> tuple[list[Change], dt.datetime]: ...
