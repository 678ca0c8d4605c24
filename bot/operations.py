"""What the Slack listeners do, once they have parsed the request, checked permission and acked.

Each function takes the runtime, the tenant (workspace bound to an account), the acting user and the parsed
ids; it calls `sync/` and renders with `bot.blocks`. Work that may take longer than Slack's 3 seconds (Sync Now,
Retry All, a click's fix) is stored as a job (`bot.jobs`: it outlives the process that accepted it) that a worker
runs (:func:`run_job`), and reports back through a `bot.replies.Reply` rebuilt from the job (the response_url, or a
modal and a DM for clicks on the App Home) or the notifier.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select

from bot import blocks
from bot.blocks.commands import stopped_note
from bot.blocks.connection import authorization_ends
from bot.blocks.kit import context, section
from bot.blocks.messages import connection_waiting
from bot.jobs import BadJob, Claimed, SealedForOthers
from bot.models import SlackMessage
from bot.replies import Reply
from bot.runtime import SlackRuntime
from bot.workspaces import REFUSAL, Tenant, UserInfo
from sync.diagnosis import Kind
from sync.engine import ConnectionUnavailable, EngineError, InProgress, NotFound, NothingToRetry, record_topic
from sync.log import FilterError, LogFilter, open_clause, page, parse_filter, retryable
from sync.models import Connection, SyncLogEntry, utcnow

log = logging.getLogger("syncbot.slack")

SUBCOMMANDS = ("help", "retry-all", "sync-now", "resume", "status", "connect", "reconnect", "channel", "retry",
               "admins", "reading", "summary")
BARE_FILTERS = frozenset({"errors", "error", "warnings", "warning", "open", "contact", "contacts", "customer",
                          "customers", "item", "items", "invoice", "invoices", "payment", "payments"})
FILTER_KEYS = ("entity", "kind", "status", "direction", "since", "until", "connection")
CHANNEL_REF = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$")
USER_REF = re.compile(r"^<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>$")
ADMINS_USAGE = ("Say `/sync-log admins` to list the admin list, `/sync-log admins add @name` or "
                "`/sync-log admins remove @name` to change it (pick the person from Slack's suggestions).")
READING_USAGE = ("Say `/sync-log reading open` to let every member read the sync log, or `/sync-log reading admins` "
                 "to keep it to Owners, Admins and the admin list.")


class BadWords(ValueError):
    """Words of a command that are not understood (the help is shown with this message)."""


class Words(list[str]):
    """Words of a command; ``quoted`` holds the ones that were typed in quotes (free text)."""

    quoted: set[str]


def split_words(text: str) -> Words:
    """Split command text like a shell (quotes group free text). Raises BadWords on unbalanced quotes."""
    lexer = shlex.shlex(text or "", posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words, quoted = Words(), set()
    try:
        for token in lexer:
            words.append(token)
    except ValueError as exc:
        raise BadWords(f"I could not read that: {exc}.") from None
    for raw in re.findall(r'"([^"]*)"|\'([^\']*)\'', text or ""):
        quoted.add(raw[0] or raw[1])
    words.quoted = quoted
    return words


def check_filter_words(words: Sequence[str]) -> None:
    """Refuse bare words that are neither filters nor quoted free text (unknown words get the help)."""
    quoted = getattr(words, "quoted", set())
    for i, word in enumerate(words):
        low = word.lower()
        if low in BARE_FILTERS or " " in word or word in quoted or (
                ":" in low and low.split(":", 1)[0] in FILTER_KEYS):
            continue
        if i == 0:  # most likely a command mistyped: name the ones that exist
            raise BadWords(f"I don't know `{word}`. The commands are {', '.join(SUBCOMMANDS)}; anything else "
                           "filters the log (errors, open, entity:invoice, since:7d...), with free text in quotes, "
                           "e.g. \"Acme Corp\".")
        raise BadWords(f"I don't know `{word}`. Put free text in quotes, e.g. \"Acme Corp\".")


def help_with(note: str | None = None) -> dict[str, Any]:
    """The help, headed by ``note``."""
    message = blocks.help_message()
    if note:
        message = {"text": f"{blocks.escape_mrkdwn(note)}\n{message['text']}"[:3000],
                   "blocks": [section(blocks.escape_mrkdwn(note)), *message["blocks"]][:50]}
    return message


# ------------------------------------------------------------------------------------------------ the log


def log_message(rt: SlackRuntime, tenant: Tenant, user: UserInfo, words: Sequence[str],
                before: int | None = None, after: int | None = None) -> dict[str, Any]:
    """A page of the tenant's sync log for ``words`` (filters). Raises FilterError / BadWords."""
    check_filter_words(words)
    flt = parse_filter(list(words), account_id=tenant.account_id)
    now = utcnow()
    with rt.services.sessions() as session:
        result = page(session, flt, before=before, after=after, size=10)
        conns = session.scalars(select(Connection).where(Connection.account_id == tenant.account_id))
        waiting = {c.id: w for c in conns if (w := connection_waiting(c, now)[0])}  # as the cards say it
        session.expunge_all()
    return blocks.log_page(result, tz=user.tz or tenant.timezone, filter_text=" ".join(words),
                           connection_id=tenant.connection_id, waiting=waiting)


def status_message(rt: SlackRuntime, tenant: Tenant, user: UserInfo) -> dict[str, Any]:
    """Each connection: state, last sync, days until the token expires, open errors."""
    rows = []
    now = utcnow()
    with rt.services.sessions() as session:
        for conn in session.scalars(select(Connection).where(Connection.account_id == tenant.account_id)):
            expiry = authorization_ends(conn)
            days = (expiry - now).days if expiry else None
            rows.append((conn, rt.services.engine.counts(conn.id), days))
        session.expunge_all()
    message = blocks.status_message(rows, tz=user.tz or tenant.timezone)
    if tenant.channel_problem:
        note = (f":warning: Sync errors cannot reach the channel now ({blocks.escape_mrkdwn(tenant.channel_problem)})."
                " Invite @syncbot there, or pick another channel with `/sync-log channel #name`.")
        message = {"text": f"{blocks.escape_mrkdwn(note)}\n{message['text']}"[:3000],
                   "blocks": [section(note), *message["blocks"]]}
    return message


# ------------------------------------------------------------------------------------------------ entries


def _entry(rt: SlackRuntime, tenant: Tenant, entry_id: int) -> SyncLogEntry:
    """The entry, only when it belongs to the tenant's account (else NotFound, as if it did not exist)."""
    return rt.services.engine.get_entry(entry_id, account_id=tenant.account_id)


def show_retrying(rt: SlackRuntime, tenant: Tenant, user: UserInfo, entry: SyncLogEntry,
                  channel: str | None, ts: str | None) -> None:
    """Turn the clicked message into "Retrying... (by Name)" at once (same ts)."""
    if not channel or not ts:
        return
    message = rt.notifier.render_record(entry, tenant.timezone, retrying_by=user.name)
    try:
        rt.clients.for_team(tenant.team_id).chat_update(channel=channel, ts=ts, **message)
    except SlackApiError as exc:
        log.info("event=retrying_update_failed error=%s", exc.response.get("error"))


def entry_action(rt: SlackRuntime, tenant: Tenant, user: UserInfo, action: str, entry_id: int,
                 reply: Reply, channel: str | None = None, ts: str | None = None) -> None:
    """Run a fix action on an entry after the ack: retry, unlink, recreate, link_existing, mark_resolved, and for a
    total mismatch keep_provider_totals and send_own_tax. The entry is checked here; the action is a job
    (`bot.jobs`, :func:`_entry_job`), committed before this returns, which any worker runs: it turns the card to
    "Retrying…" first (in the job, so that it never comes after the outcome), then acts. The outcome reaches the
    message through the outbox (and the App Home); refusals go to the user (``reply``)."""
    if action not in ENTRY_FIXES:
        raise ValueError(f"unknown entry action {action!r}")
    try:
        entry = _entry(rt, tenant, entry_id)
    except NotFound:
        log.warning("event=foreign_or_unknown_entry team_id=%s user_id=%s entry_id=%s", tenant.team_id,
                    user.user_id, entry_id)
        reply.now({"text": "That sync log entry was not found in your account."})
        return
    _enqueue(rt, "entry_action", entry.connection_id, tenant, user, reply, action=action, entry_id=entry_id,
             channel=channel, ts=ts, clicked_at=rt.notifier.clock().isoformat())


#: The entry actions a job runs (the engine's method of each).
ENTRY_FIXES = ("retry", "unlink", "recreate", "link_existing", "mark_resolved", "keep_provider_totals",
               "send_own_tax")
#: The entry actions that push to QuickBooks: the message says Retrying… meanwhile.
PUSHES = ("retry", "send_own_tax")


def _is_card_of(rt: SlackRuntime, tenant: Tenant, entry: SyncLogEntry, channel: str, ts: str) -> bool:
    """Whether the message at ``channel``/``ts`` is the card of ``entry``'s record (the message its buttons were
    drawn on). A button value changed to another entry's id names a record whose card is elsewhere: acting on it
    would draw that record over this card (and leave its own card stale)."""
    topic = record_topic(entry.connection_id or 0, entry.entity, entry.record_id)
    with rt.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(SlackMessage).where(
            SlackMessage.account_id == tenant.account_id, SlackMessage.topic == topic,
            SlackMessage.channel_id == channel, SlackMessage.ts == ts)) == 1


def _entry_job(rt: SlackRuntime, tenant: Tenant, user: UserInfo, reply: Reply, p: JobPayload) -> None:
    """An entry action's job (:func:`entry_action`)."""
    action, entry_id = p.choice("action", ENTRY_FIXES), p.integer("entry_id")
    channel, ts = p.text("channel"), p.text("ts")
    clicked_at = p.time("clicked_at")
    engine = rt.services.engine
    fn = {"retry": engine.retry_entry, "unlink": engine.unlink, "recreate": engine.recreate,
          "link_existing": engine.link_existing, "mark_resolved": engine.mark_resolved,
          "keep_provider_totals": engine.keep_provider_totals, "send_own_tax": engine.send_own_tax}[action]
    notice: str | None = None  # why the click was refused, shown on the card where it was clicked
    if channel and ts:
        try:
            clicked = _entry(rt, tenant, entry_id)
        except NotFound:
            clicked = None
        if clicked is None or not _is_card_of(rt, tenant, clicked, channel, ts):
            log.warning("event=button_not_on_its_card team_id=%s user_id=%s entry_id=%s", tenant.team_id,
                        user.user_id, entry_id)
            reply.now({"text": "That button is not valid any more: nothing was changed."})
            return
        if action in PUSHES:
            show_retrying(rt, tenant, user, clicked, channel, ts)
    try:
        result = fn(entry_id, user.name, account_id=tenant.account_id)
        if not reply.through_response_url and not (channel and ts):  # clicked on the App Home: say how it went
            reply.now({"text": _outcome_text(action, result)})
    except NotFound:
        reply.now({"text": "That sync log entry was not found in your account."})
    except InProgress:
        notice = _notice(tenant, user, action, "already retrying this record: this card updates when it is "
                         "done.", clicked_at, outcome="was not needed")
        reply.now({"text": "Already retrying this record: the message updates when it is done."})
    except NothingToRetry as exc:
        notice = _notice(tenant, user, action, str(exc), clicked_at)
        reply.now({"text": f"{exc}"})
    except ConnectionUnavailable as exc:
        notice = _notice(tenant, user, action, _waiting_notice(exc, BUTTON_WORDS.get(action, "that"),
                                                               tenant.timezone), clicked_at)
        reply.now({"text": f"{exc} Use /sync-log reconnect." if exc.kind == "auth_expired" else str(exc)})
    except EngineError as exc:
        notice = _notice(tenant, user, action, str(exc), clicked_at)
        reply.now({"text": str(exc)})
    finally:
        _home_changed(rt, tenant, user)
        rt.notifier.deliver()  # the outcome updates the same message now (and the App Homes)
        if notice is not None and channel and ts:
            show_on_card(rt, tenant, entry_id, channel, ts, notice)
        elif action in PUSHES and channel and ts:
            _redraw_if_still_retrying(rt, tenant, entry_id, channel, ts, clicked_at)


# ------------------------------------------------------------------------------------------------ jobs


class JobPayload:
    """A job's payload, read strictly: a value of the wrong type raises BadJob (a tampered or foreign row is
    finished with its error, not run)."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload

    def _get(self, key: str, kind: type | tuple[type, ...], optional: bool) -> Any:
        value = self.payload.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise BadJob(f"the job's {key} is not valid")
        return value

    def integer(self, key: str) -> int:
        return int(self._get(key, int, False))

    def text(self, key: str) -> str | None:
        return self._get(key, str, True)

    def flag(self, key: str) -> bool:
        return bool(self._get(key, bool, False))

    def choice(self, key: str, allowed: Sequence[str]) -> str:
        value = self._get(key, str, False)
        if value not in allowed:
            raise BadJob(f"the job's {key} {value[:40]!r} is not one of {', '.join(allowed)}")
        return str(value)

    def time(self, key: str) -> dt.datetime:
        try:
            return dt.datetime.fromisoformat(self._get(key, str, False))
        except ValueError:
            raise BadJob(f"the job's {key} is not a time") from None

    def mapping(self, key: str) -> Mapping[str, Any]:
        return self._get(key, dict, False)


#: Set while a worker runs a stored click (:func:`store_click`): the work the click leads to runs in that job.
_in_click = threading.local()


def _enqueue(rt: SlackRuntime, kind: str, connection_id: int | None, tenant: Tenant, user: UserInfo, reply: Reply,
             /, **fields: Any) -> int | None:
    """Store the work as a job (committed when this returns), with who asked and where the answer goes. In the
    job of a stored click (:func:`store_click`), already durable, the work runs at once instead."""
    if getattr(_in_click, "active", False):
        JOB_KINDS[kind](rt, tenant, user, reply, JobPayload(json.loads(json.dumps(fields))))
        return None
    payload = {"team_id": tenant.team_id, "user": {"user_id": user.user_id, "name": user.name, "tz": user.tz},
               "reply": reply.route(rt.services.box.encrypt), **fields}
    return rt.jobs.enqueue(kind, connection_id, payload)


#: What of a click's payload its job keeps (the message's blocks and the view's are left out: nothing reads them).
CLICK_KEYS = ("type", "user", "team", "container", "channel", "actions", "api_app_id", "enterprise",
              "is_enterprise_install")


def store_click(rt: SlackRuntime, kind: str, connection_id: int | None, body: Mapping[str, Any]) -> int:
    """Store a click (Sync Now, Retry All's confirmation, an entry's fix) as a job before it is acked: the
    permission check and the work run in the worker that claims it (`handlers.actions.run_click`). Its
    response_url and trigger_id are sealed with TOKEN_ENCRYPTION_KEYS."""
    box = rt.services.box
    kept: dict[str, Any] = {k: body[k] for k in CLICK_KEYS if k in body}
    view = body.get("view")
    if isinstance(view, Mapping):
        kept["view"] = {k: view.get(k) for k in ("id", "type") if k in view}
    sealed = {k: box.encrypt(str(body[k])) if body.get(k) else None for k in ("response_url", "trigger_id")}
    return rt.jobs.enqueue(kind, connection_id, {"click": {"body": kept, **sealed}})


#: Runs a stored click as its listener would have after the ack: (runtime, the click's body, its respond or
#: None). `handlers.actions.run_click`, handed in by `bot.wiring` (the operations do not import the listeners).
ClickRunner = Callable[["SlackRuntime", dict[str, Any], Any], None]


def _run_click(rt: SlackRuntime, job: Claimed, run_click: ClickRunner) -> None:
    """A stored click's job: the click as Slack sent it, rebuilt, through the listener's own work (``run_click``)."""
    from slack_bolt.context.respond import Respond

    from sync.crypto import SecretBoxError

    click = JobPayload(JobPayload(job.payload).mapping("click"))
    body = dict(click.mapping("body"))
    try:
        url, trigger = (rt.services.box.decrypt(v) if v else None
                        for v in (click.text("response_url"), click.text("trigger_id")))
    except SecretBoxError as exc:
        raise SealedForOthers(f"the stored click's sealed values cannot be opened: {exc}") from None
    if url is not None and not url.startswith(("https://", "http://")):
        raise BadJob("the stored click's response_url is not a URL")
    if url is not None:
        body["response_url"] = url
    if trigger is not None:
        body["trigger_id"] = trigger
    _in_click.active = True
    try:
        run_click(rt, body, Respond(response_url=url) if url is not None else None)
    finally:
        _in_click.active = False


def _job_parts(rt: SlackRuntime, payload: Mapping[str, Any]) -> tuple[Tenant, UserInfo, Reply, JobPayload]:
    """The tenant, user and reply a job's payload names (BadJob when it names them wrongly)."""
    from sync.crypto import SecretBoxError

    p = JobPayload(payload)
    team_id = p.text("team_id")
    tenant = rt.tenants.get(team_id) if team_id else None
    if tenant is None:
        raise BadJob("the job's workspace is not bound to an account any more")
    who_ = JobPayload(p.mapping("user"))
    user_id = who_.text("user_id")
    if not user_id:
        raise BadJob("the job names no user")
    user = UserInfo(user_id=user_id, name=who_.text("name") or user_id, is_admin=False, tz=who_.text("tz"))
    try:
        reply = Reply.from_route(p.mapping("reply"), rt.clients.for_team(tenant.team_id), rt.services.box.decrypt)
    except SecretBoxError as exc:
        raise SealedForOthers(f"the job's reply route cannot be opened: {exc}") from None
    except ValueError as exc:
        raise BadJob(f"the job's reply route cannot be used: {exc}") from None
    return tenant, user, reply, p


def run_job(rt: SlackRuntime, job: Claimed, run_click: ClickRunner) -> None:
    """Run one job (`bot.jobs.JobQueue`'s runner): rebuild who asked and where the answer goes, then the work; a
    stored click through ``run_click``. Raises BadJob for a kind or a payload it cannot run."""
    if job.kind == "resume":
        try:
            _run_resume(rt, job)
        finally:
            rt.notifier.wake()
        return
    if job.kind not in JOB_KINDS:
        raise BadJob(f"unknown job kind {job.kind[:40]!r}")
    click = "click" in job.payload
    parts = None if click else _job_parts(rt, job.payload)
    if job.attempt > 1:  # a process died during it: settle what it left pending first (as the CLI does)
        recovered = rt.services.engine.recover_pending()
        log.warning("event=job_rerun job_id=%s kind=%s attempt=%d recovered=%d", job.id, job.kind, job.attempt,
                    recovered)
    try:
        if parts is None:
            _run_click(rt, job, run_click)
        else:
            JOB_KINDS[job.kind](rt, *parts)
    finally:
        rt.notifier.wake()


def _click_reply(rt: SlackRuntime, job: Claimed) -> Reply:
    """The reply to a stored click, for its give-up answer (the trigger_id has long expired)."""
    from slack_bolt.context.respond import Respond

    click = JobPayload(JobPayload(job.payload).mapping("click"))
    body = dict(click.mapping("body"))
    sealed = click.text("response_url")
    team_id = ((body.get("team") or {}).get("id") if isinstance(body.get("team"), dict) else None)
    if not team_id:
        raise BadJob("the stored click names no workspace")
    url = rt.services.box.decrypt(sealed) if sealed else None
    if url is not None:
        body["response_url"] = url
    return Reply.to_click(rt.clients.for_team(str(team_id)), body,
                          Respond(response_url=url) if url is not None else None)


def _tell_job_person(rt: SlackRuntime, job: Claimed, why: str) -> None:
    """Tell the person who asked for ``job`` that it could not be finished, and ``why`` (a sentence)."""
    try:
        if "click" in job.payload:
            reply = _click_reply(rt, job)
        else:
            _tenant, _user, reply, _p = _job_parts(rt, job.payload)
    except (BadJob, ValueError):
        return
    what = {"retry_all": "Retry All", "sync_now": "Sync Now", "entry_action": "Your click",
            "resume": "The resume after Reconnect"}.get(job.kind, "That")
    reply.later({"text": f"{what} could not be finished: {why} Try once more, or use Contact support if it happens "
                         "again."})


def job_given_up(rt: SlackRuntime, job: Claimed) -> None:
    """Tell the person whose job was started too many times without finishing that it is dropped."""
    _tell_job_person(rt, job, f"syncbot stopped during it {job.attempt - 1} times, so it was not tried again.")


def job_failed(rt: SlackRuntime, job: Claimed) -> None:
    """Tell the person whose job's work raised that it stopped (what raised is in the log, under the job's id:
    the person is not shown the internals)."""
    _tell_job_person(rt, job, f"syncbot met an unexpected error (job {job.id} in its log), and it was not tried "
                              "again.")


#: The button of each entry action, as the card labels it (what a refusal tells the person to click).
BUTTON_WORDS = {"retry": "Retry", "unlink": "Unlink", "recreate": "Re-create in QuickBooks",
                "link_existing": "Link to existing", "mark_resolved": "Mark resolved", "fill_field": "Fill in",
                "details": "Details", "contact_support": "Contact support", "reconnect": "Reconnect",
                "view_log": "View log",
                "sync_now": "Sync Now",
                "keep_provider_totals": "Keep QuickBooks' totals", "send_own_tax": "Send JobsiteOn's tax and retry"}


def _notice(tenant: Tenant, user: UserInfo, action: str, reason: str, at: dt.datetime | None = None, *,
            outcome: str = "was refused") -> str:
    """The card's line for a click that could not act (``blocks.click_notice``): the button, who clicked, when
    (Slack's date token), and ``reason``."""
    return blocks.click_notice(BUTTON_WORDS.get(action, "That button"), user.name, at or utcnow(), reason,
                               tz=tenant.timezone, outcome=outcome)


def _waiting_notice(exc: ConnectionUnavailable, button: str, tz: str | None) -> str:
    """Why a fix could not run while the connection waits, and what to click instead (after "Retry by … was
    refused:")."""
    if exc.kind == "auth_expired":
        return (f"the QuickBooks connection waits for Reconnect. An Owner or Admin clicks Reconnect (here or on the "
                f"connection's message); then {button} works.")
    if exc.kind == "rate_limited" and exc.until is not None:
        return (f"QuickBooks' rate-limit pause: syncing resumes by itself at "
                f"{blocks.format_time(exc.until, tz)}.")
    return str(exc)


def who_can_help(rt: SlackRuntime, tenant: Tenant) -> str:
    """Who a refused member can ask, by name: the account's admin list (up to three), else the workspace's
    Owners and Admins."""
    names = [rt.directory.user(tenant.team_id, uid).name for uid in tenant.admin_user_ids[:3]]
    if names:
        return ", ".join(names) + " or a workspace Owner or Admin"
    return "a workspace Owner or Admin"


def refusal_notice(rt: SlackRuntime, tenant: Tenant, user: UserInfo, action: str, change: bool = True) -> str:
    """The card's line for a click refused for permission (``blocks.click_notice``): who was refused and when,
    why, who can help, what to click."""
    button = BUTTON_WORDS.get(action, "that button")
    if change:
        return _notice(tenant, user, action, f"it needs Owner or Admin permissions. Ask {who_can_help(rt, tenant)} "
                       f"to click {button}.")
    return _notice(tenant, user, action, "reading the sync log needs Owner or Admin permissions. Ask "
                   f"{who_can_help(rt, tenant)} (or for `/sync-log reading open`).")


def show_on_card(rt: SlackRuntime, tenant: Tenant, entry_id: int | None, channel: str, ts: str,
                 notice: str) -> None:
    """Draw the record's card (the message clicked, ``channel`` and ``ts``) from its newest state with
    ``notice`` on it: a refused click changes something where the person clicked, not only an "only visible to
    you" reply at the bottom of the channel. The next change of the record draws the card without it.

    The card is found by the message: only a record's own card of the tenant's account is drawn, and with
    ``entry_id`` (an entry button's value) only when that entry is the card's record, so a tampered value
    redraws nothing. Without it (Reconnect's value is the connection) the card's record is read off the message."""
    with rt.services.sessions() as session:
        topic = session.scalar(select(SlackMessage.topic).where(
            SlackMessage.account_id == tenant.account_id, SlackMessage.channel_id == channel, SlackMessage.ts == ts))
    message = _card_with_notice(rt, tenant, entry_id, str(topic or "").split(":"), notice, ts)
    if message is None:
        return
    try:
        rt.clients.for_team(tenant.team_id).chat_update(channel=channel, ts=ts, **message)
    except SlackApiError as exc:
        log.info("event=refusal_on_card_failed error=%s", exc.response.get("error"))


def _card_with_notice(rt: SlackRuntime, tenant: Tenant, entry_id: int | None, parts: list[str],
                      notice: str, ts: str) -> dict[str, Any] | None:
    """The card a message's topic (``parts``) names, drawn from its newest state with ``notice``: a token-expiry
    reminder (``reminder:S``, or its DM ``reminder:S:dm:U``), a connection's incident (``connection:C:incident:I``)
    or a record's card (``record:C:entity:R``); None for any other message,
    another account's, or an ``entry_id`` that is not the card's record."""
    if len(parts) in (2, 4) and parts[0] == "reminder" and parts[1].isdigit():  # a token-expiry reminder
        reminder = rt.notifier.render_reminder(int(parts[1]), tenant.timezone, notice=notice)
        return reminder[1] if reminder is not None and reminder[0] == tenant.account_id else None
    if (len(parts) == 4 and parts[0] == "connection" and parts[2] == "incident" and parts[1].isdigit()
            and parts[3].isdigit()):  # a connection's incident (Sync Now, Reconnect on it)
        drawn = rt.notifier.render_incident(int(parts[1]), int(parts[3]), tenant.timezone, notice=notice)
        return drawn[1] if drawn is not None and drawn[0].account_id == tenant.account_id else None
    if len(parts) != 4 or parts[0] != "record" or not parts[1].isdigit() or not parts[3].isdigit():
        return None  # not a record's card (a digest, an answer): its own message says what it can
    with rt.services.sessions() as session:
        newest = session.scalars(select(SyncLogEntry).where(
            SyncLogEntry.account_id == tenant.account_id, SyncLogEntry.connection_id == int(parts[1]),
            SyncLogEntry.entity == parts[2], SyncLogEntry.record_id == int(parts[3]),
            SyncLogEntry.status != "pending").order_by(SyncLogEntry.id.desc()).limit(1)).first()
        clicked = session.get(SyncLogEntry, entry_id) if entry_id is not None else None
        if newest is not None:
            session.expunge(newest)
    if newest is None:
        return None
    if entry_id is not None and (clicked is None or clicked.account_id != tenant.account_id or (
            clicked.connection_id, clicked.entity, clicked.record_id) != (
            newest.connection_id, newest.entity, newest.record_id)):
        log.warning("event=card_mismatch team_id=%s entry_id=%s ts=%s", tenant.team_id, entry_id, ts)
        return None
    return rt.notifier.render_record(newest, tenant.timezone, notice=notice)


def _newest_of(rt: SlackRuntime, entry: SyncLogEntry) -> SyncLogEntry | None:
    """The newest settled entry of ``entry``'s record (what its card is drawn from)."""
    with rt.services.sessions() as session:
        latest = session.scalars(select(SyncLogEntry).where(
            SyncLogEntry.connection_id == entry.connection_id, SyncLogEntry.entity == entry.entity,
            SyncLogEntry.record_id == entry.record_id, SyncLogEntry.status != "pending")
            .order_by(SyncLogEntry.id.desc()).limit(1)).first()
        if latest is not None:
            session.expunge(latest)
    return latest


def entry_details(rt: SlackRuntime, tenant: Tenant, user: UserInfo, entry_id: int | None) -> dict[str, Any]:
    """The Details modal of an entry of the tenant's account (what its card leaves off its face). Raises
    NotFound."""
    entry = _entry(rt, tenant, entry_id or 0)
    with rt.services.sessions() as session:
        attempts = session.scalar(select(func.max(SyncLogEntry.attempt)).where(
            SyncLogEntry.connection_id == entry.connection_id, SyncLogEntry.entity == entry.entity,
            SyncLogEntry.record_id == entry.record_id)) or entry.attempt
    existing = (entry.data or {}).get("existing")
    found = existing.get("label") if isinstance(existing, dict) else None
    return blocks.details_modal(entry, tz=user.tz or tenant.timezone, attempts=attempts, found_existing=found)


def _outcome_text(action: str, result: Any) -> str:
    """What a fix action clicked on the App Home did, in one line (a click on a message shows it in the message)."""
    from bot.blocks.messages import entry_meaning, kind_info_for
    from sync.diagnosis import KINDS

    if not isinstance(result, SyncLogEntry):
        return "Done."
    what = blocks.escape_mrkdwn(blocks.record_name(result.entity, result.record_label, result.record_id))
    if action == "mark_resolved":
        return f":white_check_mark: {what} is marked resolved."
    if result.status in ("synced", "info") or result.resolved_at is not None:
        return f":white_check_mark: Synced: {what}."
    info = kind_info_for(result.kind, entry_meaning(result)) if result.kind in KINDS else None
    title = info.title if info is not None else "Error"
    return (f":x: Still failing: {what}: {title} (attempt {result.attempt}). Its message in the sync errors channel "
            "has the details and the fixes.")


def _home_changed(rt: SlackRuntime, tenant: Tenant, user: UserInfo | None = None) -> None:
    """The account's state changed: App Homes of its users are re-published (after the notifier's next pass);
    the Home of ``user``, who acted, at once (when they opened it), so what they clicked shows its new state."""
    if rt.home is not None:
        rt.home.changed(tenant.account_id)
        if user is not None:
            rt.home.refresh(tenant.team_id, user.user_id)


def _redraw_if_still_retrying(rt: SlackRuntime, tenant: Tenant, entry_id: int, channel: str, ts: str,
                              clicked_at: dt.datetime) -> None:
    """When no notification updated the clicked message since ``clicked_at`` (UTC) (it was not the record's
    stored message, or the retry was refused and queued nothing), draw it from the newest state so it never stays
    on "Retrying...". A message the notifier has redrawn since the click is left alone (one update, not two)."""
    with rt.services.sessions() as session:
        redrawn = session.scalar(select(SlackMessage.id).where(
            SlackMessage.account_id == tenant.account_id, SlackMessage.channel_id == channel,
            SlackMessage.ts == ts, SlackMessage.updated_at >= clicked_at))
    if redrawn is not None:
        return
    latest = _newest_of(rt, rt.services.engine.get_entry(entry_id))
    if latest is None:
        return
    try:
        rt.clients.for_team(tenant.team_id).chat_update(
            channel=channel, ts=ts, **rt.notifier.render_record(latest, tenant.timezone))
    except SlackApiError as exc:
        log.info("event=redraw_failed error=%s", exc.response.get("error"))


def open_fill_field(rt: SlackRuntime, tenant: Tenant, client: WebClient, trigger_id: str,
                    entry_id: int | None) -> None:
    """Open the fill-field modal of an entry of the tenant's account. A field chosen from one of QuickBooks'
    lists opens at once saying it is loading (the trigger_id lasts 3 seconds, QuickBooks may take longer), then
    shows the list QuickBooks answered with. Raises NotFound (not the account's entry) and ValueError (it names
    no field)."""
    entry = rt.services.engine.get_entry(entry_id or 0, account_id=tenant.account_id)
    if not blocks.chooses_from_list(entry):
        client.views_open(trigger_id=trigger_id, view=blocks.fill_field_modal(entry))
        return
    opened = client.views_open(trigger_id=trigger_id, view=blocks.fill_field_modal(entry, loading=True))
    choices = rt.services.engine.field_choices(entry.id, account_id=tenant.account_id)
    view = opened.get("view") or {}
    try:
        client.views_update(view_id=view.get("id"), hash=view.get("hash"),
                            view=blocks.fill_field_modal(entry, choices))
    except SlackApiError as exc:  # closed meanwhile (not_found) or changed (hash_conflict): nothing to show
        log.info("event=fill_field_update_failed team_id=%s entry_id=%s error=%s", tenant.team_id, entry.id,
                 exc.response.get("error"))


def fill_field(rt: SlackRuntime, tenant: Tenant, user: UserInfo, entry_id: int | None,
               value: str | None) -> str | None:
    """Save the value the user typed or chose into the record, then retry it. Returns a problem to show in the
    modal, or None when it was saved. A chosen id is not checked against the list the modal showed: QuickBooks
    is the judge (the list may have changed since), and what it refuses comes back on the error's message."""
    if entry_id is None:
        return "This form is not valid any more."
    try:
        rt.services.engine.fill_field(entry_id, value or "", user.name, account_id=tenant.account_id)
    except NotFound:
        return "That sync log entry was not found in your account."
    except ValueError as exc:
        return str(exc)
    entry_action(rt, tenant, user, "retry", entry_id, Reply.nobody())
    return None


# ------------------------------------------------------------------------------------------------ runs


def _connection_id(tenant: Tenant, value: object) -> int | None:
    """The connection a button names: its value must be the tenant's connection id (else None: refused)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None if value not in (None, "") else tenant.connection_id


def retry_all_prompt(rt: SlackRuntime, tenant: Tenant) -> dict[str, Any]:
    """The confirmation before Retry All: how many of the connection's open errors it retries, and the open errors
    it cannot retry by kind (sync.log: one definition of an open error, the same count as everywhere)."""
    entries = rt.services.engine.open_entries(tenant.connection_id) if tenant.connection_id else []
    others: dict[str, int] = {}
    for e in entries:
        if not retryable(e):
            others[str(e.kind)] = others.get(str(e.kind), 0) + 1
    # a connection that would refuse the run says so now, instead of offering a button that cannot work
    blocked = rt.services.engine.unavailable(tenant.connection_id) if tenant.connection_id and entries else None
    note = (stopped_note(blocked.kind.value, blocked.until, tz=tenant.timezone, head="Retry All can't run now")
            if blocked is not None else None)
    return blocks.retry_all_confirm(sum(1 for e in entries if retryable(e)), connection_id=tenant.connection_id,
                                    not_retried=others, blocked=note)


def run_retry_all(rt: SlackRuntime, tenant: Tenant, user: UserInfo, connection_value: str | None,
                  reply: Reply) -> None:
    """Retry All after confirmation: progress in place of the confirmation (its message or modal, a few
    updates), then the counts (there, or as a DM when the click came without a response_url)."""
    connection_id = _connection_id(tenant, connection_value)
    if connection_id is None or connection_id != tenant.connection_id:
        reply.now({"text": "That connection was not found in your account."})
        return
    _enqueue(rt, "retry_all", connection_id, tenant, user, reply, connection_id=connection_id)


def _connection_of(tenant: Tenant, p: JobPayload) -> int:
    """The job's connection, which must still be the tenant's."""
    connection_id = p.integer("connection_id")
    if connection_id != tenant.connection_id:
        raise BadJob("the job's connection is not its workspace's connection")
    return connection_id


def _retry_all_job(rt: SlackRuntime, tenant: Tenant, user: UserInfo, reply: Reply, p: JobPayload) -> None:
    """Retry All's job (:func:`run_retry_all`): progress in place of the confirmation (from "0 of N" as it
    starts), then the counts."""
    connection_id = _connection_of(tenant, p)
    state = {"sent": 0.0}

    def progress(done: int, total: int) -> None:
        now = dt.datetime.now(dt.UTC).timestamp()
        if now - state["sent"] >= 5 and done < total:  # response_url takes 5 uses: update sparingly
            state["sent"] = now
            reply.replace(blocks.retry_all_progress(done, total))

    reply.replace(blocks.retry_all_progress(0, len(rt.services.engine.retry_all_errors(connection_id))))
    try:
        summary = rt.services.engine.retry_all(connection_id, user.name, progress)
    except ConnectionUnavailable as exc:  # why, and what to do, as Sync Now says it
        reply.later(blocks.retry_all_not_run(exc.kind.value, until=exc.until, tz=user.tz or tenant.timezone),
                    replace=True)
        return
    finally:
        _home_changed(rt, tenant, user)
    reply.later(blocks.retry_all_done(summary.as_dict()), replace=True)


def sync_now_started(reply: Reply) -> str:
    """What Sync Now says as it starts: where its counts will arrive."""
    return f"Syncing now... the counts follow {reply.later_place}."


def run_sync_now(rt: SlackRuntime, tenant: Tenant, user: UserInfo, reply: Reply, announce: bool = True,
                 connection_value: object = None) -> None:
    """Sync Now after the ack: "started" at once (``announce``; a slash command's ack says it instead), the
    counts, and why the run stopped, through ``reply`` when the run is over (in place of the command's
    "Syncing now..." line when the ack said it: a promise kept is not left standing above its answer).

    During a rate-limit pause it tries early (``SyncEngine.sync_now(try_early=True)``, the help article's "click
    Sync Now to retry"): one cheap request, then either the connection resumes (its incident turns Resumed, the
    waiting records sync) or the answer and the incident's message give the new time. ``connection_value``: the
    clicked button's value, which must name the tenant's connection (a tampered one changes nothing)."""
    if tenant.connection_id is None:
        reply.now({"text": "No QuickBooks connection yet: /sync-log connect."})
        return
    named = _connection_id(tenant, connection_value)
    if named is None or named != tenant.connection_id:
        log.warning("event=foreign_or_unknown_connection team_id=%s user_id=%s", tenant.team_id, user.user_id)
        reply.now({"text": "That connection was not found in your account: nothing was changed."})
        return
    if announce:
        reply.now({"text": sync_now_started(reply)})
    _enqueue(rt, "sync_now", tenant.connection_id, tenant, user, reply, connection_id=tenant.connection_id,
             announce=announce)


def _sync_now_job(rt: SlackRuntime, tenant: Tenant, user: UserInfo, reply: Reply, p: JobPayload) -> None:
    """Sync Now's job (:func:`run_sync_now`): the run, then its counts or why it stopped."""
    connection_id, announce = _connection_of(tenant, p), p.flag("announce")
    tz = user.tz or tenant.timezone
    try:
        summary = rt.services.engine.sync_now(connection_id, user.name, try_early=True)
    except ConnectionUnavailable as exc:
        answer = (blocks.sync_now_still_limited(exc.until, tz=tz) if exc.kind == Kind.RATE_LIMITED
                  else blocks.sync_now_done(None, stopped=exc.kind.value, until=exc.until, tz=tz))
        reply.later(answer, replace=not announce)
        return
    finally:
        _home_changed(rt, tenant, user)
        rt.notifier.deliver()  # the incident's message shows the new time, or Resumed, now
    with rt.services.sessions() as session:
        conn = session.get(Connection, connection_id)
        until = conn.paused_until if conn is not None and summary.stopped is not None else None
    reply.later(blocks.sync_now_done(summary.as_dict(), until=until, tz=tz), replace=not announce)


def enqueue_resume(rt: SlackRuntime, connection_id: int, user_name: str) -> int:
    """After a Reconnect: the connection resumes (the records that waited are retried, then a sync), as a job."""
    return rt.jobs.enqueue("resume", connection_id, {"connection_id": connection_id, "actor": user_name})


def _run_resume(rt: SlackRuntime, job: Claimed) -> None:
    p = JobPayload(job.payload)
    connection_id, actor = p.integer("connection_id"), p.text("actor") or "system"
    if connection_id != job.connection_id:
        raise BadJob("the job's connection does not match its payload")
    try:
        rt.services.engine.resume(connection_id, actor, "reconnected")
    except (ConnectionUnavailable, NotFound) as exc:
        log.warning("event=resume_not_run connection_id=%s error=%s", connection_id, exc)


JOB_KINDS: dict[str, Callable[[SlackRuntime, Tenant, UserInfo, Reply, JobPayload], None]] = {
    "entry_action": _entry_job, "retry_all": _retry_all_job, "sync_now": _sync_now_job}


# ------------------------------------------------------------------------------------------------ settings


def reconnect_link(rt: SlackRuntime, tenant: Tenant, user: UserInfo) -> dict[str, Any]:
    """A personal, single-use, expiring Reconnect link for ``user`` (an Owner or Admin)."""
    from sync.connections import ensure_connection

    with rt.services.sessions() as session, session.begin():
        conn = ensure_connection(session, tenant.account_id)
        session.flush()
        session.expunge(conn)
    state = rt.states.mint(tenant.account_id, conn.id, tenant.team_id, user.user_id, user.name)
    return blocks.reconnect_link(rt.start_url(state), conn, account_name=tenant.account_name,
                                 minutes=rt.states.ttl // 60)


def set_channel(rt: SlackRuntime, tenant: Tenant, words: Sequence[str], user: UserInfo | None = None) -> str:
    """`/sync-log channel #name`: where notifications go. Returns the answer text."""
    if len(words) != 1 or not CHANNEL_REF.match(words[0]):
        return "Say which channel: `/sync-log channel #sync-errors` (pick it from Slack's suggestions)."
    channel_id = CHANNEL_REF.match(words[0]).group(1)  # type: ignore[union-attr]
    rt.tenants.set_channel(tenant.team_id, channel_id, user.user_id if user else None)
    rt.notifier.wake()
    return (f"Sync errors now go to <#{channel_id}>. If syncbot is not a member yet, invite it there: "
            "`/invite @syncbot`.")


def retry_by_label(rt: SlackRuntime, tenant: Tenant, user: UserInfo, label: str, reply: Reply) -> str:
    """`/sync-log retry JS-1001`: retry the open entry of the record with that name or number."""
    if "\x00" in label:  # no record is named so (and PostgreSQL text cannot even hold it in a query)
        return f"No open error for `{blocks.escape_mrkdwn(label[:100])}`."
    with rt.services.sessions() as session:
        entry = session.scalars(select(SyncLogEntry).where(
            SyncLogEntry.account_id == tenant.account_id, SyncLogEntry.record_label == label,
            open_clause()).order_by(SyncLogEntry.id.desc()).limit(1)).first()
    if entry is None:
        return f"No open error for `{blocks.escape_mrkdwn(label[:100])}`."
    entry_action(rt, tenant, user, "retry", entry.id, reply)
    return f"Retrying {blocks.escape_mrkdwn(label[:100])}... the error message updates when it is done."


# ------------------------------------------------------------------------------------------------ permissions


def admins(rt: SlackRuntime, tenant: Tenant, user: UserInfo, words: Sequence[str]) -> str:
    """`/sync-log admins [add|remove @user]`: list the account's admin list (users who may act besides the
    workspace's Owners and Admins), or edit it. Editing is for the workspace's Owners and Admins only (being on
    the list lets one act, not hand out rights). Returns the answer text (mrkdwn)."""
    if not words:
        listed = ", ".join(f"<@{u}>" for u in tenant.admin_user_ids) or "no one yet"
        reading = "every member" if tenant.open_reading else "Owners, Admins and the admin list"
        return (f"Besides the workspace's Owners and Admins, these people may retry, reconnect and change "
                f"settings: {listed}. Who may read the sync log: {reading}.\n{ADMINS_USAGE}")
    verb = words[0].lower()
    match = USER_REF.match(words[1]) if len(words) == 2 else None
    if verb not in ("add", "remove") or match is None:
        return ADMINS_USAGE
    if not user.is_admin:
        log.warning("event=permission_refused team_id=%s user_id=%s what=admins_%s", tenant.team_id, user.user_id,
                    verb)
        return REFUSAL
    target = match.group(1)
    if verb == "add" and rt.directory.user(tenant.team_id, target).is_bot_or_gone:
        return f"<@{target}> is a bot or a deactivated account: only people can be on the admin list."
    changed = rt.tenants.edit_admins(tenant.team_id, add=[target] if verb == "add" else [],
                                     remove=[target] if verb == "remove" else [])
    log.info("event=admin_list_changed team_id=%s by=%s verb=%s user_id=%s changed=%s", tenant.team_id,
             user.user_id, verb, target, changed)
    if verb == "add":
        return (f"<@{target}> added to the admin list: they may now retry, reconnect and change settings."
                if changed else f"<@{target}> is already on the admin list.")
    return (f"<@{target}> removed from the admin list." if changed
            else f"<@{target}> was not on the admin list (Owners and Admins of the workspace always may act).")


def reading(rt: SlackRuntime, tenant: Tenant, user: UserInfo, words: Sequence[str]) -> str:
    """`/sync-log reading open|admins`: whether every member may read the sync log (changing anything stays
    with Owners, Admins and the admin list). Workspace Owners and Admins only. Returns the answer text."""
    choice = words[0].lower() if len(words) == 1 else ""
    if choice not in ("open", "admins"):
        return READING_USAGE
    if not user.is_admin:
        log.warning("event=permission_refused team_id=%s user_id=%s what=reading", tenant.team_id, user.user_id)
        return REFUSAL
    rt.tenants.set_open_reading(tenant.team_id, choice == "open")
    log.info("event=reading_changed team_id=%s by=%s open=%s", tenant.team_id, user.user_id, choice == "open")
    if choice == "open":
        return ("Every member of the workspace may now read the sync log (`/sync-log`, the App Home). Retrying "
                "and reconnecting stay with Owners, Admins and the admin list.")
    return "Only Owners, Admins and the admin list may read the sync log now."


# ------------------------------------------------------------------------------------------------ support


def contact_support(rt: SlackRuntime, tenant: Tenant, user: UserInfo, entry_id: int | None) -> dict[str, Any]:
    """The Contact support modal of an entry of the tenant's account (any member may ask about a message they
    can see): the facts to copy, *Send to support* when SUPPORT_CHANNEL is set, a mailto link when
    SUPPORT_EMAIL is. Nothing is sent yet. Raises NotFound when the entry is not the account's."""
    entry = _entry(rt, tenant, entry_id or 0)
    channel, email = rt.settings.support_targets()
    return blocks.support_modal(entry, tz=user.tz or tenant.timezone, channel=channel, email=email)


def send_support(rt: SlackRuntime, tenant: Tenant, user: UserInfo, entry_id: int | None,
                 note: str | None) -> dict[str, Any]:
    """Post the support request for an entry of the tenant's account to SUPPORT_CHANNEL (who asks, the note,
    the timestamp, details and intuit_tid); the modal that says where it went, or why it could not go (the facts
    stay there to copy). Raises NotFound when the entry is not the account's."""
    entry = _entry(rt, tenant, entry_id or 0)
    tz = user.tz or tenant.timezone
    channel, email = rt.settings.support_targets()
    if channel is None:
        return blocks.support_modal(entry, tz=tz, email=email, send_problem="no support channel is set")
    message = blocks.support_request_message(entry, tz="UTC", workspace=tenant.team_id,
                                             account_name=tenant.account_name, requested_by=user.name, note=note)
    try:
        answer = rt.clients.for_team(tenant.team_id).chat_postMessage(channel=channel, **message)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "Slack refused it")
        log.warning("event=support_post_failed team_id=%s entry_id=%s error=%s", tenant.team_id, entry.id, error)
        problem = f"{error}: invite @syncbot to the support channel" if error in (
            "not_in_channel", "channel_not_found") else error
        return blocks.support_modal(entry, tz=tz, email=email, send_problem=problem)
    log.info("event=support_requested team_id=%s account_id=%s entry_id=%s user_id=%s", tenant.team_id,
             tenant.account_id, entry.id, user.user_id)
    return blocks.support_modal(entry, tz=tz, sent_to=str(answer.get("channel") or channel))


# ------------------------------------------------------------------------------------------------ home


def publish_home(rt: SlackRuntime, tenant: Tenant, user: UserInfo) -> None:
    """Publish the App Home of ``user``: a card per connection and the latest errors."""
    from sync.log import LogFilter as Flt

    cards = []
    with rt.services.sessions() as session:
        conns = list(session.scalars(select(Connection).where(Connection.account_id == tenant.account_id)))
        for conn in conns:
            cards.append(blocks.ConnectionCard(connection=conn, open_errors_by_kind=rt.services.engine.counts(
                conn.id), account_name=tenant.account_name, reconnect_url=None))
        latest = page(session, Flt(account_id=tenant.account_id, open_only=True), size=10).entries
        session.expunge_all()
    view = blocks.home_view(cards, latest, tz=user.tz or tenant.timezone)
    rt.clients.for_team(tenant.team_id).views_publish(user_id=user.user_id, view=view)


__all__ = ["SUBCOMMANDS", "BadWords", "FilterError", "LogFilter"]


# ------------------------------------------------------------------------------------------------ summary

SUMMARY_USAGE = ("Say `/sync-log summary monday 9:00` to choose when the weekly summary goes out (in the account's "
                 "time zone; add a zone, as in `/sync-log summary monday 9:00 America/Chicago`, to change it), "
                 "`/sync-log summary off` to stop it, or `/sync-log summary preview` to see it now (only you).")

SUMMARY_OFF = ("The weekly summary is off. Turn it back on with `/sync-log summary on`, or choose when it goes out "
               "with `/sync-log summary monday 9:00`.")


def summary_setting(rt: SlackRuntime, tenant: Tenant, user: UserInfo, words: Sequence[str]) -> str:
    """`/sync-log summary [DAY TIME [ZONE] | on | off]`: show or change when the account's weekly summary goes out.
    The day is a weekday name (or its first three letters), the time ``9:00``, ``14:30`` or ``9am``; the zone an
    IANA name, which becomes the account's zone (the channel's messages use it too, and the answer says so), else
    the account keeps its zone (the first user to set a schedule gives theirs). Returns the answer text."""
    from bot.scheduler import WEEKDAYS, canonical_zone, set_summary, zone
    from sync.models import Account

    low = [w.lower() for w in words]
    try:
        if not low:
            with rt.services.sessions() as session:
                account = session.get(Account, tenant.account_id)
                assert account is not None
                if not account.summary_enabled:
                    return SUMMARY_OFF
                day = WEEKDAYS[account.summary_weekday % 7].capitalize()
                return (f"The weekly sync log summary goes out every {day} at {account.summary_time} "
                        f"({account.timezone}). {SUMMARY_USAGE}")
        if low == ["off"]:
            set_summary(rt.services, tenant.account_id, enabled=False)
            return SUMMARY_OFF
        if low == ["on"]:
            account = set_summary(rt.services, tenant.account_id, enabled=True, timezone=user.tz)
        elif len(low) == 1 and any(name == low[0] or name[:3] == low[0] for name in WEEKDAYS):
            return f"Give a time too, as in `/sync-log summary {blocks.escape_mrkdwn(low[0][:12])} 9:00`."
        elif len(low) in (2, 3):
            days = [i for i, name in enumerate(WEEKDAYS) if name == low[0] or name[:3] == low[0]]
            if not days:
                return f"I don't know the day `{blocks.escape_mrkdwn(words[0][:40])}`. {SUMMARY_USAGE}"
            tz_name = (canonical_zone(words[2]) or words[2]) if len(words) == 3 else None
            if tz_name is not None and zone(tz_name) is dt.UTC and tz_name.upper() != "UTC":
                return f"I don't know the time zone `{blocks.escape_mrkdwn(tz_name[:60])}` (try America/Chicago)."
            account = set_summary(rt.services, tenant.account_id, enabled=True, weekday=days[0], time_text=low[1],
                                  timezone=tz_name or user.tz, replace_timezone=tz_name is not None)
        else:
            return SUMMARY_USAGE
    except ValueError as exc:
        return f"{blocks.escape_mrkdwn(str(exc))[:200]}. {SUMMARY_USAGE}"
    log.info("event=summary_schedule_set account_id=%s by=%s weekday=%s time=%s", tenant.account_id, user.user_id,
             account.summary_weekday, account.summary_time)
    day = WEEKDAYS[account.summary_weekday].capitalize()
    answer = (f"The weekly sync log summary now goes out every {day} at {account.summary_time} "
              f"({account.timezone}), set by {blocks.escape_mrkdwn(user.name)}.")
    if account.timezone != tenant.timezone:  # the zone is the account's, not the summary's alone: say so
        answer += (f" The account's time zone changed from {tenant.timezone or 'UTC'} to {account.timezone}: "
                   "the channel's messages show times in it too.")
    return answer


def summary_preview(rt: SlackRuntime, tenant: Tenant, user: UserInfo) -> dict[str, Any]:
    """`/sync-log summary preview`: the weekly summary of the seven days until now, drawn as the Monday one is
    (`bot.blocks.weekly_summary_message`), for the asker only (the slash command's answer is ephemeral). Nothing
    is queued or posted, and the scheduled summary still goes out."""
    from sync.log import weekly_summary
    from sync.models import Account

    now = utcnow()
    with rt.services.sessions() as session:
        account = session.get(Account, tenant.account_id)
        summary = weekly_summary(session, tenant.account_id, until=now)
        name = account.name if account is not None else tenant.account_name
    preview = blocks.weekly_summary_message(summary, tz=user.tz or tenant.timezone, account_name=name,
                                            connection_id=tenant.connection_id, now=now)
    note = ("Preview, only visible to you: the weekly summary as it would go out now. "
            "`/sync-log summary` says when it goes out.")
    return {"text": f"{note}\n{preview['text']}"[:3000],
            "blocks": [context(note), *preview["blocks"]][:50]}


DEMO_USAGE = ("The demo's commands: `/sync-log demo summary` posts the Monday summary to the channel now; "
              "`/sync-log demo reminder` posts the token-expiry reminder as it goes out 14 days before the token "
              "expires (and sends it to the admins in the app's Messages tab).")


def demo_command(rt: SlackRuntime, tenant: Tenant, words: Sequence[str]) -> str:
    """`/sync-log demo summary|reminder`, in the offline demo only (``SYNCBOT_DEMO_COMMANDS``): queue the scheduled
    message now through the scheduler's own queue (`bot.scheduler.Jobs`), so the real notifier posts it as the
    scheduled one goes out. Returns the answer text."""
    from bot.scheduler import Jobs

    jobs = Jobs(rt.services, on_queued=rt.notifier.wake)
    now = utcnow()
    if list(words) == ["summary"]:
        jobs.summary_now(tenant.account_id, now)
        return "The Monday summary is on its way to the channel, as it goes out every week."
    if list(words) == ["reminder"]:
        if tenant.connection_id is None or not jobs.reminder_now(tenant.connection_id, now):
            return "No QuickBooks connection yet: /sync-log connect."
        return ("The token-expiry reminder is on its way to the channel (and to the admins in the app's Messages "
                "tab), as it goes out 14 days before the token expires.")
    return DEMO_USAGE
