"""Two processes' notifiers on one SQLite database: one delivers at a time (the ``notifier`` lease), so no
message, update or thread note is sent twice; when the one delivering stops, the other takes over and nothing is
lost. On PostgreSQL every replica delivers instead (topics claimed one replica at a time): tests/test_replicas.py
and tests/test_delivery_state.py."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.models import SlackMessage
from sync.models import Notification, SyncLogEntry
from tests.conftest import PG_ENV, Stack


def _runtime(stack: Stack) -> Any:
    from bot.services import build_services
    from bot.wiring import build_runtime

    settings = stack.rt.settings.model_copy(update={"scheduler_lease_seconds": 1.5})
    rt = build_runtime(build_services(settings, migrate=False))
    rt.services.limiter = stack.rt.services.limiter
    rt.notifier.post_interval = 0.0
    return rt


def _pending(stack: Stack) -> int:
    with stack.rt.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(Notification).where(
            Notification.delivered_at.is_(None))) or 0


def _until(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.mark.skipif(bool(os.environ.get(PG_ENV)), reason="on PostgreSQL every replica delivers (no lease)")
def test_one_notifier_delivers_and_the_other_takes_over(stack: Stack) -> None:
    one, two = _runtime(stack), _runtime(stack)
    try:
        one.start_background()
        two.start_background()
        _until(lambda: one.notifier._leading or two.notifier._leading)
        leader, standby = (one, two) if one.notifier._leading else (two, one)
        stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # six errors and an incident
        leader.notifier.wake()
        _until(lambda: _pending(stack) == 0)
        assert standby.notifier.delivered_total == 0 and leader.notifier.delivered_total > 0
        with stack.rt.services.sessions() as session:
            topics = session.scalar(select(func.count()).select_from(SlackMessage)
                                    .where(SlackMessage.ts.is_not(None)))
        assert topics and len(stack.messages()) == topics  # one message per topic, none twice
        posts_before = len(stack.slack.standin.calls("chat.postMessage"))

        leader.close()  # a clean stop gives the lease up: the standby delivers from now on
        with stack.rt.services.sessions() as session:
            entry = session.scalars(select(SyncLogEntry).where(
                SyncLogEntry.status == "error", SyncLogEntry.record_id.is_not(None),
                SyncLogEntry.kind.not_in(("auth_expired", "rate_limited")))).first()
            assert entry is not None
        stack.rt.services.engine.retry_entry(entry.id, "U_ADMIN")
        standby.notifier.wake()
        _until(lambda: _pending(stack) == 0)
        assert standby.notifier.delivered_total > 0
        assert len(stack.messages()) == topics  # the retry updated its message in place
        thread_notes = [c for c in stack.slack.standin.calls("chat.postMessage")[posts_before:]
                        if c.params.get("thread_ts")]
        assert len(thread_notes) == 1  # the attempt's line in the thread, once
    finally:
        for rt in (one, two):
            rt.close()
            rt.services.close()
