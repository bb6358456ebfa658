"""Orders for the lifecycle tests: approved or sent, with requisitions and an optional contract."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from maintainpro.core.inventory import StockLevel
from maintainpro.core.users import Role
from maintainpro.supply.contracts import Contract
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    PurchaseOrder,
    add_line,
    approve_order,
    new_purchase_order,
    send_order,
)
from maintainpro.supply.requisitions import RequisitionLineStatus, manual_requisition
from maintainpro.supply.suppliers import ConnectionType
from supply.procurement_world import TODAY, World

SENT_AT = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def build_order(
    world: World,
    lines: Sequence[tuple[str, str]] = (("10", "9.00"),),
    *,
    currency: str = "USD",
    code: str = "ACME",
    contract_cap: str | None = None,
    send: bool = True,
    connection: ConnectionType = ConnectionType.EMAIL,
    contacts: list[dict[str, Any]] | None = None,
) -> PurchaseOrder:
    """An approved (and by default sent) order with one line per (quantity, unit price).

    Line 1 is the plant's bearing; with contract_cap it is bought under a contract at its price.
    Every line comes from a manual requisition, now ordered.
    """
    supplier = world.supplier(code, currency)
    supplier.connection_type = connection
    supplier.incoterms = "DAP"
    supplier.contacts = contacts if contacts is not None else []
    contract: Contract | None = None
    if contract_cap is not None:
        contract = world.contract(supplier, lines[0][1], cap=contract_cap)
    order = new_purchase_order(
        world.db,
        supplier=supplier,
        currency=currency,
        base_currency="USD",
        rate=world.fx().rate(currency, "USD", TODAY),
    )
    for n, (quantity, price) in enumerate(lines, start=1):
        part_id = world.ids["part"] if n == 1 else world.part(f"{code}-P{n}")
        level = world.db.scalar(select(StockLevel.id).where(StockLevel.part_id == part_id))
        req = manual_requisition(world.db, part_id=part_id, quantity=Decimal(quantity))
        req.status = RequisitionLineStatus.ORDERED
        add_line(
            order,
            part_id=part_id,
            quantity=Decimal(quantity),
            unit_price=Decimal(price),
            explanation=f"line {n}: cheapest catalogue price",
            need_by=TODAY + dt.timedelta(days=10),
            requisition_line_id=req.id,
            contract_id=contract.id if contract is not None and n == 1 else None,
            stock_level_id=level,
        )
    world.db.flush()
    approve_order(
        world.db, order, approver_id=world.user(), role=Role.ADMIN, policy=ApprovalPolicy()
    )
    if send:
        send_order(order, now=SENT_AT)
    world.db.flush()
    return order
