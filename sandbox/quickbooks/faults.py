"""QuickBooks Online faults, in the exact shapes QBO puts on the wire.

In: a code and the words of the error. Out: ``QBOFault`` exceptions (raised by the book-keeping code) and the
reply bodies for the special answers (lower-case 401, XML throttle, XML 403, gateway HTML).

Sources: Intuit developer docs "Error codes" / "Fault types" (developer.intuit.com ... /develop/troubleshooting/
error-codes), the "Rate limits and throttles" page, and real answers collected in ``tests/fixtures/
qbo_replies.json`` (QBO-01 lower-case 401, QBO-11 throttle XML, QBO-13 6240, QBO-15 6140, QBO-18 6000 request_id,
QBO-19 610, QBO-21 2500, QBO-24 2020, QBO-26 batch 400, QBO-33 5010, QBO-37 nginx gateway page). Public error
tables (curbwaste, chargebee, redteam help pages) give 620 "TxnID Cannot Be Linked", 1040 "Batch size exceeds
allowed limit", 2050 string length, 500 "Unsupported Operation" and 6080 "No Name Provided".
"""

from __future__ import annotations

from typing import Any

from sandbox.quickbooks.wire import XML_TYPE, Reply, dumps, envelope_time, json_reply

BUSINESS_MESSAGE = "A business validation error has occurred while processing your request"
INACTIVE_DETAIL = (
    "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, "
    "customers, items, vendors or employees."
)
DELETED_TXN_DETAIL = "Object Not Found : Another user has deleted this transaction."


class QBOFault(Exception):
    """A QBO fault: one or more errors, a fault type and the HTTP status it travels with (400 by default).

    ``errors`` are dicts ``{"Message", "Detail", "code", "element"}`` exactly as in QBO's JSON.
    """

    def __init__(self, errors: list[dict[str, Any]], fault_type: str = "ValidationFault", status: int = 400):
        super().__init__(errors[0]["Detail"] if errors else fault_type)
        self.errors = errors
        self.fault_type = fault_type
        self.status = status

    def fault(self) -> dict[str, Any]:
        """The ``Fault`` object: ``{"Error": [...], "type": ...}`` (also used inside batch items)."""
        return {"Error": self.errors, "type": self.fault_type}

    def reply(self, now: float) -> Reply:
        """The whole HTTP answer: ``{"Fault": {...}, "time": ...}`` with this fault's status."""
        return json_reply(self.status, {"Fault": self.fault(), "time": envelope_time(now)})


def error(code: str | int, message: str, detail: str, element: str = "") -> dict[str, Any]:
    """One entry of ``Fault.Error`` in QBO's key order."""
    return {"Message": message, "Detail": detail, "code": str(code), "element": element}


def fault(code: str | int, message: str, detail: str, element: str = "",
          fault_type: str = "ValidationFault", status: int = 400) -> QBOFault:
    """A one-error QBOFault."""
    return QBOFault([error(code, message, detail, element)], fault_type, status)


# --- the faults the book-keeping raises -------------------------------------------------------------------


def required(param: str) -> QBOFault:
    """2020: a required parameter is missing (QBO-24)."""
    return fault(2020, "Required param missing, need to supply the required value for the API",
                 f"Required parameter {param} is missing in the request", param)


def duplicate_name(entity: str) -> QBOFault:
    """6240 Duplicate Name Exists (QBO-13). Customers share a name space with vendors and employees."""
    if entity == "Item":
        tail = "Another product or service is already using this name. Please use a different name."
    else:
        tail = "Another customer, vendor or employee is already using this name. Please use a different name."
    return fault(6240, "Duplicate Name Exists Error", f"The name supplied already exists. : {tail}")


def duplicate_doc_number(doc_number: str, txn_type: str, txn_id: str) -> QBOFault:
    """6140 Duplicate Document Number (QBO-15), with the ``DocNumber=... is assigned to ...`` tail QBO adds."""
    return fault(6140, "Duplicate Document Number Error",
                 "Duplicate Document Number Error : You must specify a different number. This number has already "
                 f"been used. DocNumber={doc_number} is assigned to TxnType={txn_type} with TxnId={txn_id}")


def not_found_inactive(element: str = "") -> QBOFault:
    """610 Object Not Found for a list object (customer, item) that was made inactive or is unknown."""
    return fault(610, "Object Not Found", INACTIVE_DETAIL, element)


def not_found_deleted() -> QBOFault:
    """610 Object Not Found for a transaction another user deleted (QBO-19)."""
    return fault(610, "Object Not Found", DELETED_TXN_DETAIL)


def invalid_reference(element: str) -> QBOFault:
    """2500 Invalid Reference Id: the id never existed in this company (QBO-21)."""
    return fault(2500, "Invalid Reference Id", f"Invalid Reference Id : {element}", element)


def invalid_reference_inactive(element: str) -> QBOFault:
    """2500 Invalid Reference Id for a reference to a list object (an account, a term, a tax code) that was made
    inactive: QBO's words as reported in intuit/QuickBooks-V3-PHP-SDK#110 (that answer's ``element`` was empty;
    the stand-in names the field, as its answer for an unknown id does)."""
    return fault(2500, "Invalid Reference Id", f"Invalid Reference Id : {INACTIVE_DETAIL.split(' : ', 1)[1]}",
                 element)


def invalid_line_tax_code(supplied: str) -> QBOFault:
    """6100 Invalid Line TaxCode (case QBO-30 in tests/fixtures/qbo_replies.json: a US company takes TAX or NON on
    a line)."""
    return fault(6100, "Invalid Line TaxCode in the request",
                 f"Valid line TaxCodes for US should be TAX or NON. Supplied value: {supplied}",
                 "Line.SalesItemLineDetail.TaxCodeRef")


def cannot_link(txn_id: str) -> QBOFault:
    """620 TxnID Cannot Be Linked: the linked invoice is gone or belongs to another customer."""
    return fault(620, "TxnID Cannot Be Linked", f"TxnID Cannot Be Linked : {txn_id}",
                 "Payment.Line.LinkedTxn.TxnId")


def stale_object() -> QBOFault:
    """5010 Stale Object Error (QBO-33): the SyncToken sent is not the current one."""
    return fault(5010, "Stale Object Error",
                 "Stale Object Error : You and API API were working on this at the same time. API API finished "
                 "before you did, so your work was not saved.")


def no_name() -> QBOFault:
    """6080 No Name Provided: a Customer with no DisplayName and no name part to build one from."""
    return fault(6080, "No Name Provided",
                 "Title, GivenName, MiddleName, FamilyName, DisplayName, Suffix - one of these must be non-empty",
                 "DisplayName")


def string_length(element: str, maximum: int, supplied: int) -> QBOFault:
    """2050 String length out of range."""
    return fault(2050, "String length is either shorter or longer than supported by specification",
                 f"String length specified does not match the supported length. Min:0 Max:{maximum:,} supported. "
                 f"Supplied length:{supplied:,}", element)


def amount_calculation(supplied: str) -> QBOFault:
    """6070: a line's Amount is not Qty * UnitPrice."""
    return fault(6070, "Amount calculation incorrect in the request",
                 f"Amount is not equal to UnitPrice * Qty. Supplied value:{supplied}", "Line.Amount")


def business(detail: str, element: str = "") -> QBOFault:
    """6000 Business Validation Error with the given text after ``Business Validation Error: ``."""
    return fault(6000, BUSINESS_MESSAGE, f"Business Validation Error: {detail}", element)


def request_id_too_long(request_id: str, limit: int = 50) -> QBOFault:
    """6000 for a ``requestid`` over the limit (QBO-18 wording)."""
    return business(f"You cannot enter more than {limit} characters in the request_id field. "
                    f"You tried entering {request_id}, which is {len(request_id)} characters.")


def unsupported(operation: str) -> QBOFault:
    """500 Unsupported Operation (e.g. deleting a Customer, an unknown path)."""
    return fault(500, "Unsupported Operation", f"Operation {operation} is not supported.")


def invalid_property(detail: str) -> QBOFault:
    """2010 Request has invalid or unsupported property (also malformed JSON)."""
    return fault(2010, "Request has invalid or unsupported property", f"Property Name:{detail}")


def batch_too_large(count: int, limit: int = 30) -> QBOFault:
    """1040 Batch size exceeds allowed limit."""
    return fault(1040, "Batch size exceeds allowed limit",
                 f"Batch request size {count} is more than the allowed limit of {limit}.")


def batch_empty() -> QBOFault:
    """Code 400 MalformedRequest for an empty batch (QBO-26, there in XML; here JSON)."""
    return fault(400, "MalformedRequest", "Batch Request is Empty")


def query_parse(detail: str) -> QBOFault:
    """4000 Error parsing query."""
    return fault(4000, "Error parsing query", f"QueryParserError: {detail}")


def query_invalid(detail: str) -> QBOFault:
    """4001 Invalid query."""
    return fault(4001, "Invalid query", f"QueryValidationError: {detail}")


# --- whole answers that are not ordinary JSON faults ---------------------------------------------------------


def authentication_failed(now: float) -> Reply:
    """HTTP 401 with the lower-case envelope real QBO sends for an expired/unknown/revoked token (QBO-01)."""
    body: dict[str, Any] = {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                       "detail": None, "code": "3200", "element": None}],
            "type": "AUTHENTICATION",
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": int(now * 1000),
        "status": None,
        "cdcresponse": [],
    }
    return Reply(401, dumps(body), "application/json;charset=UTF-8")


def _xml_fault(now: float, fault_type: str, code: str, message: str, detail: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{envelope_time(now)}">'
        f'<Fault type="{fault_type}"><Error code="{code}"><Message>{message}</Message>'
        f"<Detail>{detail}</Detail></Error></Fault></IntuitResponse>"
    ).encode()


def throttled(now: float, retry_after: int | None = None) -> Reply:
    """HTTP 429 ThrottleExceeded as XML even when JSON was asked (Intuit "Rate limits and throttles"; QBO-11)."""
    body = _xml_fault(now, "SERVICE", "3001", "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                      "The request limit was reached.")
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Reply(429, body, XML_TYPE, headers)


def wrong_company(now: float) -> Reply:
    """HTTP 403 AuthorizationFailed (XML, as QBO-07) for a token of another company."""
    body = _xml_fault(now, "SERVICE", "3100", "message=AuthorizationFailed; errorCode=003100; statusCode=403",
                      "The access token does not grant access to this company")
    return Reply(403, body, XML_TYPE)


GATEWAY_TIMEOUT_PAGE = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def gateway_timeout() -> Reply:
    """HTTP 504 with nginx's stock HTML page: what a client sees when the answer is lost after the work."""
    return Reply(504, GATEWAY_TIMEOUT_PAGE.encode("ascii"), "text/html")

