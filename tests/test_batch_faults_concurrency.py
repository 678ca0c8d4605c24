"""Three `syncbot retry-all` processes at once (PostgreSQL: SYNCBOT_TEST_DATABASE_URL=...breaker), some killed,
then run to the end. Counts: copies per invoice (books), updates per invoice (QuickBooks SyncToken > 0 means it
was written again after its create), synced attempts per invoice in the sync log, replays, leftovers."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from sqlalchemy import select

from sync.models import SyncLogEntry
from tests.batch_faults import leftovers, seed
from tests.conftest import QBO
from tests.test_retry_all_faults import _cli_env

N = int(os.environ.get("BRK_INVOICES", "240"))


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _report(services: Any, qbo: QBO) -> dict[str, Any]:
    invs = qbo.standin.entities(qbo.realm, "Invoice")
    copies = Counter(str(i["DocNumber"]) for i in invs)
    updated = sorted(str(i["DocNumber"]) for i in invs if str(i.get("SyncToken")) != "0")
    with services.sessions() as session:
        synced = Counter(session.execute(select(SyncLogEntry.record_id).where(
            SyncLogEntry.entity == "invoice", SyncLogEntry.status == "synced")).scalars())
    return {"in_books": len(invs), "twice_in_books": {k: v for k, v in copies.items() if v > 1},
            "updated_after_create": updated[:10], "n_updated": len(updated),
            "records_synced_more_than_once": sum(1 for v in synced.values() if v > 1),
            "replayed": sum(1 for e in qbo.standin.request_log(qbo.realm) if e["outcome"] == "replayed"),
            "open_errors": None, **leftovers(services)}


def test_three_concurrent_retry_all(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=N)
    env = _cli_env(services)
    qbo.standin.configure(latency_seconds=0.15)
    procs = [_start(env) for _ in range(3)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, o in zip(procs, outs, strict=False):
        print("exit", p.returncode, "|", " / ".join(line for line in o.splitlines() if "retrying" not in line)[-300:])
    r = _report(services, qbo)
    r["open_errors"] = len(services.engine.open_errors(cid))
    print("after 3 concurrent:", r)
    assert r["twice_in_books"] == {} and r["n_updated"] == 0 and r["records_synced_more_than_once"] == 0


def test_three_concurrent_retry_all_with_kills(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=N)
    env = _cli_env(services)
    qbo.standin.configure(latency_seconds=0.15)
    rng = random.Random(int(os.environ.get("BRK_SEED", "7")))
    for rnd in range(3):
        procs = [_start(env) for _ in range(3)]
        time.sleep(rng.uniform(2.0, 5.0))
        victims = rng.sample(procs, 2)
        for p in victims:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            out = p.communicate(timeout=600)[0]
            print(f"round {rnd} exit {p.returncode}", " / ".join(
                line for line in out.splitlines() if "retrying" not in line)[-200:])
    qbo.standin.configure(latency_seconds=0.0)
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                              capture_output=True, text=True, timeout=300)
        print("finish exit", done.returncode, done.stdout.strip()[-200:], done.stderr.strip()[-300:])
        if done.returncode == 0:
            break
    r = _report(services, qbo)
    r["open_errors"] = len(services.engine.open_errors(cid))
    print("after kills:", r)
    assert r["twice_in_books"] == {} and r["pending"] == 0 and r["unsettled_batches"] == 0 and r["claims"] == 0
    assert r["open_errors"] == 0 and r["in_books"] == N


def test_three_concurrent_retry_all_with_a_parked_batch(services: Any, qbo: QBO) -> None:
    from tests.test_batch_faults_engine import _lose_batch
    _, cid = seed(services, qbo, invoices=30)
    parked = _lose_batch(services, qbo, cid)
    env = _cli_env(services)
    qbo.standin.configure(latency_seconds=0.3)
    procs = [_start(env) for _ in range(3)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, o in zip(procs, outs, strict=False):
        print("exit", p.returncode, "|", " / ".join(line for line in o.splitlines() if "retrying" not in line)[-300:])
    resent = [e for e in qbo.standin.request_log(qbo.realm) if e.get("requestid") == parked.request_id]
    print("requests under the parked batch's requestid:", [(e["outcome"], e["status"]) for e in resent])
    r = _report(services, qbo)
    r["open_errors"] = len(services.engine.open_errors(cid))
    print("after:", r)
    assert sum(1 for e in resent if e["outcome"] == "replayed") == 1
