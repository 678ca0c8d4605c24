"""The short form of a view Slack refused as too large or invalid (`bot.slack_errors`, class SHORTEN).

Messages have theirs in :func:`bot.blocks.refusals.short_form`; this is the same idea for a Home tab or a modal
(``views.publish``, ``views.open``, ``views.update``): what is left acts and says where the rest is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.blocks.kit import actions, context, section
from bot.blocks.text import SECTION_TEXT_MAX, truncate

#: The keys of a view kept as they were: what makes it the same view (its kind, title, buttons, callback and state).
_VIEW_KEYS = ("type", "title", "submit", "close", "callback_id", "private_metadata", "clear_on_close",
              "notify_on_close", "external_id", "submit_disabled")

#: How much of the first text the short form keeps.
SHORT_HEADLINE_MAX = 500


def short_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """The short form of ``view``: its first section or header (cut to 500 characters), a line saying the rest
    was left out, its input blocks (a modal's form still submits), and the buttons of its actions blocks.

    In: a view as the builders make it (``{"type": "home" | "modal", "blocks": [...], ...}``). Out: the same
    kind of view, with a handful of blocks.
    """
    source = [b for b in (view.get("blocks") or []) if isinstance(b, dict)]
    head = next((b for b in source if b.get("type") in ("section", "header") and isinstance(b.get("text"), dict)),
                None)
    headline = str(head["text"].get("text") or "") if head else ""
    inputs = [b for b in source if b.get("type") == "input"]
    buttons = [el for b in source if b.get("type") == "actions" for el in (b.get("elements") or [])
               if isinstance(el, dict) and el.get("type") == "button"]
    blocks: list[dict[str, Any] | None] = [
        section(truncate(headline, min(SHORT_HEADLINE_MAX, SECTION_TEXT_MAX))) if headline else None,
        context("Details left out: Slack refused the full view. `/sync-log` shows them."),
        *inputs,
        actions(buttons),
    ]
    short = {k: view[k] for k in _VIEW_KEYS if k in view}
    short["blocks"] = [b for b in blocks if b is not None]
    return short
