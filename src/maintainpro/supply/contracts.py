"""Contracts: blanket orders and price agreements with a spend cap drawn down by orders."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base
from maintainpro.supply.suppliers import Supplier


class ContractKind(enum.StrEnum):
    """What the contract commits to."""

    BLANKET = "blanket"
    PRICE_AGREEMENT = "price_agreement"


class ContractStatus(enum.StrEnum):
    """Whether the contract may be used for new orders."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class ContractError(ValueError):
    """A contract that cannot take an order."""


class Contract(Timestamped, Base):
    """An agreement with a supplier: prices per part, validity, and an optional spend cap."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    supplier_id: Mapped[int] = mapped_column(
        ForeignKey("suppliers.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[ContractKind] = mapped_column(text_enum(ContractKind))
    status: Mapped[ContractStatus] = mapped_column(
        text_enum(ContractStatus), default=ContractStatus.ACTIVE
    )
    currency: Mapped[str] = mapped_column(String(3))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    spend_cap: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    drawn: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    terms: Mapped[str] = mapped_column(Text, default="")

    supplier: Mapped[Supplier] = relationship()
    prices: Mapped[list[ContractPrice]] = relationship(
        back_populates="contract", cascade="all, delete-orphan", order_by="ContractPrice.id"
    )

    def usable_on(self, day: dt.date) -> bool:
        """Active and within its validity on this day."""
        if self.status is not ContractStatus.ACTIVE or day < self.valid_from:
            return False
        return self.valid_to is None or day <= self.valid_to

    @property
    def remaining(self) -> Decimal | None:
        """Spend still available under the cap; None for an uncapped contract."""
        return None if self.spend_cap is None else self.spend_cap - self.drawn

    def covers(self, amount: Decimal) -> bool:
        """Whether the cap leaves room for this amount."""
        remaining = self.remaining
        return remaining is None or amount <= remaining

    def draw(self, amount: Decimal) -> None:
        """Commit spend against the cap (negative to give it back), refusing to exceed it."""
        if amount > 0 and not self.covers(amount):
            raise ContractError(
                f"contract {self.number} has {self.remaining} {self.currency} left, "
                f"{amount} {self.currency} asked"
            )
        self.drawn = max(self.drawn + amount, Decimal(0))


class ContractPrice(Base):
    """The agreed unit price of one part under a contract."""

    __tablename__ = "contract_prices"
    __table_args__ = (UniqueConstraint("contract_id", "part_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 6))

    contract: Mapped[Contract] = relationship(back_populates="prices")
