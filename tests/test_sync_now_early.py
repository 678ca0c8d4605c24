"""The rate limit's fix in Slack (issue 15, point 3): the incident card says when syncbot resumes by itself (Slack's
date token) and offers Sync Now, which asks QuickBooks once with one cheap request and either resumes (the incident
turns Resumed, the held records sync) or gives the new time; `/sync-log resume` does the same. Over real HTTP: the
QuickBooks stand-in's throttle, the Slack stand-in as Slack, clicks and commands signed as Slack signs them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select

from bot.blocks import ids
from sandbox.slack import config as slack_cfg
from sync.models import Connection, Incident, Link
from tests.conftest import CHANNEL, QBO, Stack, wait_for
from tests.test_slack_flows import deliver_all


def visible(msg: dict[str, Any]) -> str:
    out = [msg.get("text") or ""]
    for block in msg.get("blocks") or []:
        text = block.get("text")
        if isinstance(text, dict):
            out.append(text.get("text") or "")
        for el in block.get("elements") or []:
            if isinstance(el, dict) and isinstance(el.get("text"), (dict, str)):
                out.append(el["text"]["text"] if isinstance(el["text"], dict) else el["text"])
    return "\n".join(out)


def buttons(msg: dict[str, Any]) -> list[str]:
    return [el["text"]["text"] for b in msg.get("blocks") or [] if b.get("type") == "actions"
            for el in b.get("elements") or [] if el.get("type") == "button"]


def rate_limited(stack: Stack, qbo: QBO, minutes_left: float = 5) -> dict[str, Any]:
    """Hit QuickBooks' rate limit on a Sync Now, then pretend the pause has ``minutes_left`` to go; return the
    incident's message as the channel shows it."""
    services = stack.rt.services
    qbo.standin.exhaust_throttle(qbo.realm)
    assert services.engine.sync_now(stack.connection_id, "U_ADMIN").stopped == "rate_limited"
    with services.sessions() as session, session.begin():
        conn = session.get(Connection, stack.connection_id)
        assert conn is not None
        conn.paused_until = services.engine.clock() + dt.timedelta(minutes=minutes_left)
    deliver_all(stack)
    return next(m for m in stack.messages() if "Rate limit exceeded" in m["text"])


def paused_until(stack: Stack) -> dt.datetime | None:
    with stack.rt.services.sessions() as session:
        conn = session.get(Connection, stack.connection_id)
        assert conn is not None
        return conn.paused_until


def synced_customers(stack: Stack) -> int:
    with stack.rt.services.sessions() as session:
        return len(list(session.scalars(select(Link).where(Link.connection_id == stack.connection_id,
                                                           Link.entity == "contact"))))


def test_the_rate_limit_card_says_when_it_resumes_and_offers_sync_now(stack: Stack, qbo: QBO) -> None:
    card = rate_limited(stack, qbo)
    until = paused_until(stack)
    assert until is not None
    assert buttons(card) == ["Sync Now", "View log"]
    assert f"syncbot resumes by itself *<!date^{int(until.replace(tzinfo=dt.UTC).timestamp())}^" in visible(card)
    assert "click *Sync Now*" in visible(card)


def test_sync_now_while_quickbooks_still_throttles_gives_the_new_time(stack: Stack, qbo: QBO) -> None:
    card = rate_limited(stack, qbo, minutes_left=5)
    before = paused_until(stack)
    requests = len(qbo.standin.request_log(qbo.realm))
    qbo.standin.exhaust_throttle(qbo.realm)  # still throttling

    assert stack.driver.click(ids.SYNC_NOW, channel_id=CHANNEL, message_ts=card["ts"],
                              user_id=slack_cfg.ADMIN_USER_ID).status_code == 200
    answer = wait_for(lambda: [e for e in stack.ephemerals(slack_cfg.ADMIN_USER_ID)
                               if "still limits requests" in e["text"]])[-1]
    after = paused_until(stack)
    assert before is not None and after is not None and after > before + dt.timedelta(minutes=9)  # 15 min from now
    stamp = f"<!date^{int(after.replace(tzinfo=dt.UTC).timestamp())}^"
    assert stamp in visible(answer)
    assert len(qbo.standin.request_log(qbo.realm)) == requests + 1  # one request, not a sync run

    def redrawn() -> Any:
        deliver_all(stack)
        msg = stack.message(card["ts"])
        return msg if stamp in visible(msg) else None

    msg = wait_for(redrawn)  # the same message, with the new time, still offering Sync Now
    assert buttons(msg) == ["Sync Now", "View log"]
    with stack.rt.services.sessions() as session:
        assert session.scalars(select(Incident)).one().resolved_at is None


def test_sync_now_after_the_limit_is_lifted_resumes_and_the_held_records_sync(stack: Stack, qbo: QBO) -> None:
    card = rate_limited(stack, qbo)
    assert synced_customers(stack) == 0  # held: nothing reached QuickBooks
    qbo.standin.clear_throttle(qbo.realm)  # lifted on the QuickBooks side, 5 minutes early

    stack.driver.click(ids.SYNC_NOW, channel_id=CHANNEL, message_ts=card["ts"], user_id=slack_cfg.ADMIN_USER_ID)

    def resumed() -> Any:
        deliver_all(stack)
        msg = stack.message(card["ts"])
        return msg if "Resumed" in msg["text"] else None

    msg = wait_for(resumed, timeout=20)
    assert ":white_check_mark:" in visible(msg) and "Sync Now" not in buttons(msg)
    assert wait_for(lambda: [e for e in stack.ephemerals(slack_cfg.ADMIN_USER_ID)
                             if "Sync Now finished" in e["text"]], timeout=20)
    assert synced_customers(stack) == 3
    with stack.rt.services.sessions() as session:
        conn = session.get(Connection, stack.connection_id)
        assert conn is not None and (conn.status, conn.paused_until) == ("connected", None)
        incident = session.scalars(select(Incident)).one()
        assert incident.resolution == "resumed" and incident.resolved_by is not None
    names = {c["DisplayName"] for c in qbo.standin.entities(qbo.realm, "Customer")}
    assert len(names) >= 3


def test_sync_log_resume_does_the_same(stack: Stack, qbo: QBO) -> None:
    card = rate_limited(stack, qbo)
    qbo.standin.exhaust_throttle(qbo.realm)
    before = paused_until(stack)
    assert stack.driver.slash_command("/sync-log", "resume", user_id=slack_cfg.ADMIN_USER_ID).status_code == 200
    wait_for(lambda: [e for e in stack.ephemerals(slack_cfg.ADMIN_USER_ID) if "still limits requests" in e["text"]])
    after = paused_until(stack)
    assert before is not None and after is not None and after > before

    qbo.standin.clear_throttle(qbo.realm)
    stack.driver.slash_command("/sync-log", "resume", user_id=slack_cfg.ADMIN_USER_ID)

    def resumed() -> Any:
        deliver_all(stack)
        msg = stack.message(card["ts"])
        return msg if "Resumed" in msg["text"] else None

    wait_for(resumed, timeout=20)
    wait_for(lambda: synced_customers(stack) == 3, timeout=20)  # the held records follow the resume


def test_a_plain_member_may_not_click_sync_now_and_nothing_changes(stack: Stack, qbo: QBO) -> None:
    card = rate_limited(stack, qbo)
    qbo.standin.clear_throttle(qbo.realm)
    before, requests = paused_until(stack), len(qbo.standin.request_log(qbo.realm))
    stack.driver.click(ids.SYNC_NOW, channel_id=CHANNEL, message_ts=card["ts"], user_id=slack_cfg.MEMBER_USER_ID)
    assert "Owner or Admin" in str(wait_for(lambda: stack.ephemerals(slack_cfg.MEMBER_USER_ID)))
    assert paused_until(stack) == before and len(qbo.standin.request_log(qbo.realm)) == requests
    assert buttons(stack.message(card["ts"])) == ["Sync Now", "View log"]
    # the card where the member clicked says why, who can help and what to click (issue 15, point 2)
    said = wait_for(lambda: "was refused: it needs Owner or Admin" in json.dumps(stack.message(card["ts"])["blocks"]))
    assert said and "Ask " in json.dumps(stack.message(card["ts"])["blocks"])
    assert "Rate limit exceeded" in json.dumps(stack.message(card["ts"])["blocks"])  # still the same card


def test_a_tampered_sync_now_value_changes_nothing(stack: Stack, qbo: QBO) -> None:
    card = rate_limited(stack, qbo)
    qbo.standin.clear_throttle(qbo.realm)
    before, requests = paused_until(stack), len(qbo.standin.request_log(qbo.realm))
    stack.driver.click(ids.SYNC_NOW, channel_id=CHANNEL, message_ts=card["ts"], user_id=slack_cfg.ADMIN_USER_ID,
                       value=str(stack.connection_id + 1000))
    refusal = wait_for(lambda: stack.ephemerals(slack_cfg.ADMIN_USER_ID))[-1]
    assert "not found in your account" in refusal["text"]
    assert paused_until(stack) == before and len(qbo.standin.request_log(qbo.realm)) == requests


def test_an_unknown_subcommand_names_the_commands(stack: Stack) -> None:
    answer = stack.driver.slash_command("/sync-log", "frobnicate", user_id=slack_cfg.ADMIN_USER_ID).json()
    text = answer["text"]
    assert "I don't know `frobnicate`" in text
    for command in ("sync-now", "resume", "retry-all", "status", "summary"):
        assert command in text


def test_sync_now_that_finds_the_authorization_gone_turns_the_card_to_reconnect(stack: Stack, qbo: QBO) -> None:
    card = rate_limited(stack, qbo)
    qbo.standin.clear_throttle(qbo.realm)
    qbo.standin.expire_tokens(qbo.realm, refresh=True)  # e.g. revoked during the pause
    stack.driver.click(ids.SYNC_NOW, channel_id=CHANNEL, message_ts=card["ts"], user_id=slack_cfg.ADMIN_USER_ID)
    answer = wait_for(lambda: [e for e in stack.ephemerals(slack_cfg.ADMIN_USER_ID)
                               if "Authentication expired" in e["text"]])[-1]
    assert "Reconnect" in answer["text"]

    def replaced() -> Any:
        deliver_all(stack)
        msg = stack.message(card["ts"])
        return msg if "Ended" in msg["text"] else None

    assert "Sync Now" not in buttons(wait_for(replaced))
    reconnect = [m for m in stack.messages() if m["ts"] != card["ts"] and "Authentication expired" in m["text"]]
    assert len(reconnect) == 1 and "Reconnect" in buttons(reconnect[0])
    with stack.rt.services.sessions() as session:
        kinds = [(i.kind, i.resolution) for i in session.scalars(select(Incident).order_by(Incident.id))]
        assert kinds == [("rate_limited", "replaced"), ("auth_expired", None)]
        conn = session.get(Connection, stack.connection_id)
        assert conn is not None and conn.status == "expired"
    # the ended pause is no open error any more: every count names the authentication, not the rate limit
    from sync.log import open_counts

    with stack.rt.services.sessions() as session:
        counts = open_counts(session, connection_id=stack.connection_id)
    assert "rate_limited" not in counts, counts


def test_sync_now_after_the_pause_ran_out_closes_the_incident_too(stack: Stack, qbo: QBO) -> None:
    """Between the end of the pause and the scheduler's resume, Sync Now resumes the connection (its message turns
    Resumed) instead of syncing under a message that still says it waits."""
    card = rate_limited(stack, qbo, minutes_left=-1)
    qbo.standin.clear_throttle(qbo.realm)
    stack.driver.click(ids.SYNC_NOW, channel_id=CHANNEL, message_ts=card["ts"], user_id=slack_cfg.ADMIN_USER_ID)

    def resumed() -> Any:
        deliver_all(stack)
        msg = stack.message(card["ts"])
        return msg if "Resumed" in msg["text"] else None

    wait_for(resumed, timeout=20)
    wait_for(lambda: synced_customers(stack) == 3, timeout=20)
