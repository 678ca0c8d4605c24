"""Block Kit validation, as Slack's API applies it before accepting a message or a view.

Limits come from the block and element reference pages (https://docs.slack.dev/reference/block-kit/blocks):
- "You can include up to 50 blocks in each message, and 100 blocks in modals or Home tabs."
  (https://docs.slack.dev/reference/block-kit/blocks)
- section: text 1..3000 characters, at most 10 fields of at most 2000 characters
  (https://docs.slack.dev/reference/block-kit/blocks/section-block)
- header: plain_text of at most 150 characters (https://docs.slack.dev/reference/block-kit/blocks/header-block)
- actions: at most 25 elements (https://docs.slack.dev/reference/block-kit/blocks/actions-block)
- context: at most 10 elements (https://docs.slack.dev/reference/block-kit/blocks/context-block)
- button: text at most 75, value at most 2000, url at most 3000, action_id at most 255
  (https://docs.slack.dev/reference/block-kit/block-elements/button-element)
- block_id at most 255 characters (every block's page)
- modal: title, submit and close at most 24 characters; private_metadata at most 3000; callback_id at most 255
  (https://docs.slack.dev/reference/views/modal-views)

Each problem is reported the way Slack words it, with a JSON pointer, e.g.
``must be less than 3001 characters [json-pointer:/blocks/0/text/text]`` (wording seen in Slack's answers, e.g.
activepieces/activepieces#11149 and situation SL-07). Slack answers chat.* with ``invalid_blocks`` and lists the
problems in ``errors`` and, prefixed with ``[ERROR] ``, in ``response_metadata.messages``.
"""

from __future__ import annotations

from typing import Any, Literal

Surface = Literal["message", "modal", "home"]

MAX_BLOCKS: dict[Surface, int] = {"message": 50, "modal": 100, "home": 100}

_COMMON_BLOCKS = {
    "actions", "context", "divider", "header", "image", "input", "rich_text", "section", "video",
    "context_actions",
}
BLOCK_TYPES: dict[Surface, set[str]] = {
    "message": _COMMON_BLOCKS | {"file", "markdown", "table"},
    "modal": set(_COMMON_BLOCKS),
    "home": set(_COMMON_BLOCKS),
}

SELECT_TYPES = {
    "static_select", "external_select", "users_select", "conversations_select", "channels_select",
    "multi_static_select", "multi_external_select", "multi_users_select", "multi_conversations_select",
    "multi_channels_select",
}
INPUT_TYPES = {
    "plain_text_input", "email_text_input", "url_text_input", "number_input", "rich_text_input", "file_input",
}
ELEMENT_TYPES = SELECT_TYPES | INPUT_TYPES | {
    "button", "checkboxes", "datepicker", "datetimepicker", "timepicker", "image", "overflow", "radio_buttons",
    "workflow_button", "feedback_buttons", "icon_button",
}


def _too_long(limit: int, pointer: str) -> str:
    return f"must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _too_many(limit: int, pointer: str) -> str:
    return f"no more than {limit} items allowed [json-pointer:{pointer}]"


def _missing(name: str, pointer: str) -> str:
    return f"missing required field: {name} [json-pointer:{pointer}]"


class _Checker:
    """Walks a block list and collects problems in Slack's wording."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, message: str) -> None:
        self.errors.append(message)

    # -- composition objects -------------------------------------------------------------------------------
    def text(self, obj: Any, ptr: str, max_len: int | None, plain_only: bool = False) -> None:
        """A text object (https://docs.slack.dev/reference/block-kit/composition-objects/text-object)."""
        if not isinstance(obj, dict):
            self.add(f"expected object [json-pointer:{ptr}]")
            return
        kind = obj.get("type")
        if kind is None:
            self.add(_missing("type", ptr))
        elif kind not in ("plain_text", "mrkdwn"):
            self.add(f"must be one of plain_text, mrkdwn [json-pointer:{ptr}/type]")
        elif plain_only and kind != "plain_text":
            self.add(f"must be plain_text [json-pointer:{ptr}/type]")
        value = obj.get("text")
        if value is None:
            self.add(_missing("text", ptr))
        elif not isinstance(value, str):
            self.add(f"expected string [json-pointer:{ptr}/text]")
        elif len(value) < 1:
            self.add(f"must be more than 0 characters [json-pointer:{ptr}/text]")
        elif max_len is not None and len(value) > max_len:
            self.add(_too_long(max_len, f"{ptr}/text"))

    def string(self, obj: dict[str, Any], key: str, ptr: str, max_len: int, required: bool = False) -> None:
        value = obj.get(key)
        if value is None:
            if required:
                self.add(_missing(key, ptr))
            return
        if not isinstance(value, str):
            self.add(f"expected string [json-pointer:{ptr}/{key}]")
        elif len(value) > max_len:
            self.add(_too_long(max_len, f"{ptr}/{key}"))

    def options(self, items: Any, ptr: str, max_items: int, plain_only: bool) -> None:
        """Option objects (https://docs.slack.dev/reference/block-kit/composition-objects/option-object)."""
        if not isinstance(items, list):
            self.add(f"expected array [json-pointer:{ptr}]")
            return
        if len(items) > max_items:
            self.add(_too_many(max_items, ptr))
        for i, option in enumerate(items):
            optr = f"{ptr}/{i}"
            if not isinstance(option, dict):
                self.add(f"expected object [json-pointer:{optr}]")
                continue
            if "text" not in option:
                self.add(_missing("text", optr))
            else:
                self.text(option["text"], f"{optr}/text", 75, plain_only=plain_only)
            self.string(option, "value", optr, 150)

    def option_groups(self, groups: Any, ptr: str) -> None:
        """Option groups: at most 100, each a label (plain_text, at most 75) and at most 100 options
        (https://docs.slack.dev/reference/block-kit/composition-objects/option-group-object)."""
        if not isinstance(groups, list):
            self.add(f"expected array [json-pointer:{ptr}]")
            return
        if len(groups) > 100:
            self.add(_too_many(100, ptr))
        for i, group in enumerate(groups):
            gptr = f"{ptr}/{i}"
            if not isinstance(group, dict):
                self.add(f"expected object [json-pointer:{gptr}]")
                continue
            if "label" not in group:
                self.add(_missing("label", gptr))
            else:
                self.text(group["label"], f"{gptr}/label", 75, plain_only=True)
            if "options" not in group:
                self.add(_missing("options", gptr))
            else:
                self.options(group["options"], f"{gptr}/options", 100, plain_only=True)

    # -- elements -----------------------------------------------------------------------------------------
    def element(self, el: Any, ptr: str) -> None:
        """A block element (https://docs.slack.dev/reference/block-kit/block-elements)."""
        if not isinstance(el, dict):
            self.add(f"expected object [json-pointer:{ptr}]")
            return
        kind = el.get("type")
        if kind is None:
            self.add(_missing("type", ptr))
            return
        if kind not in ELEMENT_TYPES:
            self.add(f"unsupported type: {kind} [json-pointer:{ptr}/type]")
            return
        self.string(el, "action_id", ptr, 255)
        if "placeholder" in el:
            self.text(el["placeholder"], f"{ptr}/placeholder", 150, plain_only=True)
        if kind == "button":
            if "text" not in el:
                self.add(_missing("text", ptr))
            else:
                self.text(el["text"], f"{ptr}/text", 75, plain_only=True)
            self.string(el, "value", ptr, 2000)
            self.string(el, "url", ptr, 3000)
            style = el.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.add(f"must be one of primary, danger [json-pointer:{ptr}/style]")
        elif kind == "image":
            if "image_url" not in el and "slack_file" not in el:
                self.add(_missing("image_url", ptr))
            self.string(el, "alt_text", ptr, 2000, required=True)
        elif kind == "overflow":
            if "options" not in el:
                self.add(_missing("options", ptr))
            else:
                self.options(el["options"], f"{ptr}/options", 5, plain_only=True)
        elif kind in ("radio_buttons", "checkboxes"):
            if "options" not in el:
                self.add(_missing("options", ptr))
            else:
                self.options(el["options"], f"{ptr}/options", 10, plain_only=False)
        elif kind in ("static_select", "multi_static_select"):
            if "options" not in el and "option_groups" not in el:
                self.add(_missing("options", ptr))
            elif "options" in el:
                self.options(el["options"], f"{ptr}/options", 100, plain_only=True)
            else:
                self.option_groups(el["option_groups"], f"{ptr}/option_groups")

    def elements(self, items: Any, ptr: str, max_items: int) -> list[Any]:
        if not isinstance(items, list):
            self.add(f"expected array [json-pointer:{ptr}]")
            return []
        if len(items) > max_items:
            self.add(_too_many(max_items, ptr))
        if not items:
            self.add(f"must contain at least 1 item [json-pointer:{ptr}]")
        return items

    # -- blocks -------------------------------------------------------------------------------------------
    def block(self, block: Any, ptr: str, surface: Surface, seen_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.add(f"expected object [json-pointer:{ptr}]")
            return
        kind = block.get("type")
        if kind is None:
            self.add(_missing("type", ptr))
            return
        if kind not in BLOCK_TYPES[surface]:
            self.add(f"unsupported type: {kind} [json-pointer:{ptr}/type]")
            return
        block_id = block.get("block_id")
        if block_id is not None:
            self.string(block, "block_id", ptr, 255)
            if isinstance(block_id, str):
                if block_id in seen_ids:
                    self.add(f"duplicate block_id: {block_id} [json-pointer:{ptr}/block_id]")
                seen_ids.add(block_id)
        handler = getattr(self, f"block_{kind}", None)
        if handler is not None:
            handler(block, ptr)

    def block_section(self, block: dict[str, Any], ptr: str) -> None:
        if "text" not in block and "fields" not in block:
            self.add(_missing("text", ptr))
        if "text" in block:
            self.text(block["text"], f"{ptr}/text", 3000)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list):
                self.add(f"expected array [json-pointer:{ptr}/fields]")
            else:
                if len(fields) > 10:
                    self.add(_too_many(10, f"{ptr}/fields"))
                for i, f in enumerate(fields):
                    self.text(f, f"{ptr}/fields/{i}", 2000)
        if "accessory" in block:
            self.element(block["accessory"], f"{ptr}/accessory")

    def block_header(self, block: dict[str, Any], ptr: str) -> None:
        if "text" not in block:
            self.add(_missing("text", ptr))
        else:
            self.text(block["text"], f"{ptr}/text", 150, plain_only=True)

    def block_context(self, block: dict[str, Any], ptr: str) -> None:
        if "elements" not in block:
            self.add(_missing("elements", ptr))
            return
        for i, el in enumerate(self.elements(block["elements"], f"{ptr}/elements", 10)):
            eptr = f"{ptr}/elements/{i}"
            if isinstance(el, dict) and el.get("type") == "image":
                self.element(el, eptr)
            else:
                self.text(el, eptr, 3000)

    def block_actions(self, block: dict[str, Any], ptr: str) -> None:
        if "elements" not in block:
            self.add(_missing("elements", ptr))
            return
        for i, el in enumerate(self.elements(block["elements"], f"{ptr}/elements", 25)):
            self.element(el, f"{ptr}/elements/{i}")

    def block_context_actions(self, block: dict[str, Any], ptr: str) -> None:
        if "elements" not in block:
            self.add(_missing("elements", ptr))
            return
        self.elements(block["elements"], f"{ptr}/elements", 5)

    def block_image(self, block: dict[str, Any], ptr: str) -> None:
        if "image_url" not in block and "slack_file" not in block:
            self.add(_missing("image_url", ptr))
        self.string(block, "image_url", ptr, 3000)
        self.string(block, "alt_text", ptr, 2000, required=True)
        if "title" in block:
            self.text(block["title"], f"{ptr}/title", 2000, plain_only=True)

    def block_input(self, block: dict[str, Any], ptr: str) -> None:
        if "label" not in block:
            self.add(_missing("label", ptr))
        else:
            self.text(block["label"], f"{ptr}/label", 2000, plain_only=True)
        if "element" not in block:
            self.add(_missing("element", ptr))
        else:
            self.element(block["element"], f"{ptr}/element")
        if "hint" in block:
            self.text(block["hint"], f"{ptr}/hint", 2000, plain_only=True)

    def block_rich_text(self, block: dict[str, Any], ptr: str) -> None:
        if not isinstance(block.get("elements"), list):
            self.add(_missing("elements", ptr))

    def block_video(self, block: dict[str, Any], ptr: str) -> None:
        for key in ("alt_text", "title", "thumbnail_url", "video_url"):
            if key not in block:
                self.add(_missing(key, ptr))

    def block_file(self, block: dict[str, Any], ptr: str) -> None:
        for key in ("external_id", "source"):
            if key not in block:
                self.add(_missing(key, ptr))

    def block_markdown(self, block: dict[str, Any], ptr: str) -> None:
        self.string(block, "text", ptr, 12000, required=True)

    def block_table(self, block: dict[str, Any], ptr: str) -> None:
        if not isinstance(block.get("rows"), list):
            self.add(_missing("rows", ptr))


def validate_blocks(blocks: Any, surface: Surface = "message", pointer: str = "/blocks") -> list[str]:
    """Return Slack's complaints about ``blocks`` for ``surface`` (empty when Slack would accept them).

    The caller answers ``invalid_blocks_format`` itself when ``blocks`` is not a JSON array.
    """
    checker = _Checker()
    if not isinstance(blocks, list):
        checker.add(f"expected array [json-pointer:{pointer}]")
        return checker.errors
    limit = MAX_BLOCKS[surface]
    if len(blocks) > limit:
        checker.add(_too_many(limit, pointer))
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        checker.block(block, f"{pointer}/{i}", surface, seen)
    return checker.errors


def validate_view(view: Any, expected: Literal["modal", "home"]) -> list[str]:
    """Return Slack's complaints about a view object (https://docs.slack.dev/reference/views/modal-views,
    https://docs.slack.dev/reference/views/home-tab-views), pointers under ``/view``."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.add("expected object [json-pointer:/view]")
        return checker.errors
    kind = view.get("type")
    if kind is None:
        checker.add(_missing("type", "/view"))
    elif kind != expected:
        checker.add(f"must be {expected} [json-pointer:/view/type]")
    if "blocks" not in view:
        checker.add(_missing("blocks", "/view"))
    else:
        checker.errors.extend(validate_blocks(view["blocks"], expected, "/view/blocks"))
    checker.string(view, "private_metadata", "/view", 3000)
    checker.string(view, "callback_id", "/view", 255)
    checker.string(view, "external_id", "/view", 255)
    if expected == "modal":
        if "title" not in view:
            checker.add(_missing("title", "/view"))
        else:
            checker.text(view["title"], "/view/title", 24, plain_only=True)
        for key in ("submit", "close"):
            if view.get(key) is not None:
                checker.text(view[key], f"/view/{key}", 24, plain_only=True)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and view.get("submit") is None:
            checker.add(_missing("submit", "/view"))
    return checker.errors


def error_body(error: str, problems: list[str]) -> dict[str, Any]:
    """The ``ok: false`` answer carrying validation problems, shaped like Slack's (see SL-07)."""
    return {
        "ok": False,
        "error": error,
        "errors": list(problems),
        "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
    }
