"""What the Slack app needs at run time, built once per process: Slack clients, tenants, the permission
directory, the notifier, OAuth states and a worker pool for the work that goes on after an ack.

Slack clients (docs/architecture.md, "Rules of the house": one small client object per external system):
`bot.slack_errors.GuardedWebClient`s, which remember the refusals only an admin can fix (`bot.slack_errors.Problems`,
the table of Slack's errors by class) so that a workspace in that state costs one call per probe interval, not one per
request. Neither client sleeps: the request path has no retry handlers (never sleep on a request path), and the
notifier's background client has none either (no sleeping in the delivery path, and no blind second chat.postMessage
after a lost answer: the notifier reschedules and looks for its post first). Base URL: SLACK_API_URL.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cachetools import TTLCache
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Bot

from bot.config import Settings
from bot.home import HomePublisher
from bot.installations import SealedInstallationStore, StateStore, redact_slack_logs
from bot.jobs import JobQueue
from bot.lease import Lease
from bot.notifier import Notifier
from bot.oauth_states import OAuthStates
from bot.services import Services
from bot.slack_errors import GuardedWebClient, Problems
from bot.workspaces import Directory, InstallLinks, Tenants

log = logging.getLogger("syncbot.runtime")


class SlackClients:
    """WebClients per workspace. Single-workspace mode (no ``installations``): one bot token for every team.
    Multi-workspace mode: each team's bot token comes from the installation store (decrypted), cached for
    ``ttl`` seconds, and so does the bot row Bolt's authorize reads on every request (:meth:`find_bot`);
    :meth:`forget` drops a team's clients and bot (after an install, an uninstall or a revocation)."""

    #: Seconds the background (notifier) client waits for Slack's answer: a slow channel costs at most this.
    BACKGROUND_TIMEOUT = 10
    #: At most this many workspaces' clients are kept (the least recently used dropped first).
    MAX_TEAMS = 2_000

    def __init__(self, settings: Settings, installations: SealedInstallationStore | None = None,
                 ttl: float = 60.0, problems: Problems | None = None) -> None:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        self.base_url = settings.slack_api_url
        self.installations = installations
        self.ttl = ttl
        #: The workspaces' standing refusals that need an admin (shared by every client made here).
        self.problems = problems or Problems()
        self.request = self._request(None if installations else token, "*")
        self.background = self._background(None if installations else token, "*")
        #: Each workspace's pair of clients, for ``ttl`` seconds, at most MAX_TEAMS of them (cachetools' TTLCache).
        self._teams: TTLCache[str, tuple[WebClient, WebClient]] = TTLCache(maxsize=self.MAX_TEAMS, ttl=ttl)
        #: Each workspace's bot row (its token decrypted), for ``ttl`` seconds, by (enterprise, team, org install).
        self._bots: TTLCache[tuple[str | None, str | None, bool], Bot] = TTLCache(maxsize=self.MAX_TEAMS, ttl=ttl)
        #: Counts :meth:`forget` calls: a bot read before one is not kept after it.
        self._forgotten = 0
        self._lock = threading.Lock()

    def _request(self, token: str | None, team: str) -> WebClient:
        client = GuardedWebClient(token=token, base_url=self.base_url, timeout=10, problems=self.problems, team=team,
                                  shorten=True)
        client.retry_handlers.clear()  # never sleep on a request path
        return client

    def _background(self, token: str | None, team: str) -> WebClient:
        client = GuardedWebClient(token=token, base_url=self.base_url, timeout=self.BACKGROUND_TIMEOUT,
                                  problems=self.problems, team=team, answer_from_memory=False)
        client.retry_handlers.clear()  # no sleeping, and no second post when an answer was lost
        return client

    def _clients(self, team_id: str) -> tuple[WebClient, WebClient]:
        assert self.installations is not None
        with self._lock:
            hit = self._teams.get(team_id)
            if hit is not None:
                return hit
        bot = self.find_bot(enterprise_id=None, team_id=team_id)
        token = bot.bot_token if bot is not None else None  # None when not installed: Slack answers not_authed
        pair = (self._request(token, team_id), self._background(token, team_id))
        with self._lock:
            self._teams[team_id] = pair
        return pair

    def for_team(self, team_id: str) -> WebClient:
        """The request-path client of ``team_id`` (no sleeping retry handlers)."""
        return self._clients(team_id)[0] if self.installations else self.request

    def background_for(self, team_id: str) -> WebClient:
        """The background (notifier) client of ``team_id`` (no retry handlers: the notifier reschedules)."""
        return self._clients(team_id)[1] if self.installations else self.background

    def find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                 is_enterprise_install: bool | None = False) -> Bot | None:
        """The installation store's bot row for a team, as Bolt's authorize asks for it on every request, kept for
        ``ttl`` seconds (one query and a decryption saved per request). A team with no bot is read again each
        time (it may be installing now); a bot whose token rotates (a refresh token) is never kept. This process
        forgets a team's bot when it is uninstalled, revoked or installed again (:meth:`forget`); another replica
        may use a revoked token for up to ``ttl`` seconds, as it does with its clients, and Slack refuses it."""
        assert self.installations is not None
        key = (enterprise_id, team_id, bool(is_enterprise_install))
        with self._lock:
            hit = self._bots.get(key)
            forgotten = self._forgotten
        if hit is not None:
            return hit
        bot = self.installations.find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                          is_enterprise_install=is_enterprise_install)
        if bot is not None and bot.bot_refresh_token is None:
            with self._lock:
                if self._forgotten == forgotten:
                    self._bots[key] = bot
        return bot

    def save_bot(self, bot: Bot) -> None:
        """Store a rotated bot (Bolt's token rotation) and forget the kept one."""
        assert self.installations is not None
        self.installations.save_bot(bot)
        if bot.team_id:
            self.forget(bot.team_id)

    def forget(self, team_id: str) -> None:
        """Drop ``team_id``'s cached clients and bot (its token changed or is gone)."""
        with self._lock:
            self._teams.pop(team_id, None)
            for key in [k for k in self._bots if k[1] == team_id]:
                self._bots.pop(key, None)
            self._forgotten += 1


@dataclass
class SlackRuntime:
    """The Slack side's long-lived objects. ``after_ack`` finishes a request after its ack; ``jobs`` holds the
    longer work a request accepted (durable: `bot.jobs`)."""

    services: Services
    settings: Settings
    clients: SlackClients
    tenants: Tenants
    directory: Directory
    notifier: Notifier
    states: OAuthStates
    #: Multi-workspace mode (SLACK_CLIENT_ID + SLACK_CLIENT_SECRET): the install flow's stores; else None.
    installations: SealedInstallationStore | None = None
    install_states: StateStore | None = None
    install_links: InstallLinks | None = None
    #: Re-publishes the App Home of users who opened it when their account's state changes.
    home: HomePublisher | None = None
    #: Work accepted from Slack that must outlive this process (Sync Now, Retry All, a click's fix, the resume
    #: after a Reconnect): stored as jobs, run by the worker processes' threads (`bot.jobs`). Set by
    #: `bot.wiring.build_runtime`.
    jobs: JobQueue = field(default=None)  # type: ignore[assignment]
    #: Quick work that finishes a request after its ack (permission check, views.open, chat.update, respond): a
    #: pool of its own, never used for long runs (see :meth:`after_ack`).
    replies: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(16, "syncbot-ack"))
    stop: threading.Event = field(default_factory=threading.Event)
    _notifier_thread: threading.Thread | None = field(default=None, init=False)

    def after_ack(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on the ``replies`` pool, after the listener has acked and returned (Bolt
        answers Slack when the listener returns: ``process_before_response``). A failure is logged."""
        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("event=after_ack_failed fn=%s", getattr(fn, "__name__", fn))
                raise

        return self.replies.submit(run)

    def start_url(self, state: str) -> str:
        """Where a personal Reconnect link points (our /oauth/quickbooks/start)."""
        return f"{self.settings.public_url.rstrip('/')}/oauth/quickbooks/start?state={state}"

    def start_background(self) -> threading.Thread:
        """Start the notifier loop in a thread (what `syncbot serve` and `syncbot demo` do as they start). On
        PostgreSQL every process delivers: each topic is claimed by one of them at a time
        (`bot.delivery_state.TopicClaims`) and each channel's pace and pauses are kept in the database. On SQLite
        (one process is the design) a second process on the same file stands by: one delivers at a time (the
        ``notifier`` lease, as long as SCHEDULER_LEASE_SECONDS), and another takes over when it dies.

        First, attempts that a process killed during them left pending (their messages still say "Retrying…")
        are settled by the engine (``recover_pending``): back to error, and the notifier draws their messages
        again. The scheduler's resume job does the same for those that are not old enough yet."""
        import os
        import socket
        import uuid

        try:
            recovered = self.services.engine.recover_pending()
            if recovered:
                log.warning("event=pending_attempts_recovered count=%d", recovered)
        except Exception:  # never keep the app from starting: the scheduler's resume job tries again
            log.exception("event=pending_recovery_failed")
        lease = None if self.notifier.claims.shared else Lease(
            self.services.sessions, f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            self.settings.scheduler_lease_seconds, name="notifier")
        thread = threading.Thread(target=self.notifier.run, args=(self.stop,), kwargs={"lease": lease},
                                  name="syncbot-notifier", daemon=True)
        thread.start()
        self._notifier_thread = thread
        self.start_jobs()
        return thread

    def start_jobs(self) -> None:
        """Run the jobs (Sync Now, Retry All, clicks' fixes) on this process's job threads: `syncbot serve` with
        the worker role, `syncbot demo` (through :meth:`start_background`), the tests' in-process stack."""
        self.jobs.start()

    def close(self) -> None:
        self.stop.set()
        self.notifier.wake()
        self.replies.shutdown(wait=True, cancel_futures=False)  # may still store jobs
        self.jobs.stop(timeout=30)  # a job still running then is run again by another worker (or at restart)
        if self._notifier_thread is not None:
            self._notifier_thread.join(timeout=30)  # the pass in flight finishes; the lease is given up


def server_secret(settings: Settings) -> bytes:
    """The key that signs OAuth states: SERVER_SECRET, else derived from the signing secret (or, in Socket Mode
    without one, from the app-level token)."""
    if settings.server_secret is not None:
        return settings.server_secret.get_secret_value().encode()
    secret = settings.slack_signing_secret or settings.slack_app_token  # Socket Mode may have no signing secret
    base = secret.get_secret_value() if secret else "offline"
    return hashlib.sha256(b"syncbot-oauth-state:" + base.encode()).digest()


def multi_workspace(settings: Settings) -> bool:
    """Whether the app installs into many workspaces (Bolt's OAuth flow): SLACK_CLIENT_ID and
    SLACK_CLIENT_SECRET are set. Otherwise single-workspace mode with SLACK_BOT_TOKEN."""
    return bool(settings.slack_client_id and settings.slack_client_secret)


def new_runtime(services: Services, settings: Settings | None = None) -> SlackRuntime:
    """The Slack side on top of ``services``, without what runs the work (``jobs``, ``home``): those call the
    operations, and `bot.wiring.build_runtime` (the one that callers use) connects them."""
    settings = settings or services.settings
    redact_slack_logs()
    installations = install_states = install_links = None
    if multi_workspace(settings):
        installations = SealedInstallationStore(str(settings.slack_client_id), services.db_engine, services.box)
        install_states = StateStore(services.db_engine)
        install_links = InstallLinks(server_secret(settings))
    clients = SlackClients(settings, installations)
    tenants = Tenants(services.sessions, auto_bind=installations is None)
    notifier = Notifier(services.sessions, clients.background_for, default_channel=settings.slack_default_channel)
    clients.problems.on_new = notifier.report_problem
    return SlackRuntime(services=services, settings=settings, clients=clients, tenants=tenants,
                        directory=Directory(clients.for_team), notifier=notifier,
                        states=OAuthStates(services.sessions, server_secret(settings)),
                        installations=installations, install_states=install_states, install_links=install_links)
