"""A small synthetic plant for the ML jobs: per site a pump whose vibration rises steadily toward
its critical level, a motor whose temperature stays flat, readings every five minutes for two
weeks, alert rules with critical levels and a calendar PM on the pump."""

from __future__ import annotations

import datetime as dt
import random
from typing import Final

from sqlalchemy.orm import Session

from maintainpro.core.assets import Asset, Site
from maintainpro.core.schedules import IntervalUnit, MaintenanceSchedule
from maintainpro.iot.alerts import AlertRule
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.timeseries import ReadingRow, to_ms, write_readings

NOW: Final = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
DAYS: Final = 14
STEP: Final = dt.timedelta(minutes=5)
# Vibration: 4.0 mm/s at the start, +0.25 mm/s a day, so 7.5 now and 11 (critical) 14 days on.
VIB_START: Final = 4.0
VIB_SLOPE: Final = 0.25
VIB_CRITICAL: Final = 11.0
EXPECTED_RUL_DAYS: Final = (VIB_CRITICAL - VIB_START) / VIB_SLOPE - DAYS
TEMP_CRITICAL: Final = 90.0
PM_DUE: Final = NOW + dt.timedelta(days=60)


def _rule(sensor: Sensor, name: str, critical: float) -> AlertRule:
    return AlertRule(
        name=name,
        sensor_id=sensor.id,
        condition={
            "kind": "threshold",
            "direction": "above",
            "levels": [{"severity": "critical", "threshold": critical}],
        },
    )


def ml_plant(session: Session, code: str = "S1", *, seed: int = 7) -> dict[str, int]:
    """One site of the synthetic plant (committed by the caller); returns its ids."""
    site = Site(code=code, name=f"Plant {code}")
    session.add(site)
    session.flush()
    pump = Asset(tag=f"P-{code}", name="Transfer pump", site_id=site.id, asset_class="pump")
    motor = Asset(tag=f"M-{code}", name="Fan motor", site_id=site.id, asset_class="motor")
    idle = Asset(tag=f"T-{code}", name="Tank without sensors", site_id=site.id)
    session.add_all([pump, motor, idle])
    session.flush()
    vibration = Sensor(key="vib", name=f"Pump vibration {code}", type="vibration", unit="mm/s")
    temperature = Sensor(key="temp", name=f"Motor temperature {code}", type="temp", unit="degC")
    pump_device = Device(key=f"cm-p-{code}", name="Pump CM", protocol=Protocol.MQTT)
    pump_device.asset_id = pump.id
    pump_device.sensors.append(vibration)
    motor_device = Device(key=f"cm-m-{code}", name="Motor CM", protocol=Protocol.MQTT)
    motor_device.asset_id = motor.id
    motor_device.sensors.append(temperature)
    session.add_all([pump_device, motor_device])
    session.flush()
    session.add_all(
        [
            _rule(vibration, f"Vibration {code}", VIB_CRITICAL),
            _rule(temperature, f"Temperature {code}", TEMP_CRITICAL),
        ]
    )
    schedule = MaintenanceSchedule(
        asset_id=pump.id,
        name="Pump quarterly service",
        interval_count=3,
        interval_unit=IntervalUnit.MONTHS,
        next_due_at=PM_DUE,
    )
    session.add(schedule)
    session.flush()
    rng = random.Random(seed)
    start = NOW - dt.timedelta(days=DAYS)
    rows = []
    t = start
    while t < NOW:
        days = (t - start).total_seconds() / 86_400
        rows.append(
            ReadingRow(vibration.id, to_ms(t), VIB_START + VIB_SLOPE * days + rng.gauss(0, 0.1), 0)
        )
        rows.append(ReadingRow(temperature.id, to_ms(t), 60.0 + rng.gauss(0, 0.5), 0))
        t += STEP
    write_readings(session.connection(), rows)
    return {
        "site": site.id,
        "pump": pump.id,
        "motor": motor.id,
        "idle": idle.id,
        "vibration": vibration.id,
        "temperature": temperature.id,
        "schedule": schedule.id,
    }
