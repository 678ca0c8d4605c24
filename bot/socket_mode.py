"""Socket Mode: the Slack app receives commands, interactions and events over a WebSocket it opens to Slack, instead
of Slack's HTTP POSTs to /slack/events (https://docs.slack.dev/apis/events-api/using-socket-mode). `syncbot serve`
uses it when SLACK_APP_TOKEN (an app-level token, ``xapp-...``, scope ``connections:write``) is set.

- The WebSocket URL comes from ``apps.connections.open`` called with the app-level token on SLACK_API_URL (a Slack
  stand-in in tests and offline), through a Web API client of its own.
- Envelopes are not signed: Slack delivers them over the connection the app token opened, and Bolt skips signature
  verification for them, so SLACK_SIGNING_SECRET is not needed in this mode (bot.app.build_app allows that).
- Bolt's built-in Socket Mode client (slack_sdk) acks each envelope with what the listener acked, pings every
  ``ping_interval`` seconds, and opens a new URL when Slack sends ``disconnect`` or the connection drops.
- An envelope no listener handles (an unknown action_id, view, shortcut or event) is acked empty and logged, as the
  HTTP endpoint does (bot/server.py): unacked, Slack would show the user an error or retry the event. So is one
  whose payload has not Slack's shape (bot.request_shapes; over HTTP it gets 400), before Bolt sees it: Bolt
  would raise on it and never ack. An event Slack delivers again (``retry_attempt``) is worked once (bot.events).
"""

from __future__ import annotations

import logging
import time

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot import request_shapes
from bot.config import Settings

log = logging.getLogger("syncbot.socket_mode")

#: How each envelope type's payload corresponds to an HTTP body (bot.request_shapes): a command's form fields, an
#: interaction's payload, an Events API request's JSON.
ENVELOPE_BODIES: dict[str, request_shapes.BodyKind] = {"slash_commands": "form", "interactive": "payload",
                                                      "events_api": "json"}

#: Seconds between the client's pings; a connection with no pong for four of them counts as dropped and is replaced.
PING_INTERVAL_S = 10.0


class _Handler(SocketModeHandler):
    """Bolt's handler, plus: an envelope no listener handled is acked empty and logged (see the module doc)."""

    def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        start = time.time()
        kind = ENVELOPE_BODIES.get(req.type)
        problem = (request_shapes.problem(req.payload, kind) if isinstance(req.payload, dict)
                   else "the envelope's payload is not an object") if kind is not None else None
        if problem is not None:  # Bolt would raise (no ack: Slack retries, or shows the user an error)
            log.warning("event=slack_request_unreadable mode=socket type=%s reason=%r envelope=%s", req.type, problem,
                        req.envelope_id)
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        response = run_bolt_app(self.app, req)
        if response.status == 404:
            from bot.server import unhandled_kind

            unhandled, what = unhandled_kind(req.payload)
            log.warning("event=slack_request_unhandled mode=socket type=%s id=%s envelope=%s", unhandled, what,
                        req.envelope_id)
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        send_response(client, req, response, start)


def socket_mode_handler(bolt_app: App, settings: Settings, *,
                        ping_interval: float = PING_INTERVAL_S) -> SocketModeHandler:
    """The Socket Mode handler of ``bolt_app`` (not connected yet: call ``connect()``, and ``close()`` when done).

    Its Web API client, used for ``apps.connections.open``, is built on ``settings.slack_api_url`` with the
    app-level token ``settings.slack_app_token``. ``ping_interval`` is in seconds. Raises ValueError when
    SLACK_APP_TOKEN is not set or is not an app-level token (``xapp-``).
    """
    if settings.slack_app_token is None:
        raise ValueError("SLACK_APP_TOKEN (an app-level token, xapp-...) must be set for Socket Mode")
    app_token = settings.slack_app_token.get_secret_value()
    if not app_token.startswith("xapp-"):
        raise ValueError("SLACK_APP_TOKEN must be an app-level token (xapp-...) with the connections:write scope; "
                         "create one under Basic Information > App-Level Tokens")
    web_client = WebClient(token=app_token, base_url=settings.slack_api_url, timeout=10)
    return _Handler(bolt_app, app_token, web_client=web_client, ping_interval=ping_interval)


def start_socket_mode(bolt_app: App, settings: Settings, *,
                      ping_interval: float = PING_INTERVAL_S) -> SocketModeHandler:
    """Connect ``bolt_app`` to Slack in Socket Mode and return the handler (close it to disconnect).

    The connection runs in slack_sdk's background threads and reconnects by itself. Raises ValueError as
    :func:`socket_mode_handler` does, and slack_sdk's SlackApiError when ``apps.connections.open`` is refused
    (e.g. ``invalid_auth``).
    """
    handler = socket_mode_handler(bolt_app, settings, ping_interval=ping_interval)
    try:
        handler.connect()
    except Exception:
        handler.close()
        raise
    log.info("event=socket_mode_connected session=%s", handler.client.session_id())
    return handler
