"""The agent in-process against Mosquitto and pymodbus: device changes without a restart,
drain pacing, the status heartbeat; the hub's status subscriber; the CLI's refusals."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from maintainpro.cli.main import app
from maintainpro.core.users import Role
from maintainpro.iot.connectors.mqtt import MqttOptions
from maintainpro.iot.edge.agent import MAX_PAYLOAD_BYTES, EdgeAgent, split_payloads
from maintainpro.iot.edge.hub_status import (
    EdgeStatusSubscriber,
    StatusReport,
    edge_agents,
    record_status,
)
from maintainpro.iot.edge.queue import DurableQueue, QueuedReading, to_us
from maintainpro.iot.edge.settings import AgentSettings
from maintainpro.iot.edge_agents import EdgeAgent as EdgeAgentRow
from maintainpro.iot.readings import SensorReading
from maintainpro.iot.registers import ByteOrder, DataType, encode_registers
from maintainpro.iot.registry import DeviceSpec
from mosquitto import Mosquitto, broker_config, free_port
from page_login import login

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """An anonymous Mosquitto of the test's own."""
    port = free_port()
    mosquitto = Mosquitto(
        tmp_path, broker_config(f"listener {port} 127.0.0.1\nallow_anonymous true\n"), (port,)
    )
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


class Observer:
    """A subscriber recording every message (topic, payload, arrival time)."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, dict[str, Any], float]] = []
        self._lock = threading.Lock()
        self.client = Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, json.loads(message.payload), time.monotonic()))

    def on(self, topic: str) -> list[dict[str, Any]]:
        """Payloads received on one topic."""
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        """Stop the client."""
        self.client.disconnect()
        self.client.loop_stop()


async def _plc() -> tuple[ModbusTcpServer, int]:
    words = list(encode_registers(DataType.FLOAT32, ByteOrder.ABCD, 21.5))
    device = SimDevice(
        0,
        simdata=(
            [SimData(0, values=[False], datatype=SimType.BITS)],
            [SimData(0, values=[False], datatype=SimType.BITS)],
            [SimData(0, values=words, datatype=SimType.REGISTERS)],
            [SimData(0, values=[0], datatype=SimType.REGISTERS)],
        ),
    )
    server = ModbusTcpServer(device, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    return server, cast(asyncio.Server, server.transport).sockets[0].getsockname()[1]


@pytest.fixture
async def plcs() -> AsyncIterator[list[int]]:
    """Two pymodbus servers; their ports."""
    servers = [await _plc(), await _plc()]
    yield [port for _, port in servers]
    for server, _ in servers:
        await server.shutdown()  # type: ignore[no-untyped-call]


def _spec(key: str, port: int, poll_s: float = 0.1) -> DeviceSpec:
    return DeviceSpec.model_validate(
        {
            "key": key,
            "name": key,
            "protocol": "modbus",
            "endpoint": f"tcp://127.0.0.1:{port}",
            "settings": {"poll_interval_s": poll_s, "timeout_s": 0.5, "retries": 0},
            "sensors": [
                {
                    "key": "temp",
                    "type": "temperature",
                    "address": {"function": "holding", "address": 0, "data_type": "float32"},
                }
            ],
        }
    )


def _settings(tmp_path: Path, port: int, **queue: Any) -> AgentSettings:
    return AgentSettings.model_validate(
        {
            "agent": "gw-test",
            "uplink": {"url": f"mqtt://127.0.0.1:{port}"},
            "queue": {"path": str(tmp_path / "queue.db"), **queue},
            "status_interval_s": 0.3,
        }
    )


async def _until(check: Any, what: str, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_apply_devices_restarts_only_what_changed(
    tmp_path: Path, broker: Mosquitto, plcs: list[int]
) -> None:
    observer = Observer(broker.port, "#")
    agent = EdgeAgent(_settings(tmp_path, broker.port))
    agent.apply_devices([_spec("plc-a", plcs[0])])
    task = asyncio.create_task(agent.run())
    try:
        await _until(lambda: observer.on("devices/plc-a/data"), "plc-a readings")
        first_a = agent._running["plc-a"].task
        # Add a device: plc-a keeps its connector, plc-b starts, the uplink stays connected.
        agent.apply_devices([_spec("plc-a", plcs[0]), _spec("plc-b", plcs[1])])
        await _until(lambda: observer.on("devices/plc-b/data"), "plc-b readings")
        assert agent._running["plc-a"].task is first_a
        # Change plc-a: only its connector restarts. Remove plc-b: its readings stop.
        agent.apply_devices([_spec("plc-a", plcs[0], poll_s=0.2)])
        await _until(lambda: "plc-b" not in agent._running, "plc-b to stop")
        assert agent._running["plc-a"].task is not first_a
        assert first_a.done()
        count_b = len(observer.on("devices/plc-b/data"))
        await asyncio.sleep(0.5)
        assert len(observer.on("devices/plc-b/data")) == count_b
        assert agent.uplink.connects == 1
        # The heartbeat: retained, with the queue and the device states.
        statuses = observer.on("edge/gw-test/status")
        assert statuses
        status = statuses[-1]
        assert status["agent"] == "gw-test"
        assert status["dropped_total"] == 0
        assert set(status["devices"]) == {"plc-a"}
        assert status["devices"]["plc-a"]["protocol"] == "modbus"
        # Readings carry their original timestamps and the hub's batch form.
        item = observer.on("devices/plc-a/data")[0]["readings"][0]
        assert item["sensor_id"] == "temp"
        assert item["value"] == 21.5
        assert item["timestamp"].endswith("Z")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        observer.close()


async def test_backlog_drains_oldest_first_at_the_configured_rate(
    tmp_path: Path, broker: Mosquitto
) -> None:
    # A backlog left by an earlier run: 600 readings of two sensors (recent: within the TTL).
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    queue = DurableQueue(tmp_path / "queue.db")
    queue.put(
        [
            SensorReading("plc-1", sensor, float(i), start + dt.timedelta(seconds=i))
            for i in range(300)
            for sensor in ("a", "b")
        ]
    )
    queue.close()
    observer = Observer(broker.port, "devices/#")
    agent = EdgeAgent(_settings(tmp_path, broker.port, max_messages_per_s=10, batch_size=20))
    task = asyncio.create_task(agent.run())
    try:
        await _until(lambda: agent.queue.depth == 0, "the drain", limit_s=15)
        messages = observer.messages
        span = messages[-1][2] - messages[0][2]
        # 30 messages at 10/s with a one-second budget: not faster than about 2 s.
        assert len(messages) == 30
        assert span >= 1.8
        values = [
            (item["sensor_id"], item["value"]) for _, p, _ in messages for item in p["readings"]
        ]
        for sensor in ("a", "b"):
            mine = [v for s, v in values if s == sensor]
            assert mine == [float(i) for i in range(300)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        observer.close()


async def test_readings_wait_in_the_queue_while_the_uplink_is_down(
    tmp_path: Path, plcs: list[int]
) -> None:
    # Nobody listens on this port: the agent keeps collecting into its queue.
    settings = _settings(tmp_path, free_port())
    agent = EdgeAgent(settings)
    agent.apply_devices([_spec("plc-a", plcs[0])])
    task = asyncio.create_task(agent.run())
    try:
        await _until(lambda: agent.queue.depth >= 5, "queued readings")
        assert agent.uplink.last_error is not None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    reopened = DurableQueue(settings.queue.path)
    assert reopened.depth >= 5
    reopened.close()


def _report(**fields: Any) -> StatusReport:
    base: dict[str, Any] = {
        "agent": "gw1",
        "at": T0,
        "queue_depth": 12,
        "oldest_unsent_at": T0 - dt.timedelta(minutes=5),
        "dropped_total": 3,
        "devices": {"plc-1": {"connected": True}, "opc-1": {"connected": False}},
    }
    return StatusReport.model_validate(base | fields)


def test_status_updates_known_agents_only(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, session.begin():
        session.add(EdgeAgentRow(key="gw1", name="Line 1"))
        session.add(EdgeAgentRow(key="gw2", name="Line 2", enabled=False))
    received = T0 + dt.timedelta(seconds=1)
    with session_factory() as session, session.begin():
        assert record_status(session, "gw1", _report(), received)
        assert not record_status(session, "gw9", _report(agent="gw9"), received)
        assert not record_status(session, "gw2", _report(agent="gw2"), received)
        # The topic names another agent than the payload.
        assert not record_status(session, "gw1", _report(agent="gw2"), received)
    with session_factory() as session, session.begin():
        # An older (retained, reordered) status and a goodbye change nothing.
        assert not record_status(
            session, "gw1", _report(at=T0 - dt.timedelta(seconds=5), queue_depth=0), received
        )
        assert not record_status(session, "gw1", _report(online=False), received)
    with session_factory() as session:
        row = session.scalars(select(EdgeAgentRow).where(EdgeAgentRow.key == "gw1")).one()
        assert row.last_heartbeat_at == T0
        assert row.queue_depth == 12
        assert row.oldest_unsent_at == T0 - dt.timedelta(minutes=5)
        assert row.dropped_total == 3
        assert row.device_states["opc-1"] == {"connected": False}
        views = edge_agents(session, now=T0 + dt.timedelta(minutes=2))
    view = next(v for v in views if v.key == "gw1")
    assert (view.heartbeat_age, view.oldest_unsent_age, view.silent) == ("2 min", "7 min", True)
    assert (view.devices_connected, view.devices_total) == (1, 2)


def test_a_clock_ahead_does_not_make_heartbeats_from_the_future(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        session.add(EdgeAgentRow(key="gw1", name="Line 1"))
        assert record_status(session, "gw1", _report(at=T0 + dt.timedelta(hours=1)), T0)
        row = session.scalars(select(EdgeAgentRow)).one()
        assert row.last_heartbeat_at == T0


def test_cli_refuses_a_bad_file(tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text("agent: gw1\nuplink: {url: 'http://hub'}\nqueue: {max_readings: 0}\n")
    result = CliRunner().invoke(app, ["edge", "--config", str(config)])
    assert result.exit_code == 1
    assert "queue.max_readings" in result.output
    config.write_text("agent: gw1\nuplink: {url: 'http://hub'}\n")
    result = CliRunner().invoke(app, ["edge", "--config", str(config)])
    assert result.exit_code == 1
    assert "mqtt:// or mqtts://" in result.output
    with contextlib.suppress(FileNotFoundError):
        (tmp_path / "missing.yaml").unlink()
    result = CliRunner().invoke(app, ["edge", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1


def test_large_batches_are_split_to_fit_the_hub_payload_limit() -> None:
    rows = [
        QueuedReading(i, "plc-1", "temp", to_us(T0) + i, float(i), "good", {"note": "x" * 500})
        for i in range(400)
    ]
    parts = split_payloads(rows)
    assert len(parts) > 1
    assert all(len(payload) <= MAX_PAYLOAD_BYTES for _, payload in parts)
    assert [r.seq for part, _ in parts for r in part] == list(range(400))


def test_pushed_devices_keep_the_secrets_of_the_local_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path, free_port())
    local = _spec("plc-a", 502).model_copy(update={"credentials": {"password": "s3cret"}})
    settings.devices = [local]
    agent = EdgeAgent(settings)
    assert agent._wanted["plc-a"].credentials == {"password": "s3cret"}
    agent.apply_devices([_spec("plc-a", 503), _spec("plc-b", 504)])
    assert agent._wanted["plc-a"].credentials == {"password": "s3cret"}
    assert agent._wanted["plc-a"].endpoint == "tcp://127.0.0.1:503"
    assert agent._wanted["plc-b"].credentials == {}
    agent.queue.close()


def test_devices_page_shows_queue_depth_age_and_heartbeat(
    client: TestClient, make_user: Any, session_factory: sessionmaker[Session]
) -> None:
    now = dt.datetime.now(dt.UTC)
    with session_factory() as session, session.begin():
        session.add(
            EdgeAgentRow(
                key="gw1",
                name="Line 1 gateway",
                last_heartbeat_at=now - dt.timedelta(seconds=20),
                queue_depth=4217,
                oldest_unsent_at=now - dt.timedelta(minutes=5, seconds=10),
                dropped_total=3,
                device_states={"plc-1": {"connected": True}, "opc-1": {"connected": False}},
            )
        )
        session.add(EdgeAgentRow(key="gw2", name="Silent one"))
    login(client, make_user, Role.TECHNICIAN)
    page = client.get("/devices")
    assert page.status_code == 200
    rows = dict(re.findall(r'<tr data-edge-agent="([^"]+)">(.*?)</tr>', page.text, re.S))
    assert "data-queue-depth>4217<" in rows["gw1"]
    assert re.search(r"data-oldest-unsent>5 min old", rows["gw1"])
    assert re.search(r"data-heartbeat><time[^>]*>[^<]*</time> \(2\d s ago\)<", rows["gw1"])
    assert "data-dropped>3<" in rows["gw1"]
    assert "1 / 2" in rows["gw1"]
    assert "data-heartbeat>never<" in rows["gw2"]


def test_messages_that_are_not_statuses_are_ignored(
    session_factory: sessionmaker[Session],
) -> None:
    subscriber = EdgeStatusSubscriber(MqttOptions(client_id="hub"), session_factory)
    assert not subscriber.handle("edge/gw1/other", b"{}")
    assert not subscriber.handle("edge/gw1/status", b"not json")
    assert not subscriber.handle("edge/gw1/status", b'{"agent": "gw1", "queue_depth": -1}')
    assert subscriber.ignored == 3
