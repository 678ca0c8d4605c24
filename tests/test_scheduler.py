"""Scheduled work (bot/scheduler.py): the weekly summary, token-expiry reminders, automatic resume, token refresh
ahead of expiry, retention, and exactly-once across runners (lease, unique sends, a killed leader).

Jobs are given ``now`` (an injected clock) or run under time-machine; messages are delivered by the real
notifier to the Slack stand-in, which checks Block Kit as Slack does.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select

from bot.blocks import ids
from bot.lease import Lease
from bot.models import ScheduledSend, SchedulerLease, Workspace
from bot.scheduler import Jobs, Scheduler, SchedulerConfig, last_scheduled, parse_time
from sandbox.slack import config as slack_cfg
from sync.crypto import SecretBox
from sync.models import Account, Connection, ConnectionStatus, Incident, Notification, SyncLogEntry, utcnow
from tests.conftest import QBO, Connected, Stack
from tests.test_slack_flows import deliver_all

UTC = dt.UTC
NY = ZoneInfo("America/New_York")


def at(tz: dt.tzinfo, *args: int) -> dt.datetime:
    """A wall time in ``tz`` as UTC."""
    return dt.datetime(*args, tzinfo=tz).astimezone(UTC)  # type: ignore[misc]


def sends(services: Any, job: str | None = None) -> list[ScheduledSend]:
    with services.sessions() as session:
        q = select(ScheduledSend).order_by(ScheduledSend.id)
        return list(session.scalars(q.where(ScheduledSend.job == job) if job else q))


def outbox(services: Any, prefix: str) -> list[Notification]:
    with services.sessions() as session:
        return list(session.scalars(select(Notification).where(Notification.topic.like(f"{prefix}:%"))))


def set_account(services: Any, account_id: int, **values: Any) -> None:
    with services.sessions() as session, session.begin():
        account = session.get(Account, account_id)
        assert account is not None
        for key, value in values.items():
            setattr(account, key, value)


def set_connection(services: Any, connection_id: int, **values: Any) -> None:
    with services.sessions() as session, session.begin():
        conn = session.get(Connection, connection_id)
        assert conn is not None
        for key, value in values.items():
            setattr(conn, key, value)


# ------------------------------------------------------------------------------------------------ time


@pytest.mark.parametrize(("now", "tz", "expected"), [
    # the Monday before and after the US spring-forward (Sunday 2026-03-08): 09:00 local both times
    (at(NY, 2026, 3, 9, 9, 30), NY, dt.datetime(2026, 3, 9, 13, 0, tzinfo=UTC)),
    (at(NY, 2026, 3, 9, 8, 59), NY, dt.datetime(2026, 3, 2, 14, 0, tzinfo=UTC)),
    # after the fall-back (Sunday 2026-11-01)
    (at(NY, 2026, 11, 2, 9, 0), NY, dt.datetime(2026, 11, 2, 14, 0, tzinfo=UTC)),
    # Europe/London: BST ends 2026-10-25
    (dt.datetime(2026, 10, 26, 9, 0, tzinfo=UTC), ZoneInfo("Europe/London"),
     dt.datetime(2026, 10, 26, 9, 0, tzinfo=UTC)),
    (dt.datetime(2026, 10, 19, 8, 30, tzinfo=UTC), ZoneInfo("Europe/London"),
     dt.datetime(2026, 10, 19, 8, 0, tzinfo=UTC)),
    # Tokyo: Monday 09:00 there is Monday 00:00 UTC; a minute before, it is last week's
    (dt.datetime(2026, 11, 30, 0, 0, tzinfo=UTC), ZoneInfo("Asia/Tokyo"),
     dt.datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),
    (dt.datetime(2026, 11, 29, 23, 59, tzinfo=UTC), ZoneInfo("Asia/Tokyo"),
     dt.datetime(2026, 11, 23, 0, 0, tzinfo=UTC)),
    # UTC, exactly on the moment
    (dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC), UTC, dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
])
def test_last_scheduled_monday_nine_across_zones_and_dst(now: dt.datetime, tz: dt.tzinfo,
                                                         expected: dt.datetime) -> None:
    assert last_scheduled(now, tz, 0, 9, 0) == expected


def test_a_wall_time_skipped_by_dst_runs_right_after_the_gap() -> None:
    # Sunday 2026-03-08 02:30 does not exist in New York: the clock jumps from 02:00 EST to 03:00 EDT
    moment = last_scheduled(at(NY, 2026, 3, 8, 12, 0), NY, 6, 2, 30)
    assert moment.date() == dt.date(2026, 3, 8)
    assert dt.datetime(2026, 3, 8, 7, 0, tzinfo=UTC) <= moment <= dt.datetime(2026, 3, 8, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [("9:00", (9, 0)), ("09:30", (9, 30)), ("9", (9, 0)),
                                                ("9am", (9, 0)), ("2:30pm", (14, 30)), ("12am", (0, 0))])
def test_parse_time(text: str, expected: tuple[int, int]) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["25:00", "9:5", "nine", "", "13pm", "9:60", "-1", "\uff19:00"])
def test_parse_time_refuses_bad_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


# ------------------------------------------------------------------------------------------------ summary


def test_a_week_old_moment_is_recorded_as_missed_not_sent(services: Any, connected: Connected) -> None:
    set_account(services, connected.account_id, timezone="America/New_York",
                created_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
    result = Jobs(services).summaries(at(NY, 2026, 3, 9, 8, 59))  # Mar 2 09:00 is a week old: beyond the grace
    assert (result.queued, result.missed) == (0, 1)
    assert [s.outcome for s in sends(services, "summary")] == ["missed"]
    assert outbox(services, "summary") == []


def test_summary_queued_once_then_never_again_that_week(services: Any, connected: Connected) -> None:
    set_account(services, connected.account_id, timezone="America/New_York",
                created_at=dt.datetime(2026, 3, 3, tzinfo=UTC))
    jobs = Jobs(services)
    assert jobs.summaries(at(NY, 2026, 3, 9, 8, 59)).queued == 0  # before the first Monday after creation
    assert jobs.summaries(at(NY, 2026, 3, 9, 9, 0)).queued == 1  # 13:00 UTC after the DST change
    for minutes in (1, 2, 60, 600):
        assert jobs.summaries(at(NY, 2026, 3, 9, 9, 0) + dt.timedelta(minutes=minutes)).queued == 0
    rows = sends(services, "summary")
    assert len(rows) == 1 and rows[0].due_at == dt.datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    assert len(outbox(services, "summary")) == 1
    assert jobs.summaries(at(NY, 2026, 3, 16, 9, 0)).queued == 1  # and the next Monday again
    assert len(outbox(services, "summary")) == 2


def test_missed_monday_is_sent_once_within_grace_and_logged_beyond(services: Any, connected: Connected,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    set_account(services, connected.account_id, timezone="UTC", created_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
    jobs = Jobs(services, SchedulerConfig(summary_grace=dt.timedelta(hours=24)))
    # the process was down from Sunday to Monday 11:00: the 09:00 summary goes out once when it comes back
    back = dt.datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert jobs.summaries(back).queued == 1
    assert jobs.summaries(back + dt.timedelta(minutes=1)).queued == 0
    # down from Monday 08:00 to Wednesday: too late to be useful, recorded and logged, not sent
    with caplog.at_level(logging.WARNING, logger="syncbot.scheduler"):
        result = jobs.summaries(dt.datetime(2026, 12, 9, 10, 0, tzinfo=UTC))
    assert result.missed == 1 and result.queued == 0
    assert "event=summary_missed" in caplog.text
    assert [s.outcome for s in sends(services, "summary")] == ["queued", "missed"]
    assert len(outbox(services, "summary")) == 1
    assert jobs.summaries(dt.datetime(2026, 12, 9, 10, 5, tzinfo=UTC)).missed == 0  # logged once


def test_summary_off_and_other_day(services: Any, connected: Connected) -> None:
    from bot.scheduler import set_summary

    set_account(services, connected.account_id, created_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
    set_summary(services, connected.account_id, enabled=False)
    jobs = Jobs(services)
    assert jobs.summaries(dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)).queued == 0
    # Friday 16:30 in Chicago; the change itself never sends for the moment that just passed
    set_summary(services, connected.account_id, enabled=True, weekday=4, time_text="4:30pm",
                now=dt.datetime(2026, 12, 4, 23, 0, tzinfo=UTC))
    assert jobs.summaries(dt.datetime(2026, 12, 4, 23, 0, tzinfo=UTC)).queued == 0
    assert jobs.summaries(at(ZoneInfo("America/Chicago"), 2026, 12, 11, 16, 30)).queued == 1


def test_summary_message_in_the_channel(stack: Stack) -> None:
    services = stack.rt.services
    services.engine.sync_now(stack.connection_id, "U_ADMIN")  # the demo records: six kinds of errors
    deliver_all(stack)
    before = len(stack.messages())
    due = (utcnow() + dt.timedelta(minutes=1)).astimezone(ZoneInfo("America/Chicago"))  # after those errors
    set_account(services, stack.account_id, created_at=dt.datetime(2026, 1, 1, tzinfo=UTC),
                summary_time=f"{due.hour:02d}:{due.minute:02d}", summary_weekday=due.weekday())
    assert Jobs(services).summaries(due.astimezone(UTC) + dt.timedelta(minutes=1)).queued == 1
    deliver_all(stack)
    deliver_all(stack)
    posted = stack.messages()[before:]
    assert len(posted) == 1, [m["text"] for m in posted]
    summary = posted[0]
    assert summary["text"].startswith("Weekly sync summary for Sandbox Builders")
    shown = str(summary["blocks"])
    assert "Errors and warnings by kind" in shown and "Still open" in shown and "2-minute review" in shown
    assert ids.RETRY_ALL in shown and ids.VIEW_LOG in shown


def test_quiet_week_is_one_line(stack: Stack) -> None:
    services = stack.rt.services
    set_account(services, stack.account_id, created_at=dt.datetime(2026, 1, 1, tzinfo=UTC),
                summary_weekday=utcnow().weekday(), summary_time="00:00", timezone="UTC")
    assert Jobs(services).summaries(utcnow()).queued == 1
    deliver_all(stack)
    quiet = stack.messages()[-1]
    assert quiet["text"].startswith("Quiet week in the sync log")
    assert len(quiet["blocks"]) == 1


def test_summary_of_a_week_of_100k_entries_fits_block_kit(stack: Stack) -> None:
    services = stack.rt.services
    now = utcnow()
    kinds = ["duplicate", "not_found", "validation", "total_mismatch", "unknown", "auth_expired", "rate_limited",
             "closed_period", "locked", "conflict", "subscription"]
    rows = []
    for i in range(100_000):
        status = ("synced", "error", "warning", "info")[i % 4]
        rows.append({
            "created_at": now - dt.timedelta(seconds=i * 6), "account_id": stack.account_id,
            "connection_id": stack.connection_id, "entity": ("contact", "item", "invoice", "payment")[i % 4],
            "record_id": i % 5000, "record_label": f"Record <{i % 5000}> & \u201cquotes\u201d " + "x" * 40,
            "direction": "push", "status": status, "kind": kinds[i % len(kinds)] if status != "synced" else None,
            "details": "Duplicate Name Exists <b>&</b> " * 3, "attempt": 1 + i % 7,
        })
    with services.sessions() as session, session.begin():
        for start in range(0, len(rows), 10_000):
            session.execute(insert(SyncLogEntry), rows[start:start + 10_000])
    set_account(services, stack.account_id, created_at=dt.datetime(2026, 1, 1, tzinfo=UTC),
                summary_weekday=now.weekday(), summary_time="00:00", timezone="UTC")
    before = len(stack.messages())
    assert Jobs(services).summaries(now).queued == 1
    deliver_all(stack)
    posted = stack.messages()[before:]
    assert len(posted) == 1  # the stand-in refuses invalid_blocks: accepted means within Slack's limits
    summary = posted[0]
    assert "Weekly sync summary" in summary["text"] and "blocks" in summary
    assert len(summary["blocks"]) <= 50
    assert "…and" in str(summary["blocks"])  # 11 kinds: the list is cut at 10 and says so
    assert len(stack.slack.standin.calls("chat.postMessage")) >= 1
    assert all(c.ok for c in stack.slack.standin.calls("chat.postMessage"))


# ------------------------------------------------------------------------------------------------ reminders


def test_expiry_reminders_once_per_threshold_per_token(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    services = stack.rt.services
    with services.sessions() as session, session.begin():
        ws = session.scalars(select(Workspace)).one()
        ws.admin_user_ids = [slack_cfg.ADMIN_USER_ID]
    now = utcnow()
    set_connection(services, stack.connection_id, refresh_expires_at=now + dt.timedelta(days=20),
                   connected_at=now - dt.timedelta(days=10))
    jobs = Jobs(services)
    assert jobs.reminders(now).queued == 0  # 20 days left: nothing yet
    assert jobs.reminders(now + dt.timedelta(days=6, hours=1)).queued == 1  # 13.9 days: the 14-day reminder
    for hours in (1, 24, 48):
        assert jobs.reminders(now + dt.timedelta(days=6, hours=1 + hours)).queued == 0
    # the process slept through the 7-day mark: at 2.5 days only the 3-day reminder goes out
    assert jobs.reminders(now + dt.timedelta(days=17, hours=12)).queued == 1
    assert jobs.reminders(now + dt.timedelta(days=19, hours=1)).queued == 1  # 1 day
    assert jobs.reminders(now + dt.timedelta(days=19, hours=2)).queued == 0
    thresholds = [s.data["threshold_days"] for s in sends(services, "reminder")]
    assert thresholds == [14, 3, 1]

    deliver_all(stack)
    reminders = [m for m in stack.messages() if "connection expires" in m["text"]]
    assert len(reminders) == 3
    assert ids.RECONNECT in str(reminders[0]["blocks"])
    assert "Reconnect proactively every 90 days" in str(reminders[0]["blocks"])
    dm = stack.slack.standin.messages(stack.slack.standin.dm_channel_id(slack_cfg.DEFAULT_TEAM_ID,
                                                                        slack_cfg.ADMIN_USER_ID))
    assert len(dm) == 3 and "connection expires" in dm[0].text
    deliver_all(stack)
    assert len([m for m in stack.messages() if "connection expires" in m["text"]]) == 3  # never twice

    # a new refresh token (a reconnect, or Intuit rotating it): its own thresholds
    with services.sessions() as session, session.begin():
        conn = session.get(Connection, stack.connection_id)
        assert conn is not None
        conn.refresh_token_enc = services.box.encrypt("another-refresh-token")
        conn.refresh_expires_at = now + dt.timedelta(days=19, hours=1) + dt.timedelta(days=13)
    assert jobs.reminders(now + dt.timedelta(days=19, hours=1)).queued == 1
    assert [s.data["threshold_days"] for s in sends(services, "reminder")][-1] == 14


def test_hard_expiry_and_the_ninety_day_reminder(services: Any, connected: Connected) -> None:
    now = utcnow()
    set_connection(services, connected.connection_id, refresh_expires_at=now + dt.timedelta(days=90),
                   refresh_hard_expires_at=now + dt.timedelta(days=2, hours=12),
                   connected_at=now - dt.timedelta(days=91))
    jobs = Jobs(services)
    assert jobs.reminders(now).queued == 2
    assert jobs.reminders(now + dt.timedelta(hours=5)).queued == 0
    by_basis = {s.data["basis"]: s.data for s in sends(services, "reminder")}
    assert by_basis["hard"]["threshold_days"] == 3
    assert "age" in by_basis
    assert len(outbox(services, "reminder")) == 2


def test_no_reminder_for_an_expired_or_disconnected_connection(services: Any, connected: Connected) -> None:
    now = utcnow()
    set_connection(services, connected.connection_id, refresh_expires_at=now - dt.timedelta(hours=1))
    assert Jobs(services).reminders(now).queued == 0
    set_connection(services, connected.connection_id, refresh_expires_at=now + dt.timedelta(days=2),
                   status=ConnectionStatus.EXPIRED.value)
    assert Jobs(services).reminders(now).queued == 0


def test_a_failing_item_is_logged_and_retried_at_the_next_tick(services: Any, connected: Connected,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    now = utcnow()
    set_connection(services, connected.connection_id, refresh_expires_at=now + dt.timedelta(days=5))
    good_box = services.box
    services.box = SecretBox([Fernet.generate_key().decode()])  # keys rotated away: the token cannot be read
    jobs = Jobs(services)
    with caplog.at_level(logging.ERROR, logger="syncbot.scheduler"):
        assert jobs.reminders(now).queued == 0
    assert "event=scheduled_item_failed" in caplog.text
    services.box = good_box
    assert jobs.reminders(now + dt.timedelta(minutes=5)).queued == 1


# ------------------------------------------------------------------------------------------------ resume


def test_rate_limited_connection_resumes_by_itself(stack: Stack, qbo: QBO) -> None:
    services = stack.rt.services
    services.engine.pause(stack.connection_id, seconds=900)
    deliver_all(stack)
    incident = stack.messages()[-1]
    jobs = Jobs(services)
    assert jobs.resume(utcnow()).done == 0  # still paused
    with services.sessions() as session:
        conn = session.get(Connection, stack.connection_id)
        assert conn is not None and conn.status == ConnectionStatus.RATE_LIMITED
        paused_until = conn.paused_until
    assert paused_until is not None
    assert jobs.resume(paused_until + dt.timedelta(seconds=1)).done == 1
    with services.sessions() as session:
        conn = session.get(Connection, stack.connection_id)
        assert conn is not None and conn.status == ConnectionStatus.CONNECTED and conn.paused_until is None
        incident_row = session.scalars(select(Incident)).one()
        assert incident_row.resolved_at is not None and incident_row.resolution == "resumed"
    deliver_all(stack)
    assert "Resumed" in stack.message(incident["ts"])["text"]
    assert jobs.resume(utcnow() + dt.timedelta(hours=1)).done == 0  # nothing paused any more


# ------------------------------------------------------------------------------------------------ refresh


def test_access_token_refreshed_ahead_of_expiry(services: Any, connected: Connected) -> None:
    with services.sessions() as session:
        conn = session.get(Connection, connected.connection_id)
        assert conn is not None
        version, old_access = conn.token_version, services.box.decrypt(conn.access_token_enc or "")
        expires = conn.access_expires_at
    assert expires is not None
    jobs = Jobs(services, SchedulerConfig(refresh_ahead=dt.timedelta(minutes=15)))
    assert jobs.refresh(expires - dt.timedelta(hours=1)).done == 0  # an hour left: not yet
    assert jobs.refresh(expires - dt.timedelta(minutes=10)).done == 1
    with services.sessions() as session:
        conn = session.get(Connection, connected.connection_id)
        assert conn is not None and conn.token_version == version + 1
        assert services.box.decrypt(conn.access_token_enc or "") != old_access
        assert conn.access_expires_at is not None and conn.access_expires_at > expires


def test_refused_refresh_opens_the_auth_incident_at_once(stack: Stack, qbo: QBO) -> None:
    services = stack.rt.services
    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    result = Jobs(services).refresh(utcnow() + dt.timedelta(hours=2))
    assert result.failed == 1
    with services.sessions() as session:
        conn = session.get(Connection, stack.connection_id)
        assert conn is not None and conn.status == ConnectionStatus.EXPIRED
        incident = session.scalars(select(Incident)).one()
        assert incident.kind == "auth_expired" and incident.resolved_at is None
    deliver_all(stack)
    assert any(ids.RECONNECT in str(m["blocks"]) for m in stack.messages())


# ------------------------------------------------------------------------------------------------ retention


def test_retention_prunes_old_info_and_synced_keeps_open_errors(services: Any, connected: Connected) -> None:
    now = utcnow()
    old, recent = now - dt.timedelta(days=200), now - dt.timedelta(days=10)

    def entry(created: dt.datetime, status: str, resolved: dt.datetime | None = None) -> dict[str, Any]:
        return {"created_at": created, "account_id": connected.account_id, "connection_id": connected.connection_id,
                "entity": "contact", "record_id": 1, "direction": "push", "status": status, "attempt": 1,
                "resolved_at": resolved, "kind": "duplicate" if status == "error" else None}

    with services.sessions() as session, session.begin():
        session.execute(insert(SyncLogEntry), [entry(old, "synced") for _ in range(7)]
                        + [entry(old, "info") for _ in range(4)]
                        + [entry(old, "error", resolved=old + dt.timedelta(days=1))]
                        + [entry(old, "error")]  # still open: kept whatever its age
                        + [entry(recent, "synced"), entry(recent, "info")])
    result = Jobs(services, SchedulerConfig(retention_days=180, prune_batch=3)).retention(now)
    assert result.done == 12
    with services.sessions() as session:
        left = session.execute(select(SyncLogEntry.status, SyncLogEntry.created_at, SyncLogEntry.resolved_at)).all()
    assert sorted(s for s, _, _ in left) == ["error", "info", "synced"]
    assert [r for s, c, r in left if s == "error"] == [None]


# ------------------------------------------------------------------------------------------------ /sync-log summary


def test_summary_command(stack: Stack) -> None:
    class Say:
        def slash_command(self, command: str, text: str, user_id: str) -> Any:
            result = stack.driver.slash_command(command, text, user_id=user_id)
            assert result.status_code == 200
            return type("Answer", (), {"text": result.response.text})

    driver = Say()
    answer = driver.slash_command("/sync-log", "summary monday 9:00", user_id=slack_cfg.MEMBER_USER_ID)
    assert "Owner or Admin" in answer.text
    answer = driver.slash_command("/sync-log", "summary tuesday 7:30am America/Denver",
                                  user_id=slack_cfg.ADMIN_USER_ID)
    assert "every Tuesday at 07:30 (America/Denver)" in answer.text
    assert "time zone changed from" in answer.text and "to America/Denver" in answer.text  # it is the account's
    answer = driver.slash_command("/sync-log", "summary tuesday 8:00", user_id=slack_cfg.ADMIN_USER_ID)
    assert "every Tuesday at 08:00 (America/Denver)" in answer.text and "changed from" not in answer.text
    with stack.rt.services.sessions() as session:
        account = session.get(Account, stack.account_id)
        assert account is not None
        assert (account.summary_weekday, account.summary_time, account.timezone) == (1, "08:00", "America/Denver")
    assert "goes out every Tuesday at 08:00" in driver.slash_command(
        "/sync-log", "summary", user_id=slack_cfg.ADMIN_USER_ID).text
    for bad in ("summary someday 9:00", "summary monday 27:00", "summary monday 9:00 Mars/Olympus"):
        text = driver.slash_command("/sync-log", bad, user_id=slack_cfg.ADMIN_USER_ID).text
        assert "I don't know" in text or "not a time" in text, text
    assert "off" in driver.slash_command("/sync-log", "summary off", user_id=slack_cfg.ADMIN_USER_ID).text
    with stack.rt.services.sessions() as session:
        account = session.get(Account, stack.account_id)
        assert account is not None and account.summary_enabled is False
        assert account.summary_time == "08:00"  # bad commands changed nothing


# ------------------------------------------------------------------------------------------------ exactly once


def test_lease_is_held_by_one_and_taken_over_when_it_expires(services: Any) -> None:
    clock = [dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)]
    a = Lease(services.sessions, "a", 30, clock=lambda _session: clock[0])
    b = Lease(services.sessions, "b", 30, clock=lambda _session: clock[0])
    assert a.acquire() and not b.acquire()
    clock[0] += dt.timedelta(seconds=20)
    assert a.acquire() and not b.acquire()  # renewed
    clock[0] += dt.timedelta(seconds=31)  # a died: its lease ran out
    assert b.acquire() and not a.acquire()
    assert b.holder_now() == "b"
    b.release()
    assert a.acquire()


def wait_until(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_two_schedulers_fire_each_job_once_and_the_standby_takes_over(services: Any, connected: Connected) -> None:
    from bot.services import build_services

    set_account(services, connected.account_id, created_at=dt.datetime(2026, 1, 1, tzinfo=UTC), timezone="UTC")
    config = SchedulerConfig(lease_seconds=1.5, intervals={"summaries": 0.5, "reminders": 0.5, "resume": 0.5,
                                                           "refresh": 3600.0})
    other = build_services(services.settings, migrate=False)  # a second process: its own engine and pool
    one, two = Scheduler(services, config, holder="one"), Scheduler(other, config, holder="two")
    # Monday 09:00:30 UTC: the summary is due; both schedulers run
    with time_machine.travel(dt.datetime(2026, 11, 30, 9, 0, 30, tzinfo=UTC), tick=True):
        try:
            one.start()
            two.start()
            wait_until(lambda: one.leading or two.leading, 5)
            leader, standby = (one, two) if one.leading else (two, one)
            wait_until(lambda: leader.runs["summaries"] >= 3, 10)
            assert standby.runs.total() == 0 and not standby.leading
            assert len(sends(services, "summary")) == 1 and len(outbox(services, "summary")) == 1
            with services.sessions() as session:
                assert session.scalar(select(func.count()).select_from(SchedulerLease)) == 1
            # the leader dies without a word: the standby takes over once the lease ran out
            leader.stop(release=False)
            wait_until(lambda: standby.leading, 6)
            wait_until(lambda: standby.runs["summaries"] >= 2, 10)
            assert len(sends(services, "summary")) == 1  # still once
            assert Lease(services.sessions, "x", 1).holder_now() == standby.holder
        finally:
            one.stop()
            two.stop()
            other.close()


def test_two_schedulers_whose_clocks_differ_by_a_minute_never_both_lead(services: Any,
                                                                         connected: Connected) -> None:
    """The standby's own clock runs 60 s ahead of the leader's (lease 1.5 s): the lease is judged by the
    database's clock, so the standby never finds the live leader's lease expired, and never runs a job."""
    from bot.services import build_services

    config = SchedulerConfig(lease_seconds=1.5, intervals={"summaries": 0.3, "reminders": 0.3, "resume": 0.3,
                                                           "refresh": 3600.0})
    other = build_services(services.settings, migrate=False)  # a second process: its own engine and pool
    one = Scheduler(services, config, holder="one")
    ahead = Scheduler(other, config, holder="ahead", clock=lambda: utcnow() + dt.timedelta(seconds=60))
    try:
        one.start()
        wait_until(lambda: one.leading, 5)
        ahead.start()
        wait_until(lambda: one.runs["resume"] >= 8, 15)
        assert ahead.runs.total() == 0 and not ahead.leading
        assert Lease(services.sessions, "probe", 1).holder_now() == "one"
    finally:
        one.stop()
        ahead.stop()
        other.close()


def test_each_scheduler_keeps_its_jobs_in_memory_and_the_database_none(services: Any) -> None:
    """APScheduler's job stores are never shared between schedulers (its user guide): the leader's five jobs are
    in its own memory, and the database has no job store table at all."""
    from sqlalchemy import inspect

    scheduler = Scheduler(services, SchedulerConfig(lease_seconds=1.0))
    scheduler.start()
    try:
        wait_until(lambda: scheduler.leading, 5)
        assert {job.id for job in scheduler._aps.get_jobs()} == set(Scheduler.JOBS)
        assert "apscheduler_jobs" not in inspect(services.db_engine).get_table_names()
    finally:
        scheduler.stop()


def test_a_killed_scheduler_process_is_replaced(clean_db: str, qbo: QBO, tmp_path: Path) -> None:
    """Two `syncbot scheduler` processes on one database: one leads; kill -9 it and the other leads."""
    env = {**os.environ, "DATABASE_URL": clean_db, "QBO_API_URL": qbo.url, "SCHEDULER_LEASE_SECONDS": "1.5",
           "PYTHONUNBUFFERED": "1"}
    logs = [(tmp_path / f"scheduler-{i}.log").open("w") for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-m", "bot.cli", "scheduler"], env=env, stdout=out,
                              stderr=subprocess.STDOUT) for out in logs]
    from bot.services import build_services

    svc = build_services(qbo.settings(clean_db), migrate=False)
    try:
        def holder() -> str | None:
            return Lease(svc.sessions, "probe", 1).holder_now()

        first = wait_until(holder, 30)
        pid = int(first.split(":")[1])
        assert pid in {p.pid for p in procs}
        leader = next(p for p in procs if p.pid == pid)
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(10)
        second = wait_until(lambda: (h := holder()) and h != first and h, 15)
        assert int(second.split(":")[1]) in {p.pid for p in procs if p is not leader}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for out in logs:
            out.close()
        svc.close()
    survivor = next(p for p in procs if p is not leader)
    assert survivor.returncode == 0  # SIGTERM: a clean stop
    assert "scheduler running as" in (tmp_path / f"scheduler-{procs.index(survivor)}.log").read_text()
