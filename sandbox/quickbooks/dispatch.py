"""What an admitted API request does to the company, by its path and method: a query, a batch (each item on its
own), CDC, CompanyInfo, reading one object, or a write (create, update, delete, void), counted on the realm."""

from __future__ import annotations

import json
from typing import Any

from sandbox.quickbooks import faults
from sandbox.quickbooks.books import Company
from sandbox.quickbooks.faults import QBOFault
from sandbox.quickbooks.objects import ENTITIES, QUERYABLE, canonical_entity, canonical_list
from sandbox.quickbooks.query import parse as parse_query
from sandbox.quickbooks.realm import BATCH_LIMIT, REQUEST_ID_LIMIT, ApiRequest, RealmState
from sandbox.quickbooks.wire import Reply, envelope_time, json_reply, parse_time


def dispatch(state: RealmState, request: ApiRequest, path: str, request_id: str | None, now: float) -> Reply:
    """The answer of an admitted request to ``path`` (query, batch, CDC, CompanyInfo, a read or a write). Raises
    QBOFault."""
    company = state.company
    segments = [s for s in path.split("/") if s]
    method = request.method
    if segments == ["query"] and method in ("GET", "POST"):
        text = request.params.get("query") if method == "GET" else request.body.decode("utf-8", "replace")
        if not text:
            raise faults.required("query")
        result = company.query(parse_query(text, QUERYABLE))
        return json_reply(200, {"QueryResponse": result, "time": envelope_time(now)})
    if segments == ["batch"] and method == "POST":
        return _batch(state, _json_body(request.body), request_id, now)
    if segments == ["cdc"] and method == "GET":
        return _cdc(company, request.params, now)
    if len(segments) == 2 and segments[0] == "companyinfo" and method == "GET":
        info = {"CompanyName": company.name, "LegalName": company.name, "Id": company.realm_id,
                "SyncToken": "0", "Country": "US", "domain": "QBO", "sparse": False}
        return json_reply(200, {"CompanyInfo": info, "time": envelope_time(now)})
    listed = canonical_list(segments[0]) if segments else None
    if listed is not None and len(segments) == 2 and method == "GET":  # an account, term or tax code too
        return json_reply(200, {listed: company.read(listed, segments[1]), "time": envelope_time(now)})
    entity = canonical_entity(segments[0]) if segments else None
    if entity is None:
        raise faults.unsupported(f"{method} /{path}")
    if len(segments) == 2 and method == "GET":
        return json_reply(200, {entity: company.read(entity, segments[1]), "time": envelope_time(now)})
    if len(segments) != 1 or method != "POST":
        raise faults.unsupported(f"{method} /{path}")
    body = _json_body(request.body)
    operation = (request.params.get("operation") or "").lower()
    obj = _write(state, entity, operation, body, now)
    return json_reply(200, {entity: obj, "time": envelope_time(now)})


def _write(state: RealmState, entity: str, operation: str, body: Any, now: float) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise faults.invalid_property(f"{entity} body is not an object")
    company = state.company
    if operation in ("", "create", "update"):
        if operation == "update" and body.get("Id") in (None, ""):
            raise faults.required("Id")
        result = company.create(entity, body, now) if operation == "create" else company.save(entity, body, now)
    elif operation == "delete":
        result = company.delete(entity, body, now)
    elif operation == "void":
        result = company.void(entity, body, now)
    else:
        raise faults.unsupported(operation)
    state.writes += 1
    return result


def _batch(state: RealmState, body: Any, request_id: str | None, now: float) -> Reply:
    items = body.get("BatchItemRequest") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise faults.batch_empty()
    if len(items) > BATCH_LIMIT:
        raise faults.batch_too_large(len(items), BATCH_LIMIT)
    answers: list[dict[str, Any]] = []
    for item in items:
        bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
        try:
            answers.append({**_batch_item(state, item, request_id, bid, now), "bId": bid})
        except QBOFault as exc:
            answers.append({"Fault": exc.fault(), "bId": bid})
    return json_reply(200, {"BatchItemResponse": answers, "time": envelope_time(now)})


def _batch_item(state: RealmState, item: Any, request_id: str | None, bid: str, now: float) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise faults.invalid_property("BatchItemRequest item is not an object")
    if request_id is not None and len(request_id + bid) > REQUEST_ID_LIMIT:
        raise faults.request_id_too_long(request_id + bid)
    if "Query" in item:
        return {"QueryResponse": state.company.query(parse_query(str(item["Query"]), QUERYABLE))}
    entity = next((e for e in ENTITIES.values() if e in item), None)
    if entity is None:
        raise faults.unsupported("batch item without a supported entity")
    operation = str(item.get("operation") or "").lower()
    return {entity: _write(state, entity, operation, item[entity], now)}


def _cdc(company: Company, params: dict[str, str], now: float) -> Reply:
    names = [n.strip() for n in (params.get("entities") or "").split(",") if n.strip()]
    if not names:
        raise faults.required("entities")
    if not params.get("changedSince"):
        raise faults.required("changedSince")
    entities = []
    for name in names:
        entity = canonical_entity(name)
        if entity is None:
            raise faults.unsupported(f"cdc for entity {name}")
        entities.append(entity)
    since = parse_time(params["changedSince"])
    if since is None:
        raise faults.invalid_property(f"changedSince is not a date-time: {params['changedSince']}")
    response = company.change_data(entities, since.timestamp(), now)
    return json_reply(200, {"CDCResponse": [{"QueryResponse": response}], "time": envelope_time(now)})


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise faults.invalid_property(f"the request body is not valid JSON ({exc})") from exc
