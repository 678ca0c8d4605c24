"""What a company's objects are: the entities and name lists the stand-in models (``ENTITIES``,
``REFERENCE_LISTS``, ``QUERYABLE``), the lists each company starts with (``ACCOUNTS``, ``TERMS``, ``TAX_CODES``),
an object as stored (``Stored``) and a deleted transaction (``Tombstone``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.quickbooks.wire import meta_time

ENTITIES: dict[str, str] = {"customer": "Customer", "item": "Item", "invoice": "Invoice", "payment": "Payment"}
#: Name lists other objects refer to: queried and read, changed only on the control API.
REFERENCE_LISTS: dict[str, str] = {"account": "Account", "term": "Term", "taxcode": "TaxCode"}
#: What a query may select from.
QUERYABLE: dict[str, str] = {**ENTITIES, **REFERENCE_LISTS}
LIST_ENTITIES = ("Customer", "Item", *REFERENCE_LISTS.values())
#: Each company's chart of accounts at creation: ids 1, 79, 80 and 81 as in Intuit's sample company (public client
#: library issues quote them: ruckus/quickbooks-ruby#318, #528), the others the stand-in's; one income account
#: inactive. (Id, Name, AccountType, AccountSubType, Active).
ACCOUNTS: tuple[tuple[str, str, str, str, bool], ...] = (
    ("1", "Services", "Income", "ServiceFeeIncome", True),
    ("7", "Advertising", "Expense", "AdvertisingPromotional", True),
    ("35", "Checking", "Bank", "Checking", True),
    ("79", "Sales of Product Income", "Income", "SalesOfProductIncome", True),
    ("80", "Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs", True),
    ("81", "Inventory Asset", "Other Current Asset", "Inventory", True),
    ("84", "Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable", True),
    ("90", "Construction Labor Income", "Income", "ServiceFeeIncome", True),
    ("91", "Materials Income", "Income", "SalesOfProductIncome", True),
    ("92", "Permits and Fees Income", "Income", "OtherPrimaryIncome", True),
    ("93", "Old Jobs Income", "Income", "OtherPrimaryIncome", False),
)
#: Sales terms at creation: (Id, Name, DueDays).
TERMS: tuple[tuple[str, str, int], ...] = (
    ("1", "Due on receipt", 0), ("2", "Net 10", 10), ("3", "Net 15", 15), ("4", "Net 30", 30), ("5", "Net 60", 60))
#: Tax codes at creation: a US company's line codes (Id, Name, Description, Taxable).
TAX_CODES: tuple[tuple[str, str, str, bool], ...] = (("TAX", "TAX", "Taxable", True),
                                                     ("NON", "NON", "Non-taxable", False))
#: The account references an Item may carry.
ITEM_ACCOUNT_REFS = ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef")
TRANSACTIONS = ("Invoice", "Payment")
NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")


def canonical_entity(name: str) -> str | None:
    """``customer`` / ``Customer`` -> ``Customer``; None for entities the stand-in does not model."""
    return ENTITIES.get(name.lower())


def canonical_list(name: str) -> str | None:
    """``account`` -> ``Account``: an entity or a reference list (the control API's names); None for others."""
    return QUERYABLE.get(name.lower())


@dataclass
class Stored:
    """One object as stored: its fields (``MetaData`` included) and its create/update times (stand-in clock)."""

    data: dict[str, Any]
    created: float
    updated: float
    tax_override: bool = False  # an invoice whose tax was stated explicitly under automated sales tax

    def stamp(self, now: float) -> None:
        """Record a change at ``now``: ``updated`` and ``MetaData`` move (never backwards)."""
        self.updated = max(now, self.updated)
        self.data["MetaData"] = {"CreateTime": meta_time(self.created), "LastUpdatedTime": meta_time(self.updated)}


@dataclass
class Tombstone:
    """A deleted transaction: when it was deleted and its last state (kept so a control call can restore it)."""

    deleted_at: float
    last: Stored
