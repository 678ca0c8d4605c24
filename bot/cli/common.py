"""What every `syncbot` command shares: the root command (`app`, its groups and its ``--verbose``), the services
opened on DATABASE_URL (or a clear exit 2), the account and its connection, the engine's errors said in plain
words, and a run's counts printed with their exit code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from bot.config import Settings, get_settings

app = typer.Typer(help="syncbot: QuickBooks Online sync errors, diagnosed and fixed from Slack.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
records_app = typer.Typer(help="JobsiteOn records.", no_args_is_help=True)
sandbox_app = typer.Typer(help="Local stand-ins of QuickBooks Online and Slack.", no_args_is_help=True)
keys_app = typer.Typer(help="The encryption keys of stored tokens (TOKEN_ENCRYPTION_KEYS).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(records_app, name="records")
app.add_typer(sandbox_app, name="sandbox")

AccountOpt = Annotated[int | None, typer.Option("--account", min=1, max=2**31 - 1,
                                                 help="Account id (default: the first account).")]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@contextmanager
def _database_said(settings: Settings) -> Iterator[None]:
    """Turn an unusable DATABASE_URL (malformed, no driver, unreachable, refused by a migration) into a clear
    message and exit 2, the password hidden."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    try:
        yield
    except Exception as exc:
        from alembic.util.exc import CommandError  # only now: alembic takes ~0.1 s to import

        if not isinstance(exc, ArgumentError | NoSuchModuleError | DBAPIError | CommandError | OSError | ImportError):
            raise
        try:
            shown = make_url(settings.database_url).render_as_string(hide_password=True)
        except ArgumentError:
            shown = "(not a database URL)"
        from sync.db import error_line

        reason = error_line(exc)
        if isinstance(exc, ImportError):  # the URL names a database whose driver is not installed
            reason += " (its driver is not installed: use sqlite:///FILE or postgresql+psycopg://...)"
        raise fail(f"cannot use the database DATABASE_URL={shown}: {reason}", 2) from None


def open_services(settings: Settings | None = None) -> Any:
    """The services, or a clear message (exit 2) when the database or the encryption keys are unusable."""
    from bot.services import build_services

    settings = settings or get_settings()
    _refuse_stray_database(settings)
    _refuse_memory_database(settings)
    with _database_said(settings):
        try:
            return build_services(settings)
        except ValueError as exc:  # e.g. a malformed TOKEN_ENCRYPTION_KEYS
            raise fail(str(exc), 2) from None


@dataclass
class Database:
    """The database alone, for a command that only reads it: ``sessions`` as `Services` has them, and
    ``close()``."""

    engine: Any
    sessions: Any

    def close(self) -> None:
        self.engine.dispose()


def open_database(settings: Settings | None = None) -> Database:
    """The database at DATABASE_URL, migrated as `open_services` does and refused with the same messages (exit 2),
    without building the services: a reading command (`syncbot sync-log`) then imports neither the engine nor the
    providers, OAuth or the encryption, about half of what a start imports."""
    from sync import db

    settings = settings or get_settings()
    _refuse_stray_database(settings)
    _refuse_memory_database(settings)
    with _database_said(settings):
        engine = db.open_migrated(settings.database_url)
        return Database(engine, db.make_sessionmaker(engine))


def _refuse_memory_database(settings: Settings) -> None:
    """An in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``) lives in one connection: the schema made
    on one would be missing on the next (exit 2, saying to use a file)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        return  # said by open_services
    if url.get_backend_name() == "sqlite" and (url.database or ":memory:") == ":memory:":
        raise fail(f"cannot use the database DATABASE_URL={settings.database_url}: an in-memory SQLite database is "
                   "empty again for each connection; use a file, e.g. sqlite:///syncbot.db", 2)


def _refuse_stray_database(settings: Settings) -> None:
    """Without DATABASE_URL, syncbot uses ``syncbot.db`` in the working directory. When that file does not exist
    and the demo's data does (``demo-data/syncbot-demo.db``, what `make run` writes), a command would create an
    empty ``syncbot.db`` and show nothing: say where the demo's data is instead (exit 2), creating nothing. A
    DATABASE_URL set explicitly, even to the default, is used as it is."""
    import os

    from bot import demo as demo_mod

    default = Settings.model_fields["database_url"].default
    demo_db = demo_mod.DEMO_DIR / demo_mod.DB_FILE
    if ("DATABASE_URL" in os.environ or settings.database_url != default
            or Path(default.removeprefix("sqlite:///")).exists() or not demo_db.exists()):
        return
    raise fail(f"No syncbot database here ({default.removeprefix('sqlite:///')}), but the demo's data is in "
               f"{demo_mod.DEMO_DIR}/: run the command with DATABASE_URL=sqlite:///{demo_db}, as in\n"
               f"  DATABASE_URL=sqlite:///{demo_db} syncbot sync-log errors\n"
               f"(or set DATABASE_URL=sqlite:///{default.removeprefix('sqlite:///')} to start a database of your "
               "own here).", 2)


def services_for_quickbooks() -> Any:
    """The services for a command that talks to QuickBooks: also exit 2 with the reason when the settings may
    not be used against Intuit's hosts (TOKEN_ENCRYPTION_KEYS not set)."""
    services = open_services()
    try:
        services.settings.check_secrets()
    except ValueError as exc:
        services.close()
        raise fail(str(exc), 2) from None
    return services


def clean(text: object) -> str:
    """Text safe for a terminal: control characters shown as '?'."""
    return "".join(ch if ch.isprintable() or ch == " " else "?" for ch in str(text))


def account_and_connection(services: Any, account: int | None) -> tuple[Any, Any]:
    from sync.models import Account, Connection

    with services.sessions() as session:
        first = select(Account).order_by(Account.id)
        acc = session.get(Account, account) if account else session.scalars(first).first()
        if acc is None and account:
            raise fail(f"no account {account}", 2)
        if acc is None:
            raise fail("No account yet: import records first (`syncbot records import FILE.json`).")
        conn = session.scalars(select(Connection).where(Connection.account_id == acc.id)).first()
        return acc, conn


def connection_or_fail(services: Any, account: int | None) -> Any:
    acc, conn = account_and_connection(services, account)
    if conn is None or not conn.realm_id:
        raise fail(f"Account {acc.id} has no QuickBooks connection yet: run `syncbot connect` first.")
    return conn


def progress(label: str) -> Any:
    state: dict[str, Any] = {}

    def report(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = typer.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            bar.__enter__()
        bar.update(done - state.get("done", 0))
        state["done"] = done
        if done >= total:
            bar.__exit__(None, None, None)

    return report


def print_summary(summary: Any) -> None:
    data = summary.as_dict()
    typer.echo(f"synced {data['synced']}, errors {data['errors']}, warnings {data['warnings']}, "
               f"pulled {data['pulled']}, unchanged {data['unchanged']}, skipped {data['skipped']}")
    if data["by_kind"]:
        typer.echo("by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(data["by_kind"].items())))
    if data["stopped"] == "unknown":  # no answer (a timeout, a gateway error): the connection is fine
        typer.secho("stopped early: QuickBooks did not answer (a timeout or a gateway error). What was sent is kept "
                    "and sent again as it was by the next run; nothing is written twice. Run the command again in "
                    "a moment.", fg=typer.colors.YELLOW)
        raise typer.Exit(1)
    if data["stopped"]:
        typer.secho(f"stopped early: {data['stopped']} (the connection needs attention; see `syncbot sync-log`)",
                    fg=typer.colors.YELLOW)
        raise typer.Exit(1)
    if data["failure"]:
        typer.secho(f"stopped early: {data['failure']}. What is counted above is done; nothing else was "
                    "changed, or it is sent again as it was by the next run (nothing twice). Run the command "
                    "again once the database is back.", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    if data["skipped"]:
        waiting, busy = data["waiting"], data["skipped"] - data["waiting"]
        reasons = ([f"{busy} being synced by another process"] if busy else []) + (
            [f"{waiting} waiting for their batch to be sent again (QuickBooks' answer to it was lost)"]
            if waiting else [])
        typer.secho(f"{data['skipped']} record{'s' if data['skipped'] != 1 else ''} not tried: "
                    f"{'; '.join(reasons)}. Run the command again to finish them.", fg=typer.colors.YELLOW)
        raise typer.Exit(1)


def recover(services: Any) -> None:
    """What a process of this machine killed during a run left behind, settled before a command writes: batches
    sent again as they were, claims of dead processes dropped, attempts left pending back to error (messages
    drawn again through the outbox). Says so when there was something to do."""
    resent = services.engine.resend_batches()  # recover_pending does it too: first here, to say how many
    settled = services.engine.recover_pending()
    if resent:
        typer.echo(f"sent again {resent} batch{'es' if resent != 1 else ''} whose answer was lost or whose process "
                   "stopped (QuickBooks answers a batch it already did from memory: nothing is written twice)")
    if settled:
        typer.echo(f"recovered {settled} attempt{'s' if settled != 1 else ''} left pending by a stopped process")


def database_refused(exc: Exception) -> str:
    """What a database error in the middle of a command means, in plain words (its first line, no SQL)."""
    from sync.db import error_line

    return (f"stopped: the database refused a write ({error_line(exc)}). Nothing was written twice: what was under "
            "way is as it was, or sent again as it was by the next run. Run the command again once the database is "
            "back.")


def engine_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from sqlalchemy.exc import SQLAlchemyError

    from sync.crypto import SecretBoxError
    from sync.engine import ConnectionUnavailable, EngineError

    try:
        return fn(*args, **kwargs)
    except SQLAlchemyError as exc:
        raise fail(database_refused(exc)) from None
    except SecretBoxError:
        raise fail("the stored QuickBooks tokens cannot be decrypted with TOKEN_ENCRYPTION_KEYS: use the key "
                   "they were saved with, or reconnect", 2) from None
    except ConnectionUnavailable as exc:
        until = f" (until {exc.until:%Y-%m-%d %H:%M} UTC)" if exc.until else ""
        raise fail(f"{exc}{until}") from None
    except EngineError as exc:
        raise fail(str(exc)) from None


@app.callback()
def _main(ctx: typer.Context,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step (INFO at least).")] = False
          ) -> None:
    from pydantic import ValidationError

    from bot.logs import configure

    try:
        settings = get_settings()
    except ValidationError as exc:  # a bad environment variable: say which and why, exit 2, no traceback
        bad = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise fail(f"syncbot: bad setting {bad}", 2) from None
    # a long-running process tells its operator what it does; a one-shot command prints its own answer
    default = "INFO" if ctx.invoked_subcommand in ("serve", "scheduler") else "WARNING"
    level = settings.log_level or default
    if verbose and level != "DEBUG":  # -v asks for each step whatever LOG_LEVEL says
        level = "INFO"
    configure(level, settings.log_format)
