"""Modal submissions: fill the missing field, then retry; send a support request. The preamble is
`handlers.common.permitted`; a refusal is shown in the modal, under its input."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot import blocks
from bot.blocks import ids
from bot.events import EventLedger
from bot.operations import entries, support
from bot.runtime import SlackRuntime
from handlers.common import Request, ids_from, int_value, permitted


class Submission(Request):
    """A modal's submission: its view (``entry_id``: the entry it is about), answered by its ack; a refusal is shown
    in the modal under ``block``."""

    def __init__(self, rt: SlackRuntime, ack: Ack, body: dict[str, Any], view: dict[str, Any],
                 context: Mapping[str, Any] | None, block: str) -> None:
        super().__init__(rt, *ids_from(body), context)
        self.ack, self.view, self.block = ack, view, block

    @property
    def entry_id(self) -> int | None:
        return int_value(self.view.get("private_metadata"))

    def refuse(self, text: str) -> None:
        self.ack(response_action="errors", errors={self.block: text})


@permitted(change=True)
def fill_field_submitted(s: Submission) -> None:
    problem = entries.fill_field(s.rt, s.tenant, s.user, s.entry_id, blocks.submitted_value(s.view))
    if problem:
        s.refuse(problem)
        return
    s.ack()


@permitted(change=False, anyone=True)
def support_submitted(s: Submission) -> None:
    submissions = EventLedger(s.rt.services.sessions)
    if s.view.get("id") and not submissions.first_delivery(f"support:{s.view['id']}", s.tenant.team_id):
        s.ack()  # a second Send of the same modal (a double click, a retry): it was sent once
        return
    # one chat.postMessage before the ack, so the modal can say at once where the request went
    s.ack(response_action="update", view=support.send_support(s.rt, s.tenant, s.user, s.entry_id,
                                                              blocks.submitted_note(s.view)))


def on_submission(app: App, rt: SlackRuntime, callback_id: str,
                  block: str) -> Callable[[Callable[[Submission], None]], Callable[[Submission], None]]:
    """Register ``work`` for the modal ``callback_id``; a refusal is shown under its input ``block``."""

    def register_work(work: Callable[[Submission], None]) -> Callable[[Submission], None]:
        def listener(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
            work(Submission(rt, ack, body, view, context, block))

        listener.__name__ = listener.__qualname__ = work.__name__  # Bolt's logs name the listener
        app.view(callback_id)(listener)
        return work

    return register_work


def register(app: App, rt: SlackRuntime) -> None:
    on_submission(app, rt, ids.FILL_FIELD_VIEW, ids.FILL_FIELD_BLOCK)(fill_field_submitted)
    on_submission(app, rt, ids.SUPPORT_VIEW, ids.SUPPORT_NOTE_BLOCK)(support_submitted)
