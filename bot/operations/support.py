"""Contact support about an entry: the modal with the facts to copy, and the request posted to SUPPORT_CHANNEL."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.operations.entries import account_entry
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo

log = logging.getLogger("syncbot.slack")


def contact_support(rt: SlackRuntime, tenant: Tenant, user: UserInfo, entry_id: int | None) -> dict[str, Any]:
    """The Contact support modal of an entry of the tenant's account (any member may ask about a message they
    can see): the facts to copy, *Send to support* when SUPPORT_CHANNEL is set, a mailto link when
    SUPPORT_EMAIL is. Nothing is sent yet. Raises NotFound when the entry is not the account's."""
    entry = account_entry(rt, tenant, entry_id or 0)
    channel, email = rt.settings.support_targets()
    return blocks.support_modal(entry, tz=user.tz or tenant.timezone, channel=channel, email=email)


def send_support(rt: SlackRuntime, tenant: Tenant, user: UserInfo, entry_id: int | None,
                 note: str | None) -> dict[str, Any]:
    """Post the support request for an entry of the tenant's account to SUPPORT_CHANNEL (who asks, the note,
    the timestamp, details and intuit_tid); the modal that says where it went, or why it could not go (the facts
    stay there to copy). Raises NotFound when the entry is not the account's."""
    entry = account_entry(rt, tenant, entry_id or 0)
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
