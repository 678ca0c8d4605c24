"""Where the runtime meets the work it runs: :func:`build_runtime` connects the job queue, the App Home publisher and
the notifier (`bot.runtime`) to the operations (`bot.operations.worker`, `bot.operations.pages`) and to the
listeners that run a stored click (`handlers.actions.run_click`). Only this module imports all three, so none of
them imports another back.
"""

from __future__ import annotations

from bot import blocks
from bot.config import Settings
from bot.home import HomePublisher
from bot.jobs import Claimed, JobQueue
from bot.operations import pages, worker
from bot.runtime import SlackRuntime, new_runtime
from bot.services import Services
from bot.workspaces import READ_REFUSAL
from handlers.actions import run_click


def build_runtime(services: Services, settings: Settings | None = None) -> SlackRuntime:
    """The Slack side of a process on top of ``services``: clients, tenants, the notifier, the job queue (its
    runner is `bot.operations.worker.run_job`, a stored click run by `handlers.actions.run_click`) and the App Home
    publisher. Starts nothing (`SlackRuntime.start_background` does)."""
    rt = new_runtime(services, settings)

    def publish_home(team_id: str, user_id: str) -> bool:
        tenant = rt.tenants.get(team_id)
        if tenant is None:
            return False
        if not rt.directory.may_read(tenant, user_id):  # reading closed since they opened it: the Home says so
            rt.clients.for_team(team_id).views_publish(user_id=user_id, view=blocks.home_refusal_view(READ_REFUSAL))
            return True
        pages.publish_home(rt, tenant, rt.directory.user(team_id, user_id))
        return True

    def run_job(job: Claimed) -> None:
        worker.run_job(rt, job, run_click)

    def give_up(job: Claimed) -> None:
        worker.job_given_up(rt, job)

    def failed(job: Claimed) -> None:
        worker.job_failed(rt, job)

    rt.jobs = JobQueue(services.db_engine, services.sessions, run_job, give_up, threads=rt.settings.job_workers,
                       failed=failed)
    rt.home = HomePublisher(services.sessions, publish_home)
    rt.notifier.on_delivered = rt.home.after_delivery
    return rt
