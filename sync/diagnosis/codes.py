"""Per-error classification: one Fault error (code, message, detail, element) to its kind and meaning, by
Intuit's codes and, where a code has several meanings, by its words (rules 3 to 9 of the package docstring).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sync.diagnosis.details import MARKUP_SCAN_LIMIT
from sync.diagnosis.kinds import _RANK, MEANINGS, FaultError, Kind

# --------------------------------------------------------------------------------------------------
# Per-error classification

_AUTH_CODES = frozenset({"3200", "100", "110", "120", "130"})
_CODE_KIND: Mapping[str, Kind] = {
    "3001": Kind.RATE_LIMITED,
    "6240": Kind.DUPLICATE,
    "6140": Kind.DUPLICATE,
    "610": Kind.NOT_FOUND,
    "630": Kind.DUPLICATE,
    "700": Kind.NOT_FOUND,
    "140": Kind.SUBSCRIPTION,
    "150": Kind.UNKNOWN,
    "2500": Kind.NOT_FOUND,
    "5010": Kind.CONFLICT,
    "6210": Kind.CLOSED_PERIOD,
    "6190": Kind.SUBSCRIPTION,
    "6540": Kind.LOCKED,
    "6070": Kind.TOTAL_MISMATCH,
    "6170": Kind.TOTAL_MISMATCH,
    "2280": Kind.TOTAL_MISMATCH,
    "6100": Kind.TOTAL_MISMATCH,
    "2020": Kind.VALIDATION,
    "2010": Kind.VALIDATION,
    "2030": Kind.VALIDATION,
    "2040": Kind.VALIDATION,
    "2050": Kind.VALIDATION,
    "2080": Kind.VALIDATION,
    "6000": Kind.VALIDATION,
    "6080": Kind.VALIDATION,
    "2390": Kind.VALIDATION,
    "10000": Kind.UNKNOWN,
}
_TAX_CALCULATION = re.compile(r"calculat\w*\s+(?:the\s+|of\s+)?(?:sales\s+)?tax|tax\s+calculat", re.I)
#: The element of a record's own reference to an account, a term or a tax code (a 2500 there is a field to choose).
_LIST_REFERENCE = re.compile(r"(?:^|\.)(?:\w*AccountRef|SalesTermRef|TaxCodeRef)$")
_LINK_GONE = re.compile(r"deleted|not\s+found|does\s*n[o']t\s+exist|no\s+longer\s+exists?", re.I)
_ERROR_CODE_IN_TEXT = re.compile(r"\berror_?Code[\"']?\s*[=:]\s*[\"']?0*(\d{1,12})(?!\d)", re.I)
#: Codes of syncbot's own request, not of the record's data (Intuit's "General Error Codes", 600-1999).
_OWN_REQUEST_CODES: Mapping[str, str] = {
    "1040": "QuickBooks refused the size of syncbot's batch request (code 1040, batch size exceeds the allowed "
    "limit), not the record's data: Retry sends the record on its own; report it to JobsiteOn support if it "
    "happens again.",
    "500": "QuickBooks does not support the operation syncbot sent (code 500, Unsupported Operation): not the "
    "record's data, nothing to fill in; report it to JobsiteOn support with the details.",
    "1050": "QuickBooks refused the content type of syncbot's request (code 1050): not the record's data; report "
    "it to JobsiteOn support with the details.",
    "600": "QuickBooks says syncbot's request id was used before (code 600, Duplicate Request ID): not the "
    "record's data, nothing to fill in; Retry sends it again; report it to JobsiteOn support if it persists.",
    "4000": "QuickBooks could not read syncbot's own query (code 4000): not the record's data; report it to "
    "JobsiteOn support with the details.",
    "4001": "QuickBooks refused syncbot's own query (code 4001): not the record's data; report it to JobsiteOn "
    "support with the details.",
}
#: Intuit's "Unsupported" (500-599) and "General" (600-1999) error codes are about the request or the operation,
#: not a field of the record: those not named in _CODE_KIND are unknown whatever the fault type says.
_GENERAL_CODES = range(500, 2000)
_REQUIRED_PARAM = re.compile(r"Required parameter\s+([\w.]+)\s+is missing", re.I)


def _norm_code(code: Any) -> str | None:
    if code is None or isinstance(code, bool):
        return None
    if isinstance(code, float) and code.is_integer() and abs(code) < 1e15:
        code = int(code)
    s = str(code).strip()
    if not s:
        return None
    return str(int(s)) if s.isascii() and s.isdigit() and len(s) < 20 else s[:40]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):  # converted XML with attributes: {"value": "..."}
        value = value.get("value")
        if value is None:
            return None
    s = str(value).strip()
    return s or None


def _fault_family(fault_type: str | None) -> str:
    t = (fault_type or "").lower()
    # prefixes, so that a misspelt type ("AuthorizatonFault", seen in a real 500) still reads as its family
    for prefix, family in (("authent", "authentication"), ("authori", "authorization"), ("validation", "validation"),
                           ("system", "system"), ("throttl", "throttl")):
        if t.startswith(prefix):
            return family
    return t


#: Named (not numeric) codes, read by their words once lower-cased with every separator dropped
#: (``ThrottleExceeded``, ``AUTHENTICATION_FAILED``, ``oauth.v2.InvalidAccessToken`` alike): see the rules.
_NAMED_THROTTLE = re.compile(r"throttl|ratelimit|toomanyrequests|quota|spikearrest|requestlimit")
_NAMED_TOKEN = re.compile(
    r"authenticat|unauthori[sz]|invalidtoken|tokenexpired|expiredtoken|accesstoken|bearertoken|invalidgrant"
    r"|tokenrevoked|revokedtoken|tokeninvalid|badtoken|notoken|missingtoken"
)
_NAMED_AUTHORIZATION = re.compile(r"authori[sz]|accessdenied|insufficientscope|invalidscope|permissiondenied")
#: Words of a message or detail that put an authorization refusal on the token ("Malformed bearer token",
#: "Token expired", "scope").
_ABOUT_TOKEN = re.compile(r"\btoken|\bbearer\b|\bexpired\b|\brevoked\b|\bscopes?\b|credential", re.I)
_NAMED_MESSAGE = re.compile(r"\s*message\s*=\s*([A-Za-z][A-Za-z0-9_.-]{2,60})\s*(?:;|$)")


def _squash(code: str) -> str:
    return re.sub(r"[^a-z0-9]", "", code.lower())


def _named_kind(code: str, http_status: int | None, text: str) -> Kind | None:
    """The kind of a named code (the gateway's ``AuthenticationFailed``, ``ThrottleExceeded``...), None when its
    name says nothing. Status and name are read together, as for the numeric codes."""
    name = _squash(code)
    if not name or name.isdigit():
        return None
    server_error = http_status is not None and http_status >= 500
    if _NAMED_THROTTLE.search(name):
        return Kind.RATE_LIMITED
    if _NAMED_TOKEN.search(name):
        return Kind.UNKNOWN if server_error else Kind.AUTH_EXPIRED
    if _NAMED_AUTHORIZATION.search(name):
        if server_error:
            return Kind.UNKNOWN
        return Kind.AUTH_EXPIRED if http_status in (401, 403) or _ABOUT_TOKEN.search(text) else Kind.UNKNOWN
    return None


#: Words that give a code another of its meanings ("Reading the words" in the package docstring (`sync.diagnosis`)).
_CLOSED_BOOKS = re.compile(
    r"closing\s+date|books\s+(?:are\s+|were\s+|have\s+been\s+)?closed|closed\s+(?:accounting\s+)?period"
    r"|period\s+(?:has\s+|is\s+)?(?:been\s+)?closed", re.I)
_INACTIVE = re.compile(r"\binactive\b|\bno\s+longer\s+active\b", re.I)
_DEPOSITED = re.compile(r"\bdeposited\b|\bdeposit\s+it\s+appears\s+on\b", re.I)
_DUPLICATE_NUMBER = re.compile(r"duplicate\s+document\s+number|number\s+has\s+already\s+been\s+used", re.I)
_OWN_REQUEST_TEXT = re.compile(r"request_?id", re.I)
#: Codes whose family carries several meanings told apart by the words.
_WORDY_CODES = frozenset({"610", "2500", "5010", "6000", "6210"})


def _meaning_by_words(code: str, error: FaultError, text: str) -> tuple[Kind, str | None] | None:
    """The kind and meaning the words of ``error`` give its ``code``, None when they say nothing more than the
    code (then the code table decides)."""
    if code in ("6000", "5010", "6210") and _CLOSED_BOOKS.search(text):
        return Kind.CLOSED_PERIOD, None
    if code == "2500" and _LIST_REFERENCE.search(error.element or ""):  # the record's own account, term or tax
        return Kind.VALIDATION, ("inactive_choice" if _INACTIVE.search(text) else None)  # code: chosen again
    if code in ("610", "2500", "6000") and _INACTIVE.search(text):
        return Kind.NOT_FOUND, "inactive_reference"
    if code in ("6000", "6210") and _DUPLICATE_NUMBER.search(text):
        return Kind.DUPLICATE, "duplicate_number"
    if code == "6000" and _DEPOSITED.search(text):
        return Kind.LOCKED, None
    if code == "6000" and _TAX_CALCULATION.search(text):
        return Kind.TOTAL_MISMATCH, None
    if code == "6000" and _OWN_REQUEST_TEXT.search(text):
        return Kind.VALIDATION, "own_request"
    if code == "2500" or (code == "610" and (error.element or "").rstrip().endswith("Ref")):
        return Kind.NOT_FOUND, "missing_reference"
    return None


#: Codes with one meaning of their own besides the kind's words (not read off the text).
_CODE_MEANING: Mapping[str, str] = {"6140": "duplicate_number", "2050": "too_long", "2010": "own_request"}


def classify_error(error: FaultError, http_status: int | None = None, fault_type: str | None = None) -> Kind:
    """The kind of one Fault error, reading its code with the HTTP status and the fault type.

    In: the error, the HTTP status of the answer (a batch item gets the batch's status) and the
    Fault's ``type``. Out: a :class:`Kind` (never None: an error is never success). Rules in the
    package docstring (`sync.diagnosis`); :func:`read_error` also gives the meaning.
    """
    return read_error(error, http_status, fault_type)[0]


def read_error(error: FaultError, http_status: int | None = None,
               fault_type: str | None = None) -> tuple[Kind, str | None]:
    """The kind of one Fault error and which of its code's :data:`MEANINGS` the words name (None: the kind's
    own). Same inputs as :func:`classify_error`."""
    kind = _classify(error, http_status, fault_type)
    code = _norm_code(error.code)
    if code is None:
        m = _ERROR_CODE_IN_TEXT.search(error.message or "") or _ERROR_CODE_IN_TEXT.search(error.detail or "")
        code = m.group(1) if m else None
    if code is None:
        return kind, None
    text = " ".join(t for t in (error.message, error.detail) if t)[:MARKUP_SCAN_LIMIT]
    if code in _WORDY_CODES and (read := _meaning_by_words(code, error, text)) is not None:
        return read
    meaning = _CODE_MEANING.get(code)
    return kind, meaning if meaning is not None and MEANINGS[meaning].kind is kind else None


def _classify(error: FaultError, http_status: int | None, fault_type: str | None) -> Kind:
    code = _norm_code(error.code)
    if code is None:
        m = _ERROR_CODE_IN_TEXT.search(error.message or "") or _ERROR_CODE_IN_TEXT.search(error.detail or "")
        code = m.group(1) if m else None
    if code is None:  # "message=ThrottleExceeded; statusCode=429" without an errorCode: the name is the code
        named = _NAMED_MESSAGE.match(error.message or "")
        code = named.group(1) if named else None
    server_error = http_status is not None and http_status >= 500
    text = " ".join(t for t in (error.message, error.detail) if t)
    if code == "3100":
        return Kind.AUTH_EXPIRED if http_status in (401, 403) else Kind.UNKNOWN
    if code in _AUTH_CODES:
        return Kind.UNKNOWN if server_error else Kind.AUTH_EXPIRED
    if code == "620":
        return Kind.NOT_FOUND if _LINK_GONE.search(text) else Kind.VALIDATION
    if code == "2500" and _LIST_REFERENCE.search(error.element or ""):
        return Kind.VALIDATION
    if code is not None and code in _CODE_KIND:
        return _CODE_KIND[code]
    if code in _OWN_REQUEST_CODES:
        return Kind.UNKNOWN
    number = int(code) if code is not None and code.isascii() and code.isdigit() else None
    if number is not None and (number in _GENERAL_CODES or number >= 10000):
        return Kind.UNKNOWN
    named_kind = _named_kind(code, http_status, text) if code is not None else None
    if named_kind is not None:
        return named_kind
    family = _fault_family(fault_type)
    if family == "throttl":
        return Kind.RATE_LIMITED
    if family == "validation":
        return Kind.VALIDATION
    if family == "authentication" and not server_error:
        return Kind.AUTH_EXPIRED
    if family == "authorization" and http_status in (401, 403):
        return Kind.AUTH_EXPIRED
    return Kind.UNKNOWN


def most_specific(kinds: Iterable[Kind | None]) -> Kind | None:
    """The most specific kind by :data:`PRECEDENCE`, ignoring None (ok); None when all are ok."""
    present = [k for k in kinds if k is not None]
    return min(present, key=_RANK.__getitem__) if present else None


def _field_of(error: FaultError) -> str | None:
    if error.element:
        return error.element
    for t in (error.detail, error.message):
        m = _REQUIRED_PARAM.search(t or "")
        if m:
            return m.group(1)
    if error.code == "2390":
        return "IncomeAccountRef"
    return None
