"""Benchmark: syncbot's Retry All against the best plain client, python-quickbooks, on one QuickBooks stand-in.

    python -m bench.retry_all_vs_peer [--quick] [--minute-seconds 12] [--invoices 1000,5000] [--metering both]

One stand-in process serves every contestant, with QuickBooks' limits per realm (500 request units a minute, 40
batch requests a minute, 10 concurrent; no Retry-After on a 429: Intuit "Rate limits and throttles",
docs/platform-facts.md "QuickBooks: throttling") and 200 ms per request, under each batch metering (``per_item``: a
batch costs its items; ``per_request``: it costs 1). The minute is shrunk (``--minute-seconds``, 12 s by default)
and the time per request with it (200 ms x minute / 60), so every ratio of the real minute holds (a burst of 10
concurrent requests spends the budget in a sixth of a minute) while 5,000 records take two minutes, not ten.
Records per minute are per metered minute: ``records / (elapsed / minute_seconds)``.

For each metering and each N, with the stand-in's books and limits reset before each contestant:

1. **syncbot**: a fresh SQLite database, the real OAuth flow, 100 contacts and 10 items synced, then N invoices whose
   first push QuickBooks answered 500 (QBO-39, injected on the batch path): N open errors the engine wrote itself
   (``bench.retry_all.prepare`` and ``seed_failures``, untimed). Then, with both sides' windows empty, the timed
   ``services.engine.retry_all`` over real HTTP. Its CPU share is ``time.process_time()`` of the syncbot process
   (every thread; the stand-in is another process) over the wall time of the run.
2. **python-quickbooks, one at a time** and 3. **with 10 threads** (one client per thread): the same N invoices
   (syncbot's own payloads, with the ids of the customers and items the client created itself, untimed), each
   ``Invoice.from_json(payload).save(qb=client)``. python-quickbooks has no setting for its base URL: its client
   builds every URL from the ``sandbox_api_url_v3`` attribute, which the bench sets on each client instance (no
   module constant is patched); its session is the OAuth2Session its ``_start_session`` would make (intuit-oauth's
   AuthClient is left out: it fetches Intuit's discovery document from the internet when made). It retries
   nothing; on a 429 (python-quickbooks raises ``QuickbooksException``
   "Error reading json response" with QuickBooks' XML ThrottleExceeded, code 3001) the bench's loop does what
   Intuit says: wait 60 s (one metered minute) and send again.

Results: ``bench/results/retry_all_vs_peer.json`` (``--quick``: ``retry_all_vs_peer.quick.json``) with machine(),
code_version(), the date, the load average before and after, and per metering and N each contestant's records per
minute, 429s (the stand-in's count), elapsed seconds, and syncbot's ratio to the best plain client.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.replicas import machine
from bench.retry_all import (
    MAX_CONCURRENT,
    REALM,
    RESULTS_DIR,
    StandIn,
    _quiet,
    code_version,
    invoice_payloads,
    prepare,
    seed_failures,
)

log = logging.getLogger("bench.retry_all_vs_peer")

os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in is plain HTTP on loopback
REAL_LATENCY = 0.2  # seconds per request at a real (60 s) minute
PLAIN_THREADS = 10


def load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def configure(standin: StandIn, minute: float, metering: str, latency: float) -> None:
    """Reset the stand-in's books, tokens and limits, then set the minute, metering and latency of this run."""
    standin._call("POST", "/_control/reset", {})
    standin._call("POST", "/_control/config", {"minute_seconds": minute, "batch_metering": metering,
                                               "latency_seconds": latency})


def set_latency(standin: StandIn, latency: float) -> None:
    standin._call("POST", "/_control/config", {"latency_seconds": latency})


def clear_window(standin: StandIn) -> None:
    """Empty the realm's throttle window (and its peak): what the untimed setup spent is forgotten."""
    standin._call("POST", f"/_control/realms/{REALM}/throttle/clear", {})


def per_minute(records: int, elapsed: float, minute: float) -> float:
    return round(records / (elapsed / minute), 1) if elapsed > 0 else 0.0


# ---------------------------------------------------------------------------------------------- syncbot


def run_syncbot(standin: StandIn, minute: float, metering: str, invoices: int, latency: float) -> tuple[
        dict[str, Any], list[dict[str, Any]], dict[str, str], dict[str, dict[str, Any]]]:
    """syncbot's Retry All over ``invoices`` failing invoices. Returns its figures, the invoice payloads it sent
    (for the plain clients), the names of the customers and the items (as QuickBooks holds them) by their ids in
    its books."""
    from sqlalchemy import delete

    from sync.models import QboSpend

    configure(standin, minute, metering, 0.0)
    with tempfile.TemporaryDirectory(prefix="bench-vs-peer-") as tmp, _quiet("syncbot"):
        prep = prepare(standin, Path(tmp), minute, metering, invoices)
        seed = seed_failures(prep, standin, invoices, minute)
        payloads = invoice_payloads(prep)
        customers = {str(c["Id"]): str(c["DisplayName"]) for c in standin._call(
            "GET", f"/_control/realms/{REALM}/entities/customer")["Customer"]}
        items = {str(i["Id"]): i for i in standin._call("GET", f"/_control/realms/{REALM}/entities/item")["Item"]}
        with prep.services.sessions() as session, session.begin():  # both sides forget the untimed setup
            session.execute(delete(QboSpend))
        clear_window(standin)
        set_latency(standin, latency)
        before = standin.stats()
        wall0, cpu0 = time.monotonic(), time.process_time()
        summary = prep.services.engine.retry_all(prep.connection_id, "bench")
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        after = standin.stats()
        left = len(prep.services.engine.open_errors(prep.connection_id))
        prep.services.close()
    figures = {
        "records": summary.synced, "errors": summary.errors, "open_errors_left": left,
        "elapsed_s": round(wall, 2), "records_per_minute": per_minute(summary.synced, wall, minute),
        "throttled_429": after["throttled"] - before["throttled"], "requests": after["requests"] - before["requests"],
        "window_peak": after["window_peak"], "cpu_s": round(cpu, 2), "cpu_share_of_wall": round(cpu / wall, 3),
        "seed": seed,
    }
    return figures, payloads, customers, items


# ---------------------------------------------------------------------------------------------- python-quickbooks


def plain_client(standin: StandIn, tokens: dict[str, Any]) -> Any:
    """A python-quickbooks client on the stand-in's company, as its ``_start_session`` builds one (an OAuth2Session
    holding the tokens) but without intuit-oauth's ``AuthClient``, which fetches Intuit's discovery document from
    developer.intuit.com when made; its base URL set on the instance."""
    import warnings

    from quickbooks import QuickBooks
    from requests_oauthlib import OAuth2Session

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = QuickBooks(company_id=REALM, minorversion=75)
    client.sandbox = True
    client.sandbox_api_url_v3 = f"{standin.url}/v3"  # python-quickbooks builds every URL from this attribute
    client.session = OAuth2Session("sandbox-client-id", token={"access_token": tokens["access_token"],
                                                               "refresh_token": tokens["refresh_token"]})
    return client


def is_throttled(exc: Exception) -> bool:
    """A 429 as python-quickbooks reports it: QuickBooks' XML fault 3001 ThrottleExceeded, unread as JSON."""
    text = f"{exc} {getattr(exc, 'detail', '')}"
    return "ThrottleExceeded" in text or "003001" in text


def save_with_retry(client: Any, cls: Any, payload: dict[str, Any], minute: float,
                    sleep: Callable[[float], None] = time.sleep) -> tuple[Any, int]:
    """Save one object; on a 429 wait one metered minute (Intuit: 60 s) and send again. (saved object, 429s met)."""
    from quickbooks.exceptions import QuickbooksException

    throttled = 0
    while True:
        try:
            return cls.from_json(payload).save(qb=client), throttled
        except QuickbooksException as exc:
            if not is_throttled(exc):
                raise
            throttled += 1
            sleep(minute)


def remap(payload: dict[str, Any], customers: dict[str, str], items: dict[str, dict[str, Any]],
          cust_ids: dict[str, str], item_ids: dict[str, str]) -> dict[str, Any]:
    """syncbot's invoice payload with the plain client's own customer and item ids (matched by name)."""
    from sync.providers.quickbooks import dumps

    out = json.loads(dumps(payload))  # as syncbot puts it on the wire (dates, amounts)
    out["CustomerRef"]["value"] = cust_ids[customers[str(out["CustomerRef"]["value"])]]
    for line in out.get("Line", []):
        ref = (line.get("SalesItemLineDetail") or {}).get("ItemRef")
        if ref:
            ref["value"] = item_ids[str(items[str(ref["value"])]["Name"])]
    return out


def run_plain(standin: StandIn, minute: float, metering: str, latency: float, threads: int,
              payloads: list[dict[str, Any]], customers: dict[str, str],
              items: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """python-quickbooks pushing ``payloads`` one invoice a request, from ``threads`` threads (1: sequential)."""
    from quickbooks.objects.customer import Customer
    from quickbooks.objects.invoice import Invoice
    from quickbooks.objects.item import Item

    configure(standin, minute, metering, 0.0)
    tokens = standin._call("POST", f"/_control/realms/{REALM}/tokens", {})
    setup = plain_client(standin, tokens)
    used_customers = {str(p["CustomerRef"]["value"]) for p in payloads}
    used_items = {str(ln["SalesItemLineDetail"]["ItemRef"]["value"]) for p in payloads for ln in p.get("Line", [])
                  if (ln.get("SalesItemLineDetail") or {}).get("ItemRef")}
    cust_ids = {customers[c]: str(save_with_retry(setup, Customer, {"DisplayName": customers[c]}, minute)[0].Id)
                for c in sorted(used_customers)}
    item_ids = {}
    for i in sorted(used_items):
        body = {k: v for k, v in items[i].items() if k in ("Name", "Type", "Sku", "UnitPrice", "IncomeAccountRef",
                                                             "Description", "Taxable")}
        item_ids[str(body["Name"])] = str(save_with_retry(setup, Item, body, minute)[0].Id)
    work = [remap(p, customers, items, cust_ids, item_ids) for p in payloads]
    clear_window(standin)
    set_latency(standin, latency)
    local = threading.local()
    met = [0]
    lock = threading.Lock()

    def push(payload: dict[str, Any]) -> None:
        if not hasattr(local, "client"):
            local.client = plain_client(standin, tokens)
        _, throttled = save_with_retry(local.client, Invoice, payload, minute)
        with lock:
            met[0] += throttled

    before = standin.stats()
    wall0 = time.monotonic()
    if threads == 1:
        for payload in work:
            push(payload)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(push, work))
    wall = time.monotonic() - wall0
    after = standin.stats()
    written = after["writes"] - before["writes"]
    return {"records": written, "elapsed_s": round(wall, 2), "records_per_minute": per_minute(written, wall, minute),
            "throttled_429": after["throttled"] - before["throttled"], "throttled_seen_by_client": met[0],
            "requests": after["requests"] - before["requests"], "window_peak": after["window_peak"],
            "threads": threads}


# ---------------------------------------------------------------------------------------------- the run


def one_case(standin: StandIn, minute: float, metering: str, invoices: int, latency: float) -> dict[str, Any]:
    log.warning("case metering=%s invoices=%d: syncbot", metering, invoices)
    syncbot, payloads, customers, items = run_syncbot(standin, minute, metering, invoices, latency)
    log.warning("  syncbot %s/min, 429s %s, %.1f s", syncbot["records_per_minute"], syncbot["throttled_429"],
                syncbot["elapsed_s"])
    plain = {}
    for name, threads in (("python_quickbooks_sequential", 1), (f"python_quickbooks_{PLAIN_THREADS}_threads",
                                                                 PLAIN_THREADS)):
        plain[name] = run_plain(standin, minute, metering, latency, threads, payloads, customers, items)
        log.warning("  %s %s/min, 429s %s, %.1f s", name, plain[name]["records_per_minute"],
                    plain[name]["throttled_429"], plain[name]["elapsed_s"])
    best = max(plain, key=lambda k: plain[k]["records_per_minute"])
    ratio = syncbot["records_per_minute"] / plain[best]["records_per_minute"] if plain[best][
        "records_per_minute"] else None
    return {"metering": metering, "invoices": invoices, "syncbot": syncbot, **plain, "best_plain": best,
            "ratio_syncbot_to_best_plain": round(ratio, 3) if ratio else None}


def table(cases: list[dict[str, Any]]) -> str:
    rows = [("metering", "N", "contestant", "records/min", "429s", "elapsed s", "ratio")]
    for c in cases:
        for name in ("syncbot", "python_quickbooks_sequential", f"python_quickbooks_{PLAIN_THREADS}_threads"):
            r = c[name]
            rows.append((c["metering"], str(c["invoices"]), name, f"{r['records_per_minute']:,.0f}",
                         str(r["throttled_429"]), f"{r['elapsed_s']:.1f}",
                         str(c["ratio_syncbot_to_best_plain"]) if name == "syncbot" else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 invoices, 6 s minute")
    parser.add_argument("--minute-seconds", type=float, default=None)
    parser.add_argument("--invoices", default=None, help="comma-separated N (default 1000,5000)")
    parser.add_argument("--metering", choices=("both", "per_item", "per_request"), default="both")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    minute = args.minute_seconds or (6.0 if args.quick else 12.0)
    sizes = [int(n) for n in (args.invoices or ("300" if args.quick else "1000,5000")).split(",")]
    meterings = ("per_item", "per_request") if args.metering == "both" else (args.metering,)
    latency = round(REAL_LATENCY * minute / 60, 4)
    output = args.output or RESULTS_DIR / ("retry_all_vs_peer.quick.json" if args.quick else "retry_all_vs_peer.json")
    load_before = load()
    started = dt.datetime.now(dt.UTC)
    standin = StandIn(minute, "per_item")
    try:
        cases = [one_case(standin, minute, metering, n, latency) for metering in meterings for n in sizes]
    finally:
        standin.stop()
    result = {
        "bench": "retry_all_vs_peer", "date": started.isoformat(timespec="seconds"), "machine": machine(),
        "code": code_version(), "load_average_before": load_before, "load_average_after": load(),
        "config": {
            "minute_seconds": minute, "latency_seconds": latency, "requests_per_minute": 500,
            "batch_per_minute": 40, "max_concurrent": MAX_CONCURRENT, "plain_threads": PLAIN_THREADS,
            "note": (f"The metered minute is shrunk from 60 s to {minute:g} s on both sides (the stand-in and "
                     f"syncbot's QBO_LIMIT_MINUTE_SECONDS), and the 200 ms per request with it ({latency * 1000:g} "
                     "ms), so the real minute's ratios hold; records per minute are per metered minute. One "
                     "stand-in process for every contestant, its books and limits reset before each. "
                     "python-quickbooks 0.9.12 pointed at the stand-in through its client's sandbox_api_url_v3 "
                     "attribute; on a 429 it waits one metered minute and sends again (it retries nothing "
                     "itself). The untimed setup runs without latency."),
        },
        "cases": cases,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(cases))
    print(f"minute {minute:g} s, {latency * 1000:g} ms per request; load {load_before} -> {load()}; -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
