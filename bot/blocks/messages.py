"""The message of one record's error: its card (:func:`error_message`) and the thread line of each attempt
(:func:`attempt_note`), and the pieces the log's and Home's rows share with it. A connection's incident and the flood
digest are :mod:`bot.blocks.incidents`, the answers to Retry All and Sync Now :mod:`bot.blocks.commands`, expiry and
Reconnect :mod:`bot.blocks.connection`, Slack's refusals :mod:`bot.blocks.refusals` (the fill-field modal is
:mod:`bot.blocks.fields`, Contact support :mod:`bot.blocks.support`).

One renderer for the first post and every update (docs/architecture.md, "Rules of the house"):
:func:`error_message` draws an entry from what is stored (status, kind, details, attempt, who resolved it and when) the
same way whether the notifier posts it or updates it; a click changes domain state and the message is drawn again. It is
a card a person can scan (docs/architecture.md, "Rules of the house": "A card a person can scan"): a title line, the
cause and fix in one sentence, the buttons, one context line; QuickBooks' details, codes, intuit_tid and entry id are
behind Details (:mod:`bot.blocks.details`) and in the record's thread (:func:`attempt_note`). The state is read off the
entry (see :func:`entry_state`):

========== ======================================================== ===================================
state      stored                                                   shown
========== ======================================================== ===================================
open       status error / warning, not resolved                     cause and fix, the kind's buttons
                                                                    (Reconnect while the connection waits)
retrying   ``retrying_by`` given, or status pending                 "Retrying… — was: Kind", no buttons
synced     status synced; or an error resolved by a later attempt   "Synced — was: Kind", who, how long
resolved   an error / warning resolved by hand (Mark resolved)      "Marked resolved — was: Kind", who
info       status info (e.g. Unlink)                                the entry's own sentence, View log
========== ======================================================== ===================================

Times on a card are Slack's date tokens (:func:`bot.blocks.text.slack_date`), so each reader sees their own zone.
People are named, never mentioned (``<@U…>`` pings them again on every update). Every function accepts any
object with the attributes of :class:`sync.models.SyncLogEntry`, :class:`~sync.models.Incident` and
:class:`~sync.models.Connection` (duck typing), so messages can be drawn and tested without a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from bot.blocks import ids
from bot.blocks.kit import (
    Block,
    Message,
    actions,
    button,
    confirm_dialog,
    context,
    message,
    section,
)
from bot.blocks.text import (
    DETAILS_SHOWN_MAX,
    ELLIPSIS,
    TzLike,
    actor_name,
    code_block,
    direction_text,
    duration_text,
    escape_mrkdwn,
    first_line,
    format_time,
    mrkdwn,
    plain,
    record_name,
    slack_date,
    truncate_mrkdwn,
)
from bot.blocks.totals import mismatch_buttons, totals_blocks
from sync.diagnosis import KINDS, FixAction, Kind, KindInfo, kind_info, severity
from sync.log import offers_retry

EntryState = Literal["open", "retrying", "synced", "resolved", "info"]

STATUS_EMOJI = {
    "error": ":red_circle:",
    "warning": ":large_yellow_circle:",
    "info": ":information_source:",
    "synced": ":white_check_mark:",
    "pending": ":hourglass_flowing_sand:",
}
RETRYING_EMOJI = ":arrows_counterclockwise:"
SUPPORT_AFTER_ATTEMPTS = 2
HELP_SUPPORT_NOTE = ("If an error persists after retrying, contact JobsiteOn support with the error timestamp "
                     "and details.")
EXPIRY_ADVICE = "Reconnect before tokens expire. Reconnect proactively every 90 days."


def attr(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` (or ``obj[name]`` for a mapping), ``default`` when missing or None."""
    value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return default if value is None else value


def kind_info_for(kind: object, meaning: object = None) -> KindInfo | None:
    """The KindInfo of a stored kind string, in the words of its stored ``meaning`` (sync.diagnosis.MEANINGS)
    when it has one; unknown for a kind syncbot no longer knows; None for no kind."""
    if kind is None or str(kind) == "":
        return None
    try:
        return kind_info(Kind(str(kind)), str(meaning) if meaning else None)
    except ValueError:
        return KINDS[Kind.UNKNOWN]


def entry_meaning(entry: Any) -> str | None:
    """Which meaning of its kind an entry's error has (``entry.data["meaning"]``, written by the engine)."""
    data = attr(entry, "data")
    value = data.get("meaning") if isinstance(data, Mapping) else None
    return str(value) if value else None


def entry_state(entry: Any, retrying_by: str | None = None) -> EntryState:
    """Which state of the error message ``entry`` is in (see the module docstring)."""
    status = str(attr(entry, "status", "error"))
    if retrying_by is not None or status == "pending":
        return "retrying"
    if status == "synced":
        return "synced"
    if status == "info":
        return "info"
    if attr(entry, "resolved_at") is not None:
        return "synced" if attr(entry, "superseded_by_id") is not None else "resolved"
    return "open"


def record_fields(entry: Any, tz: TzLike, attempts: int) -> list[str]:
    rid = attr(entry, "record_id")
    record = mrkdwn(record_name(attr(entry, "entity"), attr(entry, "record_label"), rid), 1500)
    if rid is not None:
        record += f" (JobsiteOn #{rid})"
    return [
        f"*Record*\n{record}",
        f"*Direction*\n{direction_text(attr(entry, 'direction'))}",
        f"*When*\n{format_time(attr(entry, 'created_at'), tz)}",
        f"*Attempts*\n{attempts:,}",
    ]


def _offer_support(info: KindInfo, attempts: int) -> bool:
    """After two failed attempts of a record error, the help article's last step: contact support. (A
    connection-wide kind is fixed by reconnecting or waiting, not by support.)"""
    return attempts >= SUPPORT_AFTER_ATTEMPTS and info.scope == "record"




def provider_links(data: object) -> list[tuple[str, str]]:
    """The provider's ``(text, url)`` links stored with an entry (``entry.data["links"]``), [] for none."""
    links = data.get("links") if isinstance(data, Mapping) else None
    if not isinstance(links, list):
        return []
    return [(str(x[0]), str(x[1])) for x in links[:50] if isinstance(x, list | tuple) and len(x) >= 2]


def details_block(details: object, title: str = "Details from QuickBooks", data: object = None) -> Block | None:
    """The provider's details in a code block, its web links clickable (``data``: the entry's, for its links)."""
    text = str(details or "").strip()
    if not text:
        return None
    block = code_block(text, DETAILS_SHOWN_MAX, links=provider_links(data))
    cut = block.endswith(ELLIPSIS + "\n```")
    note = "\n_Cut: the full details are in the sync log (View log)._" if cut else ""
    return section(f"*{title}*\n{block}{note}")


#: The fields a validation error can ask for (sync.engine.FILLABLE_FIELDS), as people call them, with a hint:
#: (entity, QuickBooks field) -> (label, hint).
FIELD_LABELS: dict[tuple[str, str], tuple[str, str]] = {
    ("item", "IncomeAccountRef"): ("Income account", "The QuickBooks income account the item's sales go to."),
    ("item", "Name"): ("Item name", "The item's name as QuickBooks shows it, e.g. Framing labor."),
    ("item", "Sku"): ("SKU", "The item's stock-keeping unit code, e.g. FR-100."),
    ("contact", "DisplayName"): ("Display name", "The customer's name as QuickBooks shows it; no other customer, "
                                 "vendor or employee may have it, e.g. Acme Corp (Dallas)."),
    ("contact", "PrimaryEmailAddr"): ("Email address", "The customer's email address, e.g. ap@acme.example."),
    ("contact", "PrimaryPhone"): ("Phone number", "The customer's phone number, e.g. (555) 010-0199."),
    ("contact", "CompanyName"): ("Company name", "The customer's company, e.g. Acme Corp."),
    ("invoice", "DocNumber"): ("Invoice number", "The invoice's number in QuickBooks, e.g. JS-1001."),
}


def field_label(entity: object, field: object) -> tuple[str, str | None]:
    """A field QuickBooks names (``IncomeAccountRef``) as people call it (``Income account``) and its hint; the
    field's own name and no hint for one syncbot has no words for."""
    name = str(field or "").strip()
    known = FIELD_LABELS.get((str(entity or ""), name.split(".")[0]))
    return known if known is not None else (name, None)


def _fillable(entry: Any) -> bool:
    """Offer "Fill in" only for fields a user can fill from Slack (sync.engine.FILLABLE_FIELDS)."""
    from sync.engine import FILLABLE_FIELDS

    field = str(attr(entry, "field") or "").split(".")[0]
    return bool(field) and (str(attr(entry, "entity")), field) in FILLABLE_FIELDS


def _fix_buttons(entry: Any, info: KindInfo, *, reconnect_url: str | None,
                 found_existing: str | None) -> list[dict[str, Any]]:
    """The kind's buttons, in the order KINDS gives them; the first one is the primary."""
    if info.kind == Kind.TOTAL_MISMATCH:
        return mismatch_buttons(entry, info)
    entry_id = attr(entry, "id")
    conn_id = attr(entry, "connection_id")
    out: list[dict[str, Any]] = []
    for action in info.actions:
        if action == FixAction.RETRY:
            out.append(button("Retry", ids.RETRY, entry_id))
        elif action == FixAction.RECONNECT:
            out.append(button("Reconnect", ids.RECONNECT, conn_id, url=reconnect_url))
        elif action == FixAction.UNLINK:
            out.append(button("Unlink", ids.UNLINK, entry_id, confirm=confirm_dialog(
                "Unlink this record?",
                "syncbot forgets the QuickBooks copy; the next sync creates a fresh copy in QuickBooks.",
                "Unlink")))
        elif action == FixAction.RECREATE:
            out.append(button("Re-create in QuickBooks", ids.RECREATE, entry_id))
        elif action == FixAction.LINK_EXISTING and found_existing:
            out.append(button(f"Link to existing: {plain(found_existing, 50)}", ids.LINK_EXISTING, entry_id,
                              confirm=confirm_dialog(
                                  "Link to the existing record?",
                                  f"JobsiteOn's {plain(attr(entry, 'record_label') or 'record', 80)} is linked to "
                                  f"{plain(found_existing, 120)} in QuickBooks and synced to it: JobsiteOn's "
                                  "details are written over it. Merge them this way only if both are the same.",
                                  "Link")))
        elif action == FixAction.FILL_FIELD and _fillable(entry):
            label, _hint = field_label(attr(entry, "entity"), attr(entry, "field"))
            out.append(button(f"Fill in {plain(label, 60)}", ids.FILL_FIELD, entry_id))
        elif action == FixAction.MARK_RESOLVED:
            out.append(button("Mark resolved", ids.MARK_RESOLVED, entry_id))
        elif action == FixAction.SYNC_NOW:
            out.append(button("Sync Now", ids.SYNC_NOW, conn_id))
    if out:
        out[0]["style"] = "primary"
    return out


def connection_waiting(conn: Any, now: dt.datetime) -> tuple[str | None, dt.datetime | None]:
    """What a record's error waits on, from its connection's state (duck-typed Connection): ``reconnect``
    (authentication expired or revoked), ``rate_limited`` (paused until the returned time), ``subscription``
    (suspended), or None. The one rule of every surface: the card (``waiting`` of :func:`error_message`), the sync
    log's rows and the App Home's (:func:`row_button`)."""
    if conn is None:
        return None, None
    status = str(attr(conn, "status") or "")
    if status in ("expired", "revoked"):
        return "reconnect", None
    if status == "suspended":
        return "subscription", None
    paused = attr(conn, "paused_until")
    if paused is not None and paused.tzinfo is None:
        paused = paused.replace(tzinfo=dt.UTC)
    if status == "rate_limited" or (paused is not None and paused > now):
        return "rate_limited", paused
    return None, None


#: What a record waiting on its connection is called (the card's context line, a row of the log or the App Home).
WAITING_TITLES = {
    "reconnect": "Waiting for Reconnect",
    "rate_limited": "Waiting for the rate limit",
    "subscription": "Waiting for the QuickBooks subscription",
}
#: What a card waiting on its connection says on its context line (``waiting`` of :func:`error_message`); it
#: offers Reconnect (or nothing, for a pause that ends by itself) instead of fixes that cannot run.
WAITING_LINES = {
    "reconnect": f":hourglass_flowing_sand: *{WAITING_TITLES['reconnect']}:* the connection's authentication expired",
    "rate_limited": f":hourglass_flowing_sand: *{WAITING_TITLES['rate_limited']}:* syncing resumes by itself{{until}}",
    "subscription": f":hourglass_flowing_sand: *{WAITING_TITLES['subscription']}* to be renewed",
}


def of_record(entry: Any) -> bool:
    """An entry about a record (pushed or pulled), not the connection's own (its kind is connection-wide, or it is
    about no record): a record's card, and its row, wait on the connection."""
    info = kind_info_for(attr(entry, "kind"), entry_meaning(entry))
    return attr(entry, "entity") != "connection" and (info is None or info.scope != "connection")


def row_button(entry: Any, waiting: str | None) -> dict[str, Any] | None:
    """The button a row of the sync log or the App Home offers for an open error, as its card does. A record's:
    Reconnect while its connection waits for Reconnect (``waiting``, :func:`connection_waiting`), nothing while it
    waits on a rate-limit pause or the subscription, else Retry where the card offers it (a push whose kind offers
    Retry: ``sync.log.offers_retry``); the other fixes are on its card. The connection's own entry: Reconnect where
    that is its kind's fix, else nothing (a rate limit resumes by itself)."""
    if not of_record(entry):
        info = kind_info_for(attr(entry, "kind"), entry_meaning(entry))
        if info is not None and FixAction.RECONNECT in info.actions and attr(entry, "connection_id") is not None:
            return button("Reconnect", ids.RECONNECT, attr(entry, "connection_id"))
        return None
    if waiting == "reconnect":
        return button("Reconnect", ids.RECONNECT, attr(entry, "connection_id"))
    if waiting is not None or attr(entry, "direction") == "pull" or not offers_retry(entry):
        return None
    return button("Retry", ids.RETRY, attr(entry, "id"))


def _arrow(entry: Any) -> str:
    """``→ QuickBooks`` for a push, ``← QuickBooks`` for a pull."""
    return "← QuickBooks" if str(attr(entry, "direction", "push")) == "pull" else "→ QuickBooks"


def _what_to_do(entry: Any, info: KindInfo) -> str:
    """The card's second line: the help article's cause and fix in one breath, the field named as people call it
    (never QuickBooks' own name for it: that is in Details). A record that waits on another one (a payment whose
    invoice was deleted) says that instead, in the engine's words."""
    depends = _depends_on(entry)
    if depends is not None:
        return first_line(attr(entry, "details"), 600) or f"{info.cause} {info.fix}"
    field = attr(entry, "field")
    if field and info.kind == Kind.VALIDATION and entry_meaning(entry) is None:  # a meaning has its own words
        label, _hint = field_label(attr(entry, "entity"), field)
        if label != str(field).strip():  # the article's words, the field named and the fix's own steps
            return (f"A required field is empty or invalid: *{mrkdwn(label, 100)}*. Fill in the missing field, save, "
                    "and the next sync attempt will succeed.")
    if info.kind == Kind.TOTAL_MISMATCH:  # the figures and the buttons below are the fix
        return info.cause
    return f"{info.cause} {info.fix}"


def _depends_on(entry: Any) -> Mapping[str, Any] | None:
    """The record this entry waits on (``data["depends_on"]``: entity, record_id, label), or None."""
    data = attr(entry, "data")
    found = data.get("depends_on") if isinstance(data, Mapping) else None
    return found if isinstance(found, Mapping) and found.get("entity") else None


def _waiting_on_record_buttons(entry: Any, related: tuple[str, str | None] | None) -> list[dict[str, Any]]:
    """A record that waits on another (a payment whose invoice was deleted): its fix is on the other record's
    card, so the card leads there (a link to that message, ``related``: its name and permalink) instead of
    offering Re-create or Unlink on this record; Retry once the other one is fixed."""
    depends = _depends_on(entry) or {}
    out: list[dict[str, Any]] = []
    name = related[0] if related is not None else record_name(
        str(depends.get("entity") or ""), str(depends.get("label") or ""), depends.get("record_id"))
    url = related[1] if related is not None else None
    if url:
        out.append(button(f"Fix {plain(name, 50)} first", ids.OPEN_RELATED, attr(entry, "id"), url=url,
                          style="primary"))
    out.append(button("Retry", ids.RETRY, attr(entry, "id")))
    return out


def _resolved_line(entry: Any, state: EntryState, tz: TzLike, first_error_at: dt.datetime | None) -> str:
    """The resolved card's context: who fixed it, how long after the first error, and when (Slack's date
    token: each reader's own zone)."""
    when = attr(entry, "resolved_at") or attr(entry, "created_at")
    who = mrkdwn(actor_name(attr(entry, "resolved_by") or attr(entry, "actor")), 200)
    verb = "Marked resolved" if state == "resolved" else "Fixed"
    parts = [f"{verb} by {who}"]
    if first_error_at is not None and when is not None:
        first = first_error_at if first_error_at.tzinfo else first_error_at.replace(tzinfo=dt.UTC)
        last = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        parts.append(f"{duration_text((last - first).total_seconds())} after the first error")
    parts.append(slack_date(when, tz))
    return " · ".join(parts)


#: Slack's date tokens of a refused click's time: the card's notice is about a moment of today.
CLICK_TIME_TOKENS = "{time}"


def notice_line(notice: str, limit: int = 600) -> str:
    """A refused click's line on a card (:func:`click_notice`'s text, cut at ``limit`` characters of mrkdwn)."""
    return f":no_entry: {truncate_mrkdwn(notice, limit)}"


def click_notice(button: str, who: str, at: dt.datetime, reason: str, *, tz: TzLike = None,
                 outcome: str = "was refused") -> str:
    """A refused click as the card it was clicked on shows it to everyone in the channel, so it reads as an event:
    ``Retry by mia at <!date^…^{time}|10:02 AM> was refused: it needs Owner or Admin permissions. Ask …`` (mrkdwn:
    ``button``, ``who`` and ``reason`` escaped; the time as Slack's date token, each reader's own zone). The card
    shows it until it is next drawn, for any reason."""
    return (f"{mrkdwn(button, 60)} by {mrkdwn(who, 100)} at {slack_date(at, tz, CLICK_TIME_TOKENS)} {outcome}: "
            f"{mrkdwn(reason, 400)}")


def error_message(entry: Any, kind_info: KindInfo | None = None, *, tz: TzLike = None,
                  reconnect_url: str | None = None, account_name: str | None = None,
                  retrying_by: str | None = None, attempts: int | None = None,
                  found_existing: str | None = None, waiting: str | None = None,
                  waiting_until: dt.datetime | None = None, notice: str | None = None,
                  was_kind: str | None = None, first_error_at: dt.datetime | None = None,
                  record_text: str | None = None, related: tuple[str, str | None] | None = None) -> Message:
    """The card of one record's sync error, in whatever state the stored entry is: a card a person can scan
    (docs/architecture.md, "Rules of the house"; the way PagerDuty, Grafana OnCall and Sentry put an alert in a
    channel): a title line, what is wrong and the fix in one sentence, the buttons, one context line. QuickBooks'
    raw details, codes, intuit_tid, the entry id and QuickBooks' field names are behind Details
    (:func:`bot.blocks.details.details_modal`) and in the record's thread, never on the card's face.

    In: the newest entry of the record (duck-typed SyncLogEntry), its kind's :class:`KindInfo` (looked up
    from ``entry.kind`` when omitted), the reader's time zone (the fallback of Slack's date tokens), the
    Reconnect URL, the account's name, the name of whoever started a retry still running (``retrying_by``), the
    attempt count (default ``entry.attempt``), for a duplicate the name of the QuickBooks record found ("Link to
    …"); ``waiting``: the connection the record depends on cannot take requests (``reconnect``, ``rate_limited``
    until ``waiting_until``, ``subscription``): the card says so and offers Reconnect instead of fixes that cannot
    run; ``notice``: a click just refused, as :func:`click_notice` says it (who, when, why, who can help and what
    to click: mrkdwn, shown on the card where the person clicked, in the context line's place, until the card is
    next drawn); ``was_kind`` and
    ``first_error_at``: for a resolved card, what it was and since when; ``record_text``: the record as people
    name it (a payment by amount and date) instead of its label; ``related``: (text, link) of the record this
    one waits on (the deleted invoice's own card).
    Out: ``{"text", "blocks"}`` for chat.postMessage / chat.update, valid whatever the details hold.
    """
    state = entry_state(entry, retrying_by)
    status = str(attr(entry, "status", "error"))
    info = kind_info or kind_info_for(attr(entry, "kind"), entry_meaning(entry))
    if info is None and state in ("open", "retrying", "resolved"):
        info = KINDS[Kind.UNKNOWN]
    was = kind_info_for(was_kind) if was_kind else (info if state in ("synced", "resolved") else None)
    n = int(attempts if attempts is not None else attr(entry, "attempt", 1))
    record = record_text or record_name(attr(entry, "entity"), attr(entry, "record_label"), attr(entry, "record_id"))
    record_md = mrkdwn(record, 500)
    entry_id = attr(entry, "id")
    was_md = f" — was: {was.title}" if was is not None else ""

    blocks: list[Block | None] = []
    notes: list[str] = []
    if state == "open":  # the kind's severity (sync.log.severity), as every surface shows it
        assert info is not None
        emoji, word = ((STATUS_EMOJI["warning"], "Warning") if severity(attr(entry, "kind"), status) == "warning"
                       else (STATUS_EMOJI["error"], "Error"))
        lines = [f"{emoji} *{info.title}* · {record_md} {_arrow(entry)}", _what_to_do(entry, info)]
        blocks.append(section("\n".join(lines)))
        text = f"{word}: {info.title}: {record_md} ({attr(entry, 'direction', 'push')}, attempt {n})"
        notes = [direction_text(attr(entry, "direction")).split(":")[0], f"attempt {n:,}",
                 f"since {slack_date(first_error_at or attr(entry, 'created_at'), tz)}"]
        if waiting in WAITING_LINES:
            until = f": {slack_date(waiting_until, tz)}" if waiting_until is not None else ""
            notes.insert(0, WAITING_LINES[waiting].format(until=until))
            text = f"Waiting for Reconnect: {text}" if waiting == "reconnect" else text
    elif state == "retrying":
        who = mrkdwn(actor_name(retrying_by if retrying_by is not None else attr(entry, "actor")), 200)
        title = f" — was: {info.title}" if info is not None else ""
        blocks.append(section(f"{RETRYING_EMOJI} *Retrying…* · {record_md} {_arrow(entry)}{title}"))
        text = f"Retrying… (by {who}): {record_md}"
        notes = [f"Started by {who}", f"attempt {n + (1 if status != 'pending' else 0):,}"]
    elif state in ("synced", "resolved"):
        word = "Synced" if state == "synced" else "Marked resolved"
        blocks.append(section(f"{STATUS_EMOJI['synced']} *{word}* · {record_md}{was_md}"))
        who = mrkdwn(actor_name(attr(entry, "resolved_by") or attr(entry, "actor")), 200)
        text = f"{word}: {record_md} by {who}"
        notes = [_resolved_line(entry, state, tz, first_error_at)]
    else:  # info
        who = mrkdwn(actor_name(attr(entry, "actor")), 200)
        sentence = first_line(attr(entry, "details"), 500) or "Done."
        blocks.append(section(f"{STATUS_EMOJI['synced']} {sentence} · {record_md}"))
        text = f"{record_md}: {sentence}"
        notes = [f"by {who}", slack_date(attr(entry, "created_at"), tz)]

    if state == "open" and info is not None and info.kind == Kind.TOTAL_MISMATCH:
        blocks.extend(totals_blocks(attr(entry, "data")))

    buttons: list[dict[str, Any]] = []
    if state == "open" and info is not None:
        if waiting == "reconnect":
            buttons = [button("Reconnect", ids.RECONNECT, attr(entry, "connection_id"), url=reconnect_url,
                              style="primary")]
        elif waiting is None and _depends_on(entry) is not None:
            buttons = _waiting_on_record_buttons(entry, related)
        elif waiting is None:
            buttons = _fix_buttons(entry, info, reconnect_url=reconnect_url, found_existing=found_existing)
        buttons.append(button("Details", ids.ENTRY_DETAILS, entry_id))
        if _offer_support(info, n):
            buttons.append(button("Contact support", ids.CONTACT_SUPPORT, entry_id))
    if state != "retrying":
        buttons.append(button("View log", ids.VIEW_ENTRY_LOG, entry_id))
    blocks.append(actions(buttons))
    if account_name:
        notes.append(mrkdwn(account_name, 200))
    # a refused click takes the context line's place until the card is next drawn (the card keeps its height);
    # "Waiting for Reconnect" stays before it, since Reconnect is then the card's only fix
    waits = f"*{WAITING_TITLES['reconnect']}*" if state == "open" and waiting == "reconnect" else None
    blocks.append(context(" · ".join(x for x in (waits, notice_line(notice, 400)) if x) if notice
                          else " · ".join(x for x in notes if x)))
    return message(text, blocks)


def fault_where(entry: Any) -> str:
    """The codes and HTTP status for support: ``, codes 6240, HTTP 400``; a batch item's fault arrives inside an
    HTTP 200 batch answer, so it is named by its fault code (``, fault code 2020 of a batch item``), never by
    a status that reads like success."""
    codes = attr(entry, "codes")
    status = attr(entry, "http_status")
    if status is not None and int(status) < 400:
        if not codes:
            return ", a batch item's fault"
        return f", fault code{'s' if ',' in str(codes) else ''} {codes} of a batch item"
    return (f", codes {codes}" if codes else "") + (f", HTTP {status}" if status else "")


def attempt_note(entry: Any) -> Message:
    """One attempt's line in its record's thread: who tried and how it went, and for a failure what the card
    leaves off its face, QuickBooks' own details (cut; the sync log keeps them whole), the sync log entry, the
    codes and the intuit_tid support asks for. The ``text`` is the line alone:
    ``Attempt 2 by Dana: error (duplicate).``"""
    status = str(attr(entry, "status", "error"))
    state = "synced" if status == "synced" else f"{status} ({attr(entry, 'kind')})"
    actor = attr(entry, "actor")
    who = f" by {actor}" if actor else ""
    text = escape_mrkdwn(f"Attempt {attr(entry, 'attempt', 1)}{who}: {state}.")
    if status in ("synced", "info", "pending"):
        return {"text": text}
    info = kind_info_for(attr(entry, "kind"))
    title = info.title if info is not None else "Error"
    facts = [f"Sync log entry {attr(entry, 'id')}"]
    where = fault_where(entry).lstrip(", ")
    if where:
        facts.append(mrkdwn(where, 300))
    if attr(entry, "intuit_tid"):
        facts.append(f"intuit_tid {mrkdwn(attr(entry, 'intuit_tid'), 100)}")
    blocks: list[Block | None] = [
        section(f"*Attempt {attr(entry, 'attempt', 1)}*{mrkdwn(who, 200)}: {title}"),
        details_block(attr(entry, "details"), data=attr(entry, "data")),
        context(" · ".join(facts)),
    ]
    return message(text, blocks)
