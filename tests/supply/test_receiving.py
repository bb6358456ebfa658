"""Goods receipts: stock, order status, over-receipt, rejections, waiting work orders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from maintainpro.core.events import OutboxEvent
from maintainpro.core.inventory import Reservation, StockLevel
from maintainpro.core.maintenance import PartNeed, open_work_order
from maintainpro.core.users import Role
from maintainpro.core.work_orders import WorkOrderNote, WorkOrderType
from maintainpro.supply.purchasing import ApprovalPolicy, PoStatus, approve_order, send_order
from maintainpro.supply.receiving import ReceiptError, over_receipt_limit, receive
from maintainpro.supply.requisitions import RequisitionLine, requisition_from_part_demand
from maintainpro.supply.sourcing import generate_purchase_orders
from supply.procurement_world import TODAY, World

AT = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)


def _sent_order_for_shortage(world: World):  # type: ignore[no-untyped-def]
    acme = world.supplier("ACME", "USD")
    world.item(acme, [("1", "10.00")])
    order, shortages = open_work_order(
        world.db,
        asset_id=world.ids["pump"],
        title="Replace bearings",
        type=WorkOrderType.CORRECTIVE,
        parts=[PartNeed(world.ids["part"], Decimal(9))],
    )
    assert [s.missing for s in shortages] == [Decimal(4)]
    event = world.db.scalars(select(OutboxEvent).where(OutboxEvent.topic == "part.demand")).one()
    requisition_from_part_demand(world.db, event.payload)
    (po,) = generate_purchase_orders(
        world.db, base_currency="USD", fx=world.fx(), today=TODAY
    ).orders
    approve_order(world.db, po, approver_id=world.user(), role=Role.ADMIN, policy=ApprovalPolicy())
    send_order(po)
    return order, po


def test_part_demand_is_turned_into_one_requisition_line(world: World) -> None:
    wo, _ = open_work_order(
        world.db,
        asset_id=world.ids["pump"],
        title="x",
        type=WorkOrderType.CORRECTIVE,
        parts=[PartNeed(world.ids["part"], Decimal(8))],
        due_at=AT,
    )
    event = world.db.scalars(select(OutboxEvent).where(OutboxEvent.topic == "part.demand")).one()
    first = requisition_from_part_demand(world.db, event.payload)
    again = requisition_from_part_demand(world.db, event.payload)
    assert first is not None
    assert again is first
    assert (first.quantity, first.need_by, first.work_order_id) == (Decimal(3), AT.date(), wo.id)
    assert first.stock_level_id == world.ids["stock"]
    assert len(world.db.scalars(select(RequisitionLine)).all()) == 1


def test_two_partial_receipts_fill_stock_and_tell_the_work_order(world: World) -> None:
    wo, po = _sent_order_for_shortage(world)
    line = po.lines[0]
    first = receive(world.db, line, quantity=Decimal(1), received_at=AT, received_by_id=None)
    assert po.status is PoStatus.PARTIALLY_RECEIVED
    assert first.notified_work_orders == [wo.id]
    stock = world.db.get(StockLevel, world.ids["stock"])
    assert stock is not None
    assert (stock.on_hand, stock.reserved) == (Decimal(6), Decimal(6))
    second = receive(
        world.db,
        line,
        quantity=Decimal(3),
        rejected=Decimal(1),
        rejection_reason="cracked race",
        received_at=AT + dt.timedelta(days=1),
    )
    assert po.status is PoStatus.RECEIVED
    assert second.receipt.quantity_rejected == 1
    world.db.refresh(stock)
    assert (stock.on_hand, stock.reserved) == (Decimal(9), Decimal(9))
    held = world.db.scalars(select(Reservation).where(Reservation.work_order_id == wo.id)).all()
    assert sum(r.quantity for r in held) == Decimal(9)
    notes = world.db.scalars(
        select(WorkOrderNote).where(WorkOrderNote.work_order_id == wo.id).order_by(WorkOrderNote.id)
    ).all()
    assert len(notes) == 2
    assert "Parts arrived: 1 x BRG-1" in notes[0].body
    assert "3 still missing" in notes[0].body
    assert "4 of 4 received" in notes[1].body
    assert "nothing missing" in notes[1].body
    assert [h.to_status for h in po.history][-2:] == [
        PoStatus.PARTIALLY_RECEIVED,
        PoStatus.RECEIVED,
    ]


def test_over_receipt_beyond_tolerance_is_refused(world: World) -> None:
    _, po = _sent_order_for_shortage(world)
    line = po.lines[0]
    assert over_receipt_limit(Decimal(4), Decimal(10)) == Decimal("4.4")
    with pytest.raises(ReceiptError, match="exceeds the limit"):
        receive(world.db, line, quantity=Decimal(5))
    receive(world.db, line, quantity=Decimal("4.4"), tolerance_pct=Decimal(10))
    assert line.received_quantity == Decimal("4.4")
    with pytest.raises(ReceiptError, match="is received"):
        receive(world.db, line, quantity=Decimal("0.001"), tolerance_pct=Decimal(10))


def test_bad_receipts_are_refused(world: World) -> None:
    _, po = _sent_order_for_shortage(world)
    line = po.lines[0]
    with pytest.raises(ReceiptError, match="reason"):
        receive(world.db, line, quantity=Decimal(1), rejected=Decimal(1))
    with pytest.raises(ReceiptError, match="aware"):
        receive(world.db, line, quantity=Decimal(1), received_at=dt.datetime(2026, 1, 1))
    with pytest.raises(ReceiptError, match="positive"):
        receive(world.db, line, quantity=Decimal(0))
    stock = world.db.get(StockLevel, world.ids["stock"])
    assert stock is not None
    assert stock.on_hand == Decimal(5)


def test_a_draft_order_cannot_receive(world: World) -> None:
    acme = world.supplier("ACME", "USD")
    world.item(acme, [("1", "10.00")])
    from maintainpro.supply.requisitions import manual_requisition

    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(1))
    (po,) = generate_purchase_orders(
        world.db, base_currency="USD", fx=world.fx(), today=TODAY
    ).orders
    with pytest.raises(ReceiptError, match="draft"):
        receive(world.db, po.lines[0], quantity=Decimal(1))
