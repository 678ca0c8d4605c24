"""The App Home tab: published when the user opens it (after the event is acked), and again when things change
(bot.home)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from bot import blocks
from bot.operations import pages
from bot.runtime import SlackRuntime
from handlers.common import who

#: The events this module subscribes to (manifest.yml's bot_events).
EVENTS = ("app_home_opened",)


def register(app: App, rt: SlackRuntime) -> None:
    @app.event(EVENTS[0])
    def app_home_opened(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        if event.get("tab", "home") != "home":
            return
        rt.after_ack(publish, event, body, context)  # Bolt acks the event when this listener returns

    def publish(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        tenant, user, refusal = who(rt, body.get("team_id"), event.get("user"), change=False,
                                      context=context)
        if tenant is None or user is None:
            return
        if refusal:
            rt.clients.for_team(tenant.team_id).views_publish(user_id=user.user_id,
                                                              view=blocks.home_refusal_view(refusal))
            return
        pages.publish_home(rt, tenant, user)
        if rt.home is not None:
            rt.home.opened(tenant.team_id, user.user_id)  # re-published from now on when things change
