"""What the stand-in keeps per company (``RealmState``: the books, the throttle meter, the answers stored by
requestid, the injected failures, the request log and the counters), the API request as the HTTP layer read it
(``ApiRequest``) and an admitted one (``Ticket``), and the API's limits."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sandbox.quickbooks.books import Company
from sandbox.quickbooks.throttle import Meter
from sandbox.quickbooks.wire import Reply

DEFAULT_REALM = "9130350000000001"
DEFAULT_COMPANY = "Sandbox Builders LLC"
BATCH_LIMIT = 30
REQUEST_ID_LIMIT = 50
BATCH_REQUEST_ID_LIMIT = 36
LOG_LIMIT = 2000


@dataclass
class ApiRequest:
    """One request to ``/v3/company/{realm_id}/{path}`` as the HTTP layer read it.

    ``params`` are the query-string parameters, ``headers`` have lower-case names, ``body`` is raw bytes.
    """

    method: str
    realm_id: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Ticket:
    """An admitted API request: its realm, its throttle cost, and its log entry."""

    realm_id: str
    cost: int
    is_batch: bool
    entry: dict[str, Any]
    released: bool = False


@dataclass
class FailRule:
    """``fail_next``: answer the next ``count`` matching requests with this raw reply."""

    count: int
    status: int
    content_type: str
    body: str | bytes  # bytes go on the wire as they are (another charset than UTF-8, a binary body)
    path_contains: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class LoseRule:
    """``lose_next``: run the next ``count`` matching requests, then answer 504 instead of their answer."""

    count: int
    path_contains: str | None = None


@dataclass
class RealmState:
    """A company plus everything the stand-in keeps per realm."""

    company: Company
    meter: Meter = field(default_factory=Meter)
    stored_replies: dict[str, Reply] = field(default_factory=dict)
    stored_at: dict[str, float] = field(default_factory=dict)  # when each requestid's answer was stored
    fail_rules: list[FailRule] = field(default_factory=list)
    lose_rules: list[LoseRule] = field(default_factory=list)
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    requests: int = 0
    writes: int = 0
    throttled: int = 0


class _Rule(Protocol):
    count: int
    path_contains: str | None


RuleT = TypeVar("RuleT", bound=_Rule)


def take(rules: list[RuleT], path: str) -> RuleT | None:
    """Use up one count of the first rule whose ``path_contains`` is in ``path`` (dropping spent rules)."""
    for rule in rules:
        if rule.path_contains is None or rule.path_contains in path:
            rule.count -= 1
            if rule.count <= 0:
                rules.remove(rule)
            return rule
    return None
