"""HTML pages of the stand-in: Intuit's consent page, its error page, and the control panel for the demo.

In: the authorize parameters, or a ``QuickBooksStandIn.snapshot()``. Out: HTML strings (everything escaped).
The consent page mirrors what Intuit's ``https://appcenter.intuit.com/connect/oauth2`` shows (Intuit "OAuth 2.0"
docs): the app name, the company, Connect / Cancel. The invoice page stands in for QuickBooks Online's own
(``https://app.qbo.intuit.com/app/invoice?txnId=…``): the same path on the stand-in shows the invoice's lines,
tax and totals, where a bookkeeper compares them with JobsiteOn's. The panel is a stand-in extra for a human running the
offline demo: every button is a form POSTing to ``/_control/panel/action`` that redirects back.
"""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1b1f23;background:#f6f7f9}
h1{font-size:1.4rem} h2{font-size:1.2rem;margin-top:2rem} h3{font-size:1rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.9rem}
td,th{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:middle}
th{background:#eef1f4} form{display:inline;margin:0} input[type=text]{width:12rem}
button{background:#2ca01c;color:#fff;border:0;border-radius:4px;padding:.3rem .7rem;cursor:pointer}
button.warn{background:#d52b1e} button.plain{background:#6a737d}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.5rem;max-width:32rem}
.msg{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem 1rem;border-radius:6px}
.inactive{color:#8c959f;text-decoration:line-through}
"""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def _hidden(fields: dict[str, Any]) -> str:
    return "".join(f'<input type="hidden" name="{escape(str(k))}" value="{escape(str(v))}">'
                   for k, v in fields.items() if v is not None)


def consent_page(params: dict[str, str], company: str, realms: list[dict[str, Any]]) -> str:
    """The authorize page: "Connect syncbot to QuickBooks (sandbox company NAME)" with Connect and Cancel."""
    keep = {k: params.get(k) for k in ("client_id", "response_type", "scope", "redirect_uri", "state")}
    options = "".join(
        f'<option value="{escape(r["realm_id"])}">{escape(r["name"])} ({escape(r["realm_id"])})</option>'
        for r in realms)
    return _page("Connect syncbot to QuickBooks", f"""
<div class="card">
<h1>Connect syncbot to QuickBooks (sandbox company {escape(company)})</h1>
<p>syncbot wants to read and write your accounting data
(<code>com.intuit.quickbooks.accounting</code>).</p>
<form method="post" action="/connect/oauth2/approve">{_hidden(keep)}
<p><label>Company <select name="realm">{options}</select></label></p>
<button type="submit" name="decision" value="connect">Connect</button>
<button type="submit" name="decision" value="cancel" class="plain">Cancel</button>
</form></div>""")


def error_page(reason: str) -> str:
    """The 400 page Intuit shows for a bad authorize request."""
    return _page("QuickBooks connection error", f"""
<div class="card"><h1>Something went wrong</h1>
<p>The request to connect to QuickBooks was refused.</p><p><strong>{escape(reason)}</strong></p></div>""")


def _button(realm: str, action: str, label: str, css: str = "", **extra: Any) -> str:
    cls = f' class="{css}"' if css else ""
    hidden = _hidden({"realm": realm, "action": action, **extra})
    return (f'<form method="post" action="/_control/panel/action">{hidden}'
            f"<button{cls}>{escape(label)}</button></form>")


def _rename(realm: str, entity: str, obj_id: str, current: str, label: str) -> str:
    hidden = _hidden({"realm": realm, "action": "rename", "entity": entity, "id": obj_id})
    return (f'<form method="post" action="/_control/panel/action">{hidden}'
            f'<input type="text" name="value" value="{escape(current)}"> <button class="plain">{escape(label)}</button>'
            "</form>")


def _delete_or_restore(realm: str, entity: str, obj: dict[str, Any]) -> str:
    gone = obj.get("status") == "Deleted" or obj.get("Active") is False
    if gone:
        return _button(realm, "restore", "Restore", "plain", entity=entity, id=obj["Id"])
    return _button(realm, "delete", "Delete" if entity in ("Invoice", "Payment") else "Make inactive", "warn",
                   entity=entity, id=obj["Id"])


def _row(cells: list[str], gone: bool) -> str:
    cls = ' class="inactive"' if gone else ""
    first, rest = cells[:-2], cells[-2:]
    return ("<tr>" + "".join(f"<td{cls}>{c}</td>" for c in first) + "".join(f"<td>{c}</td>" for c in rest)
            + "</tr>")


def _table(headers: list[str], rows: list[str]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _realm_section(realm: dict[str, Any], limits: dict[str, Any]) -> str:
    rid = realm["realm_id"]
    stats = realm["stats"]
    tax = (f'automated sales tax <strong>{"on" if realm["tax_enabled"] else "off"}</strong> '
           f'(rate {realm["tax_rate"]}%) ')
    tax_form = (f'<form method="post" action="/_control/panel/action">'
                f'{_hidden({"realm": rid, "action": "tax", "enabled": "0" if realm["tax_enabled"] else "1"})}'
                f'rate <input type="number" name="rate" min="0" max="100" step="any" value="{realm["tax_rate"]}" '
                'style="width:5rem"> '
                f'<button class="plain">Turn {"off" if realm["tax_enabled"] else "on"}</button></form>')
    valid = sum(1 for g in realm["tokens"] for t in g["access_tokens"] if t["valid"])
    objects = realm["objects"]

    customers = [_row([escape(o["Id"]), escape(o.get("DisplayName", "")), str(o.get("Active", True)),
                       escape(o["SyncToken"]), escape(o["MetaData"]["LastUpdatedTime"]),
                       _rename(rid, "Customer", o["Id"], o.get("DisplayName", ""), "Rename"),
                       _delete_or_restore(rid, "Customer", o)], o.get("Active") is False)
                 for o in objects["Customer"]]
    items = [_row([escape(o["Id"]), escape(o.get("Name", "")), escape(str(o.get("Type", ""))),
                   str(o.get("Active", True)), escape(o["SyncToken"]),
                   _rename(rid, "Item", o["Id"], o.get("Name", ""), "Rename"),
                   _delete_or_restore(rid, "Item", o)], o.get("Active") is False)
             for o in objects["Item"]]
    accounts = [_row([escape(o["Id"]), escape(o.get("Name", "")), escape(str(o.get("AccountType", ""))),
                      str(o.get("Active", True)), _delete_or_restore(rid, "Account", o)], o.get("Active") is False)
                for o in objects.get("Account", []) if o.get("AccountType") == "Income"]
    invoices = []
    for o in objects["Invoice"]:
        if o.get("status") == "Deleted":
            invoices.append(_row([escape(o["Id"]), "(deleted)", "", "", "", "", "", "",
                                  _delete_or_restore(rid, "Invoice", o)], True))
            continue
        invoices.append(_row([
            escape(o["Id"]), escape(str(o.get("DocNumber", ""))), escape(o["CustomerRef"].get("name", "")),
            str(o.get("TxnTaxDetail", {}).get("TotalTax", 0)), str(o.get("TotalAmt")), str(o.get("Balance")),
            escape(o["SyncToken"]), _rename(rid, "Invoice", o["Id"], str(o.get("DocNumber", "")), "Renumber"),
            _delete_or_restore(rid, "Invoice", o)], False))
    payments = []
    for o in objects["Payment"]:
        if o.get("status") == "Deleted":
            payments.append(_row([escape(o["Id"]), "(deleted)", "", "", "", "", _delete_or_restore(rid, "Payment", o)],
                                 True))
            continue
        linked = ", ".join(str(link.get("TxnId")) for line in o.get("Line", []) for link in line.get("LinkedTxn", []))
        payments.append(_row([escape(o["Id"]), escape(o["CustomerRef"].get("name", "")), str(o.get("TotalAmt")),
                              escape(linked), escape(o["SyncToken"]), "", _delete_or_restore(rid, "Payment", o)],
                             False))
    create = (f'<form method="post" action="/_control/panel/action">'
              f'{_hidden({"realm": rid, "action": "create_customer"})}'
              f'<input type="text" name="value" placeholder="Acme Corp"> <button class="plain">Add customer</button>'
              "</form>")
    return f"""
<h2>{escape(realm["name"])} <small>(realm {escape(rid)})</small></h2>
<p>{tax}{tax_form}</p>
<p>requests {stats["requests"]} &middot; writes {stats["writes"]} &middot; throttled (429) {stats["throttled"]}
&middot; window {stats["window_used"]}/{limits["requests_per_minute"]} per {limits["minute_seconds"]} s
&middot; batches {stats["window_batches"]}/{limits["batch_per_minute"]}
{_button(rid, "clear_throttle", "Lift rate limit")}
{_button(rid, "throttle", "Use up the rate limit", "warn")}</p>
<p>valid access tokens {valid}
{_button(rid, "expire_access", "Expire access tokens", "warn")}
{_button(rid, "expire_all", "Expire access + refresh tokens", "warn")}</p>
<h3>Customers</h3>{create}
{_table(["Id", "DisplayName", "Active", "SyncToken", "Last updated", "Rename", ""], customers)}
<h3>Items</h3>{_table(["Id", "Name", "Type", "Active", "SyncToken", "Rename", ""], items)}
<h3>Income accounts</h3>{_table(["Id", "Name", "Type", "Active", ""], accounts)}
<h3>Invoices</h3>
{_table(["Id", "DocNumber", "Customer", "TotalTax", "TotalAmt", "Balance", "SyncToken", "Renumber", ""], invoices)}
<h3>Payments</h3>{_table(["Id", "Customer", "TotalAmt", "Linked invoices", "SyncToken", "", ""], payments)}
"""


def panel_page(snapshot: list[dict[str, Any]], config: dict[str, Any], message: str | None = None) -> str:
    """The control panel: each realm's objects with rename / delete / restore, tax toggle, rate-limit lift."""
    note = f'<p class="msg">{escape(message)}</p>' if message else ""
    sections = "".join(_realm_section(r, config) for r in snapshot)
    fixes = ("<p>The help article's fixes on the QuickBooks side: <strong>rename</strong> the duplicate customer "
             "(then Retry in Slack), <strong>lift the rate limit</strong>; <strong>expire the tokens</strong> to see "
             "Reconnect. <strong>Delete</strong> a record to make a record not found (its fix is in Slack: Re-create "
             "or Unlink); <strong>restore</strong> undoes a deletion (then Re-create in Slack syncs to the restored "
             "copy). <strong>Make an income account inactive</strong> to see QuickBooks refuse an item that uses "
             "it (choose another with Fill in, in Slack). Each button acts at once.</p>")
    return _page("QuickBooks stand-in", f"<h1>QuickBooks Online stand-in</h1>{fixes}{note}{sections}")


def invoice_page(txn_id: str, found: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    """The stand-in's ``/app/invoice?txnId=…``: the invoice ``txn_id`` in each company that has it (``found``:
    (company summary, invoice) pairs): its lines, subtotal, tax with its rate and code, and total."""
    if not found:
        return _page("Invoice not found", f"<h1>Invoice {escape(txn_id)}</h1><p>No company of the stand-in has an "
                     "invoice with this id (deleted, or never created).</p>")
    parts = []
    for company, inv in found:
        lines = [_row([escape(str(ln.get("LineNum", ""))), escape(str(ln.get("Description") or "")),
                       escape(str((ln.get("SalesItemLineDetail") or {}).get("Qty", ""))),
                       escape(str((ln.get("SalesItemLineDetail") or {}).get("UnitPrice", ""))),
                       escape(str((ln.get("SalesItemLineDetail") or {}).get("TaxCodeRef", {}).get("value", ""))),
                       escape(str(ln.get("Amount", "")))], False)
                 for ln in inv.get("Line", []) if ln.get("DetailType") == "SalesItemLineDetail"]
        tax = inv.get("TxnTaxDetail") or {}
        rates = ", ".join(f'{escape(str(t.get("TaxLineDetail", {}).get("TaxPercent", "")))} %'
                          for t in tax.get("TaxLine", []) if isinstance(t, dict))
        code = escape(str((tax.get("TxnTaxCodeRef") or {}).get("value", "")))
        subtotal = next((ln.get("Amount") for ln in inv.get("Line", []) if ln.get("DetailType") ==
                         "SubTotalLineDetail"), "")
        parts.append(f"""
<h2>Invoice {escape(str(inv.get("DocNumber", "")))} <small>({escape(company["name"])}, realm
{escape(company["realm_id"])}, Id {escape(str(inv["Id"]))})</small></h2>
<p>Customer {escape(str((inv.get("CustomerRef") or {}).get("name", "")))} &middot; date
{escape(str(inv.get("TxnDate", "")))}</p>
{_table(["#", "Description", "Qty", "Rate", "Tax", "Amount"], lines)}
<p>Subtotal <strong>{escape(str(subtotal))}</strong> &middot; tax <strong>{escape(str(tax.get("TotalTax", 0)))}</strong>
{f"(rate {rates})" if rates else ""} {f"&middot; tax code {code}" if code else ""} &middot; total
<strong>{escape(str(inv.get("TotalAmt", "")))}</strong> &middot; balance {escape(str(inv.get("Balance", "")))}</p>""")
    return _page(f"Invoice {txn_id}", "".join(parts) + '<p><a href="/_control/panel">Control panel</a></p>')
