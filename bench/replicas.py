"""Replicas: delivery throughput of 1 against 3 `syncbot serve --role worker` processes on one PostgreSQL.

    python -m bench.replicas [--runs 3] [--accounts 50] [--per-account 8] [--replicas 1,3] [--quick]

What it measures: how fast a burst of sync errors in many channels reaches Slack when one worker delivers it and
when three do together (every replica delivers on PostgreSQL: each topic is claimed under an advisory lock, each
channel's pace of about one post a second is a row in the database, `bot.delivery_state`).

How, for each replica count N and each run, on a fresh database of its own (``benchdb_replicas_<hex>``, created
next to ``--pg-url`` and dropped afterwards) and a fresh Slack stand-in:

1. the Slack stand-in with Slack's rate limits (chat.postMessage about 1 a second per channel, burst 5; chat.update
   Tier 3), served in a thread of the bench's process as bench/burst.py serves it;
2. ``--accounts`` accounts, each bound to a workspace row and a channel of its own (as
   tests/test_replicas.py sets them up), each with a connected QuickBooks connection;
3. N real ``syncbot -v serve --role worker`` processes, started on the empty outbox; the bench waits until each
   says it is running;
4. the burst: ``--per-account`` duplicate-name errors per account (QuickBooks 6240), written as the engine writes
   them (the entry and its outbox Notification, one transaction). The clock starts at its commit. Keep
   ``--per-account`` under the notifier's flood threshold (10 record messages per account in 5 minutes), or the
   rest fold into a digest and the figures stop being one message per error;
5. wait until no Notification is left undelivered, then stop the workers (SIGTERM) and read their logs.

Figures per run: ``seconds_to_drain`` (burst commit to outbox empty), ``messages_per_second`` (messages posted /
seconds_to_drain), ``throttled_429`` (every 429 the stand-in answered), ``duplicate_posts`` (top-level messages
beyond one per topic, by the message metadata naming the topic; aim 0), ``messages_per_channel`` (min, max and the
channels off ``--per-account``; aim: exactly that in each), ``posted_by_process`` (``event=slack_posted`` lines in
each worker's ``-v`` log), ``cpu_seconds_by_process`` (each worker's CPU time while the burst drained, from
/proc), ``rescheduled_by_process`` (``event=notification_rescheduled`` lines). ``pace_floor_seconds`` is
``per_account - 1``: at one post a second no channel can take its messages faster, so no replica count can drain
in less. Per replica count: the medians; overall: the ratio
of the median throughputs, N=3 over N=1.

Results go to ``bench/results/replicas.json`` (``--quick``: ``replicas.quick.json``) and a table is printed.
``--quick``: 10 accounts x 4 errors, one run per replica count, about half a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.retry_all import code_version

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/benchdb"
SIGNING_SECRET = "bench-signing-secret"
#: The notifier's flood threshold (bot.notifier.Notifier's default): more record messages than this per account
#: within 5 minutes fold into a digest.
FLOOD_THRESHOLD = 10
DETAILS = ("HTTP 400 ValidationFault: Duplicate Name Exists Error (code 6240): The name supplied already exists. "
           ": Another customer, vendor or employee is already using this name. Please use a different name.")


# ---------------------------------------------------------------------------------------------- figures (pure)


def duplicate_posts(topics_by_channel: dict[str, list[str | None]]) -> int:
    """Top-level messages beyond one per (channel, topic); a message without a topic counts as its own."""
    extra = 0
    for topics in topics_by_channel.values():
        counts = Counter(t for t in topics if t is not None)
        extra += sum(n - 1 for n in counts.values())
    return extra


def per_channel(counts: dict[str, int], expected: int) -> dict[str, Any]:
    """min and max messages per channel, and the channels holding other than ``expected``."""
    values = list(counts.values()) or [0]
    return {"min": min(values), "max": max(values), "expected": expected,
            "channels_off": {c: n for c, n in sorted(counts.items()) if n != expected}}


def posted_by_process(logs: Sequence[str]) -> list[int]:
    """How many messages each process posted: its ``event=slack_posted`` log lines."""
    return [log.count("event=slack_posted") for log in logs]


def run_figures(*, replicas: int, messages_expected: int, seconds_to_drain: float,
                topics_by_channel: dict[str, list[str | None]], calls: Sequence[tuple[str, int, bool]],
                logs: Sequence[str], per_account: int, notifications_left: int) -> dict[str, Any]:
    """One run's figures. ``calls``: (method, HTTP status, ok) of every call the stand-in answered."""
    posted = sum(len(t) for t in topics_by_channel.values())
    by_method = Counter(m for m, _, _ in calls)
    by_process = posted_by_process(logs)
    chan = per_channel({c: len(t) for c, t in topics_by_channel.items()}, per_account)
    dups = duplicate_posts(topics_by_channel)
    return {
        "replicas": replicas, "messages_expected": messages_expected, "messages_posted": posted,
        "seconds_to_drain": round(seconds_to_drain, 3),
        "messages_per_second": round(posted / seconds_to_drain, 2) if seconds_to_drain > 0 else None,
        "throttled_429": sum(1 for _, status, _ in calls if status == 429),
        "slack_calls_by_method": dict(sorted(by_method.items())),
        "duplicate_posts": dups, "messages_per_channel": chan,
        "posted_by_process": by_process, "notifications_left": notifications_left,
        "ok": (dups == 0 and not chan["channels_off"] and notifications_left == 0 and posted == messages_expected
               and sum(by_process) == posted),
    }


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians per replica count and the throughput ratio of the largest count over 1 (None without both)."""
    by_n: dict[int, list[dict[str, Any]]] = {}
    for r in runs:
        by_n.setdefault(r["replicas"], []).append(r)
    medians: dict[str, dict[str, Any]] = {}
    for n, rs in sorted(by_n.items()):
        rates = [r["messages_per_second"] for r in rs if r["messages_per_second"] is not None]
        medians[str(n)] = {
            "runs": len(rs),
            "seconds_to_drain": round(statistics.median(r["seconds_to_drain"] for r in rs), 3),
            "messages_per_second": round(statistics.median(rates), 2) if rates else None,
            "throttled_429": statistics.median(r["throttled_429"] for r in rs),
            "duplicate_posts_total": sum(r["duplicate_posts"] for r in rs),
            "all_ok": all(r["ok"] for r in rs),
        }
    return with_ratio(medians, "messages_per_second")


def machine() -> dict[str, Any]:
    """The machine a bench ran on, with its load average as the bench ends: read it to know whether other work
    shared the cores (a load average near the bench's own process count is a quiet machine)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_end": [round(x, 2) for x in load] if load else None}


def with_ratio(medians: dict[str, dict[str, Any]], rate: str) -> dict[str, Any]:
    """``medians`` (by replica count) with the throughput ratio of the most replicas to one, by the ``rate``
    figure (None when either is missing)."""
    ratio, top_n = None, max((int(n) for n in medians), default=1)
    if "1" in medians and len(medians) > 1:
        top, one = medians[str(top_n)][rate], medians["1"][rate]
        if top and one:
            ratio = round(top / one, 3)
    return {"medians": medians, "throughput_ratio": ratio,
            "throughput_ratio_of": f"{top_n} vs 1" if ratio is not None else None}


# ---------------------------------------------------------------------------------------------- one run


@contextlib.contextmanager
def fresh_database(pg_url: str, tag: str = "replicas") -> Iterator[str]:
    """An empty database ``<pg_url's database>_<tag>_<hex>`` beside it (dropped afterwards, connections and all):
    its URL. Used by the benches and by tests/test_replicas.py."""
    import psycopg

    base, _, dbname = pg_url.rpartition("/")
    name = f"{dbname}_{tag}_{uuid.uuid4().hex[:8]}"
    dsn = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _setup(url: str, standin: Any, accounts: int) -> list[tuple[int, int, str]]:
    """Accounts each with a workspace row, a channel of its own in the stand-in and a connection:
    [(account id, connection id, channel)]."""
    from sqlalchemy.orm import sessionmaker

    from bot.models import Workspace
    from sandbox.slack import config as slack_cfg
    from sync import db
    from sync.models import Account, Connection, ConnectionStatus

    db.upgrade(url)
    engine = db.make_engine(url)
    out: list[tuple[int, int, str]] = []
    try:
        with sessionmaker(engine)() as session, session.begin():
            for n in range(accounts):
                channel = f"CREPL{n:04d}"
                standin.add_channel(slack_cfg.DEFAULT_TEAM_ID, channel, f"syncs-{n}", bot_member=True,
                                    members=[slack_cfg.OWNER_USER_ID])
                account = Account(name=f"Replica Builders {n}", timezone="America/Chicago")
                session.add(account)
                session.flush()
                session.add(Workspace(team_id=f"TREPL{n:04d}", account_id=account.id, channel_id=channel))
                conn = Connection(account_id=account.id, realm_id=f"9130REPL{n:04d}",
                                  status=ConnectionStatus.CONNECTED.value)
                session.add(conn)
                session.flush()
                out.append((account.id, conn.id, channel))
    finally:
        engine.dispose()
    return out


def _burst(url: str, targets: list[tuple[int, int, str]], per_account: int) -> int:
    """``per_account`` duplicate-name errors per account, each entry with its outbox row, in one transaction."""
    from sqlalchemy.orm import sessionmaker

    from sync import db
    from sync.engine import record_topic
    from sync.models import Notification, SyncLogEntry, utcnow

    engine = db.make_engine(url)
    written = 0
    try:
        with sessionmaker(engine)() as session, session.begin():
            for n, (account_id, connection_id, _) in enumerate(targets):
                for record_id in range(1, per_account + 1):
                    entry = SyncLogEntry(account_id=account_id, connection_id=connection_id, entity="contact",
                                         record_id=record_id, record_label=f"Client {n}-{record_id}",
                                         direction="push", status="error", kind="duplicate", details=DETAILS,
                                         codes="6240", http_status=400, attempt=1, actor="bench",
                                         created_at=utcnow())
                    session.add(entry)
                    session.flush()
                    session.add(Notification(account_id=account_id, connection_id=connection_id,
                                             topic=record_topic(connection_id, "contact", record_id),
                                             event="error", entry_id=entry.id, created_at=utcnow()))
                    written += 1
    finally:
        engine.dispose()
    return written


def _worker(url: str, api_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    from cryptography.fernet import Fernet

    from sandbox.serve import free_port
    from sandbox.slack import config as slack_cfg

    env = {**os.environ, "DATABASE_URL": url, "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
           "SLACK_API_URL": api_url, "SLACK_BOT_TOKEN": slack_cfg.DEFAULT_BOT_TOKEN,
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, "QBO_API_URL": "http://127.0.0.1:9", "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "-v", "serve",
                                 "--host", "127.0.0.1", "--port", str(free_port()), "--role", "worker"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def cpu_seconds(pid: int) -> float | None:
    """A process's CPU time so far (user + system, all threads) from /proc/<pid>/stat; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _pending(url: str) -> Any:
    """A function counting undelivered notifications, and the engine to dispose afterwards."""
    from sqlalchemy import func, select

    from sync import db
    from sync.models import Notification

    engine = db.make_engine(url)

    def pending() -> int:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Notification).where(
                Notification.delivered_at.is_(None))) or 0)

    return pending, engine


def one_run(pg_url: str, replicas: int, accounts: int, per_account: int, timeout: float) -> dict[str, Any]:
    from sandbox.slack import serve_standin

    slack = serve_standin()  # Slack's rate limits are on by default
    tmp = tempfile.TemporaryDirectory(prefix="syncbot-replicas-")
    procs: list[subprocess.Popen[bytes]] = []
    logs = [Path(tmp.name) / f"worker{i}.log" for i in range(replicas)]
    try:
        with fresh_database(pg_url) as url:
            targets = _setup(url, slack.standin, accounts)
            launched = time.monotonic()
            procs = [_worker(url, slack.api_url, path) for path in logs]
            deadline = launched + 120
            while not all("running as worker" in p.read_text(errors="replace") for p in logs):
                if any(proc.poll() is not None for proc in procs) or time.monotonic() > deadline:
                    raise RuntimeError("a worker did not start: " + " | ".join(
                        p.read_text(errors="replace")[-2000:] for p in logs))
                time.sleep(0.05)
            ready = time.monotonic() - launched
            slack.standin.clear_calls()
            pending, engine = _pending(url)
            try:
                written = _burst(url, targets, per_account)
                t0 = time.monotonic()
                cpu0 = [cpu_seconds(proc.pid) for proc in procs]
                left = pending()
                while left and time.monotonic() - t0 < timeout:
                    time.sleep(0.05)
                    left = pending()
                drained = time.monotonic() - t0
                cpu1 = [cpu_seconds(proc.pid) for proc in procs]
            finally:
                engine.dispose()
                codes = [_stop(proc) for proc in procs]
            texts = [p.read_text(errors="replace") for p in logs]
            topics_by_channel: dict[str, list[str | None]] = {}
            for _, _, channel in targets:
                topics_by_channel[channel] = [
                    ((m.metadata or {}).get("event_payload") or {}).get("topic")
                    for m in slack.standin.messages(channel)]
            calls = [(c.method, c.status, c.ok) for c in slack.standin.calls()]
            figures = run_figures(replicas=replicas, messages_expected=written, seconds_to_drain=drained,
                                  topics_by_channel=topics_by_channel, calls=calls, logs=texts,
                                  per_account=per_account, notifications_left=left)
            figures["seconds_launch_to_ready"] = round(ready, 2)
            figures["worker_exit_codes"] = codes
            figures["cpu_seconds_by_process"] = [round(b - a, 2) if a is not None and b is not None else None
                                                 for a, b in zip(cpu0, cpu1, strict=True)]
            figures["rescheduled_by_process"] = [t.count("event=notification_rescheduled") for t in texts]
            figures["errors_in_logs"] = sum(t.count("ERROR") + t.count("Traceback") for t in texts)
            return figures
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        slack.stop()
        tmp.cleanup()


# ---------------------------------------------------------------------------------------------- report


def table(runs: Sequence[dict[str, Any]]) -> str:
    cols = ["N", "drain s", "msg/s", "429s", "dups", "per channel", "posted by process", "ok"]
    rows = [[str(r["replicas"]), f"{r['seconds_to_drain']:.2f}", str(r["messages_per_second"]),
             str(r["throttled_429"]), str(r["duplicate_posts"]),
             f"{r['messages_per_channel']['min']}..{r['messages_per_channel']['max']}",
             ",".join(str(n) for n in r["posted_by_process"]), str(r["ok"])] for r in runs]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=None, help="runs per replica count (default 3; quick 1)")
    parser.add_argument("--accounts", type=int, default=None, help="accounts, one channel each (default 50)")
    parser.add_argument("--per-account", type=int, default=None, help="errors per account (default 8)")
    parser.add_argument("--replicas", default="1,3", help="replica counts, comma separated (default 1,3)")
    parser.add_argument("--quick", action="store_true", help="10 accounts x 4 errors, 1 run each")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL),
                        help="a PostgreSQL URL; each run makes a database benchdb_replicas_<hex> beside it")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a run may take to drain")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    accounts = args.accounts or (10 if args.quick else 50)
    per_account = args.per_account or (4 if args.quick else 8)
    counts = [int(n) for n in args.replicas.split(",") if n.strip()]
    if per_account >= FLOOD_THRESHOLD:
        parser.error(f"--per-account must stay under the flood threshold ({FLOOD_THRESHOLD}), or errors fold "
                     "into a digest")
    output = args.output or RESULTS_DIR / ("replicas.quick.json" if args.quick else "replicas.json")

    results: list[dict[str, Any]] = []
    for run in range(1, runs + 1):
        for n in counts:  # interleaved, so a busier moment of the shared machine does not hit one count only
            figures = one_run(args.pg_url, n, accounts, per_account, args.timeout)
            figures["run"] = run
            results.append(figures)
            print(f"run {run} N={n}: {figures['seconds_to_drain']:.2f} s, {figures['messages_per_second']} msg/s, "
                  f"429s {figures['throttled_429']}, dups {figures['duplicate_posts']}, "
                  f"by process {figures['posted_by_process']}, ok {figures['ok']}", flush=True)
    summary = summarize(results)
    report = {
        "benchmark": "replicas",
        "config": {
            "accounts": accounts, "channels": accounts, "per_account": per_account,
            "messages": accounts * per_account, "replica_counts": counts, "runs": runs, "quick": args.quick,
            "pace_floor_seconds": per_account - 1,
            "notes": ("Slack stand-in in a thread of the bench's process with Slack's rate limits (chat.postMessage "
                      "~1/s per channel, burst 5; chat.update Tier 3); N real `syncbot -v serve --role worker` "
                      "processes on a fresh PostgreSQL database per run, started before the burst; notifier "
                      "defaults (post_interval 1.0 s, pass interval 2 s, pass limit 500, flood threshold 10); the "
                      "clock runs from the burst's commit to an empty outbox"),
            "machine": machine(), "code": code_version(),
        },
        **summary,
        "runs": results,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(results))
    print()
    for n, m in summary["medians"].items():
        print(f"N={n}: median {m['seconds_to_drain']} s, {m['messages_per_second']} msg/s, all ok {m['all_ok']}")
    print(f"throughput ratio ({summary['throughput_ratio_of']}): {summary['throughput_ratio']}")
    return 0 if all(r["ok"] and r["throttled_429"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
