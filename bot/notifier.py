"""Delivers the outbox (`sync.models.Notification`) to Slack: post, update in place, fold floods, respect limits.

- One message per record topic: the first error posts it; every later notification of the record updates the
  same message (chat.update on the stored channel and `ts`), and each new attempt adds a line in its thread.
  The message is drawn from the record's newest entry every time (`bot.blocks.error_message`).
- One message per connection incident (auth_expired, rate_limited, subscription), with the count of records
  waiting on it; it turns to Reconnected / Resumed when the incident closes.
- Several replicas on PostgreSQL all deliver: each topic is delivered by one of them at a time
  (`bot.delivery_state.TopicClaims`, an advisory lock held while the topic is delivered); the others skip it.
- Flood control: when more than ``flood_threshold`` record messages were posted for an account within
  ``flood_window`` seconds, new record errors fold into one digest message updated in place. The digest counts
  the records folded into it that are still open (stored with it), and their notifications are marked
  delivered only once the digest showing them was posted or updated.
- At most one Slack message per topic (docs/platform-facts.md, "Slack: posting and finding a post again"): the topic's
  row (`bot.models.SlackMessage`) is claimed before the post, and every post carries message metadata naming it
  (``event_type`` ``syncbot_notification``, ``event_payload`` ``{account_id, topic}``). chat.postMessage has
  no idempotency key, so when an earlier attempt's outcome is unknown (its row is claimed and has no ``ts``: the
  answer was lost, timed out, Slack said ``fatal_error``, or the process died before the commit), the notifier
  first looks for its own post with conversations.history (conversations.replies for a thread line) and
  ``include_all_metadata``; found, it is adopted (and updated), not posted again. This needs the history scopes
  of the channel's type (README, "Scopes").
- A notification is marked delivered only when Slack shows it: as its own message, as a line in its record's
  thread (thread lines are delivered like any notification: a refused one waits and is tried again, never
  dropped), or counted in a digest that Slack accepted.
- A slow or failing channel delays only itself: no sleeping anywhere in a pass. A rate limit's Retry-After, an
  outage's back-off and the pace of about one post per second per channel
  (https://docs.slack.dev/apis/web-api/rate-limits) pause that channel for every replica (kept in the database:
  `bot.delivery_state.ChannelPace`; its notifications get ``next_attempt_at``; the others go on); a channel
  whose answers took more than ``channel_budget_seconds`` in a pass waits for the next pass; the background
  client times out after 10 s and never retries a post by itself.
- Slack's refusals are handled by class (`bot.slack_errors`): wait (rate limits), shorten (too long or refused
  blocks: `bot.blocks.short_form`, then the plain text), tell the admins once (missing scope, not in channel,
  archived, revoked token...: one DM to the person who set syncbot up and the admin list, and
  ``Workspace.channel_problem`` for `/sync-log status` and the App Home; the notifications wait and go out when
  it is fixed), post afresh (the message is gone or cannot be edited any more), back off (Slack unavailable),
  fail loudly (everything else: an error in the log, the notification tried again in 10 minutes).
  A message in a channel that is no longer the account's (another one was picked since) and cannot be updated
  there any more is posted afresh in the account's channel.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot import blocks
from bot.blocks.messages import connection_waiting
from bot.delivery_state import ChannelPace, TopicClaims, shared_by_replicas
from bot.lease import Lease
from bot.models import ScheduledSend, SlackMessage, Workspace
from bot.slack_errors import CHANNEL_ERRORS, Problem, Refusal, classify, describe, retry_after_seconds
from sync.log import existing_label, open_clause, weekly_summary
from sync.models import Account, Connection, Incident, Notification, Status, SyncLogEntry, utcnow

log = logging.getLogger("syncbot.notifier")

#: The ``event_type`` of the metadata every post of the notifier carries (https://docs.slack.dev/messaging/message-metadata).
METADATA_EVENT = "syncbot_notification"
#: How far before a claim the notifier looks for its own lost post (clocks of Slack and ours may differ).
FIND_MARGIN_SECONDS = 300.0
#: At most this many pages of conversations.history are read looking for one lost post.
FIND_PAGES = 5


class _Reschedule(Exception):
    def __init__(self, seconds: float, reason: str, channel_wide: bool = False) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason
        self.channel_wide = channel_wide


class _NeedsAdmin(_Reschedule):
    """Slack refused with an ADMIN error (`bot.slack_errors`): the admins were told; the notification waits."""

    def __init__(self, channel: str, error: str, needed: str | None = None) -> None:
        super().__init__(300.0, f"Slack refused: {error}" + (f" (needs {needed})" if needed else ""),
                         channel_wide=True)
        self.channel = channel
        self.error = error
        self.needed = needed


class _ChannelUnusable(_NeedsAdmin):
    """Slack refused a channel (CHANNEL_ERRORS); raised by ``_call(..., mark_broken=False)``."""


class _Uncertain(_Reschedule):
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


def _retry_after_seconds(value: Any, default: float = 30.0) -> float:
    """Slack's ``Retry-After`` in seconds (`bot.slack_errors.retry_after_seconds`), 30 s when it is unusable."""
    return retry_after_seconds(value, default)


class Notifier:
    """Delivers pending notifications. ``client_for(team_id)`` gives a workspace's WebClient for the background
    (`bot.runtime.SlackClients.background_for`: no retry handler that sleeps or posts again by itself)."""

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
        self._folds: dict[int, _Fold] = {}
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

    # ------------------------------------------------------------------------------------------ the loop

    def wake(self) -> None:
        """Ask the background loop to deliver now (after a click produced notifications)."""
        self._wake.set()

    def run(self, stop: threading.Event, interval: float = 2.0, lease: Lease | None = None) -> None:
        """Deliver until ``stop`` is set: every ``interval`` seconds, or at once when woken.

        ``lease``: with several processes on one database, only the holder of this lease delivers (the others
        stand by and take over when it expires), so updates, thread notes and digests are not sent twice; a
        pass stops early if the lease is lost. Released on a clean stop."""
        self._lease, self._stopping = lease, stop
        try:
            while not stop.is_set():
                full = False
                try:
                    if lease is None or self._still_leading(force=True):
                        full = self.deliver(self.pass_limit).full
                except Exception:
                    log.exception("event=notifier_pass_failed")
                if not full:  # a full pass goes straight on with the rest of a backlog
                    self._wake.wait(interval)
                self._wake.clear()
        finally:
            if lease is not None and self._leading:
                try:
                    lease.release()
                except Exception:
                    log.exception("event=notifier_lease_release_failed")

    def drain(self, timeout: float = 30.0) -> bool:
        """Deliver until nothing is pending, for a caller that must see the channel up to date before it goes on
        (the demo's seeding draws each step before the next changes it). Between passes it waits for the soonest
        reschedule (Slack's pace of about one post a second per channel, a Retry-After), never past ``timeout``
        seconds in all. Returns True when nothing is left pending."""
        deadline = time.monotonic() + timeout
        while True:
            self.deliver()
            with self.sessions() as session:
                waiting = list(session.scalars(select(Notification.next_attempt_at).where(
                    Notification.delivered_at.is_(None))))
            if not waiting:
                return True
            now = self.clock()
            soonest = min((at for at in waiting if at is not None), default=now)
            wait = max((soonest - now).total_seconds(), 0.05)
            if time.monotonic() + wait > deadline:
                return False
            time.sleep(wait)

    def _still_leading(self, force: bool = False) -> bool:
        """Renew the delivery lease (at most every third of its length unless ``force``); True while held."""
        lease = self._lease
        if lease is None:
            return True
        now = time.monotonic()
        if force or now - self._renewed_at >= lease.seconds / 3:
            try:
                leading = lease.acquire()
            except Exception:
                log.exception("event=notifier_lease_failed")
                leading = False
            if leading != self._leading:
                log.info("event=notifier_%s holder=%s", "leading" if leading else "standing_by", lease.holder)
            self._leading, self._renewed_at = leading, now
        return self._leading

    def deliver(self, limit: int = 500) -> DeliveryStats:
        """One pass over due notifications, oldest first, coalesced per topic. Never sleeps: a channel that must
        wait (paced, rate limited, refused, slow) has its notifications rescheduled and the pass goes on."""
        stats = DeliveryStats()
        with self._lock:
            now = self.clock()
            with self.sessions() as session:
                due = list(session.scalars(select(Notification).where(
                    Notification.delivered_at.is_(None),
                    (Notification.next_attempt_at.is_(None)) | (Notification.next_attempt_at <= now))
                    .order_by(Notification.id).limit(limit)))
                session.expunge_all()
            stats.full = len(due) >= limit
            if self._problems_due:
                self._tell_reported()
            by_topic: dict[tuple[int, str], list[Notification]] = {}
            for n in due:
                by_topic.setdefault((n.account_id, n.topic), []).append(n)
            targets: dict[int, tuple[str, str, str] | None] = {}
            self._flooding_now.clear()
            self._spent.clear()
            self._paused.clear()
            self._folds = {}  # a pass that failed midway left its folds due: they fold again now
            for (account_id, topic), group in by_topic.items():
                if self._stopping is not None and self._stopping.is_set():
                    break  # shutting down: what is left waits in the outbox for the next start
                if not self._still_leading():
                    log.warning("event=notifier_lease_lost: the pass stops, another process delivers")
                    break
                if account_id not in targets:
                    targets[account_id] = self._target(account_id)
                target = targets[account_id]
                if target is None:  # due again at once when a workspace binds or a channel is set
                    self._reschedule(group, 60.0, "no Slack workspace or channel for the account")
                    stats.rescheduled += len(group)
                    continue
                team_id, channel, tz = target
                waiting = self._waiting(channel)
                if waiting is not None:
                    self._reschedule(group, *waiting)
                    stats.rescheduled += len(group)
                    continue
                self._current_account = account_id
                with self.claims.claim(f"{account_id}:{topic}") as mine:
                    if not mine:  # another replica delivers this topic now: its notifications are theirs
                        stats.skipped += len(group)
                        continue
                    if self.claims.shared:  # what another replica delivered or rescheduled meanwhile is done
                        group = self._still_due(group)
                        if not group:
                            continue
                    try:
                        outcome = self._deliver_topic(team_id, channel, tz, account_id, topic, group)
                    except _Reschedule as exc:
                        self._reschedule(group, exc.seconds, exc.reason)
                        stats.rescheduled += len(group)
                        if exc.channel_wide:
                            self._pause(channel, exc.seconds, exc.reason, shared=not isinstance(exc, _NeedsAdmin))
                        continue
                    if outcome == "folded":  # marked delivered with the digest that shows them, below
                        continue
                    self._mark_delivered(group)
                stats.accounts.add(account_id)
                stats.delivered += len(group)
                if outcome == "posted":
                    stats.posted += 1
                elif outcome == "updated":
                    stats.updated += 1
            if self._folds:
                self._flush_digests(stats)
            self.delivered_total += stats.delivered
        if self.on_delivered is not None:
            try:
                self.on_delivered(stats.accounts)
            except Exception:
                log.exception("event=on_delivered_failed")
        return stats

    # ------------------------------------------------------------------------------------------ channels

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

    # ------------------------------------------------------------------------------------------ state

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

    # ------------------------------------------------------------------------------------------ topics

    def _deliver_topic(self, team_id: str, channel: str, tz: str, account_id: int, topic: str,
                       group: list[Notification]) -> str:
        if topic.startswith("record:"):
            return self._deliver_record(team_id, channel, tz, account_id, topic, group)
        if topic.startswith("connection:"):
            return self._deliver_incident(team_id, channel, tz, account_id, topic, group)
        if topic.startswith("summary:"):
            return self._deliver_summary(team_id, channel, tz, account_id, topic)
        if topic.startswith("reminder:"):
            return self._deliver_reminder(team_id, channel, tz, account_id, topic)
        log.warning("event=notification_unknown_topic topic=%s", topic)
        return "skipped"

    def render_record(self, entry: SyncLogEntry, tz: str, retrying_by: str | None = None,
                      notice: str | None = None) -> dict[str, Any]:
        """The card of a record drawn from its newest entry (also used by the handlers: Retrying…, and a refused
        click's ``notice`` shown where the person clicked). What the card needs beyond the entry is read here:
        the attempt count, what the error was and since when (a resolved card keeps it), and whether the
        connection waits (for Reconnect, a rate-limit pause, the subscription), so the card says so and offers
        Reconnect instead of fixes that cannot run."""
        with self.sessions() as session:
            attempts = session.scalar(select(func.max(SyncLogEntry.attempt)).where(
                SyncLogEntry.connection_id == entry.connection_id, SyncLogEntry.entity == entry.entity,
                SyncLogEntry.record_id == entry.record_id)) or entry.attempt
            was_kind, first_error_at = self._error_run(session, entry)
            conn = session.get(Connection, entry.connection_id) if entry.connection_id else None
            waiting, until = connection_waiting(conn, self.clock())
            related = self._related_card(session, entry) if entry.is_open else None
        url = self.reconnect_url(entry.connection_id) if self.reconnect_url and entry.connection_id else None
        found = existing_label(entry) if retrying_by is None and waiting is None else None
        return blocks.error_message(entry, tz=tz, reconnect_url=url, retrying_by=retrying_by, attempts=attempts,
                                    found_existing=found, waiting=waiting, waiting_until=until, notice=notice,
                                    was_kind=was_kind, first_error_at=first_error_at, related=related)

    def _related_card(self, session: Session, entry: SyncLogEntry) -> tuple[str, str | None] | None:
        """For a record that waits on another (``data["depends_on"]``, e.g. a payment whose invoice was deleted):
        that record's name and the permalink of its card (chat.getPermalink,
        https://docs.slack.dev/reference/methods/chat.getPermalink), or None when it waits on nothing. The link is
        None when that record has no card in Slack, or Slack did not give it now."""
        depends = (entry.data or {}).get("depends_on")
        if not isinstance(depends, dict) or not depends.get("entity"):
            return None
        name = blocks.record_name(str(depends["entity"]), str(depends.get("label") or ""), depends.get("record_id"))
        topic = f"record:{entry.connection_id}:{depends['entity']}:{depends.get('record_id')}"
        row = session.scalars(select(SlackMessage).where(SlackMessage.account_id == entry.account_id,
                                                         SlackMessage.topic == topic,
                                                         SlackMessage.ts.is_not(None))).first()
        ws = session.scalars(select(Workspace).where(Workspace.account_id == entry.account_id)).first()
        if row is None or ws is None:
            return name, None
        try:
            answer = self.client_for(ws.team_id).chat_getPermalink(channel=row.channel_id, message_ts=row.ts)
            return name, str(answer.get("permalink") or "") or None
        except (SlackApiError, OSError) as exc:
            log.info("event=permalink_failed topic=%s error=%s", topic, type(exc).__name__)
            return name, None

    @staticmethod
    def _error_run(session: Session, entry: SyncLogEntry) -> tuple[str | None, dt.datetime | None]:
        """What the record's latest run of errors was (the kind of its newest error) and when it began (its
        first error after the last time the record synced), read from the record's last 50 attempts."""
        recent = list(session.scalars(select(SyncLogEntry).where(
            SyncLogEntry.connection_id == entry.connection_id, SyncLogEntry.entity == entry.entity,
            SyncLogEntry.record_id == entry.record_id, SyncLogEntry.id <= entry.id,
            SyncLogEntry.status != Status.PENDING).order_by(SyncLogEntry.id.desc()).limit(50)))
        was: str | None = None
        first: dt.datetime | None = None
        for index, row in enumerate(recent):
            if row.status in (Status.ERROR, Status.WARNING):
                was = was or row.kind
                first = row.created_at
            elif index > 0 or row.status == Status.INFO:
                break
        return was, first

    def _newest_entry(self, session: Session, topic: str) -> SyncLogEntry | None:
        _, connection_id, entity, record_id = topic.split(":", 3)
        return session.scalars(select(SyncLogEntry).where(
            SyncLogEntry.connection_id == int(connection_id), SyncLogEntry.entity == entity,
            SyncLogEntry.record_id == int(record_id), SyncLogEntry.status != Status.PENDING)
            .order_by(SyncLogEntry.id.desc()).limit(1)).first()

    def _deliver_record(self, team_id: str, channel: str, tz: str, account_id: int, topic: str,
                        group: list[Notification]) -> str:
        with self.sessions() as session:
            entry = self._newest_entry(session, topic)
            existing = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                                  SlackMessage.topic == topic)).first()
            if entry is not None:
                session.expunge(entry)
        if entry is None:
            return "skipped"
        client = self.client_for(team_id)
        if existing is not None and existing.ts:
            where, ts = self._update(client, existing, self.render_record(entry, tz), channel)
            for attempt in self._attempts_to_note(group, entry):
                self._thread_note(client, account_id, where, ts, attempt)
            return "updated"
        fine = entry.status not in (Status.ERROR, Status.WARNING) or entry.resolved_at is not None
        if fine and existing is None:
            return "skipped"  # it was never shown as an error and is fine now: nothing to say
        if not fine and existing is None and self._flooding(account_id):
            # folded only when no post of its own was ever tried (a claimed row may already be in the channel)
            fold = self._folds.setdefault(account_id, _Fold(team_id, channel, tz, entry.connection_id))
            fold.add(topic, entry.created_at, group)
            return "folded"
        # an earlier attempt claimed it: its post is looked for first (a fine record only updates one found)
        shown = self._post(client, account_id, topic, channel, self.render_record(entry, tz), only_if_found=fine)
        return "posted" if shown else "skipped"

    def _deliver_incident(self, team_id: str, channel: str, tz: str, account_id: int, topic: str,
                          group: list[Notification]) -> str:
        connection_id = int(topic.split(":", 1)[1])
        with self.sessions() as session:
            newest = session.scalar(select(Incident.id).where(Incident.connection_id == connection_id)
                                    .order_by(Incident.id.desc()).limit(1))
        # each incident the notifications name is drawn (one that another kind replaced says "Ended"), then the
        # newest, which is the connection's current state
        named = sorted({n.incident_id for n in group if n.incident_id is not None and n.incident_id != newest})
        outcomes = [self._deliver_one_incident(team_id, channel, tz, account_id, topic, connection_id, incident_id)
                    for incident_id in [*named, newest] if incident_id is not None]
        return next((o for o in ("posted", "updated") if o in outcomes), "skipped")

    def _deliver_one_incident(self, team_id: str, channel: str, tz: str, account_id: int, topic: str,
                              connection_id: int, incident_id: int) -> str:
        drawn = self.render_incident(connection_id, incident_id, tz)
        if drawn is None:
            return "skipped"
        incident, message = drawn
        incident_topic = f"{topic}:incident:{incident.id}"
        with self.sessions() as session:
            existing = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                                  SlackMessage.topic == incident_topic)).first()
            session.expunge_all()
        client = self.client_for(team_id)
        if existing is not None and existing.ts:
            self._update(client, existing, message, channel)
            self._redraw_cards(client, account_id, connection_id, tz, incident_topic, incident.resolved_at is None)
            return "updated"
        if incident.resolved_at is not None and existing is None:
            self._redraw_cards(client, account_id, connection_id, tz, incident_topic, False)
            return "skipped"
        shown = self._post(client, account_id, incident_topic, channel, message,
                           only_if_found=incident.resolved_at is not None)
        self._redraw_cards(client, account_id, connection_id, tz, incident_topic, incident.resolved_at is None)
        return "posted" if shown else "skipped"

    def render_incident(self, connection_id: int, incident_id: int, tz: str,
                        notice: str | None = None) -> tuple[Incident, dict[str, Any]] | None:
        """The incident's message as it stands (``bot.blocks.incident_message``), with the count of records
        waiting on it and ``notice`` (a refused click's line); None when the incident or connection is gone."""
        with self.sessions() as session:
            incident = session.get(Incident, incident_id)
            conn = session.get(Connection, connection_id)
            if incident is None or conn is None or incident.connection_id != connection_id:
                return None
            # every record with an open error on the connection waits on it (its card says so, and offers the
            # connection's fix instead of its own), whatever its own kind
            records = select(SyncLogEntry.entity, SyncLogEntry.record_id).where(
                SyncLogEntry.connection_id == connection_id, open_clause(),
                SyncLogEntry.record_id.is_not(None)).distinct().subquery()
            waiting = session.scalar(select(func.count()).select_from(records)) or 0
            session.expunge_all()
        url = self.reconnect_url(connection_id) if self.reconnect_url else None
        return incident, blocks.incident_message(incident, conn, int(waiting), tz=tz, reconnect_url=url,
                                                 notice=notice)

    #: At most this many record cards are redrawn when their connection starts or stops waiting (the newest).
    REDRAW_CARDS_MAX = 50

    def _redraw_cards(self, client: WebClient, account_id: int, connection_id: int, tz: str, incident_topic: str,
                      waiting: bool) -> None:
        """The open record cards of a connection drawn again when it starts waiting (they say "Waiting for
        Reconnect" and offer Reconnect) and when it works again (their own fixes come back). Once per change:
        the incident's row remembers which state the cards were drawn for. When Slack makes a card wait (a rate
        limit), the incident's notifications are rescheduled and the cards drawn again at the next pass."""
        want = "waiting" if waiting else "working"
        with self.sessions() as session:
            marker = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                                SlackMessage.topic == incident_topic)).first()
            drawn = ((marker.state or {}).get("cards") if marker is not None else None)
            if marker is None and waiting:
                return  # the incident's message is not in the channel yet: its cards wait for it
            if drawn == want:
                return
            rows = list(session.scalars(select(SlackMessage).where(
                SlackMessage.account_id == account_id, SlackMessage.topic.like(f"record:{connection_id}:%"),
                SlackMessage.ts.is_not(None)).order_by(SlackMessage.id.desc()).limit(self.REDRAW_CARDS_MAX)))
            session.expunge_all()
        for row in rows:
            with self.sessions() as session:
                entry = self._newest_entry(session, row.topic)
                if entry is None or not entry.is_open:
                    continue
                session.expunge(entry)
            try:
                self._update(client, row, self.render_record(entry, tz))
            except _Reschedule as exc:
                log.info("event=card_redraw_delayed topic=%s reason=%s", row.topic, exc.reason)
                raise  # the incident's notifications wait and the cards are drawn again at the next pass
        if marker is not None:
            with self.sessions() as session, session.begin():
                fresh = session.get(SlackMessage, marker.id)
                if fresh is not None:
                    fresh.state = {**(fresh.state or {}), "cards": want}

    # ------------------------------------------------------------------------------------------ scheduled

    def _posted(self, account_id: int, topic: str) -> bool:
        with self.sessions() as session:
            return session.scalar(select(SlackMessage.id).where(
                SlackMessage.account_id == account_id, SlackMessage.topic == topic,
                SlackMessage.ts.is_not(None))) is not None

    def _deliver_summary(self, team_id: str, channel: str, tz: str, account_id: int, topic: str) -> str:
        """The weekly summary queued by the scheduler (`bot.scheduler`): the week before its scheduled moment,
        drawn when delivered, posted once."""
        if self._posted(account_id, topic):
            return "skipped"
        with self.sessions() as session:
            send = session.get(ScheduledSend, int(topic.split(":", 1)[1]))
            account = session.get(Account, account_id)
            if send is None or account is None:
                return "skipped"
            summary = weekly_summary(session, account_id, until=send.due_at)
            connection_id = session.scalar(select(Connection.id).where(Connection.account_id == account_id)
                                           .order_by(Connection.id).limit(1))
            name = account.name
        message = blocks.weekly_summary_message(summary, tz=tz, account_name=name, connection_id=connection_id,
                                                now=self.clock())
        self._post(self.client_for(team_id), account_id, topic, channel, message)
        return "posted"

    def render_reminder(self, send_id: int, tz: str, notice: str | None = None) -> tuple[int, dict[str, Any]] | None:
        """The token-expiry reminder queued as ScheduledSend ``send_id`` (``bot.blocks.expiry_reminder``), with its
        account id, drawn as it stands: the days left until the expiry it was queued for, marked a sample when it
        was sent on demand, and ``notice`` (a refused click's line); None when the reminder or its connection is
        gone. Drawing it asks QuickBooks nothing."""
        with self.sessions() as session:
            send = session.get(ScheduledSend, send_id)
            conn = session.get(Connection, send.connection_id) if send and send.connection_id else None
            if send is None or conn is None:
                return None
            account = session.get(Account, conn.account_id)
            session.expunge(conn)
            data = dict(send.data or {})
            name = account.name if account else None
        expires = dt.datetime.fromisoformat(data["expires_at"]) if data.get("expires_at") else None
        days_left = int((expires - self.clock()).total_seconds() // 86400) if expires else None
        return conn.account_id, blocks.expiry_reminder(
            conn, days_left if days_left is not None else -1, account_name=name,
            reason=str(data.get("basis") or "refresh"), sample=bool(data.get("on_demand")), tz=tz, notice=notice)

    def _deliver_reminder(self, team_id: str, channel: str, tz: str, account_id: int, topic: str) -> str:
        """A token-expiry reminder queued by the scheduler: once in the channel, and once as a DM to each of the
        account's admins (the admin list and whoever set syncbot up). A DM that Slack refuses is logged and not
        retried: the channel message is the reminder of record."""
        send_id = int(topic.split(":", 1)[1])
        drawn = self.render_reminder(send_id, tz)
        if drawn is None or drawn[0] != account_id:
            return "skipped"
        message = drawn[1]
        with self.sessions() as session:
            ws = session.scalars(select(Workspace).where(Workspace.account_id == account_id)).first()
            users = [u for u in [*(ws.admin_user_ids or []), ws.installer_user_id] if u] if ws else []
        client = self.client_for(team_id)
        outcome = "skipped"
        if not self._posted(account_id, topic):
            self._post(client, account_id, topic, channel, message)
            outcome = "posted"
        for user_id in dict.fromkeys(users):
            dm_topic = f"{topic}:dm:{user_id}"
            if self._posted(account_id, dm_topic):
                continue
            try:
                dm = self._call(client.conversations_open, users=user_id)
                self._post(client, account_id, dm_topic, str(dm["channel"]["id"]), message)
            except _Reschedule as exc:
                log.warning("event=reminder_dm_failed user_id=%s reason=%s", user_id, exc.reason)
        return outcome

    # ------------------------------------------------------------------------------------------ flood

    def _flooding(self, account_id: int) -> bool:
        """More than ``flood_threshold`` record messages posted within ``flood_window`` seconds. Once true in a
        pass it stays true for the rest of the pass (a pass lasts seconds; the window is minutes)."""
        if account_id in self._flooding_now:
            return True
        since = self.clock() - dt.timedelta(seconds=self.flood_window)
        with self.sessions() as session:
            recent = session.scalar(select(func.count()).select_from(SlackMessage).where(
                SlackMessage.account_id == account_id, SlackMessage.topic.like("record:%"),
                SlackMessage.posted_at >= since)) or 0
        if recent >= self.flood_threshold:
            self._flooding_now.add(account_id)
            return True
        return False

    def _digest_topic(self, account_id: int) -> tuple[str, dt.datetime]:
        """The account's current digest (its topic and when it began): the latest one while errors kept folding
        into it within ``flood_window`` seconds, else a new one starting now. A flood that goes on for an hour is
        one digest message, whatever the clock says."""
        now = self.clock()
        with self.sessions() as session:
            row = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                             SlackMessage.topic.like("digest:%"))
                                  .order_by(SlackMessage.id.desc()).limit(1)).first()
            state = (row.state or {}) if row is not None else {}
        try:
            last = dt.datetime.fromisoformat(state["last"])
            since = dt.datetime.fromisoformat(state["since"])
        except (KeyError, TypeError, ValueError):
            last = since = None
        if row is not None and last is not None and since is not None and \
                (now - last).total_seconds() < self.flood_window:
            return row.topic, since
        return f"digest:{int(now.timestamp() * 1000)}", now

    def _digest_counts(self, account_id: int, topics: Iterable[str]) -> dict[str, int]:
        """What a digest shows: of the records folded into it (``topics``), those still open, by the kind of their
        newest entry (a record retried during the flood counts once; one fixed meanwhile drops out; one that has
        a message of its own in the channel since is counted there, not here)."""
        wanted = set(topics)
        with self.sessions() as session:
            own = set(session.scalars(select(SlackMessage.topic).where(
                SlackMessage.account_id == account_id, SlackMessage.topic.like("record:%"),
                SlackMessage.ts.is_not(None))))
            rows = session.execute(select(SyncLogEntry.id, SyncLogEntry.connection_id, SyncLogEntry.entity,
                                          SyncLogEntry.record_id, SyncLogEntry.kind).where(
                SyncLogEntry.account_id == account_id, open_clause(),  # sync.log's one definition of open
                SyncLogEntry.record_id.is_not(None)).order_by(SyncLogEntry.id)).all()
        newest: dict[str, str] = {}
        for _id, connection_id, entity, record_id, kind in rows:
            topic = f"record:{connection_id}:{entity}:{record_id}"
            if topic in wanted and topic not in own:
                newest[topic] = str(kind or "unknown")
        counts: dict[str, int] = {}
        for kind in newest.values():
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def _flush_digests(self, stats: DeliveryStats) -> None:
        """Post or update each account's digest once, after a pass folded records into it; then, in one
        transaction, store the records it stands for and mark their notifications delivered. A digest Slack did
        not take leaves them due: they fold again at the next pass. Never marked without being shown."""
        folds, self._folds = self._folds, {}
        for account_id, fold in folds.items():
            self._current_account = account_id
            with self.claims.claim(f"{account_id}:digest") as mine:
                if mine:
                    self._flush_digest(account_id, fold, stats)
                else:  # another replica is updating this account's digest: these fold again next pass
                    stats.skipped += len(fold.notifications)

    def _flush_digest(self, account_id: int, fold: _Fold, stats: DeliveryStats) -> None:
        """Post or update one account's digest for ``fold`` (see :meth:`_flush_digests`)."""
        waiting = self._waiting(fold.channel)
        if waiting is not None:
            self._reschedule(fold.notifications, *waiting)
            stats.rescheduled += len(fold.notifications)
            return
        topic, since = self._digest_topic(account_id)
        with self.sessions() as session:
            row = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                             SlackMessage.topic == topic)).first()
            if row is not None:
                session.expunge(row)
        state = dict(row.state or {}) if row is not None else {}
        topics = sorted(set(state.get("topics") or []) | fold.topics)
        if fold.earliest is not None:  # the digest counts from its earliest error
            since = min(since, fold.earliest)
        now = self.clock()
        new_state = {**state, "since": since.isoformat(), "last": now.isoformat(), "topics": topics}
        counts = self._digest_counts(account_id, topics)
        message = blocks.digest_message(counts, sum(counts.values()), since, tz=fold.tz,
                                        connection_id=fold.connection_id)
        client = self.client_for(fold.team_id)
        try:
            if row is not None and row.ts:
                self._update(client, row, message, fold.channel)
            else:
                self._post(client, account_id, topic, fold.channel, message, state=new_state)
        except _Reschedule as exc:
            self._reschedule(fold.notifications, exc.seconds, exc.reason)
            stats.rescheduled += len(fold.notifications)
            if exc.channel_wide:
                self._pause(fold.channel, exc.seconds, exc.reason, shared=not isinstance(exc, _NeedsAdmin))
            log.info("event=digest_delayed account_id=%s reason=%s", account_id, exc.reason)
            return
        with self.sessions() as session, session.begin():
            msg = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                             SlackMessage.topic == topic)).first()
            if msg is not None:
                msg.state = new_state
            self._mark_delivered_in(session, fold.notifications, now)
        stats.delivered += len(fold.notifications)
        stats.accounts.add(account_id)

    # ------------------------------------------------------------------------------------------ Slack calls

    def _check_pace(self, channel: str) -> None:
        """Take the channel's turn to post, for every replica (about one post a second per channel, and no post
        while the channel is paused): a post due sooner is rescheduled, never slept for."""
        if self.post_interval > 0:
            wait = self.pace.take(channel, self.post_interval)
            if wait is not None:  # the channel's other topics wait too, unprepared, for the rest of this pass
                self._paused[channel] = (time.monotonic() + wait[0], wait[1])
                raise _Reschedule(*wait)

    def _claim(self, account_id: int, topic: str, channel: str,
               state: dict[str, Any] | None) -> tuple[int, dt.datetime | None, str, bool, str | None]:
        """The topic's row, claimed (created) now if there is none: (row id, when claimed, its channel, whether an
        earlier attempt may have posted it, a ts that was its message and is gone)."""
        with self.sessions() as session, session.begin():
            row = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                             SlackMessage.topic == topic)).first()
            earlier = row is not None and not row.ts
            if row is None:
                row = SlackMessage(account_id=account_id, topic=topic, channel_id=channel, claimed_at=self.clock(),
                                   state=state)
                session.add(row)
                try:
                    session.flush()
                except IntegrityError:
                    raise _Reschedule(1.0, "another worker claimed the post") from None
            elif state is not None:
                row.state = {**(row.state or {}), **state}
            gone = (row.state or {}).get("gone_ts")
            return row.id, row.claimed_at, row.channel_id, earlier, str(gone) if gone else None

    def _post(self, client: WebClient, account_id: int, topic: str, channel: str, message: dict[str, Any], *,
              thread_ts: str | None = None, state: dict[str, Any] | None = None,
              only_if_found: bool = False) -> bool:
        """Claim the topic's row, post with metadata naming the topic, store the ts. When the row was claimed
        before and has no ts (an earlier attempt's outcome is unknown), look for that post first: found, it is
        adopted and updated to ``message`` (a thread line is left as it is), and nothing is posted. With
        ``only_if_found`` nothing new is posted (what it would say needs no new message); the claim is dropped.
        Returns whether a message shows the topic now. Raises _Reschedule on a Slack failure."""
        self._check_pace(channel)
        row_id, claimed_at, row_channel, earlier, gone_ts = self._claim(account_id, topic, channel, state)
        if earlier:
            found = self._find_post(client, account_id, topic, row_channel, claimed_at, thread_ts, gone_ts)
            if found is not None:
                if thread_ts is None:
                    self._call(client.chat_update, channel=row_channel, ts=found,
                               metadata=self._metadata(account_id, topic), **message)
                self._store_post(row_id, account_id, row_channel, found)
                log.info("event=slack_post_found account_id=%s topic=%s ts=%s: adopted, not posted again",
                         account_id, topic, found)
                return True
            if only_if_found:
                self._release(row_id)
                return False
        try:
            self._post_claimed(client, row_id, account_id, topic, channel, message, thread_ts)
        except _Uncertain:
            raise  # the claim stays: next time the post is looked for first
        except _Reschedule:
            self._release(row_id)  # Slack said no: nothing was posted, the topic is as if never tried
            raise
        return True

    def _release(self, row_id: int) -> None:
        """Drop a claim whose post is known not to exist."""
        with self.sessions() as session, session.begin():
            row = session.get(SlackMessage, row_id)
            if row is not None and not row.ts:
                session.delete(row)

    def _post_claimed(self, client: WebClient, row_id: int, account_id: int, topic: str, channel: str,
                      message: dict[str, Any], thread_ts: str | None = None) -> tuple[str, str]:
        """Post the claimed row's message (with its metadata) and store where it went: (channel, ts)."""
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        answer = self._call(client.chat_postMessage, channel=channel, metadata=self._metadata(account_id, topic),
                            **extra, **message)
        where, ts = str(answer.get("channel") or channel), str(answer["ts"])
        self._store_post(row_id, account_id, where, ts)
        log.info("event=slack_posted account_id=%s topic=%s channel=%s", account_id, topic, where)
        return where, ts

    def _store_post(self, row_id: int, account_id: int, channel: str, ts: str) -> None:
        with self.sessions() as session, session.begin():
            row = session.get(SlackMessage, row_id)
            assert row is not None
            row.channel_id = channel
            row.ts = ts
            row.posted_at = row.updated_at = self.clock()
            if row.state and "gone_ts" in row.state:
                row.state = {k: v for k, v in row.state.items() if k != "gone_ts"}
            ws = session.scalars(select(Workspace).where(Workspace.account_id == account_id)).first()
            if ws is not None and ws.channel_problem:
                ws.channel_problem = None

    @staticmethod
    def _metadata(account_id: int, topic: str) -> dict[str, Any]:
        """The message metadata naming a post's topic (https://docs.slack.dev/messaging/message-metadata), sent with
        every post and every update (so an update never leaves a message without it)."""
        return {"event_type": METADATA_EVENT, "event_payload": {"account_id": account_id, "topic": topic}}

    def _find_post(self, client: WebClient, account_id: int, topic: str, channel: str,
                   claimed_at: dt.datetime | None, thread_ts: str | None, gone_ts: str | None) -> str | None:
        """The ts of the message the notifier posted for ``topic`` in ``channel`` (in ``thread_ts``'s thread for
        a thread line), found by its metadata with conversations.history / conversations.replies and
        ``include_all_metadata``; None when Slack shows none. Without the history scope (an app not reinstalled
        since syncbot asked for it) the admins are told and None is returned: the post is made."""
        oldest = claimed_at.timestamp() - FIND_MARGIN_SECONDS if claimed_at is not None else 0.0
        cursor = ""
        for _ in range(FIND_PAGES):
            try:
                if thread_ts:
                    page = self._call(client.conversations_replies, channel=channel, ts=thread_ts,
                                      include_all_metadata=True, limit=200, cursor=cursor or None)
                else:
                    page = self._call(client.conversations_history, channel=channel, oldest=f"{max(oldest, 0):.6f}",
                                      include_all_metadata=True, limit=200, cursor=cursor or None)
            except _NeedsAdmin as exc:
                if exc.error != "missing_scope":
                    raise
                log.warning("event=slack_post_not_looked_for topic=%s needed=%s: posting", topic, exc.needed)
                return None
            except _GoneMessage:  # the thread's parent is gone: its lines with it
                return None
            for msg in page.get("messages") or []:
                meta = msg.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == METADATA_EVENT and payload.get("topic") == topic \
                        and str(payload.get("account_id")) == str(account_id) and msg.get("ts") != gone_ts:
                    return str(msg["ts"])
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return None
        log.warning("event=slack_post_search_gave_up topic=%s pages=%d: posting", topic, FIND_PAGES)
        return None

    def _update(self, client: WebClient, row: SlackMessage, message: dict[str, Any],
                channel: str | None = None) -> tuple[str, str]:
        """Update the stored message in place; when it is gone, post it afresh (in its channel, or in the account's
        ``channel`` when its own channel can no longer be used) and store the new ts. Returns (channel, ts) of the
        message as it now is. Raises _Reschedule on a Slack failure."""
        assert row.ts is not None
        moved_from: str | None = None
        try:
            self._call(client.chat_update, channel=row.channel_id, ts=row.ts, mark_broken=False,
                       metadata=self._metadata(row.account_id, row.topic), **message)
        except _GoneMessage:
            target = row.channel_id
        except _ChannelUnusable as exc:
            if not channel or channel == row.channel_id:
                self._tell_admins(describe(exc.error, "chat.update", exc.channel, exc.needed))
                raise
            target, moved_from = channel, row.channel_id  # its old channel is gone: the account's channel now
        else:
            with self.sessions() as session, session.begin():
                fresh = session.get(SlackMessage, row.id)
                if fresh is not None:
                    fresh.updated_at = self.clock()
            return row.channel_id, row.ts
        log.info("event=slack_message_gone topic=%s ts=%s moved_from=%s: posting afresh", row.topic, row.ts,
                 moved_from or "-")
        self._check_pace(target)
        with self.sessions() as session, session.begin():  # a claim again: a lost answer is looked for next time
            fresh = session.get(SlackMessage, row.id)
            assert fresh is not None
            fresh.state = {**(fresh.state or {}), "gone_ts": row.ts}
            fresh.ts, fresh.channel_id, fresh.claimed_at = None, target, self.clock()
        return self._post_claimed(client, row.id, row.account_id, row.topic, target, message)

    def _attempts_to_note(self, group: list[Notification], newest: SyncLogEntry) -> list[SyncLogEntry]:
        """The attempts that get a line in the record's thread: the entry of each ``error`` notification of the
        group, in order (attempts that came between two passes each keep their line), and for a ``resolved``
        one the record's newest entry (what resolved it)."""
        ids = [n.entry_id for n in sorted(group, key=lambda n: n.id) if n.event == "error" and n.entry_id]
        with self.sessions() as session:
            found = {e.id: e for e in session.scalars(select(SyncLogEntry).where(
                SyncLogEntry.id.in_(ids), SyncLogEntry.status != Status.PENDING))} if ids else {}
            session.expunge_all()
        attempts = [found[i] for i in dict.fromkeys(ids) if i in found]
        if any(n.event == "resolved" for n in group) and newest.id not in found:
            attempts.append(newest)
        return attempts

    def _thread_note(self, client: WebClient, account_id: int, channel: str, ts: str, entry: SyncLogEntry) -> None:
        """One line per attempt in the message's thread (`bot.blocks.attempt_note`: a failure's raw details, codes and
        intuit_tid, which the card leaves off its face), delivered like any notification: its own claimed topic
        (``note:<entry id>``), found again if its answer was lost, and a refusal reschedules the record's
        notifications (the parent's update is done again, harmlessly, with it)."""
        note_topic = f"note:{entry.id}"
        if self._posted(account_id, note_topic):
            return
        self._post(client, account_id, note_topic, channel, blocks.attempt_note(entry), thread_ts=ts)

    def _spend(self, channel: str, started: float) -> None:
        if channel:
            self._spent[channel] = self._spent.get(channel, 0.0) + (time.monotonic() - started)

    def _call(self, method: Callable[..., Any], *, mark_broken: bool = True, shortened: int = 0,
              **kwargs: Any) -> Any:
        """One Slack call, its refusal handled by class (`bot.slack_errors`): WAIT and UNAVAILABLE reschedule
        (the channel pauses; UNAVAILABLE and no answer at all are _Uncertain), GONE is _GoneMessage, ADMIN tells the
        admins once and reschedules (_NeedsAdmin; a channel refusal with ``mark_broken=False`` is raised as
        _ChannelUnusable for the caller to decide), SHORTEN sends the short form and then the plain text, FAIL
        is logged as an error and waits 10 minutes. The time Slack took counts against the channel's share."""
        name = getattr(method, "__name__", "?")
        channel = str(kwargs.get("channel") or "")
        started = time.monotonic()
        try:
            answer = method(**{k: v for k, v in kwargs.items() if v is not None})
        except SlackApiError as exc:
            self._spend(channel, started)
            return self._refused(method, exc, mark_broken, shortened, kwargs)
        except OSError as exc:  # a timeout or a dropped connection: Slack may have done it
            self._spend(channel, started)
            raise _Uncertain(30.0, f"no answer from Slack to {name}: {exc.__class__.__name__}",
                             channel_wide=True) from None
        self._spend(channel, started)
        warnings = list((answer.get("response_metadata") or {}).get("warnings") or [])
        if answer.get("warning") or warnings:
            log.warning("event=slack_warning method=%s warning=%s warnings=%s", name, answer.get("warning"),
                        ",".join(warnings))
        return answer

    def _refused(self, method: Callable[..., Any], exc: SlackApiError, mark_broken: bool, shortened: int,
                 kwargs: dict[str, Any]) -> Any:
        name = getattr(method, "__name__", "?")
        slack_method = name.replace("_", ".", 1)
        channel = str(kwargs.get("channel") or "")
        error = str(exc.response.get("error") or "")
        status = exc.response.status_code
        refusal = classify(error, status)
        if refusal is Refusal.WAIT:
            raise _Reschedule(_retry_after_seconds(exc.response.headers.get("Retry-After")),
                              f"rate limited by Slack ({error or status})", channel_wide=True) from None
        if refusal is Refusal.GONE:
            raise _GoneMessage(error) from None
        if refusal is Refusal.ADMIN:
            needed = exc.response.get("needed")
            needed = str(needed) if needed else None
            if error in CHANNEL_ERRORS and not mark_broken:
                raise _ChannelUnusable(channel, error, needed) from None
            self._tell_admins(describe(error, slack_method, channel if error in CHANNEL_ERRORS else None, needed))
            raise _NeedsAdmin(channel, error, needed) from None
        if refusal is Refusal.SHORTEN and name in ("chat_postMessage", "chat_update") and shortened < 2:
            log.error("event=%s method=%s error=%s errors=%s", "slack_invalid_blocks" if error.startswith("invalid_")
                      else "slack_message_too_long", slack_method, error, exc.response.get("errors"))
            content = {k: kwargs[k] for k in ("text", "blocks") if k in kwargs}
            if shortened == 0 and content.get("blocks"):
                smaller = blocks.short_form(content)  # the headline and the buttons that act
            else:  # the plain text alone; an update clears the old blocks so no outdated state stays shown
                smaller = {"text": blocks.truncate(str(content.get("text") or "syncbot"), 1000)}
                if name == "chat_update":
                    smaller["blocks"] = []
                shortened = 1
            rest = {k: v for k, v in kwargs.items() if k not in ("text", "blocks")}
            return self._call(method, mark_broken=mark_broken, shortened=shortened + 1, **rest, **smaller)
        if refusal is Refusal.UNAVAILABLE:
            raise _Uncertain(30.0, f"Slack error {status} {error}", channel_wide=True) from None
        log.error("event=slack_call_refused method=%s error=%s status=%s class=%s", slack_method, error, status,
                  refusal.value)
        raise _Reschedule(600.0, f"Slack refused {slack_method}: {error or status}") from None

    def report_problem(self, team: str, problem: Problem) -> None:
        """`bot.slack_errors.Problems.on_new`: a call anywhere (the request path too) met a refusal only an admin
        can fix. The admins are told at the next pass, on the notifier's thread (never on a request's). A channel
        refused on the request path is that request's business (the notifier tells about its own channel)."""
        if problem.key[0] == "channel":
            return
        with self._lock_problems:
            self._problems_due.append((team, problem.text))
        self.wake()

    def _tell_admins(self, problem: str) -> None:
        """Store the problem on the workspace of the account being delivered (shown by /sync-log status and the
        App Home) and DM the person who set it up and the admin list, once per problem, saying what to do. The
        entries and the notifications stay; delivery resumes when it is fixed."""
        self._tell_admins_of(select(Workspace).where(Workspace.account_id == self._current_account), problem)

    def _tell_admins_of(self, query: Any, problem: str) -> None:
        told: list[tuple[str, list[str]]] = []
        with self.sessions() as session, session.begin():
            for ws in session.scalars(query):
                if ws.channel_problem == problem:
                    continue
                ws.channel_problem = problem
                told.append((ws.team_id, [u for u in [ws.installer_user_id, *(ws.admin_user_ids or [])] if u]))
        if told:
            log.warning("event=slack_needs_admin_told problem=%s", problem)
        notice = blocks.admin_problem_notice(problem)
        for team_id, user_ids in told:
            client = self.client_for(team_id)
            for user_id in dict.fromkeys(user_ids):
                try:
                    dm = client.conversations_open(users=user_id)
                    client.chat_postMessage(channel=dm["channel"]["id"], **notice)
                except SlackApiError as exc:
                    log.warning("event=admin_problem_dm_failed user_id=%s error=%s", user_id,
                                exc.response.get("error"))
                except OSError as exc:
                    log.warning("event=admin_problem_dm_failed user_id=%s error=%s", user_id, type(exc).__name__)

    def _tell_reported(self) -> None:
        """Tell the admins of the problems the Slack clients reported since the last pass."""
        with self._lock_problems:
            due, self._problems_due = self._problems_due, []
        for team, text in dict.fromkeys(due):
            query = select(Workspace) if team == "*" else select(Workspace).where(Workspace.team_id == team)
            try:
                self._tell_admins_of(query, text)
            except Exception:
                log.exception("event=admin_problem_report_failed team=%s", team)


class _GoneMessage(Exception):
    pass


@dataclass
class _Fold:
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
