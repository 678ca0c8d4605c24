"""The stand-in's settings (``StandInConfig``), with QuickBooks' documented values as defaults, and the bounds a
setting must keep (``check_config``: ``QuickBooksStandIn.configure`` and ``load_state`` refuse anything else)."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox import checks


@dataclass
class StandInConfig:
    """Settings of the stand-in; all can change at run time through ``QuickBooksStandIn.configure``.

    Defaults are QBO's documented values (Intuit "Rate limits and throttles", "OAuth 2.0" token lifetimes).
    """

    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    minute_seconds: float = 60.0  # length of the throttling "minute"; tests/bench shrink it
    requests_per_minute: int = 500  # per realm
    batch_per_minute: int = 40  # batch requests per realm
    max_concurrent: int = 10  # concurrent requests per realm
    batch_metering: str = "per_item"  # "per_item": a batch costs its item count; "per_request": it costs 1
    retry_after_header: bool = False  # real QBO sends no Retry-After; when True send one on 429
    access_token_lifetime: int = 3600  # seconds
    refresh_token_lifetime: int = 8726400  # seconds (~101 days), rolling
    latency_seconds: float = 0.0  # added to each API request (benchmarks)
    #: How long (stand-in clock) a requestid's answer is remembered; 0 = for ever. Intuit does not document
    #: QuickBooks' window: tests set one to exercise what syncbot does once QuickBooks has forgotten.
    requestid_memory_seconds: float = 0.0


#: What each numeric config field may be (``configure`` and ``load_state`` refuse anything else).
CONFIG_NUMBERS: dict[str, checks.Number] = {
    "minute_seconds": checks.Number(0.001, 86400),
    "requests_per_minute": checks.Number(0, 1_000_000, integer=True),
    "batch_per_minute": checks.Number(0, 1_000_000, integer=True),
    "max_concurrent": checks.Number(0, 100_000, integer=True),
    "access_token_lifetime": checks.Number(1, 10 * 365 * 86400, integer=True),
    "refresh_token_lifetime": checks.Number(1, 10 * 365 * 86400, integer=True),
    "latency_seconds": checks.Number(0, 60),
    "requestid_memory_seconds": checks.Number(0, 10 * 365 * 86400),
}
#: Injected failures: how many requests, which HTTP status.
FAIL_COUNT = checks.Number(0, 100_000, integer=True)
FAIL_STATUS = checks.Number(100, 599, integer=True)


def check_config(config: StandInConfig) -> None:
    """ValueError naming the field when ``config`` holds a value the stand-in cannot work with."""
    for name, bound in CONFIG_NUMBERS.items():
        value = getattr(config, name)
        if not bound.fits(value):
            raise ValueError(f"config {name} must be {bound}, not {value!r}")
    for name in ("client_id", "client_secret"):
        if not isinstance(getattr(config, name), str):
            raise ValueError(f"config {name} must be a string")
    if not isinstance(config.retry_after_header, bool):
        raise ValueError("config retry_after_header must be true or false")
    if config.batch_metering not in ("per_item", "per_request"):
        raise ValueError("batch_metering must be 'per_item' or 'per_request'")
