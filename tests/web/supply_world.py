"""Procurement data for the supply pages: suppliers (one with a hostile name), catalogue items
(one expired), a draft order, and a sent order received once late and once on time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from maintainpro.core.users import Role, User
from maintainpro.supply.catalogs import CatalogItem, PriceBreak
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    PoStatus,
    PurchaseOrder,
    add_line,
    approve_order,
    move_order,
    new_purchase_order,
)
from maintainpro.supply.rates import ExchangeRate, stored_converter
from maintainpro.supply.receiving import receive
from maintainpro.supply.suppliers import ConnectionType, Supplier, SupplierStatus

HOSTILE = '<script>alert("pwn")</script> & Co'
HOSTILE_EXPLANATION = "<img src=x onerror=alert(1)> cheapest"
EUR_USD = Decimal("1.0800")


def _supplier(
    session: Session, code: str, name: str, status: SupplierStatus, connection: ConnectionType
) -> Supplier:
    supplier = Supplier(
        code=code,
        legal_name=name,
        country="DE",
        currency="EUR",
        status=status,
        connection_type=connection,
    )
    session.add(supplier)
    session.flush()
    return supplier


def _item(
    session: Session, supplier: Supplier, part_id: int, valid_to: dt.date | None
) -> CatalogItem:
    item = CatalogItem(
        supplier_id=supplier.id,
        supplier_part_number=f"{supplier.code}-1",
        part_id=part_id,
        currency="EUR",
        lead_time_days=5,
        valid_to=valid_to,
    )
    item.price_breaks = [PriceBreak(min_quantity=Decimal(1), unit_price=Decimal("10.50"))]
    session.add(item)
    session.flush()
    return item


def _order(session: Session, supplier: Supplier, today: dt.date) -> PurchaseOrder:
    return new_purchase_order(
        session,
        supplier=supplier,
        currency="EUR",
        base_currency="USD",
        rate=stored_converter(session).rate("EUR", "USD", today),
        automatic=True,
    )


def seed_supply_shop(session: Session, ids: dict[str, int], now: dt.datetime) -> dict[str, int]:
    """Suppliers, catalogue and orders on top of support.plant's ids; returns the new ids."""
    today = now.date()
    session.add(ExchangeRate(day=today, currency="USD", per_eur=EUR_USD, source="ECB"))
    session.add(
        ExchangeRate(
            day=today - dt.timedelta(days=20), currency="USD", per_eur=EUR_USD, source="ECB"
        )
    )
    hostile = _supplier(session, "EVIL", HOSTILE, SupplierStatus.ACTIVE, ConnectionType.EDI)
    good = _supplier(
        session, "GOOD", "Good Parts GmbH", SupplierStatus.ACTIVE, ConnectionType.PORTAL
    )
    blocked = _supplier(
        session, "BLK", "Blocked Supplies Ltd", SupplierStatus.BLOCKED, ConnectionType.EMAIL
    )
    _item(session, hostile, ids["part"], None)
    _item(session, good, ids["part"], today - dt.timedelta(days=1))
    draft = _order(session, hostile, today)
    session.flush()
    add_line(
        draft,
        part_id=ids["part"],
        quantity=Decimal(4),
        unit_price=Decimal("10.50"),
        explanation=HOSTILE_EXPLANATION,
        stock_level_id=ids["stock"],
    )
    approver = User(username="seed-approver", role=Role.ADMIN, password_hash="x")
    session.add(approver)
    session.flush()
    sent_at = now - dt.timedelta(days=15)
    delivered = new_purchase_order(
        session,
        supplier=good,
        currency="EUR",
        base_currency="USD",
        rate=stored_converter(session).rate("EUR", "USD", sent_at.date()),
        automatic=True,
        now=sent_at,
    )
    session.flush()
    for promised_ago in (10, 2):
        line = add_line(
            delivered,
            part_id=ids["part"],
            quantity=Decimal(2),
            unit_price=Decimal("10.50"),
            explanation="preferred supplier",
            stock_level_id=ids["stock"],
        )
        line.promised_date = today - dt.timedelta(days=promised_ago)
    approve_order(
        session,
        delivered,
        approver_id=approver.id,
        role=Role.ADMIN,
        policy=ApprovalPolicy(),
        now=sent_at,
    )
    move_order(delivered, PoStatus.SENT, now=sent_at)
    delivered.sent_at = sent_at
    session.flush()
    # The first line arrives 2 days after its promised date, the second a day early.
    for line, arrived_ago in zip(delivered.lines, (8, 3), strict=True):
        receive(
            session,
            line,
            quantity=line.quantity,
            received_at=now - dt.timedelta(days=arrived_ago),
        )
    session.flush()
    return {
        "hostile": hostile.id,
        "good": good.id,
        "blocked": blocked.id,
        "draft": draft.id,
        "delivered": delivered.id,
    }
