"""The Slack situations of tests/fixtures/slack_situations.json (real situations Slack apps met), each met the way
Slack met it in the report, and each answered with the situation's expected_behaviour."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.blocks import ids
from bot.models import SlackMessage, Workspace
from sandbox.slack import config as slack_cfg
from sync.models import Contact, Notification, SyncLogEntry
from tests.conftest import CHANNEL, QBO, Stack, wait_for
from tests.test_slack_flows import deliver_all, pending

SITUATIONS = {s["id"]: s for s in json.loads(
    (Path(__file__).parent / "fixtures" / "slack_situations.json").read_text())}


def test_the_fixture_holds_the_seven_situations() -> None:
    assert sorted(SITUATIONS) == ["SL-01", "SL-03", "SL-05", "SL-07", "SL-09", "SL-11", "SL-13"]


def test_sl01_slow_provider_behind_a_command_is_acked_first(stack: Stack, qbo: QBO) -> None:
    situation = SITUATIONS["SL-01"]
    qbo.standin.set_tax(qbo.realm, True, 8.875)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # JS-1001: a total mismatch warning
    qbo.standin.configure(latency_seconds=situation["input"]["provider_latency_s"] / 2)
    requests_before = len(qbo.standin.request_log(qbo.realm))
    started = time.monotonic()
    result = stack.driver.slash_command("/sync-log", "retry JS-1001")
    elapsed = time.monotonic() - started
    assert result.status_code == 200 and elapsed < 3.0, elapsed
    assert "Retrying JS-1001" in result.response.text
    assert len(qbo.standin.request_log(qbo.realm)) == requests_before, "no provider call before the ack"

    def new_attempt() -> Any:
        with stack.rt.services.sessions() as session:
            return session.scalars(select(SyncLogEntry).where(
                SyncLogEntry.record_label == "JS-1001", SyncLogEntry.status != "pending",
                SyncLogEntry.attempt == 2)).first()

    assert wait_for(new_attempt, timeout=30).actor


def test_sl03_skewed_clock_is_refused_and_logged_with_the_skew(stack: Stack,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    skew = SITUATIONS["SL-03"]["input"]["server_clock_offset_s"]
    with caplog.at_level(logging.WARNING, logger="syncbot.server"):
        result = stack.driver.slash_command("/sync-log", "status", skew_s=-skew)
    assert result.status_code == 401
    [record] = [r for r in caplog.records if "slack_request_refused" in r.getMessage()]
    logged_skew = int(record.getMessage().split("skew_s=")[1].split()[0])
    assert abs(logged_skew - skew) <= 5


def details_view(stack: Stack, message: dict[str, Any]) -> dict[str, Any]:
    """The Details modal the Owner opens from an error card (what the card leaves off its face)."""
    before = len(stack.slack.standin.open_views(slack_cfg.OWNER_USER_ID))
    assert stack.driver.click(ids.ENTRY_DETAILS, channel_id=CHANNEL, message_ts=message["ts"]).status_code == 200
    views = wait_for(lambda: stack.slack.standin.open_views(slack_cfg.OWNER_USER_ID)[before:])
    return views[-1]


def test_sl05_a_burst_under_429_loses_nothing_and_posts_nothing_twice(stack: Stack, qbo: QBO) -> None:
    names = [f"Client {i:02d}" for i in range(40)]
    stack.add_duplicates(qbo, names)
    stack.slack.standin.inject_fault("chat.postMessage", 2, status=429, retry_after=1)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    messages = stack.messages()
    singles = [m for m in messages if "sync errors since" not in m["text"]]
    [digest] = [m for m in messages if "sync errors since" in m["text"]]
    assert len({m["text"] for m in singles}) == len(singles), "nothing posted twice"
    assert len(singles) + int(digest["text"].split()[0]) == 41  # 40 duplicates and Permit fee: nothing lost
    assert 429 in [c.status for c in stack.slack.standin.calls("chat.postMessage")]
    assert pending(stack) == 0


def test_sl07_long_details_never_get_the_message_refused(stack: Stack, qbo: QBO,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    page = "<html><body>" + "<p>Down for maintenance &amp; upgrades</p>" * 140 + "</body></html>"
    assert len(page) > 5200
    # a new contact goes to QuickBooks in a batch request: the page answers it (every bId gets the page)
    qbo.standin.fail_next(qbo.realm, 1, status=400, content_type="text/html", body=page, path_contains="batch")
    with stack.rt.services.sessions() as session, session.begin():
        session.add(Contact(account_id=stack.account_id, display_name="Summit Roofing"))
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    refused = [c for c in stack.slack.standin.calls("chat.postMessage") if c.error == "invalid_blocks"]
    assert refused == [] and len(stack.messages()) >= 1
    [summit] = [m for m in stack.messages() if "Summit Roofing" in m["text"]]
    assert "Down for maintenance" not in str(summit["blocks"])  # the card stays scannable (issue 15, point 9)
    assert "Down for maintenance &amp; upgrades" in str(details_view(stack, summit))  # the page reached Slack
    # Should Slack refuse the blocks anyway, the plain-text fallback goes out once and the errors are logged.
    stack.slack.standin.inject_fault("chat.update", 1, error="invalid_blocks")
    with caplog.at_level(logging.ERROR, logger="syncbot.notifier"):
        entry = next(e for e in stack.rt.services.engine.open_errors(stack.connection_id) if e.kind == "validation")
        stack.rt.services.engine.retry_entry(entry.id, "U_ADMIN")
        deliver_all(stack)
    assert any("slack_invalid_blocks" in r.getMessage() for r in caplog.records)
    assert pending(stack) == 0


def test_sl09_the_fallback_text_stays_short(stack: Stack, qbo: QBO) -> None:
    qbo.standin.fail_next(qbo.realm, 1, status=400, content_type="application/json", body=json.dumps(
        {"Fault": {"Error": [{"Message": "x" * 30000, "Detail": "y" * 30000, "code": "6000"}],
                   "type": "ValidationFault"}}), path_contains="batch")
    with stack.rt.services.sessions() as session, session.begin():
        session.add(Contact(account_id=stack.account_id, display_name="Summit Roofing"))
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    posted = stack.slack.standin.calls("chat.postMessage")
    assert posted and all(c.ok or c.error == "ratelimited" for c in posted)  # a 429 is waited out, never refused
    [summit] = [m for m in stack.messages() if "Summit Roofing" in m["text"]]
    assert "xxxxx" in str(details_view(stack, summit)), "the huge fault itself reached Slack"
    assert max(len(str(c.params.get("text", ""))) for c in posted) < 4000


def test_sl11_a_message_that_cannot_be_updated_is_posted_afresh(stack: Stack, qbo: QBO) -> None:
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    for error in SITUATIONS["SL-11"]["input"]["responses"][:1]:
        stack.slack.standin.set_update_error(CHANNEL, acme["ts"], error["body"]["error"])
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    entry = next(e for e in stack.rt.services.engine.open_errors(stack.connection_id) if e.kind == "duplicate")
    stack.rt.services.engine.retry_entry(entry.id, "U_ADMIN")
    deliver_all(stack)
    with stack.rt.services.sessions() as session:
        row = session.scalars(select(SlackMessage).where(SlackMessage.topic.like("record:%:contact:%"))).one()
    assert row.ts != acme["ts"]
    assert ":white_check_mark:" in str(stack.message(row.ts)["blocks"])
    assert not [c for c in stack.slack.standin.calls("chat.update")
                if c.params.get("ts") == acme["ts"] and c.ok]


def test_sl13_a_private_channel_the_bot_is_not_in(stack: Stack, qbo: QBO) -> None:
    private = SITUATIONS["SL-13"]["input"]["params"]["channel"]
    answer = stack.driver.slash_command("/sync-log", f"channel <#{private}|finance>")
    assert private in answer.response.text
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.rt.notifier.deliver()
    assert pending(stack) == 2, "the notifications wait"
    with stack.rt.services.sessions() as session:
        ws = session.get(Workspace, slack_cfg.DEFAULT_TEAM_ID)
        assert ws.channel_problem and ws.channel_problem.startswith(("not_in_channel", "channel_not_found"))
        assert session.scalar(select(func.count()).select_from(SyncLogEntry).where(
            SyncLogEntry.status == "error")) == 2, "the entries are kept"
    dms = [c for c in stack.slack.standin.calls("chat.postMessage") if "cannot post" in str(c.params.get("text"))]
    assert len(dms) == 1 and "/invite @syncbot" in dms[0].params["text"]
    assert "cannot reach the channel" in stack.driver.slash_command("/sync-log", "status").response.text

    stack.rt.notifier.deliver()  # still broken: no second DM
    assert len([c for c in stack.slack.standin.calls("chat.postMessage")
                if "cannot post" in str(c.params.get("text"))]) == 1
    stack.slack.standin.set_bot_membership(private, True)  # invited
    deliver_all(stack)
    assert len(stack.slack.standin.messages(private)) == 2
    with stack.rt.services.sessions() as session:
        assert session.get(Workspace, slack_cfg.DEFAULT_TEAM_ID).channel_problem is None
        assert session.scalar(select(func.count()).select_from(Notification).where(
            Notification.delivered_at.is_(None))) == 0


def test_the_providers_links_arrive_clickable(stack: Stack, qbo: QBO) -> None:
    """A Fault whose Detail carries an HTML link (QuickBooks points to its help pages so): the posted error
    message shows it as a Slack link, and the stand-in, which validates blocks as Slack does, takes it."""
    qbo.standin.fail_next(qbo.realm, 1, status=400, content_type="application/json", body=json.dumps(
        {"Fault": {"Error": [{"Message": "A business validation error has occurred while processing your request",
                              "Detail": 'Business Validation Error: see <a href="https://quickbooks.intuit.com/'
                                        'learn-support/en-us/help-article/sales-taxes/?x=1&amp;y=2">Fix sales tax'
                                        "</a> first.", "code": "6000"}], "type": "ValidationFault"}}),
        path_contains="customer")
    with stack.rt.services.sessions() as session, session.begin():
        contact = Contact(account_id=stack.account_id, display_name="Summit Roofing")
        session.add(contact)
        session.flush()
        contact_id = contact.id
    entry = stack.rt.services.engine.sync_record(stack.connection_id, "contact", contact_id, "U_ADMIN")
    assert entry is not None and entry.kind == "validation"
    deliver_all(stack)
    [message] = [m for m in stack.messages() if "Summit Roofing" in m["text"]]
    view = details_view(stack, message)
    details = next(b["text"]["text"] for b in view["blocks"] if "Details from QuickBooks" in str(b))
    assert ("see <https://quickbooks.intuit.com/learn-support/en-us/help-article/sales-taxes/?x=1&amp;y=2"
            "|Fix sales tax> first.") in details
    assert "<" not in message["text"]
    assert all(c.ok or c.error == "ratelimited" for c in stack.slack.standin.calls("chat.postMessage"))


# ------------------------------------------------------------------------------------------ variants
# Variants of the situations above (other answers Slack gives in the same kind of trouble), listed in
# tests/fixtures/slack_variants.json with what each found; those that found something are tested here (issue 7).

VARIANTS = {v["id"]: v for v in json.loads((Path(__file__).parent / "fixtures" / "slack_variants.json").read_text())}


def test_every_variant_that_found_something_has_its_test() -> None:
    for variant in VARIANTS.values():
        assert variant["of"] in SITUATIONS
        if variant["found"]:
            assert variant["test"] in globals(), variant


@pytest.mark.parametrize("stamp", VARIANTS["SLV-03a"]["input"]["request"]["headers"]["X-Slack-Request-Timestamp"])
def test_sl03_variant_an_unreadable_timestamp_is_refused_not_a_500(stack: Stack, stamp: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    body = (f"command=%2Fsync-log&text=status&team_id={slack_cfg.DEFAULT_TEAM_ID}&channel_id={CHANNEL}"
            f"&user_id={slack_cfg.OWNER_USER_ID}")
    with caplog.at_level(logging.WARNING, logger="syncbot.server"):
        result, _ = stack.driver.send(body, "application/x-www-form-urlencoded",
                                      extra_headers={"X-Slack-Request-Timestamp": stamp})
    assert result.status_code == 401  # an empty timestamp reached Bolt, whose int("") answered 500
    assert any("slack_request_refused" in r.getMessage() for r in caplog.records)


def _acme_posted_then_synced(stack: Stack, qbo: QBO) -> tuple[dict[str, Any], int]:
    """A duplicate's message posted; then the duplicate renamed in QuickBooks: a retry will sync it."""
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    entry = next(e for e in stack.rt.services.engine.open_errors(stack.connection_id) if e.kind == "duplicate")
    return acme, entry.id


def test_sl07_variant_refused_blocks_on_an_update_leave_no_outdated_state(stack: Stack, qbo: QBO) -> None:
    acme, entry_id = _acme_posted_then_synced(stack, qbo)
    stack.slack.standin.inject_fault("chat.update", 5, error="invalid_blocks")
    stack.rt.services.engine.retry_entry(entry_id, "U_ADMIN")
    deliver_all(stack)
    shown = stack.message(acme["ts"])
    assert shown["text"].startswith("Synced: Contact Acme Corp")
    # chat.update without blocks keeps the old ones: the error and its Retry button stayed under "Synced"
    assert "Duplicate record" not in json.dumps(shown.get("blocks") or [])


@pytest.mark.parametrize("error", ["message_not_found", "cant_update_message"])
def test_sl11_an_incident_message_that_is_gone_turns_reconnected_afresh(stack: Stack, qbo: QBO, error: str) -> None:
    """SL-11 as the case tells it: the incident message, turned Reconnected, can no longer be updated."""
    from tests.conftest import connect

    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    incident = next(m for m in stack.messages() if "Authentication expired" in m["text"])
    stack.slack.standin.set_update_error(CHANNEL, incident["ts"], error)
    connect(stack.rt.services, qbo, stack.account_id)  # Reconnect, then resume (as the callback does)
    stack.rt.services.engine.resume(stack.connection_id, "U_ADMIN", "reconnected")
    deliver_all(stack)
    with stack.rt.services.sessions() as session:
        row = session.scalars(select(SlackMessage).where(SlackMessage.topic.like("connection:%"))).one()
    assert row.ts != incident["ts"]
    assert "Reconnected" in stack.message(row.ts)["text"]


def test_sl11_variant_the_attempts_thread_line_follows_the_fresh_message(stack: Stack, qbo: QBO) -> None:
    acme, entry_id = _acme_posted_then_synced(stack, qbo)
    stack.slack.standin.set_update_error(CHANNEL, acme["ts"], "message_not_found")
    stack.rt.services.engine.retry_entry(entry_id, "U_ADMIN")
    deliver_all(stack)
    with stack.rt.services.sessions() as session:
        row = session.scalars(select(SlackMessage).where(SlackMessage.topic.like("record:%:contact:%"))).one()
    notes = [c for c in stack.slack.standin.calls("chat.postMessage") if c.params.get("thread_ts") and c.ok]
    assert notes and {c.params["thread_ts"] for c in notes} == {row.ts}  # not the gone message's thread


def test_sl13_variant_an_archived_channel_is_a_channel_problem_then_a_new_channel_works(stack: Stack,
                                                                                       qbo: QBO) -> None:
    stack.driver.slash_command("/sync-log", f"channel <#{CHANNEL}|sync-errors>")  # set up by the owner
    _, entry_id = _acme_posted_then_synced(stack, qbo)
    stack.slack.standin.archive_channel(CHANNEL)
    stack.rt.services.engine.retry_entry(entry_id, "U_ADMIN")
    stack.rt.notifier.deliver()
    with stack.rt.services.sessions() as session:  # chat.update answers is_inactive for an archived channel
        assert (session.get(Workspace, slack_cfg.DEFAULT_TEAM_ID).channel_problem or "").startswith("is_inactive")
    assert pending(stack) >= 1, "the update waits"
    dms = [c for c in stack.slack.standin.calls("chat.postMessage") if "cannot post" in str(c.params.get("text"))]
    assert len(dms) == 1 and "/invite @syncbot" in dms[0].params["text"]

    stack.slack.standin.set_bot_membership(slack_cfg.GENERAL_CHANNEL_ID, True)
    answer = stack.driver.slash_command("/sync-log", f"channel <#{slack_cfg.GENERAL_CHANNEL_ID}|general>")
    assert slack_cfg.GENERAL_CHANNEL_ID in answer.response.text
    deliver_all(stack)
    moved = [m for m in stack.slack.standin.messages(slack_cfg.GENERAL_CHANNEL_ID) if "Acme Corp" in m.text]
    assert len(moved) == 1 and moved[0].text.startswith("Synced: Contact Acme Corp")
    with stack.rt.services.sessions() as session:
        row = session.scalars(select(SlackMessage).where(SlackMessage.topic.like("record:%:contact:%"))).one()
        assert (row.channel_id, row.ts) == (slack_cfg.GENERAL_CHANNEL_ID, moved[0].ts)


def test_sl05_a_retry_after_that_is_not_a_number_of_seconds_still_reschedules() -> None:
    from bot.notifier.base import retry_after_wait

    assert retry_after_wait("7") == 7.0 and retry_after_wait(None) == 30.0
    assert [retry_after_wait(v) for v in ("soon", "", "nan", "-5", "1e9")] == [30.0, 30.0, 30.0, 1.0, 3600.0]
