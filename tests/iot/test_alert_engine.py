"""The alert engine on a real database: alerts, persisted rule state, stale data, CBM work."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.events import OutboxEvent
from maintainpro.core.inventory import Reservation, ReservationStatus
from maintainpro.core.maintenance import transition_work_order
from maintainpro.core.work_orders import Origin, Priority, WorkOrder, WorkOrderStatus, WorkOrderType
from maintainpro.iot.alert_engine import AlertEngine
from maintainpro.iot.alerts import Alert, AlertRule, AlertStatus, RuleStateRow
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.timeseries import EPOCH, QUALITY_CODES, ReadingRow
from support import plant

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
VIBRATION: dict[str, Any] = {
    "kind": "threshold",
    "direction": "above",
    "levels": [
        {"severity": "warning", "threshold": 5},
        {"severity": "major", "threshold": 8},
        {"severity": "critical", "threshold": 10},
    ],
    "clear_at": 4,
    "duration_s": 10,
}


def ms(at: dt.datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int((at - EPOCH).total_seconds() * 1000)


class Plant:
    """A pump with a vibration and a temperature sensor, and a bearing in stock (5)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        with factory() as session, session.begin():
            ids = plant(session)
            device = Device(key="dev1", name="Pump box", protocol=Protocol.MQTT)
            device.asset_id = ids["pump"]
            device.sensors.append(Sensor(key="vib", type="vibration", unit="mm/s"))
            device.sensors.append(Sensor(key="temp", type="temperature", unit="°C"))
            session.add(device)
            session.flush()
            self.ids = ids
            self.vib = device.sensors[0].id
            self.temp = device.sensors[1].id

    def rule(self, condition: dict[str, Any] | None = None, **fields: Any) -> int:
        """Store a rule (on the vibration sensor unless told otherwise); returns its id."""
        values: dict[str, Any] = {"name": "Pump vibration", "sensor_id": self.vib}
        values.update(fields)
        with self.factory() as session, session.begin():
            rule = AlertRule(condition=condition or VIBRATION, **values)
            session.add(rule)
            session.flush()
            return rule.id

    def alerts(self) -> list[Alert]:
        """Every alert, oldest first."""
        with self.factory() as session:
            return list(session.scalars(select(Alert).order_by(Alert.id)))

    def orders(self) -> list[WorkOrder]:
        """Every work order with its notes, oldest first."""
        with self.factory() as session:
            orders = list(session.scalars(select(WorkOrder).order_by(WorkOrder.id)))
            for order in orders:
                _ = order.notes
            return orders

    def events(self, prefix: str = "alert.") -> list[OutboxEvent]:
        """Outbox events whose topic starts with prefix."""
        with self.factory() as session:
            rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
            return [e for e in rows if e.topic.startswith(prefix)]


@pytest.fixture
def site(session_factory: sessionmaker[Session]) -> Plant:
    """The test plant."""
    return Plant(session_factory)


@pytest.fixture
def engine_(session_factory: sessionmaker[Session]) -> AlertEngine:
    """An engine that re-checks its rules on every batch."""
    return AlertEngine(session_factory, public_url="https://cmms.example", refresh_s=0)


def feed(
    engine: AlertEngine, sensor: int, points: Sequence[tuple[float, float]], quality: str = "good"
) -> int:
    """Evaluate (seconds after T0, value) readings of one sensor as one stored batch."""
    code = QUALITY_CODES[quality]
    rows = [ReadingRow(sensor, ms(T0 + dt.timedelta(seconds=s)), v, code) for s, v in points]
    return engine.process(rows)


def topics(site: Plant) -> list[str]:
    """Topics of the alert events so far."""
    return [e.topic for e in site.events()]


def test_raise_escalate_once_and_clear(site: Plant, engine_: AlertEngine) -> None:
    rule_id = site.rule()
    feed(engine_, site.vib, [(0, 6), (5, 6)])
    assert site.alerts() == []  # held 5 s of the 10 s needed
    feed(engine_, site.vib, [(10, 6.5)])
    [alert] = site.alerts()
    assert (alert.status, alert.severity, alert.escalations) == (AlertStatus.ACTIVE, "warning", 0)
    assert alert.reading_at == T0 + dt.timedelta(seconds=10)
    assert alert.asset_id == site.ids["pump"]
    assert "value 6.5 > 5 (warning)" in alert.reason
    # Straight to critical (skipping major) is one escalation, and staying there is none.
    feed(engine_, site.vib, [(20, 11), (30, 11.5), (40, 12), (45, 7)])
    [alert] = site.alerts()
    assert (alert.severity, alert.escalations) == ("critical", 1)
    assert alert.reading_at == T0 + dt.timedelta(seconds=30)
    # Inside the hysteresis band (4..5) nothing happens; below it the alert clears.
    feed(engine_, site.vib, [(50, 4.5), (60, 3.9)])
    [alert] = site.alerts()
    assert alert.status is AlertStatus.CLEARED
    assert alert.cleared_at is not None
    assert topics(site) == ["alert.raised", "alert.escalated", "alert.cleared"]
    payload = site.events()[0].payload
    assert payload == {
        "alert_id": alert.id,
        "rule_id": rule_id,
        "sensor_id": site.vib,
        "asset_id": site.ids["pump"],
        "site_id": site.ids["site"],
        "severity": "warning",
        "title": "Pump vibration (dev1/vib)",
        "reason": payload["reason"],
        "value": 6.5,
        "reading_at": (T0 + dt.timedelta(seconds=10)).isoformat(),
        "url": f"https://cmms.example/alerts/{alert.id}",
    }
    assert site.events()[1].payload["severity"] == "critical"
    cleared = site.events()[2].payload
    assert (cleared["value"], cleared["reading_at"]) == (
        3.9,
        (T0 + dt.timedelta(seconds=60)).isoformat(),
    )
    with site.factory() as session:
        actions = [n.action for n in session.get(Alert, alert.id).notes]  # type: ignore[union-attr]
    assert actions == ["raised", "escalated", "cleared"]


def test_one_open_alert_per_rule_and_sensor(site: Plant, engine_: AlertEngine) -> None:
    site.rule({**VIBRATION, "duration_s": 0})
    site.rule({**VIBRATION, "duration_s": 0}, name="Temp", sensor_id=site.temp)
    feed(engine_, site.vib, [(0, 6)])
    # Lost state (say, a restored backup) makes the rules raise again: the open alert is updated.
    with site.factory() as session, session.begin():
        session.execute(delete(RuleStateRow))
    feed(engine_, site.vib, [(10, 7)])
    [alert] = site.alerts()
    assert alert.value == 7
    assert topics(site) == ["alert.raised"]
    # After a clear, a new breach is a new alert; the other sensor has its own.
    feed(engine_, site.vib, [(20, 1), (30, 9)])
    feed(engine_, site.temp, [(30, 9)])
    alerts = site.alerts()
    assert [(a.sensor_id, a.status) for a in alerts] == [
        (site.vib, AlertStatus.CLEARED),
        (site.vib, AlertStatus.ACTIVE),
        (site.temp, AlertStatus.ACTIVE),
    ]


def test_state_survives_a_restart_mid_duration(
    site: Plant, session_factory: sessionmaker[Session]
) -> None:
    site.rule()
    first = AlertEngine(session_factory, refresh_s=0)
    feed(first, site.vib, [(0, 6), (6, 6)])
    assert site.alerts() == []
    # A new engine (the hub restarted) continues the breach run from the stored state.
    second = AlertEngine(session_factory, refresh_s=0)
    feed(second, site.vib, [(3, 20)])  # older than the last reading seen: ignored
    feed(second, site.vib, [(10, 6)])
    [alert] = site.alerts()
    assert alert.severity == "warning"
    assert "held 10 s over 3 reading(s)" in alert.reason


def test_template_rules_apply_to_every_matching_sensor(site: Plant, engine_: AlertEngine) -> None:
    site.rule({**VIBRATION, "duration_s": 0}, sensor_id=None, asset_class="pump")
    feed(engine_, site.vib, [(0, 6)])
    feed(engine_, site.temp, [(0, 6)])
    assert sorted(a.sensor_id for a in site.alerts()) == sorted([site.vib, site.temp])
    # A disabled rule evaluates nothing.
    with site.factory() as session, session.begin():
        session.execute(AlertRule.__table__.update().values(enabled=False))
    assert feed(engine_, site.vib, [(10, 1)]) == 0


def test_a_sensors_own_rule_overrides_the_template_of_the_same_kind(
    site: Plant, engine_: AlertEngine
) -> None:
    template = site.rule({**VIBRATION, "duration_s": 0}, sensor_id=None, sensor_type="vibration")
    own = site.rule({**VIBRATION, "duration_s": 0}, name="Tuned for this pump")
    feed(engine_, site.vib, [(0, 6)])
    assert [a.rule_id for a in site.alerts()] == [own], "one alert, from the sensor's own rule"
    assert template != own


def test_bad_quality_and_rate_rules(site: Plant, engine_: AlertEngine) -> None:
    site.rule({"kind": "bad_quality", "count": 2})
    site.rule(
        {"kind": "rate", "levels": [{"severity": "major", "threshold": 60}]},
        name="Temp rising",
        sensor_id=site.temp,
    )
    feed(engine_, site.vib, [(0, 1), (1, 1)], quality="bad")
    feed(engine_, site.temp, [(0, 20), (30, 60)])  # 80 per minute
    assert sorted((a.kind.value, a.severity) for a in site.alerts()) == [
        ("bad_quality", "warning"),
        ("rate", "major"),
    ]


def test_stale_rule_raises_when_silent_and_clears_when_data_resumes(
    site: Plant, engine_: AlertEngine
) -> None:
    site.rule({"kind": "stale", "after_s": 60, "severity": "critical"})
    start = dt.datetime.now(dt.UTC)
    assert engine_.check_stale_alerts(start) == 0  # monitoring starts now
    assert engine_.check_stale_alerts(start + dt.timedelta(seconds=59)) == 0
    assert engine_.check_stale_alerts(start + dt.timedelta(seconds=61)) == 1
    assert engine_.check_stale_alerts(start + dt.timedelta(seconds=120)) == 0  # still the one
    [alert] = site.alerts()
    assert (alert.kind.value, alert.severity, alert.reading_at) == ("stale", "critical", None)
    assert "offline" in alert.reason
    back = start + dt.timedelta(seconds=130)
    engine_.process([ReadingRow(site.vib, ms(back), 1.0, 0)])
    [alert] = site.alerts()
    assert alert.status is AlertStatus.CLEARED
    assert topics(site) == ["alert.raised", "alert.cleared"]
    # Silent again after the last reading: a new offline alert.
    assert engine_.check_stale_alerts(back + dt.timedelta(seconds=61)) == 1
    assert [a.status for a in site.alerts()] == [AlertStatus.CLEARED, AlertStatus.ACTIVE]


def _cbm_rule(site: Plant, quantity: str = "2", **fields: Any) -> int:
    return site.rule(
        opens_work_order=True,
        work_order_parts=[{"part_id": site.ids["part"], "quantity": quantity}],
        **fields,
    )


def test_condition_based_work_order_opened_once_with_parts(
    site: Plant, engine_: AlertEngine
) -> None:
    rule_id = _cbm_rule(site)
    feed(engine_, site.vib, [(0, 6), (10, 6)])
    [order] = site.orders()
    assert (order.type, order.origin, order.priority) == (
        WorkOrderType.CONDITION_BASED,
        Origin.ALERT,
        Priority.MEDIUM,
    )
    assert order.origin_ref == f"rule:{rule_id}:asset:{site.ids['pump']}"
    assert order.asset_id == site.ids["pump"]
    assert "value 6 > 5 (warning)" in order.description
    assert f"https://cmms.example/assets/{site.ids['pump']}" in order.description
    [alert] = site.alerts()
    assert alert.work_order_id == order.id
    with site.factory() as session:
        reservations = session.scalars(select(Reservation)).all()
        assert [(r.work_order_id, r.quantity, r.status) for r in reservations] == [
            (order.id, Decimal(2), ReservationStatus.ACTIVE)
        ]
    # Escalation raises the priority; clearing leaves the order open with a note.
    feed(engine_, site.vib, [(20, 12), (30, 12)])
    assert site.orders()[0].priority is Priority.URGENT
    feed(engine_, site.vib, [(40, 1)])
    [order] = site.orders()
    assert order.status is WorkOrderStatus.OPEN
    assert "cleared" in order.notes[-1].body
    assert "stays open" in order.notes[-1].body
    # The condition comes back while the order is open: the same order, no second one.
    feed(engine_, site.vib, [(50, 6), (60, 6)])
    assert len(site.orders()) == 1
    assert [a.work_order_id for a in site.alerts()] == [order.id, order.id]
    assert [e.topic for e in site.events("work_order.opened")] == ["work_order.opened"]
    assert site.events("part.demand") == []


def test_shortage_emits_part_demand(site: Plant, engine_: AlertEngine) -> None:
    _cbm_rule(site, quantity="7")
    feed(engine_, site.vib, [(0, 11), (10, 11)])
    [order] = site.orders()
    assert order.priority is Priority.URGENT  # raised straight at critical
    [demand] = site.events("part.demand")
    assert demand.payload["work_order_id"] == order.id
    assert demand.payload["part_id"] == site.ids["part"]
    assert demand.payload["quantity"] == "2"


def _cancel(site: Plant, order_id: int) -> None:
    with site.factory() as session, session.begin():
        order = session.get(WorkOrder, order_id)
        assert order is not None
        transition_work_order(session, order, WorkOrderStatus.CANCELLED, reason="checked, fine")


def test_cooldown_after_a_work_order_finishes(site: Plant, engine_: AlertEngine) -> None:
    rule_id = _cbm_rule(site, cooldown_s=3600)
    feed(engine_, site.vib, [(0, 6), (10, 6), (20, 1)])
    [order] = site.orders()
    _cancel(site, order.id)
    # Within the cooldown a new alert opens no work order, and says so.
    feed(engine_, site.vib, [(30, 6), (40, 6)])
    assert len(site.orders()) == 1
    latest = site.alerts()[-1]
    assert latest.work_order_id is None
    with site.factory() as session:
        notes = session.get(Alert, latest.id).notes  # type: ignore[union-attr]
        assert [n.action for n in notes] == ["raised", "cooldown"]
    # Without a cooldown the next raise opens a new order.
    with site.factory() as session, session.begin():
        rule = session.get(AlertRule, rule_id)
        assert rule is not None
        rule.cooldown_s = 0
    feed(engine_, site.vib, [(50, 1), (60, 6), (70, 6)])
    orders = site.orders()
    assert len(orders) == 2
    assert orders[1].status is WorkOrderStatus.OPEN
    assert site.alerts()[-1].work_order_id == orders[1].id


def test_queue_runs_batches_in_order_off_the_loop(site: Plant, engine_: AlertEngine) -> None:
    site.rule({**VIBRATION, "duration_s": 0})

    async def scenario() -> None:
        task = asyncio.create_task(engine_.run())
        for second, value in [(0, 6), (10, 11), (20, 1)]:
            engine_.on_stored(
                [ReadingRow(site.vib, ms(T0 + dt.timedelta(seconds=second)), value, 0)]
            )
        async with asyncio.timeout(10):
            await engine_.wait_idle()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert topics(site) == ["alert.raised", "alert.escalated", "alert.cleared"]


def test_app_registers_the_engine(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"run_background_jobs": True}))
    engine = app.state.alert_engine
    assert isinstance(engine, AlertEngine)
    assert engine.on_stored in app.state.iot_hub.pipeline.listeners
    names = {s.name for s in app.state.supervisor.statuses}
    assert {"alerts", "alert-stale-check"} <= names
    app.state.engine.dispose()
