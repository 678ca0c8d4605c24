"""The commands that run syncbot: `syncbot serve` (the Slack app, its workers and scheduler, split by ``--role``),
`syncbot scheduler` (the scheduled jobs alone, or one of them once), `syncbot install-link` (the link a workspace
installs through), `syncbot demo` (everything offline on the stand-ins, or the real Slack app against them) and
`syncbot sandbox quickbooks` (the QuickBooks Online stand-in alone)."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Annotated

import typer

from bot.cli.common import app, fail, open_services, sandbox_app
from bot.config import Settings, get_settings


class Role(StrEnum):
    """What one `syncbot serve` process does; replicas may split the work (each role may run in any number of
    processes: delivery and the scheduled jobs are shared through the database)."""

    ALL = "all"
    WEB = "web"              # Slack's requests (HTTP or Socket Mode), the OAuth and health endpoints
    WORKER = "worker"        # the notifier and the jobs (Sync Now, Retry All, clicks); recover what a killed one left
    SCHEDULER = "scheduler"  # the scheduled jobs (one leader at a time)


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    import signal
    import threading

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


@app.command("serve")
def serve(port: Annotated[int | None, typer.Option(help="Port (default: PORT or 3000).")] = None,
          host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
          role: Annotated[list[Role] | None, typer.Option(
              help="What this process does (repeat for several): web (Slack's requests), worker (delivery to "
                   "Slack, and the accepted Sync Now, Retry All and clicks), scheduler (the scheduled jobs), or "
                   "all (the default).")] = None) -> None:
    """Serve the Slack app: HTTP (POST /slack/events) under uvicorn, or Socket Mode when SLACK_APP_TOKEN is set.
    The notifier delivers sync errors to Slack in the background. ``--role`` splits this across processes."""
    import uvicorn

    from bot.app import build_app
    from bot.server import create_server
    from bot.wiring import build_runtime

    roles = set(role or [Role.ALL])
    if Role.ALL in roles:
        roles = {Role.WEB, Role.WORKER, Role.SCHEDULER}
    settings = get_settings()
    services = open_services(settings)
    rt = build_runtime(services)
    bolt_app = None
    if Role.WEB in roles:
        try:
            bolt_app = build_app(rt)
        except ValueError as exc:
            rt.close()
            services.close()
            raise fail(str(exc), 2) from None
        except OSError as exc:  # Bolt checks the bot token with auth.test at once: Slack's Web API did not answer
            rt.close()
            services.close()
            reason = getattr(exc, "reason", None) or exc
            raise fail(f"cannot reach Slack's Web API at SLACK_API_URL={settings.slack_api_url}: {reason}",
                       1) from None
    if Role.WORKER in roles:
        rt.start_background()
    scheduler = None
    if Role.SCHEDULER in roles and settings.scheduler_enabled:
        from bot.scheduler import Scheduler

        scheduler = Scheduler(services, settings.scheduler_config(), on_queued=rt.notifier.wake)
        scheduler.start()
    try:
        if bolt_app is None:
            typer.echo(f"syncbot: running as {', '.join(sorted(r.value for r in roles))} (no Slack requests here)")
            _wait_for_stop()
        elif settings.slack_app_token is not None:
            from slack_sdk.errors import SlackApiError

            from bot.socket_mode import start_socket_mode

            typer.echo("syncbot: Slack app in Socket Mode; health and OAuth endpoints on HTTP too")
            try:
                handler = start_socket_mode(bolt_app, settings)
            except (ValueError, SlackApiError) as exc:
                reason = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
                raise fail(f"cannot open Socket Mode: {reason}", 2) from None
            except OSError as exc:  # Slack's Web API (SLACK_API_URL) did not answer
                raise fail(f"cannot open Socket Mode: {exc}", 1) from None
            try:  # /slack/events stays off: Bolt gets commands, interactions and events over the socket only
                uvicorn.run(create_server(rt, bolt_app, socket_mode=True), host=host, port=port or settings.port,
                            log_config=None)
            finally:
                handler.close()
        else:
            typer.echo(f"syncbot: Slack app over HTTP on {host}:{port or settings.port} (POST /slack/events)")
            uvicorn.run(create_server(rt, bolt_app), host=host, port=port or settings.port, log_config=None)
    finally:
        if scheduler is not None:
            scheduler.stop()
        rt.close()
        services.close()


@app.command("scheduler")
def scheduler_cmd(
        run: Annotated[str | None, typer.Option(
            help="Run one job once now and exit: summaries, reminders, resume, refresh or retention.")] = None,
        lease_seconds: Annotated[float | None, typer.Option(
            min=1.0, help="Leader lease in seconds, at least 1 (default SCHEDULER_LEASE_SECONDS).")] = None) -> None:
    """Run the scheduled jobs without the Slack app (a worker process): the weekly summaries and token
    reminders go to the outbox, which `syncbot serve` delivers. Stops on Ctrl-C or SIGTERM, giving up the lease."""
    from bot.scheduler import Scheduler

    settings = get_settings()
    services = open_services(settings)
    config = settings.scheduler_config()
    if lease_seconds is not None:
        if not math.isfinite(lease_seconds) or lease_seconds > 86400:  # NaN passes typer's min=1.0
            services.close()
            raise fail(f"--lease-seconds must be a number of seconds from 1 to 86400, not {lease_seconds}", 2)
        config.lease_seconds = lease_seconds
    scheduler = Scheduler(services, config)
    try:
        if run is not None:
            if run not in Scheduler.JOBS:
                raise fail(f"unknown job {run!r}: one of {', '.join(Scheduler.JOBS)}", 2)
            result = getattr(scheduler.jobs, run)(scheduler.clock())
            typer.echo(json.dumps({"job": run, **result.__dict__}))
            return
        scheduler.start()
        typer.echo(f"syncbot: scheduler running as {scheduler.holder} (lease {config.lease_seconds:g} s)")
        _wait_for_stop()
        scheduler.stop()
    finally:
        services.close()


@app.command("install-link")
def install_link(account: Annotated[int, typer.Option(help="The account the installing workspace binds to.")],
                 days: Annotated[int, typer.Option(help="How long the link works (days, 1 to 30).")] = 7) -> None:
    """Print a signed Slack install link that binds the workspace installing through it to ACCOUNT (many-workspace
    mode; the account must not have a workspace yet when it is used)."""
    from bot.runtime import server_secret
    from bot.workspaces import InstallLinks
    from sync.models import Account

    if not 1 <= days <= 30:
        raise fail("--days must be between 1 and 30", 2)
    settings = get_settings()
    if settings.server_secret is None and settings.slack_signing_secret is None:  # else signed with a known key
        raise fail("install-link signs with SERVER_SECRET (or a key derived from SLACK_SIGNING_SECRET): set the "
                   "one the serving replicas use", 2)
    services = open_services(settings)
    try:
        with services.sessions() as session:
            if session.get(Account, account) is None:
                raise fail(f"no account {account}", 2)
        token = InstallLinks(server_secret(settings)).mint(account, ttl_s=days * 86400)
        typer.echo(f"{settings.public_url.rstrip('/')}/slack/install?account={token}")
    finally:
        services.close()


@app.command("demo")
def demo(walkthrough: Annotated[bool, typer.Option(
            "--walkthrough", help="Tell the help article in the terminal (each error made and fixed).")] = False,
         port: Annotated[int | None, typer.Option(
            min=0, max=65535, help="Port of the page (default 8700, else a free one; 0: any free port).")] = None,
         ) -> None:
    """Run syncbot offline (what `make run` does): the app, the QuickBooks and Slack stand-ins and a page to watch
    #sync-errors and click, until Ctrl-C. With SLACK_BOT_TOKEN (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for many
    workspaces) and SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode) set: the real Slack app."""
    import os

    from bot import demo as demo_mod

    if walkthrough:
        from bot.walkthrough import run_walkthrough

        raise typer.Exit(run_walkthrough())
    settings = get_settings()
    workspaces = settings.slack_bot_token is not None or (  # one workspace, or many through the install flow
        settings.slack_client_id is not None and settings.slack_client_secret is not None)
    if not workspaces or (settings.slack_signing_secret is None and settings.slack_app_token is None):
        raise typer.Exit(demo_mod.run_live(port=port))
    mode = ("Socket Mode (SLACK_APP_TOKEN is set)" if settings.slack_app_token is not None
            else f"HTTP mode (POST /slack/events on port {port or settings.port})")
    typer.echo(f"syncbot demo: Slack credentials are set, so this serves the real Slack app in {mode}, "
               "not the offline page.")
    if settings.qbo_client_id != Settings.model_fields["qbo_client_id"].default:  # a real Intuit app
        serve(port=port)
        return
    try:
        books = demo_mod.offline_quickbooks(settings, port or settings.port)
        env = books.__enter__()
    except demo_mod.DemoAlreadyRunning as exc:
        raise fail(str(exc), 1) from None
    try:
        os.environ.update(env)
        get_settings.cache_clear()
        serve(port=port)
    finally:
        books.__exit__(None, None, None)


@sandbox_app.command("quickbooks")
def sandbox_quickbooks(port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8765,
                       minute_seconds: Annotated[float, typer.Option(
                           min=0.1, help="Length of the throttling minute (seconds).")] = 60.0) -> None:
    """Serve the QuickBooks Online + Intuit OAuth stand-in on 127.0.0.1:PORT until Ctrl-C."""
    import uvicorn

    from sandbox.quickbooks import StandInConfig, create_app

    try:
        standin_app = create_app(StandInConfig(minute_seconds=minute_seconds))
    except ValueError as exc:  # NaN or infinity pass typer's range check
        raise fail(f"--minute-seconds: {exc}", 2) from None
    typer.echo(f"QuickBooks stand-in on http://127.0.0.1:{port} (control panel: /_control/panel)")
    uvicorn.run(standin_app, host="127.0.0.1", port=port, log_level="warning")
