"""Alert rules as stored, their persisted evaluation state, and alerts with their lifecycle."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow


class AlertStatus(enum.StrEnum):
    """Where an alert is in its life."""

    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"
    CLOSED = "closed"


class AlertKind(enum.StrEnum):
    """What raised the alert."""

    THRESHOLD = "threshold"
    RATE = "rate"
    STALE = "stale"
    BAD_QUALITY = "bad_quality"
    ANOMALY = "anomaly"


# Legal lifecycle moves: active -> acknowledged -> cleared -> closed; a condition that clears
# before anyone looked goes active -> cleared; an operator may close a cleared alert only.
ALERT_TRANSITIONS: dict[AlertStatus, frozenset[AlertStatus]] = {
    AlertStatus.ACTIVE: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.CLEARED}),
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.CLEARED}),
    AlertStatus.CLEARED: frozenset({AlertStatus.CLOSED}),
    AlertStatus.CLOSED: frozenset(),
}
OPEN_ALERT_STATUSES = frozenset({AlertStatus.ACTIVE, AlertStatus.ACKNOWLEDGED})


class AlertRule(Timestamped, Base):
    """A rule on one sensor, or a template applied to every sensor of a type or asset class.

    `condition` holds the rule's definition as JSON (see iot/rule_specs.py): kind, direction,
    levels with severities, clear level, duration, repeat count, rate metric, stale timeout.
    """

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sensor_id: Mapped[int | None] = mapped_column(
        ForeignKey("sensors.id", ondelete="CASCADE"), index=True
    )
    # Template scope, used when sensor_id is None.
    sensor_type: Mapped[str | None] = mapped_column(String(32))
    asset_class: Mapped[str | None] = mapped_column(String(64))
    condition: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Condition-based maintenance: open a work order on the sensor's asset when raised.
    opens_work_order: Mapped[bool] = mapped_column(Boolean, default=False)
    work_order_parts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    cooldown_s: Mapped[int] = mapped_column(Integer, default=3600)


class RuleStateRow(Base):
    """The evaluation state of one rule on one sensor, saved so it survives a restart."""

    __tablename__ = "alert_rule_states"
    __table_args__ = (UniqueConstraint("rule_id", "sensor_id"),)
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Alert(Timestamped, Base):
    """A raised condition: at most one open alert per rule and sensor."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="SET NULL"), index=True
    )
    sensor_id: Mapped[int | None] = mapped_column(
        ForeignKey("sensors.id", ondelete="SET NULL"), index=True
    )
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    asset_id: Mapped[int | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[AlertKind] = mapped_column(text_enum(AlertKind))
    severity: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[AlertStatus] = mapped_column(
        text_enum(AlertStatus), default=AlertStatus.ACTIVE, index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text, default="")
    value: Mapped[float | None] = mapped_column(Float)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    cleared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    work_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL")
    )
    # When the reading that raised it was taken, and when the alert was stored: the response
    # time the product promises is the difference.
    reading_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    notes: Mapped[list[AlertNote]] = relationship(
        back_populates="alert", cascade="all, delete-orphan", order_by="AlertNote.id"
    )


class AlertNote(Base):
    """Who did what to an alert, and why."""

    __tablename__ = "alert_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    alert: Mapped[Alert] = relationship(back_populates="notes")


class MeterSourceKind(enum.StrEnum):
    """How a sensor drives a meter."""

    RUNTIME = "runtime"  # hours during which value > threshold
    CYCLES = "cycles"  # rising edges through threshold
    TOTALISER = "totaliser"  # value integrated over time (flow -> volume)


class MeterSource(Timestamped, Base):
    """A meter fed by a sensor (runtime hours, cycle counts, totalisers), with its state."""

    __tablename__ = "meter_sources"
    __table_args__ = (UniqueConstraint("meter_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id", ondelete="CASCADE"))
    sensor_id: Mapped[int] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"), index=True)
    kind: Mapped[MeterSourceKind] = mapped_column(text_enum(MeterSourceKind))
    threshold: Mapped[float] = mapped_column(Float, default=0.0)
    # Totaliser: units of the meter per (sensor unit x hour); e.g. m3/h integrated gives m3.
    factor: Mapped[float] = mapped_column(Float, default=1.0)
    # Gaps longer than this are not counted (device offline, hub down).
    max_gap_s: Mapped[int] = mapped_column(Integer, default=300)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, info={"audit": "skip"})


class SensorPrediction(Base):
    """A sensor's robust trend and the date it is predicted to cross its critical threshold."""

    __tablename__ = "sensor_predictions"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    sensor_id: Mapped[int] = mapped_column(
        ForeignKey("sensors.id", ondelete="CASCADE"), unique=True
    )
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    method: Mapped[str] = mapped_column(String(32))
    slope_per_day: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    current_level: Mapped[float] = mapped_column(Float)
    crossing_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    points: Mapped[int] = mapped_column(Integer)
