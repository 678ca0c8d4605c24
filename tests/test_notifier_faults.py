"""The notifier under Slack's faults (issue 14), against the Slack and QuickBooks stand-ins over real HTTP:

- a lost answer (Slack posted, the answer never came: a 5xx after the fact, fatal_error, a client timeout, or the
  process killed between Slack's answer and the commit) never makes a second message;
- a notification is marked delivered only when Slack shows it: a digest counts the open errors it stands for;
- a slow or rate-limited channel delays only itself, nothing sleeps, and thread lines are retried, not dropped;
- each class of Slack's refusals (bot/slack_errors.py) is handled its own way.

Each test reads what a user would see (the stand-in's channel, DMs) or what the database holds.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select

from bot.blocks import ids
from bot.models import ScheduledSend, SlackMessage, Workspace
from sandbox.slack import config as slack_cfg
from sync.models import Account, Contact, Notification, SyncLogEntry
from tests.conftest import CHANNEL, QBO, Stack, wait_for
from tests.test_slack_flows import deliver_all, pending

OTHER_CHANNEL = "C0000000009"


def top_level(stack: Stack, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [m.to_dict() for m in stack.slack.standin.messages(channel)]


def record_topics_shown(stack: Stack) -> Counter[str]:
    """How many channel messages each record's notification topic has (read back from the message metadata
    when there is some, else from the record named in the text)."""
    shown: Counter[str] = Counter()
    for m in top_level(stack):
        if "sync errors since" in m["text"] or "Authentication" in m["text"]:
            continue
        shown[m["text"].split(" (")[0].split(": ", 2)[-1]] += 1
    return shown


def open_records(stack: Stack) -> int:
    with stack.rt.services.sessions() as session:
        return session.scalar(select(func.count(func.distinct(SyncLogEntry.record_id))).where(
            SyncLogEntry.status.in_(("error", "warning")), SyncLogEntry.superseded_by_id.is_(None),
            SyncLogEntry.resolved_at.is_(None), SyncLogEntry.record_id.is_not(None))) or 0


def acme_posted(stack: Stack, qbo: QBO) -> tuple[dict[str, Any], int]:
    """Acme Corp fails as a duplicate and its message is in the channel: (message, entry id)."""
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    acme = next(m for m in top_level(stack) if "Acme Corp" in m["text"])
    entry = next(e for e in stack.rt.services.engine.open_errors(stack.connection_id) if e.kind == "duplicate")
    return acme, entry.id


# ------------------------------------------------------------------------------------------ a lost answer


@pytest.mark.parametrize("fault", [
    {"status": 504, "body": "<html><body>504 Gateway Time-out</body></html>"},
    {"error": "fatal_error"},
    {"status": 500, "error": "internal_error"},
], ids=["gateway-504", "fatal_error", "internal_error"])
def test_a_post_whose_answer_is_lost_is_found_not_posted_again(stack: Stack, qbo: QBO, fault: dict[str, Any]) -> None:
    stack.slack.standin.inject_fault("chat.postMessage", 2, after=True, **fault)  # posted; the answer lost
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    shown = record_topics_shown(stack)
    assert shown and max(shown.values()) == 1, shown  # every record once
    with stack.rt.services.sessions() as session:
        rows = {r.ts for r in session.scalars(select(SlackMessage).where(SlackMessage.topic.like("record:%")))}
    assert rows == {m["ts"] for m in top_level(stack) if m["ts"] in rows} and None not in rows
    assert len(stack.slack.standin.calls("conversations.history")) >= 1  # it looked before posting again
    assert pending(stack) == 0


def test_a_post_answered_after_the_client_gave_up_is_found_not_posted_again(stack: Stack, qbo: QBO) -> None:
    stack.rt.clients.background.timeout = 1  # the background client's timeout, shortened for the test
    stack.slack.standin.inject_fault("chat.postMessage", 1, delay=2.0)  # Slack posts, answers after 2 s
    acme, entry_id = acme_posted(stack, qbo)
    shown = record_topics_shown(stack)
    assert max(shown.values()) == 1, shown
    stack.rt.services.engine.retry_entry(entry_id, "U_ADMIN")
    deliver_all(stack)  # the later attempt updates the one message there is
    assert len(stack.slack.standin.message(CHANNEL, acme["ts"]).replies) == 1


def test_a_process_killed_between_slacks_answer_and_the_commit_leaves_one_message(stack: Stack, qbo: QBO) -> None:
    """A real crash: another process delivers; Slack posts and holds its answer; the process is killed -9."""
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.slack.standin.inject_fault("chat.postMessage", 1, delay=12.0)  # posted at once, answered in 12 s
    values = {}
    for name, field in type(stack.rt.settings).model_fields.items():
        value = getattr(stack.rt.settings, name)
        if value is None:
            continue
        values[field.alias or name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    script = ("import json, sys\n"
              "from bot.config import Settings\nfrom bot.services import build_services\n"
              "from bot.wiring import build_runtime\n"
              "rt = build_runtime(build_services(Settings(_env_file=None, **json.loads(sys.argv[1])), migrate=False))\n"
              "rt.notifier.post_interval = 0.0\nrt.notifier.deliver()\n")
    worker = subprocess.Popen([sys.executable, "-c", script, json.dumps(values, default=str)],
                              cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        wait_for(lambda: top_level(stack), timeout=30)  # Slack has the post; the worker waits for the answer
        time.sleep(0.3)
    finally:
        worker.kill()
        worker.wait(10)
    [first] = top_level(stack)
    deliver_all(stack)
    shown = record_topics_shown(stack)
    assert max(shown.values()) == 1, shown  # the killed post was adopted, not posted again
    assert first["ts"] in {m["ts"] for m in top_level(stack)}
    with stack.rt.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SlackMessage).where(
            SlackMessage.ts == first["ts"])) == 1


# ------------------------------------------------------------------------------------------ shown = delivered


def test_a_digest_after_refused_posts_counts_every_open_error(stack: Stack, qbo: QBO) -> None:
    """Issue 14.5: one pass in which Slack refused posts (not a rate limit), then the flood folds the rest: the
    digest counts the errors it stands for, and none vanishes from the channel."""
    notifier = stack.rt.notifier
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    already = len(top_level(stack))
    notifier.flood_threshold = already + 2  # two more record messages and the flood begins
    stack.add_duplicates(qbo, [f"Refused client {i:02d}" for i in range(12)])
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.slack.standin.inject_fault("chat.postMessage", 12, error="invalid_arg_name")
    notifier.deliver()  # every post refused
    deliver_all(stack)
    messages = top_level(stack)
    [digest] = [m for m in messages if "sync errors since" in m["text"]]
    folded = int(digest["text"].split()[0])
    with stack.rt.services.sessions() as session:
        own = session.scalar(select(func.count()).select_from(SlackMessage).where(
            SlackMessage.topic.like("record:%"), SlackMessage.ts.is_not(None)))
    assert folded > 0 and own + folded == open_records(stack), (own, folded, open_records(stack))
    assert pending(stack) == 0


def test_a_digest_slack_refuses_marks_nothing_delivered(stack: Stack, qbo: QBO) -> None:
    notifier = stack.rt.notifier
    notifier.flood_threshold = 1
    stack.add_duplicates(qbo, [f"Digest client {i}" for i in range(5)])
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)  # the first record posts, the others fold into the digest, which goes out
    stack.add_duplicates(qbo, [f"Later client {i}" for i in range(3)])
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    [digest] = [m for m in top_level(stack) if "sync errors since" in m["text"]]
    stack.slack.standin.inject_fault("chat.update", 20, status=503, match={"ts": digest["ts"]})  # the digest's
    notifier.deliver()
    with stack.rt.services.sessions() as session:
        later = [f"record:{stack.connection_id}:contact:{c.id}" for c in session.scalars(
            select(Contact).where(Contact.display_name.like("Later client%")))]
        delivered = session.scalar(select(func.count()).select_from(Notification).where(
            Notification.topic.in_(later), Notification.delivered_at.is_not(None)))
    assert len(later) == 3 and delivered == 0, "folded into a digest Slack did not show: not delivered"
    stack.slack.standin.clear_faults()
    deliver_all(stack)
    [digest] = [m for m in top_level(stack) if "sync errors since" in m["text"]]
    with stack.rt.services.sessions() as session:
        own = session.scalar(select(func.count()).select_from(SlackMessage).where(
            SlackMessage.topic.like("record:%"), SlackMessage.ts.is_not(None)))
    assert own + int(digest["text"].split()[0]) == open_records(stack)


# ------------------------------------------------------------------------------------------ slow channels


def other_account(stack: Stack) -> int:
    """A second account, bound to another workspace whose channel is OTHER_CHANNEL, with its weekly summary due
    (queued after the first account's errors)."""
    stack.slack.standin.add_channel(slack_cfg.DEFAULT_TEAM_ID, OTHER_CHANNEL, "other-syncs", bot_member=True,
                                    members=[slack_cfg.OWNER_USER_ID])
    with stack.rt.services.sessions() as session, session.begin():
        account = Account(name="Other Builders", timezone="America/Chicago")
        session.add(account)
        session.flush()
        account_id = account.id
        session.add(Workspace(team_id="T0000000009", account_id=account_id, channel_id=OTHER_CHANNEL))
        send = ScheduledSend(job="summary", key=f"test:{account_id}", account_id=account_id,
                             due_at=dt.datetime.now(dt.UTC))
        session.add(send)
        session.flush()
        session.add(Notification(account_id=account_id, topic=f"summary:{send.id}", event="summary"))
    return account_id


def test_a_slow_channel_delays_only_itself(stack: Stack, qbo: QBO) -> None:
    stack.add_duplicates(qbo, [f"Slow client {i}" for i in range(5)])
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # the first account's errors, queued first
    other_account(stack)
    stack.rt.notifier.channel_budget_seconds = 1.0
    stack.slack.standin.inject_fault("chat.postMessage", 20, delay=1.2, match={"channel": CHANNEL})  # slow
    started = time.monotonic()
    stack.rt.notifier.deliver()
    elapsed = time.monotonic() - started
    assert len(top_level(stack, OTHER_CHANNEL)) == 1, "the other channel's summary went out in the same pass"
    assert elapsed < 4.0, f"the slow channel held the pass for {elapsed:.1f} s"
    stack.slack.standin.clear_faults()
    deliver_all(stack)  # the slow channel's messages follow, each once
    shown = record_topics_shown(stack)
    assert shown and max(shown.values()) == 1


def test_a_retry_after_pauses_that_channel_without_sleeping(stack: Stack, qbo: QBO) -> None:
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    other_account(stack)
    stack.slack.standin.inject_fault("chat.postMessage", 1, status=429, retry_after=5, match={"channel": CHANNEL})
    started = time.monotonic()
    stack.rt.notifier.deliver()
    assert time.monotonic() - started < 3.0, "nothing sleeps out a Retry-After"
    assert len(top_level(stack, OTHER_CHANNEL)) == 1 and top_level(stack) == []
    with stack.rt.services.sessions() as session:
        waits = [(n.next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds() for n in session.scalars(
            select(Notification).where(Notification.delivered_at.is_(None)))]
    assert waits and all(2.0 < w <= 5.5 for w in waits), waits  # Slack's Retry-After, stored with each


def test_a_thread_line_slack_refuses_is_sent_later_not_dropped(stack: Stack, qbo: QBO) -> None:
    acme, entry_id = acme_posted(stack, qbo)
    stack.slack.standin.inject_fault("chat.postMessage", 1, status=503, match={"thread_ts": acme["ts"]})
    stack.rt.services.engine.retry_entry(entry_id, "U_ADMIN")  # still a duplicate: attempt 2
    deliver_all(stack)
    thread = stack.slack.standin.message(CHANNEL, acme["ts"]).replies
    assert [r.text for r in thread].count("Attempt 2 by U_ADMIN: error (duplicate).") == 1, [r.text for r in thread]


def test_attempts_between_two_passes_each_keep_their_thread_line(stack: Stack, qbo: QBO) -> None:
    acme, entry_id = acme_posted(stack, qbo)
    stack.rt.services.engine.retry_entry(entry_id, "U_ADMIN")  # attempt 2
    newest = next(e for e in stack.rt.services.engine.open_errors(stack.connection_id) if e.kind == "duplicate")
    stack.rt.services.engine.retry_entry(newest.id, "U_ADMIN")  # attempt 3, before the notifier's next pass
    deliver_all(stack)
    lines = [r.text for r in stack.slack.standin.message(CHANNEL, acme["ts"]).replies]
    assert lines == ["Attempt 2 by U_ADMIN: error (duplicate).", "Attempt 3 by U_ADMIN: error (duplicate)."], lines


def test_a_thread_line_whose_answer_was_lost_is_found_not_posted_twice(stack: Stack, qbo: QBO) -> None:
    acme, entry_id = acme_posted(stack, qbo)
    stack.slack.standin.inject_fault("chat.postMessage", 1, status=502, body="<html>Bad Gateway</html>",
                                     after=True, match={"thread_ts": acme["ts"]})
    stack.rt.services.engine.retry_entry(entry_id, "U_ADMIN")
    deliver_all(stack)
    thread = stack.slack.standin.message(CHANNEL, acme["ts"]).replies
    assert len(thread) == 1, [r.text for r in thread]
    assert stack.slack.standin.calls("conversations.replies")


# ------------------------------------------------------------------------------------------ refusals by class


def test_the_table_puts_every_listed_error_in_one_class() -> None:
    from bot.slack_errors import CLASSES, COMMON_ERRORS, METHOD_ERRORS, Refusal, classify

    listed = set().union(*METHOD_ERRORS.values()) | COMMON_ERRORS
    seen = Counter(e for errors in CLASSES.values() for e in errors)
    assert set(seen) == listed and max(seen.values()) == 1
    for method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.publish", "views.open",
                   "users.info", "conversations.open", "conversations.history", "conversations.replies"):
        assert METHOD_ERRORS[method], method
    assert classify("ratelimited") is Refusal.WAIT and classify(None, 429) is Refusal.WAIT
    assert classify("whatever", 503) is Refusal.UNAVAILABLE and classify("never_heard_of") is Refusal.FAIL


def test_the_stand_in_answers_every_listed_error(stack: Stack) -> None:
    from bot.slack_errors import METHOD_ERRORS

    client = WebClient(base_url=stack.slack.api_url, token=slack_cfg.DEFAULT_BOT_TOKEN)
    client.retry_handlers.clear()
    for method, errors in METHOD_ERRORS.items():
        for error in sorted(errors):
            stack.slack.standin.inject_fault(method, 1, error=error)
            with pytest.raises(SlackApiError) as exc:
                client.api_call(method, json={"channel": CHANNEL})
            assert exc.value.response["error"] == error


def test_wait_every_kind_of_rate_limit_is_waited_out_briefly(stack: Stack, qbo: QBO) -> None:
    stack.slack.standin.inject_fault("chat.postMessage", 1, error="message_limit_exceeded")
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.rt.notifier.deliver()
    with stack.rt.services.sessions() as session:
        waiting = list(session.scalars(select(Notification).where(Notification.delivered_at.is_(None))))
    assert waiting and all("rate limited" in (n.last_error or "") for n in waiting)
    assert max((n.next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds() for n in waiting) <= 60
    deliver_all(stack)
    assert max(record_topics_shown(stack).values()) == 1


@pytest.mark.parametrize("error", ["msg_too_long", "msg_blocks_too_long", "invalid_blocks"])
def test_shorten_a_message_too_long_goes_out_short_with_its_buttons(stack: Stack, qbo: QBO, error: str) -> None:
    stack.slack.standin.inject_fault("chat.postMessage", 1, error=error)
    acme_posted(stack, qbo)  # the first post (Acme Corp's or another's) was refused once
    shortened = [m for m in top_level(stack) if "Details left out" in json.dumps(m.get("blocks"))]
    assert len(shortened) == 1
    assert ids.VIEW_ENTRY_LOG in json.dumps(shortened[0]["blocks"])  # the buttons stay
    assert pending(stack) == 0


def test_shorten_an_update_refused_twice_goes_out_as_plain_text(stack: Stack, qbo: QBO) -> None:
    acme, entry_id = acme_posted(stack, qbo)
    stack.slack.standin.inject_fault("chat.update", 2, error="msg_blocks_too_long")
    stack.rt.services.engine.retry_entry(entry_id, "U_ADMIN")
    deliver_all(stack)
    shown = stack.slack.standin.message(CHANNEL, acme["ts"])
    assert shown.text.startswith("Error: Duplicate record") and shown.blocks == []
    assert pending(stack) == 0


def test_admin_a_missing_scope_is_told_once_naming_it_and_costs_one_call(stack: Stack) -> None:
    stack.slack.standin.set_scopes(slack_cfg.DEFAULT_TEAM_ID, ["commands", "chat:write", "im:write",
                                                              "channels:history", "groups:history", "im:history"])
    with stack.rt.services.sessions() as session, session.begin():  # who set syncbot up, before the scope went
        session.get(Workspace, slack_cfg.DEFAULT_TEAM_ID).installer_user_id = slack_cfg.OWNER_USER_ID
    for user in (slack_cfg.ADMIN_USER_ID, slack_cfg.MEMBER_USER_ID, slack_cfg.ADMIN_USER_ID):
        assert stack.driver.slash_command("/sync-log", "status", user_id=user).status_code == 200
    refused = [c for c in stack.slack.standin.calls("users.info") if c.error == "missing_scope"]
    assert len(refused) == 1, "a workspace missing the scope costs one call, not one per request"
    stack.rt.notifier.deliver()
    dm = wait_for(lambda: [c for c in stack.slack.standin.calls("chat.postMessage")
                           if "users:read" in str(c.params.get("text"))])
    assert len(dm) == 1 and "reinstall" in dm[0].params["text"]
    stack.rt.notifier.deliver()
    assert len([c for c in stack.slack.standin.calls("chat.postMessage")
                if "users:read" in str(c.params.get("text"))]) == 1, "told once"


def test_admin_a_revoked_token_is_remembered_and_delivery_waits(stack: Stack, qbo: QBO) -> None:
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.slack.standin.set_token_state(slack_cfg.DEFAULT_TEAM_ID, "revoked")
    stack.rt.notifier.deliver()
    assert pending(stack) > 0 and top_level(stack) == []
    with stack.rt.services.sessions() as session:
        problem = session.get(Workspace, slack_cfg.DEFAULT_TEAM_ID).channel_problem or ""
    assert "token_revoked" in problem and "reinstall" in problem
    posts = len(stack.slack.standin.calls("chat.postMessage"))
    assert posts == 1, "one refused call for the channel, the rest wait"
    stack.slack.standin.set_token_state(slack_cfg.DEFAULT_TEAM_ID, "active")
    deliver_all(stack)
    assert pending(stack) == 0 and max(record_topics_shown(stack).values()) == 1


def test_fail_an_unhandled_refusal_is_logged_loudly_and_waits(stack: Stack, qbo: QBO,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    stack.slack.standin.inject_fault("chat.postMessage", 1, error="invalid_arg_name")
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    with caplog.at_level(logging.ERROR, logger="syncbot.notifier"):
        stack.rt.notifier.deliver()
    assert any("slack_call_refused" in r.getMessage() and "invalid_arg_name" in r.getMessage()
               for r in caplog.records)
    with stack.rt.services.sessions() as session:
        refused = session.scalars(select(Notification).where(Notification.last_error.like("%invalid_arg_name%"))).all()
    assert refused and all(n.delivered_at is None for n in refused)
    deliver_all(stack)
    assert pending(stack) == 0 and max(record_topics_shown(stack).values()) == 1


def test_unavailable_a_home_slack_could_not_publish_is_published_at_the_next_flush(stack: Stack, qbo: QBO) -> None:
    assert stack.driver.app_home_opened(slack_cfg.OWNER_USER_ID).status_code == 200
    wait_for(lambda: stack.slack.standin.home_view(slack_cfg.OWNER_USER_ID, slack_cfg.DEFAULT_TEAM_ID))
    stack.rt.home.min_interval = 0.0
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.slack.standin.inject_fault("views.publish", 1, error="service_unavailable")
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()  # the notifier's pass re-publishes the Home: Slack is unavailable
    assert [c.error for c in stack.slack.standin.calls("views.publish")][-1] == "service_unavailable"
    assert "Acme Corp" not in str(stack.slack.standin.home_view(slack_cfg.OWNER_USER_ID, slack_cfg.DEFAULT_TEAM_ID))
    stack.rt.home.flush()  # the next flush, with no new change: the account is still due
    assert "Acme Corp" in str(stack.slack.standin.home_view(slack_cfg.OWNER_USER_ID, slack_cfg.DEFAULT_TEAM_ID))
