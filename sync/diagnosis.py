"""The error kinds, and the one classifier of provider replies into them.

Everything that decides what a QuickBooks Online (QBO) or Intuit OAuth reply *means* lives here: the
sync engine and ``syncbot diagnose`` both call :func:`diagnose`. The kinds, their cause and fix come
from the JobsiteOn help article "Resolve Sync Errors", quoted in its own words (docs/platform-facts.md,
"The help article"); the kinds the article does not name (closed_period, subscription, locked, conflict)
are ours, in the same shape. Codes, statuses and wire quirks come from docs/platform-facts.md
("QuickBooks: faults", "QuickBooks: one code, several meanings") and the real replies in
``tests/fixtures/qbo_replies.json``. Nothing here knows about Slack: ``details`` is plain text, not escaped
for mrkdwn (the Slack side escapes it).

Public interface
================
* :class:`Kind`, :class:`FixAction`, :class:`KindInfo` and the :data:`KINDS` table.
* :class:`FaultError`, :class:`Diagnosis` (``kind is None`` means success, "ok").
* :func:`diagnose` (an HTTP answer; with ``bids`` for the answer to a batch request),
  :func:`diagnose_transport` (no answer: timeouts, connection
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
3. **An OAuth error object** (``{"error": "...", "error_description": ...}``, any key order, keys in
   any case, mostly from the token/revoke endpoints). The error is read in RFC 6749's spelling whatever
   its case or separators (``INVALID_GRANT``, ``Invalid_Grant``, ``invalid-grant`` → ``invalid_grant``;
   ``codes`` holds that spelling, ``details`` the one sent). An object with **only**
   ``error_description`` is an OAuth error too: an error name in the description decides, else a
   description that says the refresh token / grant / authorization code is invalid, incorrect, expired
   or revoked ("Incorrect or invalid refresh token") is ``invalid_grant``. ``invalid_grant`` (refresh
   token expired, revoked, rotated and lost, or raced) → auth_expired. ``invalid_client`` /
   ``unauthorized_client`` (the app's client id or secret is refused) → **auth_expired too**, by
   decision: every call of the connection fails until someone acts, so it must be one connection-wide
   incident with the Reconnect path, and the ``hint`` says the app's credentials (configuration) must
   be checked before reconnecting.
   ``invalid_token`` / ``access_denied`` → auth_expired. **Under a 5xx status** none of them is believed: a
   server error says nothing of the token (the rule of 3200 below) → unknown, and the refresh is tried again
   later instead of asking for a reconnect. An error named like a throttle → rate_limited. Any other OAuth
   error → unknown.
4. **A Fault** (any key case, JSON or XML with or without namespace prefixes, at any HTTP status): every
   error is kept, each is classified by :func:`classify_error`, and the Fault's kind is the most specific
   of them (precedence below). Shapes read alike: ``Error`` as a list, a single object or strings; a list
   of Faults (their errors joined); a Fault that is only a string; ``code`` as a string or a number
   (``6240``, ``6240.0``, ``"006240"``), or an ``errorCode`` key. **A Fault without any error** (``Error``
   empty or missing) has only its type to go by, and a type names no record problem: an
   authentication / authorization (401/403) / throttling type gives its connection-wide kind, anything
   else (ValidationFault included) is **unknown**, never validation (there is no field to fill).
   **4b. The Intuit API gateway's own error format** (answered before the request reaches QuickBooks, at any
   status: 401, 403, 400, 404, 500, 502...): ``{"code": "AuthenticationFailed", "type": "INPUT", "message",
   "detail", "moreInfo"}`` (keys in any case), the same object inside ``{"error": {...}}`` or ``{"errors":
   [...]}`` (and the XML ``<Error><code>..</code>..</Error>`` that converts to it), and an API-gateway fault
   ``{"fault": {"faultstring": "...", "detail": {"errorcode": "..."}}}``. Each is read as a Fault whose error
   has that named code, message and detail (``moreInfo`` kept), so the rules of named codes below decide.
5. **A batch answer** (``BatchItemResponse``, HTTP 200 even when items fail): each ``bId`` gets its own
   Diagnosis in ``items``, and **no item is ok unless it carries an answer**:

   * an item with a Fault (any shape, any key case) → that Fault's diagnosis;
   * an item with an object (``"Customer": {...}``, a ``QueryResponse``, a non-empty list) → ok (``kind
     None``), **only under a 2xx status**: under a non-2xx status (400, 500...) QuickBooks' batch answer
     is not believed, and every item without a Fault of its own gets the envelope's diagnosis (a Fault
     beside the items, else unknown "the outcome is uncertain"); the top level is then never ok;
   * an item with **neither** an object nor a Fault, or that is not an object → **unknown**;
   * **a bId answered twice** keeps the worse answer (a failure over ok, the more specific failure over
     the other): an ok never overwrites a Fault;
   * an item **without a bId** is keyed ``(no bId #n)`` (n its position from 1), made unique against
     every real bId of the answer by adding ``'``: keys never collide;
   * with ``bids`` (the bIds the request sent) every sent bId has an item: one the answer does not
     mention is unknown ("no item for bId"), or the envelope's failure when the answer failed as a whole;
   * **an answer to a batch request that is not a batch answer** (a Fault envelope, an HTML or empty
     body, a 401/429...) is the diagnosis of **every bId** (``bids``, or the bIds of a 401/429 body);
   * an empty ``BatchItemResponse`` → unknown, **unless a Fault stands beside it**: the lower-case envelope
     QuickBooks answers 401/403/500 with carries ``"batchItemResponse": []`` next to its ``fault``, and is a
     Fault answer (rule 4), not a batch answer. The top-level kind is the most specific failing item's
     kind, or None when every item is ok.
6. Anything else: a 2xx → ok (``kind None``; CDC and query answers included, a deleted object in a
   CDC answer is the engine's business via :func:`diagnose_deleted`); an empty 2xx body is ok (the
   revoke endpoint answers so). A non-2xx **plain-text** body naming ``errorCode=NNNN``
   (``message=ThrottleExceeded; errorCode=003001; statusCode=403``), or starting ``message=Name;``, is read as
   a Fault with that one error. A non-2xx without a readable fault (empty, truncated, HTML gateway or
   maintenance pages, a lone XML declaration) → **unknown**, with the HTTP status and the raw text (trimmed,
   tags stripped for HTML) in ``details``. An unreadable 2xx body → unknown as well. **A binary body** (gzip, PNG,
   JPEG, zip, PDF... by their leading bytes, or bytes with NULs that are not UTF-16/32, or mostly
   control characters) is never shown: ``details`` says ``binary body (gzip, N bytes, content-type
   X)``. Bodies are decoded by :func:`sync.providers.qbo_wire.decode_body`: BOMs (UTF-8/16/32), UTF-16
   and UTF-32 without a BOM, UTF-8, the declared charset, Windows-1252, Latin-1.

:func:`classify_error`, one error of a Fault; **status and code are read together**:

* 3001 → rate_limited, at any status (429, or 403 in older answers).
* 3100 → auth_expired with 401/403 only; with 500 (or anything else) it is a QuickBooks server error
  ("InternalServerError"), **not** an expired token → unknown.
* 3200, 100, 110, 120, 130 → auth_expired, except under a 5xx status (a server error) → unknown.
* 6240, 6140, 630 (Duplicate Object) → duplicate.  5010 → conflict.  6210 → closed_period.
  6190, 140 (Company Locked Out) → subscription.  6540 → locked.  150 (Company Under Maintenance) → unknown
  (it passes by itself; no reconnect helps).
* 610, 2500, 700 (Parent Reference Invalid) → not_found; but a 2500 whose element is the record's own reference
  to one of QuickBooks' lists (``IncomeAccountRef`` and the other ``…AccountRef``, ``SalesTermRef``,
  ``TaxCodeRef``: an account, a term or a tax code unknown or made inactive) → validation, the field named: the
  record is fixed by choosing another, not by re-creating or unlinking it.
* 620 ("TxnID Cannot Be Linked", a payment that cannot be linked to its invoice) → not_found when the
  message or detail says the linked transaction is gone ("deleted", "not found", "does not exist",
  "no longer exists"); otherwise validation (the usual cause is a customer mismatch).
* 6070, 6170, 2280, 6100 → total_mismatch; 6000 whose message or detail speaks of calculating tax
  ("error while calculating tax", "tax calculation") → total_mismatch (see "Reading the words").
* 2020, 2010, 2030, 2040, 2050, 2080, 6000, 6080, 2390 → validation (``field`` names the element, or
  the X of "Required parameter X is missing"; 2390 without an element names ``IncomeAccountRef``).
* 10000 and every code from 10000 up ("severe" in Intuit's list) → unknown (SystemFault, a server error).
* **Intuit's "Unsupported" and "General" codes, 500-1999**, other than those named here (610, 620, 630, 700)
  → **unknown**, never validation whatever the fault type says: they are about syncbot's request or the
  operation (500 Unsupported Operation, 600 Duplicate Request ID, 1000 Operation failed, 1050 Invalid Content
  Type...), not a field the user can fill; 4000/4001 (syncbot's own query could not be read) likewise. The
  ``hint`` says which (500, 600, 1040, 1050, 4000, 4001).
* **1040** "Batch size exceeds allowed limit" → **unknown**, never validation, whatever the fault type
  says: in Intuit's error code list it is one of the *General Error Codes* (600-1999), about the size of
  the batch request syncbot built, not a field of the record (docs/platform-facts.md, "QuickBooks: batch").
  The ``hint`` says so; Retry sends the record alone.
* **Named codes** (not numbers: the gateway's ``code``, an ``errorcode`` of a gateway fault, or the name of a
  ``message=ThrottleExceeded; statusCode=429`` message without an ``errorCode``) are read by their words, in
  any case and with any separators (``AuthenticationFailed``, ``AUTHENTICATION_FAILED``,
  ``oauth.v2.InvalidAccessToken``), status and name together:

  - a throttle (``ThrottleExceeded``, ``TooManyRequests``, ``RateLimitExceeded``, ``QuotaExceeded``,
    ``SpikeArrestViolation``...) → rate_limited, at any status (as 3001);
  - about the token (``AuthenticationFailed``, ``Unauthorized``, ``InvalidToken``, ``TokenExpired``,
    ``InvalidAccessToken``...) → auth_expired at any status but 5xx; under 5xx → unknown (as 3200);
  - an authorization refusal (``AuthorizationFailed``, ``ApplicationAuthorizationFailed``, ``AccessDenied``,
    ``InsufficientScope``) → auth_expired with 401/403 (as 3100: the connected user's role or the app's
    scope, which a reconnect by an admin fixes), or under another non-5xx status when its message or detail
    speaks of the token (token, bearer, expired, revoked, scope, credentials); otherwise unknown;
  - any other name (``ResourceNotFound``, ``MethodNotAllowed``, ``BadGateway``...) → the fault type decides
    (below), else unknown, with the code, message and detail in ``details``.
* A missing code is read from ``errorCode=003200`` in the message or detail when present. **Every**
  ``errorCode=NNNN`` (also ``errorCode: NNNN``) in a message or detail is listed in ``codes`` beside
  the error's own code (normalised, once per error).
* Any other code: the fault type decides (read by its prefix, so a misspelt ``AuthorizatonFault`` is
  still one): ValidationFault → validation; AuthenticationFault /
  AUTHENTICATION → auth_expired (unless 5xx); AuthorizationFault with 401/403 → auth_expired;
  ThrottlingFault (any type starting "Throttl") → rate_limited; SystemFault, SERVICE and anything
  else → unknown.
* **A message that contradicts its code is resolved by the code** (code 6240 with a text saying
  "Object Not Found" is a duplicate), except where the code's own family has several meanings: then
  the words decide among those meanings only (next section).

Reading the words (:func:`read_error`)
--------------------------------------
Some codes carry several meanings, and Intuit says to read the detail to know which ("There are two
possible reasons for error 610. Check the detail field": Intuit's "Handling common errors" page;
docs/platform-facts.md, "QuickBooks: one code, several meanings"). A meaning is either another kind, or a
:class:`Meaning` of the same kind (:data:`MEANINGS`: its own title, cause, fix and buttons; the kind keeps precedence,
scope, severity and every count). Read in the message and detail, any case; the first rule that matches decides:

* 6000, 5010, 6210 speaking of the **closing date** or a closed period / closed books → closed_period
  ("Account Period Closed: The account period has closed", python-quickbooks#208, came as 5010).
* 610, 2500, 6000 saying **inactive** → not_found, meaning ``inactive_reference``: a record this one uses
  was made inactive; the fix is to reactivate it (or choose another) and Retry, never to re-create or
  unlink the failing record (buttons: Retry).
* 6000, 6210 saying **Duplicate Document Number** / "number has already been used" (Intuit's blog lists
  it under 6210), and 6140 always → duplicate, meaning ``duplicate_number``: a new number, not a merge
  (buttons: Fill in the number, Retry; ``field`` is DocNumber).
* 6000 saying the transaction was **deposited** → locked; 6000 about **calculating tax** → total_mismatch.
* 6000 about the **request id**, and 2010 (a property QuickBooks cannot read) → validation, meaning
  ``own_request``: syncbot's request, not the record's data; no field to fill (buttons: Retry).
* 2500 (and 610 whose element is a ``…Ref``) otherwise → not_found, meaning ``missing_reference``: a
  record this one uses is not in QuickBooks (buttons: Retry; that record's own error offers Re-create).
* 2050 → validation, meaning ``too_long`` (string length: shorten the field).
* 610 otherwise (the record itself deleted), 6240 (a name), 5010 otherwise (stale SyncToken), 2020
  (required), 3001 (throttle), 3200 / 3100 (token; a hint covers scope and the wrong environment) keep
  their kind's own words: each has one meaning a user acts on.

Connection-wide codes (3001, 3100, 3200, 100-130) are decided before any words are read. The engine may
refine a not_found further by reading what the write refers to (``SyncEngine._locate_not_found``).

Precedence, most specific first (:data:`PRECEDENCE`), used for a Fault with several errors and for a
batch answer::

    auth_expired > subscription > rate_limited > not_found > duplicate > conflict
        > closed_period > locked > total_mismatch > validation > unknown

The connection-wide kinds come first (nothing on the record can succeed until they are resolved),
then the record kinds whose fix differs most from "fill a field", then validation; unknown only when
nothing is recognised.

Other fields: ``details`` is the provider's text made readable (one line per error: code, message,
detail, field; HTML anchors turned into "text (url)" in Details and in HTML pages alike, only for
``http(s)``/``mailto`` links, other tags stripped), at most 2000 characters. **Secrets are redacted
before anything is cut** (so a cut never leaves half a secret), then again on the finished text: the
value of any secret-named key (``access_token``, ``accessToken``, ``refresh_token``, ``refreshToken``,
``id_token``, ``client_secret``, ``clientSecret``, ``token``, ``password``, ``secret``, ``api_key``,
with an optional prefix like ``x_``/``oauth_``; any case) in every form — ``key=v``, ``key: v``,
``"key": "v"``, ``\"key\":\"v\"`` (JSON inside a string), ``<key>v</key>`` (with namespace prefixes),
quoted values cut short included —; the ``Authorization``, ``Proxy-Authorization``, ``Cookie`` and
``Set-Cookie`` header values to the end of their line; ``Bearer``/``Basic``/``Digest`` credentials; JWTs;
Intuit refresh tokens. ``SyncToken``, ``token_type``, ``intuit_tid`` and request ids are kept, and so are
sentences about tokens (``Malformed bearer token: too short or too long``: after ``key:`` a short word followed
by more words is prose, and ``bearer token`` / ``Basic authentication`` are not credentials). The
Slack side escapes ``details`` for mrkdwn (``&``, ``<``, ``>``) and makes web links clickable again: ``links``
lists the ``(text, url)`` of every http(s) anchor that ``details`` shows as "text (url)" (the engine keeps them
with the entry). ``intuit_tid`` comes from the response
header and is also appended to ``details`` (support asks for it); ``retry_after`` is the
Retry-After header in seconds (number or HTTP date), None when absent (QBO documents none, see
docs/platform-facts.md, "QuickBooks: throttling"; the engine then waits its own default).

Severity is one per kind, the ``status`` of :data:`KINDS` (:attr:`Diagnosis.entry_status`): total_mismatch
(from :func:`diagnose_totals` after a successful write, or from a Fault: 6070, 6100, tax-calculation 6000...)
and rate_limited (it resolves by itself) are *warnings*, every other kind an *error*.
"""

from __future__ import annotations

import dataclasses
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

from sync.providers.qbo_wire import binary_kind, decode_body, is_html, normalize_keys, parse_body

__all__ = [
    "KINDS",
    "MEANINGS",
    "PRECEDENCE",
    "Diagnosis",
    "FaultError",
    "FixAction",
    "Kind",
    "KindInfo",
    "Meaning",
    "classify_error",
    "diagnose",
    "diagnose_deleted",
    "diagnose_totals",
    "diagnose_transport",
    "kind_info",
    "make_diagnosis",
    "most_specific",
    "read_error",
    "report",
    "severity",
]

DETAILS_LIMIT = 2000
ENDPOINTS = frozenset({"api", "token", "revoke"})


class Kind(StrEnum):
    """What went wrong, in the product's words (docs/platform-facts.md, "The help article")."""

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
    KEEP_PROVIDER_TOTALS = "keep_provider_totals"  # a total mismatch: take QuickBooks' figures into JobsiteOn
    SEND_OWN_TAX = "send_own_tax"  # a total mismatch: send JobsiteOn's tax explicitly and push again
    OPEN_IN_PROVIDER = "open_in_provider"  # a link to the record in QuickBooks' web app


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
    #: The key of the :data:`MEANINGS` entry these words come from; None for the kind's own words.
    meaning: str | None = None


_A = FixAction

#: Cause and fix in the help article's words; the four extra kinds (beyond the article's six) in ours.
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
            status="warning",
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
            (_A.KEEP_PROVIDER_TOTALS, _A.SEND_OWN_TAX, _A.RETRY, _A.MARK_RESOLVED, _A.OPEN_IN_PROVIDER),
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
            "The transaction is dated on or before the closing date of the books: QuickBooks keeps that "
            "period closed.",
            "Change the date in JobsiteOn to one after the closing date, or ask your bookkeeper to reopen the "
            "period (or enter the closing-date password) in QuickBooks, then click Retry.",
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


def severity(kind: object, status: object) -> str:
    """The severity an entry of ``kind`` stored with ``status`` is shown with, on every surface: for an error or
    a warning of a known kind, the kind's own (``KINDS[kind].status``: one severity per kind, whatever an older
    row stored); otherwise the stored status (synced, info, pending, or an entry without a kind)."""
    stored = str(status or "")
    if stored in ("error", "warning") and kind:
        try:
            return KINDS[Kind(str(kind))].status
        except ValueError:
            return stored
    return stored


@dataclass(frozen=True)
class Meaning:
    """One of the meanings a code carries besides its kind's usual one, told apart by the words of the
    error (its message, detail and element): its own title, cause, fix and buttons, within ``kind`` (which
    keeps deciding precedence, scope, severity and every count)."""

    key: str
    kind: Kind
    title: str
    cause: str
    fix: str
    actions: tuple[FixAction, ...]


#: The second (third...) meanings of a code, keyed by name; see "Reading the words" in the module docstring.
MEANINGS: Mapping[str, Meaning] = {
    m.key: m
    for m in (
        Meaning(
            "inactive_reference",
            Kind.NOT_FOUND,
            "Uses an inactive record",
            "A record this one uses (a customer, item, account or tax code) has been made inactive in QuickBooks.",
            "Reactivate that record in QuickBooks, or choose another one in JobsiteOn, then click Retry. This "
            "record itself is fine: don't re-create or unlink it.",
            (_A.RETRY,),
        ),
        Meaning(
            "missing_reference",
            Kind.NOT_FOUND,
            "Uses a record QuickBooks doesn't have",
            "A record this one uses (the field below) is not in QuickBooks: it was deleted there, or never synced.",
            "Fix that record first (its own error offers Re-create), or choose another one in JobsiteOn, then "
            "click Retry. This record itself is fine: don't re-create or unlink it.",
            (_A.RETRY,),
        ),
        Meaning(
            "duplicate_number",
            Kind.DUPLICATE,
            "Duplicate number",
            "Another transaction in QuickBooks already uses this number.",
            "Give this record a number of its own in JobsiteOn (or fill it in here), save, then click Retry.",
            (_A.FILL_FIELD, _A.RETRY),
        ),
        Meaning(
            "inactive_choice",
            Kind.VALIDATION,
            "Chosen account is inactive",
            "The account (or term, or tax code) this record names has been made inactive in QuickBooks.",
            "Fill in another one from QuickBooks' list, or reactivate it in QuickBooks, then click Retry.",
            (_A.FILL_FIELD, _A.RETRY),
        ),
        Meaning(
            "too_long",
            Kind.VALIDATION,
            "Field too long",
            "A field is longer (or shorter) than QuickBooks allows; the details say the limit.",
            "Shorten the field in JobsiteOn (or fill it in here), save, and the next sync attempt will succeed.",
            (_A.FILL_FIELD, _A.RETRY),
        ),
        Meaning(
            "own_request",
            Kind.VALIDATION,
            "Request refused",
            "QuickBooks refused syncbot's own request, not the record's data: there is no field to fill.",
            "Click Retry. If the error persists after retrying, contact JobsiteOn support with the error "
            "timestamp and details.",
            (_A.RETRY,),
        ),
    )
}


def kind_info(kind: Kind, meaning: str | None = None) -> KindInfo:
    """The cause, fix and buttons of ``kind``, in the words of ``meaning`` when it is one of that kind's
    :data:`MEANINGS` (an unknown or foreign meaning, e.g. one stored by another version, gives the kind's own)."""
    info = KINDS[kind]
    m = MEANINGS.get(meaning) if meaning else None
    if m is None or m.kind is not kind:
        return info
    return dataclasses.replace(info, title=m.title, cause=m.cause, fix=m.fix, actions=m.actions, meaning=m.key)


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
    #: The provider's http(s) links (HTML anchors) as ``(text, url)``, each shown in ``details`` as "text (url)":
    #: what a renderer needs to make them links again (the Slack side shows ``<url|text>``).
    links: tuple[tuple[str, str], ...] = ()
    #: Which of the kind's :data:`MEANINGS` the words of the error name (None: the kind's own).
    meaning: str | None = None

    @property
    def ok(self) -> bool:
        """True for success."""
        return self.kind is None

    @property
    def info(self) -> KindInfo | None:
        """The kind's :class:`KindInfo`, None for success."""
        return None if self.kind is None else kind_info(self.kind, self.meaning)

    @property
    def cause(self) -> str | None:
        """The cause (help article words, or the meaning's), None for success."""
        return None if self.kind is None else kind_info(self.kind, self.meaning).cause

    @property
    def fix(self) -> str | None:
        """The fix (help article words, or the meaning's), None for success."""
        return None if self.kind is None else kind_info(self.kind, self.meaning).fix

    @property
    def label(self) -> str:
        """``"ok"`` or the kind's value."""
        return "ok" if self.kind is None else self.kind.value

    @property
    def actions(self) -> tuple[FixAction, ...]:
        """The buttons for this diagnosis (none for success)."""
        return () if self.kind is None else kind_info(self.kind, self.meaning).actions

    @property
    def scope(self) -> Literal["record", "connection"] | None:
        """``"connection"`` for connection-wide kinds, ``"record"`` otherwise, None for success."""
        return None if self.kind is None else KINDS[self.kind].scope

    @property
    def entry_status(self) -> Literal["error", "warning", "synced"]:
        """The sync log status: "synced" for success, else the kind's status (one severity per kind, whatever
        the reply: a total_mismatch is a warning whether found after the write or refused over tax)."""
        if self.kind is None:
            return "synced"
        return KINDS[self.kind].status


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


#: Words that give a code another of its meanings ("Reading the words" in the module docstring).
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
    module docstring; :func:`read_error` also gives the meaning.
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


# --------------------------------------------------------------------------------------------------
# Text helpers: readable, trimmed, no secrets

_ANCHOR = re.compile(
    r"<a\b[^>]*?\bhref\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+))[^>]*>(.{0,2000}?)</a\s*>", re.I | re.S
)
_LINK_SCHEME = re.compile(r"\s*(?:https?://|mailto:)", re.I)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_SCRIPT = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_MARKUP_DECL = re.compile(r"<![^>]*>|<\?[^>]*\?>")
#: Names whose value is a secret, in any case and spelling (``access_token``, ``accessToken``, ``access-token``,
#: ``x_refresh_token``, ``clientSecret``, ``Set-Cookie``...). ``SyncToken`` and ``token_type`` are not secrets.
_SECRET_NAME = (
    r"(?:[A-Za-z0-9]{1,24}[_-]){0,2}"
    r"(?:(?:access|refresh|id|auth|bearer|session|csrf|oauth|api|xsrf)[_-]?token|token|"
    r"client[_-]?secret|secret|password|passwd|api[_-]?key|"
    r"(?:proxy-)?authorization|set-cookie|cookie)"
)
_Q = r"(?:\\?[\"']|&quot;|&#3[49];|&apos;)"  # a quote, also JSON-escaped or as an HTML entity
#: Credentials of an Authorization header: an optional scheme, then ``k="v", k2="v2"`` parameters or one token.
_CREDENTIALS = (
    r"(?:(?:Bearer|Basic|Digest|OAuth|Negotiate|NTLM|Token|AWS4-HMAC-SHA256)\s+)?"
    r"(?:[\w-]+=(?:\"[^\"]*\"|&quot;.*?&quot;)(?:\s*,\s*[\w-]+=(?:\"[^\"]*\"|&quot;.*?&quot;))*"
    r"|[^\s,;\"'<>&]+)"
)
#: Cookies: ``name=value`` pairs and attributes (``Path=/``, ``HttpOnly``) joined by ``;``.
_COOKIES = r"[^\s;=,\"'<>]+=[^\s;\"'<>]*(?:\s*;\s*[^\s;=,\"'<>()]+(?:=[^\s;\"'<>]*)?)*"
_HEADER_VALUE = re.compile(
    r"(?<![\w-])(?P<key>(?:proxy-)?authorization)(?P<sep>\s*[:=]\s*)(?P<value>" + _CREDENTIALS + r")"
    r"|(?<![\w-])(?P<ckey>set-cookie|cookie)(?P<csep>\s*[:=]\s*)(?P<cvalue>" + _COOKIES + r")",
    re.I,
)
_KEY_VALUE = re.compile(
    r"(?<![\w-])(?P<key>" + _Q + r"?" + _SECRET_NAME + _Q + r"?)(?![\w-])(?P<sep>\s*[:=]\s*)"
    r"(?P<value>\\\"(?:[^\\]|\\(?!\"))*\\\"|\\\"[^\s\\]*"  # an escaped JSON string inside a string: \"...\"
    r"|&quot;.*?&quot;|&quot;[^\s&]*"  # HTML-escaped quotes
    r"|\"(?:[^\"\\]|\\.)*\"|\"[^\"\s]*|'[^']*'|'[^'\s]*"  # quoted (cut short: to the next space)
    r"|[^\s&,;}\])\"'<>]+)",  # unquoted, to the next separator
    re.I,
)
_XML_SECRET = re.compile(
    r"((?:<|&lt;)(?:[\w.-]+:)?(?P<tag>" + _SECRET_NAME + r")\b[^<>&]*(?:>|&gt;))"
    r"(?:[^<&]*(?=(?:<|&lt;)/(?:[\w.-]+:)?(?P=tag)\b)|[^<&\s]*)",  # to its closing tag, else to the next space
    re.I,
)
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # not the prose "Malformed bearer token: too short" (the gateway's own words) nor "Basic authentication"
    (re.compile(r"\b(Bearer|Basic|Digest)\s+(?!(?:tokens?|auth\w*|credentials?|realm|scheme)\b)"
                r"[A-Za-z0-9._~+/=:-]{6,}", re.I), r"\1 [redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?"), "[redacted]"),  # JWT / JWE
    (re.compile(r"\bAB11\d{9,}[A-Za-z0-9]{8,}"), "[redacted]"),  # Intuit refresh tokens
)


#: An unquoted value after ``key:`` that is a short word followed by more lower-case words is prose.
_PROSE_VALUE = re.compile(r"[A-Za-z][a-z]{0,7}\Z")
_PROSE_NEXT = re.compile(r" [a-z]{2,}\b")


def _redact_key_value(m: re.Match[str]) -> str:
    group = "value" if m.group("value") is not None else "cvalue"
    key = m.group("key") if group == "value" else m.group("ckey")
    sep = m.group("sep") if group == "value" else m.group("csep")
    value = m.group(group)
    if _PROSE_VALUE.match(value) and ":" in sep and "=" not in sep and _PROSE_NEXT.match(m.string, m.end(group)):
        return m.group(0)  # "token: too short or too long" is a sentence about a token, not a token
    head = m.string[m.start(group) : m.start(group) + 24]
    if re.match(r"(?:\\?[\"']|&quot;)?\s*(?:[\w-]+\s+)?\[redacted\]", head):  # a second pass changes nothing
        return m.group(0)
    for quote in ('\\"', "&quot;", '"', "'"):
        if value.startswith(quote):
            closed = len(value) >= 2 * len(quote) and value.endswith(quote)
            return f"{key}{sep}{quote}[redacted]{quote if closed else ''}"
    return f"{key}{sep}[redacted]"


def _redact(text: str) -> str:
    """Secrets out of provider text: the values of secret-named keys in every form (``key=v``,
    ``key: v``, ``"key": "v"``, ``\\"key\\":\\"v\\"``, ``<key>v</key>``, any case), header values
    (``Authorization:``, ``Cookie:``, ``Set-Cookie:`` to the end of the line), bearer/basic credentials,
    JWTs and Intuit refresh tokens. intuit_tid and request ids are kept. Run on the whole text *before*
    anything is trimmed."""
    text = _HEADER_VALUE.sub(_redact_key_value, text)
    text = _KEY_VALUE.sub(_redact_key_value, text)
    text = _XML_SECRET.sub(lambda m: f"{m.group(1)}[redacted]", text)
    for pattern, repl in _SHAPES:
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


#: The http(s) links of provider text: (text, url) as they read in ``details`` ("text (url)"), both plain text.
Links = list[tuple[str, str]]
_WEB_LINK = re.compile(r"https?://[^\s/]", re.I)


def _anchor(m: re.Match[str], links: Links | None = None) -> str:
    """One ``<a href=URL>text</a>`` → ``text (URL)``; just ``URL`` when the text is the URL; just the text
    for a link that means nothing outside the page (relative, ``javascript:``, ``#fragment``). An http(s) link
    shown as ``text (URL)`` is added to ``links`` (entities decoded, as ``details`` will read)."""
    url = next(g for g in m.group(1, 2, 3) if g is not None).strip()
    label = _collapse(_TAG.sub(" ", m.group(4)))
    if not _LINK_SCHEME.match(html.unescape(url)):
        return f" {label} "
    if not label or html.unescape(label).rstrip("/") == html.unescape(url).rstrip("/"):
        return f" {url} "
    if links is not None and _WEB_LINK.match(html.unescape(url)):
        links.append((_collapse(html.unescape(label)), html.unescape(url)))
    return f" {label} ({url}) "


def _strip_markup(text: str, links: Links | None = None) -> str:
    """Provider text with HTML in it: anchors → ``text (url)``, other tags dropped, entities decoded."""
    text = text[:MARKUP_SCAN_LIMIT]
    text = _ANCHOR.sub(lambda m: _anchor(m, links), text)
    return html.unescape(_TAG.sub("", text))


def _html_excerpt(text: str, links: Links | None = None) -> str:
    text = text[:MARKUP_SCAN_LIMIT]
    title_m = _TITLE.search(text)
    title = _collapse(html.unescape(_TAG.sub("", title_m.group(1)))) if title_m else ""
    anchored = _ANCHOR.sub(lambda m: _anchor(m, links), _MARKUP_DECL.sub(" ", _SCRIPT.sub(" ", text)))
    body = _collapse(html.unescape(_TAG.sub(" ", anchored)))
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


def _error_line(e: FaultError, links: Links | None = None) -> str:
    msg = _collapse(_strip_markup(_redact(_humanize_message(e.message) or ""), links))
    det = _collapse(_strip_markup(_redact(e.detail or ""), links))
    both = msg and det and not det.lower().startswith(msg.lower())
    text = f"{msg} — {det}" if both else (det or msg or "(no message)")
    if not e.code:
        line = text
    elif e.code.isdigit():
        line = f"{e.code} {text}"
    else:  # a named code reads as a heading: "AuthenticationFailed: Malformed bearer token"
        line = f"{e.code}: {text}" if text != "(no message)" else e.code
    if e.element and e.element not in line:
        line += f" (field: {e.element})"
    return line


def _shown_links(links: Iterable[tuple[str, str]], details: str) -> tuple[tuple[str, str], ...]:
    """The links whose ``text (url)`` the finished details still show (not cut, not redacted away), once each."""
    out: list[tuple[str, str]] = []
    for text, url in links:
        if (text, url) not in out and f"{text} ({url})" in details:
            out.append((text, url))
    return tuple(out[:50])


def _finish_details(lines: Sequence[str], intuit_tid: str | None) -> str:
    """The details text: lines joined, secrets redacted (before any cut), trimmed, the intuit_tid kept."""
    text = _redact("\n".join(line for line in lines if line))
    if intuit_tid:
        tid = _redact(_collapse(intuit_tid)[:200])
        text = _trim(text, DETAILS_LIMIT - len(tid) - 14) + f"\nintuit_tid: {tid}"
    return _trim(text)


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


def _as_fault(value: Any) -> Mapping[str, Any] | None:
    """A Fault in whatever shape it came: an object; a list of them (errors joined, the first type); a bare
    string or a list of strings (errors with that message). None for null, empty or anything else."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, list):
        faults = [f for f in value if isinstance(f, Mapping)]
        if faults:
            return {
                "type": next((f.get("type") for f in faults if _text(f.get("type"))), None),
                "Error": [e for f in faults for e in _listify(f.get("Error"))],
            }
        texts = [t for v in value if isinstance(v, str) and (t := _text(v))]
        return {"Error": [{"Message": t} for t in texts]} if texts else None
    if isinstance(value, str) and value.strip():
        return {"Error": [{"Message": value}]}
    return None


#: Keys of the Intuit API gateway's own error object (``{"code", "type", "message", "detail", "moreInfo"}``), in
#: lower case; besides ``code``, one of these must be there for an object to be read as one.
_GATEWAY_KEYS = frozenset({"type", "message", "detail", "moreinfo", "description", "status"})


def _gateway_error(value: Any, *, wrapped: bool) -> dict[str, Any] | None:
    """One gateway error object read as a Fault error (``code``, ``Message``, ``Detail``), None when it is not one:
    a named or numeric ``code`` (or ``errorCode``) beside a type, message or detail (beside a message only, inside
    an ``error``/``errors`` wrapper), every value a scalar."""
    if not isinstance(value, Mapping):
        return None
    lower = {k.lower(): v for k, v in value.items() if isinstance(k, str)}
    code = next((lower[k] for k in ("code", "errorcode", "error_code") if lower.get(k) not in (None, "")), None)
    if code is None or isinstance(code, bool) or not isinstance(code, str | int | float):
        return None
    if any(isinstance(v, Mapping | list) for v in lower.values()):
        return None
    others = {"message", "detail", "description"} if wrapped else _GATEWAY_KEYS
    if not others & lower.keys():
        return None
    detail = _text(lower.get("detail")) or _text(lower.get("description"))
    more = _text(lower.get("moreinfo"))
    if more and more not in (detail or ""):
        detail = f"{detail} ({more})" if detail else more
    return {"code": code, "Message": _text(lower.get("message")), "Detail": detail}


def _gateway_fault(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Intuit API gateway's own error format read as a Fault (rule 4b), None when ``data`` is not one.

    Shapes: ``{"code": "AuthenticationFailed", "type": "INPUT", "message", "detail", "moreInfo"}`` (Intuit's
    "gateway error response format"), the same inside ``{"error": {...}}`` or ``{"errors": [...]}`` (also what an
    XML ``<Error><code>..</code>...</Error>`` converts to)."""
    direct = _gateway_error(data, wrapped=False)
    if direct is not None:
        lower = {k.lower(): v for k, v in data.items() if isinstance(k, str)}
        return {"type": _text(lower.get("type")), "Error": [direct], "_gateway": True}
    for key, value in data.items():
        if not isinstance(key, str) or key.lower() not in ("error", "errors"):
            continue
        items = [_gateway_error(v, wrapped=True) for v in _listify(value)]
        if items and all(i is not None for i in items):
            types = [_text(v.get("type")) for v in _listify(value) if isinstance(v, Mapping)]
            return {"type": next((t for t in types if t), None), "Error": items, "_gateway": True}
    return None


def _fault_errors(fault: Mapping[str, Any]) -> list[FaultError]:
    errors: list[FaultError] = []
    if fault.get("Error") in (None, [], "") and any(isinstance(k, str) and k.lower() == "faultstring" for k in fault):
        # an API-gateway fault: {"fault": {"faultstring": "Invalid access token", "detail": {"errorcode": "..."}}}
        lower = {k.lower(): v for k, v in fault.items() if isinstance(k, str)}
        detail = lower.get("detail")
        inner = {k.lower(): v for k, v in detail.items() if isinstance(k, str)} if isinstance(detail, Mapping) else {}
        code = inner.get("errorcode") if isinstance(inner.get("errorcode"), str | int) else None
        shown = _text(detail) if isinstance(detail, str) else None
        return [FaultError(_norm_code(code), _text(lower.get("faultstring")), shown, None)]
    for e in _listify(fault.get("Error")):
        if isinstance(e, str) and e.strip():  # "Error": ["text"]
            errors.append(FaultError(None, _text(e), None, None))
            continue
        if not isinstance(e, Mapping):
            continue
        code = e.get("code")
        if code is None:  # an "errorCode" key, in any case
            code = next((v for k, v in e.items() if isinstance(k, str) and k.lower() == "errorcode"), None)
        errors.append(
            FaultError(
                code=_norm_code(_text(code) if not isinstance(code, int | float) else code),
                message=_text(e.get("Message")),
                detail=_text(e.get("Detail")),
                element=_text(e.get("element")),
            )
        )
    return errors


def _error_codes(error: FaultError) -> list[str]:
    """The error's code and every ``errorCode=NNNN`` its message or detail names, normalised, once each; without
    either, the name of a ``message=Name;`` message."""
    out = [error.code] if error.code else []
    for text in (error.message, error.detail):
        for m in _ERROR_CODE_IN_TEXT.finditer((text or "")[:MARKUP_SCAN_LIMIT]):
            code = _norm_code(m.group(1))
            if code and code not in out:
                out.append(code)
    if not out and (named := _NAMED_MESSAGE.match(error.message or "")):
        out.append(named.group(1))
    return out


def _from_fault(
    fault: Mapping[str, Any], status: int | None, intuit_tid: str | None, retry_after: float | None
) -> Diagnosis:
    fault_type = _text(fault.get("type"))
    errors = _fault_errors(fault)
    fld: str | None = None
    links: Links = []
    meaning: str | None = None
    if errors:
        reads = [read_error(e, status, fault_type) for e in errors]
        kinds = [k for k, _ in reads]
        kind = most_specific(kinds) or Kind.UNKNOWN
        deciding = errors[kinds.index(kind)]
        meaning = reads[kinds.index(kind)][1]
        fld = _field_of(deciding) or next((f for e in errors if (f := _field_of(e))), None)
        if meaning == "duplicate_number":
            fld = fld or "DocNumber"  # the number QuickBooks refuses, whatever element it names
        elif meaning == "own_request":
            fld = None  # syncbot's request, not a field of the record
        lines = [_error_line(e, links) for e in errors]
    else:  # a Fault without errors: only its type is known, and only a connection-wide type says anything
        bare = classify_error(FaultError(None, None, None, None), status, fault_type)
        kind = bare if bare in (Kind.AUTH_EXPIRED, Kind.RATE_LIMITED) else Kind.UNKNOWN
        lines = [f"{fault_type or 'A'} fault without any error."]
    gateway = fault.get("_gateway") or any(isinstance(k, str) and k.lower() == "faultstring" for k in fault)
    if kind is Kind.UNKNOWN and gateway:
        lines.insert(0, f"{_reason(status)} from the Intuit API gateway" + (f" ({fault_type})" if fault_type else "")
                     + ":" if status else "")
    elif kind is Kind.UNKNOWN:
        # a Fault without a type is still a fault: never "no fault" over its errors and codes
        lines.insert(0, f"{_reason(status)}, {f'{fault_type} fault' if fault_type else 'a fault'}:" if status
                     else "")
    details = _finish_details(lines, intuit_tid)
    return Diagnosis(
        kind=kind,
        http_status=status,
        codes=tuple(c for e in errors for c in _error_codes(e)),
        errors=tuple(errors),
        fault_type=fault_type,
        details=details,
        field=fld if kind is not Kind.UNKNOWN else None,
        intuit_tid=intuit_tid,
        retry_after=retry_after,
        hint=_hint(errors, kind),
        links=_shown_links(links, details),
        meaning=meaning,
    )


def _hint(errors: Sequence[FaultError], kind: Kind) -> str | None:
    codes = {c for e in errors for c in _error_codes(e)}
    text = " ".join(f"{e.message or ''} {e.detail or ''}" for e in errors)
    if "130" in codes or re.search(r"wrong (cluster|server)", text, re.I):
        return (
            "QuickBooks says the token belongs to the other environment (production vs sandbox): "
            "check the QuickBooks API base URL (QBO_API_URL) for this connection; reconnecting alone "
            "will not fix it."
        )
    if "3100" in codes and kind is Kind.AUTH_EXPIRED and re.search(r"scope", text, re.I):
        return "Reconnect and grant the com.intuit.quickbooks.accounting scope."
    own = next((_OWN_REQUEST_CODES[c] for c in codes if c in _OWN_REQUEST_CODES), None)
    if own is not None and kind is Kind.UNKNOWN:
        return own
    if re.search(r"request_?id", text, re.I):
        return (
            "The limit concerns syncbot's own request id, not the record's data: nothing to fill in; "
            "report it to JobsiteOn support."
        )
    return None


_OAUTH_AUTH_ERRORS = frozenset(
    {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_token", "access_denied"}
)
_OAUTH_NAME_IN_TEXT = re.compile(
    r"(?<![A-Za-z])(invalid[_ -]grant|invalid[_ -]client|unauthorized[_ -]client|invalid[_ -]token|access[_ -]denied)"
    r"(?![A-Za-z])",
    re.I,
)
#: A description that says the refresh token (the grant) is no good: "Incorrect or invalid refresh token",
#: "Refresh token has expired", "The grant was revoked"...
_GRANT_GONE = re.compile(
    r"\b(?:invalid|incorrect|expired|revoked|bad|unknown)\b[\w\s-]{0,30}?"
    r"\b(?:refresh[_ ]?token|grant|authori[sz]ation[_ ]code)"
    r"|\b(?:refresh[_ ]?token|grant)\b[\w\s-]{0,30}?\b(?:invalid|expired|revoked|not valid|no longer valid)\b",
    re.I,
)


def _oauth_fields(data: Mapping[str, Any]) -> tuple[str | None, str | None] | None:
    """``(error, error_description)`` of an OAuth error object (keys in any case), None when it is not one
    (neither an ``error`` string nor an ``error_description`` string)."""
    lower = {k.lower(): v for k, v in data.items() if isinstance(k, str)}
    error, description = lower.get("error"), lower.get("error_description")
    error = error.strip() if isinstance(error, str) and error.strip() else None
    description = description.strip() if isinstance(description, str) and description.strip() else None
    return None if error is None and description is None else (error, description)


def _oauth_name(error: str | None, description: str | None) -> str:
    """The OAuth error in its RFC 6749 spelling (``INVALID_GRANT``, ``Invalid-Grant`` → ``invalid_grant``); from
    the description alone when there is no ``error`` (an error name in it, or a refresh token said to be
    invalid/expired/revoked → ``invalid_grant``); ``""`` when nothing is recognised."""
    if error:
        return re.sub(r"[\s-]+", "_", error.strip()).lower()[:80]
    m = _OAUTH_NAME_IN_TEXT.search(description or "")
    if m:
        return re.sub(r"[\s-]+", "_", m.group(1)).lower()
    return "invalid_grant" if _GRANT_GONE.search(description or "") else ""


def _from_oauth_error(
    fields: tuple[str | None, str | None],
    status: int,
    endpoint: str,
    intuit_tid: str | None,
    retry_after: float | None,
) -> Diagnosis:
    error, description = fields
    name = _oauth_name(error, description)
    kind = Kind.AUTH_EXPIRED if name in _OAUTH_AUTH_ERRORS else Kind.UNKNOWN
    if kind is Kind.AUTH_EXPIRED and status >= 500:  # a server error: the token is not known to be bad
        kind = Kind.UNKNOWN
    if status == 429 or _NAMED_THROTTLE.search(_squash(name)):
        kind = Kind.RATE_LIMITED
    where = "Intuit OAuth server" + (f" ({endpoint} endpoint)" if endpoint != "api" else "")
    line = f"{where}: {error or name or 'error'}" + (f" — {description}" if description else "")
    if kind is Kind.UNKNOWN:
        line = f"{_reason(status)}, {line}"
    hint = None
    if name in ("invalid_client", "unauthorized_client"):
        hint = (
            "Intuit refused the app's own credentials (client id / secret): check syncbot's QuickBooks "
            "app settings, then reconnect."
        )
    elif name == "invalid_grant":
        hint = (
            "The refresh token is expired, revoked or was replaced by a newer one: only a reconnect "
            "helps; syncbot does not retry it."
        )
    return Diagnosis(
        kind=kind,
        http_status=status,
        codes=(name,) if name else (),
        errors=(FaultError(name or None, _text(description), None, None),),
        details=_finish_details([_redact(line)], intuit_tid),
        intuit_tid=intuit_tid,
        retry_after=retry_after,
        hint=hint,
    )


def _has_answer(item: Mapping[str, Any]) -> bool:
    """Whether a batch item carries an answer: an object (``"Customer": {...}``), a ``QueryResponse`` (even an
    empty one) or a non-empty list, under any key but ``bId``/``Fault``."""
    for key, value in item.items():
        if key in ("bId", "Fault", "time"):
            continue
        if isinstance(value, Mapping) and (value or str(key).lower() == "queryresponse"):
            return True
        if isinstance(value, list) and value:
            return True
    return False


def _worse(a: Diagnosis, b: Diagnosis) -> Diagnosis:
    """Of two answers for one bId, the worse: a failure over ok; of two failures the more specific kind."""
    if a.ok:
        return b
    if b.ok:
        return a
    assert a.kind is not None and b.kind is not None
    return a if _RANK[a.kind] <= _RANK[b.kind] else b


def _batch_item(item: Any, status: int, envelope: Diagnosis | None) -> Diagnosis:
    """One ``BatchItemResponse`` item. ``envelope`` is the failure of the whole answer (a non-2xx status or a
    Fault beside the items), None for a 2xx answer without one."""
    if not isinstance(item, Mapping):
        shown = _collapse(repr(item))[:200]
        return make_diagnosis(Kind.UNKNOWN, f"A batch item that is not an object: {shown}", http_status=status)
    fault = _as_fault(item.get("Fault"))
    if fault is not None:
        return _from_fault(fault, status, None, None)
    if envelope is not None:  # ok-looking items of a failed answer are not believed: they share its failure
        return envelope
    if _has_answer(item):
        return Diagnosis(kind=None, http_status=status, details="ok")
    return make_diagnosis(
        Kind.UNKNOWN, "QuickBooks answered this batch item with neither an object nor a Fault.", http_status=status
    )


def _bid_key(item: Any, index: int, taken: set[str]) -> str:
    """The item's bId, or for an item without one ``(no bId #n)``, made unique against every real bId."""
    bid = _text(item.get("bId")) if isinstance(item, Mapping) else None
    if bid is not None:
        return bid
    key = f"(no bId #{index + 1})"
    while key in taken:
        key += "'"
    return key


def _from_batch(
    items: list[Any],
    status: int,
    intuit_tid: str | None,
    retry_after: float | None,
    envelope: Diagnosis | None,
    bids: Sequence[str] | None,
) -> Diagnosis:
    if envelope is None and not 200 <= status < 300:
        envelope = make_diagnosis(
            Kind.UNKNOWN,
            f"{_reason(status)} around a batch answer: the outcome of its items is uncertain.",
            http_status=status,
        )
    taken = {b for it in items if isinstance(it, Mapping) and (b := _text(it.get("bId"))) is not None}
    per_item: dict[str, Diagnosis] = {}
    repeats: dict[str, int] = {}
    for index, item in enumerate(items):
        key = _bid_key(item, index, taken)
        taken.add(key)
        d = _batch_item(item, status, envelope)
        if key in per_item:
            repeats[key] = repeats.get(key, 1) + 1
            d = _worse(per_item[key], d)
        per_item[key] = d
    for bid in bids or ():
        if bid not in per_item:
            per_item[bid] = envelope or make_diagnosis(
                Kind.UNKNOWN, f"QuickBooks' batch answer has no item for bId {bid}.", http_status=status
            )
    if bids:  # the order of the request first
        per_item = {**{b: per_item[b] for b in bids}, **per_item}
    failing = {bid: d for bid, d in per_item.items() if not d.ok}
    kind = most_specific(d.kind for d in failing.values())
    if not per_item:
        kind = Kind.UNKNOWN
    if kind is None and envelope is not None:
        kind = envelope.kind
    lines = [f"{len(per_item) - len(failing)} of {len(per_item)} batch items succeeded."]
    if not per_item:
        lines = [f"{_reason(status)}: a batch answer without any item."]
    elif envelope is not None and not envelope.ok:
        lines.insert(0, envelope.details)
    lines += [f"bId {bid} was answered {n} times; the worst answer is kept." for bid, n in repeats.items()]
    lines += [f"{bid}: {d.details}" for bid, d in failing.items() if d is not envelope]
    deciding = next((d for d in failing.values() if d.kind is kind), envelope)
    details = _finish_details(lines, intuit_tid)
    return Diagnosis(
        kind=kind,
        http_status=status,
        codes=tuple(c for d in failing.values() if d is not envelope for c in d.codes)
        + (envelope.codes if envelope is not None else ()),
        errors=tuple(e for d in failing.values() if d is not envelope for e in d.errors)
        + (envelope.errors if envelope is not None else ()),
        fault_type=deciding.fault_type if deciding else None,
        details=details,
        field=deciding.field if deciding else None,
        intuit_tid=intuit_tid,
        retry_after=retry_after,
        items=per_item,
        hint=deciding.hint if deciding else None,
        links=_shown_links((link for d in [*failing.values(), envelope] if d is not None for link in d.links), details),
    )


def _text_fault(text: str) -> Mapping[str, Any] | None:
    """A plain-text (not HTML) body that names ``errorCode=NNNN``, or starts ``message=Name;``, read as a Fault with
    that one error, so ``message=ThrottleExceeded; errorCode=003001; statusCode=403`` sent as text is still a
    throttle."""
    if not text.strip() or is_html(text):
        return None
    if not _ERROR_CODE_IN_TEXT.search(text[:MARKUP_SCAN_LIMIT]) and not _NAMED_MESSAGE.match(text):
        return None
    return {"Error": [{"Message": _collapse(text[:MARKUP_SCAN_LIMIT])}]}


def _unreadable(
    status: int,
    text: str,
    endpoint: str,
    intuit_tid: str | None,
    retry_after: float | None,
    kind: Kind,
    binary: str | None = None,
) -> Diagnosis:
    where = "Intuit OAuth server" if endpoint != "api" else "QuickBooks"
    stripped = _redact(text).strip()
    links: Links = []
    if binary:
        line = f"{_reason(status)} from {where}, {binary} instead of an API answer."
    elif not stripped:
        line = f"{_reason(status)} from {where} with an empty body."
    elif is_html(stripped):
        line = (f"{_reason(status)} from {where}, an HTML page instead of an API answer: "
                f"{_html_excerpt(stripped, links)}")
    elif parse_body(stripped) is not None:
        line = f"{_reason(status)} from {where}, an answer without a fault: {_collapse(stripped)}"
    else:
        line = f"{_reason(status)} from {where}, an unreadable body: {_collapse(stripped)}"
    details = _finish_details([line], intuit_tid)
    return Diagnosis(
        kind=kind,
        http_status=status,
        details=details,
        intuit_tid=intuit_tid,
        retry_after=retry_after,
        links=_shown_links(links, details),
    )


def _describe_binary(name: str, body: Any, content_type: str | None) -> str:
    shown = _redact(_collapse(content_type or ""))[:100] or "none"
    size = len(body) if isinstance(body, bytes | bytearray | memoryview) else 0
    what = "" if name == "binary" else f"{name}, "
    return f"binary body ({what}{size} bytes, content-type {shown})"


def _spread(d: Diagnosis, bids: Sequence[str] | None) -> Diagnosis:
    """An answer that is not a batch answer, to a batch request: every bId gets the answer's failure (an ok
    answer without items leaves each bId unknown, and the whole unknown)."""
    if not bids or d.items:
        return d
    if d.ok:
        missing = make_diagnosis(
            Kind.UNKNOWN, "QuickBooks answered the batch request without a batch answer.", http_status=d.http_status
        )
        return dataclasses.replace(
            missing, items={b: missing for b in bids}, intuit_tid=d.intuit_tid, retry_after=d.retry_after
        )
    return dataclasses.replace(d, items={b: d for b in bids})


def _batch_keys(batch: Any) -> list[str]:
    items = _listify(batch)
    taken = {b for it in items if isinstance(it, Mapping) and (b := _text(it.get("bId"))) is not None}
    keys: list[str] = []
    for index, item in enumerate(items):
        key = _bid_key(item, index, taken)
        taken.add(key)
        if key not in keys:
            keys.append(key)
    return keys


def diagnose(
    status: int,
    body: bytes | str | None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    endpoint: str = "api",
    bids: Sequence[str] | None = None,
) -> Diagnosis:
    """Classify one HTTP answer from QuickBooks Online or Intuit's OAuth server.

    In: the HTTP status, the raw body (bytes, text or None), the Content-Type header (a hint for the
    charset only: the format is read from the body), the response headers (for ``intuit_tid`` and
    ``Retry-After``), which endpoint answered: ``"api"`` (the Accounting API), ``"token"``
    (``/oauth2/v1/tokens/bearer``) or ``"revoke"``, and for the answer to a batch request optionally the
    ``bids`` sent (then every one of them has an item: see rule 5). Out: a :class:`Diagnosis`, ``kind None``
    for success. Never raises for any body; raises ``ValueError`` for an unknown ``endpoint``.
    The rules are in the module docstring.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}, not {endpoint!r}")
    intuit_tid = _header(headers, "intuit_tid", "intuit-tid")
    retry_after = _retry_after(_header(headers, "retry-after"))
    bids = [b for b in (_text(b) for b in bids or ()) if b is not None] or None
    binary_name = binary_kind(body) if isinstance(body, bytes | bytearray | memoryview) else None
    binary = _describe_binary(binary_name, body, content_type) if binary_name else None
    text = "" if binary else decode_body(body, content_type)
    try:
        data = normalize_keys(parse_body(text))
    except (RecursionError, ValueError):  # nesting too deep for the key walk: read as an unreadable body
        data = None
    mapping = data if isinstance(data, Mapping) else None
    fault = _as_fault(mapping.get("Fault")) if mapping is not None else None
    batch = mapping.get("BatchItemResponse") if mapping is not None else None
    if fault is not None and not batch:  # the lower-case envelope's "batchItemResponse": [] beside its fault
        batch = None
    oauth = _oauth_fields(mapping) if mapping is not None and fault is None and batch is None else None
    if mapping is not None and fault is None and batch is None and oauth is None:
        fault = _gateway_fault(mapping)  # the gateway's own {"code", "type", "detail"}: read as a Fault

    if status == 401 or status == 429:
        kind = Kind.AUTH_EXPIRED if status == 401 else Kind.RATE_LIMITED
        text_fault = None if (binary or mapping is not None) else _text_fault(text)
        if fault is not None or text_fault is not None:
            d = _from_fault(fault or text_fault or {}, status, intuit_tid, retry_after)
        elif oauth is not None:
            d = _from_oauth_error(oauth, status, endpoint, intuit_tid, retry_after)
        else:
            d = _unreadable(status, text, endpoint, intuit_tid, retry_after, kind, binary)
        return _spread(_with_kind(d, kind), bids or (_batch_keys(batch) if batch is not None else None))

    if batch is not None:
        envelope = _from_fault(fault, status, None, None) if fault is not None else None
        return _from_batch(_listify(batch), status, intuit_tid, retry_after, envelope, bids)
    if fault is not None:
        return _spread(_from_fault(fault, status, intuit_tid, retry_after), bids)
    if oauth is not None:
        return _spread(_from_oauth_error(oauth, status, endpoint, intuit_tid, retry_after), bids)

    if 200 <= status < 300:
        if not binary and (data is not None or not text.strip()):
            ok = Diagnosis(kind=None, http_status=status, intuit_tid=intuit_tid, retry_after=retry_after)
            return _spread(ok, bids)
        return _spread(_unreadable(status, text, endpoint, intuit_tid, retry_after, Kind.UNKNOWN, binary), bids)
    # A failure status without a readable fault: a plain-text errorCode, else empty, truncated, HTML, binary...
    text_fault = None if (binary or mapping is not None) else _text_fault(text)
    if text_fault is not None:
        return _spread(_from_fault(text_fault, status, intuit_tid, retry_after), bids)
    return _spread(_unreadable(status, text, endpoint, intuit_tid, retry_after, Kind.UNKNOWN, binary), bids)


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
        links=d.links,
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


def _percent(rate: Decimal) -> str:
    """A tax rate as people write it: ``8.25``, ``8.875``, ``0`` (no trailing zeros, no exponent)."""
    text = f"{rate:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def tax_rate_of(tax_detail: Any) -> Decimal | None:
    """The tax rate of a transaction's ``TxnTaxDetail`` in percent: the sum of its percent-based ``TaxLine``
    rates (a state and a local rate add up); None when it names none."""
    if not isinstance(tax_detail, Mapping):
        return None
    rates = []
    for line in _listify(tax_detail.get("TaxLine")):
        detail = line.get("TaxLineDetail") if isinstance(line, Mapping) else None
        if isinstance(detail, Mapping) and str(detail.get("PercentBased", "true")).lower() != "false":
            rate = _dec(detail.get("TaxPercent"))
            if rate is not None:
                rates.append(rate)
    return sum(rates, Decimal(0)) if rates else None


def diagnose_totals(
    ours_total: Decimal,
    ours_tax: Decimal,
    reply_entity: Mapping[str, Any],
    our_lines: Sequence[tuple[str, Decimal]] = (),
    *,
    ours_rate: Decimal | None = None,
) -> Diagnosis | None:
    """Compare QuickBooks' totals with ours after an invoice (or sales receipt...) write.

    QuickBooks computes ``TotalAmt`` itself and US companies with automated sales tax recompute tax,
    so totals diverge without any error (docs/platform-facts.md, "QuickBooks: totals"). In: our total and tax, the
    entity QuickBooks returned (the ``Invoice`` object, or the whole reply ``{"Invoice": {...}}``; numbers
    or strings, so converted XML works too), and optionally our lines as ``(label, amount)`` in order,
    compared with the reply's ``SalesItemLineDetail`` lines. Out: a ``total_mismatch`` Diagnosis when
    the total or the tax differs by more than half a cent, whose details give both totals, the tax of
    both and its difference, and the lines whose amount differs; None otherwise (also when the reply
    has no ``TotalAmt`` to compare).

    ``data`` holds the figures side by side for the message: ``ours`` and ``theirs`` each ``{"subtotal", "tax",
    "total", "rate"}`` (the subtotal is the total less the tax; ``rate`` the tax rate in percent: ours as given in
    ``ours_rate``, QuickBooks' the sum of its percent-based ``TaxLine`` rates; absent when unknown), the
    differences (QuickBooks minus JobsiteOn), and the lines that differ as sentences (``lines``) and as
    ``line_rows`` ``{"label", "ours", "theirs"}`` (``theirs`` None for a line QuickBooks does not have, ``label``
    None for a line only QuickBooks has).
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
    rows: list[dict[str, str | None]] = []
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
                rows.append({"label": label, "ours": _money(ours_amount), "theirs": None})
                continue
            theirs_amount = _dec(their_lines[index].get("Amount"))
            if theirs_amount is None or abs(theirs_amount - ours_amount) > _HALF_CENT:
                shown = _money(theirs_amount) if theirs_amount is not None else "no amount"
                differing.append(f"{label}: JobsiteOn {_money(ours_amount)}, QuickBooks {shown}")
                rows.append({"label": label, "ours": _money(ours_amount), "theirs": shown})
        for extra in their_lines[len(our_lines) :]:
            amount = _dec(extra.get("Amount"))
            differing.append(
                f"line {extra.get('LineNum') or extra.get('Id') or '?'}: only in QuickBooks "
                f"({_money(amount) if amount is not None else 'no amount'})"
            )
            rows.append({"label": None, "ours": None,
                         "theirs": _money(amount) if amount is not None else "no amount"})
        lines.append("Lines that differ: " + "; ".join(differing) + "." if differing else "Line amounts match.")
    theirs_rate = tax_rate_of(tax_detail)
    ours_rate_d = _dec(ours_rate) if ours_rate is not None else None
    data = {
        "ours": {"subtotal": _money(ours_total_d - ours_tax_d), "tax": _money(ours_tax_d),
                 "total": _money(ours_total_d),
                 **({"rate": _percent(ours_rate_d)} if ours_rate_d is not None else {})},
        "theirs": {"subtotal": _money(theirs_total - theirs_tax), "tax": _money(theirs_tax),
                   "total": _money(theirs_total),
                   **({"rate": _percent(theirs_rate)} if theirs_rate is not None else {})},
        "subtotal_difference": _signed((theirs_total - theirs_tax) - (ours_total_d - ours_tax_d)),
        "total_difference": _signed(total_diff), "tax_difference": _signed(tax_diff),
        "lines": differing,
        "line_rows": rows,
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
    meaning: str | None = None,
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
        meaning=meaning if meaning in MEANINGS and kind is not None and MEANINGS[meaning].kind is kind else None,
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
    ``retry_after``, ``entry_status``; plus ``items`` ``{bId: kind or "ok"}`` for a batch answer (an item
    without a bId under ``(no bId #n)``, see rule 5).
    """
    out: dict[str, Any] = {
        "kind": d.label,
        "meaning": d.meaning,
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
