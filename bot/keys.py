"""Key rotation: re-encrypt every stored secret under the newest of ``TOKEN_ENCRYPTION_KEYS``
(`syncbot keys rotate`).

What is sealed at rest: each QuickBooks connection's access and refresh tokens (``connections``), the Slack
tokens of every installation and bot row (``slack_installations``, ``slack_bots``: slack_sdk's tables, token
columns of `bot.installations.SealedText`), and the response_url and trigger_id of a click stored as a job that
has not finished (``jobs``). Rotating a key is three steps (README, "Rotating the encryption key"): put the new key
first in ``TOKEN_ENCRYPTION_KEYS`` on every replica, run ``syncbot keys rotate``, then drop the old key.

Each value is written back with a conditional UPDATE (``WHERE column = <the ciphertext read>``): a token another
replica refreshed in the meantime is left as that replica wrote it (under the newest key already), never
overwritten with the old one. A value already under the newest key is left as it is; a value no configured key
opens is counted and left unchanged (it cannot be rotated; the command exits non-zero so the operator keeps the
old key until it is dealt with). A job a worker holds (``FOR UPDATE``) is skipped: its values were read already.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Engine, Table, select, update
from sqlalchemy.orm import Session

from bot.models import Job, slack_bots, slack_installations
from sync.crypto import SecretBox, SecretBoxError
from sync.models import Connection

log = logging.getLogger(__name__)

#: The sealed values of an unfinished job (see `bot.operations.stored.store_click`).
JOB_SEALED_KEYS = ("response_url", "trigger_id")


@dataclass
class Rotation:
    """What a rotation did, per place (``connections``, ``slack_installations``, ``slack_bots``, ``jobs``):
    ``rotated`` values re-encrypted under the newest key, ``current`` already under it, ``unreadable`` opened by
    no configured key (left unchanged), ``changed`` rewritten by another process while rotating (left as
    written)."""

    rotated: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)

    def add(self, place: str, outcome: str) -> None:
        counts: dict[str, int] = getattr(self, outcome)
        counts[place] = counts.get(place, 0) + 1

    @staticmethod
    def total(counts: dict[str, int]) -> int:
        return sum(counts.values())


def _outcome(box: SecretBox, ciphertext: str) -> tuple[str, str | None]:
    """("current", None), ("unreadable", None) or ("rotated", the new ciphertext)."""
    if box.is_current(ciphertext):
        return "current", None
    try:
        return "rotated", box.rotate(ciphertext)
    except SecretBoxError:
        return "unreadable", None


#: The sealed columns of slack_sdk's tables (`bot.models.installations_table`, `bots_table`: ``token_type``).
SLACK_SEALED_COLUMNS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token", "incoming_webhook_url")


def _token_columns(table: Table) -> Iterator[Column[Any]]:
    return (table.c[name] for name in SLACK_SEALED_COLUMNS if name in table.c)


def _rotate_table(session: Session, box: SecretBox, place: str, table: Table, key: Column[Any],
                  columns: list[Column[Any]], report: Rotation) -> None:
    for row in session.execute(select(key, *columns)).all():
        for column, value in zip(columns, row[1:], strict=True):
            if value is None:
                continue
            outcome, new = _outcome(box, str(value))
            if outcome == "rotated":
                done = session.execute(update(table).where(key == row[0], column == value).values(
                    {column.name: new}))
                outcome = "rotated" if done.rowcount == 1 else "changed"  # type: ignore[attr-defined]
            report.add(place, outcome)


def _rotate_jobs(session: Session, box: SecretBox, report: Rotation) -> None:
    stmt = select(Job).where(Job.finished_at.is_(None)).order_by(Job.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    for job in session.scalars(stmt):
        click = (job.payload or {}).get("click")
        if not isinstance(click, dict):
            continue
        sealed = dict(click)
        for name in JOB_SEALED_KEYS:
            value = click.get(name)
            if not isinstance(value, str) or not value:
                continue
            outcome, new = _outcome(box, value)
            if new is not None:
                sealed[name] = new
            report.add("jobs", outcome)
        if sealed != click:
            job.payload = {**job.payload, "click": sealed}


def rotate_secrets(engine: Engine, box: SecretBox) -> Rotation:
    """Re-encrypt every stored secret under ``box``'s newest key (see the module docstring), one transaction per
    place. Returns the counts. Raises sqlalchemy errors when the database refuses."""
    report = Rotation()
    conn_table: Table = Connection.__table__  # type: ignore[assignment]
    with Session(engine) as session, session.begin():
        _rotate_table(session, box, "connections", conn_table, conn_table.c.id,
                      [conn_table.c.access_token_enc, conn_table.c.refresh_token_enc], report)
    for place, table in (("slack_installations", slack_installations), ("slack_bots", slack_bots)):
        with Session(engine) as session, session.begin():
            _rotate_table(session, box, place, table, table.c.id, list(_token_columns(table)), report)
    with Session(engine) as session, session.begin():
        _rotate_jobs(session, box, report)
    log.info("event=keys_rotated rotated=%s current=%s unreadable=%s changed=%s",
             Rotation.total(report.rotated), Rotation.total(report.current), Rotation.total(report.unreadable),
             Rotation.total(report.changed))
    return report
