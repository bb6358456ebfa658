"""Work orders: open, list, change, move through the status machine, labour notes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from maintainpro.api.crud import apply_changes, get_or_404, require_exists
from maintainpro.api.deps import SessionDep, require
from maintainpro.api.fields import FreeText, Name
from maintainpro.api.pagination import Page, WindowDep, list_page
from maintainpro.api.problems import Problem
from maintainpro.core.assets import Asset
from maintainpro.core.inventory import Part
from maintainpro.core.maintenance import PartNeed, open_work_order, transition_work_order
from maintainpro.core.users import Permission, User
from maintainpro.core.work_orders import (
    Origin,
    Priority,
    WorkOrder,
    WorkOrderNote,
    WorkOrderStatus,
    WorkOrderType,
)

router = APIRouter(prefix="/work-orders", tags=["work orders"])
Reader = Depends(require(Permission.WORK_ORDERS_READ))
Writer = Depends(require(Permission.WORK_ORDERS_WRITE))
Quantity = Annotated[Decimal, Field(gt=0, le=1_000_000, max_digits=14, decimal_places=3)]


class PartNeedIn(BaseModel):
    """A part a work order needs."""

    model_config = ConfigDict(extra="forbid")
    part_id: int
    quantity: Quantity


class WorkOrderIn(BaseModel):
    """A new work order."""

    model_config = ConfigDict(extra="forbid")
    asset_id: int
    title: Name
    type: WorkOrderType = WorkOrderType.CORRECTIVE
    priority: Priority = Priority.MEDIUM
    description: FreeText = ""
    due_at: AwareDatetime | None = None
    parts: list[PartNeedIn] = Field(default_factory=list, max_length=100)


class WorkOrderPatch(BaseModel):
    """Changes to a work order's content (status moves go through /transitions)."""

    model_config = ConfigDict(extra="forbid")
    title: Name | None = None
    description: FreeText | None = None
    priority: Priority | None = None
    due_at: AwareDatetime | None = None


class TransitionIn(BaseModel):
    """A status move."""

    model_config = ConfigDict(extra="forbid")
    status: WorkOrderStatus
    reason: FreeText | None = None
    assignee_id: int | None = None


class NoteIn(BaseModel):
    """A labour note."""

    model_config = ConfigDict(extra="forbid")
    body: Annotated[FreeText, Field(min_length=1)]
    hours: Annotated[Decimal, Field(ge=0, le=1000, max_digits=8, decimal_places=2)] | None = None


class NoteOut(BaseModel):
    """A labour note."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    author_id: int | None
    body: str
    hours: Decimal | None
    created_at: dt.datetime


class PartNeedOut(BaseModel):
    """A part a work order needs."""

    model_config = ConfigDict(from_attributes=True)
    part_id: int
    quantity: Decimal


class WorkOrderOut(BaseModel):
    """A work order."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    number: str
    title: str
    description: str
    type: WorkOrderType
    priority: Priority
    status: WorkOrderStatus
    status_reason: str | None
    asset_id: int
    assignee_id: int | None
    created_by_id: int | None
    origin: Origin
    origin_ref: str | None
    schedule_id: int | None
    due_at: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    closed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    parts: list[PartNeedOut]


class OpenedWorkOrder(WorkOrderOut):
    """A new work order with the parts that could not be reserved."""

    shortages: list[PartNeedOut]


@router.get("", dependencies=[Reader])
def list_work_orders(
    db: SessionDep,
    page: WindowDep,
    status: Annotated[list[WorkOrderStatus] | None, Query()] = None,
    asset_id: int | None = None,
    type: WorkOrderType | None = None,
    priority: Priority | None = None,
    assignee_id: int | None = None,
    origin: Origin | None = None,
) -> Page[WorkOrderOut]:
    """List work orders with filters; status may be given several times."""
    stmt = select(WorkOrder).order_by(WorkOrder.id.desc())
    if status:
        stmt = stmt.where(WorkOrder.status.in_(status))
    filters = {
        WorkOrder.asset_id: asset_id,
        WorkOrder.type: type,
        WorkOrder.priority: priority,
        WorkOrder.assignee_id: assignee_id,
        WorkOrder.origin: origin,
    }
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(column == value)
    return list_page(db, stmt, page, WorkOrderOut)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_work_order(
    db: SessionDep, body: WorkOrderIn, user: Annotated[User, Writer]
) -> OpenedWorkOrder:
    """Open a work order; its parts are reserved where stock allows."""
    require_exists(db, Asset, body.asset_id, "asset")
    if len({need.part_id for need in body.parts}) != len(body.parts):
        raise Problem(422, "list each part once, with its total quantity")
    for need in body.parts:
        require_exists(db, Part, need.part_id, "part")
    order, shortages = open_work_order(
        db,
        asset_id=body.asset_id,
        title=body.title,
        type=body.type,
        priority=body.priority,
        description=body.description,
        due_at=body.due_at,
        parts=[PartNeed(part_id=p.part_id, quantity=p.quantity) for p in body.parts],
        created_by_id=user.id,
    )
    db.commit()
    out = WorkOrderOut.model_validate(order).model_dump()
    missing = [PartNeedOut(part_id=s.part_id, quantity=s.missing) for s in shortages]
    return OpenedWorkOrder(**out, shortages=missing)


@router.get("/{work_order_id}", dependencies=[Reader])
def get_work_order(db: SessionDep, work_order_id: int) -> WorkOrderOut:
    """One work order."""
    return WorkOrderOut.model_validate(get_or_404(db, WorkOrder, work_order_id))


@router.patch("/{work_order_id}", dependencies=[Writer])
def update_work_order(db: SessionDep, work_order_id: int, body: WorkOrderPatch) -> WorkOrderOut:
    """Change a work order's title, description, priority or due date."""
    order = get_or_404(db, WorkOrder, work_order_id)
    apply_changes(order, body)
    db.commit()
    return WorkOrderOut.model_validate(order)


@router.post("/{work_order_id}/transitions", dependencies=[Writer])
def move_work_order(db: SessionDep, work_order_id: int, body: TransitionIn) -> WorkOrderOut:
    """Move a work order to another status; illegal moves are refused with 409."""
    order = get_or_404(db, WorkOrder, work_order_id)
    require_exists(db, User, body.assignee_id, "user")
    transition_work_order(db, order, body.status, reason=body.reason, assignee_id=body.assignee_id)
    db.commit()
    return WorkOrderOut.model_validate(order)


@router.get("/{work_order_id}/notes", dependencies=[Reader])
def list_notes(db: SessionDep, work_order_id: int) -> list[NoteOut]:
    """The labour notes of a work order, oldest first."""
    order = get_or_404(db, WorkOrder, work_order_id)
    return [NoteOut.model_validate(n) for n in order.notes]


@router.post("/{work_order_id}/notes", status_code=status.HTTP_201_CREATED)
def add_note(
    db: SessionDep, work_order_id: int, body: NoteIn, user: Annotated[User, Writer]
) -> NoteOut:
    """Add a labour note, optionally with hours spent."""
    order = get_or_404(db, WorkOrder, work_order_id)
    note = WorkOrderNote(
        work_order_id=order.id, author_id=user.id, body=body.body, hours=body.hours
    )
    db.add(note)
    db.commit()
    return NoteOut.model_validate(note)
