"""Signed, single-use, expiring states for the provider's OAuth flow started from Slack (Reconnect).

The `state` sent to Intuit is ``nonce.signature`` (HMAC-SHA256 with the server secret). The nonce's row binds
it to the account, the connection and the Slack user; it expires after ``ttl`` seconds and is consumed by the
callback with a conditional UPDATE, so a replayed or foreign state gets nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bot.models import OAuthState
from sync.models import utcnow


class StateError(ValueError):
    """The state is forged, unknown, expired or used already; the message says which (for the error page)."""


class OAuthStates:
    """Mints and consumes OAuth states. ``secret``: the server secret (bytes)."""

    def __init__(self, sessions: sessionmaker[Session], secret: bytes, ttl: int = 600,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessions = sessions
        self.secret = secret
        self.ttl = ttl
        self.clock = clock

    def _sign(self, nonce: str) -> str:
        return hmac.new(self.secret, nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def mint(self, account_id: int, connection_id: int, team_id: str, user_id: str, user_name: str) -> str:
        """A new state for this user and connection."""
        nonce = secrets.token_urlsafe(24)
        now = self.clock()
        with self.sessions() as session, session.begin():
            session.add(OAuthState(nonce=nonce, account_id=account_id, connection_id=connection_id,
                                   team_id=team_id, user_id=user_id, user_name=user_name[:200], created_at=now,
                                   expires_at=now + dt.timedelta(seconds=self.ttl)))
        return f"{nonce}.{self._sign(nonce)}"

    def _nonce(self, state: str) -> str:
        nonce, _, signature = (state or "").partition(".")
        if not nonce or len(state) > 200 or not hmac.compare_digest(signature.encode(), self._sign(nonce).encode()):
            raise StateError("This link is not valid: it was not made by syncbot.")
        return nonce

    def peek(self, state: str) -> OAuthState:
        """The state's row without using it. Raises StateError."""
        nonce = self._nonce(state)
        with self.sessions() as session:
            row = session.get(OAuthState, nonce)
            if row is None:
                raise StateError("This link is not valid.")
            if row.used_at is not None:
                raise StateError("This link was used already. Ask for a new one with /sync-log reconnect.")
            if row.expires_at <= self.clock():
                raise StateError("This link has expired. Ask for a new one with /sync-log reconnect.")
            session.expunge(row)
            return row

    def consume(self, state: str) -> OAuthState:
        """Use the state once. Raises StateError when it is forged, unknown, expired or used."""
        row = self.peek(state)
        now = self.clock()
        with self.sessions() as session, session.begin():
            result = session.execute(update(OAuthState).where(
                OAuthState.nonce == row.nonce, OAuthState.used_at.is_(None), OAuthState.expires_at > now)
                .values(used_at=now))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise StateError("This link was used already. Ask for a new one with /sync-log reconnect.")
        return row
