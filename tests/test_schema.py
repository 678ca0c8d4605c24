"""The migrations are the schema: they match the models, and upgrade/downgrade both work."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import bot.models  # noqa: F401
from sync import db
from sync.crypto import SecretBox, SecretBoxError
from sync.models import Base, unmodelled


def test_migrations_match_models(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False,
                                                         "include_name": lambda name, *_: not unmodelled(name)})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == []
        tables = set(inspect(engine).get_table_names())
        assert {"accounts", "connections", "contacts", "items", "invoices", "invoice_lines", "payments", "links",
                "sync_log", "incidents", "notifications", "record_claims", "slack_workspaces", "slack_messages",
                "oauth_states", "slack_installations", "slack_bots", "slack_oauth_states",
                "slack_home_viewers"} <= tables
    finally:
        engine.dispose()


def test_slack_store_tables_have_slack_sdks_columns() -> None:
    """The installation and state store tables the migrations create are the ones slack_sdk's stores query:
    same names, same columns (a slack_sdk upgrade that adds a column fails here, not in production)."""
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
    from sqlalchemy import MetaData

    theirs = MetaData()
    expected = [SQLAlchemyInstallationStore.build_installations_table(theirs, "slack_installations"),
                SQLAlchemyInstallationStore.build_bots_table(theirs, "slack_bots"),
                SQLAlchemyOAuthStateStore.build_oauth_states_table(theirs, "slack_oauth_states")]
    for table in expected:
        ours = Base.metadata.tables[table.name]
        assert [c.name for c in ours.columns] == [c.name for c in table.columns]
        assert {c.name: c.nullable for c in ours.columns} == {c.name: c.nullable for c in table.columns}
        assert {i.name for i in ours.indexes} == {i.name for i in table.indexes}


def test_downgrade_and_upgrade_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'migrate.db'}"
    db.upgrade(url)
    db.downgrade(url, "base")
    engine = db.make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    db.upgrade(url)


def test_each_migration_is_named_after_its_revision_and_the_newest_is_alembics_head() -> None:
    """``sync.db.newest_revision`` reads the head from the file names (a start on an up-to-date database skips
    loading the migrations): that only holds while every file is named after its revision and follows the one
    before it."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert script.get_heads() == [db.newest_revision()]
    for rev in script.walk_revisions():
        assert Path(rev.path).name.startswith(f"{rev.revision}_"), rev.path
        assert rev.down_revision is None or rev.down_revision < rev.revision


def test_a_start_on_an_older_database_still_migrates(tmp_path: Path) -> None:
    """``build_services`` skips Alembic only on a database at the newest revision: one a migration behind, or
    one never migrated, is brought up to date; the check itself answers from alembic_version."""
    from bot.config import Settings
    from bot.services import build_services

    url = f"sqlite:///{tmp_path / 'old.db'}"
    older = sorted(p.name[:4] for p in (db.MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))[-2]
    db.upgrade(url, older)
    engine = db.make_engine(url)
    try:
        assert not db.is_current(engine)
        services = build_services(Settings(_env_file=None, DATABASE_URL=url))  # type: ignore[call-arg]
        services.close()
        assert db.is_current(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == db.newest_revision()
    finally:
        engine.dispose()
    fresh = db.make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert not db.is_current(fresh)  # no alembic_version at all
    finally:
        fresh.dispose()


def test_secret_box_rotation_and_wrong_key() -> None:
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = SecretBox([old]).encrypt("refresh-token-value")
    assert "refresh-token-value" not in sealed
    rotated_box = SecretBox([new, old])
    assert rotated_box.decrypt(sealed) == "refresh-token-value"
    assert SecretBox([new]).decrypt(rotated_box.rotate(sealed)) == "refresh-token-value"
    try:
        SecretBox([new]).decrypt(sealed)
    except SecretBoxError:
        pass
    else:
        raise AssertionError("a wrong key must not decrypt")
