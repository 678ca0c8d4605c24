"""What a click leaves on a shared card (issue 15, point 2: "a click always changes something where the person
clicked"), and the token-expiry reminder sent on demand. Over real HTTP: the QuickBooks stand-in, the Slack
stand-in as Slack, clicks signed as Slack signs them.

- A member's Reconnect on a token-expiry reminder is refused on the reminder itself.
- A refusal on a card reads as an event everyone in the channel can place: who clicked what, when (Slack's date
  token), why, who can help; the next time the card is drawn, for any reason, it is gone.
- A reminder sent on demand (`/sync-log demo reminder`) says it is a sample and when the connection really
  expires, so it does not contradict `/sync-log status`."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from bot.blocks import ids
from bot.blocks.connection import authorization_ends
from bot.scheduler import Jobs
from sandbox.slack import config as slack_cfg
from sync.models import Connection, utcnow
from tests.conftest import CHANNEL, QBO, Stack, wait_for
from tests.test_card_flows import card_text, duplicate_card
from tests.test_slack_flows import deliver_all
from tests.test_sync_now_early import buttons, visible

#: A refusal's line on a card: the button, who, when as Slack's time token, why.
REFUSED = r":no_entry: {button} by mia at <!date\^(\d+)\^\{{time\}}\|[^>]+> was refused: {why}"


def sample_reminder(stack: Stack) -> dict[str, Any]:
    """The token-expiry reminder as `/sync-log demo reminder` queues it (14 days), posted to the channel."""
    assert Jobs(stack.rt.services).reminder_now(stack.connection_id, utcnow())
    deliver_all(stack)
    return next(m for m in stack.messages() if "connection expires in 14 days" in m["text"])


def test_a_reminder_sent_on_demand_says_it_is_a_sample_and_when_the_connection_really_expires(
        stack: Stack) -> None:
    reminder = sample_reminder(stack)
    with stack.rt.services.sessions() as session:
        ends = authorization_ends(session.get(Connection, stack.connection_id))
    assert ends is not None and ends - utcnow().replace(tzinfo=dt.UTC) > dt.timedelta(days=90)  # a fresh token
    assert f"Sample reminder: your connection really expires <!date^{int(ends.timestamp())}^" in visible(reminder)
    assert reminder["text"].startswith("Sample reminder: Your QuickBooks connection expires in 14 days")
    assert buttons(reminder) == ["Reconnect"]


def test_a_members_reconnect_on_a_reminder_is_refused_on_the_reminder(stack: Stack) -> None:
    reminder = sample_reminder(stack)
    clicked = int(utcnow().replace(tzinfo=dt.UTC).timestamp())
    assert stack.driver.click(ids.RECONNECT, channel_id=CHANNEL, message_ts=reminder["ts"],
                              user_id=slack_cfg.MEMBER_USER_ID).status_code == 200

    def refused() -> str | None:
        text = visible(stack.message(reminder["ts"]))
        return text if "was refused" in text else None

    said = wait_for(refused)
    found = re.search(REFUSED.format(button="Reconnect", why=r"it needs Owner or Admin permissions\. Ask a workspace "
                                     r"Owner or Admin to click Reconnect\."), said)
    assert found and abs(int(found.group(1)) - clicked) <= 5, said
    assert "connection expires in 14 days" in said and "Sample reminder" in said  # the same reminder
    assert buttons(stack.message(reminder["ts"])) == ["Reconnect"]  # for whoever may use it
    assert "Owner or Admin" in str(wait_for(lambda: stack.ephemerals(slack_cfg.MEMBER_USER_ID)))  # and to them
    assert not [e for e in stack.ephemerals(slack_cfg.MEMBER_USER_ID) if "works once" in e["text"]], "no link"


def test_a_refusal_on_a_card_is_gone_when_the_card_is_next_drawn(stack: Stack, qbo: QBO) -> None:
    card = duplicate_card(stack, qbo)
    assert stack.driver.click(ids.RETRY, channel_id=CHANNEL, message_ts=card["ts"],
                              user_id=slack_cfg.MEMBER_USER_ID).status_code == 200
    said = wait_for(lambda: next((t for t in [card_text(stack, card["ts"])] if "was refused" in t), None))
    assert re.search(REFUSED.format(button="Retry", why="it needs Owner or Admin permissions"), said)

    # drawn again for another reason than the record: its connection starts waiting for Reconnect
    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")

    def redrawn() -> str | None:
        deliver_all(stack)
        text = card_text(stack, card["ts"])
        return text if "Waiting for Reconnect" in text else None

    assert "was refused" not in wait_for(redrawn)


def test_a_sample_reminder_without_a_known_expiry_says_so() -> None:
    from bot.blocks.connection import expiry_reminder

    conn = {"id": 1, "provider": "quickbooks", "realm_id": "9130357766900456", "company_name": "Acme Builders LLC"}
    msg = expiry_reminder(conn, 14, sample=True)
    assert msg["blocks"][-1]["elements"][0]["text"] == "Sample reminder: your connection's real expiry is not known."
    assert "Sample" not in str(expiry_reminder(conn, 14))  # a real reminder is not marked
    assert "QuickBooks company Acme Builders LLC" in msg["blocks"][0]["text"]["text"]


def test_a_members_view_log_is_refused_on_the_card_where_it_was_clicked(stack: Stack, qbo: QBO) -> None:
    """Reading the log needs Owner or Admin permissions (or open reading): the member's View log is refused on the
    card too, not only in a reply at the bottom of the channel; the record's error is still there."""
    card = duplicate_card(stack, qbo)
    assert stack.driver.click(ids.VIEW_ENTRY_LOG, channel_id=CHANNEL, message_ts=card["ts"],
                              user_id=slack_cfg.MEMBER_USER_ID).status_code == 200
    said = wait_for(lambda: next((t for t in [card_text(stack, card["ts"])] if "was refused" in t), None))
    assert re.search(REFUSED.format(button="View log", why="reading the sync log needs Owner or Admin"), said)
    assert "Duplicate" in said
