"""/sync-log and /sync-retry-all: parse, check permission, ack within 3 s, hand the work to bot.operations."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot import blocks
from bot.operations import account, entries, pages, parsing, runs, scheduled
from bot.replies import Reply
from bot.runtime import SlackRuntime
from handlers.common import who
from sync.log import FilterError

READ_ONLY = frozenset({"", "help", "status", "admins", "reading"})
#: The slash commands this module answers (manifest.yml must declare exactly these).
COMMANDS = ("/sync-log", "/sync-retry-all")


def register(app: App, rt: SlackRuntime) -> None:
    @app.command(COMMANDS[0])
    def sync_log(ack: Ack, command: dict[str, Any], respond: Respond, context: BoltContext,
                 client: WebClient) -> None:
        try:
            words = parsing.split_words(command.get("text", ""))
        except parsing.BadWords as exc:
            ack(**parsing.help_with(str(exc)))
            return
        sub = words[0].lower() if words else ""
        if sub == "help":
            ack(**blocks.help_message())
            return
        rest_low = [w.lower() for w in words[1:]]
        demo = sub == "demo" and rt.settings.demo_commands  # the offline demo's own commands
        changes = (sub in parsing.SUBCOMMANDS and sub not in READ_ONLY and not (
            sub == "summary" and rest_low == ["preview"])) or demo  # a preview only reads the log
        tenant, user, refusal = who(rt, command.get("team_id"), command.get("user_id"), change=changes,
                                     context=context)
        if refusal:
            ack(text=refusal)
            return
        assert tenant is not None and user is not None
        rest = words[1:]
        if sub == "status":
            ack(**pages.status_message(rt, tenant, user))
        elif sub == "retry-all":
            ack(**runs.retry_all_prompt(rt, tenant))
        elif sub in ("sync-now", "resume"):  # resume: Sync Now, which tries early during a rate-limit pause
            reply = Reply.to_command(client, command, respond)
            ack(text=runs.sync_now_started(reply))
            runs.run_sync_now(rt, tenant, user, reply, announce=False)
        elif sub in ("connect", "reconnect"):
            ack(**account.reconnect_link(rt, tenant, user))
        elif sub == "channel":
            ack(text=account.set_channel(rt, tenant, rest, user))
        elif sub == "admins":
            ack(text=account.admins(rt, tenant, user, rest))
        elif sub == "reading":
            ack(text=account.reading(rt, tenant, user, rest))
        elif sub == "summary" and rest_low == ["preview"]:
            ack(**scheduled.summary_preview(rt, tenant, user))
        elif sub == "summary":
            ack(text=scheduled.summary_setting(rt, tenant, user, rest))
        elif demo:
            ack(text=scheduled.demo_command(rt, tenant, rest_low))
        elif sub == "retry":
            if len(rest) != 1:
                ack(**parsing.help_with("Say which record: `/sync-log retry JS-1001`."))
                return
            ack(text=entries.retry_by_label(rt, tenant, user, rest[0], Reply.to_command(client, command, respond)))
        else:
            try:
                ack(**pages.log_message(rt, tenant, user, words))
            except (FilterError, parsing.BadWords) as exc:
                ack(**parsing.help_with(str(exc)))

    @app.command(COMMANDS[1])
    def sync_retry_all(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        tenant, _user, refusal = who(rt, command.get("team_id"), command.get("user_id"), change=True,
                                      context=context)
        if refusal:
            ack(text=refusal)
            return
        assert tenant is not None
        ack(**runs.retry_all_prompt(rt, tenant))
