"""One definition of an open error, one severity per kind, on every surface (issue 15, point 5).

The situation seen: the connection is rate-limited while an invoice's total mismatch is open. `/sync-log status`,
the App Home, `/sync-log errors`, the Retry All offer, the channel, the Monday summary and the CLI must all show
the same two open errors, each with its kind's one severity (both yellow warnings)."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

from sqlalchemy import select
from typer.testing import CliRunner

from bot import config
from bot.blocks import ids
from bot.cli import app as cli_app
from sandbox.slack import config as slack_cfg
from sync.models import Account, SyncLogEntry
from tests.conftest import QBO, Stack, wait_for

YELLOW, RED = ":large_yellow_circle:", ":red_circle:"


def seen_situation(stack: Stack, qbo: QBO) -> None:
    """Rate-limited with the total mismatch open, and nothing else open."""
    engine = stack.rt.services.engine
    qbo.standin.set_tax(qbo.realm, True, 8.875)  # QuickBooks taxes at 8.875 %, JobsiteOn at 8.25 %
    engine.sync_now(stack.connection_id, "U_ADMIN")
    permit = next(e for e in engine.open_errors(stack.connection_id) if e.kind == "validation")
    engine.mark_resolved(permit.id, "U_ADMIN")  # the demo's Permit fee is out of the picture
    qbo.standin.exhaust_throttle(qbo.realm)
    assert engine.sync_now(stack.connection_id, "U_ADMIN").stopped == "rate_limited"
    with stack.rt.services.sessions() as session:
        shown = sorted((e.kind, e.status, e.record_id is None) for e in session.scalars(select(SyncLogEntry))
                       if e.is_open)
    assert shown == [("rate_limited", "warning", True), ("total_mismatch", "warning", False)]


def test_every_surface_shows_the_same_open_errors_with_one_severity_per_kind(stack: Stack, qbo: QBO) -> None:
    seen_situation(stack, qbo)
    stack.deliver()

    # /sync-log status
    status = json.dumps(stack.driver.slash_command("/sync-log", "status").json())
    assert "2 open errors" in status

    # the App Home: the count, and each open error with its kind's severity
    assert stack.driver.app_home_opened(slack_cfg.OWNER_USER_ID).status_code == 200
    home = json.dumps(wait_for(lambda: stack.slack.standin.home_view(slack_cfg.OWNER_USER_ID,
                                                                     slack_cfg.DEFAULT_TEAM_ID)))
    assert re.search(r"Open errors\*\\n2 \(", home), home
    assert home.count(RED) == 0 and home.count(YELLOW) >= 2

    # /sync-log errors lists both, yellow
    errors = json.dumps(stack.driver.slash_command("/sync-log", "errors").json())
    assert "JS-1001" in errors and "Rate limit exceeded" in errors and "Total mismatch" in errors
    assert errors.count(YELLOW) == 2 and RED not in errors
    assert "2 open errors" in errors or "open errors" in errors

    # the Retry All offer counts the same two, and says at once that the pause refuses it (no button that
    # cannot work)
    offer = stack.driver.slash_command("/sync-retry-all").json()
    said = json.dumps(offer)
    assert "2 open errors" in said and "Retry All can't run now" in said and "Rate limit exceeded" in said
    assert "resumes by itself" in said
    assert ids.RETRY_ALL_CONFIRM not in said

    # the channel: the incident and the invoice's message, both yellow warnings
    messages = stack.messages()
    rate = next(m for m in messages if "Rate limit exceeded" in json.dumps(m["blocks"]))
    invoice = next(m for m in messages if "JS-1001" in m["text"])
    for m in (rate, invoice):
        first = m["blocks"][0]["text"]["text"]
        assert first.startswith(YELLOW), first  # the colour says warning (the card's title is the kind's)
    # the incident counts the records whose cards wait on it: the invoice's, whatever its own kind
    assert "*1 record is waiting* on this connection" in json.dumps(rate["blocks"])

    # the Monday summary: the same two still open, each yellow
    from bot.scheduler import Jobs

    with stack.rt.services.sessions() as session, session.begin():
        session.get(Account, stack.account_id).created_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    monday = dt.datetime(2026, 12, 14, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
    assert Jobs(stack.rt.services).summaries(monday).queued == 1
    stack.deliver()
    summary = next(m for m in stack.messages() if m["text"].startswith("Weekly sync summary"))
    body = json.dumps(summary["blocks"])
    assert "2 still open" in summary["text"] and "Still open: 2 errors" in body
    oldest = body[body.index("Still open"):]
    assert oldest.count(YELLOW) == 2 and RED not in oldest

    # the CLI: the same two, as warnings
    settings = stack.rt.services.settings
    runner = CliRunner()
    env = {"DATABASE_URL": settings.database_url,
           "TOKEN_ENCRYPTION_KEYS": settings.token_encryption_keys.get_secret_value()}
    config.get_settings.cache_clear()
    try:
        result = runner.invoke(cli_app, ["sync-log", "errors", "--json"], env=env, catch_exceptions=False)
        listed = json.loads(result.output)
        assert listed["total"] == 2
        assert sorted((e["kind"], e["severity"]) for e in listed["entries"]) == [
            ("rate_limited", "warning"), ("total_mismatch", "warning")]
        text = runner.invoke(cli_app, ["sync-log", "errors"], env=env, catch_exceptions=False).output
        assert "warning/rate_limited" in text and "warning/total_mismatch" in text and "error/" not in text
    finally:
        config.get_settings.cache_clear()


def test_open_errors_count_the_same_in_sql_and_in_python(stack: Stack, qbo: QBO) -> None:
    from sync.log import open_counts, open_entries

    seen_situation(stack, qbo)
    with stack.rt.services.sessions() as session:
        every = list(session.scalars(select(SyncLogEntry)))
        assert sorted(e.id for e in open_entries(session, account_id=stack.account_id)) == sorted(
            e.id for e in every if e.is_open)
        assert open_counts(session, connection_id=stack.connection_id) == {"rate_limited": 1, "total_mismatch": 1}
    assert stack.rt.services.engine.counts(stack.connection_id) == {"rate_limited": 1, "total_mismatch": 1}


def test_retry_all_offers_the_same_count_and_names_what_it_cannot_retry(stack: Stack, qbo: QBO) -> None:
    seen_situation(stack, qbo)
    qbo.standin.clear_throttle(qbo.realm)
    with stack.rt.services.sessions() as session, session.begin():  # the pause is over; the pull is still open
        from sync.models import Connection

        session.get(Connection, stack.connection_id).paused_until = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    offer = json.dumps(stack.driver.slash_command("/sync-retry-all").json())
    # the total mismatch's card offers no Retry (found after the write: Retry would meet the same totals), so
    # Retry All does not offer it either: both open errors are named, with what fixes them
    assert "2 open errors, none that Retry All can retry" in offer, offer
    assert "Rate limit exceeded (1)" in offer and "Total mismatch (1): fix it with the buttons on its message" in offer
    assert ids.RETRY_ALL_CONFIRM not in offer
    # and Retry All itself, run anyway (the CLI's `syncbot retry-all`), leaves the mismatch as it is: no attempt
    engine = stack.rt.services.engine
    [mismatch] = [e for e in engine.open_errors(stack.connection_id) if e.kind == "total_mismatch"]
    assert engine.retry_all(stack.connection_id, "U_ADMIN").as_dict()["synced"] == 0
    [after] = [e for e in engine.open_errors(stack.connection_id) if e.kind == "total_mismatch"]
    assert (after.id, after.attempt) == (mismatch.id, mismatch.attempt)
