"""`syncbot demo --walkthrough`: the help article told in the terminal; each error is made to happen, diagnosed and
fixed, on a database under ``demo-data/walkthrough/`` started afresh each run (:func:`run_walkthrough`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import select

from bot.config import Settings
from bot.demo import DEMO_DIR, LOCK_FILE, DemoAlreadyRunning, DemoLock, say_line
from bot.services import Services, build_services

WALKTHROUGH_DIR = DEMO_DIR / "walkthrough"


def _step(title: str) -> None:
    say_line()
    say_line(f"== {title}", bold=True, fg=typer.colors.CYAN)


def _show_open(services: Services, connection_id: int) -> list[Any]:
    """Print the connection's open errors and warnings (sync.log's "open" filter), oldest first."""
    from sync.diagnosis import KINDS, Kind, severity
    from sync.log import LogFilter, page

    with services.sessions() as session:
        entries = list(reversed(page(session, LogFilter(connection_id=connection_id, open_only=True),
                                     size=100).entries))
        session.expunge_all()
    for entry in entries:
        info = KINDS[Kind(entry.kind)] if entry.kind else None
        shown = severity(entry.kind, entry.status)  # the kind's severity, as in Slack
        colour = typer.colors.YELLOW if shown == "warning" else typer.colors.RED
        say_line(f"  [{shown.upper()}] entry {entry.id}: {entry.entity} {entry.record_label or ''} "
             f"({entry.direction}) -> {entry.kind}", fg=colour)
        if info is not None:
            say_line(f"      cause: {info.cause}")
            say_line(f"      fix:   {info.fix}")
        if entry.details:
            say_line(f"      details: {entry.details.splitlines()[0][:140]}")
    if not entries:
        say_line("  no open errors", fg=typer.colors.GREEN)
    return entries


def _summary(label: str, summary: Any) -> None:
    d = summary.as_dict()
    say_line(f"  {label}: synced {d['synced']}, errors {d['errors']}, warnings {d['warnings']}, pulled {d['pulled']}"
         + (f", stopped on {d['stopped']}" if d["stopped"] else ""))


def _current(services: Services, connection_id: int, kind: str) -> Any:
    """The open entry of ``kind`` now (earlier ones were superseded by later attempts)."""
    from sync.log import LogFilter, page

    with services.sessions() as session:
        found = page(session, LogFilter(connection_id=connection_id, kinds=(kind,), open_only=True), size=1)
    return found.entries[0]


def run_walkthrough(base: Settings | None = None, pause: Callable[[float], None] = time.sleep) -> int:
    """Run the offline walk-through in the terminal; returns the exit code (0 when every error was fixed)."""
    from sandbox.quickbooks import DEFAULT_REALM, create_app
    from sandbox.quickbooks.consent import click_connect
    from sandbox.serve import serve_in_thread
    from sync.connections import ensure_account, ensure_connection, finish_authorization
    from sync.models import Invoice, Item
    from sync.records import import_records, recompute_invoice

    logging.getLogger("syncbot").setLevel(logging.ERROR)  # the walk-through says what happens
    try:  # one walk-through at a time: each starts its directory afresh
        lock = DemoLock(WALKTHROUGH_DIR)
    except DemoAlreadyRunning:
        say_line(f"syncbot demo --walkthrough is already running on {WALKTHROUGH_DIR}/: let it finish first.")
        return 1
    for old in WALKTHROUGH_DIR.iterdir():
        if old.name != LOCK_FILE:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    app = create_app()
    standin = app.state.standin
    server = serve_in_thread(app)
    url = server.url
    settings = (base or Settings(_env_file=None)).model_copy(update={
        "database_url": f"sqlite:///{(WALKTHROUGH_DIR / 'syncbot-demo.db').resolve()}",
        "qbo_api_url": url, "qbo_auth_url": f"{url}/connect/oauth2",
        "qbo_token_url": f"{url}/oauth2/v1/tokens/bearer", "qbo_revoke_url": f"{url}/v2/oauth2/tokens/revoke",
        "qbo_timeout_seconds": 10.0,
    })
    services = build_services(settings)
    realm = DEFAULT_REALM
    try:
        say_line(f"syncbot demo: offline, QuickBooks stand-in at {url} (control panel: {url}/_control/panel)",
             bold=True)
        say_line(f"database: {settings.database_url}")

        _step("Seed a JobsiteOn company and its QuickBooks company")
        import sandbox

        records = json.loads((Path(sandbox.__file__).parent / "data" / "demo_records.json").read_text())
        with services.sessions() as session, session.begin():
            account_id = ensure_account(session, "Sandbox Builders", "America/Chicago").id
            counts = import_records(session, account_id, records)
            connection_id = ensure_connection(session, account_id).id
        say_line("  JobsiteOn: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        existing = standin.create_entity(realm, "Customer", {"DisplayName": "Acme Corp"})
        standin.set_tax(realm, True, 8.875)
        say_line("  QuickBooks: a customer 'Acme Corp' already exists; automated sales tax is on at 8.875 %")

        _step("Connect to QuickBooks (real OAuth 2.0 authorization-code flow against the stand-in)")
        callback = click_connect(services.oauth.authorization_url("demo-state"), realm)
        finish_authorization(services.sessions, services.oauth, services.tokens, services.engine, connection_id,
                             callback["code"], callback["realmId"], "demo-admin", resume=False)
        say_line(f"  connected to company {callback['realmId']}; tokens stored encrypted")

        _step("Sync Now")
        _summary("first sync", services.engine.sync_now(connection_id, "demo-admin"))

        _step("Someone deletes invoice JS-1003 in QuickBooks; Sync Now again")
        invoice_3 = next(o for o in standin.entities(realm, "Invoice") if o["DocNumber"] == "JS-1003")
        standin.delete_entity(realm, "Invoice", invoice_3["Id"])
        _summary("second sync", services.engine.sync_now(connection_id, "demo-admin"))

        _step("The sync log now holds four of the six errors, each with its diagnosis")
        _show_open(services, connection_id)

        _step("QuickBooks' rate limit is hit")
        standin.exhaust_throttle(realm)
        with services.sessions() as session, session.begin():
            session.scalars(select(Invoice).where(Invoice.number == "JS-1002")).one().due_date = None
        _summary("sync", services.engine.sync_now(connection_id, "demo-admin"))
        _show_open(services, connection_id)
        say_line("  fix: it resolves by itself; the scheduler resumes the connection when the pause is over")
        standin.clear_throttle(realm)
        _summary("resume", services.engine.resume(connection_id, "scheduler"))

        _step("The refresh token expires (e.g. 100 days unused)")
        standin.expire_tokens(realm, refresh=True)
        with services.sessions() as session, session.begin():
            session.scalars(select(Invoice).where(Invoice.number == "JS-1002")).one().due_date = \
                __import__("datetime").date(2026, 12, 31)
        _summary("sync", services.engine.sync_now(connection_id, "demo-admin"))
        _show_open(services, connection_id)

        _step("Fix: Reconnect and re-authorize; the sync resumes automatically")
        callback = click_connect(services.oauth.authorization_url("demo-state-2"), realm)
        _summary("reconnect", finish_authorization(services.sessions, services.oauth, services.tokens,
                                                   services.engine, connection_id, callback["code"],
                                                   callback["realmId"], "demo-admin"))

        _step("Fix the duplicate: rename it in QuickBooks, then Retry")
        standin.update_entity(realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
        entry = services.engine.retry_entry(_current(services, connection_id, "duplicate").id, "demo-admin")
        say_line(f"  retry -> entry {entry.id}: {entry.status}", fg=typer.colors.GREEN)

        _step("Fix the validation error: fill the income account in JobsiteOn; the next sync succeeds")
        with services.sessions() as session, session.begin():
            session.scalars(select(Item).where(Item.name == "Permit fee")).one().income_account = "79"
        _summary("sync", services.engine.sync_now(connection_id, "demo-admin"))

        _step("Fix the record not found: unlink it; the next sync creates a fresh copy")
        services.engine.unlink(_current(services, connection_id, "not_found").id, "demo-admin")
        _summary("sync", services.engine.sync_now(connection_id, "demo-admin"))

        _step("Fix the total mismatch: adjust JobsiteOn's tax rate to QuickBooks' calculation")
        with services.sessions() as session, session.begin():
            inv = session.scalars(select(Invoice).where(Invoice.number == "JS-1001")).one()
            inv.tax_rate = Decimal("8.875")
            recompute_invoice(inv)
        _summary("sync", services.engine.sync_now(connection_id, "demo-admin"))

        _step("The sync log now")
        left = _show_open(services, connection_id)
        say_line()
        say_line(f"QuickBooks stand-in: {standin.write_count(realm)} writes, {len(standin.request_log(realm))} "
             "requests. Browse the log with:", bold=True)
        database = (WALKTHROUGH_DIR / "syncbot-demo.db").resolve()
        say_line(f"  DATABASE_URL=sqlite:///{database} .venv/bin/syncbot sync-log")
        return 0 if not left else 1
    finally:
        services.close()
        server.stop()
        lock.release()
