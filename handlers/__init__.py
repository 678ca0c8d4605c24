"""Thin Slack listeners, one module per surface, each exposing ``register(app, rt)``."""

from __future__ import annotations

from slack_bolt import App

from bot.runtime import SlackRuntime
from handlers import actions, commands, home, install, views

#: Every event the app subscribes to (manifest.yml's bot_events).
EVENTS = home.EVENTS + install.EVENTS


def register(app: App, rt: SlackRuntime) -> None:
    """Register every listener on ``app``."""
    for module in (commands, actions, home, views, install):
        module.register(app, rt)
