"""The App Home tab: published when the user opens it (after the event is acked), and again when things change
(bot.home). The preamble is `handlers.common.permitted`; a refusal is the Home itself, saying why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_bolt import App, BoltContext

from bot import blocks
from bot.operations import pages
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo
from handlers.common import Request, permitted

#: The events this module subscribes to (manifest.yml's bot_events).
EVENTS = ("app_home_opened",)


class HomeOpened(Request):
    """A person opened the App Home; a refusal is published as their Home (nothing when the workspace is not set up:
    there is no one to tell it)."""

    def __init__(self, rt: SlackRuntime, event: dict[str, Any], body: dict[str, Any],
                 context: Mapping[str, Any] | None) -> None:
        super().__init__(rt, body.get("team_id"), event.get("user"), context)

    def refuse(self, text: str) -> None:
        self.refused(text, self.tenant, self.user, False)

    def refused(self, text: str, tenant: Tenant | None, user: UserInfo | None, change: bool) -> None:
        if tenant is not None and user is not None:
            self.rt.clients.for_team(tenant.team_id).views_publish(user_id=user.user_id,
                                                                   view=blocks.home_refusal_view(text))


@permitted(change=False)
def publish(h: HomeOpened) -> None:
    pages.publish_home(h.rt, h.tenant, h.user)
    if h.rt.home is not None:
        h.rt.home.opened(h.tenant.team_id, h.user.user_id)  # re-published from now on when things change


def register(app: App, rt: SlackRuntime) -> None:
    @app.event(EVENTS[0])
    def app_home_opened(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        if event.get("tab", "home") != "home":
            return
        rt.after_ack(publish, HomeOpened(rt, event, body, context))  # Bolt acks the event when this returns
