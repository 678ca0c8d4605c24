"""Logs an operator can use (`bot.logs`): LOG_LEVEL and LOG_FORMAT on a real `syncbot` process, values quoted so
a line splits back into its pairs, JSON lines for a log pipeline, and secrets still redacted."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.installations import redact_slack_logs
from bot.logs import JsonFormatter, KeyValueFormatter, pairs, render

ROOT = Path(__file__).resolve().parents[1]


def _record(msg: str, *args: object, name: str = "syncbot.jobs") -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args or None, None)


def test_values_with_blanks_quotes_or_equals_are_quoted_and_split_back() -> None:
    record = _record("event=job_failed job_id=%s error=%s note=%s seconds=%.1f", 7,
                     'the database said "locked" a=b', "", 2.345)
    line = render(record)
    assert line == r'event=job_failed job_id=7 error="the database said \"locked\" a=b" note="" seconds=2.3'
    fields, rest = pairs(line)
    assert fields == {"event": "job_failed", "job_id": "7", "error": 'the database said "locked" a=b',
                      "note": "", "seconds": "2.3"}
    assert rest == ""
    # a placeholder that is not a pair's value is left as %-formatting gives it; words that are not pairs stay
    fields, rest = pairs(render(_record("event=notifier_lease_lost: the pass stops after %s", "a while")))
    assert fields == {"event": "notifier_lease_lost:"} and rest == "the pass stops after a while"
    # arguments that do not fit the placeholders: rendered as logging would, never raised
    assert render(_record("event=x a=%s", 1, 2)) == "event=x a=%s (1, 2)"


def test_json_lines_carry_the_pairs_and_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("syncbot.jobs", logging.ERROR, __file__, 1, "event=job_failed error=%s",
                                   ("a b",), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["event"], line["error"]) == ("ERROR", "syncbot.jobs",
                                                                            "job_failed", "a b")
    assert "ValueError: boom" in line["exception"] and line["time"].endswith("+00:00")
    text = KeyValueFormatter().format(_record("event=a error=%s", "x y"))
    assert text.endswith(' INFO syncbot.jobs event=a error="x y"')


def test_a_slack_token_in_a_log_line_stays_redacted_in_json() -> None:
    redact_slack_logs()
    logger = logging.getLogger("slack_bolt.App")
    record = logger.makeRecord(logger.name, logging.DEBUG, __file__, 1, "answer: %s",
                               ('{"access_token": "xoxb-1234-5678-secret"}',), None)
    for f in logger.filters:
        f.filter(record)
    out = JsonFormatter().format(record)
    assert "xoxb-1234-5678-secret" not in out and "(redacted)" in out


def _syncbot(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("LOG_", "DATABASE_URL"))}
    environ.update({"DATABASE_URL": f"sqlite:///{tmp_path}/logs.db", **env})
    return subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args], cwd=ROOT,
                          env=environ, capture_output=True, text=True, timeout=120)


def test_log_level_and_format_on_a_real_process(tmp_path: Path) -> None:
    # a long-running command logs at INFO by default: an operator sees what it does (here: the migrations)
    quiet = _syncbot(tmp_path, "scheduler", "--run", "retention", LOG_FORMAT="json")
    assert quiet.returncode == 0, quiet.stderr
    lines = [json.loads(line) for line in quiet.stderr.splitlines()]
    assert any(line["logger"] == "alembic.runtime.migration" and line["level"] == "INFO" for line in lines)
    assert not any(line["logger"] == "alembic.runtime.plugins" for line in lines)
    # a one-shot command writes only warnings and errors unless LOG_LEVEL says otherwise
    one_shot = _syncbot(tmp_path, "sync-log").stderr
    assert "No account yet" in one_shot and " INFO " not in one_shot
    # (on a database not migrated yet: one at the newest revision skips Alembic, so it has nothing to say)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert " INFO alembic.runtime.migration " in _syncbot(fresh, "sync-log", LOG_LEVEL="info").stderr
    assert " INFO alembic" not in _syncbot(fresh, "sync-log", LOG_LEVEL="info").stderr  # now up to date
    bad = _syncbot(tmp_path, "sync-log", LOG_LEVEL="loud")
    assert bad.returncode == 2 and "bad setting LOG_LEVEL" in bad.stderr
    bad = _syncbot(tmp_path, "sync-log", LOG_FORMAT="xml")
    assert bad.returncode == 2 and "bad setting LOG_FORMAT" in bad.stderr


@pytest.mark.parametrize("value", ["INFO", "info", " Info "])
def test_log_level_is_read_in_any_case(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import Settings

    monkeypatch.setenv("LOG_LEVEL", value)
    assert Settings().log_level == "INFO"
