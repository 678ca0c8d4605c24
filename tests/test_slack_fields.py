"""Fill in the missing field from Slack (issue 15, point 6): a field that refers to one of QuickBooks' lists (an
item's income account) is chosen by name from what QuickBooks holds, over signed HTTP against both stand-ins."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.blocks import ids
from sandbox.slack import config as slack_cfg
from sync.models import Item
from tests.conftest import CHANNEL, QBO, Stack, wait_for
from tests.test_slack_flows import deliver_all

OWNER = slack_cfg.OWNER_USER_ID


def _permit_fee_card(stack: Stack) -> dict[str, Any]:
    """Sync: the Permit fee item has no income account, and its card offers "Fill in Income account"."""
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    card = next(m for m in stack.messages() if "Permit fee" in m["text"])
    assert "Fill in Income account" in str(card["blocks"])
    return card


def _open_modal(stack: Stack, card: dict[str, Any]) -> dict[str, Any]:
    """Click Fill in; the modal once QuickBooks' list is in it (it opens first saying it is loading)."""
    assert stack.driver.click(ids.FILL_FIELD, channel_id=CHANNEL, message_ts=card["ts"]).status_code == 200

    def loaded() -> Any:
        views = stack.slack.standin.open_views(OWNER)
        return views[-1] if views and "Loading" not in str(views[-1]["blocks"]) else None

    return wait_for(loaded)


def _select(view: dict[str, Any]) -> dict[str, Any]:
    [block] = [b for b in view["blocks"] if b["type"] == "input"]
    assert block["block_id"] == ids.FILL_FIELD_BLOCK and block["label"]["text"] == "Income account"
    return block["element"]


def _submit(stack: Stack, view: dict[str, Any], value: str, name: str) -> Any:
    return stack.driver.submit_view(view_id=view["id"], values={ids.FILL_FIELD_BLOCK: {ids.FILL_FIELD_INPUT: {
        "type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": name}, "value": value}}}})


def _qbo_item(qbo: QBO, name: str) -> dict[str, Any] | None:
    return next((i for i in qbo.standin.entities(qbo.realm, "Item") if i["Name"] == name), None)


def test_the_select_lists_the_companys_income_accounts_by_name_and_choosing_one_syncs_the_record(
        stack: Stack, qbo: QBO) -> None:
    card = _permit_fee_card(stack)
    view = _open_modal(stack, card)
    select_el = _select(view)
    assert select_el["type"] == "static_select"
    shown = [(o["text"]["text"], o["value"]) for o in select_el["options"]]
    income = sorted(((a["Name"], a["Id"]) for a in qbo.standin.entities(qbo.realm, "Account")
                     if a["AccountType"] == "Income" and a["Active"]), key=lambda a: a[0])
    assert shown == income, "QuickBooks' active income accounts, by name"
    assert ("Permits and Fees Income", "92") in shown and "Cost of Goods Sold" not in str(shown)
    assert "Old Jobs Income" not in str(shown), "an inactive account is not offered"
    assert "e.g. 79" not in str(view) and "account id" not in str(view)
    assert "Fill in the missing field: choose one of QuickBooks' income accounts" in str(view["blocks"])

    assert _submit(stack, view, "92", "Permits and Fees Income").status_code == 200

    def synced() -> Any:
        deliver_all(stack)
        msg = stack.message(card["ts"])
        return msg if ":white_check_mark:" in str(msg["blocks"]) else None

    wait_for(synced)
    held = _qbo_item(qbo, "Permit fee")
    assert held is not None and held["IncomeAccountRef"] == {"value": "92", "name": "Permits and Fees Income"}
    with stack.rt.services.sessions() as session:
        assert session.scalars(select(Item).where(Item.name == "Permit fee")).one().income_account == "92"


def _said(stack: Stack, ts: str) -> str:
    """What the card and its thread show (QuickBooks' own words are in the attempts' thread lines)."""
    msg = stack.slack.standin.message(CHANNEL, ts)
    assert msg is not None
    return str(msg.blocks) + "".join(str(r.blocks) for r in msg.replies)


def test_a_bogus_account_is_refused_by_quickbooks_and_the_card_says_so(stack: Stack, qbo: QBO) -> None:
    card = _permit_fee_card(stack)
    view = _open_modal(stack, card)
    assert _submit(stack, view, "e.g. 79", "Sales").status_code == 200  # a tampered option

    def refused() -> Any:
        deliver_all(stack)
        return _said(stack, card["ts"]) if "Invalid Reference Id" in _said(stack, card["ts"]) else None

    text = wait_for(refused)  # QuickBooks' words in the card's thread (the attempt's line), the fix on the card
    assert "Invalid Reference Id : IncomeAccountRef" in text
    assert "Fill in Income account" in str(stack.message(card["ts"])["blocks"])
    assert "Re-create" not in text and "Unlink" not in text, "the record is fine: its account is not"
    assert _qbo_item(qbo, "Permit fee") is None, "QuickBooks holds nothing made with a bogus account"
    entry = next(e for e in stack.rt.services.engine.open_errors(stack.connection_id) if e.record_label == "Permit fee")
    assert (entry.kind, entry.field, entry.codes) == ("validation", "IncomeAccountRef", "2500")


def test_an_account_made_inactive_after_the_modal_opened_is_refused_as_quickbooks_does(stack: Stack,
                                                                                        qbo: QBO) -> None:
    card = _permit_fee_card(stack)
    view = _open_modal(stack, card)
    qbo.standin.delete_entity(qbo.realm, "Account", "92")  # made inactive in QuickBooks meanwhile
    _submit(stack, view, "92", "Permits and Fees Income")

    def refused() -> Any:
        deliver_all(stack)
        return "made inactive" in _said(stack, card["ts"])

    wait_for(refused)
    card_now = str(stack.message(card["ts"])["blocks"])
    assert "Fill in Income account" in card_now
    assert "Chosen account is inactive" in card_now, "the card says what is wrong, not that a field is empty"
    # chosen again: the list no longer offers it
    assert ("92" not in [o["value"] for o in _select(_open_modal(stack, stack.message(card["ts"])))["options"]])


def test_the_modal_says_why_the_list_cannot_load_and_offers_no_save(stack: Stack, qbo: QBO) -> None:
    card = _permit_fee_card(stack)
    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # the connection now waits for Reconnect
    view = _open_modal(stack, card)
    assert "could not be loaded" in str(view["blocks"]) and "reconnected" in str(view["blocks"])
    assert not view.get("submit") and not [b for b in view["blocks"] if b["type"] == "input"]


def test_a_member_cannot_fill_a_field(stack: Stack) -> None:
    card = _permit_fee_card(stack)
    stack.driver.click(ids.FILL_FIELD, channel_id=CHANNEL, message_ts=card["ts"], user_id=slack_cfg.MEMBER_USER_ID)
    assert "Owner or Admin" in str(wait_for(lambda: stack.ephemerals(slack_cfg.MEMBER_USER_ID)))
    assert stack.slack.standin.open_views(slack_cfg.MEMBER_USER_ID) == []


def test_quickbooks_failing_to_answer_the_list_is_said_in_the_modal(stack: Stack, qbo: QBO) -> None:
    card = _permit_fee_card(stack)
    qbo.standin.fail_next(qbo.realm, count=5, status=500, content_type="application/json",
                          body='{"Fault": {"Error": [{"Message": "An application error has occurred", '
                               '"Detail": "System failure", "code": "10000"}], "type": "SystemFault"}}',
                          path_contains="query")
    view = _open_modal(stack, card)
    assert "income accounts could not be loaded: QuickBooks did not give its list" in str(view["blocks"])
    assert not view.get("submit")
