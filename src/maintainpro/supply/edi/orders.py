"""850 purchase order and 860 purchase order change: typed documents, reading and writing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from maintainpro.supply.edi.common import (
    Amount,
    CarrierRouting,
    DateReference,
    Party,
    ProductId,
    Reference,
    amount_segment,
    carrier_segment,
    date_reference_segment,
    description_segments,
    party_segments,
    product_id_elements,
    read_amount,
    read_carrier,
    read_date_reference,
    read_descriptions,
    read_parties,
    read_product_ids,
    read_reference,
    reference_segment,
    require_segment,
    require_set,
    split_loops,
)
from maintainpro.supply.edi.envelope import TransactionContent
from maintainpro.supply.edi.model import Segment, TransactionSet
from maintainpro.supply.edi.values import (
    first_component,
    format_date,
    format_decimal,
    optional_date,
    optional_decimal,
    optional_int,
    required_date,
    required_decimal,
    required_text,
    text,
)

_SUMMARY = ("CTT",)


@dataclass(frozen=True, slots=True)
class PurchaseOrderLine:
    """A PO1 line with its PID descriptions."""

    line_number: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None = None
    price_basis: str = ""
    product_ids: tuple[ProductId, ...] = ()
    descriptions: tuple[str, ...] = ()

    @property
    def extended_amount(self) -> Decimal | None:
        """Quantity times unit price, when a price is given."""
        return None if self.unit_price is None else self.quantity * self.unit_price


@dataclass(frozen=True, slots=True)
class PurchaseOrder:
    """An 850 purchase order."""

    po_number: str
    order_date: date
    purpose: str = "00"
    order_type: str = "SA"
    release_number: str = ""
    currency: str | None = None
    references: tuple[Reference, ...] = ()
    dates: tuple[DateReference, ...] = ()
    carrier: CarrierRouting | None = None
    parties: tuple[Party, ...] = ()
    lines: tuple[PurchaseOrderLine, ...] = ()
    line_count: int | None = None
    amounts: tuple[Amount, ...] = ()


@dataclass(frozen=True, slots=True)
class PurchaseOrderChangeLine:
    """A POC line change; `change_type` is POC02 (e.g. QI, QD, PC, DI, AI, CA)."""

    line_number: str
    change_type: str
    quantity: Decimal | None = None
    quantity_left: Decimal | None = None
    unit: str = ""
    unit_price: Decimal | None = None
    price_basis: str = ""
    product_ids: tuple[ProductId, ...] = ()
    descriptions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PurchaseOrderChange:
    """An 860 purchase order change request."""

    po_number: str
    order_date: date
    purpose: str = "04"
    order_type: str = "SA"
    release_number: str = ""
    change_sequence: str = ""
    change_date: date | None = None
    references: tuple[Reference, ...] = ()
    dates: tuple[DateReference, ...] = ()
    parties: tuple[Party, ...] = ()
    lines: tuple[PurchaseOrderChangeLine, ...] = ()
    line_count: int | None = None


def _line_count(summary: list[Segment]) -> int | None:
    for segment in summary:
        if segment.tag == "CTT":
            return optional_int(segment, 1)
    return None


def _currency(segments: list[Segment]) -> str | None:
    for segment in segments:
        if segment.tag == "CUR":
            return text(segment, 2) or None
    return None


def _read_po_line(loop: list[Segment]) -> PurchaseOrderLine:
    po1 = loop[0]
    return PurchaseOrderLine(
        line_number=text(po1, 1),
        quantity=required_decimal(po1, 2),
        unit=first_component(text(po1, 3)),
        unit_price=optional_decimal(po1, 4),
        price_basis=text(po1, 5),
        product_ids=read_product_ids(po1, 6),
        descriptions=read_descriptions(loop),
    )


def read_purchase_order(transaction_set: TransactionSet) -> PurchaseOrder:
    """Map an 850 transaction set to a PurchaseOrder."""
    require_set(transaction_set, "850")
    head, loops, summary = split_loops(transaction_set.segments, "PO1", _SUMMARY)
    beg = require_segment(transaction_set, head, "BEG")
    carriers = [read_carrier(s) for s in head if s.tag == "TD5"]
    return PurchaseOrder(
        po_number=required_text(beg, 3),
        order_date=required_date(beg, 5),
        purpose=text(beg, 1),
        order_type=text(beg, 2),
        release_number=text(beg, 4),
        currency=_currency(head),
        references=tuple(read_reference(s) for s in head if s.tag == "REF"),
        dates=tuple(read_date_reference(s) for s in head if s.tag == "DTM"),
        carrier=carriers[0] if carriers else None,
        parties=read_parties(head),
        lines=tuple(_read_po_line(loop) for loop in loops),
        line_count=_line_count(summary),
        amounts=tuple(read_amount(s) for s in summary if s.tag == "AMT"),
    )


def _price(value: Decimal | None) -> str:
    return "" if value is None else format_decimal(value)


def purchase_order_content(order: PurchaseOrder) -> TransactionContent:
    """Write a PurchaseOrder as the body of an 850 transaction set."""
    segments = [
        Segment.of(
            "BEG",
            order.purpose,
            order.order_type,
            order.po_number,
            order.release_number,
            format_date(order.order_date),
        )
    ]
    if order.currency:
        segments.append(Segment.of("CUR", "BY", order.currency))
    segments += [reference_segment(r) for r in order.references]
    segments += [date_reference_segment(d) for d in order.dates]
    if order.carrier is not None:
        segments.append(carrier_segment(order.carrier))
    for party in order.parties:
        segments += party_segments(party)
    for line in order.lines:
        segments.append(
            Segment.of(
                "PO1",
                line.line_number,
                format_decimal(line.quantity),
                line.unit,
                _price(line.unit_price),
                line.price_basis,
                *product_id_elements(line.product_ids),
            )
        )
        segments += description_segments(line.descriptions)
    count = order.line_count if order.line_count is not None else len(order.lines)
    segments.append(Segment.of("CTT", str(count)))
    segments += [amount_segment(a) for a in order.amounts]
    return TransactionContent("850", "PO", tuple(segments))


def _read_change_line(loop: list[Segment]) -> PurchaseOrderChangeLine:
    poc = loop[0]
    return PurchaseOrderChangeLine(
        line_number=text(poc, 1),
        change_type=required_text(poc, 2),
        quantity=optional_decimal(poc, 3),
        quantity_left=optional_decimal(poc, 4),
        unit=first_component(text(poc, 5)),
        unit_price=optional_decimal(poc, 6),
        price_basis=text(poc, 7),
        product_ids=read_product_ids(poc, 8),
        descriptions=read_descriptions(loop),
    )


def read_purchase_order_change(transaction_set: TransactionSet) -> PurchaseOrderChange:
    """Map an 860 transaction set to a PurchaseOrderChange."""
    require_set(transaction_set, "860")
    head, loops, summary = split_loops(transaction_set.segments, "POC", _SUMMARY)
    bch = require_segment(transaction_set, head, "BCH")
    return PurchaseOrderChange(
        po_number=required_text(bch, 3),
        order_date=required_date(bch, 6),
        purpose=text(bch, 1),
        order_type=text(bch, 2),
        release_number=text(bch, 4),
        change_sequence=text(bch, 5),
        change_date=optional_date(bch, 11),
        references=tuple(read_reference(s) for s in head if s.tag == "REF"),
        dates=tuple(read_date_reference(s) for s in head if s.tag == "DTM"),
        parties=read_parties(head),
        lines=tuple(_read_change_line(loop) for loop in loops),
        line_count=_line_count(summary),
    )


def purchase_order_change_content(change: PurchaseOrderChange) -> TransactionContent:
    """Write a PurchaseOrderChange as the body of an 860 transaction set."""
    segments = [
        Segment.of(
            "BCH",
            change.purpose,
            change.order_type,
            change.po_number,
            change.release_number,
            change.change_sequence,
            format_date(change.order_date),
            "",
            "",
            "",
            "",
            format_date(change.change_date),
        )
    ]
    segments += [reference_segment(r) for r in change.references]
    segments += [date_reference_segment(d) for d in change.dates]
    for party in change.parties:
        segments += party_segments(party)
    for line in change.lines:
        segments.append(
            Segment.of(
                "POC",
                line.line_number,
                line.change_type,
                _price(line.quantity),
                _price(line.quantity_left),
                line.unit,
                _price(line.unit_price),
                line.price_basis,
                *product_id_elements(line.product_ids),
            )
        )
        segments += description_segments(line.descriptions)
    count = change.line_count if change.line_count is not None else len(change.lines)
    segments.append(Segment.of("CTT", str(count)))
    return TransactionContent("860", "PC", tuple(segments))
