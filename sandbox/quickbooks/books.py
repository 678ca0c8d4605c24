"""One QuickBooks Online company (a realm) and its book-keeping: Customers, Items, Invoices, Payments.

In: request bodies as QBO accepts them (dicts), the stand-in clock (epoch seconds). Out: the objects QBO answers
with (dicts with ``Id``, ``SyncToken``, ``MetaData``, ``domain``, ``sparse``), or a raised ``QBOFault``.
Not thread-safe by itself: ``QuickBooksStandIn`` calls it under its lock.

The rules of each kind of object are in ``rules.py``, what the objects are in ``objects.py``.

Platform facts (Intuit developer docs, Accounting API reference pages "Customer", "Item", "Invoice", "Payment",
"Change data capture", "Batch", "Query operations and syntax"; Intuit blog "Top errors"; the public client libraries
python-quickbooks, node-quickbooks, quickbooks-ruby) and where this stand-in simplifies:

- Create and update are both ``POST .../{entity}``; an update carries ``Id`` and the current ``SyncToken``
  (a string that goes up by one per change; a stale one gives 5010). ``"sparse": true`` changes only the fields
  sent; a full update replaces the object (fields not sent are cleared); sending ``Line`` replaces all lines.
- Customers and Items are never deleted, only made inactive (``Active: false``); deleting them is 500
  "Unsupported Operation". Invoices and Payments delete with ``?operation=delete`` (answer
  ``{"Invoice": {"Id", "status": "Deleted", "domain"}}``), invoices void with ``?operation=void``.
- Updating or reading a deleted transaction -> 610 "Another user has deleted this transaction."; updating an
  inactive customer or item -> 610 unless the update sets ``Active: true`` (reactivation).
- Unknown properties are kept as sent (real QBO rejects some with 2010); classes and currencies are not modelled.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from sandbox.quickbooks import faults
from sandbox.quickbooks.objects import (
    ACCOUNTS,
    LIST_ENTITIES,
    QUERYABLE,
    TAX_CODES,
    TERMS,
    TRANSACTIONS,
    Stored,
    Tombstone,
)
from sandbox.quickbooks.query import Query
from sandbox.quickbooks.rules import TAX_OVERRIDE, EntityRules, linked_invoices
from sandbox.quickbooks.wire import meta_time

SERVER_FIELDS = ("Id", "SyncToken", "MetaData", "domain", "sparse", "status")
CDC_LIMIT = 1000
CDC_LOOKBACK_SECONDS = 30 * 86400
#: A saved state (``QuickBooksStandIn.save_state``, a pickle) written before ``Stored`` and ``Tombstone`` moved to
#: ``objects.py`` names them as ``sandbox.quickbooks.books.<name>``: they stay importable from here.
SAVED_CLASSES = (Stored, Tombstone)


@dataclass
class Company(EntityRules):
    """A QBO company (realm): its objects, deleted transactions and sales-tax setting."""

    realm_id: str
    name: str
    tax_enabled: bool = False
    tax_rate: Decimal = Decimal("8.875")  # used when automated sales tax is turned on without a rate
    objects: dict[str, dict[str, Stored]] = field(default_factory=lambda: {e: {} for e in QUERYABLE.values()})
    deleted: dict[str, dict[str, Tombstone]] = field(default_factory=lambda: {e: {} for e in TRANSACTIONS})
    next_id: int = 1

    def __post_init__(self) -> None:
        self.seed_lists()

    def seed_lists(self, now: float | None = None) -> None:
        """Give the company its accounts, terms and tax codes when it has none of a list (a new company, or one
        saved by a stand-in that did not keep them)."""
        when = time.time() if now is None else now
        seeds: dict[str, list[dict[str, Any]]] = {
            "Account": [{"Id": i, "Name": n, "FullyQualifiedName": n, "AccountType": t, "AccountSubType": st,
                         "Classification": "Revenue" if t == "Income" else None, "SubAccount": False,
                         "CurrentBalance": 0, "Active": a} for i, n, t, st, a in ACCOUNTS],
            "Term": [{"Id": i, "Name": n, "Type": "STANDARD", "DueDays": d, "Active": True} for i, n, d in TERMS],
            "TaxCode": [{"Id": i, "Name": n, "Description": d, "Taxable": t, "TaxGroup": False, "Active": True}
                        for i, n, d, t in TAX_CODES],
        }
        for entity, rows in seeds.items():
            if self.objects.get(entity):
                continue
            self.objects[entity] = {}
            for row in rows:
                stored = Stored(_ordered_fields({"SyncToken": "0", **{k: v for k, v in row.items() if v is not None}}),
                                when, when)
                stored.stamp(when)
                self.objects[entity][row["Id"]] = stored

    # --- reading ------------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """``{"realm_id", "name", "tax_enabled", "tax_rate"}`` plus object counts per entity."""
        return {
            "realm_id": self.realm_id,
            "name": self.name,
            "tax_enabled": self.tax_enabled,
            "tax_rate": float(self.tax_rate),
            "counts": {e: len(objs) for e, objs in self.objects.items()},
        }

    def render(self, stored: Stored) -> dict[str, Any]:
        """The object as QBO answers it (a deep copy, with ``MetaData``)."""
        out = {k: copy.deepcopy(v) for k, v in stored.data.items() if k != "MetaData"}
        out["domain"] = "QBO"
        out["sparse"] = False
        out["MetaData"] = dict(stored.data["MetaData"])
        return out

    def all(self, entity: str) -> list[dict[str, Any]]:
        """Every live object of ``entity`` (active or not), rendered, in Id order."""
        return [self.render(s) for s in self._ordered(entity)]

    def tombstones(self, entity: str) -> list[dict[str, Any]]:
        """Deleted ``entity`` objects as CDC shows them."""
        return [self._deleted_stub(entity, i, t) for i, t in self.deleted.get(entity, {}).items()]

    def read(self, entity: str, obj_id: str) -> dict[str, Any]:
        """``GET .../{entity}/{id}``: the object, or 610 when it is unknown or deleted."""
        stored = self.objects[entity].get(str(obj_id))
        if stored is None:
            raise faults.not_found_deleted() if entity in TRANSACTIONS else faults.not_found_inactive()
        return self.render(stored)

    def query(self, query: Query) -> dict[str, Any]:
        """Run a parsed query over this company's objects; the ``QueryResponse`` value."""
        return query.run(self._ordered(query.entity), view=lambda s: s.data, render=self.render)

    def change_data(self, entities: list[str], since: float, now: float) -> list[dict[str, Any]]:
        """CDC: per entity, objects changed (or deleted) at or after ``since``; the ``QueryResponse`` list.

        At most 1000 objects in all (the oldest changes first); ``since`` older than 30 days -> 6000 fault.
        """
        if since < now - CDC_LOOKBACK_SECONDS:
            raise faults.business(
                f"Operation cdc with changedSince date {meta_time(since)} which is older than fixed days is not "
                "supported.", "changedSince")
        changes: list[tuple[float, str, Callable[[], dict[str, Any]]]] = []
        for entity in entities:
            changes += [(s.updated, entity, partial(self.render, s))
                        for s in self._ordered(entity) if s.updated >= since]
            changes += [(t.deleted_at, entity, partial(self._deleted_stub, entity, i, t))
                        for i, t in self.deleted.get(entity, {}).items() if t.deleted_at >= since]
        changes.sort(key=lambda c: c[0])
        kept = [(entity, show()) for _, entity, show in changes[:CDC_LIMIT]]  # render only what is answered
        answer: list[dict[str, Any]] = []
        for entity in entities:
            objs = [obj for e, obj in kept if e == entity]
            if objs:
                answer.append({entity: objs, "startPosition": 1, "maxResults": len(objs), "totalCount": len(objs)})
            else:
                answer.append({"startPosition": 1, "maxResults": 0, "totalCount": 0})
        return answer

    # --- writing ------------------------------------------------------------------------------------------

    def save(self, entity: str, body: dict[str, Any], now: float) -> dict[str, Any]:
        """``POST .../{entity}``: create (no ``Id``) or update (``Id`` + ``SyncToken``, ``sparse`` or full)."""
        if not isinstance(body, dict):
            raise faults.invalid_property(f"{entity} body is not an object")
        if body.get("Id") in (None, ""):
            return self.create(entity, body, now)
        return self.update(entity, body, now)

    def create(self, entity: str, body: dict[str, Any], now: float) -> dict[str, Any]:
        """Create ``entity`` from ``body``; the rendered new object."""
        data = {k: copy.deepcopy(v) for k, v in body.items() if k not in SERVER_FIELDS}
        obj_id = str(self.next_id)
        data = self._normalise(entity, data, obj_id, None, now, sent=data)
        self.next_id += 1
        override = bool(data.pop(TAX_OVERRIDE, False))
        data["Id"] = obj_id
        data["SyncToken"] = "0"
        stored = Stored(_ordered_fields(data), now, now, tax_override=override)
        stored.stamp(now)
        self.objects[entity][obj_id] = stored
        self._after_write(entity, stored, None, now)
        return self.render(stored)

    def update(self, entity: str, body: dict[str, Any], now: float) -> dict[str, Any]:
        """Update ``entity`` ``body["Id"]`` (sparse when ``body["sparse"]`` is true)."""
        obj_id = str(body["Id"])
        stored = self._live(entity, obj_id)
        if body.get("SyncToken") in (None, ""):
            raise faults.required("SyncToken")
        if str(body["SyncToken"]) != stored.data["SyncToken"]:
            raise faults.stale_object()
        if (entity in LIST_ENTITIES and stored.data.get("Active", True) is False
                and body.get("Active") is not True):
            raise faults.not_found_inactive()
        sent = {k: copy.deepcopy(v) for k, v in body.items() if k not in SERVER_FIELDS}
        if body.get("sparse") is True:
            merged = {k: copy.deepcopy(v) for k, v in stored.data.items() if k not in SERVER_FIELDS}
            merged.update(sent)
        else:
            merged = sent
        return self._replace(entity, stored, merged, now, sent=sent)

    def user_update(self, entity: str, obj_id: str, changes: dict[str, Any], now: float) -> dict[str, Any]:
        """A change made by a QBO user in the web app: a sparse merge without SyncToken checks."""
        stored = self._live(entity, obj_id)
        merged = {k: copy.deepcopy(v) for k, v in stored.data.items() if k not in SERVER_FIELDS}
        sent = {k: copy.deepcopy(v) for k, v in changes.items() if k not in SERVER_FIELDS}
        merged.update(sent)
        return self._replace(entity, stored, merged, now, sent=sent)

    def delete(self, entity: str, body: dict[str, Any], now: float) -> dict[str, Any]:
        """``?operation=delete`` of a transaction (``Id`` + ``SyncToken``); the deleted stub."""
        if entity not in TRANSACTIONS:
            raise faults.unsupported("Delete")
        obj_id = str(body.get("Id") or "")
        if not obj_id:
            raise faults.required("Id")
        stored = self._live(entity, obj_id)
        if body.get("SyncToken") in (None, ""):
            raise faults.required("SyncToken")
        if str(body["SyncToken"]) != stored.data["SyncToken"]:
            raise faults.stale_object()
        self.remove(entity, obj_id, now)
        return {"Id": obj_id, "status": "Deleted", "domain": "QBO"}

    def void(self, entity: str, body: dict[str, Any], now: float) -> dict[str, Any]:
        """``?operation=void`` of an invoice: amounts go to zero, the DocNumber stays, ``PrivateNote`` "Voided"."""
        if entity != "Invoice":
            raise faults.unsupported("Void")
        stored = self._live(entity, str(body.get("Id") or ""))
        if body.get("SyncToken") in (None, ""):
            raise faults.required("SyncToken")
        if str(body["SyncToken"]) != stored.data["SyncToken"]:
            raise faults.stale_object()
        data = stored.data
        for line in data.get("Line", []):
            line["Amount"] = 0.0
            detail = line.get("SalesItemLineDetail")
            if isinstance(detail, dict):
                detail.pop("Qty", None)
                detail["UnitPrice"] = 0
        tax = data.setdefault("TxnTaxDetail", {})
        tax["TotalTax"] = 0.0
        tax.pop("TaxLine", None)
        data["TotalAmt"] = 0.0
        data["Balance"] = 0.0
        data["PrivateNote"] = "Voided"
        self._bump(stored, now)
        return self.render(stored)

    def remove(self, entity: str, obj_id: str, now: float) -> dict[str, Any]:
        """Delete as a QBO user would: transactions are hard-deleted, customers and items made inactive."""
        stored = self._live(entity, obj_id)
        if entity in LIST_ENTITIES:
            stored.data["Active"] = False
            self._bump(stored, now)
            return self.render(stored)
        del self.objects[entity][obj_id]
        self.deleted[entity][obj_id] = Tombstone(now, stored)
        if entity == "Payment":
            self._relink_invoices(linked_invoices(stored.data), now)
        return {"Id": obj_id, "status": "Deleted", "domain": "QBO"}

    def restore(self, entity: str, obj_id: str, now: float) -> dict[str, Any]:
        """Undo ``remove``: reactivate a customer or item, or bring a deleted transaction back (a stand-in extra)."""
        if entity in LIST_ENTITIES:
            stored = self._live(entity, obj_id)
            stored.data["Active"] = True
            self._bump(stored, now)
            return self.render(stored)
        tomb = self.deleted[entity].pop(obj_id, None)
        if tomb is None:
            return self.read(entity, obj_id)
        self.objects[entity][obj_id] = tomb.last
        self._bump(tomb.last, now)
        self._after_write(entity, tomb.last, None, now)
        return self.render(tomb.last)

    # --- internals ----------------------------------------------------------------------------------------

    def _ordered(self, entity: str) -> list[Stored]:
        return [self.objects[entity][k] for k in sorted(self.objects[entity], key=_id_order)]

    def _deleted_stub(self, entity: str, obj_id: str, tomb: Tombstone) -> dict[str, Any]:
        return {"Id": obj_id, "status": "Deleted", "domain": "QBO",
                "MetaData": {"LastUpdatedTime": meta_time(tomb.deleted_at)}}

    def _live(self, entity: str, obj_id: str) -> Stored:
        stored = self.objects[entity].get(obj_id)
        if stored is None:
            raise faults.not_found_deleted() if entity in TRANSACTIONS else faults.not_found_inactive()
        return stored

    def _bump(self, stored: Stored, now: float) -> None:
        stored.data["SyncToken"] = str(int(stored.data["SyncToken"]) + 1)
        stored.stamp(now)

    def _replace(self, entity: str, stored: Stored, data: dict[str, Any], now: float,
                 sent: dict[str, Any] | None = None) -> dict[str, Any]:
        obj_id = stored.data["Id"]
        before = copy.deepcopy(stored.data)
        data = self._normalise(entity, data, obj_id, stored, now, sent=sent)
        stored.tax_override = bool(data.pop(TAX_OVERRIDE, False))
        data["Id"] = obj_id
        data["SyncToken"] = stored.data["SyncToken"]
        stored.data = _ordered_fields(data)
        self._bump(stored, now)
        self._after_write(entity, stored, before, now)
        return self.render(stored)

    def _after_write(self, entity: str, stored: Stored, before: dict[str, Any] | None, now: float) -> None:
        if entity == "Payment":
            touched = linked_invoices(stored.data) | (linked_invoices(before) if before else set())
            self._relink_invoices(touched, now)
        elif entity == "Invoice":
            self._set_balance(stored)


def _id_order(obj_id: str) -> tuple[int, int, str]:
    """Ids in QBO's order: numbers by value, then the named ones (a US company's TAX and NON codes)."""
    return (0, int(obj_id), "") if obj_id.isdigit() else (1, 0, obj_id)


def _ordered_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Put ``Id`` and ``SyncToken`` first, as QBO's answers read."""
    head = {k: data[k] for k in ("Id", "SyncToken") if k in data}
    return {**head, **{k: v for k, v in data.items() if k not in head}}
