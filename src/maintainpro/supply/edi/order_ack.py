"""855 purchase order acknowledgement: BAK header, PO1 lines with ACK statuses and SCH."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from maintainpro.supply.edi.common import (
    Party,
    ProductId,
    Reference,
    read_descriptions,
    read_parties,
    read_product_ids,
    read_reference,
    require_segment,
    require_set,
    split_loops,
)
from maintainpro.supply.edi.model import Segment, TransactionSet
from maintainpro.supply.edi.values import (
    first_component,
    optional_date,
    optional_decimal,
    optional_int,
    required_text,
    text,
)


@dataclass(frozen=True, slots=True)
class LineAcknowledgement:
    """An ACK segment: line status (IA accepted, IR rejected, IB backordered...) and quantity."""

    status: str
    quantity: Decimal | None = None
    unit: str = ""
    date_qualifier: str = ""
    date: date | None = None

    @property
    def accepted(self) -> bool:
        """True for IA (item accepted) and the accepted-with-change codes."""
        return self.status in {"IA", "IC", "IP", "IQ", "IS", "AC"}

    @property
    def rejected(self) -> bool:
        """True for IR (item rejected) and the other reject codes."""
        return self.status in {"IR", "ID", "R1", "R2", "R3", "R4"}


@dataclass(frozen=True, slots=True)
class LineSchedule:
    """An SCH line item schedule: quantity expected on a date."""

    quantity: Decimal
    unit: str = ""
    date_qualifier: str = ""
    date: date | None = None


@dataclass(frozen=True, slots=True)
class AcknowledgedLine:
    """A PO1 line of an 855 with its acknowledgements and schedules."""

    line_number: str
    quantity: Decimal | None
    unit: str
    unit_price: Decimal | None
    product_ids: tuple[ProductId, ...]
    descriptions: tuple[str, ...]
    acknowledgements: tuple[LineAcknowledgement, ...]
    schedules: tuple[LineSchedule, ...]


@dataclass(frozen=True, slots=True)
class PurchaseOrderAcknowledgement:
    """An 855 acknowledgement; `acknowledgement_type` is BAK02 (AD, AC, RJ...)."""

    purpose: str
    acknowledgement_type: str
    po_number: str
    po_date: date | None
    request_reference: str
    seller_order_number: str
    acknowledgement_date: date | None
    currency: str | None
    references: tuple[Reference, ...]
    parties: tuple[Party, ...]
    lines: tuple[AcknowledgedLine, ...]
    line_count: int | None


def _read_ack(segment: Segment) -> LineAcknowledgement:
    return LineAcknowledgement(
        status=required_text(segment, 1),
        quantity=optional_decimal(segment, 2),
        unit=first_component(text(segment, 3)),
        date_qualifier=text(segment, 4),
        date=optional_date(segment, 5),
    )


def _read_schedule(segment: Segment) -> LineSchedule:
    quantity = optional_decimal(segment, 1)
    return LineSchedule(
        quantity=quantity if quantity is not None else Decimal(0),
        unit=first_component(text(segment, 2)),
        date_qualifier=text(segment, 5),
        date=optional_date(segment, 6),
    )


def _read_line(loop: list[Segment]) -> AcknowledgedLine:
    po1 = loop[0]
    return AcknowledgedLine(
        line_number=text(po1, 1),
        quantity=optional_decimal(po1, 2),
        unit=first_component(text(po1, 3)),
        unit_price=optional_decimal(po1, 4),
        product_ids=read_product_ids(po1, 6),
        descriptions=read_descriptions(loop),
        acknowledgements=tuple(_read_ack(s) for s in loop if s.tag == "ACK"),
        schedules=tuple(_read_schedule(s) for s in loop if s.tag == "SCH"),
    )


def read_purchase_order_acknowledgement(
    transaction_set: TransactionSet,
) -> PurchaseOrderAcknowledgement:
    """Map an 855 transaction set to a PurchaseOrderAcknowledgement."""
    require_set(transaction_set, "855")
    head, loops, summary = split_loops(transaction_set.segments, "PO1", ("CTT",))
    bak = require_segment(transaction_set, head, "BAK")
    currencies = [text(s, 2) for s in head if s.tag == "CUR" and text(s, 2)]
    counts = [optional_int(s, 1) for s in summary if s.tag == "CTT"]
    return PurchaseOrderAcknowledgement(
        purpose=text(bak, 1),
        acknowledgement_type=required_text(bak, 2),
        po_number=required_text(bak, 3),
        po_date=optional_date(bak, 4),
        request_reference=text(bak, 6),
        seller_order_number=text(bak, 8),
        acknowledgement_date=optional_date(bak, 9),
        currency=currencies[0] if currencies else None,
        references=tuple(read_reference(s) for s in head if s.tag == "REF"),
        parties=read_parties(head),
        lines=tuple(_read_line(loop) for loop in loops),
        line_count=counts[0] if counts else None,
    )
