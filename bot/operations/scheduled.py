"""The scheduled messages, from Slack: when the weekly summary goes out (`/sync-log summary ...`), its preview for
the asker, and the offline demo's `/sync-log demo summary|reminder`."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from bot import blocks
from bot.blocks.kit import context
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo
from sync.models import utcnow

log = logging.getLogger("syncbot.slack")

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
    from sync.models import Account
    from sync.summary import weekly_summary

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
