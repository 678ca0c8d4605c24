"""What users read: answers, filters and messages in the help article's words (the fresh-clone tester's
findings), each asserted on what the Slack stand-in shows or what the DB holds."""

from __future__ import annotations

from typing import Any

from sandbox.slack import config as slack_cfg
from tests.conftest import QBO, Stack, wait_for

OWNER = slack_cfg.OWNER_USER_ID


def _command_seen(stack: Stack, text: str) -> list[dict[str, Any]]:
    """Type ``/sync-log text`` as the Owner, show the ack as Slack does, and return the Owner's ephemerals that
    this command produced, once its answer through the response_url has come."""
    before = len(stack.ephemerals(OWNER))
    result = stack.driver.slash_command("/sync-log", text)
    assert result.status_code == 200
    stack.slack.standin.apply_command_ack(stack.driver.team_id, slack_cfg.ERRORS_CHANNEL_ID, OWNER,
                                          result.response.text, result.response.headers.get("content-type"),
                                          result.response_url_id)
    return wait_for(lambda: [e for e in stack.ephemerals(OWNER)[before:] if "Syncing now" not in e["text"]]
                    and stack.ephemerals(OWNER)[before:])


def test_sync_now_says_why_it_stopped_and_replaces_syncing_now(stack: Stack, qbo: QBO) -> None:
    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    seen = _command_seen(stack, "sync-now")
    assert len(seen) == 1, seen  # the answer took the place of "Syncing now... the counts follow here."
    text = seen[0]["text"]
    assert "Syncing now" not in text
    assert "Stopped early: Authentication expired" in text or "did not run: Authentication expired" in text
    assert "Click Reconnect" in text and "the sync resumes automatically" in text
    assert " errors," not in text.replace("0 errors,", "") and "1 errors" not in text


def test_sync_now_stopped_by_the_rate_limit_says_when_it_resumes(stack: Stack, qbo: QBO) -> None:
    qbo.standin.exhaust_throttle(qbo.realm)
    seen = _command_seen(stack, "sync-now")
    assert len(seen) == 1, seen
    text = seen[0]["text"]
    assert "Rate limit exceeded" in text and "resumes by itself at " in text
    assert "1 errors" not in text and "1 warnings" not in text


def test_an_expired_connection_shows_no_token_countdown(stack: Stack, qbo: QBO) -> None:
    qbo.standin.expire_tokens(qbo.realm, refresh=True)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    status = str(stack.driver.slash_command("/sync-log", "status").response.json())
    assert "expired" in status and "expired — reconnect" in status and "expires in" not in status
    assert "until the token expires" not in status
    assert "Authentication expired: reconnect" in status  # the state in the Home card's words

    assert stack.driver.app_home_opened(OWNER).status_code == 200
    view = str(wait_for(lambda: stack.slack.standin.home_view(OWNER)))
    assert "Authentication expired: reconnect" in view
    assert "*Token*\\n:red_circle: expired — reconnect" in view and "expires in" not in view


def _log_texts(stack: Stack, words: str) -> str:
    return str(stack.driver.slash_command("/sync-log", words).response.json())


def test_sync_log_errors_lists_a_record_once_the_full_log_every_attempt(stack: Stack, qbo: QBO) -> None:
    from sqlalchemy import select

    from sync.log import page, parse_filter
    from sync.models import SyncLogEntry

    stack.add_duplicates(qbo, ["Zenith Roofing"])
    engine = stack.rt.services.engine
    engine.sync_now(stack.connection_id, "U_ADMIN")
    for _ in range(2):  # two more attempts, each failing again: three error entries of one record
        with stack.rt.services.sessions() as session:
            newest = session.scalars(select(SyncLogEntry).where(SyncLogEntry.record_label == "Zenith Roofing")
                                     .order_by(SyncLogEntry.id.desc())).first()
            assert newest is not None
        engine.retry_entry(newest.id, "U_ADMIN", account_id=stack.account_id)

    for words in ("errors", "open", "errors contact"):
        assert _log_texts(stack, words).count("*Contact Zenith Roofing*") == 1, words
    assert _log_texts(stack, "").count("*Contact Zenith Roofing*") == 3  # the full log: every attempt
    assert _log_texts(stack, "status:error").count("*Contact Zenith Roofing*") == 3
    # the CLI's `syncbot sync-log errors` reads the same page()
    with stack.rt.services.sessions() as session:
        listed = page(session, parse_filter(["errors"], account_id=stack.account_id), size=100).entries
        assert [e.record_label for e in listed].count("Zenith Roofing") == 1


def test_a_log_page_says_which_entries_of_how_many(stack: Stack, qbo: QBO) -> None:
    from sync.models import SyncLogEntry

    with stack.rt.services.sessions() as session, session.begin():
        for n in range(19):
            session.add(SyncLogEntry(account_id=stack.account_id, connection_id=stack.connection_id,
                                     entity="contact", record_label=f"Contact {n}", direction="push",
                                     status="info", details="Imported.", actor="system", attempt=1))
    first = stack.driver.slash_command("/sync-log", "").response.json()
    assert "entries 1\u201310 of 19" in first["text"] and "(10 entries)" not in first["text"]
    assert "entries 1\u201310 of 19, newest first" in str(first["blocks"])


def test_summary_answers_after_off_lowercase_zones_and_a_day_without_a_time(stack: Stack) -> None:
    def say(words: str) -> str:
        response = stack.driver.slash_command("/sync-log", words).response
        return str(response.json()["text"]) if response.text.startswith("{") else response.text

    off = say("summary off")
    assert "`/sync-log summary on`" in off and "to stop it" not in off and "summary off`" not in off
    shown = say("summary")
    assert "is off" in shown and "`/sync-log summary on`" in shown and "summary off`" not in shown

    chicago = say("summary tuesday 8:30 america/chicago")
    assert "every Tuesday at 08:30 (America/Chicago)" in chicago, chicago
    assert "I don't know the time zone" not in chicago
    from sync.models import Account

    with stack.rt.services.sessions() as session:
        account = session.get(Account, stack.account_id)
        assert account is not None and account.timezone == "America/Chicago"

    assert say("summary tuesday") == "Give a time too, as in `/sync-log summary tuesday 9:00`."


def _entry(**kw: Any) -> Any:
    import datetime as dt

    from sync.models import SyncLogEntry

    values: dict[str, Any] = dict(
        id=101, created_at=dt.datetime(2026, 11, 30, 14, 5, tzinfo=dt.UTC), account_id=1, connection_id=7,
        entity="invoice", record_id=42, record_label="INV-1042", direction="push", status="error",
        kind="unknown", details="9999: Something odd.", codes="9999", field=None, http_status=400,
        intuit_tid="1-6789-abc", attempt=2, actor="system")
    values.update(kw)
    return SyncLogEntry(**values)


def _seen(payload: dict[str, Any]) -> str:
    from tests.test_blocks import visible

    return visible(payload)


def test_unexpected_error_says_contact_support_once() -> None:
    from bot.blocks import error_message

    seen = _seen(error_message(_entry(attempt=3)))
    assert seen.count("contact JobsiteOn support") == 1, seen
    assert "Contact support" in seen  # the button stays


def test_support_names_a_batch_items_fault_code_not_http_200() -> None:
    from bot.blocks import support_modal

    batch = _seen(support_modal(_entry(kind="validation", codes="2020", http_status=200, field="Line")))
    assert "HTTP 200" not in batch and "fault code 2020 of a batch item" in batch
    single = _seen(support_modal(_entry(kind="duplicate", codes="6240", http_status=400)))
    assert "codes 6240, HTTP 400" in single


def test_diagnose_calls_a_fault_without_a_type_a_fault() -> None:
    from sync.diagnosis import diagnose, report

    body = b'{"Fault": {"Error": [{"Message": "Odd", "Detail": "Something odd", "code": "9999"}]}}'
    out = report(diagnose(400, body, "application/json"))
    assert out["codes"] == ["9999"]
    assert "no fault" not in out["details"] and "HTTP 400 Bad Request, a fault:" in out["details"], out["details"]


def test_an_unlinked_message_turns_synced_once_the_fresh_copy_is_made(stack: Stack, qbo: QBO) -> None:
    from bot.blocks import ids
    from tests.conftest import CHANNEL
    from tests.test_slack_flows import deliver_all
    from tests.test_slack_recreate import _deleted_in_quickbooks, _not_found_message

    _deleted_in_quickbooks(stack, qbo)
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # meets the deletion
    message = _not_found_message(stack)
    assert stack.driver.click(ids.UNLINK, channel_id=CHANNEL, message_ts=message["ts"]).status_code == 200

    def says(words: str) -> Any:
        deliver_all(stack)
        msg = stack.message(message["ts"])
        return msg if words in str(msg["blocks"]) else None

    wait_for(lambda: says("Unlinked: the next sync creates a fresh copy"))
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # the next sync creates it
    msg = wait_for(lambda: says("*Synced*"))
    assert "Unlinked" not in str(msg["blocks"])
    assert len([m for m in stack.messages() if "JS-1001" in m["text"]]) == 1, "the same message, not a new one"


def test_the_fill_in_modal_names_the_field_as_people_do_with_a_hint(stack: Stack, qbo: QBO) -> None:
    from bot.blocks import ids
    from tests.conftest import CHANNEL
    from tests.test_slack_flows import deliver_all

    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # Permit fee lacks its income account
    deliver_all(stack)
    message = next(m for m in stack.messages() if "Permit fee" in m["text"] and ids.FILL_FIELD in str(m["blocks"]))
    assert "Fill in Income account" in str(message["blocks"])
    result = stack.driver.click(ids.FILL_FIELD, channel_id=CHANNEL, message_ts=message["ts"])
    assert result.status_code == 200
    view = wait_for(lambda: [v for v in stack.slack.standin.open_views(OWNER) if "input" in str(v["blocks"])])[-1]
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["label"]["text"] == "Income account"
    assert field["hint"]["text"] == "The QuickBooks income account the item's sales go to."
    shown = str(view["blocks"])
    assert "Fill in the missing field: choose one of QuickBooks' income accounts" in shown
    assert "IncomeAccountRef" in shown


def test_control_and_bidi_characters_typed_are_not_echoed(stack: Stack) -> None:
    import json

    def answer(words: str) -> str:
        response = stack.driver.slash_command("/sync-log", words).response
        if not response.text.startswith("{"):
            return response.text
        return json.dumps(response.json(), ensure_ascii=False)  # the characters themselves, not \u escapes

    for typed in ("summary some\u202eday\x07 9:00", "summary monday 9:00 Mars/\u2066Olympus\x1b",
                  "retry JS-\u202d99\x00", "bogus\x01\u2067word", '"Ac\x00me\u202e"'):
        seen = answer(typed)
        assert "I don't know" in seen or "No open error" in seen or "No entries match" in seen, (typed, seen)
        for ch in ("\u202e", "\u202d", "\u2066", "\u2067", "\x07", "\x1b", "\x00", "\x01"):
            assert ch not in seen, (typed, ch, seen)
    assert "`someday`" in answer("summary some\u202eday 9:00")  # shown as typed, without the override
