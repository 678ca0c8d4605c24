"""Record claims (``record_claims``): a record is claimed before it is pushed, so a second push of it while
the first runs is refused (``InProgress``); a claim is known for abandoned when its lease ran out or its
process (``claim_owner``: host, boot, pid) no longer runs."""

from __future__ import annotations

import datetime as dt
import functools
import os
import socket
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from sync.engine_errors import InProgress
from sync.engine_values import EngineConfig
from sync.models import RecordClaim, table_of
from sync.prebuilt import by_entity, records_clause, records_params, shaped


@functools.cache
def _boot_id() -> str:
    """This machine's boot (Linux: /proc/sys/kernel/random/boot_id), so a process id is read on the machine and
    the boot it was given in; empty where unknown."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip().replace("-", "")[:12]
    except OSError:
        return ""


def claim_owner() -> str:
    """The owner name of this engine's record claims: ``host/boot/pid/random`` (at most 64 characters), so that
    on the same machine and boot a claim of a process that no longer runs is known for abandoned at once."""
    return f"{socket.gethostname()[:24]}/{_boot_id()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` (see :func:`claim_owner`) names a process of this machine and boot that no longer runs.
    False when it may still run: another machine or boot, an older owner format, or a live (or reused) pid."""
    parts = owner.split("/")
    if len(parts) != 4 or not parts[2].isdigit() or not parts[1]:
        return False
    if parts[0] != socket.gethostname()[:24] or parts[1] != _boot_id() or int(parts[2]) == os.getpid():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False
    return False


def claims_of(keys: Collection[tuple[str, int]]) -> Any:
    """The SQL condition: a claim on one of the records ``keys`` ((entity, record id))."""
    return or_(*(and_(RecordClaim.entity == entity, RecordClaim.record_id.in_(sorted(ids)))
                 for entity, ids in by_entity(keys).items()))


_CLAIMS = table_of(RecordClaim)
#: A batch's claims, inserted where free (built once for each dialect)
_CLAIM_PG = pg_insert(_CLAIMS).on_conflict_do_nothing().returning(_CLAIMS.c.entity, _CLAIMS.c.record_id)
_CLAIM_SQLITE = sqlite_insert(_CLAIMS).on_conflict_do_nothing().returning(_CLAIMS.c.entity, _CLAIMS.c.record_id)


class RecordClaims:
    """The engine's record claims, held under its owner name (``_owner``)."""

    sessions: sessionmaker[Session]
    config: EngineConfig
    clock: Callable[[], dt.datetime]
    _owner: str

    # ------------------------------------------------------------------------------------------ claims

    def _try_claim(self, connection_id: int, entity: str, record_id: int) -> bool:
        return bool(self._try_claim_many(connection_id, [(entity, record_id)]))

    def _try_claim_many(self, connection_id: int, keys: Collection[tuple[str, int]]) -> set[tuple[str, int]]:
        """Claim the records ``keys`` ((entity, record id)) of the connection; returns those claimed. One
        transaction inserts every claim that is free (``INSERT ... ON CONFLICT DO NOTHING``, in key order, so
        two processes claiming overlapping batches never wait on each other in a cycle); a claim held by
        another owner is taken over when its lease has ended or its process is known gone (deleted under that
        owner's name, then inserted once more), else the record is not claimed."""
        now = self.clock()
        stale = now - dt.timedelta(seconds=self.config.claim_lease_seconds)
        claimed: set[tuple[str, int]] = set()
        todo = sorted({(str(entity), int(record_id)) for entity, record_id in keys})
        for round_ in range(2):
            if not todo:
                break
            with self.sessions() as session, session.begin():
                # one statement whatever the batch's size (executemany: SQLAlchemy renders the rows as one
                # multi-row VALUES, in key order); its SQL is compiled once, not once per list of rows
                claim = _CLAIM_PG if session.get_bind().dialect.name == "postgresql" else _CLAIM_SQLITE
                got = {(str(row.entity), int(row.record_id)) for row in session.execute(claim,
                    [{"connection_id": connection_id, "entity": entity, "record_id": record_id,
                      "owner": self._owner, "claimed_at": now} for entity, record_id in todo])}
            claimed |= got
            refused = [key for key in todo if key not in got]
            if not refused:
                break
            with self.sessions() as session, session.begin():
                held = {(c.entity, c.record_id): c for c in session.scalars(select(RecordClaim).where(
                    RecordClaim.connection_id == connection_id, claims_of(refused)))}
                # a claim outlives its process only until the lease ends, or at once when the process is known gone
                over = [c for c in held.values() if c.claimed_at < stale or owner_is_dead(c.owner)]
                taken: set[tuple[str, int]] = set()
                if over:
                    taken = {(e, r) for e, r in session.execute(delete(RecordClaim).where(
                        RecordClaim.connection_id == connection_id, or_(*(and_(
                            RecordClaim.entity == c.entity, RecordClaim.record_id == c.record_id,
                            RecordClaim.owner == c.owner) for c in over))).returning(
                        RecordClaim.entity, RecordClaim.record_id))}
            # released meanwhile, or taken over: inserted once more (a second refusal is final)
            todo = [] if round_ else sorted({key for key in refused if key not in held} | taken)
        return claimed

    def _release(self, connection_id: int, entity: str, record_id: int) -> None:
        self._release_many(connection_id, [(entity, record_id)])

    def _release_many(self, connection_id: int, keys: Collection[tuple[str, int]]) -> None:
        """Release this engine's claims on the records ``keys``, in one statement."""
        if not keys:
            return
        groups = by_entity(keys)
        # one DELETE for each count of record kinds, built once (a batch releases its claims with one)
        stmt = shaped(("release", len(groups)), lambda: delete(_CLAIMS).where(
            _CLAIMS.c.connection_id == bindparam("b_conn"),
            records_clause(_CLAIMS.c.entity, _CLAIMS.c.record_id, len(groups), "b_"),
            _CLAIMS.c.owner == bindparam("b_owner")))
        with self.sessions() as session, session.begin():
            session.execute(stmt, {"b_conn": connection_id, "b_owner": self._owner, **records_params(groups, "b_")})

    @contextmanager
    def _claimed(self, connection_id: int, entity: str, record_id: int) -> Iterator[None]:
        if not self._try_claim(connection_id, entity, record_id):
            raise InProgress(f"{entity} {record_id} is already being synced")
        try:
            yield
        finally:
            self._release(connection_id, entity, record_id)
