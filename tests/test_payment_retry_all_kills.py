"""Issue 14, found by trying to break it.
three `syncbot retry-all` processes at once over failing *payments* (no unique name: a second
write is a second payment, not a refused duplicate), two of each round SIGKILLed, then run to the end; on the
database of SYNCBOT_TEST_DATABASE_URL or SQLite."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import func, select

from sync.models import Link
from tests.batch_faults import leftovers, payment_count, seed
from tests.conftest import QBO
from tests.test_batch_faults_concurrency import _start
from tests.test_retry_all_faults import _cli_env

N = 120


def _batches(qbo: QBO) -> int:
    return sum(1 for e in qbo.standin.request_log(qbo.realm) if e["path"].strip("/") == "batch")


def test_three_concurrent_payment_retry_all_with_kills(services: Any, qbo: QBO) -> None:
    _, cid = seed(services, qbo, invoices=N, payments=N, fail="payments")
    assert payment_count(qbo) == 0
    env = _cli_env(services)
    qbo.standin.configure(latency_seconds=1.5)
    rng = random.Random(1414)
    for rnd in range(3):
        begun = _batches(qbo)
        procs = [_start(env) for _ in range(3)]
        deadline = time.monotonic() + 60
        while _batches(qbo) < begun + 2 and time.monotonic() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.02)
        time.sleep(rng.uniform(0.2, 1.2))  # inside the batches' requests (1.5 s each)
        for p in rng.sample(procs, 2):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            out = p.communicate(timeout=600)[0]
            print(f"round {rnd} exit {p.returncode}", out.strip().splitlines()[-1:] if out.strip() else "")
    qbo.standin.configure(latency_seconds=0.0)
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "retry-all"], env=env,
                              capture_output=True, text=True, timeout=300)
        print("finish exit", done.returncode, done.stdout.strip()[-200:], done.stderr.strip()[-300:])
        if done.returncode == 0:
            break
    with services.sessions() as session:
        linked = session.scalar(select(func.count()).select_from(Link).where(Link.entity == "payment"))
    print("payments in QuickBooks:", payment_count(qbo), "linked:", linked, leftovers(services),
          "replayed:", sum(1 for e in qbo.standin.request_log(qbo.realm) if e["outcome"] == "replayed"))
    assert payment_count(qbo) == N and linked == N
    assert services.engine.open_errors(cid) == [] and leftovers(services) == {
        "pending": 0, "unsettled_batches": 0, "claims": 0}
