"""The words of a `/sync-log` command: split like a shell (quotes hold free text), checked against the filters
and subcommands that exist, and the help headed by what was not understood."""

from __future__ import annotations

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
    """Split command text into words like a shell: blanks separate words, double or single quotes group free
    text (inside double quotes a backslash keeps a following ``"`` or ``\\``; single quotes keep everything), a
    backslash outside quotes keeps the next character. A word with any quoted part is free text (in ``quoted``).
    :func:`join_words` writes words back so that this gives them again. Raises BadWords on an unclosed quote."""
    words, quoted = Words(), set()
    word: list[str] = []
    started = was_quoted = False
    chars = iter(text or "")
    for ch in chars:
        if ch in ('"', "'"):
            started = was_quoted = True
            for inner in chars:
                if inner == ch:
                    break
                if ch == '"' and inner == "\\":
                    following = next(chars, None)
                    if following is None:
                        raise BadWords("I could not read that: No closing quotation.")
                    word.append(following if following in ('"', "\\") else inner + following)
                    continue
                word.append(inner)
            else:
                raise BadWords("I could not read that: No closing quotation.")
        elif ch == "\\":
            following = next(chars, None)
            if following is None:
                raise BadWords("I could not read that: No escaped character.")
            started = True
            word.append(following)
        elif ch.isspace():
            if started:
                words.append("".join(word))
                if was_quoted:
                    quoted.add(words[-1])
            word, started, was_quoted = [], False, False
        else:
            started = True
            word.append(ch)
    if started:
        words.append("".join(word))
        if was_quoted:
            quoted.add(words[-1])
    words.quoted = quoted
    return words


def join_words(words: Sequence[str]) -> str:
    """``words`` as command text that :func:`split_words` reads back as the same words, free text again free
    text: a word in ``words.quoted`` (when ``words`` is :class:`Words`), or with blanks, quotes or backslashes, is
    written in double quotes with ``"`` and ``\\`` escaped (a log page's Next and Previous buttons, a card's View
    log)."""
    quoted: set[str] = getattr(words, "quoted", set())
    out = []
    for word in words:
        if word in quoted or not word or any(ch.isspace() or ch in "\"'\\" for ch in word):
            out.append('"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            out.append(word)
    return " ".join(out)


def with_free_text(filters: Sequence[str], text: str) -> Words:
    """Filter words and one free text (a record's name, say), as :func:`split_words` would give them."""
    words = Words([*filters, text])
    words.quoted = {text}
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
