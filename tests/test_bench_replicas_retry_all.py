"""bench/replicas_retry_all.py: its figures from plain data. (Its quick run, 10 companies x 30 invoices on
PostgreSQL, takes about a minute and a half with both replica counts: too long for the suite, so it is not run
here; `python -m bench.replicas_retry_all --quick` runs it.)"""

from __future__ import annotations

from typing import Any

from bench.replicas_retry_all import (
    doc_number_figures,
    job_seconds,
    jobs_finished_by_process,
    run_figures,
    summarize,
)

FINISHED = "2026-12-07 INFO syncbot.jobs event=job_finished job_id={id} kind={kind} outcome=done seconds={s}\n"


def test_every_doc_number_once_in_each_realm() -> None:
    fine = doc_number_figures({"R1": ["B-1", "B-2"], "R2": ["B-1", "B-2"]}, 2)  # the same number in two realms
    assert fine == {"duplicates": 0, "distinct": 4, "expected_per_realm": 2, "realms_off": {}}
    twice = doc_number_figures({"R1": ["B-1", "B-2", "B-1", "B-1"], "R2": ["B-1", None]}, 2)
    assert (twice["duplicates"], twice["realms_off"]) == (2, {"R2": 1})  # two extra copies; R2 misses one


def test_jobs_and_their_seconds_are_read_from_each_worker_s_log() -> None:
    logs = [FINISHED.format(id=1, kind="retry_all", s="2.50") + FINISHED.format(id=2, kind="sync_now", s="9.00"),
            "", FINISHED.format(id=3, kind="retry_all", s="1.25") + "event=job_started job_id=4 kind=retry_all\n"]
    assert jobs_finished_by_process(logs) == [1, 0, 1]
    assert job_seconds(logs) == [1.25, 2.5]
    assert jobs_finished_by_process(["event=job_finished job_id=5 kind=retry_all_other outcome=done"]) == [0]


def _run(n: int, seconds: float, *, writes: int = 40, outcome: str | None = "done",
         throttled: int = 0) -> dict[str, Any]:
    numbers = {"R1": [f"B-{i}" for i in range(20)], "R2": [f"B-{i}" for i in range(20)]}
    logs = [FINISHED.format(id=1, kind="retry_all", s="1") + FINISHED.format(id=2, kind="retry_all", s="1")]
    if n > 1:
        logs = [FINISHED.format(id=1, kind="retry_all", s="1"), FINISHED.format(id=2, kind="retry_all", s="1")]
    return run_figures(replicas=n, companies=2, invoices_per_company=20, seconds=seconds, minute_seconds=3.0,
                       writes=writes, throttled_429=throttled, numbers_by_realm=numbers, logs=logs,
                       jobs=[("done", 1), (outcome, 1)], open_errors=0)


def test_a_run_s_figures() -> None:
    run = _run(1, 6.0)
    assert (run["invoices"], run["seconds"], run["invoices_per_minute"]) == (40, 6.0, 400.0)
    # 40 invoices in 2 shrunk minutes of 3 s, against 2 realms x 500 a minute
    assert (run["invoices_per_provider_minute"], run["ceiling_per_provider_minute"]) == (20.0, 1000)
    assert (run["fraction_of_ceiling"], run["writes_per_invoice"], run["ok"]) == (0.02, 1.0, True)
    assert run["jobs_finished_by_process"] == [2] and run["job_outcomes"] == {"done": 2}
    assert _run(1, 6.0, writes=41)["ok"] is False  # a record written twice
    assert _run(1, 6.0, outcome=None)["ok"] is False  # a job not finished
    assert _run(1, 6.0, throttled=3)["throttled_429"] == 3


def test_medians_and_the_throughput_ratio() -> None:
    summary = summarize([_run(1, 6.0), _run(1, 12.0), _run(1, 3.0), _run(3, 3.0), _run(3, 1.5), _run(3, 4.0)])
    assert summary["medians"]["1"]["invoices_per_minute"] == 400.0
    assert summary["medians"]["3"]["invoices_per_minute"] == 800.0
    assert summary["medians"]["3"]["seconds"] == 3.0 and summary["medians"]["3"]["all_ok"] is True
    assert (summary["throughput_ratio"], summary["throughput_ratio_of"]) == (2.0, "3 vs 1")
    assert summarize([_run(3, 1.0)])["throughput_ratio"] is None
