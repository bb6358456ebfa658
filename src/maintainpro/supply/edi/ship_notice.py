"""856 advance ship notice: BSN header and the S/O/P(T)/I hierarchical levels."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal

from maintainpro.supply.edi.common import (
    CarrierRouting,
    DateReference,
    Party,
    ProductId,
    Reference,
    read_carrier,
    read_date_reference,
    read_descriptions,
    read_parties,
    read_product_ids,
    read_reference,
    require_segment,
    require_set,
)
from maintainpro.supply.edi.errors import X12MappingError
from maintainpro.supply.edi.model import Segment, TransactionSet
from maintainpro.supply.edi.values import (
    first_component,
    optional_decimal,
    optional_int,
    optional_time,
    required_date,
    required_text,
    text,
)

_PACK_LEVELS = ("P", "T")


@dataclass(frozen=True, slots=True)
class ShippedItem:
    """An I (item) level: LIN identifiers and SN1 quantities."""

    hl_id: str
    line_number: str
    product_ids: tuple[ProductId, ...]
    quantity_shipped: Decimal | None
    unit: str
    quantity_ordered: Decimal | None
    descriptions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShippedPack:
    """A P (pack) or T (tare) level with its MAN marks and the items below it."""

    hl_id: str
    level_code: str
    marks: tuple[str, ...]
    items: tuple[ShippedItem, ...]


@dataclass(frozen=True, slots=True)
class ShippedOrder:
    """An O (order) level: PRF purchase order reference and everything below it."""

    hl_id: str
    po_number: str
    release_number: str
    references: tuple[Reference, ...]
    parties: tuple[Party, ...]
    packs: tuple[ShippedPack, ...]
    items: tuple[ShippedItem, ...]


@dataclass(frozen=True, slots=True)
class Shipment:
    """The S (shipment) level: carrier, tracking, weights, parties and orders."""

    hl_id: str
    carrier: CarrierRouting | None
    tracking_numbers: tuple[str, ...]
    bill_of_lading: str
    references: tuple[Reference, ...]
    dates: tuple[DateReference, ...]
    parties: tuple[Party, ...]
    packaging_code: str
    lading_quantity: int | None
    gross_weight: Decimal | None
    weight_unit: str
    orders: tuple[ShippedOrder, ...]


@dataclass(frozen=True, slots=True)
class ShipNotice:
    """An 856 ship notice."""

    purpose: str
    shipment_id: str
    notice_date: date
    notice_time: time | None
    dates: tuple[DateReference, ...]
    shipments: tuple[Shipment, ...]
    level_count: int | None


@dataclass(frozen=True, slots=True)
class _Level:
    hl_id: str
    parent_id: str
    code: str
    segments: tuple[Segment, ...]


def _levels(transaction_set: TransactionSet) -> tuple[list[Segment], list[_Level]]:
    header: list[Segment] = []
    raw: list[list[Segment]] = []
    for segment in transaction_set.segments:
        if segment.tag == "HL":
            raw.append([segment])
        elif segment.tag == "CTT":
            # CTT may come before the first HL in the wild; it is summary either way.
            header.append(segment)
        elif raw:
            raw[-1].append(segment)
        else:
            header.append(segment)
    levels: list[_Level] = []
    known: set[str] = set()
    for group in raw:
        hl = group[0]
        level = _Level(required_text(hl, 1), text(hl, 2), required_text(hl, 3), tuple(group))
        if level.parent_id and level.parent_id not in known:
            raise X12MappingError(
                f"HL {level.hl_id} refers to unknown parent {level.parent_id!r}", hl.position
            )
        if level.hl_id in known:
            raise X12MappingError(f"HL id {level.hl_id!r} is used twice", hl.position)
        known.add(level.hl_id)
        levels.append(level)
    return header, levels


def _below(levels: list[_Level], root: _Level, codes: Collection[str]) -> list[_Level]:
    """Levels with one of `codes` anywhere under `root`, in document order."""
    inside = {root.hl_id}
    found: list[_Level] = []
    for level in levels:
        if level.parent_id in inside:
            inside.add(level.hl_id)
            if level.code in codes:
                found.append(level)
    return found


def _item(level: _Level) -> ShippedItem:
    lin = next((s for s in level.segments if s.tag == "LIN"), None)
    sn1 = next((s for s in level.segments if s.tag == "SN1"), None)
    return ShippedItem(
        hl_id=level.hl_id,
        line_number=text(lin, 1) if lin else "",
        product_ids=read_product_ids(lin, 2) if lin else (),
        quantity_shipped=optional_decimal(sn1, 2) if sn1 else None,
        unit=first_component(text(sn1, 3)) if sn1 else "",
        quantity_ordered=optional_decimal(sn1, 5) if sn1 else None,
        descriptions=read_descriptions(level.segments),
    )


def _items(levels: list[_Level], root: _Level) -> tuple[ShippedItem, ...]:
    return tuple(_item(level) for level in _below(levels, root, ("I",)))


def _references(segments: Iterable[Segment]) -> tuple[Reference, ...]:
    return tuple(read_reference(s) for s in segments if s.tag == "REF")


def _order(levels: list[_Level], level: _Level) -> ShippedOrder:
    prf = next((s for s in level.segments if s.tag == "PRF"), None)
    packs = tuple(
        ShippedPack(
            hl_id=pack.hl_id,
            level_code=pack.code,
            marks=tuple(text(s, 2) for s in pack.segments if s.tag == "MAN"),
            items=_items(levels, pack),
        )
        for pack in _below(levels, level, _PACK_LEVELS)
    )
    return ShippedOrder(
        hl_id=level.hl_id,
        po_number=text(prf, 1) if prf else "",
        release_number=text(prf, 2) if prf else "",
        references=_references(level.segments),
        parties=read_parties(level.segments),
        packs=packs,
        items=_items(levels, level),
    )


def _shipment(levels: list[_Level], level: _Level) -> Shipment:
    segments = level.segments
    references = _references(segments)
    td1 = next((s for s in segments if s.tag == "TD1"), None)
    td5 = next((s for s in segments if s.tag == "TD5"), None)
    return Shipment(
        hl_id=level.hl_id,
        carrier=read_carrier(td5) if td5 else None,
        tracking_numbers=tuple(r.value for r in references if r.qualifier == "CN"),
        bill_of_lading=next((r.value for r in references if r.qualifier == "BM"), ""),
        references=references,
        dates=tuple(read_date_reference(s) for s in segments if s.tag == "DTM"),
        parties=read_parties(segments),
        packaging_code=text(td1, 1) if td1 else "",
        lading_quantity=optional_int(td1, 2) if td1 else None,
        gross_weight=optional_decimal(td1, 7) if td1 else None,
        weight_unit=text(td1, 8) if td1 else "",
        orders=tuple(_order(levels, o) for o in _below(levels, level, ("O",))),
    )


def read_ship_notice(transaction_set: TransactionSet) -> ShipNotice:
    """Map an 856 transaction set to a ShipNotice."""
    require_set(transaction_set, "856")
    header, levels = _levels(transaction_set)
    bsn = require_segment(transaction_set, header, "BSN")
    counts = [optional_int(s, 1) for s in header if s.tag == "CTT"]
    return ShipNotice(
        purpose=text(bsn, 1),
        shipment_id=required_text(bsn, 2),
        notice_date=required_date(bsn, 3),
        notice_time=optional_time(bsn, 4),
        dates=tuple(read_date_reference(s) for s in header if s.tag == "DTM"),
        shipments=tuple(_shipment(levels, s) for s in levels if s.code == "S"),
        level_count=counts[0] if counts else None,
    )
