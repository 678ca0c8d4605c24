"""The commands that read: `syncbot sync-log` (the sync log, with the same filters and open errors as Slack) and
`syncbot diagnose` (a raw QuickBooks or Intuit reply, diagnosed)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from bot.cli.common import AccountOpt, account_and_connection, app, clean, fail, open_database


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
    from sync.log import FilterError, entry_as_dict, page, parse_filter, short_text_note

    services = open_database()
    try:
        acc, _ = account_and_connection(services, account)
        try:
            flt = parse_filter(words or [], account_id=acc.id)
        except FilterError as exc:
            raise fail(str(exc), 2) from None
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
        note = short_text_note(result.searched_newest)
        if note:
            typer.echo(note)
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
                       f"{clean(r['record'] or '(the connection)')[:40]}")
            if r["status"] in ("error", "warning") and r["details"]:
                typer.echo(" " * 9 + clean(r["details"].splitlines()[0])[:110])
                if r["fix"] and not r["resolved_at"] and not r["retried_by"]:
                    typer.echo(" " * 9 + "fix: " + r["fix"])
        if result.next_before:
            # quoted for a shell, so the line can be pasted as it is (a search of several words stays one)
            typer.echo("more: " + shlex.join(["syncbot", "sync-log", *(words or []), "--limit", str(limit),
                                              "--before", str(result.next_before)]))
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
        raise fail(f"--endpoint must be api, token or revoke, not {endpoint!r}", 2)
    headers: dict[str, str] = {}
    for line in header or []:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise fail(f"--header must be 'Name: value', not {clean(line)[:80]!r}", 2)
        headers[name.strip()] = value.strip()
    try:
        body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror or exc}", 2) from None
    d = diagnose(status, body, content_type, headers, endpoint=endpoint, bids=bid or None)
    typer.echo(json.dumps(report(d), indent=2))
