"""The total mismatch's part of an error message: the figures of both sides, line by line, and its fixes.

A total mismatch is found after a successful invoice write: QuickBooks computed other totals than JobsiteOn's
(``sync.diagnosis.diagnose_totals`` stores both sides in ``entry.data``). The card says where they part, the way a
bookkeeper compares two invoices::

    *Tax* JobsiteOn 61.91 at 8.25 % · QuickBooks 66.60 at 8.875 % (+4.69)
    *Total* JobsiteOn 812.36 · QuickBooks 817.05 (+4.69)
    *Lines that differ*
    • Framing labor x 10: JobsiteOn 650.00 · QuickBooks 651.00

and offers the fixes a bookkeeper would choose (the kind's actions in ``sync.diagnosis.KINDS``): Keep QuickBooks'
totals (written to the JobsiteOn invoice), Send JobsiteOn's tax and retry (QuickBooks keeps the tax as stated),
Mark resolved, and Open in QuickBooks (a link on the total's line to the invoice in QuickBooks' web app,
``entry.data["web_url"]``).
When QuickBooks refused the write with a tax fault instead (status error: it holds no new figures to keep), Retry
takes the place of Keep QuickBooks' totals.

Pure functions of stored data: everything QuickBooks sent is escaped; values carry the entry id only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.blocks import ids
from bot.blocks.kit import Block, button, confirm_dialog, section
from bot.blocks.text import join_within, mrkdwn, slack_link
from sync.diagnosis import FixAction, KindInfo

#: How many differing lines are listed before the rest is counted.
LINES_SHOWN_MAX = 100


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _side(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    part = data.get(name)
    return part if isinstance(part, Mapping) else {}


def _amount(value: object) -> str:
    return mrkdwn(value, 100) if value not in (None, "") else "-"


def _rate(part: Mapping[str, Any]) -> str:
    rate = part.get("rate")
    return f" at {mrkdwn(rate, 20)} %" if rate not in (None, "") else ""


def _difference(value: object) -> str:
    return f" ({mrkdwn(value, 100)})" if value not in (None, "", "0.00") else ""


def _figure_line(title: str, ours: Mapping[str, Any], theirs: Mapping[str, Any], key: str,
                 difference: object, with_rate: bool = False) -> str:
    """``*Tax* JobsiteOn 61.91 at 8.25 % · QuickBooks 66.60 at 8.875 % (+4.69)``, or ``*Subtotal* 750.45 in
    both`` when both sides agree (and so do their rates)."""
    mine, yours = ours.get(key), theirs.get(key)
    same_rate = not with_rate or ours.get("rate") == theirs.get("rate")
    if mine not in (None, "") and mine == yours and same_rate:
        return f"*{title}* {_amount(mine)}{_rate(ours) if with_rate else ''} in both"
    rates = (_rate(ours), _rate(theirs)) if with_rate else ("", "")
    return (f"*{title}* JobsiteOn {_amount(mine)}{rates[0]} · QuickBooks {_amount(yours)}{rates[1]}"
            f"{_difference(difference)}")


def _line_texts(data: Mapping[str, Any]) -> list[str]:
    rows = data.get("line_rows")
    if isinstance(rows, list) and rows:
        out = []
        for row in rows[:LINES_SHOWN_MAX]:
            if not isinstance(row, Mapping):
                continue
            label = row.get("label")
            if label in (None, ""):
                out.append(f"• A line only in QuickBooks: {_amount(row.get('theirs'))}")
            elif row.get("theirs") is None:
                out.append(f"• {mrkdwn(label, 200)}: JobsiteOn {_amount(row.get('ours'))} · not in QuickBooks")
            else:
                out.append(f"• {mrkdwn(label, 200)}: JobsiteOn {_amount(row.get('ours'))} · "
                           f"QuickBooks {_amount(row.get('theirs'))}")
        return out
    lines = data.get("lines")  # entries stored before line_rows: the sentences as they were
    return [f"• {mrkdwn(line, 300)}" for line in lines[:LINES_SHOWN_MAX]] if isinstance(lines, list) else []


def _invoice_link(data: Mapping[str, Any]) -> str | None:
    """``<url|Open in QuickBooks>``: the invoice's page in QuickBooks' web app (``data["web_url"]``), a link on the
    total's line rather than a button, so the card's buttons stay on one row."""
    url = data.get("web_url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    return slack_link(url, "Open in QuickBooks")


def totals_blocks(data: object) -> list[Block]:
    """The figures of both sides of a total mismatch (``entry.data``): the subtotal when the sides differ there (a
    card stays short: the tax line then says where they part), tax with each side's rate, total, and the lines
    whose amounts differ; [] when the entry holds no figures."""
    if not isinstance(data, Mapping):
        return []
    ours, theirs = _side(data, "ours"), _side(data, "theirs")
    if not ours and not theirs:
        return []
    figures = []
    if ("subtotal" in ours or "subtotal" in theirs) and ours.get("subtotal") != theirs.get("subtotal"):
        figures.append(_figure_line("Subtotal", ours, theirs, "subtotal", data.get("subtotal_difference")))
    figures.append(_figure_line("Tax", ours, theirs, "tax", data.get("tax_difference"), with_rate=True))
    total = _figure_line("Total", ours, theirs, "total", data.get("total_difference"))
    link = _invoice_link(data)
    figures.append(f"{total} · {link}" if link else total)
    blocks: list[Block] = [section("\n".join(figures))]
    listed = _line_texts(data)
    if listed:
        every = data.get("line_rows") or data.get("lines")
        count = len(every) if isinstance(every, list) else len(listed)
        text = join_within(listed, 2800, "_…and {n} more lines: see the sync log._", total=count)
        blocks.append(section("*Lines that differ*\n" + text))
    return blocks


def refused_by_provider(entry: Any) -> bool:
    """Was this total mismatch QuickBooks refusing the write over tax (status error: Retry is its fix), rather
    than a mismatch found after the write succeeded (status warning: Retry would meet the same totals)?"""
    return str(_get(entry, "status") or "") == "error"


def mismatch_buttons(entry: Any, info: KindInfo) -> list[dict[str, Any]]:
    """The fixes of an open total mismatch, in the order ``info.actions`` gives them; the first is the primary.

    A mismatch found after the write (status warning) offers Keep QuickBooks' totals and no Retry (it would send
    the same figures and meet the same mismatch); one QuickBooks refused (status error) offers Retry instead.
    Open in QuickBooks is a link on the figures' total line (:func:`totals_blocks`), not a button."""
    entry_id = _get(entry, "id")
    data = _get(entry, "data")
    data = data if isinstance(data, Mapping) else {}
    ours, theirs = _side(data, "ours"), _side(data, "theirs")
    record = mrkdwn(_get(entry, "record_label") or "-", 80)  # the dialog's text is mrkdwn
    refused = refused_by_provider(entry)
    out: list[dict[str, Any]] = []
    for action in info.actions:
        if action == FixAction.KEEP_PROVIDER_TOTALS and not refused:
            rate = f" ({mrkdwn(theirs['rate'], 20)} %)" if theirs.get("rate") not in (None, "") else ""
            out.append(button("Keep QuickBooks' totals", ids.KEEP_PROVIDER_TOTALS, entry_id, confirm=confirm_dialog(
                "Keep QuickBooks' totals?",
                f"JobsiteOn's invoice {record} takes QuickBooks' tax {_amount(theirs.get('tax'))}{rate} and total "
                f"{_amount(theirs.get('total'))}. QuickBooks is not changed.",
                "Keep")))
        elif action == FixAction.SEND_OWN_TAX:
            out.append(button("Send JobsiteOn's tax and retry", ids.SEND_OWN_TAX, entry_id, confirm=confirm_dialog(
                "Send JobsiteOn's tax?",
                f"Invoice {record} is sent to QuickBooks again with JobsiteOn's tax "
                f"{_amount(ours.get('tax'))} stated: QuickBooks keeps it instead of computing its own.",
                "Send")))
        elif action == FixAction.RETRY and refused:
            out.append(button("Retry", ids.RETRY, entry_id))
        elif action == FixAction.MARK_RESOLVED:
            out.append(button("Mark resolved", ids.MARK_RESOLVED, entry_id))
    if out:
        out[0]["style"] = "primary"
    return out
