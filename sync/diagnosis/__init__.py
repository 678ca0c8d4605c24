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
* :func:`diagnose` (an HTTP answer; with ``bids`` for the answer to a batch request; :func:`diagnose_reply`
  also gives the body as read),
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

from sync.diagnosis.codes import classify_error, most_specific, read_error
from sync.diagnosis.details import MARKUP_SCAN_LIMIT, MAX_RETRY_AFTER
from sync.diagnosis.kinds import (
    DETAILS_LIMIT,
    ENDPOINTS,
    KINDS,
    MEANINGS,
    PRECEDENCE,
    Diagnosis,
    FaultError,
    FixAction,
    Kind,
    KindInfo,
    Meaning,
    kind_info,
    severity,
)
from sync.diagnosis.reply import diagnose, diagnose_reply
from sync.diagnosis.stated import (
    diagnose_deleted,
    diagnose_totals,
    diagnose_transport,
    make_diagnosis,
    report,
    tax_rate_of,
)

__all__ = [
    "DETAILS_LIMIT",
    "ENDPOINTS",
    "KINDS",
    "MARKUP_SCAN_LIMIT",
    "MAX_RETRY_AFTER",
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
    "diagnose_reply",
    "diagnose_totals",
    "diagnose_transport",
    "kind_info",
    "make_diagnosis",
    "most_specific",
    "read_error",
    "report",
    "severity",
    "tax_rate_of",
]
