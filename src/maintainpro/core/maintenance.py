"""Maintenance workflow: opening work orders, moving them, and generating preventive work."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.assets import Asset
from maintainpro.core.db import utcnow
from maintainpro.core.events import emit
from maintainpro.core.inventory import (
    Reservation,
    ReservationStatus,
    StockLevel,
    close_reservation,
    reserve,
)
from maintainpro.core.schedules import (
    MaintenanceSchedule,
    Meter,
    due_now,
    next_calendar_due,
    next_meter_due,
)
from maintainpro.core.work_orders import (
    OPEN_STATUSES,
    Origin,
    Priority,
    WorkOrder,
    WorkOrderPart,
    WorkOrderStatus,
    WorkOrderType,
)


class NotFound(LookupError):
    """A referenced row does not exist."""


@dataclass(frozen=True)
class PartNeed:
    """A part and quantity a new work order needs."""

    part_id: int
    quantity: Decimal


@dataclass(frozen=True)
class Shortage:
    """Part quantity that could not be reserved from stock."""

    part_id: int
    missing: Decimal


def open_work_order(
    session: Session,
    *,
    asset_id: int,
    title: str,
    type: WorkOrderType,
    priority: Priority = Priority.MEDIUM,
    description: str = "",
    parts: Sequence[PartNeed] = (),
    origin: Origin = Origin.MANUAL,
    origin_ref: str | None = None,
    schedule_id: int | None = None,
    due_at: dt.datetime | None = None,
    created_by_id: int | None = None,
) -> tuple[WorkOrder, list[Shortage]]:
    """Open a work order, reserve its parts where stock allows, and report any shortage.

    A shortage is also emitted as a ``part.demand`` event, which procurement turns into a
    requisition.
    """
    if session.get(Asset, asset_id) is None:
        raise NotFound(f"asset {asset_id} does not exist")
    order = WorkOrder(
        asset_id=asset_id,
        title=title,
        description=description,
        type=type,
        priority=priority,
        origin=origin,
        origin_ref=origin_ref,
        schedule_id=schedule_id,
        due_at=due_at,
        created_by_id=created_by_id,
        status=WorkOrderStatus.OPEN,
    )
    session.add(order)
    session.flush()
    shortages = []
    for need in parts:
        order.parts.append(WorkOrderPart(part_id=need.part_id, quantity=need.quantity))
        missing = reserve_from_stock(session, order.id, need)
        if missing > 0:
            shortages.append(Shortage(part_id=need.part_id, missing=missing))
    session.flush()
    emit(
        session,
        "work_order.opened",
        {"work_order_id": order.id, "asset_id": asset_id, "origin": origin.value},
    )
    for shortage in shortages:
        emit(
            session,
            "part.demand",
            {
                "work_order_id": order.id,
                "part_id": shortage.part_id,
                "quantity": f"{shortage.missing.normalize():f}",
                "need_by": due_at.isoformat() if due_at else None,
            },
        )
    return order, shortages


def reserve_from_stock(session: Session, work_order_id: int, need: PartNeed) -> Decimal:
    """Reserve a part across storerooms, fullest first; returns the quantity still missing."""
    remaining = need.quantity
    levels = session.scalars(
        select(StockLevel)
        .where(StockLevel.part_id == need.part_id)
        .order_by(StockLevel.on_hand.desc(), StockLevel.id)
    ).all()
    for level in levels:
        take = min(level.available, remaining)
        if take <= 0:
            continue
        reserve(session, work_order_id=work_order_id, stock_level_id=level.id, quantity=take)
        remaining -= take
        if remaining <= 0:
            break
    return remaining


def transition_work_order(
    session: Session,
    order: WorkOrder,
    target: WorkOrderStatus,
    *,
    reason: str | None = None,
    assignee_id: int | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Move a work order and apply what the move means for stock and schedules."""
    when = now or utcnow()
    previous = order.status
    order.move_to(target, reason=reason, assignee_id=assignee_id, now=when)
    active = session.scalars(
        select(Reservation).where(
            Reservation.work_order_id == order.id,
            Reservation.status == ReservationStatus.ACTIVE,
        )
    ).all()
    if target in (WorkOrderStatus.COMPLETED, WorkOrderStatus.CANCELLED):
        for reservation in active:
            close_reservation(
                session, reservation, consume=target is WorkOrderStatus.COMPLETED, now=when
            )
    if target is WorkOrderStatus.COMPLETED and order.schedule_id is not None:
        schedule = session.get(MaintenanceSchedule, order.schedule_id)
        # A reopened and re-completed order already moved its schedule on; moving it again
        # would skip a period. Only one order per schedule is open at a time, so a completion
        # recorded after this order was created is this order's own.
        already = (
            schedule is not None
            and schedule.last_completed_at is not None
            and schedule.last_completed_at >= order.created_at
        )
        if schedule is not None and not already:
            roll_schedule_forward(session, schedule, completed_at=when)
    emit(
        session,
        "work_order.status_changed",
        {"work_order_id": order.id, "from": previous.value, "to": target.value},
    )


def roll_schedule_forward(
    session: Session, schedule: MaintenanceSchedule, *, completed_at: dt.datetime
) -> None:
    """Record a completed occurrence and compute the schedule's next due date and meter value."""
    schedule.last_completed_at = completed_at
    if schedule.interval_count and schedule.interval_unit:
        schedule.next_due_at = next_calendar_due(
            anchor=schedule.anchor,
            previous_due=schedule.next_due_at or completed_at,
            completed_at=completed_at,
            count=schedule.interval_count,
            unit=schedule.interval_unit,
        )
    if schedule.meter_id is not None and schedule.meter_interval:
        meter = session.get(Meter, schedule.meter_id)
        reading = meter.current_value if meter and meter.current_value is not None else 0.0
        schedule.last_completed_meter = reading
        schedule.next_due_meter = next_meter_due(
            anchor=schedule.anchor,
            previous_due=schedule.next_due_meter or reading,
            completed_meter=reading,
            interval=schedule.meter_interval,
        )


def generate_due_work_orders(session: Session, now: dt.datetime | None = None) -> list[WorkOrder]:
    """Open one preventive work order for every active schedule that is due.

    A schedule with a work order still open gets no second one, so running this every minute
    is safe.
    """
    when = now or utcnow()
    created: list[WorkOrder] = []
    open_for = set(
        session.scalars(
            select(WorkOrder.schedule_id).where(
                WorkOrder.schedule_id.is_not(None), WorkOrder.status.in_(OPEN_STATUSES)
            )
        ).all()
    )
    schedules = session.scalars(
        select(MaintenanceSchedule).where(MaintenanceSchedule.active.is_(True))
    ).all()
    for schedule in schedules:
        if schedule.id in open_for:
            continue
        meter_value = schedule.meter.current_value if schedule.meter else None
        due = due_now(
            next_due_at=schedule.next_due_at,
            lead_days=schedule.lead_days,
            next_due_meter=schedule.next_due_meter,
            meter_lead=schedule.meter_lead,
            meter_value=meter_value,
            now=when,
        )
        if due is None:
            continue
        order, _ = open_work_order(
            session,
            asset_id=schedule.asset_id,
            title=schedule.name,
            type=schedule.work_order_type,
            priority=schedule.priority,
            description=f"{schedule.description}\n\nDue by {due.describe()}.".strip(),
            origin=Origin.SCHEDULE,
            origin_ref=f"schedule:{schedule.id}",
            schedule_id=schedule.id,
            due_at=schedule.next_due_at,
        )
        created.append(order)
    return created


def ancestors_of(session: Session, asset_id: int) -> list[int]:
    """Ids of an asset's parents up to the root, nearest first."""
    chain: list[int] = []
    current = session.get(Asset, asset_id)
    while current is not None and current.parent_id is not None:
        if current.parent_id in chain or current.parent_id == asset_id:
            break  # a cycle already in the data: stop rather than loop
        chain.append(current.parent_id)
        current = session.get(Asset, current.parent_id)
    return chain


def check_asset_parent(session: Session, asset_id: int | None, parent_id: int | None) -> None:
    """Refuse a parent that does not exist or would put the asset inside itself."""
    if parent_id is None:
        return
    if session.get(Asset, parent_id) is None:
        raise NotFound(f"parent asset {parent_id} does not exist")
    if asset_id is None:
        return
    if parent_id == asset_id or asset_id in ancestors_of(session, parent_id):
        raise ValueError("an asset cannot be its own ancestor")
