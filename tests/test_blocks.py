"""Block Kit renderers (bot.blocks): each message read as a user sees it, and every one valid for Slack.

Every rendered message and view goes through the Slack stand-in's Block Kit validator (the checks Slack's API
applies before accepting a message or a view: sandbox/slack/blockkit.py) in :func:`valid` / :func:`valid_view`,
and a sample of them is also posted over HTTP to the stand-in through slack_sdk's WebClient.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.blocks import (
    ConnectionCard,
    details_modal,
    digest_message,
    entry_state,
    error_message,
    escape_mrkdwn,
    expiry_reminder,
    fill_field_modal,
    help_message,
    home_view,
    ids,
    incident_message,
    log_page,
    retry_all_confirm,
    retry_all_done,
    retry_all_not_run,
    retry_all_progress,
    support_modal,
    weekly_summary_message,
)
from bot.blocks.text import format_time, mrkdwn, truncate, truncate_mrkdwn
from sandbox.slack import SlackStandIn, SlackStandInConfig, StandInServer, serve_standin
from sandbox.slack.blockkit import validate_blocks, validate_view
from sandbox.slack.config import DEFAULT_BOT_TOKEN, DEFAULT_TEAM_ID, ERRORS_CHANNEL_ID, OWNER_USER_ID
from sync.diagnosis import KINDS, Kind, diagnose_totals
from sync.log import LogFilter, Page
from sync.models import Connection, Incident, SyncLogEntry
from sync.summary import WeeklySummary

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 30, 14, 5, tzinfo=UTC)  # 9:05 AM in New York
TZ = "America/New_York"
RECONNECT_URL = "https://syncbot.example.com/oauth/quickbooks/start?state=signed.state"
HOSTILE = "<!channel> Tom & Jerry <https://evil.example|click here> <@U0000000001> <!here>"
FALLBACK_MAX = 3000


# ------------------------------------------------------------------------------------------------ helpers


def entry(**kw: Any) -> SyncLogEntry:
    """A sync log entry as the engine stores it (no database needed)."""
    values: dict[str, Any] = dict(
        id=101, created_at=T0, account_id=1, connection_id=7, entity="invoice", record_id=42,
        record_label="INV-1042", direction="push", status="error", kind="duplicate",
        details="6240: Duplicate Name Exists Error. The name supplied already exists.\nintuit_tid: 1-6789-abc",
        codes="6240", field=None, http_status=400, intuit_tid="1-6789-abc", attempt=1, actor="system",
    )
    values.update(kw)
    return SyncLogEntry(**values)


def connection(**kw: Any) -> Connection:
    values: dict[str, Any] = dict(id=7, account_id=1, provider="quickbooks", realm_id="9130357766900456",
                                  status="connected", last_sync_at=T0 - dt.timedelta(minutes=3),
                                  refresh_expires_at=T0 + dt.timedelta(days=80))
    values.update(kw)
    return Connection(**values)


def strings(obj: Any) -> Iterator[str]:
    """Every string a reader could see inside a payload (button values are never shown)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key != "value":
                yield from strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from strings(value)


def elements(blocks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every interactive element: actions elements, section accessories, input elements."""
    for block in blocks:
        if block["type"] == "actions":
            yield from block["elements"]
        if "accessory" in block:
            yield block["accessory"]
        if "element" in block:
            yield block["element"]


def _check_elements(blocks: list[dict[str, Any]]) -> None:
    for block in blocks:
        if block["type"] == "actions":
            action_ids = [el["action_id"] for el in block["elements"]]
            assert len(action_ids) == len(set(action_ids)), f"action_id repeated in one block: {action_ids}"
    for el in elements(blocks):
        if el["type"] == "button":
            assert el["action_id"] in ids.ALL_ACTION_IDS
            assert len(el.get("value", "")) <= 2000
            confirm = el.get("confirm")
            if confirm:  # https://docs.slack.dev/reference/block-kit/composition-objects/confirmation-dialog-object
                assert len(confirm["title"]["text"]) <= 100 and len(confirm["text"]["text"]) <= 300
                assert len(confirm["confirm"]["text"]) <= 30 and len(confirm["deny"]["text"]) <= 30


def valid(msg: dict[str, Any]) -> dict[str, Any]:
    """Assert Slack would accept ``msg`` (chat.postMessage) and keep its fallback short; return it."""
    assert validate_blocks(msg["blocks"], "message") == []
    assert 0 < len(msg["text"]) <= FALLBACK_MAX
    _check_elements(msg["blocks"])
    return msg


def valid_view(view: dict[str, Any], kind: str) -> dict[str, Any]:
    """Assert Slack would accept ``view`` (views.open / views.publish); return it."""
    assert validate_view(view, kind) == []  # type: ignore[arg-type]
    _check_elements(view["blocks"])
    return view


def visible(payload: dict[str, Any]) -> str:
    """The text a reader sees (sections, fields, headers, context, button labels), entities decoded."""
    out: list[str] = []
    for block in payload["blocks"]:
        for key in ("text", "label", "hint"):
            if isinstance(block.get(key), dict):
                out.append(block[key]["text"])
        out.extend(f["text"] for f in block.get("fields", []))
        if block["type"] == "context":
            out.extend(el["text"] for el in block["elements"])
    out.extend(el["text"]["text"] for el in elements(payload["blocks"]) if "text" in el)
    return "\n".join(out).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def section_with(payload: dict[str, Any], needle: str) -> str:
    """The text of the first section whose text contains ``needle``."""
    return next(b["text"]["text"] for b in payload["blocks"] if needle in b.get("text", {}).get("text", ""))


def buttons(payload: dict[str, Any]) -> list[str]:
    """The labels of the buttons a reader sees, in order."""
    return [el["text"]["text"] for el in elements(payload["blocks"]) if el["type"] == "button"]


def button_named(payload: dict[str, Any], label: str) -> dict[str, Any]:
    matches = [el for el in elements(payload["blocks"]) if el["type"] == "button" and el["text"]["text"] == label]
    assert matches, f"no button {label!r} in {buttons(payload)}"
    return matches[0]


def no_raw_control(payload: dict[str, Any]) -> None:
    """No string in the payload would ping or link: hostile input only ever appears escaped."""
    for s in strings(payload):
        for raw in ("<!channel>", "<!here>", "<@U0000000001>", "<https://evil"):
            assert raw not in s, f"unescaped {raw!r} in {s[:200]!r}"


# ------------------------------------------------------------------------------------------------ text


def test_escape_mrkdwn_replaces_the_three_control_characters() -> None:
    assert escape_mrkdwn("<!channel> & <https://evil|click>") == "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
    assert escape_mrkdwn("a &amp; b") == "a &amp;amp; b"  # already-escaped text is shown as typed


def test_truncation_never_splits_an_entity_and_ends_with_an_ellipsis() -> None:
    cut = truncate_mrkdwn(escape_mrkdwn("&" * 100), 12)
    assert cut == "&amp;&amp;…"
    assert truncate("Re-create in QuickBooks", 10) == "Re-create…"
    assert len(mrkdwn("<" * 10_000, 3000)) <= 3000
    assert mrkdwn("a\x00b\x1bc") == "abc"


def test_times_are_shown_in_the_readers_zone() -> None:
    assert format_time(T0, "America/New_York") == "Nov 30, 2026 9:05 AM EST"
    assert format_time(T0, "Asia/Tokyo") == "Nov 30, 2026 11:05 PM JST"
    assert format_time(T0, "Pacific/Auckland") == "Dec 1, 2026 3:05 AM NZDT"
    assert format_time(T0, None) == "Nov 30, 2026 2:05 PM UTC"
    assert format_time(T0, "Not/AZone") == "Nov 30, 2026 2:05 PM UTC"


# ------------------------------------------------------------------------------------------------ error message


#: What each kind's open error offers (the field is set, something was found for a duplicate).
KIND_BUTTONS: dict[Kind, list[tuple[str, str]]] = {
    Kind.AUTH_EXPIRED: [("Reconnect", ids.RECONNECT)],
    Kind.DUPLICATE: [("Retry", ids.RETRY), ("Link to existing: Acme", ids.LINK_EXISTING)],
    Kind.NOT_FOUND: [("Re-create in QuickBooks", ids.RECREATE), ("Unlink", ids.UNLINK)],
    Kind.RATE_LIMITED: [],
    Kind.VALIDATION: [("Fill in Invoice number", ids.FILL_FIELD), ("Retry", ids.RETRY)],
    Kind.TOTAL_MISMATCH: [("Keep QuickBooks' totals", ids.KEEP_PROVIDER_TOTALS),
                          ("Send JobsiteOn's tax and retry", ids.SEND_OWN_TAX), ("Mark resolved", ids.MARK_RESOLVED)],
    Kind.UNKNOWN: [("Retry", ids.RETRY)],
    Kind.CLOSED_PERIOD: [("Retry", ids.RETRY)],
    Kind.SUBSCRIPTION: [("Sync Now", ids.SYNC_NOW)],
    Kind.LOCKED: [("Retry", ids.RETRY), ("Mark resolved", ids.MARK_RESOLVED)],
    Kind.CONFLICT: [("Retry", ids.RETRY)],
}


def test_every_kind_has_its_buttons_listed() -> None:
    assert set(KIND_BUTTONS) == set(Kind)


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
def test_each_kind_shows_its_diagnosis_and_buttons(kind: Kind) -> None:
    info = KINDS[kind]
    e = entry(kind=kind.value, status=info.status, field="DocNumber")
    msg = valid(error_message(e, info, tz=TZ, reconnect_url=RECONNECT_URL, found_existing="Acme"))
    seen = visible(msg)
    if kind == Kind.VALIDATION:  # the field named as people call it, with the fix's own steps
        assert "A required field is empty or invalid: *Invoice number*. Fill in the missing field, save" in seen
    elif kind == Kind.TOTAL_MISMATCH:  # the figures and the fixes' buttons say the rest (a short card)
        assert info.cause in seen and info.fix not in seen
    else:
        assert info.cause in seen and info.fix in seen
    assert info.title in seen
    expected = [*KIND_BUTTONS[kind], ("Details", ids.ENTRY_DETAILS), ("View log", ids.VIEW_ENTRY_LOG)]
    got = [(el["text"]["text"], el["action_id"]) for el in elements(msg["blocks"])]
    assert got == expected
    for el in elements(msg["blocks"]):  # values carry ids only
        assert el.get("value") in (str(e.id), str(e.connection_id))
    if kind == Kind.AUTH_EXPIRED:
        assert button_named(msg, "Reconnect")["url"] == RECONNECT_URL
    if KIND_BUTTONS[kind]:
        assert elements(msg["blocks"]).__next__()["style"] == "primary"
    emoji = ":large_yellow_circle:" if info.status == "warning" else ":red_circle:"
    assert f"{emoji} *{info.title}* · Invoice INV-1042 → QuickBooks" in seen


def test_unlink_asks_before_it_forgets_the_quickbooks_copy() -> None:
    msg = valid(error_message(entry(kind="not_found", details="610: Object Not Found"), tz=TZ))
    confirm = button_named(msg, "Unlink")["confirm"]
    assert confirm["title"]["text"] == "Unlink this record?"
    assert "next sync creates a fresh copy" in confirm["text"]["text"]


def test_validation_without_a_named_field_offers_retry_only() -> None:
    msg = valid(error_message(entry(kind="validation", field=None), tz=TZ))
    assert buttons(msg) == ["Retry", "Details", "View log"]
    msg = valid(error_message(entry(kind="validation", entity="item", field="IncomeAccountRef"), tz=TZ))
    assert "A required field is empty or invalid: *Income account*." in visible(msg)
    assert button_named(msg, "Fill in Income account")["value"] == "101"
    # a field that cannot be filled from Slack (the invoice's lines) offers no modal that would always refuse
    msg = valid(error_message(entry(kind="validation", entity="invoice", field="Line"), tz=TZ))
    assert buttons(msg) == ["Retry", "Details", "View log"]


def test_total_mismatch_shows_both_totals_and_the_tax_side_by_side() -> None:
    diag = diagnose_totals(Decimal("107.00"), Decimal("7.00"), {"Invoice": {
        "TotalAmt": 107.01, "TxnTaxDetail": {"TotalTax": 7.01},
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 100.00}]}}, [("Framing labor", Decimal("100"))])
    assert diag is not None
    e = entry(kind="total_mismatch", status="warning", details=diag.details, data=dict(diag.data), codes=None)
    msg = valid(error_message(e, tz=TZ))
    seen = visible(msg)
    assert ":large_yellow_circle: *Total mismatch* · Invoice INV-1042" in seen
    assert ("*Tax* JobsiteOn 7.00 · QuickBooks 7.01 (+0.01)\n"
            "*Total* JobsiteOn 107.00 · QuickBooks 107.01 (+0.01)") in seen  # more in tests/test_total_mismatch.py
    assert "Subtotal" not in seen  # the same on both sides: the tax line says where they part
    assert "Calculated totals differ between systems due to tax or rounding." in seen
    assert buttons(msg) == ["Keep QuickBooks' totals", "Send JobsiteOn's tax and retry", "Mark resolved", "Details",
                            "View log"]


def test_total_mismatch_with_many_differing_lines_stays_valid() -> None:
    data = {"ours": {"total": "$1.00", "tax": "$0.00"}, "theirs": {"total": "<b>$2</b>", "tax": "&"},
            "total_difference": "+$1.00", "tax_difference": "±0",
            "lines": [f"line {i}: <x> & y" * 20 for i in range(500)]}
    msg = valid(error_message(entry(kind="total_mismatch", status="warning", data=data), tz=TZ))
    listed = section_with(msg, "Lines that differ")
    hidden = re.search(r"_…and ([\d,]+) more lines: see the sync log._$", listed)
    assert hidden is not None
    assert listed.count("\n• ") + int(hidden.group(1).replace(",", "")) == 500  # every line shown or counted
    no_raw_control(msg)


# ------------------------------------------------------------------------------------------------ states


def test_unlinked_says_what_was_done() -> None:
    info = entry(id=104, status="info", kind=None, actor="Sam Lee",
                 details="Unlinked: the next sync creates a fresh copy in QuickBooks.")
    msg = valid(error_message(info, tz=TZ))
    seen = visible(msg)
    assert ":white_check_mark: Unlinked: the next sync creates a fresh copy in QuickBooks. · Invoice INV-1042" in seen
    assert "by Sam Lee · <!date^" in seen
    assert buttons(msg) == ["View log"]
    assert entry_state(entry(id=102, status="pending", kind=None)) == "retrying"


# ------------------------------------------------------------------------------------------------ hostile input


def test_hostile_details_names_and_labels_are_escaped() -> None:
    e = entry(details=f"{HOSTILE}\n```\n*bold* ``` breakout", record_label=HOSTILE, actor=HOSTILE,
              field="<!everyone>", codes="<!channel>", intuit_tid="<@U1>", kind="validation")
    msgs = [
        error_message(e, tz=TZ, account_name=HOSTILE, found_existing=HOSTILE),
        error_message(e, tz=TZ, retrying_by=HOSTILE),
        error_message(entry(status="synced", resolved_by=HOSTILE, resolved_at=T0, record_label=HOSTILE), tz=TZ),
        incident_message(Incident(kind="auth_expired", details=HOSTILE, opened_at=T0), connection(realm_id=HOSTILE),
                         3, tz=TZ, account_name=HOSTILE),
        log_page(Page(entries=[e], next_before=1, prev_after=None), tz=TZ, filter_text=HOSTILE),
        digest_message({HOSTILE: 3, "duplicate": 2}, 5, T0, tz=TZ),
    ]
    for msg in msgs:
        valid(msg)
        no_raw_control(msg)
    seen = visible(msgs[0])
    assert HOSTILE in seen  # shown as typed, just escaped
    assert "&lt;!channel&gt; Tom &amp; Jerry &lt;https://evil.example|click here&gt;" in msgs[0]["text"]
    details = section_with(details_modal(e, tz=TZ), "Details from QuickBooks")
    assert details.count("```") == 2  # the details' own fences cannot close the code block
    for view in (support_modal(e, tz=TZ), fill_field_modal(e), details_modal(e, tz=TZ, found_existing=HOSTILE)):
        valid_view(view, "modal")
        no_raw_control({"blocks": [b for b in view["blocks"] if b["type"] != "input"]})


def test_huge_details_stay_within_every_limit() -> None:
    huge = ("<html><body>Service Unavailable & maintenance " * 3000)[:100_000] + "```<!channel>"
    e = entry(kind="unknown", details=huge, record_label="R" * 600, attempt=5, field="F" * 300)
    msg = valid(error_message(e, tz=TZ, account_name="A" * 500, found_existing="E" * 500))
    assert len(json.dumps(msg)) < 20_000
    assert "Cut: the full details are in the sync log (View log)." in visible(valid_view(details_modal(e, tz=TZ),
                                                                                            "modal"))
    for block in msg["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
    valid(incident_message(Incident(kind="subscription", details=huge, opened_at=T0), connection(), 10**6, tz=TZ))
    valid_view(support_modal(e, tz=TZ), "modal")
    valid_view(fill_field_modal(e), "modal")
    valid(log_page(Page(entries=[e] * 30, next_before=None, prev_after=None), tz=TZ, filter_text="x" * 5000))


# ------------------------------------------------------------------------------------------------ incidents


def test_auth_expired_incident_counts_the_waiting_records_and_offers_reconnect() -> None:
    incident = Incident(id=5, connection_id=7, kind="auth_expired", opened_at=T0,
                        details="invalid_grant: refresh token expired")
    msg = valid(incident_message(incident, connection(status="expired"), 14, tz=TZ, reconnect_url=RECONNECT_URL))
    seen = visible(msg)
    assert ":red_circle: *Authentication expired* · QuickBooks company 9130357766900456" in seen
    assert "The integration's OAuth token has expired." in seen and "*Cause:*" not in seen  # one sentence
    assert "*14 records are waiting* on this connection. They sync again automatically once you reconnect." in seen
    assert f"Since <!date^{int(T0.timestamp())}^{{date_short_pretty}} at {{time}}|Nov 30, 2026 9:05 AM EST>" in seen
    assert "invalid_grant" not in seen  # QuickBooks' own words are in the sync log (View log)
    assert buttons(msg) == ["Reconnect", "View log"]
    assert button_named(msg, "Reconnect")["url"] == RECONNECT_URL
    assert button_named(msg, "Reconnect")["action_id"] == ids.RECONNECT
    assert msg["text"] == "Error: Authentication expired: QuickBooks company 9130357766900456. 14 records waiting."

    resolved = Incident(id=5, connection_id=7, kind="auth_expired", opened_at=T0, resolved_by="Dana Reyes",
                        resolved_at=T0 + dt.timedelta(hours=1), resolution="reconnected")
    msg = valid(incident_message(resolved, connection(), 14, tz=TZ))
    assert (":white_check_mark: *Reconnected* by Dana Reyes · <!date^"
            f"{int((T0 + dt.timedelta(hours=1)).timestamp())}^{{date_short_pretty}} at {{time}}|Nov 30, 2026 10:05 AM "
            "EST> · QuickBooks company 9130357766900456") in visible(msg)
    assert "14 waiting records are syncing again." in visible(msg)
    assert "Reconnect" not in buttons(msg)


def test_rate_limited_incident_says_when_it_resumes_and_offers_sync_now() -> None:
    incident = Incident(id=6, connection_id=7, kind="rate_limited", opened_at=T0)
    until = T0 + dt.timedelta(minutes=15)
    conn = connection(status="rate_limited", paused_until=until)
    msg = valid(incident_message(incident, conn, 1, tz=TZ))
    seen = visible(msg)
    assert ":large_yellow_circle: *Rate limit exceeded*" in seen
    assert (f"This resolves automatically: syncbot resumes by itself *<!date^{int(until.timestamp())}^"
            "{date_short_pretty} at {time}|Nov 30, 2026 9:20 AM EST>*. To try before then, click *Sync Now*") in seen
    assert "resumes by itself at Nov 30, 2026 9:20 AM EST." in msg["text"]  # the notification's plain text
    assert "*1 record is waiting* on this connection." in seen
    assert buttons(msg) == ["Sync Now", "View log"]
    resumed = Incident(id=6, connection_id=7, kind="rate_limited", opened_at=T0, resolved_by="system",
                       resolved_at=T0 + dt.timedelta(minutes=15), resolution="resumed")
    assert ":white_check_mark: *Resumed* automatically · <!date^" in visible(
        valid(incident_message(resumed, conn, 0, tz=TZ)))


def test_an_incident_another_kind_replaced_says_it_ended_and_offers_nothing_to_fix() -> None:
    ended = Incident(id=6, connection_id=7, kind="rate_limited", opened_at=T0, resolved_by="system",
                     resolved_at=T0 + dt.timedelta(minutes=3), resolution="replaced")
    msg = valid(incident_message(ended, connection(status="expired"), 2, tz=TZ))
    assert ":information_source: *Ended: Rate limit exceeded* · <!date^" in visible(msg)
    assert "|Nov 30, 2026 9:08 AM EST>" in visible(msg)
    assert "see the newer message below" in visible(msg)
    assert "Resumed" not in visible(msg) and buttons(msg) == ["View log"]


def test_sync_now_still_limited_gives_the_new_time() -> None:
    from bot.blocks import sync_now_still_limited

    until = T0 + dt.timedelta(minutes=15)
    msg = valid(sync_now_still_limited(until, tz=TZ))
    stamp = f"<!date^{int(until.timestamp())}^{{date_short_pretty}} at {{time}}|Nov 30, 2026 9:20 AM EST>"
    assert stamp in visible(msg)
    assert msg["text"].startswith("QuickBooks still limits requests.")
    assert "9:20 AM EST" in msg["text"]


def test_subscription_incident_offers_sync_now() -> None:
    incident = Incident(id=8, connection_id=7, kind="subscription", opened_at=T0, details="6190: Subscription lapsed")
    msg = valid(incident_message(incident, connection(status="suspended"), 0, tz=TZ, account_name="Acme Builders"))
    assert "The company owner renews or reactivates the subscription in QuickBooks" in visible(msg)
    assert "No records are waiting on it yet." in visible(msg)
    assert buttons(msg) == ["Sync Now", "View log"]
    assert button_named(msg, "Sync Now")["value"] == "7"


# ------------------------------------------------------------------------------------------------ digest, modals


def test_digest_folds_a_burst_into_one_message() -> None:
    msg = valid(digest_message({"validation": 31, "duplicate": 12, "not_found": 2}, 45, T0, tz=TZ,
                               connection_id=7))
    seen = visible(msg)
    assert ":red_circle: *45 sync errors since Nov 30, 2026 9:05 AM EST*" in seen
    assert "• Field validation error: *31*\n• Duplicate record: *12*\n• Record not found: *2*" in seen
    assert buttons(msg) == ["View log", "Retry All Errors"]
    assert button_named(msg, "View log")["value"] == "open since:2026-11-30T14:05:00+00:00"
    assert button_named(msg, "Retry All Errors") | {} == {
        "type": "button", "action_id": ids.RETRY_ALL, "value": "7", "style": "primary",
        "text": {"type": "plain_text", "text": "Retry All Errors", "emoji": True}}
    assert msg["text"] == "45 sync errors since Nov 30, 2026 9:05 AM EST"


def test_support_modal_has_the_timestamp_details_and_intuit_tid_ready_to_copy() -> None:
    e = entry(kind="unknown", attempt=3, details="500 SystemFault 10000: An application error has occurred.")
    view = valid_view(support_modal(e, tz=TZ), "modal")
    assert view["title"]["text"] == "Contact support" and "submit" not in view
    assert view["callback_id"] == ids.SUPPORT_VIEW
    seen = visible(view)
    assert ("If an error persists after retrying, contact JobsiteOn support with the error timestamp and details."
            in seen)
    copy_block = section_with(view, "Timestamp:")
    assert copy_block.startswith("```\n") and copy_block.endswith("\n```")
    assert "Timestamp: 2026-11-30 14:05:00 UTC (Nov 30, 2026 9:05 AM EST)" in copy_block
    assert "Record: Invoice INV-1042 (JobsiteOn #42)" in copy_block
    assert "intuit_tid: 1-6789-abc" in copy_block and "Attempt: 3" in copy_block
    assert "An application error has occurred." in seen
    assert "intuit_tid: not available" in visible(support_modal(entry(intuit_tid=None), tz=TZ))


def test_fill_field_modal_asks_for_the_missing_field() -> None:
    e = entry(kind="validation", field="BillEmail", details="2020: Required param missing: BillEmail")
    view = valid_view(fill_field_modal(e), "modal")
    assert view["callback_id"] == ids.FILL_FIELD_VIEW and view["private_metadata"] == "101"
    assert (view["title"]["text"], view["submit"]["text"], view["close"]["text"]) == (
        "Fill the field", "Save and retry", "Cancel")
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert len(inputs) == 1
    assert inputs[0]["block_id"] == ids.FILL_FIELD_BLOCK and inputs[0]["label"]["text"] == "BillEmail"
    assert inputs[0]["element"]["action_id"] == ids.FILL_FIELD_INPUT
    assert "QuickBooks needs *BillEmail* for *Invoice INV-1042*." in visible(view)
    assert "QuickBooks said: 2020: Required param missing: BillEmail" in visible(view)
    with pytest.raises(ValueError):
        fill_field_modal(entry(field=None))


def test_fill_field_modal_offers_quickbooks_accounts_by_name_and_groups_a_long_list() -> None:
    from sync.engine import FieldChoices
    from sync.providers.base import Choice

    e = entry(kind="validation", entity="item", record_label="Permit fee", field="IncomeAccountRef")
    loading = valid_view(fill_field_modal(e, loading=True), "modal")
    assert "Loading QuickBooks' income accounts" in visible(loading) and "submit" not in loading
    found = FieldChoices([Choice("92", "Permits and Fees Income"), Choice("79", "Sales of Product Income")],
                         current="79")
    view = valid_view(fill_field_modal(e, found), "modal")
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    select_el = field["element"]
    assert (select_el["type"], select_el["action_id"]) == ("static_select", ids.FILL_FIELD_INPUT)
    assert [(o["text"]["text"], o["value"]) for o in select_el["options"]] == [
        ("Permits and Fees Income", "92"), ("Sales of Product Income", "79")]
    assert select_el["initial_option"]["value"] == "79" and view["submit"]["text"] == "Save and retry"
    many = FieldChoices([Choice(str(i), f"Income {i:03d} " + "x" * 90) for i in range(250)])
    grouped = valid_view(fill_field_modal(e, many), "modal")
    [field] = [b for b in grouped["blocks"] if b["type"] == "input"]
    groups = field["element"]["option_groups"]
    assert [len(g["options"]) for g in groups] == [100, 100, 50] and "options" not in field["element"]
    assert all(len(o["text"]["text"]) <= 75 for g in groups for o in g["options"])
    assert all(len(g["label"]["text"]) <= 75 for g in groups)
    for problem, words in ((FieldChoices([], "The QuickBooks connection needs to be reconnected."), "reconnected"),
                           (FieldChoices([]), "has no active income accounts")):
        shown = valid_view(fill_field_modal(e, problem), "modal")
        assert words in visible(shown) and "submit" not in shown


# ------------------------------------------------------------------------------------------------ log


def _log_entries(n: int, start: int = 10_000) -> list[SyncLogEntry]:
    kinds = [k.value for k in Kind]
    out = []
    for i in range(n):
        status = ("error", "warning", "synced", "info")[i % 4]
        out.append(SyncLogEntry(
            id=start - i, created_at=T0 - dt.timedelta(minutes=i), connection_id=7, entity="invoice",
            record_id=i, record_label=f"INV-{i}", direction="push", status=status,
            kind=kinds[i % len(kinds)] if status in ("error", "warning") else None,
            details=f"{i}: Something & <else>", attempt=1))
    return out


def test_log_page_heading_takes_the_number_of_its_entries() -> None:
    flt = LogFilter(statuses=("error",), entities=("invoice",))

    def heading(n: int) -> str:
        page = Page(entries=_log_entries(n, start=60), next_before=None, prev_after=None, filter=flt)
        msg = valid(log_page(page, tz=TZ, filter_text="errors entity:invoice", connection_id=7))
        return str(msg["blocks"][0]["text"]["text"])

    assert heading(1) == "Sync log: error · invoice"
    assert heading(2) == "Sync log: errors · invoices"
    assert heading(0) == "Sync log: errors · invoices"


def test_log_page_lists_entries_with_cursors_and_actions() -> None:
    entries = _log_entries(3, start=60)
    entries[2].resolved_at = T0
    flt = LogFilter(statuses=("error",), entities=("invoice",))
    msg = valid(log_page(Page(entries=entries, next_before=58, prev_after=60, filter=flt), tz=TZ,
                         filter_text="errors entity:invoice", connection_id=7))
    seen = visible(msg)
    assert msg["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                             "text": "Sync log: errors · invoices"}}
    assert "3 entries, newest first · filter `errors entity:invoice`" in seen
    assert (":red_circle: *Invoice INV-0* · Authentication expired · Push · Nov 30 9:05 AM EST\n"
            "0: Something & <else>") in seen
    # one severity per kind (sync.diagnosis.severity): a duplicate is red even if a row stored "warning"
    assert ":red_circle: *Invoice INV-1* · Duplicate record · Push · Nov 30 9:04 AM EST" in seen
    assert ":white_check_mark: *Invoice INV-2* · Synced · Push" in seen
    # Retry where the card offers it: the duplicate's; the expired authentication's fix is Reconnect, as the App
    # Home's row offers it
    assert buttons(msg) == ["Reconnect", "Retry", "Previous", "Next", "Retry All Errors", "Sync Now"]
    assert json.loads(button_named(msg, "Next")["value"]) == {"before": 58, "q": "errors entity:invoice"}
    assert json.loads(button_named(msg, "Previous")["value"]) == {"after": 60, "q": "errors entity:invoice"}
    assert button_named(msg, "Next")["action_id"] == ids.LOG_NEXT
    assert button_named(msg, "Previous")["action_id"] == ids.LOG_PREV
    assert button_named(msg, "Sync Now")["value"] == "7"


def test_log_page_empty_state() -> None:
    msg = valid(log_page(Page(entries=[], next_before=None, prev_after=None,
                              filter=LogFilter(kinds=("locked",))), tz=TZ, filter_text="kind:locked"))
    assert ":white_check_mark: No entries match *locked*." in visible(msg)
    assert buttons(msg) == ["Retry All Errors", "Sync Now"]


def test_log_page_of_ten_thousand_entries_stays_one_valid_message() -> None:
    msg = valid(log_page(Page(entries=_log_entries(10_000), next_before=1, prev_after=None), tz=TZ,
                         filter_text="x" * 10_000))
    assert len(msg["blocks"]) <= 50
    assert re.search(r"_[\d,]+ more entries on this page not shown", visible(msg))
    assert len(button_named(msg, "Next")["value"]) <= 2000
    # a page of 100 (sync.log's cap) packs into sections without losing any entry
    msg = valid(log_page(Page(entries=_log_entries(100), next_before=None, prev_after=None), tz=TZ))
    assert "not shown" not in visible(msg) and "INV-99*" in visible(msg)


def test_help_lists_every_command() -> None:
    msg = valid(help_message())
    seen = visible(msg)
    for word in ("/sync-log errors", "entity:", "kind:", "since:", "direction:", "retry-all", "sync-now",
                 "status", "reconnect", "channel #name", "/sync-log help"):
        assert word in seen
    assert "a 2-minute review can prevent hours of cleanup later." in seen


# ------------------------------------------------------------------------------------------------ Retry All


def test_retry_all_asks_then_shows_progress_then_the_outcome() -> None:
    ask = valid(retry_all_confirm(12, connection_id=7))
    assert "*Retry all 12 open errors?*" in visible(ask)
    assert buttons(ask) == ["Retry all 12", "Cancel"]
    assert button_named(ask, "Retry all 12")["action_id"] == ids.RETRY_ALL_CONFIRM
    assert button_named(ask, "Cancel")["action_id"] == ids.RETRY_ALL_CANCEL
    assert buttons(valid(retry_all_confirm(0))) == []

    progress = valid(retry_all_progress(5, 20))
    assert "*Retrying all errors…* 5 of 20\n`█████░░░░░░░░░░░░░░░`" in visible(progress)
    valid(retry_all_progress(0, 0))

    done = valid(retry_all_done({"synced": 9, "errors": 2, "warnings": 1, "skipped": 0, "pulled": 0,
                                 "unchanged": 0, "stopped": None, "by_kind": {"duplicate": 2, "total_mismatch": 1}}))
    assert (":large_yellow_circle: *Retry All finished:* 9 synced, 2 still failing, 1 warning."
            in visible(done))
    assert "Still failing: Duplicate record 2\nWarnings: Total mismatch 1" in visible(done)  # a warning is no failure
    stopped = valid(retry_all_done({"synced": 0, "errors": 0, "stopped": "auth_expired", "by_kind": {}}))
    assert ("*Stopped early:* Authentication expired. The integration's OAuth token has expired. Click Reconnect"
            in visible(stopped))
    not_run = valid(retry_all_not_run("auth_expired"))
    assert "*Retry All did not run:* Authentication expired." in visible(not_run) and "Reconnect" in not_run["text"]


# ------------------------------------------------------------------------------------------------ home


def test_home_shows_a_card_per_connection_and_the_latest_errors() -> None:
    cards = [
        ConnectionCard(connection(), {"duplicate": 2, "validation": 1}, account_name="Acme Builders"),
        ConnectionCard(connection(id=8, status="expired", refresh_expires_at=T0 + dt.timedelta(days=5),
                                  last_sync_at=None), {}, reconnect_url=RECONNECT_URL),
    ]
    view = valid_view(home_view(cards, [entry(), entry(id=102, kind="not_found", record_label="Acme")], tz=TZ,
                                now=T0), "home")
    seen = visible(view)
    assert "*QuickBooks company 9130357766900456 · Acme Builders*\n:large_green_circle: Connected" in seen
    assert "*Token*\nexpires in 80 days" in seen
    assert "*Last sync*\nNov 30, 2026 9:02 AM EST" in seen
    assert "*Open errors*\n3 (Duplicate record 2, Field validation error 1)" in seen
    assert ":red_circle: Authentication expired: reconnect" in seen
    # expired: no refresh-token countdown next to "Authentication expired" (its refresh token's date says 5 days)
    assert "*Token*\n:red_circle: expired — reconnect" in seen and "*Last sync*\nnever" in seen
    assert "expires in 5 days" not in seen
    soon = visible(valid_view(home_view([ConnectionCard(connection(refresh_expires_at=T0 + dt.timedelta(days=5)))],
                                        [], tz=TZ, now=T0), "home"))
    assert "*Token*\n:warning: expires in 5 days: reconnect soon" in soon
    assert "*Invoice INV-1042* · Duplicate record · Nov 30, 2026 9:05 AM EST" in seen
    # Retry on the first error; the deleted copy's is fixed on its card (Re-create or Unlink), not retried
    assert buttons(view) == ["Sync Now", "Retry All Errors", "Reconnect", "Sync Now", "Reconnect", "Retry"]
    reconnects = [el for el in elements(view["blocks"]) if el["action_id"] == ids.RECONNECT]
    assert "url" not in reconnects[0] and reconnects[1]["url"] == RECONNECT_URL
    assert reconnects[1]["style"] == "primary"


def test_home_rows_of_the_connection_itself_offer_reconnect_or_nothing_never_retry() -> None:
    rows = [entry(), entry(id=102, entity="connection", record_id=None, record_label=None, kind="auth_expired"),
            entry(id=103, entity="connection", record_id=None, record_label=None, kind="rate_limited"),
            entry(id=104, entity="connection", record_id=None, record_label=None, kind="unknown")]
    view = valid_view(home_view([], rows, tz=TZ, now=T0), "home")
    assert buttons(view) == ["Retry", "Reconnect"]
    reconnect = next(el for el in elements(view["blocks"]) if el["action_id"] == ids.RECONNECT)
    assert reconnect["value"] == "7"  # the connection, not the entry
    assert "*Connection* · Authentication expired" in visible(view)


def test_an_answer_modal_draws_the_answers_blocks_or_its_text() -> None:
    from bot.blocks import answer_modal, retry_all_confirm

    asked = valid_view(answer_modal(retry_all_confirm(3, connection_id=7)), "modal")
    assert "*Retry all 3 open errors?*" in visible(asked) and buttons(asked) == ["Retry all 3", "Cancel"]
    assert "submit" not in asked and asked["close"]["text"] == "Close"
    refused = valid_view(answer_modal({"text": "Only an Owner or Admin may do that."}), "modal")
    assert "Only an Owner or Admin may do that." in visible(refused)


def test_home_of_500_connections_and_1000_errors_stays_within_100_blocks() -> None:
    cards = [ConnectionCard(connection(id=i, realm_id=HOSTILE), {k.value: i for k in Kind}, account_name=HOSTILE)
             for i in range(500)]
    errors = _log_entries(1000)
    view = valid_view(home_view(cards, errors, tz=TZ, now=T0), "home")
    assert len(view["blocks"]) <= 100
    seen = visible(view)
    assert re.search(r"_[\d,]+ more connections not shown: `/sync-log status`", seen)
    assert "_990 more errors: `/sync-log open` lists them all._" in seen
    no_raw_control(view)
    empty = valid_view(home_view([], [], tz=TZ, now=T0), "home")
    assert "No connection yet" in visible(empty) and "No open errors." in visible(empty)


# ------------------------------------------------------------------------------------------------ summary, expiry


def _summary(**kw: Any) -> WeeklySummary:
    values: dict[str, Any] = dict(
        since=T0 - dt.timedelta(days=7), until=T0,
        attempts_by_status={"synced": 120, "error": 9, "warning": 2},
        errors_by_kind={"duplicate": 5, "validation": 4, "total_mismatch": 2},
        errors_by_entity={"invoice": 7, "contact": 4},
        previous_attempts_by_status={"synced": 100, "error": 12},
        previous_errors_by_kind={"duplicate": 8},
        open_errors=3,
        oldest_open=[entry(created_at=T0 - dt.timedelta(days=12))],
        most_failing=[("invoice", 42, "INV-1042", 5), ("contact", 3, "Acme", 2)],
    )
    values.update(kw)
    return WeeklySummary(**values)


def test_weekly_summary_reads_like_the_monday_review() -> None:
    msg = valid(weekly_summary_message(_summary(), tz=TZ, account_name="Acme Builders", connection_id=7))
    seen = visible(msg)
    assert msg["blocks"][0]["text"]["text"] == "Weekly sync summary: Acme Builders"
    assert "Nov 23, 2026 to Nov 30, 2026" in seen
    assert "*Synced*\n120 (+20 vs last week)" in seen and "*Errors*\n9 (-3 vs last week)" in seen
    assert "• Duplicate record: *5* (-3)\n• Field validation error: *4* (+4)" in seen
    assert "• Invoice: *7*\n• Contact: *4*" in seen
    assert "*Still open: 3 errors*\nOldest unresolved:\n• :red_circle: *Invoice INV-1042* · Duplicate record" in seen
    assert "(12 days old)" in seen
    assert "• Invoice INV-1042: 5 failures" in seen
    assert buttons(msg) == ["Retry All Errors", "View log"]
    last = msg["blocks"][-1]
    assert last["type"] == "context"
    assert "A 2-minute review can prevent hours of cleanup later." in last["elements"][0]["text"]


def test_a_quiet_week_is_one_line() -> None:
    msg = valid(weekly_summary_message(_summary(errors_by_kind={}, errors_by_entity={}, open_errors=0,
                                                oldest_open=[], most_failing=[],
                                                attempts_by_status={"synced": 40}), tz=TZ))
    assert len(msg["blocks"]) == 1
    assert msg["text"] == ("Quiet week in the sync log (Nov 23, 2026 to Nov 30, 2026): 40 records synced, "
                           "no errors or warnings.")


def test_expiry_reminder_says_when_and_offers_reconnect() -> None:
    msg = valid(expiry_reminder(connection(), 7, reconnect_url=RECONNECT_URL))
    seen = visible(msg)
    assert ":warning: *Your QuickBooks connection expires in 7 days*" in seen
    assert "Reconnect proactively every 90 days." in seen
    assert buttons(msg) == ["Reconnect"] and button_named(msg, "Reconnect")["url"] == RECONNECT_URL
    assert "expires today" in visible(valid(expiry_reminder(connection(), 0, reconnect_url=RECONNECT_URL)))
    assert "has expired" in visible(valid(expiry_reminder(connection(), -3, reconnect_url=None)))


def test_duck_typed_objects_render_too() -> None:
    ns = SimpleNamespace(id=9, created_at=T0, entity="contact", record_id=3, record_label="Acme", direction="pull",
                         status="error", kind="not_found", details="610", attempt=1, connection_id=7)
    msg = valid(error_message(ns, tz=TZ))
    assert ":red_circle: *Record not found* · Contact Acme ← QuickBooks" in visible(msg)
    assert "Pull · attempt 1" in visible(msg)
    assert buttons(msg) == ["Re-create in QuickBooks", "Unlink", "Details", "View log"]


# ------------------------------------------------------------------------------------------------ over HTTP


@pytest.fixture(scope="module")
def slack() -> Iterator[StandInServer]:
    srv = serve_standin(SlackStandInConfig(rate_limits_enabled=False, text_max_chars=4000))
    yield srv
    srv.stop()


def test_the_standin_accepts_every_message_and_view(slack: StandInServer) -> None:
    standin: SlackStandIn = slack.standin
    client = WebClient(base_url=slack.api_url, token=DEFAULT_BOT_TOKEN)
    huge = "<!channel> & " * 10_000
    e = entry(details=huge, kind="validation", field="CustomerRef", attempt=4)
    messages = [
        error_message(e, tz=TZ, reconnect_url=RECONNECT_URL),
        *(error_message(entry(kind=k.value, details=huge, field="X"), tz=TZ, reconnect_url=RECONNECT_URL,
                        found_existing="Acme") for k in Kind),
        error_message(e, tz=TZ, retrying_by="Dana Reyes"),
        incident_message(Incident(kind="auth_expired", details=huge, opened_at=T0), connection(), 3, tz=TZ,
                         reconnect_url=RECONNECT_URL),
        digest_message({"duplicate": 40}, 40, T0, tz=TZ),
        log_page(Page(entries=_log_entries(10_000), next_before=1, prev_after=2), tz=TZ, filter_text="errors"),
        help_message(),
        retry_all_confirm(3), retry_all_progress(1, 3), retry_all_done({"synced": 3}),
        weekly_summary_message(_summary(), tz=TZ),
        expiry_reminder(connection(), 10, reconnect_url=RECONNECT_URL),
    ]
    first = client.chat_postMessage(channel=ERRORS_CHANNEL_ID, **messages[0])
    assert first["ok"] and not first.get("warning")
    for msg in messages[1:]:
        answer = client.chat_update(channel=ERRORS_CHANNEL_ID, ts=first["ts"], **msg)
        assert answer["ok"] and not answer.get("warning"), answer.data
    stored = standin.message(ERRORS_CHANNEL_ID, first["ts"])
    assert stored is not None and stored.text == messages[-1]["text"]

    home = home_view([ConnectionCard(connection(id=i)) for i in range(500)], _log_entries(50), tz=TZ, now=T0)
    assert client.views_publish(user_id=OWNER_USER_ID, view=home)["ok"]
    for view in (support_modal(e, tz=TZ), fill_field_modal(e)):
        trigger = standin.mint_trigger_id(DEFAULT_TEAM_ID, OWNER_USER_ID)
        assert client.views_open(trigger_id=trigger, view=view)["ok"]


# ------------------------------------------------------------------------------------------------ links in details


def links_in(mrkdwn_text: str) -> list[str]:
    """The Slack links (``<url|text>`` / ``<url>``) a mrkdwn text holds."""
    return re.findall(r"<(https?://[^<>]+)>", mrkdwn_text)


def test_the_providers_links_in_details_are_clickable() -> None:
    from sync.diagnosis import diagnose

    diag = diagnose(400, json.dumps({"Fault": {"Error": [{
        "Message": "A business validation error has occurred",
        "Detail": 'Tax rate inactive: see <a href="https://quickbooks.intuit.com/learn-support/tax?a=1&amp;b=2">'
                  "Manage sales tax</a> or https://status.developer.intuit.com/.", "code": "6000"}],
        "type": "ValidationFault"}}), "application/json")
    assert diag.links == (("Manage sales tax", "https://quickbooks.intuit.com/learn-support/tax?a=1&b=2"),)
    e = entry(kind=diag.label, details=diag.details, data={"links": [list(x) for x in diag.links]})
    msg = valid(error_message(e, tz=TZ))
    details = section_with(valid_view(details_modal(e, tz=TZ), "modal"), "Details from QuickBooks")
    assert links_in(details) == ["https://quickbooks.intuit.com/learn-support/tax?a=1&amp;b=2|Manage sales tax",
                                 "https://status.developer.intuit.com/"]
    assert "see <https://quickbooks" in details and "/.\nintuit" not in details  # the sentence's dot stays out
    assert "<" not in msg["text"]  # the fallback stays plain: no link syntax, nothing raw
    for view in (support_modal(e, tz=TZ),):
        assert links_in(section_with(valid_view(view, "modal"), "*Details*"))


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ('<a href="https://x.example/help">Help & FAQ</a>', ["https://x.example/help|Help &amp; FAQ"]),
        ("<A HREF='https://x.example/?q=a&amp;r=<b>' target=_blank>go</A>", ["https://x.example/?q=a&amp;r=%3Cb%3E|go"]),
        ('<a href="https://x.example/a|b">pipe</a>', ["https://x.example/a%7Cb|pipe"]),
        ('<a href="https://evil.example/">https://quickbooks.intuit.com</a>', ["https://evil.example/"]),
        ('<a href="javascript:alert(1)">click</a> <a href="/relative">home</a>', []),
        ('<a href="mailto:support@example.com">mail us</a>', []),
        ("ftp://files.example/x and file:///etc/passwd", []),
        ("see https://x.example/wiki/A_(b)), then (https://x.example/c).", ["https://x.example/wiki/A_(b)",
                                                                           "https://x.example/c"]),
        (HOSTILE, []),  # Slack's own syntax, as typed: shown as typed, never a link
    ],
    ids=["ampersand-text", "entities-and-angle-brackets", "pipe-in-url", "text-names-another-address",
         "javascript-and-relative", "mailto", "other-schemes", "brackets-and-punctuation", "slack-syntax"],
)
def test_only_web_links_become_links_and_everything_else_is_escaped(details: str, expected: list[str]) -> None:
    view = valid_view(details_modal(entry(kind="unknown", details=details), tz=TZ), "modal")
    shown = section_with(view, "Details from QuickBooks")
    assert links_in(shown) == expected
    outside = re.sub(r"<https?://[^<>]+>", "", shown)
    assert "<" not in outside and ">" not in outside  # nothing else raw: no mention, no ping, no other link
    assert "javascript" not in shown and "/relative" not in shown


def test_links_in_huge_details_are_kept_whole_or_not_at_all() -> None:
    link = '<a href="https://help.example.com/articles/' + "x" * 40 + '">read this article</a> '
    for pad in range(1700, 1820, 7):  # the cut falls before, inside and after a link
        e = entry(kind="unknown", details="y" * pad + " " + link * 3)
        shown = section_with(valid_view(details_modal(e, tz=TZ), "modal"), "Details from QuickBooks")
        body = shown.split("```")[1]
        assert body.count("<") == body.count(">") == len(links_in(body))
        assert all(x.endswith("|read this article") for x in links_in(body))
    huge = ("https://a.example/" + "p" * 3000 + " ") * 3  # too long to be a link: text, cut
    view = valid_view(details_modal(entry(kind="unknown", details=huge), tz=TZ), "modal")
    assert links_in(section_with(view, "Details from QuickBooks")) == []


def test_a_mailto_link_to_support_fits_within_2000_characters_whatever_the_details() -> None:
    from urllib.parse import parse_qs, urlsplit

    from bot.blocks.support import mailto_url

    body = "Timestamp: 2026-11-30 14:05:00 UTC\nDetails: " + "Ünïcode & <tags> | pipes " * 400
    url = mailto_url("support@jobsiteon.example", "syncbot: Duplicate record · Contact Acme Corp", body)
    assert len(url) <= 2000 and url.startswith("mailto:support@jobsiteon.example?subject=syncbot%3A%20")
    [got] = parse_qs(urlsplit(url).query)["body"]
    assert got.startswith("Timestamp: 2026-11-30 14:05:00 UTC\r\nDetails: Ünïcode & <tags> | pipes")
    assert got.endswith("…") and len(mailto_url("a@b.example", "s", "short")) < 60
    view = valid_view(support_modal(entry(details="x" * 5000), tz=TZ, email="support@jobsiteon.example"), "modal")
    import re

    [link] = re.findall(r"<(mailto:[^|>]+)\|Email JobsiteOn support>", str(view["blocks"]))
    assert len(link.replace("&amp;", "&")) <= 2000
