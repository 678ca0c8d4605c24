"""Contact support: the help article's last step ("If an error persists after retrying, contact JobsiteOn support
with the error timestamp and details"), as a modal that sends the facts, and the request posted to support.

What the modal offers depends on the settings (``SUPPORT_CHANNEL``, ``SUPPORT_EMAIL``):

* a support channel: a *Send to support* button (the modal's submit) that posts :func:`support_request_message`
  there, with an optional note; the modal then says where it went (or why it could not, and the facts stay there
  to copy);
* a support address: an *Email JobsiteOn support* link (``mailto:``) with the subject and the body filled in
  (:func:`mailto_url`);
* neither: the facts ready to copy.

In every case the facts (timestamp, record, error, codes, attempt, sync log entry, intuit_tid) are shown in a block
to copy, and QuickBooks' details under it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from bot.blocks import ids
from bot.blocks.kit import Block, Message, context, message, modal, plain_text, section
from bot.blocks.messages import HELP_SUPPORT_NOTE, attr, details_block, entry_meaning, fault_where, kind_info_for
from bot.blocks.text import (
    LINK_URL_MAX,
    TzLike,
    code_block,
    escape_mrkdwn,
    format_time,
    mrkdwn,
    record_name,
    truncate,
    utc_stamp,
)

#: A note to support: at most this many characters (a plain_text_input's max_length is at most 3000,
#: https://docs.slack.dev/reference/block-kit/block-elements/plain-text-input-element).
NOTE_MAX = 2000
#: A mailto link is a link like any other in mrkdwn (``<mailto:…|text>``, Slack's "Formatting message text"):
#: it stays within the length syncbot allows any link (bot.blocks.text.LINK_URL_MAX, 2,000 characters, under
#: Slack's 3,000 for a URL and within what mail programs take from a mailto link).
MAILTO_MAX = LINK_URL_MAX


def support_lines(entry: Any, tz: TzLike) -> list[str]:
    """What support needs of an entry: timestamp (UTC and the reader's time), record, error, attempt, intuit_tid."""
    info = kind_info_for(attr(entry, "kind"), entry_meaning(entry))
    created = attr(entry, "created_at")
    rid = attr(entry, "record_id")
    return [
        f"Timestamp: {utc_stamp(created)} ({format_time(created, tz)})",
        f"Record: {record_name(attr(entry, 'entity'), attr(entry, 'record_label'), rid)}"
        + (f" (JobsiteOn #{rid})" if rid is not None else ""),
        f"Direction: {attr(entry, 'direction', 'push')}",
        f"Error: {info.title if info else attr(entry, 'status', 'error')} ({attr(entry, 'kind', 'none')})"
        + fault_where(entry),
        f"Attempt: {attr(entry, 'attempt', 1)}",
        f"Sync log entry: {attr(entry, 'id')}",
        f"intuit_tid: {attr(entry, 'intuit_tid') or 'not available'}",
    ]


def support_subject(entry: Any) -> str:
    """The subject of a request to support: ``syncbot: Duplicate record · Contact Acme Corp (entry 16)``."""
    info = kind_info_for(attr(entry, "kind"), entry_meaning(entry))
    record = record_name(attr(entry, "entity"), attr(entry, "record_label"), attr(entry, "record_id"))
    title = info.title if info else "Sync error"
    return truncate(f"syncbot: {title} · {record} (entry {attr(entry, 'id')})", 200)


def mailto_url(address: str, subject: str, body: str, limit: int = MAILTO_MAX) -> str:
    """``mailto:address?subject=…&body=…`` with both percent-encoded (RFC 6068: UTF-8, line breaks as %0D%0A),
    at most ``limit`` characters: the body is cut at the end (with "…") to fit. ValueError when even the
    subject does not fit."""
    head = f"mailto:{quote(address, safe='@')}?subject={quote(subject, safe='')}&body="
    if len(head) > limit:
        raise ValueError("the support address and subject do not fit in a mailto link")
    text = body.replace("\r\n", "\n").replace("\n", "\r\n")
    encoded = quote(text, safe="")
    if len(head) + len(encoded) <= limit:
        return head + encoded
    low, high = 0, len(text)  # the longest start of the body that fits, with "…"
    while low < high:
        mid = (low + high + 1) // 2
        if len(head) + len(quote(text[:mid] + "…", safe="")) <= limit:
            low = mid
        else:
            high = mid - 1
    return head + quote(text[:low] + "…", safe="")


def _email_body(entry: Any, tz: TzLike) -> str:
    details = str(attr(entry, "details") or "").strip()
    body = "Hello JobsiteOn support,\n\nThis sync error persists after retrying:\n\n" + "\n".join(
        support_lines(entry, tz))
    return body + (f"\n\nDetails from QuickBooks:\n{details}" if details else "")


def _email_link(entry: Any, address: str, tz: TzLike) -> str:
    url = mailto_url(address, support_subject(entry), _email_body(entry, tz))
    return f"<{url.replace('&', '&amp;')}|Email JobsiteOn support>"  # & is Slack's control character


def support_modal(entry: Any, *, tz: TzLike = None, channel: str | None = None, email: str | None = None,
                  sent_to: str | None = None, send_problem: str | None = None) -> dict[str, Any]:
    """The Contact support modal of an entry (see the module docstring).

    ``channel``: the support channel (id or ``#name``) the facts may be sent to: the modal offers *Send to
    support* (its submit) and a note; ``email``: the support address, offered as a mailto link with the subject
    and body filled in; ``sent_to``: the channel they were sent to (said at the top, no submit);
    ``send_problem``: why sending failed (copy them instead). ``callback_id`` :data:`ids.SUPPORT_VIEW`,
    ``private_metadata`` the entry id."""
    lines: list[str] = []
    can_send = bool(channel) and not sent_to and not send_problem
    if sent_to:
        lines.append(f":white_check_mark: Sent to JobsiteOn support in {_channel_ref(sent_to)}: they have the "
                     "timestamp, the details and the intuit_tid.")
    elif send_problem:
        lines.append(f"{HELP_SUPPORT_NOTE} Sending them to support did not work ({mrkdwn(send_problem, 200)}): "
                     "copy the block below into your message to support.")
    elif can_send:
        lines.append(f"{HELP_SUPPORT_NOTE} *Send to support* posts the block below to JobsiteOn support in "
                     f"{_channel_ref(channel or '')}, with your name and your note.")
    else:
        lines.append(HELP_SUPPORT_NOTE + (" Copy the block below into your message to support." if not email
                                          else ""))
    if email and not sent_to:
        lines.append(f":email: {_email_link(entry, email, tz)} opens your mail program with the subject and the "
                     f"details filled in (to {mrkdwn(email, 200)}).")
    blocks: list[Block | None] = [
        section("\n".join(lines)),
        section(code_block("\n".join(support_lines(entry, tz)), 2500)),
        details_block(attr(entry, "details"), "Details", attr(entry, "data"))
        or section("*Details*\n_QuickBooks sent no details._"),
        {
            "type": "input",
            "block_id": ids.SUPPORT_NOTE_BLOCK,
            "optional": True,
            "label": plain_text("A note to support", 2000),  # Slack adds "(optional)" to an optional input
            "element": {"type": "plain_text_input", "action_id": ids.SUPPORT_NOTE_INPUT, "multiline": True,
                        "max_length": NOTE_MAX,
                        "placeholder": plain_text("What you tried, what you expected", 150)},
        } if can_send else None,
        context("intuit_tid is QuickBooks' id of the request: support uses it to find the request in "
                "Intuit's logs."),
    ]
    return modal("Contact support", blocks, callback_id=ids.SUPPORT_VIEW,
                 private_metadata=str(attr(entry, "id", "")), submit="Send to support" if can_send else None)


def _channel_ref(channel: str) -> str:
    """``<#C0123>`` for a channel id (Slack shows its name), the name as given otherwise."""
    return f"<#{channel}>" if channel[:1] in ("C", "G") and channel.isalnum() else mrkdwn(channel, 200)


def support_request_message(entry: Any, *, tz: TzLike = None, workspace: str, account_name: str,
                            requested_by: str, note: str | None = None) -> Message:
    """The message posted to the support channel (SUPPORT_CHANNEL) when someone sends a support request: who
    asks, for which account, their note, and the entry's timestamp, details and intuit_tid (the help article's
    last step)."""
    head = (f":sos: *Support request* from {mrkdwn(requested_by, 200)} ({mrkdwn(account_name, 200)}, "
            f"workspace {mrkdwn(workspace, 100)})")
    lines = support_lines(entry, tz)
    said = (note or "").strip()
    blocks: list[Block | None] = [
        section(head),
        section(f"*Note:* {mrkdwn(said, NOTE_MAX)}") if said else None,
        section(code_block("\n".join(lines), 2500)),
        details_block(attr(entry, "details"), "Details from QuickBooks", attr(entry, "data")),
    ]
    text = truncate(escape_mrkdwn(f"Support request from {requested_by} ({account_name}): " + "; ".join(lines)),
                    3000)
    return message(text, blocks)


def submitted_note(view: Any) -> str | None:
    """The note of a submitted support modal, None when none was written."""
    values = ((view.get("state") or {}).get("values") or {}) if isinstance(view, dict) else {}
    value = ((values.get(ids.SUPPORT_NOTE_BLOCK) or {}).get(ids.SUPPORT_NOTE_INPUT) or {}).get("value")
    return value.strip() or None if isinstance(value, str) else None
