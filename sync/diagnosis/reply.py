"""Reading a whole reply: :func:`diagnose` (an HTTP answer, JSON or XML, a batch, the API gateway's own errors,
Intuit's OAuth errors, an unreadable body).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sync.diagnosis.codes import (
    _ERROR_CODE_IN_TEXT,
    _NAMED_MESSAGE,
    _NAMED_THROTTLE,
    _OWN_REQUEST_CODES,
    _field_of,
    _norm_code,
    _squash,
    _text,
    classify_error,
    most_specific,
    read_error,
)
from sync.diagnosis.details import (
    MARKUP_SCAN_LIMIT,
    Links,
    _collapse,
    _error_line,
    _finish_details,
    _header,
    _html_excerpt,
    _listify,
    _reason,
    _redact,
    _retry_after,
    _shown_links,
)
from sync.diagnosis.kinds import _RANK, ENDPOINTS, Diagnosis, FaultError, Kind
from sync.diagnosis.stated import make_diagnosis
from sync.providers.qbo_wire import binary_kind, decode_body, is_html, normalize_keys, parse_body

# --------------------------------------------------------------------------------------------------
# diagnose


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
    The rules are in the package docstring (`sync.diagnosis`).
    """
    return diagnose_reply(status, body, content_type, headers, endpoint, bids)[0]


def diagnose_reply(
    status: int,
    body: bytes | str | None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    endpoint: str = "api",
    bids: Sequence[str] | None = None,
) -> tuple[Diagnosis, Any]:
    """:func:`diagnose`, and the body as it was read for that: parsed (``qbo_wire.parse_body``) with its keys
    normalised (``qbo_wire.normalize_keys``), or None when unreadable. A caller that reads the answer as well
    (a batch's items) then parses it once. Raises ``ValueError`` for an unknown ``endpoint``."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}, not {endpoint!r}")
    binary_name = binary_kind(body) if isinstance(body, bytes | bytearray | memoryview) else None
    binary = _describe_binary(binary_name, body, content_type) if binary_name else None
    text = "" if binary else decode_body(body, content_type)
    try:
        data = normalize_keys(parse_body(text))
    except (RecursionError, ValueError):  # nesting too deep for the key walk: read as an unreadable body
        data = None
    return _diagnosed(status, text, binary, data, headers, endpoint, bids), data


def _diagnosed(status: int, text: str, binary: str | None, data: Any, headers: Mapping[str, str] | None,
               endpoint: str, bids: Sequence[str] | None) -> Diagnosis:
    intuit_tid = _header(headers, "intuit_tid", "intuit-tid")
    retry_after = _retry_after(_header(headers, "retry-after"))
    bids = [b for b in (_text(b) for b in bids or ()) if b is not None] or None
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
