"""`syncbot keys rotate`: every stored token re-encrypted under the newest key, so the old key can be retired.

Runs the command in-process (typer's runner) on the test database, with a real QuickBooks connection made
through the stand-in's OAuth, a Slack installation saved through the installation store and a stored click."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot import config
from bot.cli import app
from bot.installations import SealedInstallationStore, raw_rows
from bot.models import Job
from sync import db
from sync.crypto import SecretBox, SecretBoxError
from sync.models import Connection
from tests.conftest import QBO


@pytest.fixture()
def keys_cli(clean_db: str, qbo: QBO, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `syncbot ...` with TOKEN_ENCRYPTION_KEYS as each call says."""
    settings = qbo.settings(clean_db)
    for key, value in {"DATABASE_URL": clean_db, "QBO_API_URL": settings.qbo_api_url,
                       "QBO_AUTH_URL": settings.qbo_auth_url, "QBO_TOKEN_URL": settings.qbo_token_url,
                       "QBO_REVOKE_URL": settings.qbo_revoke_url}.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()

    def run(keys: list[str], *args: str) -> Any:
        monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", ",".join(keys))
        config.get_settings.cache_clear()
        return runner.invoke(app, list(args), catch_exceptions=False)

    yield run
    config.get_settings.cache_clear()


def _connect(run: Any, keys: list[str], qbo: QBO, fixtures_dir: Path) -> None:
    from sandbox.quickbooks.consent import click_connect

    assert run(keys, "records", "import", str(fixtures_dir / "records_demo.json")).exit_code == 0
    callback = click_connect(run(keys, "connect").output.strip(), qbo.realm)
    result = run(keys, "connect", "--code", callback["code"], "--realm-id", callback["realmId"])
    assert result.exit_code == 0, result.output


def _install(engine: Any, box: SecretBox) -> SealedInstallationStore:
    store = SealedInstallationStore("client-1", engine, box)
    store.save(Installation(app_id="A1", team_id="T1", user_id="U1", bot_token="xoxb-secret-bot",
                            bot_id="B1", bot_user_id="UB1", bot_scopes=["chat:write"],
                            installed_at=dt.datetime.now(dt.UTC).timestamp()))
    return store


def _store_click(engine: Any, box: SecretBox, finished: bool = False) -> int:
    with Session(engine) as session, session.begin():
        job = Job(kind="click", connection_id=None, payload={"click": {
            "body": {"type": "block_actions"}, "response_url": box.encrypt("https://hooks.slack.com/actions/x"),
            "trigger_id": None}}, finished_at=dt.datetime.now(dt.UTC) if finished else None)
        session.add(job)
        session.flush()
        return job.id


def test_rotate_re_encrypts_every_token_so_the_old_key_can_be_dropped(
        keys_cli: Any, clean_db: str, qbo: QBO, fixtures_dir: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    _connect(keys_cli, [old], qbo, fixtures_dir)
    engine = db.make_engine(clean_db)
    try:
        _install(engine, SecretBox([old]))
        job_id = _store_click(engine, SecretBox([old]))
        done_id = _store_click(engine, SecretBox([old]), finished=True)
        before = raw_rows(engine, "slack_bots")[0]["bot_token"]

        result = keys_cli([new, old], "keys", "rotate")
        assert result.exit_code == 0, result.output
        # 2 QuickBooks tokens + the installation's and the bot row's bot token + the unfinished click's response_url
        assert "re-encrypted 5 stored secrets under the newest key" in result.output
        assert "2 in connections" in result.output and "1 in jobs" in result.output
        assert "0 already under it" in result.output

        only_new = SecretBox([new])
        after = raw_rows(engine, "slack_bots")[0]["bot_token"]
        assert after != before and "xoxb-secret-bot" not in after
        assert SealedInstallationStore("client-1", engine, only_new).bot_token("T1") == "xoxb-secret-bot"
        with Session(engine) as session:
            conn = session.scalars(select(Connection)).one()
            assert only_new.decrypt(conn.refresh_token_enc or "")
            job, done = session.get(Job, job_id), session.get(Job, done_id)
            assert job is not None and done is not None
            assert only_new.decrypt(job.payload["click"]["response_url"]) == "https://hooks.slack.com/actions/x"
            with pytest.raises(SecretBoxError):  # a finished job's values are never read again: left as they were
                only_new.decrypt(done.payload["click"]["response_url"])

        # the old key retired: QuickBooks still answers with the stored tokens
        synced = keys_cli([new], "sync-now")
        assert synced.exit_code in (0, 1) and "cannot be decrypted" not in synced.output

        again = keys_cli([new], "keys", "rotate")
        assert again.exit_code == 0
        assert "re-encrypted 0 stored secrets under the newest key; 5 already under it" in again.output
    finally:
        engine.dispose()


def test_a_token_no_key_opens_is_left_unchanged_and_the_command_fails(
        keys_cli: Any, clean_db: str, qbo: QBO, fixtures_dir: Path) -> None:
    lost, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    _connect(keys_cli, [lost], qbo, fixtures_dir)
    engine = db.make_engine(clean_db)
    try:
        with Session(engine) as session:
            stored = session.scalars(select(Connection.refresh_token_enc)).one()
        result = keys_cli([new], "keys", "rotate")
        assert result.exit_code == 1
        assert "2 cannot be opened with any configured key (2 in connections)" in result.output
        assert "keep the key they were saved with" in result.output
        with Session(engine) as session:
            assert session.scalars(select(Connection.refresh_token_enc)).one() == stored
    finally:
        engine.dispose()

