"""The stand-in's whole state and behaviour: ``QuickBooksStandIn`` (its settings are ``config.StandInConfig``).

``QuickBooksStandIn`` holds every company (realm: ``realm.RealmState``), the OAuth server, the throttling meters,
the idempotency store, the injected failures and the counters, all in memory behind one lock, so a test may inspect
it from another thread while uvicorn serves the app. The HTTP layer (``app.py``) only translates requests into calls
of this class and ``Reply`` objects back into responses; everything it can do over ``/_control/`` is also a method
here.

API pipeline (``api_begin`` -> ``api_execute`` -> ``api_release``), in QBO's order of checks as far as it is known:
injected failure (``fail_next``: answered before anything, as a gateway would) -> bearer token (401 lower-case
3200 fault; a token of another company -> 403 3100 XML) -> throttle (429 XML 3001; the request is not run and
costs no budget: ``throttle.py``) -> latency -> ``requestid`` checks and replay -> the work (``dispatch.py``) ->
``lose_next`` (work done, answer stored, 504 gateway page sent instead).

Idempotency (docs/platform-facts.md, "QuickBooks: idempotency (requestid)"): ``?requestid=`` on a POST, at most 50
characters (36 on batch, where ``requestid + bId`` must also fit in 50, else that item faults as in QBO-18),
unique per company. A replay returns the first answer byte for byte with the same status and does no work.
Only HTTP 200 answers are stored: a request that faulted (400) runs again when replayed, so a retry after the
data was fixed can succeed (a stand-in choice; Intuit does not document it).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

from sandbox import checks
from sandbox.quickbooks import faults
from sandbox.quickbooks.books import Company
from sandbox.quickbooks.config import CONFIG_NUMBERS, FAIL_COUNT, FAIL_STATUS, StandInConfig, check_config
from sandbox.quickbooks.dispatch import dispatch
from sandbox.quickbooks.faults import QBOFault
from sandbox.quickbooks.oauth import SCOPE, OAuthError, TokenAuthority
from sandbox.quickbooks.objects import QUERYABLE, canonical_list
from sandbox.quickbooks.realm import (
    BATCH_REQUEST_ID_LIMIT,
    DEFAULT_COMPANY,
    DEFAULT_REALM,
    REQUEST_ID_LIMIT,
    ApiRequest,
    FailRule,
    LoseRule,
    RealmState,
    Ticket,
    take,
)
from sandbox.quickbooks.throttle import Meter, admit, batch_cost
from sandbox.quickbooks.wire import JSON_TYPE, Reply, envelope_time, intuit_tid, money

#: A saved state (:meth:`QuickBooksStandIn.save_state`, a pickle) written before these classes moved to their own
#: modules names them as ``sandbox.quickbooks.state.<name>``: they stay importable from here.
SAVED_CLASSES = (StandInConfig, RealmState, Meter, FailRule, LoseRule)


class QuickBooksStandIn:
    """In-memory QuickBooks Online company data, Intuit OAuth server, throttling and fault injection.

    Thread-safe: every public method takes the lock. Entity names may be given as ``Customer`` or ``customer``.
    Methods that read objects return deep copies rendered exactly as the API would answer them.
    """

    def __init__(self, config: StandInConfig | None = None):
        """Raises ValueError naming the field when ``config`` holds a value out of bounds (NaN, -1...)."""
        check_config(config or StandInConfig())
        self._initial = copy.deepcopy(config or StandInConfig())
        self._lock = threading.RLock()
        self.reset()

    # --- life cycle, config, clock --------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: companies, tokens, counters, rules, clock offset; config back to its first value.

        Afterwards only the default company exists (realm ``9130350000000001``, "Sandbox Builders LLC").
        """
        with self._lock:
            self.config = copy.deepcopy(self._initial)
            self.clock_offset = 0.0
            self.realms: dict[str, RealmState] = {}
            self.auth = TokenAuthority(self.config.access_token_lifetime, self.config.refresh_token_lifetime)
            self._realm(DEFAULT_REALM, DEFAULT_COMPANY)

    def configure(self, **changes: Any) -> StandInConfig:
        """Change config fields at run time (e.g. ``minute_seconds=1, requests_per_minute=5``); the new config.

        Raises ValueError for an unknown field or a bad value.
        """
        with self._lock:
            kinds = {f.name: f.type for f in dataclasses.fields(StandInConfig)}
            updated = copy.deepcopy(self.config)
            for name, value in changes.items():
                if name not in kinds:
                    raise ValueError(f"unknown config field: {name}")
                kind = str(kinds[name])
                if kind == "bool":
                    value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
                elif name in CONFIG_NUMBERS:
                    value = CONFIG_NUMBERS[name].read(value, name)
                elif isinstance(value, dict | list) or value is None:
                    raise ValueError(f"{name} must be a string, not {json.dumps(value)[:60]}")
                else:
                    value = str(value)
                setattr(updated, name, value)
            check_config(updated)
            self.config = updated
            self.auth.access_lifetime = updated.access_token_lifetime
            self.auth.refresh_lifetime = updated.refresh_token_lifetime
            return copy.deepcopy(updated)

    def config_dict(self) -> dict[str, Any]:
        """The current config as a dict."""
        with self._lock:
            return dataclasses.asdict(self.config)

    def now(self) -> float:
        """The stand-in clock: real time plus the offset ``advance_clock`` added (epoch seconds)."""
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the stand-in clock forward (token lifetimes, code expiry, MetaData times, CDC windows) by 0 to ten
        years. Raises ValueError, changing nothing, for anything else (NaN, infinity, a negative number, text)."""
        with self._lock:
            self.clock_offset = checks.advance(self.clock_offset, seconds)
            return self.clock()

    def clock(self) -> dict[str, Any]:
        """``{"now": ISO time, "offset_seconds": float}``."""
        return {"now": envelope_time(self.now()), "offset_seconds": self.clock_offset}

    # --- companies -----------------------------------------------------------------------------------------

    def _realm(self, realm_id: str, name: str | None = None) -> RealmState:
        state = self.realms.get(realm_id)
        if state is None:
            state = RealmState(Company(realm_id, name or f"Sandbox Company {realm_id}"))
            self.realms[realm_id] = state
        return state

    def _existing(self, realm_id: str) -> RealmState:
        """A company the stand-in has; KeyError (404 on the control API) for any other realm id."""
        state = self.realms.get(str(realm_id))
        if state is None:
            raise KeyError(f"no company {realm_id} in the stand-in (POST /_control/realms creates one)")
        return state

    def create_realm(self, realm_id: str, name: str | None = None) -> dict[str, Any]:
        """Create a company (or return the existing one's summary)."""
        with self._lock:
            return self._realm(str(realm_id), name).company.summary()

    def realm_summaries(self) -> list[dict[str, Any]]:
        """Every company's summary ``{"realm_id", "name", "tax_enabled", "tax_rate", "counts"}``."""
        with self._lock:
            return [r.company.summary() for r in self.realms.values()]

    def set_tax(self, realm_id: str, enabled: bool, rate: float | str | None = None) -> dict[str, Any]:
        """Turn a company's automated sales tax on or off, optionally with a new rate in percent (8.875).
        Raises ValueError for a rate that is not a number from 0 to 100 (nothing is changed), KeyError for a
        company the stand-in does not have."""
        with self._lock:
            company = self._existing(realm_id).company
            if rate is not None:
                value = money(rate)
                if not value.is_finite() or not 0 <= value <= 100:
                    raise ValueError(f"the tax rate is a percentage from 0 to 100, not {rate}")
                company.tax_rate = value
            company.tax_enabled = bool(enabled)
            return company.summary()

    # --- objects, as a QBO user would see and change them ---------------------------------------------------

    @staticmethod
    def entity_type(name: str) -> str:
        """``customer`` -> ``Customer``, ``account`` -> ``Account`` (the reference lists too); KeyError for an
        entity the stand-in does not model."""
        entity = canonical_list(name)
        if entity is None:
            raise KeyError(f"unknown entity {name!r}; one of {', '.join(QUERYABLE.values())}")
        return entity

    def entities(self, realm_id: str, entity: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        """All objects of ``entity`` in the realm (active and inactive), in Id order; with ``include_deleted``
        also the deleted transactions as CDC stubs (``{"Id", "status": "Deleted", ...}``)."""
        with self._lock:
            company = self._existing(realm_id).company
            name = self.entity_type(entity)
            found = company.all(name)
            if include_deleted:
                found += company.tombstones(name)
            return found

    def entity(self, realm_id: str, entity: str, obj_id: str) -> dict[str, Any] | None:
        """One live object, or None."""
        with self._lock:
            company = self._existing(realm_id).company
            stored = company.objects[self.entity_type(entity)].get(str(obj_id))
            return company.render(stored) if stored else None

    def create_entity(self, realm_id: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create an object directly (as if typed into QBO); not counted as an API write. Raises QBOFault."""
        with self._lock:
            return self._existing(realm_id).company.create(self.entity_type(entity), body, self.now())

    def update_entity(self, realm_id: str, entity: str, obj_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields of an object as a QBO user would (SyncToken and LastUpdatedTime move, so CDC sees it).

        Raises QBOFault (e.g. 6240 when a rename clashes).
        """
        with self._lock:
            company = self._existing(realm_id).company
            return company.user_update(self.entity_type(entity), str(obj_id), changes, self.now())

    def delete_entity(self, realm_id: str, entity: str, obj_id: str) -> dict[str, Any]:
        """Delete as a QBO user: transactions are hard-deleted, customers and items made inactive."""
        with self._lock:
            return self._existing(realm_id).company.remove(self.entity_type(entity), str(obj_id), self.now())

    def restore_entity(self, realm_id: str, entity: str, obj_id: str) -> dict[str, Any]:
        """Undo ``delete_entity``: reactivate a customer/item or bring a deleted transaction back."""
        with self._lock:
            return self._existing(realm_id).company.restore(self.entity_type(entity), str(obj_id), self.now())

    # --- counters ------------------------------------------------------------------------------------------

    def write_count(self, realm_id: str = DEFAULT_REALM) -> int:
        """API writes done in the realm (creates, updates, deletes, voids, batch write items); replays excluded."""
        with self._lock:
            return self._existing(realm_id).writes

    def throttled_count(self, realm_id: str = DEFAULT_REALM) -> int:
        """429 answers sent for the realm."""
        with self._lock:
            return self._existing(realm_id).throttled

    def request_count(self, realm_id: str = DEFAULT_REALM) -> int:
        """API requests received for the realm (all outcomes)."""
        with self._lock:
            return self._existing(realm_id).requests

    def stats(self, realm_id: str = DEFAULT_REALM) -> dict[str, Any]:
        """``{"requests", "writes", "throttled", "in_flight", "window_used", "window_peak", "window_batches",
        "pending_failures", "pending_losses"}`` for the realm."""
        with self._lock:
            state = self._existing(realm_id)
            state.meter.prune(time.monotonic(), self.config.minute_seconds)
            return {
                "requests": state.requests,
                "writes": state.writes,
                "throttled": state.throttled,
                "in_flight": state.meter.in_flight,
                "window_used": state.meter.used(),
                "window_peak": state.meter.peak,
                "window_batches": len(state.meter.batches),
                "pending_failures": sum(r.count for r in state.fail_rules),
                "pending_losses": sum(r.count for r in state.lose_rules),
            }

    def request_log(self, realm_id: str = DEFAULT_REALM) -> list[dict[str, Any]]:
        """The realm's recent API requests (up to 2000): ``{"time", "method", "path", "status", "requestid",
        "intuit_tid", "outcome"}``; outcome is one of ok, fault, auth, throttled, injected, lost, replayed."""
        with self._lock:
            return [dict(e) for e in self._existing(realm_id).log]

    def clear_throttle(self, realm_id: str = DEFAULT_REALM) -> dict[str, Any]:
        """Lift the rate limit now: empty the realm's throttle window (and forget its peak, so ``window_peak``
        then tells what the windows held since)."""
        with self._lock:
            meter = self._existing(realm_id).meter
            meter.calls.clear()
            meter.batches.clear()
            meter.peak = 0
        return self.stats(realm_id)

    def exhaust_throttle(self, realm_id: str = DEFAULT_REALM) -> dict[str, Any]:
        """Use up the realm's request budget for the current window, so the next request gets a 429."""
        with self._lock:
            meter = self._existing(realm_id).meter
            meter.prune(time.monotonic(), self.config.minute_seconds)
            missing = self.config.requests_per_minute - meter.used()
            if missing > 0:
                meter.calls.append((time.monotonic(), missing))
        return self.stats(realm_id)

    # --- injected failures ----------------------------------------------------------------------------------

    def fail_next(self, realm_id: str, count: int = 1, status: int = 502, content_type: str = "text/html",
                  body: str | bytes = "", path_contains: str | None = None,
                  headers: dict[str, str] | None = None) -> dict[str, Any]:
        """Answer the realm's next ``count`` API requests (whose path contains ``path_contains``, if given) with
        this raw reply (text as UTF-8, bytes as they are), before any other check; the work is not done. Returns
        the stats."""
        count, status = FAIL_COUNT.read(count, "count"), FAIL_STATUS.read(status, "status")
        if not isinstance(content_type, str) or not content_type.isprintable() or not content_type.strip():
            raise ValueError(f"content_type must be a media type (text), not {content_type!r}"[:120])
        if not isinstance(body, str | bytes):
            raise ValueError("body must be a string")
        path_contains = _optional_text(path_contains, "path_contains")
        if headers is not None and not (isinstance(headers, dict) and all(
                isinstance(k, str) and isinstance(v, str) and _header_safe(k) and _header_safe(v)
                for k, v in headers.items())):
            raise ValueError("headers must be an object of header names to values (text on one line)")
        with self._lock:
            state = self._existing(realm_id)
            if count > 0:
                state.fail_rules.append(FailRule(count, status, content_type, body, path_contains, dict(headers or {})))
        return self.stats(realm_id)

    def lose_next(self, realm_id: str, count: int = 1, path_contains: str | None = None) -> dict[str, Any]:
        """Do the work of the next ``count`` matching requests and store their idempotent answer, then answer
        504 with nginx's gateway page, as when a response is lost after the write. Returns the stats."""
        count = FAIL_COUNT.read(count, "count")
        path_contains = _optional_text(path_contains, "path_contains")
        with self._lock:
            state = self._existing(realm_id)
            if count > 0:
                state.lose_rules.append(LoseRule(count, path_contains))
        return self.stats(realm_id)

    # --- OAuth ---------------------------------------------------------------------------------------------

    def authorize_problem(self, params: dict[str, str]) -> str | None:
        """Why an authorize request (``client_id``, ``response_type``, ``scope``, ``redirect_uri``, ``state``)
        is refused, or None when it is fine."""
        if params.get("client_id") != self.config.client_id:
            return f"Unknown client_id {params.get('client_id')!r}."
        for name in ("response_type", "scope", "redirect_uri", "state"):
            if not params.get(name):
                return f"Missing required parameter {name}."
        if params["response_type"] != "code":
            return "response_type must be 'code'."
        if SCOPE not in params["scope"].split():
            return f"scope must include {SCOPE}."
        return None

    def company_name(self, realm_id: str = DEFAULT_REALM) -> str:
        """The name of a company (creating it on demand)."""
        with self._lock:
            return self._realm(realm_id).company.name

    def approve(self, params: dict[str, str]) -> str:
        """The user clicked Connect: issue a code; the URL to redirect to (``redirect_uri?code&state&realmId``).

        ``params`` are the authorize parameters plus an optional ``realm`` (and ``company_name``); the realm is
        created on demand. Raises ValueError with the reason when the parameters are not acceptable.
        """
        with self._lock:
            problem = self.authorize_problem(params)
            if problem:
                raise ValueError(problem)
            realm_id = params.get("realm") or DEFAULT_REALM
            self._realm(realm_id, params.get("company_name") or None)
            code = self.auth.issue_code(params["client_id"], params["redirect_uri"], realm_id, self.now())
            return _with_query(params["redirect_uri"], {"code": code, "state": params["state"], "realmId": realm_id})

    def deny(self, params: dict[str, str]) -> str:
        """The user clicked Cancel: the redirect URL with ``error=access_denied``."""
        problem = self.authorize_problem(params)
        if problem:
            raise ValueError(problem)
        return _with_query(params["redirect_uri"], {"error": "access_denied", "state": params["state"]})

    def token_endpoint(self, authorization: str | None, form: dict[str, str], headers: dict[str, str]) -> Reply:
        """``POST /oauth2/v1/tokens/bearer``: the token answer or Intuit's error answer."""
        with self._lock:
            if not self._client_ok(authorization):
                return _oauth_reply(401, {"error": "invalid_client"})
            hard = headers.get("x-include-refresh-token-hard-expires-in", "").lower() == "true"
            grant_type = form.get("grant_type", "")
            try:
                if grant_type == "authorization_code":
                    if not form.get("code") or not form.get("redirect_uri"):
                        return _oauth_reply(400, {"error": "invalid_request"})
                    answer = self.auth.exchange_code(self.config.client_id, form["code"], form["redirect_uri"],
                                                     self.now(), hard)
                elif grant_type == "refresh_token":
                    answer = self.auth.refresh_grant(self.config.client_id, form.get("refresh_token", ""),
                                                     self.now(), hard)
                else:
                    return _oauth_reply(400, {"error": "unsupported_grant_type"})
            except OAuthError as exc:
                return _oauth_reply(exc.status, exc.body)
            return _oauth_reply(200, answer)

    def revoke_endpoint(self, authorization: str | None, token: str | None) -> Reply:
        """``POST /v2/oauth2/tokens/revoke``: 200 with an empty body; the token's whole grant is dead."""
        with self._lock:
            if not self._client_ok(authorization):
                return _oauth_reply(401, {"error": "invalid_client"})
            if not token:
                return _oauth_reply(400, {"error": "invalid_request"})
            self.auth.revoke(token)
            return Reply(200, b"", JSON_TYPE, {"intuit_tid": intuit_tid()})

    def issue_tokens(self, realm_id: str = DEFAULT_REALM, hard_expiry: bool = True) -> dict[str, Any]:
        """Issue a token pair for the realm as if the OAuth dance had been done (the token answer)."""
        with self._lock:
            self._existing(realm_id)
            return self.auth.new_grant(self.config.client_id, realm_id, self.now(), hard_expiry)

    def expire_tokens(self, realm_id: str = DEFAULT_REALM, refresh: bool = False) -> dict[str, int]:
        """Expire the realm's access tokens now (and its refresh tokens with ``refresh``); counts expired."""
        with self._lock:
            self._existing(realm_id)
            return self.auth.expire(realm_id, self.now(), refresh)

    def token_info(self, realm_id: str = DEFAULT_REALM) -> list[dict[str, Any]]:
        """The realm's grants and tokens with seconds left and validity."""
        with self._lock:
            self._existing(realm_id)
            return self.auth.info(realm_id, self.now())

    def _client_ok(self, authorization: str | None) -> bool:
        if not authorization or not authorization.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id) == self.config.client_id and unquote(secret) == self.config.client_secret

    # --- the accounting API --------------------------------------------------------------------------------

    def api_begin(self, request: ApiRequest) -> Reply | Ticket:
        """Admit a request or answer it at once (injected failure, 401/403, 429). A Ticket must be released."""
        with self._lock:
            entry: dict[str, Any] = {"time": envelope_time(self.now()), "method": request.method,
                                     "path": request.path, "requestid": request.params.get("requestid")}
            state = self.realms.get(request.realm_id)
            if state is None:  # no such company: only the token check can answer (never creates a realm)
                return self._refuse_token(request, entry) or faults.wrong_company(self.now())
            state.requests += 1
            state.log.append(entry)
            rule = take(state.fail_rules, request.path)
            if rule is not None:
                raw = rule.body if isinstance(rule.body, bytes) else rule.body.encode("utf-8")
                return self._logged(entry, "injected", Reply(rule.status, raw, rule.content_type, dict(rule.headers)))
            refused = self._refuse_token(request, entry)
            if refused is not None:
                return refused
            is_batch = request.method == "POST" and request.path.strip("/") == "batch"
            cost = batch_cost(request.body) if is_batch and self.config.batch_metering == "per_item" else 1
            refusal = admit(state.meter, self.config, cost, is_batch, self.now)
            if refusal is not None:
                state.throttled += 1
                return self._logged(entry, "throttled", refusal, tid=True)
            return Ticket(request.realm_id, cost, is_batch, entry)

    def _refuse_token(self, request: ApiRequest, entry: dict[str, Any]) -> Reply | None:
        """401 (lower-case 3200 envelope) for a missing/unknown/expired/revoked token, 403 for another
        company's token; None when the bearer token opens this realm."""
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        token_realm = self.auth.realm_of(token, self.now()) if token else None
        if token_realm is None:
            return self._logged(entry, "auth", faults.authentication_failed(self.now()), tid=True)
        if token_realm != request.realm_id:
            return self._logged(entry, "auth", faults.wrong_company(self.now()), tid=True)
        return None

    def api_execute(self, ticket: Ticket, request: ApiRequest) -> Reply:
        """Run an admitted request: requestid checks and replay, the work, then any ``lose_next``."""
        with self._lock:
            state = self._realm(ticket.realm_id)
            outcome, reply = self._answer(state, request, self.now())
            if take(state.lose_rules, request.path) is not None:
                return self._logged(ticket.entry, "lost", faults.gateway_timeout())
            return self._logged(ticket.entry, outcome, reply, tid=True)

    def _answer(self, state: RealmState, request: ApiRequest, now: float) -> tuple[str, Reply]:
        """The outcome (ok, fault, replayed) and answer of an admitted request; stores 200 answers by requestid."""
        request_id = request.params.get("requestid") if request.method == "POST" else None
        path = request.path.strip("/")
        limit = BATCH_REQUEST_ID_LIMIT if path == "batch" else REQUEST_ID_LIMIT
        if request_id is not None and len(request_id) > limit:
            return "fault", faults.request_id_too_long(request_id, limit).reply(now)
        memory = self.config.requestid_memory_seconds
        if request_id is not None and memory and request_id in state.stored_replies and (
                now - state.stored_at.get(request_id, now) > memory):
            del state.stored_replies[request_id]  # forgotten: the request runs again
        if request_id is not None and request_id in state.stored_replies:
            stored = state.stored_replies[request_id]
            return "replayed", Reply(stored.status, stored.body, stored.content_type)
        try:
            reply = dispatch(state, request, path, request_id, now)
        except QBOFault as exc:
            return "fault", exc.reply(now)
        if request_id is not None:
            state.stored_replies[request_id] = Reply(reply.status, reply.body, reply.content_type)
            state.stored_at[request_id] = now
        return "ok", reply

    def api_release(self, ticket: Ticket) -> None:
        """The request is over (answered or abandoned): it no longer counts as in flight."""
        with self._lock:
            if not ticket.released:
                ticket.released = True
                self._realm(ticket.realm_id).meter.in_flight -= 1

    def _logged(self, entry: dict[str, Any], outcome: str, reply: Reply, tid: bool = False) -> Reply:
        if tid:
            reply.headers.setdefault("intuit_tid", intuit_tid())
        entry.update(status=reply.status, outcome=outcome, intuit_tid=reply.headers.get("intuit_tid"))
        return reply

    # --- keeping the books between runs (the offline demo) ---------------------------------------------------

    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Write the companies, the OAuth server's codes and tokens, the clock offset and the config to ``path``
        (a pickle, written to a temporary file and renamed). Throttle windows are not kept."""
        with self._lock:
            blob = pickle.dumps({"realms": self.realms, "auth": self.auth, "clock_offset": self.clock_offset,
                                 "config": self.config})
        target = Path(path)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(blob)
        tmp.replace(target)

    def load_state(self, path: str | os.PathLike[str]) -> None:
        """Replace everything by what :meth:`save_state` wrote (only load files this program wrote: pickle).
        Raises OSError when unreadable, ValueError when the file is not such a state."""
        try:
            data = pickle.loads(Path(path).read_bytes())  # our own file (demo-data/)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as exc:
            raise ValueError(f"{path}: not a saved QuickBooks stand-in state ({exc})") from exc
        if not _has_state_shape(data):
            raise ValueError(f"{path}: not a saved QuickBooks stand-in state")
        if not isinstance(data["realms"], dict) or not all(
                isinstance(k, str) and isinstance(v, RealmState) for k, v in data["realms"].items()) \
                or not isinstance(data["auth"], TokenAuthority) or not isinstance(data["config"], StandInConfig):
            raise ValueError(f"{path}: not a saved QuickBooks stand-in state (its companies, tokens or config "
                             "are of another shape)")
        try:
            offset = checks.clock_offset(data["clock_offset"], "its clock offset")
            check_config(data["config"])
        except ValueError as exc:
            raise ValueError(f"{path}: a corrupt QuickBooks stand-in state: {exc}") from None
        with self._lock:
            for state in data["realms"].values():
                state.company.seed_lists()  # saved before accounts, terms and tax codes were kept
                state.meter = Meter()  # monotonic times of another process mean nothing here
                if not isinstance(getattr(state, "stored_at", None), dict):  # saved before answers were dated
                    state.stored_at = {}
            self.realms, self.auth = data["realms"], data["auth"]
            self.clock_offset, self.config = offset, data["config"]

    # --- snapshot for the panel ----------------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        """Everything the control panel shows: per realm its summary, stats, tokens and objects."""
        with self._lock:
            out = []
            for realm_id, state in self.realms.items():
                company = state.company
                out.append({
                    **company.summary(),
                    "stats": self.stats(realm_id),
                    "tokens": self.token_info(realm_id),
                    "objects": {e: company.all(e) + company.tombstones(e) if e in ("Invoice", "Payment")
                                else company.all(e) for e in QUERYABLE.values()},
                })
            return out


def _optional_text(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {json.dumps(value)[:60]}")
    return value


def _header_safe(text: str) -> bool:
    return text.isprintable() and text.isascii()


def _has_state_shape(data: Any) -> bool:
    return isinstance(data, dict) and {"realms", "auth", "clock_offset", "config"} <= data.keys()


def _oauth_reply(status: int, body: dict[str, Any]) -> Reply:
    return Reply(status, json.dumps(body).encode("utf-8"), "application/json;charset=utf-8",
                 {"intuit_tid": intuit_tid(), "Cache-Control": "no-store"})


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)

