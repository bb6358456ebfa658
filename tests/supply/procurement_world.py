"""Procurement test data builders: suppliers in EUR and USD, catalogue items, contracts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from maintainpro.core.inventory import Part, StockLevel
from maintainpro.core.users import Role, User
from maintainpro.supply.catalogs import CatalogItem, PriceBreak
from maintainpro.supply.contracts import Contract, ContractKind, ContractPrice
from maintainpro.supply.fx import FxConverter
from maintainpro.supply.purchasing import PurchaseOrder
from maintainpro.supply.rates import stored_converter
from maintainpro.supply.sourcing import generate_purchase_orders
from maintainpro.supply.suppliers import Supplier, SupplierStatus

TODAY = dt.date(2026, 11, 27)
EUR_USD = Decimal("1.0800")  # USD per 1 EUR, stored like an ECB reference rate


@dataclass
class World:
    """Ids and helpers of the procurement test data."""

    db: Session
    ids: dict[str, int]

    def supplier(self, code: str, currency: str, *, preferred: bool = False) -> Supplier:
        """An active supplier."""
        supplier = Supplier(
            code=code,
            legal_name=f"{code} Ltd",
            country="DE" if currency == "EUR" else "US",
            currency=currency,
            status=SupplierStatus.ACTIVE,
            preferred=preferred,
        )
        self.db.add(supplier)
        self.db.flush()
        return supplier

    def item(
        self,
        supplier: Supplier,
        breaks: list[tuple[str, str]],
        *,
        part_id: int | None = None,
        pack: str = "1",
        lead: int = 5,
        landed_pct: str = "0",
    ) -> CatalogItem:
        """A catalogue item for the bearing (or another part) with (min qty, price) breaks."""
        item = CatalogItem(
            supplier_id=supplier.id,
            supplier_part_number=f"{supplier.code}-{part_id or self.ids['part']}",
            part_id=part_id or self.ids["part"],
            currency=supplier.currency,
            pack_size=Decimal(pack),
            lead_time_days=lead,
            landed_cost_pct=Decimal(landed_pct),
        )
        item.price_breaks = [
            PriceBreak(min_quantity=Decimal(q), unit_price=Decimal(p)) for q, p in breaks
        ]
        self.db.add(item)
        self.db.flush()
        return item

    def contract(
        self, supplier: Supplier, price: str, *, cap: str | None = None, part_id: int | None = None
    ) -> Contract:
        """A valid blanket contract with one price."""
        contract = Contract(
            number=f"C-{supplier.code}",
            supplier_id=supplier.id,
            kind=ContractKind.BLANKET,
            currency=supplier.currency,
            valid_from=TODAY - dt.timedelta(days=30),
            valid_to=TODAY + dt.timedelta(days=300),
            spend_cap=Decimal(cap) if cap else None,
        )
        contract.prices = [
            ContractPrice(part_id=part_id or self.ids["part"], unit_price=Decimal(price))
        ]
        self.db.add(contract)
        self.db.flush()
        return contract

    def part(self, number: str) -> int:
        """Another part kept at the storeroom (nothing on hand)."""
        part = Part(number=number, name=number)
        self.db.add(part)
        self.db.flush()
        self.db.add(StockLevel(part_id=part.id, location_id=self.ids["store"]))
        self.db.flush()
        return part.id

    def user(self, role: Role = Role.ADMIN) -> int:
        """A user who can approve and receive; returns its id."""
        user = User(
            username=f"{role.value}-{self.db.query(User).count() + 1}", role=role, password_hash="x"
        )
        self.db.add(user)
        self.db.flush()
        return user.id

    def auto(self) -> list[PurchaseOrder]:
        """Run automatic ordering for a USD company today; returns the drafted orders."""
        return generate_purchase_orders(
            self.db, base_currency="USD", fx=self.fx(), today=TODAY
        ).orders

    def fx(self) -> FxConverter:
        """A converter over the stored rates."""
        return stored_converter(self.db)
