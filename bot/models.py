"""The Slack side's tables (same metadata as `sync.models`, so one Alembic history migrates both).

A Slack workspace is bound to one JobsiteOn account (`slack_workspaces`); every message syncbot posted for a
topic of the outbox (one record, one connection's incident, a digest) is remembered with its channel and `ts`
(`slack_messages`) so that later notifications update it in place with chat.update.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

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


#: APScheduler's job store table (apscheduler.jobstores.sqlalchemy, APScheduler 3.11), declared here so that
#: Alembic creates and checks it like every other table; the job store itself uses its own Table object.
apscheduler_jobs = Table(
    "apscheduler_jobs", Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
