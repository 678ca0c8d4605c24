"""The notifier's state and what every part of it shares: the pass's counters, the channel pace and
pauses, rescheduling and marking notifications delivered, and the exceptions that reschedule."""



from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.delivery_state import ChannelPace, TopicClaims, shared_by_replicas
from bot.lease import Lease
from bot.models import SlackMessage, Workspace
from bot.slack_errors import retry_after_seconds
from sync.models import Account, Notification, utcnow

log = logging.getLogger("syncbot.notifier")

#: The ``event_type`` of the metadata every post of the notifier carries (https://docs.slack.dev/messaging/message-metadata).
METADATA_EVENT = "syncbot_notification"
#: How far before a claim the notifier looks for its own lost post (clocks of Slack and ours may differ).
FIND_MARGIN_SECONDS = 300.0
#: At most this many pages of conversations.history are read looking for one lost post.
FIND_PAGES = 5


class Reschedule(Exception):
    def __init__(self, seconds: float, reason: str, channel_wide: bool = False) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason
        self.channel_wide = channel_wide


class NeedsAdmin(Reschedule):
    """Slack refused with an ADMIN error (`bot.slack_errors`): the admins were told; the notification waits."""

    def __init__(self, channel: str, error: str, needed: str | None = None) -> None:
        super().__init__(300.0, f"Slack refused: {error}" + (f" (needs {needed})" if needed else ""),
                         channel_wide=True)
        self.channel = channel
        self.error = error
        self.needed = needed


class ChannelUnusable(NeedsAdmin):
    """Slack refused a channel (CHANNEL_ERRORS); raised by ``_call(..., mark_broken=False)``."""


class Uncertain(Reschedule):
    """The call may have been carried out though Slack's answer never came (a timeout, a lost connection, a 5xx,
    ``fatal_error``): a post is looked for before it is made again."""


@dataclass
class DeliveryStats:
    """What one pass did."""

    delivered: int = 0
    posted: int = 0
    updated: int = 0
    rescheduled: int = 0
    #: Notifications left to the replica that was delivering their topic at the same moment.
    skipped: int = 0
    accounts: set[int] = field(default_factory=set)
    #: The pass took as many notifications as it may (``limit``): more are probably due, so the loop goes on
    #: at once instead of waiting for its interval.
    full: bool = False


def retry_after_wait(value: Any, default: float = 30.0) -> float:
    """Slack's ``Retry-After`` in seconds (`bot.slack_errors.retry_after_seconds`), 30 s when it is unusable."""
    return retry_after_seconds(value, default)


class GoneMessage(Exception):
    pass


@dataclass
class Fold:
    """One account's records folded into its digest in this pass."""

    team_id: str
    channel: str
    tz: str
    connection_id: int | None
    earliest: dt.datetime | None = None
    topics: set[str] = field(default_factory=set)
    notifications: list[Notification] = field(default_factory=list)

    def add(self, topic: str, created_at: dt.datetime | None, group: list[Notification]) -> None:
        self.topics.add(topic)
        self.notifications.extend(group)
        if created_at is not None:
            self.earliest = created_at if self.earliest is None else min(self.earliest, created_at)


def message_of(session: Session, account_id: int, topic: str) -> SlackMessage | None:
    """The row of the Slack message of ``topic`` in ``account_id`` (posted, or claimed for a post), or None."""
    return session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                      SlackMessage.topic == topic)).first()


class NotifierBase:
    """The notifier's state (see :class:`bot.notifier.Notifier`) and shared helpers."""

    def __init__(self, sessions: sessionmaker[Session], client_for: Callable[[str], WebClient],
                 default_channel: str | None = None, reconnect_url: Callable[[int], str] | None = None,
                 flood_threshold: int = 10, flood_window: float = 300.0, post_interval: float = 1.0,
                 clock: Callable[[], dt.datetime] = utcnow, channel_budget_seconds: float = 5.0) -> None:
        self.sessions = sessions
        self.client_for = client_for
        self.default_channel = default_channel
        self.reconnect_url = reconnect_url
        self.flood_threshold = flood_threshold
        self.flood_window = flood_window
        #: Seconds between two posts in one channel (Slack: about one a second): a post due sooner waits, unslept.
        self.post_interval = post_interval
        #: Seconds of Slack's answers a channel may use in one pass; past them its other topics wait for the next.
        self.channel_budget_seconds = channel_budget_seconds
        self.clock = clock
        #: Each channel's pace and pause in the database, honoured by every replica (a Retry-After, an outage's
        #: back-off, a refusal); ``_paused`` remembers, for this pass only, the channels found waiting.
        self.pace = ChannelPace(sessions)
        self._paused: dict[str, tuple[float, str]] = {}
        #: Which replica delivers a topic now (PostgreSQL advisory locks; every claim granted on SQLite).
        self.claims = TopicClaims(sessions, shared_by_replicas(sessions))
        self._spent: dict[str, float] = {}  # seconds of Slack's answers per channel in this pass
        self._lock = threading.Lock()  # one delivery pass at a time in this process
        #: This pass's folded records per account: the digest's target, the earliest error's created_at, the
        #: folded record topics and their notifications; counted into the digest and marked delivered after
        #: Slack accepted the digest, at the end of the pass.
        self._folds: dict[int, Fold] = {}
        self._flooding_now: set[int] = set()  # accounts found flooding in this pass (it lasts the pass)
        #: Problems the Slack clients reported (team, text), told to the admins at the next pass.
        self._problems_due: list[tuple[str, str]] = []
        self._lock_problems = threading.Lock()
        self._current_account: int | None = None  # the account whose topic is being delivered (one pass at a time)
        self._wake = threading.Event()
        self._lease: Lease | None = None
        #: Notifications this notifier delivered since it started (all passes).
        self.delivered_total = 0
        self._stopping: threading.Event | None = None
        #: How many notifications :meth:`run` takes per pass.
        self.pass_limit = 500
        self._leading = False
        self._renewed_at = 0.0
        #: Called after every pass with the ids of the accounts whose notifications were delivered (the App
        #: Home is re-published for them: bot.home.HomePublisher).
        self.on_delivered: Callable[[set[int]], None] | None = None

    def wake(self) -> None:
        """Ask the background loop to deliver now (after a click produced notifications)."""
        self._wake.set()

    def _pause(self, channel: str, seconds: float, reason: str, shared: bool = True) -> None:
        """Pause ``channel`` for ``seconds`` (its notifications wait; the other channels go on): in every replica
        when Slack set the time (a Retry-After, an outage's back-off: ``shared``), else for the rest of this pass
        (a refusal the admins were told of: its notifications wait, and are due at once when it is fixed)."""
        if shared:
            self.pace.pause(channel, seconds, reason)
        until = time.monotonic() + seconds
        if until > self._paused.get(channel, (0.0, ""))[0]:
            self._paused[channel] = (until, f"channel paused: {reason}")

    def _waiting(self, channel: str) -> tuple[float, str] | None:
        """How long ``channel`` still waits and why (a pause any replica recorded, or its share of this pass used
        up), or None. A channel found paused is not asked about again in this pass."""
        if channel not in self._paused:
            paused = self.pace.waiting(channel, pace=False)  # a post's pace is taken with the post (_check_pace)
            if paused is not None:
                self._paused[channel] = (time.monotonic() + paused[0], paused[1])
        until, reason = self._paused.get(channel, (0.0, ""))
        left = until - time.monotonic()
        if left > 0:
            return left, reason
        if self._spent.get(channel, 0.0) > self.channel_budget_seconds:
            return 1.0, "slow channel: its answers used its share of the pass"
        return None

    def _target(self, account_id: int) -> tuple[str, str, str] | None:
        with self.sessions() as session:
            ws = session.scalars(select(Workspace).where(Workspace.account_id == account_id)).first()
            account = session.get(Account, account_id)
            if ws is None or account is None:
                return None
            channel = ws.channel_id or self.default_channel
            if not channel:
                return None
            return ws.team_id, channel, account.timezone or "UTC"

    def _reschedule(self, group: list[Notification], seconds: float, reason: str) -> None:
        """Make ``group`` due again in ``seconds`` (one UPDATE per 500), counting the attempt and saying why."""
        ids = [n.id for n in group]
        until = self.clock() + dt.timedelta(seconds=seconds)
        with self.sessions() as session, session.begin():
            for chunk in range(0, len(ids), 500):
                session.execute(update(Notification).where(Notification.id.in_(ids[chunk:chunk + 500])).values(
                    attempts=Notification.attempts + 1, last_error=reason[:500], next_attempt_at=until))
        log.info("event=notification_rescheduled count=%d seconds=%.1f reason=%s", len(group), seconds, reason)

    def _still_due(self, group: list[Notification]) -> list[Notification]:
        """Those of ``group`` still due (another replica may have delivered them, or rescheduled them, since they
        were read)."""
        with self.sessions() as session:
            due = set(session.scalars(select(Notification.id).where(
                Notification.id.in_([n.id for n in group]), Notification.delivered_at.is_(None),
                (Notification.next_attempt_at.is_(None)) | (Notification.next_attempt_at <= self.clock()))))
        return [n for n in group if n.id in due]

    def _mark_delivered(self, group: list[Notification]) -> None:
        with self.sessions() as session, session.begin():
            self._mark_delivered_in(session, group, self.clock())

    @staticmethod
    def _mark_delivered_in(session: Session, group: list[Notification], now: dt.datetime) -> None:
        """Mark ``group`` delivered at ``now`` in ``session``'s transaction (those not delivered yet), in
        statements of at most 500 ids."""
        ids = [n.id for n in group]
        for chunk in range(0, len(ids), 500):
            session.execute(update(Notification).where(
                Notification.id.in_(ids[chunk:chunk + 500]), Notification.delivered_at.is_(None))
                .values(delivered_at=now))
