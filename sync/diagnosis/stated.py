"""Diagnoses syncbot states itself: no answer at all (:func:`diagnose_transport`), totals that differ after a
successful write (:func:`diagnose_totals`), a linked object reported deleted (:func:`diagnose_deleted`), any other
(:func:`make_diagnosis`); and :func:`report`, the JSON `syncbot diagnose` prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sync.diagnosis.details import _collapse, _finish_details, _listify, _redact, _trim
from sync.diagnosis.kinds import MEANINGS, Diagnosis, Kind

# --------------------------------------------------------------------------------------------------
# Totals after a successful write

_HALF_CENT = Decimal("0.005")
_TXN_KEYS = ("Invoice", "SalesReceipt", "CreditMemo", "Estimate", "RefundReceipt")


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Mapping):
        value = value.get("value")
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _money(d: Decimal) -> str:
    """Two decimals, or every decimal when there are more (a 448.395 must not read as 448.40)."""
    return f"{d:.2f}" if d == d.quantize(Decimal("0.01")) else f"{d:f}"


def _signed(d: Decimal) -> str:
    return ("+" if d > 0 else "") + _money(d)


def _percent(rate: Decimal) -> str:
    """A tax rate as people write it: ``8.25``, ``8.875``, ``0`` (no trailing zeros, no exponent)."""
    text = f"{rate:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def tax_rate_of(tax_detail: Any) -> Decimal | None:
    """The tax rate of a transaction's ``TxnTaxDetail`` in percent: the sum of its percent-based ``TaxLine``
    rates (a state and a local rate add up); None when it names none."""
    if not isinstance(tax_detail, Mapping):
        return None
    rates = []
    for line in _listify(tax_detail.get("TaxLine")):
        detail = line.get("TaxLineDetail") if isinstance(line, Mapping) else None
        if isinstance(detail, Mapping) and str(detail.get("PercentBased", "true")).lower() != "false":
            rate = _dec(detail.get("TaxPercent"))
            if rate is not None:
                rates.append(rate)
    return sum(rates, Decimal(0)) if rates else None


def diagnose_totals(
    ours_total: Decimal,
    ours_tax: Decimal,
    reply_entity: Mapping[str, Any],
    our_lines: Sequence[tuple[str, Decimal]] = (),
    *,
    ours_rate: Decimal | None = None,
) -> Diagnosis | None:
    """Compare QuickBooks' totals with ours after an invoice (or sales receipt...) write.

    QuickBooks computes ``TotalAmt`` itself and US companies with automated sales tax recompute tax,
    so totals diverge without any error (docs/platform-facts.md, "QuickBooks: totals"). In: our total and tax, the
    entity QuickBooks returned (the ``Invoice`` object, or the whole reply ``{"Invoice": {...}}``; numbers
    or strings, so converted XML works too), and optionally our lines as ``(label, amount)`` in order,
    compared with the reply's ``SalesItemLineDetail`` lines. Out: a ``total_mismatch`` Diagnosis when
    the total or the tax differs by more than half a cent, whose details give both totals, the tax of
    both and its difference, and the lines whose amount differs; None otherwise (also when the reply
    has no ``TotalAmt`` to compare).

    ``data`` holds the figures side by side for the message: ``ours`` and ``theirs`` each ``{"subtotal", "tax",
    "total", "rate"}`` (the subtotal is the total less the tax; ``rate`` the tax rate in percent: ours as given in
    ``ours_rate``, QuickBooks' the sum of its percent-based ``TaxLine`` rates; absent when unknown), the
    differences (QuickBooks minus JobsiteOn), and the lines that differ as sentences (``lines``) and as
    ``line_rows`` ``{"label", "ours", "theirs"}`` (``theirs`` None for a line QuickBooks does not have, ``label``
    None for a line only QuickBooks has).
    """
    entity: Mapping[str, Any] = reply_entity
    for key in _TXN_KEYS:
        inner = reply_entity.get(key)
        if isinstance(inner, Mapping):
            entity = inner
            break
    theirs_total = _dec(entity.get("TotalAmt"))
    if theirs_total is None:
        return None
    tax_detail = entity.get("TxnTaxDetail")
    theirs_tax = _dec(tax_detail.get("TotalTax")) if isinstance(tax_detail, Mapping) else None
    theirs_tax = theirs_tax if theirs_tax is not None else Decimal(0)
    ours_total_d = _dec(ours_total) or Decimal(0)
    ours_tax_d = _dec(ours_tax) or Decimal(0)
    total_diff = theirs_total - ours_total_d
    tax_diff = theirs_tax - ours_tax_d
    if abs(total_diff) <= _HALF_CENT and abs(tax_diff) <= _HALF_CENT:
        return None

    differing: list[str] = []
    rows: list[dict[str, str | None]] = []
    lines = [
        f"Total: JobsiteOn {_money(ours_total_d)}, QuickBooks {_money(theirs_total)} "
        f"(difference {_signed(total_diff)}).",
        f"Tax: JobsiteOn {_money(ours_tax_d)}, QuickBooks {_money(theirs_tax)} (tax difference {_signed(tax_diff)}).",
    ]
    their_lines = [
        ln
        for ln in _listify(entity.get("Line"))
        if isinstance(ln, Mapping) and (ln.get("DetailType") == "SalesItemLineDetail" or "SalesItemLineDetail" in ln)
    ]
    if our_lines:
        for index, (label, amount) in enumerate(our_lines):
            ours_amount = _dec(amount) or Decimal(0)
            if index >= len(their_lines):
                differing.append(f"{label}: JobsiteOn {_money(ours_amount)}, missing in QuickBooks")
                rows.append({"label": label, "ours": _money(ours_amount), "theirs": None})
                continue
            theirs_amount = _dec(their_lines[index].get("Amount"))
            if theirs_amount is None or abs(theirs_amount - ours_amount) > _HALF_CENT:
                shown = _money(theirs_amount) if theirs_amount is not None else "no amount"
                differing.append(f"{label}: JobsiteOn {_money(ours_amount)}, QuickBooks {shown}")
                rows.append({"label": label, "ours": _money(ours_amount), "theirs": shown})
        for extra in their_lines[len(our_lines) :]:
            extra_amount = _dec(extra.get("Amount"))
            differing.append(
                f"line {extra.get('LineNum') or extra.get('Id') or '?'}: only in QuickBooks "
                f"({_money(extra_amount) if extra_amount is not None else 'no amount'})"
            )
            rows.append({"label": None, "ours": None,
                         "theirs": _money(extra_amount) if extra_amount is not None else "no amount"})
        lines.append("Lines that differ: " + "; ".join(differing) + "." if differing else "Line amounts match.")
    theirs_rate = tax_rate_of(tax_detail)
    ours_rate_d = _dec(ours_rate) if ours_rate is not None else None
    data = {
        "ours": {"subtotal": _money(ours_total_d - ours_tax_d), "tax": _money(ours_tax_d),
                 "total": _money(ours_total_d),
                 **({"rate": _percent(ours_rate_d)} if ours_rate_d is not None else {})},
        "theirs": {"subtotal": _money(theirs_total - theirs_tax), "tax": _money(theirs_tax),
                   "total": _money(theirs_total),
                   **({"rate": _percent(theirs_rate)} if theirs_rate is not None else {})},
        "subtotal_difference": _signed((theirs_total - theirs_tax) - (ours_total_d - ours_tax_d)),
        "total_difference": _signed(total_diff), "tax_difference": _signed(tax_diff),
        "lines": differing,
        "line_rows": rows,
    }
    return Diagnosis(kind=Kind.TOTAL_MISMATCH, http_status=None, details=_finish_details(lines, None), data=data)


def make_diagnosis(
    kind: Kind | None,
    details: str,
    *,
    field: str | None = None,
    http_status: int | None = None,
    codes: Sequence[str] = (),
    hint: str | None = None,
    intuit_tid: str | None = None,
    retry_after: float | None = None,
    meaning: str | None = None,
) -> Diagnosis:
    """A Diagnosis that syncbot states itself rather than reads off a reply (a missing dependency, an
    interrupted attempt, a refresh that found no token...). In: the kind and a details sentence
    (trimmed to 2000 characters, secrets redacted), optional fields. Out: the Diagnosis.
    """
    return Diagnosis(
        kind=kind,
        http_status=http_status,
        codes=tuple(codes),
        details=_trim(_redact(details)),
        field=field,
        intuit_tid=intuit_tid,
        retry_after=retry_after,
        hint=hint,
        meaning=meaning if meaning is not None and meaning in MEANINGS and kind is not None
        and MEANINGS[meaning].kind is kind else None,
    )


def diagnose_deleted(entity: str, qbo_id: str, source: str = "change data capture") -> Diagnosis:
    """A linked object that QuickBooks reports deleted (``"status": "Deleted"`` in a CDC answer).

    In: the entity name (``"Invoice"``), its QuickBooks Id and where the news came from. Out: a
    ``not_found`` Diagnosis (Re-create / Unlink) whose details name the object.
    """
    return make_diagnosis(Kind.NOT_FOUND, f"QuickBooks reports {entity} {qbo_id} as deleted ({source}).")


# --------------------------------------------------------------------------------------------------
# No answer at all


def diagnose_transport(exc: BaseException) -> Diagnosis:
    """Classify a call that got no HTTP answer (httpx timeouts, connection and network errors).

    In: the exception raised by the HTTP client (httpx or httpx2; recognised by class name, so no
    import of either is needed). Out: an ``unknown`` Diagnosis with ``http_status None`` and a details
    text saying what happened; a timeout also carries a hint that the request may have been applied.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    hint = None
    if "TimeoutException" in names or isinstance(exc, TimeoutError):
        what = "No answer from QuickBooks in time"
        if "ConnectTimeout" in names or "PoolTimeout" in names:
            what = "Could not connect to QuickBooks in time"
        else:
            hint = (
                "QuickBooks may still have applied the request; a retry with the same requestid is not applied twice."
            )
    elif "ConnectError" in names or isinstance(exc, ConnectionRefusedError):
        what = "Could not connect to QuickBooks"
    elif names & {"NetworkError", "TransportError", "RemoteProtocolError"} or isinstance(exc, OSError):
        what = "Network error while talking to QuickBooks"
    else:
        what = "Unexpected error while calling QuickBooks"
    message = _collapse(str(exc))
    details = f"{what} ({type(exc).__name__}{': ' + message if message else ''})."
    return Diagnosis(kind=Kind.UNKNOWN, http_status=None, details=_trim(_redact(details)), hint=hint)


# --------------------------------------------------------------------------------------------------
# Report


def report(d: Diagnosis) -> dict[str, Any]:
    """The JSON object ``syncbot diagnose`` prints.

    Keys: ``kind`` ("ok" for success), ``title``, ``codes``, ``cause``, ``fix``, ``actions``,
    ``details``, ``field``, ``hint``, ``http_status``, ``fault_type``, ``intuit_tid``,
    ``retry_after``, ``entry_status``; plus ``items`` ``{bId: kind or "ok"}`` for a batch answer (an item
    without a bId under ``(no bId #n)``, see rule 5).
    """
    out: dict[str, Any] = {
        "kind": d.label,
        "meaning": d.meaning,
        "title": d.info.title if d.info else "Synced",
        "codes": list(d.codes),
        "cause": d.cause,
        "fix": d.fix,
        "actions": [a.value for a in d.actions],
        "details": d.details,
        "field": d.field,
        "hint": d.hint,
        "http_status": d.http_status,
        "fault_type": d.fault_type,
        "intuit_tid": d.intuit_tid,
        "retry_after": d.retry_after,
        "entry_status": d.entry_status,
    }
    if d.items:
        out["items"] = {bid: item.label for bid, item in d.items.items()}
    return out
