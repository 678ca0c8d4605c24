"""Cards name the QuickBooks company by its name (issue 15: a card a person can scan), not by its realm id: the
name is QuickBooks' CompanyInfo.CompanyName, read once when the connection is authorized (and filled by Sync Now's
early try, which reads CompanyInfo anyway), kept on the connection; drawing a card never asks QuickBooks. Without a
name the card names the realm id. Over real HTTP: the QuickBooks stand-in's company "Sandbox Builders LLC", the
Slack stand-in as Slack, clicks signed as Slack signs them."""

from __future__ import annotations

from bot.blocks import ids
from bot.blocks.incidents import incident_message
from sandbox.slack import config as slack_cfg
from sync.models import Connection
from tests.conftest import CHANNEL, QBO, Stack, wait_for
from tests.test_slack_flows import deliver_all
from tests.test_sync_now_early import rate_limited, visible

COMPANY = "Sandbox Builders LLC"  # the stand-in's default company (sandbox.quickbooks.state.DEFAULT_COMPANY)


def company_name(stack: Stack) -> str | None:
    with stack.rt.services.sessions() as session:
        conn = session.get(Connection, stack.connection_id)
        assert conn is not None
        return conn.company_name


def test_the_incident_card_names_the_company_read_when_it_connected(stack: Stack, qbo: QBO) -> None:
    assert company_name(stack) == COMPANY  # read from CompanyInfo by the OAuth authorization
    requests = len(qbo.standin.request_log(qbo.realm))
    card = rate_limited(stack, qbo)
    assert f"Rate limit exceeded* · QuickBooks company {COMPANY}" in visible(card)
    assert qbo.realm not in visible(card)
    assert not [r for r in qbo.standin.request_log(qbo.realm)[requests:] if "companyinfo" in r["path"]], \
        "drawing the card asked QuickBooks nothing"


def test_sync_now_fills_in_a_name_not_known_yet(stack: Stack, qbo: QBO) -> None:
    with stack.rt.services.sessions() as session, session.begin():
        conn = session.get(Connection, stack.connection_id)
        assert conn is not None
        conn.company_name = None  # connected before syncbot kept the name
    card = rate_limited(stack, qbo)
    assert f"QuickBooks company {qbo.realm}" in visible(card)

    qbo.standin.clear_throttle(qbo.realm)
    assert stack.driver.click(ids.SYNC_NOW, channel_id=CHANNEL, message_ts=card["ts"],
                              user_id=slack_cfg.ADMIN_USER_ID).status_code == 200
    wait_for(lambda: company_name(stack) == COMPANY)
    deliver_all(stack)
    assert f"QuickBooks company {COMPANY}" in visible(stack.message(card["ts"]))


def test_without_a_name_the_card_names_the_realm_id() -> None:
    conn = {"id": 1, "provider": "quickbooks", "realm_id": "9130357766900456", "status": "expired"}
    incident = {"id": 1, "kind": "auth_expired", "opened_at": None}
    assert "QuickBooks company 9130357766900456" in incident_message(incident, conn, 3)["text"]
    named = incident_message(incident, {**conn, "company_name": "Acme *Builders*"}, 3)["text"]
    assert "QuickBooks company Acme" in named and "9130357766900456" not in named
