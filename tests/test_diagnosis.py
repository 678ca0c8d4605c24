"""Tests of sync.diagnosis and sync.providers.qbo_wire.

The real replies (tests/fixtures/qbo_replies.json, collected from public bug reports) must each
get an acceptable kind through the same code the engine calls; the rest test whole kinds of fault
beyond the file: content types that lie, lower-case keys, several errors in one Fault, throttles as
403 and 429, server errors, gateway pages, truncated and empty bodies, hostile XML, odd encodings.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import re
from decimal import Decimal
from html import escape as html_escape
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync.diagnosis import (
    KINDS,
    PRECEDENCE,
    Diagnosis,
    FaultError,
    FixAction,
    Kind,
    classify_error,
    diagnose,
    diagnose_deleted,
    diagnose_totals,
    diagnose_transport,
    make_diagnosis,
    most_specific,
    report,
)
from sync.providers.qbo_wire import deleted_objects, normalize_keys, parse_body

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "qbo_replies.json").read_text(encoding="utf-8")
)


def endpoint_of(case: dict[str, Any]) -> str:
    """The ``endpoint`` argument for a case, from its ``context.endpoint`` URL."""
    url = str(case.get("context", {}).get("endpoint", ""))
    if url.rstrip("/").endswith("/tokens/bearer"):
        return "token"
    if url.rstrip("/").endswith("/revoke"):
        return "revoke"
    return "api"


def diagnose_case(case: dict[str, Any]) -> Diagnosis:
    return diagnose(
        case["http_status"],
        case["body"].encode("utf-8"),
        case.get("content_type"),
        case.get("headers"),
        endpoint_of(case),
    )


def fault_json(*errors: tuple[str, str, str, str], fault_type: str = "ValidationFault") -> str:
    return json.dumps(
        {
            "Fault": {
                "Error": [{"Message": m, "Detail": d, "code": c, "element": el} for c, m, d, el in errors],
                "type": fault_type,
            },
            "time": "2025-05-05T06:24:09.669-07:00",
        }
    )


DUPLICATE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2019-08-02T04:48:37.097-07:00">'
    '<Fault type="ValidationFault"><Error code="6240" element="DisplayName">'
    "<Message>Duplicate Name Exists Error</Message>"
    "<Detail>The name supplied already exists. : Another customer is already using this name.</Detail>"
    "</Error></Fault></IntuitResponse>"
)
DUPLICATE_JSON = fault_json(
    (
        "6240",
        "Duplicate Name Exists Error",
        "The name supplied already exists. : Another customer is already using this name.",
        "DisplayName",
    )
)


# ---------------------------------------------------------------------------------------------
# The real replies


#: The SHA-256 of tests/fixtures/qbo_replies.json as collected. The real replies are evidence: a change to them
#: (rather than a new case in qbo_variants.json) must be deliberate, and then this pin changes with it.
REAL_REPLIES_SHA256 = "8fcf0d7e9588be4404c27872f7b809fc7eba019d973f6a8b5487de08651eb9fc"


def test_real_replies_are_unchanged() -> None:
    body = (Path(__file__).parent / "fixtures" / "qbo_replies.json").read_bytes()
    assert hashlib.sha256(body).hexdigest() == REAL_REPLIES_SHA256


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_real_reply_gets_an_acceptable_kind(case: dict[str, Any]) -> None:
    d = diagnose_case(case)
    acceptable = case["acceptable_kinds"]
    context = case.get("context", {})

    if "linked_record" in context:
        # QBO-23: a CDC answer is a success; the deleted stub of our linked record is the news.
        assert d.ok
        data = parse_body(case["body"], case["content_type"])
        stubs = [obj for block in data["CDCResponse"] for q in block["QueryResponse"] for obj in q.get("Invoice", [])]
        assert stubs == [
            {
                "domain": "QBO",
                "status": "Deleted",
                "Id": "11469",
                "MetaData": {"LastUpdatedTime": "2018-02-08T16:19:55-08:00"},
            }
        ]
        linked = context["linked_record"]
        gone = [
            (entity, qbo_id)
            for entity, qbo_id in deleted_objects(data)
            if entity.lower() == linked["entity"] and qbo_id == linked["qbo_id"]
        ]
        assert gone == [("Invoice", "11469")]
        assert ("Account", "113") not in deleted_objects(data)  # updated, not deleted
        assert diagnose_deleted(*gone[0]).label in acceptable
        return

    if "ours" in context:
        # QBO-32: the write succeeded; the totals QuickBooks computed differ by a cent.
        assert d.ok
        invoice = parse_body(case["body"], case["content_type"])["Invoice"]
        ours = context["ours"]
        t = diagnose_totals(Decimal(str(ours["TotalAmt"])), Decimal(str(ours["TotalTax"])), invoice)
        assert t is not None
        assert t.label in acceptable
        assert t.kind is Kind.TOTAL_MISMATCH
        assert "4943.56" in t.details and "4943.55" in t.details
        assert "448.40" in t.details and "448.39" in t.details
        assert "tax difference -0.01" in t.details
        assert t.entry_status == "warning"
        return

    assert d.label in acceptable, d.details
    if "expected_per_item" in case:
        assert {bid: item.label for bid, item in d.items.items()} == case["expected_per_item"]
        assert report(d)["items"] == case["expected_per_item"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_real_reply_details_are_readable_and_bounded(case: dict[str, Any]) -> None:
    d = diagnose_case(case)
    assert len(d.details) <= 2000
    assert "<html" not in d.details.lower() and "<body" not in d.details.lower()
    if not d.ok and d.errors:
        assert d.codes  # every fault keeps its codes
    tid = (case.get("headers") or {}).get("intuit_tid")
    if tid:
        assert d.intuit_tid == tid and tid in d.details


def test_specific_real_reply_details() -> None:
    by_id = {c["id"]: c for c in CASES}
    d = diagnose_case(by_id["QBO-07"])
    assert "does not have sufficient scope" in d.details  # the detail is quoted
    d = diagnose_case(by_id["QBO-05"])
    assert d.hint and "environment" in d.hint  # reconnecting alone won't fix a wrong cluster
    d = diagnose_case(by_id["QBO-24"])
    assert d.field == "Line" and "Required parameter Line is missing" in d.details
    d = diagnose_case(by_id["QBO-21"])
    assert d.field == "Line.SalesItemLineDetail.ItemRef"
    d = diagnose_case(by_id["QBO-30"])
    assert d.codes == ("6100", "6100") and len(d.errors) == 2
    assert "Supplied value: 8" in d.details and "Supplied value: 9" in d.details
    d = diagnose_case(by_id["QBO-28"])
    assert "<a" not in d.details and "https://support.qbo.intuit.com" in d.details
    d = diagnose_case(by_id["QBO-35"])
    assert "HTTP 503" in d.details and "The service is unavailable" in d.details
    d = diagnose_case(by_id["QBO-41"])
    assert "HTTP 400" in d.details and '<?xml version="1.0"?>' in d.details
    d = diagnose_case(by_id["QBO-39"])
    assert d.codes == ("3100",) and "HTTP 500" in d.details
    d = diagnose_case(by_id["QBO-18"])
    assert d.field is None and d.hint and "request id" in d.hint  # not the user's field to fill


# ---------------------------------------------------------------------------------------------
# The wire parser


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (DUPLICATE_XML, "application/json;charset=UTF-8"),  # XML labelled JSON
        (DUPLICATE_JSON, "application/xml;charset=UTF-8"),  # JSON labelled XML
        (DUPLICATE_XML, "application/xml; charset=utf-8"),
        (DUPLICATE_JSON, "text/plain"),
        (DUPLICATE_JSON, None),
        (DUPLICATE_XML, ""),
    ],
)
def test_format_is_read_from_the_body_not_the_content_type(body: str, content_type: str | None) -> None:
    d = diagnose(400, body.encode(), content_type)
    assert d.kind is Kind.DUPLICATE
    assert d.codes == ("6240",)
    assert d.field == "DisplayName"
    assert d.fault_type == "ValidationFault"
    assert "The name supplied already exists" in d.details


def test_xml_fault_converts_to_the_json_shape() -> None:
    assert parse_body(DUPLICATE_XML) == {
        "time": "2019-08-02T04:48:37.097-07:00",
        "Fault": {
            "type": "ValidationFault",
            "Error": [
                {
                    "code": "6240",
                    "element": "DisplayName",
                    "Message": "Duplicate Name Exists Error",
                    "Detail": "The name supplied already exists. : Another customer is already using this name.",
                }
            ],
        },
    }


def test_xml_entity_converts_lists_refs_and_attributes() -> None:
    xml = (
        '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="t">'
        '<Invoice domain="QBO" sparse="false"><Id>1</Id>'
        "<Line><Amount>10.00</Amount><LinkedTxn><TxnId>5</TxnId></LinkedTxn></Line>"
        '<CustomerRef name="Example Builders">58</CustomerRef>'
        "<TxnTaxDetail><TotalTax>1.00</TotalTax><TaxLine><Amount>1.00</Amount></TaxLine></TxnTaxDetail>"
        "<TotalAmt>11.00</TotalAmt></Invoice></IntuitResponse>"
    )
    inv = parse_body(xml)["Invoice"]
    assert inv["domain"] == "QBO" and inv["sparse"] == "false"
    assert inv["Line"] == [{"Amount": "10.00", "LinkedTxn": [{"TxnId": "5"}]}]
    assert inv["CustomerRef"] == {"name": "Example Builders", "value": "58"}
    assert inv["TxnTaxDetail"]["TaxLine"] == [{"Amount": "1.00"}]


def test_xml_query_and_batch_lists() -> None:
    query = (
        '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3">'
        '<QueryResponse startPosition="1" maxResults="1"><Customer><Id>7</Id></Customer>'
        "</QueryResponse></IntuitResponse>"
    )
    assert parse_body(query) == {"QueryResponse": {"startPosition": "1", "maxResults": "1", "Customer": [{"Id": "7"}]}}
    batch = (
        '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3">'
        '<BatchItemResponse bId="b1"><Customer><Id>7</Id></Customer></BatchItemResponse>'
        "</IntuitResponse>"
    )
    assert parse_body(batch) == {"BatchItemResponse": [{"bId": "b1", "Customer": {"Id": "7"}}]}
    assert diagnose(200, batch, "application/xml").ok


def test_lower_case_keys_read_the_same() -> None:
    body = json.dumps(
        {
            "fault": {
                "error": [
                    {"message": "Duplicate Name Exists Error", "detail": "taken", "code": "6240", "element": None}
                ],
                "type": "ValidationFault",
            }
        }
    )
    d = diagnose(400, body, "application/json")
    assert d.kind is Kind.DUPLICATE
    assert d.errors == (FaultError("6240", "Duplicate Name Exists Error", "taken", None),)
    upper = normalize_keys(json.loads(DUPLICATE_JSON))
    assert normalize_keys(json.loads(DUPLICATE_JSON.replace('"Fault"', '"FAULT"'))) == upper
    # The OAuth answer's "error" is a string: it is not renamed.
    assert normalize_keys({"error": "invalid_grant"}) == {"error": "invalid_grant"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \r\n",
        b'{"Fault":{"Error":[{"Message":"Duplicate Na',
        b'<?xml version="1.0"?>\n',
        b"<IntuitResponse><Fault><Error code=",
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b"<!DOCTYPE html><html><head><title>Down</title></head><body>maintenance</body></html>",
        b'"just a string"',
        b"null",
        b"Service Unavailable",
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
    ],
)
def test_parse_body_returns_none_for_unreadable_bodies(body: bytes) -> None:
    assert parse_body(body, "application/json") is None


def test_billion_laughs_is_refused_without_expansion() -> None:
    entities = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE IntuitResponse [<!ENTITY lol0 "lol">{entities}]>'
        '<IntuitResponse><Fault type="ValidationFault"><Error code="6240">'
        "<Message>&lol9;</Message></Error></Fault></IntuitResponse>"
    )
    assert parse_body(bomb, "application/xml") is None
    d = diagnose(400, bomb, "application/xml")
    assert d.kind is Kind.UNKNOWN
    assert len(d.details) <= 2000 and "lollollol" not in d.details


def test_external_entity_is_refused() -> None:
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<IntuitResponse><Fault><Error code="6240"><Message>&x;</Message></Error></Fault></IntuitResponse>'
    )
    assert parse_body(xxe) is None
    assert diagnose(400, xxe).kind is Kind.UNKNOWN


def test_non_utf8_bytes_are_read() -> None:
    body = fault_json(("6240", "Duplicate Name Exists Error", "Le nom « Café Dupré » existe déjà.", ""))
    latin1 = body.encode("latin-1")
    for ct in ("application/json", "application/json;charset=ISO-8859-1", "application/json;charset=utf-8"):
        d = diagnose(400, latin1, ct)
        assert d.kind is Kind.DUPLICATE
        assert "Café Dupré" in d.details
    xml = DUPLICATE_XML.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').replace("Another", "Un autre é")
    d = diagnose(400, xml.encode("latin-1"), "application/xml")
    assert d.kind is Kind.DUPLICATE and "Un autre é" in d.details
    assert diagnose(400, b"\x80\x81\xfe\xff not json", "application/json").kind is Kind.UNKNOWN
    utf16 = DUPLICATE_JSON.encode("utf-16")
    assert diagnose(400, utf16, "application/json").kind is Kind.DUPLICATE


# ---------------------------------------------------------------------------------------------
# Status and code read together


@pytest.mark.parametrize("status", [403, 429])
def test_throttle_3001_is_rate_limited_as_403_or_429(status: int) -> None:
    body = fault_json(
        (
            "3001",
            f"message=ThrottleExceeded; errorCode=003001; statusCode={status}",
            "The request limit was reached.",
            "",
        ),
        fault_type="ThrottlingFault",
    )
    d = diagnose(status, body, "application/json", {"Retry-After": "30"})
    assert d.kind is Kind.RATE_LIMITED
    assert d.retry_after == 30.0
    assert d.info is not None and d.info.scope == "connection"


def test_3100_with_403_is_auth_but_with_500_is_a_server_error() -> None:
    body_403 = fault_json(("3100", "message=AuthorizationFailed; errorCode=003100; statusCode=403", "", ""))
    assert diagnose(403, body_403).kind is Kind.AUTH_EXPIRED
    body_500 = fault_json(
        ("3100", "message=InternalServerError; errorCode=003100; statusCode=500", "", ""), fault_type="SERVICE"
    )
    d = diagnose(500, body_500)
    assert d.kind is Kind.UNKNOWN
    assert "HTTP 500" in d.details


@pytest.mark.parametrize("body", ["", "<html>nope</html>", '{"warnings": null}', DUPLICATE_JSON])
def test_401_is_auth_expired_whatever_the_body(body: str) -> None:
    d = diagnose(401, body, "application/json")
    assert d.kind is Kind.AUTH_EXPIRED
    assert d.actions == (FixAction.RECONNECT,)


@pytest.mark.parametrize("endpoint", ["api", "token", "revoke"])
@pytest.mark.parametrize("body", ["", "{}", "<html><body>Too many</body></html>", '{"error":"invalid_grant"}'])
def test_429_is_rate_limited_with_any_body_on_any_endpoint(endpoint: str, body: str) -> None:
    assert diagnose(429, body, "application/json", endpoint=endpoint).kind is Kind.RATE_LIMITED


@pytest.mark.parametrize(
    "body",
    [
        '{"error_description":"Incorrect or invalid refresh token","error":"invalid_grant"}',
        '{"error":"invalid_grant","error_description":"Incorrect or invalid refresh token"}',
        '{"error":"invalid_grant"}',
    ],
)
def test_invalid_grant_any_key_order_is_auth_expired(body: str) -> None:
    d = diagnose(400, body.encode(), "application/json;charset=utf-8", endpoint="token")
    assert d.kind is Kind.AUTH_EXPIRED
    assert d.codes == ("invalid_grant",)


def test_invalid_client_is_auth_expired_with_a_configuration_hint() -> None:
    d = diagnose(401, '{"error":"invalid_client"}', "application/json", endpoint="token")
    assert d.kind is Kind.AUTH_EXPIRED
    d = diagnose(400, '{"error":"invalid_client"}', "application/json", endpoint="token")
    assert d.kind is Kind.AUTH_EXPIRED and d.hint and "credentials" in d.hint
    assert diagnose(400, '{"error":"unsupported_grant_type"}', endpoint="token").kind is Kind.UNKNOWN


def test_token_and_revoke_success() -> None:
    ok = '{"token_type":"bearer","expires_in":3600,"refresh_token":"R","access_token":"A"}'
    assert diagnose(200, ok, "application/json", endpoint="token").ok
    assert diagnose(200, b"", None, endpoint="revoke").ok


def test_unknown_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        diagnose(200, "{}", endpoint="webhook")


# ---------------------------------------------------------------------------------------------
# Several errors, precedence, codes


def test_several_errors_keep_all_and_take_the_most_specific() -> None:
    body = fault_json(
        ("6000", "A business validation error has occurred", "Business Validation Error: something", ""),
        ("6240", "Duplicate Name Exists Error", "The name supplied already exists.", "DisplayName"),
    )
    d = diagnose(400, body)
    assert d.kind is Kind.DUPLICATE
    assert d.codes == ("6000", "6240")
    assert len(d.errors) == 2
    assert "6000" in d.details and "6240" in d.details
    assert d.field == "DisplayName"


def test_precedence_order() -> None:
    assert PRECEDENCE[0] is Kind.AUTH_EXPIRED and PRECEDENCE[-1] is Kind.UNKNOWN
    assert set(PRECEDENCE) == set(Kind)
    assert most_specific([Kind.VALIDATION, Kind.NOT_FOUND, None]) is Kind.NOT_FOUND
    assert most_specific([Kind.UNKNOWN, Kind.VALIDATION]) is Kind.VALIDATION
    assert most_specific([Kind.TOTAL_MISMATCH, Kind.VALIDATION]) is Kind.TOTAL_MISMATCH
    assert most_specific([Kind.DUPLICATE, Kind.RATE_LIMITED]) is Kind.RATE_LIMITED
    assert most_specific([None, None]) is None


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("3200", 401, Kind.AUTH_EXPIRED),
        ("100", 401, Kind.AUTH_EXPIRED),
        ("120", 403, Kind.AUTH_EXPIRED),
        ("130", 401, Kind.AUTH_EXPIRED),
        ("3100", 403, Kind.AUTH_EXPIRED),
        ("3100", 500, Kind.UNKNOWN),
        ("3001", 429, Kind.RATE_LIMITED),
        ("3001", 403, Kind.RATE_LIMITED),
        ("6240", 400, Kind.DUPLICATE),
        ("6140", 400, Kind.DUPLICATE),
        ("610", 400, Kind.NOT_FOUND),
        ("2500", 400, Kind.NOT_FOUND),
        ("5010", 400, Kind.CONFLICT),
        ("6210", 400, Kind.CLOSED_PERIOD),
        ("6190", 400, Kind.SUBSCRIPTION),
        ("6540", 400, Kind.LOCKED),
        ("6070", 400, Kind.TOTAL_MISMATCH),
        ("6170", 400, Kind.TOTAL_MISMATCH),
        ("2280", 400, Kind.TOTAL_MISMATCH),
        ("6100", 400, Kind.TOTAL_MISMATCH),
        ("2020", 400, Kind.VALIDATION),
        ("2010", 400, Kind.VALIDATION),
        ("2030", 400, Kind.VALIDATION),
        ("2040", 400, Kind.VALIDATION),
        ("2050", 400, Kind.VALIDATION),
        ("2080", 400, Kind.VALIDATION),
        ("6000", 400, Kind.VALIDATION),
        ("6080", 400, Kind.VALIDATION),
        ("2390", 400, Kind.VALIDATION),
        ("10000", 500, Kind.UNKNOWN),
        ("003200", 401, Kind.AUTH_EXPIRED),
    ],
)
def test_code_table(code: str, status: int, kind: Kind) -> None:
    assert (
        classify_error(FaultError(code, "m", "d", None), status, "ValidationFault" if status < 500 else "SystemFault")
        is kind
    )


def test_code_wins_over_a_contradicting_message() -> None:
    body = fault_json(("6240", "Object Not Found", "Object Not Found : Another user has deleted this.", ""))
    assert diagnose(400, body).kind is Kind.DUPLICATE
    body = fault_json(("610", "Duplicate Name Exists Error", "ThrottleExceeded", ""))
    assert diagnose(400, body).kind is Kind.NOT_FOUND


def test_6000_with_tax_calculation_text_is_total_mismatch() -> None:
    tax = fault_json(
        ("6000", "A business validation error", "QuickBooks encountered an error while calculating tax.", "")
    )
    assert diagnose(400, tax).kind is Kind.TOTAL_MISMATCH
    assert diagnose(400, tax).entry_status == "warning"  # one severity per kind, the write failed or not
    plain = fault_json(("6000", "A business validation error", "You must set a transaction amount.", ""))
    assert diagnose(400, plain).kind is Kind.VALIDATION


def test_620_not_found_when_the_invoice_is_gone_else_validation() -> None:
    gone = fault_json(("620", "TxnID Cannot Be Linked", "The invoice was deleted: TxnID 123 not found", ""))
    assert diagnose(400, gone).kind is Kind.NOT_FOUND
    mismatch = fault_json(
        ("620", "TxnID Cannot Be Linked", "TxnID Cannot Be Linked : 123", "Payment.Line.LinkedTxn.TxnId")
    )
    d = diagnose(400, mismatch)
    assert d.kind is Kind.VALIDATION and d.field == "Payment.Line.LinkedTxn.TxnId"


def test_2020_on_income_account_and_2390_name_the_field() -> None:
    d = diagnose(
        400, fault_json(("2020", "Required param missing", "Required parameter IncomeAccountRef is missing", ""))
    )
    assert d.kind is Kind.VALIDATION and d.field == "IncomeAccountRef"
    d = diagnose(400, fault_json(("2390", "Income account is missing", "An item needs an income account", "")))
    assert d.kind is Kind.VALIDATION and d.field == "IncomeAccountRef"


def test_2500_on_a_records_own_account_term_or_tax_code_is_a_field_to_choose_not_a_record_gone() -> None:
    for element in ("IncomeAccountRef", "ExpenseAccountRef", "SalesTermRef", "Line.SalesItemLineDetail.TaxCodeRef"):
        d = diagnose(400, fault_json(("2500", "Invalid Reference Id", f"Invalid Reference Id : {element}", element)))
        assert d.kind is Kind.VALIDATION and d.field == element, element
    inactive = ("2500", "Invalid Reference Id", "Invalid Reference Id : Something you're trying to use has been made "
                "inactive. Check the fields with accounts, customers, items, vendors or employees.", "IncomeAccountRef")
    assert diagnose(400, fault_json(inactive)).kind is Kind.VALIDATION
    item_gone = ("2500", "Invalid Reference Id", "Invalid Reference Id : Line.SalesItemLineDetail.ItemRef",
                 "Line.SalesItemLineDetail.ItemRef")
    assert diagnose(400, fault_json(item_gone)).kind is Kind.NOT_FOUND  # QBO-21: the item's copy is gone


def test_unknown_code_falls_back_on_the_fault_type() -> None:
    assert diagnose(400, fault_json(("9999", "odd", "odd", ""))).kind is Kind.VALIDATION
    system = fault_json(("9999", "odd", "odd", ""), fault_type="SystemFault")
    d = diagnose(500, system)
    assert d.kind is Kind.UNKNOWN and d.codes == ("9999",) and "HTTP 500" in d.details
    assert (
        diagnose(500, fault_json(("10000", "An application error has occurred", "", ""), fault_type="SystemFault")).kind
        is Kind.UNKNOWN
    )
    assert diagnose(400, fault_json(("9999", "x", "x", ""), fault_type="AuthenticationFault")).kind is Kind.AUTH_EXPIRED


def test_missing_code_is_read_from_the_message() -> None:
    body = json.dumps({"Fault": {"Error": [{"Message": "message=ThrottleExceeded; errorCode=003001; statusCode=403"}]}})
    assert diagnose(403, body).kind is Kind.RATE_LIMITED


# ---------------------------------------------------------------------------------------------
# Unreadable answers


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            502,
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center>"
            "<hr><center>nginx</center></body></html>",
        ),
        (
            503,
            '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">'
            "<HTML><HEAD><TITLE>Service Unavailable</TITLE></HEAD><BODY><h2>Service Unavailable</h2>"
            "<p>HTTP Error 503. The service is unavailable.</p></BODY></HTML>",
        ),
        (
            504,
            "<html><head><title>504 Gateway Time-out</title><style>body{color:red}</style></head>"
            "<body><h1>504 Gateway Time-out</h1><script>alert(1)</script></body></html>",
        ),
    ],
)
def test_html_gateway_pages_are_unknown_with_text_kept(status: int, body: str) -> None:
    d = diagnose(status, body.encode("ascii"), "application/json")
    assert d.kind is Kind.UNKNOWN
    assert f"HTTP {status}" in d.details
    assert "<" not in d.details and "alert" not in d.details and "color" not in d.details
    assert "Gateway" in d.details or "unavailable" in d.details


def test_truncated_json_keeps_the_raw_text() -> None:
    body = DUPLICATE_JSON[:60]
    d = diagnose(400, body, "application/json")
    assert d.kind is Kind.UNKNOWN
    assert body.strip() in d.details and "HTTP 400" in d.details


@pytest.mark.parametrize(("status", "kind"), [(400, Kind.UNKNOWN), (500, Kind.UNKNOWN), (429, Kind.RATE_LIMITED)])
@pytest.mark.parametrize("body", [b"", None, "  "])
def test_empty_bodies(status: int, kind: Kind, body: bytes | str | None) -> None:
    d = diagnose(status, body, "application/json")
    assert d.kind is kind
    assert f"HTTP {status}" in d.details and "empty" in d.details


def test_huge_body_is_trimmed() -> None:
    d = diagnose(500, "x" * 50_000, "text/plain")
    assert d.kind is Kind.UNKNOWN and len(d.details) <= 2000 and d.details.endswith("…")
    long_detail = fault_json(("6000", "A business validation error", "y" * 10_000, ""))
    d = diagnose(400, long_detail, headers={"intuit_tid": "1-abc"})
    assert len(d.details) <= 2000 and d.details.endswith("intuit_tid: 1-abc")


def test_details_never_carry_tokens() -> None:
    truncated_token_reply = (
        '{"token_type":"bearer","access_token":"eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4In0.abcdefghijkl.xyz",'
        '"refresh_token":"AB11700000000abcdefghijklmnopqrstuv'
    )
    d = diagnose(200, truncated_token_reply, "application/json", endpoint="token")
    assert d.kind is Kind.UNKNOWN
    assert "eyJhbGci" not in d.details and "AB11700000000" not in d.details
    d = diagnose(500, "upstream said Authorization: Bearer abc.def.ghi-secret-value", "text/plain")
    assert "secret-value" not in d.details


def test_headers_intuit_tid_and_retry_after() -> None:
    d = diagnose(429, "", headers={"INTUIT_TID": "1-xyz", "retry-after": "12.5"})
    assert d.intuit_tid == "1-xyz" and d.retry_after == 12.5 and "intuit_tid: 1-xyz" in d.details
    assert diagnose(429, "").retry_after is None
    assert diagnose(429, "", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}).retry_after == 0.0
    assert diagnose(429, "", headers={"Retry-After": "soon"}).retry_after is None


# ---------------------------------------------------------------------------------------------
# Success, batch, CDC


def test_success_bodies_are_ok() -> None:
    assert diagnose(200, '{"Customer":{"Id":"58","SyncToken":"0"},"time":"t"}').ok
    assert diagnose(200, '{"QueryResponse":{},"time":"t"}').ok
    cdc = '{"CDCResponse":[{"QueryResponse":[{"Customer":[{"Id":"1","status":"Deleted"}]}]}],"time":"t"}'
    d = diagnose(200, cdc)
    assert d.ok and d.label == "ok" and d.entry_status == "synced"
    assert deleted_objects(json.loads(cdc)) == [("Customer", "1")]
    assert report(d)["kind"] == "ok" and "items" not in report(d)


def test_unreadable_200_is_unknown() -> None:
    assert diagnose(200, "<html><body>captive portal</body></html>").kind is Kind.UNKNOWN


def test_batch_report() -> None:
    body = json.dumps(
        {
            "BatchItemResponse": [
                {"bId": "b1", "Customer": {"Id": "1"}},
                {"bId": "b2", "Fault": json.loads(fault_json(("6000", "bad", "bad", "")))["Fault"]},
                {"bId": "b3", "Fault": json.loads(fault_json(("610", "Object Not Found", "gone", "")))["Fault"]},
            ],
            "time": "t",
        }
    )
    d = diagnose(200, body, "application/json", {"intuit_tid": "1-batch"})
    assert d.kind is Kind.NOT_FOUND
    assert d.items["b1"].ok and d.items["b2"].kind is Kind.VALIDATION
    out = report(d)
    assert out["kind"] == "not_found"
    assert out["items"] == {"b1": "ok", "b2": "validation", "b3": "not_found"}
    assert out["codes"] == ["6000", "610"]
    assert out["cause"] == KINDS[Kind.NOT_FOUND].cause and out["fix"] == KINDS[Kind.NOT_FOUND].fix
    assert "b3: 610" in out["details"] and "b1" not in out["details"]
    json.dumps(out)  # printable as JSON

    all_ok = json.dumps({"BatchItemResponse": [{"bId": "b1", "Customer": {"Id": "1"}}]})
    d = diagnose(200, all_ok)
    assert d.ok and report(d)["items"] == {"b1": "ok"}


# ---------------------------------------------------------------------------------------------
# Transport, totals, kinds table


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (httpx.ReadTimeout("timed out"), "No answer from QuickBooks in time"),
        (httpx.ConnectTimeout("timed out"), "Could not connect"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "Could not connect"),
        (httpx.RemoteProtocolError("Server disconnected"), "Network error"),
        (TimeoutError(), "No answer"),
        (RuntimeError("boom"), "Unexpected error"),
    ],
)
def test_diagnose_transport(exc: Exception, words: str) -> None:
    d = diagnose_transport(exc)
    assert d.kind is Kind.UNKNOWN and d.http_status is None
    assert words in d.details and type(exc).__name__ in d.details


def test_read_timeout_hint() -> None:
    d = diagnose_transport(httpx.ReadTimeout("The read operation timed out"))
    assert "ReadTimeout: The read operation timed out" in d.details
    assert d.hint and "requestid" in d.hint
    assert report(d)["kind"] == "unknown"


def test_diagnose_totals() -> None:
    invoice = {
        "TotalAmt": "110.00",
        "TxnTaxDetail": {"TotalTax": "10.00"},
        "Line": [
            {"Amount": 60.0, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}},
            {"Amount": 40.0, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}},
            {"Amount": 100.0, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
        ],
    }
    same = diagnose_totals(Decimal("110.004"), Decimal("10.00"), invoice)
    assert same is None  # within half a cent
    d = diagnose_totals(
        Decimal("110.01"),
        Decimal("10.01"),
        {"Invoice": invoice},
        [("Framing labour", Decimal("60.00")), ("Drywall", Decimal("39.99"))],
    )
    assert d is not None and d.kind is Kind.TOTAL_MISMATCH
    assert "110.01" in d.details and "110.00" in d.details and "tax difference -0.01" in d.details
    assert "Drywall: JobsiteOn 39.99, QuickBooks 40.00" in d.details and "Framing" not in d.details
    assert d.entry_status == "warning" and d.codes == ()
    assert diagnose_totals(Decimal(1), Decimal(0), {"Id": "1"}) is None  # nothing to compare


def test_make_diagnosis() -> None:
    d = make_diagnosis(Kind.VALIDATION, "The item 'Nails' is not in QuickBooks yet." + "x" * 3000, field="ItemRef")
    assert d.kind is Kind.VALIDATION and d.field == "ItemRef" and len(d.details) <= 2000
    assert "Bearer [redacted]" in make_diagnosis(Kind.UNKNOWN, "sent Bearer abcdefghijklmnop").details


def test_kinds_table() -> None:
    assert set(KINDS) == set(Kind)
    auth = KINDS[Kind.AUTH_EXPIRED]
    assert auth.cause == "The integration's OAuth token has expired."
    assert auth.fix == "Reconnect and re-authorize the connection; the sync resumes automatically."
    assert KINDS[Kind.RATE_LIMITED].fix == (
        "This resolves automatically: syncbot waits 15 minutes (or as long as QuickBooks asks) and syncs again."
    )
    assert "contact JobsiteOn support with the error timestamp and details" in KINDS[Kind.UNKNOWN].fix
    for kind, info in KINDS.items():
        assert info.kind is kind
        assert info.status == ("warning" if kind in (Kind.TOTAL_MISMATCH, Kind.RATE_LIMITED) else "error")
        expected_scope = kind in (Kind.AUTH_EXPIRED, Kind.RATE_LIMITED, Kind.SUBSCRIPTION)
        assert info.scope == ("connection" if expected_scope else "record")
        assert all(isinstance(a, FixAction) for a in info.actions)
    assert Diagnosis(kind=Kind.LOCKED).actions == (FixAction.RETRY, FixAction.MARK_RESOLVED)
    assert Diagnosis(kind=None).cause is None and Diagnosis(kind=None).info is None


def test_sync_imports_nothing_from_the_app_layers() -> None:
    root = Path(__file__).parent.parent
    for path in [*sorted((root / "sync/diagnosis").glob("*.py")), root / "sync/providers/qbo_wire.py"]:
        source = path.read_text(encoding="utf-8")
        imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", source, re.MULTILINE)
        assert imports
        for module in imports:
            assert module.split(".")[0] not in {"bot", "handlers", "sandbox", "slack_sdk", "slack_bolt"}


def test_deeply_nested_arrays_and_odd_codes_never_crash() -> None:
    deep = '{"x":' + "[" * 5000 + "]" * 5000 + "}"
    assert diagnose(400, deep, "application/json").kind is not None
    odd = '{"Fault":{"Error":[{"Message":"m","code":"\\u00b2"}],"type":"ValidationFault"}}'
    assert diagnose(400, odd, "application/json").kind is not None
    long_code = '{"Fault":{"Error":[{"Message":"m","code":"' + "9" * 5000 + '"}]}}'
    assert diagnose(400, long_code, "application/json").kind is not None


# ---------------------------------------------------------------------------------------------
# Kinds a breaking review tried (issue 7): each a rule of sync/diagnosis/, tried in its variants

DUP_FAULT: dict[str, Any] = json.loads(DUPLICATE_JSON)["Fault"]
VALIDATION_FAULT: dict[str, Any] = json.loads(fault_json(("6000", "A business validation error", "bad", "")))["Fault"]
OK_ITEM: dict[str, Any] = {"bId": "b1", "Customer": {"Id": "58", "SyncToken": "0", "DisplayName": "Acme"}}


def batch_json(*items: Any) -> str:
    return json.dumps({"BatchItemResponse": list(items), "time": "2025-05-05T06:24:09.669-07:00"})


BATCH_XML_OK = (
    '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3">'
    '<BatchItemResponse bId="b1"><Customer><Id>58</Id></Customer></BatchItemResponse>'
    "</IntuitResponse>"
)


@pytest.mark.parametrize("status", [400, 403, 404, 409, 500, 502, 503])
@pytest.mark.parametrize(
    "body",
    [
        batch_json(OK_ITEM),
        batch_json(OK_ITEM, {"bId": "b2", "Customer": {"Id": "59"}}),
        BATCH_XML_OK,
        json.dumps({"batchItemResponse": [{"bid": "b1", "customer": {"Id": "58"}}]}),
    ],
    ids=["one-ok-item", "two-ok-items", "xml", "lower-case-keys"],
)
def test_a_batch_answer_under_a_failure_status_is_never_ok(status: int, body: str) -> None:
    d = diagnose(status, body, "application/json")
    assert not d.ok and d.kind is Kind.UNKNOWN
    assert d.items and all(not item.ok for item in d.items.values())
    assert "ok" not in report(d)["items"].values()
    assert f"HTTP {status}" in d.details and "uncertain" in d.details


def test_a_failure_status_keeps_each_items_own_fault() -> None:
    body = batch_json(OK_ITEM, {"bId": "b2", "Fault": DUP_FAULT})
    d = diagnose(500, body, "application/json")
    assert report(d)["items"] == {"b1": "unknown", "b2": "duplicate"}
    assert d.kind is Kind.DUPLICATE and d.codes == ("6240",)


@pytest.mark.parametrize(
    "item",
    [
        {"bId": "b1"},
        {"bId": "b1", "Fault": None},
        {"bId": "b1", "Customer": None},
        {"bId": "b1", "Customer": {}},
        {"bId": "b1", "Customer": []},
        {"bId": "b1", "status": "ok"},
        {"bId": "b1", "Fault": {}},
        {"bId": "b1", "Fault": {"Error": [], "type": "ValidationFault"}},
    ],
    ids=["bid-only", "null-fault", "null-entity", "empty-entity", "empty-list", "scalar-only", "empty-fault",
         "fault-without-errors"],
)
def test_a_batch_item_with_neither_object_nor_fault_is_unknown(item: dict[str, Any]) -> None:
    d = diagnose(200, batch_json(item, {**OK_ITEM, "bId": "b2"}), "application/json")
    assert report(d)["items"] == {"b1": "unknown", "b2": "ok"}
    assert d.kind is Kind.UNKNOWN


@pytest.mark.parametrize("item", ["just text", 42, None, ["b1"]], ids=["string", "number", "null", "list"])
def test_a_batch_item_that_is_not_an_object_is_unknown(item: Any) -> None:
    d = diagnose(200, batch_json(OK_ITEM, item), "application/json")
    assert d.kind is Kind.UNKNOWN
    assert report(d)["items"] == {"b1": "ok", "(no bId #2)": "unknown"}


def test_an_empty_batch_answer_is_unknown() -> None:
    d = diagnose(200, batch_json(), "application/json")
    assert d.kind is Kind.UNKNOWN and "without any item" in d.details
    assert diagnose(200, json.dumps({"BatchItemResponse": {}}), "application/json").kind is Kind.UNKNOWN
    d = diagnose(200, batch_json(), "application/json", bids=["b1", "b2"])
    assert report(d)["items"] == {"b1": "unknown", "b2": "unknown"}


@pytest.mark.parametrize(
    ("status", "body", "content_type", "kind"),
    [
        (500, fault_json(("10000", "An application error has occurred", "", ""), fault_type="SystemFault"),
         "application/json", Kind.UNKNOWN),
        (400, fault_json(("1040", "Batch size exceeds allowed limit", "Batch size 31 exceeds 30", "")),
         "application/json", Kind.UNKNOWN),
        (502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "text/html",
         Kind.UNKNOWN),
        (503, "", "text/html", Kind.UNKNOWN),
        (401, "", "application/json", Kind.AUTH_EXPIRED),
        (401, '{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401",'
              '"code":"3200"}],"type":"AUTHENTICATION"}}', "application/json", Kind.AUTH_EXPIRED),
        (429, "<html><body>Too Many Requests</body></html>", "text/html", Kind.RATE_LIMITED),
        (403, fault_json(("3001", "message=ThrottleExceeded; errorCode=003001; statusCode=403", "", ""),
                         fault_type="ThrottlingFault"), "application/xml", Kind.RATE_LIMITED),
        (200, '{"Fault":{"Error":[{"Message":"Object Not Found","code":"610"}],"type":"ValidationFault"}}',
         "application/json", Kind.NOT_FOUND),
    ],
    ids=["500-system-fault", "400-batch-too-large", "502-html", "503-empty", "401-empty", "401-lower-case",
         "429-html", "403-throttle", "200-fault"],
)
def test_an_envelope_without_items_is_every_bids_diagnosis(status: int, body: str, content_type: str,
                                                           kind: Kind) -> None:
    d = diagnose(status, body, content_type, bids=["b1", "b2", "b3"])
    assert d.kind is kind
    assert report(d)["items"] == {"b1": kind.value, "b2": kind.value, "b3": kind.value}
    assert all(item.kind is kind for item in d.items.values())


def test_a_batch_answer_missing_a_sent_bid_is_unknown_for_it() -> None:
    d = diagnose(200, batch_json(OK_ITEM), "application/json", bids=["b1", "b2"])
    assert report(d)["items"] == {"b1": "ok", "b2": "unknown"}
    assert d.kind is Kind.UNKNOWN and "no item for bId b2" in d.details
    # an ok answer that is not a batch answer at all
    d = diagnose(200, '{"Customer": {"Id": "1"}}', "application/json", bids=["b1"])
    assert d.kind is Kind.UNKNOWN and report(d)["items"] == {"b1": "unknown"}


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([OK_ITEM, {"bId": "b1", "Fault": DUP_FAULT}], "duplicate"),
        ([{"bId": "b1", "Fault": DUP_FAULT}, OK_ITEM], "duplicate"),
        ([{"bId": "b1", "Fault": VALIDATION_FAULT}, {"bId": "b1", "Fault": DUP_FAULT}], "duplicate"),
        ([{"bId": "b1", "Fault": DUP_FAULT}, {"bId": "b1", "Fault": VALIDATION_FAULT}], "duplicate"),
        ([OK_ITEM, {"bId": "b1"}], "unknown"),
        ([{"bId": "b1"}, OK_ITEM, OK_ITEM], "unknown"),
        ([OK_ITEM, OK_ITEM], "ok"),
        ([OK_ITEM, {"bid": "b1", "fault": {"error": [{"message": "Duplicate Name Exists Error", "code": 6240}]}}],
         "duplicate"),
    ],
    ids=["ok-then-fault", "fault-then-ok", "validation-then-duplicate", "duplicate-then-validation",
         "ok-then-empty", "empty-then-oks", "ok-twice", "ok-then-lower-case-fault"],
)
def test_a_repeated_bid_keeps_the_worst_answer(answers: list[dict[str, Any]], expected: str) -> None:
    d = diagnose(200, batch_json(*answers), "application/json")
    assert report(d)["items"] == {"b1": expected}
    assert d.label == expected
    if expected != "ok":
        assert "answered" in d.details and "times" in d.details


@pytest.mark.parametrize("real_bid", ["#1", "#2", "(no bId #2)", "(no bId #2)'", "(no bId #1)"])
def test_keys_of_items_without_a_bid_never_collide_with_real_ones(real_bid: str) -> None:
    body = batch_json({"bId": real_bid, "Fault": DUP_FAULT}, {"Customer": {"Id": "1"}}, {"Fault": VALIDATION_FAULT},
                      {"bId": "", "Customer": {"Id": "2"}})
    d = diagnose(200, body, "application/json")
    assert len(d.items) == 4  # nothing overwritten
    assert d.items[real_bid].kind is Kind.DUPLICATE
    labels = sorted(item.label for item in d.items.values())
    assert labels == ["duplicate", "ok", "ok", "validation"]


# -- redaction


SECRET = "S3cr3tV4lu3xyzABC"


@pytest.mark.parametrize(
    "leak",
    [
        f"callback?accessToken={SECRET}&realmId=1",
        f"access_token={SECRET}",
        f"ACCESS_TOKEN={SECRET}",
        f"Access-Token: {SECRET}",
        f"refreshToken={SECRET}",
        f"refresh_token={SECRET}",
        f"clientSecret={SECRET}",
        f"client_secret={SECRET}",
        f"CLIENT_SECRET: '{SECRET}'",
        f"token={SECRET}",
        f"Token = {SECRET}",
        f"x_refresh_token={SECRET}",
        f"Authorization: Bearer {SECRET}",
        f"authorization: basic {SECRET}",
        f"Authorization: OAuth oauth_token=\"{SECRET}\"",
        f"Cookie: qbn.sid={SECRET}; qbn.tkt=x",
        f"set-cookie: qbn.sid={SECRET}; Path=/; HttpOnly",
        f"<access_token>{SECRET}</access_token>",
        f"<ns2:AccessToken>{SECRET}</ns2:AccessToken>",
        f"<REFRESH_TOKEN>{SECRET}",
        f'{{"access_token": "{SECRET}", "token_type": "bearer"}}',
        f'{{"Access_Token":"{SECRET}"}}',
        f'"refresh_token" : "{SECRET}',
        f'sent \\"client_secret\\":\\"{SECRET}\\"',
        f"&lt;access_token&gt;{SECRET}&lt;/access_token&gt;",
        f"password={SECRET}",
    ],
)
@pytest.mark.parametrize("where", ["detail", "message", "text-body", "html-body", "oauth-description"])
def test_secrets_in_provider_text_never_reach_details(leak: str, where: str) -> None:
    text = f"The request failed: {leak} (see intuit_tid 1-abc-123 and requestid 9f8e7d6c)"
    if where == "detail":
        d = diagnose(400, fault_json(("6000", "A business validation error", text, "")), "application/json")
    elif where == "message":
        d = diagnose(400, fault_json(("6000", text, "", "")), "application/json")
    elif where == "text-body":
        d = diagnose(500, text, "text/plain")
    elif where == "html-body":
        d = diagnose(502, f"<html><body><p>{html_escape(text)}</p></body></html>", "text/html")
    else:
        d = diagnose(400, json.dumps({"error": "invalid_request", "error_description": text}), endpoint="token")
    assert SECRET not in d.details and SECRET[:8] not in d.details and SECRET[-8:] not in d.details
    assert "[redacted]" in d.details
    assert "1-abc-123" in d.details and "9f8e7d6c" in d.details  # ids support asks for are kept


@pytest.mark.parametrize("pad", [1900, 1950, 1990, 1995, 2000, 2010, 19_990, 19_998])
def test_a_secret_at_the_cut_is_redacted_whole(pad: int) -> None:
    body = "x" * pad + f" access_token={SECRET}{SECRET} tail"
    for d in (diagnose(500, body, "text/plain"),
              diagnose(400, fault_json(("6000", "m", body, "")), "application/json"),
              diagnose(400, fault_json(("6000", "m", body, "")), "application/json", {"intuit_tid": "1-tid"})):
        assert len(d.details) <= 2000
        for i in range(0, len(SECRET) - 4):
            assert SECRET[i : i + 5] not in d.details


def test_ids_and_sync_tokens_are_not_redacted() -> None:
    text = ('intuit_tid=1-5f3c7a2e-4b1d requestid=0123456789abcdef "SyncToken": "3" "token_type": "bearer" '
            '"x_refresh_token_expires_in": 8726400 errorCode=003200')
    d = diagnose(500, text, "text/plain", {"intuit_tid": "1-5f3c7a2e-4b1d"})
    assert "[redacted]" not in d.details
    assert '"SyncToken": "3"' in d.details and "8726400" in d.details and "0123456789abcdef" in d.details
    assert d.details.endswith("intuit_tid: 1-5f3c7a2e-4b1d")


# -- encodings and binary bodies


@pytest.mark.parametrize(
    "encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16", "utf-32", "utf-8-sig", "utf-8"]
)
@pytest.mark.parametrize("body", [DUPLICATE_JSON, DUPLICATE_XML.replace('encoding="UTF-8" ', "")], ids=["json", "xml"])
def test_unicode_bodies_with_or_without_a_bom_read_alike(encoding: str, body: str) -> None:
    body = body.replace("Another customer", "Un autre client « Café »")
    for content_type in ("application/json", "application/xml;charset=UTF-8", None):
        d = diagnose(400, body.encode(encoding), content_type)
        assert d.kind is Kind.DUPLICATE, (encoding, content_type)
        assert "Café" in d.details and "\x00" not in d.details


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        ("Le nom « Café Dupré » existe déjà.".encode("latin-1"), "application/json", "Café Dupré"),
        ("Le nom « Café Dupré » existe déjà.".encode("latin-1"), "application/json;charset=ISO-8859-1", "Café Dupré"),
        ("It\u2019s taken \u2014 \u20ac5".encode("cp1252"), "application/json", "It\u2019s taken \u2014 \u20ac5"),
        ("Café".encode("utf-8-sig"), "text/plain", "Café"),
    ],
    ids=["latin-1", "latin-1-declared", "windows-1252", "utf-8-bom"],
)
def test_8bit_text_reads_as_text(raw: bytes, content_type: str, expected: str) -> None:
    body = fault_json(("6240", "Duplicate Name Exists Error", "PLACEHOLDER", "")).encode("ascii")
    body = body.replace(b"PLACEHOLDER", raw)
    d = diagnose(400, body, content_type)
    assert d.kind is Kind.DUPLICATE and expected in d.details


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (gzip.compress(DUPLICATE_JSON.encode()), "gzip"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)), "PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)), "JPEG"),
        (b"PK\x03\x04\x14\x00\x00\x00" + bytes(range(256)), "zip"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)), "PDF"),
        (bytes(range(256)) * 4, "binary"),
        (b"\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f" * 50, "binary"),
    ],
    ids=["gzip", "png", "jpeg", "zip", "pdf", "random", "control-characters"],
)
@pytest.mark.parametrize("status", [200, 400, 401, 429, 502])
def test_binary_bodies_are_described_not_shown(raw: bytes, name: str, status: int) -> None:
    d = diagnose(status, raw, "application/octet-stream")
    assert d.kind is {401: Kind.AUTH_EXPIRED, 429: Kind.RATE_LIMITED}.get(status, Kind.UNKNOWN)
    assert f"{len(raw)} bytes" in d.details and "content-type application/octet-stream" in d.details
    assert "binary body" in d.details and (name == "binary" or name in d.details)
    assert all(ch.isprintable() or ch == "\n" for ch in d.details), repr(d.details)
    assert len(d.details) < 300


# -- HTML keeps its links


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ('<a href="https://status.developer.intuit.com/">status page</a>',
         "status page (https://status.developer.intuit.com/)"),
        ("<a href='https://help.example.com/a?x=1&amp;y=2'>help</a>", "help (https://help.example.com/a?x=1&y=2)"),
        ("<A HREF=https://example.com/x target=_blank>there</A>", "there (https://example.com/x)"),
        ('<a class="l" href="https://example.com/x"><b>bold</b> link</a>', "bold link (https://example.com/x)"),
        ('<a href="https://example.com/x">https://example.com/x</a>', "https://example.com/x"),
        ('<a href="mailto:support@example.com">write to us</a>', "write to us (mailto:support@example.com)"),
        ('<a href="/relative">home</a>', "home"),
        ('<a href="javascript:alert(1)">click</a>', "click"),
    ],
    ids=["double-quotes", "single-quotes-entities", "unquoted-upper-case", "nested-tags", "text-is-url", "mailto",
         "relative", "javascript"],
)
@pytest.mark.parametrize("where", ["html-page", "fault-detail"])
def test_html_links_keep_their_urls(markup: str, expected: str, where: str) -> None:
    if where == "html-page":
        body = f"<html><head><title>Maintenance</title></head><body><p>See {markup} for news.</p></body></html>"
        d = diagnose(503, body, "text/html")
    else:
        d = diagnose(400, fault_json(("6000", "A business validation error", f"See {markup} for news.", "")))
    assert f"See {expected} for news." in d.details
    assert "<a" not in d.details.lower() and "javascript" not in d.details and "/relative" not in d.details


def test_details_with_links_are_escaped_for_mrkdwn_downstream() -> None:
    from bot.blocks.text import escape_mrkdwn

    d = diagnose(503, '<html><body><a href="https://x.example/?a=1&amp;b=<2>">A & B</a></body></html>', "text/html")
    assert "A & B (https://x.example/?a=1&b=<2>)" in d.details  # plain text here: the Slack side escapes
    assert "A &amp; B (https://x.example/?a=1&amp;b=&lt;2&gt;)" in escape_mrkdwn(d.details)


# -- codes named only in the text


@pytest.mark.parametrize(
    ("error", "codes"),
    [
        ({"Message": "message=AuthenticationFailed; errorCode=003200; statusCode=401"}, ["3200"]),
        ({"Message": "x", "Detail": "errorCode=006240 in detail"}, ["6240"]),
        ({"Message": "errorCode=003200", "code": "3200"}, ["3200"]),
        ({"Message": "errorCode=003100; then errorCode=003200", "code": "100"}, ["100", "3100", "3200"]),
        ({"Message": "x", "Detail": '{"errorCode": "6240"}'}, ["6240"]),
        ({"Message": "ERRORCODE = 0610"}, ["610"]),
        ({"Message": "x", "errorCode": "6240"}, ["6240"]),
        ({"Message": "x", "code": 6240}, ["6240"]),
        ({"Message": "x", "code": 6240.0}, ["6240"]),
        ({"Message": "x", "code": "006240"}, ["6240"]),
    ],
    ids=["message", "detail", "same-as-code", "several", "json-in-detail", "upper-case", "errorCode-key", "int",
         "float", "zero-padded"],
)
def test_codes_named_in_the_text_are_listed(error: dict[str, Any], codes: list[str]) -> None:
    body = json.dumps({"Fault": {"Error": [error], "type": "ValidationFault"}})
    d = diagnose(400, body, "application/json")
    assert list(d.codes) == codes
    assert report(d)["codes"] == codes


@pytest.mark.parametrize(
    ("status", "text", "kind", "code"),
    [
        (403, "message=ThrottleExceeded; errorCode=003001; statusCode=403", Kind.RATE_LIMITED, "3001"),
        (400, "message=ValidationFailed; errorCode=006240; statusCode=400", Kind.DUPLICATE, "6240"),
        (500, "message=InternalServerError; errorCode=003100; statusCode=500", Kind.UNKNOWN, "3100"),
        (401, "message=AuthenticationFailed; errorCode=003200; statusCode=401", Kind.AUTH_EXPIRED, "3200"),
    ],
)
def test_a_plain_text_body_with_an_error_code_is_read_as_a_fault(status: int, text: str, kind: Kind,
                                                                 code: str) -> None:
    for content_type in ("text/plain", "application/json", None):
        d = diagnose(status, text, content_type)
        assert d.kind is kind and d.codes == (code,)


# -- 1040 and fault types


@pytest.mark.parametrize("fault_type", ["ValidationFault", "SystemFault", "SERVICE", None])
@pytest.mark.parametrize("status", [200, 400, 413, 500])
@pytest.mark.parametrize("as_xml", [False, True])
def test_1040_batch_too_large_is_syncbots_request_not_a_validation_error(fault_type: str | None, status: int,
                                                                           as_xml: bool) -> None:
    if as_xml:
        type_attr = f' type="{fault_type}"' if fault_type else ""
        body = (f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3"><Fault{type_attr}><Error code="1040">'
                "<Message>Batch size exceeds allowed limit</Message><Detail>Batch size limit is 30</Detail></Error>"
                "</Fault></IntuitResponse>")
    else:
        body = json.dumps({"Fault": {"Error": [{"Message": "Batch size exceeds allowed limit", "code": "1040"}],
                                     "type": fault_type}})
    d = diagnose(status, body, "application/json", bids=["b1", "b2"])
    assert d.kind is Kind.UNKNOWN and d.codes == ("1040",) and d.field is None
    assert d.hint and "batch request" in d.hint and "not the record" in d.hint
    assert FixAction.FILL_FIELD not in d.actions
    assert report(d)["items"] == {"b1": "unknown", "b2": "unknown"}
    assert classify_error(FaultError("1040", "m", None, None), 400, "ValidationFault") is Kind.UNKNOWN


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [
        ({"Error": [], "type": "ValidationFault"}, 400, Kind.UNKNOWN),
        ({"Error": None, "type": "ValidationFault"}, 400, Kind.UNKNOWN),
        ({"type": "ValidationFault"}, 400, Kind.UNKNOWN),
        ({"Error": [], "type": "SystemFault"}, 500, Kind.UNKNOWN),
        ({"Error": [], "type": "AuthenticationFault"}, 403, Kind.AUTH_EXPIRED),
        ({"Error": [], "type": "AuthorizationFault"}, 403, Kind.AUTH_EXPIRED),
        ({"Error": [], "type": "ThrottlingFault"}, 403, Kind.RATE_LIMITED),
        ({"Error": []}, 400, Kind.UNKNOWN),
        ({}, 400, Kind.UNKNOWN),
        ({"Error": {"Message": "Duplicate Name Exists Error", "code": "6240"}}, 400, Kind.DUPLICATE),
        ({"Error": ["Duplicate Name Exists Error errorCode=6240"]}, 400, Kind.DUPLICATE),
        ({"error": {"message": "Object Not Found", "code": 610}, "type": "ValidationFault"}, 400, Kind.NOT_FOUND),
        ({"Error": [{"Message": "too many", "code": "9999"}], "type": "ThrottlingFault"}, 403, Kind.RATE_LIMITED),
    ],
    ids=["empty-list", "null", "missing", "system", "authentication", "authorization", "throttling", "no-type",
         "empty-fault", "error-as-object", "error-as-string", "lower-case-object-int-code", "throttling-type"],
)
def test_fault_shapes(fault: dict[str, Any], status: int, kind: Kind) -> None:
    for body in (json.dumps({"Fault": fault}), json.dumps({"fault": fault}), json.dumps({"Fault": [fault]})):
        d = diagnose(status, body, "application/json")
        assert d.kind is kind, body
        if kind is Kind.UNKNOWN:
            assert d.field is None and f"HTTP {status}" in d.details
    if kind is Kind.UNKNOWN and status == 400:
        assert diagnose(400, json.dumps({"Fault": "Something went wrong"})).kind is Kind.UNKNOWN


@pytest.mark.parametrize(
    "xml",
    [
        DUPLICATE_XML,
        DUPLICATE_XML.replace("<IntuitResponse xmlns=", "<ns2:IntuitResponse xmlns:ns2=")
        .replace("</IntuitResponse>", "</ns2:IntuitResponse>")
        .replace("<Fault", "<ns2:Fault").replace("</Fault>", "</ns2:Fault>")
        .replace("<Error", "<ns2:Error").replace("</Error>", "</ns2:Error>")
        .replace("<Message>", "<ns2:Message>").replace("</Message>", "</ns2:Message>")
        .replace("<Detail>", "<ns2:Detail>").replace("</Detail>", "</ns2:Detail>"),
        DUPLICATE_XML.replace('xmlns="http://schema.intuit.com/finance/v3"',
                              'xmlns="http://schema.intuit.com/finance/v3" '
                              'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'),
        "\ufeff" + DUPLICATE_XML,
        "\r\n  " + DUPLICATE_XML.replace("><", ">\n  <"),
        DUPLICATE_XML.replace("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>", ""),
    ],
    ids=["default-namespace", "prefixed", "xsi", "bom", "indented", "no-declaration"],
)
def test_xml_faults_with_namespaces_and_prefixes(xml: str) -> None:
    d = diagnose(400, xml.encode("utf-8"), "text/xml")
    assert d.kind is Kind.DUPLICATE and d.codes == ("6240",) and d.field == "DisplayName"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("\ufeff" + DUPLICATE_JSON, "application/json"),
        (codecs.BOM_UTF8 + DUPLICATE_JSON.encode(), "application/json"),
        (codecs.BOM_UTF8 + DUPLICATE_JSON.encode(), "text/plain; charset=utf-8"),
        (DUPLICATE_JSON, "text/plain"),
        (DUPLICATE_JSON, "text/html"),
        (DUPLICATE_JSON, "application/octet-stream"),
        ("  \n" + DUPLICATE_JSON + "\n", "TEXT/PLAIN;CHARSET=UTF-8"),
    ],
    ids=["bom-text", "bom-bytes", "bom-text-plain", "text-plain", "text-html", "octet-stream", "padded-upper-case"],
)
def test_json_whatever_the_bom_or_the_content_type(body: str | bytes, content_type: str) -> None:
    d = diagnose(400, body if isinstance(body, bytes) else body.encode(), content_type)
    assert d.kind is Kind.DUPLICATE and d.codes == ("6240",)


@pytest.mark.parametrize(
    "body",
    [
        "<html><head><title>429 Too Many Requests</title></head><body><h1>Too Many Requests</h1></body></html>",
        "<!DOCTYPE html><html><body>Rate limit <b>exceeded</b></body></html>",
        "Too Many Requests",
    ],
)
@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [("120", 120, 120), (None, None, None), ("0", 0, 0), ("-5", 0, 0), ("999999", 3600, 3600)],
)
def test_429_with_html_or_text_is_rate_limited(body: str, retry_after: str | None, low: float | None,
                                                high: float | None) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    d = diagnose(429, body.encode(), "text/html", headers)
    assert d.kind is Kind.RATE_LIMITED and "HTTP 429" in d.details and "<" not in d.details
    assert "Too Many Requests" in d.details or "exceeded" in d.details
    if low is None:
        assert d.retry_after is None
    else:
        assert d.retry_after is not None and low <= d.retry_after <= high


@pytest.mark.parametrize("ahead_s", [90, 600])
@pytest.mark.parametrize("form", ["rfc1123", "rfc850", "asctime", "no-zone"])
def test_retry_after_as_an_http_date(ahead_s: int, form: str) -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    when = datetime.now(UTC) + timedelta(seconds=ahead_s)
    value = {
        "rfc1123": format_datetime(when, usegmt=True),
        "rfc850": when.strftime("%A, %d-%b-%y %H:%M:%S GMT"),
        "asctime": when.strftime("%a %b %d %H:%M:%S %Y"),
        "no-zone": when.strftime("%a, %d %b %Y %H:%M:%S"),
    }[form]
    d = diagnose(429, "", headers={"Retry-After": value})
    assert d.retry_after is not None and ahead_s - 30 <= d.retry_after <= ahead_s, value


# -- OAuth errors in any case


@pytest.mark.parametrize(
    "body",
    [
        {"error": "INVALID_GRANT"},
        {"error": "Invalid_Grant"},
        {"error": " invalid_grant "},
        {"error": "invalid-grant"},
        {"ERROR": "invalid_grant", "ERROR_DESCRIPTION": "Token invalid"},
        {"Error": "INVALID_GRANT", "Error_Description": "Incorrect or invalid refresh token"},
        {"error_description": "Incorrect or invalid refresh token"},
        {"error_description": "The refresh token has expired"},
        {"error_description": "Refresh token was revoked"},
        {"error_description": "invalid_grant"},
        {"error_description": "INVALID_GRANT: token expired"},
        {"error_description": "Invalid refresh token", "error_uri": "https://developer.intuit.com"},
    ],
)
@pytest.mark.parametrize("endpoint", ["token", "revoke", "api"])
def test_invalid_grant_in_any_case_or_only_described_is_auth_expired(body: dict[str, str], endpoint: str) -> None:
    d = diagnose(400, json.dumps(body), "application/json;charset=UTF-8", endpoint=endpoint)
    assert d.kind is Kind.AUTH_EXPIRED, d.details
    assert d.codes == ("invalid_grant",)
    assert d.hint and "reconnect" in d.hint


@pytest.mark.parametrize(
    ("body", "kind", "code"),
    [
        ({"error": "INVALID_CLIENT"}, Kind.AUTH_EXPIRED, "invalid_client"),
        ({"error": "Unauthorized_Client"}, Kind.AUTH_EXPIRED, "unauthorized_client"),
        ({"error": "ACCESS_DENIED"}, Kind.AUTH_EXPIRED, "access_denied"),
        ({"error_description": "invalid_client: client authentication failed"}, Kind.AUTH_EXPIRED, "invalid_client"),
        ({"error": "UNSUPPORTED_GRANT_TYPE"}, Kind.UNKNOWN, "unsupported_grant_type"),
        ({"error_description": "Something odd happened"}, Kind.UNKNOWN, None),
    ],
)
def test_other_oauth_errors_in_any_case(body: dict[str, str], kind: Kind, code: str | None) -> None:
    d = diagnose(400, json.dumps(body), "application/json", endpoint="token")
    assert d.kind is kind
    assert d.codes == ((code,) if code else ())
    if code in ("invalid_client", "unauthorized_client"):
        assert d.hint and "credentials" in d.hint


# -- syncbot diagnose


def test_diagnose_command_takes_bids_and_headers() -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    runner = CliRunner()
    envelope = fault_json(("10000", "An application error has occurred", "", ""), fault_type="SystemFault")
    result = runner.invoke(app, ["diagnose", "--status", "500", "--bid", "b1", "--bid", "b2", "--header",
                                 "intuit_tid: 1-abc", "--header", "Retry-After: 30", "-"], input=envelope)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["items"] == {"b1": "unknown", "b2": "unknown"}
    assert out["intuit_tid"] == "1-abc" and out["retry_after"] == 30.0 and "intuit_tid: 1-abc" in out["details"]
    binary = runner.invoke(app, ["diagnose", "--status", "502", "--content-type", "application/json", "-"],
                           input=gzip.compress(b"{}"))
    assert binary.exit_code == 0 and "binary body (gzip" in json.loads(binary.output)["details"]
    bad = runner.invoke(app, ["diagnose", "--status", "500", "--header", "no colon here", "-"], input="{}")
    assert bad.exit_code == 2


# -- the Intuit API gateway's own error format, and named codes


def gateway(code: str, detail: str | None = "Malformed bearer token: too short or too long",
            error_type: str = "INPUT") -> str:
    return json.dumps({"code": code, "type": error_type, "message": None, "detail": detail, "moreInfo": None})


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, gateway("AuthenticationFailed"), Kind.AUTH_EXPIRED),
        (403, gateway("AuthenticationFailed"), Kind.AUTH_EXPIRED),
        (400, gateway("AuthenticationFailed"), Kind.AUTH_EXPIRED),
        (500, gateway("AuthenticationFailed"), Kind.UNKNOWN),  # a server error says nothing of the token
        (502, gateway("AuthenticationFailed"), Kind.UNKNOWN),
        (403, gateway("AuthorizationFailed", "Application authorization failed: insufficient user access role"),
         Kind.AUTH_EXPIRED),
        (400, gateway("AuthorizationFailed", "The token was revoked"), Kind.AUTH_EXPIRED),
        (400, gateway("AuthorizationFailed", "Not allowed for this company"), Kind.UNKNOWN),
        (500, gateway("AuthorizationFailed", "The token was revoked"), Kind.UNKNOWN),
        (403, gateway("ThrottleExceeded", "The request limit was reached.", "SYSTEM"), Kind.RATE_LIMITED),
        (503, gateway("TooManyRequests", None), Kind.RATE_LIMITED),
        (400, gateway("RATE_LIMIT_EXCEEDED", "slow down"), Kind.RATE_LIMITED),
        (403, gateway("ResourceNotFound", "routing error: incorrect endpoint requested"), Kind.UNKNOWN),
        (405, gateway("MethodNotAllowed", "only GET and POST"), Kind.UNKNOWN),
        (403, '{"CODE":"authentication_failed","TYPE":"INPUT","DETAIL":"Token expired"}', Kind.AUTH_EXPIRED),
        (403, '{"error":{"code":"invalid_token","message":"The access token expired"}}', Kind.AUTH_EXPIRED),
        (400, '{"errors":[{"code":"AuthenticationFailed","message":"Malformed bearer token"}]}', Kind.AUTH_EXPIRED),
        (403, '<?xml version="1.0"?><Error><code>AuthorizationFailed</code><type>INPUT</type>'
              "<detail>insufficient user access role</detail></Error>", Kind.AUTH_EXPIRED),
        (401, '{"fault":{"faultstring":"Invalid access token","detail":{"errorcode":"oauth.v2.InvalidAccessToken"}}}',
         Kind.AUTH_EXPIRED),
        (403, '{"fault":{"faultstring":"Invalid access token","detail":{"errorcode":"oauth.v2.InvalidAccessToken"}}}',
         Kind.AUTH_EXPIRED),
        (503, '{"fault":{"faultstring":"Spike arrest violation",'
              '"detail":{"errorcode":"policies.ratelimit.SpikeArrestViolation"}}}', Kind.RATE_LIMITED),
        (500, '{"fault":{"faultstring":"Unexpected","detail":{"errorcode":"messaging.runtime.Unknown"}}}',
         Kind.UNKNOWN),
    ],
    ids=["401", "403", "400", "500", "502", "authorization-403", "authorization-400-token",
         "authorization-400-other", "authorization-500", "throttle-403", "too-many-503", "rate-limit-upper",
         "resource-not-found", "method-not-allowed", "upper-case-keys", "error-wrapper", "errors-list", "xml",
         "gateway-fault-401", "gateway-fault-403", "spike-arrest-503", "gateway-fault-500"],
)
def test_the_gateways_own_error_format_is_read_with_its_status(status: int, body: str, kind: Kind) -> None:
    d = diagnose(status, body, "application/json;charset=UTF-8")
    assert d.kind is kind, d.details
    assert d.codes and not d.codes[0].isdigit()  # the gateway's named code is kept
    assert "{" not in d.details and "<Error>" not in d.details  # read, not dumped raw
    assert report(d)["kind"] == kind.value


def test_the_gateways_details_read_as_its_words() -> None:
    d = diagnose(403, gateway("AuthenticationFailed"), "application/json", {"intuit_tid": "1-gw"})
    assert d.details == "AuthenticationFailed: Malformed bearer token: too short or too long\nintuit_tid: 1-gw"
    other = diagnose(404, json.dumps({"code": "ResourceNotFound", "type": "INPUT", "detail": "wrong endpoint",
                                      "moreInfo": "https://developer.intuit.com/errors"}))
    assert other.details.startswith("HTTP 404 Not Found from the Intuit API gateway (INPUT):\n")
    assert "ResourceNotFound: wrong endpoint (https://developer.intuit.com/errors)" in other.details


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (403, "invalid_token", Kind.AUTH_EXPIRED),
        (400, "invalid_token", Kind.AUTH_EXPIRED),
        (500, "invalid_token", Kind.UNKNOWN),
        (502, "invalid_grant", Kind.UNKNOWN),
        (503, "invalid_client", Kind.UNKNOWN),
        (400, "rate_limit_exceeded", Kind.RATE_LIMITED),
    ],
)
@pytest.mark.parametrize("endpoint", ["api", "token"])
def test_oauth_errors_are_read_with_their_status(status: int, error: str, kind: Kind, endpoint: str) -> None:
    d = diagnose(status, json.dumps({"error": error, "error_description": "The access token expired"}),
                 "application/json", endpoint=endpoint)
    assert d.kind is kind, d.details
    assert d.codes == (error,)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (403, "message=ThrottleExceeded; statusCode=403", Kind.RATE_LIMITED),
        (503, '{"fault":{"error":[{"message":"message=ThrottleExceeded; statusCode=503","detail":"Try later"}],'
              '"type":"SERVICE"}}', Kind.RATE_LIMITED),
        (403, '{"fault":{"error":[{"message":"message=AuthenticationFailed; statusCode=403"}],"type":"SERVICE"}}',
         Kind.AUTH_EXPIRED),
        (500, '{"Fault":{"Error":[{"Message":"Authorization Failure","code":"120","Detail":"AuthorizationFailure: '
              'Unknown Error during Authentication, statusCode: 500"}],"type":"AuthorizatonFault"}}', Kind.UNKNOWN),
        (403, '{"Fault":{"Error":[{"Message":"Authorization Failure","code":"199"}],"type":"AuthorizatonFault"}}',
         Kind.AUTH_EXPIRED),
    ],
    ids=["text-name-only", "fault-name-only", "auth-name-only", "misspelt-type-500", "misspelt-type-403"],
)
def test_codes_named_only_in_the_message_and_misspelt_types(status: int, body: str, kind: Kind) -> None:
    assert diagnose(status, body, "application/json").kind is kind


@pytest.mark.parametrize(
    "text",
    ["Malformed bearer token: too short or too long", "invalid_token: The access token expired",
     "Basic authentication is not supported"],
)
def test_sentences_about_tokens_are_not_redacted(text: str) -> None:
    d = diagnose(400, fault_json(("6000", "A business validation error", text, "")))
    assert text in d.details and "[redacted]" not in d.details


# -- variants of each kind beyond the real cases (tests/fixtures/qbo_variants.json): other codes of the same
# families, XML vs JSON, key case, charsets, batch answers with mixed items, token endpoint errors, gateway
# pages, truncated bodies, huge details. Those with a "found" note were diagnosed wrongly before their rule.

VARIANTS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "qbo_variants.json").read_text(encoding="utf-8")
)


def variant_body(case: dict[str, Any]) -> bytes:
    return case["body"].encode(case.get("encoding") or "utf-8")


@pytest.mark.parametrize("case", VARIANTS, ids=[c["id"] for c in VARIANTS])
def test_variant_gets_an_acceptable_kind(case: dict[str, Any]) -> None:
    d = diagnose(case["http_status"], variant_body(case), case.get("content_type"), case.get("headers"),
                 endpoint_of(case), bids=case.get("bids"))
    assert d.label in case["acceptable_kinds"], d.details
    if "expected_per_item" in case:
        assert {bid: item.label for bid, item in d.items.items()} == case["expected_per_item"]
    assert 0 < len(d.details) <= 2000
    assert all(ch.isprintable() or ch == "\n" for ch in d.details)


def test_variants_through_syncbot_diagnose() -> None:
    """The operator command prints, for every variant, the kind the engine's function gives."""
    from typer.testing import CliRunner

    from bot.cli import app

    runner = CliRunner()
    for case in VARIANTS:
        args = ["diagnose", "--status", str(case["http_status"]), "--endpoint", endpoint_of(case)]
        if case.get("content_type"):
            args += ["--content-type", case["content_type"]]
        for name, value in (case.get("headers") or {}).items():
            args += ["--header", f"{name}: {value}"]
        result = runner.invoke(app, [*args, "-"], input=variant_body(case))
        assert result.exit_code == 0, (case["id"], result.output)
        out = json.loads(result.output)
        assert out["kind"] in case["acceptable_kinds"], (case["id"], out["details"])
        if "expected_per_item" in case:
            assert out["items"] == case["expected_per_item"], case["id"]


def test_the_lower_case_envelope_is_a_fault_answer_not_an_empty_batch() -> None:
    [case] = [c for c in VARIANTS if c["id"] == "V-AUTH-15"]
    d = diagnose(403, case["body"], case["content_type"], bids=["b0", "b1"])
    assert d.kind is Kind.AUTH_EXPIRED and d.items == {"b0": d.items["b0"], "b1": d.items["b1"]}
    assert {i.label for i in d.items.values()} == {"auth_expired"}
    server = diagnose(500, case["body"].replace("statusCode=403", "statusCode=500"), case["content_type"])
    assert server.kind is Kind.UNKNOWN and "3100" in server.details and "batch" not in server.details


@pytest.mark.parametrize("code", ["500", "600", "800", "1000", "1010", "1020", "1050", "1999", "4000", "4001",
                                  "10001", "20000"])
@pytest.mark.parametrize("fault_type", ["ValidationFault", "SystemFault", None])
def test_codes_about_the_request_are_never_a_field_to_fill(code: str, fault_type: str | None) -> None:
    d = diagnose(400, fault_json((code, "Something", "about the request", ""), fault_type=fault_type))
    assert d.kind is Kind.UNKNOWN
    assert FixAction.FILL_FIELD not in d.actions and d.field is None


# ---------------------------------------------------------------------------------------------
# Reading the words: one code, several meanings (issue 15, point 10)

MEANING_CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "qbo_meanings.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize("case", MEANING_CASES, ids=[c["id"] for c in MEANING_CASES])
def test_the_words_give_the_codes_meaning(case: dict[str, Any]) -> None:
    d = diagnose(case["http_status"], case["body"], case["content_type"])
    assert (d.label, d.meaning) == (case["expected_kind"], case["expected_meaning"]), d.details
    assert report(d)["meaning"] == case["expected_meaning"]
    assert d.info is not None and d.info.meaning == case["expected_meaning"]


def test_a_reference_made_inactive_is_fixed_on_that_record_never_by_recreating_this_one() -> None:
    [case] = [c for c in MEANING_CASES if c["id"] == "M-610-INACTIVE"]
    d = diagnose(case["http_status"], case["body"], case["content_type"])
    assert d.kind is Kind.NOT_FOUND and d.info is not None
    assert d.info.title == "Uses an inactive record"
    assert d.cause == ("A record this one uses (a customer, item, account or tax code) has been made inactive in "
                       "QuickBooks.")
    assert d.fix is not None and d.fix.startswith("Reactivate that record in QuickBooks, or choose another one")
    assert d.actions == (FixAction.RETRY,)  # no Re-create, no Unlink: this record is fine
    deleted = diagnose(400, fault_json(("610", "Object Not Found", "Object Not Found : Another user has deleted "
                                        "this transaction.", "")))
    assert deleted.meaning is None and deleted.actions == (FixAction.RECREATE, FixAction.UNLINK)


def test_a_closed_period_is_not_a_field_to_fill() -> None:
    for case_id in ("M-6000-CLOSED", "M-5010-CLOSED"):
        [case] = [c for c in MEANING_CASES if c["id"] == case_id]
        d = diagnose(case["http_status"], case["body"], case["content_type"])
        assert d.kind is Kind.CLOSED_PERIOD and d.field is None
        assert FixAction.FILL_FIELD not in d.actions
        assert d.fix is not None and "closing date" in d.fix and "bookkeeper" in d.fix
        assert d.entry_status == "error"


def test_a_duplicate_number_asks_for_a_new_number_and_names_the_field() -> None:
    d = diagnose(400, fault_json(("6140", "Duplicate Document Number Error", "This number has already been used.",
                                  "")))
    assert (d.kind, d.meaning, d.field) == (Kind.DUPLICATE, "duplicate_number", "DocNumber")
    assert d.actions == (FixAction.FILL_FIELD, FixAction.RETRY)
    name = diagnose(400, DUPLICATE_JSON)
    assert name.meaning is None and name.actions == (FixAction.RETRY, FixAction.LINK_EXISTING)


def test_syncbots_own_request_offers_no_field() -> None:
    [case] = [c for c in CASES if c["id"] == "QBO-18"]
    d = diagnose_case(case)
    assert d.kind is Kind.VALIDATION  # the case's acceptable kind, read in its other meaning
    for item in d.items.values():
        assert item.meaning == "own_request" and item.field is None
        assert item.actions == (FixAction.RETRY,)
        assert item.fix is not None and "fill" not in item.fix.lower()


def test_the_words_never_override_a_connection_wide_code() -> None:
    # a throttle or an expired token whose text happens to say "inactive" or "closing date" stays what it is
    throttle = fault_json(("3001", "ThrottleExceeded", "The period is closed; inactive", ""), fault_type="SERVICE")
    assert diagnose(429, throttle).kind is Kind.RATE_LIMITED and diagnose(429, throttle).meaning is None
    auth = fault_json(("3200", "AuthenticationFailed", "closing date inactive", ""), fault_type="AUTHENTICATION")
    assert diagnose(401, auth).kind is Kind.AUTH_EXPIRED and diagnose(401, auth).meaning is None


def test_every_meaning_belongs_to_a_kind_and_has_the_articles_shape() -> None:
    from sync.diagnosis import MEANINGS, kind_info

    for key, m in MEANINGS.items():
        assert m.key == key and m.kind in KINDS
        assert m.cause.endswith(".") and m.fix.endswith(".")
        info = kind_info(m.kind, key)
        assert (info.status, info.scope) == (KINDS[m.kind].status, KINDS[m.kind].scope)  # the kind's severity
    assert kind_info(Kind.DUPLICATE, "inactive_reference") == KINDS[Kind.DUPLICATE]  # another kind's meaning
    assert kind_info(Kind.NOT_FOUND, "no-such-meaning") == KINDS[Kind.NOT_FOUND]
