"""Write an 855 purchase order acknowledgement (for partner simulators and round-trip tests)."""

from __future__ import annotations

from decimal import Decimal

from maintainpro.supply.edi.common import (
    description_segments,
    party_segments,
    product_id_elements,
    reference_segment,
)
from maintainpro.supply.edi.envelope import TransactionContent
from maintainpro.supply.edi.model import Segment
from maintainpro.supply.edi.order_ack import (
    AcknowledgedLine,
    LineAcknowledgement,
    LineSchedule,
    PurchaseOrderAcknowledgement,
)
from maintainpro.supply.edi.values import format_date, format_decimal


def _number(value: Decimal | None) -> str:
    return "" if value is None else format_decimal(value)


def _ack_segment(ack: LineAcknowledgement) -> Segment:
    return Segment.of(
        "ACK",
        ack.status,
        _number(ack.quantity),
        ack.unit,
        ack.date_qualifier,
        format_date(ack.date),
    )


def _schedule_segment(schedule: LineSchedule) -> Segment:
    return Segment.of(
        "SCH",
        format_decimal(schedule.quantity),
        schedule.unit,
        "",
        "",
        schedule.date_qualifier,
        format_date(schedule.date),
    )


def _line_segments(line: AcknowledgedLine) -> list[Segment]:
    segments = [
        Segment.of(
            "PO1",
            line.line_number,
            _number(line.quantity),
            line.unit,
            _number(line.unit_price),
            "",
            *product_id_elements(line.product_ids),
        )
    ]
    segments += description_segments(line.descriptions)
    segments += [_ack_segment(ack) for ack in line.acknowledgements]
    segments += [_schedule_segment(schedule) for schedule in line.schedules]
    return segments


def order_ack_content(ack: PurchaseOrderAcknowledgement) -> TransactionContent:
    """Write a PurchaseOrderAcknowledgement as the body of an 855 transaction set."""
    segments = [
        Segment.of(
            "BAK",
            ack.purpose,
            ack.acknowledgement_type,
            ack.po_number,
            format_date(ack.po_date),
            "",
            ack.request_reference,
            "",
            ack.seller_order_number,
            format_date(ack.acknowledgement_date),
        )
    ]
    if ack.currency:
        segments.append(Segment.of("CUR", "SE", ack.currency))
    segments += [reference_segment(reference) for reference in ack.references]
    for party in ack.parties:
        segments += party_segments(party)
    for line in ack.lines:
        segments += _line_segments(line)
    if ack.line_count is not None:
        segments.append(Segment.of("CTT", str(ack.line_count)))
    return TransactionContent("855", "PR", tuple(segments))
