"""Keeps App Homes current: who opened syncbot's Home tab (`slack_home_viewers`), and re-publishing it when
their account's state changes.

A Home tab shows what views.publish last sent (https://docs.slack.dev/surfaces/app-home): it goes stale unless
the app publishes again. Changes that matter (an error arriving, a retry's outcome, Sync Now, Retry All, a
reconnect) mark the account changed; :meth:`HomePublisher.flush` (run after every notifier pass, about every
2 seconds, and after those actions) re-publishes the Home of each user of that account who opened it, at most
once per ``min_interval`` seconds per user and at most ``max_per_flush`` views.publish calls per flush
(views.publish is Tier 4, 100+ a minute per workspace). A change inside the interval waits for the next flush;
nothing is lost. Slack's refusals by class (`bot.slack_errors`): a rate limit or an outage keeps the account
changed for the next flush; a refusal only an admin can fix is remembered by the Slack client (one call a
minute, not one per flush) and the admins are told; anything else (a view Slack finds too large, a malformed
call) is logged as an error.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.models import HomeViewer, Workspace
from bot.slack_errors import Refusal, classify
from sync.models import utcnow

log = logging.getLogger("syncbot.home")


class HomePublisher:
    """Re-publishes App Homes. ``publish(team_id, user_id)`` publishes one user's Home (returns False when the
    workspace is not bound); it may raise SlackApiError."""

    def __init__(self, sessions: sessionmaker[Session], publish: Callable[[str, str], bool],
                 min_interval: float = 10.0, max_per_flush: int = 50,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.sessions = sessions
        self.publish = publish
        self.min_interval = min_interval
        self.max_per_flush = max_per_flush
        self.clock = clock
        self._dirty: set[int] = set()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()

    def opened(self, team_id: str, user_id: str) -> None:
        """``user_id`` opened the Home tab and it was just published: remember them."""
        now = self.clock()
        for attempt in range(2):  # two opens at once (a double open, two processes) may both insert: update then
            try:
                with self.sessions() as session, session.begin():
                    row = session.get(HomeViewer, (team_id, user_id))
                    if row is None:
                        session.add(HomeViewer(team_id=team_id, user_id=user_id, opened_at=now, published_at=now))
                    else:
                        row.opened_at = row.published_at = now
                return
            except IntegrityError:
                if attempt:
                    raise

    def changed(self, account_ids: set[int] | int) -> None:
        """The state of these accounts changed: their viewers' Homes are re-published at the next flush."""
        with self._lock:
            self._dirty |= {account_ids} if isinstance(account_ids, int) else set(account_ids)

    def after_delivery(self, account_ids: set[int]) -> None:
        """The notifier's hook: mark the accounts changed and flush what is due."""
        if account_ids:
            self.changed(account_ids)
        self.flush()

    def flush(self) -> int:
        """Re-publish the due Homes of changed accounts; returns how many were published."""
        if not self._flushing.acquire(blocking=False):
            return 0  # another thread is flushing: it takes the dirty accounts
        try:
            return self._flush()
        finally:
            self._flushing.release()

    def _flush(self) -> int:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        if not dirty:
            return 0
        now = self.clock()
        cutoff = now - dt.timedelta(seconds=self.min_interval)
        waiting: set[int] = set()
        due: list[tuple[int, str, str]] = []
        with self.sessions() as session:
            rows = session.execute(select(Workspace.account_id, HomeViewer.team_id, HomeViewer.user_id,
                                          HomeViewer.published_at)
                                   .join(Workspace, Workspace.team_id == HomeViewer.team_id)
                                   .where(Workspace.account_id.in_(dirty))
                                   .order_by(HomeViewer.opened_at.desc())).all()
        for account_id, team_id, user_id, published_at in rows:
            if (published_at is not None and published_at > cutoff) or len(due) >= self.max_per_flush:
                waiting.add(account_id)
            else:
                due.append((account_id, team_id, user_id))
        published = 0
        for account_id, team_id, user_id in due:
            try:
                ok = self.publish(team_id, user_id)
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "")
                refusal = classify(error, exc.response.status_code)
                if refusal in (Refusal.WAIT, Refusal.UNAVAILABLE):
                    waiting.add(account_id)  # published at a later flush
                log.log(logging.ERROR if refusal in (Refusal.FAIL, Refusal.SHORTEN) else logging.INFO,
                        "event=home_republish_failed team_id=%s user_id=%s error=%s class=%s", team_id, user_id,
                        error, refusal.value)
                continue
            if ok:
                published += 1
                self._stamp(team_id, user_id)
        if waiting:
            with self._lock:
                self._dirty |= waiting
        if published:
            log.info("event=home_republished count=%d", published)
        return published

    def refresh(self, team_id: str, user_id: str) -> bool:
        """Re-publish the Home of ``user_id`` now, when they opened it: they just acted (a click is never held
        back by the interval, as changes are). Returns whether it was published; a Slack error is logged."""
        with self.sessions() as session:
            if session.get(HomeViewer, (team_id, user_id)) is None:
                return False
        try:
            ok = self.publish(team_id, user_id)
        except SlackApiError as exc:
            log.info("event=home_refresh_failed team_id=%s user_id=%s error=%s", team_id, user_id,
                     exc.response.get("error"))
            return False
        if ok:
            self._stamp(team_id, user_id)
        return ok

    def _stamp(self, team_id: str, user_id: str) -> None:
        with self.sessions() as session, session.begin():
            row = session.get(HomeViewer, (team_id, user_id))
            if row is not None:
                row.published_at = self.clock()

    def forget_team(self, team_id: str) -> None:
        """The app left the workspace: forget who opened its Home."""
        with self.sessions() as session, session.begin():
            for row in session.scalars(select(HomeViewer).where(HomeViewer.team_id == team_id)):
                session.delete(row)

