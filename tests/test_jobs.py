"""Issue 16: work after an ack is durable. Sync Now, Retry All and a click's fix are stored as jobs (`bot.jobs`)
before the request returns and run by any worker process; a worker killed during one leaves it to another (or,
on SQLite, to the restarted process), and nothing is written to QuickBooks twice.

Real processes (`syncbot serve`), real HTTP to the Slack and QuickBooks stand-ins, Slack's requests signed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from bot.blocks import ids
from bot.models import Job, JobAttempt
from sandbox.slack import config as slack_cfg
from sandbox.slack.driver import SlackDriver
from sync.models import PushBatch, RecordClaim, Status, SyncLogEntry, utcnow
from tests.batch_faults import ISE
from tests.conftest import CHANNEL, PG_ENV, QBO, SIGNING_SECRET, Stack, wait_for

TEAM = slack_cfg.DEFAULT_TEAM_ID
OWNER = slack_cfg.OWNER_USER_ID
needs_pg = pytest.mark.skipif(not os.environ.get(PG_ENV), reason="several worker processes need PostgreSQL")
sqlite_only = pytest.mark.skipif(bool(os.environ.get(PG_ENV)), reason="SQLite's restart of its one process")


# ------------------------------------------------------------------------------------------------ helpers


def _failing_invoices(stack: Stack, qbo: QBO, n: int) -> None:
    """``n`` invoices of the workspace's account (numbers B-00000...), each with an open error (QuickBooks' 500
    on their first push); their customers and item are in QuickBooks."""
    from sync.records import import_records
    from tests.batch_faults import data

    services = stack.rt.services
    full = data(n)
    qbo.standin.configure(minute_seconds=1.0)
    with services.sessions() as session, session.begin():
        import_records(session, stack.account_id, {**full, "invoices": []})
    services.engine.sync_now(stack.connection_id, "setup")
    with services.sessions() as session, session.begin():
        import_records(session, stack.account_id, full)
    qbo.standin.fail_next(qbo.realm, math.ceil(n / 30) + 2, 500, "application/json", ISE, path_contains="batch")
    services.engine.sync_now(stack.connection_id, "setup")
    failing = [e for e in services.engine.open_errors(stack.connection_id) if (e.record_label or "").startswith("B-")]
    assert len(failing) == n


def _copies(qbo: QBO) -> Counter[str]:
    return Counter(str(i.get("DocNumber")) for i in qbo.standin.entities(qbo.realm, "Invoice")
                   if str(i.get("DocNumber")).startswith("B-"))


def _batches_sent(qbo: QBO) -> int:
    return sum(1 for e in qbo.standin.request_log(qbo.realm) if e["path"].strip("/") == "batch")


def _jobs(stack: Stack) -> list[Job]:
    with stack.rt.services.sessions() as session:
        jobs = list(session.scalars(select(Job).order_by(Job.id)))
        session.expunge_all()
    return jobs


def _attempts(stack: Stack, job_id: int) -> list[JobAttempt]:
    with stack.rt.services.sessions() as session:
        rows = list(session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.id)))
        session.expunge_all()
    return rows


def _ephemerals_with(stack: Stack, words: str) -> list[dict[str, Any]]:
    return [e for e in stack.ephemerals(OWNER) if words in e["text"]]


def _confirm_retry_all(stack: Stack, driver: SlackDriver) -> Any:
    """`/sync-retry-all`, then a click on its confirmation: Retry All accepted."""
    prompt = driver.slash_command("/sync-retry-all")
    assert prompt.status_code == 200 and "Retry all" in prompt.response.text, prompt.response.text
    stack.slack.standin.apply_command_ack(TEAM, CHANNEL, OWNER, prompt.response.text,
                                         prompt.response.headers.get("content-type"), prompt.response_url_id)
    shown = wait_for(lambda: [e for e in stack.ephemerals(OWNER) if ids.RETRY_ALL_CONFIRM in str(e["blocks"])])[-1]
    confirm = driver.click(ids.RETRY_ALL_CONFIRM, channel_id=CHANNEL, message_ts=shown["message_ts"],
                           ephemeral=True)
    assert confirm.status_code == 200 and confirm.acked_in_time
    return confirm


def _env(stack: Stack, **extra: str) -> dict[str, str]:
    from tests.test_retry_all_faults import _cli_env

    s = stack.rt.settings
    return {**_cli_env(stack.rt.services), "SLACK_API_URL": s.slack_api_url,
            "SLACK_BOT_TOKEN": s.slack_bot_token.get_secret_value(),
            "SLACK_SIGNING_SECRET": s.slack_signing_secret.get_secret_value(),
            "SLACK_DEFAULT_CHANNEL": s.slack_default_channel or "", "SCHEDULER_LEASE_SECONDS": "1",
            "PYTHONUNBUFFERED": "1", **extra}


def _serve(env: dict[str, str], port: int, *roles: str) -> subprocess.Popen[str]:
    args = [a for r in roles for a in ("--role", r)]
    return subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "serve", "--host",
                             "127.0.0.1", "--port", str(port), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=40)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def _nothing_left(stack: Stack) -> None:
    with stack.rt.services.sessions() as session:
        pending = session.scalar(select(func.count()).select_from(SyncLogEntry).where(
            SyncLogEntry.status == Status.PENDING))
        batches = session.scalar(select(func.count()).select_from(PushBatch).where(PushBatch.settled_at.is_(None)))
        claims = session.scalar(select(func.count()).select_from(RecordClaim))
    assert (pending, batches, claims) == (0, 0, 0), "nothing left Retrying…, unsent or claimed"


@pytest.fixture()
def web_only(stack: Stack) -> Iterator[Stack]:
    """The in-process stack as a web process only: it accepts Slack's requests and stores jobs; its job threads
    are stopped, so the jobs wait for a worker process."""
    stack.rt.jobs.stop()
    yield stack


# ----------------------------------------------------------------------------------------- 1. stored and run


def test_a_signed_retry_all_is_stored_as_a_job_and_its_counts_reach_the_user(stack: Stack, qbo: QBO) -> None:
    _failing_invoices(stack, qbo, 12)
    confirm = _confirm_retry_all(stack, stack.driver)
    assert [j for j in _jobs(stack) if j.kind == "retry_all"], "stored before the click was acked"
    final = wait_for(lambda: _ephemerals_with(stack, "Retry All finished"), timeout=60)[-1]
    assert "12 synced" in final["text"] or "synced" in final["text"], final["text"]
    stack.rt.jobs.wait_idle()
    [job] = [j for j in _jobs(stack) if j.kind == "retry_all"]
    assert (job.outcome, job.attempts, job.connection_id) == ("done", 1, stack.connection_id)
    click = job.payload["click"]  # the click as Slack sent it, stored before the ack
    assert click["body"]["user"]["id"] == OWNER and click["body"]["actions"][0]["action_id"] == ids.RETRY_ALL_CONFIRM
    assert confirm.response_url not in json.dumps(job.payload), "the response_url is stored sealed, not as is"
    assert confirm.trigger_id not in json.dumps(job.payload)
    assert stack.rt.services.box.decrypt(click["response_url"]) == confirm.response_url
    assert sorted(_copies(qbo).values()) == [1] * 12


def test_a_signed_sync_now_is_stored_as_a_job_and_its_counts_reach_the_user(stack: Stack, qbo: QBO) -> None:
    started = stack.driver.slash_command("/sync-log", "sync-now")
    assert started.status_code == 200 and "Syncing now" in started.response.text
    stack.slack.standin.apply_command_ack(TEAM, CHANNEL, OWNER, started.response.text,
                                         started.response.headers.get("content-type"), started.response_url_id)
    wait_for(lambda: _ephemerals_with(stack, "Sync Now finished"), timeout=60)
    stack.rt.jobs.wait_idle()
    [job] = _jobs(stack)
    assert (job.kind, job.outcome, job.attempts) == ("sync_now", "done", 1)
    assert job.payload["user"]["user_id"] == OWNER and job.payload["announce"] is False


def test_a_job_whose_work_fails_tells_the_person_it_stopped(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """"Syncing now... the counts follow here" is not left hanging when the work raises (here: the connection's
    tokens were sealed with a key this server does not have): the person is told it stopped, with the job's id for
    support; the error itself is logged, not shown."""
    from cryptography.fernet import Fernet

    from sync.crypto import SecretBox
    from sync.models import Connection

    caplog.set_level(logging.INFO, logger="syncbot.jobs")
    other_key = SecretBox([Fernet.generate_key().decode()])
    with stack.rt.services.sessions() as session, session.begin():
        session.execute(update(Connection).values(access_token_enc=other_key.encrypt("access"),
                                                  refresh_token_enc=other_key.encrypt("refresh")))
    started = stack.driver.slash_command("/sync-log", "sync-now")
    assert started.status_code == 200 and "Syncing now" in started.response.text
    stack.slack.standin.apply_command_ack(TEAM, CHANNEL, OWNER, started.response.text,
                                         started.response.headers.get("content-type"), started.response_url_id)
    [told] = wait_for(lambda: _ephemerals_with(stack, "could not be finished"), timeout=60)
    stack.rt.jobs.wait_idle()
    [job] = _jobs(stack)
    assert (job.kind, job.outcome, job.attempts) == ("sync_now", "failed", 1)
    assert f"Sync Now could not be finished: syncbot met an unexpected error (job {job.id} in its log)" in str(told)
    assert "SecretBoxError" not in str(told) and "SecretBoxError" in (job.error or "")
    assert any(f"event=job_failed job_id={job.id} " in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------------------- 2. kill -9 on PostgreSQL


@needs_pg
def test_a_worker_killed_during_retry_all_leaves_it_to_another_which_writes_each_invoice_once(
        web_only: Stack, qbo: QBO) -> None:
    """A web process accepts a Retry All of 300 failing invoices; two worker processes; the one running it is
    killed with SIGKILL after a few batches; the other claims the job (PostgreSQL ended the dead one's
    transaction, and its row lock with it) and finishes it: every invoice in QuickBooks once, the counts reach the
    person who clicked."""
    from sandbox.serve import free_port

    stack = web_only
    n = 300
    _failing_invoices(stack, qbo, n)
    env = _env(stack, JOB_WORKERS="2")
    web_port = free_port()
    procs = {"web": _serve(env, web_port, "web")}
    try:
        wait_for(lambda: _answers(web_port), timeout=30)
        qbo.standin.configure(latency_seconds=0.5)  # a batch is out long enough for the kill to land during one
        driver = SlackDriver(f"http://127.0.0.1:{web_port}/slack/events", SIGNING_SECRET, stack.slack.standin)
        try:
            before = _batches_sent(qbo)
            _confirm_retry_all(stack, driver)
        finally:
            driver.close()
        [job] = [j for j in _jobs(stack) if j.kind == "retry_all"]  # stored before the click was acked
        assert job.finished_at is None and _batches_sent(qbo) == before, "stored; nobody runs it yet"
        procs["one"] = _serve(env, free_port(), "worker")
        procs["two"] = _serve(env, free_port(), "worker")
        first = wait_for(lambda: _attempts(stack, job.id), timeout=60)[0]
        wait_for(lambda: len(_copies(qbo)) >= 30, timeout=60)  # the first batches answered, the next ones out
        pid = int(first.worker.rsplit(":", 1)[1])
        killed = next(name for name, p in procs.items() if p.pid == pid)
        os.kill(pid, signal.SIGKILL)
        procs[killed].communicate(timeout=30)
        assert _copies(qbo) and len(_copies(qbo)) < n, "killed mid-way"
        qbo.standin.configure(latency_seconds=0.0)
        done = wait_for(lambda: [j for j in _jobs(stack) if j.id == job.id and j.finished_at], timeout=240)[0]
        final = wait_for(lambda: _ephemerals_with(stack, "Retry All finished"), timeout=60)[-1]
    finally:
        outs = {name: _stop(p) for name, p in procs.items()}
    attempts = _attempts(stack, job.id)
    assert (done.outcome, done.attempts, len(attempts)) == ("done", 2, 2), outs
    assert attempts[1].worker != attempts[0].worker, "the other worker finished it"
    copies = _copies(qbo)
    assert len(copies) == n and set(copies.values()) == {1}, {k: v for k, v in copies.items() if v > 1}
    assert "Retry All finished" in final["text"]
    assert not [e for e in stack.rt.services.engine.open_errors(stack.connection_id)
                if (e.record_label or "").startswith("B-")]
    _nothing_left(stack)


# ------------------------------------------------------------------------------------------------ 3. one per company


def test_two_retry_alls_of_one_company_accepted_at_once_do_not_overlap(web_only: Stack, qbo: QBO) -> None:
    """Two Retry All accepted together for one company: on PostgreSQL two worker processes (the advisory lock
    per connection), on SQLite the one process's job threads; the second starts after the first finished."""
    from sandbox.serve import free_port

    stack = web_only
    _failing_invoices(stack, qbo, 60)
    qbo.standin.configure(latency_seconds=0.2)
    _confirm_retry_all(stack, stack.driver)
    _confirm_retry_all(stack, stack.driver)
    jobs = wait_for(lambda: [j for j in _jobs(stack) if j.kind == "retry_all"] if len(
        [j for j in _jobs(stack) if j.kind == "retry_all"]) == 2 else None)
    assert all(j.finished_at is None for j in jobs)
    procs: list[subprocess.Popen[str]] = []
    try:
        if os.environ.get(PG_ENV):
            env = _env(stack, JOB_WORKERS="2")
            procs = [_serve(env, free_port(), "worker") for _ in range(2)]
        else:
            stack.rt.jobs.start()
        finished = wait_for(lambda: [j for j in _jobs(stack) if j.kind == "retry_all" and j.finished_at] if len(
            [j for j in _jobs(stack) if j.kind == "retry_all" and j.finished_at]) == 2 else None, timeout=180)
    finally:
        outs = [_stop(p) for p in procs]
        qbo.standin.configure(latency_seconds=0.0)
    assert [j.outcome for j in finished] == ["done", "done"], outs
    spans = sorted((_attempts(stack, j.id)[0].started_at, j.finished_at) for j in finished)
    assert spans[0][1] <= spans[1][0], f"the two runs overlapped: {spans}"
    assert sorted(_copies(qbo).values()) == [1] * 60


# ------------------------------------------------------------------------------------------------ 4. SQLite restart


@sqlite_only
def test_serve_killed_during_retry_all_runs_it_to_the_end_when_it_starts_again(web_only: Stack, qbo: QBO) -> None:
    """SQLite, one `syncbot serve` (all roles): killed with SIGKILL during a Retry All it accepted; started again,
    it finds the job unfinished (its process is gone) and runs it to the end; nothing is written twice."""
    from sandbox.serve import free_port

    stack = web_only
    n = 240
    _failing_invoices(stack, qbo, n)
    env = _env(stack, SCHEDULER_ENABLED="false")
    port = free_port()
    proc = _serve(env, port)
    outs: list[str] = []
    try:
        wait_for(lambda: _answers(port), timeout=30)
        qbo.standin.configure(latency_seconds=0.5)  # a batch is out long enough for the kill to land during one
        driver = SlackDriver(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, stack.slack.standin)
        try:
            _confirm_retry_all(stack, driver)
        finally:
            driver.close()
        wait_for(lambda: len(_copies(qbo)) >= 30, timeout=60)  # the first batches answered, the next ones out
        os.kill(proc.pid, signal.SIGKILL)
        outs.append(proc.communicate(timeout=30)[0])
        [job] = [j for j in _jobs(stack) if j.kind == "retry_all"]
        assert job.finished_at is None and 0 < len(_copies(qbo)) < n, "killed mid-way"
        qbo.standin.configure(latency_seconds=0.0)
        proc = _serve(env, port)
        done = wait_for(lambda: [j for j in _jobs(stack) if j.id == job.id and j.finished_at], timeout=240)[0]
        wait_for(lambda: _ephemerals_with(stack, "Retry All finished"), timeout=60)
    finally:
        outs.append(_stop(proc))
    assert (done.outcome, done.attempts) == ("done", 2), outs
    copies = _copies(qbo)
    assert len(copies) == n and set(copies.values()) == {1}, {k: v for k, v in copies.items() if v > 1}
    _nothing_left(stack)


def test_a_click_acked_by_a_process_killed_right_after_its_ack_is_run_by_a_worker(web_only: Stack, qbo: QBO) -> None:
    """Nothing lost: a Retry click acked by a web process (`syncbot serve --role web`, no job threads) that is
    SIGKILLed as soon as its ack arrives. The click's job was committed before the ack, so a worker (this test's
    process, its job threads started afterwards) runs it: the record is retried. SQLite and PostgreSQL."""
    from sandbox.serve import free_port

    stack = web_only
    qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")
    stack.deliver()
    acme = next(m for m in stack.messages() if "Acme Corp" in m["text"])
    with stack.rt.services.sessions() as session:
        entries_before = session.scalar(select(func.count()).select_from(SyncLogEntry))
    port = free_port()
    proc = _serve(_env(stack, SCHEDULER_ENABLED="false"), port, "web")
    try:
        wait_for(lambda: _answers(port), timeout=30)
        driver = SlackDriver(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, stack.slack.standin)
        try:
            clicked = driver.click(ids.RETRY, channel_id=CHANNEL, message_ts=acme["ts"])
        finally:
            os.kill(proc.pid, signal.SIGKILL)  # the moment the ack is in: nothing after it ran in that process
            driver.close()
        proc.communicate(timeout=30)
    finally:
        _stop(proc)
    assert clicked.status_code == 200 and clicked.response.content == b"", "an empty ack"
    [job] = [j for j in _jobs(stack) if j.kind == "entry_action"]
    assert job.finished_at is None and _attempts(stack, job.id) == [], "stored, and not started by the dead process"
    stack.rt.start_jobs()
    done = wait_for(lambda: [j for j in _jobs(stack) if j.id == job.id and j.finished_at], timeout=60)[0]
    assert done.outcome == "done", done.error
    with stack.rt.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SyncLogEntry)) > entries_before, "retried"


# ------------------------------------------------------------------------------------------------ 5. bad jobs


def test_a_tampered_or_unknown_job_is_finished_with_its_error_logged_not_retried(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="syncbot.jobs")
    rt = stack.rt
    user = {"user_id": OWNER, "name": "Owner", "tz": None}
    good_route = {"response_url": None, "url_uses": 0, "user_id": OWNER, "channel_id": CHANNEL, "view_id": None}
    bad = {
        rt.jobs.enqueue("drop_tables", stack.connection_id, {"team_id": TEAM}): "unknown job kind",
        rt.jobs.enqueue("entry_action", stack.connection_id, {
            "team_id": TEAM, "user": user, "reply": good_route, "action": "retry", "entry_id": "1 or 1=1",
            "channel": None, "ts": None, "clicked_at": dt.datetime.now(dt.UTC).isoformat()}): "entry_id",
        rt.jobs.enqueue("entry_action", stack.connection_id, {
            "team_id": TEAM, "user": user, "reply": good_route, "action": "delete_everything", "entry_id": 1,
            "channel": None, "ts": None, "clicked_at": dt.datetime.now(dt.UTC).isoformat()}): "action",
        rt.jobs.enqueue("sync_now", stack.connection_id + 1000, {
            "team_id": TEAM, "user": user, "reply": good_route, "connection_id": stack.connection_id + 1000,
            "announce": True}): "not its workspace's connection",
        rt.jobs.enqueue("sync_now", stack.connection_id, {
            "team_id": "T_NOBODY", "user": user, "reply": good_route, "connection_id": stack.connection_id,
            "announce": True}): "not bound",
    }
    click = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": OWNER},
             "actions": [{"action_id": ids.RETRY, "value": "1"}]}
    bad[rt.jobs.enqueue("entry_action", None, {"click": {"body": {**click, "actions": [
        {"action_id": "admin_delete_all", "value": "1"}]}, "response_url": None, "trigger_id": None}})] = "button"
    bad[rt.jobs.enqueue("entry_action", None, {"click": {"body": "a string"}})] = "body is not valid"
    # sealed values this process's keys cannot open (a tampered one, or one sealed under a key only another
    # replica has yet): left to another replica, not finished, the start uncounted, the operator told
    sealed = [
        rt.jobs.enqueue("retry_all", stack.connection_id, {
            "team_id": TEAM, "user": user, "connection_id": stack.connection_id,
            "reply": {**good_route, "response_url": "gAAAAABtampered"}}),
        rt.jobs.enqueue("entry_action", None, {"click": {"body": click, "response_url": "not-sealed",
                                                         "trigger_id": None}})]
    wait_for(lambda: all(j.finished_at is not None for j in _jobs(stack) if j.id in bad))
    wait_for(lambda: sum("event=job_sealed_for_other_keys" in r.getMessage() for r in caplog.records) >= 2)
    jobs = {j.id: j for j in _jobs(stack)}
    for job_id, words in bad.items():
        job = jobs[job_id]
        assert (job.outcome, job.attempts) == ("bad", 1), (job.kind, job.outcome, job.error)
        assert words in (job.error or ""), (words, job.error)
        assert len(_attempts(stack, job_id)) == 1, "run once, never again"
        assert any(f"event=job_bad job_id={job_id} " in r.getMessage() for r in caplog.records)
    for job_id in sealed:
        assert jobs[job_id].finished_at is None and not _attempts(stack, job_id), jobs[job_id].error
        assert any(f"event=job_sealed_for_other_keys job_id={job_id} " in r.getMessage() for r in caplog.records)

    # an hour on, no replica could open them: another worker finishes them as bad, once
    from bot.jobs import SEALED_GRACE_SECONDS, JobQueue
    from bot.models import Job
    from bot.operations.worker import run_job
    from handlers.actions import run_click

    rt.jobs.stop()
    with rt.services.sessions() as session, session.begin():
        for job_id in sealed:
            session.get(Job, job_id).created_at = utcnow() - dt.timedelta(seconds=SEALED_GRACE_SECONDS + 60)
    other = JobQueue(rt.services.db_engine, rt.services.sessions, lambda job: run_job(rt, job, run_click), threads=1)
    while other.run_one():
        pass
    jobs = {j.id: j for j in _jobs(stack)}
    for job_id, words in zip(sealed, ("reply route cannot be opened", "cannot be opened"), strict=True):
        assert (jobs[job_id].outcome, jobs[job_id].attempts) == ("bad", 1), jobs[job_id].error
        assert words in (jobs[job_id].error or "")


def test_a_job_that_killed_its_process_three_times_is_given_up_and_the_user_told(
        web_only: Stack, caplog: pytest.LogCaptureFixture) -> None:
    stack = web_only
    caplog.set_level(logging.INFO, logger="syncbot.jobs")
    started = stack.driver.slash_command("/sync-log", "sync-now")
    stack.slack.standin.apply_command_ack(TEAM, CHANNEL, OWNER, started.response.text,
                                         started.response.headers.get("content-type"), started.response_url_id)
    [job] = wait_for(lambda: _jobs(stack))
    with stack.rt.services.sessions() as session, session.begin():  # three starts whose process died
        for _ in range(3):
            session.add(JobAttempt(job_id=job.id, worker="gone:1"))
    stack.rt.jobs.start()
    stack.rt.jobs.wait_idle()
    [done] = _jobs(stack)
    assert (done.outcome, done.attempts) == ("gave_up", 4)
    wait_for(lambda: _ephemerals_with(stack, "could not be finished"))
    assert not _ephemerals_with(stack, "Sync Now finished"), "not run a fourth time"
    assert any("event=job_given_up" in r.getMessage() for r in caplog.records)


def test_jobs_of_other_companies_are_not_held_up_by_a_busy_one(stack: Stack) -> None:
    """A Retry All of a company waiting for that company's run does not keep the jobs after it waiting: the
    worker looks past it."""
    rt = stack.rt
    rt.jobs.stop()
    other = stack.connection_id + 500
    with rt.services.sessions() as session, session.begin():
        session.execute(update(Job).values(finished_at=dt.datetime.now(dt.UTC)))
    rt.jobs._busy.add(other)  # SQLite's own bookkeeping; on PostgreSQL take the advisory lock instead
    lock = None
    if rt.jobs.postgres:
        from sqlalchemy import text

        from bot.jobs import ADVISORY_KEY

        lock = rt.services.db_engine.connect()
        lock.execute(text("SELECT pg_advisory_xact_lock(:k, :c)"), {"k": ADVISORY_KEY, "c": other})
    try:
        waiting = rt.jobs.enqueue("retry_all", other, {"team_id": "T_NONE"})
        later = rt.jobs.enqueue("unknown_kind", None, {})
        assert rt.jobs.run_one() is True
        jobs = {j.id: j for j in _jobs(stack)}
        assert jobs[later].finished_at is not None and jobs[waiting].finished_at is None
        assert rt.jobs.run_one() is False, "the busy company's job waits"
    finally:
        rt.jobs._busy.discard(other)
        if lock is not None:
            lock.rollback()
            lock.close()
    assert rt.jobs.run_one() is True
