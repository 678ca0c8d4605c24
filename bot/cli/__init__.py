"""The `syncbot` command line (typer).

Operator commands work on the database named by DATABASE_URL (default: `syncbot.db` here) and the QuickBooks
company of the account's connection. Exit codes: 0 done, 1 the work failed (the message says why), 2 a bad
argument or input file.

`common` holds the root command (`app`, its groups and ``--verbose``) and what the commands share; each other
module holds one group of commands and registers them on `app` as it is imported: `data` (db upgrade, keys
rotate, records import), `quickbooks` (connect, sync-now, retry, retry-all, resume), `reading` (sync-log,
diagnose) and `serving` (serve, scheduler, install-link, demo, sandbox quickbooks).
"""

from __future__ import annotations

from bot.cli import data, quickbooks, reading, serving
from bot.cli.common import app

#: The modules whose commands are registered on `app`. `syncbot --help` lists the commands in the order they were
#: registered, so in the order these modules are imported (above, alphabetical as the import sorter keeps them);
#: the groups (db, keys, records, sandbox) come after them, in the order `common` adds them.
COMMAND_MODULES = (data, quickbooks, reading, serving)


def main() -> None:
    """Console-script entry point."""
    app()
