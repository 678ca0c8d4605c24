"""The words of a `/sync-log` command: split like a shell (quotes hold free text), checked against the filters
and subcommands that exist, and the help headed by what was not understood."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import Any

from bot import blocks
from bot.blocks.kit import section

SUBCOMMANDS = ("help", "retry-all", "sync-now", "resume", "status", "connect", "reconnect", "channel", "retry",
               "admins", "reading", "summary")
BARE_FILTERS = frozenset({"errors", "error", "warnings", "warning", "open", "contact", "contacts", "customer",
                          "customers", "item", "items", "invoice", "invoices", "payment", "payments"})
FILTER_KEYS = ("entity", "kind", "status", "direction", "since", "until", "connection")


class BadWords(ValueError):
    """Words of a command that are not understood (the help is shown with this message)."""


class Words(list[str]):
    """Words of a command; ``quoted`` holds the ones that were typed in quotes (free text)."""

    quoted: set[str]


def split_words(text: str) -> Words:
    """Split command text like a shell (quotes group free text). Raises BadWords on unbalanced quotes."""
    lexer = shlex.shlex(text or "", posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words, quoted = Words(), set()
    try:
        for token in lexer:
            words.append(token)
    except ValueError as exc:
        raise BadWords(f"I could not read that: {exc}.") from None
    for raw in re.findall(r'"([^"]*)"|\'([^\']*)\'', text or ""):
        quoted.add(raw[0] or raw[1])
    words.quoted = quoted
    return words


def check_filter_words(words: Sequence[str]) -> None:
    """Refuse bare words that are neither filters nor quoted free text (unknown words get the help)."""
    quoted: set[str] = getattr(words, "quoted", set())
    for i, word in enumerate(words):
        low = word.lower()
        if low in BARE_FILTERS or " " in word or word in quoted or (
                ":" in low and low.split(":", 1)[0] in FILTER_KEYS):
            continue
        if i == 0:  # most likely a command mistyped: name the ones that exist
            raise BadWords(f"I don't know `{word}`. The commands are {', '.join(SUBCOMMANDS)}; anything else "
                           "filters the log (errors, open, entity:invoice, since:7d...), with free text in quotes, "
                           "e.g. \"Acme Corp\".")
        raise BadWords(f"I don't know `{word}`. Put free text in quotes, e.g. \"Acme Corp\".")


def help_with(note: str | None = None) -> dict[str, Any]:
    """The help, headed by ``note``."""
    message = blocks.help_message()
    if note:
        message = {"text": f"{blocks.escape_mrkdwn(note)}\n{message['text']}"[:3000],
                   "blocks": [section(blocks.escape_mrkdwn(note)), *message["blocks"]][:50]}
    return message
