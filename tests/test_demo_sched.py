"""Issue 15, points 3 and 11, as the demo's user meets them: the seeded rate limit is open when the page loads
(with Sync Now); the Monday summary and a token-expiry reminder can be seen on demand (`/sync-log summary
preview` to the asker only; the demo's `/sync-log demo summary|reminder` in the channel); a taken demo port is
replaced by another, and the demo says which; the CLI names `demo-data/` instead of creating a stray
`syncbot.db`. Everything over real HTTP, commands signed as Slack signs them."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.blocks.connection import authorization_ends
from sandbox.slack import config as slack_cfg
from sync.models import Connection
from tests.conftest import CHANNEL, Stack, wait_for
from tests.test_slack_flows import deliver_all
from tests.test_sync_now_early import buttons


def test_summary_preview_is_shown_to_the_asker_only(stack: Stack) -> None:
    stack.rt.services.engine.sync_now(stack.connection_id, "U_ADMIN")  # a week with an error (Permit fee)
    deliver_all(stack)
    before = len(stack.messages())
    answer = stack.driver.slash_command("/sync-log", "summary preview", user_id=slack_cfg.ADMIN_USER_ID).json()
    assert answer.get("response_type") != "in_channel"  # a slash command's answer is ephemeral by default
    assert "Preview, only visible to you" in answer["text"]
    assert "Weekly sync summary" in str(answer["blocks"])
    assert "Field validation error" in str(answer["blocks"])
    deliver_all(stack)
    assert len(stack.messages()) == before  # nothing posted to the channel, nothing queued


def test_the_demo_commands_are_only_the_demos(stack: Stack) -> None:
    answer = stack.driver.slash_command("/sync-log", "demo summary", user_id=slack_cfg.ADMIN_USER_ID)
    assert "I don't know `demo`" in answer.response.text


def occupied_port() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock, int(sock.getsockname()[1])


def test_the_demo_opens_on_the_rate_limit_and_shows_the_scheduled_messages_on_demand(tmp_path: Path,
                                                                                     monkeypatch: Any) -> None:
    from bot import demo as demo_mod
    from bot.config import Settings
    from sandbox.slack.driver import SlackDriver

    sock, taken = occupied_port()  # another program listens on the demo's page port
    monkeypatch.setattr(demo_mod, "DEFAULT_PAGE_PORT", taken)
    said: list[str] = []
    demo = demo_mod.start_live(tmp_path / "demo-data", base=Settings(_env_file=None),  # type: ignore[call-arg]
                               say=said.append)
    try:
        assert not demo.url.startswith(f"http://127.0.0.1:{taken}/")
        new_port = demo.url.rsplit(":", 1)[1].strip("/")
        assert f"  port {taken} is taken by another program: the page uses port {new_port} instead" in said

        channel = [m.to_dict() for m in demo.slack.messages(CHANNEL)]
        card = next(m for m in channel if "Rate limit exceeded" in m["text"])
        assert "Resumed" not in card["text"] and "Sync Now" in buttons(card)  # open when the page loads
        assert "<!date^" in str(card["blocks"])

        secret = demo.rt.settings.slack_signing_secret.get_secret_value()
        with SlackDriver(f"{demo.app_url}/slack/events", secret, demo.slack) as driver:
            preview = driver.slash_command("/sync-log", "summary preview").json()
            assert "Weekly sync summary" in str(preview["blocks"])

            count = len(demo.slack.messages(CHANNEL))
            assert "on its way" in driver.slash_command("/sync-log", "demo summary").response.text
            summary = wait_for(lambda: [m for m in demo.slack.messages(CHANNEL)[count:]
                                        if "Weekly sync summary" in m.to_dict()["text"]
                                        or "sync summary" in str(m.to_dict()["blocks"])], timeout=20)
            assert len(summary) == 1

            assert "on its way" in driver.slash_command("/sync-log", "demo reminder").response.text
            reminder = wait_for(lambda: [m for m in demo.slack.messages(CHANNEL)
                                         if "expires in 14 days" in m.to_dict()["text"]], timeout=20)
            assert len(reminder) == 1 and "Reconnect" in buttons(reminder[0].to_dict())
            with demo.rt.services.sessions() as session:  # the demo's token has about 100 days left
                ends = authorization_ends(session.scalars(select(Connection)).one())
            assert ends is not None and ends - dt.datetime.now(dt.UTC) > dt.timedelta(days=90)
            sample = f"Sample reminder: your connection really expires <!date^{int(ends.timestamp())}^"
            assert sample in str(reminder[0].to_dict()["blocks"])  # not a real 14 days: it says so
            member = driver.slash_command("/sync-log", "demo summary", user_id=slack_cfg.MEMBER_USER_ID)
            assert "Owner or Admin" in member.response.text
    finally:
        demo.stop()
        sock.close()


def test_the_cli_names_demo_data_instead_of_creating_a_stray_database(tmp_path: Path) -> None:
    (tmp_path / "demo-data").mkdir()
    (tmp_path / "demo-data" / "syncbot-demo.db").write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QBO_", "DATABASE_URL"))}
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "sync-log", "errors"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the demo's data is in demo-data/" in proc.stderr
    assert "DATABASE_URL=sqlite:///demo-data/syncbot-demo.db syncbot sync-log errors" in proc.stderr
    assert not (tmp_path / "syncbot.db").exists()

    env["DATABASE_URL"] = "sqlite:///syncbot.db"  # asked for explicitly: a database of one's own
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "demo-data" not in proc.stderr, proc.stdout + proc.stderr
    assert (tmp_path / "syncbot.db").exists()
