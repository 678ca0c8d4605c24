"""Alembic environment: migrates `sync.models` (and, later, the Slack side's tables) on DATABASE_URL."""

from __future__ import annotations

import os

from sqlalchemy import text

import bot.models  # noqa: F401  (the Slack side's tables share the metadata)
from alembic import context
from sync.db import make_engine
from sync.models import Base, unmodelled

config = context.config
target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate compares every table and index but the free-text search's (``sync.models.unmodelled``)."""
    return not unmodelled(name)


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "sqlite:///syncbot.db")


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()


#: The PostgreSQL advisory lock migrations run under (any fixed 64-bit number that nothing else uses).
MIGRATION_LOCK = 0x5359_4E43_424F_5401  # "SYNCBOT" + 1


def run_migrations_online() -> None:
    """Migrate in one transaction. On PostgreSQL the transaction first takes an advisory lock
    (``pg_advisory_xact_lock``, released at its commit), so replicas starting together migrate one after the
    other: the first does the work, the others then find the schema at head and do nothing."""
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata,
                              render_as_batch=True, compare_type=True, transaction_per_migration=False,
                              include_name=include_name)
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
