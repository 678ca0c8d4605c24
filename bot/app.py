"""Builds the Bolt App (sync `App`; docs/platform-facts.md, "Libraries") and registers the listeners.

Two modes:
- Single workspace: SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET; the workspace is bound to the first account on its
  first request.
- Many workspaces: SLACK_CLIENT_ID + SLACK_CLIENT_SECRET + SLACK_SIGNING_SECRET. Bolt's OAuth install flow
  (`/slack/install` -> Slack's consent page -> `/slack/oauth_redirect`, https://docs.slack.dev/authentication/installing-with-oauth)
  with slack_sdk's SQLAlchemy installation and state stores on our database (tokens encrypted at rest,
  bot/installations.py). Each installed workspace is bound to one account (bot.workspaces.Tenants.bind_install);
  every request is authorized with the bot token stored for its team.

Bolt verifies every request's signature (`X-Slack-Signature`, 5-minute window; Slack's "Verifying requests from
Slack") and acks url_verification and ssl_check. An Events API event is worked once: its event_id is taken on in
the database (bot.events), and Slack's retries of it, to any replica, are acked and run nothing.

Acks: ``process_before_response=True``, so Bolt answers when the listener returns, on the request's own thread.
Every listener therefore acks and returns at once: a command computes its answer (the ack carries it), a button
acks empty and finishes on ``rt.after_ack`` (handlers.common.ack_first), an event hands its work there too. With
``False`` Bolt would run each listener on a second pool of 5 threads and poll every 10 ms for its ack, and the
work a listener does after acking would hold that pool (bench/README.md, ack latency).
"""

from __future__ import annotations

import html
import logging
import secrets
from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Bot, InstallationStore

import handlers
from bot.events import EventLedger
from bot.runtime import SlackClients, SlackRuntime
from handlers.common import TENANT_KEY, TenantLookup

log = logging.getLogger("syncbot.app")

#: Bot scopes the code uses: commands (slash commands), chat:write (chat.postMessage/update/postEphemeral),
#: users:read (users.info for Owner/Admin and time zone), im:write (conversations.open to DM admins).
#: The bot scopes (manifest.yml says the same). The history scopes let the notifier find its own post by its
#: message metadata before posting again (conversations.history / .replies in the channel, a private channel,
#: or a DM: bot/notifier/).
BOT_SCOPES = ("commands", "chat:write", "users:read", "im:write", "channels:history", "groups:history",
              "im:history")
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
#: The cookie that carries a signed install link's account from /slack/install to /slack/oauth_redirect.
ACCOUNT_COOKIE = "syncbot-install-account"


def authorize_url(api_url: str) -> str:
    """Slack's consent page next to the Web API base URL: ``https://slack.com/api/`` gives
    ``https://slack.com/oauth/v2/authorize`` (the stand-in serves the same path)."""
    base = api_url.rstrip("/")
    base = base[: -len("/api")] if base.endswith("/api") else base
    return f"{base}/oauth/v2/authorize"


def _cookie(headers: Mapping[str, object], name: str) -> str | None:
    raw = headers.get("cookie")
    for value in raw if isinstance(raw, list | tuple) else [raw] if raw else []:
        try:
            jar = SimpleCookie(str(value))
        except CookieError:
            continue
        if name in jar:
            return jar[name].value
    return None


def _header(request: BoltRequest, name: str) -> str:
    """A request header's first value (Bolt keeps them lower-cased, as lists), or "-"."""
    values = request.headers.get(name) or ["-"]
    return str(values[0])


def _page(title: str, body: str, status: int = 200) -> BoltResponse:
    clear = [f"{ACCOUNT_COOKIE}=deleted; Secure; HttpOnly; Path=/slack; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
             "slack-app-oauth-state=deleted; Secure; HttpOnly; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"]
    return BoltResponse(status=status, headers={"Content-Type": "text/html; charset=utf-8", "Set-Cookie": clear},
                        body=f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                             "<style>body{font-family:sans-serif;max-width:40em;margin:4em auto;line-height:1.5}"
                             f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _oauth_settings(rt: SlackRuntime) -> OAuthSettings:
    settings = rt.settings
    assert rt.installations is not None and rt.install_states is not None and settings.slack_client_secret

    def installed(args: SuccessArgs) -> BoltResponse:
        inst = args.installation
        links = rt.install_links
        account_id = links.verify(_cookie(args.request.headers, ACCOUNT_COOKIE)) if links else None
        tenant = rt.tenants.bind_install(str(inst.team_id), inst.team_name, inst.user_id, account_id)
        rt.clients.forget(str(inst.team_id))
        rt.notifier.wake()
        log.info("event=slack_installed team_id=%s account_id=%s installer=%s", inst.team_id, tenant.account_id,
                 inst.user_id)
        return _page("syncbot is installed",
                     f"<p>syncbot now posts the QuickBooks sync errors of <b>{html.escape(tenant.account_name)}"
                     f"</b> in <b>{html.escape(inst.team_name or str(inst.team_id))}</b>.</p><p>Next, in Slack: "
                     "<code>/sync-log channel #sync-errors</code> (then invite @syncbot there) and "
                     "<code>/sync-log connect</code>.</p>")

    def failed(args: FailureArgs) -> BoltResponse:
        log.warning("event=slack_install_failed reason=%s", args.reason)
        return _page("syncbot was not installed",
                     f"<p>Slack's answer: {html.escape(str(args.reason))}. Nothing was changed. Start again from "
                     f"<a href='{INSTALL_PATH}'>{INSTALL_PATH}</a>.</p>", args.suggested_status_code)

    return OAuthSettings(
        client_id=str(settings.slack_client_id), client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES), redirect_uri=f"{settings.public_url.rstrip('/')}{REDIRECT_PATH}",
        install_path=INSTALL_PATH, redirect_uri_path=REDIRECT_PATH, install_page_rendering_enabled=False,
        authorization_url=authorize_url(settings.slack_api_url),
        installation_store=rt.installations, installation_store_bot_only=True, state_store=rt.install_states,
        callback_options=CallbackOptions(success=installed, failure=failed), logger=log)


class _KeptBots(InstallationStore):
    """The installation store that Bolt's bot-only authorize reads (``find_bot`` on every request, ``save_bot``
    when a bot token rotates): each team's bot as :class:`bot.runtime.SlackClients` keeps it."""

    def __init__(self, clients: SlackClients) -> None:
        self._clients = clients

    @property
    def logger(self) -> logging.Logger:
        return log

    def find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                 is_enterprise_install: bool | None = False) -> Bot | None:
        return self._clients.find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                      is_enterprise_install=is_enterprise_install)

    def save_bot(self, bot: Bot) -> None:
        self._clients.save_bot(bot)


def build_app(rt: SlackRuntime) -> App:
    """The Bolt App on the runtime's request-path client. Raises ValueError when Slack is not configured."""
    settings = rt.settings
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise ValueError("SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode) must be set to serve the "
                         "Slack app")
    # Socket Mode envelopes are not signed (Bolt skips the check for them); without a signing secret Bolt gets a
    # random one, so a request over HTTP could never pass as Slack's (an empty secret would be a known key).
    signing_secret = (settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret is not None
                      else secrets.token_urlsafe(32))
    if rt.installations is not None:
        oauth_settings = _oauth_settings(rt)
        client = WebClient(base_url=settings.slack_api_url, timeout=10)
        # Bolt's installation-store authorize, with its cache on: without it every request calls auth.test
        # (one Web API call per slash command or click); cached, once per bot token and process. It reads the
        # team's bot row through rt.clients, which keeps it as long as the team's clients (SlackClients.find_bot)
        authorize = InstallationStoreAuthorize(
            installation_store=_KeptBots(rt.clients), client_id=oauth_settings.client_id,
            client_secret=oauth_settings.client_secret, logger=log, bot_only=True, cache_enabled=True, client=client)
        # App takes an Authorize instance as it is (it tests isinstance(authorize, Authorize)), but its annotation
        # names only a plain function returning an AuthorizeResult, which Authorize.__call__'s Optional is not
        app = App(signing_secret=signing_secret, client=client, oauth_settings=oauth_settings,
                  authorize=authorize,  # type: ignore[arg-type]
                  process_before_response=True, ignoring_self_events_enabled=True)
    else:
        if settings.slack_bot_token is None:
            raise ValueError("SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (installs "
                             "into many workspaces) must be set to serve the Slack app")
        # The bot token comes with the client (Bolt reads it from there; given as well, Bolt warns it is unused)
        app = App(signing_secret=signing_secret, client=rt.clients.request,
                  process_before_response=True, ignoring_self_events_enabled=True)

    events = EventLedger(rt.services.sessions)

    @app.middleware
    def once_per_event(body: dict[str, Any], request: BoltRequest, next: Callable[[], None]) -> BoltResponse | None:
        # Slack re-sends an event it thinks was not acked (X-Slack-Retry-Num), maybe to another replica: the
        # event_id is taken on in the database, and a delivery of one taken on already is acked, nothing run
        if body.get("type") == "event_callback" and body.get("event_id") and not events.first_delivery(
                str(body["event_id"]), str(body.get("team_id") or "") or None):
            log.info("event=slack_event_repeated event_id=%s team_id=%s retry_num=%s retry_reason=%s",
                     body["event_id"], body.get("team_id"), _header(request, "x-slack-retry-num"),
                     _header(request, "x-slack-retry-reason"))
            return BoltResponse(status=200, body="")
        next()
        return None

    #: Single-workspace mode: the teams this process has seen bound (a binding is never undone).
    bound: set[str] = set()

    @app.middleware
    def bind_workspace(context: BoltContext, next: Callable[[], None]) -> None:
        # The tenant is read when a listener first needs it, once per request: a click stored as a job acks
        # without it. Single-workspace mode binds the workspace on its first request (any request, as Slack's
        # first one may be a "help"); once this process has seen it bound, nothing is read here.
        lookup = context[TENANT_KEY] = TenantLookup(rt.tenants, context.team_id)
        if rt.tenants.auto_bind and context.team_id and context.team_id not in bound and lookup.get() is not None:
            bound.add(context.team_id)
        if context.team_id and (rt.installations is None or context.bot_token):
            # the listeners (and their Reply) call Slack through syncbot's guarded client of the workspace, not
            # the plain WebClient Bolt makes per request: a refused modal or reply is sent again in short form,
            # and a refusal only an admin can fix is remembered (bot.slack_errors)
            context["client"] = rt.clients.for_team(context.team_id)
        next()

    handlers.register(app, rt)
    return app
