"""Three-way match (pure): order lines, accepted receipts and an invoice, within tolerances."""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from maintainpro.supply.money import Money, line_total, sum_money


class ExceptionKind(enum.StrEnum):
    """Why an invoice does not match."""

    PRICE_VARIANCE = "price_variance"
    QUANTITY_OVER_RECEIVED = "quantity_over_received"
    NOT_RECEIVED = "not_received"
    UNKNOWN_LINE = "unknown_line"
    TOTAL_MISMATCH = "total_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Tolerances:
    """How far an invoice may exceed the order's price and the accepted quantity, in percent."""

    price_pct: Decimal = Decimal(2)
    quantity_pct: Decimal = Decimal(0)


@dataclass(frozen=True)
class OrderLineFacts:
    """One order line: what we expect to pay for and what arrived in good order."""

    line_no: int
    quantity: Decimal
    unit_price: Decimal
    accepted: Decimal
    already_invoiced: Decimal = Decimal(0)


@dataclass(frozen=True)
class InvoiceLineFacts:
    """One billed line; order_line_no None when the supplier named no order line."""

    line_no: int
    order_line_no: int | None
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class PriorInvoice:
    """Another invoice already held for the same order."""

    invoice_number: str
    invoice_date: dt.date
    total: Decimal


@dataclass(frozen=True)
class InvoiceFacts:
    """The invoice as the supplier sent it."""

    invoice_number: str
    invoice_date: dt.date
    currency: str
    total: Decimal
    tax: Decimal
    lines: Sequence[InvoiceLineFacts]


@dataclass(frozen=True)
class MatchException:
    """One finding: its kind, the invoice line (None: the whole invoice), text and figures."""

    kind: ExceptionKind
    line: int | None
    message: str
    figures: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """The form stored on the invoice."""
        return {"kind": self.kind.value, "line": self.line, "message": self.message, **self.figures}


def _pct_over(limit_base: Decimal, pct: Decimal) -> Decimal:
    return limit_base + limit_base * pct / Decimal(100)


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}" if value != 0 else "0"


def _number_key(number: str) -> str:
    # "INV-0042", "inv 42" and "INV42" are the same number typed differently.
    compact = re.sub(r"[^0-9A-Za-z]", "", number).upper()
    return re.sub(r"(?<![0-9])0+(?=[0-9])", "", compact)


def find_duplicates(invoice: InvoiceFacts, prior: Sequence[PriorInvoice]) -> list[MatchException]:
    """Earlier invoices that look like this one: the same number typed differently, or the
    same date and total under another number."""
    found = []
    key = _number_key(invoice.invoice_number)
    for other in prior:
        same_number = _number_key(other.invoice_number) == key
        same_bill = other.invoice_date == invoice.invoice_date and other.total == invoice.total
        if same_number or same_bill:
            why = "the same number" if same_number else "the same date and total"
            found.append(
                MatchException(
                    ExceptionKind.DUPLICATE,
                    None,
                    f"looks like invoice {other.invoice_number} ({why})",
                    {"other_invoice": other.invoice_number, "total": _text(other.total)},
                )
            )
    return found


def _check_totals(invoice: InvoiceFacts) -> list[MatchException]:
    found = []
    for item in invoice.lines:
        expected = line_total(Money.of(item.unit_price, invoice.currency), item.quantity)
        if expected.amount != item.line_total:
            found.append(
                MatchException(
                    ExceptionKind.TOTAL_MISMATCH,
                    item.line_no,
                    f"line total {_text(item.line_total)} is not quantity x unit price "
                    f"({expected})",
                    {"invoiced": _text(item.line_total), "expected": _text(expected.amount)},
                )
            )
    lines_sum = sum_money(
        (Money.of(i.line_total, invoice.currency) for i in invoice.lines), invoice.currency
    )
    expected_total = lines_sum.amount + invoice.tax
    if expected_total != invoice.total:
        found.append(
            MatchException(
                ExceptionKind.TOTAL_MISMATCH,
                None,
                f"the invoice total {_text(invoice.total)} is not the lines plus tax "
                f"({_text(expected_total)} {invoice.currency})",
                {"invoiced": _text(invoice.total), "expected": _text(expected_total)},
            )
        )
    return found


def three_way_match(
    order_currency: str,
    order_lines: Sequence[OrderLineFacts],
    invoice: InvoiceFacts,
    tolerances: Tolerances,
    prior: Sequence[PriorInvoice] = (),
) -> list[MatchException]:
    """Every way the invoice disagrees with the order and the receipts; empty when it matches.

    Prices are compared only when the currencies agree. A price below the order's is no
    exception (it is in our favour); a quantity counts together with earlier invoices.
    """
    found = find_duplicates(invoice, prior)
    same_currency = invoice.currency == order_currency
    if not same_currency:
        found.append(
            MatchException(
                ExceptionKind.CURRENCY_MISMATCH,
                None,
                f"invoiced in {invoice.currency}, ordered in {order_currency}",
                {"invoiced": invoice.currency, "ordered": order_currency},
            )
        )
    found += _check_totals(invoice)
    by_no = {line.line_no: line for line in order_lines}
    billed: dict[int, Decimal] = {}
    for item in invoice.lines:
        order_line = by_no.get(item.order_line_no) if item.order_line_no is not None else None
        if order_line is None:
            found.append(
                MatchException(
                    ExceptionKind.UNKNOWN_LINE,
                    item.line_no,
                    "the invoice line names no line of the order",
                    {"order_line": str(item.order_line_no) if item.order_line_no else ""},
                )
            )
            continue
        billed[order_line.line_no] = billed.get(order_line.line_no, Decimal(0)) + item.quantity
        price_limit = _pct_over(order_line.unit_price, tolerances.price_pct)
        if same_currency and item.unit_price > price_limit:
            found.append(
                MatchException(
                    ExceptionKind.PRICE_VARIANCE,
                    item.line_no,
                    f"unit price {_text(item.unit_price)} is above the ordered "
                    f"{_text(order_line.unit_price)} by more than {_text(tolerances.price_pct)} %",
                    {
                        "order_line": str(order_line.line_no),
                        "invoiced": _text(item.unit_price),
                        "ordered": _text(order_line.unit_price),
                        "limit": _text(price_limit),
                    },
                )
            )
    for line_no, quantity in sorted(billed.items()):
        order_line = by_no[line_no]
        total = order_line.already_invoiced + quantity
        figures = {
            "order_line": str(line_no),
            "invoiced": _text(total),
            "received": _text(order_line.accepted),
        }
        invoice_line = next(i.line_no for i in invoice.lines if i.order_line_no == line_no)
        if order_line.accepted == 0:
            found.append(
                MatchException(
                    ExceptionKind.NOT_RECEIVED,
                    invoice_line,
                    f"order line {line_no} is billed but nothing has been received",
                    figures,
                )
            )
        elif total > _pct_over(order_line.accepted, tolerances.quantity_pct):
            found.append(
                MatchException(
                    ExceptionKind.QUANTITY_OVER_RECEIVED,
                    invoice_line,
                    f"order line {line_no}: {_text(total)} billed, {_text(order_line.accepted)} "
                    "received in good order",
                    figures,
                )
            )
    return found
