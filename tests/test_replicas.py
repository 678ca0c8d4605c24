"""Issue 16: several syncbot processes on one PostgreSQL database behave like one syncbot. These tests start
real processes (or give each replica its own clock) against one database; they need PostgreSQL
(SYNCBOT_TEST_DATABASE_URL) and are skipped on SQLite, the one-process embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from tests.conftest import PG_ENV

pytestmark = pytest.mark.skipif(not os.environ.get(PG_ENV), reason="several replicas need PostgreSQL")


@pytest.fixture()
def fresh_pg() -> Iterator[str]:
    """An empty PostgreSQL database of its own on the test server (dropped afterwards): its SQLAlchemy URL."""
    url = os.environ[PG_ENV]
    base, _, _ = url.rpartition("/")
    name = f"syncbot_replicas_{uuid.uuid4().hex[:8]}"
    dsn = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_replicas_starting_at_once_on_an_empty_database_migrate_it_once(fresh_pg: str) -> None:
    """Three `syncbot db upgrade` at once (as three replicas starting together each migrate first): every one
    ends well and the schema is at the newest revision, made once."""
    env = {**os.environ, "DATABASE_URL": fresh_pg, "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    procs = [subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "db", "upgrade"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]
    outs = [(p.returncode, out) for p in procs for out in [p.communicate(timeout=120)[0]]]
    assert [code for code, _ in outs] == [0, 0, 0], outs
    assert all("database is up to date" in out for _, out in outs), outs
    from alembic.script import ScriptDirectory

    from sync.db import alembic_config
    head = ScriptDirectory.from_config(alembic_config(fresh_pg)).get_current_head()
    engine = create_engine(fresh_pg)
    try:
        with engine.connect() as conn:
            assert list(conn.execute(text("select version_num from alembic_version")).scalars()) == [head]
    finally:
        engine.dispose()
