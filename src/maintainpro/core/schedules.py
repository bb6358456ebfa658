"""Preventive-maintenance schedules (calendar and meter based), meters and meter readings."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta
from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.assets import Asset
from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow
from maintainpro.core.work_orders import Priority, WorkOrderType


class IntervalUnit(enum.StrEnum):
    """Calendar unit of a schedule interval."""

    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"


class Anchor(enum.StrEnum):
    """Fixed: due dates keep their rhythm; floating: the next is counted from completion."""

    FIXED = "fixed"
    FLOATING = "floating"


class MeterKind(enum.StrEnum):
    """A counter only grows (runtime hours, cycles); a gauge goes up and down."""

    COUNTER = "counter"
    GAUGE = "gauge"


class Meter(Timestamped, Base):
    """A measured quantity of an asset that schedules can be based on."""

    __tablename__ = "meters"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(32))
    kind: Mapped[MeterKind] = mapped_column(text_enum(MeterKind), default=MeterKind.COUNTER)
    current_value: Mapped[float | None] = mapped_column(Float)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    asset: Mapped[Asset] = relationship()


class MeterReading(Base):
    """One reading of a meter."""

    __tablename__ = "meter_readings"

    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id", ondelete="CASCADE"), index=True)
    value: Mapped[float] = mapped_column(Float)
    read_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    source: Mapped[str] = mapped_column(String(32), default="manual")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MeterReadingRejected(ValueError):
    """A meter reading that would make the meter lie."""


def check_meter_reading(
    kind: MeterKind, current: float | None, value: float, *, reset: bool = False
) -> None:
    """Refuse a counter going backwards unless the reading is flagged as a meter reset."""
    if value != value or value in (float("inf"), float("-inf")):
        raise MeterReadingRejected("a meter reading must be a finite number")
    if kind is MeterKind.COUNTER and current is not None and value < current and not reset:
        raise MeterReadingRejected(
            f"counter readings only grow: {value} is below the current {current}; "
            "flag the reading as a reset if the meter was replaced"
        )


class MaintenanceSchedule(Timestamped, Base):
    """A preventive-maintenance plan: by calendar, by meter, or whichever comes first."""

    __tablename__ = "maintenance_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    work_order_type: Mapped[WorkOrderType] = mapped_column(
        text_enum(WorkOrderType), default=WorkOrderType.PREVENTIVE
    )
    priority: Mapped[Priority] = mapped_column(text_enum(Priority), default=Priority.MEDIUM)
    # Calendar trigger.
    interval_count: Mapped[int | None] = mapped_column(Integer)
    interval_unit: Mapped[IntervalUnit | None] = mapped_column(text_enum(IntervalUnit))
    anchor: Mapped[Anchor] = mapped_column(text_enum(Anchor), default=Anchor.FIXED)
    lead_days: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    next_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Meter trigger.
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id", ondelete="SET NULL"))
    meter_interval: Mapped[float | None] = mapped_column(Float)
    meter_lead: Mapped[float] = mapped_column(Float, default=0.0)
    next_due_meter: Mapped[float | None] = mapped_column(Float)
    last_completed_meter: Mapped[float | None] = mapped_column(Float)
    # Predictive pull-forward: a proposed earlier due date and why (e.g. a degrading trend).
    proposed_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    proposal_reason: Mapped[str | None] = mapped_column(Text)

    asset: Mapped[Asset] = relationship()
    meter: Mapped[Meter | None] = relationship()


def add_interval(start: dt.datetime, count: int, unit: IntervalUnit) -> dt.datetime:
    """Start plus count units; months keep the day of month, clamped to the month's end."""
    if count < 1:
        raise ValueError("an interval must be at least 1")
    if unit is IntervalUnit.DAYS:
        return start + dt.timedelta(days=count)
    if unit is IntervalUnit.WEEKS:
        return start + dt.timedelta(weeks=count)
    result: dt.datetime = start + relativedelta(months=count)
    return result


@dataclass(frozen=True)
class Due:
    """Why a schedule is due now."""

    by_calendar: bool
    by_meter: bool

    def describe(self) -> str:
        """A short phrase for the work order's description."""
        parts = [p for p, on in (("calendar", self.by_calendar), ("meter", self.by_meter)) if on]
        return " and ".join(parts)


def due_now(
    *,
    next_due_at: dt.datetime | None,
    lead_days: int,
    next_due_meter: float | None,
    meter_lead: float,
    meter_value: float | None,
    now: dt.datetime,
) -> Due | None:
    """Whether a schedule is due: time or meter, whichever comes first (each minus its lead)."""
    by_calendar = next_due_at is not None and now >= next_due_at - dt.timedelta(days=lead_days)
    by_meter = (
        next_due_meter is not None
        and meter_value is not None
        and meter_value >= next_due_meter - meter_lead
    )
    if by_calendar or by_meter:
        return Due(by_calendar=by_calendar, by_meter=by_meter)
    return None


def next_calendar_due(
    *,
    anchor: Anchor,
    previous_due: dt.datetime,
    completed_at: dt.datetime,
    count: int,
    unit: IntervalUnit,
) -> dt.datetime:
    """The due date after a completion.

    Fixed schedules step from the previous due date, skipping periods that already passed so a
    late completion does not leave a trail of overdue work; floating schedules step from the
    completion.
    """
    if anchor is Anchor.FLOATING:
        return add_interval(completed_at, count, unit)
    due = add_interval(previous_due, count, unit)
    steps = 1
    while due <= completed_at:
        steps += 1
        due = add_interval(previous_due, count * steps, unit)
    return due


def next_meter_due(
    *, anchor: Anchor, previous_due: float, completed_meter: float, interval: float
) -> float:
    """The meter value of the next service: in steps of the interval (fixed) or from completion."""
    if interval <= 0:
        raise ValueError("a meter interval must be positive")
    if anchor is Anchor.FLOATING:
        return completed_meter + interval
    due = previous_due + interval
    while due <= completed_meter:
        due += interval
    return due
