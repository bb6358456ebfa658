"""Ship notices and carrier events: what is on its way, and where it is."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.supply.order_changes import json_value, settle_progress
from maintainpro.supply.purchasing import (
    RECEIVING_STATUSES,
    PoStatus,
    PoTransitionError,
    PurchaseOrder,
)
from maintainpro.supply.receiving import over_receipt_limit
from maintainpro.supply.shipments import (
    DocumentSource,
    Shipment,
    ShipmentEvent,
    ShipmentLine,
    ShipmentStatus,
)

# A notice may arrive after the goods (EDI 856s often do): it is kept, the status stays.
SHIPPABLE = RECEIVING_STATUSES | {PoStatus.RECEIVED}


class ShipmentError(ValueError):
    """A ship notice or carrier event that cannot be recorded."""


class DuplicateShipment(ShipmentError):
    """The supplier already sent another notice under this number."""


@dataclass(frozen=True)
class ShipNoticeLine:
    """Quantity of one order line (by line number) in the shipment."""

    line_no: int
    quantity: Decimal


@dataclass(frozen=True)
class ShipNotice:
    """A supplier's advance ship notice for one order."""

    shipment_number: str
    lines: Sequence[ShipNoticeLine]
    shipped_at: dt.datetime
    carrier_scac: str | None = None
    carrier_name: str | None = None
    tracking_number: str | None = None
    expected_delivery: dt.datetime | None = None
    source: DocumentSource = DocumentSource.MANUAL


@dataclass(frozen=True)
class ShipmentOutcome:
    """The shipment, and whether this call created it (False: the same notice again)."""

    shipment: Shipment
    created: bool


def _same_notice(shipment: Shipment, order: PurchaseOrder, notice: ShipNotice) -> bool:
    numbers = {line.id: line.line_no for line in order.lines}
    stored = sorted(
        (numbers.get(item.purchase_order_line_id, -1), item.quantity) for item in shipment.lines
    )
    sent = sorted((item.line_no, item.quantity) for item in notice.lines)
    return (
        shipment.purchase_order_id == order.id
        and stored == sent
        and shipment.carrier_scac == notice.carrier_scac
        and shipment.carrier_name == notice.carrier_name
        and shipment.tracking_number == notice.tracking_number
        and shipment.shipped_at == notice.shipped_at
        and shipment.expected_delivery == notice.expected_delivery
    )


def _check_notice(order: PurchaseOrder, notice: ShipNotice, tolerance_pct: Decimal) -> None:
    if order.status not in SHIPPABLE:
        raise PoTransitionError(f"{order.number} is {order.status}; it cannot take a ship notice")
    if not notice.shipment_number.strip():
        raise ShipmentError("a ship notice needs the supplier's shipment number")
    for when in (notice.shipped_at, notice.expected_delivery):
        if when is not None and when.tzinfo is None:
            raise ShipmentError("shipment times must be aware datetimes")
    if notice.expected_delivery is not None and notice.expected_delivery < notice.shipped_at:
        raise ShipmentError("the expected delivery is before the shipment date")
    if not notice.lines:
        raise ShipmentError("a ship notice needs at least one line")
    lines = {line.line_no: line for line in order.lines}
    problems: list[str] = []
    seen: set[int] = set()
    for item in notice.lines:
        n = item.line_no
        line = lines.get(n)
        if n in seen:
            problems.append(f"line {n} appears twice")
        elif line is None:
            problems.append(f"line {n} is not on {order.number}")
        elif not item.quantity.is_finite() or item.quantity <= 0:
            problems.append(f"line {n}: the quantity must be positive")
        elif line.quantity == 0:
            problems.append(f"line {n} is no longer on order")
        else:
            limit = over_receipt_limit(line.quantity, tolerance_pct)
            if line.shipped_quantity + item.quantity > limit:
                problems.append(
                    f"line {n}: {json_value(line.shipped_quantity)} of {json_value(line.quantity)} "
                    f"already shipped, {json_value(item.quantity)} more exceeds the limit of "
                    f"{json_value(limit)}"
                )
        seen.add(n)
    if problems:
        raise ShipmentError("; ".join(problems))


def record_shipment(
    session: Session,
    order: PurchaseOrder,
    notice: ShipNotice,
    *,
    tolerance_pct: Decimal = Decimal(0),
    actor_id: int | None = None,
    now: dt.datetime | None = None,
) -> ShipmentOutcome:
    """Record a ship notice: shipped quantities per line and the order's shipping status.

    The same notice posted again returns the stored shipment; another notice under a number the
    supplier already used is refused.
    """
    existing = session.scalar(
        select(Shipment).where(
            Shipment.supplier_id == order.supplier_id,
            Shipment.shipment_number == notice.shipment_number,
        )
    )
    if existing is not None:
        if _same_notice(existing, order, notice):
            return ShipmentOutcome(existing, created=False)
        raise DuplicateShipment(
            "the supplier already sent a different ship notice under this shipment number"
        )
    _check_notice(order, notice, tolerance_pct)
    lines = {line.line_no: line for line in order.lines}
    shipment = Shipment(
        purchase_order_id=order.id,
        supplier_id=order.supplier_id,
        shipment_number=notice.shipment_number,
        source=notice.source,
        carrier_scac=notice.carrier_scac,
        carrier_name=notice.carrier_name,
        tracking_number=notice.tracking_number,
        shipped_at=notice.shipped_at,
        expected_delivery=notice.expected_delivery,
        status=ShipmentStatus.INFO_RECEIVED,
    )
    for item in sorted(notice.lines, key=lambda i: i.line_no):
        line = lines[item.line_no]
        shipment.lines.append(ShipmentLine(purchase_order_line_id=line.id, quantity=item.quantity))
        line.shipped_quantity += item.quantity
    session.add(shipment)
    # An order whose goods already arrive keeps its receipt status; settle_progress only moves
    # orders that have received nothing yet.
    settle_progress(
        order,
        actor_id=actor_id,
        now=now or utcnow(),
        note=f"ship notice {notice.shipment_number}",
    )
    session.flush()
    return ShipmentOutcome(shipment, created=True)


def _latest(events: Sequence[ShipmentEvent]) -> ShipmentEvent:
    # Latest occurrence wins; of two at the same moment, the one recorded last.
    return max(events, key=lambda e: (e.occurred_at, e.id or 0, e.recorded_at))


def record_carrier_event(
    session: Session,
    shipment: Shipment,
    status: ShipmentStatus,
    occurred_at: dt.datetime,
    *,
    location: str | None = None,
    source: DocumentSource = DocumentSource.CARRIER,
    raw_code: str | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> ShipmentEvent:
    """Append a carrier status report; the shipment takes the status of the latest occurrence.

    Reports arrive out of order (a late scan after the delivery): an older one is kept in the
    history but does not move the shipment back. The same report sent twice is stored once.
    """
    if occurred_at.tzinfo is None:
        raise ShipmentError("occurred_at must be an aware datetime")
    for event in shipment.events:
        if (event.status, event.occurred_at, event.raw_code, event.location) == (
            status,
            occurred_at,
            raw_code,
            location,
        ):
            return event
    event = ShipmentEvent(
        status=status,
        occurred_at=occurred_at,
        location=location,
        source=source,
        raw_code=raw_code,
        note=note,
        recorded_at=now or utcnow(),
    )
    shipment.events.append(event)
    session.flush()
    shipment.status = _latest(shipment.events).status
    delivered = [e for e in shipment.events if e.status is ShipmentStatus.DELIVERED]
    shipment.delivered_at = _latest(delivered).occurred_at if delivered else None
    return event
