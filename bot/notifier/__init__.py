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

import logging
import threading
import time

from sqlalchemy import select

from bot.lease import Lease
from bot.notifier.base import METADATA_EVENT, DeliveryStats, NeedsAdmin, Reschedule
from bot.notifier.topics import TopicDelivery
from sync.models import Notification

__all__ = ["METADATA_EVENT", "DeliveryStats", "Notifier"]

log = logging.getLogger("syncbot.notifier")


class Notifier(TopicDelivery):
    """Delivers pending notifications. ``client_for(team_id)`` gives a workspace's WebClient for the background
    (`bot.runtime.SlackClients.background_for`: no retry handler that sleeps or posts again by itself)."""

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
                    except Reschedule as exc:
                        self._reschedule(group, exc.seconds, exc.reason)
                        stats.rescheduled += len(group)
                        if exc.channel_wide:
                            self._pause(channel, exc.seconds, exc.reason, shared=not isinstance(exc, NeedsAdmin))
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
