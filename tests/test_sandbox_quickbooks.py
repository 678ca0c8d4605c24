"""The QuickBooks Online + Intuit OAuth stand-in, over real HTTP (uvicorn on loopback, httpx as the client).

Each test resets the stand-in through its control API and checks the wire shapes a client sees: the OAuth dance,
CRUD, query, batch, CDC, idempotency, every fault shape, throttling, automated sales tax and injected failures.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from sandbox.quickbooks import DEFAULT_REALM, QuickBooksStandIn, StandInConfig, create_app
from sandbox.serve import RunningServer, serve_in_thread

CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"
REDIRECT = "http://127.0.0.1:9/oauth/quickbooks/callback"
SCOPE = "com.intuit.quickbooks.accounting"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
LOWER_CASE_401_KEYS = ["warnings", "intuitObject", "fault", "report", "queryResponse", "batchItemResponse",
                       "attachableResponse", "syncErrorResponse", "requestId", "time", "status", "cdcresponse"]


@dataclass
class QBO:
    """A client of the stand-in: the base URL, the in-process state, an httpx client and an access token."""

    url: str
    standin: QuickBooksStandIn
    http: httpx.Client
    token: str
    realm: str = DEFAULT_REALM

    def api(self, method: str, path: str, token: str | None = None, realm: str | None = None,
            **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", "Accept": "application/json"}
        params = {"minorversion": "75", **kwargs.pop("params", {})}
        return self.http.request(method, f"{self.url}/v3/company/{realm or self.realm}/{path}", headers=headers,
                                 params=params, **kwargs)

    def create(self, entity: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        response = self.api("POST", entity.lower(), json=body, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()[entity]

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"{self.url}/_control/{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def query(self, statement: str) -> dict[str, Any]:
        response = self.api("GET", "query", params={"query": statement})
        assert response.status_code == 200, response.text
        return response.json()["QueryResponse"]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[RunningServer, QuickBooksStandIn]]:
    app = create_app(StandInConfig())
    running = serve_in_thread(app)
    yield running, app.state.standin
    running.stop()


@pytest.fixture
def qbo(served: tuple[RunningServer, QuickBooksStandIn]) -> Iterator[QBO]:
    running, standin = served
    with httpx.Client(timeout=10) as http:
        assert http.post(f"{running.url}/_control/reset").json() == {"ok": True}
        tokens = http.post(f"{running.url}/_control/realms/{DEFAULT_REALM}/tokens").json()
        yield QBO(running.url, standin, http, tokens["access_token"])


def fault_of(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    """The single error of a JSON fault answer, after checking the envelope's exact shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"Fault", "time"}
    assert set(body["Fault"]) == {"Error", "type"}
    assert body["Fault"]["type"] == "ValidationFault"
    (error,) = body["Fault"]["Error"]
    assert set(error) == {"Message", "Detail", "code", "element"}
    return error


def setup_books(qbo: QBO) -> tuple[dict[str, Any], dict[str, Any]]:
    customer = qbo.create("Customer", {"DisplayName": "Example Builders Inc"})
    item = qbo.create("Item", {"Name": "Framing", "Type": "Service", "IncomeAccountRef": {"value": "79"}})
    return customer, item


def invoice_body(customer: dict[str, Any], item: dict[str, Any], **extra: Any) -> dict[str, Any]:
    line = {"DetailType": "SalesItemLineDetail", "Amount": 100.0,
            "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 2, "UnitPrice": 50,
                                    "TaxCodeRef": {"value": "TAX"}}}
    return {"CustomerRef": {"value": customer["Id"]}, "Line": [line], **extra}


# --- OAuth -----------------------------------------------------------------------------------------------------


def authorize_params(state: str = "st-1") -> dict[str, str]:
    return {"client_id": CLIENT_ID, "response_type": "code", "scope": SCOPE, "redirect_uri": REDIRECT,
            "state": state}


def get_code(qbo: QBO, realm: str | None = None) -> dict[str, str]:
    form = authorize_params()
    if realm:
        form["realm"] = realm
    response = qbo.http.post(f"{qbo.url}/connect/oauth2/approve", data=form)
    assert response.status_code == 302
    location = urlparse(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def token_call(qbo: QBO, form: dict[str, str], auth: str = BASIC, **headers: str) -> httpx.Response:
    return qbo.http.post(f"{qbo.url}/oauth2/v1/tokens/bearer", data=form,
                         headers={"Authorization": auth, "Accept": "application/json", **headers})


def test_oauth_dance_with_rotation_and_24h_grace(qbo: QBO) -> None:
    page = qbo.http.get(f"{qbo.url}/connect/oauth2", params=authorize_params())
    assert page.status_code == 200
    assert "Connect syncbot to QuickBooks (sandbox company Sandbox Builders LLC)" in page.text
    assert 'action="/connect/oauth2/approve"' in page.text and ">Connect</button>" in page.text

    callback = get_code(qbo)
    assert callback["state"] == "st-1" and callback["realmId"] == DEFAULT_REALM
    exchange = {"grant_type": "authorization_code", "code": callback["code"], "redirect_uri": REDIRECT}
    first = token_call(qbo, exchange, **{"x-include-refresh-token-hard-expires-in": "true"})
    assert first.status_code == 200
    tokens = first.json()
    assert set(tokens) == {"token_type", "expires_in", "refresh_token", "x_refresh_token_expires_in",
                           "access_token", "x_refresh_token_hard_expires_in"}
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 3600
    assert tokens["x_refresh_token_expires_in"] == 8726400
    assert 5 * 365 * 86400 - 5 <= tokens["x_refresh_token_hard_expires_in"] <= 5 * 365 * 86400

    info = qbo.api("GET", f"companyinfo/{DEFAULT_REALM}", token=tokens["access_token"])
    assert info.status_code == 200 and info.json()["CompanyInfo"]["CompanyName"] == "Sandbox Builders LLC"
    assert info.headers["intuit_tid"]

    reused = token_call(qbo, exchange)
    assert (reused.status_code, reused.json()) == (400, {"error": "invalid_grant"})

    refreshed = token_call(qbo, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != tokens["refresh_token"]
    assert "x_refresh_token_hard_expires_in" not in second
    # the replaced refresh token keeps working for 24 hours...
    qbo.control("POST", "clock/advance", {"seconds": 23 * 3600})
    assert token_call(qbo, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).status_code == 200
    # ... then dies, while the newest one still works
    qbo.control("POST", "clock/advance", {"seconds": 3601})
    dead = token_call(qbo, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert dead.status_code == 400
    assert dead.json() == {"error": "invalid_grant", "error_description": "Incorrect or invalid refresh token"}
    assert token_call(qbo, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}).status_code == 200
    # access tokens live an hour: the first one is long dead
    assert qbo.api("GET", f"companyinfo/{DEFAULT_REALM}", token=tokens["access_token"]).status_code == 401


def test_authorize_refusals_and_token_errors(qbo: QBO) -> None:
    unknown = qbo.http.get(f"{qbo.url}/connect/oauth2", params={**authorize_params(), "client_id": "nope"})
    assert unknown.status_code == 400 and "Unknown client_id" in unknown.text
    params = authorize_params()
    del params["state"]
    missing = qbo.http.get(f"{qbo.url}/connect/oauth2", params=params)
    assert missing.status_code == 400 and "state" in missing.text

    cancel = qbo.http.post(f"{qbo.url}/connect/oauth2/approve", data={**authorize_params(), "decision": "cancel"})
    assert cancel.status_code == 302 and "error=access_denied" in cancel.headers["location"]

    code = get_code(qbo)["code"]
    bad_auth = "Basic " + base64.b64encode(f"{CLIENT_ID}:wrong".encode()).decode()
    refused = token_call(qbo, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}, bad_auth)
    assert (refused.status_code, refused.json()) == (401, {"error": "invalid_client"})
    mismatch = token_call(qbo, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT + "x"})
    assert mismatch.status_code == 400 and mismatch.json()["error"] == "invalid_grant"

    late = get_code(qbo)["code"]
    qbo.control("POST", "clock/advance", {"seconds": 601})
    expired = token_call(qbo, {"grant_type": "authorization_code", "code": late, "redirect_uri": REDIRECT})
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"


def test_approve_can_choose_another_company(qbo: QBO) -> None:
    callback = get_code(qbo, realm="4620816365000000")
    assert callback["realmId"] == "4620816365000000"
    tokens = token_call(qbo, {"grant_type": "authorization_code", "code": callback["code"],
                              "redirect_uri": REDIRECT}).json()
    ok = qbo.api("GET", "companyinfo/4620816365000000", token=tokens["access_token"], realm="4620816365000000")
    assert ok.status_code == 200
    other = qbo.api("GET", f"companyinfo/{DEFAULT_REALM}", token=tokens["access_token"])
    assert other.status_code == 403 and other.headers["content-type"] == "application/xml"
    assert '<Error code="3100">' in other.text


def test_revoke_kills_the_whole_grant(qbo: QBO) -> None:
    tokens = qbo.control("POST", f"realms/{DEFAULT_REALM}/tokens")
    assert qbo.api("GET", "customer/1", token=tokens["access_token"]).status_code == 400  # authenticated: 610
    revoked = qbo.http.post(f"{qbo.url}/v2/oauth2/tokens/revoke", json={"token": tokens["refresh_token"]},
                            headers={"Authorization": BASIC, "Accept": "application/json"})
    assert revoked.status_code == 200
    assert qbo.api("GET", "customer/1", token=tokens["access_token"]).status_code == 401
    again = token_call(qbo, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_control_token_expiry(qbo: QBO) -> None:
    tokens = qbo.control("POST", f"realms/{DEFAULT_REALM}/tokens")
    assert qbo.control("POST", f"realms/{DEFAULT_REALM}/tokens/expire", {"refresh": False})["access"] == 2
    assert qbo.api("GET", "customer/1", token=tokens["access_token"]).status_code == 401
    fresh = token_call(qbo, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200
    qbo.control("POST", f"realms/{DEFAULT_REALM}/tokens/expire", {"refresh": True})
    dead = token_call(qbo, {"grant_type": "refresh_token", "refresh_token": fresh.json()["refresh_token"]})
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
    info = qbo.control("GET", f"realms/{DEFAULT_REALM}/tokens")
    assert all(not t["valid"] for grant in info for t in grant["access_tokens"] + grant["refresh_tokens"])


def test_401_has_the_lower_case_shape(qbo: QBO) -> None:
    no_header = qbo.http.get(f"{qbo.url}/v3/company/{qbo.realm}/customer/1")
    for response in (qbo.api("GET", "customer/1", token="not-a-token"), no_header):
        assert response.status_code == 401
        body = response.json()
        assert list(body) == LOWER_CASE_401_KEYS
        assert body["fault"] == {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                                            "detail": None, "code": "3200", "element": None}],
                                 "type": "AUTHENTICATION"}
        assert isinstance(body["time"], int) and body["batchItemResponse"] == [] and body["cdcresponse"] == []
        assert response.headers["intuit_tid"]


# --- CRUD, query, batch, CDC -----------------------------------------------------------------------------------


def test_create_read_sparse_and_full_update_and_stale_token(qbo: QBO) -> None:
    created = qbo.api("POST", "customer", json={"DisplayName": "Acme Corp", "PrimaryEmailAddr": {"Address": "a@x.io"},
                                                 "CompanyName": "Acme"})
    assert created.status_code == 200 and created.headers["intuit_tid"].startswith("1-")
    body = created.json()
    assert set(body) == {"Customer", "time"}
    customer = body["Customer"]
    assert customer["SyncToken"] == "0" and customer["domain"] == "QBO" and customer["sparse"] is False
    assert set(customer["MetaData"]) == {"CreateTime", "LastUpdatedTime"}

    read = qbo.api("GET", f"customer/{customer['Id']}").json()["Customer"]
    assert read == customer

    sparse = qbo.create("Customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True,
                                     "CompanyName": "Acme Holdings"})
    assert sparse["SyncToken"] == "1" and sparse["CompanyName"] == "Acme Holdings"
    assert sparse["PrimaryEmailAddr"] == {"Address": "a@x.io"}

    full = qbo.create("Customer", {"Id": customer["Id"], "SyncToken": "1", "DisplayName": "Acme Corp"})
    assert full["SyncToken"] == "2" and "PrimaryEmailAddr" not in full and "CompanyName" not in full

    error = fault_of(qbo.api("POST", "customer", json={"Id": customer["Id"], "SyncToken": "1", "sparse": True,
                                                        "CompanyName": "late"}))
    assert error["code"] == "5010" and error["Message"] == "Stale Object Error"
    assert qbo.standin.entity(qbo.realm, "Customer", customer["Id"])["SyncToken"] == "2"


def test_query_language(qbo: QBO) -> None:
    for name in ("Acme Corp", "O'Brien Builders", "Zenith LLC", "Beta Roofing"):
        qbo.create("Customer", {"DisplayName": name})
    escaped = qbo.query("select * from Customer where DisplayName = 'O\\'Brien Builders'")
    assert [c["DisplayName"] for c in escaped["Customer"]] == ["O'Brien Builders"]
    assert escaped["startPosition"] == 1 and escaped["maxResults"] == 1
    assert qbo.query("SELECT * FROM customer WHERE displayname = 'acme corp'")["Customer"][0]["DisplayName"] == \
        "Acme Corp"
    both = qbo.query("select * from Customer where DisplayName IN ('Zenith LLC', 'Beta Roofing') and Active = true")
    assert sorted(c["DisplayName"] for c in both["Customer"]) == ["Beta Roofing", "Zenith LLC"]
    page = qbo.query("select * from Customer orderby DisplayName STARTPOSITION 2 MAXRESULTS 2")
    assert [c["DisplayName"] for c in page["Customer"]] == ["Beta Roofing", "O'Brien Builders"]
    assert (page["startPosition"], page["maxResults"]) == (2, 2)
    assert qbo.query("select * from Customer where DisplayName = 'Nobody'") == {}
    assert qbo.query("select count(*) from Customer") == {"totalCount": 4}

    qbo.control("POST", f"realms/{qbo.realm}/entities/customer/1/delete")  # made inactive by a user
    assert qbo.query("select count(*) from Customer") == {"totalCount": 3}
    assert len(qbo.query("select * from Customer where Active = false")["Customer"]) == 1

    bad = fault_of(qbo.api("GET", "query", params={"query": "select * from Customer where DisplayName = 'a' or "
                                                             "DisplayName = 'b'"}))
    assert bad["code"] == "4000"
    assert fault_of(qbo.api("GET", "query", params={"query": "select * from Customer maxresults 1001"}))["code"] \
        == "4001"


def test_batch_mixed_results_and_1040(qbo: QBO) -> None:
    customer, item = setup_books(qbo)
    first = qbo.create("Invoice", invoice_body(customer, item, DocNumber="JS-1001"))
    request = {"BatchItemRequest": [
        {"bId": "bid1", "operation": "create", "Invoice": invoice_body(customer, item, DocNumber="JS-1002")},
        {"bId": "bid2", "operation": "create", "Invoice": invoice_body(customer, item, DocNumber="JS-1001")},
        {"bId": "bid3", "Query": "select * from Invoice where DocNumber = 'JS-1001'"},
        {"bId": "bid4", "operation": "update", "Invoice": {"Id": first["Id"], "SyncToken": "7", "sparse": True,
                                                            "PrivateNote": "x"}},
        {"bId": "bid5", "operation": "delete", "Customer": {"Id": customer["Id"], "SyncToken": "0"}},
    ]}
    response = qbo.api("POST", "batch", json=request)
    assert response.status_code == 200
    items = {i["bId"]: i for i in response.json()["BatchItemResponse"]}
    assert items["bid1"]["Invoice"]["DocNumber"] == "JS-1002"
    assert items["bid2"]["Fault"]["type"] == "ValidationFault"
    assert items["bid2"]["Fault"]["Error"][0]["code"] == "6140"
    assert items["bid3"]["QueryResponse"]["Invoice"][0]["Id"] == first["Id"]
    assert items["bid4"]["Fault"]["Error"][0]["code"] == "5010"
    assert items["bid5"]["Fault"]["Error"][0]["code"] == "500"
    assert qbo.standin.write_count(qbo.realm) == 4  # 3 set-up creates + bid1

    too_many = {"BatchItemRequest": [{"bId": str(i), "Query": "select * from Item"} for i in range(31)]}
    error = fault_of(qbo.api("POST", "batch", json=too_many))
    assert error["code"] == "1040"


def test_cdc_reports_changes_and_deletions(qbo: QBO) -> None:
    start = qbo.control("GET", "clock")["now"]
    customer, item = setup_books(qbo)
    invoice = qbo.create("Invoice", invoice_body(customer, item))
    deleted = qbo.api("POST", "invoice", params={"operation": "delete"},
                      json={"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]})
    assert deleted.json()["Invoice"] == {"Id": invoice["Id"], "status": "Deleted", "domain": "QBO"}
    cdc = qbo.api("GET", "cdc", params={"entities": "Customer,Invoice,Payment", "changedSince": "2000-01-01"})
    assert fault_of(cdc)["Detail"].endswith("which is older than fixed days is not supported.")

    qbo.control("POST", "clock/advance", {"seconds": 1800})  # less than the access token's hour
    later = qbo.control("GET", "clock")["now"]
    qbo.control("POST", f"realms/{qbo.realm}/entities/customer/{customer['Id']}", {"DisplayName": "Renamed Inc"})

    answer = qbo.api("GET", "cdc", params={"entities": "Customer,Invoice,Payment", "changedSince": start}).json()
    responses = answer["CDCResponse"][0]["QueryResponse"]
    assert [c["DisplayName"] for c in responses[0]["Customer"]] == ["Renamed Inc"]
    assert responses[0]["totalCount"] == 1
    (stub,) = responses[1]["Invoice"]
    assert stub["Id"] == invoice["Id"] and stub["status"] == "Deleted" and stub["domain"] == "QBO"
    assert set(stub["MetaData"]) == {"LastUpdatedTime"}
    assert responses[2] == {"startPosition": 1, "maxResults": 0, "totalCount": 0}

    recent = qbo.api("GET", "cdc", params={"entities": "Invoice,Customer", "changedSince": later}).json()
    recent_responses = recent["CDCResponse"][0]["QueryResponse"]
    assert "Invoice" not in recent_responses[0] and len(recent_responses[1]["Customer"]) == 1

    gone = fault_of(qbo.api("GET", f"invoice/{invoice['Id']}"))
    assert gone["code"] == "610" and gone["Message"] == "Object Not Found"


def test_cdc_answers_at_most_1000_objects(qbo: QBO) -> None:
    start = qbo.control("GET", "clock")["now"]
    for n in range(1001):
        qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": f"Bulk {n}"})
    qbo.standin.create_entity(qbo.realm, "Item", {"Name": "Late", "IncomeAccountRef": {"value": "1"}})
    answer = qbo.api("GET", "cdc", params={"entities": "Customer,Item", "changedSince": start}).json()
    customers, items = answer["CDCResponse"][0]["QueryResponse"]
    assert len(customers["Customer"]) == 1000 and customers["Customer"][-1]["DisplayName"] == "Bulk 999"
    assert "Item" not in items  # the oldest changes come first


def test_requestid_replay_is_byte_for_byte_and_writes_once(qbo: QBO) -> None:
    body = {"DisplayName": "Once Only LLC"}
    first = qbo.api("POST", "customer", params={"requestid": "rq-123"}, json=body)
    second = qbo.api("POST", "customer", params={"requestid": "rq-123"}, json=body)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert qbo.standin.write_count(qbo.realm) == 1
    assert len(qbo.standin.entities(qbo.realm, "Customer")) == 1

    too_long = fault_of(qbo.api("POST", "customer", params={"requestid": "x" * 51}, json={"DisplayName": "B"}))
    assert too_long["code"] == "6000" and "cannot enter more than 50 characters in the request_id field" in \
        too_long["Detail"]
    batch_long = qbo.api("POST", "batch", params={"requestid": "y" * 37},
                         json={"BatchItemRequest": [{"bId": "1", "Query": "select * from Item"}]})
    assert fault_of(batch_long)["code"] == "6000"
    per_item = qbo.api("POST", "batch", params={"requestid": "z" * 32}, json={"BatchItemRequest": [
        {"bId": "0f8fad5b-d9cb-469f-a165-70867728950e", "operation": "create", "Customer": {"DisplayName": "C"}}]})
    item = per_item.json()["BatchItemResponse"][0]
    assert per_item.status_code == 200 and item["Fault"]["Error"][0]["code"] == "6000"
    assert "which is 68 characters" in item["Fault"]["Error"][0]["Detail"]
    assert qbo.standin.write_count(qbo.realm) == 1


# --- faults ------------------------------------------------------------------------------------------------


def test_fault_shapes(qbo: QBO) -> None:
    customer, item = setup_books(qbo)
    dup = fault_of(qbo.api("POST", "customer", json={"DisplayName": "example builders INC"}))
    assert dup == {"Message": "Duplicate Name Exists Error", "code": "6240", "element": "",
                   "Detail": "The name supplied already exists. : Another customer, vendor or employee is already "
                             "using this name. Please use a different name."}
    assert fault_of(qbo.api("POST", "item", json={"Name": "framing", "IncomeAccountRef": {"value": "1"}}))["code"] \
        == "6240"

    qbo.create("Invoice", invoice_body(customer, item, DocNumber="JS-1"))
    doc = fault_of(qbo.api("POST", "invoice", json=invoice_body(customer, item, DocNumber="JS-1")))
    assert doc["code"] == "6140" and doc["Message"] == "Duplicate Document Number Error"
    assert doc["Detail"].startswith("Duplicate Document Number Error : You must specify a different number.")

    missing_line = fault_of(qbo.api("POST", "invoice", json={"CustomerRef": {"value": customer["Id"]}}))
    assert missing_line == {"Message": "Required param missing, need to supply the required value for the API",
                            "Detail": "Required parameter Line is missing in the request", "code": "2020",
                            "element": "Line"}
    no_customer = fault_of(qbo.api("POST", "invoice", json={"Line": invoice_body(customer, item)["Line"]}))
    assert (no_customer["code"], no_customer["element"]) == ("2020", "CustomerRef")
    no_account = fault_of(qbo.api("POST", "item", json={"Name": "Nails", "Type": "NonInventory"}))
    assert (no_account["code"], no_account["element"]) == ("2020", "IncomeAccountRef")
    no_name = fault_of(qbo.api("POST", "customer", json={"CompanyName": "Only a company"}))
    assert no_name["code"] == "6080"
    unknown_ref = fault_of(qbo.api("POST", "invoice", json=invoice_body({"Id": "999"}, item)))
    assert (unknown_ref["code"], unknown_ref["element"]) == ("2500", "CustomerRef")

    read_unknown = fault_of(qbo.api("GET", "customer/999"))
    assert read_unknown["code"] == "610" and read_unknown["Detail"].startswith(
        "Object Not Found : Something you're trying to use has been made inactive.")

    qbo.control("POST", f"realms/{qbo.realm}/entities/customer/{customer['Id']}/delete")
    inactive = fault_of(qbo.api("POST", "invoice", json=invoice_body(customer, item)))
    assert (inactive["code"], inactive["element"]) == ("610", "CustomerRef")
    # the inactive customer's name is free again
    assert qbo.create("Customer", {"DisplayName": "Example Builders Inc"})["SyncToken"] == "0"


def test_user_deletes_and_edits_make_api_writes_fail(qbo: QBO) -> None:
    customer, item = setup_books(qbo)
    invoice = qbo.create("Invoice", invoice_body(customer, item))
    edited = qbo.control("POST", f"realms/{qbo.realm}/entities/invoice/{invoice['Id']}", {"PrivateNote": "by hand"})
    assert edited["Invoice"]["SyncToken"] == "1"
    stale = fault_of(qbo.api("POST", "invoice", json={"Id": invoice["Id"], "SyncToken": "0", "sparse": True,
                                                       "PrivateNote": "ours"}))
    assert stale["code"] == "5010"
    qbo.control("POST", f"realms/{qbo.realm}/entities/invoice/{invoice['Id']}/delete")
    deleted = fault_of(qbo.api("POST", "invoice", json={"Id": invoice["Id"], "SyncToken": "1", "sparse": True,
                                                         "PrivateNote": "ours"}))
    assert deleted["code"] == "610" and "deleted" in deleted["Detail"]
    restored = qbo.control("POST", f"realms/{qbo.realm}/entities/invoice/{invoice['Id']}/restore")
    assert restored["Invoice"]["SyncToken"] == "2"

    qbo.control("POST", f"realms/{qbo.realm}/entities/item/{item['Id']}/delete")
    line_item = fault_of(qbo.api("POST", "invoice", json=invoice_body(customer, item)))
    assert (line_item["code"], line_item["element"]) == ("610", "Line.SalesItemLineDetail.ItemRef")

    existing = qbo.control("POST", f"realms/{qbo.realm}/entities/customer", {"DisplayName": "Acme Corp"})
    assert existing["Customer"]["DisplayName"] == "Acme Corp"
    assert fault_of(qbo.api("POST", "customer", json={"DisplayName": "Acme Corp"}))["code"] == "6240"
    clash = qbo.http.post(f"{qbo.url}/_control/realms/{qbo.realm}/entities/customer/{existing['Customer']['Id']}",
                          json={"DisplayName": "Example Builders Inc"})
    assert clash.status_code == 400 and clash.json()["Fault"]["Error"][0]["code"] == "6240"


def test_invoice_void_and_payment_linking(qbo: QBO) -> None:
    customer, item = setup_books(qbo)
    invoice = qbo.create("Invoice", invoice_body(customer, item))
    assert invoice["Balance"] == 100.0
    link = [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    payment = qbo.create("Payment", {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 40.0,
                                     "TxnDate": "2026-01-02", "Line": [{"Amount": 40.0, "LinkedTxn": link}]})
    assert payment["UnappliedAmt"] == 0.0
    after = qbo.api("GET", f"invoice/{invoice['Id']}").json()["Invoice"]
    assert after["Balance"] == 60.0 and after["SyncToken"] == "1"
    assert after["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]

    over = fault_of(qbo.api("POST", "payment", json={"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 70,
                                                      "Line": [{"Amount": 70, "LinkedTxn": [
                                                          {"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]}))
    assert over["code"] == "6000"
    qbo.api("POST", "payment", params={"operation": "delete"}, json={"Id": payment["Id"], "SyncToken": "0"})
    assert qbo.api("GET", f"invoice/{invoice['Id']}").json()["Invoice"]["Balance"] == 100.0

    voided = qbo.api("POST", "invoice", params={"operation": "void"}, json={"Id": invoice["Id"], "SyncToken": "2"})
    assert voided.status_code == 200, voided.text
    assert voided.json()["Invoice"]["TotalAmt"] == 0.0 and voided.json()["Invoice"]["PrivateNote"] == "Voided"

    qbo.control("POST", f"realms/{qbo.realm}/entities/invoice/{invoice['Id']}/delete")
    unlinked = fault_of(qbo.api("POST", "payment", json={"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 5,
                                                          "Line": [{"Amount": 5, "LinkedTxn": [
                                                              {"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]}))
    assert (unlinked["code"], unlinked["Message"]) == ("620", "TxnID Cannot Be Linked")
    assert fault_of(qbo.api("POST", "customer", params={"operation": "delete"},
                            json={"Id": customer["Id"], "SyncToken": "0"}))["code"] == "500"


def test_automated_sales_tax_changes_the_total(qbo: QBO) -> None:
    customer, item = setup_books(qbo)
    lines = [
        {"DetailType": "SalesItemLineDetail",
         "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 3, "UnitPrice": 33.335,
                                 "TaxCodeRef": {"value": "TAX"}}},
        {"DetailType": "SalesItemLineDetail", "Amount": 50.0,
         "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "TaxCodeRef": {"value": "NON"}}},
    ]
    sent = {"CustomerRef": {"value": customer["Id"]}, "Line": lines, "TxnTaxDetail": {"TotalTax": 8.0},
            "TotalAmt": 1.0}
    manual = qbo.create("Invoice", {**sent, "DocNumber": "T-1"})
    assert manual["Line"][0]["Amount"] == 100.01  # round(3 * 33.335, 2), half up
    assert manual["Line"][-1] == {"Amount": 150.01, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
    assert manual["TxnTaxDetail"]["TotalTax"] == 8.0 and manual["TotalAmt"] == 158.01

    qbo.control("POST", f"realms/{qbo.realm}/tax", {"enabled": True, "rate": 8.875})
    automated = qbo.create("Invoice", {**sent, "DocNumber": "T-2"})
    assert automated["TxnTaxDetail"]["TotalTax"] == 8.88  # 100.01 * 8.875% = 8.8759 -> 8.88
    assert automated["TotalAmt"] == 158.89 and automated["Balance"] == 158.89
    assert automated["TxnTaxDetail"]["TaxLine"][0]["TaxLineDetail"]["TaxPercent"] == 8.875

    wrong = {"DetailType": "SalesItemLineDetail", "Amount": 10.0,
             "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 3, "UnitPrice": 3}}
    mismatch = fault_of(qbo.api("POST", "invoice", json={"CustomerRef": {"value": customer["Id"]}, "Line": [wrong]}))
    assert mismatch["code"] == "6070"


# --- throttling ------------------------------------------------------------------------------------------------


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/xml"
    text = response.text
    assert text.startswith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse '
                           'xmlns="http://schema.intuit.com/finance/v3" time="')
    assert text.endswith('<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; '
                         'errorCode=003001; statusCode=429</Message><Detail>The request limit was reached.</Detail>'
                         "</Error></Fault></IntuitResponse>")
    assert "retry-after" not in response.headers


def test_throttle_per_item_metering_and_window(qbo: QBO) -> None:
    qbo.control("POST", "config", {"minute_seconds": 1.0, "requests_per_minute": 5})
    for n in range(3):
        assert qbo.api("POST", "customer", json={"DisplayName": f"C{n}"}).status_code == 200
    batch = {"BatchItemRequest": [{"bId": str(i), "operation": "create", "Customer": {"DisplayName": f"B{i}"}}
                                  for i in range(3)]}
    assert_throttled(qbo.api("POST", "batch", json=batch))  # 3 used + 3 items > 5
    assert qbo.standin.write_count(qbo.realm) == 3  # not executed
    assert qbo.api("GET", "customer/1").status_code == 200
    assert qbo.api("GET", "customer/1").status_code == 200  # 5 used: the 429 cost nothing
    assert_throttled(qbo.api("GET", "customer/1"))
    assert qbo.control("GET", f"realms/{qbo.realm}/stats")["throttled"] == 2
    time.sleep(1.05)  # the window slides past every admitted request
    assert qbo.api("POST", "batch", json=batch).status_code == 200
    assert qbo.standin.write_count(qbo.realm) == 6


def test_throttle_per_request_metering_and_batch_limit(qbo: QBO) -> None:
    qbo.control("POST", "config", {"minute_seconds": 30, "requests_per_minute": 5, "batch_per_minute": 2,
                                   "batch_metering": "per_request", "retry_after_header": True})
    batch = {"BatchItemRequest": [{"bId": str(i), "Query": "select * from Customer"} for i in range(10)]}
    assert qbo.api("POST", "batch", json=batch).status_code == 200
    assert qbo.api("POST", "batch", json=batch).status_code == 200
    third = qbo.api("POST", "batch", json=batch)
    assert third.status_code == 429 and 1 <= int(third.headers["retry-after"]) <= 30
    for _ in range(3):
        assert qbo.api("GET", "query", params={"query": "select * from Item"}).status_code == 200
    assert qbo.api("GET", "query", params={"query": "select * from Item"}).status_code == 429
    lifted = qbo.control("POST", f"realms/{qbo.realm}/throttle/clear")
    assert lifted["window_used"] == 0 and lifted["throttled"] == 2
    assert qbo.api("GET", "query", params={"query": "select * from Item"}).status_code == 200


def test_throttle_concurrency(qbo: QBO) -> None:
    qbo.control("POST", "config", {"max_concurrent": 3, "latency_seconds": 0.8})

    def call(_: int) -> int:
        with httpx.Client(timeout=10) as own:
            return own.get(f"{qbo.url}/v3/company/{qbo.realm}/query", params={"query": "select * from Item"},
                           headers={"Authorization": f"Bearer {qbo.token}"}).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(call, range(6)))
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert qbo.standin.stats(qbo.realm)["in_flight"] == 0


# --- injected failures -----------------------------------------------------------------------------------------


def test_fail_next_answers_raw_bodies_for_matching_paths(qbo: QBO) -> None:
    page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body>\r\n</html>\r\n"
    qbo.control("POST", f"realms/{qbo.realm}/fail-next", {"count": 2, "status": 502, "content_type": "text/html",
                                                          "body": page, "path_contains": "invoice"})
    assert qbo.api("GET", "customer/1").status_code == 400  # another path: normal 610
    for _ in range(2):
        failed = qbo.api("GET", "invoice/1")
        assert (failed.status_code, failed.text, failed.headers["content-type"]) == (502, page, "text/html")
    assert qbo.api("GET", "invoice/1").status_code == 400
    qbo.control("POST", f"realms/{qbo.realm}/fail-next", {"status": 200, "content_type": "application/json",
                                                          "body": '{"Customer":{"Id":'})
    truncated = qbo.api("POST", "customer", json={"DisplayName": "Never Written"})
    assert truncated.status_code == 200 and truncated.text == '{"Customer":{"Id":'
    assert qbo.standin.write_count(qbo.realm) == 0
    log = qbo.control("GET", f"realms/{qbo.realm}/requests")
    assert [e["outcome"] for e in log] == ["fault", "injected", "injected", "fault", "injected"]


def test_lose_next_does_the_work_then_answers_504(qbo: QBO) -> None:
    qbo.control("POST", f"realms/{qbo.realm}/lose-next", {"count": 1})
    lost = qbo.api("POST", "customer", params={"requestid": "lost-1"}, json={"DisplayName": "Lost Answer Co"})
    assert lost.status_code == 504 and lost.headers["content-type"] == "text/html"
    assert "504 Gateway Time-out" in lost.text
    assert [c["DisplayName"] for c in qbo.standin.entities(qbo.realm, "Customer")] == ["Lost Answer Co"]
    resent = qbo.api("POST", "customer", params={"requestid": "lost-1"}, json={"DisplayName": "Lost Answer Co"})
    assert resent.status_code == 200 and resent.json()["Customer"]["DisplayName"] == "Lost Answer Co"
    assert qbo.standin.write_count(qbo.realm) == 1
    without_id = qbo.api("POST", "customer", json={"DisplayName": "Lost Answer Co"})
    assert fault_of(without_id)["code"] == "6240"


# --- control surface -------------------------------------------------------------------------------------------


def test_control_panel_and_config(qbo: QBO) -> None:
    setup_books(qbo)
    panel = qbo.http.get(f"{qbo.url}/_control/panel")
    assert panel.status_code == 200 and "Example Builders Inc" in panel.text and "Lift rate limit" in panel.text
    renamed = qbo.http.post(f"{qbo.url}/_control/panel/action",
                            data={"realm": qbo.realm, "action": "rename", "entity": "Customer", "id": "1",
                                  "value": "Panel Renamed LLC"})
    assert renamed.status_code == 303 and renamed.headers["location"].startswith("/_control/panel")
    assert qbo.standin.entity(qbo.realm, "Customer", "1")["DisplayName"] == "Panel Renamed LLC"
    qbo.http.post(f"{qbo.url}/_control/panel/action", data={"realm": qbo.realm, "action": "tax", "enabled": "1",
                                                            "rate": "7.25"})
    realm = next(r for r in qbo.control("GET", "realms") if r["realm_id"] == qbo.realm)
    assert realm["tax_enabled"] is True and realm["tax_rate"] == 7.25
    qbo.http.post(f"{qbo.url}/_control/panel/action", data={"realm": qbo.realm, "action": "throttle"})
    assert_throttled(qbo.api("GET", "customer/1"))
    qbo.http.post(f"{qbo.url}/_control/panel/action", data={"realm": qbo.realm, "action": "clear_throttle"})
    assert qbo.api("GET", "customer/1").status_code == 200

    assert qbo.control("POST", "config", {"requests_per_minute": 7})["requests_per_minute"] == 7
    bad = qbo.http.post(f"{qbo.url}/_control/config", json={"batch_metering": "sometimes"})
    assert bad.status_code == 400
    listed = qbo.control("GET", f"realms/{qbo.realm}/entities/Customer")
    assert [c["DisplayName"] for c in listed["Customer"]] == ["Panel Renamed LLC"]
    assert json.loads(json.dumps(qbo.control("GET", f"realms/{qbo.realm}/stats")))["writes"] == 2

    assert "Income accounts" in panel.text and "Permits and Fees Income" in panel.text
    assert "Cost of Goods Sold" not in panel.text, "the panel lists the income accounts"
    qbo.http.post(f"{qbo.url}/_control/panel/action", data={"realm": qbo.realm, "action": "delete",
                                                            "entity": "Account", "id": "92"})
    assert qbo.standin.entity(qbo.realm, "Account", "92")["Active"] is False  # made inactive from the panel
    assert "92" not in [a["Id"] for a in qbo.query("select * from Account where AccountType = 'Income'")["Account"]]


def test_control_refuses_other_sites_bad_tax_rates_and_unknown_companies(qbo: QBO) -> None:
    before = next(r for r in qbo.control("GET", "realms") if r["realm_id"] == qbo.realm)
    for rate in (-5, 100.5, "NaN", "abc"):
        bad = qbo.http.post(f"{qbo.url}/_control/realms/{qbo.realm}/tax", json={"enabled": True, "rate": rate})
        assert bad.status_code == 400 and "error" in bad.json(), rate
    panel = qbo.http.post(f"{qbo.url}/_control/panel/action",
                          data={"realm": qbo.realm, "action": "tax", "enabled": "1", "rate": "-5"})
    assert panel.status_code == 400 and "percentage from 0 to 100" in panel.text and "<h1>" in panel.text
    after = next(r for r in qbo.control("GET", "realms") if r["realm_id"] == qbo.realm)
    assert (after["tax_enabled"], after["tax_rate"]) == (before["tax_enabled"], before["tax_rate"])

    unknown = qbo.http.get(f"{qbo.url}/_control/realms/123/stats")
    assert unknown.status_code == 404 and "no company 123" in unknown.json()["error"]
    assert qbo.http.get(f"{qbo.url}/_control/realms/123/requests").status_code == 404
    assert "123" not in [r["realm_id"] for r in qbo.control("GET", "realms")], "reading made no company"

    # a page of another site may neither post the panel's forms nor the JSON API
    cross = qbo.http.post(f"{qbo.url}/_control/panel/action", data={"realm": qbo.realm, "action": "expire_all"},
                          headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
    assert cross.status_code == 403
    as_text = qbo.http.post(f"{qbo.url}/_control/realms/{qbo.realm}/tokens/expire", content='{"refresh": true}',
                            headers={"Content-Type": "text/plain"})
    assert as_text.status_code == 415
    assert qbo.http.post(f"{qbo.url}/_control/reset", headers={"Origin": "https://evil.example"}).status_code == 403
    assert qbo.http.get(f"{qbo.url}/_control/realms/{qbo.realm}/stats").status_code == 200


def test_every_request_with_a_host_that_is_not_loopback_is_refused(qbo: QBO) -> None:
    """DNS rebinding: GET /_control/realms/{realm}/tokens lists tokens; a page of a domain resolving to 127.0.0.1
    is same-origin to the browser and could read it. Every request must name loopback in Host."""
    port = qbo.url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1.nip.io:{port}", f"evil.example:{port}", f"127.x:{port}", "[::2]"):
        for path in (f"/_control/realms/{qbo.realm}/tokens", "/_control/panel", "/_control/clock",
                     f"/v3/company/{qbo.realm}/customer/1"):
            answer = qbo.http.get(f"{qbo.url}{path}", headers={"Host": host, "Authorization": f"Bearer {qbo.token}"})
            assert answer.status_code == 403 and "loopback" in answer.text, (host, path)
            assert qbo.token not in answer.text
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert qbo.http.get(f"{qbo.url}/_control/realms/{qbo.realm}/tokens",
                            headers={"Host": host}).status_code == 200, host


def test_malformed_numbers_answer_400_and_change_nothing(qbo: QBO, tmp_path: Any) -> None:
    """NaN, infinity, text or absurd values in any numeric control input: 400 with a sentence, nothing changed
    (POST clock/advance {"seconds": "nan"} once answered 400 after applying it, and GET clock was 400 forever)."""
    clock, config = qbo.control("GET", "clock"), qbo.control("GET", "config")
    stats = qbo.control("GET", f"realms/{qbo.realm}/stats")
    realm = f"realms/{qbo.realm}"
    bad = [("clock/advance", {"seconds": v}) for v in ("nan", "1e309", -5, "abc", 10**12, None, [1])]
    bad += [("config", {name: value}) for name in ("minute_seconds", "requests_per_minute", "latency_seconds",
                                                   "max_concurrent", "access_token_lifetime")
            for value in ("nan", "inf", -1, "1e309")]
    bad += [("config", {"client_id": {"a": 1}}), ("config", {"requests_per_minute": 7, "batch_metering": "x"})]
    bad += [(f"{realm}/fail-next", {"count": "nan"}), (f"{realm}/fail-next", {"status": "inf"}),
            (f"{realm}/fail-next", {"status": 42}), (f"{realm}/fail-next", {"headers": {"X": 5}}),
            (f"{realm}/fail-next", {"headers": {"X": "a\r\nb"}}), (f"{realm}/fail-next", {"body": {"a": 1}}),
            (f"{realm}/lose-next", {"count": -1}), (f"{realm}/lose-next", {"path_contains": 5}),
            ("realms", {"realm_id": {"x": 1}}), ("realms", {"realm_id": "42", "name": []})]
    for path, body in bad:
        answer = qbo.http.post(f"{qbo.url}/_control/{path}", content=json.dumps(body),
                               headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json()["error"], (path, body, answer.text)
    for raw in ('{"seconds": NaN}', '{"seconds": Infinity}', '{"seconds": -Infinity}'):
        answer = qbo.http.post(f"{qbo.url}/_control/clock/advance", content=raw,
                               headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, raw
    after = qbo.control("GET", "clock")
    assert after["offset_seconds"] == clock["offset_seconds"] and qbo.control("GET", "config") == config
    assert qbo.control("GET", f"realms/{qbo.realm}/stats") == stats
    assert "42" not in [r["realm_id"] for r in qbo.control("GET", "realms")]
    assert qbo.http.get(f"{qbo.url}/_control/panel").status_code == 200
    assert qbo.control("POST", "clock/advance", {"seconds": 60})["offset_seconds"] == clock["offset_seconds"] + 60


def test_a_saved_state_with_a_non_finite_clock_or_config_is_refused(qbo: QBO, tmp_path: Any) -> None:
    import dataclasses
    import pickle

    saved = tmp_path / "qbo.pickle"
    qbo.standin.save_state(saved)
    fresh = QuickBooksStandIn()
    fresh.load_state(saved)
    for change in ({"clock_offset": float("nan")}, {"clock_offset": float("inf")}, {"clock_offset": "x"},
                   {"config": dataclasses.replace(StandInConfig(), minute_seconds=float("nan"))},
                   {"config": dataclasses.replace(StandInConfig(), requests_per_minute=-1)},
                   {"realms": []}):
        data = {**pickle.loads(saved.read_bytes()), **change}
        corrupt = tmp_path / "corrupt.pickle"
        corrupt.write_bytes(pickle.dumps(data))
        with pytest.raises(ValueError, match="QuickBooks stand-in state"):
            fresh.load_state(corrupt)
    assert json.dumps(fresh.clock(), allow_nan=False) and fresh.config_dict() == StandInConfig().__dict__


def test_unknown_realms_are_404_on_every_realm_route(qbo: QBO) -> None:
    """Every /_control/realms/{realm}/... route and the panel's actions: a company the stand-in does not have is
    404 and never created (the panel's clear_throttle once said "rate limit lifted" for realm=nope)."""
    routes = [("GET", "stats"), ("GET", "requests"), ("GET", "tokens"), ("POST", "tokens"), ("POST", "tax"),
              ("POST", "throttle/clear"), ("POST", "throttle/exhaust"), ("POST", "tokens/expire"),
              ("POST", "fail-next"), ("POST", "lose-next"), ("GET", "entities/Customer"),
              ("GET", "entities/Customer/1"), ("POST", "entities/Customer/1/delete"),
              ("POST", "entities/Customer/1/restore")]
    for method, tail in routes:
        answer = qbo.http.request(method, f"{qbo.url}/_control/realms/nope/{tail}",
                                  json={} if method == "POST" else None)
        assert answer.status_code == 404 and "no company nope" in answer.json()["error"], (method, tail, answer.text)
    for body in ({"DisplayName": "Ghost"},):
        answer = qbo.http.post(f"{qbo.url}/_control/realms/nope/entities/Customer", json=body)
        assert answer.status_code == 404
        assert qbo.http.post(f"{qbo.url}/_control/realms/nope/entities/Customer/1", json=body).status_code == 404
    for action in ("clear_throttle", "throttle", "expire_access", "expire_all", "tax", "create_customer", "rename",
                   "delete", "restore"):
        answer = qbo.http.post(f"{qbo.url}/_control/panel/action",
                               data={"realm": "nope", "action": action, "entity": "Customer", "id": "1",
                                     "value": "Ghost"})
        assert answer.status_code == 404 and "no company nope" in answer.text, action
    assert "nope" not in [r["realm_id"] for r in qbo.control("GET", "realms")]


# --- accounts, terms and tax codes: the references QuickBooks checks -----------------------------------------


def test_accounts_terms_and_tax_codes_are_queried_by_name_and_references_to_them_are_checked(qbo: QBO) -> None:
    income = qbo.query("select * from Account where AccountType = 'Income' orderby Name")["Account"]
    names = [a["Name"] for a in income]
    assert "Sales of Product Income" in names and "Services" in names
    assert "Old Jobs Income" not in names, "an inactive account is left out unless the query names Active"
    assert "Cost of Goods Sold" not in names and names == sorted(names)
    assert [t["Name"] for t in qbo.query("select * from Term")["Term"]][:2] == ["Due on receipt", "Net 10"]
    assert {c["Id"] for c in qbo.query("select * from TaxCode")["TaxCode"]} == {"TAX", "NON"}
    assert qbo.api("GET", "account/79").json()["Account"]["Name"] == "Sales of Product Income"

    item = qbo.create("Item", {"Name": "Permit fee", "Type": "Service", "IncomeAccountRef": {"value": "92"}})
    assert item["IncomeAccountRef"] == {"value": "92", "name": "Permits and Fees Income"}
    unknown = fault_of(qbo.api("POST", "item", json={"Name": "Nails", "IncomeAccountRef": {"value": "e.g. 79"}}))
    assert unknown == {"Message": "Invalid Reference Id", "Detail": "Invalid Reference Id : IncomeAccountRef",
                       "code": "2500", "element": "IncomeAccountRef"}
    inactive = fault_of(qbo.api("POST", "item", json={"Name": "Nails", "IncomeAccountRef": {"value": "93"}}))
    assert inactive["code"] == "2500" and "has been made inactive" in inactive["Detail"]
    qbo.standin.restore_entity(qbo.realm, "Account", "93")  # reactivated, as a QBO user would
    assert qbo.create("Item", {"Name": "Nails", "IncomeAccountRef": {"value": "93"}})["IncomeAccountRef"]["value"] \
        == "93"

    customer = qbo.create("Customer", {"DisplayName": "Example Builders Inc"})
    term = fault_of(qbo.api("POST", "invoice", json=invoice_body(customer, item, SalesTermRef={"value": "77"})))
    assert (term["code"], term["element"]) == ("2500", "SalesTermRef")
    assert qbo.create("Invoice", invoice_body(customer, item, SalesTermRef={"value": "4"}))["SalesTermRef"] \
        == {"value": "4", "name": "Net 30"}
    body = invoice_body(customer, item)
    body["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"] = {"value": "8"}
    tax = fault_of(qbo.api("POST", "invoice", json=body))
    assert tax["code"] == "6100" and tax["Detail"].endswith("Supplied value: 8")
