"""Multi-workspace installs: slack_sdk's SQLAlchemy installation and OAuth state stores on our database, with
every token encrypted at rest.

slack_sdk's `SQLAlchemyInstallationStore` stores bot and user tokens in clear (String(200) columns). Here the
store queries the tables declared in `bot.models` (created by Alembic) through a private copy whose token
columns are :class:`SealedText`: Fernet-encrypted with `sync.crypto.SecretBox` on the way in, decrypted on the
way out. Every query the store makes stays the same; no token is ever compared in SQL (Fernet ciphertext is
randomised), only tested for NULL.

Uninstall (docs/platform-facts.md, "Libraries"): `delete_installation()` alone leaves the bot row (`find_bot`
still finds it), so :meth:`SealedInstallationStore.forget_team` deletes both.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Dialect, Engine, MetaData, Text
from sqlalchemy.types import TypeDecorator

from bot.models import bots_table, installations_table, slack_oauth_states
from sync.crypto import SecretBox

log = logging.getLogger("syncbot.installations")


#: Slack tokens (bot, user, app, refresh, config: https://docs.slack.dev/authentication/tokens) and the token
#: fields of an oauth.v2.access answer.
_TOKEN = re.compile(r"xox[a-z]-[A-Za-z0-9.-]+")
_FIELD = re.compile(r"((?:access_token|refresh_token|client_secret)[\"']\s*:\s*[\"'])[^\"']+")
REDACTED_LOGGERS = ("slack_sdk.web.base_client", "slack_bolt.App", "slack_bolt.oauth.oauth_flow", "syncbot.app")


class RedactSecrets(logging.Filter):
    """Replaces Slack tokens in a log record's message by ``(redacted)``. slack_sdk logs whole API answers at
    DEBUG, and oauth.v2.access answers carry the bot token: secrets are never logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return True
        redacted = _FIELD.sub(r"\1(redacted)", _TOKEN.sub("(redacted)", text))
        if redacted != text:
            record.msg, record.args = redacted, None
        return True


def redact_slack_logs() -> None:
    """Install :class:`RedactSecrets` on the loggers that see Slack API answers: slack_sdk's WebClient (whose
    per-record logger is ``slack_sdk.web.base_client``), Bolt's and ours (a filter on a logger sees only its own
    records, so each is named). Idempotent."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


class SealedText(TypeDecorator[str]):
    """Text encrypted with a SecretBox (Fernet): ciphertext in the database, plaintext in Python.

    Raises sync.crypto.SecretBoxError on read when no configured key decrypts the value."""

    impl = Text
    cache_ok = False  # the box is part of the type: never share compiled statements between boxes

    def __init__(self, box: SecretBox) -> None:
        super().__init__()
        self.box = box

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.box.encrypt(str(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.box.decrypt(value)


class SealedInstallationStore(SQLAlchemyInstallationStore):
    """slack_sdk's SQLAlchemy installation store on syncbot's tables, tokens encrypted with ``box``.

    ``client_id``: the Slack app's client id (rows are per app); ``engine``: our database's engine."""

    def __init__(self, client_id: str, engine: Engine, box: SecretBox) -> None:
        super().__init__(client_id=client_id, engine=engine, logger=log)
        self.metadata = MetaData()
        sealed = SealedText(box)
        self.installations = installations_table(self.metadata, token_type=sealed)
        self.bots = bots_table(self.metadata, token_type=sealed)

    def create_tables(self) -> None:
        raise RuntimeError("syncbot's migrations create the store's tables (`syncbot db upgrade`)")

    def forget_team(self, team_id: str, enterprise_id: str | None = None) -> None:
        """Delete every installation and bot row of ``team_id`` (the app was uninstalled or its tokens
        revoked): P10, `delete_installation()` alone leaves the bot row."""
        self.delete_installation(enterprise_id=enterprise_id, team_id=team_id)
        self.delete_bot(enterprise_id=enterprise_id, team_id=team_id)
        log.info("event=slack_installation_deleted team_id=%s", team_id)

    def bot_token(self, team_id: str) -> str | None:
        """The newest bot token of ``team_id`` (decrypted), or None when the app is not installed there."""
        bot = self.find_bot(enterprise_id=None, team_id=team_id)
        return bot.bot_token if bot is not None else None


class StateStore(SQLAlchemyOAuthStateStore):
    """slack_sdk's SQLAlchemy OAuth state store on syncbot's ``slack_oauth_states`` table (single-use states of
    the install flow, ``expiration_seconds`` long)."""

    def __init__(self, engine: Engine, expiration_seconds: int = 600) -> None:
        super().__init__(expiration_seconds=expiration_seconds, engine=engine, logger=log)
        self.oauth_states = slack_oauth_states

    def create_tables(self) -> None:
        raise RuntimeError("syncbot's migrations create the store's tables (`syncbot db upgrade`)")


def raw_rows(engine: Engine, table: str) -> list[dict[str, Any]]:
    """The stored rows of ``slack_installations`` or ``slack_bots`` as the database holds them (ciphertext):
    for tests and audits that check nothing is stored in clear."""
    from bot.models import slack_bots, slack_installations

    chosen = {"slack_installations": slack_installations, "slack_bots": slack_bots}[table]
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(chosen.select()).mappings()]
