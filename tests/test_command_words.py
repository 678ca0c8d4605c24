"""The words of a `/sync-log` command: split like a shell, written back (a log page's Next and Previous, a card's
View log) so that splitting again gives the same words, free text still free text."""

from __future__ import annotations

import pytest

from bot.operations.parsing import BadWords, check_filter_words, join_words, split_words, with_free_text


@pytest.mark.parametrize(("text", "words", "quoted"), [
    ('errors "Acme Corp"', ["errors", "Acme Corp"], {"Acme Corp"}),
    ("'it''s'", ["its"], {"its"}),
    ('"it\'s" since:7d', ["it's", "since:7d"], {"it's"}),
    ('"\\\\"', ["\\"], {"\\"}),                       # a backslash, searched as itself
    ('"a\\\\b" "say \\"hi\\""', ["a\\b", 'say "hi"'], {"a\\b", 'say "hi"'}),
    ('"C:\\Jobs"', ["C:\\Jobs"], {"C:\\Jobs"}),       # a backslash before another letter stays
    ("Acme\\ Corp", ["Acme Corp"], set()),
    ('entity:contact ""', ["entity:contact", ""], {""}),
    ("  errors   open ", ["errors", "open"], set()),
    ('"😀 Müller"', ["😀 Müller"], {"😀 Müller"}),
])
def test_split_words_reads_quotes_and_escapes_like_a_shell(text: str, words: list[str], quoted: set[str]) -> None:
    got = split_words(text)
    assert list(got) == words and got.quoted == quoted


@pytest.mark.parametrize("text", ['"Acme', "'Acme", '"Acme\\', "errors \\"])
def test_an_unclosed_quote_or_a_trailing_escape_is_refused(text: str) -> None:
    with pytest.raises(BadWords, match="I could not read that"):
        split_words(text)


@pytest.mark.parametrize("text", [
    'errors "Acme Corp"', 'entity:contact "Bob \\"Q\\" Smith"', '"\\\\"', '"a\\\\b"', "'it''s'", '"x"',
    'kind:duplicate since:7d "ab"', '"%_" open', '""',
])
def test_words_written_back_split_to_the_same_words(text: str) -> None:
    words = split_words(text)
    again = split_words(join_words(words))
    assert list(again) == list(words) and again.quoted == words.quoted
    check_filter_words(again)  # free text is still free text: no "I don't know"


@pytest.mark.parametrize("label", ['Bob "Q" Smith', "Acme", "O'Brien & Sons", "C:\\Jobs", "", "two  blanks"])
def test_a_records_name_as_free_text_round_trips(label: str) -> None:
    words = split_words(join_words(with_free_text(["entity:contact"], label)))
    assert list(words) == ["entity:contact", label] and label in words.quoted
    check_filter_words(words)
