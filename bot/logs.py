"""Logs an operator can use: one line per event on stderr, as ``key=value`` text or as JSON.

syncbot's log calls name what happened as ``key=value`` pairs: ``log.info("event=job_done job_id=%s error=%s",
...)``. :class:`KeyValueFormatter` keeps the keys and quotes a value that holds a space, a quote or an ``=`` (JSON
string rules: ``error="the database is locked"``), so a line splits back into its pairs. :class:`JsonFormatter`
writes one JSON object per line with ``time``, ``level``, ``logger``, each pair as a field, and ``message`` for
the words that are not a pair (a line that names no pair is all message). Secrets stay redacted: the filters of
`bot.installations.redact_secrets` run before any formatter.

Settings: ``LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR; INFO by default for `syncbot serve` and `syncbot scheduler`,
WARNING for one-shot commands unless set) and ``LOG_FORMAT`` (text or json).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import sys
from typing import Any

#: A %-style placeholder of a log message (``%s``, ``%d``, ``%.1f``, ``%r``), or an escaped ``%%``.
_PLACEHOLDER = re.compile(r"%%|%[-#0 +]?\d*(?:\.\d+)?[sdrfigeEx]")
#: A pair of a rendered line: a key, then a JSON-quoted value or a run of non-blank characters.
_PAIR = re.compile(r'(?<!\S)([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|\S*)')
_NEEDS_QUOTES = re.compile(r'[\s"=\\]|^$')
_END = object()


def quote(value: str) -> str:
    """``value`` as it goes after ``key=``: as is, or JSON-quoted when it holds a blank, a quote, an ``=`` or a
    backslash, or is empty."""
    return json.dumps(value, ensure_ascii=False) if _NEEDS_QUOTES.search(value) else value


def render(record: logging.LogRecord) -> str:
    """The record's message with each value that follows ``key=`` quoted (:func:`quote`); other placeholders as
    %-formatting would give them. A record whose arguments do not fit its placeholders is rendered as logging
    would (``getMessage``), or as the template and its arguments when they do not fit."""
    msg, args = record.msg, record.args
    if not isinstance(msg, str) or not args or isinstance(args, dict):
        return _as_logging_would(record)
    values = iter(args)
    out: list[str] = []
    last = 0
    try:
        for m in _PLACEHOLDER.finditer(msg):
            out.append(msg[last:m.start()])
            last = m.end()
            if m.group() == "%%":
                out.append("%")
                continue
            text = m.group() % (next(values),)
            out.append(quote(text) if m.start() > 0 and msg[m.start() - 1] == "=" else text)
        if next(values, _END) is not _END:
            return _as_logging_would(record)
    except (StopIteration, TypeError, ValueError):
        return _as_logging_would(record)
    out.append(msg[last:])
    return "".join(out)


def _as_logging_would(record: logging.LogRecord) -> str:
    """``getMessage()``, or the template and its arguments side by side when they do not fit (a log call's
    mistake must not lose the line)."""
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        return f"{record.msg} {record.args!r}"



def pairs(line: str) -> tuple[dict[str, Any], str]:
    """Split a rendered line into its ``key=value`` pairs (quoted values unquoted) and the rest of its words."""
    fields: dict[str, Any] = {}

    def take(m: re.Match[str]) -> str:
        value = m.group(2)
        if value.startswith('"'):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        fields[m.group(1)] = value
        return ""

    rest = " ".join(_PAIR.sub(take, line).split())
    return fields, rest


class KeyValueFormatter(logging.Formatter):
    """``2026-12-07 17:40:01,123 INFO syncbot.jobs event=job_done job_id=7 error="a b"`` (see the module)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = render(record)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, the pairs, ``message`` for the
    other words, ``exception`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        fields, rest = pairs(render(record))
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name}
        line.update({k: v for k, v in fields.items() if k not in line})
        if rest:
            line["message"] = rest
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str, fmt: str) -> None:
    """Send every logger's records at ``level`` or above to stderr, as ``fmt`` ("text" or "json"), replacing any
    handler the root logger had. Raises ValueError for an unknown level or format."""
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
    if fmt not in ("text", "json"):
        raise ValueError(f"LOG_FORMAT must be text or json, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    # Alembic's start-up chatter (which plugins it set up) says nothing to an operator; its migrations do
    logging.getLogger("alembic.runtime.plugins").setLevel(max(number, logging.WARNING))
