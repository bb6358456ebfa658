"""The demo's fault story: P-101's bearing vibration rises, an alert escalates and a
condition-based work order with bearings reserved appears on P-101."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.inventory import Reservation
from maintainpro.core.work_orders import Origin, WorkOrder, WorkOrderType
from maintainpro.demo.alerts import seed_demo_alert_rules
from maintainpro.demo.devices import DemoPorts, seed_demo_devices
from maintainpro.demo.plant import seed_demo_plant
from maintainpro.demo.signals import FAULTY_VIBRATION
from maintainpro.iot.alert_engine import AlertEngine
from maintainpro.iot.alerts import Alert, AlertRule, AlertStatus
from maintainpro.iot.devices import Device, Sensor
from maintainpro.iot.timeseries import ReadingRow, to_ms


def test_fault_raises_escalates_and_opens_one_work_order(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        seed_demo_plant(session, "demo-password-1")
        seed_demo_devices(session, DemoPorts())
        seed_demo_alert_rules(session)  # a second run must not duplicate the rules
    with session_factory() as session:
        assert len(session.scalars(select(AlertRule)).all()) == 2
        sensor = session.scalars(
            select(Sensor)
            .join(Device, Sensor.device_id == Device.id)
            .where(Device.key == "demo-p101", Sensor.key == "vibration")
        ).one()
        sensor_id, asset_id = sensor.id, sensor.device.asset_id
    engine = AlertEngine(session_factory)
    start = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
    t0 = start.timestamp()
    # Eight minutes of the demo signal at 1 Hz, fed as the ingest pipeline would.
    for minute in range(8):
        rows = [
            ReadingRow(
                sensor_id,
                to_ms(start + dt.timedelta(seconds=s)),
                FAULTY_VIBRATION.value(t0 + s, t0, seed=1),
                0,
            )
            for s in range(minute * 60, minute * 60 + 60)
        ]
        engine.process(rows)
    with session_factory() as session:
        alerts = session.scalars(select(Alert).where(Alert.sensor_id == sensor_id)).all()
        assert len(alerts) == 1
        alert = alerts[0]
        assert alert.status is AlertStatus.ACTIVE
        assert alert.severity == "critical"
        assert alert.escalations == 2
        orders = session.scalars(select(WorkOrder).where(WorkOrder.origin == Origin.ALERT)).all()
        assert len(orders) == 1
        order = orders[0]
        assert order.asset_id == asset_id
        assert order.type is WorkOrderType.CONDITION_BASED
        assert alert.work_order_id == order.id
        held = session.scalars(
            select(Reservation).where(Reservation.work_order_id == order.id)
        ).all()
        assert sum(r.quantity for r in held) == 2
