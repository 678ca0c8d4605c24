"""The ASGI app of the QuickBooks Online + Intuit OAuth stand-in (Starlette); one base URL serves everything.

``create_app(config) -> Starlette``; ``app.state.standin`` is the ``QuickBooksStandIn`` holding all state.

Wire surface (shapes from Intuit's developer docs "OAuth 2.0", "Accounting API" reference, "Batch",
"Change data capture", "Query operations and syntax", "Rate limits and throttles"; see docs/platform-facts.md):

OAuth (Intuit's hosts ``appcenter.intuit.com``, ``oauth.platform.intuit.com``, ``developer.api.intuit.com``)
    GET  /connect/oauth2                    consent page (client_id, response_type=code, scope, redirect_uri, state)
    POST /connect/oauth2/approve            form from that page -> 302 redirect_uri?code&state&realmId
    POST /oauth2/v1/tokens/bearer           form, HTTP Basic client auth: authorization_code | refresh_token
    POST /v2/oauth2/tokens/revoke           JSON {"token"} (or form), HTTP Basic client auth -> 200
Accounting API v3 (``quickbooks.api.intuit.com``), Bearer access token, JSON; ``minorversion`` ignored
    POST /v3/company/{realm}/{entity}       create / update (Id+SyncToken, sparse) / ?operation=delete|void
    GET  /v3/company/{realm}/{entity}/{id}  read
    GET  /v3/company/{realm}/query?query=   (POST with an application/text body also works)
    POST /v3/company/{realm}/batch          BatchItemRequest, at most 30 items
    GET  /v3/company/{realm}/cdc?entities=&changedSince=
    GET  /v3/company/{realm}/companyinfo/{realm}
    entity: customer, item, invoice, payment; ``?requestid=`` on any POST makes it idempotent.
Control (stand-in only; tests and the demo use it, the sync engine never does), JSON in and out, under /_control;
a malformed value (another type, NaN, infinity, out of bounds) is 400 with nothing changed, an unknown realm 404:
    POST /reset                                         {} -> {"ok": true}
    GET  /config  | POST /config                        {field: value, ...} -> the config
    GET  /clock   | POST /clock/advance                 {"seconds": 0..ten years} -> {"now", "offset_seconds"}
    GET  /realms  | POST /realms                        {"realm_id", "name"?} -> summary
    POST /realms/{realm}/tax                            {"enabled": bool, "rate": 8.875?} -> summary
    GET  /realms/{realm}/stats                          -> {"requests","writes","throttled","in_flight",...}
    GET  /realms/{realm}/requests                       -> [{"time","method","path","status","outcome",...}]
    POST /realms/{realm}/throttle/clear                 {} -> stats      (lift the rate limit)
    POST /realms/{realm}/throttle/exhaust               {} -> stats      (use up the window's budget)
    GET  /realms/{realm}/entities/{entity}              ?include_deleted=1 -> {"Customer": [...]}
    POST /realms/{realm}/entities/{entity}              {object} -> {"Customer": {...}} (400 + QBO fault on error)
    GET  /realms/{realm}/entities/{entity}/{id}         -> {"Customer": {...}} or 404
    POST /realms/{realm}/entities/{entity}/{id}         {fields} -> updated object (a QBO user's edit)
    POST /realms/{realm}/entities/{entity}/{id}/delete  {} -> stub or inactive object
    POST /realms/{realm}/entities/{entity}/{id}/restore {} -> object
    POST /realms/{realm}/tokens                         {} -> a token answer, as if the OAuth dance was done
    GET  /realms/{realm}/tokens                         -> grants with tokens, seconds left, validity
    POST /realms/{realm}/tokens/expire                  {"refresh": false} -> {"access": n, "refresh": m}
    POST /realms/{realm}/fail-next                      {"count", "status", "content_type", "body",
                                                         "path_contains"?, "headers"?} -> stats
    POST /realms/{realm}/lose-next                      {"count", "path_contains"?} -> stats
    GET  /panel   | POST /panel/action                  HTML panel for a human (forms, 303 back to the panel)
QuickBooks Online's web app, as far as syncbot links to it (HTML, not under /_control):
    GET  /app/invoice?txnId={id}                        the invoice's page (its lines, tax and totals); 404 if none
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.guard import FORM, LoopbackHostMiddleware, refusal
from sandbox.quickbooks.config import StandInConfig
from sandbox.quickbooks.faults import QBOFault
from sandbox.quickbooks.pages import consent_page, error_page, invoice_page, panel_page
from sandbox.quickbooks.realm import DEFAULT_REALM, ApiRequest
from sandbox.quickbooks.state import QuickBooksStandIn
from sandbox.quickbooks.wire import Reply

__all__ = ["QuickBooksStandIn", "StandInConfig", "create_app"]


def _respond(reply: Reply) -> Response:
    response = Response(content=reply.body, status_code=reply.status)
    response.headers["content-type"] = reply.content_type
    for name, value in reply.headers.items():
        response.headers[name] = value
    return response


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as a dict (no python-multipart needed)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


def _standin(request: Request) -> QuickBooksStandIn:
    return request.app.state.standin


# --- OAuth ---------------------------------------------------------------------------------------------------


async def authorize(request: Request) -> Response:
    standin = _standin(request)
    params = dict(request.query_params)
    problem = standin.authorize_problem(params)
    if problem:
        return HTMLResponse(error_page(problem), status_code=400)
    realms = standin.realm_summaries()
    return HTMLResponse(consent_page(params, standin.company_name(DEFAULT_REALM), realms))


async def approve(request: Request) -> Response:
    standin = _standin(request)
    form = await _form(request)
    try:
        location = standin.deny(form) if form.get("decision") == "cancel" else standin.approve(form)
    except ValueError as exc:
        return HTMLResponse(error_page(str(exc)), status_code=400)
    return RedirectResponse(location, status_code=302)


async def token(request: Request) -> Response:
    standin = _standin(request)
    form = await _form(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    return _respond(standin.token_endpoint(request.headers.get("authorization"), form, headers))


async def revoke(request: Request) -> Response:
    standin = _standin(request)
    raw = await request.body()
    token_value: str | None
    try:
        body = json.loads(raw) if raw.strip() else {}
        token_value = body.get("token") if isinstance(body, dict) else None
    except ValueError:
        token_value = dict(parse_qsl(raw.decode("utf-8", "replace"))).get("token")
    return _respond(standin.revoke_endpoint(request.headers.get("authorization"), token_value))


# --- Accounting API ------------------------------------------------------------------------------------------


async def api(request: Request) -> Response:
    standin = _standin(request)
    call = ApiRequest(
        method=request.method,
        realm_id=request.path_params["realm"],
        path=request.path_params["rest"],
        params=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=await request.body(),
    )
    outcome = standin.api_begin(call)
    if isinstance(outcome, Reply):
        return _respond(outcome)
    try:
        latency = standin.config.latency_seconds
        if latency > 0:
            await asyncio.sleep(latency)
        reply = standin.api_execute(outcome, call)
    finally:
        standin.api_release(outcome)
    return _respond(reply)


# --- control -------------------------------------------------------------------------------------------------


def _control(handler: Any) -> Any:
    """Wrap a control handler: JSON body in, JSON out, errors as 400/404 JSON (QBO faults as their reply)."""

    async def endpoint(request: Request) -> Response:
        if request.method != "GET":
            refused = refusal(request, await request.body())
            if refused is not None:
                return JSONResponse({"error": refused[1]}, status_code=refused[0])
        try:
            body = await _json(request) if request.method == "POST" else {}
            result = handler(_standin(request), request.path_params, dict(request.query_params), body)
        except QBOFault as exc:
            return _respond(exc.reply(_standin(request).now()))
        except KeyError as exc:
            return JSONResponse({"error": str(exc.args[0]) if exc.args else "not found"}, status_code=404)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    return endpoint


def _realm_id(path: dict[str, Any]) -> str:
    return str(path["realm"])


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")


def c_reset(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    s.reset()
    return {"ok": True}


def c_config(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    if body:
        s.configure(**body)
    return s.config_dict()


def c_clock(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    return s.clock()


def c_advance(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    return s.advance_clock(body.get("seconds", 0))


def c_realms(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    if body:
        realm_id, name = body.get("realm_id"), body.get("name")
        if not isinstance(realm_id, str | int) or isinstance(realm_id, bool) or not str(realm_id).strip():
            raise ValueError("realm_id must be the company's id (a string such as \"9130350000000002\")")
        if name is not None and not isinstance(name, str):
            raise ValueError("name must be a string")
        return s.create_realm(str(realm_id), name)
    return s.realm_summaries()


def c_tax(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    return s.set_tax(_realm_id(path), _truthy(body.get("enabled", True)), body.get("rate"))


def c_stats(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    return s.stats(_realm_id(path))


def c_requests(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    return s.request_log(_realm_id(path))


def c_throttle_clear(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str],
                     body: dict[str, Any]) -> Any:
    return s.clear_throttle(_realm_id(path))


def c_throttle_exhaust(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str],
                       body: dict[str, Any]) -> Any:
    return s.exhaust_throttle(_realm_id(path))


def c_entities(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    entity = s.entity_type(path["entity"])
    if body:
        return {entity: s.create_entity(_realm_id(path), entity, body)}
    return {entity: s.entities(_realm_id(path), entity, _truthy(query.get("include_deleted", "0")))}


def c_entity(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    entity = s.entity_type(path["entity"])
    if body:
        return {entity: s.update_entity(_realm_id(path), entity, path["id"], body)}
    found = s.entity(_realm_id(path), entity, path["id"])
    if found is None:
        raise KeyError(f"no {entity} {path['id']}")
    return {entity: found}


def c_delete(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    entity = s.entity_type(path["entity"])
    return {entity: s.delete_entity(_realm_id(path), entity, path["id"])}


def c_restore(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    entity = s.entity_type(path["entity"])
    return {entity: s.restore_entity(_realm_id(path), entity, path["id"])}


def c_tokens(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    return s.token_info(_realm_id(path))


def c_issue(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    return s.issue_tokens(_realm_id(path))


def c_expire(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    return s.expire_tokens(_realm_id(path), _truthy(body.get("refresh", False)))


def c_fail_next(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    return s.fail_next(_realm_id(path), body.get("count", 1), body.get("status", 502),
                       body.get("content_type", "text/html"), body.get("body", ""),
                       body.get("path_contains"), body.get("headers"))


def c_lose_next(s: QuickBooksStandIn, path: dict[str, Any], query: dict[str, str], body: dict[str, Any]) -> Any:
    return s.lose_next(_realm_id(path), body.get("count", 1), body.get("path_contains"))


async def app_invoice(request: Request) -> Response:
    """QuickBooks Online's invoice page, ``/app/invoice?txnId=…``, as the stand-in shows it (pages.invoice_page)."""
    standin = _standin(request)
    txn_id = request.query_params.get("txnId", "")
    found = []
    for company in standin.realm_summaries():
        for inv in standin.entities(company["realm_id"], "Invoice"):
            if str(inv.get("Id")) == txn_id:
                found.append((company, inv))
    return HTMLResponse(invoice_page(txn_id, found), status_code=200 if found else 404)


async def panel(request: Request) -> Response:
    standin = _standin(request)
    return HTMLResponse(panel_page(standin.snapshot(), standin.config_dict(), request.query_params.get("msg")))


async def panel_action(request: Request) -> Response:
    """A button of the panel: do it and go back to the panel (303) saying what was done; a value the stand-in
    cannot take (a tax rate of -5) answers 400 with the panel and the reason. Forms from another site: 403."""
    standin = _standin(request)
    refused = refusal(request, await request.body(), expected=FORM)
    if refused is not None:
        return PlainTextResponse(refused[1], status_code=refused[0])
    form = await _form(request)
    realm = form.get("realm") or DEFAULT_REALM
    if realm not in {r["realm_id"] for r in standin.realm_summaries()}:
        return HTMLResponse(panel_page(standin.snapshot(), standin.config_dict(),
                                       f"Not changed: no company {realm} in the stand-in"), status_code=404)
    action = form.get("action", "")
    entity, obj_id, value = form.get("entity", ""), form.get("id", ""), form.get("value", "").strip()
    message = ""
    try:
        if action == "rename":
            field = {"Customer": "DisplayName", "Item": "Name", "Invoice": "DocNumber"}[standin.entity_type(entity)]
            standin.update_entity(realm, entity, obj_id, {field: value})
            message = f"{entity} {obj_id} renamed to {value}"
        elif action == "delete":
            standin.delete_entity(realm, entity, obj_id)
            message = f"{entity} {obj_id} deleted"
        elif action == "restore":
            standin.restore_entity(realm, entity, obj_id)
            message = f"{entity} {obj_id} restored"
        elif action == "create_customer":
            created = standin.create_entity(realm, "Customer", {"DisplayName": value})
            message = f"Customer {created['Id']} {value} created"
        elif action == "tax":
            try:
                standin.set_tax(realm, _truthy(form.get("enabled")), form.get("rate") or None)
            except ValueError as exc:
                return HTMLResponse(panel_page(standin.snapshot(), standin.config_dict(), f"Not changed: {exc}"),
                                    status_code=400)
            message = "automated sales tax " + ("on" if _truthy(form.get("enabled")) else "off")
        elif action == "clear_throttle":
            standin.clear_throttle(realm)
            message = "rate limit lifted"
        elif action == "throttle":
            standin.exhaust_throttle(realm)
            message = "rate limit used up: the next request gets 429"
        elif action == "expire_access":
            standin.expire_tokens(realm, refresh=False)
            message = "access tokens expired"
        elif action == "expire_all":
            standin.expire_tokens(realm, refresh=True)
            message = "access and refresh tokens expired"
        else:
            message = f"unknown action {action!r}"
    except QBOFault as exc:
        message = f"QuickBooks refused: {exc.errors[0]['code']} {exc.errors[0]['Detail']}"
    except (KeyError, ValueError) as exc:
        message = f"error: {exc}"
    return RedirectResponse("/_control/panel?" + urlencode({"msg": message}), status_code=303)


def create_app(config: StandInConfig | None = None) -> Starlette:
    """Build the stand-in app; ``app.state.standin`` is its ``QuickBooksStandIn`` (all state, in memory)."""
    standin = QuickBooksStandIn(config)
    realm = "/_control/realms/{realm}"
    entity = realm + "/entities/{entity}"
    routes = [
        Route("/connect/oauth2", authorize, methods=["GET"]),
        Route("/connect/oauth2/approve", approve, methods=["POST"]),
        Route("/oauth2/v1/tokens/bearer", token, methods=["POST"]),
        Route("/v2/oauth2/tokens/revoke", revoke, methods=["POST"]),
        Route("/v3/company/{realm}/{rest:path}", api, methods=["GET", "POST"]),
        Route("/_control/reset", _control(c_reset), methods=["POST"]),
        Route("/_control/config", _control(c_config), methods=["GET", "POST"]),
        Route("/_control/clock", _control(c_clock), methods=["GET"]),
        Route("/_control/clock/advance", _control(c_advance), methods=["POST"]),
        Route("/_control/realms", _control(c_realms), methods=["GET", "POST"]),
        Route(realm + "/tax", _control(c_tax), methods=["POST"]),
        Route(realm + "/stats", _control(c_stats), methods=["GET"]),
        Route(realm + "/requests", _control(c_requests), methods=["GET"]),
        Route(realm + "/throttle/clear", _control(c_throttle_clear), methods=["POST"]),
        Route(realm + "/throttle/exhaust", _control(c_throttle_exhaust), methods=["POST"]),
        Route(realm + "/tokens", _control(c_tokens), methods=["GET"]),
        Route(realm + "/tokens", _control(c_issue), methods=["POST"]),
        Route(realm + "/tokens/expire", _control(c_expire), methods=["POST"]),
        Route(realm + "/fail-next", _control(c_fail_next), methods=["POST"]),
        Route(realm + "/lose-next", _control(c_lose_next), methods=["POST"]),
        Route(entity, _control(c_entities), methods=["GET", "POST"]),
        Route(entity + "/{id}", _control(c_entity), methods=["GET", "POST"]),
        Route(entity + "/{id}/delete", _control(c_delete), methods=["POST"]),
        Route(entity + "/{id}/restore", _control(c_restore), methods=["POST"]),
        Route("/app/invoice", app_invoice, methods=["GET"]),
        Route("/_control/panel", panel, methods=["GET"]),
        Route("/_control/panel/action", panel_action, methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(LoopbackHostMiddleware)])
    app.state.standin = standin
    return app

