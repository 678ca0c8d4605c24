"""Accounts and their connections: create them, finish an OAuth authorization, disconnect.

Provider-neutral bookkeeping around `sync.oauth` and `sync.engine`: finishing an authorization stores the tokens
(encrypted) and resumes the connection, so every entry that waited on the expired token is retried.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sync.engine import RunSummary, SyncEngine
from sync.models import Account, Connection, ConnectionStatus
from sync.oauth import ConnectionTokens, QuickBooksOAuth

log = logging.getLogger("syncbot.connections")


def ensure_account(session: Session, name: str = "JobsiteOn company", timezone: str = "UTC") -> Account:
    """The first account, created with ``name`` and ``timezone`` when there is none. The caller commits."""
    account = session.scalars(select(Account).order_by(Account.id)).first()
    if account is None:
        account = Account(name=name, timezone=timezone)
        session.add(account)
        session.flush()
    return account


def ensure_connection(session: Session, account_id: int, provider: str = "quickbooks") -> Connection:
    """The account's connection to ``provider``, created (not yet authorized) when missing."""
    conn = session.scalars(select(Connection).where(Connection.account_id == account_id,
                                                    Connection.provider == provider)).first()
    if conn is None:
        conn = Connection(account_id=account_id, provider=provider, status=ConnectionStatus.EXPIRED.value)
        session.add(conn)
        session.flush()
    return conn


def finish_authorization(sessions: sessionmaker[Session], oauth: QuickBooksOAuth, tokens: ConnectionTokens,
                         engine: SyncEngine, connection_id: int, code: str, realm_id: str, by: str,
                         resume: bool = True) -> RunSummary:
    """Exchange an authorization code for tokens, store them on the connection, read the company's name
    (CompanyInfo, kept on the connection for the cards) and (``resume``) retry what waited on the old token.
    Raises ProviderError when Intuit refuses the code, ValueError when the realm differs from the one the
    connection already syncs with (that would mix two companies' records)."""
    token_set = oauth.exchange_code(code, realm_id)
    with sessions() as session, session.begin():
        conn = session.get(Connection, connection_id)
        if conn is None:
            raise ValueError(f"no connection {connection_id}")
        if conn.realm_id and conn.realm_id != realm_id:
            try:  # the code was exchanged already: revoke that grant so nothing is left behind
                oauth.revoke(token_set.refresh_token)
            except Exception:
                log.warning("event=revoke_after_wrong_realm_failed connection_id=%s", connection_id)
            named = f"{conn.company_name} ({conn.realm_id})" if conn.company_name else conn.realm_id
            raise ValueError(f"this connection syncs with QuickBooks company {named}, not {realm_id}: "
                             "disconnect it first to switch companies")
        tokens.store(session, conn, token_set, by=by)
    log.info("event=connection_authorized connection_id=%s realm=%s by=%s", connection_id, realm_id, by)
    engine.read_company_name(connection_id)  # once per connect: the cards name the company, never ask QuickBooks
    if not resume:
        return RunSummary()
    return engine.resume(connection_id, by, resolution="reconnected")
