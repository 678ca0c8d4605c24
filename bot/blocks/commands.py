"""The answers to what a person asked: Retry All (confirm, progress, done, not run), Sync Now (done, still limited),
the notes of a run that stopped, and the answer modal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from bot.blocks import ids
from bot.blocks.incidents import resumes_at
from bot.blocks.kit import (
    Block,
    Message,
    actions,
    button,
    message,
    modal,
    section,
)
from bot.blocks.messages import RETRYING_EMOJI, STATUS_EMOJI, kind_info_for
from bot.blocks.text import (
    TzLike,
    format_time,
    mrkdwn,
    plural,
)
from sync.diagnosis import Kind

# ------------------------------------------------------------------------------------------------ modals


def answer_modal(answer: Mapping[str, Any], title: str = "syncbot") -> dict[str, Any]:
    """An answer to a click that came without a response_url (the App Home, a modal) shown as a modal:
    ``answer`` is a message payload (``text`` and ``blocks``, as any of this module's messages), drawn with the
    same blocks; a message without blocks shows its text. Only Close: the answer's own buttons (Retry all,
    Cancel, Open QuickBooks) act from the modal."""
    blocks = list(answer.get("blocks") or []) or [section(str(answer.get("text") or "syncbot"))]
    return modal(title, blocks, callback_id=ids.ANSWER_VIEW)


# ------------------------------------------------------------------------------------------------ Retry All


def _not_retried_lines(not_retried: Mapping[str, int]) -> list[str]:
    """One line per kind of open error Retry All leaves alone, with what fixes it instead."""
    lines = []
    for kind, n in sorted(not_retried.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
        info = kind_info_for(kind)
        title = info.title if info is not None else "Error"
        # a connection's kind resumes with it; a deleted copy, a total mismatch, a pulled change: their buttons
        how = info.fix if info is not None and info.scope == "connection" else "fix it with the buttons on its message."
        lines.append(f"• {title} ({n:,}): {how}")
    return lines


def retry_all_confirm(count: int, *, connection_id: int | None = None,
                      not_retried: Mapping[str, int] | None = None, blocked: str | None = None) -> Message:
    """Asks before Retry All: how many open errors would be tried again, Retry all / Cancel. ``not_retried``
    counts by kind the open errors Retry All cannot retry (the connection's own, like the rate limit, and changes
    QuickBooks reported): they are named with their fix, so the offer adds up to the open errors shown
    everywhere else (sync.log). ``blocked`` (:func:`stopped_note`): the connection would refuse the run now (a
    rate-limit pause, an expired token): said instead of the buttons."""
    others = {str(k): int(v) for k, v in (not_retried or {}).items() if int(v) > 0}
    left = sum(others.values())
    if count <= 0 and not left:
        return message("There are no open errors to retry.",
                       [section(f"{STATUS_EMOJI['synced']} There are no open errors to retry.")])
    total = count + left
    if blocked:
        head = f"{plural(total, 'open error')}; {blocked}"
        return message(head.replace("*", ""), [section(f"{STATUS_EMOJI['warning']} {head}")])
    if count <= 0:
        head = (f"{plural(total, 'open error')}, none that Retry All can retry:" if total != 1
                else "1 open error, which Retry All cannot retry:")
        lines = [f"*{head}*", *_not_retried_lines(others)]
        return message(f"{head} " + "; ".join(line[2:] for line in lines[1:]), [section("\n".join(lines))])
    head = f"Retry all {plural(count, 'open error')}?" if not left else \
        f"Retry {count:,} of {plural(total, 'open error')}?"
    lines = [f"*{head}*", "Each record is tried again once; every error message updates with its outcome."]
    if left:
        lines.append("Not retried here:")
        lines += _not_retried_lines(others)
    blocks: list[Block | None] = [
        section("\n".join(lines)),
        actions([
            button(f"Retry all {count:,}", ids.RETRY_ALL_CONFIRM, connection_id, style="primary"),
            button("Cancel", ids.RETRY_ALL_CANCEL, connection_id),
        ]),
    ]
    return message(head, blocks)


def retry_all_progress(done: int, total: int) -> Message:
    """Retry All under way: ``done`` of ``total`` with a bar."""
    total = max(total, 0)
    done = min(max(done, 0), total) if total else 0
    width = 20
    filled = round(width * done / total) if total else 0
    bar = "█" * filled + "░" * (width - filled)
    line = f"{RETRYING_EMOJI} *Retrying all errors…* {done:,} of {total:,}"
    return message(f"Retrying all errors… {done:,} of {total:,}", [section(f"{line}\n`{bar}`")])


def retry_all_done(summary: Mapping[str, Any]) -> Message:
    """Retry All finished: ``summary`` is ``RunSummary.as_dict()`` (synced, errors, warnings, skipped,
    stopped, by_kind)."""
    synced = int(summary.get("synced") or 0)
    errors = int(summary.get("errors") or 0)
    warnings = int(summary.get("warnings") or 0)
    skipped = int(summary.get("skipped") or 0)
    parts = [f"{synced:,} synced", f"{errors:,} still failing"]
    if warnings:
        parts.append(plural(warnings, "warning"))
    waiting = int(summary.get("waiting") or 0)
    if skipped - waiting > 0:
        parts.append(f"{skipped - waiting:,} skipped (already in progress)")
    if waiting:
        parts.append(f"{waiting:,} waiting for their batch to be sent again")
    emoji = STATUS_EMOJI["synced"] if not errors and not summary.get("stopped") and not summary.get("failure") \
        else STATUS_EMOJI["warning"]
    lines = [f"{emoji} *Retry All finished:* " + ", ".join(parts) + "."]
    by_kind = summary.get("by_kind") or {}
    if isinstance(by_kind, Mapping) and by_kind:
        ranked = sorted(by_kind.items(), key=lambda kv: -int(kv[1]))
        for head, status in (("Still failing", "error"), ("Warnings", "warning")):  # a warning is not a failure
            named = [f"{_kind_title(k)} {int(v):,}" for k, v in ranked
                     if (info := kind_info_for(k)) is not None and info.status == status][:20]
            if named:
                lines.append(f"{head}: " + ", ".join(named))
    stopped = summary.get("stopped")
    if stopped:
        lines.append(stopped_note(stopped))
    if summary.get("failure"):
        lines.append(failure_note())
    blocks: list[Block | None] = [section("\n".join(lines)),
                                  actions([button("View log", ids.VIEW_LOG, "open")])]
    return message("Retry All finished: " + ", ".join(parts) + ".", blocks)


def retry_all_not_run(kind: object, *, until: dt.datetime | None = None, tz: TzLike = None) -> Message:
    """Retry All could not start (the connection waits for Reconnect, or a rate-limit pause until ``until``):
    why and what to do, as :func:`sync_now_done` says it."""
    line = stopped_note(kind, until, tz=tz, head="Retry All did not run")
    return message(line.replace("*", ""), [section(f"{STATUS_EMOJI['warning']} {line}")])


def failure_note() -> str:
    """A run stopped because syncbot's own database refused a write (``RunSummary.failure``): what that means for
    the records, and what to do. The database's own words stay in syncbot's log."""
    return ("*Stopped early:* syncbot could not save its work (a database error). What is counted above is done; "
            "the rest is as it was, or is sent again as it was by the next run, never twice. Try again in a "
            "moment; if it happens again, contact JobsiteOn support.")


def stopped_note(kind: object, until: dt.datetime | None = None, *, tz: TzLike = None,
                 head: str = "Stopped early") -> str:
    """Why a run stopped (or did not start) and what to do, in the help article's words: ``*Stopped early:*
    Authentication expired. <cause> <fix>`` (Reconnect), and for the rate limit when it resumes by itself."""
    info = kind_info_for(kind)
    if info is None:
        return f"*{head}.*"
    if info.kind == Kind.AUTH_EXPIRED:
        what = (f"{info.cause} Click Reconnect (or say `/sync-log reconnect`), re-authorize the connection and "
                "the sync resumes automatically.")
    elif info.kind == Kind.RATE_LIMITED:
        when = f" at {format_time(until, tz)}" if until is not None else ""
        what = f"{info.cause} This resolves automatically: syncing resumes by itself{when}."
    else:
        what = f"{info.cause} {info.fix}"
    return f"*{head}:* {info.title}. {what}"


def sync_now_done(summary: Mapping[str, Any] | None, *, stopped: object = None, until: dt.datetime | None = None,
                  tz: TzLike = None) -> Message:
    """Sync Now's answer: ``summary`` is ``RunSummary.as_dict()`` (synced, errors, warnings, pulled, stopped),
    None when the run could not start (``stopped``: the kind that refused it). ``until``: when a rate-limit
    pause ends (the run resumes by itself then)."""
    kind = stopped or (summary or {}).get("stopped")
    if summary is None:
        line = stopped_note(kind, until, tz=tz, head="Sync Now did not run")
        return message(line.replace("*", ""), [section(f"{STATUS_EMOJI['warning']} {line}")])
    counts = (f"{int(summary.get('synced') or 0):,} synced, {plural(int(summary.get('errors') or 0), 'error')}, "
              f"{plural(int(summary.get('warnings') or 0), 'warning')}, "
              f"{int(summary.get('pulled') or 0):,} pulled from QuickBooks")
    lines = [f"*Sync Now finished:* {counts}."]
    if kind:
        lines.append(stopped_note(kind, until, tz=tz))
    if summary.get("failure"):
        lines.append(failure_note())
    emoji = STATUS_EMOJI["warning"] if kind or summary.get("errors") or summary.get("failure") \
        else STATUS_EMOJI["synced"]
    text = "\n".join(lines)
    return message(text.replace("*", ""), [section(f"{emoji} {text}")])


def sync_now_still_limited(until: dt.datetime | None, *, tz: TzLike = None) -> Message:
    """Sync Now tried once during a rate-limit pause and QuickBooks still throttles: the new time syncbot resumes
    by itself (the incident's message shows it too), and that Sync Now may be clicked again."""
    resume, plain_resume = resumes_at(until, tz)
    line = (f"*QuickBooks still limits requests:* syncbot asked once and was told to slow down again. {resume}, "
            "or click Sync Now again later.")
    return message(f"QuickBooks still limits requests. {plain_resume}.", [section(f"{STATUS_EMOJI['warning']} {line}")])


def _kind_title(kind: object) -> str:
    info = kind_info_for(kind)
    return info.title if info is not None and info.kind.value == str(kind) else mrkdwn(kind, 60)
