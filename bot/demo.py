"""`syncbot demo` (what `make run` runs): the whole product offline.

- :func:`run_live` (``syncbot demo``): with no Slack credentials it starts on loopback the QuickBooks Online +
  Intuit OAuth stand-in, the Slack stand-in and syncbot's Slack app (the server `syncbot serve` runs), on a SQLite
  file of its own under ``demo-data/``. The first start seeds a JobsiteOn company whose records meet each of the
  six errors of the help article; the real notifier posts them to #sync-errors. It prints one URL: the Slack
  stand-in's page, where one watches the channel, clicks the buttons (real signed requests), types ``/sync-log``,
  opens the App Home and the QuickBooks stand-in's control panel. It runs until Ctrl-C (or SIGTERM). The stand-ins
  keep their state in ``demo-data/`` too, so the next start goes on where this one stopped, without seeding again.
- With SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET set, ``syncbot demo`` serves the real Slack app instead (HTTP, or
  Socket Mode with SLACK_APP_TOKEN), against the QuickBooks stand-in unless QBO_CLIENT_ID names a real Intuit app.
- ``syncbot demo --walkthrough`` is `bot.walkthrough`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from sqlalchemy import func, select

from bot.config import Settings

if TYPE_CHECKING:  # the services are built where the demo runs: a command that only names DEMO_DIR skips them
    from bot.services import Services

log = logging.getLogger("syncbot.demo")
DEMO_DIR = Path("demo-data")


#: What the demo says as it starts: the help article's fixes in an order that works (the connection first: until
#: it is reconnected, every card waits for Reconnect). README.md walks the same steps.
START_STEPS = (
    "  #sync-errors as Slack shows it, acting as the Owner (the picker switches to an Admin or a plain member);",
    "  the QuickBooks control panel is linked in the sidebar. The help article, in the README's order:",
    "   1. Rate limit exceeded: syncbot resumes by itself at the time the card says. To try sooner, click Sync Now",
    "      (the panel can lift or use up the limit). QuickBooks answers, and what the pause hid shows:",
    "   2. Authentication expired: click Reconnect, then Connect on Intuit's page (the stand-in's). The cards that",
    "      said \"Waiting for Reconnect\" offer their fixes again.",
    "   3. Duplicate record: rename Acme Corp on the panel, then Retry: the same card turns Synced.",
    "   4. Record not found: Re-create in QuickBooks (or Unlink; the next sync makes a fresh copy).",
    "   5. Field validation error: Fill in the missing field, choose an income account, Save and retry.",
    "   6. Total mismatch: Keep QuickBooks' totals, or Send JobsiteOn's tax and retry.",
    "  Details on any card shows QuickBooks' own words; /sync-log errors lists what is still open.",
    "  Ctrl-C stops everything.",
)


def say_line(text: str = "", **style: Any) -> None:
    typer.secho(text, **style)


# ------------------------------------------------------------------------------------------------ the live demo

DB_FILE = "syncbot-demo.db"
QBO_STATE_FILE = "quickbooks-standin.pickle"
SLACK_STATE_FILE = "slack-standin.pickle"
LOCK_FILE = "demo.lock"  # held (flock) by the running demo; holds its URL
PORTS_FILE = "ports.json"  # the QuickBooks stand-in's port, kept for the next start
DEFAULT_PAGE_PORT = 8700
DEFAULT_QBO_PORT = 8701
DEFAULT_APP_PORT = 8702
SECRET_FILE = "signing-secret"  # the page's Slack stand-in and syncbot share it; kept for the next start
SAVE_EVERY_SECONDS = 3.0
#: Where Contact support sends requests in the demo (unless SUPPORT_CHANNEL or SUPPORT_EMAIL is set): a channel of
#: the Slack stand-in with syncbot in it, listed on the page, so the whole flow can be watched.
DEMO_SUPPORT_CHANNEL_ID = "C0SUPPORT01"
DEMO_SUPPORT_CHANNEL_NAME = "jobsiteon-support"
SEED_ACTOR = "system"  # shown as "syncbot": the seeding syncs stand for the scheduled ones


def _port_free(port: int) -> bool:
    """Whether the page can be served on ``port``: probed the way uvicorn binds (SO_REUSEADDR), so a port whose
    last connections still wait in TIME_WAIT after a Ctrl-C counts as free (the next `make run` keeps its URL),
    while one another program listens on does not."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
        except OSError:
            return False
    return True


class DemoAlreadyRunning(RuntimeError):
    """Another ``syncbot demo`` holds the data directory; ``url`` is its page (None while it starts)."""

    def __init__(self, data_dir: Path, url: str | None) -> None:
        self.data_dir, self.url = data_dir, url
        where = f" at {url}" if url else " (still starting)"
        super().__init__(f"syncbot demo is already running{where} on {data_dir}/: open that page, or stop that "
                         "one (Ctrl-C) before starting another")


class DemoLock:
    """An exclusive lock on a demo's data directory (``fcntl.flock`` on ``demo.lock``), so two demos never share
    one database and stand-in state. The OS drops it when the process ends, even on a kill. The file holds the
    running demo's URL (:meth:`announce`), which a second start names."""

    def __init__(self, data_dir: Path) -> None:
        import fcntl
        import os

        self.path = data_dir / LOCK_FILE
        data_dir.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            url = os.pread(self._fd, 500, 0).decode("utf-8", "replace").strip() or None
            os.close(self._fd)
            self._fd = None
            raise DemoAlreadyRunning(data_dir, url) from None
        os.ftruncate(self._fd, 0)

    def announce(self, url: str) -> None:
        """Write the running demo's URL into the lock file (for a second start to name)."""
        import os

        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, url.encode("utf-8"), 0)

    def release(self) -> None:
        import os

        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def _kept_port(data_dir: Path, name: str, preferred: int | None,
               say: Callable[[str], None] = lambda _text: None) -> int:
    """The port of ``name`` ("quickbooks": the stand-in, 8701 by default; "app": syncbot's own server, 8702):
    the one the last start of this data directory used, else ``preferred``, when free; otherwise any free port.
    Kept in ``ports.json`` so an open control panel tab, and a Reconnect link handed out before a restart,
    still work after it."""
    from sandbox.serve import free_port

    kept: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        loaded = json.loads((data_dir / PORTS_FILE).read_text())
        kept = loaded if isinstance(loaded, dict) else {}
    value = kept.get(name)
    saved = value if isinstance(value, int) and 1024 <= value <= 65535 else None
    for candidate in (saved, preferred):
        if candidate and _port_free(candidate):
            chosen = candidate
            break
    else:
        chosen = free_port()
        taken = saved or preferred
        if taken:
            what = "the QuickBooks stand-in" if name == "quickbooks" else "syncbot's own server"
            say(f"  port {taken} is taken by another program: {what} uses port {chosen} instead")
    with contextlib.suppress(OSError):
        (data_dir / PORTS_FILE).write_text(json.dumps({**kept, name: chosen}))
    return chosen


def _kept_secret(data_dir: Path) -> str:
    """The signing secret between the page's Slack stand-in and syncbot, kept (owner-only) in the data directory,
    so OAuth states signed before a restart (a Reconnect link in an open tab) still verify after it."""
    import secrets

    path = data_dir / SECRET_FILE
    with contextlib.suppress(OSError, UnicodeDecodeError):
        kept = path.read_text(encoding="ascii").strip()
        if len(kept) == 40 and all(c in "0123456789abcdef" for c in kept):
            return kept
    secret = secrets.token_hex(20)
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secret)
    return secret


def _has_account(database_file: Path) -> bool:
    """Whether the demo database already holds an account (then nothing is seeded)."""
    if not database_file.exists():
        return False
    import sqlite3

    try:
        with sqlite3.connect(database_file) as conn:
            return bool(conn.execute("SELECT count(*) FROM accounts").fetchone()[0])
    except sqlite3.Error:
        return False


def seed(services: Services, qbo: Any, realm: str, say: Callable[[str], None] = say_line,
         account_ready: Callable[[], Any] | None = None, deliver: Callable[[], Any] | None = None) -> int:
    """Seed the demo on an empty database: the JobsiteOn company of ``data/demo_records.json``, its QuickBooks
    company (a customer "Acme Corp" already there, automated sales tax at 8.875 %), a connection through the real
    OAuth flow, then syncs that meet each of the six errors of the help article: duplicate, field validation and
    total mismatch on the first sync; record not found once invoice JS-1003 is deleted in QuickBooks; then the
    rate limit, left open (paused for 15 minutes; QuickBooks' own limit lifts after its minute, or at once with the
    control panel's "Lift rate limit"), and the authorization expired on QuickBooks' side meanwhile, which the
    first request after the pause meets (Sync Now, or the automatic resume) and which Reconnect fixes. Every error
    and resolution goes to the outbox, so the notifier posts them.

    In: the services, the QuickBooks stand-in object (``QuickBooksStandIn``) and its realm; ``account_ready`` is
    called once the account exists (e.g. to bind the Slack workspace to it), ``deliver`` after each sync (so each
    incident is posted while it is open, the rate limit's before it resolves). Out: the connection id.
    """
    import datetime as dt

    import sandbox
    from sandbox.quickbooks.consent import click_connect
    from sync.connections import ensure_account, ensure_connection, finish_authorization
    from sync.engine import ConnectionUnavailable
    from sync.models import Invoice
    from sync.records import import_records

    records = json.loads((Path(sandbox.__file__).parent / "data" / "demo_records.json").read_text())
    with services.sessions() as session, session.begin():
        account_id = ensure_account(session, records["account"]["name"], records["account"]["timezone"]).id
        import_records(session, account_id, records)
        connection_id = ensure_connection(session, account_id).id
    if account_ready is not None:
        account_ready()
    step_done = deliver or (lambda: None)
    qbo.create_entity(realm, "Customer", {"DisplayName": "Acme Corp"})
    qbo.set_tax(realm, True, 8.875)
    callback = click_connect(services.oauth.authorization_url("demo-seed"), realm)
    finish_authorization(services.sessions, services.oauth, services.tokens, services.engine, connection_id,
                         callback["code"], callback["realmId"], SEED_ACTOR, resume=False)
    say("  seeded a JobsiteOn company and connected it to the QuickBooks stand-in; syncing...")
    engine = services.engine
    engine.sync_now(connection_id, SEED_ACTOR)  # duplicate, validation, total mismatch
    step_done()
    invoice = next(o for o in qbo.entities(realm, "Invoice") if o["DocNumber"] == "JS-1003")
    qbo.delete_entity(realm, "Invoice", invoice["Id"])
    engine.sync_now(connection_id, SEED_ACTOR)  # record not found
    step_done()

    def touch_invoice(due: dt.date | None) -> None:
        with services.sessions() as session, session.begin():
            session.scalars(select(Invoice).where(Invoice.number == "JS-1002")).one().due_date = due

    qbo.exhaust_throttle(realm)  # the rate limit, left open: the page shows it paused, with Sync Now
    touch_invoice(None)
    with contextlib.suppress(ConnectionUnavailable):
        engine.sync_now(connection_id, SEED_ACTOR)
    step_done()
    # the authorization runs out meanwhile (e.g. 100 days unused): the first request after the pause (Sync Now,
    # or the automatic resume) finds it gone, and the rate limit's message gives way to Reconnect
    qbo.expire_tokens(realm, refresh=True)
    touch_invoice(dt.date(2026, 12, 31))
    return connection_id


@dataclass
class LiveDemo:
    """The running offline demo: the stand-ins, the app's server and runtime. ``url`` is the page to open."""

    url: str
    app_url: str
    qbo_url: str
    data_dir: Path
    seeded: bool
    services: Services
    rt: Any
    qbo: Any
    slack: Any
    servers: list[Any]
    scheduler: Any = None
    lock: DemoLock | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _saver: threading.Thread | None = None

    def save(self) -> None:
        """Write both stand-ins' state next to the database (the next start goes on from here)."""
        self.qbo.save_state(self.data_dir / QBO_STATE_FILE)
        self.slack.save_state(self.data_dir / SLACK_STATE_FILE)

    def _save_loop(self) -> None:
        seen = -1
        while not self._stop.wait(SAVE_EVERY_SECONDS):
            try:
                if self.slack.version != seen:  # a click or a delivery changed something (QuickBooks too, then)
                    seen = self.slack.version
                    self.save()
            except OSError:
                log.exception("event=demo_save_failed")

    def start_saving(self) -> None:
        self._saver = threading.Thread(target=self._save_loop, name="syncbot-demo-save", daemon=True)
        self._saver.start()

    def stop(self) -> None:
        """Stop everything in order (app server, background work, stand-ins) and save the stand-ins' state."""
        self._stop.set()
        if self._saver is not None:
            self._saver.join(10)
        app_server, *standins = self.servers
        app_server.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.rt.close()
        try:
            self.save()
        finally:
            for server in standins:
                server.stop()
            self.services.close()
            if self.lock is not None:
                self.lock.release()


def _offline_settings(base: Settings, data_dir: Path, qbo_url: str, slack_url: str, app_url: str,
                      signing_secret: str) -> Settings:
    from pydantic import SecretStr

    from sandbox.slack import config as slack_cfg

    return base.model_copy(update={
        "database_url": f"sqlite:///{(data_dir / DB_FILE).resolve()}",
        "qbo_api_url": qbo_url, "qbo_auth_url": f"{qbo_url}/connect/oauth2",
        "qbo_token_url": f"{qbo_url}/oauth2/v1/tokens/bearer", "qbo_revoke_url": f"{qbo_url}/v2/oauth2/tokens/revoke",
        "qbo_client_id": "sandbox-client-id", "qbo_client_secret": SecretStr("sandbox-client-secret"),
        "qbo_redirect_uri": f"{app_url}/oauth/quickbooks/callback", "qbo_timeout_seconds": 10.0,
        "slack_api_url": f"{slack_url}/api/", "slack_bot_token": SecretStr(slack_cfg.DEFAULT_BOT_TOKEN),
        "slack_signing_secret": SecretStr(signing_secret), "slack_app_token": None, "slack_client_id": None,
        "slack_client_secret": None, "slack_default_channel": slack_cfg.ERRORS_CHANNEL_ID,
        "public_url": app_url, "port": int(app_url.rsplit(":", 1)[1]), "server_secret": None,
        "support_channel": base.support_channel if any(base.support_targets()) else DEMO_SUPPORT_CHANNEL_ID,
        "demo_commands": True,
    })


def _load_or_fresh(data_dir: Path, qbo: Any, slack: Any, say: Callable[[str], None]) -> bool:
    """Load the stand-ins' saved state when the database has an account; start afresh when either is missing
    or unreadable (the database and the stand-ins must tell the same story). Returns whether to seed."""
    db = data_dir / DB_FILE
    files = (data_dir / QBO_STATE_FILE, data_dir / SLACK_STATE_FILE)
    if _has_account(db):
        try:
            qbo.load_state(files[0])
            slack.load_state(files[1])
            return False
        except (OSError, ValueError) as exc:
            say(f"  the saved stand-ins are unusable ({exc}); starting afresh")
            qbo.reset()
            slack.reset()
    for path in (db, *files):
        path.unlink(missing_ok=True)
    return True


def start_live(data_dir: Path = DEMO_DIR, port: int | None = None, base: Settings | None = None,
               say: Callable[[str], None] = say_line) -> LiveDemo:
    """Start the offline demo on loopback and return it running (see the module docstring).

    In: the directory for the database and the stand-ins' state (created), the page's port (default 8700, or any
    free port when that one is taken; 0: any free port), base settings. The QuickBooks stand-in keeps its port
    between starts (8701 at first). Out: a :class:`LiveDemo`; call ``stop()``. Raises
    :class:`DemoAlreadyRunning` (touching nothing) when another demo holds ``data_dir``, RuntimeError when a
    server does not start.
    """
    lock = DemoLock(data_dir)
    try:
        return _start_live(data_dir, port, base, say, lock)
    except BaseException:
        lock.release()
        raise


def _start_live(data_dir: Path, port: int | None, base: Settings | None, say: Callable[[str], None],
                lock: DemoLock) -> LiveDemo:
    from bot.app import build_app
    from bot.server import create_server
    from bot.wiring import build_runtime
    from sandbox.quickbooks import DEFAULT_REALM
    from sandbox.quickbooks import create_app as create_qbo
    from sandbox.serve import free_port, serve_in_thread
    from sandbox.slack import SlackStandInConfig
    from sandbox.slack import config as slack_cfg
    from sandbox.slack import create_app as create_slack
    from sandbox.slack.driver import SlackDriver
    from sync.models import Notification

    wanted = DEFAULT_PAGE_PORT if port is None else port
    page_port = wanted if wanted and _port_free(wanted) else free_port()
    if wanted and page_port != wanted:  # say so instead of failing: the URL printed below is the new one
        say(f"  port {wanted} is taken by another program: the page uses port {page_port} instead")
    qbo_port = _kept_port(data_dir, "quickbooks",
                          DEFAULT_QBO_PORT if port is None else (port + 1 if 0 < port < 65534 else None), say)
    app_port = _kept_port(data_dir, "app",
                          DEFAULT_APP_PORT if port is None else (port + 2 if 0 < port < 65534 else None), say)
    app_url = f"http://127.0.0.1:{app_port}"
    secret = _kept_secret(data_dir)

    qbo_app = create_qbo()
    qbo = qbo_app.state.standin
    slack_app = create_slack(SlackStandInConfig(app_url=f"{app_url}/slack/events", signing_secret=secret))
    slack = slack_app.state.standin
    must_seed = _load_or_fresh(data_dir, qbo, slack, say)
    servers: list[Any] = []
    try:
        servers.append(serve_in_thread(qbo_app, port=qbo_port))
        qbo_url = servers[-1].url
        servers.append(serve_in_thread(slack_app, port=page_port))
        slack_url = servers[-1].url
        slack.public_url = slack_url
        slack.config.page_links = [("QuickBooks control panel", f"{qbo_url}/_control/panel")]
        settings = _offline_settings(base or Settings(_env_file=None),
                                     data_dir, qbo_url, slack_url, app_url, secret)
        if settings.support_channel == DEMO_SUPPORT_CHANNEL_ID and DEMO_SUPPORT_CHANNEL_ID not in slack.channels:
            slack.add_channel(slack_cfg.DEFAULT_TEAM_ID, DEMO_SUPPORT_CHANNEL_ID, DEMO_SUPPORT_CHANNEL_NAME,
                              bot_member=True)
        from bot.services import build_services

        services = build_services(settings)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    try:
        rt = build_runtime(services)
        app_server = serve_in_thread(create_server(rt, build_app(rt)), port=app_port)
    except BaseException:
        services.close()
        for server in servers:
            server.stop()
        raise
    rt.start_background()
    demo = LiveDemo(url=f"{slack_url}/", app_url=app_url, qbo_url=qbo_url, data_dir=data_dir, seeded=must_seed,
                    services=services, rt=rt, qbo=qbo, slack=slack, servers=[app_server, *servers], lock=lock)
    lock.announce(demo.url)

    def open_home() -> None:
        # Olivia (the workspace owner) opens the App Home: Slack's first request binds the workspace to the
        # account (single-workspace mode), and the notifications waiting for it become due.
        with SlackDriver(f"{app_url}/slack/events", secret, slack) as driver:
            driver.app_home_opened(slack_cfg.OWNER_USER_ID)

    try:
        if must_seed:
            seed(services, qbo, DEFAULT_REALM, say, account_ready=open_home, deliver=rt.notifier.drain)
        open_home()
        rt.notifier.wake()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with services.sessions() as session:
                waiting = session.scalar(select(func.count()).select_from(Notification).where(
                    Notification.delivered_at.is_(None)))
            if not waiting:
                break
            time.sleep(0.2)
        from bot.scheduler import Scheduler

        # the scheduled work runs as under `syncbot serve`: summaries, reminders, automatic resume, refresh
        demo.scheduler = Scheduler(services, services.settings.scheduler_config(), on_queued=rt.notifier.wake)
        demo.scheduler.start()
        demo.save()
        demo.start_saving()
    except BaseException:
        demo.stop()
        raise
    return demo


def run_live(data_dir: Path = DEMO_DIR, port: int | None = None, base: Settings | None = None) -> int:
    """``syncbot demo``: start the offline demo, print its URL, run until Ctrl-C or SIGTERM; exit code 0."""
    import signal

    logging.getLogger("syncbot").setLevel(logging.ERROR)  # the page shows what happens
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C stops the demo however it was started, as it stops `syncbot serve` (uvicorn sets its own handler): a
    # shell starts a background command with SIGINT ignored, and Python then leaves it ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    say_line("syncbot demo: starting offline (no Slack workspace, no QuickBooks account needed)...")
    try:
        demo = start_live(data_dir, port, base)
    except DemoAlreadyRunning as exc:
        say_line(str(exc), err=True, fg=typer.colors.RED)
        return 1
    except KeyboardInterrupt:
        say_line("stopped.")
        return 0
    try:
        say_line("  " + ("seeded the six errors of the help article" if demo.seeded
                     else f"going on from {data_dir}/ (delete that directory to start afresh)"))
        say_line()
        say_line(f"Open {demo.url}", bold=True, fg=typer.colors.GREEN)
        for line in START_STEPS:
            say_line(line)
        say_line("  The scheduled messages now: /sync-log demo summary (the Monday summary), /sync-log demo reminder "
             "(a token-expiry reminder).")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        say_line("\nstopping...")
        demo.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    say_line(f"stopped; the demo's state is kept in {data_dir}/")
    return 0


@contextlib.contextmanager
def offline_quickbooks(settings: Settings, app_port: int, data_dir: Path = DEMO_DIR / "real-slack",
                       say: Callable[[str], None] = say_line) -> Iterator[dict[str, str]]:
    """For the real Slack app without an Intuit app of one's own: the QuickBooks stand-in on loopback, holding
    the demo's books (seeded with the six errors on an empty database, kept in ``data_dir`` between runs).

    In: the settings (PUBLIC_URL, or loopback on ``app_port``, receives Intuit's redirect). Yields the environment
    variables that point syncbot at the stand-in and at the database in ``data_dir``; the stand-in's state is
    saved and the stand-in stopped on exit.
    """

    lock = DemoLock(data_dir)  # DemoAlreadyRunning when another demo uses these books
    try:
        with _offline_quickbooks(settings, app_port, data_dir, say, lock) as env:
            yield env
    finally:
        lock.release()


@contextlib.contextmanager
def _offline_quickbooks(settings: Settings, app_port: int, data_dir: Path, say: Callable[[str], None],
                        lock: DemoLock) -> Iterator[dict[str, str]]:
    from sandbox.quickbooks import DEFAULT_REALM, create_app
    from sandbox.serve import serve_in_thread

    qbo_app = create_app()
    qbo = qbo_app.state.standin
    state_file = data_dir / QBO_STATE_FILE
    database = data_dir / DB_FILE
    must_seed = not _has_account(database)
    if not must_seed:
        try:
            qbo.load_state(state_file)
        except (OSError, ValueError) as exc:
            say(f"  the saved QuickBooks stand-in is unusable ({exc}); starting afresh")
            must_seed = True
    if must_seed:
        for path in (database, state_file):
            path.unlink(missing_ok=True)
    server = serve_in_thread(qbo_app, port=_kept_port(data_dir, "quickbooks", DEFAULT_QBO_PORT))
    url = server.url
    lock.announce(f"{url}/_control/panel (the real Slack app, port {app_port})")
    public = settings.public_url.rstrip("/") if settings.public_url else f"http://127.0.0.1:{app_port}"
    env = {"DATABASE_URL": f"sqlite:///{database.resolve()}", "QBO_API_URL": url,
           "QBO_AUTH_URL": f"{url}/connect/oauth2", "QBO_TOKEN_URL": f"{url}/oauth2/v1/tokens/bearer",
           "QBO_REVOKE_URL": f"{url}/v2/oauth2/tokens/revoke",
           "QBO_REDIRECT_URI": f"{public}/oauth/quickbooks/callback"}
    try:
        if must_seed:
            # The variables as Settings' fields (by alias): strings that pydantic parses, whatever each field's type.
            fields: Mapping[str, Any] = env
            from bot.services import build_services

            services = build_services(Settings(_env_file=None, **fields))
            try:
                seed(services, qbo, DEFAULT_REALM, say)
            finally:
                services.close()
        say(f"QuickBooks stand-in at {url} (control panel: {url}/_control/panel); database {database}")
        yield env
    finally:
        qbo.save_state(state_file)
        server.stop()
