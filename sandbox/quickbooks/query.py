"""The QBO query language (a pared-down SQL ``SELECT``), parsed and run over plain dicts.

In: the text of ``?query=`` (or a batch item's ``Query``). Out: a ``Query`` (``parse``) and, given the rendered
objects of one entity, the ``QueryResponse`` dict (``Query.run``).

Supported, per Intuit's "Query operations and syntax" page and the blog posts "Deep dive: SQL queries" /
"Advanced SQL queries"::

    SELECT * | count(*) | Field[, Field...] FROM Entity
        [WHERE cond [AND cond ...]]          cond: Field (= | < | > | <= | >= | LIKE) value | Field IN (v, ...)
        [ORDERBY Field [ASC|DESC][, ...]]
        [STARTPOSITION n] [MAXRESULTS m]

Keywords are case-insensitive; strings are single-quoted with ``\\'`` escapes; no OR, no joins. ``MAXRESULTS``
defaults to 100 and may not exceed 1000. Fields may be dotted (``MetaData.LastUpdatedTime``); a reference field
(``CustomerRef``) compares by its ``value``. String comparisons are case-insensitive. As the docs say,
``SELECT * FROM Customer`` returns *active* customers only: for the name lists (Customer, Item, Account, Term,
TaxCode) an implicit ``Active = true`` applies unless the WHERE clause names ``Active``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sandbox.quickbooks import faults
from sandbox.quickbooks.wire import parse_time

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:\\.|[^'\\])*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<op><=|>=|!=|=|<|>)"
    r"|(?P<punct>[(),*])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
_ISO_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}")
MAX_RESULTS_LIMIT = 1000
DEFAULT_MAX_RESULTS = 100
LIST_ENTITIES = ("Customer", "Item", "Account", "Term", "TaxCode")
T = TypeVar("T")


@dataclass
class Condition:
    """``field op value`` or ``field IN (values)``."""

    field: str
    op: str
    values: list[Any]


@dataclass
class Query:
    """A parsed SELECT."""

    entity: str
    count: bool = False
    fields: list[str] | None = None  # None means *
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    start: int = 1
    max_results: int = DEFAULT_MAX_RESULTS

    def matches(self, obj: dict[str, Any]) -> bool:
        """True when ``obj`` (a rendered entity) satisfies every condition (and the implicit Active filter)."""
        implicit_active = self.entity in LIST_ENTITIES and not any(c.field.lower() == "active" for c in self.where)
        if implicit_active and obj.get("Active", True) is False:
            return False
        return all(_holds(c, lookup(obj, c.field)) for c in self.where)

    def run(self, objects: Sequence[T], view: Callable[[T], dict[str, Any]],
            render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
        """Filter, order, page and project ``objects``; return the ``QueryResponse`` value.

        ``view`` gives the fields to match an object on (not copied); ``render`` gives the answer's copy, called
        only for the objects of the page.
        """
        hits = [o for o in objects if self.matches(view(o))]
        if self.count:
            return {"totalCount": len(hits)}
        for name, descending in reversed(self.order):
            hits.sort(key=_order_key(view, name), reverse=descending)
        page = [render(o) for o in hits[self.start - 1 : self.start - 1 + self.max_results]]
        if not page:
            return {}
        if self.fields is not None:
            page = [_project(o, self.fields) for o in page]
        return {self.entity: page, "startPosition": self.start, "maxResults": len(page)}


def lookup(obj: dict[str, Any], path: str) -> Any:
    """The value at a dotted, case-insensitive ``path``; a reference dict yields its ``value``."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        if part in current:
            current = current[part]
            continue
        key = next((k for k in current if k.lower() == part.lower()), None)
        if key is None:
            return None
        current = current[key]
    if isinstance(current, dict) and "value" in current:
        return current["value"]
    return current


def _project(obj: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"Id": obj.get("Id")}
    for name in fields:
        key = next((k for k in obj if k.lower() == name.split(".")[0].lower()), None)
        if key is not None:
            out[key] = obj[key]
    out["domain"] = "QBO"
    out["sparse"] = True
    return out


def _comparable(actual: Any, literal: Any) -> tuple[Any, Any] | None:
    """Coerce an object's value and a query literal to one comparable type, or None when they cannot be."""
    if actual is None:
        return None
    if isinstance(actual, bool):
        text = str(literal).lower()
        return (actual, text == "true") if text in ("true", "false") else None
    if isinstance(actual, int | float):
        try:
            return float(actual), float(literal)
        except (TypeError, ValueError):
            return None
    text = str(actual)
    if isinstance(literal, str) and _ISO_LIKE.match(text) and _ISO_LIKE.match(literal):
        left, right = parse_time(text), parse_time(literal)
        if left is not None and right is not None:
            return left, right
    return text.casefold(), str(literal).casefold()


def _holds(cond: Condition, actual: Any) -> bool:
    if cond.op == "in":
        return any(_compare(actual, "=", v) for v in cond.values)
    return _compare(actual, cond.op, cond.values[0])


def _compare(actual: Any, op: str, literal: Any) -> bool:
    if op == "like":
        if actual is None:
            return False
        pattern = "^" + ".*".join(re.escape(p) for p in str(literal).split("%")) + "$"
        return re.match(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
    pair = _comparable(actual, literal)
    if pair is None:
        return False
    left, right = pair
    try:
        return {
            "=": left == right, "!=": left != right, "<": left < right,
            ">": left > right, "<=": left <= right, ">=": left >= right,
        }[op]
    except TypeError:
        return False


def _order_key(view: Callable[[T], dict[str, Any]], name: str) -> Callable[[T], tuple[int, Any]]:
    """The sort key of each object by the field ``name`` (a path, as :func:`lookup` reads it) of its view."""
    return lambda o: _sort_key(lookup(view(o), name))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, float(value))
    text = str(value)
    if text.isdigit():
        return (1, float(text))
    return (2, text.casefold())


class _Tokens:
    def __init__(self, text: str):
        self.items: list[tuple[str, str, int]] = []
        pos = 0
        text = text.rstrip().rstrip(";")
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise faults.query_parse(f'Encountered " "{text[pos:pos + 1]}" at line 1, column {pos + 1}.')
            kind = match.lastgroup or ""
            self.items.append((kind, match.group(kind), match.start(kind) + 1))
            pos = match.end()
        self.index = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.items[self.index] if self.index < len(self.items) else None

    def next(self, expected: str = "token") -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise faults.query_parse(f"Encountered \"<EOF>\". Was expecting {expected}.")
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].lower() in words:
            self.index += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            token = self.peek()
            shown = token[1] if token else "<EOF>"
            column = token[2] if token else 0
            raise faults.query_parse(f'Encountered " "{shown}" at line 1, column {column}. Was expecting {word}.')

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token and token[0] in ("punct", "op") and token[1] == char:
            self.index += 1
            return True
        return False


def _literal(tokens: _Tokens) -> Any:
    kind, text, column = tokens.next("a value")
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "number":
        return text
    if kind == "word" and text.lower() in ("true", "false"):
        return text.lower()
    raise faults.query_parse(f'Encountered " "{text}" at line 1, column {column}. Was expecting a value.')


def _integer(tokens: _Tokens, what: str) -> int:
    kind, text, column = tokens.next(what)
    if kind != "number" or not text.lstrip("-").isdigit():
        raise faults.query_parse(f'Encountered " "{text}" at line 1, column {column}. Was expecting {what}.')
    return int(text)


def parse(text: str, entities: dict[str, str]) -> Query:
    """Parse ``text``; ``entities`` maps lower-case entity names to their canonical names.

    Raises ``QBOFault`` 4000 (parse error) or 4001 (unknown entity, MAXRESULTS over 1000).
    """
    tokens = _Tokens(text)
    tokens.expect_keyword("select")
    count = False
    fields: list[str] | None = None
    if tokens.punct("*"):
        pass
    elif tokens.keyword("count"):
        if not (tokens.punct("(") and tokens.punct("*") and tokens.punct(")")):
            raise faults.query_parse("count must be written count(*)")
        count = True
    else:
        fields = []
        while True:
            kind, name, column = tokens.next("a field")
            if kind != "word":
                raise faults.query_parse(f'Encountered " "{name}" at line 1, column {column}.')
            fields.append(name)
            if not tokens.punct(","):
                break
    tokens.expect_keyword("from")
    kind, name, _ = tokens.next("an entity")
    entity = entities.get(name.lower())
    if kind != "word" or entity is None:
        raise faults.query_invalid(f"Entity {name} is not supported or not queryable")
    query = Query(entity=entity, count=count, fields=fields)
    if tokens.keyword("where"):
        while True:
            query.where.append(_condition(tokens))
            if not tokens.keyword("and"):
                break
    if tokens.keyword("orderby", "order"):
        tokens.keyword("by")
        while True:
            _, name, _ = tokens.next("a field")
            descending = tokens.keyword("desc")
            if not descending:
                tokens.keyword("asc")
            query.order.append((name, descending))
            if not tokens.punct(","):
                break
    while tokens.peek() is not None:
        if tokens.keyword("startposition"):
            query.start = max(1, _integer(tokens, "a number"))
        elif tokens.keyword("maxresults"):
            query.max_results = _integer(tokens, "a number")
            if query.max_results > MAX_RESULTS_LIMIT:
                raise faults.query_invalid(
                    f"value {query.max_results} is too large. Max allowed value is {MAX_RESULTS_LIMIT}")
            if query.max_results < 0:
                raise faults.query_invalid("MAXRESULTS must not be negative")
        else:
            _, text_, column = tokens.next()
            raise faults.query_parse(f'Encountered " "{text_}" at line 1, column {column}.')
    return query


def _condition(tokens: _Tokens) -> Condition:
    kind, name, column = tokens.next("a field")
    if kind != "word":
        raise faults.query_parse(f'Encountered " "{name}" at line 1, column {column}. Was expecting a field.')
    if name.lower() == "or":
        raise faults.query_parse(f'Encountered " "OR" at line 1, column {column}. OR is not supported.')
    if tokens.keyword("in"):
        if not tokens.punct("("):
            raise faults.query_parse("IN must be followed by a parenthesised list")
        values = [_literal(tokens)]
        while tokens.punct(","):
            values.append(_literal(tokens))
        if not tokens.punct(")"):
            raise faults.query_parse("IN list is not closed")
        return Condition(name, "in", values)
    if tokens.keyword("like"):
        return Condition(name, "like", [_literal(tokens)])
    op_kind, op, op_column = tokens.next("an operator")
    if op_kind != "op":
        raise faults.query_parse(f'Encountered " "{op}" at line 1, column {op_column}. Was expecting an operator.')
    return Condition(name, op, [_literal(tokens)])
