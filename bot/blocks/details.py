"""The Details modal of an error card: everything the card leaves off its face.

An error card says what is wrong and offers the fix in one glance (:func:`bot.blocks.messages.error_message`);
its Details button opens this modal, drawn from the same stored entry: the help article's cause and fix in
full, the field as QuickBooks names it, the record and its JobsiteOn id, direction, time and attempts,
QuickBooks' own details (its web links clickable), and the ids support asks for (the sync log entry, the
codes, the HTTP status, the intuit_tid). A modal holds at most 100 blocks and its title 24 characters
(https://docs.slack.dev/reference/views/modal-views).
"""

from __future__ import annotations

from typing import Any

from bot.blocks import ids
from bot.blocks.kit import Block, context, fields_section, modal, section
from bot.blocks.messages import (
    HELP_SUPPORT_NOTE,
    STATUS_EMOJI,
    attr,
    details_block,
    fault_where,
    field_label,
    kind_info_for,
    record_fields,
)
from bot.blocks.text import TzLike, mrkdwn, record_name
from sync.diagnosis import KINDS, Kind


def details_modal(entry: Any, *, tz: TzLike = None, attempts: int | None = None,
                  found_existing: str | None = None) -> dict[str, Any]:
    """The Details modal of ``entry`` (a duck-typed SyncLogEntry): cause and fix, the field QuickBooks names,
    the record's facts, QuickBooks' details, and the ids support asks for. ``attempts``: the record's attempt
    count (default ``entry.attempt``); ``found_existing``: for a duplicate, the QuickBooks record of the same
    name. Only Close: the fixes act from the card."""
    info = kind_info_for(attr(entry, "kind")) or KINDS[Kind.UNKNOWN]
    n = int(attempts if attempts is not None else attr(entry, "attempt", 1))
    record = mrkdwn(record_name(attr(entry, "entity"), attr(entry, "record_label"), attr(entry, "record_id")), 500)
    emoji = STATUS_EMOJI["warning"] if str(attr(entry, "status", "error")) == "warning" else STATUS_EMOJI["error"]
    lines = [f"*Cause:* {info.cause}", f"*Fix:* {info.fix}"]
    field = attr(entry, "field")
    if field:
        label, _hint = field_label(attr(entry, "entity"), field)
        named = f"{mrkdwn(label, 200)} (`{mrkdwn(field, 200)}`)" if label != str(field) else f"`{mrkdwn(field, 200)}`"
        lines.append(f"*Field in QuickBooks:* {named}")
    if found_existing:
        lines.append(f"*Found in QuickBooks:* {mrkdwn(found_existing, 300)}")
    if "contact JobsiteOn support" not in info.fix:
        lines.append(HELP_SUPPORT_NOTE)
    facts = [f"Sync log entry {attr(entry, 'id')}"]
    where = fault_where(entry).lstrip(", ")
    if where:
        facts.append(mrkdwn(where, 300))
    facts.append(f"intuit_tid {mrkdwn(attr(entry, 'intuit_tid') or 'not available', 100)}")
    blocks: list[Block | None] = [
        section(f"{emoji} *{info.title}* · {record}"),
        section("\n".join(lines)),
        fields_section(record_fields(entry, tz, n)),
        details_block(attr(entry, "details"), data=attr(entry, "data"))
        or section("*Details from QuickBooks*\n_QuickBooks sent no details._"),
        context(" · ".join(facts)),
    ]
    return modal("Error details", blocks, callback_id=ids.DETAILS_VIEW, private_metadata=str(attr(entry, "id", "")))
