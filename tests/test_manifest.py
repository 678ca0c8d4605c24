"""manifest.yml and the code agree: the commands, events, scopes and endpoints Slack is told about are the ones
the app registers and answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.app import BOT_SCOPES
from handlers import EVENTS
from handlers.commands import COMMANDS

MANIFEST = yaml.safe_load((Path(__file__).parent.parent / "manifest.yml").read_text())


def test_manifest_declares_what_the_code_registers() -> None:
    features, settings = MANIFEST["features"], MANIFEST["settings"]
    assert tuple(c["command"] for c in features["slash_commands"]) == COMMANDS
    assert tuple(settings["event_subscriptions"]["bot_events"]) == EVENTS
    assert tuple(MANIFEST["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES
    assert features["app_home"]["home_tab_enabled"] is True
    # syncbot sends DMs (answers to App Home clicks, token-expiry reminders): the Messages tab must show them,
    # read-only (with the Messages tab turned off, users never see the DMs).
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    urls = {c["url"] for c in features["slash_commands"]} | {settings["interactivity"]["request_url"],
                                                             settings["event_subscriptions"]["request_url"]}
    assert {u.rsplit("/", 2)[-2] + "/" + u.rsplit("/", 1)[-1] for u in urls} == {"slack/events"}
    for command in features["slash_commands"]:
        assert command["description"] and len(command["description"]) <= 100
    # HTTP mode by default (Socket Mode is the same app with an app-level token); no token rotation, which the
    # installation store does not refresh (https://docs.slack.dev/authentication/using-token-rotation).
    assert settings["socket_mode_enabled"] is False and settings["token_rotation_enabled"] is False


def test_every_declared_command_and_event_is_answered(stack: Any) -> None:
    for command in MANIFEST["features"]["slash_commands"]:
        result = stack.driver.slash_command(command["command"], "help")
        assert result.status_code == 200, command["command"]
    for event in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        result = stack.driver.event({"type": event, "user": "U0000000001", "tab": "home"})
        assert result.status_code == 200, event
