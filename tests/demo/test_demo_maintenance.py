"""The demo's sensor-fed runtime meter and its 500-hour schedule."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.schedules import MaintenanceSchedule, Meter
from maintainpro.demo.devices import DEVICES, DemoPorts, seed_demo_devices, value_at
from maintainpro.demo.maintenance import (
    RUNNING_ABOVE_A,
    RUNTIME_DEVICE,
    RUNTIME_METER,
    RUNTIME_SENSOR,
)
from maintainpro.demo.plant import seed_demo_plant
from maintainpro.iot.alerts import MeterSource, MeterSourceKind


def test_seeding_twice_gives_one_runtime_meter_fed_by_the_motor_current(
    session_factory: sessionmaker[Session],
) -> None:
    for _ in range(2):
        with session_factory() as session, session.begin():
            seed_demo_plant(session, "demo-password-123")
            seed_demo_devices(session, DemoPorts())
    with session_factory() as session:
        source = session.scalars(select(MeterSource)).one()
        assert source.kind is MeterSourceKind.RUNTIME
        assert source.threshold == RUNNING_ABOVE_A
        meter = session.get(Meter, source.meter_id)
        assert meter is not None
        assert meter.name == RUNTIME_METER
        schedule = session.scalars(
            select(MaintenanceSchedule).where(MaintenanceSchedule.meter_id == meter.id)
        ).one()
        assert (schedule.meter_interval, schedule.next_due_meter) == (500.0, 500.0)


def test_the_demo_motor_runs_above_the_runtime_threshold() -> None:
    device = next(d for d in DEVICES if d.key == RUNTIME_DEVICE)
    sensor = device.sensor(RUNTIME_SENSOR)
    start = 1_790_000_000.0
    assert all(
        value_at(device, sensor, start + s, start) > RUNNING_ABOVE_A for s in range(0, 3600, 7)
    )
