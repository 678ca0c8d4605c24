"""The App Home is re-published when things change (an error arriving, a retry, Sync Now) for the users who
opened it, at most once per interval per user; others get no views.publish."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from bot.blocks import ids
from sandbox.slack import config as slack_cfg
from sync.models import Contact
from tests.conftest import CHANNEL, QBO, Stack, wait_for

OWNER = slack_cfg.OWNER_USER_ID


def publishes(stack: Stack, user: str) -> int:
    return len([c for c in stack.slack.standin.calls("views.publish") if c.ok and c.params.get("user_id") == user])


def home_text(stack: Stack, user: str = OWNER) -> str:
    return str(stack.slack.standin.home_view(user, slack_cfg.DEFAULT_TEAM_ID))


def open_home(stack: Stack, user: str = OWNER) -> None:
    assert stack.driver.app_home_opened(user).status_code == 200
    wait_for(lambda: publishes(stack, user) >= 1)


def acme_error_on_the_home(stack: Stack, qbo: QBO) -> tuple[dict[str, Any], Any]:
    """A duplicate-name error for Acme Corp, delivered to the channel, and the Owner's Home open:
    (the QuickBooks customer that holds the name, the open entry)."""
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    open_home(stack)
    entry = next(e for e in stack.rt.services.engine.open_errors(stack.connection_id) if e.record_label == "Acme Corp")
    return existing, entry


def test_home_is_republished_when_an_error_arrives_and_when_a_retry_fixes_it(stack: Stack, qbo: QBO) -> None:
    stack.rt.home.min_interval = 0.0
    open_home(stack)
    assert "Acme Corp" not in home_text(stack)

    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()  # the notifier's pass posts the error and re-publishes the Home
    assert "Acme Corp" in home_text(stack)
    assert publishes(stack, OWNER) == 2
    assert publishes(stack, slack_cfg.MEMBER_USER_ID) == 0, "only users who opened the Home get it"

    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    stack.driver.click(ids.RETRY, channel_id=CHANNEL, message_ts=acme["ts"])
    wait_for(lambda: "Acme Corp" not in home_text(stack))


def test_sync_now_from_slack_republishes_the_home(stack: Stack, qbo: QBO) -> None:
    stack.rt.home.min_interval = 0.0
    open_home(stack)
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    assert stack.driver.slash_command("/sync-log", "sync-now").status_code == 200

    def republished() -> Any:
        stack.deliver()
        return "Acme Corp" in home_text(stack)

    wait_for(republished)


def test_republishing_is_rate_limited_per_user_and_nothing_is_lost(stack: Stack, qbo: QBO) -> None:
    now = [dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)]
    home = stack.rt.home
    home.clock = lambda: now[0]
    home.min_interval = 10.0
    open_home(stack)
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    home.changed(stack.account_id)
    stack.deliver()
    assert publishes(stack, OWNER) == 1, "within the interval: no re-publish yet"
    assert "Acme Corp" not in home_text(stack)

    now[0] += dt.timedelta(seconds=11)
    stack.deliver()  # the next pass publishes the waiting change once
    assert publishes(stack, OWNER) == 2 and "Acme Corp" in home_text(stack)
    stack.deliver()
    assert publishes(stack, OWNER) == 2, "nothing changed since"


def test_a_member_who_may_not_read_gets_no_republished_log(stack: Stack, qbo: QBO) -> None:
    stack.rt.home.min_interval = 0.0
    member = slack_cfg.MEMBER_USER_ID
    stack.driver.app_home_opened(member)
    wait_for(lambda: publishes(stack, member) >= 1)
    assert "Owner or Admin" in home_text(stack, member)
    assert "/sync-log reading open" in home_text(stack, member)  # what to ask for
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    assert "Acme Corp" not in home_text(stack, member)


def test_a_member_whose_reading_was_closed_sees_the_refusal_not_the_old_log(stack: Stack, qbo: QBO) -> None:
    stack.rt.home.min_interval = 0.0
    member = slack_cfg.MEMBER_USER_ID
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    assert "Every member" in stack.driver.slash_command("/sync-log", "reading open").response.text
    open_home(stack, member)
    assert "Acme Corp" in home_text(stack, member)
    stack.driver.slash_command("/sync-log", "reading admins")
    with stack.rt.services.sessions() as session, session.begin():  # something changes: the Homes are redrawn
        session.scalars(select(Contact).where(Contact.display_name == "Riverside Dental")).one().phone = "555-0199"
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    wait_for(lambda: "Owner or Admin" in home_text(stack, member))
    assert "Acme Corp" not in home_text(stack, member)


# ------------------------------------------------------------------------------------------ clicks on the Home
# Slack sends a click on the Home tab no response_url: answers given right away open a modal (views.open with the
# click's trigger_id); the counts of long work come as a DM from syncbot; the Home is re-published.


def modal_text(stack: Stack, user: str = OWNER) -> str:
    return str(stack.slack.standin.open_views(user))


def dm_texts(stack: Stack, user: str = OWNER) -> list[str]:
    channel = stack.slack.standin.dm_channel_id(slack_cfg.DEFAULT_TEAM_ID, user)
    return [str(m.to_dict()) for m in stack.slack.standin.messages(channel)]


def entry_ids(stack: Stack) -> list[int]:
    from sqlalchemy import select

    from sync.models import SyncLogEntry

    with stack.rt.services.sessions() as session:
        return list(session.scalars(select(SyncLogEntry.id).order_by(SyncLogEntry.id)))


def test_sync_now_from_the_home_says_it_started_then_dms_the_counts(stack: Stack, qbo: QBO) -> None:
    stack.rt.home.min_interval = 0.0
    open_home(stack)
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    result = stack.driver.click_in_view(ids.SYNC_NOW)
    assert result.status_code == 200 and result.acked_in_time
    started = wait_for(lambda: modal_text(stack) if "Syncing now" in modal_text(stack) else None)
    assert "the counts follow in a direct message from syncbot" in started
    counts = wait_for(lambda: [t for t in dm_texts(stack) if "Sync Now finished" in t])
    assert "synced" in counts[0] and "errors" in counts[0]
    wait_for(lambda: "Acme Corp" in home_text(stack))  # the Home shows the new error


def test_retry_all_from_the_home_asks_in_a_modal_then_dms_the_counts(stack: Stack, qbo: QBO) -> None:
    stack.rt.home.min_interval = 0.0
    existing, _ = acme_error_on_the_home(stack, qbo)
    assert "Acme Corp" in home_text(stack)
    open_errors = len(stack.rt.services.engine.open_errors(stack.connection_id))
    assert stack.driver.click_in_view(ids.RETRY_ALL).status_code == 200
    asked = wait_for(lambda: modal_text(stack) if "Retry all" in modal_text(stack) else None)
    assert f"Retry all {open_errors} open errors?" in asked

    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    confirm = stack.driver.click_in_view(ids.RETRY_ALL_CONFIRM, surface="modal")
    assert confirm.status_code == 200 and confirm.acked_in_time
    counts = wait_for(lambda: [t for t in dm_texts(stack) if "Retry All finished" in t])
    assert "Retry All finished:* 1 synced" in counts[0]
    wait_for(lambda: "Retry All finished" in modal_text(stack))  # the open modal shows the counts too
    wait_for(lambda: "Acme Corp" not in home_text(stack))  # the Home re-published: the duplicate is synced


def test_retry_all_cancelled_in_the_modal_changes_nothing(stack: Stack, qbo: QBO) -> None:
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    open_home(stack)
    stack.driver.click_in_view(ids.RETRY_ALL)
    wait_for(lambda: "Retry all" in modal_text(stack))
    before = entry_ids(stack)
    assert stack.driver.click_in_view(ids.RETRY_ALL_CANCEL, surface="modal").status_code == 200
    wait_for(lambda: "Retry All cancelled: nothing was changed." in modal_text(stack))
    assert entry_ids(stack) == before


def test_reconnect_from_the_home_gives_the_personal_link(stack: Stack) -> None:
    open_home(stack)
    assert stack.driver.click_in_view(ids.RECONNECT).status_code == 200
    shown = wait_for(lambda: stack.slack.standin.open_views(OWNER))
    link = next(el for block in shown[-1]["blocks"] for el in block.get("elements", [])
                if el.get("action_id") == ids.RECONNECT_LINK)
    assert "/oauth/quickbooks/start?state=" in link["url"]
    assert "yours alone, works once" in str(shown[-1]["blocks"])


def test_retry_on_a_home_row_retries_that_record(stack: Stack, qbo: QBO) -> None:
    stack.rt.home.min_interval = 0.0
    existing, acme_entry = acme_error_on_the_home(stack, qbo)
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    assert stack.driver.click_in_view(ids.RETRY, value=str(acme_entry.id)).status_code == 200
    wait_for(lambda: ":white_check_mark:" in str(stack.message(acme["ts"])["blocks"]))  # the channel's message
    wait_for(lambda: "Acme Corp" not in home_text(stack))  # and the Home
    said = wait_for(lambda: modal_text(stack) if "Synced" in modal_text(stack) else None)  # and the clicker
    assert "Synced: Contact Acme Corp" in said


def test_a_retry_on_the_home_that_fails_again_says_so(stack: Stack, qbo: QBO) -> None:
    _, acme_entry = acme_error_on_the_home(stack, qbo)
    assert stack.driver.click_in_view(ids.RETRY, value=str(acme_entry.id)).status_code == 200
    said = wait_for(lambda: modal_text(stack) if "Still failing" in modal_text(stack) else None)
    assert "Contact Acme Corp: Duplicate record (attempt 2)" in said


def test_a_retry_on_the_home_that_cannot_run_says_why_in_a_modal(stack: Stack, qbo: QBO) -> None:
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    acme_entry = next(e for e in stack.rt.services.engine.open_errors(stack.connection_id)
                      if e.record_label == "Acme Corp")
    stack.deliver()
    open_home(stack)  # drawn while Retry could run
    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # the connection is now expired
    before = entry_ids(stack)
    assert stack.driver.click_in_view(ids.RETRY, value=str(acme_entry.id)).status_code == 200
    said = wait_for(lambda: modal_text(stack) if "reconnect" in modal_text(stack) else None)
    assert "/sync-log reconnect" in said
    assert entry_ids(stack) == before, "no attempt made"


def test_the_expired_connections_row_offers_reconnect_not_retry(stack: Stack, qbo: QBO) -> None:
    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    open_home(stack)
    home = stack.slack.standin.home_view(OWNER, slack_cfg.DEFAULT_TEAM_ID)
    rows = [b for b in home["blocks"] if "Authentication expired" in str(b.get("text")) and b.get("accessory")]
    assert rows, "the connection's entry is listed"
    assert all(b["accessory"]["action_id"] == ids.RECONNECT for b in rows)
    assert all(b["accessory"]["value"] == str(stack.connection_id) for b in rows)
    stack.driver.click_in_view(ids.RECONNECT)
    wait_for(lambda: "/oauth/quickbooks/start?state=" in modal_text(stack))


def test_a_plain_member_clicking_on_the_home_is_refused_visibly_and_nothing_changes(stack: Stack,
                                                                                     qbo: QBO) -> None:
    member = slack_cfg.MEMBER_USER_ID
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    assert "Every member" in stack.driver.slash_command("/sync-log", "reading open").response.text
    open_home(stack, member)  # members may read: the Home shows them its buttons
    before = entry_ids(stack)
    for action_id in (ids.SYNC_NOW, ids.RETRY_ALL, ids.RECONNECT, ids.RETRY):
        stack.slack.standin.close_view(slack_cfg.DEFAULT_TEAM_ID, member)
        assert stack.driver.click_in_view(action_id, user_id=member).status_code == 200
        wait_for(lambda: "Owner or Admin" in modal_text(stack, member))
    stack.rt.replies.shutdown(wait=True)
    stack.rt.jobs.wait_idle()
    assert entry_ids(stack) == before
    assert not [t for t in dm_texts(stack, member) if "finished" in t]
