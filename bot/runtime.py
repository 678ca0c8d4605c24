"""What the Slack app needs at run time, built once per process: Slack clients, tenants, the permission
directory, the notifier, OAuth states and a worker pool for the work that goes on after an ack.

Slack clients (DESIGN.md, "One small client object per external system"): the request path uses a client
without sleeping retry handlers (never sleep on a request path); the notifier's background client adds
slack_sdk's RateLimitErrorRetryHandler (DEPENDENCIES.md P7). Base URL: SLACK_API_URL.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.config import Settings
from bot.notifier import Notifier
from bot.oauth_states import OAuthStates
from bot.services import Services
from bot.workspaces import Directory, Tenants

log = logging.getLogger("syncbot.runtime")


class SlackClients:
    """WebClients per workspace. Single-workspace mode: one bot token for every team."""

    def __init__(self, settings: Settings) -> None:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        self.base_url = settings.slack_api_url
        self.request = WebClient(token=token, base_url=self.base_url, timeout=10)
        self.background = WebClient(token=token, base_url=self.base_url, timeout=30)
        self.background.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))

    def for_team(self, team_id: str) -> WebClient:
        """The request-path client of ``team_id``."""
        return self.request

    def background_for(self, team_id: str) -> WebClient:
        """The background (notifier) client of ``team_id``."""
        return self.background


@dataclass
class SlackRuntime:
    """The Slack side's long-lived objects. ``submit`` runs work after the ack, logging any failure."""

    services: Services
    settings: Settings
    clients: SlackClients
    tenants: Tenants
    directory: Directory
    notifier: Notifier
    states: OAuthStates
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, "syncbot-work"))
    stop: threading.Event = field(default_factory=threading.Event)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("event=background_work_failed fn=%s", getattr(fn, "__name__", fn))
                raise
            finally:
                self.notifier.wake()

        return self.executor.submit(run)

    def start_url(self, state: str) -> str:
        """Where a personal Reconnect link points (our /oauth/quickbooks/start)."""
        return f"{self.settings.public_url.rstrip('/')}/oauth/quickbooks/start?state={state}"

    def start_background(self) -> threading.Thread:
        """Start the notifier loop in a daemon thread."""
        thread = threading.Thread(target=self.notifier.run, args=(self.stop,), name="syncbot-notifier",
                                  daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.stop.set()
        self.notifier.wake()
        self.executor.shutdown(wait=True, cancel_futures=False)


def server_secret(settings: Settings) -> bytes:
    """The key that signs OAuth states: SERVER_SECRET, else derived from the signing secret."""
    if settings.server_secret is not None:
        return settings.server_secret.get_secret_value().encode()
    base = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "offline"
    return hashlib.sha256(b"syncbot-oauth-state:" + base.encode()).digest()


def build_runtime(services: Services, settings: Settings | None = None) -> SlackRuntime:
    """Wire the Slack side on top of ``services``."""
    settings = settings or services.settings
    clients = SlackClients(settings)
    tenants = Tenants(services.sessions, auto_bind=settings.slack_client_id is None)
    notifier = Notifier(services.sessions, clients.background_for, default_channel=settings.slack_default_channel)
    return SlackRuntime(services=services, settings=settings, clients=clients, tenants=tenants,
                        directory=Directory(clients.for_team), notifier=notifier,
                        states=OAuthStates(services.sessions, server_secret(settings)))
