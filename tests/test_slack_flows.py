"""Longer Slack flows: an incident resolved by Reconnect, a burst folded into a digest, Slack 429s and outages
delivered exactly once, Retry All with confirmation, the App Home, the log's pages and the fill-field modal."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from sqlalchemy import func, select, update

from bot.blocks import ids
from bot.models import SlackChannelPace
from sandbox.slack import config as slack_cfg
from sync.models import Connection, Contact, Incident, Item, Notification, SyncLogEntry
from tests.conftest import CHANNEL, QBO, Stack, wait_for


def pending(stack: Stack) -> int:
    with stack.rt.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(Notification).where(
            Notification.delivered_at.is_(None))) or 0


def deliver_all(stack: Stack, rounds: int = 40) -> None:
    """Deliver until nothing is pending (re-running due reschedules, as the background loop would). The notifier
    never sleeps: a pass that met Slack's rate limit leaves the rest for later, so between passes this waits
    for the soonest reschedule (at most 1.1 s: Slack's Retry-After is real time on the stand-in), then makes
    every reschedule due at once (time travel for the longer back-offs)."""
    for _ in range(rounds):
        stack.rt.notifier.deliver()
        if not pending(stack):
            return
        with stack.rt.services.sessions() as session, session.begin():
            waiting = list(session.scalars(select(Notification).where(Notification.delivered_at.is_(None))))
            soonest = min((n.next_attempt_at for n in waiting if n.next_attempt_at is not None), default=None)
            for n in waiting:
                n.next_attempt_at = None  # time travel: the reschedule is due
            session.execute(update(SlackChannelPace).values(paused_until=None, next_post_at=None))  # and the pause
        wait = (soonest - stack.rt.notifier.clock()).total_seconds() if soonest is not None else 0.0
        time.sleep(min(max(wait, 0.05), 1.1))
    raise AssertionError("notifications still pending")


def test_incident_resolved_by_reconnect(stack: Stack, qbo: QBO) -> None:
    from sandbox.quickbooks.consent import click_connect

    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    incident = next(m for m in stack.messages() if "entry_retry" not in str(m["blocks"])
                    and ids.RECONNECT in str(m["blocks"]))
    assert "expired" in incident["text"].lower() or "reconnect" in incident["text"].lower()

    assert stack.driver.click(ids.RECONNECT, channel_id=CHANNEL, message_ts=incident["ts"],
                              user_id=slack_cfg.MEMBER_USER_ID).status_code == 200
    assert "Owner or Admin" in str(wait_for(lambda: stack.ephemerals(slack_cfg.MEMBER_USER_ID)))

    stack.driver.click(ids.RECONNECT, channel_id=CHANNEL, message_ts=incident["ts"],
                       user_id=slack_cfg.ADMIN_USER_ID)
    link_message = wait_for(lambda: stack.ephemerals(slack_cfg.ADMIN_USER_ID))[-1]
    start_url = next(el["url"] for b in link_message["blocks"] if b["type"] == "actions"
                     for el in b["elements"] if el.get("url"))
    assert start_url.startswith(f"{stack.url}/oauth/quickbooks/start?state=")
    to_intuit = httpx.get(start_url, follow_redirects=False)
    assert to_intuit.status_code == 302 and to_intuit.headers["location"].startswith(f"{qbo.url}/connect/oauth2")
    callback = click_connect(to_intuit.headers["location"], qbo.realm)
    callback_url = f"{stack.url}/oauth/quickbooks/callback?" + "&".join(f"{k}={v}" for k, v in callback.items())
    page = httpx.get(callback_url)
    assert page.status_code == 200 and "connected again" in page.text

    def reconnected() -> Any:
        deliver_all(stack)
        msg = stack.message(incident["ts"])
        return msg if "Reconnected" in str(msg["blocks"]) else None

    msg = wait_for(reconnected)
    assert ":white_check_mark:" in str(msg["blocks"])
    with stack.rt.services.sessions() as session:
        assert session.get(Connection, stack.connection_id).status == "connected"
        assert session.scalars(select(Incident)).one().resolved_by is not None

    replay = httpx.get(callback_url)
    assert replay.status_code == 400 and "used already" in replay.text
    forged = httpx.get(start_url.replace("state=", "state=x"))
    assert forged.status_code == 400
    query = parse_qs(urlparse(start_url).query)
    assert httpx.get(f"{stack.url}/oauth/quickbooks/callback?code=abc&realmId=1&state="
                     f"{query['state'][0][:-1]}0").status_code == 400


def test_a_burst_of_errors_folds_into_a_digest(stack: Stack, qbo: QBO) -> None:
    names = [f"Burst client {i:04d}" for i in range(1000)]
    stack.add_duplicates(qbo, names)
    # QuickBooks' minute shrunk to half a second on both sides, so 1,000 records take no real minutes
    qbo.standin.configure(minute_seconds=0.5)
    stack.rt.services.limiter.config.minute_seconds = 0.5
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    messages = stack.messages()
    assert len(messages) <= 12, len(messages)
    [digest] = [m for m in messages if "sync errors since" in m["text"]]
    with stack.rt.services.sessions() as session:
        failing_records = session.scalar(select(func.count()).select_from(SyncLogEntry).where(
            SyncLogEntry.status == "error"))
    assert failing_records == 1001  # the 1,000 duplicates and Permit fee: every entry is in the log
    singles = len(messages) - 1
    assert digest["text"].startswith(f"{failing_records - singles} sync errors"), digest["text"]
    assert ids.RETRY_ALL in str(digest["blocks"]) and ids.VIEW_LOG in str(digest["blocks"])
    assert pending(stack) == 0


def test_slack_429_and_outage_deliver_each_message_exactly_once(stack: Stack, qbo: QBO) -> None:
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.slack.standin.inject_fault("chat.postMessage", 3, status=429, retry_after=1)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    stack.slack.standin.inject_fault("chat.update", 4, status=503)
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    entry = next(e for e in stack.rt.services.engine.open_errors(stack.connection_id) if e.kind == "duplicate")
    stack.rt.services.engine.retry_entry(entry.id, "U_ADMIN")
    deliver_all(stack)
    top = [m for m in stack.messages() if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
    labels = [m["text"] for m in top]
    assert sum("Acme Corp" in t for t in labels) == 1 and sum("Permit fee" in t for t in labels) == 1
    acme = next(m for m in top if "Acme Corp" in m["text"])
    assert ":white_check_mark:" in str(acme["blocks"])
    assert pending(stack) == 0


def test_retry_all_confirm_progress_and_counts(stack: Stack, qbo: QBO) -> None:
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    with stack.rt.services.sessions() as session, session.begin():
        session.scalars(select(Item).where(Item.name == "Permit fee")).one().income_account = "79"
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    stack.driver.click(ids.VIEW_ENTRY_LOG, channel_id=CHANNEL, message_ts=acme["ts"])
    log_view = wait_for(lambda: stack.ephemerals(slack_cfg.OWNER_USER_ID))[-1]
    assert ids.RETRY_ALL in str(log_view["blocks"])
    stack.driver.click(ids.RETRY_ALL, channel_id=CHANNEL, message_ts=log_view["message_ts"], ephemeral=True)
    prompt = wait_for(lambda: [e for e in stack.ephemerals(slack_cfg.OWNER_USER_ID)
                               if ids.RETRY_ALL_CONFIRM in str(e["blocks"])])[-1]
    assert "Retry all 2 open errors?" in prompt["text"]
    stack.driver.click(ids.RETRY_ALL_CONFIRM, channel_id=CHANNEL, message_ts=prompt["message_ts"], ephemeral=True)

    def done() -> Any:
        found = [e for e in stack.ephemerals(slack_cfg.OWNER_USER_ID) if "Retry All finished" in e["text"]]
        return found[-1] if found else None

    final = wait_for(done)
    assert "2 synced" in final["text"] and "0 still failing" in final["text"]
    assert stack.rt.services.engine.open_errors(stack.connection_id) == []


def test_app_home_is_published(stack: Stack, qbo: QBO) -> None:
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    assert stack.driver.app_home_opened(slack_cfg.OWNER_USER_ID).status_code == 200
    view = wait_for(lambda: stack.slack.standin.home_view(slack_cfg.OWNER_USER_ID))
    text = str(view)
    assert "QuickBooks" in text and ids.SYNC_NOW in text and ids.RETRY_ALL in text and "Acme Corp" in text
    stack.driver.app_home_opened(slack_cfg.MEMBER_USER_ID)
    member_view = wait_for(lambda: stack.slack.standin.home_view(slack_cfg.MEMBER_USER_ID))
    assert "Owner or Admin" in str(member_view) and "Acme Corp" not in str(member_view)


def test_log_pages_next_and_previous(stack: Stack, qbo: QBO) -> None:
    for _ in range(5):
        with stack.rt.services.sessions() as session, session.begin():
            for c in session.scalars(select(Contact)):
                c.phone = f"555-{time.time_ns() % 10000:04d}"
        stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    first = stack.driver.slash_command("/sync-log", "entity:contact")
    assert ids.LOG_NEXT in str(first.json())
    shown: list[str] = []
    # the first page came back in the HTTP answer; page through with the Next button of an ephemeral copy
    stack.rt.clients.request.chat_postEphemeral(channel=CHANNEL, user=slack_cfg.OWNER_USER_ID, **first.json())
    eph = stack.ephemerals(slack_cfg.OWNER_USER_ID)[-1]
    shown.append(str(eph["blocks"]))
    stack.driver.click(ids.LOG_NEXT, channel_id=CHANNEL, message_ts=eph["message_ts"], ephemeral=True)
    second = wait_for(lambda: [e for e in stack.ephemerals(slack_cfg.OWNER_USER_ID) if ids.LOG_PREV in
                               str(e["blocks"])])[-1]
    assert second["blocks"] != eph["blocks"]


def test_fill_field_modal_saves_and_retries(stack: Stack, qbo: QBO) -> None:
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    permit = next(m for m in stack.messages() if "Permit fee" in m["text"])
    assert ids.FILL_FIELD in str(permit["blocks"])
    stack.driver.click(ids.FILL_FIELD, channel_id=CHANNEL, message_ts=permit["ts"])
    view = wait_for(lambda: [v for v in stack.slack.standin.open_views(slack_cfg.OWNER_USER_ID)
                             if "static_select" in str(v["blocks"])])[-1]
    result = stack.driver.submit_view(view_id=view["id"], values={ids.FILL_FIELD_BLOCK: {ids.FILL_FIELD_INPUT: {
        "type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "Sales of Product Income"},
                                                     "value": "79"}}}})
    assert result.status_code == 200

    def synced() -> Any:
        deliver_all(stack)
        msg = stack.message(permit["ts"])
        return msg if ":white_check_mark:" in str(msg["blocks"]) else None

    wait_for(synced)
    with stack.rt.services.sessions() as session:
        assert session.scalars(select(Item).where(Item.name == "Permit fee")).one().income_account == "79"


def test_a_flood_across_a_five_minute_boundary_stays_one_digest(stack: Stack, qbo: QBO) -> None:
    import datetime as dt

    notifier = stack.rt.notifier
    notifier.flood_threshold = 2
    clock = [dt.datetime(2026, 11, 30, 17, 54, 50, tzinfo=dt.UTC)]  # ten seconds before 17:55:00
    notifier.clock = lambda: clock[0]

    def burst(names: list[str]) -> None:
        stack.add_duplicates(qbo, names)
        stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
        deliver_all(stack)

    burst([f"Early client {i}" for i in range(6)])
    clock[0] += dt.timedelta(seconds=20)  # 17:55:10: a new wall-clock window, the same flood
    burst([f"Late client {i}" for i in range(4)])
    digests = [m for m in stack.messages() if "sync errors since" in m["text"]]
    assert len(digests) == 1, [m["text"] for m in digests]
    with stack.rt.services.sessions() as session:  # each failing record once, though the early ones failed twice
        failing = session.scalar(select(func.count()).select_from(SyncLogEntry).where(
            SyncLogEntry.status == "error", SyncLogEntry.superseded_by_id.is_(None),
            SyncLogEntry.resolved_at.is_(None), SyncLogEntry.record_id.is_not(None)))
    singles = len(stack.messages()) - 1
    assert digests[0]["text"].startswith(f"{failing - singles} sync errors"), digests[0]["text"]
    clock[0] += dt.timedelta(minutes=6)  # the flood is over: a later one starts its own digest
    burst([f"Next day client {i}" for i in range(3)])
    assert len([m for m in stack.messages() if "sync errors since" in m["text"]]) <= 2


def test_a_backlog_larger_than_a_pass_drains_without_waiting_out_the_interval(stack: Stack, qbo: QBO) -> None:
    import threading

    notifier = stack.rt.notifier
    notifier.flood_threshold, notifier.pass_limit = 3, 5
    names = [f"Backlog client {i:02d}" for i in range(30)]
    stack.add_duplicates(qbo, names)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    assert pending(stack) > 5 * notifier.pass_limit
    stop = threading.Event()
    loop = threading.Thread(target=notifier.run, args=(stop,), kwargs={"interval": 120.0})
    loop.start()
    try:  # full passes follow one another; one interval of 2 minutes would fail this
        wait_for(lambda: pending(stack) == 0, timeout=60)
    finally:
        stop.set()
        notifier.wake()
        loop.join(10)
    messages = stack.messages()
    [digest] = [m for m in messages if "sync errors since" in m["text"]]
    singles = len(messages) - 1
    assert singles == 3 and digest["text"].startswith(f"{31 - singles} sync errors"), digest["text"]


def test_quoted_text_pages_on_and_view_log_finds_a_name_with_quotes(stack: Stack, qbo: QBO) -> None:
    """Free text with a blank keeps its quotes in the Next button, so page 2 is the same search; a card's View
    log finds a record whose name holds a double quote (its words are written back as they are read)."""
    with stack.rt.services.sessions() as session, session.begin():
        session.scalars(select(Contact).where(Contact.display_name == "Acme Corp")).one().display_name = \
            'Bob "Q" Smith'
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": 'Bob "Q" Smith'})  # a duplicate name
    for i in range(11):  # Riverside Dental synced 12 times: more than a page of entries
        with stack.rt.services.sessions() as session, session.begin():
            session.scalars(select(Contact).where(Contact.display_name == "Riverside Dental")).one().phone = \
                f"555-01{i:02d}"
        stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    first = stack.driver.slash_command("/sync-log", '"Riverside Dental"')
    assert "Riverside Dental" in str(first.json()) and ids.LOG_NEXT in str(first.json())
    stack.rt.clients.request.chat_postEphemeral(channel=CHANNEL, user=slack_cfg.OWNER_USER_ID, **first.json())
    eph = stack.ephemerals(slack_cfg.OWNER_USER_ID)[-1]
    stack.driver.click(ids.LOG_NEXT, channel_id=CHANNEL, message_ts=eph["message_ts"], ephemeral=True)
    second = wait_for(lambda: [e for e in stack.ephemerals(slack_cfg.OWNER_USER_ID) if ids.LOG_PREV in
                               str(e["blocks"])])[-1]
    assert ("entry 11 of" in str(second["blocks"]) or "entries 11\u2013" in str(second["blocks"])) \
        and "Riverside Dental" in str(second["blocks"])
    assert "I don't know" not in str(second["blocks"])

    card = next(m for m in stack.messages() if "Bob" in m["text"])
    assert stack.driver.click(ids.VIEW_ENTRY_LOG, channel_id=CHANNEL, message_ts=card["ts"]).status_code == 200
    log = wait_for(lambda: [e for e in stack.ephemerals(slack_cfg.OWNER_USER_ID)
                            if "Sync log" in e["text"] and "Bob" in e["text"]])[-1]
    assert "No entries match" not in str(log["blocks"]) and "Duplicate" in str(log["blocks"])
