"""Slack's refusals, by class: the table beside the Slack client wrapper (`bot.runtime.SlackClients`).

Every error that Slack's method reference lists for a Web API method syncbot calls (`METHOD_ERRORS`, each
method's "Errors" section of https://docs.slack.dev/reference/methods/<method>, read from slack-ruby's
slack-api-ref, a machine-readable copy of those pages, at f4837c0 of 2026-08-20) falls into exactly one class
(`CLASSES`), and each class has its own handling:

- ``WAIT``: a rate limit of any kind (``ratelimited``, ``rate_limited``, the free plan's
  ``message_limit_exceeded``). Wait for ``Retry-After`` (60 s without one) and try again; only the channel (or the
  method) that was limited waits. Nothing was done, so nothing is done twice.
- ``SHORTEN``: too long or refused blocks (``msg_too_long``, ``msg_blocks_too_long``, ``invalid_blocks``,
  ``view_too_large``...). Send the short form (`bot.blocks.short_form`: the headline and the buttons that act,
  no details), and if that is refused too the plain text alone. The notifier does this itself; on the request
  path :class:`GuardedWebClient` (``shorten=True``) sends a refused message or view once more in short form
  (`bot.blocks.short.short_view` for a Home tab or modal).
- ``ADMIN``: only a workspace admin can fix it: a missing scope (Slack names it in ``needed``; the app must be
  reinstalled to get it), not in the channel, an archived or unknown channel, a revoked or invalid token, a
  workspace policy. The admins are told once (a DM, and `/sync-log status` / the App Home), and
  :class:`Problems` remembers it: while it stands, the calls it concerns are answered from memory with the same
  error, one probe call to Slack at most every ``probe_seconds`` (a workspace in that state costs one call,
  not one per request). The notifications wait and go out when it is fixed.
- ``GONE``: the message to update is gone or may no longer be edited (``message_not_found``,
  ``cant_update_message``, ``edit_window_closed``, ``thread_not_found``): it is posted afresh.
- ``UNAVAILABLE``: Slack failed on its side or is migrating the workspace (``internal_error``, ``fatal_error``,
  ``service_unavailable``, ``request_timeout``, ``team_added_to_org``..., and any HTTP 5xx). Try again in 30 s;
  Slack says some of the work may have been done, so a post is looked for before it is made again.
- ``FAIL``: everything else (a malformed call: syncbot's own bug, or a case it does not handle). Logged as an
  error with the method and Slack's words; a notification waits 10 minutes and is tried again, never lost.

``ADMIN`` and ``GONE`` are split out of the issue's "everything else" because each has a handling of its own;
``UNAVAILABLE`` because an outage must not wait as long as a bug. :func:`classify` gives an error's class (an
error Slack does not list is ``FAIL``; HTTP 429 is ``WAIT`` and 5xx ``UNAVAILABLE`` whatever the body).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.slack_response import SlackResponse

log = logging.getLogger("syncbot.slack")


class Refusal(StrEnum):
    WAIT = "wait"
    SHORTEN = "shorten"
    ADMIN = "admin"
    GONE = "gone"
    UNAVAILABLE = "unavailable"
    FAIL = "fail"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: The errors of each Web API method syncbot calls, as its reference page lists them (see the module's source).
METHOD_ERRORS: dict[str, frozenset[str]] = {
    "chat.postMessage": _words("""
        access_denied accesslimited account_inactive app_access_restricted as_user_not_supported
        attachment_payload_limit_exceeded cannot_reply_to_message channel_not_found deprecated_endpoint
        draft_already_deleted draft_already_sent draft_has_conflict draft_not_found duplicate_channel_not_found
        duplicate_message_not_found ekm_access_denied enterprise_is_restricted fatal_error invalid_arg_name
        invalid_array_arg invalid_blocks invalid_blocks_format invalid_charset invalid_form_data
        invalid_metadata_format invalid_metadata_schema invalid_post_type is_archived is_bot markdown_text_conflict
        message_limit_exceeded messages_tab_disabled metadata_must_be_sent_from_app metadata_too_large
        method_deprecated missing_file_data missing_post_type missing_scope msg_blocks_too_long no_permission
        no_text not_allowed_token_type not_authed not_in_channel org_login_required rate_limited ratelimited
        request_timeout restricted_action restricted_action_non_threadable_channel
        restricted_action_read_only_channel restricted_action_thread_locked restricted_action_thread_only_channel
        send_on_behalf_not_allowed service_unavailable slack_connect_canvas_sharing_blocked
        slack_connect_file_link_sharing_blocked slack_connect_lists_sharing_blocked team_added_to_org team_not_found
        token_expired token_revoked too_many_attachments too_many_contact_cards two_factor_setup_required
        unknown_method
    """),
    "chat.update": _words("""
        access_denied accesslimited account_inactive as_user_not_supported block_mismatch blocked_file_type
        cant_broadcast_message cant_update_message channel_not_found deprecated_endpoint edit_window_closed
        ekm_access_denied enterprise_is_restricted external_channel_migrating fatal_error file_deleted
        file_is_deleted file_not_found file_share_limit_reached invalid_arg_name invalid_array_arg
        invalid_attachments invalid_blocks invalid_blocks_format invalid_charset invalid_form_data
        invalid_metadata_format invalid_metadata_schema invalid_post_type is_bot is_inactive markdown_text_conflict
        max_file_sharing_exceeded message_limit_exceeded message_not_found metadata_must_be_sent_from_app
        metadata_too_large method_deprecated missing_post_type missing_scope msg_too_long
        no_dual_broadcast_content_update no_permission no_text not_allowed_token_type not_authed org_login_required
        posting_to_channel_denied ratelimited request_timeout service_unavailable slack_connect_blocked_file_type
        slack_connect_canvas_sharing_blocked slack_connect_clip_sharing_blocked
        slack_connect_file_link_sharing_blocked slack_connect_file_upload_sharing_blocked streaming_state_conflict
        team_added_to_org team_not_found token_expired token_revoked too_many_attachments two_factor_setup_required
        unable_to_share_files unknown_method update_failed
    """),
    "chat.postEphemeral": _words("""
        access_denied accesslimited account_inactive cannot_reply_to_message channel_not_found deprecated_endpoint
        ekm_access_denied enterprise_is_restricted fatal_error invalid_arg_name invalid_array_arg
        invalid_attachments invalid_blocks invalid_blocks_format invalid_charset invalid_form_data invalid_post_type
        is_archived is_bot markdown_text_conflict message_limit_exceeded messages_tab_disabled method_deprecated
        missing_post_type missing_scope msg_too_long no_permission no_text not_allowed_token_type not_authed
        not_in_channel org_login_required ratelimited request_timeout restricted_action service_unavailable
        team_added_to_org token_expired token_revoked too_many_attachments two_factor_setup_required unknown_method
        user_not_in_channel
    """),
    "views.publish": _words("""
        access_denied accesslimited account_inactive deprecated_endpoint duplicate_external_id ekm_access_denied
        enterprise_is_restricted fatal_error hash_conflict invalid_arg_name invalid_array_arg invalid_charset
        invalid_form_data invalid_post_type is_bot method_deprecated missing_post_type missing_profile_id
        missing_scope no_permission not_allowed_token_type not_authed not_enabled not_implemented org_login_required
        ratelimited request_timeout service_unavailable team_added_to_org token_expired token_revoked
        two_factor_setup_required unknown_method view_too_large
    """),
    "views.open": _words("""
        access_denied accesslimited account_inactive deprecated_endpoint duplicate_external_id ekm_access_denied
        enterprise_is_restricted exchanged_trigger_id expired_trigger_id fatal_error invalid_arg_name
        invalid_array_arg invalid_charset invalid_form_data invalid_post_type invalid_trigger_id is_bot
        method_deprecated missing_post_type missing_scope no_permission not_allowed_token_type not_authed
        org_login_required ratelimited request_timeout service_unavailable team_added_to_org token_expired
        token_revoked two_factor_setup_required unknown_method view_too_large
    """),
    "views.update": _words("""
        access_denied accesslimited account_inactive deprecated_endpoint duplicate_external_id ekm_access_denied
        enterprise_is_restricted fatal_error hash_conflict invalid_arg_name invalid_array_arg invalid_charset
        invalid_form_data invalid_post_type is_bot method_deprecated missing_post_type missing_scope no_permission
        not_allowed_token_type not_authed not_found org_login_required ratelimited request_timeout
        service_unavailable team_added_to_org token_expired token_revoked two_factor_setup_required unknown_method
        view_too_large
    """),
    "users.info": _words("""
        access_denied accesslimited account_inactive deprecated_endpoint ekm_access_denied enterprise_is_restricted
        fatal_error invalid_arg_name invalid_array_arg invalid_charset invalid_form_data invalid_post_type is_bot
        method_deprecated missing_post_type missing_scope no_permission not_allowed_token_type not_authed
        org_login_required ratelimited request_timeout service_unavailable team_added_to_org token_expired
        token_revoked too_many_users two_factor_setup_required unknown_method user_not_found user_not_visible
    """),
    "conversations.open": _words("""
        access_denied accesslimited account_inactive channel_not_found deprecated_endpoint ekm_access_denied
        enterprise_is_restricted fatal_error invalid_arg_name invalid_array_arg invalid_charset invalid_form_data
        invalid_post_type invalid_user_combination is_bot method_deprecated method_not_supported_for_channel_type
        missing_post_type missing_scope no_permission not_allowed_token_type not_authed not_enough_users
        org_login_required ratelimited request_timeout service_unavailable team_added_to_org token_expired
        token_revoked too_many_users two_factor_setup_required unknown_method user_disabled user_not_found
        user_not_visible users_list_not_supplied
    """),
    "conversations.history": _words("""
        access_denied accesslimited account_inactive channel_is_limited_access channel_not_found deprecated_endpoint
        ekm_access_denied enterprise_is_restricted fatal_error invalid_arg_name invalid_array_arg invalid_charset
        invalid_cursor invalid_form_data invalid_metadata_filter_keys invalid_post_type invalid_ts_latest
        invalid_ts_oldest is_bot method_deprecated missing_post_type missing_scope no_permission
        not_allowed_token_type not_authed not_in_channel org_login_required ratelimited request_timeout
        service_unavailable team_added_to_org token_expired token_revoked two_factor_setup_required unknown_method
    """),
    "conversations.replies": _words("""
        access_denied accesslimited account_inactive channel_not_found deprecated_endpoint ekm_access_denied
        enterprise_is_restricted fatal_error invalid_arg_name invalid_array_arg invalid_charset invalid_cursor
        invalid_form_data invalid_metadata_filter_keys invalid_post_type invalid_ts_latest invalid_ts_oldest is_bot
        list_record_comment_fetch_failed method_deprecated method_not_supported_for_channel_type missing_post_type
        missing_scope no_permission not_allowed_token_type not_authed org_login_required ratelimited request_timeout
        service_unavailable team_added_to_org thread_not_found token_expired token_revoked two_factor_setup_required
        unknown_method
    """),
    "auth.test": _words("""
        access_denied accesslimited account_inactive deprecated_endpoint ekm_access_denied enterprise_is_restricted
        fatal_error internal_error invalid_arg_name invalid_array_arg invalid_auth invalid_charset invalid_form_data
        invalid_post_type is_bot method_deprecated missing_post_type missing_scope no_permission
        not_allowed_token_type not_authed org_login_required ratelimited request_timeout service_unavailable
        team_added_to_org token_expired token_revoked two_factor_setup_required unknown_method
    """),
}
#: Answered by every method though the pages above leave them out (https://docs.slack.dev/apis/web-api/#errors).
COMMON_ERRORS = _words("invalid_auth not_authed internal_error")

#: Each listed error's class. Every error of METHOD_ERRORS and COMMON_ERRORS is in exactly one set
#: (tests/test_slack_errors.py checks it).
CLASSES: dict[Refusal, frozenset[str]] = {
    Refusal.WAIT: _words("ratelimited rate_limited message_limit_exceeded"),
    Refusal.SHORTEN: _words("""
        msg_too_long msg_blocks_too_long invalid_blocks invalid_blocks_format view_too_large
        attachment_payload_limit_exceeded too_many_attachments too_many_contact_cards metadata_too_large
        block_mismatch
    """),
    Refusal.ADMIN: _words("""
        missing_scope not_in_channel is_archived is_inactive channel_not_found channel_is_limited_access
        token_revoked token_expired account_inactive invalid_auth not_authed not_allowed_token_type is_bot
        no_permission access_denied accesslimited ekm_access_denied app_access_restricted
        two_factor_setup_required restricted_action restricted_action_non_threadable_channel
        restricted_action_read_only_channel restricted_action_thread_locked restricted_action_thread_only_channel
        posting_to_channel_denied messages_tab_disabled not_enabled enterprise_is_restricted user_disabled
    """),
    Refusal.GONE: _words("message_not_found cant_update_message edit_window_closed thread_not_found"),
    Refusal.UNAVAILABLE: _words("""
        internal_error fatal_error service_unavailable request_timeout team_added_to_org org_login_required
        external_channel_migrating update_failed list_record_comment_fetch_failed streaming_state_conflict
    """),
    Refusal.FAIL: _words("""
        as_user_not_supported blocked_file_type cannot_reply_to_message cant_broadcast_message deprecated_endpoint
        draft_already_deleted draft_already_sent draft_has_conflict draft_not_found duplicate_channel_not_found
        duplicate_external_id duplicate_message_not_found exchanged_trigger_id expired_trigger_id file_deleted
        file_is_deleted file_not_found file_share_limit_reached hash_conflict invalid_arg_name invalid_array_arg
        invalid_attachments invalid_charset invalid_cursor invalid_form_data invalid_metadata_filter_keys
        invalid_metadata_format invalid_metadata_schema invalid_post_type invalid_trigger_id invalid_ts_latest
        invalid_ts_oldest invalid_user_combination markdown_text_conflict max_file_sharing_exceeded
        metadata_must_be_sent_from_app method_deprecated method_not_supported_for_channel_type missing_file_data
        missing_post_type missing_profile_id no_dual_broadcast_content_update no_text not_enough_users not_found
        not_implemented send_on_behalf_not_allowed slack_connect_blocked_file_type
        slack_connect_canvas_sharing_blocked slack_connect_clip_sharing_blocked
        slack_connect_file_link_sharing_blocked slack_connect_file_upload_sharing_blocked
        slack_connect_lists_sharing_blocked team_not_found too_many_users unable_to_share_files unknown_method
        user_not_found user_not_in_channel user_not_visible users_list_not_supplied
    """),
}
_CLASS_OF = {error: refusal for refusal, errors in CLASSES.items() for error in errors}

#: ADMIN errors that concern one channel (the others concern the method, or the whole token).
CHANNEL_ERRORS = _words("""
    not_in_channel is_archived is_inactive channel_not_found channel_is_limited_access restricted_action
    restricted_action_non_threadable_channel restricted_action_read_only_channel restricted_action_thread_locked
    restricted_action_thread_only_channel posting_to_channel_denied ekm_access_denied
""")
#: ADMIN errors that concern the token itself: every call of the workspace fails the same way.
TOKEN_ERRORS = _words("""
    token_revoked token_expired account_inactive invalid_auth not_authed not_allowed_token_type is_bot
    two_factor_setup_required
""")


def classify(error: str | None, status: int = 200) -> Refusal:
    """The class of a refusal: HTTP 429 is WAIT and any 5xx UNAVAILABLE; otherwise by Slack's ``error``
    (an error Slack does not list: FAIL)."""
    if status == 429:
        return Refusal.WAIT
    if status >= 500:
        return Refusal.UNAVAILABLE
    return _CLASS_OF.get(error or "", Refusal.FAIL)


def retry_after_seconds(value: Any, default: float = 60.0) -> float:
    """Slack's ``Retry-After`` header in seconds (Slack documents a whole number of seconds:
    https://docs.slack.dev/apis/web-api/rate-limits), kept between 1 s and an hour; ``default`` when it is
    missing or not a number."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return min(max(seconds, 1.0), 3600.0) if seconds == seconds else default  # NaN is not a number of seconds


# ------------------------------------------------------------------------------------------ needing an admin


@dataclass(frozen=True)
class Problem:
    """A refusal only an admin can fix, as the admins are told: ``text`` says what is wrong and what to do."""

    error: str
    method: str
    channel: str | None
    scope: str | None
    text: str

    @property
    def key(self) -> tuple[str, str]:
        """What it blocks: the whole token, one channel, or one method."""
        if self.error in TOKEN_ERRORS:
            return ("token", "*")
        if self.error in CHANNEL_ERRORS and self.channel:
            return ("channel", self.channel)
        return ("method", self.method)


def describe(error: str, method: str, channel: str | None = None, needed: str | None = None) -> str:
    """What an admin is told (at most 200 characters: it is stored as the workspace's problem)."""
    where = f"<#{channel}>" if channel else "the channel"
    if error == "missing_scope":
        text = (f"syncbot lacks the Slack scope `{needed or '?'}` (for {method}): reinstall the app from its "
                "manifest to grant it")
    elif error == "not_in_channel":
        text = f"not_in_channel in {where}: invite it with /invite @syncbot"
    elif error in ("is_archived", "is_inactive"):
        text = (f"{error} in {where}: the channel is archived; unarchive it (and /invite @syncbot) or pick another "
                "with /sync-log channel #name")
    elif error == "channel_not_found":
        text = (f"channel_not_found in {where}: invite syncbot to it (/invite @syncbot) or pick another with "
                "/sync-log channel #name")
    elif error in TOKEN_ERRORS:
        text = f"Slack refuses syncbot's token ({error}): reinstall the app in the workspace"
    elif error in CHANNEL_ERRORS:
        text = f"{error} in {where}: a workspace setting keeps syncbot from posting there"
    else:
        text = f"Slack refuses {method} ({error}): a workspace admin must allow it"
    return text[:200]


def _channel_of(kwargs: dict[str, Any]) -> str | None:
    for source in (kwargs.get("json"), kwargs.get("data"), kwargs.get("params")):
        if isinstance(source, dict) and source.get("channel"):
            return str(source["channel"])
    return None


class Problems:
    """The ADMIN refusals standing now, per workspace (``team``: a team id, or ``"*"`` for the one bot token of
    single-workspace mode). ``on_new(team, problem)`` is called once when a problem appears (the admins are told
    then); a successful probe forgets it."""

    def __init__(self, probe_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.probe_seconds = probe_seconds
        self.clock = clock
        self.on_new: Callable[[str, Problem], None] | None = None
        self._standing: dict[tuple[str, tuple[str, str]], tuple[Problem, float]] = {}
        self._lock = threading.Lock()

    def blocking(self, team: str, method: str, channel: str | None) -> Problem | None:
        """The problem that answers this call without asking Slack, or None (none stands, or a probe is due:
        the caller asks Slack once and reports with :meth:`record` or :meth:`clear`)."""
        keys = [("token", "*"), ("method", method)] + ([("channel", channel)] if channel else [])
        now = self.clock()
        with self._lock:
            for key in keys:
                hit = self._standing.get((team, key))
                if hit is None:
                    continue
                problem, probed = hit
                if now - probed >= self.probe_seconds:
                    self._standing[(team, key)] = (problem, now)  # this call is the probe; the others wait
                    return None
                return problem
        return None

    def record(self, team: str, method: str, channel: str | None, response: SlackResponse) -> Problem:
        error = str(response.get("error") or "")
        needed = response.get("needed")
        problem = Problem(error=error, method=method, channel=channel, scope=str(needed) if needed else None,
                          text=describe(error, method, channel, str(needed) if needed else None))
        with self._lock:
            known = self._standing.get((team, problem.key))
            self._standing[(team, problem.key)] = (problem, self.clock())
        if known is None or known[0] != problem:
            log.error("event=slack_needs_admin team=%s method=%s error=%s channel=%s needed=%s", team, method, error,
                      channel or "-", needed or "-")
            if self.on_new is not None:
                try:
                    self.on_new(team, problem)
                except Exception:
                    log.exception("event=slack_problem_report_failed team=%s", team)
        return problem

    def clear(self, team: str, method: str, channel: str | None) -> None:
        """A call of ``method`` (in ``channel``) went through: what would have blocked it is fixed."""
        keys = [("token", "*"), ("method", method)] + ([("channel", channel)] if channel else [])
        with self._lock:
            for key in keys:
                if self._standing.pop((team, key), None) is not None:
                    log.info("event=slack_problem_fixed team=%s key=%s", team, key)

    def standing(self, team: str) -> list[Problem]:
        with self._lock:
            return [p for (t, _), (p, _) in self._standing.items() if t == team]


class GuardedWebClient(WebClient):
    """slack_sdk's WebClient, told about the workspace's standing ADMIN problems (:class:`Problems`): a call a
    problem concerns is answered at once with Slack's own error (a SlackApiError, as if Slack had answered),
    except one probe every ``probe_seconds``; a refusal of class ADMIN is recorded, and a call that goes through
    clears what it probed.

    ``answer_from_memory=False`` (the notifier's client) always asks Slack: the notifier calls a refused channel
    once a pass at most and its notifications then wait minutes, so it is the probe that finds a problem fixed
    (an invite, a reinstall) and clears it for the request path too."""

    def __init__(self, *args: Any, problems: Problems, team: str = "*", answer_from_memory: bool = True,
                 shorten: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.problems = problems
        self.team = team
        self.answer_from_memory = answer_from_memory
        self.shorten = shorten

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        channel = _channel_of(kwargs)
        problem = self.problems.blocking(self.team, api_method, channel) if self.answer_from_memory else None
        if problem is not None:
            data: dict[str, Any] = {"ok": False, "error": problem.error, "syncbot_cached": True}
            if problem.scope:
                data["needed"] = problem.scope
            response = SlackResponse(client=self, http_verb="POST", api_url=f"{self.base_url}{api_method}",
                                     req_args={}, data=data, headers={}, status_code=200)
            raise SlackApiError(f"The request to the Slack API failed. (cached: {problem.error})", response)
        try:
            response = super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            refusal = classify(str(exc.response.get("error") or ""), exc.response.status_code)
            if refusal is Refusal.ADMIN:
                self.problems.record(self.team, api_method, channel, exc.response)
            shorter = _shorter(api_method, kwargs) if self.shorten and refusal is Refusal.SHORTEN else None
            if shorter is None:
                raise
            log.error("event=slack_refused_long method=%s error=%s errors=%s: sending the short form", api_method,
                      exc.response.get("error"), exc.response.get("errors"))
            response = super().api_call(api_method, **shorter)
        self.problems.clear(self.team, api_method, channel)
        return response


#: The methods whose content :func:`_shorter` can shorten: a message's ``blocks`` or a ``view``.
_MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral"})
_VIEW_METHODS = frozenset({"views.publish", "views.open", "views.update", "views.push"})


def _shorter(api_method: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The same call with its message or view in short form (`bot.blocks.short_form`, `bot.blocks.short.short_view`),
    or None when there is nothing to shorten (the call is then refused as Slack refused it)."""
    from bot.blocks.refusals import short_form
    from bot.blocks.short import short_view

    body = kwargs.get("json")
    if not isinstance(body, dict):
        return None
    if api_method in _MESSAGE_METHODS and body.get("blocks"):
        blocks = body["blocks"]
        if not isinstance(blocks, list):
            return None
        smaller = short_form({"text": body.get("text") or "", "blocks": blocks})
        return {**kwargs, "json": {**body, **smaller}}
    if api_method in _VIEW_METHODS and isinstance(body.get("view"), dict):
        return {**kwargs, "json": {**body, "view": short_view(body["view"])}}
    return None
