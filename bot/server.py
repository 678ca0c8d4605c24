"""The HTTP server: Slack's endpoint, the provider's OAuth endpoints and a health check (Starlette + uvicorn).

- `POST /slack/events`: commands, interactions and events, one URL as manifest.yml says. Bolt's dispatch is
  synchronous, so it runs in Starlette's thread pool (docs/platform-facts.md, "Libraries"): one slow request
  never holds the others. A request Bolt refuses (bad signature, stale timestamp) answers 401 and is logged with its
  clock skew. A signed request whose body cannot be read (a ``payload`` field or JSON body that is not a JSON object),
  or whose shape is not Slack's (bot.request_shapes: an interaction without its type, team or user, a command
  without its command, team_id or user_id, an event_callback without its event...), answers 400 with a clear
  error and changes nothing, where Bolt would answer 500 or ack and fail after (a forged or stale one: 401).
  A signed request no listener handles (an unknown action_id, view, shortcut or event) is acked with an empty
  200 and logged, since Slack shows the user an error for an interaction not acked within 3 seconds and
  retries an unacked event.
- `GET /oauth/quickbooks/start?state=...`: a personal, single-use Reconnect link -> Intuit's consent page.
- `GET /oauth/quickbooks/callback`: Intuit comes back with `code`, `state`, `realmId` (Intuit "OAuth 2.0");
  the tokens are stored encrypted and the connection resumes (its incident message turns to Reconnected).
- `GET /slack/install[?account=<signed link>]` and `GET /slack/oauth_redirect`: Bolt's OAuth install flow when
  SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set (many workspaces), run in the thread pool too; a signed
  install link binds the installing workspace to its account (bot.workspaces.InstallLinks).
- `GET /reconnect`: Intuit's stable Reconnect URL (November 2025 policy): says how to reconnect from Slack.
- `GET /healthz`: 200 when the database answers.

Every answer carries how long the server took over it, from the request's arrival at the app to the start of the
answer, as a ``Server-Timing: app;dur=<ms>`` header (W3C Server Timing): the part of an ack's latency that is the
server's own, apart from the network and the client. An answer to Slack that took 1 s or more is logged
(``event=slack_ack_slow``): Slack gives up at 3 s (docs/platform-facts.md).
"""

from __future__ import annotations

import contextlib
import gc
import html
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import App, BoltContext, BoltRequest
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.request.internals import build_context
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot import request_shapes
from bot.app import ACCOUNT_COOKIE, INSTALL_PATH, REDIRECT_PATH
from bot.oauth_states import StateError
from bot.runtime import SlackRuntime
from sync.connections import finish_authorization
from sync.providers.base import ProviderError

log = logging.getLogger("syncbot.server")
MAX_BODY = 1_000_000
#: An answer to Slack slower than this (seconds) is logged: a third of Slack's 3 s.
SLOW_ACK_S = 1.0


class ServerTiming:
    """ASGI middleware: adds ``Server-Timing: app;dur=<ms>`` (milliseconds, from the call of the app with the
    request to its ``http.response.start``) to every HTTP answer, and logs a Slack answer (``/slack/events``) that
    took ``SLOW_ACK_S`` or more. Pure ASGI, so it adds no task or thread to the request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                took = time.perf_counter() - start
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"app;dur={took * 1000:.1f}".encode())]}
                if took >= SLOW_ACK_S and scope.get("path") == "/slack/events":
                    log.warning("event=slack_ack_slow ms=%.0f status=%s", took * 1000, message.get("status"))
            await send(message)

        await self.app(scope, receive, timed_send)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                        "<style>body{font-family:sans-serif;max-width:40em;margin:4em auto;line-height:1.5}</style>"
                        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>", status_code=status)


def _unreadable_payload(text: str, content_type: str) -> str | None:
    """Why Bolt could not read this body, read as Bolt reads it (a JSON body, else a form whose ``payload``
    field holds JSON), or None when it can: ``"... is not JSON"`` / ``"... is not a JSON object"``."""
    if text.startswith("{") or content_type.split(";", 1)[0].strip().lower() == "application/json":
        what, raw = "the JSON body", text
    elif "payload" in text:
        fields = dict(parse_qsl(text, keep_blank_values=True))
        if "payload" not in fields:
            return None
        what, raw = "the payload form field", fields["payload"]
    else:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return f"{what} is not JSON"
    return None if isinstance(value, dict) else f"{what} is not a JSON object"


def _read_alike(bolt_request: BoltRequest, text: str, content_type: str) -> bool:
    """Whether Bolt read the body as :func:`_unreadable_payload` would and got a JSON object (so there is no
    need to read it again): a dict body, and a JSON read exactly when the declared type is JSON."""
    if not isinstance(bolt_request.body, dict):
        return False
    declared_json = content_type.split(";", 1)[0].strip().lower() == "application/json"
    return not declared_json or text.startswith("{") or bolt_request.content_type == "application/json"


def unhandled_kind(body: dict[str, Any]) -> tuple[str, str]:
    """The kind and id of a request no listener handled, for the log: (type, action_id / callback_id / ...)."""
    kind = str(body.get("type") or ("command" if "command" in body else "unknown"))
    inner = body.get("event") if kind == "event_callback" else body.get("view") if kind.startswith("view_") else None
    if isinstance(inner, dict):
        return kind, str(inner.get("type") if kind == "event_callback" else inner.get("callback_id"))
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        return kind, str(actions[0].get("action_id"))
    return kind, str(body.get("callback_id") or body.get("command") or "-")


def create_server(rt: SlackRuntime, app: App | None, *, socket_mode: bool = False) -> Starlette:
    """The ASGI app. ``app`` may be None (no Slack credentials): /slack/events then answers 503. With
    ``socket_mode`` Slack's requests come over the socket (bot.socket_mode), so /slack/events answers 503 too,
    while ``app``'s OAuth install flow (many workspaces) stays on /slack/install and /slack/oauth_redirect: Slack
    sends the installing browser there even in Socket Mode. When served with the ASGI lifespan (``syncbot
    serve``), startup freezes what exists then out of the garbage collector's scans (``gc.freeze``)."""

    async def slack_events(request: Request) -> Response:
        if socket_mode:
            return JSONResponse({"error": "Socket Mode: Slack's requests come over the socket"}, status_code=503)
        if app is None:
            return JSONResponse({"error": "slack app not configured"}, status_code=503)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return JSONResponse({"error": "request too large"}, status_code=413)
        chunks, size = [], 0
        async for chunk in request.stream():  # never hold more than MAX_BODY of an unverified request
            size += len(chunk)
            if size > MAX_BODY:
                return JSONResponse({"error": "request too large"}, status_code=413)
            chunks.append(chunk)
        body = b"".join(chunks)
        stamp = request.headers.get("x-slack-request-timestamp")
        if stamp is not None and not (stamp.isascii() and stamp.lstrip("-").isdigit() and len(stamp) < 15):
            # present but not a number of seconds (empty, a date, garbage): refused as a stale one, never a 500
            log.warning("event=slack_request_refused reason=timestamp_unreadable skew_s=unknown client=%s",
                        request.client.host if request.client else "-")
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return JSONResponse({"error": "invalid request"}, status_code=400)
        content_type = request.headers.get("content-type", "")
        try:  # Bolt parses the body once here; only a body it cannot read as a JSON object is read again
            bolt_request: BoltRequest | None = to_bolt_request(request, body)
        except Exception:
            bolt_request = None
        problem = _unreadable_payload(text, content_type) if bolt_request is None or not _read_alike(
            bolt_request, text, content_type) else None
        if problem is None and bolt_request is not None:  # read: now its shape (Bolt would 500 on a wrong one)
            kind = request_shapes.body_kind(text, content_type)
            fields = request_shapes.form_fields(text) if kind == "form" else None
            problem = request_shapes.problem(bolt_request.body if fields is None else fields, kind)
            if problem is None and fields is not None and bolt_request.body != fields:
                # Bolt takes any form with the word "payload" in it (a command's text, a channel's name) for an
                # interaction and, finding no payload field, reads it as empty: the command was lost, unanswered
                bolt_request.body = fields
                bolt_request.context = build_context(BoltContext({}), fields)
        if problem is not None or bolt_request is None:
            secret = rt.settings.slack_signing_secret
            if secret is None or not SignatureVerifier(secret.get_secret_value()).is_valid_request(
                    body, dict(request.headers)):
                log.warning("event=slack_request_refused reason=signature_or_timestamp unreadable=true client=%s",
                            request.client.host if request.client else "-")
                return JSONResponse({"error": "invalid request"}, status_code=401)
            log.warning("event=slack_request_unreadable reason=%r", problem)
            return JSONResponse({"error": f"invalid payload: {problem or 'not readable'}; nothing was done"},
                                status_code=400)
        bolt_response = await run_in_threadpool(app.dispatch, bolt_request)
        if bolt_response.status == 404:  # signed (Bolt checked) but no listener: ack, or Slack shows an error
            unhandled, what = unhandled_kind(bolt_request.body)
            log.warning("event=slack_request_unhandled type=%s id=%s team=%s", unhandled, what,
                        bolt_request.context.team_id or "-")
            return Response(status_code=200)
        if bolt_response.status == 401:
            stamp = request.headers.get("x-slack-request-timestamp", "")
            skew = f"{time.time() - int(stamp):.0f}" if stamp.lstrip("-").isdigit() else "unknown"
            log.warning("event=slack_request_refused reason=signature_or_timestamp skew_s=%s client=%s", skew,
                        request.client.host if request.client else "-")
        return to_starlette_response(bolt_response)

    async def healthz(request: Request) -> Response:
        def ping() -> None:
            with rt.services.db_engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except Exception as exc:
            return JSONResponse({"ok": False, "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"ok": True})

    async def qbo_start(request: Request) -> Response:
        state = request.query_params.get("state", "")
        try:
            await run_in_threadpool(rt.states.peek, state)
        except StateError as exc:
            return _page("Reconnect link not valid", f"<p>{html.escape(str(exc))}</p>", 400)
        return RedirectResponse(rt.services.oauth.authorization_url(state), status_code=302)

    async def qbo_callback(request: Request) -> Response:
        params = request.query_params
        if params.get("error"):
            return _page("QuickBooks was not connected",
                         f"<p>Intuit answered: {html.escape(params.get('error', ''))}. Nothing was changed.</p>", 400)
        code, state, realm = params.get("code"), params.get("state", ""), params.get("realmId")
        if not code or not realm:
            return _page("QuickBooks was not connected", "<p>The answer from Intuit was incomplete.</p>", 400)
        try:
            row = await run_in_threadpool(rt.states.consume, state)
        except StateError as exc:
            log.warning("event=oauth_state_refused reason=%s", exc)
            return _page("Reconnect link not valid", f"<p>{html.escape(str(exc))}</p>", 400)

        def finish() -> Any:
            rt.services.settings.check_secrets()
            return finish_authorization(rt.services.sessions, rt.services.oauth, rt.services.tokens,
                                        rt.services.engine, row.connection_id, code, realm, row.user_name,
                                        resume=False)

        try:
            await run_in_threadpool(finish)
        except ProviderError as exc:
            return _page("QuickBooks was not connected",
                         f"<p>{html.escape(exc.diagnosis.details)}</p><p>Ask for a new link with "
                         "<code>/sync-log reconnect</code>.</p>", 400)
        except ValueError as exc:
            return _page("QuickBooks was not connected", f"<p>{html.escape(str(exc))}</p>", 400)
        from bot.operations.runs import enqueue_resume

        await run_in_threadpool(enqueue_resume, rt, row.connection_id, row.user_name)
        return _page("QuickBooks is connected again",
                     "<p>The sync resumes now; the records that waited are retried. You can close this tab and "
                     "go back to Slack.</p>")

    async def slack_install(request: Request) -> Response:
        flow = app.oauth_flow if app is not None else None
        if flow is None:
            return _page("Not available", "<p>This syncbot serves one workspace (SLACK_BOT_TOKEN): there is "
                         "nothing to install.</p>", 404)
        account = request.query_params.get("account")
        if account is not None and (rt.install_links is None or rt.install_links.verify(account) is None):
            return _page("Install link not valid", "<p>This install link is not valid or has expired: ask "
                         "JobsiteOn for a new one.</p>", 400)
        response = to_starlette_response(await run_in_threadpool(flow.handle_installation,
                                                                 to_bolt_request(request, b"")))
        if account is not None:  # bound to the install through the browser, like Bolt's state cookie
            response.set_cookie(ACCOUNT_COOKIE, account, max_age=600, path="/slack", secure=True, httponly=True,
                                samesite="lax")
        return response

    async def slack_oauth_redirect(request: Request) -> Response:
        flow = app.oauth_flow if app is not None else None
        if flow is None:
            return _page("Not available", "<p>This syncbot serves one workspace.</p>", 404)
        return to_starlette_response(await run_in_threadpool(flow.handle_callback, to_bolt_request(request, b"")))

    async def reconnect_info(request: Request) -> Response:
        return _page("Reconnect syncbot to QuickBooks",
                     "<p>In Slack, an Owner or Admin types <code>/sync-log reconnect</code> (or clicks Reconnect "
                     "on the App Home card or the incident message) and follows the personal link.</p>")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Everything built so far (modules, Bolt, SQLAlchemy's mappers, the stand-ins' state in a demo) lives as
        # long as the process: move it out of the collector's reach, so a full collection scans only what the
        # requests create. Without it each full collection paused every request for ~80 ms, a few times a
        # minute under load: that was the p99 (bench/README.md, ack latency).
        gc.collect()
        gc.freeze()
        yield

    return Starlette(lifespan=lifespan, middleware=[Middleware(ServerTiming)], routes=[
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/oauth/quickbooks/start", qbo_start, methods=["GET"]),
        Route("/oauth/quickbooks/callback", qbo_callback, methods=["GET"]),
        Route("/reconnect", reconnect_info, methods=["GET"]),
        Route(INSTALL_PATH, slack_install, methods=["GET"]),
        Route(REDIRECT_PATH, slack_oauth_redirect, methods=["GET"]),
    ])
