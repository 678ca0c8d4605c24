"""Replicas, Retry All: 10 companies' Retry All run by 1 against 3 `syncbot serve --role worker` processes.

    python -m bench.replicas_retry_all [--runs 3] [--companies 10] [--invoices 300] [--replicas 1,3] [--quick]

What it measures: how long one Retry All per company takes to finish for all of ``--companies`` companies when
one worker process runs the jobs and when three do (every replica claims jobs on PostgreSQL with SKIP LOCKED; one
Retry All per company at a time under an advisory lock; each company's QuickBooks budget is its own realm's, kept
in the database, `bot.qbo_spend`, so replicas share it).

How, for each replica count N and each run, on a fresh database of its own (``<pg database>_rra_<hex>``, created
beside ``--pg-url`` and dropped afterwards), a fresh QuickBooks stand-in and a fresh Slack stand-in:

1. the QuickBooks stand-in in a process of its own (bench/retry_all.py's ``StandIn``) with QuickBooks' limits per
   realm (500 requests/minute metered per batch item, 40 batches/minute, 10 concurrent) and the minute shrunk to
   ``--minute-seconds`` (3 s); syncbot gets the same ``QBO_LIMIT_MINUTE_SECONDS``; one realm per company
   (``POST /_control/realms``). The Slack stand-in with Slack's rate limits, in a thread of the bench's process;
2. per company: an account bound to a Slack workspace row and a channel of its own, connected to its realm through
   the real OAuth flow (consent page, code exchange), its contacts and items synced, then ``--invoices`` invoices
   made to fail for real (their first push through batches answered 500 InternalServerError, QBO-39, by the
   stand-in's fail_next on the batch path; the engine writes the open error entries). The spend of that seeding is
   forgotten and the bench waits for the stand-in's windows to empty;
3. N real ``syncbot -v serve --role worker`` processes (JOB_WORKERS 4 each) start; the bench waits until each says
   it is running;
4. one ``retry_all`` job per company is stored as a signed Retry All confirmation stores it
   (``bot.operations.stored.enqueue``'s payload: team_id, user, the reply's route sealed with TOKEN_ENCRYPTION_KEYS,
   connection_id; the reply answers by direct message), through ``JobQueue.enqueue``. The clock starts as the
   first is stored;
5. wait until every job is finished, stop the workers (SIGTERM), read the stand-in's counters and books per realm,
   the database and the workers' logs.

Figures per run: ``seconds`` (first job stored to last job finished), ``invoices_per_minute`` (invoices synced per
wall-clock minute, all companies), ``invoices_per_provider_minute`` (per shrunk minute, to set against the ceiling
``companies x 500``), ``throttled_429`` (every 429 the stand-in answered, all realms; aim 0),
``writes_per_invoice`` (the stand-in's writes over the invoices; must be 1), ``doc_numbers`` (every DocNumber once
in each realm: duplicates and missing, must be 0), ``jobs_finished_by_process`` (``event=job_finished
kind=retry_all`` in each worker's log), ``cpu_seconds_by_process`` (from /proc while the jobs ran), the jobs'
outcomes and attempts, open errors left. Per replica count: the medians; overall: the ratio of the median
throughputs, N=3 over N=1.

Results go to ``bench/results/replicas_retry_all.json`` (``--quick``: ``replicas_retry_all.quick.json``).
``--quick``: 10 companies x 30 invoices, one run per replica count.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.replicas import _pending, _stop, code_version, cpu_seconds, fresh_database, machine, with_ratio
from bench.retry_all import (
    BATCH_PER_MINUTE,
    INTERNAL_SERVER_ERROR,
    MAX_CONCURRENT,
    REQUESTS_PER_MINUTE,
    StandIn,
    records,
    seeding_engine,
    settings_for,
    wait_for_empty_windows,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/benchdb"
SIGNING_SECRET = "bench-signing-secret"
METERING = "per_item"
CONTACTS = 20
ITEMS = 5


def realm_of(n: int) -> str:
    return f"91303500{n:08d}"


def user_of(n: int) -> str:
    return f"URRA{n:06d}"


# ---------------------------------------------------------------------------------------------- figures (pure)


def doc_number_figures(numbers_by_realm: Mapping[str, Sequence[str | None]], expected: int) -> dict[str, Any]:
    """Every DocNumber once in each realm: the extra copies (a number beyond its first in a realm), the realms
    holding other than ``expected`` distinct numbers, and the distinct numbers in all."""
    duplicates = 0
    realms_off: dict[str, int] = {}
    distinct_total = 0
    for realm, numbers in sorted(numbers_by_realm.items()):
        counts = Counter(n for n in numbers if n is not None)
        duplicates += sum(c - 1 for c in counts.values())
        distinct_total += len(counts)
        if len(counts) != expected:
            realms_off[realm] = len(counts)
    return {"duplicates": duplicates, "distinct": distinct_total, "expected_per_realm": expected,
            "realms_off": realms_off}


def jobs_finished_by_process(logs: Sequence[str], kind: str = "retry_all") -> list[int]:
    """How many ``kind`` jobs each process finished: its ``event=job_finished ... kind=<kind>`` log lines."""
    return [sum(1 for line in log.splitlines() if "event=job_finished" in line and f"kind={kind} " in line + " ")
            for log in logs]


def job_seconds(logs: Sequence[str], kind: str = "retry_all") -> list[float]:
    """Each finished ``kind`` job's own time (``seconds=`` of its ``event=job_finished`` line), all processes."""
    out = []
    for log in logs:
        for line in log.splitlines():
            if "event=job_finished" in line and f"kind={kind} " in line + " " and "seconds=" in line:
                out.append(float(line.rsplit("seconds=", 1)[1].split()[0]))
    return sorted(out)


def run_figures(*, replicas: int, companies: int, invoices_per_company: int, seconds: float, minute_seconds: float,
                writes: int, throttled_429: int, numbers_by_realm: Mapping[str, Sequence[str | None]],
                logs: Sequence[str], jobs: Sequence[tuple[str | None, int]], open_errors: int) -> dict[str, Any]:
    """One run's figures. ``writes``/``throttled_429``: the stand-in's counters over the timed part, all realms;
    ``jobs``: (outcome, attempts) of every retry_all job."""
    invoices = companies * invoices_per_company
    docs = doc_number_figures(numbers_by_realm, invoices_per_company)
    by_process = jobs_finished_by_process(logs)
    outcomes = Counter(o or "unfinished" for o, _ in jobs)
    per_minute = invoices / seconds * 60 if seconds > 0 else None
    per_provider_minute = invoices / (seconds / minute_seconds) if seconds > 0 else None
    ceiling = companies * REQUESTS_PER_MINUTE
    writes_per_invoice = round(writes / invoices, 3) if invoices else None
    return {
        "replicas": replicas, "companies": companies, "invoices": invoices, "seconds": round(seconds, 3),
        "invoices_per_minute": round(per_minute, 1) if per_minute is not None else None,
        "invoices_per_provider_minute": round(per_provider_minute, 1) if per_provider_minute is not None else None,
        "ceiling_per_provider_minute": ceiling,
        "fraction_of_ceiling": round(per_provider_minute / ceiling, 3) if per_provider_minute is not None else None,
        "throttled_429": throttled_429, "writes": writes, "writes_per_invoice": writes_per_invoice,
        "doc_numbers": docs, "jobs_finished_by_process": by_process,
        "job_outcomes": dict(sorted(outcomes.items())), "job_attempts_max": max((a for _, a in jobs), default=0),
        "open_errors_left": open_errors,
        "ok": (docs["duplicates"] == 0 and not docs["realms_off"] and writes == invoices and open_errors == 0
               and outcomes == Counter({"done": companies}) and sum(by_process) == companies),
    }


def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians per replica count and the throughput ratio of the largest count over 1 (None without both)."""
    by_n: dict[int, list[Mapping[str, Any]]] = {}
    for r in runs:
        by_n.setdefault(int(r["replicas"]), []).append(r)
    medians: dict[str, dict[str, Any]] = {}
    for n, rs in sorted(by_n.items()):
        rates = [r["invoices_per_minute"] for r in rs if r["invoices_per_minute"] is not None]
        medians[str(n)] = {
            "runs": len(rs),
            "seconds": round(statistics.median(r["seconds"] for r in rs), 3),
            "invoices_per_minute": round(statistics.median(rates), 1) if rates else None,
            "throttled_429": statistics.median(r["throttled_429"] for r in rs),
            "writes_per_invoice": statistics.median(r["writes_per_invoice"] for r in rs),
            "duplicates_total": sum(r["doc_numbers"]["duplicates"] for r in rs),
            "all_ok": all(r["ok"] for r in rs),
        }
    return with_ratio(medians, "invoices_per_minute")


# ---------------------------------------------------------------------------------------------- one run


def _seed_failures(services: Any, qbo: StandIn, connection_id: int, realm: str, invoices: int,
                   minute_seconds: float) -> None:
    """The invoices' first push (Sync Now, in batches), every batch request answered QuickBooks' 500 (QBO-39) by
    the stand-in's fail_next on the batch path: the engine writes ``invoices`` open error entries. Through an engine
    whose limiter is opened wide (as bench/retry_all.py seeds)."""
    from sync.providers.quickbooks import MAX_BATCH

    batches = math.ceil(invoices / MAX_BATCH)
    qbo._call("POST", f"/_control/realms/{realm}/fail-next", {
        "count": batches, "status": 500, "content_type": "application/json;charset=UTF-8",
        "body": INTERNAL_SERVER_ERROR, "path_contains": "batch"})
    seeder = seeding_engine(services, minute_seconds)
    summary = seeder.sync_now(connection_id, "bench-seed")
    pending = qbo._call("GET", f"/_control/realms/{realm}/stats")["pending_failures"]
    failed = services.engine.open_errors(connection_id)
    if len(failed) != invoices or pending:
        raise RuntimeError(f"seeding {realm}: {len(failed)} open errors, {pending} injected failures left, "
                           f"summary {summary.as_dict()}")


def _setup(services: Any, qbo: StandIn, slack: Any, companies: int, invoices: int,
           minute_seconds: float) -> list[tuple[str, int, str, str]]:
    """The companies, each with its failing invoices: [(team id, connection id, channel, realm)]."""
    from sqlalchemy import delete

    from bot.models import Workspace
    from sandbox.quickbooks.consent import click_connect
    from sandbox.slack import config as slack_cfg
    from sync.connections import ensure_connection, finish_authorization
    from sync.models import Account, QboSpend
    from sync.records import import_records

    out: list[tuple[str, int, str, str]] = []
    for n in range(companies):
        realm, team, channel = realm_of(n), f"TRRA{n:04d}", f"CRRA{n:04d}"
        qbo._call("POST", "/_control/realms", {"realm_id": realm, "name": f"Retry Builders {n}"})
        # one person per company (each workspace's own): their direct messages are channels of their own
        slack.add_user(slack_cfg.DEFAULT_TEAM_ID, user_of(n), f"owner{n}", is_admin=True)
        slack.add_channel(slack_cfg.DEFAULT_TEAM_ID, channel, f"syncs-rra-{n}", bot_member=True,
                          members=[slack_cfg.OWNER_USER_ID, user_of(n)])
        data = records(invoices, contacts=CONTACTS, items=ITEMS)
        data["account"] = {"name": f"Retry Builders {n}", "timezone": "UTC"}
        with services.sessions() as session, session.begin():
            account = Account(name=f"Retry Builders {n}", timezone="UTC")
            session.add(account)
            session.flush()
            account_id = account.id
            session.add(Workspace(team_id=team, account_id=account_id, channel_id=channel))
            import_records(session, account_id, {**data, "invoices": []})
            connection_id = ensure_connection(session, account_id).id
        callback = click_connect(services.oauth.authorization_url(f"bench-state-{n}"), realm)
        if callback.get("realmId") != realm:
            raise RuntimeError(f"the consent page connected {callback.get('realmId')}, not {realm}")
        finish_authorization(services.sessions, services.oauth, services.tokens, services.engine, connection_id,
                             callback["code"], callback["realmId"], "U_BENCH", resume=False)
        summary = services.engine.sync_now(connection_id, "bench-setup")
        if summary.synced != CONTACTS + ITEMS or summary.errors:
            raise RuntimeError(f"setup sync of {realm}: {summary.as_dict()}")
        with services.sessions() as session, session.begin():
            import_records(session, account_id, data)
        _seed_failures(services, qbo, connection_id, realm, invoices, minute_seconds)
        out.append((team, connection_id, channel, realm))
    with services.sessions() as session, session.begin():  # the injected answers spent no budget of the stand-in's
        session.execute(delete(QboSpend))
    return out


def _env(settings: Any, slack_api_url: str) -> dict[str, str]:
    """The worker processes' environment: the same database, keys, stand-in and limits as the bench's services."""
    from sandbox.slack import config as slack_cfg

    s = settings
    return {**os.environ, "DATABASE_URL": s.database_url,
            "TOKEN_ENCRYPTION_KEYS": s.token_encryption_keys.get_secret_value(),
            "QBO_API_URL": s.qbo_api_url, "QBO_AUTH_URL": s.qbo_auth_url, "QBO_TOKEN_URL": s.qbo_token_url,
            "QBO_REVOKE_URL": s.qbo_revoke_url, "QBO_REDIRECT_URI": s.qbo_redirect_uri,
            "QBO_REQUESTS_PER_MINUTE": str(REQUESTS_PER_MINUTE), "QBO_BATCH_PER_MINUTE": str(BATCH_PER_MINUTE),
            "QBO_MAX_CONCURRENT": str(MAX_CONCURRENT), "QBO_LIMIT_MINUTE_SECONDS": str(s.qbo_limit_minute_seconds),
            "QBO_BATCH_METERING": METERING, "QBO_TIMEOUT_SECONDS": "60",
            "RATE_LIMIT_PAUSE_SECONDS": str(s.rate_limit_pause_seconds),
            "SLACK_API_URL": slack_api_url, "SLACK_BOT_TOKEN": slack_cfg.DEFAULT_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET, "JOB_WORKERS": "4", "PYTHONUNBUFFERED": "1"}


def _worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    from sandbox.serve import free_port

    with log_path.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "-v", "serve",
                                 "--host", "127.0.0.1", "--port", str(free_port()), "--role", "worker"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _enqueue_retry_alls(services: Any, slack_api_url: str, targets: list[tuple[str, int, str, str]]) -> list[int]:
    """One retry_all job per company, with the payload `bot.operations.stored.enqueue` stores for a Retry All
    confirmation (the reply answers by direct message to the owner), through ``JobQueue.enqueue``."""
    from slack_sdk import WebClient

    from bot.jobs import JobQueue
    from bot.replies import Reply
    from sandbox.slack import config as slack_cfg

    queue = JobQueue(services.db_engine, services.sessions, run=lambda job: None)
    client = WebClient(token=slack_cfg.DEFAULT_BOT_TOKEN, base_url=slack_api_url.rstrip("/") + "/")
    ids = []
    for n, (team, connection_id, channel, _) in enumerate(targets):
        user = {"user_id": user_of(n), "name": f"owner{n}", "tz": None}
        reply = Reply(client, user_id=user_of(n), channel_id=channel)
        ids.append(queue.enqueue("retry_all", connection_id, {
            "team_id": team, "user": user, "reply": reply.route(services.box.encrypt),
            "connection_id": connection_id}))
    return ids


def _jobs(services: Any, ids: list[int]) -> list[tuple[str | None, int, bool]]:
    from sqlalchemy import select

    from bot.models import Job

    with services.sessions() as session:
        return [(j.outcome, j.attempts, j.finished_at is not None)
                for j in session.scalars(select(Job).where(Job.id.in_(ids)))]


def one_run(pg_url: str, replicas: int, companies: int, invoices: int, minute_seconds: float,
            timeout: float, keep_logs: Path | None = None) -> dict[str, Any]:
    from bot.services import build_services
    from sandbox.slack import serve_standin
    qbo = StandIn(minute_seconds, METERING)
    slack = serve_standin()
    tmp = tempfile.TemporaryDirectory(prefix="syncbot-replicas-retry-all-")
    procs: list[subprocess.Popen[bytes]] = []
    logs = [Path(tmp.name) / f"worker{i}.log" for i in range(replicas)]
    services: Any = None
    try:
        with fresh_database(pg_url, "rra") as url:
            settings = settings_for(qbo, url, minute_seconds, METERING)
            services = build_services(settings)
            started_setup = time.monotonic()
            targets = _setup(services, qbo, slack.standin, companies, invoices, minute_seconds)
            setup_s = time.monotonic() - started_setup
            realms = [t[3] for t in targets]
            wait_for_empty_windows(minute_seconds)
            env = _env(settings, slack.api_url)
            launched = time.monotonic()
            procs = [_worker(env, path) for path in logs]
            deadline = launched + 120
            while not all("running as worker" in p.read_text(errors="replace") for p in logs):
                if any(proc.poll() is not None for proc in procs) or time.monotonic() > deadline:
                    raise RuntimeError("a worker did not start: " + " | ".join(
                        p.read_text(errors="replace")[-2000:] for p in logs))
                time.sleep(0.05)
            ready = time.monotonic() - launched
            # the failed invoices' cards are posted first (the outbox emptied), as they would be long before
            # anyone clicks Retry All
            pending, pending_engine = _pending(url)
            try:
                drain_started = time.monotonic()
                while pending() and time.monotonic() - drain_started < timeout:
                    time.sleep(0.2)
                cards_s = time.monotonic() - drain_started
            finally:
                pending_engine.dispose()
            before = {r: qbo._call("GET", f"/_control/realms/{r}/stats") for r in realms}
            cpu0 = [cpu_seconds(proc.pid) for proc in procs]
            t0 = time.monotonic()
            ids = _enqueue_retry_alls(services, slack.api_url, targets)
            try:
                jobs = _jobs(services, ids)
                while not all(done for _, _, done in jobs) and time.monotonic() - t0 < timeout:
                    time.sleep(0.1)
                    jobs = _jobs(services, ids)
                seconds = time.monotonic() - t0
                cpu1 = [cpu_seconds(proc.pid) for proc in procs]
            finally:
                codes = [_stop(proc) for proc in procs]
            after = {r: qbo._call("GET", f"/_control/realms/{r}/stats") for r in realms}
            numbers = {r: [inv.get("DocNumber") for inv in
                           qbo._call("GET", f"/_control/realms/{r}/entities/Invoice")["Invoice"]] for r in realms}
            open_errors = sum(len(services.engine.open_errors(t[1])) for t in targets)
            texts = [p.read_text(errors="replace") for p in logs]
            figures = run_figures(
                replicas=replicas, companies=companies, invoices_per_company=invoices, seconds=seconds,
                minute_seconds=minute_seconds,
                writes=sum(after[r]["writes"] - before[r]["writes"] for r in realms),
                throttled_429=sum(after[r]["throttled"] - before[r]["throttled"] for r in realms),
                numbers_by_realm=numbers, logs=texts, jobs=[(o, a) for o, a, _ in jobs], open_errors=open_errors)
            figures["writes_by_realm"] = {r: after[r]["writes"] - before[r]["writes"] for r in realms}
            figures["setup_seconds"] = round(setup_s, 1)
            figures["seconds_launch_to_ready"] = round(ready, 2)
            figures["seconds_cards_of_the_failures_posted"] = round(cards_s, 1)
            figures["worker_exit_codes"] = codes
            figures["cpu_seconds_by_process"] = [round(b - a, 2) if a is not None and b is not None else None
                                                 for a, b in zip(cpu0, cpu1, strict=True)]
            figures["job_seconds"] = job_seconds(texts)
            if keep_logs is not None:
                keep_logs.mkdir(parents=True, exist_ok=True)
                for i, text in enumerate(texts):
                    (keep_logs / f"n{replicas}-worker{i}.log").write_text(text)
            figures["job_reruns_in_logs"] = sum(t.count("event=job_rerun") for t in texts)
            figures["errors_in_logs"] = sum(t.count("ERROR") + t.count("Traceback") for t in texts)
            services.close()
            services = None
            return figures
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        if services is not None:
            services.close()
        slack.stop()
        qbo.stop()
        tmp.cleanup()


# ---------------------------------------------------------------------------------------------- report


def table(runs: Sequence[Mapping[str, Any]]) -> str:
    cols = ["N", "seconds", "inv/min", "429s", "writes/inv", "dups", "jobs by process", "cpu s by process", "ok"]
    rows = [[str(r["replicas"]), f"{r['seconds']:.2f}", str(r["invoices_per_minute"]), str(r["throttled_429"]),
             str(r["writes_per_invoice"]), str(r["doc_numbers"]["duplicates"]),
             ",".join(str(n) for n in r["jobs_finished_by_process"]),
             ",".join(str(c) for c in r.get("cpu_seconds_by_process", [])), str(r["ok"])] for r in runs]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=None, help="runs per replica count (default 3; quick 1)")
    parser.add_argument("--companies", type=int, default=10, help="companies, one realm each (default 10)")
    parser.add_argument("--invoices", type=int, default=None, help="failing invoices per company (default 300)")
    parser.add_argument("--replicas", default="1,3", help="replica counts, comma separated (default 1,3)")
    parser.add_argument("--minute-seconds", type=float, default=3.0,
                        help="the stand-in's (and syncbot's limiter's) throttling minute (default 3)")
    parser.add_argument("--quick", action="store_true", help="10 companies x 30 invoices, 1 run each")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL),
                        help="a PostgreSQL URL; each run makes a database <its name>_rra_<hex> beside it")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds the jobs may take")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--keep-logs", type=Path, default=None,
                        help="a directory to keep each run's worker logs in (n<N>-worker<i>.log, last run's)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    invoices = args.invoices or (30 if args.quick else 300)
    counts = [int(n) for n in args.replicas.split(",") if n.strip()]
    output = args.output or RESULTS_DIR / ("replicas_retry_all.quick.json" if args.quick
                                           else "replicas_retry_all.json")

    results: list[dict[str, Any]] = []
    for run in range(1, runs + 1):
        for n in counts:  # interleaved, so a busier moment of the shared machine does not hit one count only
            figures = one_run(args.pg_url, n, args.companies, invoices, args.minute_seconds, args.timeout,
                              args.keep_logs)
            figures["run"] = run
            results.append(figures)
            print(f"run {run} N={n}: {figures['seconds']:.2f} s, {figures['invoices_per_minute']} inv/min, "
                  f"429s {figures['throttled_429']}, writes/invoice {figures['writes_per_invoice']}, "
                  f"jobs by process {figures['jobs_finished_by_process']}, "
                  f"cpu {figures['cpu_seconds_by_process']}, ok {figures['ok']}", flush=True)
    summary = summarize(results)
    report = {
        "benchmark": "replicas_retry_all",
        "config": {
            "companies": args.companies, "invoices_per_company": invoices, "invoices": args.companies * invoices,
            "replica_counts": counts, "runs": runs, "quick": args.quick, "job_workers_per_process": 4,
            "minute_seconds": args.minute_seconds,
            "standin": {"requests_per_minute_per_realm": REQUESTS_PER_MINUTE,
                        "batch_per_minute_per_realm": BATCH_PER_MINUTE, "max_concurrent_per_realm": MAX_CONCURRENT,
                        "batch_metering": METERING, "served_in": "its own process"},
            "notes": ("One QuickBooks stand-in process, one realm per company, QuickBooks' limits per realm with the "
                      f"minute shrunk to {args.minute_seconds:g} s (syncbot's QBO_LIMIT_MINUTE_SECONDS the same); "
                      "each company connected through the OAuth consent flow, bound to a workspace row and channel; "
                      "its invoices failed for real (first push answered 500 by fail_next on the batch path); one "
                      "retry_all job per company stored with _enqueue's payload through JobQueue.enqueue after the "
                      "N `syncbot -v serve --role worker` processes are running; the clock runs from the first "
                      "job stored to the last job finished"),
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
        print(f"N={n}: median {m['seconds']} s, {m['invoices_per_minute']} inv/min, all ok {m['all_ok']}")
    print(f"throughput ratio ({summary['throughput_ratio_of']}): {summary['throughput_ratio']}")
    return 0 if all(r["ok"] and r["throttled_429"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
