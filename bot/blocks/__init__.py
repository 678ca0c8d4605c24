"""Block Kit for syncbot: pure functions from domain objects to Slack messages and views (dicts).

No Slack calls and no database access here: the notifier and the handlers load what to show, call one of
these functions, and send the result (``chat.postMessage``/``chat.update`` take ``**message``; ``views.*``
take the view). Every function accepts duck-typed objects with the attributes of the ORM classes, keeps
every text within Slack's limits and escapes whatever did not come from syncbot itself. Action ids live in
:mod:`bot.blocks.ids`.
"""

from __future__ import annotations

from bot.blocks import ids
from bot.blocks.commands import (
    answer_modal,
    retry_all_confirm,
    retry_all_done,
    retry_all_not_run,
    retry_all_progress,
    sync_now_done,
    sync_now_still_limited,
)
from bot.blocks.connection import expiry_reminder, reconnect_link, status_message
from bot.blocks.details import details_modal
from bot.blocks.fields import chooses_from_list, fill_field_modal, submitted_value
from bot.blocks.home import ConnectionCard, home_refusal_view, home_view
from bot.blocks.incidents import digest_message, incident_message
from bot.blocks.log import help_message, log_page
from bot.blocks.messages import attempt_note, click_notice, entry_state, error_message
from bot.blocks.refusals import admin_problem_notice, short_form
from bot.blocks.summary import weekly_summary_message
from bot.blocks.support import submitted_note, support_modal, support_request_message
from bot.blocks.text import escape_mrkdwn, format_time, mrkdwn, record_name, truncate

__all__ = [
    "ConnectionCard",
    "admin_problem_notice",
    "answer_modal",
    "attempt_note",
    "chooses_from_list",
    "click_notice",
    "details_modal",
    "digest_message",
    "entry_state",
    "error_message",
    "escape_mrkdwn",
    "expiry_reminder",
    "fill_field_modal",
    "format_time",
    "help_message",
    "home_refusal_view",
    "home_view",
    "ids",
    "incident_message",
    "log_page",
    "mrkdwn",
    "reconnect_link",
    "record_name",
    "retry_all_confirm",
    "retry_all_done",
    "retry_all_not_run",
    "retry_all_progress",
    "short_form",
    "status_message",
    "submitted_note",
    "submitted_value",
    "support_modal",
    "support_request_message",
    "sync_now_done",
    "sync_now_still_limited",
    "truncate",
    "weekly_summary_message",
]
