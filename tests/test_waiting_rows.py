"""`/sync-log errors` and the App Home's latest errors offer what the record's card offers while its connection
waits (issue 15, point 1): "Waiting for Reconnect" and Reconnect instead of a Retry that cannot work, and during a
rate-limit pause no button at all; the same rule as the card (``bot.blocks.messages.connection_waiting``). Over real
HTTP: the QuickBooks stand-in, the Slack stand-in as Slack, commands and events signed as Slack signs them."""

from __future__ import annotations

from typing import Any

from bot.blocks import ids
from sandbox.slack import config as slack_cfg
from tests.conftest import QBO, Stack, wait_for
from tests.test_card_flows import card_text, duplicate_card
from tests.test_slack_flows import deliver_all
from tests.test_slack_home import publishes
from tests.test_sync_now_early import rate_limited

ADMIN = slack_cfg.ADMIN_USER_ID


def row(blocks: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The row (a section) of the record ``name``."""
    return next(b for b in blocks if b["type"] == "section" and name in str(b.get("text")))


def errors_rows(stack: Stack) -> list[dict[str, Any]]:
    answer = stack.driver.slash_command("/sync-log", "errors", user_id=ADMIN).json()
    return answer["blocks"]


def home_rows(stack: Stack) -> list[dict[str, Any]]:
    """The App Home's blocks as the Admin opens it now."""
    before = publishes(stack, ADMIN)
    assert stack.driver.app_home_opened(ADMIN).status_code == 200
    wait_for(lambda: publishes(stack, ADMIN) > before)
    return stack.slack.standin.home_view(ADMIN, slack_cfg.DEFAULT_TEAM_ID)["blocks"]


def test_while_the_connection_waits_for_reconnect_the_rows_say_so_and_offer_reconnect(stack: Stack,
                                                                                        qbo: QBO) -> None:
    card = duplicate_card(stack, qbo)
    for rows in (errors_rows(stack), home_rows(stack)):  # before: Retry, as the card offers
        assert row(rows, "Summit Roofing")["accessory"]["action_id"] == ids.RETRY

    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # the refused refresh: expired
    deliver_all(stack)
    assert "Waiting for Reconnect" in card_text(stack, card["ts"])
    for rows in (errors_rows(stack), home_rows(stack)):
        summit = row(rows, "Summit Roofing")
        assert "_Waiting for Reconnect_" in summit["text"]["text"]
        assert (summit["accessory"]["action_id"], summit["accessory"]["value"]) == (
            ids.RECONNECT, str(stack.connection_id)), "Reconnect, not a Retry that cannot work"
        assert ids.RETRY not in str(rows)


def test_during_a_rate_limit_pause_the_rows_offer_no_retry(stack: Stack, qbo: QBO) -> None:
    card = duplicate_card(stack, qbo)
    rate_limited(stack, qbo)
    assert "Waiting for the rate limit" in card_text(stack, card["ts"])
    for rows in (errors_rows(stack), home_rows(stack)):
        summit = row(rows, "Summit Roofing")
        assert "_Waiting for the rate limit_" in summit["text"]["text"]
        assert "accessory" not in summit, "it resumes by itself; Sync Now is on the rate limit's own message"
