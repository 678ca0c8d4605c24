"""Modal submissions: fill the missing field, then retry."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot import blocks, operations
from bot.blocks import ids
from bot.runtime import SlackRuntime
from handlers.common import ids_from, int_value, who


def register(app: App, rt: SlackRuntime) -> None:
    @app.view(ids.FILL_FIELD_VIEW)
    def fill_field_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        tenant, user, refusal = who(rt, *ids_from(body), change=True, context=context)
        if refusal or tenant is None or user is None:
            ack(response_action="errors", errors={ids.FILL_FIELD_BLOCK: refusal or "Not allowed."})
            return
        value = blocks.submitted_value(view)
        entry_id = int_value(view.get("private_metadata"))
        problem = operations.fill_field(rt, tenant, user, entry_id, value)
        if problem:
            ack(response_action="errors", errors={ids.FILL_FIELD_BLOCK: problem})
            return
        ack()
