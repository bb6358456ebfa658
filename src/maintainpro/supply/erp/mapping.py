"""From our purchase order (ORM) to the ERP-neutral document the connectors send."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from maintainpro.supply.erp.base import ErpPurchaseOrder, ErpPurchaseOrderLine
from maintainpro.supply.purchasing import PurchaseOrder


def erp_purchase_order(
    order: PurchaseOrder,
    *,
    vendor_number: str | None = None,
    item_numbers: Mapping[int, str] | None = None,
) -> ErpPurchaseOrder:
    """The order as an ErpPurchaseOrder.

    The vendor is the supplier's code unless the ERP knows it by another number; an item is the
    part's number unless ``item_numbers`` maps the part id to the ERP's material number.
    """
    if not order.lines:
        raise ValueError(f"{order.number} has no lines to send")
    items = item_numbers or {}
    stamp = order.approved_at or order.created_at or dt.datetime.now(dt.UTC)
    lines = tuple(
        ErpPurchaseOrderLine(
            line_no=line.line_no,
            item_number=items.get(line.part_id, line.part.number),
            description=line.part.name,
            quantity=line.quantity,
            unit=line.part.unit,
            unit_price=line.unit_price,
            need_by=line.need_by,
        )
        for line in order.lines
    )
    return ErpPurchaseOrder(
        number=order.number,
        vendor_number=vendor_number or order.supplier.code,
        currency=order.currency,
        order_date=stamp.date(),
        lines=lines,
        note=order.note or "",
        revision=order.revision or 0,
    )
