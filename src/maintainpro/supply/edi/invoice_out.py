"""Write an 810 invoice (partner simulators, round-trip tests); TDS01 has implied decimals."""

from __future__ import annotations

from decimal import Decimal

from maintainpro.supply.edi.common import (
    allowance_charge_segment,
    amount_segment,
    date_reference_segment,
    description_segments,
    party_segments,
    product_id_elements,
    reference_segment,
)
from maintainpro.supply.edi.envelope import TransactionContent
from maintainpro.supply.edi.invoice import Invoice, InvoiceLine
from maintainpro.supply.edi.model import Segment
from maintainpro.supply.edi.values import format_date, format_decimal, format_implied


def _number(value: Decimal | None) -> str:
    return "" if value is None else format_decimal(value)


def _line_segments(line: InvoiceLine) -> list[Segment]:
    segments = [
        Segment.of(
            "IT1",
            line.line_number,
            _number(line.quantity),
            line.unit,
            _number(line.unit_price),
            line.price_basis,
            *product_id_elements(line.product_ids),
        )
    ]
    segments += description_segments(line.descriptions)
    segments += [allowance_charge_segment(charge) for charge in line.charges]
    for party in line.parties:
        segments += party_segments(party)
    return segments


def invoice_content(invoice: Invoice) -> TransactionContent:
    """Write an Invoice as the body of an 810 transaction set."""
    segments = [
        Segment.of(
            "BIG",
            format_date(invoice.invoice_date),
            invoice.invoice_number,
            format_date(invoice.po_date),
            invoice.po_number,
            "",
            "",
            invoice.transaction_type,
        )
    ]
    if invoice.currency:
        segments.append(Segment.of("CUR", "SE", invoice.currency))
    segments += [reference_segment(reference) for reference in invoice.references]
    for party in invoice.parties:
        segments += party_segments(party)
    segments += [date_reference_segment(date) for date in invoice.dates]
    for line in invoice.lines:
        segments += _line_segments(line)
    segments.append(Segment.of("TDS", format_implied(invoice.total_amount)))
    segments += [amount_segment(amount) for amount in invoice.amounts]
    segments += [allowance_charge_segment(charge) for charge in invoice.charges]
    if invoice.line_count is not None:
        segments.append(Segment.of("CTT", str(invoice.line_count)))
    return TransactionContent("810", "IN", tuple(segments))
