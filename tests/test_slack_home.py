"""The App Home is re-published when things change (an error arriving, a retry, Sync Now) for the users who
opened it, at most once per interval per user; others get no views.publish."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.blocks import ids
from sandbox.slack import config as slack_cfg
from tests.conftest import CHANNEL, QBO, Stack, wait_for

OWNER = slack_cfg.OWNER_USER_ID


def publishes(stack: Stack, user: str) -> int:
    return len([c for c in stack.slack.standin.calls("views.publish") if c.ok and c.params.get("user_id") == user])


def home_text(stack: Stack, user: str = OWNER) -> str:
    return str(stack.slack.standin.home_view(user, slack_cfg.DEFAULT_TEAM_ID))


def open_home(stack: Stack, user: str = OWNER) -> None:
    assert stack.driver.app_home_opened(user).status_code == 200
    wait_for(lambda: publishes(stack, user) >= 1)


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
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    assert "Acme Corp" not in home_text(stack, member)
