"""Tests of sync.diagnosis and sync.providers.qbo_wire.

The real replies (tests/fixtures/qbo_replies.json, a copy of shared/cases/qbo_replies.json) must each
get an acceptable kind through the same code the engine calls; the rest test whole kinds of fault
beyond the file: content types that lie, lower-case keys, several errors in one Fault, throttles as
403 and 429, server errors, gateway pages, truncated and empty bodies, hostile XML, odd encodings.
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
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


def test_fixture_is_the_shared_file_unchanged() -> None:
    shared = Path("/work/shared/cases/qbo_replies.json")
    if not shared.exists():
        pytest.skip("shared/ not present")
    assert shared.read_bytes() == (Path(__file__).parent / "fixtures" / "qbo_replies.json").read_bytes()


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
    started = time.perf_counter()
    assert parse_body(bomb, "application/xml") is None
    d = diagnose(400, bomb, "application/xml")
    assert time.perf_counter() - started < 1.0
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
    assert diagnose(400, tax).entry_status == "error"  # the write failed
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
        assert info.status == ("warning" if kind is Kind.TOTAL_MISMATCH else "error")
        expected_scope = kind in (Kind.AUTH_EXPIRED, Kind.RATE_LIMITED, Kind.SUBSCRIPTION)
        assert info.scope == ("connection" if expected_scope else "record")
        assert all(isinstance(a, FixAction) for a in info.actions)
    assert Diagnosis(kind=Kind.LOCKED).actions == (FixAction.RETRY, FixAction.MARK_RESOLVED)
    assert Diagnosis(kind=None).cause is None and Diagnosis(kind=None).info is None


def test_sync_imports_nothing_from_the_app_layers() -> None:
    for path in ("sync/diagnosis.py", "sync/providers/qbo_wire.py"):
        source = (Path(__file__).parent.parent / path).read_text(encoding="utf-8")
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
