"""Contact support to SUPPORT_CHANNEL, the account's admin list (`/sync-log admins`) and the reading setting
(`/sync-log reading open|admins`), over signed HTTP against the Slack stand-in."""

from __future__ import annotations

from typing import Any

from bot.blocks import ids
from bot.models import Workspace
from sandbox.slack import config as slack_cfg
from tests.conftest import CHANNEL, QBO, Stack, wait_for

SUPPORT_CHANNEL_ID = "C0SUPPORT01"


def _failing_twice(stack: Stack, qbo: QBO) -> dict[str, Any]:
    """Acme Corp fails as a duplicate, is retried and fails again: its message offers Contact support."""
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    stack.driver.click(ids.RETRY, channel_id=CHANNEL, message_ts=acme["ts"])

    def offers_support() -> Any:
        stack.deliver()
        msg = stack.message(acme["ts"])
        return msg if ids.CONTACT_SUPPORT in str(msg["blocks"]) else None

    return wait_for(offers_support)


def _support_channel(stack: Stack) -> None:
    stack.slack.standin.add_channel(slack_cfg.DEFAULT_TEAM_ID, SUPPORT_CHANNEL_ID, "jobsiteon-support",
                                    bot_member=True)
    stack.rt.settings.support_channel = "#jobsiteon-support"


def _entry_of(stack: Stack, card: dict[str, Any]) -> Any:
    return stack.rt.services.engine.get_entry(int(next(
        el["value"] for b in card["blocks"] if b["type"] == "actions" for el in b["elements"]
        if el.get("action_id") == ids.CONTACT_SUPPORT)))


def _support_modal(stack: Stack, card: dict[str, Any], user: str = slack_cfg.OWNER_USER_ID) -> dict[str, Any]:
    result = stack.driver.click(ids.CONTACT_SUPPORT, channel_id=CHANNEL, message_ts=card["ts"], user_id=user)
    assert result.status_code == 200
    return wait_for(lambda: stack.slack.standin.open_views(user))[-1]


def test_send_to_support_posts_the_note_timestamp_details_and_intuit_tid_to_the_support_channel(
        stack: Stack, qbo: QBO) -> None:
    _support_channel(stack)
    acme = _failing_twice(stack, qbo)
    entry = _entry_of(stack, acme)
    assert entry.intuit_tid, "the stand-in answers with an intuit_tid header"

    modal = _support_modal(stack, acme)
    assert modal["submit"]["text"] == "Send to support" and "#jobsiteon-support" in str(modal["blocks"])
    assert stack.slack.standin.messages(SUPPORT_CHANNEL_ID) == [], "nothing is sent before Send"
    result = stack.driver.submit_view(view_id=modal["id"], values={ids.SUPPORT_NOTE_BLOCK: {
        ids.SUPPORT_NOTE_INPUT: "Renamed it in QuickBooks, still failing."}})
    assert result.status_code == 200

    posted = wait_for(lambda: [m.to_dict() for m in stack.slack.standin.messages(SUPPORT_CHANNEL_ID)])
    assert len(posted) == 1
    text = str(posted[0]["blocks"])
    assert "Support request" in text and "from olivia" in text and "Sandbox Builders" in text
    assert "*Note:* Renamed it in QuickBooks, still failing." in text
    assert f"intuit_tid: {entry.intuit_tid}" in text
    assert f"Sync log entry: {entry.id}" in text and "Timestamp: " in text
    assert "Duplicate" in text or "duplicate" in text
    sent = stack.slack.standin.open_views(slack_cfg.OWNER_USER_ID)[-1]
    assert sent["id"] == modal["id"] and f"Sent to JobsiteOn support in <#{SUPPORT_CHANNEL_ID}>" in str(
        sent["blocks"])
    assert not sent.get("submit"), "sent once: no second Send"


def test_send_to_support_clicked_twice_sends_once(stack: Stack, qbo: QBO) -> None:
    """A double click on Send (two view_submissions of the same modal): one request reaches support."""
    _support_channel(stack)
    acme = _failing_twice(stack, qbo)
    modal = _support_modal(stack, acme)
    first = stack.driver.submit_view(view_id=modal["id"])
    second = stack.driver.submit_view(view_id=modal["id"])
    assert first.status_code == 200 and second.status_code == 200  # each posts (or not) before its ack
    assert len(stack.slack.standin.messages(SUPPORT_CHANNEL_ID)) == 1


def test_a_plain_member_may_send_a_support_request_about_a_message_they_see(stack: Stack, qbo: QBO) -> None:
    _support_channel(stack)
    acme = _failing_twice(stack, qbo)
    member = slack_cfg.MEMBER_USER_ID
    assert "Owner or Admin" in _say(stack, "errors", user=member), "the member may not read the log"
    modal = _support_modal(stack, acme, user=member)
    assert modal["submit"]["text"] == "Send to support"
    stack.driver.submit_view(user_id=member, view_id=modal["id"])
    [posted] = wait_for(lambda: [m.to_dict() for m in stack.slack.standin.messages(SUPPORT_CHANNEL_ID)])
    name = stack.rt.directory.user(slack_cfg.DEFAULT_TEAM_ID, member).name
    assert f"from {name}" in str(posted["blocks"]) and "Note:" not in str(posted["blocks"])
    assert stack.ephemerals(member) == [], "no refusal"


def test_send_to_an_unreachable_support_channel_says_why_and_keeps_everything_to_copy(stack: Stack,
                                                                                      qbo: QBO) -> None:
    stack.rt.settings.support_channel = slack_cfg.GENERAL_CHANNEL_ID  # syncbot is not a member there
    acme = _failing_twice(stack, qbo)
    modal = _support_modal(stack, acme)
    stack.driver.submit_view(view_id=modal["id"])
    text = str(stack.slack.standin.open_views(slack_cfg.OWNER_USER_ID)[-1]["blocks"])
    assert "did not work" in text and "not_in_channel" in text and "intuit_tid: " in text
    assert stack.slack.standin.messages(slack_cfg.GENERAL_CHANNEL_ID) == []


def test_support_email_is_a_well_formed_mailto_link_with_subject_and_body(stack: Stack, qbo: QBO) -> None:
    import re
    from urllib.parse import parse_qs, unquote, urlsplit

    stack.rt.settings.support_channel = None
    stack.rt.settings.support_email = "support@jobsiteon.example"
    acme = _failing_twice(stack, qbo)
    entry = _entry_of(stack, acme)
    modal = _support_modal(stack, acme)
    assert not modal.get("submit"), "nothing to send from Slack: the link opens the mail program"
    [link] = re.findall(r"<(mailto:[^|>]+)\|Email JobsiteOn support>", str(modal["blocks"]))
    url = link.replace("&amp;", "&")
    assert len(url) <= 2000 and not re.search(r"[\s<>|\"]", url)
    parts = urlsplit(url)
    assert (parts.scheme, unquote(parts.path)) == ("mailto", "support@jobsiteon.example")
    query = parse_qs(parts.query, strict_parsing=True)
    assert set(query) == {"subject", "body"}
    assert query["subject"] == [f"syncbot: Duplicate record · Contact Acme Corp (entry {entry.id})"]
    body = query["body"][0]
    assert "\r\n" in body and f"intuit_tid: {entry.intuit_tid}" in body and f"Sync log entry: {entry.id}" in body
    assert "Details from QuickBooks:" in body and "Duplicate Name Exists" in body


def test_contact_support_is_refused_for_another_accounts_entry(stack: Stack, qbo: QBO) -> None:
    _support_channel(stack)
    acme = _failing_twice(stack, qbo)
    result = stack.driver.click(ids.CONTACT_SUPPORT, channel_id=CHANNEL, message_ts=acme["ts"], value="999999")
    assert result.status_code == 200
    assert "not found in your account" in str(wait_for(lambda: stack.ephemerals(slack_cfg.OWNER_USER_ID)))
    assert stack.slack.standin.open_views(slack_cfg.OWNER_USER_ID) == []
    assert stack.slack.standin.messages(SUPPORT_CHANNEL_ID) == []


# ------------------------------------------------------------------------------------------------ admins


def _workspace(stack: Stack) -> Workspace:
    with stack.rt.services.sessions() as session:
        ws = session.get(Workspace, slack_cfg.DEFAULT_TEAM_ID)
        assert ws is not None
        session.expunge(ws)
        return ws


def _say(stack: Stack, text: str, user: str = slack_cfg.OWNER_USER_ID) -> str:
    result = stack.driver.slash_command("/sync-log", text, user_id=user)
    assert result.status_code == 200
    return result.response.text


def test_admins_list_add_and_remove(stack: Stack) -> None:
    member = slack_cfg.MEMBER_USER_ID
    assert "no one" in _say(stack, "admins").lower()
    # a member is refused before being on the list
    assert "Owner or Admin" in _say(stack, "sync-now", user=member)

    answer = _say(stack, f"admins add <@{member}|mia>")
    assert f"<@{member}>" in answer and "added" in answer
    assert _workspace(stack).admin_user_ids == [member]
    assert f"<@{member}>" in _say(stack, "admins")
    # now the member may change things
    assert "Owner or Admin" not in _say(stack, "status", user=member)
    assert "Syncing now" in _say(stack, "sync-now", user=member)

    assert "already" in _say(stack, f"admins add <@{member}>")
    assert _workspace(stack).admin_user_ids == [member]

    assert "removed" in _say(stack, f"admins remove <@{member}|mia>")
    assert _workspace(stack).admin_user_ids == []
    assert "Owner or Admin" in _say(stack, "sync-now", user=member)


def test_only_workspace_owners_and_admins_edit_the_list(stack: Stack) -> None:
    member = slack_cfg.MEMBER_USER_ID
    assert "Owner or Admin" in _say(stack, f"admins add <@{member}>", user=member)
    assert _workspace(stack).admin_user_ids == []
    _say(stack, f"admins add <@{member}>")
    # being on the list lets one act, not hand out rights or open the log
    answer = _say(stack, f"admins add <@{slack_cfg.ADMIN_USER_ID}>", user=member)
    assert "Owner or Admin" in answer
    assert "Owner or Admin" in _say(stack, "reading open", user=member)
    assert _workspace(stack).admin_user_ids == [member]
    assert _workspace(stack).open_reading is False


def test_admins_with_bad_words_get_the_usage(stack: Stack) -> None:
    assert "/sync-log admins add @name" in _say(stack, "admins add mia")
    assert "/sync-log admins add @name" in _say(stack, "admins promote <@U0000000003>")
    assert "only people" in _say(stack, f"admins add <@{slack_cfg.DEFAULT_BOT_USER_ID}>")  # the bot itself
    assert _workspace(stack).admin_user_ids == []


def test_reading_open_lets_every_member_read_the_log_but_not_change_anything(stack: Stack, qbo: QBO) -> None:
    member = slack_cfg.MEMBER_USER_ID
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    assert "Owner or Admin" in _say(stack, "errors", user=member)

    assert "Every member" in _say(stack, "reading open")
    assert _workspace(stack).open_reading is True
    assert "Acme Corp" in _say(stack, "errors", user=member)
    assert "Owner or Admin" in _say(stack, "sync-now", user=member)

    assert "Only Owners, Admins and the admin list" in _say(stack, "reading admins")
    assert _workspace(stack).open_reading is False
    assert "Owner or Admin" in _say(stack, "errors", user=member)
    assert "reading open" in _say(stack, "reading sideways")
