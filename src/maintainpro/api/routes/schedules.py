"""Maintenance schedules, meters and meter readings."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from maintainpro.api.crud import apply_changes, get_or_404, require_exists
from maintainpro.api.deps import SessionDep, require
from maintainpro.api.fields import Code, FreeText, Name
from maintainpro.api.pagination import Page, WindowDep, list_page
from maintainpro.api.problems import Problem
from maintainpro.api.routes.work_orders import WorkOrderOut
from maintainpro.core.assets import Asset
from maintainpro.core.db import utcnow
from maintainpro.core.maintenance import generate_due_work_orders
from maintainpro.core.schedules import (
    Anchor,
    IntervalUnit,
    MaintenanceSchedule,
    Meter,
    MeterKind,
    MeterReading,
    add_interval,
    check_meter_reading,
)
from maintainpro.core.users import Permission
from maintainpro.core.work_orders import Priority, WorkOrderType

router = APIRouter(tags=["schedules and meters"])
Reader = Depends(require(Permission.SCHEDULES_READ))
Writer = Depends(require(Permission.SCHEDULES_WRITE))
MeterWriter = Depends(require(Permission.METERS_WRITE))
Finite = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]


class ScheduleIn(BaseModel):
    """A new schedule: calendar, meter, or both (whichever comes first)."""

    model_config = ConfigDict(extra="forbid")
    asset_id: int
    name: Name
    description: FreeText = ""
    work_order_type: WorkOrderType = WorkOrderType.PREVENTIVE
    priority: Priority = Priority.MEDIUM
    interval_count: Annotated[int, Field(ge=1, le=10_000)] | None = None
    interval_unit: IntervalUnit | None = None
    anchor: Anchor = Anchor.FIXED
    lead_days: Annotated[int, Field(ge=0, le=365)] = 0
    starts_at: AwareDatetime | None = None
    meter_id: int | None = None
    meter_interval: Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)] | None = None
    meter_lead: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] = 0.0

    @model_validator(mode="after")
    def _one_trigger_at_least(self) -> ScheduleIn:
        calendar = self.interval_count is not None and self.interval_unit is not None
        meter = self.meter_id is not None and self.meter_interval is not None
        if (self.interval_count is None) != (self.interval_unit is None):
            raise ValueError("interval_count and interval_unit go together")
        if (self.meter_id is None) != (self.meter_interval is None):
            raise ValueError("meter_id and meter_interval go together")
        if not (calendar or meter):
            raise ValueError("a schedule needs a calendar interval, a meter interval, or both")
        return self


class SchedulePatch(BaseModel):
    """Changes to a schedule."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    description: FreeText | None = None
    active: bool | None = None
    priority: Priority | None = None
    lead_days: Annotated[int, Field(ge=0, le=365)] | None = None
    next_due_at: AwareDatetime | None = None
    meter_lead: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)] | None = None


class ScheduleOut(BaseModel):
    """A schedule."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    asset_id: int
    name: str
    description: str
    active: bool
    work_order_type: WorkOrderType
    priority: Priority
    interval_count: int | None
    interval_unit: IntervalUnit | None
    anchor: Anchor
    lead_days: int
    starts_at: dt.datetime | None
    next_due_at: dt.datetime | None
    last_completed_at: dt.datetime | None
    meter_id: int | None
    meter_interval: float | None
    meter_lead: float
    next_due_meter: float | None
    last_completed_meter: float | None


class MeterIn(BaseModel):
    """A new meter."""

    model_config = ConfigDict(extra="forbid")
    asset_id: int
    name: Name
    unit: Code
    kind: MeterKind = MeterKind.COUNTER
    current_value: Finite | None = None


class MeterOut(BaseModel):
    """A meter."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    asset_id: int
    name: str
    unit: str
    kind: MeterKind
    current_value: float | None
    read_at: dt.datetime | None


class ReadingIn(BaseModel):
    """A meter reading."""

    model_config = ConfigDict(extra="forbid")
    value: Finite
    read_at: AwareDatetime | None = None
    reset: bool = False


class ReadingOut(BaseModel):
    """A meter reading."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    meter_id: int
    value: float
    read_at: dt.datetime
    source: str


@router.get("/schedules", dependencies=[Reader])
def list_schedules(
    db: SessionDep, page: WindowDep, asset_id: int | None = None, active: bool | None = None
) -> Page[ScheduleOut]:
    """List schedules."""
    stmt = select(MaintenanceSchedule).order_by(MaintenanceSchedule.id)
    if asset_id is not None:
        stmt = stmt.where(MaintenanceSchedule.asset_id == asset_id)
    if active is not None:
        stmt = stmt.where(MaintenanceSchedule.active.is_(active))
    return list_page(db, stmt, page, ScheduleOut)


@router.post("/schedules", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_schedule(db: SessionDep, body: ScheduleIn) -> ScheduleOut:
    """Create a schedule; the first due date is the start plus one interval."""
    require_exists(db, Asset, body.asset_id, "asset")
    schedule = MaintenanceSchedule(**body.model_dump())
    if body.meter_id is not None:
        meter = db.get(Meter, body.meter_id)
        if meter is None:
            raise Problem(422, f"meter {body.meter_id} does not exist", title="Unknown reference")
        if meter.asset_id != body.asset_id:
            raise Problem(422, "the meter belongs to another asset")
        base = meter.current_value or 0.0
        schedule.next_due_meter = base + (body.meter_interval or 0.0)
    if body.interval_count and body.interval_unit:
        start = body.starts_at or utcnow()
        schedule.starts_at = start
        schedule.next_due_at = add_interval(start, body.interval_count, body.interval_unit)
    db.add(schedule)
    db.commit()
    return ScheduleOut.model_validate(schedule)


@router.get("/schedules/{schedule_id}", dependencies=[Reader])
def get_schedule(db: SessionDep, schedule_id: int) -> ScheduleOut:
    """One schedule."""
    return ScheduleOut.model_validate(get_or_404(db, MaintenanceSchedule, schedule_id))


@router.patch("/schedules/{schedule_id}", dependencies=[Writer])
def update_schedule(db: SessionDep, schedule_id: int, body: SchedulePatch) -> ScheduleOut:
    """Change a schedule."""
    schedule = get_or_404(db, MaintenanceSchedule, schedule_id)
    apply_changes(schedule, body)
    db.commit()
    return ScheduleOut.model_validate(schedule)


@router.post("/schedules/generate", dependencies=[Writer])
def generate_work_orders(db: SessionDep) -> list[WorkOrderOut]:
    """Open the preventive work orders that are due now (the scheduler does this every minute)."""
    created = generate_due_work_orders(db)
    db.commit()
    return [WorkOrderOut.model_validate(o) for o in created]


@router.get("/meters", dependencies=[Reader])
def list_meters(db: SessionDep, page: WindowDep, asset_id: int | None = None) -> Page[MeterOut]:
    """List meters."""
    stmt = select(Meter).order_by(Meter.id)
    if asset_id is not None:
        stmt = stmt.where(Meter.asset_id == asset_id)
    return list_page(db, stmt, page, MeterOut)


@router.post("/meters", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_meter(db: SessionDep, body: MeterIn) -> MeterOut:
    """Create a meter."""
    require_exists(db, Asset, body.asset_id, "asset")
    meter = Meter(**body.model_dump())
    if meter.current_value is not None:
        meter.read_at = utcnow()
    db.add(meter)
    db.commit()
    return MeterOut.model_validate(meter)


@router.get("/meters/{meter_id}", dependencies=[Reader])
def get_meter(db: SessionDep, meter_id: int) -> MeterOut:
    """One meter."""
    return MeterOut.model_validate(get_or_404(db, Meter, meter_id))


@router.get("/meters/{meter_id}/readings", dependencies=[Reader])
def list_readings(db: SessionDep, meter_id: int, page: WindowDep) -> Page[ReadingOut]:
    """Readings of a meter, newest first."""
    get_or_404(db, Meter, meter_id)
    stmt = (
        select(MeterReading)
        .where(MeterReading.meter_id == meter_id)
        .order_by(MeterReading.read_at.desc(), MeterReading.id.desc())
    )
    return list_page(db, stmt, page, ReadingOut)


@router.post(
    "/meters/{meter_id}/readings", status_code=status.HTTP_201_CREATED, dependencies=[MeterWriter]
)
def add_reading(db: SessionDep, meter_id: int, body: ReadingIn) -> ReadingOut:
    """Record a meter reading; a counter going backwards needs reset=true."""
    meter = get_or_404(db, Meter, meter_id)
    check_meter_reading(meter.kind, meter.current_value, body.value, reset=body.reset)
    when = body.read_at or utcnow()
    reading = MeterReading(meter_id=meter.id, value=body.value, read_at=when, source="api")
    db.add(reading)
    if meter.read_at is None or when >= meter.read_at:
        meter.current_value = body.value
        meter.read_at = when
    db.commit()
    return ReadingOut.model_validate(reading)
