"""The `syncbot` command line, run in-process with typer's runner against the QuickBooks stand-in."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot import config
from bot.cli import app
from sync import log as sync_log
from tests.conftest import QBO


@pytest.fixture()
def cli(clean_db: str, qbo: QBO, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `syncbot ...` with the environment pointing at the test database and the stand-in."""
    settings = qbo.settings(clean_db)
    env = {"DATABASE_URL": clean_db, "TOKEN_ENCRYPTION_KEYS": settings.token_encryption_keys.get_secret_value(),
           "QBO_API_URL": settings.qbo_api_url, "QBO_AUTH_URL": settings.qbo_auth_url,
           "QBO_TOKEN_URL": settings.qbo_token_url, "QBO_REVOKE_URL": settings.qbo_revoke_url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config.get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:
        config.get_settings.cache_clear()
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    yield run
    config.get_settings.cache_clear()


def test_help_lists_the_commands(cli: Any) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("sync-now", "sync-log", "retry", "retry-all", "records", "db", "diagnose", "sandbox", "demo"):
        assert command in result.output


def test_import_bad_file_changes_nothing_and_says_where(cli: Any, fixtures_dir: Path, tmp_path: Path) -> None:
    data = json.loads((fixtures_dir / "records_demo.json").read_text())
    data["invoices"][0]["lines"][1]["item"] = "I99"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = cli("records", "import", str(bad))
    assert result.exit_code == 2
    assert "nothing was imported" in result.output
    assert "invoices[0] (ref INV1).lines[1].item: no item with ref I99" in result.output
    assert "No account yet" in cli("sync-log").output or cli("sync-log").exit_code == 0

    broken = tmp_path / "broken.json"
    broken.write_text('{"contacts": [')
    result = cli("records", "import", str(broken))
    assert result.exit_code == 2 and "not valid JSON" in result.output
    assert cli("records", "import", str(tmp_path / "missing.json")).exit_code == 2


def test_connect_sync_log_retry_and_retry_all(cli: Any, qbo: QBO, fixtures_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.quickbooks.consent import click_connect

    assert cli("records", "import", str(fixtures_dir / "records_demo.json")).exit_code == 0
    assert "connect` first" in cli("sync-now").output

    url = cli("connect").output.strip()
    assert url.startswith(f"{qbo.url}/connect/oauth2?") and "client_id=" in url and "state=" in url
    callback = click_connect(url, qbo.realm)
    existing = qbo.standin.create_entity(qbo.realm, "Customer", {"DisplayName": "Acme Corp"})
    result = cli("connect", "--code", callback["code"], "--realm-id", callback["realmId"])
    assert result.exit_code == 0, result.output
    assert f"connected to QuickBooks company {qbo.realm}" in result.output
    assert "errors 2" in result.output  # connecting syncs at once: the duplicate and the missing field
    assert "Replayed" not in cli("connect", "--code", callback["code"], "--realm-id", callback["realmId"]).output
    reuse = cli("connect", "--code", callback["code"], "--realm-id", callback["realmId"])
    assert reuse.exit_code == 1 and "refused" in reuse.output  # an authorization code works once

    listing = cli("sync-log", "errors")
    assert "duplicate" in listing.output and "Acme Corp" in listing.output
    assert "validation" in listing.output and "Permit fee" in listing.output
    data = json.loads(cli("sync-log", "kind:duplicate", "--json").output)
    [dup] = data["entries"]
    assert (dup["record"], dup["status"], dup["codes"]) == ("Acme Corp", "error", "6240")

    assert cli("sync-log", "kind:nonsense").exit_code == 2
    assert cli("retry", "999999").exit_code == 2  # no such entry
    # text under 3 characters searches only the newest entries, and says so (the window shrunk from 20,000)
    monkeypatch.setattr(sync_log, "SHORT_TEXT_WINDOW", 1)
    short = cli("sync-log", "ac")
    assert "searches only the newest entry: type 3 or more" in short.output, short.output
    assert json.loads(cli("sync-log", "ac", "--json").output)["searched_newest"] == 1
    assert json.loads(cli("sync-log", "acm", "--json").output)["searched_newest"] is None

    failing = cli("retry", str(dup["id"]))
    assert failing.exit_code == 1 and "duplicate" in failing.output
    qbo.standin.update_entity(qbo.realm, "Customer", existing["Id"], {"DisplayName": "Acme Corp (old)"})
    newest = json.loads(cli("sync-log", "kind:duplicate", "open", "--json").output)["entries"][0]
    fixed = cli("retry", str(newest["id"]))
    assert fixed.exit_code == 0 and "synced" in fixed.output
    again = cli("retry", str(newest["id"]))
    assert again.exit_code == 0 and "already" in again.output

    summary = cli("retry-all")
    assert summary.exit_code == 0 and "errors 1" in summary.output  # Permit fee still lacks its income account

    # the next page's command line is quoted for a shell: pasted as it is, a search of two words stays one
    first = cli("sync-log", "Acme Corp", "--limit", "1")
    more = next(line for line in first.output.splitlines() if line.startswith("more: "))
    assert more.startswith("more: syncbot sync-log 'Acme Corp' --limit 1 --before "), more
    command = shlex.split(more.removeprefix("more: "))
    second = cli(*command[1:])
    assert second.exit_code == 0 and '"Acme Corp"' in second.output.splitlines()[0]
    assert first.output.splitlines()[1].split()[0] != second.output.splitlines()[1].split()[0]  # the next entry


@pytest.mark.parametrize("case_id", ["QBO-13", "QBO-17", "QBO-35", "QBO-09"])
def test_diagnose_prints_what_the_engine_decides(cli: Any, fixtures_dir: Path, tmp_path: Path,
                                                 case_id: str) -> None:
    from sync.diagnosis import diagnose

    case = next(c for c in json.loads((fixtures_dir / "qbo_replies.json").read_text()) if c["id"] == case_id)
    body = tmp_path / "reply"
    body.write_text(case["body"])
    endpoint = "token" if "tokens/bearer" in str(case.get("context", {}).get("endpoint", "")) else "api"
    result = cli("diagnose", "--status", str(case["http_status"]), "--content-type", case["content_type"],
                 "--endpoint", endpoint, str(body))
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["kind"] in case["acceptable_kinds"]
    assert out["kind"] == diagnose(case["http_status"], case["body"], case["content_type"], endpoint=endpoint).label
    assert {"kind", "codes", "cause", "fix", "details"} <= out.keys()
    if case.get("expected_per_item"):
        assert out["items"] == case["expected_per_item"]


def test_diagnose_reads_stdin_and_refuses_bad_arguments(cli: Any) -> None:
    body = '{"Fault":{"Error":[{"Message":"Stale Object Error","Detail":"x","code":"5010"}],"type":"ValidationFault"}}'
    out = json.loads(cli("diagnose", "--status", "400", "-", input=body).output)
    assert out["kind"] == "conflict" and out["codes"] == ["5010"]
    assert cli("diagnose", "--status", "400", "--endpoint", "ftp", "-", input="{}").exit_code == 2
    assert cli("diagnose", "--status", "99", "-", input="{}").exit_code == 2
    assert cli("diagnose", "--status", "400", "/nonexistent/reply.json").exit_code == 2
    ok = json.loads(cli("diagnose", "--status", "200", "-", input='{"Customer": {"Id": "1"}}').output)
    assert ok["kind"] == "ok"


def test_demo_fixes_all_six_errors(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("demo", "--walkthrough")
    assert result.exit_code == 0, result.output
    for kind in ("duplicate", "validation", "not_found", "total_mismatch", "rate_limited", "auth_expired"):
        assert f"-> {kind}" in result.output
    final = result.output.split("== The sync log now")[-1]
    assert "no open errors" in final and "[ERROR]" not in final and "[WARNING]" not in final

    from bot.demo import DemoLock
    from bot.walkthrough import WALKTHROUGH_DIR

    running = DemoLock(WALKTHROUGH_DIR)  # another walk-through holds its directory
    try:
        before = sorted(p.name for p in WALKTHROUGH_DIR.iterdir())
        second = cli("demo", "--walkthrough")
        assert second.exit_code == 1 and "already running" in second.output
        assert sorted(p.name for p in WALKTHROUGH_DIR.iterdir()) == before, "it touched nothing"
    finally:
        running.release()


def test_unreadable_inputs_get_clear_messages(cli: Any, fixtures_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("records", "import", str(tmp_path)).exit_code == 2  # a directory
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = cli("records", "import", str(deep))
    assert result.exit_code == 2 and "not valid JSON" in result.output
    dupes = tmp_path / "dupes.json"
    dupes.write_text('{"contacts": [], "contacts": []}')
    result = cli("records", "import", str(dupes))
    assert result.exit_code == 2 and "appears twice" in result.output
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + (fixtures_dir / "records_demo.json").read_bytes())
    assert cli("records", "import", str(bom)).exit_code == 0
    assert cli("sync-log", "since:99999999999d").exit_code == 2
    assert cli("retry", "99999999999999999999999").exit_code == 2
    assert cli("sync-log", "--account", "99").exit_code == 2

    for bad in ("0", "-1", "nan", "inf"):  # a leader lease must be at least a second
        result = cli("scheduler", "--lease-seconds", bad)
        assert result.exit_code == 2 and "--lease-seconds" in result.output
    monkeypatch.setenv("SCHEDULER_LEASE_SECONDS", "0")
    result = cli("scheduler", "--run", "resume")
    assert result.exit_code == 2 and "bad setting SCHEDULER_LEASE_SECONDS" in result.output
    monkeypatch.delenv("SCHEDULER_LEASE_SECONDS")

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/missing/dir/x.db")
    result = cli("sync-log")
    assert result.exit_code == 2 and "cannot use the database" in result.output
    monkeypatch.setenv("DATABASE_URL", "notaurl")
    assert cli("sync-log").exit_code == 2
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    result = cli("sync-log")
    assert result.exit_code == 2 and "secret" not in result.output


def test_a_run_that_stops_early_exits_non_zero(cli: Any, qbo: QBO, fixtures_dir: Path) -> None:
    from sandbox.quickbooks.consent import click_connect

    assert cli("records", "import", str(fixtures_dir / "records_demo.json")).exit_code == 0
    callback = click_connect(cli("connect").output.strip(), qbo.realm)
    qbo.standin.exhaust_throttle(qbo.realm)
    result = cli("connect", "--code", callback["code"], "--realm-id", callback["realmId"])
    assert result.exit_code == 1 and "stopped early: rate_limited" in result.output
    assert cli("sync-now").exit_code == 1  # paused: it says so and exits 1
    qbo.standin.clear_throttle(qbo.realm)
    resumed = cli("resume")
    assert resumed.exit_code == 0, resumed.output


def test_install_link_binds_to_an_existing_account(cli: Any, clean_db: str, qbo: QBO,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import parse_qs, urlparse

    from bot.runtime import server_secret
    from bot.services import build_services
    from bot.workspaces import InstallLinks
    from sync.connections import ensure_account

    monkeypatch.setenv("PUBLIC_URL", "https://syncbot.example.com")
    monkeypatch.setenv("SERVER_SECRET", "install-link-test-secret")
    svc = build_services(qbo.settings(clean_db), migrate=False)
    try:
        with svc.sessions() as session, session.begin():
            account_id = ensure_account(session, "Link Builders").id
    finally:
        svc.close()
    result = cli("install-link", "--account", str(account_id), "--days", "3")
    assert result.exit_code == 0, result.output
    url = urlparse(result.output.strip())
    assert (url.scheme, url.netloc, url.path) == ("https", "syncbot.example.com", "/slack/install")
    token = parse_qs(url.query)["account"][0]
    assert InstallLinks(server_secret(config.get_settings())).verify(token) == account_id
    missing = cli("install-link", "--account", str(account_id + 99))
    assert missing.exit_code == 2 and "no account" in missing.output
    assert cli("install-link", "--account", str(account_id), "--days", "0").exit_code == 2

    # an empty SERVER_SECRET (.env.example's line, uncommented) is unset, never an empty signing key; with no
    # signing secret either, no link is signed with a key anyone could derive
    monkeypatch.setenv("SERVER_SECRET", "")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "")
    unsigned = cli("install-link", "--account", str(account_id))
    assert unsigned.exit_code == 2 and "SERVER_SECRET" in unsigned.output and "slack/install" not in unsigned.output
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "the-replicas-signing-secret")
    derived = cli("install-link", "--account", str(account_id))
    assert derived.exit_code == 0, derived.output
    token = parse_qs(urlparse(derived.output.strip()).query)["account"][0]
    assert config.get_settings().server_secret is None
    assert InstallLinks(server_secret(config.get_settings())).verify(token) == account_id
    assert InstallLinks(b"").verify(token) is None


def test_database_problems_on_db_upgrade_and_a_missing_driver_are_clear(cli: Any, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for url, says in (("sqlite://", "in-memory"), ("sqlite:///:memory:", "in-memory"),
                      ("notaurl", "(not a database URL)"), (f"sqlite:///{tmp_path}/nonexistent/dir/x.db", "x.db"),
                      ("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", "127.0.0.1:1"),
                      ("mysql://x@y/z", "driver is not installed")):
        monkeypatch.setenv("DATABASE_URL", url)
        for command in (("db", "upgrade"), ("sync-log",)):
            result = cli(*command)
            assert result.exit_code == 2, (url, command, result.output)
            assert "cannot use the database DATABASE_URL=" in result.output and says in result.output, result.output
            assert "Traceback" not in result.output and "secret" not in result.output


def test_bad_settings_exit_2_with_the_setting_named(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("QBO_REQUESTS_PER_MINUTE", "-1"), ("QBO_REQUESTS_PER_MINUTE", "0"),
                        ("QBO_BATCH_PER_MINUTE", "0"), ("QBO_MAX_CONCURRENT", "-3"),
                        ("QBO_LIMIT_MINUTE_SECONDS", "nan"), ("QBO_LIMIT_MARGIN", "-0.1"),
                        ("QBO_TIMEOUT_SECONDS", "inf"),
                        ("RATE_LIMIT_PAUSE_SECONDS", "-5"), ("QBO_BATCH_METERING", "bogus"), ("PORT", "70000"),
                        ("SCHEDULER_LEASE_SECONDS", "inf"), ("SUMMARY_GRACE_HOURS", "nan")):
        monkeypatch.setenv(name, value)
        result = cli("sync-log")
        assert result.exit_code == 2 and f"bad setting {name}" in result.output, (name, value, result.output)
        monkeypatch.delenv(name)
    monkeypatch.setenv("QBO_BATCH_METERING", "per_request")
    assert cli("sync-log").exit_code in (0, 1)
    result = cli("sandbox", "quickbooks", "--minute-seconds", "inf")
    assert result.exit_code == 2 and "minute_seconds must be a number" in result.output


def test_commands_that_talk_to_intuit_without_encryption_keys_say_so(cli: Any, qbo: QBO, fixtures_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.quickbooks.consent import click_connect

    assert cli("records", "import", str(fixtures_dir / "records_demo.json")).exit_code == 0
    callback = click_connect(cli("connect").output.strip(), qbo.realm)
    assert cli("connect", "--code", callback["code"], "--realm-id", callback["realmId"]).exit_code in (0, 1)
    monkeypatch.delenv("TOKEN_ENCRYPTION_KEYS")
    monkeypatch.setenv("QBO_API_URL", "https://sandbox-quickbooks.api.intuit.com")
    for command in (("sync-now",), ("retry", "1"), ("retry-all",), ("resume",)):
        result = cli(*command)
        assert result.exit_code == 2 and "TOKEN_ENCRYPTION_KEYS must be set" in result.output, (command,
                                                                                                result.output)


def test_serve_says_when_slack_does_not_answer(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "x")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:1/api/")
    monkeypatch.setenv("SCHEDULER_ENABLED", "false")
    result = cli("serve", "--port", "1", "--host", "127.0.0.1")
    assert result.exit_code == 1, result.output
    assert "cannot reach Slack's Web API at SLACK_API_URL=http://127.0.0.1:1/api/" in result.output
