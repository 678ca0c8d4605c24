"""`syncbot demo` (what `make run` runs) as a user starts it: a process that prints one URL, serves the page there
until Ctrl-C, stops without a traceback, and starts again from the same database without seeding twice."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

URL = re.compile(r"http://127\.0\.0\.1:\d+/\S*")


class DemoProcess:
    """`syncbot demo --port 0` in ``cwd``, its output read line by line."""

    def __init__(self, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QBO_", "DATABASE_URL"))}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "demo", "--port", "0"], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for_url(self, timeout: float = 120.0) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.proc.kill()
                raise AssertionError("no URL printed:\n" + "".join(self.out)) from None
            self.out.append(line)
            found = URL.search(line)
            if found:
                return found.group(0)

    def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C; the exit code, the rest of stdout and stderr."""
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        while not self.lines.empty():
            self.out.append(self.lines.get())
        return self.proc.returncode, "".join(self.out), err


def _counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("accounts", "contacts", "invoices", "connections", "slack_messages")}


def _page(url: str) -> dict[str, Any]:
    with httpx.Client(timeout=10) as client:
        html = client.get(url)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        assert "/web/page.js" in html.text
        assert client.get(url.rstrip("/") + "/web/page.js").status_code == 200
        state: dict[str, Any] = client.get(url.rstrip("/") + "/_control/page").json()
        return state


def test_demo_prints_one_url_serves_the_page_and_restarts_without_reseeding(tmp_path: Path) -> None:
    first = DemoProcess(tmp_path)
    url = first.wait_for_url()
    state = _page(url)
    channel = next(c for c in state["channels"] if c["id"] == state["channel"])
    assert channel["name"] == "sync-errors"
    texts = json.dumps(state["messages"])  # the messages as posted: text and blocks
    for title in ("Duplicate record", "Record not found", "Field validation error", "Total mismatch",
                  "Rate limit exceeded"):  # the expired authorization waits behind the rate limit's pause
        assert title in texts
    assert "Resumed" not in texts  # the rate limit is open as the page loads
    code, out, err = first.interrupt()
    assert code == 0, err
    assert "Traceback" not in err and "Traceback" not in out
    assert len(set(URL.findall(out))) == 1  # one URL
    database = tmp_path / "demo-data" / "syncbot-demo.db"
    seeded = _counts(database)
    assert seeded["accounts"] == 1 and seeded["contacts"] == 4

    second = DemoProcess(tmp_path)
    again = _page(second.wait_for_url())
    assert [m["ts"] for m in again["messages"]] == [m["ts"] for m in state["messages"]]  # the same channel
    code, out, err = second.interrupt()
    assert code == 0 and "Traceback" not in err, err
    assert "going on from" in out
    assert _counts(database) == seeded  # nothing seeded twice, no message posted twice


def test_a_restart_after_ctrl_c_serves_the_page_at_the_same_url(tmp_path: Path, monkeypatch: Any) -> None:
    """The page's port still holds the last connections in TIME_WAIT after a stop; the next start takes it again
    (as uvicorn can), instead of moving the page to another URL."""
    from bot import demo as demo_mod
    from bot.config import Settings
    from sandbox.serve import free_port

    monkeypatch.setattr(demo_mod, "DEFAULT_PAGE_PORT", free_port())
    monkeypatch.setattr(demo_mod, "DEFAULT_APP_PORT", free_port())
    base = Settings(_env_file=None)  # type: ignore[call-arg]
    first = demo_mod.start_live(tmp_path, base=base, say=lambda _text: None)
    stopped = False
    try:
        assert first.url == f"http://127.0.0.1:{demo_mod.DEFAULT_PAGE_PORT}/"
        # a personal Reconnect link handed out before the restart (an open tab, a message)
        state = first.rt.states.mint(1, 1, "T0000000001", "U0000000001", "olivia")
        reconnect_link = first.rt.start_url(state)
        with httpx.Client(timeout=10) as browser:  # a page open in a browser, polling on a kept-alive connection
            assert browser.get(first.url + "_control/version").status_code == 200
            assert browser.get(first.qbo_url + "/_control/panel").status_code == 200  # the panel, in another tab
            first.stop()  # Ctrl-C: the server closes the browser's connection first (its side waits in TIME_WAIT)
            stopped = True
    finally:
        if not stopped:
            first.stop()
    second = demo_mod.start_live(tmp_path, base=base, say=lambda _text: None)
    try:
        assert second.url == first.url
        assert second.qbo_url == first.qbo_url, "an open QuickBooks panel tab still works after a restart"
        assert second.app_url == first.app_url
        to_intuit = httpx.get(reconnect_link, follow_redirects=False, timeout=10)  # and so does that link
        assert to_intuit.status_code == 302 and to_intuit.headers["location"].startswith(second.qbo_url)
        assert not second.seeded
    finally:
        second.stop()


def test_a_second_demo_on_the_same_data_says_the_first_runs_and_touches_nothing(tmp_path: Path) -> None:
    """Two `make run` at once: the second names the first's URL and exits 1, before touching demo-data/."""
    from bot import demo as demo_mod
    from bot.config import Settings

    data = tmp_path / "demo-data"
    first = demo_mod.start_live(data, port=0, base=Settings(_env_file=None),  # type: ignore[call-arg]
                                say=lambda _text: None)
    try:
        with pytest.raises(demo_mod.DemoAlreadyRunning) as refused:
            demo_mod.start_live(data, port=0, say=lambda _text: None)
        assert refused.value.url == first.url
        files, counts = sorted(p.name for p in data.iterdir()), _counts(data / "syncbot-demo.db")
        proc = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--port", "0"], cwd=tmp_path,
                              env={k: v for k, v in os.environ.items()
                                   if not k.startswith(("SLACK_", "QBO_", "DATABASE_URL"))},
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"syncbot demo is already running at {first.url}" in proc.stderr and "Traceback" not in proc.stderr
        assert sorted(p.name for p in data.iterdir()) == files and _counts(data / "syncbot-demo.db") == counts
        assert "seeded" not in proc.stdout, "nothing was touched"
        assert _page(first.url)["messages"], "the first one still serves its page"
    finally:
        first.stop()
    again = demo_mod.start_live(data, port=0, say=lambda _text: None)  # the lock went with the first one
    again.stop()


def test_the_demo_lock_goes_with_a_killed_process(tmp_path: Path) -> None:
    from bot.demo import DemoAlreadyRunning, DemoLock

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from bot.demo import DemoLock; DemoLock(Path(sys.argv[1])).announce('http://x/'); "
                               "print('locked', flush=True); time.sleep(600)", str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(DemoAlreadyRunning, match="already running at http://x/"):
            DemoLock(tmp_path)
    finally:
        holder.kill()  # SIGKILL: no clean-up runs; the OS drops the flock
        holder.communicate()
    DemoLock(tmp_path).release()


def test_the_demo_sends_support_requests_to_a_support_channel_of_its_own(tmp_path: Path) -> None:
    """Issue 15, point 7: with neither SUPPORT_CHANNEL nor SUPPORT_EMAIL set, Contact support's Send goes to the
    page's #jobsiteon-support (syncbot in it), so the flow can be watched in `make run`; a restart keeps it."""
    from bot import demo as demo_mod
    from bot.config import Settings

    for _ in range(2):  # the first start seeds; the second goes on from the saved stand-ins
        live = demo_mod.start_live(tmp_path, port=0, base=Settings(_env_file=None),  # type: ignore[call-arg]
                                   say=lambda _text: None)
        try:
            assert live.rt.settings.support_targets() == (demo_mod.DEMO_SUPPORT_CHANNEL_ID, None)
            channel = live.slack.channels[demo_mod.DEMO_SUPPORT_CHANNEL_ID]
            assert (channel.name, channel.bot_member) == ("jobsiteon-support", True)
        finally:
            live.stop()
    mine = Settings(_env_file=None, SUPPORT_EMAIL="help@jobsiteon.example")  # type: ignore[call-arg]
    live = demo_mod.start_live(tmp_path, port=0, base=mine, say=lambda _text: None)
    try:
        assert live.rt.settings.support_targets() == (None, "help@jobsiteon.example"), "a setting of one's own wins"
    finally:
        live.stop()
