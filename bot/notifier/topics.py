"""What the notifier delivers, topic by topic: a record's card (posted once, updated in place, a thread line
per attempt), a connection incident's message (and the cards it redraws), a weekly summary, a token
reminder."""



from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import blocks
from bot.blocks.messages import connection_waiting
from bot.models import ScheduledSend, SlackMessage, Workspace
from bot.notifier.base import Fold, Reschedule, message_of
from bot.notifier.digests import Digests
from sync.log import existing_label, open_clause
from sync.models import Account, Connection, Incident, Notification, Status, SyncLogEntry
from sync.summary import weekly_summary

log = logging.getLogger("syncbot.notifier")


class TopicDelivery(Digests):
    """What the notifier delivers, topic by topic: a record's card (posted once, updated in place, a thread line"""

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
        if row is None or row.ts is None or ws is None:  # (the query asks for a ts: None only to the type checker)
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
            existing = message_of(session, account_id, topic)
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
            fold = self._folds.setdefault(account_id, Fold(team_id, channel, tz, entry.connection_id))
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
            existing = message_of(session, account_id, incident_topic)
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
            marker = message_of(session, account_id, incident_topic)
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
            except Reschedule as exc:
                log.info("event=card_redraw_delayed topic=%s reason=%s", row.topic, exc.reason)
                raise  # the incident's notifications wait and the cards are drawn again at the next pass
        if marker is not None:
            with self.sessions() as session, session.begin():
                fresh = session.get(SlackMessage, marker.id)
                if fresh is not None:
                    fresh.state = {**(fresh.state or {}), "cards": want}

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
            except Reschedule as exc:
                log.warning("event=reminder_dm_failed user_id=%s reason=%s", user_id, exc.reason)
        return outcome
