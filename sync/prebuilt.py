"""Statements built once and reused with bind parameters, for the engine's hot paths (a batch of 30 records, one
request to QuickBooks): building an ORM select with OR, IN and EXISTS took longer (0.3 to 0.5 ms) than running it
(bench/README.md, "the engine's CPU per record, round 2"). A statement whose shape depends on how many kinds of
record it names is built once per shape (:func:`shaped`); the records are named by :func:`records_clause` with
the parameters of :func:`records_params`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import and_, bindparam, false, or_

#: Statements by shape (see :func:`shaped`).
_SHAPED: dict[tuple[Any, ...], Any] = {}


def by_entity(keys: Iterable[tuple[str, int]]) -> dict[str, set[int]]:
    """Records ``keys`` ((entity, record id)) grouped by entity: entity -> record ids."""
    out: dict[str, set[int]] = {}
    for entity, record_id in keys:
        out.setdefault(str(entity), set()).add(int(record_id))
    return out


def shaped(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """The statement of shape ``key`` (a name and the counts its form depends on), built by ``build`` the first
    time and kept for the process."""
    stmt = _SHAPED.get(key)
    if stmt is None:
        stmt = _SHAPED.setdefault(key, build())
    return stmt


def records_clause(entity: Any, column: Any, count: int, prefix: str) -> Any:
    """The SQL condition for ``count`` groups of records: ``entity`` equals a group's entity and ``column`` is one
    of its values (``{prefix}e{i}``, ``{prefix}ids{i}``: :func:`records_params`); false for none."""
    if not count:
        return false()
    return or_(*(and_(entity == bindparam(f"{prefix}e{i}"), column.in_(bindparam(f"{prefix}ids{i}", expanding=True)))
                 for i in range(count)))


def records_params(groups: Mapping[str, Collection[Any]], prefix: str) -> dict[str, Any]:
    """The parameters of :func:`records_clause` for ``groups`` (entity -> values, as :func:`by_entity` gives)."""
    params: dict[str, Any] = {}
    for i, (entity, ids) in enumerate(groups.items()):
        params[f"{prefix}e{i}"], params[f"{prefix}ids{i}"] = entity, sorted(ids)
    return params
