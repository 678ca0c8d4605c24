"""The error card (bot.blocks.error_message) and its Details modal, read as a person reads them in the channel.

Issue 15, point 9: a card a person can scan, the way PagerDuty, Grafana OnCall and Sentry put an alert in Slack:
a title line, what is wrong and the fix in one sentence, the buttons, one context line; QuickBooks' raw details,
codes, intuit_tid, the entry id and QuickBooks' field names behind Details. One test per error of the help
article (expired auth, duplicate, deleted linked record, rate limit, missing required field, total mismatch),
then the card's states: waiting for Reconnect (point 1), a refused click shown on the card (point 2), resolved.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from bot.blocks import click_notice, details_modal, error_message, ids
from sync.diagnosis import KINDS, Kind
from tests.test_blocks import RECONNECT_URL, T0, TZ, button_named, buttons, entry, valid, valid_view, visible

#: Fallback of Slack's date token for T0 in TZ (what a client that cannot format it shows).
AT_T0 = "<!date^1796047500^{date_short_pretty} at {time}|Nov 30, 2026 9:05 AM EST>"
#: What never shows on a card's face (it is behind Details).
OFF_THE_FACE = ("Details from QuickBooks", "6240", "intuit_tid", "1-6789-abc", "Entry 101", "IncomeAccountRef",
                "If an error persists", "JobsiteOn #42")


def lines(msg: dict[str, Any]) -> list[str]:
    """The card's lines of text as a reader sees them, top to bottom (the buttons as one line)."""
    out: list[str] = []
    for block in msg["blocks"]:
        if block["type"] == "section":
            out.extend(block["text"]["text"].split("\n") if "text" in block else [])
            out.extend(f["text"].replace("\n", " ") for f in block.get("fields", []))
        elif block["type"] == "context":
            out.extend(el["text"] for el in block["elements"])
        elif block["type"] == "actions":
            out.append(" | ".join(f"[{el['text']['text']}]" for el in block["elements"]))
    return out


def scannable(msg: dict[str, Any]) -> None:
    """At most 8 lines, nothing raw on its face."""
    assert len(lines(msg)) <= 8, lines(msg)
    face = visible(msg)
    for raw in OFF_THE_FACE:
        assert raw not in face, (raw, face)


def test_duplicate_card_reads_like_the_message() -> None:
    msg = valid(error_message(entry(), tz=TZ, found_existing="Acme Builders LLC (Customer 58)"))
    scannable(msg)
    assert lines(msg) == [
        ":red_circle: *Duplicate record* · Invoice INV-1042 → QuickBooks",
        "A record with the same name or identifier already exists. Rename or merge the duplicate in the target "
        "system, then click Retry.",
        "[Retry] | [Link to existing: Acme Builders LLC (Customer 58)] | [Details] | [View log]",
        f"Push · attempt 1 · since {AT_T0}",
    ]
    assert button_named(msg, "Retry")["style"] == "primary"
    assert msg["text"] == "Error: Duplicate record: Invoice INV-1042 (push, attempt 1)"


def test_record_not_found_card_reads_like_the_message() -> None:
    msg = valid(error_message(entry(kind="not_found", codes="610", details="610: Object Not Found"), tz=TZ))
    scannable(msg)
    assert lines(msg) == [
        ":red_circle: *Record not found* · Invoice INV-1042 → QuickBooks",
        "The linked record was deleted in the target system. Re-create the record or unlink the JobsiteOn record "
        "and let the next sync create a fresh copy.",
        "[Re-create in QuickBooks] | [Unlink] | [Details] | [View log]",
        f"Push · attempt 1 · since {AT_T0}",
    ]


def test_field_validation_card_names_the_field_as_people_do() -> None:
    e = entry(kind="validation", entity="item", record_label="Permit fee", field="IncomeAccountRef", codes="2020",
              details="2020: Required param missing, need to supply the required value for the API: "
                      "IncomeAccountRef")
    msg = valid(error_message(e, tz=TZ))
    scannable(msg)
    assert lines(msg) == [
        ":red_circle: *Field validation error* · Item Permit fee → QuickBooks",
        "A required field is empty or invalid: *Income account*. Fill in the missing field, save, and the next sync "
        "attempt will succeed.",
        "[Fill in Income account] | [Retry] | [Details] | [View log]",
        f"Push · attempt 1 · since {AT_T0}",
    ]


def test_total_mismatch_card_is_a_yellow_warning_with_its_totals() -> None:
    data = {"ours": {"total": "$1,082.50", "tax": "$82.50"}, "theirs": {"total": "$1,088.75", "tax": "$88.75"},
            "total_difference": "+$6.25", "tax_difference": "+$6.25"}
    msg = valid(error_message(entry(kind="total_mismatch", status="warning", data=data, codes=None), tz=TZ))
    seen = lines(msg)
    assert seen[0] == ":large_yellow_circle: *Total mismatch* · Invoice INV-1042 → QuickBooks"
    assert seen[1].startswith("Calculated totals differ between systems due to tax or rounding.")
    assert "*Total* JobsiteOn $1,082.50 · QuickBooks $1,088.75 (+$6.25)" in seen  # bot.blocks.totals draws them
    assert msg["text"].startswith("Warning: Total mismatch")


def test_rate_limited_card_says_it_waits_and_when_syncing_resumes() -> None:
    until = T0 + dt.timedelta(minutes=15)
    e = entry(kind="rate_limited", codes="3001", details="3001: ThrottleExceeded")
    msg = valid(error_message(e, tz=TZ, waiting="rate_limited", waiting_until=until))
    scannable(msg)
    assert lines(msg) == [
        ":large_yellow_circle: *Rate limit exceeded* · Invoice INV-1042 → QuickBooks",  # a warning (sync.diagnosis)
        f"{KINDS[Kind.RATE_LIMITED].cause} {KINDS[Kind.RATE_LIMITED].fix}",
        "[Details] | [View log]",
        ":hourglass_flowing_sand: *Waiting for the rate limit:* syncing resumes by itself: "  # never "at Today at"
        "<!date^1796048400^{date_short_pretty} at {time}|Nov 30, 2026 9:20 AM EST> · Push · attempt 1 · "
        f"since {AT_T0}",
    ]


def test_expired_auth_card_offers_reconnect_only() -> None:
    e = entry(kind="auth_expired", codes="3200", details="3200: AuthenticationFailed")
    msg = valid(error_message(e, tz=TZ, reconnect_url=RECONNECT_URL))
    scannable(msg)
    assert lines(msg)[:2] == [":red_circle: *Authentication expired* · Invoice INV-1042 → QuickBooks",
                              "The integration's OAuth token has expired. Reconnect and re-authorize the connection; "
                              "the sync resumes automatically."]
    assert buttons(msg) == ["Reconnect", "Details", "View log"]
    assert button_named(msg, "Reconnect")["url"] == RECONNECT_URL


def test_a_card_waiting_for_reconnect_says_so_and_offers_reconnect_not_retry() -> None:
    msg = valid(error_message(entry(), tz=TZ, reconnect_url=RECONNECT_URL, waiting="reconnect"))
    scannable(msg)
    assert lines(msg)[-1] == (":hourglass_flowing_sand: *Waiting for Reconnect:* the connection's authentication "
                              f"expired · Push · attempt 1 · since {AT_T0}")
    assert buttons(msg) == ["Reconnect", "Details", "View log"]
    reconnect = button_named(msg, "Reconnect")
    assert (reconnect["action_id"], reconnect["value"], reconnect["url"]) == (ids.RECONNECT, "7", RECONNECT_URL)
    assert msg["text"].startswith("Waiting for Reconnect: Error: Duplicate record")
    # the connection restored: the same entry draws its own fixes again
    assert buttons(valid(error_message(entry(), tz=TZ))) == ["Retry", "Details", "View log"]


def test_a_refused_click_is_named_on_the_card() -> None:
    at = dt.datetime(2026, 12, 7, 16, 2, tzinfo=dt.UTC)
    notice = click_notice("Retry", "Mia Member", at, "it needs Owner or Admin permissions. Ask a workspace Owner "
                          "or Admin to click Retry.", tz=TZ)
    msg = valid(error_message(entry(), tz=TZ, notice=notice))
    scannable(msg)
    assert (f":no_entry: Retry by Mia Member at <!date^{int(at.timestamp())}^{{time}}|Dec 7, 2026 11:02 AM EST> "
            "was refused: it needs Owner or Admin permissions. Ask a workspace Owner or Admin to click Retry.") \
        in lines(msg)
    assert buttons(msg) == ["Retry", "Details", "View log"]  # the fixes stay for whoever may use them


def test_contact_support_and_the_persist_note_come_after_repeated_attempts_only() -> None:
    first = valid(error_message(entry(kind="unknown", details="500 SystemFault 10000"), tz=TZ))
    assert "Contact support" not in buttons(first)
    again = valid(error_message(entry(kind="unknown", attempt=3), tz=TZ))
    assert buttons(again) == ["Retry", "Details", "Contact support", "View log"]
    assert visible(again).count("contact JobsiteOn support") == 1  # the unknown kind's own fix says it once
    dup = valid(error_message(entry(attempt=3), tz=TZ))
    assert "If an error persists" not in visible(dup) and "Contact support" in buttons(dup)


def test_retrying_then_synced_keeps_what_it_was_who_fixed_it_and_how_long_it_took() -> None:
    retrying = valid(error_message(entry(), tz=TZ, retrying_by="Dana Reyes"))
    assert lines(retrying) == [":arrows_counterclockwise: *Retrying…* · Invoice INV-1042 → QuickBooks — was: "
                               "Duplicate record", "Started by Dana Reyes · attempt 2"]
    synced = entry(id=102, status="synced", kind=None, details=None, attempt=2, actor="Dana Reyes",
                   resolved_at=T0 + dt.timedelta(hours=2), resolved_by="Dana Reyes")
    done = valid(error_message(synced, tz=TZ, was_kind="duplicate", first_error_at=T0))
    assert lines(done) == [
        ":white_check_mark: *Synced* · Invoice INV-1042 — was: Duplicate record",
        "[View log]",
        "Fixed by Dana Reyes · 2 h after the first error · "
        "<!date^1796054700^{date_short_pretty} at {time}|Nov 30, 2026 11:05 AM EST>",
    ]
    assert done["text"] == "Synced: Invoice INV-1042 by Dana Reyes"
    assert "<@" not in json.dumps(done)  # named, never mentioned
    locked = entry(kind="locked", resolved_at=T0 + dt.timedelta(minutes=5), resolved_by="Sam Lee")
    resolved = valid(error_message(locked, tz=TZ, first_error_at=T0))
    assert lines(resolved)[0] == ":white_check_mark: *Marked resolved* · Invoice INV-1042 — was: Transaction deposited"
    assert lines(resolved)[-1].startswith("Marked resolved by Sam Lee · 5 min after the first error · <!date^")


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
def test_every_kinds_card_is_scannable_and_its_details_hold_the_rest(kind: Kind) -> None:
    info = KINDS[kind]
    e = entry(kind=kind.value, status=info.status, field="IncomeAccountRef", entity="item", attempt=4,
              details="6240: Duplicate Name Exists Error.\n" + "more details " * 300)
    msg = valid(error_message(e, tz=TZ, reconnect_url=RECONNECT_URL, found_existing="Acme"))
    scannable(msg)
    assert "Details" in buttons(msg)
    view = valid_view(details_modal(e, tz=TZ, attempts=4, found_existing="Acme"), "modal")
    seen = visible(view)
    for needed in (info.cause, info.fix, "Income account (`IncomeAccountRef`)", "Details from QuickBooks",
                   "Sync log entry 101", "intuit_tid 1-6789-abc", "Item INV-1042 (JobsiteOn #42)", "*Attempts*\n4"):
        assert needed in seen, needed
    assert seen.count("contact JobsiteOn support") == 1


def test_details_modal_reads_like_the_message() -> None:
    view = valid_view(details_modal(entry(), tz=TZ, found_existing="Acme Builders LLC (Customer 58)"), "modal")
    assert view["title"]["text"] == "Error details" and view["callback_id"] == ids.DETAILS_VIEW
    seen = visible(view)
    assert ":red_circle: *Duplicate record* · Invoice INV-1042" in seen
    assert "*Found in QuickBooks:* Acme Builders LLC (Customer 58)" in seen
    assert "If an error persists after retrying, contact JobsiteOn support with the error timestamp" in seen
    assert "Sync log entry 101 · codes 6240, HTTP 400 · intuit_tid 1-6789-abc" in seen
    assert "Nov 30, 2026 9:05 AM EST" in seen
    assert "6240: Duplicate Name Exists Error." in seen


def test_a_payment_whose_invoice_was_deleted_leads_to_the_invoices_card() -> None:
    link = "https://sandbox.slack.com/archives/C0000000001/p1796639800609829"
    e = entry(entity="payment", record_id=5, record_label="Payment $250.00 on Nov 20", kind="not_found",
              codes=None, field="LinkedTxn", details="The invoice 'JS-1003' that this record references was deleted "
              "in QuickBooks. Re-create or unlink the invoice first; this record syncs after it.",
              data={"depends_on": {"entity": "invoice", "record_id": 3, "label": "JS-1003", "deleted": True}})
    msg = valid(error_message(e, tz=TZ, related=("Invoice JS-1003", link)))
    scannable(msg)
    assert lines(msg) == [
        ":red_circle: *Record not found* · Payment $250.00 on Nov 20 → QuickBooks",
        "The invoice 'JS-1003' that this record references was deleted in QuickBooks. Re-create or unlink the "
        "invoice first; this record syncs after it.",
        "[Fix Invoice JS-1003 first] | [Retry] | [Details] | [View log]",
        f"Push · attempt 1 · since {AT_T0}",
    ]
    assert button_named(msg, "Fix Invoice JS-1003 first")["url"] == link  # the invoice's own card and its fix
    assert "Re-create in QuickBooks" not in buttons(msg) and "Unlink" not in buttons(msg)
    # the invoice has no card (yet): the sentence says what to do, Retry stays
    assert buttons(valid(error_message(e, tz=TZ, related=("Invoice JS-1003", None)))) == ["Retry", "Details",
                                                                                         "View log"]


def test_a_payment_is_named_by_amount_and_date() -> None:
    from sync.models import Payment

    assert Payment(id=1, amount_cents=25000, paid_on=dt.date(2026, 11, 20)).label == "Payment $250.00 on Nov 20"
    assert Payment(id=2, amount_cents=123456789, paid_on=dt.date(2026, 1, 5)).label == "Payment $1,234,567.89 on Jan 5"
