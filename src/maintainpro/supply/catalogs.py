"""Supplier catalogues: supplier part numbers mapped to our parts, with price breaks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import Date, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.columns import Timestamped
from maintainpro.core.db import Base, UTCDateTime, utcnow
from maintainpro.core.inventory import Part
from maintainpro.supply.suppliers import Supplier


class CatalogItem(Timestamped, Base):
    """One thing a supplier sells, under their part number, mapped to one of our parts."""

    __tablename__ = "catalog_items"
    __table_args__ = (UniqueConstraint("supplier_id", "supplier_part_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(
        ForeignKey("suppliers.id", ondelete="CASCADE"), index=True
    )
    supplier_part_number: Mapped[str] = mapped_column(String(64))
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    unit: Mapped[str] = mapped_column(String(16), default="EA")
    pack_size: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=Decimal(1))
    currency: Mapped[str] = mapped_column(String(3))
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    lead_time_days: Mapped[int] = mapped_column(Integer, default=0)
    # Freight, duty and handling as a percentage of the goods price, for landed-cost comparison.
    landed_cost_pct: Mapped[Decimal] = mapped_column(Numeric(7, 3), default=Decimal(0))

    supplier: Mapped[Supplier] = relationship()
    part: Mapped[Part] = relationship()
    price_breaks: Mapped[list[PriceBreak]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="PriceBreak.min_quantity"
    )

    def valid_on(self, day: dt.date) -> bool:
        """Whether the item may be ordered on this day."""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day <= self.valid_to


class PriceBreak(Base):
    """The unit price from a minimum quantity upwards."""

    __tablename__ = "price_breaks"
    __table_args__ = (UniqueConstraint("catalog_item_id", "min_quantity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    catalog_item_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_items.id", ondelete="CASCADE"), index=True
    )
    min_quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 6))

    item: Mapped[CatalogItem] = relationship(back_populates="price_breaks")


class PriceChange(Base):
    """A catalogue price that changed: who changed it, when, from what to what."""

    __tablename__ = "catalog_price_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    catalog_item_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_items.id", ondelete="CASCADE"), index=True
    )
    min_quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    currency: Mapped[str] = mapped_column(String(3))
    old_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    new_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NoPrice(LookupError):
    """A catalogue item without any price break."""


def break_for(
    breaks: Iterable[tuple[Decimal, Decimal]], quantity: Decimal
) -> tuple[Decimal, Decimal]:
    """The (min quantity, unit price) break that applies to a quantity.

    Below the smallest break the smallest one applies: callers raise the quantity to it first
    (it is the supplier's minimum order quantity).
    """
    ordered = sorted(breaks)
    if not ordered:
        raise NoPrice("the catalogue item has no price")
    chosen = ordered[0]
    for minimum, price in ordered:
        if minimum <= quantity:
            chosen = (minimum, price)
    return chosen


def round_to_packs(quantity: Decimal, pack_size: Decimal) -> Decimal:
    """The smallest whole number of packs holding at least the quantity, in units."""
    if pack_size <= 0:
        raise ValueError("a pack size must be positive")
    packs = (quantity / pack_size).to_integral_value(rounding=ROUND_CEILING)
    return packs * pack_size


def order_quantity(need: Decimal, item: CatalogItem) -> Decimal:
    """What to order from an item for a need: at least the minimum, in whole packs."""
    minimum = min((b.min_quantity for b in item.price_breaks), default=Decimal(0))
    return round_to_packs(max(need, minimum), item.pack_size)


def unit_price_for(item: CatalogItem, quantity: Decimal) -> Decimal:
    """The item's unit price at a quantity, from its price breaks."""
    return break_for(((b.min_quantity, b.unit_price) for b in item.price_breaks), quantity)[1]
