"""Benchmark: Retry All over thousands of failed invoices against the QuickBooks stand-in, under its real limits.

    python -m bench.retry_all [--invoices 5000] [--minute-seconds 3] [--quick] [--metering both]

For each batch metering of the stand-in (``per_item``: a batch costs its item count against the 500 requests per
minute, as Intuit's batch sample says; ``per_request``: a batch costs 1, so 40 batches x 30 = 1,200 operations per
minute are the ceiling), on a fresh stand-in and a fresh SQLite database:

1. serve the stand-in on loopback with QBO's real limits (500 requests/minute, 40 batches/minute, 10 concurrent per
   realm) but a minute shrunk to ``--minute-seconds`` (3 s by default), in a process of its own (QuickBooks is
   another machine: its CPU must not compete with syncbot's for the GIL; ``--standin thread`` serves it in-process);
2. build syncbot's services from Settings whose QBO_LIMIT_MINUTE_SECONDS and QBO_BATCH_METERING match the
   stand-in's, connect through the real OAuth flow (consent page, code exchange), sync the contacts and items;
3. make N invoices fail for real: their first push (Sync Now, through batches) meets QuickBooks' 500
   InternalServerError (QBO-39) on every batch request (injected with the stand-in's fail_next on the batch path),
   and the engine writes the N open error entries. This first attempt runs through an engine whose limiter is
   opened wide (the injected answers cost the stand-in's budget nothing) and is not timed;
4. wait until both throttle windows are empty, then time ``services.engine.retry_all(connection_id, "bench")``
   and read the stand-in's counters (requests, writes, 429s) and the database (every entry resolved, every invoice
   linked, every invoice in the stand-in's books);
5. baseline: the same N invoices, on another fresh stand-in, pushed one request per record by a plain httpx client
   (no limiter, no batching, one request at a time as python-quickbooks does; on a 429 it waits the Retry-After or
   60 s scaled to the shrunk minute and sends again);
6. pacing check: the same N invoices, on another fresh stand-in, sent as batches of 30 through syncbot's own
   QuickBooksProvider (its limiter, its HTTP client) from as many threads as the engine has batch workers, with no
   database work per record: what the limiter alone reaches, so a shortfall of step 4 can be told apart (limiter
   or engine).

Figures: ops_per_minute = operations / (elapsed / minute_seconds), operations being the writes the stand-in did;
fraction_of_ceiling = ops_per_minute / ceiling; throttled_429 = the 429s the stand-in sent; ratio = syncbot's
ops_per_minute / the baseline's. ops / elapsed starts on a full budget (the first minute's burst is free) and counts
the last batch's minute only in part, so short runs overstate it; sustained_ops_per_minute, the operations sent in a
sliding minute averaged over every full minute of the run, does not. Results go to
``bench/results/retry_all.json`` (``--quick``: ``retry_all.quick.json``) and a table is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
REALM = "9130350000000001"  # the stand-in's default company
METERINGS = ("per_item", "per_request")
REQUESTS_PER_MINUTE = 500
BATCH_PER_MINUTE = 40
MAX_CONCURRENT = 10
AIM_FRACTION = 0.9
#: QBO-39 (python-quickbooks#106, qbo_api#81): QuickBooks' 500 InternalServerError, as it comes on the wire.
INTERNAL_SERVER_ERROR = (
    '{"warnings":null,"intuitObject":null,"fault":{"error":[{"message":"message=InternalServerError; '
    'errorCode=003100; statusCode=500","detail":null,"code":"3100","element":null}],"type":"SERVICE"},'
    '"report":null,"queryResponse":null,"batchItemResponse":[],"attachableResponse":[],"syncErrorResponse":null,'
    '"requestId":null,"time":1519164488680,"status":null,"cdcresponse":[]}'
)

log = logging.getLogger("bench.retry_all")


# ---------------------------------------------------------------------------------------------- the stand-in


class StandIn:
    """The QuickBooks stand-in on loopback, driven through its control API (the same calls in both modes)."""

    def __init__(self, minute_seconds: float, metering: str, mode: str = "process") -> None:
        from sandbox.serve import free_port

        self.mode = mode
        self.proc: subprocess.Popen[bytes] | None = None
        self.server: Any = None
        if mode == "thread":
            from sandbox.quickbooks import StandInConfig, create_app
            from sandbox.serve import serve_in_thread

            self.server = serve_in_thread(create_app(StandInConfig(minute_seconds=minute_seconds,
                                                                   batch_metering=metering)))
            self.url = self.server.url
        else:
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.retry_all", "--serve-standin", str(port),
                 "--minute-seconds", str(minute_seconds), "--metering", metering], cwd=ROOT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        self.http = httpx.Client(base_url=self.url, timeout=120)
        self._wait_up()
        cfg = self.config()
        assert (cfg["minute_seconds"], cfg["batch_metering"]) == (minute_seconds, metering), cfg
        assert (cfg["requests_per_minute"], cfg["batch_per_minute"], cfg["max_concurrent"]) == (
            REQUESTS_PER_MINUTE, BATCH_PER_MINUTE, MAX_CONCURRENT), cfg

    def _wait_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.http.get("/_control/config").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the stand-in process exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stand-in did not come up on {self.url}")
            time.sleep(0.05)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        resp = self.http.request(method, path, json=body)
        resp.raise_for_status()
        return resp.json()

    def config(self) -> dict[str, Any]:
        return dict(self._call("GET", "/_control/config"))

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", f"/_control/realms/{REALM}/stats"))

    def fail_next(self, count: int, status: int, content_type: str, body: str, path_contains: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/_control/realms/{REALM}/fail-next", {
            "count": count, "status": status, "content_type": content_type, "body": body,
            "path_contains": path_contains}))

    def count(self, entity: str) -> int:
        return len(self._call("GET", f"/_control/realms/{REALM}/entities/{entity}")[entity])

    def stop(self) -> None:
        self.http.close()
        if self.server is not None:
            self.server.stop()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _die_with_parent() -> None:
    """In the stand-in's process (Linux): get SIGTERM when the bench dies, so no stand-in outlives it."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def serve_standin(port: int, minute_seconds: float, metering: str) -> None:
    """The stand-in process (``--serve-standin PORT``): QBO's real limits, a shrunk minute, until terminated."""
    import signal

    import uvicorn

    from sandbox.quickbooks import StandInConfig, create_app

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(create_app(StandInConfig(minute_seconds=minute_seconds, batch_metering=metering)),
                host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


# ---------------------------------------------------------------------------------------------- syncbot's side


def records(invoices: int, contacts: int = 100, items: int = 10) -> dict[str, Any]:
    """A JobsiteOn records file: ``contacts`` customers, ``items`` service items, ``invoices`` invoices of 1 to 3
    lines (taxable and not, 8.25 % tax), each with its own number."""
    return {
        "account": {"name": "Bench Builders", "timezone": "UTC"},
        "contacts": [{"ref": f"C{i}", "display_name": f"Bench Customer {i:04d}", "email": f"ap{i}@bench.test",
                      "company": f"Bench Customer {i:04d} LLC"} for i in range(contacts)],
        "items": [{"ref": f"I{j}", "name": f"Bench Service {j:02d}", "sku": f"SVC-{j:02d}",
                   "unit_price": f"{40 + j}.50", "income_account": "79"} for j in range(items)],
        "invoices": [{
            "ref": f"INV{k}", "number": f"B-{k:06d}", "contact": f"C{k % contacts}", "issue_date": "2026-11-02",
            "due_date": "2026-12-02", "tax_rate": "8.25",
            "lines": [{"item": f"I{(k + n) % items}", "quantity": str(1 + (k + n) % 7),
                       "rate": f"{40 + (k * 7 + n) % 60}.{(k + n) % 100:02d}",
                       "tax_code": "TAX" if n % 2 == 0 else "NON"} for n in range(1 + k % 3)],
        } for k in range(invoices)],
    }


def settings_for(standin: StandIn, database_url: str, minute_seconds: float, metering: str) -> Any:
    """syncbot's Settings pointed at the stand-in, with its limiter set to the stand-in's minute and metering."""
    from cryptography.fernet import Fernet

    from bot.config import Settings

    return Settings(_env_file=None, **{
        "DATABASE_URL": database_url, "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "QBO_API_URL": standin.url, "QBO_AUTH_URL": f"{standin.url}/connect/oauth2",
        "QBO_TOKEN_URL": f"{standin.url}/oauth2/v1/tokens/bearer",
        "QBO_REVOKE_URL": f"{standin.url}/v2/oauth2/tokens/revoke",
        "QBO_REDIRECT_URI": "http://127.0.0.1:3000/oauth/quickbooks/callback",
        "QBO_REQUESTS_PER_MINUTE": REQUESTS_PER_MINUTE, "QBO_BATCH_PER_MINUTE": BATCH_PER_MINUTE,
        "QBO_MAX_CONCURRENT": MAX_CONCURRENT,
        "QBO_LIMIT_MINUTE_SECONDS": minute_seconds, "QBO_BATCH_METERING": metering,
        "QBO_TIMEOUT_SECONDS": 60.0,
        # the 15-minute pause after a 429 without Retry-After, scaled like the minute
        "RATE_LIMIT_PAUSE_SECONDS": max(1, round(900 * minute_seconds / 60)),
    })


@dataclass
class Prepared:
    services: Any
    account_id: int
    connection_id: int
    setup_s: float


def prepare(standin: StandIn, workdir: Path, minute_seconds: float, metering: str, invoices: int,
            database_url: str | None = None) -> Prepared:
    """A fresh database (a SQLite file in ``workdir`` unless ``database_url`` names an empty one), the records,
    the OAuth connection, contacts and items synced; invoices imported but not pushed yet."""
    from bot.services import build_services
    from sandbox.quickbooks.consent import click_connect
    from sync.connections import ensure_account, ensure_connection, finish_authorization
    from sync.records import import_records

    started = time.monotonic()
    db_path = workdir / "bench.db"
    services = build_services(settings_for(standin, database_url or f"sqlite:///{db_path}", minute_seconds,
                                           metering))
    data = records(invoices)
    with services.sessions() as session, session.begin():
        account_id = ensure_account(session, "Bench Builders", "UTC").id
        import_records(session, account_id, {**data, "invoices": []})
        connection_id = ensure_connection(session, account_id).id
    callback = click_connect(services.oauth.authorization_url("bench-state"), REALM)
    finish_authorization(services.sessions, services.oauth, services.tokens, services.engine, connection_id,
                         callback["code"], callback["realmId"], "U_BENCH", resume=False)
    summary = services.engine.sync_now(connection_id, "bench-setup")
    expected = len(data["contacts"]) + len(data["items"])
    if summary.synced != expected or summary.errors:
        raise RuntimeError(f"setup sync: expected {expected} synced, got {summary.as_dict()}")
    with services.sessions() as session, session.begin():
        import_records(session, account_id, data)  # same contacts and items (unchanged), plus the invoices
    return Prepared(services, account_id, connection_id, time.monotonic() - started)



def invoice_payloads(prep: Prepared) -> list[dict[str, Any]]:
    """The QBO Invoice of every imported invoice (syncbot's own mapping), with the ids of its synced customer and
    items."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from sync.models import Invoice, InvoiceLine, Link
    from sync.providers.quickbooks import invoice_payload

    with prep.services.sessions() as session:
        links = {(lk.entity, lk.record_id): lk.remote_id for lk in session.scalars(
            select(Link).where(Link.connection_id == prep.connection_id))}
        out = []
        for inv in session.scalars(select(Invoice).where(Invoice.account_id == prep.account_id)
                                   .options(selectinload(Invoice.lines).selectinload(InvoiceLine.item))
                                   .order_by(Invoice.id)):
            items = {ln.item_id: links[("item", ln.item_id)] for ln in inv.lines}
            out.append(invoice_payload(inv, links[("contact", inv.contact_id)], items))
        return out


def seed_failures(prep: Prepared, standin: StandIn, invoices: int, minute_seconds: float) -> dict[str, Any]:
    """The invoices' first push (Sync Now, in batches): QuickBooks answers every batch request with its 500
    InternalServerError (QBO-39), injected with the stand-in's fail_next on the batch path.

    Leaves ``invoices`` open error entries (kind unknown, HTTP 500, code 3100) written by the engine itself. A 500
    with a fault code is an answer, not an outage: the run goes on (a 502/503/504 or no answer stops a run at the
    first batch, engine ``unreachable``), and nothing is resent. The seeding engine's limiter is opened wide: the
    injected answers cost the stand-in's budget nothing, so there is nothing to pace, and this attempt is not the
    one measured."""
    from sqlalchemy import delete

    from sync.models import QboSpend
    from sync.providers.quickbooks import MAX_BATCH

    services = prep.services
    batches = math.ceil(invoices / MAX_BATCH)
    standin.fail_next(batches, 500, "application/json;charset=UTF-8", INTERNAL_SERVER_ERROR, "batch")
    seeder = seeding_engine(services, minute_seconds)
    started = time.monotonic()
    with _quiet("syncbot"):
        summary = seeder.sync_now(prep.connection_id, "bench-seed")
    elapsed = time.monotonic() - started
    with services.sessions() as session, session.begin():  # the injected answers spent no budget of the stand-in's
        session.execute(delete(QboSpend))
    pending = standin.stats()["pending_failures"]
    failed = services.engine.open_errors(prep.connection_id)
    kinds = sorted({(e.entity, e.kind, e.http_status, e.codes) for e in failed}, key=str)
    if len(failed) != invoices or pending or kinds != [("invoice", "unknown", 500, "3100")]:
        raise RuntimeError(f"seeding: {len(failed)} open errors {kinds}, {pending} injected failures left, "
                           f"summary {summary.as_dict()}")
    return {"entries": len(failed), "kind": "unknown", "http_status": 500, "codes": "3100",
            "batch_requests": batches, "injected_500": batches, "elapsed_s": round(elapsed, 2),
            "entries_per_s": round(len(failed) / elapsed, 1)}


def seeding_engine(services: Any, minute_seconds: float) -> Any:
    """A SyncEngine like ``services.engine`` whose limiter is opened wide: for making the failures a bench then
    times (injected answers cost the stand-in's budget nothing), never for the measured run."""
    from sync.engine import EngineConfig, SyncEngine
    from sync.providers.limiter import LimiterConfig, RealmLimiter
    from sync.providers.quickbooks import QuickBooksProvider

    wide = RealmLimiter(services.sessions, LimiterConfig(requests_per_minute=10**9, batch_per_minute=10**9,
                                                         max_concurrent=MAX_CONCURRENT, minute_seconds=minute_seconds))

    def provider_for(conn: Any) -> Any:
        return QuickBooksProvider(conn.id, conn.realm_id or "", services.tokens, services.settings.qbo_api_url, wide,
                                  services.http, minor_version=services.settings.qbo_minor_version)

    return SyncEngine(services.sessions, provider_for, EngineConfig(
        rate_limit_pause_seconds=services.settings.rate_limit_pause_seconds,
        batch_workers=services.engine.config.batch_workers))


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# ---------------------------------------------------------------------------------------------- measuring


@dataclass
class Timeline:
    """What the client sent and when (httpx event hooks), and where the engine's workers spent their time."""

    sends: list[tuple[float, int, bool]] = field(default_factory=list)  # (monotonic, operations, is_batch)
    statuses: dict[int, int] = field(default_factory=dict)
    http_s: list[float] = field(default_factory=list)
    limiter_wait_s: list[float] = field(default_factory=list)
    chunk_s: list[float] = field(default_factory=list)
    _open: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_request(self, request: httpx.Request) -> None:
        now = time.monotonic()
        is_batch = request.url.path.endswith("/batch")
        ops = request.content.count(b'"bId"') if is_batch else 1
        with self._lock:
            self.sends.append((now, ops, is_batch))
            self._open[id(request)] = now

    def on_response(self, response: httpx.Response) -> None:
        now = time.monotonic()
        with self._lock:
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            started = self._open.pop(id(response.request), None)
            if started is not None:
                self.http_s.append(now - started)


def instrument(services: Any, timeline: Timeline) -> Callable[[], None]:
    """Hook the timeline into syncbot's HTTP client, limiter and batch workers; returns the undo."""
    http = services.http
    hooks = http.event_hooks
    http.event_hooks = {"request": [timeline.on_request], "response": [timeline.on_response]}
    limiter, engine = services.limiter, services.engine
    slot, push_chunk = limiter.slot, engine._push_chunk

    @contextlib.contextmanager
    def timed_slot(realm: str, cost: int = 1, is_batch: bool = False) -> Iterator[None]:
        started = time.monotonic()
        with slot(realm, cost, is_batch):
            with timeline._lock:
                timeline.limiter_wait_s.append(time.monotonic() - started)
            yield

    def timed_chunk(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return push_chunk(*args, **kwargs)
        finally:
            with timeline._lock:
                timeline.chunk_s.append(time.monotonic() - started)

    limiter.slot = timed_slot
    engine._push_chunk = timed_chunk

    def undo() -> None:
        http.event_hooks = hooks
        del limiter.slot
        del engine._push_chunk

    return undo


def window_figures(sends: list[tuple[float, int, bool]], minute_seconds: float) -> dict[str, Any]:
    """Operations sent per sliding minute: the time-average over every full minute inside the run (free of the
    edge effect of ops / elapsed, which counts the first minute's burst and the last batch's minute only in part)
    and the busiest minute (by send time; the stand-in meters on arrival, a few ms later)."""
    if not sends:
        return {"sustained_ops_per_minute": None, "peak_ops_in_a_minute": 0}
    times = [t for t, _, _ in sends]
    ops = [o for _, o, _ in sends]

    def in_window(start: float) -> int:
        return sum(o for t, o in zip(times, ops, strict=True) if start <= t < start + minute_seconds)

    peak = max(in_window(t) for t in times)
    first, last = times[0], times[-1]
    sustained = None
    if last - minute_seconds > first:
        steps = 400
        grid = [first + (last - minute_seconds - first) * i / steps for i in range(steps + 1)]
        sustained = statistics.fmean(in_window(t) for t in grid)
    return {"sustained_ops_per_minute": round(sustained, 1) if sustained is not None else None,
            "peak_ops_in_a_minute": peak}


def verify(prep: Prepared, standin: StandIn, invoices: int) -> dict[str, Any]:
    """Did every failed invoice end synced? Reads the database and the stand-in's books."""
    from sqlalchemy import func, select

    from sync.models import Link, SyncLogEntry

    services = prep.services
    with services.sessions() as session:
        synced = session.scalar(select(func.count()).select_from(SyncLogEntry).where(
            SyncLogEntry.connection_id == prep.connection_id, SyncLogEntry.entity == "invoice",
            SyncLogEntry.actor == "bench", SyncLogEntry.status == "synced"))
        unresolved_failures = session.scalar(select(func.count()).select_from(SyncLogEntry).where(
            SyncLogEntry.connection_id == prep.connection_id, SyncLogEntry.entity == "invoice",
            SyncLogEntry.actor == "bench-seed", SyncLogEntry.resolved_at.is_(None)))
        links = session.scalar(select(func.count()).select_from(Link).where(
            Link.connection_id == prep.connection_id, Link.entity == "invoice", Link.remote_deleted.is_(False)))
    open_errors = len(services.engine.open_errors(prep.connection_id))
    in_books = standin.count("Invoice")
    return {"synced_entries": synced, "failed_entries_left_unresolved": unresolved_failures,
            "open_errors": open_errors, "invoice_links": links, "invoices_in_quickbooks": in_books,
            "all_synced": synced == invoices and unresolved_failures == 0 and open_errors == 0
            and links == invoices and in_books == invoices}


def wait_for_empty_windows(minute_seconds: float) -> None:
    """Both throttle windows (the client's is 2 % longer) forget the setup's requests."""
    time.sleep(minute_seconds * 1.1)


def ceiling_for(metering: str) -> int:
    """Operations per minute the stand-in's limits allow a batching client."""
    from sync.providers.quickbooks import MAX_BATCH

    if metering == "per_item":
        return REQUESTS_PER_MINUTE
    return min(BATCH_PER_MINUTE, REQUESTS_PER_MINUTE) * MAX_BATCH


def figures(timeline: Timeline, before: dict[str, Any], after: dict[str, Any], elapsed: float,
            minute_seconds: float, metering: str, workers: int) -> dict[str, Any]:
    """The run's figures from the stand-in's counters (before/after) and the client's timeline."""
    ops = after["writes"] - before["writes"]
    ceiling = ceiling_for(metering)
    ops_per_minute = ops / (elapsed / minute_seconds)
    windows = window_figures(timeline.sends, minute_seconds)
    sustained = windows["sustained_ops_per_minute"]
    batches = [s for s in timeline.sends if s[2]]
    chunk_total = sum(timeline.chunk_s)
    wait_total = sum(timeline.limiter_wait_s)
    http_total = sum(timeline.http_s)
    busy = chunk_total if timeline.chunk_s else wait_total + http_total
    return {
        "fraction_of_ceiling": round(ops_per_minute / ceiling, 3),
        "throttled_429": after["throttled"] - before["throttled"],
        "ops_per_minute": round(ops_per_minute, 1),
        "ceiling": ceiling,
        "elapsed_s": round(elapsed, 2),
        "ops": ops,
        "requests": after["requests"] - before["requests"],
        "batch_requests": len(batches),
        "other_requests": len(timeline.sends) - len(batches),
        "http_statuses": {str(k): v for k, v in sorted(timeline.statuses.items())},
        "sustained_ops_per_minute": sustained,
        "sustained_fraction_of_ceiling": round(sustained / ceiling, 3) if sustained is not None else None,
        "peak_ops_in_a_minute": windows["peak_ops_in_a_minute"],
        "where_the_workers_spent_their_time": {
            "batch_workers": workers,
            "worker_seconds": round(busy, 2),
            "waiting_for_the_limiter_s": round(wait_total, 2),
            "in_http_s": round(http_total, 2),
            "database_and_python_s": round(busy - wait_total - http_total, 2),
            "per_batch_ms": {
                "limiter_wait": round(1000 * wait_total / max(1, len(timeline.limiter_wait_s)), 1),
                "http": round(1000 * http_total / max(1, len(timeline.http_s)), 1),
                "database_and_python": round(1000 * (busy - wait_total - http_total) / max(1, len(batches)), 1),
            },
        },
    }


def run_syncbot(metering: str, invoices: int, minute_seconds: float, mode: str,
                workers: int | None = None, pg_url: str | None = None) -> dict[str, Any]:
    """Retry All over ``invoices`` failed invoices; the figures of the run. ``pg_url``: on a fresh PostgreSQL
    database beside that one (dropped afterwards) instead of a SQLite file."""
    from bench.replicas import fresh_database

    standin = StandIn(minute_seconds, metering, mode)
    prep: Prepared | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-retry-all-") as tmp, contextlib.ExitStack() as stack:
            url = stack.enter_context(fresh_database(pg_url, "retry_all")) if pg_url else None
            prep = prepare(standin, Path(tmp), minute_seconds, metering, invoices, url)
            services = prep.services
            if workers is not None:
                services.engine.config.batch_workers = workers
            seed = seed_failures(prep, standin, invoices, minute_seconds)
            wait_for_empty_windows(minute_seconds)
            timeline = Timeline()
            undo = instrument(services, timeline)
            before = standin.stats()
            started, cpu_started = time.monotonic(), time.process_time()
            summary = services.engine.retry_all(prep.connection_id, "bench")
            elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
            after = standin.stats()
            undo()
            checked = verify(prep, standin, invoices)
    finally:
        if prep is not None:
            prep.services.close()
        standin.stop()
    return {**figures(timeline, before, after, elapsed, minute_seconds, metering,
                      services.engine.config.batch_workers),
            "database": "postgresql" if pg_url else "sqlite",
            # syncbot's process CPU over the run (the stand-in runs in its own process, the database server too)
            "process_cpu_s": round(cpu, 2), "cpu_ms_per_invoice": round(1000 * cpu / max(1, invoices), 2),
            "process_cpu_share_of_wall": round(cpu / elapsed, 3),
            "engine_summary": summary.as_dict(), "seed": seed, "setup_s": round(prep.setup_s, 2), **checked}


def run_pacing_only(metering: str, invoices: int, minute_seconds: float, mode: str,
                    workers: int | None = None) -> dict[str, Any]:
    """The limiter and the batch path alone: the same invoices sent as batches of 30 through syncbot's
    QuickBooksProvider (its limiter, its HTTP client) from as many threads as the engine has batch workers, with no
    database work per record. What Retry All would reach if the engine's own time per batch went to zero."""
    from sync.models import Entity
    from sync.providers.base import BatchOp, ProviderError
    from sync.providers.quickbooks import MAX_BATCH

    standin = StandIn(minute_seconds, metering, mode)
    prep: Prepared | None = None
    failed: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pacing-") as tmp:
            prep = prepare(standin, Path(tmp), minute_seconds, metering, invoices)
            services = prep.services
            workers = workers or services.engine.config.batch_workers
            payloads = invoice_payloads(prep)
            with services.sessions() as session:
                from sync.models import Connection

                conn = session.get(Connection, prep.connection_id)
                assert conn is not None
                provider = services.provider_for(conn)
            chunks = [[BatchOp(f"b{i}", Entity.INVOICE, p) for i, p in enumerate(payloads[k:k + MAX_BATCH])]
                      for k in range(0, len(payloads), MAX_BATCH)]

            def send(ops: list[BatchOp]) -> None:
                try:
                    answers = provider.batch(ops, uuid.uuid4().hex)
                except ProviderError as exc:
                    failed.append(str(exc.diagnosis.kind))
                    return
                failed.extend(str(a.kind) for a in answers.values() if not hasattr(a, "remote_id"))

            wait_for_empty_windows(minute_seconds)
            timeline = Timeline()
            undo = instrument(services, timeline)
            before = standin.stats()
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(send, chunks))
            elapsed = time.monotonic() - started
            after = standin.stats()
            undo()
            in_books = standin.count("Invoice")
    finally:
        if prep is not None:
            prep.services.close()
        standin.stop()
    return {**figures(timeline, before, after, elapsed, minute_seconds, metering, workers),
            "failed": len(failed), "all_created": in_books == invoices and not failed}


def run_baseline(metering: str, invoices: int, minute_seconds: float, mode: str) -> dict[str, Any]:
    """The same invoices pushed one request per record by a plain httpx client (no limiter, no batching)."""
    from sync.providers.quickbooks import dumps

    standin = StandIn(minute_seconds, metering, mode)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
            prep = prepare(standin, Path(tmp), minute_seconds, metering, invoices)
            services = prep.services
            try:
                bodies = [dumps(p) for p in invoice_payloads(prep)]
                token = services.tokens.access_token(prep.connection_id)
            finally:
                services.close()
        url = f"{standin.url}/v3/company/{REALM}/invoice"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                   "Content-Type": "application/json"}
        wait_for_empty_windows(minute_seconds)
        before = standin.stats()
        throttled = failed = sent = 0
        waited = 0.0
        started = time.monotonic()
        with httpx.Client(timeout=60) as client:
            for body in bodies:
                while True:
                    sent += 1
                    resp = client.post(url, params={"minorversion": "75"}, content=body, headers=headers)
                    if resp.status_code == 429:  # no Retry-After from QBO: wait "60 s", scaled like the minute
                        throttled += 1
                        pause = float(resp.headers.get("Retry-After") or minute_seconds)
                        waited += pause
                        time.sleep(pause)
                        continue
                    if resp.status_code != 200:
                        failed += 1
                    break
        elapsed = time.monotonic() - started
        after = standin.stats()
        in_books = standin.count("Invoice")
    finally:
        standin.stop()
    ops = after["writes"] - before["writes"]
    ops_per_minute = ops / (elapsed / minute_seconds)
    return {
        "ops_per_minute": round(ops_per_minute, 1),
        "ceiling": REQUESTS_PER_MINUTE,  # one request per record: 500 per minute under either metering
        "fraction_of_ceiling": round(ops_per_minute / REQUESTS_PER_MINUTE, 3),
        "fraction_of_batch_ceiling": round(ops_per_minute / ceiling_for(metering), 3),
        "throttled_429": after["throttled"] - before["throttled"],
        "client_saw_429": throttled,
        "seconds_waiting_after_429": round(waited, 2),
        "elapsed_s": round(elapsed, 2),
        "ops": ops,
        "requests": after["requests"] - before["requests"],
        "failed": failed,
        "all_created": in_books == invoices and failed == 0,
    }


# ---------------------------------------------------------------------------------------------- report


def code_version() -> dict[str, Any]:
    """The commit measured, and whether sync/, bot/ or sandbox/ had changes not committed yet."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "uncommitted_changes_in_sync_bot_sandbox": bool(git("status", "--porcelain", "--", "sync", "bot",
                                                                "sandbox"))}


def table(results: dict[str, Any]) -> str:
    cols = ["metering", "ceiling", "ops/min", "fraction", "429s", "elapsed s", "requests", "all synced",
            "sustained", "baseline ops/min", "base 429s", "ratio", "limiter alone", "alone 429s"]
    rows = []
    for metering, r in results["results"].items():
        base = r.get("baseline") or {}
        alone = r.get("pacing_only") or {}
        rows.append([metering, str(r["ceiling"]), f"{r['ops_per_minute']:.0f}", f"{r['fraction_of_ceiling']:.3f}",
                     str(r["throttled_429"]), f"{r['elapsed_s']:.1f}", str(r["requests"]), str(r["all_synced"]),
                     f"{r['sustained_fraction_of_ceiling']:.3f}" if r["sustained_fraction_of_ceiling"] else "-",
                     f"{base['ops_per_minute']:.0f}" if base else "-", str(base.get("throttled_429", "-")),
                     f"{r['ratio']:.2f}" if r.get("ratio") else "-",
                     f"{alone['fraction_of_ceiling']:.3f}" if alone else "-", str(alone.get("throttled_429", "-"))])
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retry_all", description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=None, help="failed invoices to retry (default 5000)")
    parser.add_argument("--minute-seconds", type=float, default=3.0,
                        help="length of the stand-in's (and the limiter's) throttling minute (default 3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 600 invoices, results to *.quick.json")
    parser.add_argument("--metering", choices=("both", *METERINGS), default="both")
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-request-per-record baseline")
    parser.add_argument("--no-pacing-check", action="store_true",
                        help="skip the limiter-alone run (batches through the provider, no database work)")
    parser.add_argument("--batch-workers", type=int, default=None,
                        help="EngineConfig.batch_workers for the run (default: the engine's own, 4)")
    parser.add_argument("--standin", choices=("process", "thread"), default="process",
                        help="serve the stand-in in a process of its own (default) or in a thread of this one")
    parser.add_argument("--output", type=Path, default=None, help="results file")
    parser.add_argument("--pg-url", default=None, metavar="URL",
                        help="run syncbot on a fresh PostgreSQL database beside URL's (dropped afterwards), "
                             "not SQLite")
    parser.add_argument("--serve-standin", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_standin is not None:
        serve_standin(args.serve_standin, args.minute_seconds, args.metering)
        return 0

    from sync.engine import EngineConfig

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    invoices = args.invoices or (600 if args.quick else 5000)
    minute = args.minute_seconds
    meterings = METERINGS if args.metering == "both" else (args.metering,)
    output = args.output or RESULTS_DIR / ("retry_all.quick.json" if args.quick else "retry_all.json")

    results: dict[str, Any] = {}
    for metering in meterings:
        print(f"[{metering}] Retry All over {invoices} failed invoices, minute = {minute:g} s ...", flush=True)
        run = run_syncbot(metering, invoices, minute, args.standin, args.batch_workers, args.pg_url)
        print(f"[{metering}]   {run['ops_per_minute']:.0f} ops/min of {run['ceiling']} "
              f"({run['fraction_of_ceiling']:.1%}), {run['throttled_429']} x 429, {run['elapsed_s']:.1f} s, "
              f"all synced: {run['all_synced']}; {run['database']}, syncbot CPU {run['cpu_ms_per_invoice']} ms "
              f"per invoice ({run['process_cpu_share_of_wall']:.0%} of wall)", flush=True)
        if not args.no_baseline:
            print(f"[{metering}] baseline: one request per record ...", flush=True)
            base = run_baseline(metering, invoices, minute, args.standin)
            run["baseline"] = base
            run["ratio"] = round(run["ops_per_minute"] / base["ops_per_minute"], 2)
            print(f"[{metering}]   {base['ops_per_minute']:.0f} ops/min, {base['throttled_429']} x 429, "
                  f"{base['elapsed_s']:.1f} s; ratio {run['ratio']:.2f}", flush=True)
        if not args.no_pacing_check:
            print(f"[{metering}] pacing check: the same batches through the provider and its limiter alone ...",
                  flush=True)
            pacing = run_pacing_only(metering, invoices, minute, args.standin, args.batch_workers)
            run["pacing_only"] = pacing
            print(f"[{metering}]   {pacing['ops_per_minute']:.0f} ops/min ({pacing['fraction_of_ceiling']:.1%}), "
                  f"{pacing['throttled_429']} x 429, {pacing['elapsed_s']:.1f} s", flush=True)
        results[metering] = run

    report = {
        "benchmark": "retry_all",
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {
            "invoices": invoices,
            "minute_seconds": minute,
            "minute_shrunk": minute != 60.0,
            "note": (f"The stand-in's throttling minute (and syncbot's limiter, QBO_LIMIT_MINUTE_SECONDS) is shrunk "
                     f"from 60 s to {minute:g} s; the limits per minute are QBO's real ones. Figures per minute are "
                     f"per provider-minute: ops / (elapsed / {minute:g} s)." if minute != 60.0 else
                     "Real 60 s minute."),
            "standin": {"requests_per_minute": REQUESTS_PER_MINUTE, "batch_per_minute": BATCH_PER_MINUTE,
                        "max_concurrent": MAX_CONCURRENT, "retry_after_header": False, "latency_seconds": 0.0,
                        "served_in": "its own process" if args.standin == "process" else "a thread of the bench"},
            "ceilings": {"per_item": ceiling_for("per_item"), "per_request": ceiling_for("per_request")},
            "failed_entries": ("made for real: the invoices' first push (Sync Now, in batches of 30) got QuickBooks' "
                               "500 InternalServerError (QBO-39, injected with fail_next on the batch path) on every "
                               "batch request; the engine wrote the open error entries (kind unknown, HTTP 500, code "
                               "3100). That first attempt ran with the limiter opened wide and is not timed."),
            "baseline": ("one POST /invoice per record, one at a time, plain httpx, no limiter; on 429 wait "
                         "Retry-After or 60 s scaled to the minute, then resend"),
            "pacing_only": ("the same invoices as batches of 30 through syncbot's QuickBooksProvider and limiter "
                            "from batch_workers threads, no database work per record: what the limiter alone "
                            "reaches"),
            "batch_workers": args.batch_workers or EngineConfig().batch_workers,
            "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "code": code_version(),
        },
        "aim": {"fraction_of_ceiling": AIM_FRACTION, "throttled_429": 0},
        "aim_met": all(r["fraction_of_ceiling"] >= AIM_FRACTION and r["throttled_429"] == 0 and r["all_synced"]
                       for r in results.values()),
        "results": results,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(report))
    print(f"\naim (>= {AIM_FRACTION:.0%} of the ceiling, 0 x 429): {'met' if report['aim_met'] else 'NOT met'}; "
          f"results in {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
