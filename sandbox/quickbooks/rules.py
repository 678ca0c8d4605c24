"""What QuickBooks checks and fills in on each kind of object as it is saved (``EntityRules``, mixed into
``books.Company``): customers', items' and the name lists' names, references to other objects, an invoice's
lines, totals and sales tax, a payment's links to invoices and the invoices' balances.

Platform facts (Intuit developer docs, Accounting API reference pages "Customer", "Item", "Invoice", "Payment",
"Change data capture", "Batch", "Query operations and syntax"; Intuit blog "Top errors"; the public client libraries
python-quickbooks, node-quickbooks, quickbooks-ruby) and where this stand-in simplifies:

- Customer ``DisplayName`` is unique (case-insensitive) among active customers (in real QBO also vendors and
  employees) -> 6240; without DisplayName it is built from Title, GivenName, MiddleName, FamilyName, Suffix; with
  none of them -> 6080 "No Name Provided". Item ``Name`` is unique among active items -> 6240; Service and
  NonInventory items need ``IncomeAccountRef`` -> 2020.
  Name lengths: DisplayName 500, Item Name 100 -> 2050.
- Invoice needs ``CustomerRef`` and ``Line`` -> 2020. A reference to an unknown id -> 2500 Invalid Reference Id;
  to an inactive customer or item -> 610 Object Not Found ("... has been made inactive ..."). A DocNumber used by
  another invoice -> 6140 (with QBO's ``DocNumber=... is assigned to TxnType=Invoice with TxnId=...`` tail); no
  DocNumber -> the next free number from 1001. A line without Amount gets ``round(Qty * UnitPrice, 2)``; a line
  whose Amount differs from that -> 6070. QBO computes ``TotalAmt`` itself (a sent value is overwritten):
  sum of sales lines - discount lines + TotalTax; answers carry a ``SubTotalLineDetail`` line and ``Balance``.
  With automated sales tax on (per company, default off; rate default 8.875%), QBO computes
  ``TotalTax = round_half_up(sum of TAX lines * rate / 100, 2)`` and assigns its tax code
  (``TxnTaxDetail.TxnTaxCodeRef``, :data:`AST_TAX_CODE`); a ``TotalTax`` sent alone is ignored. An explicit tax
  overrides it when the request's ``TxnTaxDetail`` carries both ``TxnTaxCodeRef`` and ``TotalTax``: QBO keeps
  that amount (Intuit blog "Using QuickBooks Online API for automated sales tax", 2017-12-11: "Whenever an
  explicit tax amount is sent in the transaction request the AST engine honors the amount and prorates it across
  tax rates in the AST-assigned tax code"; Intuit's SDK maintainer in intuit/QuickBooks-V3-PHP-SDK#199: the
  override is ``TxnTaxDetail.TxnTaxCodeRef`` with ``TxnTaxDetail.TotalTax``, in all other cases the sent tax is
  ignored). The override stays through later updates that send no ``TxnTaxDetail`` (a sparse update of
  other fields); one that sends a ``TxnTaxDetail`` without both decides again. Off, ``TotalTax`` is the sent
  ``TxnTaxDetail.TotalTax`` (default 0).
- Payment needs ``CustomerRef`` and ``TotalAmt``. A ``LinkedTxn`` to an invoice that is gone or belongs to another
  customer -> 620 "TxnID Cannot Be Linked" (what QBO answers, per public error tables); applying more than the
  open balance -> 6000 (wording ours). Linking reduces the invoice's ``Balance`` and adds the payment to the
  invoice's ``LinkedTxn``, which is a change of the invoice: its SyncToken goes up and CDC reports it.
- Name lists referenced by other objects: ``Account`` (the chart of accounts), ``Term`` and ``TaxCode``, seeded per
  company (:data:`ACCOUNTS`, :data:`TERMS`, :data:`TAX_CODES`), read by query (``select * from Account where
  AccountType = 'Income'``; active ones only unless the query names ``Active``) and changed on the control API
  (create, make inactive, restore), not through the API. A reference to one (an Item's ``IncomeAccountRef``,
  ``ExpenseAccountRef`` or ``AssetAccountRef``, an Invoice's ``SalesTermRef``) that is unknown -> 2500 Invalid
  Reference Id naming the field (QBO-21's shape); inactive -> 2500 "Something you're trying to use has been made
  inactive" (intuit/QuickBooks-V3-PHP-SDK#110). A line's ``TaxCodeRef`` other than TAX, NON or an active tax
  code's Id -> 6100 "Valid line TaxCodes for US should be TAX or NON" (QBO-30).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from sandbox.quickbooks import faults
from sandbox.quickbooks.objects import ITEM_ACCOUNT_REFS, NAME_PARTS, REFERENCE_LISTS, Stored
from sandbox.quickbooks.wire import amount_out, cents, local_date, money

#: The tax code the automated sales tax engine assigns to the invoices it computes the tax of (tax codes are
#: not modelled otherwise: any TxnTaxCodeRef sent is kept as sent).
AST_TAX_CODE = "2"
#: A key ``_invoice`` leaves in the data it returns for ``create`` / ``_replace`` to pop: whether the invoice's tax
#: is an explicit override (kept on :class:`Stored`, never shown).
TAX_OVERRIDE = "_tax_override"


class EntityRules:
    """The rules of each kind of object, as methods of the company (``books.Company``) whose objects and sales-tax
    setting they read; ``_normalise`` is the one the company calls."""

    objects: dict[str, dict[str, Stored]]
    tax_enabled: bool
    tax_rate: Decimal

    def _bump(self, stored: Stored, now: float) -> None:
        """The company's (``books.Company._bump``): a change of ``stored`` (its SyncToken and times move)."""
        raise NotImplementedError

    def _normalise(self, entity: str, data: dict[str, Any], obj_id: str, current: Stored | None,
                   now: float, sent: dict[str, Any] | None = None) -> dict[str, Any]:
        """The object to store from ``data`` (what is saved: for a sparse update, the stored fields with those
        ``sent`` in this request over them)."""
        if entity == "Customer":
            return self._customer(data, obj_id)
        if entity == "Item":
            return self._item(data, obj_id)
        if entity in REFERENCE_LISTS.values():
            return self._list_object(entity, data)
        if not data.get("TxnDate"):
            data["TxnDate"] = local_date(now)
        if entity == "Invoice":
            return self._invoice(data, obj_id, current, sent)
        return self._payment(data, obj_id)

    def _active_with(self, entity: str, key: str, value: str, obj_id: str) -> Stored | None:
        folded = value.casefold()
        for other in self.objects[entity].values():
            if (other.data["Id"] != obj_id and other.data.get("Active", True) is not False
                    and str(other.data.get(key, "")).casefold() == folded):
                return other
        return None

    def _customer(self, data: dict[str, Any], obj_id: str) -> dict[str, Any]:
        name = str(data.get("DisplayName") or "").strip()
        if not name:
            name = " ".join(str(data[p]).strip() for p in NAME_PARTS if str(data.get(p) or "").strip())
        if not name:
            raise faults.no_name()
        if len(name) > 500:
            raise faults.string_length("DisplayName", 500, len(name))
        data["DisplayName"] = name
        data.setdefault("Active", True)
        if data["Active"] is not False and self._active_with("Customer", "DisplayName", name, obj_id):
            raise faults.duplicate_name("Customer")
        data["FullyQualifiedName"] = name
        data.setdefault("PrintOnCheckName", name)
        data.setdefault("Job", False)
        data.setdefault("BillWithParent", False)
        data.setdefault("Taxable", True)
        data.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        return data

    def _item(self, data: dict[str, Any], obj_id: str) -> dict[str, Any]:
        name = str(data.get("Name") or "").strip()
        if not name:
            raise faults.required("Name")
        if len(name) > 100:
            raise faults.string_length("Name", 100, len(name))
        data["Name"] = name
        data.setdefault("Type", "Service")
        if data["Type"] in ("Service", "NonInventory", "Inventory") and not _ref_value(data.get("IncomeAccountRef")):
            raise faults.required("IncomeAccountRef")
        for ref in ITEM_ACCOUNT_REFS:
            if data.get(ref) is not None:
                account = self._list_reference("Account", data[ref], ref)
                data[ref] = {"value": account.data["Id"], "name": account.data["Name"]}
        data.setdefault("Active", True)
        if data["Active"] is not False and self._active_with("Item", "Name", name, obj_id):
            raise faults.duplicate_name("Item")
        data["FullyQualifiedName"] = name
        data.setdefault("Taxable", False)
        data.setdefault("UnitPrice", 0)
        return data

    def _reference(self, entity: str, ref: Any, element: str) -> Stored:
        """Resolve a reference to a customer or item: 2500 when unknown, 610 when inactive."""
        value = _ref_value(ref)
        stored = self.objects[entity].get(value)
        if stored is None:
            raise faults.invalid_reference(element)
        if stored.data.get("Active", True) is False:
            raise faults.not_found_inactive(element)
        return stored

    def _list_reference(self, entity: str, ref: Any, element: str) -> Stored:
        """Resolve a reference to an account, term or tax code: 2500 when unknown, 2500 "made inactive" when
        inactive."""
        stored = self.objects[entity].get(_ref_value(ref))
        if stored is None:
            raise faults.invalid_reference(element)
        if stored.data.get("Active", True) is False:
            raise faults.invalid_reference_inactive(element)
        return stored

    def _list_object(self, entity: str, data: dict[str, Any]) -> dict[str, Any]:
        """An account, term or tax code made on the control API: a name, active by default."""
        name = str(data.get("Name") or "").strip()
        if not name:
            raise faults.required("Name")
        data["Name"] = name
        data.setdefault("Active", True)
        if entity == "Account":
            data.setdefault("FullyQualifiedName", name)
            data.setdefault("AccountType", "Income")
        return data

    def _invoice(self, data: dict[str, Any], obj_id: str, current: Stored | None,
                 sent: dict[str, Any] | None = None) -> dict[str, Any]:
        if not _ref_value(data.get("CustomerRef")):
            raise faults.required("CustomerRef")
        lines = data.get("Line")
        if not isinstance(lines, list) or not [x for x in lines if _detail_type(x) != "SubTotalLineDetail"]:
            raise faults.required("Line")
        customer = self._reference("Customer", data["CustomerRef"], "CustomerRef")
        data["CustomerRef"] = {"value": customer.data["Id"], "name": customer.data["DisplayName"]}
        if data.get("SalesTermRef") is not None:
            term = self._list_reference("Term", data["SalesTermRef"], "SalesTermRef")
            data["SalesTermRef"] = {"value": term.data["Id"], "name": term.data["Name"]}

        doc = data.get("DocNumber")
        if doc in (None, ""):
            doc = current.data.get("DocNumber") if current else None
        if doc in (None, ""):
            doc = self._next_doc_number()
        doc = str(doc)
        if len(doc) > 21:
            raise faults.string_length("DocNumber", 21, len(doc))
        for other in self.objects["Invoice"].values():
            if other.data["Id"] != obj_id and other.data.get("DocNumber") == doc:
                raise faults.duplicate_doc_number(doc, "Invoice", other.data["Id"])
        data["DocNumber"] = doc

        out_lines: list[dict[str, Any]] = []
        subtotal = discount = taxable = Decimal("0")
        for raw in lines:
            if not isinstance(raw, dict):
                raise faults.invalid_property("Line")
            kind = _detail_type(raw)
            if kind == "SubTotalLineDetail":
                continue
            number = len(out_lines) + 1
            line = {"Id": str(number), "LineNum": number,
                    **{k: copy.deepcopy(v) for k, v in raw.items() if k not in ("Id", "LineNum")}}
            if kind == "SalesItemLineDetail":
                amount = self._sales_line(line)
                subtotal += amount
                tax_code = _ref_value(line["SalesItemLineDetail"].get("TaxCodeRef")) or "NON"
                known = self.objects["TaxCode"].get(tax_code)
                if tax_code.upper() not in ("TAX", "NON") and (known is None or known.data.get("Active") is False):
                    raise faults.invalid_line_tax_code(tax_code)
                if tax_code.upper() == "TAX":
                    taxable += amount
            elif kind == "DiscountLineDetail":
                amount = cents(_amount(line.get("Amount", 0), "Line.Amount"))
                discount += amount
            elif kind == "DescriptionOnly":
                amount = Decimal("0")
            else:
                amount = cents(_amount(line.get("Amount", 0), "Line.Amount"))
                subtotal += amount
            line["Amount"] = amount_out(amount)
            out_lines.append(line)
        out_lines.append({"Amount": amount_out(subtotal), "DetailType": "SubTotalLineDetail",
                          "SubTotalLineDetail": {}})
        data["Line"] = out_lines

        stated = data.get("TxnTaxDetail")
        tax_detail: dict[str, Any] = stated if isinstance(stated, dict) else {}
        if self.tax_enabled:
            override = _explicit_tax((sent or {}).get("TxnTaxDetail")) if "TxnTaxDetail" in (sent or {}) else (
                current is not None and current.tax_override and _explicit_tax(tax_detail))
            if override:
                total_tax = cents(_amount(tax_detail["TotalTax"], "TxnTaxDetail.TotalTax"))
            else:
                total_tax = cents(taxable * self.tax_rate / Decimal(100))
            code = tax_detail.get("TxnTaxCodeRef") if override else {"value": AST_TAX_CODE}
            data[TAX_OVERRIDE] = override
            tax_detail = {"TxnTaxCodeRef": copy.deepcopy(code), "TotalTax": amount_out(total_tax)}
            tax_detail["TaxLine"] = [{
                "Amount": amount_out(total_tax),
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {"TaxRateRef": {"value": "1"}, "PercentBased": True,
                                  "TaxPercent": float(self.tax_rate), "NetAmountTaxable": amount_out(taxable)},
            }]
        else:
            total_tax = cents(_amount(tax_detail.get("TotalTax", 0), "TxnTaxDetail.TotalTax"))
            tax_detail = dict(tax_detail)
            tax_detail["TotalTax"] = amount_out(total_tax)
        data["TxnTaxDetail"] = tax_detail
        data["TotalAmt"] = amount_out(subtotal - discount + total_tax)
        data.setdefault("DueDate", data["TxnDate"])
        data.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        data.pop("Balance", None)  # Balance and LinkedTxn are QBO's own: _set_balance derives them
        data.pop("LinkedTxn", None)
        return data

    def _sales_line(self, line: dict[str, Any]) -> Decimal:
        detail = line.get("SalesItemLineDetail")
        if not isinstance(detail, dict):
            detail = {}
            line["SalesItemLineDetail"] = detail
        if detail.get("ItemRef") is not None:
            item = self._reference("Item", detail["ItemRef"], "Line.SalesItemLineDetail.ItemRef")
            detail["ItemRef"] = {"value": item.data["Id"], "name": item.data["Name"]}
        qty, price = detail.get("Qty"), detail.get("UnitPrice")
        computed = None
        if qty is not None and price is not None:
            computed = cents(_amount(qty, "Line.SalesItemLineDetail.Qty")
                             * _amount(price, "Line.SalesItemLineDetail.UnitPrice"))
        if line.get("Amount") is None:
            if computed is None:
                raise faults.required("Line.Amount")
            return computed
        amount = cents(_amount(line["Amount"], "Line.Amount"))
        if computed is not None and computed != amount:
            raise faults.amount_calculation(str(line["Amount"]))
        return amount

    def _next_doc_number(self) -> str:
        used = {o.data.get("DocNumber") for o in self.objects["Invoice"].values()}
        number = 1001
        while str(number) in used:
            number += 1
        return str(number)

    def _payment(self, data: dict[str, Any], obj_id: str) -> dict[str, Any]:
        if not _ref_value(data.get("CustomerRef")):
            raise faults.required("CustomerRef")
        if data.get("TotalAmt") is None:
            raise faults.required("TotalAmt")
        customer = self._reference("Customer", data["CustomerRef"], "CustomerRef")
        data["CustomerRef"] = {"value": customer.data["Id"], "name": customer.data["DisplayName"]}
        total = cents(_amount(data["TotalAmt"], "TotalAmt"))
        applied = Decimal("0")
        lines = data.get("Line") or []
        if not isinstance(lines, list):
            raise faults.invalid_property("Line")
        per_invoice: dict[str, Decimal] = {}
        for line in lines:
            if not isinstance(line, dict):
                raise faults.invalid_property("Line")
            amount = cents(_amount(line.get("Amount", 0), "Line.Amount"))
            line["Amount"] = amount_out(amount)
            applied += amount
            for link in line.get("LinkedTxn") or []:
                if str(link.get("TxnType", "Invoice")) != "Invoice":
                    continue
                txn_id = str(link.get("TxnId") or "")
                invoice = self.objects["Invoice"].get(txn_id)
                if invoice is None or _ref_value(invoice.data.get("CustomerRef")) != customer.data["Id"]:
                    raise faults.cannot_link(txn_id)
                per_invoice[txn_id] = per_invoice.get(txn_id, Decimal("0")) + amount
        for txn_id, amount in per_invoice.items():
            invoice = self.objects["Invoice"][txn_id]
            open_balance = money(invoice.data["TotalAmt"]) - self._paid(txn_id, exclude=obj_id)
            if amount > open_balance:
                raise faults.business(
                    f"The amount applied to invoice {invoice.data.get('DocNumber')} ({amount}) is more than its "
                    f"open balance ({open_balance}).", "Line.Amount")
        if applied > total:
            raise faults.business("The payment amount must be at least the sum of the amounts applied.",
                                  "TotalAmt")
        data["TotalAmt"] = amount_out(total)
        data["UnappliedAmt"] = amount_out(total - applied)
        data.setdefault("ProcessPayment", False)
        data.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
        return data

    def _paid(self, invoice_id: str, exclude: str | None = None) -> Decimal:
        total = Decimal("0")
        for payment in self.objects["Payment"].values():
            if payment.data["Id"] == exclude:
                continue
            for line in payment.data.get("Line") or []:
                if any(str(link.get("TxnId")) == invoice_id and link.get("TxnType", "Invoice") == "Invoice"
                       for link in line.get("LinkedTxn") or []):
                    total += money(line.get("Amount", 0))
        return total

    def _set_balance(self, invoice: Stored) -> bool:
        """Recompute an invoice's Balance and LinkedTxn from the payments; True when they changed."""
        invoice_id = invoice.data["Id"]
        payments = sorted(
            (p.data["Id"] for p in self.objects["Payment"].values() if invoice_id in linked_invoices(p.data)),
            key=int)
        links = [{"TxnId": pid, "TxnType": "Payment"} for pid in payments]
        balance = amount_out(money(invoice.data["TotalAmt"]) - self._paid(invoice_id))
        changed = invoice.data.get("Balance") != balance or invoice.data.get("LinkedTxn", []) != links
        invoice.data["Balance"] = balance
        if links:
            invoice.data["LinkedTxn"] = links
        else:
            invoice.data.pop("LinkedTxn", None)
        return changed

    def _relink_invoices(self, invoice_ids: set[str], now: float) -> None:
        for invoice_id in invoice_ids:
            invoice = self.objects["Invoice"].get(invoice_id)
            if invoice is not None and self._set_balance(invoice):
                self._bump(invoice, now)


def _explicit_tax(detail: Any) -> bool:
    """Whether a ``TxnTaxDetail`` states the tax explicitly: a ``TxnTaxCodeRef`` and a ``TotalTax`` together (what
    automated sales tax honours instead of its own calculation; see the module docstring)."""
    return (isinstance(detail, dict) and bool(_ref_value(detail.get("TxnTaxCodeRef")))
            and detail.get("TotalTax") not in (None, ""))


def _ref_value(ref: Any) -> str:
    if isinstance(ref, dict):
        return str(ref.get("value") or "")
    return str(ref or "")


def _detail_type(line: Any) -> str:
    return str(line.get("DetailType") or "") if isinstance(line, dict) else ""


def _amount(value: Any, element: str) -> Decimal:
    try:
        return money(value)
    except ValueError as exc:
        raise faults.invalid_property(f"{element} is not a number: {value!r}") from exc


def linked_invoices(data: dict[str, Any] | None) -> set[str]:
    found: set[str] = set()
    for line in (data or {}).get("Line") or []:
        for link in line.get("LinkedTxn") or []:
            if link.get("TxnType", "Invoice") == "Invoice" and link.get("TxnId"):
                found.add(str(link["TxnId"]))
    return found
