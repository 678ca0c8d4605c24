"""Queries over the sync log: filters, keyset pages, counts, the figures of a weekly summary, and the one
definition of an open error and of an entry's severity that every surface uses.

Open errors (:func:`open_clause`, :func:`open_entries`, :func:`open_counts`)
===========================================================================
An **open error** is a sync log entry whose status is error or warning, not resolved (``resolved_at``: a later
attempt synced, someone marked it resolved, or its connection answered again) and not handed to a newer attempt
(``superseded_by_id``). Warnings count: a total mismatch waits for a person as much as a duplicate does. So do
a connection's own failed steps (a CDC pull refused by the rate limit or an expired token, logged without a
record): each is one open error until the connection answers again. Every surface counts and lists exactly
these: ``/sync-log status``, the App Home, ``/sync-log errors`` (and ``open``), the Retry All offer, the
Monday summary and the CLI; :attr:`sync.models.SyncLogEntry.is_open` is the same test in Python.

Retry All retries the open errors it can (:func:`retryable`: a record's push whose card offers Retry); the others
are counted in its offer and named by kind, with what fixes them (the rate limit resumes by itself, a deleted
record is fixed by Re-create or Unlink on its message).

Severity (:func:`sync.diagnosis.severity`)
==========================================
One per kind: the ``status`` of the kind in :data:`sync.diagnosis.KINDS` ("error" red, "warning" yellow), the
same in the channel, the log, the App Home, the summary and the CLI. Warnings: total_mismatch (the figures
differ, or QuickBooks refused its tax: either way the fix is comparing the tax) and rate_limited (it resolves by
itself). An entry without a kind keeps its stored status.

Pages are keyset pages, newest first, with entry ids as cursors (stable while entries are being added, and as
fast on the millionth entry as on the first): by id, or, for a time-bounded filter, by time then id along the
time index. A filter can be parsed from the words people type (`/sync-log` and the CLI):
`errors`, `warnings`, `entity:invoice kind:duplicate since:7d until:2026-11-01 direction:pull status:synced
connection:3` and free text (matched against the record's name and the details).

Speed on a big log (issue 17; migration 0019; ``bench/synclog.py``): every filter reads newest first with a LIMIT
through an index that ends in the id (status, kind, entity, connection, the open errors' partial index); a page
counts its matches only up to :data:`COUNT_CAP` ("of more than 10,000"); since/until walk the time index
(account, created_at, id) from the window's end. Free text of three characters or more is narrowed by an index:
SQLite's FTS5 trigram table drives the query newest first (within since/until's id range), PostgreSQL's trigram
GIN indexes serve the LIKE. The LIKE on the Unicode lower() stays the final check either way, so the index
changes how fast, never what is found. Shorter text has no trigram: it searches only the newest
:data:`SHORT_TEXT_WINDOW` entries, and the page says so.
"""

from __future__ import annotations

import datetime as dt
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVarTuple

from sqlalchemy import (
    BigInteger,
    Engine,
    Select,
    SQLColumnExpression,
    String,
    and_,
    column,
    false,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnClause, ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from sync.diagnosis import KINDS, FixAction, Kind, kind_info, severity
from sync.models import Direction, Entity, Status, SyncLogEntry, utcnow

MAX_PAGE = 100
#: A page counts the entries that match its filter up to this many, and says "more than" past it: an exact count
#: of a big log's common filter costs a walk of every match, which the page itself never needs.
COUNT_CAP = 10_000
_MAX_ID = 2**63 - 1  # sync_log.id is a BIGINT; larger cursors would not even bind (SQLite raises OverflowError)
_MAX_CONNECTION_ID = 2**31 - 1  # connections.id is an INTEGER
_DURATION = re.compile(r"^([0-9]{1,9})([mhdw])$")
_NUMBER = re.compile(r"^[0-9]{1,10}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
ENTITY_ALIASES = {"contacts": "contact", "customer": "contact", "customers": "contact", "items": "item",
                  "invoices": "invoice", "payments": "payment"}


#: Status and entity words that change in the plural (info, synced and pending do not).
_PLURALS = {"error": "errors", "warning": "warnings", "contact": "contacts", "item": "items", "invoice": "invoices",
            "payment": "payments"}


#: The statuses of an open error.
OPEN_STATUSES = (Status.ERROR.value, Status.WARNING.value)


def open_clause() -> ColumnElement[bool]:
    """The SQL condition of an open error (see the module docstring). The statuses are written as literals, as in
    the partial index of the open errors (``sync.models.OPEN_WHERE``): SQLite uses a partial index only for a
    query whose condition repeats the index's, and a bound parameter never does."""
    statuses: list[ColumnClause[str]] = [literal_column(f"'{status}'") for status in OPEN_STATUSES]
    return and_(SyncLogEntry.status.in_(statuses), SyncLogEntry.resolved_at.is_(None),
                SyncLogEntry.superseded_by_id.is_(None))


#: The columns of a select that a helper narrows and hands back (SQLAlchemy's ``Select`` is generic in them).
_Ts = TypeVarTuple("_Ts")


def _scope(stmt: Select[*_Ts], account_id: int | None, connection_id: int | None) -> Select[*_Ts]:
    if account_id is not None:
        stmt = stmt.where(SyncLogEntry.account_id == account_id)
    if connection_id is not None:
        stmt = stmt.where(SyncLogEntry.connection_id == connection_id)
    return stmt


def open_entries(session: Session, *, account_id: int | None = None,
                 connection_id: int | None = None) -> list[SyncLogEntry]:
    """The open errors of an account or a connection, oldest first."""
    return list(session.scalars(_scope(select(SyncLogEntry).where(open_clause()), account_id, connection_id)
                                .order_by(SyncLogEntry.id)))


def open_counts(session: Session, *, account_id: int | None = None,
                connection_id: int | None = None) -> dict[str, int]:
    """How many open errors an account or a connection has, by kind ("none" for an entry without a kind)."""
    rows = session.execute(_scope(select(SyncLogEntry.kind, func.count()).where(open_clause()), account_id,
                                  connection_id).group_by(SyncLogEntry.kind)).all()
    return {str(kind) if kind is not None else "none": int(n) for kind, n in rows}


def offers_retry(entry: Any) -> bool:
    """Does this error's card offer Retry? Only where Retry is one of its kind's fixes, in the words of its
    meaning (``entry.data["meaning"]``): never a deleted copy's (Re-create or Unlink), a connection-wide kind's
    (the rate limit, an expired authorization, the subscription: the records resume with their connection), nor a
    total mismatch found after the write (status warning: Retry would send the same figures and meet the same
    mismatch; one QuickBooks refused, status error, offers it). A kind this version does not know is unknown's
    (Retry). The card (`bot.blocks.messages`), the log's and App Home's rows and Retry All all ask this."""
    kind, data = getattr(entry, "kind", None), getattr(entry, "data", None)
    if not kind:
        return True
    meaning = data.get("meaning") if isinstance(data, dict) else None
    try:
        info = kind_info(Kind(str(kind)), str(meaning) if meaning else None)
    except ValueError:
        info = KINDS[Kind.UNKNOWN]
    if FixAction.RETRY not in info.actions:
        return False
    return info.kind != Kind.TOTAL_MISMATCH or str(getattr(entry, "status", "") or "") == Status.ERROR.value


def retryable(entry: Any) -> bool:
    """Can Retry All try this open error again? A record's push whose card offers Retry (:func:`offers_retry`);
    a connection's own step (no record), a pull (a change QuickBooks reported) and the kinds fixed otherwise
    cannot: their fix is elsewhere, and the Retry All offer names them."""
    return (getattr(entry, "record_id", None) is not None and getattr(entry, "direction", None) == Direction.PUSH
            and offers_retry(entry))


def existing_label(entry: SyncLogEntry) -> str | None:
    """For an open duplicate error: the label of the QuickBooks object that holds the record's name (``Acme Corp
    (Customer 58)``), as the attempt stored it (``data["existing"]``, looked up right after QuickBooks refused
    the duplicate), so the card can offer to link the record to it (``SyncEngine.link_existing``). None when
    there is nothing to offer: not an open duplicate, nothing of that name, the object linked to another record,
    or the look-up failed (the next attempt looks again)."""
    if entry.kind != Kind.DUPLICATE or not entry.is_open:
        return None
    existing = (entry.data or {}).get("existing")
    label = existing.get("label") if isinstance(existing, dict) else None
    return str(label) if label else None


class FilterError(ValueError):
    """A filter word could not be understood; the message says which and what is allowed."""


@dataclass(frozen=True)
class LogFilter:
    """What to show. All given conditions must hold. Times are UTC."""

    account_id: int | None = None
    connection_id: int | None = None
    statuses: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    direction: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    text: str | None = None
    open_only: bool = False
    #: Only entries of these severities (:func:`severity`: the kind's, else the stored status).
    severities: tuple[str, ...] = ()
    include_pending: bool = False
    #: Only each record's current attempt (not the ones a later attempt superseded), and a connection's entries
    #: (expired token, rate limit) only while unresolved. (The ``errors`` and ``warnings`` words use ``open_only``,
    #: which implies it: a record that failed three times is listed once; ``status:error`` lists every attempt.)
    current_only: bool = False

    def describe(self, count: int | None = None) -> str:
        """A short human description (for headings), e.g. "error · invoice · since 2026-11-23 00:00 UTC".

        With ``count`` (how many entries the heading is over), statuses and entities take its number: "errors ·
        invoices" for none or several, "error · invoice" for one."""
        parts: list[str] = []
        many = count is not None and count != 1
        if self.open_only:
            word = "warning" if self.severities == (Status.WARNING.value,) else "error"
            parts.append("open " + (_PLURALS[word] if many else word))
        parts += [_PLURALS.get(w, w) if many else w for w in self.statuses] + list(self.kinds)
        parts += [_PLURALS.get(w, w) if many else w for w in self.entities]
        if self.direction:
            parts.append(self.direction)
        if self.since:
            parts.append(f"since {self.since:%Y-%m-%d %H:%M} UTC")
        if self.until:
            parts.append(f"until {self.until:%Y-%m-%d %H:%M} UTC")
        if self.text:
            parts.append(f'"{self.text}"')
        return " · ".join(parts) or "all entries"


def _parse_when(value: str, now: dt.datetime) -> dt.datetime:
    m = _DURATION.fullmatch(value.lower())
    try:
        if m:
            return (now - dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})).astimezone(dt.UTC)
        parsed = dt.datetime.fromisoformat(value)
        # a time with an offset is converted (describe() and the query speak UTC); a naive one is UTC
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise FilterError(f"'{value}' is not a time: use 30m, 24h, 7d, 2w or a date like 2026-11-01") from exc
    except OverflowError as exc:
        raise FilterError(f"'{value}' is out of range: use 30m, 24h, 7d, 2w or a date like 2026-11-01") from exc


def _add(words: tuple[str, ...], *more: str) -> tuple[str, ...]:
    return words + tuple(w for w in more if w not in words)


def parse_filter(words: Sequence[str] | str, now: dt.datetime | None = None, **base: Any) -> LogFilter:
    """Build a LogFilter from words as typed. Raises FilterError for an unknown key or value."""
    now = now or utcnow()
    if isinstance(words, str):
        words = words.split()
    f = LogFilter(**base)
    text: list[str] = []
    for word in words:
        low = word.lower()
        if low in ("errors", "error"):  # the open errors, whatever their severity
            f = replace(f, open_only=True, severities=_add(f.severities, *OPEN_STATUSES))
        elif low in ("warnings", "warning"):  # the open errors of warning severity
            f = replace(f, open_only=True, severities=_add(f.severities, Status.WARNING.value))
        elif low == "open":
            f = replace(f, open_only=True)
        elif ENTITY_ALIASES.get(low, low) in {e.value for e in Entity}:  # "invoices", "contact"...
            f = replace(f, entities=(*f.entities, ENTITY_ALIASES.get(low, low)))
        elif ":" in low and low.split(":", 1)[0] in (
                "entity", "kind", "status", "direction", "since", "until", "connection"):
            key, value = word.split(":", 1)
            key, value = key.lower(), value.strip()
            if not value:
                raise FilterError(f"'{word}' has no value")
            if key == "entity":
                ent = ENTITY_ALIASES.get(value.lower(), value.lower())
                if ent not in {e.value for e in Entity}:
                    raise FilterError(f"unknown entity '{value}': use contact, item, invoice or payment")
                f = replace(f, entities=(*f.entities, ent))
            elif key == "kind":
                if value.lower() not in {k.value for k in Kind}:
                    raise FilterError(f"unknown kind '{value}': use one of "
                                      + ", ".join(k.value for k in Kind))
                f = replace(f, kinds=(*f.kinds, value.lower()))
            elif key == "status":
                if value.lower() not in {s.value for s in Status if s != Status.PENDING}:
                    raise FilterError(f"unknown status '{value}': use error, warning, info or synced")
                f = replace(f, statuses=(*f.statuses, value.lower()))
            elif key == "direction":
                if value.lower() not in {d.value for d in Direction}:
                    raise FilterError(f"unknown direction '{value}': use push or pull")
                f = replace(f, direction=value.lower())
            elif key == "since":
                f = replace(f, since=_parse_when(value, now))
            elif key == "until":
                f = replace(f, until=_parse_when(value, now))
            elif key == "connection":
                # ASCII digits only: str.isdigit() also accepts '²', which int() then rejects
                if not _NUMBER.fullmatch(value) or int(value) > _MAX_CONNECTION_ID:
                    raise FilterError(f"connection must be a connection number like 3, not '{value}'")
                f = replace(f, connection_id=int(value))
        else:
            text.append(word)
    # control characters match nothing a record is named (and PostgreSQL text cannot hold a NUL): left out
    free = _CONTROL.sub("", " ".join(text)).strip()[:200]
    if free:
        f = replace(f, text=free)
    return f


class _lower(FunctionElement[str]):
    """lower() that folds every letter, not only ASCII ones: SQLite's built-in lower() leaves 'É' as it is, so
    a search for 'été' would never find 'ÉTÉ'. On SQLite it calls a Python function (see ``prepare_session``)."""

    type = String()
    inherit_cache = True
    name = "lower"


@compiles(_lower)
def _lower_default(element: _lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


_SQLITE_LOWER = "syncbot_lower"


@compiles(_lower, "sqlite")
def _lower_sqlite(element: _lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{_SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


def _py_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def prepare_session(session: Session) -> None:
    """Make the session's connection able to run our queries (on SQLite: register the Unicode lower())."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.connection.driver_connection.create_function(  # type: ignore[union-attr]
            _SQLITE_LOWER, 1, _py_lower, deterministic=True)


#: What indexes the free text on this database: "fts5" (SQLite's FTS5 trigram table of migration 0019) or
#: "like" (no index of its own: PostgreSQL's trigram indexes serve the LIKE itself, when they exist).
_SEARCH: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
#: The shortest free text a trigram index can narrow: shorter text is matched by LIKE alone.
TRIGRAM = 3
#: Free text shorter than :data:`TRIGRAM` has no index to narrow it: a page searches only this many of the newest
#: entries for it (and says so), where a search of every entry could take seconds on a big log.
SHORT_TEXT_WINDOW = 20_000


def _search(session: Session) -> str:
    """How this session's database searches free text (see ``_SEARCH``), looked up once per engine."""
    engine = session.get_bind()
    engine = getattr(engine, "engine", engine)
    found = _SEARCH.get(engine)  # type: ignore[arg-type]
    if found is None:
        found = "like"
        if engine.dialect.name == "sqlite" and session.scalar(text(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sync_log_fts'")) is not None:
            found = "fts5"
        _SEARCH[engine] = found  # type: ignore[index]
    return found


def _fts_phrase(words: str) -> str:
    """``words`` as one FTS5 phrase (double quotes doubled): the trigram tokenizer matches it as a substring."""
    return '"' + words.replace('"', '""') + '"'


def apply_filter(stmt: Select[*_Ts], f: LogFilter) -> Select[*_Ts]:
    """``stmt`` with the conditions of ``f`` (free text by the LIKE: :func:`_matches` adds the index that narrows
    it)."""
    conds = []
    if f.account_id is not None:
        conds.append(SyncLogEntry.account_id == f.account_id)
    if f.connection_id is not None:
        conds.append(SyncLogEntry.connection_id == f.connection_id)
    if f.statuses:
        conds.append(SyncLogEntry.status.in_(f.statuses))
    elif not f.include_pending:
        conds.append(SyncLogEntry.status != Status.PENDING.value)
    if f.kinds:
        conds.append(SyncLogEntry.kind.in_(f.kinds))
    if f.entities:
        conds.append(SyncLogEntry.entity.in_(f.entities))
    if f.direction:
        conds.append(SyncLogEntry.direction == f.direction)
    if f.since:
        conds.append(SyncLogEntry.created_at >= f.since)
    if f.until:
        conds.append(SyncLogEntry.created_at < f.until)
    if f.current_only:  # a record's latest attempt; a connection's entry (no record) only while its incident is open
        conds += [SyncLogEntry.superseded_by_id.is_(None),
                  or_(SyncLogEntry.record_id.is_not(None), SyncLogEntry.resolved_at.is_(None))]
    if f.open_only:
        conds.append(open_clause())
    if f.severities and set(f.severities) != set(OPEN_STATUSES):
        kinds = [k.value for k, info in KINDS.items() if info.status in f.severities]
        conds.append(or_(SyncLogEntry.kind.in_(kinds),
                         and_(or_(SyncLogEntry.kind.is_(None), SyncLogEntry.kind.not_in([k.value for k in KINDS])),
                              SyncLogEntry.status.in_(f.severities))))
    if f.text:
        like = "%" + f.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conds.append(or_(_lower(SyncLogEntry.record_label).like(like, escape="\\"),
                         _lower(SyncLogEntry.details).like(like, escape="\\")))
    return stmt.where(and_(*conds)) if conds else stmt


@dataclass
class Page:
    """One page of entries, newest first, with the cursors of the pages around it (entry ids) or None; ``total``
    entries match the filter, and the page's first entry is the ``first``-th of them (1 for the newest).

    Counts stop at a cap (:data:`COUNT_CAP`): past it ``total_is_lower_bound`` is True and more than ``total``
    entries match; ``first_is_lower_bound`` likewise says more than ``first - 1`` entries come before this page."""

    entries: list[SyncLogEntry]
    next_before: int | None
    prev_after: int | None
    filter: LogFilter = field(default_factory=LogFilter)
    total: int | None = None
    first: int = 1
    total_is_lower_bound: bool = False
    first_is_lower_bound: bool = False
    #: Set when the filter's free text is too short for an index (under :data:`TRIGRAM` characters) and the log
    #: holds more entries than :data:`SHORT_TEXT_WINDOW`: only that many of the newest entries were searched.
    searched_newest: int | None = None


def _count(session: Session, stmt: Select[*_Ts], order: _Order, cap: int) -> tuple[int, bool]:
    """How many rows ``stmt`` (a select of ids, in a page's ``order``) gives, counting at most ``cap`` + 1:
    (the count, or ``cap`` and True when more match)."""
    # newest first, as the page reads them: the planner then takes the page's index (the open errors' partial
    # index, say) rather than one that lists every error, resolved or not
    n = int(session.scalar(select(func.count()).select_from(
        stmt.order_by(*order.newest_first()).limit(cap + 1).subquery())) or 0)
    return (cap, True) if n > cap else (n, False)


def _id_bounds(session: Session, f: LogFilter,
               key: SQLColumnExpression[int] = SyncLogEntry.id) -> list[ColumnElement[bool]]:
    """The ids a time-bounded filter can match, as conditions on ``key`` (the entry id, or the FTS table's rowid,
    which is the entry id): the lowest and highest id written within ``since``/``until`` (exact: read from the
    time index, whatever the order entries were written in). A page driven by the FTS table then reads only the
    ids of the window: on the rowid itself, FTS5 starts its scan there (on the entry's id, SQLite read every match
    of the text and joined each). Costs a walk of the window's time index."""
    if not (f.since or f.until):
        return []
    # id + 0: PostgreSQL would otherwise read min() and max() off the primary key, walking every entry outside
    # the times (the ids and times rise together) instead of the few within them in the time index
    window = select(func.min(SyncLogEntry.id + 0), func.max(SyncLogEntry.id + 0))
    if f.account_id is not None:
        window = window.where(SyncLogEntry.account_id == f.account_id)
    if f.since:
        window = window.where(SyncLogEntry.created_at >= f.since)
    if f.until:
        window = window.where(SyncLogEntry.created_at < f.until)
    low, high = session.execute(window).one()
    if low is None:
        return [false()]
    return [key >= low, key <= high]


_FTS = table("sync_log_fts", column("rowid", BigInteger))


@dataclass(frozen=True)
class _Order:
    """How a page orders its matches, newest first: by ``columns`` descending (the entry id, or the FTS rowid,
    or the entry's time then id), and where an entry sits in that order (:meth:`position`)."""

    columns: tuple[SQLColumnExpression[Any], ...]

    def newest_first(self) -> list[ColumnElement[Any]]:
        return [c.desc() for c in self.columns]

    def oldest_first(self) -> list[ColumnElement[Any]]:
        return [c.asc() for c in self.columns]

    def older_than(self, position: tuple[Any, ...]) -> ColumnElement[bool]:
        return self.columns[0] < position[0] if len(self.columns) == 1 else \
            tuple_(*self.columns) < tuple_(*position)

    def newer_than(self, position: tuple[Any, ...]) -> ColumnElement[bool]:
        return self.columns[0] > position[0] if len(self.columns) == 1 else \
            tuple_(*self.columns) > tuple_(*position)

    def position(self, entry: SyncLogEntry) -> tuple[Any, ...]:
        return (entry.id,) if len(self.columns) == 1 else (entry.created_at, entry.id)


#: A time-bounded page's order: the time index (account, created_at, id) walked from ``until`` (or the newest
#: entry) backwards, so ``until:`` in the middle of a big log costs a page, not a walk of half the log.
_BY_TIME = _Order((SyncLogEntry.created_at, SyncLogEntry.id))


def _matches(stmt: Select[*_Ts], f: LogFilter, search: str) -> tuple[Select[*_Ts], SQLColumnExpression[int]]:
    """``stmt`` narrowed to ``f``, and the id column a page orders and pages it by. With free text the FTS table
    (SQLite) drives the query: its rowids come newest first from the index itself, so a common word stops after a
    page of matches and a rare one reads only its few, where ``id IN (matches)`` would read every match first."""
    if not _fts_driven(f, search) or f.text is None:  # (driven means there is text: None only to the type checker)
        return apply_filter(stmt, f), SyncLogEntry.id
    driven = (stmt.select_from(_FTS).join(SyncLogEntry, SyncLogEntry.id == _FTS.c.rowid)
              .where(text("sync_log_fts MATCH :fts_phrase").bindparams(fts_phrase=_fts_phrase(f.text))))
    # the FTS table narrows to the entries holding the text, folded as FTS5 folds (Unicode letters too); the LIKE
    # of apply_filter stays the final word, so what matches is exactly what matched without the index
    return apply_filter(driven, f), _FTS.c.rowid


def _fts_driven(f: LogFilter, search: str) -> bool:
    """Whether the FTS table drives ``f``'s query (SQLite, free text long enough for a trigram)."""
    return search == "fts5" and f.text is not None and len(f.text) >= TRIGRAM


def _cursor(session: Session, f: LogFilter, order: _Order, entry_id: int) -> tuple[Any, ...] | None:
    """The position in ``order`` of the cursor ``entry_id`` (a page's next/previous id): the id itself, or, in the
    time order, that entry's time and id. A cursor that names no entry of the account (tampered, or deleted since)
    takes the time of the newest entry below it, as an id cursor would; None when there is none."""
    if order is not _BY_TIME:
        return (entry_id,)
    scope = _scope(select(SyncLogEntry.created_at, SyncLogEntry.id).where(SyncLogEntry.id <= entry_id),
                   f.account_id, None)
    row = session.execute(scope.order_by(SyncLogEntry.id.desc()).limit(1)).one_or_none()
    if row is None:
        return None
    created_at, found = row
    # an entry that is not the cursor itself lies below it: start at it, inclusive
    return (created_at, entry_id) if found == entry_id else (created_at, found + 1)


def _short_text_window(session: Session, f: LogFilter, size: int) -> list[ColumnElement[bool]]:
    """For free text too short for a trigram (see :data:`SHORT_TEXT_WINDOW`): the condition that keeps the search
    to the newest ``size`` entries of the account (or connection), read off the id index; none when the text is
    long enough or the log is smaller than the window."""
    if not f.text or len(f.text) >= TRIGRAM:
        return []
    newest = _scope(select(SyncLogEntry.id), f.account_id, f.connection_id)
    oldest = session.scalar(newest.order_by(SyncLogEntry.id.desc()).offset(size).limit(1))
    return [] if oldest is None else [SyncLogEntry.id > oldest]


def short_text_note(searched_newest: int | None) -> str | None:
    """What a page says when its free text searched only the newest entries (:attr:`Page.searched_newest`), in
    Slack and the CLI alike; None when it searched them all."""
    if not searched_newest:
        return None
    newest = "entry" if searched_newest == 1 else f"{searched_newest:,} entries"
    return (f"text under {TRIGRAM} characters searches only the newest {newest}: type {TRIGRAM} or more to search "
            "them all")


def page(session: Session, f: LogFilter, before: int | None = None, after: int | None = None,
         size: int = 10, count_cap: int | None = None, short_text_window: int | None = None) -> Page:
    """The page of entries matching ``f`` older than entry ``before`` (next) or newer than entry ``after``
    (previous); the newest page when neither is given. ``size`` is capped at 100. The total and the first
    entry's position are counted up to ``count_cap`` (default :data:`COUNT_CAP`; see :class:`Page`).

    Newest first means by id, except for a time-bounded filter (``since``/``until``) without indexed free text,
    whose page follows the entries' times (then ids): the same order wherever entries were written in time order.
    The cursors are entry ids either way. Free text under :data:`TRIGRAM` characters searches only the newest
    ``short_text_window`` entries (default :data:`SHORT_TEXT_WINDOW`; ``searched_newest`` says so)."""
    size = max(1, min(size, MAX_PAGE))
    cap = max(1, COUNT_CAP if count_cap is None else count_cap)
    # a cursor past the ids a BIGINT can hold means "everything" (before) or "nothing" (after)
    before = None if before is None else max(-_MAX_ID, min(before, _MAX_ID))
    after = None if after is None else max(-_MAX_ID, min(after, _MAX_ID))
    prepare_session(session)
    search = _search(session)
    stmt, key = _matches(select(SyncLogEntry), f, search)
    ids, _ = _matches(select(SyncLogEntry.id), f, search)
    newest = max(1, SHORT_TEXT_WINDOW if short_text_window is None else short_text_window)
    window = _short_text_window(session, f, newest)
    stmt, ids = stmt.where(*window), ids.where(*window)
    if (f.since or f.until) and not _fts_driven(f, search):
        order = _BY_TIME
    else:
        order = _Order((key,))
        bounds = _id_bounds(session, f, key)
        stmt, ids = stmt.where(*bounds), ids.where(*bounds)
    if after is not None:
        start = _cursor(session, f, order, after)
        if start is not None:
            stmt = stmt.where(order.newer_than(start))
        rows = list(session.scalars(stmt.order_by(*order.oldest_first()).limit(size + 1)))
        has_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        has_older = bool(rows) and session.scalar(
            ids.where(order.older_than(order.position(rows[-1]))).limit(1)) is not None
    else:
        if before is not None:
            start = _cursor(session, f, order, before)
            stmt = stmt.where(order.older_than(start) if start is not None else false())
        rows = list(session.scalars(stmt.order_by(*order.newest_first()).limit(size + 1)))
        has_older = len(rows) > size
        rows = rows[:size]
        has_newer = before is not None and bool(rows) and session.scalar(
            ids.where(order.newer_than(order.position(rows[0]))).limit(1)) is not None
    if not has_newer and not has_older:  # the page holds every match: nothing to count
        total, total_more = len(rows), False
    else:
        total, total_more = _count(session, ids, order, cap)
    newer, newer_more = _count(session, ids.where(order.newer_than(order.position(rows[0]))), order, cap) \
        if rows and has_newer else (0, False)
    return Page(entries=rows, next_before=rows[-1].id if rows and has_older else None,
                prev_after=rows[0].id if rows and has_newer else None, filter=f, total=total,
                first=newer + 1, total_is_lower_bound=total_more or newer_more,
                first_is_lower_bound=newer_more, searched_newest=newest if window else None)


def counts(session: Session, f: LogFilter, by: str) -> dict[str, int]:
    """Number of entries matching ``f`` grouped ``by`` one of: status, kind, entity, direction."""
    column = {"status": SyncLogEntry.status, "kind": SyncLogEntry.kind, "entity": SyncLogEntry.entity,
              "direction": SyncLogEntry.direction}.get(by)
    if column is None:
        raise ValueError(f"cannot count by {by!r}")
    prepare_session(session)
    rows = session.execute(_matches(select(column, func.count()), f, _search(session))[0].group_by(column)).all()
    return {str(key) if key is not None else "none": int(n) for key, n in rows}


def entry_as_dict(entry: SyncLogEntry, tz: Callable[[dt.datetime], dt.datetime] | None = None) -> dict[str, Any]:
    """A JSON-ready view of an entry (what `syncbot sync-log --json` prints)."""
    when = tz(entry.created_at) if tz else entry.created_at
    return {
        "id": entry.id, "timestamp": when.isoformat(), "entity": entry.entity, "record_id": entry.record_id,
        "record": entry.record_label, "direction": entry.direction, "status": entry.status, "kind": entry.kind,
        "severity": severity(entry.kind, entry.status),
        "meaning": (entry.data or {}).get("meaning") if isinstance(entry.data, dict) else None,
        "details": entry.details, "attempt": entry.attempt, "actor": entry.actor,
        "resolved_at": entry.resolved_at.isoformat() if entry.resolved_at else None,
        "retried_by": entry.superseded_by_id, "connection_id": entry.connection_id,
        "intuit_tid": entry.intuit_tid, "codes": entry.codes,
    }
