"""Goods receipts: what arrived on an order line, into stock, and which work orders it frees."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from maintainpro.core.db import Base, UTCDateTime, claim_writer, utcnow
from maintainpro.core.inventory import (
    Part,
    Reservation,
    ReservationStatus,
    StockLevel,
    adjust_stock,
    reserve,
)
from maintainpro.core.work_orders import WorkOrder, WorkOrderNote
from maintainpro.supply.purchasing import (
    RECEIVING_STATUSES,
    PoStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    move_order,
)
from maintainpro.supply.requisitions import RequisitionLine
from maintainpro.supply.sourcing import qty_text

DEFAULT_TOLERANCE_PCT = Decimal(0)


class ReceiptError(ValueError):
    """A receipt that cannot be booked."""


class GoodsReceipt(Base):
    """One delivery against one order line: accepted and rejected quantities."""

    __tablename__ = "goods_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_line_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_order_lines.id", ondelete="CASCADE"), index=True
    )
    stock_level_id: Mapped[int] = mapped_column(ForeignKey("stock_levels.id", ondelete="RESTRICT"))
    quantity_received: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    quantity_rejected: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=Decimal(0))
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    line: Mapped[PurchaseOrderLine] = relationship()


@dataclass(frozen=True)
class ReceiptOutcome:
    """The receipt and the work orders told that their parts arrived."""

    receipt: GoodsReceipt
    notified_work_orders: list[int]


def over_receipt_limit(ordered: Decimal, tolerance_pct: Decimal) -> Decimal:
    """The most that may be received on a line of this quantity."""
    return ordered + ordered * tolerance_pct / Decimal(100)


def receive(
    session: Session,
    line: PurchaseOrderLine,
    *,
    quantity: Decimal,
    rejected: Decimal = Decimal(0),
    rejection_reason: str | None = None,
    stock_level_id: int | None = None,
    received_at: dt.datetime | None = None,
    received_by_id: int | None = None,
    tolerance_pct: Decimal = DEFAULT_TOLERANCE_PCT,
) -> ReceiptOutcome:
    """Book a delivery: accepted goods into stock, the order's status, and waiting work orders."""
    order = _lock_order(session, line)
    when = received_at or utcnow()
    if when.tzinfo is None:
        raise ReceiptError("received_at must be an aware datetime")
    if order.status not in RECEIVING_STATUSES:
        raise ReceiptError(
            f"{order.number} is {order.status}; goods can only arrive once it is sent"
        )
    if quantity < 0 or rejected < 0 or quantity + rejected <= 0:
        raise ReceiptError("a receipt needs a positive received or rejected quantity")
    if rejected > 0 and not (rejection_reason and rejection_reason.strip()):
        raise ReceiptError("rejected goods need a reason")
    limit = over_receipt_limit(line.quantity, tolerance_pct)
    if line.received_quantity + quantity > limit:
        raise ReceiptError(
            f"line {line.line_no} of {order.number}: {line.received_quantity} of {line.quantity} "
            f"already received, {quantity} more exceeds the limit of {limit}"
        )
    target = stock_level_id or line.stock_level_id
    level = session.get(StockLevel, target) if target is not None else None
    if level is None or level.part_id != line.part_id:
        raise ReceiptError("name a storeroom stock level that keeps this part")
    receipt = GoodsReceipt(
        purchase_order_line_id=line.id,
        stock_level_id=level.id,
        quantity_received=quantity,
        quantity_rejected=rejected,
        rejection_reason=rejection_reason if rejected > 0 else None,
        received_at=when,
        received_by_id=received_by_id,
    )
    session.add(receipt)
    if quantity > 0:
        adjust_stock(session, level.id, quantity)
    line.received_quantity += quantity
    line.rejected_quantity += rejected
    done = all(item.received_quantity >= item.quantity for item in order.lines)
    status = PoStatus.RECEIVED if done else PoStatus.PARTIALLY_RECEIVED
    if status is not order.status:
        move_order(
            order, status, actor_id=received_by_id, now=when, note=f"receipt on line {line.line_no}"
        )
    session.flush()
    notified = (
        _release_work_orders(session, line, level, quantity, received_by_id, when)
        if quantity > 0
        else []
    )
    return ReceiptOutcome(receipt, notified)


def _lock_order(session: Session, line: PurchaseOrderLine) -> PurchaseOrder:
    """The line's order, locked, with its status and every line re-read under the lock.

    The caller's copies may be stale: another receipt may have committed since they were read.
    Locking the order row (PostgreSQL) or becoming SQLite's one writer before re-reading makes
    receipts on the same order take turns, so the over-receipt check, the received quantity and
    the order status are always computed from what the previous receipt committed.
    """
    claim_writer(session)
    order = session.get(
        PurchaseOrder, line.purchase_order_id, with_for_update=True, populate_existing=True
    )
    if order is None:
        raise ReceiptError(f"the order of line {line.line_no} no longer exists")
    session.scalars(
        select(PurchaseOrderLine)
        .where(PurchaseOrderLine.purchase_order_id == order.id)
        .execution_options(populate_existing=True)
    ).all()
    return order


def _release_work_orders(
    session: Session,
    line: PurchaseOrderLine,
    level: StockLevel,
    quantity: Decimal,
    author_id: int | None,
    when: dt.datetime,
) -> list[int]:
    """Reserve arrived parts for the work order waiting on them and leave it a labour note."""
    if line.requisition_line_id is None:
        return []
    req = session.get(RequisitionLine, line.requisition_line_id)
    if req is None or req.work_order_id is None:
        return []
    order = session.get(WorkOrder, req.work_order_id)
    if order is None or not order.is_open:
        return []
    part = session.get(Part, line.part_id)
    label = part.number if part is not None else str(line.part_id)
    still_short = _missing_for(session, order, line.part_id)
    take = min(quantity, still_short, level.available)
    if take > 0:
        reserve(session, work_order_id=order.id, stock_level_id=level.id, quantity=take)
    body = (
        f"Parts arrived: {qty_text(quantity)} x {label} on {line.order.number} line {line.line_no} "
        f"({qty_text(line.received_quantity)} of {qty_text(line.quantity)} received); "
        f"{qty_text(take)} reserved for this work order"
        + (
            f", {qty_text(still_short - take)} still missing."
            if still_short - take > 0
            else ", nothing missing."
        )
    )
    session.add(
        WorkOrderNote(work_order_id=order.id, author_id=author_id, body=body, created_at=when)
    )
    session.flush()
    return [order.id]


def _missing_for(session: Session, order: WorkOrder, part_id: int) -> Decimal:
    """What the work order needs of a part beyond what it already holds reserved."""
    needed = sum((p.quantity for p in order.parts if p.part_id == part_id), Decimal(0))
    held = sum(
        (
            r.quantity
            for r in session.scalars(
                select(Reservation)
                .join(StockLevel, StockLevel.id == Reservation.stock_level_id)
                .where(
                    Reservation.work_order_id == order.id,
                    Reservation.status == ReservationStatus.ACTIVE,
                    StockLevel.part_id == part_id,
                )
            )
        ),
        Decimal(0),
    )
    return max(needed - held, Decimal(0))
