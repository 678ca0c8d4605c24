"""Burst: 10,000 sync errors over 10 seconds through the outbox and the notifier to the Slack stand-in.

What it measures (issue 3, "Benchmarks"): the Slack calls made (by method), the 429s Slack answered (aim: 0),
the seconds from the first error to the first message in the channel (aim: under 2), the seconds until the
outbox is empty, and that every entry is present in /sync-log.

How: a fresh SQLite database; an account with 10,000 contacts bound to the seeded Slack workspace through a
signed `/sync-log channel` command; syncbot's server and its notifier loop running as `syncbot serve` runs them
(`SlackRuntime.start_background`, the real 1-second pacing per channel, the background client with slack_sdk's
RateLimitErrorRetryHandler); the Slack stand-in with Slack's rate limits. A writer thread then records one
duplicate-name error (QuickBooks 6240, as the engine records it: the entry and its outbox notification in one
transaction, 30 records per commit like the engine's batch chunks) for each contact, paced evenly over
``--seconds``. Errors come from the writer rather than from pushes to the QuickBooks stand-in because QuickBooks'
own throttle (500 operations a minute per company) cannot produce 10,000 errors in 10 seconds: the subject here
is the Slack side.

Afterwards every entry id is looked up through `sync.log.page` with the `errors` filter (the query `/sync-log
errors` runs, keyset page by page), and one signed `/sync-log errors` command is sent.

    python -m bench.burst [--errors 10000] [--seconds 10]

Writes bench/results/burst.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "burst.json"
SIGNING_SECRET = "bench-signing-secret"
DETAILS = ("HTTP 400 ValidationFault: Duplicate Name Exists Error (code 6240): The name supplied already exists. "
           ": Another customer, vendor or employee is already using this name. Please use a different name.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--errors", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    from cryptography.fernet import Fernet
    from sqlalchemy import func, insert, select

    from bot.app import build_app
    from bot.config import Settings
    from bot.server import create_server
    from bot.services import build_services
    from bot.wiring import build_runtime
    from sandbox.serve import free_port, serve_in_thread
    from sandbox.slack import config as slack_cfg
    from sandbox.slack import serve_standin
    from sandbox.slack.driver import SlackDriver
    from sync.connections import ensure_account, ensure_connection
    from sync.engine import record_topic
    from sync.log import page, parse_filter
    from sync.models import Contact, Notification, SyncLogEntry, utcnow

    tmp = tempfile.TemporaryDirectory(prefix="syncbot-burst-")
    slack = serve_standin()
    channel = slack_cfg.ERRORS_CHANNEL_ID
    port = free_port()
    settings = Settings(_env_file=None, DATABASE_URL=f"sqlite:///{tmp.name}/burst.db",
                        TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(), SLACK_API_URL=slack.api_url,
                        SLACK_BOT_TOKEN=slack_cfg.DEFAULT_BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                        PUBLIC_URL=f"http://127.0.0.1:{port}", QBO_API_URL="http://127.0.0.1:9")
    services = build_services(settings)
    with services.sessions() as session, session.begin():
        account_id = ensure_account(session, "Burst Builders", "America/Chicago").id
        connection_id = ensure_connection(session, account_id).id
        session.execute(insert(Contact), [{"account_id": account_id, "display_name": f"Burst client {i:05d}"}
                                          for i in range(args.errors)])
        contact_ids = list(session.scalars(select(Contact.id).where(Contact.account_id == account_id)
                                           .order_by(Contact.id)))
    rt = build_runtime(services)
    server = serve_in_thread(create_server(rt, build_app(rt)), port=port)
    driver = SlackDriver(f"{server.url}/slack/events", SIGNING_SECRET, slack.standin)
    bound = driver.slash_command("/sync-log", f"channel <#{channel}|sync-errors>")
    assert bound.status_code == 200 and "Sync errors now go to" in bound.response.text, bound.response.text
    slack.standin.clear_calls()
    rt.start_background()

    written: list[int] = []
    first_commit: list[float] = []

    def writer() -> None:
        start = time.monotonic()
        chunk = 30
        for offset in range(0, len(contact_ids), chunk):
            due = start + args.seconds * offset / len(contact_ids)
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with services.sessions() as session, session.begin():
                for cid in contact_ids[offset:offset + chunk]:
                    entry = SyncLogEntry(account_id=account_id, connection_id=connection_id, entity="contact",
                                         record_id=cid, record_label=f"Burst client {cid:05d}", direction="push",
                                         status="error", kind="duplicate", details=DETAILS, codes="6240",
                                         http_status=400, attempt=1, actor="bench", created_at=utcnow())
                    session.add(entry)
                    session.flush()
                    session.add(Notification(account_id=account_id, connection_id=connection_id,
                                             topic=record_topic(connection_id, "contact", cid), event="error",
                                             entry_id=entry.id, created_at=utcnow()))
                    written.append(entry.id)
            if not first_commit:
                first_commit.append(time.monotonic())
            rt.notifier.wake()

    t0 = time.monotonic()
    thread = threading.Thread(target=writer, name="burst-writer")
    thread.start()

    first_message: list[float] = []

    def watch_first() -> None:
        while not first_message and time.monotonic() - t0 < args.drain_timeout:
            if slack.standin.messages(channel):
                first_message.append(time.monotonic())
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_first, name="burst-watch")
    watcher.start()
    thread.join()
    write_done = time.monotonic()

    def pending() -> int:
        with services.sessions() as session:
            return session.scalar(select(func.count()).select_from(Notification).where(
                Notification.delivered_at.is_(None))) or 0

    while pending() and time.monotonic() - t0 < args.drain_timeout:
        time.sleep(0.2)
    drained = time.monotonic()
    watcher.join()
    left = pending()

    # every entry in /sync-log: the query `/sync-log errors` runs, page by page (keyset, 100 a page)
    seen: set[int] = set()
    flt = parse_filter(["errors"], account_id=account_id)
    before: int | None = None
    with services.sessions() as session:
        while True:
            result = page(session, flt, before=before, size=100)
            if not result.entries:
                break
            seen.update(e.id for e in result.entries)
            before = min(e.id for e in result.entries)
    answer = driver.slash_command("/sync-log", "errors")
    calls = slack.standin.calls()
    by_method: dict[str, int] = {}
    for call in calls:
        by_method[call.method] = by_method.get(call.method, 0) + 1
    messages = slack.standin.messages(channel)
    digest = next((m for m in messages if "sync errors since" in m.text), None)
    results: dict[str, Any] = {
        "errors": args.errors, "write_seconds": round(write_done - t0, 2), "target_seconds": args.seconds,
        "slack_calls": len(calls), "slack_calls_by_method": by_method,
        "throttled_429": sum(1 for c in calls if c.status == 429),
        "seconds_to_first_message": round(first_message[0] - first_commit[0], 3) if first_message else None,
        "seconds_to_drain": round(drained - t0, 2), "notifications_left": left,
        "channel_messages": len(messages), "digest_text": digest.text if digest else None,
        "entries_written": len(written), "entries_in_sync_log": len(seen & set(written)),
        "every_entry_in_sync_log": set(written) <= seen and len(written) == args.errors,
        "sync_log_command_status": answer.status_code,
        "python": platform.python_version(), "platform": platform.platform(),
        "notes": "Slack stand-in with Slack's rate limits (chat.postMessage ~1/s per channel, burst 5; chat.update "
                 "Tier 3); notifier post_interval 1.0 s; flood threshold 10 record messages in 5 minutes; SQLite.",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'errors written':<28}{results['entries_written']:>10,} in {results['write_seconds']} s")
    print(f"{'Slack calls':<28}{results['slack_calls']:>10,}  {by_method}")
    print(f"{'429s received':<28}{results['throttled_429']:>10}")
    print(f"{'s to first message':<28}{results['seconds_to_first_message']!s:>10}")
    print(f"{'s until outbox empty':<28}{results['seconds_to_drain']:>10}  (left: {left})")
    print(f"{'channel messages':<28}{results['channel_messages']:>10}  digest: {results['digest_text']}")
    print(f"{'entries in /sync-log':<28}{results['entries_in_sync_log']:>10,}  all: "
          f"{results['every_entry_in_sync_log']}")
    driver.close()
    server.stop()
    rt.close()
    services.close()
    slack.stop()
    tmp.cleanup()
    ok = results["every_entry_in_sync_log"] and left == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
