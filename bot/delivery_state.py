"""What every replica's notifier shares in the database, so that N replicas deliver the outbox like one.

- :class:`ChannelPace`: each Slack channel's pace (about one post a second per channel,
  https://docs.slack.dev/apis/web-api/rate-limits) and its pause (a rate limit's Retry-After, an outage's
  back-off), in ``slack_channel_paces``, judged by the database's clock (`sync.db.db_now`). Taking a post's turn
  is one conditional UPDATE: two replicas never both take the same second of a channel.
- :class:`TopicClaims`: which replica delivers a topic (one record's card, one incident, a digest) now. On
  PostgreSQL a transaction-level advisory lock (``pg_try_advisory_xact_lock``) held while the topic is delivered:
  another replica skips the topic and takes the next (as ``SKIP LOCKED`` would), and when the holder dies its
  connection ends and the lock goes with it, so no clock or lease decides. SQLite is the one-process default:
  there the notifier's lease (`bot.lease.Lease`) lets one process deliver, and every claim is granted.

Nothing here sleeps: a channel that must wait answers with how long, and the notifier reschedules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models import SlackChannelPace
from sync.db import db_now

#: The first key of every advisory lock syncbot's notifier takes (the second is the topic's hash), so that it
#: never meets another application's locks on the same database ("SYNC" in ASCII).
TOPIC_LOCK_SPACE = 0x53594E43


def shared_by_replicas(sessions: Any) -> bool:
    """Whether ``sessions`` (a sessionmaker) is bound to PostgreSQL, where several replicas may deliver at once."""
    bind = sessions.kw.get("bind")
    return bind is not None and bind.dialect.name == "postgresql"


class ChannelPace:
    """Each channel's pace and pause, in the database. ``clock`` gives the time a session's checks are judged by
    (the database's by default)."""

    def __init__(self, sessions: Callable[[], Session], clock: Callable[[Session], dt.datetime] = db_now) -> None:
        self.sessions = sessions
        self._clock = clock

    def take(self, channel: str, interval: float) -> tuple[float, str] | None:
        """Take ``channel``'s next turn to post or update: None when it may go now (the following turn is
        ``interval`` seconds later, for every replica), else (seconds to wait, why)."""
        with self.sessions() as session, session.begin():
            now = self._clock(session)
            taken = session.execute(update(SlackChannelPace).where(
                SlackChannelPace.channel_id == channel,
                or_(SlackChannelPace.paused_until.is_(None), SlackChannelPace.paused_until <= now),
                or_(SlackChannelPace.next_post_at.is_(None), SlackChannelPace.next_post_at <= now))
                .values(next_post_at=now + dt.timedelta(seconds=interval), paused_until=None)
                .execution_options(synchronize_session=False))
            if taken.rowcount:  # type: ignore[attr-defined]
                return None
            row = session.get(SlackChannelPace, channel, populate_existing=True)
            if row is None:
                try:
                    with session.begin_nested():
                        session.execute(insert(SlackChannelPace).values(
                            channel_id=channel, next_post_at=now + dt.timedelta(seconds=interval)))
                    return None
                except IntegrityError:  # another replica made it meanwhile: its turn came first
                    return interval, "paced: about one post a second per channel"
            return _wait_of(row, now) or (0.05, "paced: about one post a second per channel")

    def pause(self, channel: str, seconds: float, reason: str) -> None:
        """Pause ``channel`` for ``seconds`` (a longer pause already there stays) for every replica."""
        with self.sessions() as session, session.begin():
            now = self._clock(session)
            until = now + dt.timedelta(seconds=seconds)
            row = session.get(SlackChannelPace, channel)
            if row is None:
                try:
                    with session.begin_nested():
                        session.execute(insert(SlackChannelPace).values(channel_id=channel, paused_until=until,
                                                                        reason=reason[:500]))
                    return
                except IntegrityError:
                    row = session.get(SlackChannelPace, channel, populate_existing=True)
                    assert row is not None
            if row.paused_until is None or row.paused_until < until:
                row.paused_until, row.reason = until, reason[:500]

    def waiting(self, channel: str, pace: bool = True) -> tuple[float, str] | None:
        """How long ``channel`` still waits and why (a pause, or its pace unless ``pace`` is False), or None when
        it may go now."""
        with self.sessions() as session:
            row = session.get(SlackChannelPace, channel)
            return _wait_of(row, self._clock(session), pace) if row is not None else None


def _wait_of(row: SlackChannelPace, now: dt.datetime, pace: bool = True) -> tuple[float, str] | None:
    if row.paused_until is not None and row.paused_until > now:
        return (row.paused_until - now).total_seconds(), f"channel paused: {row.reason or 'Slack asked to wait'}"
    if pace and row.next_post_at is not None and row.next_post_at > now:
        return (row.next_post_at - now).total_seconds(), "paced: about one post a second per channel"
    return None


class TopicClaims:
    """Which replica delivers a topic now (see the module's docstring)."""

    def __init__(self, sessions: Callable[[], Session], shared: bool) -> None:
        self.sessions = sessions
        self.shared = shared

    @contextmanager
    def claim(self, key: str) -> Iterator[bool]:
        """Hold ``key`` (an account's topic, e.g. ``"7:record:3:contact:12"``) while the block runs: yields True
        when this replica has it, False when another replica is delivering it now (skip it; its notifications
        stay due). The lock is held by an open transaction of its own, which touches no row."""
        if not self.shared:
            yield True
            return
        with self.sessions() as session, session.begin():
            got = session.scalar(select(func.pg_try_advisory_xact_lock(TOPIC_LOCK_SPACE, func.hashtext(key))))
            yield bool(got)
