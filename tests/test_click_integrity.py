"""A click acts on the record of the card it was made on, and one fix of a record at a time.

- A button whose value was changed to another entry's id (a signed request, the value tampered) names a record
  whose card is elsewhere: it is refused, nothing is attempted, and the card it was clicked on stays as it was.
- Two different fixes of one record clicked at once (Mark resolved while Re-create runs, Unlink while it runs)
  never both act: the second is refused while the first holds the record's claim.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.blocks import ids
from sandbox.slack import config as slack_cfg
from sync.engine import InProgress
from sync.models import SyncLogEntry
from tests.conftest import CHANNEL, QBO, Connected, Stack, wait_for


def _attempts(stack: Stack) -> int:
    with stack.rt.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(SyncLogEntry)) or 0


def _retry_button(message: dict[str, Any]) -> dict[str, Any]:
    return next(el for b in message["blocks"] if b["type"] == "actions" for el in b["elements"]
                if el["action_id"] == ids.RETRY)


def test_a_retry_whose_value_names_another_records_entry_is_refused_and_changes_no_card(
        stack: Stack, qbo: QBO) -> None:
    stack.add_duplicates(qbo, ["Acme Corp", "Beta Builders"])
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    beta = next(m for m in stack.messages() if "Beta Builders" in m["text"])
    before = _attempts(stack)
    # Acme's card, Acme's Retry button, Beta's entry id in its value
    clicked = stack.driver.click(ids.RETRY, channel_id=CHANNEL, message_ts=acme["ts"],
                                 value=_retry_button(beta)["value"])
    assert clicked.status_code == 200
    stack.rt.jobs.wait_idle()
    refusal = wait_for(lambda: [e for e in stack.ephemerals(slack_cfg.OWNER_USER_ID) if "not valid" in e["text"]])
    assert "nothing was changed" in refusal[-1]["text"]
    assert _attempts(stack) == before  # no attempt on either record
    assert stack.message(acme["ts"])["blocks"] == acme["blocks"]  # Acme's card is still Acme's, unchanged
    assert "Beta Builders" not in str(stack.message(acme["ts"])["blocks"])


def test_two_fixes_of_one_record_at_once_never_both_act(services: Any, qbo: QBO, connected: Connected) -> None:
    """Re-create runs while QuickBooks is slow; Unlink and Mark resolved of the same record meanwhile are refused
    (InProgress) and change nothing; Re-create ends with the record synced to one fresh copy."""
    from sync.models import Invoice, Link, RecordClaim
    from tests.test_engine import open_entry

    engine = services.engine
    engine.sync_now(connected.connection_id, "U_ADMIN")
    [invoice] = qbo.standin.entities(qbo.realm, "Invoice")
    qbo.standin.delete_entity(qbo.realm, "Invoice", invoice["Id"])
    with services.sessions() as session, session.begin():  # a change in JobsiteOn makes the next sync update it
        session.scalars(select(Invoice)).one().due_date = None
    engine.sync_now(connected.connection_id, "U_ADMIN")
    entry = open_entry(services, "invoice", "JS-1001")
    assert entry.kind == "not_found"
    qbo.standin.configure(latency_seconds=1.5)
    outcome: list[Any] = []
    recreate = threading.Thread(target=lambda: outcome.append(engine.recreate(entry.id, "U_ADMIN")))
    recreate.start()

    def claimed() -> bool:
        with services.sessions() as session:
            return bool(session.scalar(select(func.count()).select_from(RecordClaim)))
    wait_for(claimed)
    with pytest.raises(InProgress):
        engine.unlink(entry.id, "U_OTHER")
    with pytest.raises(InProgress):
        engine.mark_resolved(entry.id, "U_OTHER")
    recreate.join(30)
    qbo.standin.configure(latency_seconds=0.0)
    assert outcome and outcome[0].status == "synced"
    [fresh] = qbo.standin.entities(qbo.realm, "Invoice")
    with services.sessions() as session:
        link = session.scalars(select(Link).where(Link.entity == "invoice")).one()
        assert link.remote_id == fresh["Id"] and not link.remote_deleted  # not unlinked behind Re-create's back
        resolved = session.get(SyncLogEntry, entry.id)
        assert resolved is not None and resolved.resolved_by != "U_OTHER"  # resolved by the fix, not by hand
