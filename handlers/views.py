"""Modal submissions: fill the missing field, then retry; send a support request."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot import blocks
from bot.blocks import ids
from bot.events import EventLedger
from bot.operations import entries, support
from bot.runtime import SlackRuntime
from handlers.common import ids_from, int_value, who
from sync.engine import NotFound


def register(app: App, rt: SlackRuntime) -> None:
    @app.view(ids.FILL_FIELD_VIEW)
    def fill_field_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        tenant, user, refusal = who(rt, *ids_from(body), change=True, context=context)
        if refusal or tenant is None or user is None:
            ack(response_action="errors", errors={ids.FILL_FIELD_BLOCK: refusal or "Not allowed."})
            return
        value = blocks.submitted_value(view)
        entry_id = int_value(view.get("private_metadata"))
        problem = entries.fill_field(rt, tenant, user, entry_id, value)
        if problem:
            ack(response_action="errors", errors={ids.FILL_FIELD_BLOCK: problem})
            return
        ack()

    submissions = EventLedger(rt.services.sessions)

    @app.view(ids.SUPPORT_VIEW)
    def support_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        tenant, user, refusal = who(rt, *ids_from(body), change=False, context=context, anyone=True)
        if refusal or tenant is None or user is None:
            ack(response_action="errors", errors={ids.SUPPORT_NOTE_BLOCK: refusal or "Not allowed."})
            return
        if view.get("id") and not submissions.first_delivery(f"support:{view['id']}", tenant.team_id):
            ack()  # a second Send of the same modal (a double click, a retry): it was sent once
            return
        try:  # one chat.postMessage before the ack, so the modal can say at once where the request went
            shown = support.send_support(rt, tenant, user, int_value(view.get("private_metadata")),
                                            blocks.submitted_note(view))
        except NotFound:
            ack(response_action="errors", errors={ids.SUPPORT_NOTE_BLOCK: "That sync log entry was not found in "
                                                                          "your account."})
            return
        ack(response_action="update", view=shown)
