"""The commands on syncbot's own data: `syncbot db upgrade` (the schema), `syncbot keys rotate` (stored secrets
under the newest key) and `syncbot records import` (a JobsiteOn records file in, all or nothing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import AccountOpt, db_app, engine_call, fail, keys_app, open_services, records_app


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema (Alembic) to the newest revision."""
    open_services().close()  # builds the services as every command does: the schema is brought up to date first
    typer.echo("database is up to date")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored token under the newest (first) key of TOKEN_ENCRYPTION_KEYS, and say how many.
    Exits 1 when some value opens with no configured key (left unchanged: keep the old key until it is dealt
    with)."""
    from bot.keys import Rotation, rotate_secrets

    services = open_services()
    try:
        report = engine_call(rotate_secrets, services.db_engine, services.box)
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
        raise fail(f"{Rotation.total(report.unreadable)} cannot be opened with any configured key ({where}): "
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
        raise fail(f"{file}: no such file", 2) from None
    except OSError as exc:
        raise fail(f"{file}: cannot be read ({exc.strerror or exc})", 2) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise fail(f"{file}: not valid JSON ({str(exc)[:200]})", 2) from None
    services = open_services()
    try:
        with services.sessions() as session, session.begin():
            acc = session.get(Account, account) if account else ensure_account(session)
            if acc is None:
                raise fail(f"no account {account}", 2)
            counts = import_records(session, acc.id, data)
    except RecordsFileError as exc:
        typer.secho(f"{file}: nothing was imported:", err=True, fg=typer.colors.RED)
        for problem in exc.problems:
            typer.secho(f"  {problem}", err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    typer.echo("imported " + ", ".join(f"{n} {k}" for k, n in counts.items()) + f" into account {acc.id}")
