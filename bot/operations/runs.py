"""Work on a whole connection: Retry All (its confirmation, counting what it can and cannot retry, and its run),
Sync Now (which tries early during a rate-limit pause), and the resume after a Reconnect; each run as a job."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from bot import blocks
from bot.blocks.commands import stopped_note
from bot.jobs import BadJob, Claimed
from bot.operations.pages import home_changed
from bot.operations.stored import JobPayload, enqueue
from bot.replies import Reply
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo
from sync.diagnosis import Kind
from sync.engine import ConnectionUnavailable, NotFound
from sync.log import retryable
from sync.models import Connection

log = logging.getLogger("syncbot.slack")


def _connection_id(tenant: Tenant, value: object) -> int | None:
    """The connection a button names: its value must be the tenant's connection id (else None: refused)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None if value not in (None, "") else tenant.connection_id


def retry_all_prompt(rt: SlackRuntime, tenant: Tenant) -> dict[str, Any]:
    """The confirmation before Retry All: how many of the connection's open errors it retries, and the open errors
    it cannot retry by kind (sync.log: one definition of an open error, the same count as everywhere)."""
    entries = rt.services.engine.open_entries(tenant.connection_id) if tenant.connection_id else []
    others: dict[str, int] = {}
    for e in entries:
        if not retryable(e):
            others[str(e.kind)] = others.get(str(e.kind), 0) + 1
    # a connection that would refuse the run says so now, instead of offering a button that cannot work
    blocked = rt.services.engine.unavailable(tenant.connection_id) if tenant.connection_id and entries else None
    note = (stopped_note(blocked.kind.value, blocked.until, tz=tenant.timezone, head="Retry All can't run now")
            if blocked is not None else None)
    return blocks.retry_all_confirm(sum(1 for e in entries if retryable(e)), connection_id=tenant.connection_id,
                                    not_retried=others, blocked=note)


def run_retry_all(rt: SlackRuntime, tenant: Tenant, user: UserInfo, connection_value: str | None,
                  reply: Reply) -> None:
    """Retry All after confirmation: progress in place of the confirmation (its message or modal, a few
    updates), then the counts (there, or as a DM when the click came without a response_url)."""
    connection_id = _connection_id(tenant, connection_value)
    if connection_id is None or connection_id != tenant.connection_id:
        reply.now({"text": "That connection was not found in your account."})
        return
    enqueue(rt, "retry_all", connection_id, tenant, user, reply, connection_id=connection_id)


def _connection_of(tenant: Tenant, p: JobPayload) -> int:
    """The job's connection, which must still be the tenant's."""
    connection_id = p.integer("connection_id")
    if connection_id != tenant.connection_id:
        raise BadJob("the job's connection is not its workspace's connection")
    return connection_id


def retry_all_job(rt: SlackRuntime, tenant: Tenant, user: UserInfo, reply: Reply, p: JobPayload) -> None:
    """Retry All's job (:func:`run_retry_all`): progress in place of the confirmation (from "0 of N" as it
    starts), then the counts."""
    connection_id = _connection_of(tenant, p)
    state = {"sent": 0.0}

    def progress(done: int, total: int) -> None:
        now = dt.datetime.now(dt.UTC).timestamp()
        if now - state["sent"] >= 5 and done < total:  # response_url takes 5 uses: update sparingly
            state["sent"] = now
            reply.replace(blocks.retry_all_progress(done, total))

    reply.replace(blocks.retry_all_progress(0, len(rt.services.engine.retry_all_errors(connection_id))))
    try:
        summary = rt.services.engine.retry_all(connection_id, user.name, progress)
    except ConnectionUnavailable as exc:  # why, and what to do, as Sync Now says it
        reply.later(blocks.retry_all_not_run(exc.kind.value, until=exc.until, tz=user.tz or tenant.timezone),
                    replace=True)
        return
    finally:
        home_changed(rt, tenant, user)
    reply.later(blocks.retry_all_done(summary.as_dict()), replace=True)


def sync_now_started(reply: Reply) -> str:
    """What Sync Now says as it starts: where its counts will arrive."""
    return f"Syncing now... the counts follow {reply.later_place}."


def run_sync_now(rt: SlackRuntime, tenant: Tenant, user: UserInfo, reply: Reply, announce: bool = True,
                 connection_value: object = None) -> None:
    """Sync Now after the ack: "started" at once (``announce``; a slash command's ack says it instead), the
    counts, and why the run stopped, through ``reply`` when the run is over (in place of the command's
    "Syncing now..." line when the ack said it: a promise kept is not left standing above its answer).

    During a rate-limit pause it tries early (``SyncEngine.sync_now(try_early=True)``, the help article's "click
    Sync Now to retry"): one cheap request, then either the connection resumes (its incident turns Resumed, the
    waiting records sync) or the answer and the incident's message give the new time. ``connection_value``: the
    clicked button's value, which must name the tenant's connection (a tampered one changes nothing)."""
    if tenant.connection_id is None:
        reply.now({"text": "No QuickBooks connection yet: /sync-log connect."})
        return
    named = _connection_id(tenant, connection_value)
    if named is None or named != tenant.connection_id:
        log.warning("event=foreign_or_unknown_connection team_id=%s user_id=%s", tenant.team_id, user.user_id)
        reply.now({"text": "That connection was not found in your account: nothing was changed."})
        return
    if announce:
        reply.now({"text": sync_now_started(reply)})
    enqueue(rt, "sync_now", tenant.connection_id, tenant, user, reply, connection_id=tenant.connection_id,
            announce=announce)


def sync_now_job(rt: SlackRuntime, tenant: Tenant, user: UserInfo, reply: Reply, p: JobPayload) -> None:
    """Sync Now's job (:func:`run_sync_now`): the run, then its counts or why it stopped."""
    connection_id, announce = _connection_of(tenant, p), p.flag("announce")
    tz = user.tz or tenant.timezone
    try:
        summary = rt.services.engine.sync_now(connection_id, user.name, try_early=True)
    except ConnectionUnavailable as exc:
        answer = (blocks.sync_now_still_limited(exc.until, tz=tz) if exc.kind == Kind.RATE_LIMITED
                  else blocks.sync_now_done(None, stopped=exc.kind.value, until=exc.until, tz=tz))
        reply.later(answer, replace=not announce)
        return
    finally:
        home_changed(rt, tenant, user)
        rt.notifier.deliver()  # the incident's message shows the new time, or Resumed, now
    with rt.services.sessions() as session:
        conn = session.get(Connection, connection_id)
        until = conn.paused_until if conn is not None and summary.stopped is not None else None
    reply.later(blocks.sync_now_done(summary.as_dict(), until=until, tz=tz), replace=not announce)


def enqueue_resume(rt: SlackRuntime, connection_id: int, user_name: str) -> int:
    """After a Reconnect: the connection resumes (the records that waited are retried, then a sync), as a job."""
    return rt.jobs.enqueue("resume", connection_id, {"connection_id": connection_id, "actor": user_name})


def run_resume(rt: SlackRuntime, job: Claimed) -> None:
    p = JobPayload(job.payload)
    connection_id, actor = p.integer("connection_id"), p.text("actor") or "system"
    if connection_id != job.connection_id:
        raise BadJob("the job's connection does not match its payload")
    try:
        rt.services.engine.resume(connection_id, actor, "reconnected")
    except (ConnectionUnavailable, NotFound) as exc:
        log.warning("event=resume_not_run connection_id=%s error=%s", connection_id, exc)
