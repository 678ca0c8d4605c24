"""Shared fixtures: the database (SQLite, or PostgreSQL from SYNCBOT_TEST_DATABASE_URL), the QuickBooks
stand-in served over real HTTP on loopback, and syncbot's services wired to both."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from sync import db
from sync.models import Base

PG_ENV = "SYNCBOT_TEST_DATABASE_URL"


def _reset_schema(url: str) -> None:
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database for the test session."""
    url = os.environ.get(PG_ENV) or f"sqlite:///{tmp_path_factory.mktemp('db') / 'syncbot-test.db'}"
    _reset_schema(url)
    db.upgrade(url)
    return url


@pytest.fixture()
def clean_db(database_url: str) -> Iterator[str]:
    """The session's database with every table emptied before the test."""
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()
    yield database_url


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return Path(__file__).parent / "fixtures"


def pytest_report_header(config: Any) -> str:
    return f"database: {'PostgreSQL (' + PG_ENV + ')' if os.environ.get(PG_ENV) else 'SQLite'}"
