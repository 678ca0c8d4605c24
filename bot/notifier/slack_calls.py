"""Slack calls of the notifier: claim a topic's row, post, find a lost post again, update, thread lines,
each call through Slack's refusals by class (`bot.slack_errors`); and telling the admins of a problem."""



from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import blocks
from bot.models import SlackMessage, Workspace
from bot.notifier.base import (
    FIND_MARGIN_SECONDS,
    FIND_PAGES,
    METADATA_EVENT,
    ChannelUnusable,
    GoneMessage,
    NeedsAdmin,
    NotifierBase,
    Reschedule,
    Uncertain,
    message_of,
    retry_after_wait,
)
from bot.slack_errors import CHANNEL_ERRORS, Problem, Refusal, classify, describe
from sync.models import Notification, Status, SyncLogEntry

log = logging.getLogger("syncbot.notifier")


class SlackCalls(NotifierBase):
    """Slack calls of the notifier: claim a topic's row, post, find a lost post again, update, thread lines,"""

    def _posted(self, account_id: int, topic: str) -> bool:
        with self.sessions() as session:
            return session.scalar(select(SlackMessage.id).where(
                SlackMessage.account_id == account_id, SlackMessage.topic == topic,
                SlackMessage.ts.is_not(None))) is not None

    def _check_pace(self, channel: str) -> None:
        """Take the channel's turn to post, for every replica (about one post a second per channel, and no post
        while the channel is paused): a post due sooner is rescheduled, never slept for."""
        if self.post_interval > 0:
            wait = self.pace.take(channel, self.post_interval)
            if wait is not None:  # the channel's other topics wait too, unprepared, for the rest of this pass
                self._paused[channel] = (time.monotonic() + wait[0], wait[1])
                raise Reschedule(*wait)

    def _claim(self, account_id: int, topic: str, channel: str,
               state: dict[str, Any] | None) -> tuple[int, dt.datetime | None, str, bool, str | None]:
        """The topic's row, claimed (created) now if there is none: (row id, when claimed, its channel, whether an
        earlier attempt may have posted it, a ts that was its message and is gone)."""
        with self.sessions() as session, session.begin():
            row = message_of(session, account_id, topic)
            earlier = row is not None and not row.ts
            if row is None:
                row = SlackMessage(account_id=account_id, topic=topic, channel_id=channel, claimed_at=self.clock(),
                                   state=state)
                session.add(row)
                try:
                    session.flush()
                except IntegrityError:
                    raise Reschedule(1.0, "another worker claimed the post") from None
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
        Returns whether a message shows the topic now. Raises Reschedule on a Slack failure."""
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
        except Uncertain:
            raise  # the claim stays: next time the post is looked for first
        except Reschedule:
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
            except NeedsAdmin as exc:
                if exc.error != "missing_scope":
                    raise
                log.warning("event=slack_post_not_looked_for topic=%s needed=%s: posting", topic, exc.needed)
                return None
            except GoneMessage:  # the thread's parent is gone: its lines with it
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
        message as it now is. Raises Reschedule on a Slack failure."""
        assert row.ts is not None
        moved_from: str | None = None
        try:
            self._call(client.chat_update, channel=row.channel_id, ts=row.ts, mark_broken=False,
                       metadata=self._metadata(row.account_id, row.topic), **message)
        except GoneMessage:
            target = row.channel_id
        except ChannelUnusable as exc:
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
        (the channel pauses; UNAVAILABLE and no answer at all are Uncertain), GONE is GoneMessage, ADMIN tells the
        admins once and reschedules (NeedsAdmin; a channel refusal with ``mark_broken=False`` is raised as
        ChannelUnusable for the caller to decide), SHORTEN sends the short form and then the plain text, FAIL
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
            raise Uncertain(30.0, f"no answer from Slack to {name}: {exc.__class__.__name__}",
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
            raise Reschedule(retry_after_wait(exc.response.headers.get("Retry-After")),
                              f"rate limited by Slack ({error or status})", channel_wide=True) from None
        if refusal is Refusal.GONE:
            raise GoneMessage(error) from None
        if refusal is Refusal.ADMIN:
            needed = exc.response.get("needed")
            needed = str(needed) if needed else None
            if error in CHANNEL_ERRORS and not mark_broken:
                raise ChannelUnusable(channel, error, needed) from None
            self._tell_admins(describe(error, slack_method, channel if error in CHANNEL_ERRORS else None, needed))
            raise NeedsAdmin(channel, error, needed) from None
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
            raise Uncertain(30.0, f"Slack error {status} {error}", channel_wide=True) from None
        log.error("event=slack_call_refused method=%s error=%s status=%s class=%s", slack_method, error, status,
                  refusal.value)
        raise Reschedule(600.0, f"Slack refused {slack_method}: {error or status}") from None

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
