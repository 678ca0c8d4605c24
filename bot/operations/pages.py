"""What a person reads: a page of the sync log (`/sync-log`, View log), `/sync-log status`, the App Home, and
re-publishing the App Homes of an account whose state changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from bot import blocks
from bot.blocks.connection import authorization_ends
from bot.blocks.kit import section
from bot.blocks.messages import connection_waiting
from bot.operations.parsing import check_filter_words, join_words
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo
from sync.log import page, parse_filter
from sync.models import Connection, utcnow


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
    return blocks.log_page(result, tz=user.tz or tenant.timezone, filter_text=join_words(words),
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


def home_changed(rt: SlackRuntime, tenant: Tenant, user: UserInfo | None = None) -> None:
    """The account's state changed: App Homes of its users are re-published (after the notifier's next pass);
    the Home of ``user``, who acted, at once (when they opened it), so what they clicked shows its new state."""
    if rt.home is not None:
        rt.home.changed(tenant.account_id)
        if user is not None:
            rt.home.refresh(tenant.team_id, user.user_id)
