"""Supplier catalogues: supplier part numbers mapped to our parts, with price breaks."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_CEILING, Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

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


# --- maintenance of an item's prices and terms ------------------------------------------------

MAX_PRICE_BREAKS = 50
# What a PATCH may change: the supplier, the part mapping and the currency stay, because prices
# and orders already refer to them.
EDITABLE_ITEM_FIELDS = frozenset(
    {"description", "unit", "pack_size", "lead_time_days", "valid_from", "valid_to"}
    | {"landed_cost_pct"}
)


class CatalogError(ValueError):
    """A catalogue change that breaks the catalogue's rules; the message says which."""


def check_price_breaks(breaks: Sequence[tuple[Decimal, Decimal]], *, pack_size: Decimal) -> None:
    """Raise CatalogError unless the (min quantity, unit price) breaks are a valid set.

    Valid: one to MAX_PRICE_BREAKS breaks, the first at exactly one pack, minimum quantities
    strictly ascending (so none repeats), every unit price positive.
    """
    if not breaks:
        raise CatalogError("an item needs at least one price break")
    if len(breaks) > MAX_PRICE_BREAKS:
        raise CatalogError(f"at most {MAX_PRICE_BREAKS} price breaks")
    first = breaks[0][0]
    if first != pack_size:
        raise CatalogError(
            f"the first price break must start at one pack ({_qty(pack_size)}), "
            f"not at {_qty(first)}"
        )
    for (lower, _), (higher, _) in itertools.pairwise(breaks):
        if higher <= lower:
            raise CatalogError(
                "minimum quantities must ascend without repeats: "
                f"{_qty(higher)} follows {_qty(lower)}"
            )
    for minimum, price in breaks:
        if not price.is_finite() or price <= 0:
            raise CatalogError(f"the price break at {_qty(minimum)} needs a positive unit price")


def _qty(quantity: Decimal) -> str:
    return f"{quantity.normalize():f}"


def price_differences(
    old: Mapping[Decimal, Decimal], new: Mapping[Decimal, Decimal]
) -> list[tuple[Decimal, Decimal | None, Decimal | None]]:
    """(min quantity, old price, new price) of each break added, removed or repriced."""
    changed = []
    for minimum in sorted(set(old) | set(new)):
        before, after = old.get(minimum), new.get(minimum)
        if before != after:
            changed.append((minimum, before, after))
    return changed


def _lock(session: Session, item: CatalogItem) -> None:
    # The row lock (PostgreSQL) serialises two editors, so the old price a history row records
    # is the one the change really replaced.
    session.refresh(item, with_for_update=True)
    session.refresh(item, ["price_breaks"])


def _set_breaks(
    session: Session,
    item: CatalogItem,
    breaks: Sequence[tuple[Decimal, Decimal]],
    changed_by_id: int | None,
    when: dt.datetime,
) -> list[PriceChange]:
    old = {b.min_quantity: b.unit_price for b in item.price_breaks}
    differences = price_differences(old, dict(breaks))
    if not differences:
        return []
    item.price_breaks.clear()
    session.flush()  # replaced breaks must be gone before their (item, quantity) reappears
    for minimum, price in breaks:
        item.price_breaks.append(PriceBreak(min_quantity=minimum, unit_price=price))
    history = [
        PriceChange(
            catalog_item_id=item.id,
            min_quantity=minimum,
            currency=item.currency,
            old_price=before,
            new_price=after,
            changed_by_id=changed_by_id,
            changed_at=when,
        )
        for minimum, before, after in differences
    ]
    session.add_all(history)
    session.flush()
    return history


def _check_currency(item: CatalogItem, currency: str) -> None:
    if currency != item.currency:
        raise CatalogError(
            f"prices of this item are in {item.currency}; a price list in another currency "
            "needs its own catalogue item"
        )


def replace_price_breaks(
    session: Session,
    item: CatalogItem,
    breaks: Sequence[tuple[Decimal, Decimal]],
    *,
    currency: str,
    changed_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> list[PriceChange]:
    """Replace an item's price breaks, recording each changed price; the caller commits.

    Validated first (currency, then check_price_breaks), so a refused set changes nothing.
    Returns the price history rows written (none when the prices are the same).
    """
    _lock(session, item)
    _check_currency(item, currency)
    check_price_breaks(breaks, pack_size=item.pack_size)
    return _set_breaks(session, item, breaks, changed_by_id, now or utcnow())


def update_catalog_item(
    session: Session,
    item: CatalogItem,
    changes: Mapping[str, Any],
    *,
    breaks: Sequence[tuple[Decimal, Decimal]] | None = None,
    currency: str | None = None,
    changed_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> list[PriceChange]:
    """Change an item's terms (and, with a new pack size, its breaks) all at once or not at all.

    A new pack size must be where the lowest break starts, so it comes with new breaks unless
    the existing ones already start there. Returns the price history rows written.
    """
    unknown = sorted(set(changes) - EDITABLE_ITEM_FIELDS)
    if unknown:
        raise CatalogError(f"these fields cannot be changed: {', '.join(unknown)}")
    _lock(session, item)
    if breaks is not None:
        _check_currency(item, currency or "")
    valid_from = changes.get("valid_from", item.valid_from)
    valid_to = changes.get("valid_to", item.valid_to)
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        raise CatalogError("valid_to is before valid_from")
    pack_size = changes.get("pack_size", item.pack_size)
    if pack_size is None or pack_size <= 0:
        raise CatalogError("the pack size must be positive")
    if breaks is not None:
        check_price_breaks(breaks, pack_size=pack_size)
    elif pack_size != item.pack_size:
        current = [(b.min_quantity, b.unit_price) for b in item.price_breaks]
        try:
            check_price_breaks(current, pack_size=pack_size)
        except CatalogError as exc:
            raise CatalogError(f"{exc}; send the new price breaks with the pack size") from None
    for key, value in changes.items():
        setattr(item, key, value)
    if breaks is None:
        session.flush()
        return []
    return _set_breaks(session, item, breaks, changed_by_id, now or utcnow())
