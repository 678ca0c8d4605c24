"""The "Fill in the missing field" modal: one input for the field a validation error names.

A field that refers to one of QuickBooks' lists (an item's income account, an invoice's terms or tax code:
:data:`sync.providers.quickbooks.REFERENCE_FIELDS`) is chosen by name from that list, never typed as an id:
QuickBooks refuses an id it does not know, or one made inactive, with 2500 "Invalid Reference Id". Any other
field (a name, an email, a number) is typed.

Why a ``static_select`` filled when the modal opens, not an ``external_select``: the lists are short (a company's
income accounts, terms and tax codes number tens), one query loads a whole list, and the choice is made among
what QuickBooks held a moment ago. An external_select would need an options load URL in the app's settings and a
request to syncbot, and from syncbot to QuickBooks' 500-a-minute budget, at every keystroke. A static select holds
at most 100 options, or at most 100 option groups of at most 100 options each
(https://docs.slack.dev/reference/block-kit/block-elements/select-menu-element#static_select,
https://docs.slack.dev/reference/block-kit/composition-objects/option-group-object); QuickBooks answers at most
1000 objects a query, so a longer list is cut into groups of 100 (Slack's type-ahead searches them all). An
option's text is at most 75 characters and its value at most 150
(https://docs.slack.dev/reference/block-kit/composition-objects/option-object).

A modal must be opened within 3 seconds of the click (its trigger_id expires), and QuickBooks may take longer to
answer: the modal opens at once saying what it is loading (:func:`fill_field_modal` with ``loading=True``, no
submit button), and is updated with the list when QuickBooks answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.blocks import ids
from bot.blocks.kit import Block, context, modal, plain_text, section
from bot.blocks.messages import attr, field_label
from bot.blocks.text import INPUT_HINT_MAX, INPUT_LABEL_MAX, first_line, mrkdwn, plain, record_name

#: Slack's limits on a static select (module docstring).
OPTIONS_MAX = 100
OPTION_GROUPS_MAX = 100
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
#: What each list is called in the modal's sentences: the QuickBooks list -> (its objects, one of them).
LIST_WORDS: dict[str, tuple[str, str]] = {
    "Account": ("income accounts", "an income account"),
    "Term": ("terms", "terms"),
    "TaxCode": ("tax codes", "a tax code"),
}


def _reference_list(entry: Any) -> str | None:
    """The QuickBooks list the entry's field is chosen from (``Account``), None for a field that is typed."""
    from sync.providers.quickbooks import REFERENCE_FIELDS

    field = str(attr(entry, "field") or "").split(".")[0]
    found = REFERENCE_FIELDS.get((str(attr(entry, "entity") or ""), field))
    return found[0] if found else None


def chooses_from_list(entry: Any) -> bool:
    """True when the entry's field is chosen from one of QuickBooks' lists (so the modal has to load it)."""
    return _reference_list(entry) is not None


def _option(choice: Any) -> dict[str, Any]:
    return {"text": plain_text(attr(choice, "name") or attr(choice, "id"), OPTION_TEXT_MAX),
            "value": str(attr(choice, "id"))[:OPTION_VALUE_MAX]}


def _select(choices: Sequence[Any], current: str | None, placeholder: str) -> dict[str, Any]:
    """A static_select of ``choices`` (their names shown, their ids the values), ``current`` chosen already when
    it is among them; over 100 choices, option groups of 100."""
    options = [_option(c) for c in choices if str(attr(c, "id") or "")][:OPTIONS_MAX * OPTION_GROUPS_MAX]
    element: dict[str, Any] = {"type": "static_select", "action_id": ids.FILL_FIELD_INPUT,
                               "placeholder": plain_text(placeholder, 150), "focus_on_load": True}
    if len(options) <= OPTIONS_MAX:
        element["options"] = options
    else:
        groups = [options[i:i + OPTIONS_MAX] for i in range(0, len(options), OPTIONS_MAX)]
        element["option_groups"] = [
            {"label": plain_text(f"{plain(g[0]['text']['text'], 35)} to {plain(g[-1]['text']['text'], 35)}",
                                 OPTION_TEXT_MAX), "options": g} for g in groups]
    chosen = next((o for o in options if current is not None and o["value"] == current), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return element


def fill_field_modal(entry: Any, choices: Any = None, *, loading: bool = False) -> dict[str, Any]:
    """The modal that fills the field QuickBooks says is missing or invalid (``entry.field``).

    ``choices``: for a field chosen from a QuickBooks list, what :meth:`sync.engine.SyncEngine.field_choices`
    found (``choices`` by name, or the ``problem`` that kept them from loading, and the ``current`` id);
    ``loading``: the list is being asked for (no input yet, no submit). A field that is typed gets a text input.
    ``callback_id`` is :data:`ids.FILL_FIELD_VIEW`, ``private_metadata`` the entry id; the value is read back with
    :func:`submitted_value`. Raises ValueError when the entry names no field.
    """
    field = str(attr(entry, "field", "")).strip()
    if not field:
        raise ValueError("this entry names no field to fill")
    record = mrkdwn(record_name(attr(entry, "entity"), attr(entry, "record_label"), attr(entry, "record_id")), 500)
    said = first_line(attr(entry, "details"), 500)
    label, hint = field_label(attr(entry, "entity"), field)
    named = (f"the *{mrkdwn(label, 200)}* (`{mrkdwn(field, 200)}`)" if label != field
             else f"*{mrkdwn(field, 200)}*")
    listed = _reference_list(entry)
    many, one = LIST_WORDS.get(listed or "", (f"{listed} entries", f"a {listed} entry"))
    said_block = context(f"QuickBooks said: {said}") if said else None
    metadata = str(attr(entry, "id", ""))

    def without_input(text: str) -> dict[str, Any]:
        return modal("Fill the field", [section(text), said_block], callback_id=ids.FILL_FIELD_VIEW,
                     private_metadata=metadata, close="Cancel")

    if listed is not None and loading:
        return without_input(f"QuickBooks needs {named} for *{record}*. :hourglass_flowing_sand: Loading "
                             f"QuickBooks' {many}…")
    if listed is not None:
        problem = attr(choices, "problem") if choices is not None else "QuickBooks' list was not loaded."
        found = list(attr(choices, "choices") or []) if choices is not None else []
        if problem:
            return without_input(f"QuickBooks needs {named} for *{record}*, but its {many} could not be loaded: "
                                 f"{mrkdwn(problem, 500)}")
        if not found:
            return without_input(f"QuickBooks needs {named} for *{record}*, but it has no active {many}. Add one "
                                 "in QuickBooks (or make one active again), then click *Fill in* again.")
        element = _select(found, attr(choices, "current"), f"Choose {one}")
        intro = (f"QuickBooks needs {named} for *{record}*. Fill in the missing field: choose one of QuickBooks' "
                 f"{many}. It is saved on the JobsiteOn record, and the next sync attempt runs at once.")
    else:
        element = {"type": "plain_text_input", "action_id": ids.FILL_FIELD_INPUT, "max_length": 3000,
                   "focus_on_load": True}
        intro = (f"QuickBooks needs {named} for *{record}*. Fill in the missing field: what you enter is saved on "
                 "the JobsiteOn record, and the next sync attempt runs at once.")
    blocks: list[Block | None] = [
        section(intro),
        {
            "type": "input",
            "block_id": ids.FILL_FIELD_BLOCK,
            "label": plain_text(label, INPUT_LABEL_MAX),
            "element": element,
            **({"hint": plain_text(hint, INPUT_HINT_MAX)} if hint else {}),
        },
        said_block,
    ]
    return modal("Fill the field", blocks, callback_id=ids.FILL_FIELD_VIEW, private_metadata=metadata,
                 submit="Save and retry", close="Cancel")


def submitted_value(view: Mapping[str, Any]) -> str | None:
    """The value a submitted fill-field modal carries: the chosen option's value (an id) for a select, the text
    for a text input; None when there is none."""
    state = (((view.get("state") or {}).get("values") or {}).get(ids.FILL_FIELD_BLOCK) or {}).get(
        ids.FILL_FIELD_INPUT) or {}
    if not isinstance(state, Mapping):
        return None
    option = state.get("selected_option")
    if isinstance(option, Mapping):
        value = option.get("value")
        return value if isinstance(value, str) else None
    value = state.get("value")
    return value if isinstance(value, str) else None
