"""Shipments for the tracking tests: a work order short of bearings, its order, a ship notice."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent
from maintainpro.core.maintenance import PartNeed, open_work_order
from maintainpro.core.users import Role
from maintainpro.core.work_orders import WorkOrder, WorkOrderType
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    PurchaseOrder,
    approve_order,
    send_order,
)
from maintainpro.supply.requisitions import requisition_from_part_demand
from maintainpro.supply.shipments import DocumentSource, Shipment
from maintainpro.supply.shipping import ShipNotice, ShipNoticeLine, record_shipment
from maintainpro.supply.sourcing import generate_purchase_orders
from supply.procurement_world import TODAY, World

TRACKING = "1Z999AA10123456784"


@dataclass
class Waiting:
    """A work order waiting for 4 bearings, the order for them and (maybe) their shipment."""

    work_order: WorkOrder
    order: PurchaseOrder
    shipment: Shipment | None
    now: dt.datetime


def waiting_work_order(
    world: World,
    *,
    ship: bool = True,
    expected_in: dt.timedelta | None = dt.timedelta(days=2),
    tracking: str = TRACKING,
) -> Waiting:
    """A work order needing 9 bearings (5 in stock), the sent order for 4, and its shipment.

    Times are relative to the real clock, because the follow-ups look back from "now".
    """
    now = utcnow()
    acme = world.supplier("ACME", "USD")
    world.item(acme, [("1", "10.00")])
    wo, _ = open_work_order(
        world.db,
        asset_id=world.ids["pump"],
        title="Replace bearings",
        type=WorkOrderType.CORRECTIVE,
        parts=[PartNeed(world.ids["part"], Decimal(9))],
        due_at=now + dt.timedelta(days=7),
    )
    event = world.db.scalars(select(OutboxEvent).where(OutboxEvent.topic == "part.demand")).one()
    requisition_from_part_demand(world.db, event.payload)
    (order,) = generate_purchase_orders(
        world.db, base_currency="USD", fx=world.fx(), today=TODAY
    ).orders
    approve_order(
        world.db, order, approver_id=world.user(), role=Role.ADMIN, policy=ApprovalPolicy()
    )
    send_order(order, now=now - dt.timedelta(days=3))
    shipment = None
    if ship:
        notice = ShipNotice(
            shipment_number="ASN-1",
            lines=[ShipNoticeLine(1, Decimal(4))],
            shipped_at=now - dt.timedelta(days=1),
            carrier_scac="UPSN",
            carrier_name="UPS",
            tracking_number=tracking,
            expected_delivery=now + expected_in if expected_in is not None else None,
            source=DocumentSource.EDI,
        )
        shipment = record_shipment(world.db, order, notice).shipment
    world.db.flush()
    return Waiting(wo, order, shipment, now)


def events(world: World, topic: str) -> list[OutboxEvent]:
    """Outbox events of one topic, oldest first."""
    return list(
        world.db.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id)
        )
    )
