"""The Slack side's tables (same metadata as `sync.models`, so one Alembic history migrates both).

Also declared here: slack_sdk's installation and OAuth state store tables (multi-workspace installs) and who
opened the App Home (`slack_home_viewers`).

A Slack workspace is bound to one JobsiteOn account (`slack_workspaces`); every message syncbot posted for a
topic of the outbox (one record, one connection's incident, a digest) is remembered with its channel and `ts`
(`slack_messages`) so that later notifications update it in place with chat.update.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from sync.models import Base, UTCDateTime, utcnow


class Workspace(Base):
    """A Slack workspace (team) bound to a JobsiteOn account.

    ``channel_id``: where notifications go. ``admin_user_ids``: Slack users allowed to act besides the
    workspace's Owners and Admins. ``open_reading``: whether every member may read the log.
    """

    __tablename__ = "slack_workspaces"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), unique=True)
    team_name: Mapped[str | None] = mapped_column(String(200))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    admin_user_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    open_reading: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The Slack user who set the workspace up (ran `/sync-log channel`): told when the channel breaks.
    installer_user_id: Mapped[str | None] = mapped_column(String(32))
    #: Why notifications cannot reach the channel now (not_in_channel, channel_not_found...), until fixed.
    channel_problem: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlackMessage(Base):
    """A message syncbot posted for an outbox topic. ``ts`` is NULL while a worker has claimed the post and
    not yet posted it (the claim makes two workers never post the same message twice)."""

    __tablename__ = "slack_messages"
    __table_args__ = (
        UniqueConstraint("account_id", "topic", name="uq_slack_messages_topic"),
        Index("ix_slack_messages_channel_ts", "channel_id", "ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(100))
    channel_id: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    posted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OAuthState(Base):
    """A pending provider authorization started from Slack: single use, expiring, bound to the account and the
    Slack user who asked for it (the `state` of the OAuth flow is its ``nonce``, signed)."""

    __tablename__ = "oauth_states"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SchedulerLease(Base):
    """Who runs the scheduled jobs: the process holding an unexpired lease (one row per lease name). A process
    renews its lease every few seconds; when the holder dies, another takes over once ``expires_at`` passed."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SlackChannelPace(Base):
    """What every replica's notifier honours for one Slack channel (`bot.delivery_state.ChannelPace`): when the
    next post may go (about one a second), and a pause (a Retry-After, an outage's back-off) with its reason.
    Times are the database's clock."""

    __tablename__ = "slack_channel_paces"

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_post_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paused_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(500))


class ScheduledSend(Base):
    """One scheduled message that was due (a week's summary of an account, one token-expiry reminder threshold
    of one token): the unique ``key`` makes each be queued once, whoever runs the job and however often.
    ``outcome``: ``queued`` (its notification is in the outbox) or ``missed`` (found too late to be useful)."""

    __tablename__ = "scheduled_sends"
    __table_args__ = (UniqueConstraint("job", "key", name="uq_scheduled_sends_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16), default="queued")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class HomeViewer(Base):
    """A Slack user who opened syncbot's App Home: their Home is re-published when the account's state changes
    (an error arrives, a retry, Sync Now, Retry All, a reconnect), at most once per few seconds
    (``published_at``)."""

    __tablename__ = "slack_home_viewers"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SeenEvent(Base):
    """An Events API delivery syncbot took on (``event_id``, unique across Slack): a retry of it (Slack re-sends an
    event it thinks was not acked, with ``X-Slack-Retry-Num``), to this process or another replica, finds the row
    and does nothing. Rows older than a few hours are pruned (Slack retries for minutes, not hours)."""

    __tablename__ = "slack_events_seen"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Job(Base):
    """Work accepted from Slack and promised to a person (Sync Now, Retry All, a click's fix), stored before the
    request returns and run by a worker process (`bot.jobs`): ``payload`` holds what the work needs and where its
    answer goes (the response_url sealed with TOKEN_ENCRYPTION_KEYS). ``finished_at`` stays None until a worker
    ran it to the end (or gave up); ``outcome``: done, failed (the work raised), bad (the payload cannot be run)
    or gave_up (started too many times: each start is a row of ``job_attempts``)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_unfinished", "finished_at", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    connection_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class JobAttempt(Base):
    """One start of a job by a worker (``worker``: host:pid). Written in a short transaction of its own before the
    job runs, so a job that kills its process is counted even though its claim rolled back. No foreign key: the
    claim holds the job's row locked (FOR UPDATE), and the key check of an insert here would wait for it."""

    __tablename__ = "job_attempts"
    __table_args__ = (Index("ix_job_attempts_job_id", "job_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    worker: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# slack_sdk's SQLAlchemy installation and OAuth state stores (slack_sdk.oauth.installation_store.sqlalchemy and
# slack_sdk.oauth.state_store.sqlalchemy, slack_sdk 3.36+: same table and column names), declared here so that
# Alembic creates and checks them; bot/installations.py points the stores at these tables. The token columns are
# Text, not slack_sdk's String(200): they hold Fernet ciphertext (tokens are encrypted at rest), which is longer
# (the incoming webhook URL is a secret too).
# DateTime columns are naive UTC, as slack_sdk writes them (slack_sdk.oauth.sqlalchemy_utils).


def installations_table(metadata: MetaData, token_type: TypeEngine[Any] | None = None) -> Table:
    """slack_sdk's ``slack_installations`` table on ``metadata``; ``token_type`` for the token columns (Text)."""
    return Table(
        "slack_installations", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("client_id", String(32), nullable=False),
        Column("app_id", String(32), nullable=False),
        Column("enterprise_id", String(32)),
        Column("enterprise_name", String(200)),
        Column("enterprise_url", String(200)),
        Column("team_id", String(32)),
        Column("team_name", String(200)),
        Column("bot_token", token_type or Text()),
        Column("bot_id", String(32)),
        Column("bot_user_id", String(32)),
        Column("bot_scopes", String(1000)),
        Column("bot_refresh_token", token_type or Text()),
        Column("bot_token_expires_at", DateTime),
        Column("user_id", String(32), nullable=False),
        Column("user_token", token_type or Text()),
        Column("user_scopes", String(1000)),
        Column("user_refresh_token", token_type or Text()),
        Column("user_token_expires_at", DateTime),
        Column("incoming_webhook_url", token_type or Text()),
        Column("incoming_webhook_channel", String(200)),
        Column("incoming_webhook_channel_id", String(200)),
        Column("incoming_webhook_configuration_url", String(200)),
        Column("is_enterprise_install", Boolean, default=False, nullable=False),
        Column("token_type", String(32)),
        Column("installed_at", DateTime, nullable=False, default=func.now()),
        Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
    )


def bots_table(metadata: MetaData, token_type: TypeEngine[Any] | None = None) -> Table:
    """slack_sdk's ``slack_bots`` table on ``metadata``; ``token_type`` for the token columns (Text)."""
    return Table(
        "slack_bots", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("client_id", String(32), nullable=False),
        Column("app_id", String(32), nullable=False),
        Column("enterprise_id", String(32)),
        Column("enterprise_name", String(200)),
        Column("team_id", String(32)),
        Column("team_name", String(200)),
        Column("bot_token", token_type or Text()),
        Column("bot_id", String(32)),
        Column("bot_user_id", String(32)),
        Column("bot_scopes", String(1000)),
        Column("bot_refresh_token", token_type or Text()),
        Column("bot_token_expires_at", DateTime),
        Column("is_enterprise_install", Boolean, default=False, nullable=False),
        Column("installed_at", DateTime, nullable=False, default=func.now()),
        Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
    )


slack_installations = installations_table(Base.metadata)
slack_bots = bots_table(Base.metadata)

slack_oauth_states = Table(
    "slack_oauth_states", Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(200), nullable=False),
    Column("expire_at", DateTime, nullable=False),
)
