"""The commands that work with QuickBooks: `syncbot connect`, `sync-now`, `retry`, `retry-all` and `resume`."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.common import (
    AccountOpt,
    account_and_connection,
    app,
    connection_or_fail,
    database_refused,
    engine_call,
    fail,
    open_services,
    print_summary,
    progress,
    recover,
    services_for_quickbooks,
)


@app.command("connect")
def connect(account: AccountOpt = None,
            code: Annotated[str | None, typer.Option(help="The `code` from the callback URL.")] = None,
            realm_id: Annotated[str | None, typer.Option("--realm-id", help="The `realmId` from it.")] = None,
            by: Annotated[str, typer.Option(help="Who connects (recorded).")] = "cli") -> None:
    """Connect the account to QuickBooks: prints the authorize URL; run again with --code and --realm-id from
    the callback to finish (the Slack app's Reconnect button does all of this by itself)."""
    import secrets

    from sync.connections import ensure_connection, finish_authorization
    from sync.providers.base import ProviderError

    if bool(code) != bool(realm_id):
        raise fail("give both --code and --realm-id (from the callback URL), or neither", 2)
    services = open_services()
    try:
        try:
            services.settings.check_secrets()
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        acc, _ = account_and_connection(services, account)
        with services.sessions() as session, session.begin():
            conn_id = ensure_connection(session, acc.id).id
        if not code or not realm_id:
            typer.echo(services.oauth.authorization_url(secrets.token_urlsafe(24)))
            return
        try:
            summary = finish_authorization(services.sessions, services.oauth, services.tokens, services.engine,
                                           conn_id, code, realm_id, by)
        except ProviderError as exc:
            raise fail(f"QuickBooks refused the authorization: {exc.diagnosis.details}") from None
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        from sync.models import Connection

        with services.sessions() as session:
            conn = session.get(Connection, conn_id)
            name = conn.company_name if conn is not None else None  # read from CompanyInfo as it connected
        typer.echo(f"connected to QuickBooks company {realm_id}" + (f" ({name})" if name else ""))
        print_summary(summary)
    finally:
        services.close()


def run_on_connection(account: int | None, run: str, doing: str) -> None:
    """Run the engine's ``run`` (sync_now or retry_all) on the account's connection as the CLI, after recovering
    what a killed run left, with progress lines saying ``doing``; print its summary."""
    services = services_for_quickbooks()
    try:
        conn = connection_or_fail(services, account)
        engine_call(recover, services)
        summary = engine_call(getattr(services.engine, run), conn.id, "cli", progress(doing))
        print_summary(summary)
    finally:
        services.close()


@app.command("sync-now")
def sync_now(account: AccountOpt = None) -> None:
    """Pull what changed in QuickBooks, then push what changed in JobsiteOn."""
    run_on_connection(account, "sync_now", "syncing")


@app.command("retry")
def retry(entry: Annotated[int, typer.Argument(help="The sync log entry id.", min=1, max=2**62)],
          actor: Annotated[str, typer.Option(help="Who retries (recorded).")] = "cli") -> None:
    """Retry the record of one sync log entry."""
    from sqlalchemy.exc import SQLAlchemyError

    from sync.engine import EngineError, NotFound, NothingToRetry

    services = services_for_quickbooks()
    try:
        engine_call(recover, services)
        try:
            result = services.engine.retry_entry(entry, actor)
        except SQLAlchemyError as exc:
            raise fail(database_refused(exc)) from None
        except NothingToRetry as exc:
            typer.echo(f"{exc} (newest attempt: entry {exc.entry.id}, {exc.entry.status})")
            return
        except NotFound as exc:
            raise fail(str(exc), 2) from None
        except EngineError as exc:
            raise fail(str(exc)) from None
        typer.echo(f"entry {result.id}: {result.status}" + (f" ({result.kind})" if result.kind else "")
                   + (f"\n{result.details}" if result.details else ""))
        if result.status == "error":
            raise typer.Exit(1)
    finally:
        services.close()


@app.command("retry-all")
def retry_all(account: AccountOpt = None) -> None:
    """Retry every open error of the account's connection (in batches)."""
    run_on_connection(account, "retry_all", "retrying")


@app.command("resume")
def resume(account: AccountOpt = None) -> None:
    """Resume a rate-limited or suspended connection now (the Slack app's scheduler does it by itself when the
    pause is over): retries what waited, then syncs."""
    services = services_for_quickbooks()
    try:
        conn = connection_or_fail(services, account)
        engine_call(recover, services)
        summary = engine_call(services.engine.resume, conn.id, "cli", "resumed", progress("resuming"))
        print_summary(summary)
    finally:
        services.close()
