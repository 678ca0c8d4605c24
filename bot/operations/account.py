"""The account's settings, changed from Slack: the Reconnect link, the channel sync errors go to, the admin list
and who may read the sync log."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from bot import blocks
from bot.runtime import SlackRuntime
from bot.workspaces import REFUSAL, Tenant, UserInfo

log = logging.getLogger("syncbot.slack")

CHANNEL_REF = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$")
USER_REF = re.compile(r"^<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>$")
ADMINS_USAGE = ("Say `/sync-log admins` to list the admin list, `/sync-log admins add @name` or "
                "`/sync-log admins remove @name` to change it (pick the person from Slack's suggestions).")
READING_USAGE = ("Say `/sync-log reading open` to let every member read the sync log, or `/sync-log reading admins` "
                 "to keep it to Owners, Admins and the admin list.")


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
