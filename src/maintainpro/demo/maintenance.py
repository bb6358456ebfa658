"""Condition-based maintenance in the demo: a runtime meter fed by a motor-current sensor."""

from __future__ import annotations

from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.assets import Asset
from maintainpro.core.schedules import MaintenanceSchedule, Meter, MeterKind
from maintainpro.iot.alerts import MeterSource, MeterSourceKind
from maintainpro.iot.devices import Device, Sensor

RUNTIME_DEVICE: Final = "demo-p301"
RUNTIME_SENSOR: Final = "motor_current"
RUNTIME_METER: Final = "Runtime (sensor)"
RUNTIME_SCHEDULE: Final = "Pump motor service every 500 runtime hours"
# The pump motor draws about 24 A running; below 2 A it is stopped (standby draw, noise).
RUNNING_ABOVE_A: Final = 2.0


def seed_sensor_meters(session: Session) -> MeterSource | None:
    """Add the sensor-fed runtime meter and its 500-hour schedule; safe to run on every start."""
    sensor = session.scalars(
        select(Sensor)
        .join(Device, Sensor.device_id == Device.id)
        .where(Device.key == RUNTIME_DEVICE, Sensor.key == RUNTIME_SENSOR)
    ).one_or_none()
    if sensor is None or sensor.device.asset_id is None:
        return None
    asset = session.get(Asset, sensor.device.asset_id)
    assert asset is not None  # the foreign key guarantees it
    meter = session.scalars(
        select(Meter).where(Meter.asset_id == asset.id, Meter.name == RUNTIME_METER)
    ).one_or_none()
    if meter is None:
        meter = Meter(
            asset_id=asset.id,
            name=RUNTIME_METER,
            unit="h",
            kind=MeterKind.COUNTER,
            current_value=0.0,
        )
        session.add(meter)
        session.flush()
    source = session.scalars(
        select(MeterSource).where(MeterSource.meter_id == meter.id)
    ).one_or_none()
    if source is None:
        source = MeterSource(
            meter_id=meter.id,
            sensor_id=sensor.id,
            kind=MeterSourceKind.RUNTIME,
            threshold=RUNNING_ABOVE_A,
            max_gap_s=300,
            state={},
        )
        session.add(source)
    schedule = session.scalars(
        select(MaintenanceSchedule).where(
            MaintenanceSchedule.asset_id == asset.id, MaintenanceSchedule.name == RUNTIME_SCHEDULE
        )
    ).one_or_none()
    if schedule is None:
        session.add(
            MaintenanceSchedule(
                asset_id=asset.id,
                name=RUNTIME_SCHEDULE,
                description="Grease the motor bearings, check alignment and the coupling.",
                meter_id=meter.id,
                meter_interval=500.0,
                meter_lead=25.0,
                next_due_meter=500.0,
            )
        )
    session.flush()
    return source
