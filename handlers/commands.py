"""/sync-log and /sync-retry-all: parse the words, check permission (the preamble, `handlers.common.permitted`,
declared by each subcommand), and answer with one function of `bot.operations` in the ack, within 3 s."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.operations import account, entries, pages, parsing, runs, scheduled
from bot.replies import Reply
from bot.runtime import SlackRuntime
from handlers.common import Request, permitted
from sync.log import FilterError

#: The slash commands this module answers (manifest.yml must declare exactly these).
COMMANDS = ("/sync-log", "/sync-retry-all")


class Command(Request):
    """A slash command: its words (``sub``, the subcommand, and ``rest``, the words after it), answered by its ack
    (a refusal too); longer work answers through ``reply`` (the command's response_url)."""

    def __init__(self, rt: SlackRuntime, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient,
                 context: Mapping[str, Any] | None, words: Sequence[str] = ()) -> None:
        super().__init__(rt, command.get("team_id"), command.get("user_id"), context)
        self.ack, self.command, self.respond, self.client = ack, command, respond, client
        self.words = words
        self.sub = words[0].lower() if words else ""
        self.rest = list(words[1:])

    @functools.cached_property
    def reply(self) -> Reply:
        return Reply.to_command(self.client, self.command, self.respond)

    def refuse(self, text: str) -> None:
        self.ack(text=text)


@permitted(change=False)
def status(c: Command) -> None:
    c.ack(**pages.status_message(c.rt, c.tenant, c.user))


@permitted(change=True)
def retry_all(c: Command) -> None:
    """`/sync-log retry-all` and `/sync-retry-all`: the confirmation."""
    c.ack(**runs.retry_all_prompt(c.rt, c.tenant))


@permitted(change=True)
def sync_now(c: Command) -> None:
    """`/sync-log sync-now`, and `resume`: Sync Now, which tries early during a rate-limit pause."""
    c.ack(text=runs.sync_now_started(c.reply))
    runs.run_sync_now(c.rt, c.tenant, c.user, c.reply, announce=False)


@permitted(change=True)
def reconnect(c: Command) -> None:
    c.ack(**account.reconnect_link(c.rt, c.tenant, c.user))


@permitted(change=True)
def channel(c: Command) -> None:
    c.ack(text=account.set_channel(c.rt, c.tenant, c.rest, c.user))


@permitted(change=False)  # reading the list; changing it is for Owners and Admins (bot.operations.account.admins)
def admins(c: Command) -> None:
    c.ack(text=account.admins(c.rt, c.tenant, c.user, c.rest))


@permitted(change=False)  # Owners and Admins only, checked by bot.operations.account.reading
def reading(c: Command) -> None:
    c.ack(text=account.reading(c.rt, c.tenant, c.user, c.rest))


@permitted(change=False)
def summary_preview(c: Command) -> None:
    c.ack(**scheduled.summary_preview(c.rt, c.tenant, c.user))


@permitted(change=True)
def summary_setting(c: Command) -> None:
    c.ack(text=scheduled.summary_setting(c.rt, c.tenant, c.user, c.rest))


def summary(c: Command) -> None:
    """`/sync-log summary ...`: `summary preview` only reads the log; the others say or change when it goes out."""
    (summary_preview if [w.lower() for w in c.rest] == ["preview"] else summary_setting)(c)


@permitted(change=True)
def retry(c: Command) -> None:
    if len(c.rest) != 1:
        c.ack(**parsing.help_with("Say which record: `/sync-log retry JS-1001`."))
        return
    c.ack(text=entries.retry_by_label(c.rt, c.tenant, c.user, c.rest[0], c.reply))


@permitted(change=True)
def demo(c: Command) -> None:
    """The offline demo's own commands (``SYNCBOT_DEMO_COMMANDS``)."""
    c.ack(text=scheduled.demo_command(c.rt, c.tenant, [w.lower() for w in c.rest]))


@permitted(change=False)
def log_page(c: Command) -> None:
    """Any other words: filters of the sync log (no words: its newest page)."""
    try:
        c.ack(**pages.log_message(c.rt, c.tenant, c.user, c.words))
    except (FilterError, parsing.BadWords) as exc:
        c.ack(**parsing.help_with(str(exc)))


#: Each `/sync-log` subcommand's work (`help` is answered before anyone is looked up; other words: :func:`log_page`).
SUBCOMMAND_WORK: dict[str, Callable[[Command], None]] = {
    "status": status, "retry-all": retry_all, "sync-now": sync_now, "resume": sync_now, "connect": reconnect,
    "reconnect": reconnect, "channel": channel, "admins": admins, "reading": reading, "summary": summary,
    "retry": retry}


def register(app: App, rt: SlackRuntime) -> None:
    @app.command(COMMANDS[0])
    def sync_log(ack: Ack, command: dict[str, Any], respond: Respond, context: BoltContext,
                 client: WebClient) -> None:
        try:
            words = parsing.split_words(command.get("text", ""))
        except parsing.BadWords as exc:
            ack(**parsing.help_with(str(exc)))
            return
        c = Command(rt, ack, command, respond, client, context, words)
        if c.sub == "help":
            ack(**parsing.help_with())
            return
        work = demo if c.sub == "demo" and rt.settings.demo_commands else SUBCOMMAND_WORK.get(c.sub, log_page)
        work(c)

    @app.command(COMMANDS[1])
    def sync_retry_all(ack: Ack, command: dict[str, Any], respond: Respond, context: BoltContext,
                       client: WebClient) -> None:
        retry_all(Command(rt, ack, command, respond, client, context))
