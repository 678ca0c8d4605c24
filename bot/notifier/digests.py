"""Flood control of the notifier: when an account posts too many record messages at once, new record errors
fold into one digest message, updated in place."""



from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from sqlalchemy import func, select

from bot import blocks
from bot.models import SlackMessage
from bot.notifier.base import DeliveryStats, Fold, NeedsAdmin, Reschedule, message_of
from bot.notifier.slack_calls import SlackCalls
from sync.log import open_clause
from sync.models import SyncLogEntry

log = logging.getLogger("syncbot.notifier")


class Digests(SlackCalls):
    """Flood control of the notifier: when an account posts too many record messages at once, new record errors"""

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
        last: dt.datetime | None
        since: dt.datetime | None
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

    def _flush_digest(self, account_id: int, fold: Fold, stats: DeliveryStats) -> None:
        """Post or update one account's digest for ``fold`` (see :meth:`_flush_digests`)."""
        waiting = self._waiting(fold.channel)
        if waiting is not None:
            self._reschedule(fold.notifications, *waiting)
            stats.rescheduled += len(fold.notifications)
            return
        topic, since = self._digest_topic(account_id)
        with self.sessions() as session:
            row = message_of(session, account_id, topic)
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
        except Reschedule as exc:
            self._reschedule(fold.notifications, exc.seconds, exc.reason)
            stats.rescheduled += len(fold.notifications)
            if exc.channel_wide:
                self._pause(fold.channel, exc.seconds, exc.reason, shared=not isinstance(exc, NeedsAdmin))
            log.info("event=digest_delayed account_id=%s reason=%s", account_id, exc.reason)
            return
        with self.sessions() as session, session.begin():
            msg = message_of(session, account_id, topic)
            if msg is not None:
                msg.state = new_state
            self._mark_delivered_in(session, fold.notifications, now)
        stats.delivered += len(fold.notifications)
        stats.accounts.add(account_id)
