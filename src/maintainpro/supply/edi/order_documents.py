"""Our purchase orders as X12 documents: the 850 for a sent order, the 860 for a revision.

BEG03/BCH03 carry our order number (PO-000123), PO1 lines our part number (BP) and, when the
line came from a catalogue item, the supplier's part number (VP); need-by dates go out as
DTM*002, on the header (the earliest) and in each line's loop.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.supply.catalogs import CatalogItem
from maintainpro.supply.edi.common import Amount, DateReference, Party, ProductId
from maintainpro.supply.edi.envelope import TransactionContent
from maintainpro.supply.edi.model import Segment
from maintainpro.supply.edi.orders import (
    PurchaseOrder as X12PurchaseOrder,
)
from maintainpro.supply.edi.orders import (
    PurchaseOrderChange,
    PurchaseOrderChangeLine,
    PurchaseOrderLine,
    purchase_order_change_content,
    purchase_order_content,
)
from maintainpro.supply.edi.values import format_date
from maintainpro.supply.purchasing import PurchaseOrder
from maintainpro.supply.purchasing import PurchaseOrderLine as OrderLine

REQUESTED_DELIVERY = "002"
# Free text must not contain a delimiter of the (default) separators or a line break: X12 has
# no escape, so such characters become spaces. PID05 and N102 hold 80 and 60 characters.
_DELIMITERS = re.compile(r"[*~>^\r\n]")
# POC02: a line cancelled before anything arrived is deleted, any other change is a line change.
DELETE_ITEMS = "DI"
CHANGE_ITEMS = "CA"


@dataclass(frozen=True)
class Buyer:
    """How we name ourselves in N1*BY (the partner's id for us goes in N104)."""

    name: str
    identifier: str


def _clean(text: str, limit: int) -> str:
    return " ".join(_DELIMITERS.sub(" ", text).split())[:limit]


def _catalog_items(session: Session, order: PurchaseOrder) -> dict[int, CatalogItem]:
    """The catalogue item behind each line: the one it was ordered from, else the supplier's
    item for the same part."""
    found: dict[int, CatalogItem] = {}
    by_part: dict[int, CatalogItem] = {
        item.part_id: item
        for item in session.scalars(
            select(CatalogItem)
            .where(CatalogItem.supplier_id == order.supplier_id)
            .order_by(CatalogItem.id)
        )
    }
    for line in order.lines:
        item = session.get(CatalogItem, line.catalog_item_id) if line.catalog_item_id else None
        item = item or by_part.get(line.part_id)
        if item is not None:
            found[line.line_no] = item
    return found


def _product_ids(line: OrderLine, item: CatalogItem | None) -> tuple[ProductId, ...]:
    ids = [ProductId("BP", line.part.number)]
    if item is not None:
        ids.append(ProductId("VP", item.supplier_part_number))
    return tuple(ids)


def _issued(order: PurchaseOrder) -> dt.date:
    when = order.sent_at or order.approved_at or order.created_at
    return when.date()


def _parties(order: PurchaseOrder, buyer: Buyer) -> tuple[Party, ...]:
    supplier = order.supplier
    return (
        Party("BY", _clean(buyer.name, 60), "92", buyer.identifier),
        Party("VN", _clean(supplier.legal_name, 60), "92", supplier.code),
    )


def _earliest_need(lines: list[OrderLine]) -> tuple[DateReference, ...]:
    dates = [line.need_by for line in lines if line.need_by is not None]
    return (DateReference(REQUESTED_DELIVERY, min(dates)),) if dates else ()


def _with_line_dates(
    content: TransactionContent, loop_tag: str, dates: Mapping[str, dt.date]
) -> TransactionContent:
    """Add DTM*002 at the end of each line loop (after its PID segments) that has a date."""
    segments: list[Segment] = []
    pending: dt.date | None = None
    for segment in content.segments:
        if pending is not None and segment.tag != "PID":
            segments.append(Segment.of("DTM", REQUESTED_DELIVERY, format_date(pending)))
            pending = None
        segments.append(segment)
        if segment.tag == loop_tag:
            pending = dates.get(segment.element(1))
    if pending is not None:  # pragma: no cover - CTT always closes the lines
        segments.append(Segment.of("DTM", REQUESTED_DELIVERY, format_date(pending)))
    return TransactionContent(
        content.set_id, content.functional_id, tuple(segments), content.implementation_reference
    )


def order_document(session: Session, order: PurchaseOrder, buyer: Buyer) -> X12PurchaseOrder:
    """The 850 form of an order; lines cancelled to nothing are left out."""
    items = _catalog_items(session, order)
    lines = [line for line in order.lines if line.quantity > 0]
    return X12PurchaseOrder(
        po_number=order.number,
        order_date=_issued(order),
        purpose="00",
        order_type="SA",
        currency=order.currency,
        dates=_earliest_need(lines),
        parties=_parties(order, buyer),
        lines=tuple(
            PurchaseOrderLine(
                line_number=str(line.line_no),
                quantity=line.quantity,
                unit=items[line.line_no].unit if line.line_no in items else line.part.unit,
                unit_price=line.unit_price,
                price_basis="PE",
                product_ids=_product_ids(line, items.get(line.line_no)),
                descriptions=(_clean(line.part.name, 80),),
            )
            for line in lines
        ),
        amounts=(Amount("TT", order.total),),
    )


def order_content(session: Session, order: PurchaseOrder, buyer: Buyer) -> TransactionContent:
    """The 850 transaction set body for an order, with each line's need-by date."""
    content = purchase_order_content(order_document(session, order, buyer))
    dates = {str(line.line_no): line.need_by for line in order.lines if line.need_by}
    return _with_line_dates(content, "PO1", dates)


def _changed_lines(order: PurchaseOrder) -> set[int] | None:
    """Line numbers the current revision changed, from its history entry; None if unknown."""
    marker = f"revision {order.revision}"
    for entry in reversed(order.history):
        if entry.note == marker or entry.note.startswith(marker + ":"):
            lines = {
                int(item["line"])
                for item in entry.detail or []
                if isinstance(item.get("line"), int)
            }
            return lines or None
    return None


def change_document(
    session: Session, order: PurchaseOrder, buyer: Buyer, *, now: dt.datetime
) -> PurchaseOrderChange:
    """The 860 form of the order's current revision: the changed lines with their new terms.

    BCH05 carries the revision; POC03 the new ordered quantity and POC04 what is still to come.
    When the revision's lines cannot be told from the history, every line is sent.
    """
    items = _catalog_items(session, order)
    changed = _changed_lines(order)
    lines = [line for line in order.lines if changed is None or line.line_no in changed]
    return PurchaseOrderChange(
        po_number=order.number,
        order_date=_issued(order),
        purpose="04",
        order_type="SA",
        change_sequence=str(order.revision),
        change_date=now.date(),
        parties=_parties(order, buyer),
        lines=tuple(
            PurchaseOrderChangeLine(
                line_number=str(line.line_no),
                change_type=DELETE_ITEMS if line.quantity == 0 else CHANGE_ITEMS,
                quantity=line.quantity,
                quantity_left=line.outstanding,
                unit=items[line.line_no].unit if line.line_no in items else line.part.unit,
                unit_price=line.unit_price,
                price_basis="PE",
                product_ids=_product_ids(line, items.get(line.line_no)),
                descriptions=(_clean(line.part.name, 80),),
            )
            for line in lines
        ),
    )


def change_content(
    session: Session, order: PurchaseOrder, buyer: Buyer, *, now: dt.datetime
) -> TransactionContent:
    """The 860 transaction set body for the order's current revision."""
    document = change_document(session, order, buyer, now=now)
    content = purchase_order_change_content(document)
    wanted = {line.line_number for line in document.lines}
    dates = {
        str(line.line_no): line.need_by
        for line in order.lines
        if line.need_by and str(line.line_no) in wanted
    }
    return _with_line_dates(content, "POC", dates)
