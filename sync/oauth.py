"""OAuth 2.0 for QuickBooks Online, through authlib's httpx OAuth2Client.

Facts (Intuit developer docs, "OAuth 2.0" and "Refresh token policy"; docs/platform-facts.md, "QuickBooks: OAuth
2.0"): authorize at `https://appcenter.intuit.com/connect/oauth2` with scope `com.intuit.quickbooks.accounting`; the
token endpoint takes a form POST with HTTP Basic client auth (grant_type authorization_code or refresh_token) and
answers `{"token_type","expires_in":3600,"refresh_token","x_refresh_token_expires_in","access_token"}`; a refresh may
rotate the refresh token, which must be stored at once; an expired, revoked or already-rotated-out refresh token
answers 400 `{"error":"invalid_grant"}`; two refreshes racing each other also end in invalid_grant, so refresh
runs under a lock. The header `x-include-refresh-token-hard-expires-in: true` adds the five-year absolute limit
`x_refresh_token_hard_expires_in`. Revoke takes JSON `{"token": ...}`.

`ConnectionTokens` keeps each connection's tokens encrypted in the database and hands out a valid access token,
refreshing (and persisting the rotated refresh token in the same step) when it is about to expire.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from sync.crypto import SecretBox
from sync.diagnosis import Diagnosis, Kind, diagnose, diagnose_transport, make_diagnosis
from sync.models import Connection, ConnectionStatus, utcnow
from sync.providers.base import ProviderError

log = logging.getLogger("syncbot.oauth")

SCOPE = "com.intuit.quickbooks.accounting"
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"
#: Refresh this long before the access token expires (seconds).
REFRESH_LEEWAY = 300


@dataclass(frozen=True)
class TokenSet:
    """Tokens of one grant, with absolute UTC expiry times."""

    access_token: str
    refresh_token: str
    access_expires_at: dt.datetime
    refresh_expires_at: dt.datetime | None
    refresh_hard_expires_at: dt.datetime | None = None
    realm_id: str | None = None

    def __repr__(self) -> str:  # never print tokens
        return f"TokenSet(access_expires_at={self.access_expires_at}, refresh_expires_at={self.refresh_expires_at})"

    @classmethod
    def from_response(cls, token: dict[str, Any], now: dt.datetime, realm_id: str | None = None) -> TokenSet:
        """Build from an Intuit token answer (seconds relative to ``now``)."""

        def after(key: str) -> dt.datetime | None:
            value = token.get(key)
            if value is None or value == "":
                return None
            return now + dt.timedelta(seconds=int(value))

        return cls(
            access_token=str(token["access_token"]),
            refresh_token=str(token["refresh_token"]),
            access_expires_at=after("expires_in") or now + dt.timedelta(hours=1),
            refresh_expires_at=after("x_refresh_token_expires_in"),
            refresh_hard_expires_at=after("x_refresh_token_hard_expires_in"),
            realm_id=realm_id,
        )


class QuickBooksOAuth:
    """The Intuit OAuth 2.0 client of one app (client id and secret), with base URLs from settings.

    Every failing answer of the token or revoke endpoint raises ProviderError carrying the diagnosis of the
    very reply (invalid_grant is auth_expired; a 429 is rate_limited; an HTML page is unknown).
    """

    def __init__(self, client_id: str, client_secret: str, auth_url: str, token_url: str, revoke_url: str,
                 redirect_uri: str, timeout: float = 30.0, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.auth_url = auth_url
        self.token_url = token_url
        self.revoke_url = revoke_url
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self.clock = clock

    @contextlib.contextmanager
    def _client(self) -> Iterator[OAuth2Client]:
        """A client of this app, open for the ``with`` block and closed after it."""
        client = OAuth2Client(
            client_id=self.client_id, client_secret=self._client_secret, scope=SCOPE,
            redirect_uri=self.redirect_uri, token_endpoint_auth_method="client_secret_basic",
            revocation_endpoint_auth_method="client_secret_basic", timeout=self.timeout,
        )
        client.register_compliance_hook("access_token_response", self._check_token_response)
        client.register_compliance_hook("refresh_token_response", self._check_token_response)
        # authlib's httpx OAuth2Client is an httpx.Client, but typeshed's stubs (types-authlib) leave that base
        # class out, so mypy finds no __enter__/__exit__ on it.
        with client:  # type: ignore[attr-defined]
            yield client

    @staticmethod
    def _check_token_response(resp: httpx.Response) -> httpx.Response:
        if resp.status_code != 200:
            raise ProviderError(diagnose(resp.status_code, resp.content, resp.headers.get("content-type"),
                                         dict(resp.headers), endpoint="token"))
        try:
            body = resp.json()
        except ValueError:
            raise ProviderError(diagnose(resp.status_code, resp.content, resp.headers.get("content-type"),
                                         dict(resp.headers), endpoint="token")) from None
        if not isinstance(body, dict) or "access_token" not in body or "refresh_token" not in body:
            raise ProviderError(diagnose(400 if isinstance(body, dict) and "error" in body else 502,
                                         resp.content, resp.headers.get("content-type"), dict(resp.headers),
                                         endpoint="token"))
        return resp

    def authorization_url(self, state: str) -> str:
        """The URL that starts the consent flow for ``state`` (a signed, single-use value of the caller)."""
        with self._client() as client:
            url, _ = client.create_authorization_url(self.auth_url, state=state)
        return str(url)

    def exchange_code(self, code: str, realm_id: str) -> TokenSet:
        """Trade an authorization code (single use) for tokens. Raises ProviderError."""
        now = self.clock()
        try:
            with self._client() as client:
                token = client.fetch_token(self.token_url, grant_type="authorization_code", code=code,
                                           headers={HARD_EXPIRY_HEADER: "true", "Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderError(diagnose_transport(exc)) from exc
        return TokenSet.from_response(dict(token), now, realm_id)

    def refresh(self, refresh_token: str) -> TokenSet:
        """Use ``refresh_token`` once; the answer may carry a new (rotated) refresh token. Raises ProviderError."""
        now = self.clock()
        try:
            with self._client() as client:
                token = client.refresh_token(self.token_url, refresh_token=refresh_token,
                                             headers={HARD_EXPIRY_HEADER: "true", "Accept": "application/json",
                                                      "Content-Type": "application/x-www-form-urlencoded"})
        except httpx.HTTPError as exc:
            raise ProviderError(diagnose_transport(exc)) from exc
        return TokenSet.from_response(dict(token), now)

    def revoke(self, token: str) -> None:
        """Revoke a refresh (or access) token at Intuit. Raises ProviderError when Intuit refuses."""
        # Intuit's revoke endpoint takes JSON {"token"} with Basic client auth ("Revoke token" in Intuit's OAuth
        # docs); authlib's revoke_token() posts a form, so post through the same client with JSON.
        try:
            with self._client() as client:
                resp = client.request("POST", self.revoke_url, json={"token": token}, withhold_token=True,
                                   auth=httpx.BasicAuth(self.client_id, self._client_secret),
                                   headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderError(diagnose_transport(exc)) from exc
        if resp.status_code != 200:
            raise ProviderError(diagnose(resp.status_code, resp.content, resp.headers.get("content-type"),
                                         dict(resp.headers), endpoint="revoke"))


class ConnectionTokens:
    """Encrypted token storage of connections, and a valid access token on demand.

    Refresh happens under a per-connection lock in this process and, on PostgreSQL, under a row lock
    (`SELECT ... FOR UPDATE`) across processes; the rotated refresh token is committed before the new access
    token is used. A refresh that Intuit refuses with invalid_grant marks the connection expired.
    """

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox, oauth: QuickBooksOAuth,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessions = sessions
        self.box = box
        self.oauth = oauth
        self.clock = clock
        # one lock per connection while anyone holds it; dropped when nobody does (bounded by the threads)
        self._locks: weakref.WeakValueDictionary[int, threading.Lock] = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()

    def _lock(self, connection_id: int) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(connection_id)
            if lock is None:
                lock = self._locks[connection_id] = threading.Lock()
            return lock

    def store(self, session: Session, connection: Connection, tokens: TokenSet, by: str | None = None) -> None:
        """Save ``tokens`` on ``connection`` (encrypted), mark it connected; the caller commits."""
        connection.access_token_enc = self.box.encrypt(tokens.access_token)
        connection.refresh_token_enc = self.box.encrypt(tokens.refresh_token)
        connection.access_expires_at = tokens.access_expires_at
        connection.refresh_expires_at = tokens.refresh_expires_at
        if tokens.refresh_hard_expires_at is not None:
            connection.refresh_hard_expires_at = tokens.refresh_hard_expires_at
        connection.token_version = (connection.token_version or 0) + 1
        if tokens.realm_id:
            connection.realm_id = tokens.realm_id
        if by is not None:
            connection.connected_at = self.clock()
            connection.connected_by = by
            connection.status = ConnectionStatus.CONNECTED.value
            connection.paused_until = None

    def access_token(self, connection_id: int, stale: str | None = None) -> str:
        """A valid access token for the connection.

        ``stale``: a token the API just refused (401): refresh even if the stored expiry says it is valid,
        unless someone else already replaced it. Raises ProviderError (auth_expired) when the connection has no
        tokens, was revoked, or Intuit refuses the refresh.
        """
        token = self._current(connection_id, stale)
        if token is not None:
            return token
        with self._lock(connection_id):
            return self._refresh_locked(connection_id, stale)

    def refresh_if_expiring(self, connection_id: int, within: dt.timedelta, now: dt.datetime | None = None) -> bool:
        """Refresh the connection's access token now if it expires within ``within`` (the scheduler's refresh
        ahead of expiry, so a sync rarely meets an expired token); ``now``: UTC, default the clock. Returns
        whether a refresh happened. Raises
        ProviderError (auth_expired, the connection then marked expired) when Intuit refuses the refresh."""
        with self._lock(connection_id):
            with self.sessions() as session:
                conn = session.get(Connection, connection_id)
                if conn is None or conn.refresh_token_enc is None or conn.status in (
                        ConnectionStatus.EXPIRED, ConnectionStatus.REVOKED):
                    return False
                expires = conn.access_expires_at
                if expires is not None and expires - (now or self.clock()) > within:
                    return False
                stale = self.box.decrypt(conn.access_token_enc) if conn.access_token_enc else None
            self._refresh_locked(connection_id, stale)
            return True

    def _current(self, connection_id: int, stale: str | None) -> str | None:
        """The stored access token while it is valid and not ``stale``, else None (refresh); every request asks,
        so only the three columns it needs are read (no ORM object). Raises ProviderError (auth_expired)."""
        with self.sessions() as session:
            conn = session.execute(_TOKEN, {"b_id": connection_id}).first()
            if conn is None or conn.access_token_enc is None:
                raise ProviderError(_auth_expired("The connection has no tokens: connect it first."))
            if conn.status in (ConnectionStatus.EXPIRED, ConnectionStatus.REVOKED):
                raise ProviderError(_auth_expired("The connection's authorization expired: reconnect it."))
            token = self.box.decrypt(conn.access_token_enc)
            fresh = conn.access_expires_at and conn.access_expires_at - self.clock() > dt.timedelta(
                seconds=REFRESH_LEEWAY)
            if fresh and token != stale:
                return token
            return None

    def _refresh_locked(self, connection_id: int, stale: str | None) -> str:
        with self.sessions() as session, session.begin():
            stmt = select(Connection).where(Connection.id == connection_id)
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                stmt = stmt.with_for_update()
            conn = session.scalars(stmt).one()
            current = self.box.decrypt(conn.access_token_enc) if conn.access_token_enc else None
            fresh = conn.access_expires_at and conn.access_expires_at - self.clock() > dt.timedelta(
                seconds=REFRESH_LEEWAY)
            if current and fresh and current != stale:
                return current  # another thread or process refreshed meanwhile
            if conn.refresh_token_enc is None:
                raise ProviderError(_auth_expired("The connection has no refresh token: reconnect it."))
            try:
                tokens = self.oauth.refresh(self.box.decrypt(conn.refresh_token_enc))
            except ProviderError as exc:
                if exc.diagnosis.kind == Kind.AUTH_EXPIRED:
                    conn.status = ConnectionStatus.EXPIRED.value
                    log.warning("event=token_refresh_refused connection_id=%s kind=auth_expired", connection_id)
                raise
            self.store(session, conn, tokens)
            log.info("event=token_refreshed connection_id=%s access_expires_at=%s", connection_id,
                     tokens.access_expires_at.isoformat())
            return tokens.access_token

    def revoke(self, connection_id: int) -> None:
        """Revoke the connection's refresh token at Intuit (best effort) and forget the tokens."""
        with self.sessions() as session, session.begin():
            conn = session.get(Connection, connection_id)
            if conn is None:
                return
            if conn.refresh_token_enc:
                try:
                    self.oauth.revoke(self.box.decrypt(conn.refresh_token_enc))
                except ProviderError as exc:
                    log.warning("event=revoke_failed connection_id=%s kind=%s", connection_id,
                                exc.diagnosis.label)
            conn.access_token_enc = conn.refresh_token_enc = None
            conn.status = ConnectionStatus.REVOKED.value


#: What every request reads of its connection (built once: building a statement costs more than running it).
_TOKEN = select(Connection.access_token_enc, Connection.status, Connection.access_expires_at).where(
    Connection.id == bindparam("b_id"))


def _auth_expired(text: str) -> Diagnosis:
    return make_diagnosis(Kind.AUTH_EXPIRED, text)
