"""The migrations are the schema: they match the models, and upgrade/downgrade both work."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import bot.models  # noqa: F401
from sync import db
from sync.crypto import SecretBox, SecretBoxError
from sync.models import Base


def test_migrations_match_models(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == []
        tables = set(inspect(engine).get_table_names())
        assert {"accounts", "connections", "contacts", "items", "invoices", "invoice_lines", "payments", "links",
                "sync_log", "incidents", "notifications", "record_claims", "slack_workspaces", "slack_messages",
                "oauth_states"} <= tables
    finally:
        engine.dispose()


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
