"""Database engine, sessions and migrations.

`DATABASE_URL` may be any SQLAlchemy URL: SQLite (the offline default) or PostgreSQL (`postgresql+psycopg://`,
docs/platform-facts.md, "Libraries"). The schema is owned by Alembic (`alembic/` at the top of the repository).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "alembic"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an Engine for ``url``.

    SQLite gets foreign keys on, WAL with synchronous=NORMAL and a busy timeout (several threads write: the
    engine's workers, the notifier, the scheduler); `postgresql://` is rewritten to the psycopg 3 driver.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
                # WAL's default (FULL) syncs the log on every commit, with the write lock held; NORMAL syncs it at
                # checkpoints. A commit still outlives the process (kill -9: the jobs stored before an ack), not
                # an OS crash or power loss, which may roll the last commits back (the file stays consistent).
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def write_lock(session: Session) -> None:
    """Take SQLite's write lock now, at the start of a transaction that reads and then writes (``BEGIN
    IMMEDIATE``, waiting up to busy_timeout for it). Without it such a transaction fails at its first write with
    "database is locked", at once and without waiting, when another connection committed after its reads began
    (SQLite's WAL mode cannot move a reader's snapshot forward into a writer: https://www.sqlite.org/wal.html,
    "Sometimes Queries Return SQLITE_BUSY In WAL Mode", and https://www.sqlite.org/rescode.html#busy_snapshot).
    Nothing on PostgreSQL (row locks), nor inside a transaction SQLite has already begun."""
    if session.get_bind().dialect.name != "sqlite":
        return
    driver = session.connection().connection.driver_connection
    if driver is not None and not driver.in_transaction:
        session.execute(text("BEGIN IMMEDIATE"))


def error_line(exc: BaseException) -> str:
    """The first line of a database error (the driver's own message when there is one), at most 200 characters:
    for a log line or a person, without the SQL statement or its parameters."""
    lines = str(getattr(exc, "orig", None) or exc).splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def db_now(session: Session) -> dt.datetime:
    """The database server's current time (UTC, aware): the one clock every replica shares, for leases judged
    across processes whose own clocks may differ. PostgreSQL: ``clock_timestamp()`` (the moment of the call, not
    the transaction's start as ``now()`` is: a transaction that waited for a lock must not judge by the time before
    it waited); SQLite: the machine's clock, to the millisecond (one machine, so one clock anyway)."""
    if session.get_bind().dialect.name == "sqlite":
        text_now: str = session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
        return dt.datetime.fromisoformat(str(text_now)).replace(tzinfo=dt.UTC)
    value: dt.datetime = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Any:
    """An Alembic Config pointing at our migrations and ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def newest_revision() -> str:
    """The newest migration's revision id, read from the names of ``alembic/versions``: each migration's file is
    named after its revision (``NNNN_what.py``, revision ``'NNNN'``), and the chain runs in that order
    (tests/test_schema.py holds every file to it and checks this against Alembic's own head)."""
    return max(path.name[:4] for path in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def is_current(engine: Engine) -> bool:
    """Whether the database behind ``engine`` is at :func:`newest_revision` (one query of ``alembic_version``),
    so a process that starts on an up-to-date database skips loading every migration (about 25 ms a start:
    what `syncbot sync-log` paid each time). False when it is not, or has no ``alembic_version`` yet; a database
    that cannot be reached raises as any first query would (sqlalchemy.exc.DBAPIError)."""
    from sqlalchemy.exc import DBAPIError

    with engine.connect() as conn:
        try:
            versions: list[str] = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        except DBAPIError:
            if conn.invalidated:
                raise
            return False
    return versions == [newest_revision()]


def open_migrated(url: str) -> Engine:
    """An Engine for ``url`` (:func:`make_engine`) whose database is at the newest revision: migrated with Alembic
    first unless :func:`is_current`. Raises what the first query or Alembic raises (sqlalchemy.exc.DBAPIError,
    ArgumentError for a malformed URL, alembic's CommandError); the engine is disposed of then."""
    engine = make_engine(url)
    try:
        if not is_current(engine):
            upgrade(url)
    except BaseException:
        engine.dispose()
        raise
    return engine


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (default: the newest)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision``."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)
