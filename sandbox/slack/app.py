"""The HTTP face of the Slack stand-in: an ASGI (Starlette) app.

- ``GET|POST /api/<method>``: the Web API, like https://slack.com/api/<method> (https://docs.slack.dev/apis/web-api/):
  form-encoded or JSON bodies (or a query string), the token as ``Authorization: Bearer xoxb-...`` or a ``token``
  parameter.
- ``POST /response_url/<id>``: response_urls minted by the stand-in (see :meth:`SlackStandIn.handle_response_url`).
- Socket Mode (sandbox/slack/socket_mode.py): ``/api/apps.connections.open`` (an ``xapp-`` token) answers a
  ``ws://.../link/?ticket=...`` URL; ``/link/`` is the WebSocket (hello, envelopes, acks).
- ``GET /``: the demo page (``web/``: plain HTML, CSS and JavaScript): the channel as Slack shows it, threads,
  ephemerals, the App Home tab and modals, a composer for slash commands and a user picker; its clicks go through
  ``/_control/drive/...``, so the app receives requests signed exactly as Slack signs them.
- ``/_control/...``: a JSON API to shape and read the stand-in (for the offline demo page and other processes),
  and ``/_control/drive/...`` to have the stand-in play Slack towards the app (a click on the demo page).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from sandbox.checks import MAX_CLOCK_STEP_SECONDS, Number
from sandbox.guard import LoopbackHostMiddleware, refusal
from sandbox.serve import RunningServer, serve_in_thread
from sandbox.slack import config as cfg
from sandbox.slack import oauth as slack_oauth
from sandbox.slack.config import RateLimit, SlackStandInConfig
from sandbox.slack.socket_mode import SocketModeHub
from sandbox.slack.standin import SUPPORTED_METHODS, ApiResponse, SlackStandIn


def _standin(request: Request) -> SlackStandIn:
    standin: SlackStandIn = request.app.state.standin
    if standin.public_url is None:
        standin.public_url = str(request.base_url).rstrip("/")
    return standin


async def _params(request: Request, body: bytes) -> dict[str, Any]:
    """Query string plus form or JSON body, as Slack reads them (body wins)."""
    params: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "").lower()
    if not body:
        return params
    if ctype.startswith("application/json"):
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("JSON body must be an object")
        params.update(data)
    else:
        params.update(dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)))
    return params


def _to_response(resp: ApiResponse) -> Response:
    if isinstance(resp.body, dict):
        return JSONResponse(resp.body, status_code=resp.status, headers=resp.headers)
    headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-type"}
    media = resp.headers.get("Content-Type", "text/plain")
    return Response(resp.body or "", status_code=resp.status, headers=headers, media_type=media)


async def api_method(request: Request) -> Response:
    """``/api/<method>``. A body that cannot be parsed answers ``invalid_form_data`` / ``invalid_json``."""
    standin = _standin(request)
    method = request.path_params["method"]
    body = await request.body()
    try:
        params = await _params(request, body)
    except (ValueError, UnicodeDecodeError):
        return JSONResponse({"ok": False, "error": "invalid_json"
                             if "json" in request.headers.get("content-type", "") else "invalid_form_data"})
    auth = request.headers.get("authorization", "")
    if method == "apps.connections.open":  # an app-level token, in the header only (sandbox/slack/socket_mode.py)
        hub: SocketModeHub = request.app.state.socket_mode
        ws_base = str(request.base_url).replace("http", "ws", 1)
        return _to_response(hub.open_connection(auth[7:].strip() if auth.lower().startswith("bearer ") else None,
                                                params.get("token"), ws_base))
    if method == "oauth.v2.access":  # client credentials, not a token (sandbox/slack/oauth.py)
        return _to_response(slack_oauth.access(standin, params, auth))
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    token = token or params.pop("token", None)
    params.pop("token", None)
    resp = standin.handle_api(method, params, token,
                              request.headers.get("content-type") if request.method == "POST" and body else None)
    if resp.delay:
        await asyncio.sleep(resp.delay)
    return _to_response(resp)


async def response_url(request: Request) -> Response:
    """``POST /response_url/<id>``: JSON (or ``payload=`` form) like Slack's hooks."""
    standin = _standin(request)
    body = await request.body()
    payload: Any
    try:
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            payload = json.loads(dict(parse_qsl(body.decode("utf-8"))).get("payload", ""))
        else:
            payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        payload = None
    resp = standin.handle_response_url(request.path_params["rid"], payload)
    if resp.delay:
        await asyncio.sleep(resp.delay)
    return _to_response(resp)


async def socket_link(websocket: WebSocket) -> None:
    """``/link/?ticket=...``: the Socket Mode WebSocket (see :meth:`SocketModeHub.serve`)."""
    hub: SocketModeHub = websocket.app.state.socket_mode
    await hub.serve(websocket)


async def oauth_authorize(request: Request) -> Response:
    """``GET /oauth/v2/authorize``: Slack's consent page, approved at once (see sandbox/slack/oauth.py)."""
    status, target = slack_oauth.authorize(_standin(request), dict(request.query_params))
    if status == 302:
        return Response(status_code=302, headers={"Location": target})
    return PlainTextResponse(f"Slack could not install the app: {target}\n", status_code=status)


# ----------------------------------------------------------------------------------------------------------------
# control API
# ----------------------------------------------------------------------------------------------------------------
async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _ok(**data: Any) -> JSONResponse:
    return JSONResponse({"ok": True, **data})


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


def _config_from(data: dict[str, Any]) -> SlackStandInConfig:
    """A config from JSON; ValueError or TypeError (nothing changed) when a field is unknown or of another kind."""
    data = dict(data)
    limits = data.pop("rate_limits", None)
    conf = SlackStandInConfig(**data)
    if limits is not None:
        if not isinstance(limits, dict) or not all(isinstance(v, dict) for v in limits.values()):
            raise ValueError("rate_limits must map each method to {per_minute, burst, scope?}")
        conf.rate_limits = {m: RateLimit(**v) for m, v in limits.items()}
    conf.check()
    return conf


async def control(request: Request) -> Response:
    """Dispatch ``/_control/<path>``; each action is listed in this package's docstring (``__init__``). A request
    that changes something is refused when a page of another site sent it, or when its body is not JSON
    (:mod:`sandbox.guard`)."""
    standin = _standin(request)
    path = request.path_params["path"].strip("/")
    if request.method != "GET":
        refused = refusal(request, await request.body())
        if refused is not None:
            return _bad(refused[1], refused[0])
    try:
        data = await _json(request) if request.method in ("POST", "PUT", "DELETE") else dict(request.query_params)
        if request.method == "POST" and path.startswith("drive/"):
            # the app may call back into this server before it answers: drive it from a worker thread
            return await run_in_threadpool(_drive, standin, path.split("/", 1)[1], data)
        return _control(standin, request.method, path, data)
    except KeyError as exc:
        return _bad(f"not found: {exc.args[0]}", 404)
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))


_TEXT, _FLAG, _OBJECT, _LIST, _ANY = "a string", "true or false", "a JSON object", "a JSON array", "any JSON value"
_TEXTS = "an array of strings"
_SKEW = Number(-MAX_CLOCK_STEP_SECONDS, MAX_CLOCK_STEP_SECONDS)
_SIGNING = {"forge": _FLAG, "skew_s": _SKEW, "retry_num": Number(0, 100, integer=True), "retry_reason": _TEXT}
#: Each drive action: the SlackDriver method, its fields (what each must be) and the required ones.
DRIVE_ACTIONS: dict[str, tuple[str, dict[str, Any], frozenset[str]]] = {
    "command": ("slash_command", {"command": _TEXT, "text": _TEXT, "user_id": _TEXT, "channel_id": _TEXT,
                                  "team_id": _TEXT}, frozenset({"command"})),
    "click": ("click", {"action_id": _TEXT, "channel_id": _TEXT, "message_ts": _TEXT, "user_id": _TEXT,
                        "value": _TEXT, "selected_option": _OBJECT, "ephemeral": _FLAG, "team_id": _TEXT},
              frozenset({"action_id", "channel_id", "message_ts"})),
    "click_in_view": ("click_in_view", {"action_id": _TEXT, "user_id": _TEXT, "surface": _TEXT, "view_id": _TEXT,
                                        "value": _TEXT, "selected_option": _OBJECT, "team_id": _TEXT},
                      frozenset({"action_id"})),
    "submit_view": ("submit_view", {"user_id": _TEXT, "view_id": _TEXT, "values": _OBJECT, "team_id": _TEXT,
                                    "apply_ack": _FLAG}, frozenset()),
    "app_home_opened": ("app_home_opened", {"user_id": _TEXT, "tab": _TEXT, "team_id": _TEXT, "event_id": _TEXT},
                        frozenset()),
    "event": ("event", {"event": _OBJECT, "team_id": _TEXT, "event_id": _TEXT,
                        "event_time": Number(0, 10**11)}, frozenset({"event"})),
}

#: Each ``POST /_control/<action>`` (``<id>`` for a path segment): its fields (what each must be) and the
#: required ones. A request is checked against this before anything changes (400 with a sentence otherwise).
CONTROL_FIELDS: dict[str, tuple[dict[str, Any], frozenset[str]]] = {
    "reset": ({"config": _OBJECT}, frozenset()),
    "teams": ({"team_id": _TEXT, "name": _TEXT, "domain": _TEXT, "bot_token": _TEXT, "bot_user_id": _TEXT,
               "bot_id": _TEXT, "app_id": _TEXT}, frozenset({"team_id", "name", "bot_token"})),
    "teams/<id>/token": ({"state": _TEXT}, frozenset({"state"})),
    "users": ({"team_id": _TEXT, "id": _TEXT, "name": _TEXT, "real_name": _TEXT, "is_admin": _FLAG,
               "is_owner": _FLAG, "is_primary_owner": _FLAG, "is_bot": _FLAG, "deleted": _FLAG, "tz": _TEXT,
               "tz_offset": Number(-14 * 3600, 14 * 3600, integer=True), "tz_label": _TEXT, "email": _TEXT},
              frozenset({"team_id", "id", "name"})),
    "channels": ({"team_id": _TEXT, "id": _TEXT, "name": _TEXT, "is_private": _FLAG, "is_archived": _FLAG,
                  "bot_member": _FLAG, "members": _TEXTS}, frozenset({"team_id", "id", "name"})),
    "channels/<id>/bot_membership": ({"member": _FLAG}, frozenset()),
    "channels/<id>/archive": ({"archived": _FLAG}, frozenset()),
    "messages": ({"channel": _TEXT, "user": _TEXT, "text": _TEXT, "blocks": _LIST, "thread_ts": _TEXT},
                 frozenset({"channel", "user"})),
    "faults": ({"method": _TEXT, "count": Number(1, 100_000, integer=True), "status": Number(100, 599, integer=True),
                "error": _TEXT, "retry_after": Number(0, 86400, integer=True), "delay": Number(0, 60),
                "body": _TEXT, "match": _OBJECT, "extra": _OBJECT, "after": _FLAG}, frozenset({"method"})),
    "update_errors": ({"channel": _TEXT, "ts": _TEXT, "error": _TEXT}, frozenset({"channel", "ts"})),
    "rate_limits": ({"enabled": _FLAG, "method": _TEXT, "per_minute": Number(0, 1_000_000),
                     "burst": Number(0, 1_000_000, integer=True), "scope": _TEXT, "refill": _FLAG}, frozenset()),
    "response_urls": ({"team_id": _TEXT, "channel_id": _TEXT, "user_id": _TEXT, "source": _TEXT,
                       "message_ts": _TEXT, "is_ephemeral": _FLAG}, frozenset({"team_id", "channel_id", "user_id"})),
    "trigger_ids": ({"team_id": _TEXT, "user_id": _TEXT}, frozenset({"team_id", "user_id"})),
    "clock": ({"advance": Number(0, MAX_CLOCK_STEP_SECONDS)}, frozenset()),
    "view_ack": ({"team_id": _TEXT, "user_id": _TEXT, "view_id": _TEXT, "answer": _ANY},
                 frozenset({"team_id", "user_id", "view_id"})),
    "view_state": ({"view_id": _TEXT, "values": _OBJECT}, frozenset({"view_id"})),
    "close_view": ({"team_id": _TEXT, "user_id": _TEXT, "view_id": _TEXT}, frozenset({"team_id", "user_id"})),
    "app": ({"app_url": _TEXT, "signing_secret": _TEXT}, frozenset()),
    "dm": ({"team_id": _TEXT, "user_id": _TEXT}, frozenset({"team_id", "user_id"})),
}
_CHOICES = {("teams/<id>/token", "state"): ("active", "revoked", "inactive"),
            ("rate_limits", "scope"): ("method", "channel"),
            ("response_urls", "source"): ("command", "block_actions", "view_submission")}


def _fits(value: Any, kind: Any) -> bool:
    if isinstance(kind, Number):
        return kind.fits(value)
    if kind == _TEXT:
        return isinstance(value, str)
    if kind == _FLAG:
        return isinstance(value, bool)
    if kind == _OBJECT:
        return isinstance(value, dict)
    if kind == _LIST:
        return isinstance(value, list)
    if kind == _TEXTS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return True


def _fields_problem(where: str, data: dict[str, Any], fields: dict[str, Any], required: frozenset[str]) -> str | None:
    """What is wrong with the fields of a request to ``where`` (a sentence), or None."""
    missing = sorted(required - data.keys())
    if missing:
        return f"{where} needs '{missing[0]}' ({fields[missing[0]]})"
    for name, value in data.items():
        if name not in fields:
            return f"{where} takes no '{name}'; it takes {', '.join(sorted(fields))}"
        if value is None and name not in required:
            continue
        if not _fits(value, fields[name]):
            return f"{where}: '{name}' must be {fields[name]}, not {json.dumps(value)[:60]}"
    return None


def _drive_problem(action: str, data: dict[str, Any]) -> str | None:
    """What is wrong with the fields of a drive request (a sentence), or None."""
    _method, fields, required = DRIVE_ACTIONS[action]
    return _fields_problem(f"drive/{action}", data, {**fields, **_SIGNING}, required)


def _control_problem(parts: list[str], data: dict[str, Any]) -> str | None:
    """What is wrong with a ``POST /_control/...`` body (a sentence), or None (also for an unknown action)."""
    key = "/".join(parts if len(parts) != 3 else [parts[0], "<id>", parts[2]])
    if key not in CONTROL_FIELDS:
        return None
    fields, required = CONTROL_FIELDS[key]
    problem = _fields_problem("/".join(parts), data, fields, required)
    if problem is not None:
        return problem
    for (action, name), allowed in _CHOICES.items():
        if action == key and data.get(name) is not None and data[name] not in allowed:
            return f"{'/'.join(parts)}: '{name}' must be one of {', '.join(allowed)}, not {data[name]!r}"[:200]
    if key == "rate_limits" and data.get("method") is not None and not {"per_minute", "burst"} <= data.keys():
        return "rate_limits: a 'method' needs 'per_minute' and 'burst'"
    if key == "reset" and data.get("config") is not None:
        try:
            _config_from(data["config"])
        except (TypeError, ValueError) as exc:
            return f"reset: 'config' is not a stand-in config: {exc}"
    return None


def _drive(standin: SlackStandIn, action: str, data: dict[str, Any]) -> Response:
    """Play Slack towards the app (for the demo page's buttons): ``command``, ``click``, ``click_in_view``,
    ``submit_view``, ``app_home_opened``, ``event``. Arguments are those of :class:`SlackDriver`'s methods
    (:data:`DRIVE_ACTIONS`); anything else is refused with 400 and a sentence that says what is wrong.
    A command's immediate answer is shown as Slack shows it (see :meth:`SlackStandIn.apply_command_ack`)."""
    from sandbox.slack.driver import SlackDriver

    app_url = data.pop("app_url", None) or standin.config.app_url
    secret = data.pop("signing_secret", None) or standin.config.signing_secret
    if not isinstance(app_url, str) or not isinstance(secret, str) or not app_url or not secret:
        return _bad("set the app first: POST /_control/app {app_url, signing_secret}", 409)
    if action not in DRIVE_ACTIONS:
        return _bad(f"no drive action {action}: one of {', '.join(DRIVE_ACTIONS)}", 404)
    problem = _drive_problem(action, data)
    if problem is not None:
        return _bad(problem)
    data = {k: v for k, v in data.items() if v is not None}
    with SlackDriver(app_url, secret, standin) as driver:
        try:
            result = getattr(driver, DRIVE_ACTIONS[action][0])(**data)
        except KeyError as exc:
            return _bad(f"not found: {exc.args[0] if exc.args else exc}", 404)
        except LookupError as exc:
            return _bad(str(exc), 404)
        except httpx.HTTPError as exc:
            return _bad(f"the app did not answer: {exc}", 502)
    shown = None
    if action == "command" and result.status_code == 200:  # Slack shows the ack's message to the user
        shown = standin.apply_command_ack(str(result.payload["team_id"]), str(result.payload["channel_id"]),
                                          str(result.payload["user_id"]), result.response.text,
                                          result.response.headers.get("content-type"), result.response_url_id)
    return _ok(shown=shown, status=result.status_code, body=result.response.text, response_url=result.response_url,
               trigger_id=result.trigger_id, event_id=result.event_id, view_ack=result.view_ack,
               elapsed_s=result.response.elapsed.total_seconds())


def _control(standin: SlackStandIn, verb: str, path: str, data: dict[str, Any]) -> Response:
    parts = path.split("/")
    head = parts[0]
    if verb == "GET":
        if head == "state":
            return JSONResponse(standin.snapshot())
        if head == "version":
            return _ok(version=standin.version)
        if head == "page":
            return JSONResponse(standin.page_state(str(data.get("user") or cfg.OWNER_USER_ID),
                                                   data.get("channel") or None))
        if head == "calls":
            return _ok(calls=[c.to_dict() for c in standin.calls(data.get("method"))])
        if head == "messages" and len(parts) == 2:
            return _ok(messages=[m.to_dict() for m in standin.messages(parts[1])])
        if head == "ephemerals" and len(parts) == 2:
            return _ok(ephemerals=[e.to_dict() for e in standin.ephemerals(parts[1])])
        if head == "home" and len(parts) == 2:
            return _ok(view=standin.home_view(parts[1]))
        if head == "views":
            return _ok(views=standin.open_views(data.get("user")))
        if head == "faults":
            return _ok(faults=[f.to_dict() for f in standin.faults()])
        if head == "methods":
            return _ok(methods=[*SUPPORTED_METHODS, "apps.connections.open"])
    if verb == "POST":
        problem = _control_problem(parts, data)
        if problem is not None:
            return _bad(problem)
        if head == "reset":
            standin.reset(_config_from(data["config"]) if "config" in data else None)
            return _ok(version=standin.version)
        if head == "teams" and len(parts) == 1:
            team = standin.add_team(data["team_id"], data["name"], data.get("domain") or data["team_id"].lower(),
                                    data["bot_token"], bot_user_id=data.get("bot_user_id"),
                                    bot_id=data.get("bot_id"), app_id=data.get("app_id", "A0000000001"))
            return _ok(team=vars(team))
        if head == "teams" and len(parts) == 3 and parts[2] == "token":
            standin.set_token_state(parts[1], data["state"])
            return _ok()
        if head == "users":
            user = standin.add_user(data["team_id"], data["id"], data["name"], data.get("real_name"),
                                    is_admin=bool(data.get("is_admin")), is_owner=bool(data.get("is_owner")),
                                    is_primary_owner=bool(data.get("is_primary_owner")),
                                    is_bot=bool(data.get("is_bot")), deleted=bool(data.get("deleted")),
                                    tz=data.get("tz", "America/Chicago"), tz_offset=data.get("tz_offset"),
                                    tz_label=data.get("tz_label"), email=data.get("email"))
            return _ok(user=user.to_api())
        if head == "channels" and len(parts) == 1:
            ch = standin.add_channel(data["team_id"], data["id"], data["name"],
                                     is_private=bool(data.get("is_private")),
                                     is_archived=bool(data.get("is_archived")),
                                     bot_member=bool(data.get("bot_member", True)), members=data.get("members"))
            return _ok(channel=ch.to_api())
        if head == "channels" and len(parts) == 3 and parts[2] == "bot_membership":
            standin.set_bot_membership(parts[1], bool(data.get("member", True)))
            return _ok()
        if head == "channels" and len(parts) == 3 and parts[2] == "archive":
            standin.archive_channel(parts[1], bool(data.get("archived", True)))
            return _ok()
        if head == "messages":
            msg = standin.post_as_user(data["channel"], data["user"], data.get("text", ""), data.get("blocks"),
                                       data.get("thread_ts"))
            return _ok(message=msg.to_dict())
        if head == "faults":
            fault = standin.inject_fault(data["method"], int(data.get("count", 1)), status=data.get("status"),
                                         error=data.get("error"), retry_after=data.get("retry_after"),
                                         delay=data.get("delay"), body=data.get("body"), match=data.get("match"),
                                         extra=data.get("extra"), after=bool(data.get("after", False)))
            return _ok(fault=fault.to_dict())
        if head == "update_errors":
            standin.set_update_error(data["channel"], data["ts"], data.get("error", "cant_update_message"))
            return _ok()
        if head == "rate_limits":
            if "enabled" in data:
                standin.rate_limits_enabled = bool(data["enabled"])
            if "method" in data:
                standin.set_rate_limit(data["method"], float(data["per_minute"]), int(data["burst"]),
                                       data.get("scope", "method"))
            if data.get("refill"):
                standin.reset_rate_limits()
            return _ok(enabled=standin.rate_limits_enabled)
        if head == "response_urls":
            ru = standin.mint_response_url(data["team_id"], data["channel_id"], data["user_id"],
                                           source=data.get("source", "command"), message_ts=data.get("message_ts"),
                                           is_ephemeral=bool(data.get("is_ephemeral")))
            return _ok(id=ru.id, url=ru.url)
        if head == "trigger_ids":
            return _ok(trigger_id=standin.mint_trigger_id(data["team_id"], data["user_id"]))
        if head == "clock":
            standin.advance_clock(data.get("advance") or 0)
            return _ok(now=standin.now())
        if head == "view_ack":
            result = standin.apply_view_submission_ack(data["team_id"], data["user_id"], data["view_id"],
                                                       data.get("answer"))
            return _ok(result=result)
        if head == "view_state":
            standin.set_view_state(data["view_id"], data.get("values", {}))
            return _ok()
        if head == "close_view":
            standin.close_view(data["team_id"], data["user_id"], data.get("view_id"))
            return _ok()
        if head == "app":
            standin.config.app_url = data.get("app_url", standin.config.app_url)
            standin.config.signing_secret = data.get("signing_secret", standin.config.signing_secret)
            return _ok(app_url=standin.config.app_url)
        if head == "dm":
            return _ok(channel=standin.dm_channel_id(data["team_id"], data["user_id"]))
    if verb == "DELETE" and head == "faults":
        standin.clear_faults()
        return _ok()
    if verb == "DELETE" and head == "calls":
        standin.clear_calls()
        return _ok()
    return _bad(f"no control action {verb} /_control/{path}", 404)


WEB_DIR = Path(__file__).parent / "web"
WEB_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
             ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


async def index(request: Request) -> Response:
    """The demo page: the workspace as Slack shows it (channel, threads, App Home, modals), to watch and click."""
    _standin(request)
    return FileResponse(WEB_DIR / "index.html", media_type=WEB_TYPES[".html"],
                        headers={"Cache-Control": "no-store"})


async def web_file(request: Request) -> Response:
    """``GET /web/<name>``: the page's script and style (plain files, no build step)."""
    name = request.path_params["name"]
    path = WEB_DIR / name
    if "/" in name or name.startswith(".") or path.suffix not in WEB_TYPES or not path.is_file():
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(path, media_type=WEB_TYPES[path.suffix], headers={"Cache-Control": "no-store"})


def create_app(config: SlackStandInConfig | None = None, standin: SlackStandIn | None = None) -> Starlette:
    """Build the stand-in's ASGI app; ``app.state.standin`` is the :class:`SlackStandIn` behind it."""
    app = Starlette(routes=[
        Route("/", index, methods=["GET"]),
        Route("/web/{name}", web_file, methods=["GET"]),
        Route("/api/{method}", api_method, methods=["GET", "POST"]),
        Route("/oauth/v2/authorize", oauth_authorize, methods=["GET"]),
        Route("/response_url/{rid:path}", response_url, methods=["POST"]),
        Route("/_control/{path:path}", control, methods=["GET", "POST", "DELETE"]),
        WebSocketRoute("/link/", socket_link),
    ], middleware=[Middleware(LoopbackHostMiddleware)])
    app.state.standin = standin or SlackStandIn(config)
    app.state.socket_mode = SocketModeHub()
    return app


@dataclass
class StandInServer:
    """A stand-in served over real HTTP on loopback. ``url`` has no trailing slash; ``api_url`` ends in ``/api/``;
    ``socket_mode`` is its Socket Mode side (``apps.connections.open`` and the WebSocket)."""

    standin: SlackStandIn
    server: RunningServer
    socket_mode: SocketModeHub

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api_url(self) -> str:
        return f"{self.server.url}/api/"

    def stop(self) -> None:
        self.server.stop()


def serve_standin(config: SlackStandInConfig | None = None, host: str = "127.0.0.1",
                  port: int | None = None) -> StandInServer:
    """Start the stand-in under uvicorn in a thread and point its response_urls at itself."""
    app = create_app(config)
    server = serve_in_thread(app, host=host, port=port)
    standin: SlackStandIn = app.state.standin
    standin.public_url = server.url
    return StandInServer(standin=standin, server=server, socket_mode=app.state.socket_mode)
