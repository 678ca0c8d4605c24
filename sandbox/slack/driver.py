"""A driver that plays Slack's side towards a Slack app: it sends the app signed requests exactly as Slack does.

- Slash commands: ``application/x-www-form-urlencoded`` with command, text, team_id, team_domain, channel_id,
  channel_name, user_id, user_name, response_url, trigger_id, api_app_id
  (https://docs.slack.dev/interactivity/implementing-slash-commands#app_command_handling).
- Interactions (block_actions, view_submission): a ``payload`` form field holding JSON
  (https://docs.slack.dev/interactivity/handling-user-interaction#payloads,
  https://docs.slack.dev/reference/interaction-payloads/block_actions-payload,
  https://docs.slack.dev/reference/interaction-payloads/view-interactions-payload).
- Events API: a JSON ``event_callback`` envelope with event_id, event_time and authorizations
  (https://docs.slack.dev/apis/events-api/#callback-field), ``url_verification``
  (https://docs.slack.dev/reference/events/url_verification), and the unsigned ``ssl_check=1`` POST.
- Signing: ``X-Slack-Signature: v0=hex(HMAC-SHA256(signing secret, "v0:{ts}:{raw body}"))`` with
  ``X-Slack-Request-Timestamp`` (https://docs.slack.dev/authentication/verifying-requests-from-slack).
  Retries carry ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason`` (https://docs.slack.dev/apis/events-api/#retries).

response_urls and trigger_ids are minted on the stand-in, so what the app does with them lands there.
:class:`sandbox.slack.socket_mode.SocketDriver` sends the same payloads over Socket Mode instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from sandbox.slack import config as cfg
from sandbox.slack.standin import SlackStandIn

VERIFICATION_TOKEN = "sandbox-verification-token"  # the deprecated ``token`` field Slack still sends
ACK_TIMEOUT_S = 3.0


def sign(signing_secret: str, timestamp: int | str, body: str) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class DriverResult:
    """What the driver sent and what the app answered."""

    response: httpx.Response
    body: str
    payload: dict[str, Any]
    headers: dict[str, str]
    response_url: str | None = None
    response_url_id: str | None = None
    trigger_id: str | None = None
    event_id: str | None = None
    view_ack: dict[str, Any] | None = None

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def acked_in_time(self) -> bool:
        """Whether the app answered within the 3 seconds Slack waits for an ack
        (https://docs.slack.dev/interactivity/handling-user-interaction#acknowledgment_response); past that Slack
        shows the user an error (commands: ``operation_timeout``) and retries events (SL-01)."""
        return self.response.elapsed.total_seconds() <= ACK_TIMEOUT_S

    def json(self) -> Any:
        return self.response.json()


@dataclass
class _SignOptions:
    forge: bool = False
    skew_s: float = 0.0
    retry_num: int | None = None
    retry_reason: str = "http_timeout"
    extra_headers: dict[str, str] = field(default_factory=dict)


class _Link:
    """Reach the stand-in either in-process (a :class:`SlackStandIn`) or over its control API (a URL)."""

    def __init__(self, standin: SlackStandIn | str, client: httpx.Client) -> None:
        self.local = standin if isinstance(standin, SlackStandIn) else None
        self.base = None if isinstance(standin, SlackStandIn) else standin.rstrip("/")
        self.client = client
        if self.local is not None and self.local.public_url is None:
            raise ValueError("the SlackStandIn has no public_url: serve it (serve_standin) or set public_url")

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        resp = self.client.get(f"{self.base}/_control/{path}", params=params)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def _post(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        resp = self.client.post(f"{self.base}/_control/{path}", json=data)
        resp.raise_for_status()
        out: dict[str, Any] = resp.json()
        return out

    def state(self) -> dict[str, Any]:
        if self.local is not None:
            return self.local.snapshot()
        return self._get("state")

    def mint_response_url(self, team_id: str, channel_id: str, user_id: str,
                          source: Literal["command", "block_actions", "view_submission"],
                          message_ts: str | None = None, is_ephemeral: bool = False) -> tuple[str, str]:
        if self.local is not None:
            ru = self.local.mint_response_url(team_id, channel_id, user_id, source=source,
                                              message_ts=message_ts, is_ephemeral=is_ephemeral)
            return ru.id, ru.url
        data = self._post("response_urls", {"team_id": team_id, "channel_id": channel_id, "user_id": user_id,
                                            "source": source, "message_ts": message_ts,
                                            "is_ephemeral": is_ephemeral})
        return data["id"], data["url"]

    def mint_trigger_id(self, team_id: str, user_id: str) -> str:
        if self.local is not None:
            return self.local.mint_trigger_id(team_id, user_id)
        trigger: str = self._post("trigger_ids", {"team_id": team_id, "user_id": user_id})["trigger_id"]
        return trigger

    def find_message(self, channel_id: str, ts: str) -> dict[str, Any] | None:
        if self.local is not None:
            msg = self.local.message(channel_id, ts)
            return msg.to_api() if msg else None
        for m in self._get(f"messages/{channel_id}")["messages"]:
            for cand in [m, *m.get("replies", [])]:
                if cand["ts"] == ts:
                    out = {"type": "message", "text": cand["text"], "ts": cand["ts"], "team": cand["team_id"]}
                    for key in ("user", "bot_id", "app_id", "blocks", "attachments", "thread_ts"):
                        if cand.get(key) is not None:
                            out[key] = cand[key]
                    return out
        return None

    def find_ephemeral(self, user_id: str, message_ts: str) -> dict[str, Any] | None:
        if self.local is not None:
            items = [e.to_dict() for e in self.local.ephemerals(user_id)]
        else:
            items = self._get(f"ephemerals/{user_id}")["ephemerals"]
        return next((e for e in items if e["message_ts"] == message_ts), None)

    def dm_channel(self, team_id: str, user_id: str) -> str:
        if self.local is not None:
            return self.local.dm_channel_id(team_id, user_id)
        channel: str = self._post("dm", {"team_id": team_id, "user_id": user_id})["channel"]
        return channel

    def view_ack(self, team_id: str, user_id: str, view_id: str, answer: dict[str, Any] | None) -> dict[str, Any]:
        if self.local is not None:
            return self.local.apply_view_submission_ack(team_id, user_id, view_id, answer)
        result: dict[str, Any] = self._post("view_ack", {"team_id": team_id, "user_id": user_id, "view_id": view_id,
                                                         "answer": answer})["result"]
        return result

    def set_view_state(self, view_id: str, values: dict[str, Any]) -> None:
        if self.local is not None:
            self.local.set_view_state(view_id, values)
        else:
            self._post("view_state", {"view_id": view_id, "values": values})


def _find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], str] | None:
    """The interactive element with ``action_id`` and its block's id (sections' accessories, actions, inputs)."""
    for i, block in enumerate(blocks or []):
        candidates: list[dict[str, Any]] = []
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        if block.get("type") in ("actions", "context_actions"):
            candidates.extend(el for el in block.get("elements", []) if isinstance(el, dict))
        if isinstance(block.get("element"), dict):
            candidates.append(block["element"])
        for el in candidates:
            if el.get("action_id") == action_id:
                return el, str(block.get("block_id") or f"b{i}")
    return None


def _action_entry(element: dict[str, Any], block_id: str, action_ts: str, value: str | None,
                  selected: dict[str, Any] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"action_id": element["action_id"], "block_id": block_id, "type": element["type"],
                             "action_ts": action_ts}
    if element["type"] == "button":
        entry["text"] = element.get("text")
        if value is not None or "value" in element:
            entry["value"] = value if value is not None else element.get("value")
        if element.get("style"):
            entry["style"] = element["style"]
    elif element["type"] in ("static_select", "overflow", "radio_buttons", "external_select"):
        options = element.get("options") or []
        option = selected or next((o for o in options if value is None or o.get("value") == value), None)
        entry["selected_option"] = option
    elif value is not None:
        entry["value"] = value
    return entry


class SlackDriver:
    """Sends Slack's requests to a Slack app at ``app_url`` (e.g. ``http://127.0.0.1:8000/slack/events``).

    ``standin`` is the :class:`SlackStandIn` (served, so it has a ``public_url``) or the stand-in's base URL.
    Every sending method takes the signing options ``forge`` (sign with a wrong secret), ``skew_s`` (move the
    timestamp by N seconds; -400 is a stale request, SL-03), ``retry_num`` (adds ``X-Slack-Retry-Num``) and
    ``extra_headers``; each returns a :class:`DriverResult` carrying the httpx response.
    """

    def __init__(self, app_url: str, signing_secret: str, standin: SlackStandIn | str, *,
                 team_id: str = cfg.DEFAULT_TEAM_ID, api_app_id: str = cfg.DEFAULT_APP_ID,
                 timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None
        self.link = _Link(standin, self.client)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> SlackDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending ---------------------------------------------------------------------------------------------
    def signed_headers(self, body: str, content_type: str, opts: _SignOptions) -> dict[str, str]:
        """Headers Slack sends: timestamp, signature (forged or skewed on request), retry headers."""
        timestamp = int(time.time() + opts.skew_s)
        secret = self.signing_secret + "-forged" if opts.forge else self.signing_secret
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign(secret, timestamp, body),
        }
        if opts.retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(opts.retry_num)
            headers["X-Slack-Retry-Reason"] = opts.retry_reason
        headers.update(opts.extra_headers)
        return headers

    def send(self, body: str, content_type: str, *, forge: bool = False, skew_s: float = 0.0,
             retry_num: int | None = None, retry_reason: str = "http_timeout",
             extra_headers: dict[str, str] | None = None) -> tuple[httpx.Response, dict[str, str]]:
        """POST a raw body to the app, signed as Slack signs it."""
        opts = _SignOptions(forge=forge, skew_s=skew_s, retry_num=retry_num, retry_reason=retry_reason,
                            extra_headers=extra_headers or {})
        headers = self.signed_headers(body, content_type, opts)
        response = self.client.post(self.app_url, content=body.encode(), headers=headers)
        return response, headers

    def _deliver(self, kind: Literal["slash_commands", "interactive", "events_api"], payload: dict[str, Any],
                 body: str, content_type: str, *, forge: bool = False, skew_s: float = 0.0,
                 retry_num: int | None = None, retry_reason: str = "http_timeout",
                 extra_headers: dict[str, str] | None = None) -> tuple[httpx.Response, dict[str, str]]:
        """Deliver one request of Slack's: ``payload`` is what ``body`` encodes and ``kind`` its Socket Mode envelope
        type. Here: POST ``body`` signed (:meth:`send`, which the keywords are for);
        :class:`sandbox.slack.socket_mode.SocketDriver` sends the payload as an envelope over the Socket Mode
        WebSocket instead."""
        return self.send(body, content_type, forge=forge, skew_s=skew_s, retry_num=retry_num,
                         retry_reason=retry_reason, extra_headers=extra_headers)

    def _team(self, team_id: str) -> dict[str, Any]:
        for team in self.link.state()["teams"]:
            if team["team_id"] == team_id:
                return dict(team)
        raise LookupError(f"team {team_id} is not in the stand-in")

    def _names(self, team_id: str, user_id: str, channel_id: str | None) -> tuple[dict[str, Any], str, str]:
        state = self.link.state()
        team = next((t for t in state["teams"] if t["team_id"] == team_id), None)
        if team is None:
            raise LookupError(f"team {team_id} is not in the stand-in")
        user = next((u for u in state["users"] if u["id"] == user_id), None)
        user_name = user["name"] if user else user_id.lower()
        channel_name = "directmessage"
        if channel_id is not None:
            ch = next((c for c in state["channels"] if c["id"] == channel_id), None)
            if ch is not None and not ch.get("is_im"):
                channel_name = ch["name"] if not ch.get("is_private") else "privategroup"
        return team, user_name, channel_name

    # -- slash commands --------------------------------------------------------------------------------------
    def slash_command(self, command: str, text: str = "", *, user_id: str = cfg.OWNER_USER_ID,
                      channel_id: str = cfg.ERRORS_CHANNEL_ID, team_id: str | None = None,
                      **sign_opts: Any) -> DriverResult:
        """Send ``/command text`` as typed by ``user_id`` in ``channel_id``."""
        team_id = team_id or self.team_id
        team, user_name, channel_name = self._names(team_id, user_id, channel_id)
        rid, rurl = self.link.mint_response_url(team_id, channel_id, user_id, "command")
        trigger = self.link.mint_trigger_id(team_id, user_id)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "team_domain": team["domain"],
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": rurl,
            "trigger_id": trigger,
        }
        body = urlencode(fields)
        response, headers = self._deliver("slash_commands", fields, body, "application/x-www-form-urlencoded",
                                          **sign_opts)
        return DriverResult(response=response, body=body, payload=fields, headers=headers, response_url=rurl,
                            response_url_id=rid, trigger_id=trigger)

    # -- interactions ----------------------------------------------------------------------------------------
    def _interaction(self, payload: dict[str, Any], **sign_opts: Any) -> tuple[httpx.Response, str, dict[str, str]]:
        body = urlencode({"payload": json.dumps(payload)})
        response, headers = self._deliver("interactive", payload, body, "application/x-www-form-urlencoded",
                                          **sign_opts)
        return response, body, headers

    def _user_obj(self, team_id: str, user_id: str, user_name: str) -> dict[str, Any]:
        return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}

    def click(self, action_id: str, *, channel_id: str, message_ts: str, user_id: str = cfg.OWNER_USER_ID,
              value: str | None = None, selected_option: dict[str, Any] | None = None, ephemeral: bool = False,
              team_id: str | None = None, **sign_opts: Any) -> DriverResult:
        """Click the element ``action_id`` of a message (block_actions from a message container).

        The message's current blocks are read from the stand-in, as Slack sends them; a button that is not in
        the message cannot be clicked (``LookupError``).
        """
        team_id = team_id or self.team_id
        team, user_name, channel_name = self._names(team_id, user_id, channel_id)
        if ephemeral:
            eph = self.link.find_ephemeral(user_id, message_ts)
            if eph is None:
                raise LookupError(f"no ephemeral {message_ts} for {user_id}")
            message: dict[str, Any] = {"type": "message", "text": eph["text"], "ts": eph["message_ts"],
                                       "blocks": eph.get("blocks") or []}
        else:
            found = self.link.find_message(channel_id, message_ts)
            if found is None:
                raise LookupError(f"no message {message_ts} in {channel_id}")
            message = found
        located = _find_element(message.get("blocks") or [], action_id)
        if located is None:
            raise LookupError(f"no element with action_id {action_id!r} in message {message_ts}")
        element, block_id = located
        rid, rurl = self.link.mint_response_url(team_id, channel_id, user_id, "block_actions",
                                                message_ts=message_ts, is_ephemeral=ephemeral)
        trigger = self.link.mint_trigger_id(team_id, user_id)
        action_ts = f"{time.time():.6f}"
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user_obj(team_id, user_id, user_name),
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                          "is_ephemeral": ephemeral},
            "trigger_id": trigger,
            "team": {"id": team_id, "domain": team["domain"]},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel_name},
            "message": message,
            "state": {"values": {}},
            "response_url": rurl,
            "actions": [_action_entry(element, block_id, action_ts, value, selected_option)],
        }
        if ephemeral:
            payload.pop("message")
        response, body, headers = self._interaction(payload, **sign_opts)
        return DriverResult(response=response, body=body, payload=payload, headers=headers, response_url=rurl,
                            response_url_id=rid, trigger_id=trigger)

    def _view_payload_base(self, team_id: str, user_id: str) -> tuple[dict[str, Any], str]:
        team, user_name, _ = self._names(team_id, user_id, None)
        trigger = self.link.mint_trigger_id(team_id, user_id)
        return {
            "user": self._user_obj(team_id, user_id, user_name),
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": trigger,
            "team": {"id": team_id, "domain": team["domain"]},
            "enterprise": None,
            "is_enterprise_install": False,
        }, trigger

    def _current_view(self, user_id: str, surface: Literal["home", "modal"], view_id: str | None) -> dict[str, Any]:
        state = self.link.state()
        if surface == "home":
            view = state["home_views"].get(user_id)
            if view is None:
                raise LookupError(f"no Home tab published for {user_id}")
            return dict(view)
        mine = [v for v in state["open_views"]
                if (v["id"] == view_id if view_id is not None else v.get("user_id") == user_id)]
        if not mine:
            raise LookupError(f"no open modal for {user_id}")
        view = dict(mine[-1])
        view.pop("user_id", None)
        return view

    def click_in_view(self, action_id: str, *, user_id: str = cfg.OWNER_USER_ID,
                      surface: Literal["home", "modal"] = "home", view_id: str | None = None,
                      value: str | None = None, selected_option: dict[str, Any] | None = None,
                      team_id: str | None = None, **sign_opts: Any) -> DriverResult:
        """Click an element of the user's Home tab or open modal (block_actions from a view container;
        no response_url, as Slack sends none for views)."""
        team_id = team_id or self.team_id
        view = self._current_view(user_id, surface, view_id)
        located = _find_element(view.get("blocks") or [], action_id)
        if located is None:
            raise LookupError(f"no element with action_id {action_id!r} in view {view['id']}")
        element, block_id = located
        base, trigger = self._view_payload_base(team_id, user_id)
        payload = {
            "type": "block_actions",
            **base,
            "container": {"type": "view", "view_id": view["id"]},
            "view": view,
            "actions": [_action_entry(element, block_id, f"{time.time():.6f}", value, selected_option)],
            "state": view.get("state", {"values": {}}),
        }
        response, body, headers = self._interaction(payload, **sign_opts)
        return DriverResult(response=response, body=body, payload=payload, headers=headers, trigger_id=trigger)

    def submit_view(self, *, user_id: str = cfg.OWNER_USER_ID, view_id: str | None = None,
                    values: dict[str, dict[str, Any]] | None = None, team_id: str | None = None,
                    apply_ack: bool = True, **sign_opts: Any) -> DriverResult:
        """Submit the user's open modal (view_submission).

        ``values`` is ``{block_id: {action_id: "text" | {"type": ..., ...}}}``; plain strings become
        ``plain_text_input`` values, as Slack reports them in ``view.state.values``. With ``apply_ack`` the app's
        answer is applied to the stand-in as Slack would (close, update, push, errors); see ``view_ack``.
        """
        team_id = team_id or self.team_id
        view = self._current_view(user_id, "modal", view_id)
        state_values: dict[str, dict[str, Any]] = {}
        for block_id, actions in (values or {}).items():
            state_values[block_id] = {
                aid: ({"type": "plain_text_input", "value": v} if isinstance(v, str) or v is None else dict(v))
                for aid, v in actions.items()
            }
        if state_values:
            self.link.set_view_state(view["id"], state_values)
            view["state"] = {"values": state_values}
        base, trigger = self._view_payload_base(team_id, user_id)
        payload = {"type": "view_submission", **base, "view": view, "response_urls": []}
        response, body, headers = self._interaction(payload, **sign_opts)
        result = DriverResult(response=response, body=body, payload=payload, headers=headers, trigger_id=trigger)
        if apply_ack and response.status_code == 200:
            answer: dict[str, Any] | None = None
            if response.content.strip():
                try:
                    parsed = response.json()
                    answer = parsed if isinstance(parsed, dict) else None
                except ValueError:
                    answer = None
            result.view_ack = self.link.view_ack(team_id, user_id, view["id"], answer)
        return result

    # -- Events API ------------------------------------------------------------------------------------------
    @staticmethod
    def new_event_id() -> str:
        """An event id shaped like Slack's ("Ev" + 9-11 upper-case letters and digits)."""
        alphabet = string.ascii_uppercase + string.digits
        return "Ev" + "".join(secrets.choice(alphabet) for _ in range(10))

    def event(self, event: dict[str, Any], *, team_id: str | None = None, event_id: str | None = None,
              event_time: int | None = None, **sign_opts: Any) -> DriverResult:
        """Deliver an Events API ``event_callback`` wrapping ``event``. Pass the same ``event_id`` with
        ``retry_num=1`` to replay a delivery as Slack's retry."""
        team_id = team_id or self.team_id
        team = self._team(team_id)
        event_id = event_id or self.new_event_id()
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": event_time or int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": team["bot_user_id"],
                                "is_bot": True, "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(24)}",
        }
        body = json.dumps(envelope)
        response, headers = self._deliver("events_api", envelope, body, "application/json", **sign_opts)
        return DriverResult(response=response, body=body, payload=envelope, headers=headers, event_id=event_id)

    def app_home_opened(self, user_id: str = cfg.OWNER_USER_ID, *, tab: str = "home", team_id: str | None = None,
                        event_id: str | None = None, **sign_opts: Any) -> DriverResult:
        """The user opened the app's Home tab (https://docs.slack.dev/reference/events/app_home_opened); the
        event carries the current Home view when one was published."""
        team_id = team_id or self.team_id
        event: dict[str, Any] = {"type": "app_home_opened", "user": user_id,
                                 "channel": self.link.dm_channel(team_id, user_id), "tab": tab,
                                 "event_ts": f"{time.time():.6f}"}
        home = self.link.state()["home_views"].get(user_id)
        if home is not None:
            event["view"] = home
        return self.event(event, team_id=team_id, event_id=event_id, **sign_opts)

    def url_verification(self, challenge: str | None = None, **sign_opts: Any) -> DriverResult:
        """Slack's Request URL check; the app must echo ``challenge``."""
        payload = {"token": VERIFICATION_TOKEN, "challenge": challenge or secrets.token_urlsafe(32),
                   "type": "url_verification"}
        body = json.dumps(payload)
        response, headers = self.send(body, "application/json", **sign_opts)
        return DriverResult(response=response, body=body, payload=payload, headers=headers)

    def ssl_check(self) -> DriverResult:
        """Slack's SSL check: an unsigned form POST with ``ssl_check=1``; the app answers 200."""
        fields = {"ssl_check": "1", "token": VERIFICATION_TOKEN}
        body = urlencode(fields)
        response = self.client.post(self.app_url, content=body.encode(),
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        return DriverResult(response=response, body=body, payload=fields,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})

