"""The `syncbot` command line (typer).

Operator commands work on the database named by DATABASE_URL (default: `syncbot.db` here) and the QuickBooks
company of the account's connection. Exit codes: 0 done, 1 the work failed (the message says why), 2 a bad
argument or input file.
"""

from __future__ import annotations

import json
import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

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


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _services(settings: Settings | None = None) -> Any:
    """The services, or a clear message (exit 2) when the database or the encryption keys are unusable."""
    from alembic.util.exc import CommandError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from bot.services import build_services

    settings = settings or get_settings()
    _refuse_stray_database(settings)
    _refuse_memory_database(settings)
    try:
        return build_services(settings)
    except (ArgumentError, NoSuchModuleError, DBAPIError, CommandError, OSError, ImportError) as exc:
        try:
            shown = make_url(settings.database_url).render_as_string(hide_password=True)
        except ArgumentError:
            shown = "(not a database URL)"
        from sync.db import error_line

        reason = error_line(exc)
        if isinstance(exc, ImportError):  # the URL names a database whose driver is not installed
            reason += " (its driver is not installed: use sqlite:///FILE or postgresql+psycopg://...)"
        raise _fail(f"cannot use the database DATABASE_URL={shown}: {reason}", 2) from None
    except ValueError as exc:  # e.g. a malformed TOKEN_ENCRYPTION_KEYS
        raise _fail(str(exc), 2) from None


def _refuse_memory_database(settings: Settings) -> None:
    """An in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``) lives in one connection: the schema made
    on one would be missing on the next (exit 2, saying to use a file)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        return  # said by _services
    if url.get_backend_name() == "sqlite" and (url.database or ":memory:") == ":memory:":
        raise _fail(f"cannot use the database DATABASE_URL={settings.database_url}: an in-memory SQLite database is "
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
    raise _fail(f"No syncbot database here ({default.removeprefix('sqlite:///')}), but the demo's data is in "
                f"{demo_mod.DEMO_DIR}/: run the command with DATABASE_URL=sqlite:///{demo_db}, as in\n"
                f"  DATABASE_URL=sqlite:///{demo_db} syncbot sync-log errors\n"
                f"(or set DATABASE_URL=sqlite:///{default.removeprefix('sqlite:///')} to start a database of your "
                "own here).", 2)


def _services_for_quickbooks() -> Any:
    """The services for a command that talks to QuickBooks: also exit 2 with the reason when the settings may
    not be used against Intuit's hosts (TOKEN_ENCRYPTION_KEYS not set)."""
    services = _services()
    try:
        services.settings.check_secrets()
    except ValueError as exc:
        services.close()
        raise _fail(str(exc), 2) from None
    return services


def _clean(text: object) -> str:
    """Text safe for a terminal: control characters shown as '?'."""
    return "".join(ch if ch.isprintable() or ch == " " else "?" for ch in str(text))


def _account_and_connection(services: Any, account: int | None) -> tuple[Any, Any]:
    from sync.models import Account, Connection

    with services.sessions() as session:
        first = select(Account).order_by(Account.id)
        acc = session.get(Account, account) if account else session.scalars(first).first()
        if acc is None and account:
            raise _fail(f"no account {account}", 2)
        if acc is None:
            raise _fail("No account yet: import records first (`syncbot records import FILE.json`).")
        conn = session.scalars(select(Connection).where(Connection.account_id == acc.id)).first()
        return acc, conn


def _connection_or_fail(services: Any, account: int | None) -> Any:
    acc, conn = _account_and_connection(services, account)
    if conn is None or not conn.realm_id:
        raise _fail(f"Account {acc.id} has no QuickBooks connection yet: run `syncbot connect` first.")
    return conn


def _progress(label: str) -> Any:
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


def _print_summary(summary: Any) -> None:
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


def _recover(services: Any) -> None:
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


def _database_refused(exc: Exception) -> str:
    """What a database error in the middle of a command means, in plain words (its first line, no SQL)."""
    from sync.db import error_line

    return (f"stopped: the database refused a write ({error_line(exc)}). Nothing was written twice: what was under "
            "way is as it was, or sent again as it was by the next run. Run the command again once the database is "
            "back.")


def _engine_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from sqlalchemy.exc import SQLAlchemyError

    from sync.crypto import SecretBoxError
    from sync.engine import ConnectionUnavailable, EngineError

    try:
        return fn(*args, **kwargs)
    except SQLAlchemyError as exc:
        raise _fail(_database_refused(exc)) from None
    except SecretBoxError:
        raise _fail("the stored QuickBooks tokens cannot be decrypted with TOKEN_ENCRYPTION_KEYS: use the key "
                    "they were saved with, or reconnect", 2) from None
    except ConnectionUnavailable as exc:
        until = f" (until {exc.until:%Y-%m-%d %H:%M} UTC)" if exc.until else ""
        raise _fail(f"{exc}{until}") from None
    except EngineError as exc:
        raise _fail(str(exc)) from None


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
        raise _fail(f"syncbot: bad setting {bad}", 2) from None
    # a long-running process tells its operator what it does; a one-shot command prints its own answer
    default = "INFO" if ctx.invoked_subcommand in ("serve", "scheduler") else "WARNING"
    level = settings.log_level or default
    if verbose and level != "DEBUG":  # -v asks for each step whatever LOG_LEVEL says
        level = "INFO"
    configure(level, settings.log_format)


# ------------------------------------------------------------------------------------------------ db


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema (Alembic) to the newest revision."""
    _services().close()  # builds the services as every command does: the schema is brought up to date first
    typer.echo("database is up to date")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored token under the newest (first) key of TOKEN_ENCRYPTION_KEYS, and say how many.
    Exits 1 when some value opens with no configured key (left unchanged: keep the old key until it is dealt
    with)."""
    from bot.keys import Rotation, rotate_secrets

    services = _services()
    try:
        report = _engine_call(rotate_secrets, services.db_engine, services.box)
    finally:
        services.close()
    rotated, current = Rotation.total(report.rotated), Rotation.total(report.current)
    places = ", ".join(f"{n} in {place}" for place, n in report.rotated.items())
    typer.echo(f"re-encrypted {rotated} stored {'secret' if rotated == 1 else 'secrets'} under the newest key"
               + (f" ({places})" if places else "") + f"; {current} already under it")
    if report.changed:
        typer.echo(f"{Rotation.total(report.changed)} changed by another process meanwhile (left as written)")
    if report.unreadable:
        where = ", ".join(f"{n} in {place}" for place, n in report.unreadable.items())
        raise _fail(f"{Rotation.total(report.unreadable)} cannot be opened with any configured key ({where}): "
                    "left unchanged; keep the key they were saved with")


# ------------------------------------------------------------------------------------------------ records


@records_app.command("import")
def records_import(file: Annotated[Path, typer.Argument(help="A records file (JSON; - for stdin); see "
                                                             "sync/records.py.")],
                   account: AccountOpt = None) -> None:
    """Validate a records file and import it (all or nothing): a bad file changes nothing and says which
    record and field is wrong."""
    from sync.connections import ensure_account
    from sync.models import Account
    from sync.records import RecordsFileError, import_records

    def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"key {dupes[0]!r} appears twice in one object")
        return dict(pairs)

    try:
        raw = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8-sig")
        data = json.loads(raw, object_pairs_hook=no_duplicate_keys)
    except FileNotFoundError:
        raise _fail(f"{file}: no such file", 2) from None
    except OSError as exc:
        raise _fail(f"{file}: cannot be read ({exc.strerror or exc})", 2) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise _fail(f"{file}: not valid JSON ({str(exc)[:200]})", 2) from None
    services = _services()
    try:
        with services.sessions() as session, session.begin():
            acc = session.get(Account, account) if account else ensure_account(session)
            if acc is None:
                raise _fail(f"no account {account}", 2)
            counts = import_records(session, acc.id, data)
    except RecordsFileError as exc:
        typer.secho(f"{file}: nothing was imported:", err=True, fg=typer.colors.RED)
        for problem in exc.problems:
            typer.secho(f"  {problem}", err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    typer.echo("imported " + ", ".join(f"{n} {k}" for k, n in counts.items()) + f" into account {acc.id}")


# ------------------------------------------------------------------------------------------------ connect


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
        raise _fail("give both --code and --realm-id (from the callback URL), or neither", 2)
    services = _services()
    try:
        try:
            services.settings.check_secrets()
        except ValueError as exc:
            raise _fail(str(exc), 2) from None
        acc, _ = _account_and_connection(services, account)
        with services.sessions() as session, session.begin():
            conn_id = ensure_connection(session, acc.id).id
        if not code or not realm_id:
            typer.echo(services.oauth.authorization_url(secrets.token_urlsafe(24)))
            return
        try:
            summary = finish_authorization(services.sessions, services.oauth, services.tokens, services.engine,
                                           conn_id, code, realm_id, by)
        except ProviderError as exc:
            raise _fail(f"QuickBooks refused the authorization: {exc.diagnosis.details}") from None
        except ValueError as exc:
            raise _fail(str(exc), 2) from None
        from sync.models import Connection

        with services.sessions() as session:
            conn = session.get(Connection, conn_id)
            name = conn.company_name if conn is not None else None  # read from CompanyInfo as it connected
        typer.echo(f"connected to QuickBooks company {realm_id}" + (f" ({name})" if name else ""))
        _print_summary(summary)
    finally:
        services.close()


# ------------------------------------------------------------------------------------------------ sync


@app.command("sync-now")
def sync_now(account: AccountOpt = None) -> None:
    """Pull what changed in QuickBooks, then push what changed in JobsiteOn."""
    services = _services_for_quickbooks()
    try:
        conn = _connection_or_fail(services, account)
        _engine_call(_recover, services)
        summary = _engine_call(services.engine.sync_now, conn.id, "cli", _progress("syncing"))
        _print_summary(summary)
    finally:
        services.close()


@app.command("retry")
def retry(entry: Annotated[int, typer.Argument(help="The sync log entry id.", min=1, max=2**62)],
          actor: Annotated[str, typer.Option(help="Who retries (recorded).")] = "cli") -> None:
    """Retry the record of one sync log entry."""
    from sqlalchemy.exc import SQLAlchemyError

    from sync.engine import EngineError, NotFound, NothingToRetry

    services = _services_for_quickbooks()
    try:
        _engine_call(_recover, services)
        try:
            result = services.engine.retry_entry(entry, actor)
        except SQLAlchemyError as exc:
            raise _fail(_database_refused(exc)) from None
        except NothingToRetry as exc:
            typer.echo(f"{exc} (newest attempt: entry {exc.entry.id}, {exc.entry.status})")
            return
        except NotFound as exc:
            raise _fail(str(exc), 2) from None
        except EngineError as exc:
            raise _fail(str(exc)) from None
        typer.echo(f"entry {result.id}: {result.status}" + (f" ({result.kind})" if result.kind else "")
                   + (f"\n{result.details}" if result.details else ""))
        if result.status == "error":
            raise typer.Exit(1)
    finally:
        services.close()


@app.command("retry-all")
def retry_all(account: AccountOpt = None) -> None:
    """Retry every open error of the account's connection (in batches)."""
    services = _services_for_quickbooks()
    try:
        conn = _connection_or_fail(services, account)
        _engine_call(_recover, services)
        summary = _engine_call(services.engine.retry_all, conn.id, "cli", _progress("retrying"))
        _print_summary(summary)
    finally:
        services.close()


@app.command("resume")
def resume(account: AccountOpt = None) -> None:
    """Resume a rate-limited or suspended connection now (the Slack app's scheduler does it by itself when the
    pause is over): retries what waited, then syncs."""
    services = _services_for_quickbooks()
    try:
        conn = _connection_or_fail(services, account)
        _engine_call(_recover, services)
        summary = _engine_call(services.engine.resume, conn.id, "cli", "resumed", _progress("resuming"))
        _print_summary(summary)
    finally:
        services.close()


@app.command("sync-log")
def sync_log(words: Annotated[list[str] | None, typer.Argument(
                 help="Filters: errors, warnings, open, entity:invoice, kind:duplicate, since:7d, until:DATE, "
                      "direction:pull, status:synced, and free text.")] = None,
             account: AccountOpt = None,
             limit: Annotated[int, typer.Option(min=1, max=100, help="Entries per page.")] = 20,
             before: Annotated[int | None, typer.Option(min=1, max=2**62,
                                                        help="Show entries older than this id (next page).")] = None,
             as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False) -> None:
    """Show the sync log, newest first."""
    from sync.diagnosis import Kind, kind_info
    from sync.log import FilterError, entry_as_dict, page, parse_filter

    services = _services()
    try:
        acc, _ = _account_and_connection(services, account)
        try:
            flt = parse_filter(words or [], account_id=acc.id)
        except FilterError as exc:
            raise _fail(str(exc), 2) from None
        tz = ZoneInfo(acc.timezone or "UTC")
        with services.sessions() as session:
            result = page(session, flt, before=before, size=limit)
            rows = [entry_as_dict(e, lambda t: t.astimezone(tz)) for e in result.entries]
        for row in rows:
            info = kind_info(Kind(row["kind"]), row["meaning"]) if row["kind"] in {k.value for k in Kind} else None
            row["cause"], row["fix"] = (info.cause, info.fix) if info else (None, None)
        if as_json:
            typer.echo(json.dumps({"filter": flt.describe(), "total": result.total,
                                   "total_is_lower_bound": result.total_is_lower_bound, "entries": rows,
                                   "next_before": result.next_before,
                                   "searched_newest": result.searched_newest}, indent=2))
            return
        of = f"more than {result.total:,}" if result.total_is_lower_bound else f"{result.total:,}"
        span = (f", {len(rows)} entries past the newest {result.first - 1:,}" if rows and result.first_is_lower_bound
                else f", entries {result.first:,}-{result.first + len(rows) - 1:,} of {of}"
                if rows and result.total and (len(rows) < result.total or result.total_is_lower_bound) else "")
        typer.echo(f"sync log of {acc.name} ({flt.describe()}{span}), times in {acc.timezone}")
        if result.searched_newest:
            newest = ("entry" if result.searched_newest == 1
                      else f"{result.searched_newest:,} entries")
            typer.echo(f"text under 3 characters searches only the newest {newest}: type 3 or more to search "
                       "them all")
        if not rows:
            typer.echo("no entries")
        for r in rows:
            when = r["timestamp"][:16].replace("T", " ")
            state = r["severity"] + (f"/{r['kind']}" if r["kind"] else "")  # the kind's severity, as in Slack
            if r["resolved_at"]:
                state += " (resolved)"
            elif r["retried_by"]:
                state += f" (retried: {r['retried_by']})"
            typer.echo(f"{r['id']:>7}  {when}  {r['entity']:<10} {r['direction']:<4}  {state:<28} "
                       f"{_clean(r['record'] or '(the connection)')[:40]}")
            if r["status"] in ("error", "warning") and r["details"]:
                typer.echo(" " * 9 + _clean(r["details"].splitlines()[0])[:110])
                if r["fix"] and not r["resolved_at"] and not r["retried_by"]:
                    typer.echo(" " * 9 + "fix: " + r["fix"])
        if result.next_before:
            typer.echo(" ".join(["more: syncbot sync-log", *(words or []), f"--limit {limit}",
                                 f"--before {result.next_before}"]))
    finally:
        services.close()


# ------------------------------------------------------------------------------------------------ diagnose


@app.command("diagnose")
def diagnose_cmd(file: Annotated[str, typer.Argument(help="A file with the raw reply body, or - for stdin.")],
                 status: Annotated[int, typer.Option(help="The HTTP status of the reply.", min=100, max=599)],
                 content_type: Annotated[str | None, typer.Option("--content-type")] = None,
                 endpoint: Annotated[str, typer.Option(help="api, token or revoke.")] = "api",
                 bid: Annotated[list[str] | None, typer.Option(
                     "--bid", help="A bId the batch request sent (repeat it): each gets an item.")] = None,
                 header: Annotated[list[str] | None, typer.Option(
                     "--header", help="A response header 'Name: value' (repeat it), e.g. intuit_tid, Retry-After."
                 )] = None) -> None:
    """Diagnose a raw QuickBooks / Intuit reply: prints one JSON object (kind, codes, cause, fix, details,
    and items for a batch answer)."""
    from sync.diagnosis import diagnose, report

    if endpoint not in ("api", "token", "revoke"):
        raise _fail(f"--endpoint must be api, token or revoke, not {endpoint!r}", 2)
    headers: dict[str, str] = {}
    for line in header or []:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise _fail(f"--header must be 'Name: value', not {_clean(line)[:80]!r}", 2)
        headers[name.strip()] = value.strip()
    try:
        body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise _fail(f"{file}: {exc.strerror or exc}", 2) from None
    d = diagnose(status, body, content_type, headers, endpoint=endpoint, bids=bid or None)
    typer.echo(json.dumps(report(d), indent=2))


# ------------------------------------------------------------------------------------------------ sandbox


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
        raise _fail(f"--minute-seconds: {exc}", 2) from None
    typer.echo(f"QuickBooks stand-in on http://127.0.0.1:{port} (control panel: /_control/panel)")
    uvicorn.run(standin_app, host="127.0.0.1", port=port, log_level="warning")


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
    services = _services(settings)
    rt = build_runtime(services)
    bolt_app = None
    if Role.WEB in roles:
        try:
            bolt_app = build_app(rt)
        except ValueError as exc:
            rt.close()
            services.close()
            raise _fail(str(exc), 2) from None
        except OSError as exc:  # Bolt checks the bot token with auth.test at once: Slack's Web API did not answer
            rt.close()
            services.close()
            reason = getattr(exc, "reason", None) or exc
            raise _fail(f"cannot reach Slack's Web API at SLACK_API_URL={settings.slack_api_url}: {reason}",
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
                raise _fail(f"cannot open Socket Mode: {reason}", 2) from None
            except OSError as exc:  # Slack's Web API (SLACK_API_URL) did not answer
                raise _fail(f"cannot open Socket Mode: {exc}", 1) from None
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
    services = _services(settings)
    config = settings.scheduler_config()
    if lease_seconds is not None:
        if not math.isfinite(lease_seconds) or lease_seconds > 86400:  # NaN passes typer's min=1.0
            services.close()
            raise _fail(f"--lease-seconds must be a number of seconds from 1 to 86400, not {lease_seconds}", 2)
        config.lease_seconds = lease_seconds
    scheduler = Scheduler(services, config)
    try:
        if run is not None:
            if run not in Scheduler.JOBS:
                raise _fail(f"unknown job {run!r}: one of {', '.join(Scheduler.JOBS)}", 2)
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
        raise _fail("--days must be between 1 and 30", 2)
    settings = get_settings()
    if settings.server_secret is None and settings.slack_signing_secret is None:  # else signed with a known key
        raise _fail("install-link signs with SERVER_SECRET (or a key derived from SLACK_SIGNING_SECRET): set the "
                    "one the serving replicas use", 2)
    services = _services(settings)
    try:
        with services.sessions() as session:
            if session.get(Account, account) is None:
                raise _fail(f"no account {account}", 2)
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
        raise _fail(str(exc), 1) from None
    try:
        os.environ.update(env)
        get_settings.cache_clear()
        serve(port=port)
    finally:
        books.__exit__(None, None, None)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
