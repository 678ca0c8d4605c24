"""The composition root: builds syncbot's objects from Settings, once per process.

Everything that talks to the outside gets its base URL from settings here (docs/architecture.md, "Rules of the house":
one small client object per external system), so the stand-ins of `sandbox/` can take the place of the real services.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from sync import db
from sync.crypto import SecretBox
from sync.engine import EngineConfig, SyncEngine
from sync.models import Connection
from sync.oauth import ConnectionTokens, QuickBooksOAuth
from sync.providers.limiter import LimiterConfig, RealmLimiter
from sync.providers.quickbooks import QuickBooksProvider


@dataclass
class Services:
    """The process's long-lived objects. ``close()`` releases connections."""

    settings: Settings
    db_engine: Engine
    sessions: sessionmaker[Session]
    box: SecretBox
    oauth: QuickBooksOAuth
    tokens: ConnectionTokens
    limiter: RealmLimiter
    engine: SyncEngine = field(init=False)
    _http: httpx.Client | None = field(default=None, init=False, repr=False)
    _http_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.engine = SyncEngine(self.sessions, self.provider_for, EngineConfig(
            rate_limit_pause_seconds=self.settings.rate_limit_pause_seconds))

    def provider_for(self, connection: Connection) -> QuickBooksProvider:
        """The QuickBooks provider bound to ``connection``'s realm and tokens."""
        if connection.provider != "quickbooks":
            raise ValueError(f"unsupported provider {connection.provider!r}")
        self.settings.check_secrets()
        return QuickBooksProvider(connection.id, connection.realm_id or "", self.tokens, self.settings.qbo_api_url,
                                  self.limiter, self.http, minor_version=self.settings.qbo_minor_version)

    @property
    def http(self) -> httpx.Client:
        """The HTTP client of QuickBooks' API (its pool and TLS context), made at its first use, once per process:
        a command that never calls QuickBooks (`syncbot sync-log`) does not pay the ~25 ms of loading the CA
        bundle."""
        with self._http_lock:
            if self._http is None:
                self._http = httpx.Client(timeout=httpx.Timeout(self.settings.qbo_timeout_seconds, connect=10.0),
                                          limits=httpx.Limits(max_connections=self.settings.qbo_max_concurrent * 2))
            return self._http

    def close(self) -> None:
        with self._http_lock:
            if self._http is not None:
                self._http.close()
        self.db_engine.dispose()


def build_services(settings: Settings, migrate: bool = True) -> Services:
    """Build every service from ``settings``; ``migrate`` brings the database schema up to date first (Alembic,
    unless the database is at the newest revision already: ``sync.db.is_current``)."""
    engine = db.open_migrated(settings.database_url) if migrate else db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    box = SecretBox(settings.token_keys())
    oauth = QuickBooksOAuth(settings.qbo_client_id, settings.qbo_client_secret.get_secret_value(),
                            settings.qbo_auth_url, settings.qbo_token_url, settings.qbo_revoke_url,
                            settings.qbo_redirect_uri, timeout=min(settings.qbo_timeout_seconds, 60.0))
    limiter = RealmLimiter(sessions, LimiterConfig(
        requests_per_minute=settings.qbo_requests_per_minute, batch_per_minute=settings.qbo_batch_per_minute,
        max_concurrent=settings.qbo_max_concurrent, minute_seconds=settings.qbo_limit_minute_seconds,
        batch_metering=settings.qbo_batch_metering, margin=settings.qbo_limit_margin))
    return Services(settings=settings, db_engine=engine, sessions=sessions, box=box, oauth=oauth,
                    tokens=ConnectionTokens(sessions, box, oauth), limiter=limiter)
