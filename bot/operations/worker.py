"""A claimed job run by a worker (`run_job`, the runner of `bot.jobs.JobQueue`): who asked and where the answer
goes rebuilt from the job, then its work (`JOB_KINDS`, or a stored click through its listener); and the person
told when a job cannot finish (`job_given_up`, `job_failed`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.jobs import BadJob, Claimed, SealedForOthers
from bot.operations.entries import entry_job
from bot.operations.runs import retry_all_job, run_resume, sync_now_job
from bot.operations.stored import JobPayload, in_click
from bot.replies import Reply
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo

log = logging.getLogger("syncbot.slack")


#: Runs a stored click as its listener would have after the ack: (runtime, the click's body, its respond or
#: None). `handlers.actions.run_click`, handed in by `bot.wiring` (the operations do not import the listeners).
ClickRunner = Callable[["SlackRuntime", dict[str, Any], Any], None]

#: The work of each kind of job the operations store (a Reconnect's resume is run apart: `runs.run_resume`).
JOB_KINDS: dict[str, Callable[[SlackRuntime, Tenant, UserInfo, Reply, JobPayload], None]] = {
    "entry_action": entry_job, "retry_all": retry_all_job, "sync_now": sync_now_job}


def _run_click(rt: SlackRuntime, job: Claimed, run_click: ClickRunner) -> None:
    """A stored click's job: the click as Slack sent it, rebuilt, through the listener's own work (``run_click``)."""
    from slack_bolt.context.respond import Respond

    from sync.crypto import SecretBoxError

    click = JobPayload(JobPayload(job.payload).mapping("click"))
    body = dict(click.mapping("body"))
    try:
        url, trigger = (rt.services.box.decrypt(v) if v else None
                        for v in (click.text("response_url"), click.text("trigger_id")))
    except SecretBoxError as exc:
        raise SealedForOthers(f"the stored click's sealed values cannot be opened: {exc}") from None
    if url is not None and not url.startswith(("https://", "http://")):
        raise BadJob("the stored click's response_url is not a URL")
    if url is not None:
        body["response_url"] = url
    if trigger is not None:
        body["trigger_id"] = trigger
    in_click.kinds = JOB_KINDS
    try:
        run_click(rt, body, Respond(response_url=url) if url is not None else None)
    finally:
        in_click.kinds = None


def _job_parts(rt: SlackRuntime, payload: Mapping[str, Any]) -> tuple[Tenant, UserInfo, Reply, JobPayload]:
    """The tenant, user and reply a job's payload names (BadJob when it names them wrongly)."""
    from sync.crypto import SecretBoxError

    p = JobPayload(payload)
    team_id = p.text("team_id")
    tenant = rt.tenants.get(team_id) if team_id else None
    if tenant is None:
        raise BadJob("the job's workspace is not bound to an account any more")
    who_ = JobPayload(p.mapping("user"))
    user_id = who_.text("user_id")
    if not user_id:
        raise BadJob("the job names no user")
    user = UserInfo(user_id=user_id, name=who_.text("name") or user_id, is_admin=False, tz=who_.text("tz"))
    try:
        reply = Reply.from_route(p.mapping("reply"), rt.clients.for_team(tenant.team_id), rt.services.box.decrypt)
    except SecretBoxError as exc:
        raise SealedForOthers(f"the job's reply route cannot be opened: {exc}") from None
    except ValueError as exc:
        raise BadJob(f"the job's reply route cannot be used: {exc}") from None
    return tenant, user, reply, p


def run_job(rt: SlackRuntime, job: Claimed, run_click: ClickRunner) -> None:
    """Run one job (`bot.jobs.JobQueue`'s runner): rebuild who asked and where the answer goes, then the work; a
    stored click through ``run_click``. Raises BadJob for a kind or a payload it cannot run."""
    if job.kind == "resume":
        try:
            run_resume(rt, job)
        finally:
            rt.notifier.wake()
        return
    if job.kind not in JOB_KINDS:
        raise BadJob(f"unknown job kind {job.kind[:40]!r}")
    click = "click" in job.payload
    parts = None if click else _job_parts(rt, job.payload)
    if job.attempt > 1:  # a process died during it: settle what it left pending first (as the CLI does)
        recovered = rt.services.engine.recover_pending()
        log.warning("event=job_rerun job_id=%s kind=%s attempt=%d recovered=%d", job.id, job.kind, job.attempt,
                    recovered)
    try:
        if parts is None:
            _run_click(rt, job, run_click)
        else:
            JOB_KINDS[job.kind](rt, *parts)
    finally:
        rt.notifier.wake()


def _click_reply(rt: SlackRuntime, job: Claimed) -> Reply:
    """The reply to a stored click, for its give-up answer (the trigger_id has long expired)."""
    from slack_bolt.context.respond import Respond

    click = JobPayload(JobPayload(job.payload).mapping("click"))
    body = dict(click.mapping("body"))
    sealed = click.text("response_url")
    team_id = ((body.get("team") or {}).get("id") if isinstance(body.get("team"), dict) else None)
    if not team_id:
        raise BadJob("the stored click names no workspace")
    url = rt.services.box.decrypt(sealed) if sealed else None
    if url is not None:
        body["response_url"] = url
    return Reply.to_click(rt.clients.for_team(str(team_id)), body,
                          Respond(response_url=url) if url is not None else None)


def _tell_job_person(rt: SlackRuntime, job: Claimed, why: str) -> None:
    """Tell the person who asked for ``job`` that it could not be finished, and ``why`` (a sentence)."""
    try:
        if "click" in job.payload:
            reply = _click_reply(rt, job)
        else:
            _tenant, _user, reply, _p = _job_parts(rt, job.payload)
    except (BadJob, ValueError):
        return
    what = {"retry_all": "Retry All", "sync_now": "Sync Now", "entry_action": "Your click",
            "resume": "The resume after Reconnect"}.get(job.kind, "That")
    reply.later({"text": f"{what} could not be finished: {why} Try once more, or use Contact support if it happens "
                         "again."})


def job_given_up(rt: SlackRuntime, job: Claimed) -> None:
    """Tell the person whose job was started too many times without finishing that it is dropped."""
    _tell_job_person(rt, job, f"syncbot stopped during it {job.attempt - 1} times, so it was not tried again.")


def job_failed(rt: SlackRuntime, job: Claimed) -> None:
    """Tell the person whose job's work raised that it stopped (what raised is in the log, under the job's id:
    the person is not shown the internals)."""
    _tell_job_person(rt, job, f"syncbot met an unexpected error (job {job.id} in its log), and it was not tried "
                              "again.")

