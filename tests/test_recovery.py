"""A process killed during a Retry: the attempt stays `pending` in the database and the message says "Retrying…".
When syncbot starts again (`syncbot serve` and `syncbot demo` start the runtime's background work) and in the
scheduler's resume job, the abandoned attempt goes back to error, and the same message is drawn again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from bot.blocks import ids
from bot.scheduler import Jobs
from sandbox.slack import config as slack_cfg
from sync.models import RecordClaim, SyncLogEntry, utcnow
from tests.conftest import CHANNEL, QBO, Stack, wait_for
from tests.test_slack_flows import deliver_all

LONG_AGO = dt.timedelta(minutes=20)  # older than the claim lease (5 minutes)


def _duplicate_message(stack: Stack, qbo: QBO) -> tuple[dict[str, Any], dict[str, Any]]:
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    message = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    return message, existing


def _killed_during_retry(stack: Stack, message: dict[str, Any], age: dt.timedelta = LONG_AGO,
                         owner: str = "the-killed-process") -> SyncLogEntry:
    """What a process killed during a Retry click leaves behind: the message turned to "Retrying… (by …)", the
    record's claim, and the attempt's entry, pending, superseding the error it retries (written before the call
    to QuickBooks, with its requestid)."""
    when = utcnow() - age
    with stack.rt.services.sessions() as session, session.begin():
        error = session.scalars(select(SyncLogEntry).where(
            SyncLogEntry.record_label == "Acme Corp", SyncLogEntry.status == "error")).one()
        attempt = SyncLogEntry(
            created_at=when, account_id=error.account_id, connection_id=error.connection_id, entity=error.entity,
            record_id=error.record_id, record_label=error.record_label, direction="push", status="pending",
            request_id="a" * 32, payload_hash=error.payload_hash, attempt=error.attempt + 1, actor="Olivia Owner",
            retry_of_id=error.id)
        session.add(attempt)
        session.flush()
        error.superseded_by_id = attempt.id
        session.add(RecordClaim(connection_id=error.connection_id, entity=error.entity, record_id=error.record_id,
                                owner=owner, claimed_at=when))
        session.flush()
        session.expunge(attempt)
    retrying = stack.rt.notifier.render_record(attempt, "UTC", retrying_by="Olivia Owner")
    stack.rt.clients.for_team(slack_cfg.DEFAULT_TEAM_ID).chat_update(channel=CHANNEL, ts=message["ts"], **retrying)
    assert "Retrying" in str(stack.message(message["ts"])["blocks"])
    return attempt


def _entry(stack: Stack, entry_id: int) -> SyncLogEntry:
    return stack.rt.services.engine.get_entry(entry_id)


def _shows_the_error_again(stack: Stack, message: dict[str, Any]) -> dict[str, Any]:
    msg = stack.message(message["ts"])
    blocks = str(msg["blocks"])
    return msg if "Retrying" not in blocks and ids.RETRY in blocks else {}


@pytest.mark.parametrize("path", ["start", "resume_job"])
def test_an_attempt_left_pending_by_a_killed_process_returns_to_error_and_its_message_is_redrawn(
        stack: Stack, qbo: QBO, path: str) -> None:
    message, existing = _duplicate_message(stack, qbo)
    attempt = _killed_during_retry(stack, message)

    if path == "start":  # what `syncbot serve` and `syncbot demo` do as they start
        stack.rt.start_background()
    else:
        Jobs(stack.rt.services, on_queued=stack.rt.notifier.wake).resume(utcnow())
        deliver_all(stack)
    msg = wait_for(lambda: _shows_the_error_again(stack, message))

    entry = _entry(stack, attempt.id)
    # the error it retried again (a duplicate, with its fixes), saying it was interrupted
    assert (entry.status, entry.kind, entry.resolved_at, entry.superseded_by_id) == ("error", "duplicate", None, None)
    assert "interrupted" in (entry.details or "") and (entry.data or {}).get("interrupted") is True
    assert "Retrying" in str(msg["edits"][-1]["blocks"]), "the stand-in recorded the Retrying… update first"
    assert ids.ENTRY_DETAILS in str(msg["blocks"])  # the interruption's details are behind Details
    assert len([m for m in stack.messages() if "Acme Corp" in m["text"]]) == 1, "the same message, not a new one"

    # Retry works again (no "already retrying") and reuses the interrupted attempt's requestid: had its write
    # reached QuickBooks, it would not be done twice
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    stack.driver.click(ids.RETRY, channel_id=CHANNEL, message_ts=message["ts"])
    wait_for(lambda: "Synced" in str(stack.message(message["ts"])["blocks"]))
    with stack.rt.services.sessions() as session:
        retried = session.scalars(select(SyncLogEntry).where(SyncLogEntry.retry_of_id == attempt.id)).one()
    assert (retried.status, retried.request_id) == ("synced", attempt.request_id)


def test_a_recent_attempt_is_left_to_the_process_running_it(stack: Stack, qbo: QBO) -> None:
    message, _ = _duplicate_message(stack, qbo)
    attempt = _killed_during_retry(stack, message, age=dt.timedelta(seconds=5))
    assert stack.rt.services.engine.recover_pending() == 0
    assert _entry(stack, attempt.id).status == "pending"
    assert "Retrying" in str(stack.message(message["ts"])["blocks"])


def test_an_abandoned_attempt_that_a_later_one_overtook_is_handed_to_it(stack: Stack, qbo: QBO) -> None:
    message, existing = _duplicate_message(stack, qbo)
    attempt = _killed_during_retry(stack, message)
    with stack.rt.services.sessions() as session, session.begin():
        session.query(RecordClaim).delete()  # another worker took the stale claim over and synced the record
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)

    # the later attempt found the abandoned one pending under the record it had claimed: it settled it as
    # interrupted and took it over (recovery finds nothing left to do)
    assert stack.rt.services.engine.recover_pending() == 0
    deliver_all(stack)
    entry = _entry(stack, attempt.id)
    assert entry.superseded_by_id is not None and entry.resolved_at is not None, "not left as an open error"
    assert not [e for e in stack.rt.services.engine.open_errors(stack.connection_id) if e.record_label == "Acme Corp"]
    assert "Synced" in str(stack.message(message["ts"])["blocks"])


def test_a_recent_attempt_of_a_process_of_this_machine_that_is_gone_is_recovered_at_once(stack: Stack,
                                                                                         qbo: QBO) -> None:
    """A restart seconds after a kill: the claim names a process of this machine and boot that no longer runs, so
    the message does not wait out the claim lease on "Retrying…". A live process's claim is left alone."""
    import subprocess
    import sys

    from sync.engine import claim_owner

    def owner_of(pid: int) -> str:
        host, boot, _pid, rand = claim_owner().split("/")
        return f"{host}/{boot}/{pid}/{rand}"

    message, _ = _duplicate_message(stack, qbo)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = owner_of(alive.pid)
        attempt = _killed_during_retry(stack, message, age=dt.timedelta(seconds=5), owner=owner)
        assert stack.rt.services.engine.recover_pending() == 0, "its process still runs"
        assert _entry(stack, attempt.id).status == "pending"
    finally:
        alive.kill()
        alive.wait()
    with stack.rt.services.sessions() as session, session.begin():  # now that process is gone
        claim = session.scalars(select(RecordClaim)).one()
        assert claim.owner == owner
    assert stack.rt.services.engine.recover_pending() == 1
    deliver_all(stack)
    assert _entry(stack, attempt.id).status == "error"
    wait_for(lambda: _shows_the_error_again(stack, message))
    with stack.rt.services.sessions() as session:
        assert session.scalars(select(RecordClaim)).all() == [], "the dead process's claim is gone too"
