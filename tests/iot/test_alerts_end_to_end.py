"""From an MQTT publish to an alert and a condition-based work order, through the real broker.

Mosquitto (127.0.0.1:1883) -> MqttConnector -> IngestPipeline -> AlertEngine -> alerts, outbox
events and a work order, each test with its own topic root and client id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator

import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from paho.mqtt.client import Client
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.delivery import notification_handlers, send_due_deliveries
from maintainpro.core.events import OutboxEvent, deliver_pending
from maintainpro.core.notifications import Channel, Subscription, WebhookEndpoint
from maintainpro.core.users import Role, User
from maintainpro.core.work_orders import Origin, Priority, WorkOrder, WorkOrderStatus, WorkOrderType
from maintainpro.iot.alert_engine import AlertEngine
from maintainpro.iot.alerts import Alert, AlertRule, AlertStatus
from maintainpro.iot.connectors.mqtt import MqttConnector, MqttOptions
from maintainpro.iot.credentials import CredentialBox
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.ingest import IngestPipeline
from mosquitto import (
    LOCAL_BROKER,
    connect_publisher,
    forget_session,
    free_port,
    reading_payload,
    unique,
)
from peers import Hook, Inbox
from support import plant

pytestmark = pytest.mark.integration

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)


@pytest.fixture
def client_id() -> Iterator[str]:
    """A hub client id of this test; its session is removed from the broker afterwards."""
    name = unique("hub")
    yield name
    forget_session(name)


@pytest.fixture
def publisher() -> Iterator[Client]:
    """A device publisher on the shared broker."""
    client = connect_publisher(LOCAL_BROKER[1])
    yield client
    client.disconnect()
    client.loop_stop()


async def until(condition: Callable[[], bool], what: str, within: float = 15.0) -> None:
    """Poll until the condition holds; fail the test otherwise."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_vibration_rise_raises_escalates_opens_work_and_clears(
    session_factory: sessionmaker[Session], client_id: str, publisher: Client
) -> None:
    root = unique("e2e")
    with session_factory() as session, session.begin():
        ids = plant(session)
        device = Device(key="pump-7", name="Pump 7", protocol=Protocol.MQTT, asset_id=ids["pump"])
        device.sensors.append(Sensor(key="vib", type="vibration", unit="mm/s"))
        session.add(device)
        session.flush()
        sensor_id = device.sensors[0].id
        rule = AlertRule(
            name="Pump vibration",
            sensor_id=sensor_id,
            condition={
                "kind": "threshold",
                "direction": "above",
                "levels": [
                    {"severity": "warning", "threshold": 4.5},
                    {"severity": "critical", "threshold": 7.1},
                ],
                "clear_at": 3.5,
                "duration_s": 10,
            },
            opens_work_order=True,
            work_order_parts=[{"part_id": ids["part"], "quantity": "1"}],
        )
        session.add(rule)
        session.flush()
        rule_id = rule.id

    def alerts() -> list[Alert]:
        with session_factory() as session:
            return list(session.scalars(select(Alert).order_by(Alert.id)))

    async def send(values: list[tuple[int, float]]) -> None:
        topic = f"{root}/pump-7/sensors/vib/data"
        infos = [
            publisher.publish(topic, reading_payload(v, T0 + dt.timedelta(seconds=s)), qos=1)
            for s, v in values
        ]
        await asyncio.to_thread(lambda: [i.wait_for_publish(10) for i in infos])

    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    engine = AlertEngine(session_factory, public_url="https://cmms.example", refresh_s=0)
    pipeline.listeners.append(engine.on_stored)
    connector = MqttConnector(
        MqttOptions(
            host=LOCAL_BROKER[0],
            port=LOCAL_BROKER[1],
            client_id=client_id,
            topic_prefix=root,
            session_expiry_s=300,
        )
    )
    tasks = [
        asyncio.create_task(pipeline.run()),
        asyncio.create_task(engine.run()),
        asyncio.create_task(connector.run(pipeline)),
    ]
    try:
        async with asyncio.timeout(10):
            await connector.wait_ready()
        # Normal running, then past the warning level for longer than the rule's 10 s.
        await send([(s, 2.0) for s in range(0, 10, 2)] + [(s, 5.2) for s in range(10, 24, 2)])
        await until(lambda: len(alerts()) == 1, "the warning alert")
        # Worse: past critical for the duration.
        await send([(s, 8.4) for s in range(24, 40, 2)])
        await until(lambda: alerts()[0].severity == "critical", "the escalation")
        # Back inside the clear band (below 3.5).
        await send([(s, 2.8) for s in range(40, 46, 2)])
        await until(lambda: alerts()[0].status is AlertStatus.CLEARED, "the clear")
        await until(lambda: pipeline.stats.stored == 5 + 7 + 8 + 3, "every reading stored")
        async with asyncio.timeout(10):
            await engine.wait_idle()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    [alert] = alerts()
    assert (alert.severity, alert.escalations, alert.status) == ("critical", 1, AlertStatus.CLEARED)
    assert alert.reading_at == T0 + dt.timedelta(seconds=34)  # critical held 10 s from 24
    with session_factory() as session:
        [order] = session.scalars(select(WorkOrder)).all()
        assert (order.type, order.origin, order.asset_id) == (
            WorkOrderType.CONDITION_BASED,
            Origin.ALERT,
            ids["pump"],
        )
        assert order.origin_ref == f"rule:{rule_id}:asset:{ids['pump']}"
        assert order.status is WorkOrderStatus.OPEN
        assert order.priority is Priority.URGENT
        assert alert.work_order_id == order.id
        assert "value 5.2 > 4.5 (warning)" in order.description
        assert any("cleared" in note.body for note in order.notes)
        events = session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic.like("alert.%")).order_by(OutboxEvent.id)
        ).all()
    assert [e.topic for e in events] == ["alert.raised", "alert.escalated", "alert.cleared"]
    assert {e.payload["alert_id"] for e in events} == {alert.id}
    assert [e.payload["severity"] for e in events] == ["warning", "critical", "critical"]
    assert events[0].payload["reading_at"] == (T0 + dt.timedelta(seconds=20)).isoformat()
    assert events[0].payload["asset_id"] == ids["pump"]


async def test_the_whole_chain_delivers_one_email_and_one_signed_webhook(
    session_factory: sessionmaker[Session],
    client_id: str,
    publisher: Client,
    settings: Settings,
) -> None:
    """Through the real broker to a real SMTP server (aiosmtpd) and a real webhook receiver."""
    root = unique("e2e-notify")
    box = CredentialBox(Fernet.generate_key())
    inbox = Inbox()
    smtp_port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hook = Hook([])
    try:
        with session_factory() as session, session.begin():
            ids = plant(session)
            device = Device(
                key="pump-9", name="Pump 9", protocol=Protocol.MQTT, asset_id=ids["pump"]
            )
            device.sensors.append(Sensor(key="vib", type="vibration", unit="mm/s"))
            session.add(device)
            session.add(
                AlertRule(
                    name="Pump vibration",
                    sensor_type="vibration",
                    condition={
                        "kind": "threshold",
                        "levels": [
                            {"severity": "warning", "threshold": 4.5},
                            {"severity": "critical", "threshold": 7.1},
                        ],
                        "clear_at": 3.5,
                        "duration_s": 10,
                    },
                    opens_work_order=True,
                )
            )
            manager = User(
                username="maria",
                role=Role.MAINTENANCE_MANAGER,
                email="maria@plant.example",
                password_hash="x",
            )
            session.add(manager)
            session.flush()
            # Maria hears of new alerts by e-mail; the control room's system of every escalation.
            session.add(
                Subscription(user_id=manager.id, channel=Channel.EMAIL, topics="alert.raised")
            )
            webhook = WebhookEndpoint(
                name="control room", url=hook.url, secret=box.seal({"secret": "k3y"})
            )
            session.add(webhook)
            session.flush()
            session.add(
                Subscription(
                    channel=Channel.WEBHOOK, webhook_id=webhook.id, topics="alert.escalated"
                )
            )
        mail_settings = settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_starttls": False}
        )
        handlers = notification_handlers(session_factory)

        def relay_and_send() -> None:
            deliver_pending(session_factory, handlers)
            send_due_deliveries(session_factory, mail_settings, box=box)

        pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
        engine = AlertEngine(session_factory, refresh_s=0)
        pipeline.listeners.append(engine.on_stored)
        connector = MqttConnector(
            MqttOptions(
                host=LOCAL_BROKER[0], port=LOCAL_BROKER[1], client_id=client_id, topic_prefix=root
            )
        )
        tasks = [
            asyncio.create_task(pipeline.run()),
            asyncio.create_task(engine.run()),
            asyncio.create_task(connector.run(pipeline)),
        ]
        topic = f"{root}/pump-9/sensors/vib/data"

        async def send(values: list[tuple[int, float]]) -> None:
            infos = [
                publisher.publish(topic, reading_payload(v, T0 + dt.timedelta(seconds=s)), qos=1)
                for s, v in values
            ]
            await asyncio.to_thread(lambda: [i.wait_for_publish(10) for i in infos])

        def alert_states() -> list[tuple[str, AlertStatus]]:
            with session_factory() as session:
                return [(a.severity, a.status) for a in session.scalars(select(Alert))]

        try:
            async with asyncio.timeout(10):
                await connector.wait_ready()
            await send([(s, 2.0) for s in range(0, 10, 2)] + [(s, 5.2) for s in range(10, 24, 2)])
            await send([(s, 8.4) for s in range(24, 40, 2)])
            await until(lambda: alert_states() == [("critical", AlertStatus.ACTIVE)], "escalation")
            await send([(s, 2.8) for s in range(40, 46, 2)])
            await until(lambda: alert_states() == [("critical", AlertStatus.CLEARED)], "the clear")
            async with asyncio.timeout(10):
                await engine.wait_idle()
            for _ in range(3):  # the outbox is at-least-once: relaying again must not resend
                await asyncio.to_thread(relay_and_send)
            await until(lambda: len(inbox.messages) >= 1 and len(hook.calls) >= 1, "deliveries")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        smtp.stop()
        hook.close()

    assert len(inbox.messages) == 1, "one e-mail"
    [(recipients, message)] = inbox.messages
    assert recipients == ["maria@plant.example"]
    assert "WARNING" in message["Subject"].upper()
    assert len(hook.calls) == 1, "one webhook"
    [(headers, body)] = hook.calls
    signature = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert headers["x-maintainpro-signature"] == f"sha256={signature}"
    assert headers["x-maintainpro-event"] == "alert.escalated"
    assert json.loads(body)["data"]["severity"] == "critical"
    with session_factory() as session:
        [order] = session.scalars(select(WorkOrder)).all()
        assert order.asset_id == ids["pump"]
        assert order.status is WorkOrderStatus.OPEN
        assert any("cleared" in note.body for note in order.notes)
