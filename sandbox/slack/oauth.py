"""The stand-in's side of Slack's OAuth v2 install flow (https://docs.slack.dev/authentication/installing-with-oauth).

- ``GET /oauth/v2/authorize?client_id&scope&state&redirect_uri[&team][&user][&deny]``: Slack's consent page,
  approved at once on behalf of ``user`` (default: the team's primary owner) in ``team`` (default: the seeded
  workspace); answers 302 to ``redirect_uri?code=...&state=...`` (or ``?error=access_denied&state=...`` with
  ``deny=1``). An unknown client_id gets a 400 page, as Slack shows an error page.
- ``oauth.v2.access`` (https://docs.slack.dev/reference/methods/oauth.v2.access): exchanges a code for the
  workspace's bot token; client credentials as HTTP Basic (what slack_sdk sends) or ``client_id`` /
  ``client_secret`` parameters. A code is single use and expires after 10 minutes (Slack's), and the
  ``redirect_uri`` must be the one the code was issued for. Errors: ``invalid_code``, ``code_already_used``,
  ``invalid_client_id``, ``bad_client_secret``, ``bad_redirect_uri``. Installing re-activates a workspace whose
  token was revoked (an uninstall followed by a reinstall).

The app's client credentials are :data:`CLIENT_ID` and :data:`CLIENT_SECRET`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sandbox.slack.standin import ApiResponse, SlackStandIn
from sandbox.slack.state import Call

CLIENT_ID = "0000000001.0000000001"
CLIENT_SECRET = "sandbox-slack-client-secret"
CODE_TTL_S = 600.0


@dataclass
class _Code:
    team_id: str
    user_id: str
    scopes: str
    redirect_uri: str | None
    issued: float
    used: bool = False


def _codes(standin: SlackStandIn) -> dict[str, _Code]:
    codes: dict[str, _Code] = standin.__dict__.setdefault("_oauth_codes", {})
    return codes


def authorize(standin: SlackStandIn, params: dict[str, str]) -> tuple[int, str]:
    """Approve an install: (302, the redirect URL with a code) or (400, an error text)."""
    if params.get("client_id") != CLIENT_ID:
        return 400, "invalid_client_id"
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        return 400, "bad_redirect_uri"
    state = params.get("state", "")
    sep = "&" if "?" in redirect_uri else "?"
    if params.get("deny"):
        return 302, f"{redirect_uri}{sep}{urlencode({'error': 'access_denied', 'state': state})}"
    with standin._lock:
        team_id = params.get("team") or next(iter(standin.teams), "")
        team = standin.teams.get(team_id)
        if team is None:
            return 400, "team_not_found"
        user_id = params.get("user") or next(
            (u.id for u in standin.users.values() if u.team_id == team_id and u.is_primary_owner),
            next((u.id for u in standin.users.values() if u.team_id == team_id and not u.is_bot), ""))
        code = f"{team_id}.{secrets.token_hex(16)}"
        _codes(standin)[code] = _Code(team_id=team_id, user_id=user_id, scopes=params.get("scope", ""),
                                      redirect_uri=redirect_uri, issued=standin.now())
    return 302, f"{redirect_uri}{sep}{urlencode({'code': code, 'state': state})}"


def _client_credentials(authorization: str, params: dict[str, Any]) -> tuple[str | None, str | None]:
    if authorization.lower().startswith("basic "):
        try:
            raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        client_id, _, secret = raw.partition(":")
        return client_id, secret
    return params.get("client_id"), params.get("client_secret")


def access(standin: SlackStandIn, params: dict[str, Any], authorization: str) -> ApiResponse:
    """Answer ``oauth.v2.access`` and record the call (without the secret or the code)."""
    client_id, secret = _client_credentials(authorization, params)
    with standin._lock:
        call = Call(seq=next(standin._seq), method="oauth.v2.access",
                    params={"client_id": client_id, "redirect_uri": params.get("redirect_uri")}, token=None,
                    team_id=None, time=standin.now())
        resp = ApiResponse(200, _access_body(standin, params, client_id, secret))
        standin._record(call, resp)
        return resp


def _access_body(standin: SlackStandIn, params: dict[str, Any], client_id: str | None,
                 secret: str | None) -> dict[str, Any]:
    if client_id != CLIENT_ID:
        return {"ok": False, "error": "invalid_client_id"}
    if secret != CLIENT_SECRET:
        return {"ok": False, "error": "bad_client_secret"}
    code = _codes(standin).get(str(params.get("code") or ""))
    if code is None or standin.now() - code.issued > CODE_TTL_S:
        return {"ok": False, "error": "invalid_code"}
    if code.used:
        return {"ok": False, "error": "code_already_used"}
    if code.redirect_uri and params.get("redirect_uri") and params["redirect_uri"] != code.redirect_uri:
        return {"ok": False, "error": "bad_redirect_uri"}
    code.used = True
    team = standin.teams[code.team_id]
    team.token_state = "active"
    standin._touch()
    return {
        "ok": True, "app_id": team.app_id, "authed_user": {"id": code.user_id},
        "scope": code.scopes, "token_type": "bot", "access_token": team.bot_token,
        "bot_user_id": team.bot_user_id, "team": {"id": team.team_id, "name": team.name},
        "enterprise": None, "is_enterprise_install": False,
    }
