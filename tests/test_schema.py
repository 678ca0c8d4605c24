"""The migrations are the schema: they match the models, and upgrade/downgrade both work."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

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
