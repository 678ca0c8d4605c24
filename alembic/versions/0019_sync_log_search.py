"""sync log search: an index per /sync-log filter (status, kind, entity, time, connection, the open errors) and
free-text search over an entry's record name and details (SQLite: an FTS5 trigram table kept by triggers;
PostgreSQL: pg_trgm GIN indexes on lower(record_label) and lower(details))

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 17:00:00

The free-text parts live outside the models (``sync.models.unmodelled``): SQLAlchemy cannot declare an FTS5
table or a trigram operator class portably. Both are optional at run time: ``sync.log`` uses the FTS table when it
exists and PostgreSQL's planner uses the trigram indexes when they exist; without them the search is the same,
only slower. So a SQLite without FTS5's trigram tokenizer (before 3.34) gets no FTS table, and a PostgreSQL
where pg_trgm cannot be installed (not shipped, or a role that may not CREATE EXTENSION) gets no trigram
indexes: the migration says so in a warning instead of failing the deployment.

SQLite: a later migration that rebuilds sync_log in batch mode ("move and copy") drops these triggers with the
old table; it must create them again (``create_sqlite_search``) and rebuild the FTS table.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

OPEN_WHERE = "status IN ('error', 'warning') AND resolved_at IS NULL AND superseded_by_id IS NULL"

SQLITE_SEARCH = (
    # external content: the text stays in sync_log only; the FTS table holds the trigram index
    "CREATE VIRTUAL TABLE sync_log_fts USING fts5(record_label, details, content='sync_log', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER sync_log_fts_insert AFTER INSERT ON sync_log BEGIN "
    "INSERT INTO sync_log_fts(rowid, record_label, details) VALUES (new.id, new.record_label, new.details); END",
    "CREATE TRIGGER sync_log_fts_delete AFTER DELETE ON sync_log BEGIN "
    "INSERT INTO sync_log_fts(sync_log_fts, rowid, record_label, details) "
    "VALUES ('delete', old.id, old.record_label, old.details); END",
    "CREATE TRIGGER sync_log_fts_update AFTER UPDATE OF id, record_label, details ON sync_log BEGIN "
    "INSERT INTO sync_log_fts(sync_log_fts, rowid, record_label, details) "
    "VALUES ('delete', old.id, old.record_label, old.details); "
    "INSERT INTO sync_log_fts(rowid, record_label, details) VALUES (new.id, new.record_label, new.details); END",
    "INSERT INTO sync_log_fts(sync_log_fts) VALUES ('rebuild')",
)


def sqlite_has_trigram() -> bool:
    """Does this SQLite have FTS5's trigram tokenizer (3.34 and later, FTS5 compiled in)?"""
    if sqlite3.sqlite_version_info < (3, 34, 0):
        return False
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def create_sqlite_search() -> None:
    """The FTS5 table over sync_log's record_label and details, its triggers, filled from the rows there."""
    if not sqlite_has_trigram():
        log.warning("SQLite %s has no FTS5 trigram tokenizer: /sync-log's free text searches without an index",
                    sqlite3.sqlite_version)
        return
    for statement in SQLITE_SEARCH:
        op.execute(statement)


def create_pg_search() -> None:
    """pg_trgm and the trigram indexes of lower(record_label) and lower(details), when pg_trgm can be had."""
    bind = op.get_bind()
    try:
        with bind.begin_nested():  # a failed CREATE EXTENSION must not abort the migration's transaction
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        log.warning("pg_trgm is not available (%s): /sync-log's free text searches without an index",
                    str(getattr(exc, "orig", exc)).splitlines()[0])
        return
    op.execute("CREATE INDEX ix_sync_log_trgm_label ON sync_log USING gin (lower(record_label) gin_trgm_ops)")
    op.execute("CREATE INDEX ix_sync_log_trgm_details ON sync_log USING gin (lower(details) gin_trgm_ops)")


def upgrade() -> None:
    with op.batch_alter_table('sync_log', schema=None) as batch_op:
        batch_op.create_index('ix_sync_log_account_status', ['account_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_sync_log_account_kind', ['account_id', 'kind', 'id'], unique=False)
        batch_op.create_index('ix_sync_log_account_entity', ['account_id', 'entity', 'id'], unique=False)
        batch_op.create_index('ix_sync_log_account_created', ['account_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_sync_log_connection_id', ['connection_id', 'id'], unique=False)
        batch_op.create_index('ix_sync_log_account_open', ['account_id', 'id'], unique=False,
                              postgresql_where=sa.text(OPEN_WHERE), sqlite_where=sa.text(OPEN_WHERE))
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        create_sqlite_search()
    elif dialect == "postgresql":
        create_pg_search()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("sync_log_fts_insert", "sync_log_fts_delete", "sync_log_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS sync_log_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_sync_log_trgm_details")
        op.execute("DROP INDEX IF EXISTS ix_sync_log_trgm_label")
        # pg_trgm stays: other databases objects may use it, and dropping an extension needs more rights
    with op.batch_alter_table('sync_log', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_log_account_open')
        batch_op.drop_index('ix_sync_log_connection_id')
        batch_op.drop_index('ix_sync_log_account_created')
        batch_op.drop_index('ix_sync_log_account_entity')
        batch_op.drop_index('ix_sync_log_account_kind')
        batch_op.drop_index('ix_sync_log_account_status')
