"""Each Events API event is worked once, however often Slack delivers it.

Slack re-sends an event it thinks was not acknowledged (no 2xx within 3 seconds, a connection error...), with
``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason`` and the same ``event_id``
(https://docs.slack.dev/apis/events-api/#retries); the retry can reach another replica. So the event ids taken
on live in the database (``slack_events_seen``): the first delivery inserts its id, a retry finds it and is
acked without running anything. Insert-or-skip is one statement (``INSERT ... ON CONFLICT DO NOTHING
RETURNING`` on PostgreSQL and SQLite), so two replicas receiving the same event at once cannot both win. Rows older than
:data:`KEEP` are pruned as new events arrive.

An event is taken on when it arrives, before its work: a process that dies during the work does not run it
again on Slack's retry (at most once; the work syncbot does for events, publishing a Home or forgetting an
uninstalled workspace's tokens, is redone by the next app_home_opened or is harmless to miss once).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bot.models import SeenEvent
from sync.models import utcnow

log = logging.getLogger("syncbot.events")

#: How long an event id is remembered: Slack retries within minutes (at once, after 1 and after 5 minutes).
KEEP = dt.timedelta(hours=6)


class EventLedger:
    """The event ids taken on, in the database (shared by every replica)."""

    def __init__(self, sessions: sessionmaker[Session], *, keep: dt.timedelta = KEEP,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessions = sessions
        self.keep = keep
        self.clock = clock

    def first_delivery(self, event_id: str, team_id: str | None = None) -> bool:
        """Take on ``event_id``: True when this is its first delivery (run its work), False when it was taken on
        already, here or by another replica (a retry: ack it, run nothing)."""
        now = self.clock()
        if len(event_id) > 64:  # Slack's are about a dozen characters; a longer one is kept by its digest
            event_id = hashlib.sha256(event_id.encode()).hexdigest()
        team_id = team_id[:32] if team_id else None
        with self.sessions() as session, session.begin():
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            taken = session.execute(
                insert(SeenEvent).values(event_id=event_id, team_id=team_id, received_at=now)
                .on_conflict_do_nothing(index_elements=["event_id"]).returning(SeenEvent.event_id)
            ).scalar() is not None
            session.execute(delete(SeenEvent).where(SeenEvent.received_at < now - self.keep))
        return taken
