"""Maintenance workflow on a real database: parts, shortages, schedules, events."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent
from maintainpro.core.inventory import Reservation, ReservationStatus, StockLevel
from maintainpro.core.maintenance import (
    NotFound,
    PartNeed,
    check_asset_parent,
    generate_due_work_orders,
    open_work_order,
    transition_work_order,
)
from maintainpro.core.schedules import (
    Anchor,
    IntervalUnit,
    MaintenanceSchedule,
    Meter,
)
from maintainpro.core.work_orders import Origin, WorkOrderStatus, WorkOrderType
from support import plant

S = WorkOrderStatus


def test_parts_are_reserved_and_a_shortage_becomes_part_demand(db: Session) -> None:
    ids = plant(db)
    order, shortages = open_work_order(
        db,
        asset_id=ids["pump"],
        title="Replace bearings",
        type=WorkOrderType.CORRECTIVE,
        parts=[PartNeed(ids["part"], Decimal(7))],
    )
    db.commit()
    stock = db.get(StockLevel, ids["stock"])
    assert stock is not None
    assert stock.reserved == 5
    assert stock.available == 0
    assert [(s.part_id, s.missing) for s in shortages] == [(ids["part"], Decimal(2))]
    demand = db.scalars(select(OutboxEvent).where(OutboxEvent.topic == "part.demand")).all()
    assert len(demand) == 1
    assert demand[0].payload == {
        "work_order_id": order.id,
        "part_id": ids["part"],
        "quantity": "2",
        "need_by": None,
    }


def test_unknown_asset_is_refused(db: Session) -> None:
    with pytest.raises(NotFound):
        open_work_order(db, asset_id=999, title="x", type=WorkOrderType.CORRECTIVE)


def test_completion_consumes_and_cancellation_releases(db: Session) -> None:
    ids = plant(db)
    used, _ = open_work_order(
        db,
        asset_id=ids["pump"],
        title="a",
        type=WorkOrderType.CORRECTIVE,
        parts=[PartNeed(ids["part"], Decimal(2))],
    )
    dropped, _ = open_work_order(
        db,
        asset_id=ids["pump"],
        title="b",
        type=WorkOrderType.CORRECTIVE,
        parts=[PartNeed(ids["part"], Decimal(1))],
    )
    transition_work_order(db, used, S.IN_PROGRESS)
    transition_work_order(db, used, S.COMPLETED)
    transition_work_order(db, dropped, S.CANCELLED, reason="duplicate")
    db.commit()
    stock = db.get(StockLevel, ids["stock"])
    assert stock is not None
    assert (stock.on_hand, stock.reserved) == (3, 0)
    states = dict(db.execute(select(Reservation.work_order_id, Reservation.status)).all())
    assert states == {used.id: ReservationStatus.CONSUMED, dropped.id: ReservationStatus.RELEASED}


def test_due_schedules_open_one_work_order_each_and_roll_forward(db: Session) -> None:
    ids = plant(db)
    now = utcnow()
    meter = Meter(asset_id=ids["motor"], name="Runtime", unit="h", current_value=495.0)
    db.add(meter)
    db.flush()
    calendar = MaintenanceSchedule(
        asset_id=ids["pump"],
        name="Greasing",
        interval_count=4,
        interval_unit=IntervalUnit.WEEKS,
        anchor=Anchor.FIXED,
        next_due_at=now - dt.timedelta(hours=1),
    )
    by_meter = MaintenanceSchedule(
        asset_id=ids["motor"],
        name="500 h service",
        meter_id=meter.id,
        meter_interval=500.0,
        meter_lead=10.0,
        next_due_meter=500.0,
    )
    not_due = MaintenanceSchedule(
        asset_id=ids["pump"],
        name="Overhaul",
        interval_count=1,
        interval_unit=IntervalUnit.MONTHS,
        next_due_at=now + dt.timedelta(days=20),
    )
    db.add_all([calendar, by_meter, not_due])
    db.commit()

    created = generate_due_work_orders(db, now)
    db.commit()
    assert sorted(o.title for o in created) == ["500 h service", "Greasing"]
    assert all(o.origin is Origin.SCHEDULE for o in created)
    assert generate_due_work_orders(db, now) == [], "no second order while one is open"

    greasing = next(o for o in created if o.schedule_id == calendar.id)
    transition_work_order(db, greasing, S.IN_PROGRESS, now=now)
    transition_work_order(db, greasing, S.COMPLETED, now=now)
    meter.current_value = 503.0
    service = next(o for o in created if o.schedule_id == by_meter.id)
    transition_work_order(db, service, S.IN_PROGRESS, now=now)
    transition_work_order(db, service, S.COMPLETED, now=now)
    db.commit()
    assert calendar.next_due_at == now - dt.timedelta(hours=1) + dt.timedelta(weeks=4)
    assert calendar.last_completed_at == now
    assert (by_meter.last_completed_meter, by_meter.next_due_meter) == (503.0, 1000.0)
    assert generate_due_work_orders(db, now) == []
    count = db.scalar(select(func.count()).select_from(OutboxEvent))
    assert count is not None
    assert count >= 6


def test_asset_hierarchy_refuses_cycles(db: Session) -> None:
    ids = plant(db)
    check_asset_parent(db, ids["pump"], None)
    with pytest.raises(ValueError, match="own ancestor"):
        check_asset_parent(db, ids["pump"], ids["motor"])
    with pytest.raises(ValueError, match="own ancestor"):
        check_asset_parent(db, ids["pump"], ids["pump"])
    with pytest.raises(NotFound):
        check_asset_parent(db, ids["pump"], 12345)


def test_reopened_schedule_work_rolls_the_schedule_forward_once(db: Session) -> None:
    ids = plant(db)
    now = utcnow()
    due = now - dt.timedelta(hours=1)
    schedule = MaintenanceSchedule(
        asset_id=ids["pump"],
        name="Greasing",
        interval_count=1,
        interval_unit=IntervalUnit.WEEKS,
        next_due_at=due,
    )
    db.add(schedule)
    db.commit()
    (order,) = generate_due_work_orders(db, now)
    for minutes, status in enumerate((S.IN_PROGRESS, S.COMPLETED, S.IN_PROGRESS, S.COMPLETED)):
        transition_work_order(db, order, status, now=now + dt.timedelta(minutes=minutes + 1))
    db.commit()
    assert schedule.next_due_at == due + dt.timedelta(weeks=1), "not two periods"
