"""Requisitions: what needs buying, raised by work-order shortages, reorder points or people."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Date, ForeignKey, Numeric, String, UniqueConstraint, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, sessionmaker

from maintainpro.core.columns import text_enum
from maintainpro.core.db import Base, UTCDateTime, hold_exclusive, utcnow
from maintainpro.core.inventory import Part, StockLevel
from maintainpro.core.work_orders import WorkOrder
from maintainpro.supply.purchasing import OPEN_PO_STATUSES, PurchaseOrder, PurchaseOrderLine

# The advisory lock (PostgreSQL) that keeps reorder-point checks of several processes apart.
REORDER_LOCK: Final = "maintainpro.supply.reorder_points"


class RequisitionSource(enum.StrEnum):
    """Why something needs buying."""

    WORK_ORDER = "work_order"
    REORDER_POINT = "reorder_point"
    MANUAL = "manual"


class RequisitionLineStatus(enum.StrEnum):
    """Where a requisition line stands."""

    OPEN = "open"
    ORDERED = "ordered"
    CANCELLED = "cancelled"


class Requisition(Base):
    """A request to buy, with one or more lines."""

    __tablename__ = "requisitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[RequisitionSource] = mapped_column(text_enum(RequisitionSource))
    work_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL"), index=True
    )
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    lines: Mapped[list[RequisitionLine]] = relationship(
        back_populates="requisition", cascade="all, delete-orphan", order_by="RequisitionLine.id"
    )


class RequisitionLine(Base):
    """One part and quantity to buy, by when, and for which storeroom."""

    __tablename__ = "requisition_lines"
    # One line per work order and part makes the part.demand handler idempotent even when two
    # deliveries of the same event race (several NULL work orders are allowed on both backends).
    __table_args__ = (UniqueConstraint("work_order_id", "part_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    requisition_id: Mapped[int] = mapped_column(
        ForeignKey("requisitions.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[RequisitionSource] = mapped_column(text_enum(RequisitionSource))
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"), index=True)
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    need_by: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[RequisitionLineStatus] = mapped_column(
        text_enum(RequisitionLineStatus), default=RequisitionLineStatus.OPEN, index=True
    )
    work_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL")
    )
    stock_level_id: Mapped[int | None] = mapped_column(
        ForeignKey("stock_levels.id", ondelete="SET NULL")
    )
    # Why automatic sourcing left the line for a buyer, when it did.
    sourcing_note: Mapped[str | None] = mapped_column(String(500))

    requisition: Mapped[Requisition] = relationship(back_populates="lines")
    part: Mapped[Part] = relationship()


class RequisitionError(ValueError):
    """A requisition that cannot be raised."""


def lock_if_open(session: Session, line: RequisitionLine) -> bool:
    """Hold an open requisition line for this transaction; False if it is no longer open.

    Automatic ordering runs from the reorder job and from ``POST /purchase-orders/auto``, and
    both may read the same open line at the same moment. A conditional UPDATE (a no-op that
    matches only while the line is open) is the claim because it works the same on both
    backends: PostgreSQL row-locks the line until commit, and a second transaction blocked on
    that lock re-checks ``status = 'open'`` against the committed row and matches nothing once
    the first one ordered it; SQLite lets one writer at a time through, which reads the current
    row. A SELECT ... FOR UPDATE SKIP LOCKED would do nothing on SQLite. No intermediate
    "ordering" status is needed: the claim, the order line and the status change commit
    together, so a crashed run leaves the line open rather than stuck.
    """
    # Run on the session's connection, past the ORM: the caller then changes the line through
    # the ORM (its loaded state still says "open"), so the audit trail keeps the change.
    claimed = session.connection().execute(
        update(RequisitionLine)
        .where(
            RequisitionLine.id == line.id,
            RequisitionLine.status == RequisitionLineStatus.OPEN,
        )
        .values(status=RequisitionLineStatus.OPEN)
    )
    if claimed.rowcount == 1:
        return True
    session.expire(line)  # what we read is stale: another transaction ordered or cancelled it
    return False


def _default_stock_level(session: Session, part_id: int) -> int | None:
    # The storeroom that already keeps the part receives it; the oldest one when there are several.
    return session.scalar(
        select(StockLevel.id).where(StockLevel.part_id == part_id).order_by(StockLevel.id).limit(1)
    )


def requisition_from_part_demand(
    session: Session, payload: Mapping[str, Any]
) -> RequisitionLine | None:
    """Outbox handler body for ``part.demand``: one requisition line per work order and part.

    Seeing the same event again returns the existing line (delivery is at-least-once).
    """
    try:
        work_order_id = int(payload["work_order_id"])
        part_id = int(payload["part_id"])
        quantity = Decimal(str(payload["quantity"]))
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise RequisitionError(f"malformed part.demand payload: {exc}") from None
    if not quantity.is_finite() or quantity <= 0:
        raise RequisitionError("part.demand needs a positive quantity")
    existing = session.scalar(
        select(RequisitionLine).where(
            RequisitionLine.work_order_id == work_order_id, RequisitionLine.part_id == part_id
        )
    )
    if existing is not None:
        return existing
    if session.get(WorkOrder, work_order_id) is None or session.get(Part, part_id) is None:
        return None  # deleted since the event was written: nothing left to buy for
    need_by_text = payload.get("need_by")
    need_by = dt.datetime.fromisoformat(need_by_text).date() if need_by_text else None
    requisition = Requisition(source=RequisitionSource.WORK_ORDER, work_order_id=work_order_id)
    line = RequisitionLine(
        source=RequisitionSource.WORK_ORDER,
        part_id=part_id,
        quantity=quantity,
        need_by=need_by,
        work_order_id=work_order_id,
        stock_level_id=_default_stock_level(session, part_id),
    )
    requisition.lines.append(line)
    session.add(requisition)
    session.flush()
    return line


def part_demand_handler(
    factory: sessionmaker[Session],
) -> Callable[[str, Mapping[str, Any]], None]:
    """An outbox handler (topic, payload) that raises requisitions in its own transaction."""

    def handle(_topic: str, payload: Mapping[str, Any]) -> None:
        with factory() as session, session.begin():
            requisition_from_part_demand(session, payload)

    return handle


def manual_requisition(
    session: Session,
    *,
    part_id: int,
    quantity: Decimal,
    need_by: dt.date | None = None,
    stock_level_id: int | None = None,
    requested_by_id: int | None = None,
    note: str = "",
) -> RequisitionLine:
    """A requisition someone raised by hand."""
    if quantity <= 0:
        raise RequisitionError("a requisition needs a positive quantity")
    if session.get(Part, part_id) is None:
        raise RequisitionError(f"part {part_id} does not exist")
    if stock_level_id is not None:
        level = session.get(StockLevel, stock_level_id)
        if level is None or level.part_id != part_id:
            raise RequisitionError(f"stock level {stock_level_id} does not keep part {part_id}")
    requisition = Requisition(
        source=RequisitionSource.MANUAL, requested_by_id=requested_by_id, note=note
    )
    line = RequisitionLine(
        source=RequisitionSource.MANUAL,
        part_id=part_id,
        quantity=quantity,
        need_by=need_by,
        stock_level_id=stock_level_id or _default_stock_level(session, part_id),
    )
    requisition.lines.append(line)
    session.add(requisition)
    session.flush()
    return line


def reorder_quantity(
    *, available: Decimal, on_order: Decimal, reorder_point: Decimal, max_level: Decimal | None
) -> Decimal:
    """How much to requisition for a stock level: up to the maximum once at/below the point.

    Quantities already on order count as stock, so running this twice orders nothing twice.
    Without a maximum the target is the reorder point itself plus one. Pack rounding happens
    when a supplier (and so a pack size) is chosen.
    """
    position = available + on_order
    if position > reorder_point:
        return Decimal(0)
    target = max_level if max_level is not None else reorder_point + 1
    return max(target - position, Decimal(0))


def on_order_for(session: Session, stock_level_id: int) -> Decimal:
    """Quantity already requisitioned or ordered and not yet received for a stock level."""
    requisitioned = session.scalar(
        select(func.coalesce(func.sum(RequisitionLine.quantity), 0)).where(
            RequisitionLine.stock_level_id == stock_level_id,
            RequisitionLine.status == RequisitionLineStatus.OPEN,
        )
    )
    ordered = session.scalar(
        select(
            func.coalesce(
                func.sum(PurchaseOrderLine.quantity - PurchaseOrderLine.received_quantity), 0
            )
        )
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(
            PurchaseOrderLine.stock_level_id == stock_level_id,
            PurchaseOrder.status.in_(OPEN_PO_STATUSES),
        )
    )
    return Decimal(requisitioned or 0) + Decimal(ordered or 0)


def requisitions_from_reorder_points(session: Session) -> list[RequisitionLine]:
    """Requisition every stock level at or below its reorder point, up to its maximum.

    The lines carry no need-by date: the reorder point is what covers the lead time. One check
    at a time (the job of each hub process, ``POST /requisitions/reorder-points``): two at once
    would each read "nothing on order" before the other commits and requisition it twice.
    """
    hold_exclusive(session, REORDER_LOCK)
    levels = session.scalars(
        select(StockLevel)
        .where(StockLevel.on_hand - StockLevel.reserved <= StockLevel.reorder_point)
        .order_by(StockLevel.id)
    ).all()
    lines: list[RequisitionLine] = []
    for level in levels:
        quantity = reorder_quantity(
            available=level.available,
            on_order=on_order_for(session, level.id),
            reorder_point=level.reorder_point,
            max_level=level.max_level,
        )
        if quantity <= 0:
            continue
        requisition = Requisition(source=RequisitionSource.REORDER_POINT)
        line = RequisitionLine(
            source=RequisitionSource.REORDER_POINT,
            part_id=level.part_id,
            quantity=quantity,
            stock_level_id=level.id,
        )
        requisition.lines.append(line)
        session.add(requisition)
        lines.append(line)
    session.flush()
    return lines
