"""Spare parts, stock per location with reorder points, and reservations for work orders."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, Text, UniqueConstraint, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from maintainpro.core.assets import Location
from maintainpro.core.audit import record_change
from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow

ZERO = Decimal(0)


class Part(Timestamped, Base):
    """A spare part in the catalogue."""

    __tablename__ = "parts"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(64), default="general")
    unit: Mapped[str] = mapped_column(String(16), default="EA")
    manufacturer: Mapped[str | None] = mapped_column(String(200))
    manufacturer_part_number: Mapped[str | None] = mapped_column(String(100))
    unit_cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    currency: Mapped[str] = mapped_column(String(3), default="USD")


class StockLevel(Timestamped, Base):
    """How many of a part lie in one storeroom, and when to reorder."""

    __tablename__ = "stock_levels"
    __table_args__ = (UniqueConstraint("part_id", "location_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="CASCADE"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    on_hand: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=ZERO)
    reserved: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=ZERO)
    reorder_point: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=ZERO)
    max_level: Mapped[Decimal | None] = mapped_column(Numeric(14, 3))
    bin: Mapped[str | None] = mapped_column(String(32))

    part: Mapped[Part] = relationship()
    location: Mapped[Location] = relationship()

    @property
    def available(self) -> Decimal:
        """On hand and not promised to a work order."""
        return self.on_hand - self.reserved

    @property
    def below_reorder_point(self) -> bool:
        """Whether available stock has fallen to or below the reorder point."""
        return self.available <= self.reorder_point


class ReservationStatus(enum.StrEnum):
    """Life of a reservation."""

    ACTIVE = "active"
    RELEASED = "released"
    CONSUMED = "consumed"


class Reservation(Base):
    """Stock held for a work order so nobody else takes it."""

    __tablename__ = "reservations"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"), index=True
    )
    stock_level_id: Mapped[int] = mapped_column(ForeignKey("stock_levels.id", ondelete="RESTRICT"))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    status: Mapped[ReservationStatus] = mapped_column(
        text_enum(ReservationStatus), default=ReservationStatus.ACTIVE
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    stock_level: Mapped[StockLevel] = relationship()


class StockError(ValueError):
    """A stock movement that cannot be made."""


def _move(
    session: Session,
    stock_level_id: int,
    *,
    on_hand: Decimal = ZERO,
    reserved: Decimal = ZERO,
    refusal: str,
) -> StockLevel:
    """Apply a stock movement atomically, or raise StockError with the refusal text.

    The guard sits in the UPDATE itself, so two concurrent movements cannot both pass a check
    made on a stale read (a lost update), on SQLite and PostgreSQL alike.
    """
    new_on_hand = StockLevel.on_hand + on_hand
    new_reserved = StockLevel.reserved + reserved
    result = session.execute(
        update(StockLevel)
        .where(
            StockLevel.id == stock_level_id,
            new_reserved >= 0,
            new_on_hand >= new_reserved,
        )
        .values(on_hand=new_on_hand, reserved=new_reserved, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    stock = session.get(StockLevel, stock_level_id)
    if stock is None:
        raise StockError(f"stock level {stock_level_id} does not exist")
    session.refresh(stock)
    if getattr(result, "rowcount", 0) != 1:
        raise StockError(
            refusal.format(
                available=stock.available,
                on_hand=stock.on_hand,
                reserved=stock.reserved,
                part=stock.part_id,
            )
        )
    record_change(
        session,
        "update",
        stock,
        before={
            "on_hand": str(stock.on_hand - on_hand),
            "reserved": str(stock.reserved - reserved),
        },
        after={"on_hand": str(stock.on_hand), "reserved": str(stock.reserved)},
    )
    return stock


def reserve(
    session: Session, *, work_order_id: int, stock_level_id: int, quantity: Decimal
) -> Reservation:
    """Hold available stock for a work order, refusing to promise more than is available."""
    if quantity <= 0:
        raise StockError("a reservation needs a positive quantity")
    stock = _move(
        session,
        stock_level_id,
        reserved=quantity,
        refusal=f"only {{available}} of part {{part}} available at this location, {quantity} asked",
    )
    reservation = Reservation(
        work_order_id=work_order_id, stock_level_id=stock.id, quantity=quantity
    )
    session.add(reservation)
    session.flush()
    return reservation


def close_reservation(
    session: Session, reservation: Reservation, *, consume: bool, now: dt.datetime | None = None
) -> None:
    """Release a reservation back to stock, or consume it (the parts were used)."""
    if reservation.status is not ReservationStatus.ACTIVE:
        raise StockError(f"reservation {reservation.id} is already {reservation.status.value}")
    _move(
        session,
        reservation.stock_level_id,
        reserved=-reservation.quantity,
        on_hand=-reservation.quantity if consume else ZERO,
        refusal="stock level changed under the reservation: {on_hand} on hand, {reserved} reserved",
    )
    reservation.status = ReservationStatus.CONSUMED if consume else ReservationStatus.RELEASED
    reservation.closed_at = now or utcnow()


def adjust_stock(session: Session, stock_level_id: int, delta: Decimal) -> StockLevel:
    """Receive (positive) or issue (negative) stock, never below what is reserved."""
    return _move(
        session,
        stock_level_id,
        on_hand=delta,
        refusal=f"cannot take {-delta}: {{on_hand}} on hand, {{reserved}} reserved",
    )
