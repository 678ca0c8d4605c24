"""What is sent when Slack refuses a message (`bot.slack_errors`, class SHORTEN): its short form; and the notice
the admins get of a problem only they can fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.blocks.kit import (
    Block,
    Message,
    actions,
    context,
    message,
    section,
)
from bot.blocks.text import (
    truncate,
)

# ------------------------------------------------------------------------------------------------ refusals
#: How much of the headline the short form keeps.
SHORT_HEADLINE_MAX = 500


def short_form(msg: Mapping[str, Any]) -> Message:
    """The short form of a message Slack refused as too long or invalid (`bot.slack_errors`, SHORTEN): its first
    section (the headline, cut to 500 characters), a line saying the details were left out, and the buttons of
    its actions blocks (Retry, Reconnect, Re-create, View log...: what acts on the error). The fallback text is
    cut to 500 characters too.

    In: ``{"text", "blocks"}`` as the renderers make it. Out: the same shape, a handful of blocks.
    """
    source = [b for b in (msg.get("blocks") or []) if isinstance(b, dict)]
    head = next((b for b in source if b.get("type") == "section" and isinstance(b.get("text"), dict)), None)
    headline = str(head["text"].get("text") or "") if head else ""
    buttons = [el for b in source if b.get("type") == "actions" for el in (b.get("elements") or [])
               if isinstance(el, dict) and el.get("type") == "button"]
    blocks: list[Block | None] = [
        section(truncate(headline or str(msg.get("text") or "syncbot"), SHORT_HEADLINE_MAX)),
        context("Details left out: Slack refused the full message. *View log* shows them."),
        actions(buttons),
    ]
    return message(truncate(str(msg.get("text") or "syncbot"), SHORT_HEADLINE_MAX), blocks)


def admin_problem_notice(problem: str) -> Message:
    """The direct message to an account's admins when Slack refuses something only an admin can fix (a missing
    scope, syncbot not in the channel, an archived channel, a revoked token): ``problem`` says what and what to
    do (`bot.slack_errors.describe`: syncbot's own words and Slack's ids, so it is not escaped). Sent once per
    problem."""
    text = (f":warning: syncbot cannot post sync errors: {problem}. Nothing is lost: the errors "
            "wait and arrive as soon as it is fixed.")
    return message(text, [section(text)])
