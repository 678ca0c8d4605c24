"""QuickBooks Online (Accounting API v3) as a Provider, over httpx.

Wire facts (Intuit developer docs, "Accounting API" entity pages, "Batch", "Change data capture", "Minor versions";
docs/platform-facts.md, "QuickBooks: hosts, paths and versions"): paths `/v3/company/{realmId}/{entity}` with
the entity in lower case; `Accept: application/json`; `minorversion=75`. Create and update are `POST .../{entity}`; an
update carries `Id` and the current `SyncToken`, and `"sparse": true` changes only the fields sent. Query is
`GET .../query?query=select * from Customer where DisplayName = 'X'`. Batch is `POST .../batch` with at most 30
items and answers HTTP 200 even when items fail. CDC is `GET .../cdc?entities=...&changedSince=ISO`, deleted objects
carry `"status": "Deleted"`. `?requestid=` (at most 50 characters, 36 on batch, where bIds are then at most 10)
makes a write idempotent: a replay returns the first answer. Every answer carries an `intuit_tid` header.

JobsiteOn records map to QBO objects: contact -> Customer, item -> Item (Type Service), invoice -> Invoice
(SalesItemLineDetail lines, TxnTaxDetail), payment -> Payment (LinkedTxn to the invoice).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from sync.diagnosis import Diagnosis, Kind, diagnose, diagnose_reply, diagnose_totals, diagnose_transport, tax_rate_of
from sync.models import Contact, Entity, Invoice, Item, Payment
from sync.oauth import ConnectionTokens
from sync.providers.base import BatchOp, Change, Choice, ProviderError, Written
from sync.providers.limiter import RealmLimiter
from sync.providers.qbo_wire import parse_body

log = logging.getLogger("syncbot.quickbooks")

#: Our entity -> the QBO object name.
QBO_NAMES: dict[str, str] = {
    Entity.CONTACT: "Customer",
    Entity.ITEM: "Item",
    Entity.INVOICE: "Invoice",
    Entity.PAYMENT: "Payment",
}
OUR_NAMES: dict[str, str] = {v: k for k, v in QBO_NAMES.items()}
#: The field that names an object of each entity (for find_by_name and duplicate look-ups).
NAME_FIELDS: dict[str, str] = {
    Entity.CONTACT: "DisplayName",
    Entity.ITEM: "Name",
    Entity.INVOICE: "DocNumber",
}
#: Fields of a record that refer to one of QuickBooks' lists, and the list's objects that fit the field:
#: (our entity, QBO field) -> (QBO list, the WHERE clause that keeps those that fit, "" for all). QuickBooks checks
#: the reference on write: an unknown or inactive id is refused with 2500 "Invalid Reference Id" (Intuit's error
#: list; case QBO-21 in tests/fixtures/qbo_replies.json), so these fields are chosen from the list by name, never typed.
#: Accounts: an Item's income account must be an Income account (Intuit's Item reference, IncomeAccountRef:
#: "Reference to the posting account, that is, account that records the proceeds from the sale of this item").
REFERENCE_FIELDS: dict[tuple[str, str], tuple[str, str]] = {
    (Entity.ITEM, "IncomeAccountRef"): ("Account", "AccountType = 'Income'"),
    (Entity.INVOICE, "SalesTermRef"): ("Term", ""),
    (Entity.INVOICE, "TaxCodeRef"): ("TaxCode", ""),
}
#: QuickBooks answers at most 1000 objects per query (docs/platform-facts.md, "QuickBooks: query").
MAX_QUERY_RESULTS = 1000
MAX_BATCH = 30
MAX_REQUEST_ID = 50
MAX_BATCH_REQUEST_ID = 36
MAX_BID = 10
#: Statuses worth resending a write for with the same requestid (the work may or may not have happened).
UNCERTAIN_STATUSES = frozenset({502, 503, 504})
CENT = Decimal("0.01")


def cents_to_amount(cents: int) -> Decimal:
    """Integer cents -> a 2-place decimal amount (dollars)."""
    return (Decimal(cents) / 100).quantize(CENT)


def amount_to_cents(value: Any) -> int:
    """A QBO amount (number or string) -> integer cents, rounding half up."""
    return int((Decimal(str(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line_amount_cents(quantity: Decimal, rate_cents: int) -> int:
    """A line's amount in cents: quantity x rate, rounded half up to the cent (as QuickBooks does)."""
    return int((quantity * rate_cents).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(payload: Any) -> str:
    """JSON text of a payload (Decimals as numbers, dates ISO)."""
    return json.dumps(payload, default=_json_default, separators=(",", ":"), sort_keys=True)


#: What :func:`payload_hash` leaves out: the ids and versions of the object written to.
_UNHASHED = ("Id", "SyncToken", "sparse")


def payload_hash(payload: Mapping[str, Any]) -> str:
    """A stable hash of what a push sends (ids and versions left out): equal hashes mean nothing changed."""
    content = {k: v for k, v in payload.items() if k not in _UNHASHED}
    return hashlib.sha256(dumps(content).encode()).hexdigest()


def payload_text(payload: Mapping[str, Any]) -> tuple[str, str]:
    """A payload's JSON text (:func:`dumps`) and its :func:`payload_hash`, from one serialisation when it holds no
    id or version (as a push builds it)."""
    text = dumps(payload)
    if any(key in payload for key in _UNHASHED):
        return text, payload_hash(payload)
    return text, hashlib.sha256(text.encode()).hexdigest()


def _drop_empty(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v not in (None, "", {}, [])}


# ---------------------------------------------------------------------------------------------- mapping: push


def customer_payload(contact: Contact) -> dict[str, Any]:
    """JobsiteOn contact -> QBO Customer fields."""
    addr = _drop_empty({
        "Line1": contact.bill_line1, "City": contact.bill_city, "CountrySubDivisionCode": contact.bill_region,
        "PostalCode": contact.bill_postal_code, "Country": contact.bill_country,
    })
    return _drop_empty({
        "DisplayName": contact.display_name,
        "CompanyName": contact.company,
        "PrimaryEmailAddr": {"Address": contact.email} if contact.email else None,
        "PrimaryPhone": {"FreeFormNumber": contact.phone} if contact.phone else None,
        "BillAddr": addr or None,
    })


def item_payload(item: Item) -> dict[str, Any]:
    """JobsiteOn item -> QBO Item (Type Service; QBO requires IncomeAccountRef for it)."""
    return _drop_empty({
        "Name": item.name,
        "Sku": item.sku,
        "Type": "Service",
        "UnitPrice": cents_to_amount(item.unit_price_cents),
        "IncomeAccountRef": {"value": item.income_account} if item.income_account else None,
    })


def invoice_payload(invoice: Invoice, customer_id: str, item_ids: Mapping[int, str],
                    tax_code: str | None = None) -> dict[str, Any]:
    """JobsiteOn invoice -> QBO Invoice. ``item_ids`` maps our item ids to QBO Item ids.

    ``tax_code``: state JobsiteOn's tax explicitly, with this QuickBooks tax code (``TxnTaxDetail.TxnTaxCodeRef``
    beside ``TotalTax``). A US company with automated sales tax computes the tax itself and ignores a ``TotalTax``
    sent alone; sent with the tax code, QuickBooks keeps the amount (Intuit blog "Using QuickBooks Online API for
    automated sales tax", 2017-12-11: "Whenever an explicit tax amount is sent in the transaction request the AST
    engine honors the amount and prorates it across tax rates in the AST-assigned tax code"; Intuit's SDK
    maintainer, intuit/QuickBooks-V3-PHP-SDK#199: the override is ``TxnTaxDetail.TxnTaxCodeRef`` and
    ``TxnTaxDetail.TotalTax``, otherwise the sent tax is ignored). None: QuickBooks' own calculation stands."""
    lines = []
    for line in invoice.lines:
        lines.append(_drop_empty({
            "Amount": cents_to_amount(line_amount_cents(line.quantity, line.rate_cents)),
            "DetailType": "SalesItemLineDetail",
            "Description": line.description,
            "SalesItemLineDetail": {
                "ItemRef": {"value": item_ids[line.item_id]},
                "Qty": line.quantity,
                "UnitPrice": cents_to_amount(line.rate_cents),
                "TaxCodeRef": {"value": line.tax_code},
            },
        }))
    return _drop_empty({
        "DocNumber": invoice.number,
        "CustomerRef": {"value": customer_id},
        "TxnDate": invoice.issue_date,
        "DueDate": invoice.due_date,
        "Line": lines,
        "TxnTaxDetail": {"TotalTax": cents_to_amount(invoice.tax_cents),
                         **({"TxnTaxCodeRef": {"value": tax_code}} if tax_code else {})},
    })


def _linked_invoices(payment: Mapping[str, Any]) -> set[str]:
    """The ids of the invoices a QBO Payment (a payload or an object QuickBooks holds) is applied to."""
    return {str(txn.get("TxnId")) for line in payment.get("Line") or [] if isinstance(line, Mapping)
            for txn in line.get("LinkedTxn") or [] if isinstance(txn, Mapping) and txn.get("TxnType") == "Invoice"}


def payment_payload(payment: Payment, customer_id: str, invoice_id: str | None) -> dict[str, Any]:
    """JobsiteOn payment -> QBO Payment, linked to its invoice."""
    amount = cents_to_amount(payment.amount_cents)
    line = {"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]} if invoice_id else None
    return _drop_empty({
        "CustomerRef": {"value": customer_id},
        "TotalAmt": amount,
        "TxnDate": payment.paid_on,
        "PrivateNote": f"Method: {payment.method}" if payment.method else None,
        "Line": [line] if line else None,
    })


# ---------------------------------------------------------------------------------------------- mapping: pull


def contact_fields(customer: Mapping[str, Any]) -> dict[str, Any]:
    """QBO Customer -> the JobsiteOn contact fields it carries."""
    addr = customer.get("BillAddr") or {}
    return {
        "display_name": str(customer.get("DisplayName") or customer.get("CompanyName") or "").strip(),
        "company": customer.get("CompanyName"),
        "email": (customer.get("PrimaryEmailAddr") or {}).get("Address"),
        "phone": (customer.get("PrimaryPhone") or {}).get("FreeFormNumber"),
        "bill_line1": addr.get("Line1"),
        "bill_city": addr.get("City"),
        "bill_region": addr.get("CountrySubDivisionCode"),
        "bill_postal_code": addr.get("PostalCode"),
        "bill_country": addr.get("Country"),
    }


def payment_fields(payment: Mapping[str, Any]) -> dict[str, Any]:
    """QBO Payment -> amount (cents), date, the linked QBO invoice id and customer id."""
    invoice_id = None
    for line in payment.get("Line") or []:
        for txn in line.get("LinkedTxn") or []:
            if str(txn.get("TxnType", "")).lower() == "invoice":
                invoice_id = str(txn.get("TxnId"))
    return {
        "amount_cents": amount_to_cents(payment.get("TotalAmt", 0)),
        "paid_on": dt.date.fromisoformat(str(payment.get("TxnDate"))[:10]) if payment.get("TxnDate") else None,
        "invoice_remote_id": invoice_id,
        "customer_remote_id": str((payment.get("CustomerRef") or {}).get("value") or "") or None,
    }


def check_invoice_totals(invoice: Invoice, written: Mapping[str, Any]) -> Diagnosis | None:
    """Compare QBO's computed TotalAmt / TotalTax with JobsiteOn's; a difference over half a cent is a
    total_mismatch diagnosis (both sides' subtotal, tax with its rate, and total, and the lines that differ),
    else None. The lines' labels are built only when the totals differ (the common agreeing case builds none)."""
    total, tax = cents_to_amount(invoice.total_cents), cents_to_amount(invoice.tax_cents)
    if diagnose_totals(total, tax, written, (), ours_rate=invoice.tax_rate) is None:  # agree: no lines needed
        return None
    lines = [(f"{ln.item.name} x {ln.quantity}" if ln.item else f"line {ln.position}",
              cents_to_amount(line_amount_cents(ln.quantity, ln.rate_cents))) for ln in invoice.lines]
    return diagnose_totals(total, tax, written, lines, ours_rate=invoice.tax_rate)


#: QuickBooks Online's web app for each API host (the app opens the company the person is signed in to).
APP_URLS: dict[str, str] = {
    "quickbooks.api.intuit.com": "https://app.qbo.intuit.com",
    "sandbox-quickbooks.api.intuit.com": "https://app.sandbox.qbo.intuit.com",
}


def app_url(api_url: str, entity: str, remote_id: str) -> str:
    """The page of a transaction in QuickBooks Online's web app: ``https://app.qbo.intuit.com/app/invoice?txnId=
    130`` (sandbox companies: ``app.sandbox.qbo.intuit.com``; Intuit documents no deep links, these are the ones
    public QuickBooks integrations link to). Another API host (the local stand-in) serves the same path itself."""
    host = (urlsplit(api_url).hostname or "").lower()
    base = APP_URLS.get(host, api_url.rstrip("/"))
    return f"{base}/app/{QBO_NAMES[entity].lower()}?{urlencode({'txnId': remote_id})}"


def invoice_figures(body: Mapping[str, Any]) -> tuple[int, int, int, Decimal | None, str | None]:
    """QuickBooks' figures of an invoice as it holds it: (subtotal, tax, total) in cents, the tax rate in percent
    (the sum of its percent-based tax lines; None when it has none) and the tax code it assigned
    (``TxnTaxDetail.TxnTaxCodeRef``; None when there is none). The subtotal is the total less the tax."""
    total = amount_to_cents(body.get("TotalAmt") or 0)
    given = body.get("TxnTaxDetail")
    detail: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    tax = amount_to_cents(detail.get("TotalTax") or 0)
    code = detail.get("TxnTaxCodeRef")
    code_value = str(code.get("value") or "") if isinstance(code, Mapping) else str(code or "")
    return total - tax, tax, total, tax_rate_of(detail), code_value or None


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------------------------- the client


class QuickBooksProvider:
    """One connection's QuickBooks company (realm): writes, reads, queries, batches and CDC.

    Every request waits for a slot of the realm's limiter; a 401 refreshes the access token once (authlib, via
    ConnectionTokens) and repeats the request; a transport error or a 502/503/504 repeats a write with the same
    requestid (so a write whose answer was lost is never done twice) up to ``resend_attempts`` times; a 429 pauses
    the realm (Retry-After, or one metered minute: ``LimiterConfig.minute_seconds``, 60 s in production) and
    raises. Every failure raises ProviderError with its diagnosis.
    """

    name = "quickbooks"

    def __init__(self, connection_id: int, realm_id: str, tokens: ConnectionTokens, api_url: str,
                 limiter: RealmLimiter, http: httpx.Client, minor_version: int = 75,
                 resend_attempts: int = 2, backoff_seconds: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.connection_id = connection_id
        self.realm_id = realm_id
        self.tokens = tokens
        self.api_url = api_url
        self.base = f"{api_url.rstrip('/')}/v3/company/{realm_id}"
        self.limiter = limiter
        self.http = http
        self.minor_version = minor_version
        self.resend_attempts = resend_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    # -- transport

    def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                 body: Any = None, cost: int = 1, is_batch: bool = False) -> tuple[Any, httpx.Response]:
        parsed, resp, _diag = self._exchange(method, path, params=params, body=body, cost=cost, is_batch=is_batch)
        return parsed, resp

    def _exchange(self, method: str, path: str, *, params: dict[str, str] | None = None,
                  body: Any = None, cost: int = 1, is_batch: bool = False) -> tuple[Any, httpx.Response, Diagnosis]:
        """One request, sent again or refreshed as the class says. Returns the parsed answer (a batch's with its
        keys normalised: ``qbo_wire.normalize_keys``), the response and the answer's diagnosis (kind None; for a
        batch, its items'), or raises ProviderError."""
        params = {**(params or {}), "minorversion": str(self.minor_version)}
        content = dumps(body) if body is not None else None
        stale: str | None = None
        refreshed = False
        attempt = 0
        while True:
            token = self.tokens.access_token(self.connection_id, stale=stale)
            headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            try:
                with self.limiter.slot(self.realm_id, cost=cost, is_batch=is_batch):
                    resp = self.http.request(method, f"{self.base}/{path}", params=params, content=content,
                                             headers=headers)
            except httpx.TransportError as exc:
                if attempt < self.resend_attempts and (method == "GET" or "requestid" in params):
                    attempt += 1
                    log.warning("event=qbo_resend reason=%s realm=%s path=%s attempt=%d",
                                type(exc).__name__, self.realm_id, path, attempt)
                    self.sleep(self.backoff_seconds * attempt)
                    continue
                raise ProviderError(diagnose_transport(exc)) from exc
            if resp.status_code == 401 and not refreshed:
                stale, refreshed = token, True
                continue
            if resp.status_code in UNCERTAIN_STATUSES and attempt < self.resend_attempts and (
                    method == "GET" or "requestid" in params):
                attempt += 1
                log.warning("event=qbo_resend status=%s realm=%s path=%s attempt=%d intuit_tid=%s",
                            resp.status_code, self.realm_id, path, attempt, resp.headers.get("intuit_tid"))
                self.sleep(self.backoff_seconds * attempt)
                continue
            diag, data = diagnose_reply(resp.status_code, resp.content, resp.headers.get("content-type"),
                                        dict(resp.headers))
            if diag.kind == Kind.AUTH_EXPIRED and not refreshed and resp.status_code != 200:
                # refused the token another way than 401 (the gateway's 403 AuthenticationFailed, 3100...): like a
                # 401, refresh once and send again before the connection is called expired
                stale, refreshed = token, True
                continue
            if resp.status_code == 200 and (diag.kind is None or (is_batch and diag.items)):
                # a batch answers 200 even when items fail: those are judged item by item. Its answer is the one
                # the diagnosis read (keys normalised), not parsed a second time
                parsed = data if is_batch else parse_body(resp.content, resp.headers.get("content-type"))
                if parsed is None or not isinstance(parsed, dict):
                    diag = diagnose(502, resp.content, resp.headers.get("content-type"), dict(resp.headers))
                    raise ProviderError(diag)
                return parsed, resp, diag
            if diag.kind == Kind.RATE_LIMITED:
                # Intuit: wait 60 s (one metered minute; shrunk in tests and benches); a Retry-After is kept as is
                self.limiter.pause(self.realm_id, diag.retry_after or self.limiter.config.minute_seconds)
            if diag.kind is None:  # a non-200 that parsed as success: never trust it
                diag = diagnose(502, resp.content, resp.headers.get("content-type"), dict(resp.headers))
            log.info("event=qbo_fault realm=%s path=%s status=%s kind=%s codes=%s intuit_tid=%s",
                     self.realm_id, path, resp.status_code, diag.label, ",".join(diag.codes), diag.intuit_tid)
            raise ProviderError(diag)

    @staticmethod
    def _written(entity: str, parsed: Mapping[str, Any], resp: httpx.Response | None) -> Written:
        obj = parsed.get(QBO_NAMES[entity]) or {}
        if not isinstance(obj, Mapping) or not obj.get("Id"):
            raise ProviderError(diagnose(502, dumps(parsed), "application/json"))
        return Written(remote_id=str(obj["Id"]), sync_token=str(obj.get("SyncToken")) if obj.get(
            "SyncToken") is not None else None, body=obj, intuit_tid=resp.headers.get("intuit_tid") if resp else None)

    # -- Provider protocol

    def lift_pause(self) -> None:
        """Let requests to this realm go again at once (after a rate-limited connection was resumed)."""
        self.limiter.resume(self.realm_id)

    def probe(self) -> str | None:
        """One cheap request, to learn whether QuickBooks takes requests again (Sync Now during a rate-limit
        pause) and the company's name: reads the company's CompanyInfo
        (``GET /v3/company/{realmId}/companyinfo/{realmId}``, Intuit's API reference, "CompanyInfo"), which
        changes nothing. Returns its ``CompanyName`` (None when the reply has none). Raises ProviderError
        (rate_limited while QuickBooks still throttles)."""
        parsed, _resp = self._request("GET", f"companyinfo/{self.realm_id}")
        info = parsed.get("CompanyInfo") if isinstance(parsed, Mapping) else None
        name = info.get("CompanyName") if isinstance(info, Mapping) else None
        return (name.strip()[:200] or None) if isinstance(name, str) else None

    def payload(self, entity: str, record: Any, refs: Mapping[str, Any]) -> dict[str, Any]:
        """The QBO object for a JobsiteOn record; ``refs`` holds the QBO ids of what it references
        (``customer``, ``items`` {our item id: QBO id}, ``invoice``)."""
        if entity == Entity.CONTACT:
            return customer_payload(record)
        if entity == Entity.ITEM:
            return item_payload(record)
        if entity == Entity.INVOICE:
            return invoice_payload(record, refs["customer"], refs["items"], refs.get("tax_code"))
        if entity == Entity.PAYMENT:
            return payment_payload(record, refs["customer"], refs.get("invoice"))
        raise ValueError(f"unknown entity {entity!r}")

    def check(self, entity: str, record: Any, written: Written) -> Diagnosis | None:
        """After a successful write: a warning diagnosis when QBO's computed figures differ from ours."""
        if entity == Entity.INVOICE:
            found = check_invoice_totals(record, written.body)
            if found is not None:  # where a bookkeeper compares the figures (the card's Open in QuickBooks)
                found = dataclasses.replace(found, data={
                    **dict(found.data or {}), "web_url": app_url(self.api_url, entity, written.remote_id)})
            return found
        return None

    def remote_fields(self, entity: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The JobsiteOn fields carried by a pulled object (contacts and payments)."""
        if entity == Entity.CONTACT:
            return contact_fields(body)
        if entity == Entity.PAYMENT:
            return payment_fields(body)
        return {}

    def create(self, entity: str, payload: Mapping[str, Any], request_id: str) -> Written:
        """Create an object; ``request_id`` (<= 50 chars) makes a resend return the first answer."""
        parsed, resp = self._request("POST", QBO_NAMES[entity].lower(), params={"requestid": request_id[:50]},
                                     body=dict(payload))
        return self._written(entity, parsed, resp)

    def update(self, entity: str, remote_id: str, sync_token: str | None, payload: Mapping[str, Any],
               request_id: str) -> Written:
        """Sparse update of ``remote_id`` at ``sync_token`` (a stale token raises conflict, code 5010)."""
        body = {**payload, "Id": remote_id, "SyncToken": sync_token or "0", "sparse": True}
        parsed, resp = self._request("POST", QBO_NAMES[entity].lower(), params={"requestid": request_id[:50]},
                                     body=body)
        return self._written(entity, parsed, resp)

    def read(self, entity: str, remote_id: str) -> Written:
        """Read one object by id (deleted or unknown: not_found, code 610)."""
        parsed, resp = self._request("GET", f"{QBO_NAMES[entity].lower()}/{remote_id}")
        return self._written(entity, parsed, resp)

    def query(self, statement: str) -> dict[str, Any]:
        """Run a query statement; returns the QueryResponse object."""
        parsed, _ = self._request("GET", "query", params={"query": statement})
        return dict(parsed.get("QueryResponse") or {})

    def find_by_name(self, entity: str, name: str) -> Written | None:
        """The active object whose name field equals ``name`` (DisplayName, Name or DocNumber), if any."""
        qbo = QBO_NAMES[entity]
        found = self.query(f"select * from {qbo} where {NAME_FIELDS[entity]} = {_quote(name)}").get(qbo) or []
        if not found:
            return None
        obj = found[0]
        return Written(remote_id=str(obj.get("Id")), sync_token=str(obj.get("SyncToken")), body=obj)

    def find_copies(self, entity: str, payload: Mapping[str, Any]) -> list[Written]:
        """The objects QuickBooks holds that may be the copy a create of ``payload`` made, when that create's
        answer was lost and QuickBooks may have forgotten its requestid. A customer, item or invoice is found by
        its unique name (:data:`NAME_FIELDS`; at most one). A payment has no such name: it is found by its
        customer, date and amount (fields QuickBooks' query filters on), and kept only when it is applied to the
        same invoices. Empty when nothing matches or ``payload`` lacks what it is found by. Raises ProviderError
        when QuickBooks cannot be read."""
        if entity in NAME_FIELDS:
            name = payload.get(NAME_FIELDS[entity])
            found = self.find_by_name(entity, str(name)) if name else None
            return [found] if found is not None else []
        if entity != Entity.PAYMENT:
            return []
        customer = (payload.get("CustomerRef") or {}).get("value")
        if not customer or not payload.get("TxnDate") or payload.get("TotalAmt") in (None, ""):
            return []
        statement = (f"select * from Payment where CustomerRef = {_quote(str(customer))} and TxnDate = "
                     f"{_quote(str(payload['TxnDate']))} and TotalAmt = {_quote(str(payload['TotalAmt']))}")
        wanted = _linked_invoices(payload)
        return [Written(remote_id=str(obj.get("Id")), sync_token=str(obj.get("SyncToken")), body=obj)
                for obj in self.query(statement).get("Payment") or [] if _linked_invoices(obj) == wanted]

    def choices(self, entity: str, field: str) -> list[Choice] | None:
        """The active objects of the QuickBooks list the record's ``field`` refers to (:data:`REFERENCE_FIELDS`),
        ordered by name (one query, at most 1000); None when ``field`` holds no such reference. Raises
        ProviderError."""
        found = REFERENCE_FIELDS.get((entity, field.split(".")[-1]))
        if found is None:
            return None
        qbo, where = found
        statement = f"select * from {qbo}" + (f" where {where}" if where else "") + \
            f" orderby Name maxresults {MAX_QUERY_RESULTS}"
        out = []
        for obj in self.query(statement).get(qbo) or []:
            if isinstance(obj, Mapping) and obj.get("Id") not in (None, "") and obj.get("Active", True) is not False:
                name = str(obj.get("FullyQualifiedName") or obj.get("Name") or obj["Id"])
                out.append(Choice(id=str(obj["Id"]), name=name))
        return out

    def batch_sizes(self, count: int) -> list[int]:
        """How to cut ``count`` operations into batches (each 1 to ``MAX_BATCH``), in sending order.

        ``per_item`` metering (a batch costs its items): batches of 30 and one smaller, so that the first group fills
        exactly the room the realm's budget has now and each next group a whole budget (500). Batches of 30 alone
        fit 16 x 30 = 480 of the 500 in a window; the 17th waits for a whole window. ``per_request``: batches of 30
        (a batch costs 1; the 40 batches a minute bind). docs/platform-facts.md, "QuickBooks: throttling"."""
        cfg = self.limiter.config
        if cfg.batch_metering != "per_item":
            return [MAX_BATCH] * (count // MAX_BATCH) + ([count % MAX_BATCH] if count % MAX_BATCH else [])
        sizes: list[int] = []
        group = self.limiter.room(self.realm_id) or cfg.requests_per_minute
        while count > 0:
            take = min(group, count)
            sizes += [MAX_BATCH] * (take // MAX_BATCH) + ([take % MAX_BATCH] if take % MAX_BATCH else [])
            count -= take
            group = cfg.requests_per_minute
        return sizes

    def batch(self, ops: Sequence[BatchOp], request_id: str) -> dict[str, Written | Diagnosis]:
        """Send up to 30 operations in one request. Returns each op key's Written or its own Diagnosis."""
        if not ops or len(ops) > MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} operations, not {len(ops)}")
        if len(request_id) > MAX_BATCH_REQUEST_ID or any(len(op.key) > MAX_BID for op in ops):
            raise ValueError("batch requestid must be <= 36 characters and bIds <= 10 (docs/platform-facts.md)")
        items = []
        for op in ops:
            obj = dict(op.payload)
            operation = "create"
            if op.remote is not None:
                obj.update({"Id": op.remote[0], "SyncToken": op.remote[1] or "0", "sparse": True})
                operation = "update"
            items.append({"bId": op.key, "operation": operation, QBO_NAMES[op.entity]: obj})
        parsed, resp, answered_diag = self._exchange("POST", "batch", params={"requestid": request_id},
                                                     body={"BatchItemRequest": items},
                                                     cost=self.limiter.config.batch_cost(len(ops)), is_batch=True)
        by_key = {op.key: op for op in ops}
        # the diagnosis judges every bId sent (a missing, repeated or empty item is a failure); objects are read
        # from the answer with its keys in any case, the first answer of a repeated bId. When the answer has an
        # item for every bId sent, its diagnosis (read without the bIds) judged each item as a diagnosis told the
        # bIds would: it is not read a second time
        diag = answered_diag
        if not all(key in answered_diag.items for key in by_key):
            diag = diagnose(200, resp.content, resp.headers.get("content-type"), dict(resp.headers),
                            bids=list(by_key))
        answered = parsed.get("BatchItemResponse")  # (keys normalised by _exchange)
        objects: dict[str, Mapping[str, Any]] = {}
        for item in answered if isinstance(answered, list) else [answered]:
            if isinstance(item, Mapping) and item.get("bId") is not None:
                objects.setdefault(str(item["bId"]).strip(), item)
        results: dict[str, Written | Diagnosis] = {}
        for key, op in by_key.items():
            item_diag = diag.items.get(key)
            if item_diag is not None and item_diag.kind is not None:
                if item_diag.intuit_tid is None and resp.headers.get("intuit_tid"):
                    item_diag = dataclasses.replace(item_diag, intuit_tid=resp.headers["intuit_tid"])
                results[key] = item_diag
                continue
            if key not in objects:
                continue
            try:
                written = self._written(op.entity, objects[key], None)
            except ProviderError as exc:
                results[key] = exc.diagnosis
                continue
            results[key] = Written(written.remote_id, written.sync_token, written.body,
                                   resp.headers.get("intuit_tid"))
        for key in by_key.keys() - results.keys():
            results[key] = diagnose(502, f"QuickBooks' batch answer had no item for bId {key}", "text/plain")
        return results

    def changes(self, entities: Sequence[str], since: dt.datetime) -> tuple[list[Change], dt.datetime]:
        """Objects of ``entities`` changed since ``since`` (CDC, at most 30 days back). Returns the changes and
        the server's time of the answer (the next cursor)."""
        names = ",".join(QBO_NAMES[e] for e in entities)
        since_iso = since.astimezone(dt.UTC).isoformat(timespec="seconds")
        parsed, _ = self._request("GET", "cdc", params={"entities": names, "changedSince": since_iso})
        server_time = _parse_time(parsed.get("time")) or dt.datetime.now(dt.UTC)
        out: list[Change] = []
        cdc = parsed.get("CDCResponse") or []
        for block in cdc if isinstance(cdc, list) else [cdc]:
            responses = block.get("QueryResponse") or []
            for qr in responses if isinstance(responses, list) else [responses]:
                for qbo_name, objs in qr.items():
                    entity = OUR_NAMES.get(qbo_name)
                    if entity is None or not isinstance(objs, list):
                        continue
                    for obj in objs:
                        if not isinstance(obj, Mapping) or not obj.get("Id"):
                            continue
                        deleted = str(obj.get("status", "")).lower() == "deleted"
                        meta = obj.get("MetaData") or {}
                        out.append(Change(entity=entity, remote_id=str(obj["Id"]), deleted=deleted, body=obj,
                                          updated_at=_parse_time(meta.get("LastUpdatedTime"))))
        return out, server_time
