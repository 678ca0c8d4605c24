"""App lifecycle events: the app uninstalled from a workspace, or its tokens revoked (multi-workspace mode).

Either deletes the workspace's installation and bot rows (both: docs/platform-facts.md, "Libraries") so no
token of it stays stored; the workspace stays bound to its account, so a reinstall finds its log and settings again.
https://docs.slack.dev/reference/events/app_uninstalled, https://docs.slack.dev/reference/events/tokens_revoked
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from bot.runtime import SlackRuntime

log = logging.getLogger("syncbot.handlers")

#: The events this module subscribes to (manifest.yml's bot_events).
EVENTS = ("app_uninstalled", "tokens_revoked")


def _forget(rt: SlackRuntime, body: dict[str, Any], why: str) -> None:
    team_id = body.get("team_id")
    if not team_id:
        return
    if rt.installations is not None:
        rt.installations.forget_team(str(team_id), body.get("enterprise_id"))
    rt.clients.forget(str(team_id))
    if rt.home is not None:
        rt.home.forget_team(str(team_id))
    log.info("event=slack_%s team_id=%s", why, team_id)


def register(app: App, rt: SlackRuntime) -> None:
    @app.event(EVENTS[0])
    def app_uninstalled(body: dict[str, Any]) -> None:
        _forget(rt, body, "uninstalled")

    @app.event(EVENTS[1])
    def tokens_revoked(event: dict[str, Any], body: dict[str, Any]) -> None:
        if (event.get("tokens") or {}).get("bot"):  # user tokens: syncbot stores none
            _forget(rt, body, "bot_token_revoked")
