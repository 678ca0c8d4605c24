"""Benchmark of a promise: Retry All killed with SIGKILL at random points, then run to the end, writes every record
to QuickBooks once and loses none.

    python -m bench.retry_all_kills [--invoices 5000] [--kills 5] [--database sqlite|postgresql|both]

For each database (a fresh SQLite file; PostgreSQL at ``--pg-url``, whose schema is dropped and made afresh):

1. the QuickBooks stand-in in a process of its own, 100 ms per request (so the kills land while batches are out:
   QuickBooks does the work and its answer never reaches the process that sent it);
2. N invoices that failed for real (their first push met QuickBooks' 500, as ``bench.retry_all`` makes them);
3. ``syncbot retry-all`` run as an operator runs it (a process), SIGKILLed at a random moment while it runs,
   ``--kills`` times;
4. then ``syncbot retry-all`` run until it exits 0 (at most 5 runs);
5. the figures, read from the stand-in's books and request log and from the database:
   - ``duplicates``: invoices written to QuickBooks more than once: more than one copy in the books, or a second
     create QuickBooks refused as a duplicate document number (6140);
   - ``lost``: invoices neither in QuickBooks nor with an open error (dropped without a word);
   - ``stuck``: attempts left pending ("Retrying…"), batches never settled, claims left behind;
   - ``unsynced``: invoices not linked to their copy at the end.
   Each must be 0. Results go to ``bench/results/retry_all_kills.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.retry_all import REALM, RESULTS_DIR, ROOT, StandIn, code_version, prepare, seed_failures

MINUTE_SECONDS = 1.0
METERING = "per_request"
LATENCY_SECONDS = 0.1


def _reset_postgres(url: str) -> None:
    from sqlalchemy import text

    from sync import db

    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def _cli_env(services: Any) -> dict[str, str]:
    s = services.settings
    return {**os.environ, "DATABASE_URL": s.database_url,
            "TOKEN_ENCRYPTION_KEYS": s.token_encryption_keys.get_secret_value(),
            "QBO_API_URL": s.qbo_api_url, "QBO_AUTH_URL": s.qbo_auth_url, "QBO_TOKEN_URL": s.qbo_token_url,
            "QBO_REVOKE_URL": s.qbo_revoke_url, "QBO_LIMIT_MINUTE_SECONDS": str(MINUTE_SECONDS),
            "QBO_BATCH_METERING": METERING, "QBO_TIMEOUT_SECONDS": "60"}


def _retry_all(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def figures(prep: Any, standin: StandIn, invoices: int) -> dict[str, Any]:
    """The four counts (see the module's docstring) and what they were read from."""
    from sqlalchemy import func, select

    from sync.models import Invoice, Link, PushBatch, RecordClaim, Status, SyncLogEntry

    books = Counter(str(i.get("DocNumber")) for i in standin._call(
        "GET", f"/_control/realms/{REALM}/entities/Invoice")["Invoice"])
    services = prep.services
    with services.sessions() as session:
        numbers = dict(session.execute(select(Invoice.id, Invoice.number).where(
            Invoice.account_id == prep.account_id)).all())
        linked = set(session.scalars(select(Link.record_id).where(
            Link.connection_id == prep.connection_id, Link.entity == "invoice", Link.remote_deleted.is_(False))))
        refused_as_duplicate = set(session.scalars(select(SyncLogEntry.record_id).where(
            SyncLogEntry.connection_id == prep.connection_id, SyncLogEntry.entity == "invoice",
            SyncLogEntry.codes.like("%6140%"))))
        pending = session.scalar(select(func.count()).select_from(SyncLogEntry).where(
            SyncLogEntry.status == Status.PENDING))
        open_batches = session.scalar(select(func.count()).select_from(PushBatch).where(
            PushBatch.settled_at.is_(None)))
        claims = session.scalar(select(func.count()).select_from(RecordClaim))
    open_errors = {e.record_id for e in services.engine.open_errors(prep.connection_id) if e.entity == "invoice"}
    twice = {rid for rid, number in numbers.items() if books.get(number, 0) > 1} | refused_as_duplicate
    lost = {rid for rid, number in numbers.items() if books.get(number, 0) == 0 and rid not in open_errors}
    return {"duplicates": len(twice), "lost": len(lost), "stuck": pending + open_batches + claims,
            "unsynced": invoices - len(linked & set(numbers)),
            "detail": {"in_books": sum(books.values()), "linked": len(linked), "open_errors": len(open_errors),
                       "pending_entries": pending, "unsettled_batches": open_batches, "claims_left": claims}}


def _requests(standin: StandIn) -> list[dict[str, Any]]:
    """The stand-in's log of its last 2,000 API requests."""
    log = standin._call("GET", f"/_control/realms/{REALM}/requests")
    return list(log["requests"] if isinstance(log, dict) else log)


def run(database: str, invoices: int, kills: int, pg_url: str, rng: random.Random) -> dict[str, Any]:
    standin = StandIn(MINUTE_SECONDS, METERING)
    workdir = Path(tempfile.mkdtemp(prefix="syncbot-kills-"))
    url = None
    if database == "postgresql":
        _reset_postgres(pg_url)
        url = pg_url
    try:
        prep = prepare(standin, workdir, MINUTE_SECONDS, METERING, invoices, database_url=url)
        seed_failures(prep, standin, invoices, MINUTE_SECONDS)
        standin._call("POST", "/_control/config", {"latency_seconds": LATENCY_SECONDS})
        env = _cli_env(prep.services)
        moments = []
        for _ in range(kills):
            proc = _retry_all(env)
            wait = rng.uniform(2.0, 12.0)  # start-up takes ~1.5 s; then batches go out
            deadline = time.monotonic() + wait
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                moments.append(round(wait, 2))
            proc.wait()
        standin._call("POST", "/_control/config", {"latency_seconds": 0.0})
        finishing = []
        for _ in range(5):
            started = time.monotonic()
            code = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"],
                                  env=env, cwd=ROOT, capture_output=True).returncode
            finishing.append({"exit": code, "seconds": round(time.monotonic() - started, 1)})
            if code == 0:
                break
        result = figures(prep, standin, invoices)
        result.update({"kills_at_seconds": moments, "finishing_runs": finishing,
                       "replayed_requests_in_last_2000": sum(1 for e in _requests(standin)
                                                             if e.get("outcome") == "replayed")})
        prep.services.close()
        return result
    finally:
        standin.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retry_all_kills", description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/syncbot_bench",
                        help="an empty PostgreSQL database of its own (its public schema is dropped)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the kill moments")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "retry_all_kills.json")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    rng = random.Random(seed)
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    results = {}
    for database in databases:
        print(f"[{database}] retry-all over {args.invoices} failed invoices, killed {args.kills} times ...",
              flush=True)
        results[database] = run(database, args.invoices, args.kills, args.pg_url, rng)
        r = results[database]
        print(f"[{database}]   duplicates {r['duplicates']}, lost {r['lost']}, stuck {r['stuck']}, "
              f"unsynced {r['unsynced']}; kills at {r['kills_at_seconds']} s", flush=True)
    report = {
        "benchmark": "retry_all_kills",
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {"invoices": args.invoices, "kills": args.kills, "seed": seed,
                   "standin": {"latency_seconds": LATENCY_SECONDS, "minute_seconds": MINUTE_SECONDS,
                               "batch_metering": METERING},
                   "code": code_version()},
        "aim": {"duplicates": 0, "lost": 0, "stuck": 0, "unsynced": 0},
        "aim_met": all(all(r[k] == 0 for k in ("duplicates", "lost", "stuck", "unsynced"))
                       for r in results.values()),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"aim (0 duplicates, lost, stuck, unsynced): {'met' if report['aim_met'] else 'NOT met'}; "
          f"results in {args.output}")
    return 0 if report["aim_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
