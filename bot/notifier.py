"""Delivers the outbox (`sync.models.Notification`) to Slack: post, update in place, fold floods, respect limits.

- One message per record topic: the first error posts it; every later notification of the record updates the
  same message (chat.update on the stored channel and `ts`), and each new attempt adds a line in its thread.
  The message is drawn from the record's newest entry every time (`bot.blocks.error_message`).
- One message per connection incident (auth_expired, rate_limited, subscription), with the count of records
  waiting on it; it turns to Reconnected / Resumed when the incident closes.
- Flood control: when more than ``flood_threshold`` record messages were posted for an account within
  ``flood_window`` seconds, new record errors fold into one digest message updated in place.
- Limits (https://docs.slack.dev/apis/web-api/rate-limits): about one chat.postMessage per second per channel;
  HTTP 429 with Retry-After reschedules (nothing is posted twice: a 429 means nothing was posted); 5xx and
  connection errors back off. A notification is marked delivered only after Slack accepted it, so a crash or an
  outage delays messages and never loses them.
- `not_in_channel` / `channel_not_found` / `is_archived` (and `is_inactive`, chat.update's word for an archived
  channel): the entries stay, the notifications wait, and the account's admins get one DM asking to invite
  @syncbot (or to pick a channel with `/sync-log channel #name`). A message in a channel that is no longer the
  account's (another one was picked since) and cannot be updated there any more is posted afresh in the
  account's channel.
- `message_not_found` / `cant_update_message`: a fresh message is posted and its new `ts` stored; the attempt's
  thread line goes under the fresh message.
- `invalid_blocks`: the plain-text fallback goes out once; an update then clears the old blocks (`blocks: []`),
  so a message never shows an outdated state (an error's buttons under a "Synced" text).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import String, cast, exists, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot import blocks
from bot.lease import Lease
from bot.models import ScheduledSend, SlackMessage, Workspace
from sync.engine import CONNECTION_KINDS
from sync.log import weekly_summary
from sync.models import Account, Connection, Incident, Notification, Status, SyncLogEntry, utcnow

log = logging.getLogger("syncbot.notifier")

TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout",
                              "ratelimited"})
CHANNEL_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived", "is_inactive"})
GONE_MESSAGE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


class _Reschedule(Exception):
    def __init__(self, seconds: float, reason: str, channel_wide: bool = False) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason
        self.channel_wide = channel_wide


class _ChannelUnusable(_Reschedule):
    """Slack refused a channel (CHANNEL_ERRORS); raised by ``_call(..., mark_broken=False)``."""

    def __init__(self, channel: str, error: str) -> None:
        super().__init__(300.0, f"cannot post to the channel: {error}", channel_wide=True)
        self.channel = channel
        self.error = error


@dataclass
class DeliveryStats:
    """What one pass did."""

    delivered: int = 0
    posted: int = 0
    updated: int = 0
    rescheduled: int = 0
    accounts: set[int] = field(default_factory=set)
    #: The pass took as many notifications as it may (``limit``): more are probably due, so the loop goes on
    #: at once instead of waiting for its interval.
    full: bool = False


def _retry_after_seconds(value: Any, default: float = 30.0) -> float:
    """Slack's ``Retry-After`` header in seconds (Slack documents a whole number of seconds:
    https://docs.slack.dev/apis/web-api/rate-limits), kept between 1 s and an hour; ``default`` when it is
    missing or not a number."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return min(max(seconds, 1.0), 3600.0) if seconds == seconds else default  # NaN is not a number of seconds


class Notifier:
    """Delivers pending notifications. ``client_for(team_id)`` gives a workspace's WebClient (for the
    background: with slack_sdk's RateLimitErrorRetryHandler, DEPENDENCIES.md P7)."""

    def __init__(self, sessions: sessionmaker[Session], client_for: Callable[[str], WebClient],
                 default_channel: str | None = None, reconnect_url: Callable[[int], str] | None = None,
                 flood_threshold: int = 10, flood_window: float = 300.0, post_interval: float = 1.0,
                 clock: Callable[[], dt.datetime] = utcnow, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sessions = sessions
        self.client_for = client_for
        self.default_channel = default_channel
        self.reconnect_url = reconnect_url
        self.flood_threshold = flood_threshold
        self.flood_window = flood_window
        self.post_interval = post_interval
        self.clock = clock
        self.sleep = sleep
        self._last_post: dict[str, float] = {}
        self._lock = threading.Lock()  # one delivery pass at a time in this process
        self._digests_due: dict[int, tuple[str, str, str, int | None]] = {}
        #: This pass's folded notifications per account: (channel, earliest error's created_at, notifications),
        #: counted into the digest and marked delivered in one transaction at the end of the pass.
        self._folds: dict[int, tuple[str, dt.datetime | None, list[Notification]]] = {}
        self._flooding_now: set[int] = set()  # accounts found flooding in this pass (it lasts the pass)
        self._current_account: int | None = None  # the account whose topic is being delivered (one pass at a time)
        self._wake = threading.Event()
        self._lease: Lease | None = None
        #: Notifications this notifier delivered since it started (all passes).
        self.delivered_total = 0
        self._stopping: threading.Event | None = None
        #: How many notifications :meth:`run` takes per pass.
        self.pass_limit = 500
        #: For an open duplicate error: the provider's object of the same name (a label), or None; the message
        #: then offers "Link to existing" (bot.runtime sets it to the engine's ``find_existing``).
        self.find_existing: Callable[[int], str | None] | None = None
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
        """One pass over due notifications, oldest first, coalesced per topic."""
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
            by_topic: dict[tuple[int, str], list[Notification]] = {}
            for n in due:
                by_topic.setdefault((n.account_id, n.topic), []).append(n)
            blocked_channels: dict[str, float] = {}
            targets: dict[int, tuple[str, str, str] | None] = {}
            self._flooding_now.clear()
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
                if channel in blocked_channels:
                    self._reschedule(group, blocked_channels[channel], "channel paused")
                    stats.rescheduled += len(group)
                    continue
                self._current_account = account_id
                try:
                    outcome = self._deliver_topic(team_id, channel, tz, account_id, topic, group)
                except _Reschedule as exc:
                    self._reschedule(group, exc.seconds, exc.reason)
                    stats.rescheduled += len(group)
                    if exc.channel_wide:
                        blocked_channels[channel] = exc.seconds
                    continue
                if outcome != "folded":  # folded ones are marked delivered with the digest's count, below
                    self._mark_delivered(group)
                stats.accounts.add(account_id)
                stats.delivered += len(group)
                if outcome == "posted":
                    stats.posted += 1
                elif outcome == "updated":
                    stats.updated += 1
            if self._folds:
                self._commit_folds()
            if self._digests_due:
                self._flush_digests()
            self.delivered_total += stats.delivered
        if self.on_delivered is not None:
            try:
                self.on_delivered(stats.accounts)
            except Exception:
                log.exception("event=on_delivered_failed")
        return stats

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
        with self.sessions() as session, session.begin():
            for n in group:
                row = session.get(Notification, n.id)
                if row is None:
                    continue
                row.attempts += 1
                row.last_error = reason[:500]
                row.next_attempt_at = self.clock() + dt.timedelta(seconds=seconds)
        log.info("event=notification_rescheduled count=%d seconds=%.1f reason=%s", len(group), seconds, reason)

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

    def render_record(self, entry: SyncLogEntry, tz: str, retrying_by: str | None = None) -> dict[str, Any]:
        """The message of a record drawn from its newest entry (also used by the Retry handler)."""
        with self.sessions() as session:
            attempts = session.scalar(select(func.max(SyncLogEntry.attempt)).where(
                SyncLogEntry.connection_id == entry.connection_id, SyncLogEntry.entity == entry.entity,
                SyncLogEntry.record_id == entry.record_id)) or entry.attempt
        url = self.reconnect_url(entry.connection_id) if self.reconnect_url and entry.connection_id else None
        found = None
        if self.find_existing is not None and retrying_by is None and entry.kind == "duplicate" and entry.is_open:
            try:
                found = self.find_existing(entry.id)
            except Exception:  # the other fixes stand without it
                log.exception("event=find_existing_failed entry_id=%s", entry.id)
        return blocks.error_message(entry, tz=tz, reconnect_url=url, retrying_by=retrying_by, attempts=attempts,
                                    found_existing=found)

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
            events = {n.event for n in group}
            if "error" in events or "resolved" in events:
                self._thread_note(client, where, ts, entry, tz)
            return "updated"
        if entry.status not in (Status.ERROR, Status.WARNING) or entry.resolved_at is not None:
            return "skipped"  # it was never shown as an error and is fine now: nothing to say
        if self._flooding(account_id):
            folded_channel, earliest, notifications = self._folds.get(account_id, (channel, None, []))
            if entry.created_at is not None:
                earliest = entry.created_at if earliest is None else min(earliest, entry.created_at)
            self._folds[account_id] = (folded_channel, earliest, notifications + group)
            self._digests_due[account_id] = (team_id, channel, tz, entry.connection_id)
            return "folded"
        self._post(client, account_id, topic, channel, self.render_record(entry, tz))
        return "posted"

    def _deliver_incident(self, team_id: str, channel: str, tz: str, account_id: int, topic: str,
                          group: list[Notification]) -> str:
        connection_id = int(topic.split(":", 1)[1])
        with self.sessions() as session:
            incident = session.scalars(select(Incident).where(Incident.connection_id == connection_id)
                                       .order_by(Incident.id.desc()).limit(1)).first()
            conn = session.get(Connection, connection_id)
            if incident is None or conn is None:
                return "skipped"
            waiting = session.scalar(select(func.count()).select_from(SyncLogEntry).where(
                SyncLogEntry.connection_id == connection_id, SyncLogEntry.kind.in_([k.value for k in CONNECTION_KINDS]),
                SyncLogEntry.resolved_at.is_(None), SyncLogEntry.superseded_by_id.is_(None),
                SyncLogEntry.record_id.is_not(None))) or 0
            incident_topic = f"{topic}:incident:{incident.id}"
            existing = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                                  SlackMessage.topic == incident_topic)).first()
            session.expunge_all()
        url = self.reconnect_url(connection_id) if self.reconnect_url else None
        message = blocks.incident_message(incident, conn, int(waiting), tz=tz, reconnect_url=url)
        client = self.client_for(team_id)
        if existing is not None and existing.ts:
            self._update(client, existing, message, channel)
            return "updated"
        if incident.resolved_at is not None:
            return "skipped"
        self._post(client, account_id, incident_topic, channel, message)
        return "posted"

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

    def _deliver_reminder(self, team_id: str, channel: str, tz: str, account_id: int, topic: str) -> str:
        """A token-expiry reminder queued by the scheduler: once in the channel, and once as a DM to each of the
        account's admins (the admin list and whoever set syncbot up). A DM that Slack refuses is logged and not
        retried: the channel message is the reminder of record."""
        with self.sessions() as session:
            send = session.get(ScheduledSend, int(topic.split(":", 1)[1]))
            conn = session.get(Connection, send.connection_id) if send and send.connection_id else None
            ws = session.scalars(select(Workspace).where(Workspace.account_id == account_id)).first()
            account = session.get(Account, account_id)
            if send is None or conn is None:
                return "skipped"
            session.expunge(conn)
            data = dict(send.data or {})
            users = [u for u in [*(ws.admin_user_ids or []), ws.installer_user_id] if u] if ws else []
            name = account.name if account else None
        expires = dt.datetime.fromisoformat(data["expires_at"]) if data.get("expires_at") else None
        days_left = int((expires - self.clock()).total_seconds() // 86400) if expires else None
        message = blocks.expiry_reminder(conn, days_left if days_left is not None else -1, account_name=name,
                                         reason=str(data.get("basis") or "refresh"))
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

    def _commit_folds(self) -> None:
        """Count this pass's folded errors into each account's current digest (its ``since`` goes back to the
        earliest of them) and mark their notifications delivered, in one transaction per account: a crash
        before it leaves them due, so they fold again; never counted without being marked, or the reverse."""
        folds, self._folds = self._folds, {}
        for account_id, (channel, earliest, group) in folds.items():
            topic, since = self._digest_topic(account_id)
            now = self.clock()
            with self.sessions() as session, session.begin():
                msg = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                                 SlackMessage.topic == topic)).first()
                if msg is None:
                    msg = SlackMessage(account_id=account_id, topic=topic, channel_id=channel, state={})
                    session.add(msg)
                if earliest is not None:  # the digest counts from its earliest error
                    since = min(since, earliest)
                msg.state = {"since": since.isoformat(), "last": now.isoformat()}
                self._mark_delivered_in(session, group, now)

    def _digest_counts(self, account_id: int, since: dt.datetime) -> dict[str, int]:
        """What a digest shows: the account's errors still open, by kind, that arrived since the digest began
        and have no message of their own (a record retried during the flood counts once; one fixed meanwhile
        drops out)."""
        own_topic = (literal("record:") + cast(SyncLogEntry.connection_id, String) + ":" + SyncLogEntry.entity
                     + ":" + cast(SyncLogEntry.record_id, String))
        with self.sessions() as session:
            rows = session.execute(select(SyncLogEntry.kind, func.count()).where(
                SyncLogEntry.account_id == account_id, SyncLogEntry.created_at >= since,
                SyncLogEntry.status.in_((Status.ERROR, Status.WARNING)), SyncLogEntry.resolved_at.is_(None),
                SyncLogEntry.superseded_by_id.is_(None), SyncLogEntry.record_id.is_not(None),
                ~exists().where(SlackMessage.account_id == account_id, SlackMessage.topic == own_topic),
            ).group_by(SyncLogEntry.kind)).all()
        return {str(kind or "unknown"): int(n) for kind, n in rows}

    def _flush_digests(self) -> None:
        """Post or update each account's digest once, after a pass folded errors into it."""
        due, self._digests_due = self._digests_due, {}
        for account_id, (team_id, _channel, tz, connection_id) in due.items():
            self._current_account = account_id
            topic, since = self._digest_topic(account_id)
            with self.sessions() as session:
                row = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                                 SlackMessage.topic == topic)).first()
                if row is None:
                    continue
                session.expunge(row)
            counts = self._digest_counts(account_id, since)
            message = blocks.digest_message(counts, sum(counts.values()), since, tz=tz,
                                            connection_id=connection_id)
            client = self.client_for(team_id)
            try:
                if row.ts:
                    self._update(client, row, message, _channel)
                else:
                    self._post(client, account_id, topic, row.channel_id, message, existing=row)
            except _Reschedule as exc:  # the counts are stored: the next pass draws the digest again
                self._digests_due[account_id] = (team_id, _channel, tz, connection_id)
                log.info("event=digest_delayed account_id=%s reason=%s", account_id, exc.reason)

    # ------------------------------------------------------------------------------------------ Slack calls

    def _pace(self, channel: str) -> None:
        last = self._last_post.get(channel)
        if last is not None:
            wait = self.post_interval - (time.monotonic() - last)
            if wait > 0:
                self.sleep(wait)
        self._last_post[channel] = time.monotonic()

    def _post(self, client: WebClient, account_id: int, topic: str, channel: str, message: dict[str, Any],
              existing: SlackMessage | None = None) -> None:
        """Claim the topic's row, post, store the ts. Raises _Reschedule on a Slack failure."""
        if existing is None:
            with self.sessions() as session, session.begin():
                row = session.scalars(select(SlackMessage).where(SlackMessage.account_id == account_id,
                                                                 SlackMessage.topic == topic)).first()
                if row is None:
                    row = SlackMessage(account_id=account_id, topic=topic, channel_id=channel,
                                       claimed_at=self.clock())
                    session.add(row)
                    try:
                        session.flush()
                    except IntegrityError:
                        raise _Reschedule(1.0, "another worker claimed the post") from None
                row_id = row.id
        else:
            row_id = existing.id
        self._pace(channel)
        answer = self._call(client.chat_postMessage, channel=channel, **message)
        with self.sessions() as session, session.begin():
            row = session.get(SlackMessage, row_id)
            assert row is not None
            row.channel_id = str(answer.get("channel") or channel)
            row.ts = str(answer["ts"])
            row.posted_at = row.updated_at = self.clock()
            ws = session.scalars(select(Workspace).where(Workspace.account_id == account_id)).first()
            if ws is not None and ws.channel_problem:
                ws.channel_problem = None
        log.info("event=slack_posted account_id=%s topic=%s channel=%s", account_id, topic, channel)

    def _update(self, client: WebClient, row: SlackMessage, message: dict[str, Any],
                channel: str | None = None) -> tuple[str, str]:
        """Update the stored message in place; when it is gone, post it afresh (in its channel, or in the account's
        ``channel`` when its own channel can no longer be used) and store the new ts. Returns (channel, ts) of the
        message as it now is. Raises _Reschedule on a Slack failure."""
        assert row.ts is not None
        moved_from: str | None = None
        try:
            self._call(client.chat_update, channel=row.channel_id, ts=row.ts, mark_broken=False, **message)
        except _GoneMessage:
            target = row.channel_id
        except _ChannelUnusable as exc:
            if not channel or channel == row.channel_id:
                self._channel_broken(exc.channel, exc.error)
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
        self._pace(target)
        answer = self._call(client.chat_postMessage, channel=target, **message)
        with self.sessions() as session, session.begin():
            fresh = session.get(SlackMessage, row.id)
            assert fresh is not None
            fresh.ts = str(answer["ts"])
            fresh.channel_id = str(answer.get("channel") or target)
            fresh.posted_at = fresh.updated_at = self.clock()
            return fresh.channel_id, fresh.ts

    def _thread_note(self, client: WebClient, channel: str, ts: str, entry: SyncLogEntry, tz: str) -> None:
        """One line per attempt in the message's thread (best effort: the parent already says the outcome)."""
        state = "synced" if entry.status == Status.SYNCED else f"{entry.status} ({entry.kind})"
        who = f" by {entry.actor}" if entry.actor else ""
        text = f"Attempt {entry.attempt}{who}: {state}."
        try:
            self._call(client.chat_postMessage, channel=channel, thread_ts=ts, text=blocks.escape_mrkdwn(text))
        except _Reschedule as exc:
            log.info("event=thread_note_skipped reason=%s", exc.reason)

    def _call(self, method: Callable[..., Any], *, mark_broken: bool = True, **kwargs: Any) -> Any:
        """One Slack call through the typed errors: 429 and outages reschedule, a gone message is _GoneMessage, a
        refused channel is marked broken (or, with ``mark_broken=False``, raised as _ChannelUnusable for the
        caller to decide), refused blocks fall back to the plain text once."""
        try:
            answer = method(**kwargs)
            warnings = list((answer.get("response_metadata") or {}).get("warnings") or [])
            if answer.get("warning") or warnings:
                log.warning("event=slack_warning method=%s warning=%s warnings=%s", getattr(method, "__name__", "?"),
                            answer.get("warning"), ",".join(warnings))
            return answer
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            status = exc.response.status_code
            if status == 429 or error == "ratelimited":
                raise _Reschedule(_retry_after_seconds(exc.response.headers.get("Retry-After")),
                                  "rate limited by Slack", channel_wide=True) from None
            if error in GONE_MESSAGE_ERRORS:
                raise _GoneMessage(error) from None
            if error in CHANNEL_ERRORS:
                if not mark_broken:
                    raise _ChannelUnusable(str(kwargs.get("channel")), error) from None
                self._channel_broken(str(kwargs.get("channel")), error)
                raise _Reschedule(300.0, f"cannot post to the channel: {error}", channel_wide=True) from None
            if error == "invalid_blocks" and kwargs.get("blocks"):
                # Our renderers keep within Block Kit's limits; should Slack still refuse, say why in the log and
                # send the plain-text fallback once, so the error is not silently lost (SL-07). An update without
                # blocks would keep the old ones (an outdated state under the new text): it clears them.
                log.error("event=slack_invalid_blocks errors=%s", exc.response.get("errors"))
                plain = {k: v for k, v in kwargs.items() if k != "blocks"}
                if getattr(method, "__name__", "") == "chat_update":
                    plain["blocks"] = []
                return self._call(method, mark_broken=mark_broken, **plain)
            if status >= 500 or error in TRANSIENT_ERRORS:
                raise _Reschedule(30.0, f"Slack error {status} {error}", channel_wide=True) from None
            log.error("event=slack_call_refused error=%s status=%s", error, status)
            raise _Reschedule(600.0, f"Slack refused the message: {error}") from None
        except OSError as exc:  # connection errors after slack_sdk's own retries
            raise _Reschedule(30.0, f"Slack unreachable: {exc}", channel_wide=True) from None

    def _channel_broken(self, channel: str, error: str) -> None:
        """Mark the workspace's channel broken (shown by /sync-log status and the App Home) and DM the person
        who set it up, once per problem, asking to invite @syncbot or to pick another channel. The entries and
        the notifications stay; delivery resumes when the channel works again."""
        log.warning("event=slack_channel_unusable channel=%s error=%s", channel, error)
        problem = f"{error} in <#{channel}>"
        with self.sessions() as session, session.begin():
            ws = session.scalars(select(Workspace).where(Workspace.account_id == self._current_account)).first()
            if ws is None or ws.channel_problem == problem:
                return
            ws.channel_problem = problem
            team_id, user_ids = ws.team_id, [u for u in [ws.installer_user_id, *(ws.admin_user_ids or [])] if u]
        text = (f":warning: syncbot cannot post sync errors to <#{channel}> (Slack says `{error}`). Invite it with "
                "`/invite @syncbot` in that channel, or pick another one with `/sync-log channel #name`. Nothing is "
                "lost: the errors wait and arrive as soon as the channel works.")
        client = self.client_for(team_id)
        for user_id in dict.fromkeys(user_ids):
            try:
                dm = client.conversations_open(users=user_id)
                client.chat_postMessage(channel=dm["channel"]["id"], text=text)
            except SlackApiError as exc:
                log.warning("event=channel_problem_dm_failed user_id=%s error=%s", user_id,
                            exc.response.get("error"))


class _GoneMessage(Exception):
    pass
