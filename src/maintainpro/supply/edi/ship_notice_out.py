"""Write an 856 ship notice with its S/O/P/I levels (for partner simulators and round trips).

`Shipment.references` is the S level's full REF list; tracking numbers (REF*CN) and the bill of
lading (REF*BM) missing from it are added after it. An order's items that sit in a pack are
written under that pack, the others directly under the order.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from maintainpro.supply.edi.common import (
    Reference,
    carrier_segment,
    date_reference_segment,
    description_segments,
    party_segments,
    product_id_elements,
    reference_segment,
)
from maintainpro.supply.edi.envelope import TransactionContent
from maintainpro.supply.edi.model import Segment
from maintainpro.supply.edi.ship_notice import (
    Shipment,
    ShipNotice,
    ShippedItem,
    ShippedOrder,
    ShippedPack,
)
from maintainpro.supply.edi.values import format_date, format_decimal, format_time


def _number(value: Decimal | None) -> str:
    return "" if value is None else format_decimal(value)


def _hl(level_id: str, parent: str, code: str) -> Segment:
    return Segment.of("HL", level_id, parent, code)


def _item(item: ShippedItem, parent: str) -> Iterator[Segment]:
    yield _hl(item.hl_id, parent, "I")
    if item.line_number or item.product_ids:
        yield Segment.of("LIN", item.line_number, *product_id_elements(item.product_ids))
    if item.quantity_shipped is not None or item.quantity_ordered is not None:
        yield Segment.of(
            "SN1",
            "",
            _number(item.quantity_shipped),
            item.unit,
            "",
            _number(item.quantity_ordered),
            item.unit if item.quantity_ordered is not None else "",
        )
    yield from description_segments(item.descriptions)


def _pack(pack: ShippedPack, parent: str) -> Iterator[Segment]:
    yield _hl(pack.hl_id, parent, pack.level_code)
    for mark in pack.marks:
        yield Segment.of("MAN", "GM", mark)
    for item in pack.items:
        yield from _item(item, pack.hl_id)


def _order(order: ShippedOrder, parent: str) -> Iterator[Segment]:
    yield _hl(order.hl_id, parent, "O")
    if order.po_number or order.release_number:
        yield Segment.of("PRF", order.po_number, order.release_number)
    yield from (reference_segment(reference) for reference in order.references)
    for party in order.parties:
        yield from party_segments(party)
    packed = {item.hl_id for pack in order.packs for item in pack.items}
    for pack in order.packs:
        yield from _pack(pack, order.hl_id)
    for item in order.items:
        if item.hl_id not in packed:
            yield from _item(item, order.hl_id)


def _references(shipment: Shipment) -> list[Reference]:
    references = list(shipment.references)
    known = {(reference.qualifier, reference.value) for reference in references}
    wanted = [("CN", number) for number in shipment.tracking_numbers]
    if shipment.bill_of_lading:
        wanted.append(("BM", shipment.bill_of_lading))
    references += [Reference(q, v) for q, v in wanted if (q, v) not in known]
    return references


def _shipment(shipment: Shipment) -> Iterator[Segment]:
    yield _hl(shipment.hl_id, "", "S")
    if (
        shipment.packaging_code
        or shipment.lading_quantity is not None
        or shipment.gross_weight is not None
        or shipment.weight_unit
    ):
        yield Segment.of(
            "TD1",
            shipment.packaging_code,
            "" if shipment.lading_quantity is None else str(shipment.lading_quantity),
            "",
            "",
            "",
            "G" if shipment.gross_weight is not None else "",
            _number(shipment.gross_weight),
            shipment.weight_unit,
        )
    if shipment.carrier is not None:
        yield carrier_segment(shipment.carrier)
    yield from (reference_segment(reference) for reference in _references(shipment))
    yield from (date_reference_segment(date) for date in shipment.dates)
    for party in shipment.parties:
        yield from party_segments(party)
    for order in shipment.orders:
        yield from _order(order, shipment.hl_id)


def ship_notice_content(notice: ShipNotice) -> TransactionContent:
    """Write a ShipNotice as the body of an 856 transaction set."""
    segments = [
        Segment.of(
            "BSN",
            notice.purpose,
            notice.shipment_id,
            format_date(notice.notice_date),
            format_time(notice.notice_time),
        )
    ]
    segments += [date_reference_segment(date) for date in notice.dates]
    for shipment in notice.shipments:
        segments += _shipment(shipment)
    if notice.level_count is not None:
        segments.append(Segment.of("CTT", str(notice.level_count)))
    return TransactionContent("856", "SH", tuple(segments))
