"""Settings for syncbot, read from the environment (and a `.env` file) by pydantic-settings.

Every setting has an offline default: with nothing set, syncbot runs on a SQLite file and the local
stand-ins of `sandbox/` (see README). Secrets are `SecretStr` so they never print in a repr or a log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Used only when TOKEN_ENCRYPTION_KEYS is not set: fine offline, refused against real Intuit hosts
#: (see `Settings.check_secrets`).
OFFLINE_TOKEN_KEY = "c3luY2JvdC1vZmZsaW5lLWRlbW8ta2V5LTMyYnl0ZXM="


@dataclass
class SchedulerConfig:
    """Timings of the scheduled work (seconds unless said otherwise)."""

    lease_seconds: float = 30.0
    summary_grace: dt.timedelta = dt.timedelta(hours=24)
    refresh_ahead: dt.timedelta = dt.timedelta(minutes=15)
    retention_days: int = 180
    prune_batch: int = 5_000
    #: How often each job runs: summaries, reminders and resume every minute, refresh every 5 minutes, and
    #: retention daily at 03:30 UTC.
    intervals: dict[str, float] = field(default_factory=lambda: {
        "summaries": 60.0, "reminders": 300.0, "resume": 30.0, "refresh": 300.0})
    retention_at: str = "03:30"


class Settings(BaseSettings):
    """All of syncbot's configuration.

    URLs default to Intuit's real hosts (docs/platform-facts.md, "QuickBooks: OAuth 2.0"); `syncbot demo` and
    the tests point them at the stand-ins instead.
    """

    #: An empty value (``SERVER_SECRET=`` as .env.example writes it, uncommented) is unset: the default applies,
    #: never an empty secret (an empty SERVER_SECRET would sign every link with an empty key).
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True)

    database_url: str = Field("sqlite:///syncbot.db", alias="DATABASE_URL")

    # Encryption of OAuth tokens at rest: comma-separated Fernet keys, newest first (MultiFernet rotation).
    token_encryption_keys: SecretStr = Field(SecretStr(OFFLINE_TOKEN_KEY), alias="TOKEN_ENCRYPTION_KEYS")

    # QuickBooks Online (Intuit developer docs: "OAuth 2.0" and "Accounting API" base URLs).
    qbo_client_id: str = Field("sandbox-client-id", alias="QBO_CLIENT_ID")
    qbo_client_secret: SecretStr = Field(SecretStr("sandbox-client-secret"), alias="QBO_CLIENT_SECRET")
    qbo_redirect_uri: str = Field("http://127.0.0.1:3000/oauth/quickbooks/callback", alias="QBO_REDIRECT_URI")
    qbo_api_url: str = Field("https://sandbox-quickbooks.api.intuit.com", alias="QBO_API_URL")
    qbo_auth_url: str = Field("https://appcenter.intuit.com/connect/oauth2", alias="QBO_AUTH_URL")
    qbo_token_url: str = Field("https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer", alias="QBO_TOKEN_URL")
    qbo_revoke_url: str = Field("https://developer.api.intuit.com/v2/oauth2/tokens/revoke", alias="QBO_REVOKE_URL")
    qbo_minor_version: int = Field(75, ge=1, alias="QBO_MINOR_VERSION")
    qbo_timeout_seconds: float = Field(120.0, gt=0, le=3600, allow_inf_nan=False, alias="QBO_TIMEOUT_SECONDS")
    # Throttling budget per realm (Intuit: "Rate limits and throttles"): requests and batch requests per minute.
    qbo_requests_per_minute: int = Field(500, ge=1, le=1_000_000, alias="QBO_REQUESTS_PER_MINUTE")
    qbo_batch_per_minute: int = Field(40, ge=1, le=1_000_000, alias="QBO_BATCH_PER_MINUTE")
    qbo_max_concurrent: int = Field(10, ge=1, le=1000, alias="QBO_MAX_CONCURRENT")
    qbo_limit_minute_seconds: float = Field(60.0, gt=0, le=3600, allow_inf_nan=False,
                                            alias="QBO_LIMIT_MINUTE_SECONDS")
    # Extra slack added to each window, as a fraction of it. None is needed: a unit counts until a minute after its
    # answer came back, so QuickBooks' stamp of it is a minute old by then (sync/providers/limiter.py).
    qbo_limit_margin: float = Field(0.0, ge=0, le=1, allow_inf_nan=False, alias="QBO_LIMIT_MARGIN")
    # "per_item": each batch item counts against the per-minute budget (Intuit's batch sample); "per_request": one.
    qbo_batch_metering: Literal["per_item", "per_request"] = Field("per_item", alias="QBO_BATCH_METERING")

    # The offline demo (`syncbot demo` sets it): `/sync-log demo summary|reminder` posts the scheduled messages now.
    demo_commands: bool = Field(False, alias="SYNCBOT_DEMO_COMMANDS")

    # How long a rate-limited connection pauses when QuickBooks gives no Retry-After (help article: 15 minutes).
    rate_limit_pause_seconds: int = Field(900, ge=1, le=7 * 86400, alias="RATE_LIMIT_PAUSE_SECONDS")

    # Threads per worker process that run the jobs (Sync Now, Retry All, clicks' fixes: bot/jobs.py).
    job_workers: int = Field(4, ge=1, le=64, alias="JOB_WORKERS")

    # The Slack side (used from the Slack app issue on).
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_client_id: str | None = Field(None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(None, alias="SLACK_CLIENT_SECRET")
    #: Where notifications go until `/sync-log channel #name` sets one per account.
    slack_default_channel: str | None = Field(None, alias="SLACK_DEFAULT_CHANNEL")
    #: The channel (id or #name, syncbot invited) "Contact support" sends requests to (the help article's last
    #: step); an e-mail address here is taken as SUPPORT_EMAIL. Neither: the facts ready to copy.
    support_channel: str | None = Field(None, alias="SUPPORT_CHANNEL")
    #: The address "Contact support" offers a mailto link to, with the subject and the details filled in.
    support_email: str | None = Field(None, pattern=r"^[^@\s?&#<>|%]{1,64}@[A-Za-z0-9.-]{1,253}$",
                                      alias="SUPPORT_EMAIL")

    # Logs (bot/logs.py): the least severe level written to stderr (None: INFO for `serve` and `scheduler`,
    # WARNING for one-shot commands) and the line format, key=value text or one JSON object per line.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = Field(None, alias="LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")

    # The HTTP server.
    port: int = Field(3000, ge=1, le=65535, alias="PORT")
    #: The URL Slack users' browsers reach this server at (for the Reconnect links).
    public_url: str = Field("http://127.0.0.1:3000", alias="PUBLIC_URL")
    #: Signs OAuth states; defaults to one derived from the signing secret.
    server_secret: SecretStr | None = Field(None, alias="SERVER_SECRET")

    # The scheduler (bot/scheduler.py).
    #: Run the scheduled jobs in `syncbot serve` (one process leads; the others stand by).
    scheduler_enabled: bool = Field(True, alias="SCHEDULER_ENABLED")
    #: Seconds of the leader lease: a dead leader is replaced within this plus a third of it.
    scheduler_lease_seconds: float = Field(30.0, ge=1.0, le=86400, allow_inf_nan=False,
                                           alias="SCHEDULER_LEASE_SECONDS")
    #: How late (hours) a weekly summary is still sent after downtime across its moment.
    summary_grace_hours: float = Field(24.0, ge=0.0, le=24 * 7, allow_inf_nan=False, alias="SUMMARY_GRACE_HOURS")
    #: Info and synced entries (and resolved errors) older than this many days are pruned.
    retention_days: int = Field(180, ge=1, le=36500, alias="RETENTION_DAYS")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        """LOG_LEVEL=info and LOG_FORMAT=JSON are read as INFO and json; an empty value as unset."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        return (value.upper() if value.lower() in ("debug", "info", "warning", "error") else value.lower()) or None

    def support_targets(self) -> tuple[str | None, str | None]:
        """(the support channel, the support address): SUPPORT_CHANNEL and SUPPORT_EMAIL, an address given as
        SUPPORT_CHANNEL counting as the address (what that setting once meant)."""
        channel = (self.support_channel or "").strip() or None
        email = (self.support_email or "").strip() or None
        if channel is not None and "@" in channel:
            channel, email = None, email or channel
        return channel, email

    def scheduler_config(self) -> SchedulerConfig:
        """The :class:`SchedulerConfig` of these settings."""
        return SchedulerConfig(lease_seconds=self.scheduler_lease_seconds,
                               summary_grace=dt.timedelta(hours=self.summary_grace_hours),
                               retention_days=self.retention_days)

    @property
    def offline(self) -> bool:
        """True when QuickBooks is a stand-in on this machine (loopback), not Intuit."""
        from urllib.parse import urlparse

        host = urlparse(self.qbo_api_url).hostname or ""
        return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")

    def check_secrets(self) -> None:
        """Refuse to talk to real Intuit hosts with the built-in offline encryption key (ValueError)."""
        if not self.offline and OFFLINE_TOKEN_KEY in self.token_keys():
            raise ValueError("TOKEN_ENCRYPTION_KEYS must be set (Fernet keys) before connecting to QuickBooks: "
                             "generate one with `python -c 'from cryptography.fernet import Fernet; "
                             "print(Fernet.generate_key().decode())'`")

    def token_keys(self) -> list[str]:
        """The Fernet keys, newest first."""
        return [k.strip() for k in self.token_encryption_keys.get_secret_value().split(",") if k.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
