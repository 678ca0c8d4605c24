"""Intuit's OAuth 2.0 server, in memory: authorization codes, grants, access and refresh tokens.

In: the parameters of the authorize, token and revoke endpoints and the stand-in clock (epoch seconds). Out: the
token answers Intuit sends (dicts) or an ``OAuthError`` carrying Intuit's error answer. Not thread-safe by itself:
``QuickBooksStandIn`` calls it under its lock.

Platform facts (Intuit developer docs "OAuth 2.0" / "Refresh tokens" / "Revoke tokens", Intuit's blog on the
November 2025 refresh-token policy, intuit-oauth and python-quickbooks issues collected in the shared cases):
- Authorization codes are single use and short lived (10 minutes here); a code used twice -> ``invalid_grant``.
- The token answer is ``{"token_type": "bearer", "expires_in": 3600, "refresh_token", "x_refresh_token_expires_in",
  "access_token"}``; with the request header ``x-include-refresh-token-hard-expires-in: true`` it also carries
  ``x_refresh_token_hard_expires_in`` (five years from the first issue of the grant).
- The refresh token's lifetime is rolling (~101 days from its issue). Each refresh here returns a NEW refresh token;
  the one it replaces keeps working for 24 hours, then dies (QBO-09: losing the new one is the commonest cause of
  ``invalid_grant``). An expired, superseded-and-aged, revoked or unknown refresh token -> HTTP 400
  ``{"error": "invalid_grant", "error_description": "Incorrect or invalid refresh token"}``.
- Client authentication is HTTP Basic (client_secret_basic); a bad one -> 401 ``{"error": "invalid_client"}``.
- Revoking any token of a grant (access or refresh) kills the whole grant.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

SCOPE = "com.intuit.quickbooks.accounting"
CODE_LIFETIME = 600
ROTATION_GRACE = 86400
HARD_LIFETIME = 5 * 365 * 86400
INVALID_REFRESH = {"error": "invalid_grant", "error_description": "Incorrect or invalid refresh token"}


class OAuthError(Exception):
    """An error answer of Intuit's OAuth server: HTTP ``status`` and JSON ``body``."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("error", "oauth error"))
        self.status = status
        self.body = body


@dataclass
class AuthCode:
    """An issued authorization code."""

    code: str
    client_id: str
    redirect_uri: str
    realm_id: str
    expires_at: float
    used: bool = False


@dataclass
class Grant:
    """One consent (a family of tokens): revoking any member kills them all."""

    grant_id: str
    realm_id: str
    client_id: str
    issued_at: float
    revoked: bool = False


@dataclass
class AccessToken:
    """An access token and its expiry (stand-in clock)."""

    token: str
    grant_id: str
    issued_at: float
    expires_at: float


@dataclass
class RefreshToken:
    """A refresh token; ``superseded_at`` is set once a refresh replaced it (it then lives 24 hours more)."""

    token: str
    grant_id: str
    issued_at: float
    expires_at: float
    superseded_at: float | None = None

    def dies_at(self, grant: Grant) -> float:
        """When this token stops working (rolling expiry, rotation grace, hard expiry: the earliest)."""
        end = min(self.expires_at, grant.issued_at + HARD_LIFETIME)
        if self.superseded_at is not None:
            end = min(end, self.superseded_at + ROTATION_GRACE)
        return end


@dataclass
class TokenAuthority:
    """Codes, grants and tokens of the stand-in's OAuth server."""

    access_lifetime: int = 3600
    refresh_lifetime: int = 8726400
    codes: dict[str, AuthCode] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)

    def issue_code(self, client_id: str, redirect_uri: str, realm_id: str, now: float) -> str:
        """A new single-use authorization code for ``realm_id``."""
        code = "AB11" + secrets.token_urlsafe(24)
        self.codes[code] = AuthCode(code, client_id, redirect_uri, realm_id, now + CODE_LIFETIME)
        return code

    def exchange_code(self, client_id: str, code: str, redirect_uri: str, now: float,
                      hard_expiry: bool) -> dict[str, Any]:
        """``grant_type=authorization_code``: a token answer, or ``OAuthError`` 400 ``invalid_grant``."""
        entry = self.codes.get(code)
        if entry is None or entry.used or entry.expires_at <= now or entry.client_id != client_id:
            raise OAuthError(400, {"error": "invalid_grant"})
        if entry.redirect_uri != redirect_uri:
            raise OAuthError(400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"})
        entry.used = True
        return self.new_grant(client_id, entry.realm_id, now, hard_expiry)

    def new_grant(self, client_id: str, realm_id: str, now: float, hard_expiry: bool = False) -> dict[str, Any]:
        """Start a grant for ``realm_id`` and issue its first token pair (the token answer)."""
        grant = Grant("g" + secrets.token_hex(8), realm_id, client_id, now)
        self.grants[grant.grant_id] = grant
        return self._issue(grant, now, hard_expiry)

    def refresh_grant(self, client_id: str, refresh_token: str, now: float, hard_expiry: bool) -> dict[str, Any]:
        """``grant_type=refresh_token``: rotate; the old refresh token lives 24 hours more."""
        entry = self.refresh.get(refresh_token)
        grant = self.grants.get(entry.grant_id) if entry else None
        if (entry is None or grant is None or grant.revoked or grant.client_id != client_id
                or entry.dies_at(grant) <= now):
            raise OAuthError(400, dict(INVALID_REFRESH))
        if entry.superseded_at is None:
            entry.superseded_at = now
        return self._issue(grant, now, hard_expiry)

    def revoke(self, token: str) -> bool:
        """Kill the grant that ``token`` (access or refresh) belongs to; False when the token is unknown."""
        entry = self.access.get(token) or self.refresh.get(token)
        if entry is None:
            return False
        self.grants[entry.grant_id].revoked = True
        return True

    def realm_of(self, access_token: str, now: float) -> str | None:
        """The realm an access token opens, or None when it is unknown, expired or revoked."""
        entry = self.access.get(access_token)
        if entry is None or entry.expires_at <= now:
            return None
        grant = self.grants[entry.grant_id]
        return None if grant.revoked else grant.realm_id

    def expire(self, realm_id: str, now: float, refresh: bool) -> dict[str, int]:
        """Make the realm's access tokens (and with ``refresh`` its refresh tokens) expire now; counts."""
        grants = {g.grant_id for g in self.grants.values() if g.realm_id == realm_id}
        counts = {"access": 0, "refresh": 0}
        for tok in self.access.values():
            if tok.grant_id in grants and tok.expires_at > now:
                tok.expires_at = now
                counts["access"] += 1
        if refresh:
            for rtok in self.refresh.values():
                if rtok.grant_id in grants and rtok.expires_at > now:
                    rtok.expires_at = now
                    counts["refresh"] += 1
        return counts

    def info(self, realm_id: str, now: float) -> list[dict[str, Any]]:
        """The realm's grants with their tokens, expiries (seconds left) and states; for tests and the panel."""
        out: list[dict[str, Any]] = []
        for grant in self.grants.values():
            if grant.realm_id != realm_id:
                continue
            out.append({
                "grant_id": grant.grant_id,
                "client_id": grant.client_id,
                "revoked": grant.revoked,
                "hard_expires_in": int(grant.issued_at + HARD_LIFETIME - now),
                "access_tokens": [
                    {"token": t.token, "expires_in": int(t.expires_at - now),
                     "valid": not grant.revoked and t.expires_at > now}
                    for t in self.access.values() if t.grant_id == grant.grant_id],
                "refresh_tokens": [
                    {"token": r.token, "expires_in": int(r.dies_at(grant) - now),
                     "superseded": r.superseded_at is not None,
                     "valid": not grant.revoked and r.dies_at(grant) > now}
                    for r in self.refresh.values() if r.grant_id == grant.grant_id],
            })
        return out

    def _issue(self, grant: Grant, now: float, hard_expiry: bool) -> dict[str, Any]:
        access = AccessToken("eyJ" + secrets.token_urlsafe(48), grant.grant_id, now, now + self.access_lifetime)
        refresh = RefreshToken(f"AB11{int(now)}" + secrets.token_urlsafe(24), grant.grant_id, now,
                               now + self.refresh_lifetime)
        self.access[access.token] = access
        self.refresh[refresh.token] = refresh
        answer: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": self.access_lifetime,
            "refresh_token": refresh.token,
            "x_refresh_token_expires_in": int(refresh.dies_at(grant) - now),
            "access_token": access.token,
        }
        if hard_expiry:
            answer["x_refresh_token_hard_expires_in"] = int(grant.issued_at + HARD_LIFETIME - now)
        return answer
