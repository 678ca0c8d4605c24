"""Issue 14, found by trying to break it.
the flood digest's own post whose answer is lost (Slack made the post; the answer never came).
README: "At most one message per notification topic (a record, an incident, a digest, ...)... a post whose
outcome is unknown ... is looked for by its metadata and adopted, not made again"."""
from __future__ import annotations

from tests.conftest import QBO, Stack
from tests.test_notifier_faults import open_records, top_level
from tests.test_slack_flows import deliver_all, pending


def test_a_digest_whose_post_answer_is_lost_is_one_message(stack: Stack, qbo: QBO) -> None:
    notifier = stack.rt.notifier
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    deliver_all(stack)
    notifier.flood_threshold = len(top_level(stack))  # every new record error folds into the digest
    stack.add_duplicates(qbo, [f"Flood client {i:02d}" for i in range(6)])
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    before = len(stack.slack.standin.calls("chat.postMessage"))
    # every post of the pass (thread lines, the digest) is made and its answer lost
    stack.slack.standin.inject_fault("chat.postMessage", 10, after=True)
    notifier.deliver()
    stack.slack.standin.clear_faults()
    posts = stack.slack.standin.calls("chat.postMessage")[before:]
    print("this pass's posts:", [(c.ok, c.error, str(c.params.get("text"))[:60]) for c in posts])
    deliver_all(stack)
    digests = [m for m in top_level(stack) if "sync errors since" in m["text"]]
    print("digests:", [d["text"][:80] for d in digests], "open:", open_records(stack), "pending:", pending(stack))
    assert len(digests) == 1, [d["text"][:80] for d in digests]
    assert pending(stack) == 0
