"""Reading the portal's forms (pure): acknowledgements, ship notices, invoices, price breaks.

Every reader collects all problems of a form before refusing it, so the supplier fixes them in
one go; messages name the field and the rule, never echo what was typed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from maintainpro.supply.invoicing import InvoiceLineIn
from maintainpro.supply.money import Money, MoneyError, line_total, sum_money
from maintainpro.supply.purchasing import LineAckStatus

MAX_NUMBER: Final = Decimal("1e12")
MAX_TRACKING_NUMBERS: Final = 20
MAX_INVOICE_LINES: Final = 1000
MAX_NOTE: Final = 2000
SCAC: Final = re.compile(r"^[A-Z]{2,4}$")
TRACKING: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-]{0,63}$")
DOCUMENT_NUMBER: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,63}$")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MARKUP: Final = re.compile(r"<\s*/?\s*[A-Za-z!?]|javascript:", re.IGNORECASE)
DECISIONS: Final = {
    "accept": LineAckStatus.ACCEPTED,
    "change": LineAckStatus.CHANGED,
    "reject": LineAckStatus.REJECTED,
}

Getter = Callable[[str], str]


class FormProblems(ValueError):
    """A form that cannot be used as sent; holds every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def number(text: str, what: str, problems: list[str], *, positive: bool = False) -> Decimal | None:
    """A decimal from a field; blank is None, anything else must be a sane number."""
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        problems.append(f"{what}: not a number")
        return None
    if not value.is_finite() or value < 0 or value > MAX_NUMBER:
        problems.append(f"{what}: must be a number from 0 up to {MAX_NUMBER:f}")
        return None
    if positive and value == 0:
        problems.append(f"{what}: must be more than 0")
        return None
    if -int(value.as_tuple().exponent) > 6:
        problems.append(f"{what}: at most 6 decimal places")
        return None
    return value


def day(text: str, what: str, problems: list[str]) -> dt.date | None:
    """A date from a YYYY-MM-DD field; blank is None."""
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(f"{what}: not a date (YYYY-MM-DD)")
        return None


def plain_text(text: str, what: str, problems: list[str], *, limit: int) -> str:
    """Free text without control characters, at most limit characters."""
    text = text.strip()
    if len(text) > limit:
        problems.append(f"{what}: at most {limit} characters")
    elif _CONTROL.search(text):
        problems.append(f"{what}: remove control characters")
    return text


def plain_name(text: str, what: str, problems: list[str], *, limit: int) -> str:
    """A short name: no control characters and no markup (it travels to EDI and e-mails)."""
    text = plain_text(text, what, problems, limit=limit)
    if _MARKUP.search(text):
        problems.append(f"{what}: markup is not allowed")
    return text


def line_ids(values: Sequence[str]) -> list[int]:
    """The order-line ids a form lists; anything but a positive whole number is refused."""
    ids = []
    for value in values:
        if not value.isdigit() or not 0 < int(value) < 2**31:
            raise FormProblems(["the form names an unknown order line; reload the page"])
        ids.append(int(value))
    if len(set(ids)) != len(ids):
        raise FormProblems(["the form names an order line twice; reload the page"])
    return ids


# --- acknowledgement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LineAnswer:
    """The supplier's answer to one line, by line id (the scope turns ids into numbers)."""

    line_id: int
    status: LineAckStatus
    quantity: Decimal | None
    unit_price: Decimal | None
    promised_date: dt.date | None
    note: str


def read_acknowledgement(
    ids: Sequence[int], get: Getter, label: Mapping[int, int]
) -> list[LineAnswer]:
    """Answers for lines whose decision is set (decision_ID, quantity_ID, price_ID, date_ID,
    note_ID); lines left undecided are not answered."""
    answers: list[LineAnswer] = []
    problems: list[str] = []
    for line_id in ids:
        decision = get(f"decision_{line_id}").strip()
        if not decision:
            continue
        name = f"line {label.get(line_id, '?')}"
        status = DECISIONS.get(decision)
        if status is None:
            problems.append(f"{name}: choose accept, propose a change or reject")
            continue
        quantity = number(get(f"quantity_{line_id}"), f"{name} quantity", problems, positive=True)
        price = number(get(f"price_{line_id}"), f"{name} unit price", problems)
        promised = day(get(f"date_{line_id}"), f"{name} date", problems)
        note = plain_text(get(f"note_{line_id}"), f"{name} note", problems, limit=MAX_NOTE)
        if status is LineAckStatus.ACCEPTED and (quantity, price, promised) != (None, None, None):
            problems.append(
                f"{name}: to offer another quantity, price or date choose 'propose a change'"
            )
        if status is LineAckStatus.REJECTED and not note:
            problems.append(f"{name}: give the reason for the rejection")
        answers.append(LineAnswer(line_id, status, quantity, price, promised, note))
    if problems:
        raise FormProblems(problems)
    if not answers:
        raise FormProblems(["answer at least one line"])
    return answers


# --- ship notice --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipForm:
    """A ship notice as typed: quantities per line id, carrier, tracking numbers, dates."""

    shipment_number: str
    quantities: dict[int, Decimal]
    carrier_scac: str | None
    carrier_name: str | None
    tracking_numbers: list[str]
    shipped_on: dt.date
    expected_on: dt.date | None


def read_ship_notice(ids: Sequence[int], get: Getter, today: dt.date) -> ShipForm:
    """A ship notice from the form (ship_ID quantities, carrier fields, tracking numbers)."""
    problems: list[str] = []
    shipment_number = get("shipment_number").strip()
    if not DOCUMENT_NUMBER.match(shipment_number):
        problems.append(
            "shipment number: required; letters, digits and _ . - / only, at most 64 characters"
        )
    quantities = {}
    for line_id in ids:
        quantity = number(get(f"ship_{line_id}"), "a shipped quantity", problems)
        if quantity:
            quantities[line_id] = quantity
    if not quantities and not problems:
        problems.append("enter the quantity shipped on at least one line")
    scac = get("carrier_scac").strip().upper()
    if scac and not SCAC.match(scac):
        problems.append("carrier SCAC: two to four letters")
    carrier = plain_name(get("carrier_name"), "carrier name", problems, limit=120)
    tracking = [t for t in re.split(r"[\s,;]+", get("tracking_numbers")) if t]
    if len(tracking) > MAX_TRACKING_NUMBERS:
        problems.append(f"tracking numbers: at most {MAX_TRACKING_NUMBERS}")
    elif any(not TRACKING.match(t) for t in tracking):
        problems.append("tracking numbers: letters, digits and - only, at most 64 characters each")
    elif len(set(tracking)) != len(tracking):
        problems.append("tracking numbers: one is given twice")
    shipped = day(get("shipped_on"), "shipped on", problems) or today
    if shipped > today:
        problems.append("shipped on: cannot be in the future")
    expected = day(get("expected_on"), "expected delivery", problems)
    if expected is not None and expected < shipped:
        problems.append("expected delivery: before the shipping date")
    if problems:
        raise FormProblems(problems)
    return ShipForm(
        shipment_number,
        quantities,
        scac or None,
        carrier or None,
        tracking,
        shipped,
        expected,
    )


# --- invoice ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceHeader:
    """The invoice's number, date, tax and (optional) total as typed."""

    invoice_number: str
    invoice_date: dt.date
    tax: Decimal
    total: Decimal | None


def read_invoice_header(get: Getter, today: dt.date) -> InvoiceHeader:
    """Number, date, tax and total from the invoice form."""
    problems: list[str] = []
    invoice_number = get("invoice_number").strip()
    if not DOCUMENT_NUMBER.match(invoice_number):
        problems.append(
            "invoice number: required; letters, digits and _ . - / only, at most 64 characters"
        )
    invoice_date = day(get("invoice_date"), "invoice date", problems) or today
    if invoice_date > today:
        problems.append("invoice date: cannot be in the future")
    tax = number(get("tax"), "tax", problems) or Decimal(0)
    total = number(get("total"), "total", problems)
    if problems:
        raise FormProblems(problems)
    return InvoiceHeader(invoice_number, invoice_date, tax, total)


def read_invoice_lines(
    ids: Sequence[int], get: Getter, line_numbers: Mapping[int, int]
) -> list[InvoiceLineIn]:
    """Billed lines typed in the form (invqty_ID, invprice_ID); blank quantities are skipped."""
    problems: list[str] = []
    lines = []
    for line_id in ids:
        name = f"line {line_numbers[line_id]}"
        quantity = number(get(f"invqty_{line_id}"), f"{name} quantity", problems)
        if not quantity:
            continue
        price = number(get(f"invprice_{line_id}"), f"{name} unit price", problems)
        if price is None:
            problems.append(f"{name}: give the unit price")
            continue
        lines.append(InvoiceLineIn(line_numbers[line_id], quantity, price))
    if problems:
        raise FormProblems(problems)
    return lines


INVOICE_CSV_COLUMNS: Final = ("line", "quantity", "unit_price")


def read_invoice_csv(data: bytes) -> list[InvoiceLineIn]:
    """Billed lines from a CSV file: line (the order line number), quantity, unit_price and
    optionally line_total and description; problems are reported by file line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormProblems(["the CSV file is not UTF-8 text"]) from None
    reader = csv.reader(io.StringIO(text))
    problems: list[str] = []
    lines: list[InvoiceLineIn] = []
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in INVOICE_CSV_COLUMNS if c not in header]
        if missing:
            raise FormProblems([f"CSV line 1: missing column(s): {', '.join(missing)}"])
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            at = f"CSV line {reader.line_num}"
            if len(lines) >= MAX_INVOICE_LINES:
                problems.append(f"{at}: at most {MAX_INVOICE_LINES} lines")
                break
            cells = {name: (row[i] if i < len(row) else "") for i, name in enumerate(header)}
            line_text = cells["line"].strip()
            if not line_text.isdigit() or not 0 < int(line_text) <= 100_000:
                problems.append(f"{at}: line must be the order line number")
                continue
            quantity = number(cells["quantity"], f"{at} quantity", problems, positive=True)
            price = number(cells["unit_price"], f"{at} unit_price", problems)
            total = number(cells.get("line_total", ""), f"{at} line_total", problems)
            description = plain_text(
                cells.get("description", ""), f"{at} description", problems, limit=200
            )
            if quantity is None or price is None:
                if cells["quantity"].strip() == "" or cells["unit_price"].strip() == "":
                    problems.append(f"{at}: quantity and unit_price are required")
                continue
            lines.append(InvoiceLineIn(int(line_text), quantity, price, total, description))
    except csv.Error:
        problems.append("the file is not valid CSV")
    if problems:
        raise FormProblems(problems)
    if not lines:
        raise FormProblems(["the CSV file has no invoice lines"])
    return lines


def invoice_total(lines: Sequence[InvoiceLineIn], tax: Decimal, currency: str) -> Decimal:
    """Lines (given totals, else quantity x price rounded) plus tax, when no total was typed."""
    try:
        amounts = [
            Money.of(item.line_total, currency)
            if item.line_total is not None
            else line_total(Money.of(item.unit_price, currency), item.quantity)
            for item in lines
        ]
        return (sum_money(amounts, currency) + Money.of(tax, currency)).amount
    except MoneyError as exc:
        raise FormProblems([str(exc)]) from None


# --- price breaks -------------------------------------------------------------------------------


def read_price_breaks(
    minimums: Sequence[str], prices: Sequence[str]
) -> list[tuple[Decimal, Decimal]]:
    """(min quantity, unit price) rows, in ascending quantity; blank rows are dropped."""
    if len(minimums) != len(prices):
        raise FormProblems(["the price table is incomplete; reload the page"])
    problems: list[str] = []
    breaks = []
    for n, (min_text, price_text) in enumerate(zip(minimums, prices, strict=True), start=1):
        if not min_text.strip() and not price_text.strip():
            continue
        if not min_text.strip() or not price_text.strip():
            problems.append(f"row {n}: give both the minimum quantity and the unit price")
            continue
        minimum = number(min_text, f"row {n} minimum quantity", problems, positive=True)
        price = number(price_text, f"row {n} unit price", problems, positive=True)
        if minimum is not None and price is not None:
            breaks.append((minimum, price))
    if problems:
        raise FormProblems(problems)
    return sorted(breaks)
