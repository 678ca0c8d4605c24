"""The sync log queries (sync/log.py) against a real database: filter words, filters, keyset pages, counts and the
weekly summary. Every entry is written through the ORM with a fixed UTC ``created_at``; a second account's
entries sit beside the first's everywhere so that isolation is checked by every query, not only one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sync import db
from sync.diagnosis import Kind
from sync.log import (
    MAX_PAGE,
    FilterError,
    LogFilter,
    Page,
    counts,
    entry_as_dict,
    page,
    parse_filter,
)
from sync.models import Account, Connection, Direction, Entity, Status, SyncLogEntry
from sync.summary import weekly_summary

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday morning
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


# ------------------------------------------------------------------------------------------------- fixtures


@dataclass
class World:
    """Account A (two connections) and account B (one), on the test database."""

    sessions: sessionmaker[Session]
    a: int
    a_qbo: int
    a_other: int
    b: int
    b_qbo: int

    def add(self, *entries: SyncLogEntry) -> list[int]:
        """Insert ``entries`` in order (ids grow in that order) and return their ids."""
        with self.sessions() as session, session.begin():
            session.add_all(entries)
            session.flush()
            return [e.id for e in entries]


def entry(account_id: int, connection_id: int | None, at: dt.datetime, *, status: str = Status.ERROR.value,
          entity: str = Entity.INVOICE.value, direction: str = Direction.PUSH.value, kind: str | None = None,
          label: str | None = None, details: str | None = None, record_id: int | None = None,
          **extra: Any) -> SyncLogEntry:
    if kind is None and status in (Status.ERROR, Status.WARNING):
        kind = Kind.UNKNOWN.value
    return SyncLogEntry(account_id=account_id, connection_id=connection_id, created_at=at, status=status,
                        entity=entity, direction=direction, kind=kind, record_label=label, details=details,
                        record_id=record_id, **extra)


@pytest.fixture()
def sessions(clean_db: str) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(clean_db)
    try:
        yield db.make_sessionmaker(engine)
    finally:
        engine.dispose()


@pytest.fixture()
def world(sessions: sessionmaker[Session]) -> World:
    with sessions() as session, session.begin():
        a, b = Account(name="Acme Builders"), Account(name="Other Co")
        session.add_all([a, b])
        session.flush()
        a_qbo = Connection(account_id=a.id, provider="quickbooks", realm_id="111", status="connected")
        a_other = Connection(account_id=a.id, provider="xero", realm_id="x-1", status="connected")
        b_qbo = Connection(account_id=b.id, provider="quickbooks", realm_id="222", status="connected")
        session.add_all([a_qbo, a_other, b_qbo])
        session.flush()
        return World(sessions, a.id, a_qbo.id, a_other.id, b.id, b_qbo.id)


def ids_of(entries: Iterable[SyncLogEntry]) -> list[int]:
    return [e.id for e in entries]


# ----------------------------------------------------------------------------------------------- parse_filter


def test_no_words_is_every_entry_of_the_base() -> None:
    assert parse_filter("", now=NOW) == LogFilter()
    assert parse_filter([], now=NOW, account_id=4) == LogFilter(account_id=4)
    assert parse_filter("   ", now=NOW).describe() == "all entries"


# `errors` and `open` are the open errors (sync.log's one definition, both severities), `warnings` those of warning
# severity; `status:` lists every attempt with that stored status.
@pytest.mark.parametrize(("words", "statuses", "open_only", "severities"), [
    ("errors", (), True, ("error", "warning")),
    ("error", (), True, ("error", "warning")),
    ("ERRORS", (), True, ("error", "warning")),
    ("warnings", (), True, ("warning",)),
    ("Warning", (), True, ("warning",)),
    ("errors warnings", (), True, ("error", "warning")),
    ("open", (), True, ()),
    ("OPEN errors", (), True, ("error", "warning")),
    ("status:synced", ("synced",), False, ()),
    ("status:INFO", ("info",), False, ()),
    ("status:error status:warning", ("error", "warning"), False, ()),
])
def test_status_words(words: str, statuses: tuple[str, ...], open_only: bool, severities: tuple[str, ...]) -> None:
    f = parse_filter(words, now=NOW)
    assert (f.statuses, f.open_only, f.severities) == (statuses, open_only, severities)
    assert f.text is None


@pytest.mark.parametrize(("word", "entity"), [
    ("entity:contact", "contact"), ("entity:contacts", "contact"), ("entity:customer", "contact"),
    ("entity:Customers", "contact"), ("entity:item", "item"), ("entity:ITEMS", "item"),
    ("entity:invoice", "invoice"), ("entity:invoices", "invoice"), ("Entity:Invoice", "invoice"),
    ("entity:payment", "payment"), ("entity:payments", "payment"),
])
def test_entity_and_its_aliases(word: str, entity: str) -> None:
    assert parse_filter(word, now=NOW).entities == (entity,)


def test_several_entities_kinds_and_every_kind_accepted() -> None:
    f = parse_filter("entity:invoice entity:customers kind:duplicate kind:TOTAL_MISMATCH", now=NOW)
    assert f.entities == ("invoice", "contact")
    assert f.kinds == ("duplicate", "total_mismatch")
    for kind in Kind:
        assert parse_filter(f"kind:{kind.value}", now=NOW).kinds == (kind.value,)


@pytest.mark.parametrize(("word", "direction"), [
    ("direction:push", "push"), ("direction:pull", "pull"), ("direction:PULL", "pull"),
    ("direction:push direction:pull", "pull"),  # the last one wins
])
def test_direction(word: str, direction: str) -> None:
    assert parse_filter(word, now=NOW).direction == direction


@pytest.mark.parametrize(("word", "delta"), [
    ("7d", dt.timedelta(days=7)), ("24h", dt.timedelta(hours=24)), ("30m", dt.timedelta(minutes=30)),
    ("2w", dt.timedelta(weeks=2)), ("0d", dt.timedelta(0)), ("7D", dt.timedelta(days=7)),
    ("365d", dt.timedelta(days=365)),
])
def test_since_and_until_durations_count_back_from_now(word: str, delta: dt.timedelta) -> None:
    f = parse_filter(f"since:{word} until:{word}", now=NOW)
    assert f.since == f.until == NOW - delta
    assert f.since is not None and f.since.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-01", dt.datetime(2026, 11, 1, tzinfo=UTC)),                    # a date is midnight UTC
    ("20261101", dt.datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T10:30", dt.datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),      # naive times are UTC
    ("2026-11-01T10:30:15", dt.datetime(2026, 11, 1, 10, 30, 15, tzinfo=UTC)),
    ("2026-11-01T10:30Z", dt.datetime(2026, 11, 1, 10, 30, tzinfo=UTC)),
    ("2026-11-01T10:30+02:00", dt.datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),  # an offset is converted
    ("2026-11-01T00:30-06:00", dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
])
def test_since_and_until_iso_times_are_utc(value: str, expected: dt.datetime) -> None:
    for key in ("since", "until"):
        got = getattr(parse_filter(f"{key}:{value}", now=NOW), key)
        assert got == expected
        assert got.tzinfo is not None and got.utcoffset() == dt.timedelta(0), got  # describe() says "UTC"
    assert parse_filter(f"since:{value}", now=NOW).describe() == f"since {expected:%Y-%m-%d %H:%M} UTC"


def test_connection_and_base_are_kept() -> None:
    f = parse_filter("connection:3 errors", now=NOW, account_id=9)
    assert (f.account_id, f.connection_id, f.open_only) == (9, 3, True)
    assert parse_filter("connection:007", now=NOW).connection_id == 7


def test_free_text_keeps_case_and_unknown_keys() -> None:
    f = parse_filter("Smith Roofing errors", now=NOW)
    assert (f.text, f.open_only) == ("Smith Roofing", True)
    # a colon in a word that is not a filter key is text (times, codes, paths)
    assert parse_filter("ERR:6240 10:30 C:\\jobs", now=NOW).text == "ERR:6240 10:30 C:\\jobs"
    assert parse_filter("x" * 300, now=NOW).text == "x" * 200
    assert parse_filter(["Smith", "Roofing"], now=NOW) == parse_filter("Smith  Roofing", now=NOW)


def test_the_documented_example_and_its_description() -> None:
    f = parse_filter("errors entity:invoice kind:duplicate since:7d until:2026-11-01 direction:pull "
                     "status:synced connection:3 Smith", now=NOW, account_id=1)
    assert f == LogFilter(account_id=1, connection_id=3, statuses=("synced",), kinds=("duplicate",),
                          entities=("invoice",), direction="pull", since=NOW - 7 * D,
                          until=dt.datetime(2026, 11, 1, tzinfo=UTC), text="Smith", open_only=True,
                          severities=("error", "warning"))
    assert f.describe() == ('open error · synced · duplicate · invoice · pull · since 2026-11-16 09:00 UTC · '
                            'until 2026-11-01 00:00 UTC · "Smith"')
    assert parse_filter("open", now=NOW).describe() == "open error"
    assert parse_filter("open", now=NOW).describe(2) == "open errors"
    assert parse_filter("warnings", now=NOW).describe(2) == "open warnings"


@pytest.mark.parametrize(("count", "heading"), [(None, "open error · duplicate · invoice · item"),
                                                (1, "open error · duplicate · invoice · item"),
                                                (0, "open errors · duplicate · invoices · items"),
                                                (6, "open errors · duplicate · invoices · items")])
def test_describe_takes_the_number_of_the_count(count: int | None, heading: str) -> None:
    f = parse_filter("open errors warnings kind:duplicate invoices items", now=NOW)
    assert f.describe(count) == heading


@pytest.mark.parametrize(("words", "message"), [
    ("entity:vendor", "unknown entity 'vendor': use contact, item, invoice or payment"),
    ("entity:", "'entity:' has no value"),
    ("kind:", "'kind:' has no value"),
    ("since:", "'since:' has no value"),
    ("connection:", "'connection:' has no value"),
    ("kind:oops", "unknown kind 'oops': use one of auth_expired, duplicate"),
    ("status:pending", "unknown status 'pending': use error, warning, info or synced"),
    ("status:done", "unknown status 'done': use error, warning, info or synced"),
    ("direction:sideways", "unknown direction 'sideways': use push or pull"),
    ("since:yesterday", "'yesterday' is not a time: use 30m, 24h, 7d, 2w or a date like 2026-11-01"),
    ("since:7y", "'7y' is not a time"),
    ("since:-7d", "'-7d' is not a time"),
    ("since:7", "'7' is not a time"),
    ("since:d", "'d' is not a time"),
    ("until:2026-02-30", "'2026-02-30' is not a time"),
    ("until:2026-11-01T25:00", "'2026-11-01T25:00' is not a time"),
    ("since:999999999d", "'999999999d' is out of range"),           # was OverflowError
    ("since:100000000w", "'100000000w' is out of range"),           # was OverflowError
    ("since:99999999999999999999d", "is not a time"),               # was OverflowError
    ("since:0001-01-01T00:00+01:00", "is out of range"),           # before year 1 in UTC
    ("connection:abc", "connection must be a connection number like 3, not 'abc'"),
    ("connection:-1", "not '-1'"),
    ("connection:1.5", "not '1.5'"),
    ("connection:²", "not '²'"),                                     # isdigit() but not int(): was ValueError
    ("connection:99999999999999999999", "not '99999999999999999999'"),  # would not bind on SQLite
    ("errors entity:invoice kind:nope", "unknown kind 'nope'"),      # a bad word anywhere fails the whole line
])
def test_every_bad_word_raises_filter_error_naming_it(words: str, message: str) -> None:
    with pytest.raises(FilterError) as err:
        parse_filter(words, now=NOW)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


# ----------------------------------------------------------------------------------------------- filters


@pytest.fixture()
def mixed(world: World) -> dict[str, int]:
    """Account A's entries named s1..s8 (the label is the name), and account B's twins at the same times."""
    w = world
    specs: list[tuple[str, dict[str, Any]]] = [
        ("s8", dict(at=NOW - 10 * D, conn=w.a_other, entity="contact", kind="not_found")),
        ("s6", dict(at=NOW - 7 * D, entity="contact", status="info")),
        ("s5", dict(at=NOW - 6 * D, entity="payment", direction="pull", status="synced")),
        ("s4", dict(at=NOW - 5 * D, conn=w.a_other, entity="item", kind="validation", superseded=True)),
        ("s3", dict(at=NOW - 3 * D, entity="contact", direction="pull", status="warning",
                    kind="total_mismatch")),
        ("s2", dict(at=NOW - 2 * D, kind="duplicate", resolved=True)),
        ("s1", dict(at=NOW - H, kind="duplicate")),
        ("s7", dict(at=NOW - H / 2, status="pending", kind=None)),
    ]
    names: dict[str, int] = {}
    for name, spec in specs:
        at = spec.pop("at")
        conn = spec.pop("conn", w.a_qbo)
        resolved = spec.pop("resolved", False)
        superseded = spec.pop("superseded", False)
        spec.setdefault("record_id", 1000 + len(names))  # each about a record (a connection's own: none)
        twin = entry(w.b, w.b_qbo, at, label=name, **spec)
        mine = entry(w.a, conn, at, label=name, **spec)
        if resolved:
            mine.resolved_at = twin.resolved_at = at + H
        b_id, a_id = w.add(twin, mine)
        if superseded:  # handed to a newer attempt (the twin stands in for it; ids only)
            with w.sessions() as session, session.begin():
                session.get(SyncLogEntry, a_id).superseded_by_id = b_id  # type: ignore[union-attr]
        names[name] = a_id
    return names


def test_errors_list_a_connections_entry_only_while_it_is_unresolved(world: World) -> None:
    """A connection's own entries (expired token, rate limit: no record) are never superseded; `errors` shows
    the one still open, not the ones a Reconnect resolved, beside the records' errors."""
    w = world
    old = entry(w.a, w.a_qbo, NOW - 2 * H, kind="auth_expired", label="reconnected", entity="connection")
    old.resolved_at = NOW - H
    current = entry(w.a, w.a_qbo, NOW - H / 2, kind="auth_expired", label="expired", entity="connection")
    record = entry(w.a, w.a_qbo, NOW - H / 4, kind="duplicate", label="Acme", record_id=7)
    names = dict(zip(("reconnected", "expired", "Acme"), w.add(old, current, record), strict=True))
    assert shown(world, parse_filter("errors", account_id=w.a), names) == {"expired", "Acme"}
    assert shown(world, parse_filter("status:error", account_id=w.a), names) == {"reconnected", "expired", "Acme"}


def shown(world: World, f: LogFilter, names: dict[str, int]) -> set[str]:
    """Names of the entries a (large) page shows for ``f``; fails on any entry not of account A's set."""
    by_id = {v: k for k, v in names.items()}
    with world.sessions() as session:
        result = page(session, f, size=MAX_PAGE)
    assert result.next_before is None and result.prev_after is None
    assert ids_of(result.entries) == sorted(ids_of(result.entries), reverse=True)
    return {by_id[e.id] for e in result.entries}


@pytest.mark.parametrize(("words", "expected"), [
    ("", "s1 s2 s3 s4 s5 s6 s8"),                 # s7 is pending: hidden
    ("errors", "s1 s3 s8"),                       # the open errors: s2 resolved, s4 superseded, s5/s6 not failures
    ("warnings", "s3"),                           # total_mismatch is a warning
    ("errors warnings", "s1 s3 s8"),
    ("open", "s1 s3 s8"),
    ("open errors", "s1 s3 s8"),
    ("status:synced", "s5"),
    ("status:info", "s6"),
    ("entity:invoices", "s1 s2"),                 # not the pending s7
    ("entity:customer", "s3 s6 s8"),
    ("entity:item entity:payment", "s4 s5"),
    ("kind:duplicate", "s1 s2"),
    ("kind:validation kind:not_found", "s4 s8"),
    ("kind:conflict", ""),
    ("direction:pull", "s3 s5"),
    ("direction:push errors", "s1 s8"),
    ("status:error", "s1 s2 s4 s8"),              # status: lists every attempt, superseded too
    ("since:2d", "s1 s2"),                        # since is inclusive (s2 is exactly 2 days old)
    ("until:2d", "s3 s4 s5 s6 s8"),               # until is exclusive
    ("since:7d until:2d", "s3 s4 s5 s6"),
    ("since:1w", "s1 s2 s3 s4 s5 s6"),
    ("since:90m", "s1"),
    ("since:2h", "s1"),
    ("since:2026-11-20", "s1 s2 s3"),             # NOW - 3 days is 2026-11-20 09:00
    ("since:2026-11-20T09:00", "s1 s2 s3"),
    ("since:2026-11-20T11:00+02:00", "s1 s2 s3"),  # the same instant
    ("since:2026-11-20T09:00:01", "s1 s2"),
    ("until:2026-11-13T09:00", ""),               # s8 is exactly then: excluded
    ("until:2026-11-13T09:00:01", "s8"),
    ("s3", "s3"),                                 # free text
    ("S3", "s3"),
    ("open entity:contact direction:pull", "s3"),
])
def test_filter_words_select_the_right_entries_of_the_account(world: World, mixed: dict[str, int],
                                                              words: str, expected: str) -> None:
    f = parse_filter(words, now=NOW, account_id=world.a)
    assert shown(world, f, mixed) == set(expected.split())


def test_connection_filter_and_account_isolation(world: World, mixed: dict[str, int]) -> None:
    assert shown(world, parse_filter(f"connection:{world.a_other}", now=NOW, account_id=world.a),
                 mixed) == {"s4", "s8"}
    assert shown(world, parse_filter(f"connection:{world.a_qbo}", now=NOW, account_id=world.a),
                 mixed) == {"s1", "s2", "s3", "s5", "s6"}
    # B's connection asked from A's account: nothing, never B's entries
    assert shown(world, parse_filter(f"connection:{world.b_qbo}", now=NOW, account_id=world.a), mixed) == set()
    # B sees its own twins only
    with world.sessions() as session:
        b_page = page(session, LogFilter(account_id=world.b), size=MAX_PAGE)
        a_ids = set(mixed.values())
        assert len(b_page.entries) == 7 and not a_ids & set(ids_of(b_page.entries))
        assert all(e.account_id == world.b for e in b_page.entries)
        # with no account every account's entries are there (the filter is what isolates)
        assert len(page(session, LogFilter(), size=MAX_PAGE).entries) == 14


def test_pending_entries_hidden_unless_asked_for(world: World, mixed: dict[str, int]) -> None:
    assert "s7" not in shown(world, LogFilter(account_id=world.a), mixed)
    assert "s7" in shown(world, LogFilter(account_id=world.a, include_pending=True), mixed)
    assert shown(world, LogFilter(account_id=world.a, statuses=("pending",)), mixed) == {"s7"}
    with world.sessions() as session:
        assert counts(session, LogFilter(account_id=world.a), "status").get("pending") is None
        assert counts(session, LogFilter(account_id=world.a, include_pending=True), "status")["pending"] == 1


def test_text_search_is_literal_and_case_insensitive(world: World) -> None:
    w = world
    labels = {
        "percent": ("100% Done Roofing", None), "thousand": ("1000 Done Roofing", None),
        "underscore": ("Job_1 Framing", None), "x1": ("JobX1 Framing", None),
        "backslash": ("Path C:\\Jobs\\A", None), "colon": ("Path C:Jobs", None),
        "details": (None, "Stale Object Error: 50% deposit was changed"),
        "accents": ("Café ÉTÉ", "Ça marche"),
    }
    names = dict(zip(labels, w.add(*[entry(w.a, w.a_qbo, NOW - i * H, label=label, details=details)
                                     for i, (label, details) in enumerate(labels.values())]), strict=True))
    # account B has the same words everywhere: never found from A
    w.add(*[entry(w.b, w.b_qbo, NOW - i * H, label=label, details=details)
            for i, (label, details) in enumerate(labels.values())])
    cases = {
        "100%": {"percent"}, "%": {"percent", "details"}, "0%": {"percent", "details"},
        "_": {"underscore"}, "job_1": {"underscore"}, "JOB": {"underscore", "x1", "backslash", "colon"},
        "\\": {"backslash"}, "c:\\jobs": {"backslash"}, "C:": {"backslash", "colon"},
        "done roofing": {"percent", "thousand"}, "50% DEPOSIT": {"details"}, "stale object": {"details"},
        "café": {"accents"}, "été": {"accents"}, "ÉTÉ": {"accents"}, "ça": {"accents"},
        "nothing like this": set(),
    }
    for words, expected in cases.items():
        assert shown(w, parse_filter(words, now=NOW, account_id=w.a), names) == expected, words


def test_short_text_searches_only_the_newest_entries_and_says_so(world: World) -> None:
    """Text under three characters has no trigram to narrow it: it searches the newest ``short_text_window``
    entries of the account (B's entries and A's older ones left out) and the page says so; longer text, or a log
    smaller than the window, searches everything and says nothing."""
    from bot.blocks import log_page
    w = world
    old = w.add(entry(w.a, w.a_qbo, NOW - 10 * D, label="Zq Roofing (old)"))
    w.add(*[entry(w.b, w.b_qbo, NOW - 9 * D + i * H, label=f"Zq B {i}") for i in range(5)])
    new = w.add(*[entry(w.a, w.a_qbo, NOW - 5 * D + i * H, label=("Zq Framing" if i % 2 else "Other"))
                  for i in range(6)])
    with w.sessions() as session:
        near = page(session, parse_filter("zq", now=NOW, account_id=w.a), short_text_window=6)
        assert ids_of(near.entries) == new[1::2][::-1] and near.searched_newest == 6
        wide = page(session, parse_filter("zq", now=NOW, account_id=w.a), short_text_window=7)
        assert ids_of(wide.entries) == [*new[1::2][::-1], old[0]] and wide.searched_newest is None
        longer = page(session, parse_filter("zq r", now=NOW, account_id=w.a), short_text_window=6)
        assert ids_of(longer.entries) == old and longer.searched_newest is None
        nothing = page(session, parse_filter("qz", now=NOW, account_id=w.a), short_text_window=2)
        assert nothing.entries == [] and nothing.searched_newest == 2
        said = " ".join(str(b) for b in log_page(near, filter_text="zq")["blocks"])
        assert "searches only the newest 6 entries" in said and "type 3 or more" in said
        empty = " ".join(str(b) for b in log_page(nothing, filter_text="qz")["blocks"])
        assert "No entries match" in empty and "searches only the newest 2 entries" in empty
        assert "searches only" not in " ".join(str(b) for b in log_page(wide, filter_text="zq")["blocks"])


# ------------------------------------------------------------------------------------------------ pages


def fill(world: World, n: int, start: dt.datetime = NOW - 30 * D) -> list[int]:
    """``n`` visible entries of account A, oldest first, with B's entries and A's pending ones between them."""
    objs: list[SyncLogEntry] = []
    keep: list[int] = []
    for i in range(n):
        at = start + i * dt.timedelta(minutes=5)
        keep.append(len(objs))
        objs.append(entry(world.a, world.a_qbo, at, status=("error", "synced", "warning")[i % 3],
                          label=f"record {i}"))
        if i % 4 == 0:
            objs.append(entry(world.b, world.b_qbo, at, label=f"record {i}"))
            objs.append(entry(world.a, world.a_qbo, at, status="pending", kind=None, label=f"record {i}"))
    ids = world.add(*objs)
    return [ids[k] for k in keep]


def walk_next(session: Session, f: LogFilter, size: int) -> list[Page]:
    pages = [page(session, f, size=size)]
    while pages[-1].next_before is not None:
        pages.append(page(session, f, before=pages[-1].next_before, size=size))
        assert len(pages) < 100
    return pages


def walk_prev(session: Session, f: LogFilter, start: Page, size: int) -> list[Page]:
    pages = [start]
    while pages[-1].prev_after is not None:
        pages.append(page(session, f, after=pages[-1].prev_after, size=size))
        assert len(pages) < 100
    return pages


def test_keyset_pages_walk_every_entry_once_newest_first_and_back(world: World) -> None:
    ids = fill(world, 57)
    f = LogFilter(account_id=world.a)
    with world.sessions() as session:
        forward = walk_next(session, f, 10)
        assert [len(p.entries) for p in forward] == [10, 10, 10, 10, 10, 7]
        walked = [i for p in forward for i in ids_of(p.entries)]
        assert walked == sorted(ids, reverse=True)              # every entry exactly once, newest first
        assert forward[0].prev_after is None                    # the newest page has no previous one
        assert forward[-1].next_before is None                  # the last page has no next one
        for p in forward:
            assert p.filter == f
            assert all(e.account_id == world.a and e.status != "pending" for e in p.entries)
        for p in forward[1:]:
            assert p.prev_after == p.entries[0].id
        for p in forward[:-1]:
            assert p.next_before == p.entries[-1].id

        back = walk_prev(session, f, forward[-1], 10)
        assert [ids_of(p.entries) for p in back] == [ids_of(p.entries) for p in reversed(forward)]
        assert back[-1].prev_after is None and back[-1].next_before == forward[0].next_before
        assert [(p.next_before, p.prev_after) for p in back] == [(p.next_before, p.prev_after)
                                                                 for p in reversed(forward)]


def test_pages_of_a_filter_and_odd_sizes(world: World) -> None:
    ids = fill(world, 57)
    errors = [i for n, i in enumerate(ids) if n % 3 == 0]  # 19 errors
    f = LogFilter(account_id=world.a, statuses=("error",))
    with world.sessions() as session:
        forward = walk_next(session, f, 7)
        assert [len(p.entries) for p in forward] == [7, 7, 5]
        assert [i for p in forward for i in ids_of(p.entries)] == errors[::-1]
        back = walk_prev(session, f, forward[-1], 7)
        assert [ids_of(p.entries) for p in back] == [ids_of(p.entries) for p in reversed(forward)]
        # size 1 walks one entry at a time
        ones = walk_next(session, f, 1)
        assert [ids_of(p.entries) for p in ones] == [[i] for i in errors[::-1]]
        # exactly one full page: no next cursor
        whole = page(session, f, size=19)
        assert ids_of(whole.entries) == errors[::-1] and whole.next_before is None and whole.prev_after is None


def test_entries_written_meanwhile_do_not_shift_pages(world: World) -> None:
    fill(world, 57)
    f = LogFilter(account_id=world.a)
    with world.sessions() as session:
        before = [ids_of(p.entries) for p in walk_next(session, f, 10)]
        first, second = page(session, f, size=10), page(session, f, before=page(session, f, size=10).next_before)
    newer = world.add(*[entry(world.a, world.a_qbo, NOW + i * H, label=f"new {i}") for i in range(5)])
    with world.sessions() as session:
        # the next pages from the old cursors are the same pages
        again = page(session, f, before=first.next_before, size=10)
        assert ids_of(again.entries) == ids_of(second.entries)
        rest = [again]
        while rest[-1].next_before is not None:
            rest.append(page(session, f, before=rest[-1].next_before, size=10))
        assert [ids_of(p.entries) for p in rest] == before[1:]
        # walking back from the second page gives the old first page, which now has a newer page above it
        top = page(session, f, after=again.prev_after, size=10)
        assert ids_of(top.entries) == before[0]
        assert top.prev_after == before[0][0]
        newest = page(session, f, after=top.prev_after, size=10)
        assert ids_of(newest.entries) == newer[::-1]
        assert newest.prev_after is None and newest.next_before == newer[0]
        # a fresh first page starts with the new entries
        assert ids_of(page(session, f, size=10).entries) == newer[::-1] + before[0][:5]


def test_page_ends_sizes_and_odd_cursors(world: World) -> None:
    f = LogFilter(account_id=world.a)
    with world.sessions() as session:
        empty = page(session, f)
        assert (empty.entries, empty.next_before, empty.prev_after) == ([], None, None)
    ids = fill(world, 105)
    with world.sessions() as session:
        assert ids_of(page(session, f, size=0).entries) == [ids[-1]]      # at least one
        assert ids_of(page(session, f, size=-5).entries) == [ids[-1]]
        capped = page(session, f, size=1000)                              # at most MAX_PAGE
        assert ids_of(capped.entries) == ids[::-1][:MAX_PAGE] and capped.next_before == ids[-MAX_PAGE]
        assert page(session, f).next_before == ids[-10]                   # 10 by default
        # past the ends
        oldest = page(session, f, before=ids[0], size=10)
        assert (oldest.entries, oldest.next_before, oldest.prev_after) == ([], None, None)
        beyond = page(session, f, after=ids[-1], size=10)
        assert (beyond.entries, beyond.next_before, beyond.prev_after) == ([], None, None)
        # cursors larger than any id a BIGINT holds (hand-edited --before, Slack button values)
        assert ids_of(page(session, f, before=10**20, size=3).entries) == ids[::-1][:3]
        assert page(session, f, after=10**20).entries == []
        assert ids_of(page(session, f, after=-10**20, size=3).entries) == ids[2::-1]
        # a cursor that is not one of the filter's own entries still pages by id
        assert ids_of(page(session, f, before=ids[50] + 1, size=2).entries) == [ids[50], ids[49]]


def test_time_bounded_pages_follow_the_entries_times(world: World) -> None:
    """since/until page along the time index: an entry written late with an earlier time (a replica's clock, an
    import) sits at its time, every match comes once forward and back, and the positions are counted in that
    order."""
    w = world
    on_time = w.add(*[entry(w.a, w.a_qbo, NOW - 40 * H + i * H, label=f"on time {i}") for i in range(30)])
    late = w.add(entry(w.a, w.a_qbo, NOW - 39 * H + dt.timedelta(minutes=30), label="written late"),
                 entry(w.a, w.a_qbo, NOW - 100 * D, label="long before"),
                 entry(w.a, w.a_qbo, NOW - 25 * H, label="same time, later id"))
    w.add(entry(w.b, w.b_qbo, NOW - 39 * H, label="other account"))
    expected = sorted(on_time + late[:1] + late[2:], reverse=True,
                      key=lambda i: (NOW - 40 * H + on_time.index(i) * H if i in on_time else
                                     NOW - 39 * H + dt.timedelta(minutes=30) if i == late[0] else NOW - 25 * H, i))
    f = parse_filter("since:3d until:10h", now=NOW, account_id=w.a)
    with w.sessions() as session:
        forward = walk_next(session, f, 7)
        walked = [i for p in forward for i in ids_of(p.entries)]
        assert walked[:3] == [on_time[29], on_time[28], on_time[27]]   # NOW-11h, -12h, -13h
        assert late[0] in walked and late[1] not in walked              # at its time; outside the window
        assert walked == expected and len(walked) == 32                # NOW-40h..-11h, + 2 late
        assert walked.index(late[0]) == walked.index(on_time[1]) - 1    # between -38h and -39h
        assert walked.index(late[2]) == walked.index(on_time[15]) - 1   # same time as on_time[15], newer id
        assert [p.first for p in forward] == [1, 8, 15, 22, 29]
        assert all(p.total == 32 and not p.total_is_lower_bound for p in forward)
        back = walk_prev(session, f, forward[-1], 7)
        assert [ids_of(p.entries) for p in back] == [ids_of(p.entries) for p in reversed(forward)]
        # a cursor that names no entry of the account (here another account's) pages from the entry below it, as
        # an id cursor would: that entry and the ones older than it
        other = page(session, f, before=late[-1] + 1, size=3)
        assert ids_of(other.entries) == [late[-1], *ids_of(page(session, f, before=late[-1], size=2).entries)]
        assert page(session, f, before=0).entries == [] and page(session, f, before=-10**20).entries == []
        # free text in the window (on SQLite the FTS table drives the page, its rowids bounded by the window's
        # ids): every match once, the late one included, the one outside the window not, forward and back
        for words, matching in (('time since:3d until:10h', [*on_time, late[2]]),
                                ('written since:3d until:10h', [late[0]]),
                                ('before since:3d until:10h', [])):
            searched = parse_filter(words, now=NOW, account_id=w.a)
            pages = walk_next(session, searched, 4)
            found = [i for p in pages for i in ids_of(p.entries)]
            assert sorted(found) == sorted(matching) and pages[0].total == len(matching), words
            assert [i for p in walk_prev(session, searched, pages[-1], 4) for i in ids_of(p.entries)] == \
                [i for p in reversed(pages) for i in ids_of(p.entries)]


# ------------------------------------------------------------------------------------------------ counts


def test_counts_by_each_key(world: World, mixed: dict[str, int]) -> None:
    a = LogFilter(account_id=world.a)
    with world.sessions() as session:
        assert counts(session, a, "status") == {"error": 4, "warning": 1, "synced": 1, "info": 1}
        assert counts(session, a, "kind") == {"duplicate": 2, "total_mismatch": 1, "validation": 1,
                                              "not_found": 1, "none": 2}
        assert counts(session, a, "entity") == {"invoice": 2, "contact": 3, "item": 1, "payment": 1}
        assert counts(session, a, "direction") == {"push": 5, "pull": 2}
        errors = parse_filter("errors", now=NOW, account_id=world.a)
        # the open errors: s1 (invoice), s3 (a contact's warning), s8 (contact); s2 resolved, the item's retried
        assert counts(session, errors, "entity") == {"invoice": 1, "contact": 2}
        every = parse_filter("status:error", now=NOW, account_id=world.a)
        assert counts(session, every, "entity") == {"invoice": 2, "item": 1, "contact": 1}
        assert counts(session, parse_filter("open", now=NOW, account_id=world.a), "kind") == {
            "duplicate": 1, "total_mismatch": 1, "not_found": 1}
        assert counts(session, parse_filter("since:2d", now=NOW, account_id=world.a), "status") == {"error": 2}
        assert counts(session, parse_filter("kind:conflict", now=NOW, account_id=world.a), "status") == {}
        # the other account counts its own
        assert counts(session, LogFilter(account_id=world.b), "status") == {"error": 4, "warning": 1,
                                                                            "synced": 1, "info": 1}
        assert counts(session, LogFilter(), "status")["error"] == 8


@pytest.mark.parametrize("key", ["account_id", "created_at", "record_id", "", "Status", "status "])
def test_counts_by_another_key_is_a_value_error(world: World, key: str) -> None:
    with world.sessions() as session, pytest.raises(ValueError, match="cannot count by"):
        counts(session, LogFilter(account_id=world.a), key)


# ----------------------------------------------------------------------------------------- weekly summary


SINCE = NOW - 7 * D        # this week: [SINCE, NOW)
PREV = NOW - 14 * D        # the week before: [PREV, SINCE)


def test_weekly_summary_this_week_against_the_week_before(world: World) -> None:
    w = world
    a, q = w.a, w.a_qbo
    old_open, old_synced = w.add(
        entry(a, q, NOW - 30 * D, entity="payment", kind="not_found", label="Payment 55", record_id=55),
        entry(a, q, NOW - 20 * D, status="synced"),
    )
    prev_week = w.add(
        entry(a, q, PREV, status="synced"),                                     # the first instant: counted
        *[entry(a, q, PREV + i * D, status="synced", entity="contact") for i in (1, 2, 3)],
        entry(a, q, PREV + 2 * H, kind="duplicate", label="INV-1001", record_id=1001, resolved_at=SINCE),
        entry(a, q, PREV + 3 * H, kind="duplicate", label="INV-1002", record_id=1002, resolved_at=SINCE),
        entry(a, q, SINCE - dt.timedelta(microseconds=1), kind="rate_limited", resolved_at=SINCE),
    )
    assert len(prev_week) == 7
    dup1, dup2, dup3 = w.add(*[entry(a, q, SINCE + (i + 1) * H, kind="duplicate", label="INV-1042",
                                     record_id=1042, attempt=i + 1) for i in range(3)])
    with w.sessions() as session, session.begin():
        session.get(SyncLogEntry, dup1).superseded_by_id = dup2  # type: ignore[union-attr]
        session.get(SyncLogEntry, dup2).superseded_by_id = dup3  # type: ignore[union-attr]
    this_week = w.add(
        entry(a, q, SINCE, status="synced"),                                    # the first instant: counted
        *[entry(a, q, SINCE + i * D, status="synced", entity="item") for i in (1, 2, 3, 4, 5)],
        entry(a, q, SINCE + 2 * D, entity="contact", kind="validation", label="Bob's Barn", record_id=7),
        entry(a, q, SINCE + 3 * D, status="warning", kind="total_mismatch", label="INV-1043", record_id=1043,
              resolved_at=SINCE + 4 * D),
        entry(a, q, SINCE + 4 * D, entity="contact", kind="auth_expired", resolved_at=SINCE + 5 * D),
        entry(a, q, SINCE + 5 * D, status="info", entity="payment", direction="pull"),
        entry(a, q, SINCE + 6 * D, status="pending", kind=None, label="INV-1042", record_id=1042),
        entry(a, q, NOW, status="synced"),                                      # the week's end: excluded
    )
    validation = this_week[6]
    # account B fails a lot in the same weeks: none of it is A's
    w.add(*[entry(w.b, w.b_qbo, SINCE + i * H, kind="duplicate", label="INV-1042", record_id=1042)
            for i in range(1, 6)],
          *[entry(w.b, w.b_qbo, PREV + i * H, status="synced") for i in range(1, 3)])

    with w.sessions() as session:
        s = weekly_summary(session, a, NOW)
    assert (s.since, s.until) == (SINCE, NOW)
    assert s.attempts_by_status == {"synced": 6, "error": 5, "warning": 1, "info": 1}
    assert s.previous_attempts_by_status == {"synced": 4, "error": 3}
    assert s.errors_by_kind == {"duplicate": 3, "validation": 1, "total_mismatch": 1, "auth_expired": 1}
    assert s.previous_errors_by_kind == {"duplicate": 2, "rate_limited": 1}
    assert s.errors_by_entity == {"invoice": 4, "contact": 2}
    assert (s.change("synced"), s.change("error"), s.change("warning"), s.change("info"),
            s.change("pending")) == (2, 2, 1, 1, 0)
    # open now: the month-old payment, the last duplicate attempt, the validation error
    assert s.open_errors == 3
    assert ids_of(s.oldest_open) == [old_open, dup3, validation]
    assert all(e.account_id == a and e.is_open for e in s.oldest_open)
    assert s.most_failing == [("invoice", 1042, "INV-1042", 3), ("contact", 7, "Bob's Barn", 1),
                              ("invoice", 1043, "INV-1043", 1)]
    assert not s.quiet
    assert old_synced not in ids_of(s.oldest_open)

    with w.sessions() as session:
        top = weekly_summary(session, a, NOW, top=2)
        assert ids_of(top.oldest_open) == [old_open, dup3]
        assert top.most_failing == s.most_failing[:2]
        assert top.open_errors == 3
        # the week before, summarised on its own, is the previous week of this one
        last = weekly_summary(session, a, SINCE)
        assert last.attempts_by_status == s.previous_attempts_by_status
        assert last.errors_by_kind == s.previous_errors_by_kind
        assert last.most_failing == [("invoice", 1001, "INV-1001", 1), ("invoice", 1002, "INV-1002", 1)]
        # a shorter span: the last day (only a pending attempt) against the day before
        day = weekly_summary(session, a, NOW, days=1)
        assert (day.since, day.attempts_by_status, day.previous_attempts_by_status) == (
            NOW - D, {}, {"synced": 1, "info": 1})


def test_weekly_summary_quiet_week(world: World) -> None:
    w = world
    a, q = w.a, w.a_qbo
    first, retried = w.add(
        entry(a, q, PREV + D, kind="duplicate", record_id=1, label="INV-1"),    # retried: not open
        entry(a, q, PREV + 2 * D, status="synced", record_id=1, label="INV-1"),
    )
    with w.sessions() as session, session.begin():
        session.get(SyncLogEntry, first).superseded_by_id = retried  # type: ignore[union-attr]
    w.add(entry(a, q, PREV + 3 * D, kind="validation", resolved_at=PREV + 4 * D),  # resolved: not open
          *[entry(a, q, SINCE + i * D, status="synced") for i in range(3)],
          entry(a, q, SINCE + D, status="pending", kind=None),
          entry(w.b, w.b_qbo, SINCE + D, kind="duplicate"))                     # B's trouble is not A's
    with w.sessions() as session:
        s = weekly_summary(session, a, NOW)
    assert s.quiet
    assert (s.attempts_by_status, s.errors_by_kind, s.errors_by_entity) == ({"synced": 3}, {}, {})
    assert (s.open_errors, s.oldest_open, s.most_failing) == (0, [], [])
    assert s.previous_attempts_by_status == {"error": 2, "synced": 1}

    # an old open warning is enough to make the week not quiet, though nothing failed in it
    old = w.add(entry(a, q, NOW - 60 * D, status="warning", kind="total_mismatch"))
    with w.sessions() as session:
        s = weekly_summary(session, a, NOW)
    assert not s.quiet and s.errors_by_kind == {} and s.open_errors == 1 and ids_of(s.oldest_open) == old

    # and so is an error this week, even resolved at once
    with w.sessions() as session, session.begin():
        session.get(SyncLogEntry, old[0]).resolved_at = NOW  # type: ignore[union-attr]
    w.add(entry(a, q, SINCE + 3 * D, kind="locked", resolved_at=SINCE + 3 * D + H))
    with w.sessions() as session:
        s = weekly_summary(session, a, NOW)
    assert not s.quiet and s.errors_by_kind == {"locked": 1} and s.open_errors == 0


def test_weekly_summary_of_an_empty_account(world: World) -> None:
    with world.sessions() as session:
        s = weekly_summary(session, world.a, NOW)
    assert s.quiet and s.attempts_by_status == {} and s.previous_attempts_by_status == {}
    assert s.change("synced") == 0


# ------------------------------------------------------------------------------------------- entry_as_dict


def test_entry_as_dict(world: World) -> None:
    first, second = world.add(
        entry(world.a, world.a_qbo, NOW, kind="duplicate", label="INV-1042", record_id=1042, details="Dup",
              attempt=2, actor="U1", intuit_tid="tid-1", codes="6240", resolved_at=NOW + H),
        entry(world.a, world.a_qbo, NOW + H, status="synced"),
    )
    with world.sessions() as session, session.begin():
        session.get(SyncLogEntry, first).superseded_by_id = second  # type: ignore[union-attr]
    with world.sessions() as session:
        e = session.get(SyncLogEntry, first)
        assert e is not None
        chicago = ZoneInfo("America/Chicago")
        assert entry_as_dict(e) == {
            "id": first, "timestamp": "2026-11-23T09:00:00+00:00", "entity": "invoice", "record_id": 1042,
            "record": "INV-1042", "direction": "push", "status": "error", "kind": "duplicate", "details": "Dup",
            "attempt": 2, "actor": "U1", "resolved_at": "2026-11-23T10:00:00+00:00", "retried_by": second,
            "connection_id": world.a_qbo, "intuit_tid": "tid-1", "codes": "6240",
            "severity": "error", "meaning": None,
        }
        assert entry_as_dict(e, lambda t: t.astimezone(chicago))["timestamp"] == "2026-11-23T03:00:00-06:00"
        other = session.get(SyncLogEntry, second)
        assert other is not None
        d = entry_as_dict(other)
        assert (d["resolved_at"], d["retried_by"], d["kind"], d["record"]) == (None, None, None, None)


# ---------------------------------------------------------------------------------- capped counts, search


def heading(result: Page) -> str:
    """The line of the `/sync-log` answer that says which entries the page holds."""
    from bot.blocks import log_page

    for block in log_page(result)["blocks"]:
        if block["type"] == "context":
            return str(block["elements"][0]["text"])
    raise AssertionError("no context line")


def test_a_count_past_the_cap_says_more_than(world: World) -> None:
    fill(world, 25)
    f = LogFilter(account_id=world.a)
    with world.sessions() as session:
        first = page(session, f, size=5, count_cap=10)
        assert (first.total, first.total_is_lower_bound, first.first) == (10, True, 1)
        assert heading(first).startswith("entries 1\u20135 of more than 10,")
        pages = [first]
        while pages[-1].next_before is not None:
            pages.append(page(session, f, before=pages[-1].next_before, size=5, count_cap=10))
        assert [len(p.entries) for p in pages] == [5] * 5
        third, fourth = pages[2], pages[3]
        assert (third.first, third.first_is_lower_bound) == (11, False)  # 10 newer: still counted exactly
        assert heading(third).startswith("entries 11\u201315 of more than 10,")
        assert (fourth.first_is_lower_bound, fourth.total_is_lower_bound) == (True, True)  # 15 newer: past the cap
        assert heading(fourth).startswith("5 entries past the newest 10,")
        # under the cap the count is exact, as before
        exact = page(session, f, size=5, count_cap=25)
        assert (exact.total, exact.total_is_lower_bound) == (25, False)
        assert heading(exact).startswith("entries 1\u20135 of 25,")
        # a page that holds every match says how many without counting
        assert heading(page(session, f, size=30, count_cap=10)).startswith("25 entries,")


def test_the_cli_says_more_than_past_the_cap(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bot import config
    from bot.cli import app

    fill(world, 25)
    monkeypatch.setattr("sync.log.COUNT_CAP", 10)
    monkeypatch.setenv("DATABASE_URL", str(world.sessions.kw["bind"].url.render_as_string(hide_password=False)))
    config.get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["sync-log", "--account", str(world.a), "--limit", "5"])
        assert out.exit_code == 0, out.output
        assert "entries 1-5 of more than 10)" in out.output.splitlines()[0]
    finally:
        config.get_settings.cache_clear()


def search_index(session: Session) -> str:
    """The free-text index migration 0019 made: "fts5" (SQLite) or "trigram" (PostgreSQL's GIN indexes)."""
    from sqlalchemy import text

    if session.get_bind().dialect.name == "sqlite":
        found = session.scalar(text("SELECT name FROM sqlite_master WHERE name = 'sync_log_fts'"))
        return "fts5" if found else "none"
    names = set(session.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'sync_log'")))
    return "trigram" if {"ix_sync_log_trgm_label", "ix_sync_log_trgm_details"} <= names else "none"


def test_free_text_through_the_index_finds_substrings_folded_and_follows_changes(world: World) -> None:
    from sqlalchemy import delete, text, update

    w = world
    names = dict(zip(["smith", "muller", "inv", "other"], w.add(
        entry(w.a, w.a_qbo, NOW - 4 * H, label="Smith Construction", details="Duplicate Name Exists Error"),
        entry(w.a, w.a_qbo, NOW - 3 * H, label="MÜLLER Électrique", details=None),
        entry(w.a, w.a_qbo, NOW - 2 * H, label="INV-10234", details="Stale Object Error (code 5010)"),
        entry(w.a, w.a_qbo, NOW - 1 * H, label="Jones", details="Created QuickBooks customer 58"),
    ), strict=True))
    with w.sessions() as session:
        assert search_index(session) in ("fts5", "trigram")  # the migration's index is there: the test uses it

    def found(words: str) -> set[str]:
        return shown(w, parse_filter(words, now=NOW, account_id=w.a), names)

    assert found("mith cons") == {"smith"}                  # a substring across words
    assert found("müller") == found("MÜLLER") == found("Müll") == {"muller"}  # non-ASCII letters folded
    assert found("électrique") == found("ÉLECTRIQUE") == {"muller"}
    assert found("0234") == {"inv"} and found("code 5010") == {"inv"}
    assert found("quickbooks cust") == {"other"} and found("nowhere at all") == set()
    assert found("mi") == {"smith"} and found("zq") == set()  # shorter than a trigram: matched all the same
    with w.sessions() as session:  # counts go through the same narrowing as pages
        def counted(words: str) -> dict[str, int]:
            return counts(session, parse_filter(words, now=NOW, account_id=w.a), "entity")

        assert counted("MÜLLER") == counted("müll") == counted("mith cons") == {"invoice": 1}
        assert counted("nowhere at all") == {} and counted("mi") == {"invoice": 1}

    with w.sessions() as session, session.begin():  # details and names changed after the insert: found anew
        session.execute(update(SyncLogEntry).where(SyncLogEntry.id == names["other"])
                        .values(details="Account Period Closed", record_label="Jonas Roofing"))
        session.execute(delete(SyncLogEntry).where(SyncLogEntry.id == names["inv"]))
    del names["inv"]
    assert found("quickbooks cust") == set() and found("jones") == set()
    assert found("period closed") == {"other"} and found("jonas roof") == {"other"}
    assert found("stale object") == set()
    with w.sessions() as session:
        if session.get_bind().dialect.name == "sqlite":  # the FTS index agrees with the table, row for row
            session.execute(text("INSERT INTO sync_log_fts(sync_log_fts, rank) VALUES ('integrity-check', 1)"))


def test_the_search_migration_upgrades_existing_entries_and_downgrades(tmp_path: Any, database_url: str) -> None:
    """0019 indexes the entries already there, and goes down and up again, on SQLite and (with the test
    PostgreSQL) on a fresh PostgreSQL database beside it."""
    import contextlib
    import os

    from sqlalchemy import insert, text

    from tests.conftest import PG_ENV

    urls = [f"sqlite:///{tmp_path / 'm.db'}"]
    with contextlib.ExitStack() as stack:
        if os.environ.get(PG_ENV):
            from bench.replicas import fresh_database

            urls.append(stack.enter_context(fresh_database(database_url, "migrate")))
        for url in urls:
            db.upgrade(url, "0018")
            engine = db.make_engine(url)
            sessions = db.make_sessionmaker(engine)
            try:
                with sessions() as session, session.begin():
                    account = Account(name="Before 0019")
                    session.add(account)
                    session.flush()
                    session.execute(insert(SyncLogEntry), [
                        {"account_id": account.id, "entity": "contact", "direction": "push", "status": "error",
                         "kind": "duplicate", "record_label": f"Smith Construction {n}", "details": "Duplicate",
                         "created_at": NOW - n * H, "attempt": 1} for n in range(3)])
                    account_id = account.id
                db.upgrade(url)
                with sessions() as session:
                    assert search_index(session) in ("fts5", "trigram")
                    result = page(session, parse_filter("construction 1", account_id=account_id))
                    assert [e.record_label for e in result.entries] == ["Smith Construction 1"]
                db.downgrade(url, "0018")
                with sessions() as session, session.begin():
                    assert search_index(session) == "none"
                    session.execute(text("UPDATE sync_log SET details = 'changed'"))  # no trigger left behind
                db.upgrade(url)
                with sessions() as session:
                    assert len(page(session, parse_filter("changed", account_id=account_id)).entries) == 3
            finally:
                engine.dispose()
