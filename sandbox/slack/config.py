"""Configuration of the Slack Web API stand-in: limits, rate-limit tiers and the seeded workspace.

Every number here is a platform fact with its source, or a choice of ours marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.checks import Number

#: Default ids of the seeded workspace. They match the ids used in ``tests/fixtures/slack_situations.json``.
DEFAULT_TEAM_ID = "T0000000001"
DEFAULT_BOT_TOKEN = "xoxb-0000000001-sandbox-token"
DEFAULT_BOT_USER_ID = "U0BOT00001"
DEFAULT_BOT_ID = "B0000000001"
DEFAULT_APP_ID = "A0000000001"
#: The app-level token (``xapp-``) the stand-in accepts for ``apps.connections.open`` (Socket Mode).
DEFAULT_APP_TOKEN = "xapp-1-A0000000001-0000000001-sandbox-app-token"
OWNER_USER_ID = "U0000000001"
ADMIN_USER_ID = "U0000000002"
MEMBER_USER_ID = "U0000000003"
ERRORS_CHANNEL_ID = "C0000000001"
GENERAL_CHANNEL_ID = "C0000000002"
ARCHIVED_CHANNEL_ID = "C0000000003"
PRIVATE_CHANNEL_ID = "G0000000001"


@dataclass
class RateLimit:
    """A token bucket: ``burst`` calls at once, refilled at ``per_minute`` calls a minute.

    ``scope="channel"`` keeps one bucket per (team, method, channel), as chat.postMessage is limited per channel;
    ``scope="method"`` one per (team, method): Slack applies limits "per API method per app per workspace".
    https://docs.slack.dev/apis/web-api/rate-limits
    """

    per_minute: float
    burst: int
    scope: Literal["method", "channel"] = "method"


# Slack's tiers (https://docs.slack.dev/apis/web-api/rate-limits): Tier 1 1+/min, Tier 2 20+/min,
# Tier 3 50+/min, Tier 4 100+/min; "Special" for chat.postMessage: about 1 message per second per channel,
# short bursts allowed. Slack publishes no burst size: a tier's bucket holds one minute of calls (our choice).
TIER_2 = 20.0
TIER_3 = 50.0
TIER_4 = 100.0


def default_rate_limits(post_message_burst: int = 5) -> dict[str, RateLimit]:
    """The per-method limits, from each method's reference page (``Rate limits`` fact).

    chat.postMessage: Special, 1/s per channel (https://docs.slack.dev/reference/methods/chat.postMessage);
    the burst of ``post_message_burst`` is our choice since Slack gives no number.
    chat.update, chat.delete, conversations.*: Tier 3; chat.postEphemeral, views.*, users.info: Tier 4;
    auth.test and chat.getPermalink: Special, "hundreds of requests per minute".
    """
    return {
        "chat.postMessage": RateLimit(per_minute=60.0, burst=post_message_burst, scope="channel"),
        "chat.update": RateLimit(per_minute=TIER_3, burst=int(TIER_3)),
        "chat.delete": RateLimit(per_minute=TIER_3, burst=int(TIER_3)),
        "chat.postEphemeral": RateLimit(per_minute=TIER_4, burst=int(TIER_4)),
        "chat.getPermalink": RateLimit(per_minute=300.0, burst=300),
        "views.publish": RateLimit(per_minute=TIER_4, burst=int(TIER_4)),
        "views.open": RateLimit(per_minute=TIER_4, burst=int(TIER_4)),
        "views.update": RateLimit(per_minute=TIER_4, burst=int(TIER_4)),
        "views.push": RateLimit(per_minute=TIER_4, burst=int(TIER_4)),
        "users.info": RateLimit(per_minute=TIER_4, burst=int(TIER_4)),
        "conversations.open": RateLimit(per_minute=TIER_3, burst=int(TIER_3)),
        "conversations.info": RateLimit(per_minute=TIER_3, burst=int(TIER_3)),
        "conversations.join": RateLimit(per_minute=TIER_3, burst=int(TIER_3)),
        "conversations.history": RateLimit(per_minute=TIER_3, burst=int(TIER_3)),
        "conversations.replies": RateLimit(per_minute=TIER_3, burst=int(TIER_3)),
        "auth.test": RateLimit(per_minute=600.0, burst=600),
    }


@dataclass
class SlackStandInConfig:
    """How the stand-in behaves. Defaults follow Slack; each field says where the fact comes from.

    - ``seed``: create the demo workspace (one team, an owner, an admin, a member, four channels).
    - ``rate_limits_enabled`` / ``rate_limits``: see :func:`default_rate_limits`.
    - ``text_max_chars``: "Provide no more than 40,000 characters" for ``text``
      (https://docs.slack.dev/reference/methods/chat.postMessage). Apps have met ``msg_too_long`` near 4,000
      (situation SL-09): set 4000 to reproduce that.
    - ``text_over_limit``: ``"error"`` answers ``msg_too_long``; ``"truncate"`` answers ok with
      ``warning: message_truncated`` and stores the text cut to ``text_max_chars`` (SL-09, second case).
    - ``chat_write_public``: whether the bot has ``chat:write.public`` and may post to public channels it is not in
      (https://docs.slack.dev/reference/scopes/chat.write.public). Off: ``not_in_channel``.
    - ``response_url_ttl_s`` / ``response_url_max_uses``: "up to 5 times within 30 minutes"
      (https://docs.slack.dev/interactivity/handling-user-interaction#message_responses).
    - ``trigger_ttl_s``: "Pass a valid trigger_id within 3 seconds of receiving it"
      (https://docs.slack.dev/tools/bolt-python/concepts/opening-modals). ``check_trigger_ids`` off accepts any id.
    - ``charset_warnings``: Slack warns ``missing_charset`` when a JSON body's Content-Type has no charset (seen in
      SL-13) and ``superfluous_charset`` when a form body's has one (slackapi/python-slack-sdk#692).
    - ``public_url``: the base URL response_urls are minted on; filled from the first request when ``None``.
    - ``app_url`` / ``signing_secret``: where ``POST /_control/drive/...`` sends Slack's requests (the app's
      ``/slack/events``) and the secret it signs them with; settable later with ``POST /_control/app``.
    - ``page_links``: (label, URL) pairs the demo page (``GET /``) links to, e.g. the QuickBooks stand-in's panel.
    """

    seed: bool = True
    rate_limits_enabled: bool = True
    post_message_burst: int = 5
    rate_limits: dict[str, RateLimit] | None = None
    text_max_chars: int = 40_000
    text_over_limit: Literal["error", "truncate"] = "error"
    chat_write_public: bool = False
    response_url_ttl_s: float = 30 * 60
    response_url_max_uses: int = 5
    trigger_ttl_s: float = 3.0
    check_trigger_ids: bool = True
    charset_warnings: bool = True
    public_url: str | None = None
    app_url: str | None = None
    signing_secret: str | None = None
    page_links: list[tuple[str, str]] = field(default_factory=list)

    def check(self) -> None:
        """ValueError naming the field when a value is of another kind or out of bounds (NaN, infinity, -1)."""
        for name, bound in _CONFIG_NUMBERS.items():
            if not bound.fits(getattr(self, name)):
                raise ValueError(f"{name} must be {bound}, not {getattr(self, name)!r}"[:160])
        for name in ("seed", "rate_limits_enabled", "chat_write_public", "check_trigger_ids", "charset_warnings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false")
        for name in ("public_url", "app_url", "signing_secret"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string")
        if self.text_over_limit not in ("error", "truncate"):
            raise ValueError("text_over_limit must be 'error' or 'truncate'")
        if not isinstance(self.page_links, list) or not all(
                isinstance(link, list | tuple) and len(link) == 2 and all(isinstance(x, str) for x in link)
                for link in self.page_links):
            raise ValueError("page_links must be a list of [label, URL] pairs")
        for method, limit in (self.rate_limits or {}).items():
            check_rate_limit(method, limit)

    def effective_rate_limits(self) -> dict[str, RateLimit]:
        """The configured limits, or Slack's defaults."""
        if self.rate_limits is not None:
            return dict(self.rate_limits)
        return default_rate_limits(self.post_message_burst)


_CONFIG_NUMBERS: dict[str, Number] = {
    "post_message_burst": Number(0, 1_000_000, integer=True),
    "text_max_chars": Number(1, 10_000_000, integer=True),
    "response_url_ttl_s": Number(0, 365 * 86400),
    "response_url_max_uses": Number(0, 1_000_000, integer=True),
    "trigger_ttl_s": Number(0, 365 * 86400),
}
RATE_PER_MINUTE = Number(0, 1_000_000)
RATE_BURST = Number(0, 1_000_000, integer=True)


def check_rate_limit(method: Any, limit: Any) -> None:
    """ValueError when ``limit`` is not a :class:`RateLimit` of finite, sane numbers for a method name."""
    if not isinstance(method, str) or not isinstance(limit, RateLimit):
        raise ValueError(f"rate limit of {method!r}: not a rate limit"[:120])
    if not RATE_PER_MINUTE.fits(limit.per_minute):
        raise ValueError(f"rate limit of {method}: per_minute must be {RATE_PER_MINUTE}, not {limit.per_minute!r}")
    if not RATE_BURST.fits(limit.burst):
        raise ValueError(f"rate limit of {method}: burst must be {RATE_BURST}, not {limit.burst!r}")
    if limit.scope not in ("method", "channel"):
        raise ValueError(f"rate limit of {method}: scope must be 'method' or 'channel', not {limit.scope!r}"[:160])
