"""Socket Mode in the Slack stand-in: ``apps.connections.open``, the WebSocket Slack serves, and a driver that plays
Slack towards an app connected over it.

Slack's protocol (https://docs.slack.dev/apis/events-api/using-socket-mode,
https://docs.slack.dev/reference/methods/apps.connections.open):

- ``apps.connections.open`` takes an app-level token (``xapp-...``) in the ``Authorization: Bearer`` header ("passing
  it as a POST parameter will result in an error") and answers ``{"ok": true, "url": "wss://.../link/?ticket=..."}``:
  a URL good for one connection. Here the URL is ``ws://<stand-in host>/link/?ticket=...&app_id=...``. Errors:
  ``not_authed`` (no token), ``invalid_auth`` (an unknown app token, or the token only as a parameter),
  ``not_allowed_token_type`` (a bot or user token).
- On connect Slack sends ``{"type": "hello", "num_connections", "connection_info": {"app_id"}, "debug_info": {...,
  "approximate_connection_time"}}``.
- Then envelopes ``{"envelope_id", "type": "slash_commands" | "interactive" | "events_api", "payload",
  "accepts_response_payload"}`` (events also ``retry_attempt`` and ``retry_reason``). The payload is what an HTTP
  Request URL would receive: a slash command's fields, an interaction's ``payload`` object, the whole Events API
  ``event_callback``. The app acks each with ``{"envelope_id", "payload"?}``; a command's ack payload is shown to the
  user as its HTTP answer would be.
- Slack refreshes connections: ``{"type": "disconnect", "reason": "warning" | "refresh_requested" | "link_disabled"}``,
  after which the client opens a new URL; a connection may also simply drop. An app may hold up to 10 connections;
  an envelope goes to any one of them (here: the newest).

Envelopes are not signed ("there's no need to verify or validate inbound events, because you're receiving the events
over a pre-authenticated WebSocket"), so the driver's signing options do not apply here.

Python::

    server = serve_standin()                    # server.socket_mode is the SocketModeHub
    driver = SocketDriver(server.socket_mode, server.standin)
    result = driver.slash_command("/sync-log", "help")   # a DriverResult; result.json() is the ack's payload
    server.socket_mode.disconnect("refresh_requested")   # or disconnect(None): the connections drop
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import itertools
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from starlette.websockets import WebSocket, WebSocketDisconnect

from sandbox.slack import config as cfg
from sandbox.slack.driver import SlackDriver
from sandbox.slack.standin import ApiResponse, SlackStandIn

EnvelopeType = Literal["slash_commands", "interactive", "events_api"]
DisconnectReason = Literal["warning", "refresh_requested", "link_disabled"]
#: At most this many open connections per app ("Socket Mode allows your app to maintain up to 10 open WebSocket
#: connections at the same time"); an 11th handshake is refused.
MAX_CONNECTIONS = 10
#: How long a URL from apps.connections.open may wait for its connection (our choice: Slack gives no number).
TICKET_TTL_S = 60.0
#: What the hello message's debug_info says a connection lasts, in seconds (Slack's example value).
APPROXIMATE_CONNECTION_TIME_S = 3600


@dataclass
class SocketAck:
    """The app's acknowledgement of one envelope: its ``payload`` (None when the ack carried none), the seconds
    between sending the envelope and receiving the ack, and which connection carried it."""

    envelope_id: str
    payload: dict[str, Any] | None
    elapsed_s: float
    connection_id: int


@dataclass
class SocketConnection:
    """One open WebSocket connection of the app (read-only for callers)."""

    id: int
    app_id: str
    websocket: WebSocket
    loop: asyncio.AbstractEventLoop
    opened_at: float
    envelopes: set[str] = field(default_factory=set)


class SocketModeHub:
    """Slack's Socket Mode side: issues connection URLs, serves the WebSocket, sends envelopes and collects acks.

    ``app_tokens`` maps each accepted app-level token to its app id (default: :data:`cfg.DEFAULT_APP_TOKEN`).
    Thread-safe: the WebSocket side runs on uvicorn's event loop, :meth:`send` and :meth:`disconnect` are called
    from other threads (tests, the driver).
    """

    def __init__(self, app_tokens: dict[str, str] | None = None, *, ticket_ttl_s: float = TICKET_TTL_S) -> None:
        self._cond = threading.Condition()
        self.app_tokens = dict(app_tokens) if app_tokens is not None else {cfg.DEFAULT_APP_TOKEN: cfg.DEFAULT_APP_ID}
        self.ticket_ttl_s = ticket_ttl_s
        self._tickets: dict[str, tuple[str, float]] = {}
        self._connections: dict[int, SocketConnection] = {}
        self._pending: dict[str, concurrent.futures.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        #: Every apps.connections.open answer: ``{"ok", "error"?, "app_id"?}`` (never the token).
        self.opens: list[dict[str, Any]] = []
        #: How many connections were accepted in all (a reconnect adds one).
        self.accepted = 0
        #: Messages from the app that acknowledged no envelope sent (unknown envelope_id, not JSON, ...).
        self.unexpected: list[str] = []

    # -- apps.connections.open ---------------------------------------------------------------------------------
    def open_connection(self, header_token: str | None, param_token: str | None, ws_base: str) -> ApiResponse:
        """Answer ``apps.connections.open``. ``header_token`` is the Bearer token, ``param_token`` a ``token``
        parameter, ``ws_base`` the stand-in's base URL as ``ws://host:port``. Returns HTTP 200 with ``ok`` and
        ``url``, or ``ok: false`` with Slack's error."""
        error: str | None = None
        app_id: str | None = None
        if not header_token:
            error = "invalid_auth" if param_token else "not_authed"
        elif not header_token.startswith("xapp-"):
            error = "not_allowed_token_type"
        else:
            app_id = self.app_tokens.get(header_token)
            if app_id is None:
                error = "invalid_auth"
        with self._cond:
            if error is not None or app_id is None:
                self.opens.append({"ok": False, "error": error})
                return ApiResponse(200, {"ok": False, "error": error})
            now = time.monotonic()
            self._tickets = {t: v for t, v in self._tickets.items() if v[1] > now}
            ticket = f"{uuid.uuid4()}"
            self._tickets[ticket] = (app_id, now + self.ticket_ttl_s)
            self.opens.append({"ok": True, "app_id": app_id})
        return ApiResponse(200, {"ok": True, "url": f"{ws_base.rstrip('/')}/link/?ticket={ticket}&app_id={app_id}"})

    def _take_ticket(self, ticket: str) -> str | None:
        with self._cond:
            entry = self._tickets.pop(ticket, None)
            if entry is None or entry[1] < time.monotonic() or len(self._connections) >= MAX_CONNECTIONS:
                return None
            return entry[0]

    # -- the WebSocket -----------------------------------------------------------------------------------------
    async def serve(self, websocket: WebSocket) -> None:
        """The ``/link/`` endpoint: a URL's single-use ticket opens one connection (else the handshake is refused
        with HTTP 403); the hello goes out, then every text frame from the app is read as an ack."""
        app_id = self._take_ticket(websocket.query_params.get("ticket", ""))
        if app_id is None:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        conn = SocketConnection(id=next(self._ids), app_id=app_id, websocket=websocket,
                                loop=asyncio.get_running_loop(), opened_at=time.time())
        try:
            await websocket.send_text(json.dumps(self._hello(conn)))
            with self._cond:
                self._connections[conn.id] = conn
                self.accepted += 1
                self._cond.notify_all()
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                self._on_message(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self._forget(conn)

    def _hello(self, conn: SocketConnection) -> dict[str, Any]:
        with self._cond:
            count = len(self._connections) + 1
        return {"type": "hello", "num_connections": count, "connection_info": {"app_id": conn.app_id},
                "debug_info": {"host": f"applink-sandbox-{conn.id}",
                               "started": dt.datetime.fromtimestamp(conn.opened_at, dt.UTC)
                               .strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                               "build_number": 1, "approximate_connection_time": APPROXIMATE_CONNECTION_TIME_S}}

    def _on_message(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        envelope_id = data.get("envelope_id") if isinstance(data, dict) else None
        with self._cond:
            future = self._pending.get(envelope_id) if isinstance(envelope_id, str) else None
            if future is None or future.done():
                self.unexpected.append(text)
                return
        payload = data.get("payload") if isinstance(data, dict) else None
        future.set_result({"envelope_id": envelope_id, **({"payload": payload} if payload is not None else {})})

    def _forget(self, conn: SocketConnection) -> None:
        with self._cond:
            self._connections.pop(conn.id, None)
            waiting = [self._pending[e] for e in conn.envelopes if e in self._pending]
            self._cond.notify_all()
        for future in waiting:
            if not future.done():
                future.set_exception(ConnectionError(f"connection {conn.id} closed before the app acked"))

    # -- state -------------------------------------------------------------------------------------------------
    def connections(self) -> list[SocketConnection]:
        """The open connections, oldest first."""
        with self._cond:
            return sorted(self._connections.values(), key=lambda c: c.id)

    def wait_connected(self, *, accepted_more_than: int = 0, timeout: float = 10.0) -> SocketConnection:
        """Block until a connection is open and more than ``accepted_more_than`` were accepted in all (pass the
        earlier :attr:`accepted` to wait for a reconnect). Returns the newest; TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (self._connections and self.accepted > accepted_more_than):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no Socket Mode connection within {timeout} s")
                self._cond.wait(left)
            return self._connections[max(self._connections)]

    # -- sending -----------------------------------------------------------------------------------------------
    def send(self, kind: EnvelopeType, payload: dict[str, Any], *, accepts_response_payload: bool | None = None,
             retry_attempt: int | None = None, retry_reason: str | None = None,
             timeout: float = 10.0) -> SocketAck:
        """Send one envelope over the newest open connection (waiting up to ``timeout`` s for one) and wait for
        its ack. ``accepts_response_payload`` defaults to Slack's: true for commands and interactions, false for
        events. Raises TimeoutError when no connection or no ack comes within ``timeout`` seconds, ConnectionError
        when the connection closes first."""
        deadline = time.monotonic() + timeout
        conn = self.wait_connected(timeout=timeout)
        envelope: dict[str, Any] = {
            "envelope_id": str(uuid.uuid4()), "type": kind, "payload": payload,
            "accepts_response_payload": (kind != "events_api") if accepts_response_payload is None
            else accepts_response_payload,
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        envelope_id: str = envelope["envelope_id"]
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        with self._cond:
            self._pending[envelope_id] = future
            conn.envelopes.add(envelope_id)
        started = time.monotonic()
        try:
            asyncio.run_coroutine_threadsafe(conn.websocket.send_text(json.dumps(envelope)), conn.loop).result(
                max(0.1, deadline - time.monotonic()))
            ack = future.result(max(0.1, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"the app did not ack envelope {envelope_id} ({kind}) within {timeout} s") from None
        except ConnectionError:  # closed before the app acked (see _forget)
            raise
        except (RuntimeError, OSError, WebSocketDisconnect) as exc:  # the connection closed under the send
            raise ConnectionError(f"connection {conn.id} closed before envelope {envelope_id} went out") from exc
        finally:
            with self._cond:
                self._pending.pop(envelope_id, None)
                conn.envelopes.discard(envelope_id)
        return SocketAck(envelope_id=envelope_id, payload=ack.get("payload"), elapsed_s=time.monotonic() - started,
                         connection_id=conn.id)

    def disconnect(self, reason: DisconnectReason | None = "refresh_requested", *, timeout: float = 5.0) -> int:
        """Disconnect every open connection as Slack does. With a ``reason`` Slack sends
        ``{"type": "disconnect", "reason", "debug_info"}`` and leaves the connection for the client to replace;
        with ``None`` the connection just drops (a close frame, code 1001). Returns how many connections."""
        conns = self.connections()
        for conn in conns:
            if reason is None:
                coro = conn.websocket.close(code=1001)
            else:
                coro = conn.websocket.send_text(json.dumps({"type": "disconnect", "reason": reason,
                                                            "debug_info": {"host": f"applink-sandbox-{conn.id}"}}))
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect, concurrent.futures.TimeoutError):
                asyncio.run_coroutine_threadsafe(coro, conn.loop).result(timeout)  # a connection already gone
        return len(conns)


class SocketDriver(SlackDriver):
    """Plays Slack towards an app connected in Socket Mode: :class:`SlackDriver`'s own payloads (slash commands,
    clicks, view submissions, events, App Home opened) go out as envelopes over ``hub`` instead of signed HTTP POSTs.

    Each method returns a :class:`DriverResult` whose ``response`` holds the ack as HTTP would hold the app's
    answer: status 200, the ack's payload as a JSON body (empty when the ack had none), ``elapsed`` the seconds to
    the ack (``acked_in_time`` applies). No ack within ``ack_timeout`` seconds raises TimeoutError. ``retry_num``
    becomes an event's ``retry_attempt``; ``forge``, ``skew_s`` and ``extra_headers`` raise ValueError (Socket Mode
    envelopes are not signed), as do ``send``, ``url_verification`` and ``ssl_check``, which are HTTP only.
    """

    def __init__(self, hub: SocketModeHub, standin: SlackStandIn | str, *, team_id: str = cfg.DEFAULT_TEAM_ID,
                 api_app_id: str = cfg.DEFAULT_APP_ID, ack_timeout: float = 10.0,
                 client: httpx.Client | None = None) -> None:
        super().__init__("", "", standin, team_id=team_id, api_app_id=api_app_id, client=client)
        self.hub = hub
        self.ack_timeout = ack_timeout

    def _deliver(self, kind: EnvelopeType, payload: dict[str, Any], body: str, content_type: str, *,
                 forge: bool = False, skew_s: float = 0.0, retry_num: int | None = None,
                 retry_reason: str = "http_timeout",
                 extra_headers: dict[str, str] | None = None) -> tuple[httpx.Response, dict[str, str]]:
        if forge or skew_s or extra_headers:
            raise ValueError("Socket Mode envelopes are not signed: forge, skew_s and extra_headers do not apply")
        ack = self.hub.send(kind, payload, retry_attempt=retry_num,
                            retry_reason=retry_reason if retry_num is not None else None, timeout=self.ack_timeout)
        response = (httpx.Response(200, content=b"") if ack.payload is None
                    else httpx.Response(200, json=ack.payload))
        response.elapsed = dt.timedelta(seconds=ack.elapsed_s)
        return response, {}

    def send(self, body: str, content_type: str, **_: Any) -> tuple[httpx.Response, dict[str, str]]:
        raise ValueError("SocketDriver sends envelopes, not signed HTTP requests: use SlackDriver for HTTP")

    def url_verification(self, challenge: str | None = None, **_: Any) -> Any:
        raise ValueError("Slack sends no url_verification in Socket Mode")

    def ssl_check(self) -> Any:
        raise ValueError("Slack sends no ssl_check in Socket Mode")


def new_app_token(app_id: str = cfg.DEFAULT_APP_ID) -> str:
    """An app-level token shaped like Slack's (``xapp-1-<app id>-<digits>-<hex>``), for :class:`SocketModeHub`."""
    return f"xapp-1-{app_id}-{secrets.randbelow(10**12):012d}-{secrets.token_hex(32)}"
