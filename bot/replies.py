"""How syncbot answers the person who clicked a button or typed a command: the one place that decides the way.

- A request that carries a ``response_url`` (a click on a message, a slash command) is answered through it:
  ephemeral answers, and the message the click came from replaced in place.
- A click on the App Home or in a modal carries none (https://docs.slack.dev/interactivity/handling-user-interaction):
  an answer given right away (a refusal, the Reconnect link, the Retry All confirmation, "Sync Now started")
  opens a modal with the click's ``trigger_id`` (views.open), or redraws the modal the click came from
  (views.update). A trigger_id works once and expires 3 seconds after the click
  (https://api.slack.com/docs/triggers), so an answer that comes after long work (Sync Now's and Retry All's
  counts), or whose trigger_id is spent or expired, is a direct message from syncbot instead
  (conversations.open + chat.postMessage; the im:write scope, and the Messages tab shown read-only in
  manifest.yml so the user can read it).

- A response_url works for 30 minutes and 5 posts, and any post may be refused (404 when it expired, was used
  up or is unknown; https://docs.slack.dev/interactivity/handling-user-interaction#message_responses). An
  answer it does not take (Sync Now's or Retry All's counts after a long run, above all) still reaches the
  person who asked: as an ephemeral message in the channel the request came from (chat.postEphemeral), else,
  when Slack refuses that too (not a member there, a DM with someone else...), as a direct message from syncbot;
  the refusal is logged (``event=response_url_failed``) with where the answer went (``event=answer_redirected``).
  Progress updates (:meth:`Reply.replace`) never spend the last of the 5 posts: it is kept for the outcome.

Answers are message payloads (``text`` and ``blocks``) from :mod:`bot.blocks`; a modal draws the same blocks
(:func:`bot.blocks.answer_modal`). Slack errors are logged, never raised: an answer that cannot be given must
not undo the work it reports on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.slack_errors import Refusal, classify, retry_after_seconds

log = logging.getLogger("syncbot.replies")

Respond = Callable[..., Any]

#: How many posts a response_url takes (Slack: "up to 5 times within 30 minutes").
RESPONSE_URL_USES = 5
#: A DM answer: how many posts at most, the longest wait between two (seconds), the back-off after an outage.
DM_TRIES = 3
DM_WAIT_MAX = 30.0
DM_BACKOFF = 2.0


class Reply:
    """Answers one request's user. Build it with :meth:`to_click`, :meth:`to_command` or :meth:`nobody`.

    ``now``: an answer given right away; ``replace``: the message or modal the click came from shows this
    instead (progress, "cancelled"); ``later``: the outcome of long work."""

    def __init__(self, client: WebClient | None = None, *, respond: Respond | None = None,
                 user_id: str | None = None, trigger_id: str | None = None, view_id: str | None = None,
                 channel_id: str | None = None, response_url: str | None = None) -> None:
        self.client = client
        self.respond = respond
        #: The response_url ``respond`` posts to (kept to hand the answer to another process: :meth:`route`).
        self.response_url = response_url or getattr(respond, "response_url", None)
        self.user_id = user_id
        self.trigger_id = trigger_id
        #: The modal the answers go to: the one clicked in, or the one :meth:`now` opened.
        self.view_id = view_id
        #: The channel the request came from: where an answer the response_url did not take goes, ephemeral.
        self.channel_id = channel_id
        self._lock = threading.Lock()
        self._url_lock = threading.Lock()
        self._url_uses = 0
        self._url_refused = False
        self._sleep: Callable[[float], None] = time.sleep

    @classmethod
    def to_click(cls, client: WebClient, body: Mapping[str, Any], respond: Respond | None) -> Reply:
        """The answer to a block_actions payload: through its response_url when it has one, else by modal and
        DM (a click on the App Home or in a modal)."""
        user_id = (body.get("user") or {}).get("id")
        if body.get("response_url") and respond is not None:
            channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
            return cls(client, respond=respond, user_id=user_id, channel_id=channel,
                       response_url=str(body["response_url"]))
        view = body.get("view") or {}
        in_modal = (body.get("container") or {}).get("type") == "view" and view.get("type") == "modal"
        return cls(client, user_id=user_id, trigger_id=body.get("trigger_id"),
                   view_id=str(view["id"]) if in_modal and view.get("id") else None)

    @classmethod
    def to_command(cls, client: WebClient | None, command: Mapping[str, Any], respond: Respond) -> Reply:
        """The answer to a slash command: its response_url, else an ephemeral in the channel it was typed in or
        a DM (``client``: the workspace's bot client)."""
        return cls(client, respond=respond, user_id=command.get("user_id"), channel_id=command.get("channel_id"),
                   response_url=command.get("response_url"))

    @classmethod
    def nobody(cls) -> Reply:
        """Answers go nowhere (work whose outcome the user sees elsewhere, as after a modal's submission)."""
        return cls()

    def route(self, seal: Callable[[str], str]) -> dict[str, Any]:
        """Where this reply's answers go, as JSON for a job (`bot.jobs`) that another process may run: the
        response_url sealed by ``seal`` (a bearer credential for 30 minutes: `SecretBox.encrypt`), how many of its
        posts are spent, the user, the channel and the modal; a click's trigger_id, sealed too, which opens a modal
        only in the 3 seconds after the click (a job that ends later answers by DM, as before)."""
        if self.client is None and self.respond is None:
            return {"nobody": True}
        url = self.response_url if self.respond is not None else None
        return {"response_url": seal(url) if url else None, "url_uses": self._url_uses,
                "url_refused": self._url_refused, "user_id": self.user_id, "channel_id": self.channel_id,
                "view_id": self.view_id, "trigger_id": seal(self.trigger_id) if self.trigger_id else None}

    @classmethod
    def from_route(cls, route: Mapping[str, Any], client: WebClient | None, unseal: Callable[[str], str],
                   respond: Callable[[str], Respond] | None = None) -> Reply:
        """The reply :meth:`route` described, rebuilt in the process that runs the job (``client``: the
        workspace's bot client; ``respond(url)``: Bolt's Respond for a response_url). Raises ValueError when
        ``route`` is not one :meth:`route` made (a sealed URL that does not open raises SecretBoxError)."""
        if not isinstance(route, Mapping):
            raise ValueError("the reply's route is not an object")
        if route.get("nobody") is True:
            return cls.nobody()
        fields = {k: route.get(k) for k in ("user_id", "channel_id", "view_id")}
        if any(v is not None and not isinstance(v, str) for v in fields.values()):
            raise ValueError("the reply's route names a user, channel or view that is not a string")
        sealed, uses, trigger = route.get("response_url"), route.get("url_uses", 0), route.get("trigger_id")
        if (sealed is not None and not isinstance(sealed, str)) or not isinstance(uses, int) or isinstance(
                uses, bool) or (trigger is not None and not isinstance(trigger, str)):
            raise ValueError("the reply's route has a response_url, trigger_id or count of uses of the wrong type")
        url = unseal(sealed) if sealed else None
        if url is not None and not url.startswith(("https://", "http://")):
            raise ValueError("the reply's response_url is not a URL")
        if url is not None and respond is None:
            from slack_bolt.context.respond import Respond as BoltRespond

            def respond(u: str) -> Respond:
                return BoltRespond(response_url=u)
        reply = cls(client, respond=respond(url) if url is not None and respond is not None else None,
                    response_url=url, trigger_id=unseal(trigger) if trigger else None, **fields)
        reply._url_uses = uses
        reply._url_refused = route.get("url_refused") is True
        return reply

    @property
    def through_response_url(self) -> bool:
        return self.respond is not None

    @property
    def later_place(self) -> str:
        """Where :meth:`later` answers arrive, in the user's words."""
        return "here" if self.respond is not None else "in a direct message from syncbot"

    # -------------------------------------------------------------------------------------------- answers

    def now(self, answer: Mapping[str, Any]) -> None:
        """An answer given right away, to the user only."""
        if self.respond is not None:
            if not self._post(answer, response_type="ephemeral", replace_original=False):
                self._elsewhere(answer)
            return
        if self.client is None:
            return
        with self._lock:
            if self.view_id is not None and self._update_view(answer):
                return
            trigger, self.trigger_id = self.trigger_id, None  # a trigger_id works once
            if trigger and self._open_view(trigger, answer):
                return
        self._direct_message(answer)

    def replace(self, answer: Mapping[str, Any]) -> None:
        """The message or modal the click came from shows ``answer`` instead; nothing where there is none."""
        if self.respond is not None:
            self._post(answer, keep_last=True, replace_original=True)  # progress: never worth a redirect
            return
        with self._lock:
            if self.client is not None and self.view_id is not None:
                self._update_view(answer)

    def later(self, answer: Mapping[str, Any], *, replace: bool = False) -> None:
        """The outcome of long work: through the response_url (in place of the clicked message with
        ``replace``), else as a direct message (and in the modal the click came from, if it is still open)."""
        if self.respond is not None:
            taken = (self._post(answer, replace_original=True) if replace
                     else self._post(answer, response_type="ephemeral", replace_original=False))
            if not taken:
                self._elsewhere(answer)
            return
        if self.client is None:
            return
        with self._lock:
            if self.view_id is not None:
                self._update_view(answer)
        self._direct_message(answer)

    # -------------------------------------------------------------------------------------------- Slack calls

    def _post(self, answer: Mapping[str, Any], *, keep_last: bool = False, **how: Any) -> bool:
        """Post ``answer`` through the response_url: whether Slack took it. Once Slack refused a post (the URL
        expired, was used up or is gone), later answers do not try it again. ``keep_last``: not when only the
        last of its posts is left (kept for the outcome)."""
        assert self.respond is not None
        with self._url_lock:
            if self._url_refused or (keep_last and self._url_uses >= RESPONSE_URL_USES - 1):
                return False
            self._url_uses += 1
        status: int | None = None
        try:
            answered = self.respond(**how, **answer)  # Bolt's Respond: a WebhookResponse, whatever the status
        except Exception as exc:  # no answer at all (connection refused, timeout): the URL cannot be counted on
            error = f"{type(exc).__name__}: {exc}"
        else:
            code = getattr(answered, "status_code", 200)
            status = code if isinstance(code, int) else None
            if status is not None and 200 <= status < 300:
                return True
            error = str(getattr(answered, "body", "") or "")
        with self._url_lock:
            self._url_refused = True
        log.warning("event=response_url_failed user_id=%s channel_id=%s status=%s error=%r", self.user_id,
                    self.channel_id, status, error[:200])
        return False

    def _elsewhere(self, answer: Mapping[str, Any]) -> None:
        """An answer the response_url did not take: ephemeral in the request's channel, else a DM."""
        if self.client is None or not self.user_id:
            log.warning("event=answer_lost user_id=%s reason=no_client", self.user_id)
            return
        if self.channel_id:
            try:
                self.client.chat_postEphemeral(channel=self.channel_id, user=self.user_id, **answer)
            except SlackApiError as exc:  # user_not_in_channel, not_in_channel, channel_not_found...
                log.info("event=answer_ephemeral_failed user_id=%s channel_id=%s error=%s", self.user_id,
                         self.channel_id, exc.response.get("error"))
            else:
                log.info("event=answer_redirected user_id=%s to=ephemeral channel_id=%s", self.user_id,
                         self.channel_id)
                return
        if self._direct_message(answer):
            log.info("event=answer_redirected user_id=%s to=dm", self.user_id)

    def _open_view(self, trigger: str, answer: Mapping[str, Any]) -> bool:
        assert self.client is not None
        try:
            opened = self.client.views_open(trigger_id=trigger, view=blocks.answer_modal(answer))
        except SlackApiError as exc:  # expired_trigger_id (work took over 3 s), exchanged_trigger_id...
            log.info("event=answer_modal_failed user_id=%s error=%s", self.user_id, exc.response.get("error"))
            return False
        self.view_id = str((opened.get("view") or {}).get("id") or "") or None
        return True

    def _update_view(self, answer: Mapping[str, Any]) -> bool:
        assert self.client is not None and self.view_id is not None
        try:
            self.client.views_update(view_id=self.view_id, view=blocks.answer_modal(answer))
        except SlackApiError as exc:  # not_found: the user closed the modal
            log.info("event=answer_modal_update_failed user_id=%s error=%s", self.user_id,
                     exc.response.get("error"))
            self.view_id = None
            return False
        return True

    def _direct_message(self, answer: Mapping[str, Any]) -> bool:
        """The answer as a DM, the last place it can reach. A rate limit is waited out (its Retry-After, at most
        DM_WAIT_MAX s) and an outage backed off, up to DM_TRIES posts in all (this runs after the ack, never on a
        request's own thread); after an outage the DM is read first, as Slack may have made the post."""
        if self.client is None or not self.user_id:
            return False
        channel: str | None = None
        for attempt in range(1, DM_TRIES + 1):
            try:
                if channel is None:
                    channel = str(self.client.conversations_open(users=self.user_id)["channel"]["id"])
                elif attempt > 1 and self._already_posted(channel, answer):
                    return True
                self.client.chat_postMessage(channel=channel, **answer)
                return True
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "")
                refusal = classify(error, exc.response.status_code)
                log.warning("event=answer_dm_failed user_id=%s error=%s attempt=%d", self.user_id, error, attempt)
                if refusal not in (Refusal.WAIT, Refusal.UNAVAILABLE) or attempt == DM_TRIES:
                    return False
                wait = (retry_after_seconds(exc.response.headers.get("Retry-After"), 5.0)
                        if refusal is Refusal.WAIT else DM_BACKOFF * attempt)
                self._sleep(min(wait, DM_WAIT_MAX))
        return False

    def _already_posted(self, channel: str, answer: Mapping[str, Any]) -> bool:
        """Is ``answer`` among the newest messages of the DM (a post Slack made although it answered 5xx)?"""
        assert self.client is not None
        try:
            recent = self.client.conversations_history(channel=channel, limit=5).get("messages") or []
        except SlackApiError:
            return False
        return any(m.get("text") == answer.get("text") for m in recent if isinstance(m, Mapping))
