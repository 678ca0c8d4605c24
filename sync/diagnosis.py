"""The error kinds, and the one classifier of provider replies into them.

Everything that decides what a QuickBooks Online (QBO) or Intuit OAuth reply *means* lives here: the
sync engine and ``syncbot diagnose`` both call :func:`diagnose`. The kinds, their cause and fix come
from JobsiteOn's help article "Resolve Sync Errors" (``shared/reference/help-article-resolve-sync-
errors.txt``, quoted in its own words) and, for the kinds the article does not name, from DESIGN.md
("The error kinds"). Codes, statuses and wire quirks come from DESIGN.md ("Platform facts") and the
real replies in ``shared/cases/qbo_replies.json``. Nothing here knows about Slack: ``details`` is plain
text, not escaped for mrkdwn (the Slack side escapes it).

Public interface
================
* :class:`Kind`, :class:`FixAction`, :class:`KindInfo` and the :data:`KINDS` table.
* :class:`FaultError`, :class:`Diagnosis` (``kind is None`` means success, "ok").
* :func:`diagnose` (an HTTP answer), :func:`diagnose_transport` (no answer: timeouts, connection
  errors), :func:`diagnose_totals` (a successful invoice write whose totals differ from ours),
  :func:`diagnose_deleted` (a linked object reported deleted by CDC), :func:`make_diagnosis` (a
  diagnosis syncbot states itself), :func:`classify_error`,
  :func:`most_specific` and :func:`report` (the JSON that ``syncbot diagnose`` prints).

The rules (the contract)
========================
Order of decision in :func:`diagnose`:

1. **HTTP 429 → rate_limited**, whatever the body (empty, JSON, XML) and whatever the endpoint,
   the OAuth ones included (an empty 429 from the revoke endpoint is a throttle, not an auth failure).
2. **HTTP 401 → auth_expired**, whatever the body (codes 3200, 100, 120, 130...). Code **130**
   "Accessing Wrong Cluster" is a token of the other environment (production vs sandbox):
   still auth_expired, but the diagnosis carries a ``hint`` that the base URL / environment must be
   checked, since reconnecting alone will not fix it.
3. **An OAuth error object** (``{"error": "...", "error_description": ...}``, any key order, mostly
   from the token/revoke endpoints): ``invalid_grant`` (refresh token expired, revoked, rotated
   and lost, or raced) → auth_expired. ``invalid_client`` / ``unauthorized_client`` (the app's
   client id or secret is refused) → **auth_expired too**, by decision: every call of the connection
   fails until someone acts, so it must be one connection-wide incident with the Reconnect path, and
   the ``hint`` says the app's credentials (configuration) must be checked before reconnecting.
   ``invalid_token`` / ``access_denied`` → auth_expired. Any other OAuth error → unknown.
4. **A Fault** (any key case, JSON or XML, at any HTTP status): every error is kept, each is classified
   by :func:`classify_error`, and the Fault's kind is the most specific of them (precedence below).
5. **A batch answer** (``BatchItemResponse``, HTTP 200 even when items fail): each ``bId`` gets its own
   Diagnosis in ``items`` (``kind None`` for an ok item); the top-level kind is the most specific
   failing item's kind, or None when every item is ok.
6. Anything else: a 2xx → ok (``kind None``; CDC and query answers included, a deleted object in a
   CDC answer is the engine's business via :func:`diagnose_deleted`); an empty 2xx body is ok (the
   revoke endpoint answers so). A non-2xx without a readable fault (empty, truncated, HTML gateway or
   maintenance pages, a lone XML declaration) → **unknown**, with the HTTP status and the raw text
   (trimmed, tags stripped for HTML) in ``details``. An unreadable 2xx body → unknown as well.

:func:`classify_error`, one error of a Fault; **status and code are read together**:

* 3001 → rate_limited, at any status (429, or 403 in older answers).
* 3100 → auth_expired with 401/403 only; with 500 (or anything else) it is a QuickBooks server error
  ("InternalServerError"), **not** an expired token → unknown.
* 3200, 100, 120, 130 → auth_expired, except under a 5xx status (a server error) → unknown.
* 6240, 6140 → duplicate.  5010 → conflict.  6210 → closed_period.  6190 → subscription.
  6540 → locked.
* 610, 2500 → not_found.
* 620 ("TxnID Cannot Be Linked", a payment that cannot be linked to its invoice) → not_found when the
  message or detail says the linked transaction is gone ("deleted", "not found", "does not exist",
  "no longer exists"); otherwise validation (the usual cause is a customer mismatch).
* 6070, 6170, 2280, 6100 → total_mismatch; 6000 whose message or detail speaks of calculating tax
  ("error while calculating tax", "tax calculation") → total_mismatch.
* 2020, 2010, 2030, 2040, 2050, 2080, 6000, 6080, 2390 → validation (``field`` names the element, or
  the X of "Required parameter X is missing"; 2390 without an element names ``IncomeAccountRef``).
* 10000 → unknown (SystemFault, a server error).
* A missing code is read from ``errorCode=003200`` in the message when present.
* Any other code: the fault type decides: ValidationFault → validation; AuthenticationFault /
  AUTHENTICATION → auth_expired (unless 5xx); AuthorizationFault with 401/403 → auth_expired;
  SystemFault, SERVICE and anything else → unknown.
* **A message that contradicts its code is resolved by the code** (code 6240 with a text saying
  "Object Not Found" is a duplicate). The single exception is the 6000-with-tax-calculation rule.

Precedence, most specific first (:data:`PRECEDENCE`), used for a Fault with several errors and for a
batch answer::

    auth_expired > subscription > rate_limited > not_found > duplicate > conflict
        > closed_period > locked > total_mismatch > validation > unknown

The connection-wide kinds come first (nothing on the record can succeed until they are resolved),
then the record kinds whose fix differs most from "fill a field", then validation; unknown only when
nothing is recognised.

Other fields: ``details`` is the provider's text made readable (one line per error: code, message,
detail, field; HTML anchors turned into "text (url)", other tags stripped), at most 2000 characters,
with tokens, secrets and bearer/basic credentials redacted; ``intuit_tid`` comes from the response
header and is also appended to ``details`` (support asks for it, DESIGN.md); ``retry_after`` is the
Retry-After header in seconds (number or HTTP date), None when absent (DESIGN.md: QBO documents none;
the engine then waits its own default).

A ``total_mismatch`` from :func:`diagnose_totals` is a *warning* (the write succeeded); one from a
Fault (6070, 6100, tax-calculation 6000...) is an *error*: see :attr:`Diagnosis.entry_status`.
"""

from __future__ import annotations

import email.utils
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Literal

from sync.providers.qbo_wire import decode_body, is_html, normalize_keys, parse_body

__all__ = [
    "KINDS",
    "PRECEDENCE",
    "Diagnosis",
    "FaultError",
    "FixAction",
    "Kind",
    "KindInfo",
    "classify_error",
    "diagnose",
    "diagnose_deleted",
    "diagnose_totals",
    "diagnose_transport",
    "make_diagnosis",
    "most_specific",
    "report",
]

DETAILS_LIMIT = 2000
ENDPOINTS = frozenset({"api", "token", "revoke"})


class Kind(StrEnum):
    """What went wrong, in the product's words (DESIGN.md "The error kinds")."""

    AUTH_EXPIRED = "auth_expired"
    DUPLICATE = "duplicate"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    VALIDATION = "validation"
    TOTAL_MISMATCH = "total_mismatch"
    UNKNOWN = "unknown"
    CLOSED_PERIOD = "closed_period"
    SUBSCRIPTION = "subscription"
    LOCKED = "locked"
    CONFLICT = "conflict"


class FixAction(StrEnum):
    """The buttons a diagnosis may offer."""

    RETRY = "retry"
    RECONNECT = "reconnect"
    UNLINK = "unlink"
    RECREATE = "recreate"
    LINK_EXISTING = "link_existing"
    FILL_FIELD = "fill_field"
    MARK_RESOLVED = "mark_resolved"
    SYNC_NOW = "sync_now"


@dataclass(frozen=True)
class KindInfo:
    """Cause, fix and buttons of one kind.

    ``scope`` "connection" means every call of the connection fails (one incident per connection);
    ``status`` is the sync log status of an entry of this kind.
    """

    kind: Kind
    title: str
    cause: str
    fix: str
    actions: tuple[FixAction, ...]
    scope: Literal["record", "connection"] = "record"
    status: Literal["error", "warning"] = "error"


_A = FixAction

#: Cause and fix in the help article's words; the four extra kinds in DESIGN.md's words.
KINDS: Mapping[Kind, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(
            Kind.AUTH_EXPIRED,
            "Authentication expired",
            "The integration's OAuth token has expired.",
            "Reconnect and re-authorize the connection; the sync resumes automatically.",
            (_A.RECONNECT,),
            scope="connection",
        ),
        KindInfo(
            Kind.DUPLICATE,
            "Duplicate record",
            "A record with the same name or identifier already exists.",
            "Rename or merge the duplicate in the target system, then click Retry.",
            (_A.RETRY, _A.LINK_EXISTING),
        ),
        KindInfo(
            Kind.NOT_FOUND,
            "Record not found",
            "The linked record was deleted in the target system.",
            "Re-create the record or unlink the JobsiteOn record and let the next sync create a fresh copy.",
            (_A.RECREATE, _A.UNLINK),
        ),
        KindInfo(
            Kind.RATE_LIMITED,
            "Rate limit exceeded",
            "Too many API calls in a short period.",
            "This resolves automatically: syncbot waits 15 minutes (or as long as QuickBooks asks) and syncs again.",
            (),
            scope="connection",
        ),
        KindInfo(
            Kind.VALIDATION,
            "Field validation error",
            "A required field in the target system is empty or invalid.",
            "Open the record in JobsiteOn, fill in the missing field, save, and the next sync attempt will succeed.",
            (_A.FILL_FIELD, _A.RETRY),
        ),
        KindInfo(
            Kind.TOTAL_MISMATCH,
            "Total mismatch",
            "Calculated totals differ between systems due to tax or rounding.",
            "Compare line items and tax rates in both systems. Adjust the JobsiteOn record to match "
            "the target system's calculation.",
            (_A.RETRY,),
            status="warning",
        ),
        KindInfo(
            Kind.UNKNOWN,
            "Unexpected error",
            "The target system returned an error that syncbot does not recognise.",
            "Click Retry. If the error persists after retrying, contact JobsiteOn support with the "
            "error timestamp and details.",
            (_A.RETRY,),
        ),
        KindInfo(
            Kind.CLOSED_PERIOD,
            "Closed period",
            "The transaction's date falls in a period the books were closed for.",
            "Change the date in JobsiteOn, or have the accountant reopen the period (closing date and "
            "password in QuickBooks), then click Retry.",
            (_A.RETRY,),
        ),
        KindInfo(
            Kind.SUBSCRIPTION,
            "QuickBooks subscription inactive",
            "The QuickBooks company's subscription lapsed or the company is suspended, so every call "
            "of the connection fails.",
            "The company owner renews or reactivates the subscription in QuickBooks; then click Sync Now.",
            (_A.SYNC_NOW,),
            scope="connection",
        ),
        KindInfo(
            Kind.LOCKED,
            "Transaction deposited",
            "The payment or transaction was already deposited, so QuickBooks refuses to change it.",
            "Undo the deposit in QuickBooks, or leave the record as it is and mark the entry resolved.",
            (_A.RETRY, _A.MARK_RESOLVED),
        ),
        KindInfo(
            Kind.CONFLICT,
            "Changed in QuickBooks meanwhile",
            "Someone changed the record in QuickBooks since the last sync (stale SyncToken).",
            "Nothing to do: syncbot re-reads the record and retries once; if it fails again, click Retry.",
            (_A.RETRY,),
        ),
    )
}

#: Most specific first; see the module docstring.
PRECEDENCE: tuple[Kind, ...] = (
    Kind.AUTH_EXPIRED,
    Kind.SUBSCRIPTION,
    Kind.RATE_LIMITED,
    Kind.NOT_FOUND,
    Kind.DUPLICATE,
    Kind.CONFLICT,
    Kind.CLOSED_PERIOD,
    Kind.LOCKED,
    Kind.TOTAL_MISMATCH,
    Kind.VALIDATION,
    Kind.UNKNOWN,
)
_RANK = {k: i for i, k in enumerate(PRECEDENCE)}


@dataclass(frozen=True)
class FaultError:
    """One ``Error`` of a QuickBooks Fault, as sent (code normalised: ``"003200"`` → ``"3200"``)."""

    code: str | None
    message: str | None
    detail: str | None
    element: str | None


@dataclass(frozen=True)
class Diagnosis:
    """What a provider answer means. ``kind is None`` means success ("ok").

    ``items`` holds one Diagnosis per ``bId`` for a batch answer (empty otherwise). ``hint`` is an
    extra sentence when the kind's standard fix is not the whole story (wrong environment, the app's
    credentials refused, syncbot's own request at fault, a timeout that may have been applied).
    """

    kind: Kind | None
    http_status: int | None = None
    codes: tuple[str, ...] = ()
    errors: tuple[FaultError, ...] = ()
    fault_type: str | None = None
    details: str = ""
    field: str | None = None
    intuit_tid: str | None = None
    retry_after: float | None = None
    items: Mapping[str, Diagnosis] = dc_field(default_factory=dict, hash=False)
    hint: str | None = None
    #: Structured figures for the message (total_mismatch: ours/theirs totals and tax, in dollars as strings,
    #: and the lines that differ).
    data: Mapping[str, Any] = dc_field(default_factory=dict, hash=False)

    @property
    def ok(self) -> bool:
        """True for success."""
        return self.kind is None

    @property
    def info(self) -> KindInfo | None:
        """The kind's :class:`KindInfo`, None for success."""
        return None if self.kind is None else KINDS[self.kind]

    @property
    def cause(self) -> str | None:
        """The kind's cause (help article words), None for success."""
        return None if self.kind is None else KINDS[self.kind].cause

    @property
    def fix(self) -> str | None:
        """The kind's fix (help article words), None for success."""
        return None if self.kind is None else KINDS[self.kind].fix

    @property
    def label(self) -> str:
        """``"ok"`` or the kind's value."""
        return "ok" if self.kind is None else self.kind.value

    @property
    def actions(self) -> tuple[FixAction, ...]:
        """The buttons for this diagnosis (none for success)."""
        return () if self.kind is None else KINDS[self.kind].actions

    @property
    def scope(self) -> Literal["record", "connection"] | None:
        """``"connection"`` for connection-wide kinds, ``"record"`` otherwise, None for success."""
        return None if self.kind is None else KINDS[self.kind].scope

    @property
    def entry_status(self) -> Literal["error", "warning", "synced"]:
        """The sync log status: "synced" for success; "warning" for a total_mismatch found after a
        successful write (no error code); "error" for a total_mismatch fault; else the kind's status."""
        if self.kind is None:
            return "synced"
        if self.kind is Kind.TOTAL_MISMATCH and self.codes:
            return "error"
        return KINDS[self.kind].status


# --------------------------------------------------------------------------------------------------
# Per-error classification

_AUTH_CODES = frozenset({"3200", "100", "120", "130"})
_CODE_KIND: Mapping[str, Kind] = {
    "3001": Kind.RATE_LIMITED,
    "6240": Kind.DUPLICATE,
    "6140": Kind.DUPLICATE,
    "610": Kind.NOT_FOUND,
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
_LINK_GONE = re.compile(r"deleted|not\s+found|does\s*n[o']t\s+exist|no\s+longer\s+exists?", re.I)
_ERROR_CODE_IN_TEXT = re.compile(r"errorCode\s*=\s*0*(\d+)", re.I)
_REQUIRED_PARAM = re.compile(r"Required parameter\s+([\w.]+)\s+is missing", re.I)


def _norm_code(code: Any) -> str | None:
    if code is None:
        return None
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
    for family in ("authentication", "authorization", "validation", "system"):
        if t.startswith(family):
            return family
    return t


def classify_error(error: FaultError, http_status: int | None = None, fault_type: str | None = None) -> Kind:
    """The kind of one Fault error, reading its code with the HTTP status and the fault type.

    In: the error, the HTTP status of the answer (a batch item gets the batch's status) and the
    Fault's ``type``. Out: a :class:`Kind` (never None: an error is never success). Rules in the
    module docstring.
    """
    code = _norm_code(error.code)
    if code is None:
        m = _ERROR_CODE_IN_TEXT.search(error.message or "") or _ERROR_CODE_IN_TEXT.search(error.detail or "")
        code = m.group(1) if m else None
    server_error = http_status is not None and http_status >= 500
    text = " ".join(t for t in (error.message, error.detail) if t)
    if code == "3100":
        return Kind.AUTH_EXPIRED if http_status in (401, 403) else Kind.UNKNOWN
    if code in _AUTH_CODES:
        return Kind.UNKNOWN if server_error else Kind.AUTH_EXPIRED
    if code == "620":
        return Kind.NOT_FOUND if _LINK_GONE.search(text) else Kind.VALIDATION
    if code == "6000" and _TAX_CALCULATION.search(text):
        return Kind.TOTAL_MISMATCH
    if code is not None and code in _CODE_KIND:
        return _CODE_KIND[code]
    family = _fault_family(fault_type)
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


# --------------------------------------------------------------------------------------------------
# Text helpers: readable, trimmed, no secrets

_ANCHOR = re.compile(r"<a\b[^>]*?href\s*=\s*[\"']([^\"']*)[\"'][^>]*>(.*?)</a\s*>", re.I | re.S)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_SCRIPT = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_MARKUP_DECL = re.compile(r"<![^>]*>|<\?[^>]*\?>")
_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"([\"']?(?:access_token|refresh_token|id_token|client_secret|password)[\"']?\s*[:=]\s*)"
            r"(?:\"[^\"]*(?:\"|$)|'[^']*(?:'|$)|[^\s&,;}\"']+)",
            re.I,
        ),
        r"\1[redacted]",
    ),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.I), r"\1 [redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?"), "[redacted]"),
    (re.compile(r"\bAB11\d{9,}[A-Za-z0-9]{16,}"), "[redacted]"),  # Intuit refresh tokens
)


def _redact(text: str) -> str:
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    return text


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _trim(text: str, limit: int = DETAILS_LIMIT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


#: Markup longer than this is cut before the regexes run (they may backtrack on unclosed tags); details keep
#: 2,000 characters anyway.
MARKUP_SCAN_LIMIT = 20_000


def _strip_markup(text: str) -> str:
    """Provider text with HTML in it: anchors → ``text (url)``, other tags dropped, entities decoded."""
    text = text[:MARKUP_SCAN_LIMIT]
    text = _ANCHOR.sub(lambda m: f"{_TAG.sub('', m.group(2)).strip()} ({m.group(1)})", text)
    return html.unescape(_TAG.sub("", text))


def _html_excerpt(text: str) -> str:
    text = text[:MARKUP_SCAN_LIMIT]
    title_m = _TITLE.search(text)
    title = _collapse(html.unescape(_TAG.sub("", title_m.group(1)))) if title_m else ""
    body = _collapse(html.unescape(_TAG.sub(" ", _MARKUP_DECL.sub(" ", _SCRIPT.sub(" ", text)))))
    if title and not body.lower().startswith(title.lower()):
        body = f"{title}: {body}" if body else title
    return body


def _reason(status: int | None) -> str:
    if status is None:
        return ""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _humanize_message(message: str | None) -> str | None:
    """``"message=ThrottleExceeded; errorCode=003001; statusCode=403"`` → ``"ThrottleExceeded"``."""
    if not message:
        return None
    m = re.match(r"\s*message\s*=\s*([^;]+)", message)
    return m.group(1).strip() if m else message


def _error_line(e: FaultError) -> str:
    msg = _collapse(_strip_markup(_humanize_message(e.message) or ""))
    det = _collapse(_strip_markup(e.detail or ""))
    both = msg and det and not det.lower().startswith(msg.lower())
    text = f"{msg} — {det}" if both else (det or msg or "(no message)")
    parts = [e.code, text] if e.code else [text]
    line = " ".join(parts)
    if e.element and e.element not in line:
        line += f" (field: {e.element})"
    return line


def _finish_details(lines: Sequence[str], intuit_tid: str | None) -> str:
    text = "\n".join(line for line in lines if line)
    if intuit_tid:
        text = _trim(text, DETAILS_LIMIT - len(intuit_tid) - 14) + f"\nintuit_tid: {intuit_tid}"
    return _trim(_redact(text))


# --------------------------------------------------------------------------------------------------
# Headers


def _header(headers: Mapping[str, str] | None, *names: str) -> str | None:
    if not headers:
        return None
    lower = {str(k).lower(): v for k, v in headers.items()}
    for name in names:
        value = lower.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return min(MAX_RETRY_AFTER, max(0.0, (when - datetime.now(UTC)).total_seconds()))
    return min(MAX_RETRY_AFTER, max(0.0, seconds)) if math.isfinite(seconds) else None


#: A Retry-After beyond an hour is not believed (a bogus header must not freeze a realm).
MAX_RETRY_AFTER = 3600.0


# --------------------------------------------------------------------------------------------------
# diagnose


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _fault_errors(fault: Mapping[str, Any]) -> list[FaultError]:
    errors: list[FaultError] = []
    for e in _listify(fault.get("Error")):
        if not isinstance(e, Mapping):
            continue
        errors.append(
            FaultError(
                code=_norm_code(_text(e.get("code"))),
                message=_text(e.get("Message")),
                detail=_text(e.get("Detail")),
                element=_text(e.get("element")),
            )
        )
    return errors


def _from_fault(
    fault: Mapping[str, Any], status: int | None, intuit_tid: str | None, retry_after: float | None
) -> Diagnosis:
    fault_type = _text(fault.get("type"))
    errors = _fault_errors(fault)
    if not errors:  # a Fault without errors: only the type is known
        errors = [FaultError(None, fault_type or "Fault without errors", None, None)]
    kinds = [classify_error(e, status, fault_type) for e in errors]
    kind = most_specific(kinds) or Kind.UNKNOWN
    deciding = errors[kinds.index(kind)]
    fld = _field_of(deciding) or next((f for e in errors if (f := _field_of(e))), None)
    lines = [_error_line(e) for e in errors]
    if kind is Kind.UNKNOWN:
        lines.insert(0, f"{_reason(status)}, {fault_type or 'no'} fault:" if status else "")
    return Diagnosis(
        kind=kind,
        http_status=status,
        codes=tuple(e.code for e in errors if e.code),
        errors=tuple(errors),
        fault_type=fault_type,
        details=_finish_details(lines, intuit_tid),
        field=fld,
        intuit_tid=intuit_tid,
        retry_after=retry_after,
        hint=_hint(errors, kind),
    )


def _hint(errors: Sequence[FaultError], kind: Kind) -> str | None:
    codes = {e.code for e in errors}
    text = " ".join(f"{e.message or ''} {e.detail or ''}" for e in errors)
    if "130" in codes or re.search(r"wrong (cluster|server)", text, re.I):
        return (
            "QuickBooks says the token belongs to the other environment (production vs sandbox): "
            "check the QuickBooks API base URL (QBO_API_URL) for this connection; reconnecting alone "
            "will not fix it."
        )
    if "3100" in codes and kind is Kind.AUTH_EXPIRED and re.search(r"scope", text, re.I):
        return "Reconnect and grant the com.intuit.quickbooks.accounting scope."
    if re.search(r"request_?id", text, re.I):
        return (
            "The limit concerns syncbot's own request id, not the record's data: nothing to fill in; "
            "report it to JobsiteOn support."
        )
    return None


_OAUTH_AUTH_ERRORS = frozenset(
    {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_token", "access_denied"}
)


def _from_oauth_error(
    data: Mapping[str, Any],
    status: int,
    endpoint: str,
    intuit_tid: str | None,
    retry_after: float | None,
) -> Diagnosis:
    error = str(data.get("error")).strip()
    description = _text(data.get("error_description"))
    kind = Kind.AUTH_EXPIRED if error in _OAUTH_AUTH_ERRORS else Kind.UNKNOWN
    if status == 429:
        kind = Kind.RATE_LIMITED
    where = "Intuit OAuth server" + (f" ({endpoint} endpoint)" if endpoint != "api" else "")
    line = f"{where}: {error}" + (f" — {description}" if description else "")
    if kind is Kind.UNKNOWN:
        line = f"{_reason(status)}, {line}"
    hint = None
    if error in ("invalid_client", "unauthorized_client"):
        hint = (
            "Intuit refused the app's own credentials (client id / secret): check syncbot's QuickBooks "
            "app settings, then reconnect."
        )
    elif error == "invalid_grant":
        hint = (
            "The refresh token is expired, revoked or was replaced by a newer one: only a reconnect "
            "helps; syncbot does not retry it."
        )
    return Diagnosis(
        kind=kind,
        http_status=status,
        codes=(error,),
        errors=(FaultError(error, description, None, None),),
        details=_finish_details([line], intuit_tid),
        intuit_tid=intuit_tid,
        retry_after=retry_after,
        hint=hint,
    )


def _from_batch(items: list[Any], status: int, intuit_tid: str | None, retry_after: float | None) -> Diagnosis:
    per_item: dict[str, Diagnosis] = {}
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        bid = _text(item.get("bId")) or f"#{index + 1}"
        fault = item.get("Fault")
        if isinstance(fault, Mapping):
            per_item[bid] = _from_fault(fault, status, None, None)
        else:
            per_item[bid] = Diagnosis(kind=None, http_status=status, details="ok")
    kind = most_specific(d.kind for d in per_item.values())
    failing = {bid: d for bid, d in per_item.items() if not d.ok}
    lines = [f"{len(per_item) - len(failing)} of {len(per_item)} batch items succeeded."]
    lines += [f"{bid}: {d.details}" for bid, d in failing.items()]
    deciding = next((d for d in failing.values() if d.kind is kind), None)
    return Diagnosis(
        kind=kind,
        http_status=status,
        codes=tuple(c for d in failing.values() for c in d.codes),
        errors=tuple(e for d in failing.values() for e in d.errors),
        fault_type=deciding.fault_type if deciding else None,
        details=_finish_details(lines, intuit_tid),
        field=deciding.field if deciding else None,
        intuit_tid=intuit_tid,
        retry_after=retry_after,
        items=per_item,
        hint=deciding.hint if deciding else None,
    )


def _unreadable(
    status: int, text: str, endpoint: str, intuit_tid: str | None, retry_after: float | None, kind: Kind
) -> Diagnosis:
    where = "Intuit OAuth server" if endpoint != "api" else "QuickBooks"
    stripped = text.strip()
    if not stripped:
        line = f"{_reason(status)} from {where} with an empty body."
    elif is_html(stripped):
        line = f"{_reason(status)} from {where}, an HTML page instead of an API answer: {_html_excerpt(stripped)}"
    elif parse_body(stripped) is not None:
        line = f"{_reason(status)} from {where}, an answer without a fault: {_collapse(stripped)}"
    else:
        line = f"{_reason(status)} from {where}, an unreadable body: {_collapse(stripped)}"
    return Diagnosis(
        kind=kind,
        http_status=status,
        details=_finish_details([line], intuit_tid),
        intuit_tid=intuit_tid,
        retry_after=retry_after,
    )


def diagnose(
    status: int,
    body: bytes | str | None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    endpoint: str = "api",
) -> Diagnosis:
    """Classify one HTTP answer from QuickBooks Online or Intuit's OAuth server.

    In: the HTTP status, the raw body (bytes, text or None), the Content-Type header (a hint for the
    charset only: the format is read from the body), the response headers (for ``intuit_tid`` and
    ``Retry-After``), and which endpoint answered: ``"api"`` (the Accounting API), ``"token"``
    (``/oauth2/v1/tokens/bearer``) or ``"revoke"``. Out: a :class:`Diagnosis`, ``kind None`` for
    success. Never raises for any body; raises ``ValueError`` for an unknown ``endpoint``.
    The rules are in the module docstring.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}, not {endpoint!r}")
    intuit_tid = _header(headers, "intuit_tid", "intuit-tid")
    retry_after = _retry_after(_header(headers, "retry-after"))
    text = decode_body(body, content_type)
    try:
        data = normalize_keys(parse_body(text))
    except (RecursionError, ValueError):  # nesting too deep for the key walk: read as an unreadable body
        data = None

    if status == 401 or status == 429:
        kind = Kind.AUTH_EXPIRED if status == 401 else Kind.RATE_LIMITED
        if isinstance(data, Mapping):
            if isinstance(data.get("Fault"), Mapping):
                d = _from_fault(data["Fault"], status, intuit_tid, retry_after)
                return _with_kind(d, kind)
            if isinstance(data.get("error"), str):
                return _with_kind(_from_oauth_error(data, status, endpoint, intuit_tid, retry_after), kind)
        return _unreadable(status, text, endpoint, intuit_tid, retry_after, kind)

    if isinstance(data, Mapping):
        if isinstance(data.get("error"), str) and data.get("Fault") is None:
            return _from_oauth_error(data, status, endpoint, intuit_tid, retry_after)
        if isinstance(data.get("Fault"), Mapping):
            return _from_fault(data["Fault"], status, intuit_tid, retry_after)
        batch = data.get("BatchItemResponse")
        if isinstance(batch, list) and batch:
            return _from_batch(batch, status, intuit_tid, retry_after)

    if 200 <= status < 300:
        if data is not None or not text.strip():
            return Diagnosis(kind=None, http_status=status, intuit_tid=intuit_tid, retry_after=retry_after)
        return _unreadable(status, text, endpoint, intuit_tid, retry_after, Kind.UNKNOWN)
    # A failure status without a readable fault: empty, truncated, HTML, or some other document.
    return _unreadable(status, text, endpoint, intuit_tid, retry_after, Kind.UNKNOWN)


def _with_kind(d: Diagnosis, kind: Kind) -> Diagnosis:
    """The status-decided kind (401, 429) over whatever the body said, keeping codes and details."""
    if d.kind is kind:
        return d
    hint = d.hint if kind is Kind.AUTH_EXPIRED else None
    return Diagnosis(
        kind=kind,
        http_status=d.http_status,
        codes=d.codes,
        errors=d.errors,
        fault_type=d.fault_type,
        details=d.details,
        field=None,
        intuit_tid=d.intuit_tid,
        retry_after=d.retry_after,
        hint=hint,
    )


# --------------------------------------------------------------------------------------------------
# No answer at all


def diagnose_transport(exc: BaseException) -> Diagnosis:
    """Classify a call that got no HTTP answer (httpx timeouts, connection and network errors).

    In: the exception raised by the HTTP client (httpx or httpx2; recognised by class name, so no
    import of either is needed). Out: an ``unknown`` Diagnosis with ``http_status None`` and a details
    text saying what happened; a timeout also carries a hint that the request may have been applied.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    hint = None
    if "TimeoutException" in names or isinstance(exc, TimeoutError):
        what = "No answer from QuickBooks in time"
        if "ConnectTimeout" in names or "PoolTimeout" in names:
            what = "Could not connect to QuickBooks in time"
        else:
            hint = (
                "QuickBooks may still have applied the request; a retry with the same requestid is not applied twice."
            )
    elif "ConnectError" in names or isinstance(exc, ConnectionRefusedError):
        what = "Could not connect to QuickBooks"
    elif names & {"NetworkError", "TransportError", "RemoteProtocolError"} or isinstance(exc, OSError):
        what = "Network error while talking to QuickBooks"
    else:
        what = "Unexpected error while calling QuickBooks"
    message = _collapse(str(exc))
    details = f"{what} ({type(exc).__name__}{': ' + message if message else ''})."
    return Diagnosis(kind=Kind.UNKNOWN, http_status=None, details=_trim(_redact(details)), hint=hint)


# --------------------------------------------------------------------------------------------------
# Totals after a successful write

_HALF_CENT = Decimal("0.005")
_TXN_KEYS = ("Invoice", "SalesReceipt", "CreditMemo", "Estimate", "RefundReceipt")


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Mapping):
        value = value.get("value")
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _money(d: Decimal) -> str:
    """Two decimals, or every decimal when there are more (a 448.395 must not read as 448.40)."""
    return f"{d:.2f}" if d == d.quantize(Decimal("0.01")) else f"{d:f}"


def _signed(d: Decimal) -> str:
    return ("+" if d > 0 else "") + _money(d)


def diagnose_totals(
    ours_total: Decimal,
    ours_tax: Decimal,
    reply_entity: Mapping[str, Any],
    our_lines: Sequence[tuple[str, Decimal]] = (),
) -> Diagnosis | None:
    """Compare QuickBooks' totals with ours after an invoice (or sales receipt...) write.

    QuickBooks computes ``TotalAmt`` itself and US companies with automated sales tax recompute tax,
    so totals diverge without any error (DESIGN.md, "Totals"). In: our total and tax, the entity
    QuickBooks returned (the ``Invoice`` object, or the whole reply ``{"Invoice": {...}}``; numbers
    or strings, so converted XML works too), and optionally our lines as ``(label, amount)`` in order,
    compared with the reply's ``SalesItemLineDetail`` lines. Out: a ``total_mismatch`` Diagnosis when
    the total or the tax differs by more than half a cent, whose details give both totals, the tax of
    both and its difference, and the lines whose amount differs; None otherwise (also when the reply
    has no ``TotalAmt`` to compare).
    """
    entity: Mapping[str, Any] = reply_entity
    for key in _TXN_KEYS:
        inner = reply_entity.get(key)
        if isinstance(inner, Mapping):
            entity = inner
            break
    theirs_total = _dec(entity.get("TotalAmt"))
    if theirs_total is None:
        return None
    tax_detail = entity.get("TxnTaxDetail")
    theirs_tax = _dec(tax_detail.get("TotalTax")) if isinstance(tax_detail, Mapping) else None
    theirs_tax = theirs_tax if theirs_tax is not None else Decimal(0)
    ours_total_d = _dec(ours_total) or Decimal(0)
    ours_tax_d = _dec(ours_tax) or Decimal(0)
    total_diff = theirs_total - ours_total_d
    tax_diff = theirs_tax - ours_tax_d
    if abs(total_diff) <= _HALF_CENT and abs(tax_diff) <= _HALF_CENT:
        return None

    differing: list[str] = []
    lines = [
        f"Total: JobsiteOn {_money(ours_total_d)}, QuickBooks {_money(theirs_total)} "
        f"(difference {_signed(total_diff)}).",
        f"Tax: JobsiteOn {_money(ours_tax_d)}, QuickBooks {_money(theirs_tax)} (tax difference {_signed(tax_diff)}).",
    ]
    their_lines = [
        ln
        for ln in _listify(entity.get("Line"))
        if isinstance(ln, Mapping) and (ln.get("DetailType") == "SalesItemLineDetail" or "SalesItemLineDetail" in ln)
    ]
    if our_lines:
        for index, (label, amount) in enumerate(our_lines):
            ours_amount = _dec(amount) or Decimal(0)
            if index >= len(their_lines):
                differing.append(f"{label}: JobsiteOn {_money(ours_amount)}, missing in QuickBooks")
                continue
            theirs_amount = _dec(their_lines[index].get("Amount"))
            if theirs_amount is None or abs(theirs_amount - ours_amount) > _HALF_CENT:
                shown = _money(theirs_amount) if theirs_amount is not None else "no amount"
                differing.append(f"{label}: JobsiteOn {_money(ours_amount)}, QuickBooks {shown}")
        for extra in their_lines[len(our_lines) :]:
            amount = _dec(extra.get("Amount"))
            differing.append(
                f"line {extra.get('LineNum') or extra.get('Id') or '?'}: only in QuickBooks "
                f"({_money(amount) if amount is not None else 'no amount'})"
            )
        lines.append("Lines that differ: " + "; ".join(differing) + "." if differing else "Line amounts match.")
    data = {
        "ours": {"total": _money(ours_total_d), "tax": _money(ours_tax_d)},
        "theirs": {"total": _money(theirs_total), "tax": _money(theirs_tax)},
        "total_difference": _signed(total_diff), "tax_difference": _signed(tax_diff),
        "lines": differing,
    }
    return Diagnosis(kind=Kind.TOTAL_MISMATCH, http_status=None, details=_finish_details(lines, None), data=data)


def make_diagnosis(
    kind: Kind | None,
    details: str,
    *,
    field: str | None = None,
    http_status: int | None = None,
    codes: Sequence[str] = (),
    hint: str | None = None,
    intuit_tid: str | None = None,
    retry_after: float | None = None,
) -> Diagnosis:
    """A Diagnosis that syncbot states itself rather than reads off a reply (a missing dependency, an
    interrupted attempt, a refresh that found no token...). In: the kind and a details sentence
    (trimmed to 2000 characters, secrets redacted), optional fields. Out: the Diagnosis.
    """
    return Diagnosis(
        kind=kind,
        http_status=http_status,
        codes=tuple(codes),
        details=_trim(_redact(details)),
        field=field,
        intuit_tid=intuit_tid,
        retry_after=retry_after,
        hint=hint,
    )


def diagnose_deleted(entity: str, qbo_id: str, source: str = "change data capture") -> Diagnosis:
    """A linked object that QuickBooks reports deleted (``"status": "Deleted"`` in a CDC answer).

    In: the entity name (``"Invoice"``), its QuickBooks Id and where the news came from. Out: a
    ``not_found`` Diagnosis (Re-create / Unlink) whose details name the object.
    """
    return make_diagnosis(Kind.NOT_FOUND, f"QuickBooks reports {entity} {qbo_id} as deleted ({source}).")


# --------------------------------------------------------------------------------------------------
# Report


def report(d: Diagnosis) -> dict[str, Any]:
    """The JSON object ``syncbot diagnose`` prints.

    Keys: ``kind`` ("ok" for success), ``title``, ``codes``, ``cause``, ``fix``, ``actions``,
    ``details``, ``field``, ``hint``, ``http_status``, ``fault_type``, ``intuit_tid``,
    ``retry_after``, ``entry_status``; plus ``items`` ``{bId: kind or "ok"}`` for a batch answer.
    """
    out: dict[str, Any] = {
        "kind": d.label,
        "title": d.info.title if d.info else "Synced",
        "codes": list(d.codes),
        "cause": d.cause,
        "fix": d.fix,
        "actions": [a.value for a in d.actions],
        "details": d.details,
        "field": d.field,
        "hint": d.hint,
        "http_status": d.http_status,
        "fault_type": d.fault_type,
        "intuit_tid": d.intuit_tid,
        "retry_after": d.retry_after,
        "entry_status": d.entry_status,
    }
    if d.items:
        out["items"] = {bid: item.label for bid, item in d.items.items()}
    return out
