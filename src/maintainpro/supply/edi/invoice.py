"""810 invoice: BIG header, IT1 lines with SAC charges, TDS total (implied decimals)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from maintainpro.supply.edi.common import (
    AllowanceCharge,
    Amount,
    DateReference,
    Party,
    ProductId,
    Reference,
    read_allowance_charge,
    read_amount,
    read_date_reference,
    read_descriptions,
    read_parties,
    read_product_ids,
    read_reference,
    require_segment,
    require_set,
    split_loops,
)
from maintainpro.supply.edi.errors import X12MappingError
from maintainpro.supply.edi.model import Segment, TransactionSet
from maintainpro.supply.edi.values import (
    first_component,
    optional_date,
    optional_decimal,
    optional_implied,
    optional_int,
    required_date,
    required_text,
    text,
)


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """An IT1 line with its descriptions, line-level charges and parties."""

    line_number: str
    quantity: Decimal | None
    unit: str
    unit_price: Decimal | None
    price_basis: str
    product_ids: tuple[ProductId, ...]
    descriptions: tuple[str, ...]
    charges: tuple[AllowanceCharge, ...]
    parties: tuple[Party, ...]

    @property
    def extended_amount(self) -> Decimal:
        """Quantity times unit price (zero when either is missing)."""
        if self.quantity is None or self.unit_price is None:
            return Decimal(0)
        return self.quantity * self.unit_price


@dataclass(frozen=True, slots=True)
class Invoice:
    """An 810 invoice; `total_amount` is TDS01 (N2, so 36596 reads as 365.96)."""

    invoice_number: str
    invoice_date: date
    po_number: str
    po_date: date | None
    transaction_type: str
    currency: str | None
    references: tuple[Reference, ...]
    dates: tuple[DateReference, ...]
    parties: tuple[Party, ...]
    lines: tuple[InvoiceLine, ...]
    total_amount: Decimal
    amounts: tuple[Amount, ...]
    charges: tuple[AllowanceCharge, ...]
    line_count: int | None

    @property
    def lines_total(self) -> Decimal:
        """Sum of the lines' extended amounts."""
        return sum((line.extended_amount for line in self.lines), Decimal(0))


def _read_line(loop: list[Segment]) -> InvoiceLine:
    it1 = loop[0]
    return InvoiceLine(
        line_number=text(it1, 1),
        quantity=optional_decimal(it1, 2),
        unit=first_component(text(it1, 3)),
        unit_price=optional_decimal(it1, 4),
        price_basis=text(it1, 5),
        product_ids=read_product_ids(it1, 6),
        descriptions=read_descriptions(loop),
        charges=tuple(read_allowance_charge(s) for s in loop if s.tag == "SAC"),
        parties=read_parties(loop),
    )


def read_invoice(transaction_set: TransactionSet) -> Invoice:
    """Map an 810 transaction set to an Invoice."""
    require_set(transaction_set, "810")
    head, loops, summary = split_loops(transaction_set.segments, "IT1", ("TDS",))
    big = require_segment(transaction_set, head, "BIG")
    tds = require_segment(transaction_set, summary, "TDS")
    total = optional_implied(tds, 1)
    if total is None:
        raise X12MappingError("TDS01 total invoice amount is required", tds.position)
    currencies = [text(s, 2) for s in head if s.tag == "CUR" and text(s, 2)]
    counts = [optional_int(s, 1) for s in summary if s.tag == "CTT"]
    return Invoice(
        invoice_number=required_text(big, 2),
        invoice_date=required_date(big, 1),
        po_number=text(big, 4),
        po_date=optional_date(big, 3),
        transaction_type=text(big, 7),
        currency=currencies[0] if currencies else None,
        references=tuple(read_reference(s) for s in head if s.tag == "REF"),
        dates=tuple(read_date_reference(s) for s in head if s.tag == "DTM"),
        parties=read_parties(head),
        lines=tuple(_read_line(loop) for loop in loops),
        total_amount=total,
        amounts=tuple(read_amount(s) for s in summary if s.tag == "AMT"),
        charges=tuple(read_allowance_charge(s) for s in summary if s.tag == "SAC"),
        line_count=counts[0] if counts else None,
    )
