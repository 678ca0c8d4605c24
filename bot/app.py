"""Builds the Bolt App (sync `App`; DEPENDENCIES.md P1) and registers the listeners.

Single workspace: SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET; the workspace is bound to the first account on its
first request. Bolt verifies every request's signature (`X-Slack-Signature`, 5-minute window; Slack's
"Verifying requests from Slack") and acks url_verification and ssl_check.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import App, BoltContext

import handlers
from bot.runtime import SlackRuntime

#: Bot scopes the code uses: commands (slash commands), chat:write (chat.postMessage/update/postEphemeral),
#: users:read (users.info for Owner/Admin and time zone), im:write (conversations.open to DM admins).
BOT_SCOPES = ("commands", "chat:write", "users:read", "im:write")


def build_app(rt: SlackRuntime) -> App:
    """The Bolt App on the runtime's request-path client. Raises ValueError when Slack is not configured."""
    settings = rt.settings
    if settings.slack_signing_secret is None or settings.slack_bot_token is None:
        raise ValueError("SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN must be set to serve the Slack app")
    app = App(signing_secret=settings.slack_signing_secret.get_secret_value(),
              token=settings.slack_bot_token.get_secret_value(), client=rt.clients.request,
              process_before_response=False, ignoring_self_events_enabled=True)
    @app.middleware
    def bind_workspace(context: BoltContext, next: Callable[[], None]) -> None:
        rt.tenants.get(context.team_id)  # single-workspace mode binds the workspace on its first request
        next()

    handlers.register(app, rt)
    return app
