"""Small constructors of Block Kit objects that keep every text inside Slack's limits.

Each constructor cuts what it is given to its limit (see :mod:`bot.blocks.text` for the limits and the Slack
pages they come from), so a renderer cannot produce a block Slack refuses, whatever the data. Mrkdwn given to
these constructors must already be escaped (:func:`bot.blocks.text.mrkdwn`); plain_text is taken as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.blocks.text import (
    ACTIONS_ELEMENTS_MAX,
    BUTTON_TEXT_MAX,
    BUTTON_URL_MAX,
    BUTTON_VALUE_MAX,
    CONFIRM_BUTTON_MAX,
    CONFIRM_TEXT_MAX,
    CONFIRM_TITLE_MAX,
    CONTEXT_ELEMENTS_MAX,
    CONTEXT_TEXT_MAX,
    FALLBACK_TEXT_MAX,
    FIELD_TEXT_MAX,
    FIELDS_MAX,
    HEADER_TEXT_MAX,
    MESSAGE_BLOCKS_MAX,
    MODAL_TITLE_MAX,
    PRIVATE_METADATA_MAX,
    SECTION_TEXT_MAX,
    plain,
    plural,
    truncate_mrkdwn,
)

Block = dict[str, Any]
Message = dict[str, Any]


def plain_text(text: object, limit: int) -> dict[str, Any]:
    """A plain_text object cut to ``limit`` (https://docs.slack.dev/reference/block-kit/composition-objects/text-object)."""
    return {"type": "plain_text", "text": plain(text, limit), "emoji": True}


def mrkdwn_text(text: str, limit: int = SECTION_TEXT_MAX, *, verbatim: bool = True) -> dict[str, Any]:
    """A mrkdwn object, cut to ``limit``; ``verbatim`` stops Slack auto-linking URLs and names in it."""
    value = truncate_mrkdwn(text, limit) if text.strip() else "-"
    obj: dict[str, Any] = {"type": "mrkdwn", "text": value}
    if verbatim:
        obj["verbatim"] = True
    return obj


def section(text: str, *, accessory: dict[str, Any] | None = None,
            fields: Sequence[str] | None = None) -> Block:
    """A section block: mrkdwn text (at most 3000) and optional fields (at most 10 of 2000) and accessory."""
    block: Block = {"type": "section", "text": mrkdwn_text(text)}
    if fields:
        block["fields"] = [mrkdwn_text(f, FIELD_TEXT_MAX) for f in list(fields)[:FIELDS_MAX]]
    if accessory is not None:
        block["accessory"] = accessory
    return block


def fields_section(fields: Sequence[str]) -> Block:
    """A section of fields only (shown in two columns), at most 10 of at most 2000 characters."""
    return {"type": "section", "fields": [mrkdwn_text(f, FIELD_TEXT_MAX) for f in list(fields)[:FIELDS_MAX]]}


def header(text: object) -> Block:
    """A header block: plain_text, at most 150 characters."""
    return {"type": "header", "text": plain_text(text, HEADER_TEXT_MAX)}


def context(*texts: str) -> Block:
    """A context block of mrkdwn elements (at most 10, each cut)."""
    elements = [mrkdwn_text(t, CONTEXT_TEXT_MAX) for t in texts if t][:CONTEXT_ELEMENTS_MAX]
    return {"type": "context", "elements": elements or [mrkdwn_text("-")]}


def divider() -> Block:
    """A divider block."""
    return {"type": "divider"}


def confirm_dialog(title: str, text: str, confirm: str, deny: str = "Cancel",
                   style: str | None = None) -> dict[str, Any]:
    """A confirmation dialog object (title 100, text 300, buttons 30)."""
    obj: dict[str, Any] = {
        "title": plain_text(title, CONFIRM_TITLE_MAX),
        "text": mrkdwn_text(text, CONFIRM_TEXT_MAX, verbatim=False),
        "confirm": plain_text(confirm, CONFIRM_BUTTON_MAX),
        "deny": plain_text(deny, CONFIRM_BUTTON_MAX),
    }
    if style:
        obj["style"] = style
    return obj


def button(text: object, action_id: str, value: object = None, *, style: str | None = None,
           url: str | None = None, confirm: dict[str, Any] | None = None) -> dict[str, Any]:
    """A button: text at most 75, value at most 2000 (values carry ids), url at most 3000."""
    el: dict[str, Any] = {"type": "button", "action_id": action_id, "text": plain_text(text, BUTTON_TEXT_MAX)}
    if value is not None and str(value) != "":
        val = str(value)
        if len(val) > BUTTON_VALUE_MAX:
            raise ValueError(f"button value of {len(val)} characters for {action_id}: values carry ids only")
        el["value"] = val
    if url:
        if len(url) > BUTTON_URL_MAX:
            raise ValueError(f"button url of {len(url)} characters for {action_id}")
        el["url"] = url
    if style in ("primary", "danger"):
        el["style"] = style
    if confirm is not None:
        el["confirm"] = confirm
    return el


def actions(elements: Iterable[dict[str, Any]]) -> Block | None:
    """An actions block of at most 25 elements; None when there is nothing to click."""
    els = list(elements)[:ACTIONS_ELEMENTS_MAX]
    return {"type": "actions", "elements": els} if els else None


def message(text: str, blocks: Sequence[Block | None], limit: int = MESSAGE_BLOCKS_MAX) -> Message:
    """A message payload: the ``text`` fallback (escaped by the caller, cut to 3000) and at most ``limit`` blocks.

    ``None`` entries are dropped. If the blocks still exceed the limit (renderers keep their own budget, so this
    is a last guard), the middle is cut and a trailing actions block is kept so the buttons survive.
    """
    return {"text": truncate_mrkdwn(text or "syncbot", FALLBACK_TEXT_MAX), "blocks": fit(blocks, limit)}


def fit(blocks: Sequence[Block | None], limit: int) -> list[Block]:
    """``blocks`` without ``None``, at most ``limit`` of them (a final actions block kept, the cut counted)."""
    kept = [b for b in blocks if b is not None]
    if len(kept) <= limit:
        return kept
    tail = [kept[-1]] if kept[-1].get("type") == "actions" else []
    body = kept[: len(kept) - len(tail)]
    room = limit - len(tail) - 1
    cut = len(body) - room
    return [*body[:room], context(f"_{plural(cut, 'more block')} not shown: see the sync log._"), *tail]


def modal(title: str, blocks: Sequence[Block | None], *, callback_id: str, private_metadata: str = "",
          submit: str | None = None, close: str = "Close", limit: int = 100) -> dict[str, Any]:
    """A modal view (title, submit and close at most 24; private_metadata at most 3000; at most 100 blocks)."""
    if len(private_metadata) > PRIVATE_METADATA_MAX:
        raise ValueError("private_metadata carries ids only")
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain_text(title, MODAL_TITLE_MAX),
        "close": plain_text(close, MODAL_TITLE_MAX),
        "blocks": fit(blocks, limit),
    }
    if submit:
        view["submit"] = plain_text(submit, MODAL_TITLE_MAX)
    if private_metadata:
        view["private_metadata"] = private_metadata
    return view
