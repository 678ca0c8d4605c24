"""`/sync-log` on a big sync log: how long each filter's page takes on 1,000,000 entries, SQLite and PostgreSQL.

    python -m bench.synclog                    # 1,000,000 entries, SQLite and PostgreSQL (DEFAULT_PG_URL), 20 runs
    python -m bench.synclog --quick            # 100,000 entries, 5 runs, results to bench/results/synclog.quick.json
    python -m bench.synclog --pg URL           # PostgreSQL server to use (a database is created beside URL's)
    python -m bench.synclog --no-pg            # SQLite only

The log is filled once per schema version and size (bulk inserts: executemany on SQLite, COPY on PostgreSQL) and
kept: a SQLite file under bench/.cache and a PostgreSQL database ``synclog_<alembic head>_<entries>``, reused while
the schema's head and the size are the same (``--refill`` fills again). One account, three connections, four
entities, about 3 % errors and warnings (a fifth of them open), names like "Smith Construction", invoice numbers,
QuickBooks' error messages as details, a year of entries.

Each filter is timed as `/sync-log` runs it: ``sync.log.parse_filter`` with the account, ``sync.log.page`` (the
page, its cursors and its counts) and ``bot.blocks.log_page`` (the Block Kit answer), in a fresh session, ``--runs``
times; p50 and p95 per filter and database go to bench/results/synclog.json. The CLI (`syncbot sync-log ...`, run
in-process through typer, services built and all) is timed for a few filters too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.replicas import code_version, machine

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/benchdb"
#: The newest entry's time: fixed, so a cached log answers the same filters the same way whatever the day.
NEWEST = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=365)
#: The schema the entries are inserted at; the migrations after it then run over the full log (their time is
#: printed: migration 0019 builds the search indexes of entries already there).
FILL_AT = "0018"
#: A filter whose first three runs all take longer than this is timed three times only (its p95 is then its max).
SLOW_MS = 2000.0

SURNAMES = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
            "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
            "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
            "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
            "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gómez",
            "Müller", "Dubois", "Lefèvre", "Østergaard", "Kowalski", "O'Brien", "McAllister", "Nakamura", "Schmidt")
TRADES = ("Construction", "Plumbing", "Electric", "Roofing", "Builders", "Landscaping", "Painting", "HVAC",
          "Concrete", "Drywall", "Carpentry", "Excavation", "Masonry", "Flooring", "Glass & Glazing", "Supply Co.")
ITEMS = ("Drywall install", "Framing labor", "Concrete pour", "Rebar #4", "Electrical rough-in", "Finish carpentry",
         "Roof tear-off", "Shingles (bundle)", "Paint - interior", "Permit fee", "Dumpster rental", "Site cleanup",
         "HVAC service call", "Plumbing fixture", "Tile setting", "Excavator hour", "Travel", "Materials markup")
ERRORS: dict[str, tuple[str, ...]] = {
    "duplicate": ("Duplicate Name Exists Error (code 6240): The name supplied already exists. : Another customer, "
                  "vendor or employee is already using this name. Please use a different name. {name}",),
    "validation": ("Business Validation Error (code 6000): A business validation error has occurred while "
                   "processing your request: Invoice {number}: Line 2: Item is required.",
                   "Required param missing, need to supply the required value for the API (code 2020): "
                   "Required parameter Line.Amount is missing in the request for {number}"),
    "not_found": ("Object Not Found (code 610): Something you're trying to use has been made inactive. Check the "
                  "fields with accounts, customers, items, vendors or employees. {name}",),
    "unknown": ("HTTP 500 InternalServerError (code 3100): An application error has occurred while processing "
                "your request. System Failure Error: Something went wrong. intuit_tid 1-{tid}",),
    "closed_period": ("Account Period Closed (code 6140): The account period has closed. You can't save "
                      "transactions dated on or before the closing date. {number}",),
    "conflict": ("Stale Object Error (code 5010): You and {name} were working on this at the same time. "
                 "{name} finished before you did, so your work was not saved.",),
    "locked": ("Lock Not Granted (code 6000): The requested object is locked by another user. {number}",),
    "total_mismatch": ("QuickBooks computed total ${total} for {number}; JobsiteOn has ${other} (tax differs).",),
    "rate_limited": ("ThrottleExceeded (code 003001): Throttle exceeded: 500 requests per minute per realm.",),
}
ERROR_KINDS = ("duplicate", "validation", "not_found", "unknown", "closed_period", "conflict", "locked")
WARNING_KINDS = ("total_mismatch", "rate_limited")
COLUMNS = ("id", "created_at", "account_id", "connection_id", "entity", "record_id", "record_label", "remote_id",
           "direction", "status", "kind", "details", "codes", "http_status", "attempt", "actor", "resolved_at")


def filters(last_id: int) -> dict[str, dict[str, Any]]:
    """The filters timed: a name, the words as typed and, for a next page, the cursor."""
    week = (NEWEST - dt.timedelta(days=7)).date().isoformat()
    mid = (NEWEST - SPAN / 2).date().isoformat()
    return {
        "all": {"words": ""},
        "errors": {"words": "errors"},
        "warnings": {"words": "warnings"},
        "open": {"words": "open"},
        "entity:invoice": {"words": "entity:invoice"},
        "entity:item": {"words": "entity:item"},
        "kind:duplicate": {"words": "kind:duplicate"},
        "kind:locked": {"words": "kind:locked"},
        "status:error": {"words": "status:error"},
        "status:synced": {"words": "status:synced"},
        "direction:pull": {"words": "direction:pull"},
        "since:7d": {"words": f"since:{week}"},
        "until:mid": {"words": f"until:{mid}"},
        "connection:2": {"words": "connection:2"},
        "text:Smith": {"words": "Smith"},
        "text:Smith Construction": {"words": "Smith Construction"},
        "text:müller (folded)": {"words": "MÜLLER"},
        "text:nothing": {"words": "zzqx-nothing"},
        "text:2 chars nothing": {"words": "zq"},
        "errors entity:invoice Smith": {"words": "errors entity:invoice Smith"},
        "Smith until:mid": {"words": f"Smith until:{mid}"},
        "Smith since:7d": {"words": f"Smith since:{week}"},
        "text:nothing until:mid": {"words": f"zzqx-nothing until:{mid}"},
        "text:everywhere until:mid": {"words": f"quickbooks until:{mid}"},
        "next page (all)": {"words": "", "before": last_id - 10},
        "next page (deep)": {"words": "", "before": last_id // 2},
        "next page (Smith)": {"words": "Smith", "next": True},
    }


# ------------------------------------------------------------------------------------------------------ fill


def _rows(n: int, connections: list[int], account_id: int, seed: int = 17) -> Iterator[tuple[Any, ...]]:
    """``n`` sync log entries, oldest first (ids 1..n), as tuples in COLUMNS order."""
    rnd = random.Random(seed)
    start = NEWEST - SPAN
    step = SPAN / n
    entities = ("contact",) * 20 + ("item",) * 10 + ("invoice",) * 50 + ("payment",) * 20
    for i in range(1, n + 1):
        when = start + step * i + dt.timedelta(milliseconds=rnd.randint(0, 50))
        entity = entities[rnd.randrange(100)]
        rec = rnd.randrange(1, 40_000)
        name = f"{SURNAMES[rec % len(SURNAMES)]} {TRADES[(rec // len(SURNAMES)) % len(TRADES)]}"
        number = f"INV-{10_000 + rec}"
        label = {"contact": name, "item": ITEMS[rec % len(ITEMS)], "invoice": number,
                 "payment": f"Payment ${rec % 5000 + 10:,}.00 on {when:%b} {when.day}"}[entity]
        direction = "pull" if rnd.random() < 0.3 else "push"
        roll = rnd.random()
        kind = codes = http = resolved = None
        actor = "sync"
        if roll < 0.022:
            status, kind = "error", ERROR_KINDS[rnd.randrange(len(ERROR_KINDS))]
        elif roll < 0.030:
            status, kind = "warning", WARNING_KINDS[rnd.randrange(len(WARNING_KINDS))]
        elif roll < 0.050:
            status = "info"
        elif roll < 0.053:
            status = "pending"
        else:
            status = "synced"
        if kind:
            template = ERRORS[kind][rnd.randrange(len(ERRORS[kind]))]
            details = template.format(name=name, number=number, tid=f"{rnd.getrandbits(40):x}",
                                      total=f"{rec % 900 + 100}.25", other=f"{rec % 900 + 100}.00")
            codes, http = {"duplicate": "6240", "validation": "6000", "not_found": "610", "unknown": "3100",
                           "closed_period": "6140", "conflict": "5010", "locked": "6000",
                           "total_mismatch": None, "rate_limited": "003001"}[kind], 400
            if rnd.random() < 0.8:  # most errors were fixed since; a fifth stay open
                resolved = when + dt.timedelta(hours=2)
        elif status == "info":
            details = f"QuickBooks changed {entity} {label} (CDC): updated in JobsiteOn."
        elif status == "pending":
            details = None
        else:
            verb = "Created" if rnd.random() < 0.4 else "Updated"
            kind_word = {"contact": "customer", "item": "item", "invoice": "invoice", "payment": "payment"}[entity]
            details = f"{verb} QuickBooks {kind_word} {rnd.randrange(1, 90_000)}"
        yield (i, when, account_id, connections[rnd.randrange(len(connections))], entity, rec, label,
               str(rnd.randrange(1, 90_000)), direction, status, kind, details, codes, http, 1, actor, resolved)


def _head() -> str:
    from alembic.script import ScriptDirectory

    from sync.db import alembic_config

    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())


def _setup_account(url: str) -> tuple[int, list[int]]:
    from sqlalchemy.orm import sessionmaker

    from sync import db
    from sync.models import Account, Connection, ConnectionStatus

    engine = db.make_engine(url)
    try:
        with sessionmaker(engine)() as session, session.begin():
            account = Account(name="Bench Builders", timezone="America/Chicago")
            session.add(account)
            session.flush()
            # one connection per provider per account: the three are told apart by their provider's name here
            conns = [Connection(account_id=account.id, realm_id=f"9130LOG{n}",
                                provider="quickbooks" if n == 0 else f"quickbooks-{n + 1}",
                                status=ConnectionStatus.CONNECTED.value) for n in range(3)]
            session.add_all(conns)
            session.flush()
            return account.id, [c.id for c in conns]
    finally:
        engine.dispose()


def fill_sqlite(path: Path, n: int) -> float:
    """A new SQLite file at ``path`` migrated to FILL_AT, ``n`` entries inserted, then migrated to the head: the
    seconds the inserts took."""
    from sync import db

    url = f"sqlite:///{path}"
    db.upgrade(url, FILL_AT)
    account_id, conns = _setup_account(url)
    engine = db.make_engine(url)
    started = time.perf_counter()
    try:
        sql = (f"INSERT INTO sync_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})")
        fmt = "%Y-%m-%d %H:%M:%S.%f"
        with engine.begin() as conn:
            batch: list[tuple[Any, ...]] = []
            for row in _rows(n, conns, account_id):
                row = (*row[:1], row[1].astimezone(dt.UTC).strftime(fmt), *row[2:16],
                       row[16].strftime(fmt) if row[16] else None)
                batch.append(row)
                if len(batch) >= 20_000:
                    conn.exec_driver_sql(sql, batch)
                    batch = []
            if batch:
                conn.exec_driver_sql(sql, batch)
    finally:
        engine.dispose()
    took = time.perf_counter() - started
    started = time.perf_counter()
    db.upgrade(url)
    print(f"sqlite: migrated {n:,} entries from {FILL_AT} to {_head()} in {time.perf_counter() - started:.1f} s")
    return took


def fill_pg(url: str, n: int) -> float:
    """The (empty) PostgreSQL database at ``url`` migrated to FILL_AT, ``n`` entries copied in, then migrated to
    the head and analyzed: the seconds the COPY took."""
    import psycopg

    from sync import db

    db.upgrade(url, FILL_AT)
    account_id, conns = _setup_account(url)
    started = time.perf_counter()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY sync_log ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in _rows(n, conns, account_id):
                copy.write_row(row)
        conn.execute("SELECT setval(pg_get_serial_sequence('sync_log', 'id'), %s)", (n,))
        conn.commit()
    took = time.perf_counter() - started
    started = time.perf_counter()
    db.upgrade(url)
    print(f"postgresql: migrated {n:,} entries from {FILL_AT} to {_head()} in {time.perf_counter() - started:.1f} s")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE sync_log")  # what autovacuum does after a big load
    return took


def sqlite_log(n: int, refill: bool) -> str:
    """The cached SQLite log of ``n`` entries at the current schema: its URL (filled first when missing)."""
    CACHE_DIR.mkdir(exist_ok=True)
    path = CACHE_DIR / f"synclog-{_head()}-{n}.db"
    if refill or not path.exists():
        for old in CACHE_DIR.glob(path.name + "*"):
            old.unlink()
        tmp = path.with_suffix(".filling")
        for old in CACHE_DIR.glob(tmp.name + "*"):
            old.unlink()
        took = fill_sqlite(tmp, n)
        tmp.rename(path)
        print(f"sqlite: filled {n:,} entries in {took:.1f} s ({path.name})")
    return f"sqlite:///{path}"


def pg_log(pg_url: str, n: int, refill: bool) -> str:
    """The cached PostgreSQL log of ``n`` entries at the current schema (a database beside ``pg_url``'s)."""
    import psycopg

    base, _, _ = pg_url.rpartition("/")
    name = f"synclog_{_head()}_{n}"
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        if exists and refill:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = False
        if not exists:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}_filling" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}_filling"')
    url = f"{base}/{name}"
    if not exists:
        took = fill_pg(f"{base}/{name}_filling", n)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}_filling" RENAME TO "{name}"')
        print(f"postgresql: filled {n:,} entries in {took:.1f} s ({name})")
    return url


# ------------------------------------------------------------------------------------------------------ time


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def time_filters(url: str, runs: int, only: set[str] | None = None) -> dict[str, Any]:
    """Each filter's page through ``sync.log.page`` and ``bot.blocks.log_page``, ``runs`` times: ms figures."""
    from sqlalchemy import func, select

    import bot.blocks as blocks
    from sync import db
    from sync.log import page, parse_filter
    from sync.models import Account, SyncLogEntry

    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    out: dict[str, Any] = {}
    try:
        with sessions() as session:
            account_id = session.scalars(select(Account.id).order_by(Account.id)).first()
            last_id = int(session.scalar(select(func.max(SyncLogEntry.id))) or 0)
        for name, spec in filters(last_id).items():
            if only and name not in only:
                continue
            times: list[float] = []
            shown = ""
            for run in range(runs):
                if run == 3 and min(times) > SLOW_MS:  # a filter that stays slow: 3 runs say so
                    break
                started = time.perf_counter()
                with sessions() as session:
                    flt = parse_filter(spec["words"], account_id=account_id)
                    before = spec.get("before")
                    if spec.get("next"):
                        first = page(session, flt, size=10)
                        before = first.next_before
                        started = time.perf_counter()  # the next page alone
                    result = page(session, flt, before=before, size=10)
                    message = blocks.log_page(result, tz="America/Chicago", filter_text=spec["words"])
                times.append((time.perf_counter() - started) * 1000)
                shown = _heading(message)
            out[name] = {"words": spec["words"], "p50_ms": round(statistics.median(times), 1),
                         "p95_ms": round(_percentile(times, 95), 1), "max_ms": round(max(times), 1),
                         "runs": len(times), "shown": shown}
            print(f"  {name:<30} p50 {out[name]['p50_ms']:>8.1f} ms  p95 {out[name]['p95_ms']:>8.1f} ms  {shown}")
    finally:
        engine.dispose()
    return out


def _heading(message: Any) -> str:
    """The context line of a log page ("entries 1-10 of ..."), or its first section's start."""
    for block in (message.get("blocks") if isinstance(message, dict) else []) or []:
        if block.get("type") == "context":
            return str(block["elements"][0].get("text", ""))[:80]
    return ""


def time_cli(url: str, runs: int) -> dict[str, Any]:
    """`syncbot sync-log WORDS` in-process (typer's runner; services built per run as the command does), then
    `syncbot sync-log errors` as a new process (imports and all)."""
    import os

    from typer.testing import CliRunner

    from bot.cli import app
    from bot.config import get_settings

    runner = CliRunner()
    out: dict[str, Any] = {}
    old = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear() if hasattr(get_settings, "cache_clear") else None
    try:
        runner.invoke(app, ["sync-log", "--limit", "10"])  # warm-up: typer's and the commands' first imports
        for words in (["errors"], ["entity:invoice"], ["Smith"], ["zzqx-nothing"]):
            times: list[float] = []
            for _ in range(runs):
                started = time.perf_counter()
                result = runner.invoke(app, ["sync-log", *words, "--limit", "10"])
                times.append((time.perf_counter() - started) * 1000)
                if result.exit_code != 0:
                    raise RuntimeError(f"syncbot sync-log {' '.join(words)}: {result.output}")
            name = " ".join(words)
            out[name] = {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(_percentile(times, 95), 1),
                         "runs": runs, "first_line": result.output.splitlines()[0][:120]}
            print(f"  cli {name:<26} p50 {out[name]['p50_ms']:>8.1f} ms  p95 {out[name]['p95_ms']:>8.1f} ms")
        # The same as a person runs it: a new Python process each time, its imports included.
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bot.cli", "sync-log", "errors", "--limit", "10"], check=True,
                           capture_output=True, env={**os.environ, "DATABASE_URL": url})
            times.append((time.perf_counter() - started) * 1000)
        out["process: errors"] = {"p50_ms": round(statistics.median(times), 1),
                                  "p95_ms": round(_percentile(times, 95), 1), "runs": runs}
        print(f"  cli process: errors           p50 {statistics.median(times):>8.1f} ms")
    finally:
        if old is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = old
    return out


def table(results: dict[str, Any]) -> str:
    """A markdown table: p50 / p95 per filter, one column pair per database."""
    dbs = list(results)
    names: list[str] = []
    for db_name in dbs:
        names += [n for n in results[db_name]["filters"] if n not in names]
    lines = ["| filter | " + " | ".join(f"{d} p50 ms | {d} p95 ms" for d in dbs) + " |",
             "|---|" + "---:|---:|" * len(dbs)]
    for name in names:
        cells = []
        for d in dbs:
            r = results[d]["filters"].get(name)
            cells += [f"{r['p50_ms']:,.1f}", f"{r['p95_ms']:,.1f}"] if r else ["", ""]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 entries, 5 runs")
    parser.add_argument("--entries", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--pg", default=DEFAULT_PG_URL, help="PostgreSQL URL (a database is made beside it)")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--refill", action="store_true", help="fill the cached logs again")
    parser.add_argument("--only", action="append", help="time only this filter (repeat)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    n = args.entries or (100_000 if args.quick else 1_000_000)
    runs = args.runs or (5 if args.quick else 20)
    output = Path(args.output) if args.output else RESULTS_DIR / ("synclog.quick.json" if args.quick
                                                                  else "synclog.json")
    only = set(args.only) if args.only else None
    results: dict[str, Any] = {}
    targets: list[tuple[str, str]] = []
    if not args.no_sqlite:
        targets.append(("sqlite", sqlite_log(n, args.refill)))
    if not args.no_pg:
        targets.append(("postgresql", pg_log(args.pg, n, args.refill)))
    for db_name, url in targets:
        print(f"{db_name}: {n:,} entries, {runs} runs per filter")
        results[db_name] = {"filters": time_filters(url, runs, only)}
        if not args.no_cli and not only:
            results[db_name]["cli"] = time_cli(url, max(3, runs // 4))
    report = {"bench": "synclog", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "entries": n, "runs": runs, "schema_head": _head(), "machine": machine(), "code": code_version(),
              "results": results}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print()
    print(table(results))
    print(f"\nwritten to {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


if __name__ == "__main__":
    main()
