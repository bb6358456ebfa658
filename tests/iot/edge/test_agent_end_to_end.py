"""An edge agent (a real subprocess) polls a pymodbus server and an asyncua server and forwards
to Mosquitto over TLS with its own account; the broker goes away, the agent is killed with -9
during the outage, and afterwards the hub has every reading the agent enqueued exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from asyncua import Server, ua
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.iot.connectors.mqtt import MqttConnector, MqttOptions
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.edge.hub_status import EdgeStatusSubscriber
from maintainpro.iot.edge_agents import EdgeAgent
from maintainpro.iot.ingest import IngestPipeline, ReadingRow
from maintainpro.iot.registers import ByteOrder, DataType, encode_registers
from maintainpro.iot.timeseries import readings_table
from mosquitto import Mosquitto, Pki, broker_config, free_port, make_pki, password_file, unique

HUB_PASSWORD = "hub-secret-1"
AGENT_PASSWORD = "gateway-secret-7"
NS_URI = "urn:maintainpro:test:edge"
# Drain pacing under test: 20 messages/s of at most 20 readings (two devices, so a fetch of 20
# rows becomes two messages): at most ~200 readings/s, against ~60/s produced live.
MAX_MESSAGES_PER_S = 20
BATCH_SIZE = 20
HOLDING_0 = {"function": "holding", "address": 0, "data_type": "float32"}
HOLDING_2 = {"function": "holding", "address": 2, "data_type": "float32"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA with a server certificate for 127.0.0.1."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    """Mosquitto with persistence, TLS, passwords and an ACL per account."""
    passwords = password_file(tmp_path / "passwd", {"hub": HUB_PASSWORD, "gw1": AGENT_PASSWORD})
    acl = tmp_path / "acl"
    acl.write_text(
        "user hub\ntopic read devices/#\ntopic read edge/+/status\n\n"
        "user gw1\ntopic write devices/#\ntopic write edge/gw1/status\n"
    )
    port = free_port()
    config = broker_config(
        f"listener {port} 127.0.0.1\ncafile {pki.ca}\ncertfile {pki.server_cert}\n"
        f"keyfile {pki.server_key}\ntls_version tlsv1.2\n",
        persistence=True,
        directory=tmp_path,
        extra=f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n",
    )
    mosquitto = Mosquitto(tmp_path, config, (port,))
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


class Plc:
    """A pymodbus TCP server with two float32 holding registers."""

    def __init__(self) -> None:
        words = [
            *encode_registers(DataType.FLOAT32, ByteOrder.ABCD, 21.5),
            *encode_registers(DataType.FLOAT32, ByteOrder.ABCD, 3.25),
        ]
        self.device = SimDevice(
            0,
            simdata=(
                [SimData(0, values=[False], datatype=SimType.BITS)],
                [SimData(0, values=[False], datatype=SimType.BITS)],
                [SimData(0, values=words, datatype=SimType.REGISTERS)],
                [SimData(0, values=[0], datatype=SimType.REGISTERS)],
            ),
        )
        self.server: ModbusTcpServer | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen on a free port."""
        self.server = ModbusTcpServer(self.device, address=("127.0.0.1", 0))
        await self.server.serve_forever(background=True)
        self.port = cast(asyncio.Server, self.server.transport).sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and its connections."""
        if self.server is not None:
            await self.server.shutdown()  # type: ignore[no-untyped-call]
            self.server = None


class Plant:
    """An asyncua server whose two variables change every 50 ms."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"opc.tcp://127.0.0.1:{self.port}/plant"
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    def node(self, name: str) -> str:
        """The NodeId of a pump variable."""
        return f"ns={self.ns};s=Pump.{name}"

    async def start(self) -> None:
        """Build the address space and listen."""
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await server.register_namespace(NS_URI)
        pump = await server.nodes.objects.add_object(ua.NodeId("Pump", ns), f"{ns}:Pump")
        temp = await pump.add_variable(ua.NodeId("Pump.Temp", ns), f"{ns}:Temp", 20.0)
        flow = await pump.add_variable(ua.NodeId("Pump.Flow", ns), f"{ns}:Flow", 1.0)
        await server.start()
        self.ns = ns
        self._server = server

        async def tick() -> None:
            step = 0
            while True:
                step += 1
                await temp.write_value(20.0 + step)
                await flow.write_value(1.0 + step)
                await asyncio.sleep(0.05)

        self._ticker = asyncio.create_task(tick())

    async def stop(self) -> None:
        """Stop ticking and serving."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            await self._server.stop()
            self._server = None


@pytest.fixture
async def peers() -> AsyncIterator[tuple[Plc, Plant]]:
    """The two field devices the agent polls."""
    plc, plant = Plc(), Plant()
    await plc.start()
    await plant.start()
    yield plc, plant
    await plc.stop()
    await plant.stop()


def _device_specs(plc: Plc, plant: Plant) -> list[dict[str, Any]]:
    return [
        {
            "key": "plc-1",
            "name": "PLC 1",
            "protocol": "modbus",
            "endpoint": f"tcp://127.0.0.1:{plc.port}",
            "settings": {
                "poll_interval_s": 0.1,
                "timeout_s": 0.5,
                "retries": 0,
                "reconnect_max_s": 0.4,
            },
            "sensors": [
                {"key": "temp", "type": "temperature", "address": HOLDING_0},
                {"key": "pressure", "type": "pressure", "address": HOLDING_2},
            ],
        },
        {
            "key": "opc-1",
            "name": "Pump",
            "protocol": "opcua",
            "endpoint": plant.url,
            "settings": {"sampling_interval_ms": 50, "publishing_interval_ms": 50},
            "sensors": [
                {"key": "temp", "type": "temperature", "address": {"node": plant.node("Temp")}},
                {"key": "flow", "type": "flow", "address": {"node": plant.node("Flow")}},
            ],
        },
    ]


def _register(factory: sessionmaker[Session], specs: list[dict[str, Any]]) -> None:
    with factory() as session, session.begin():
        for spec in specs:
            device = Device(
                key=spec["key"],
                name=spec["name"],
                protocol=Protocol(spec["protocol"]),
                endpoint=spec["endpoint"],
            )
            for sensor in spec["sensors"]:
                device.sensors.append(Sensor(key=sensor["key"], type=sensor["type"]))
            session.add(device)
        session.add(EdgeAgent(key="gw1", name="Line 1 gateway"))


def _stored(factory: sessionmaker[Session]) -> list[tuple[str, str, int]]:
    with factory() as session:
        rows = session.execute(
            select(Device.key, Sensor.key, readings_table.c.ts)
            .join(Sensor, Sensor.id == readings_table.c.sensor_id)
            .join(Device, Device.id == Sensor.device_id)
        ).all()
    return [(d, s, int(ts)) for d, s, ts in rows]


def _queue(path: Path) -> tuple[int, set[tuple[str, str, int]]]:
    """Rows waiting in the agent's queue and its journal as (device, sensor, epoch ms)."""
    if not path.exists():
        return 0, set()
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        depth = int(db.execute("SELECT count(*) FROM readings").fetchone()[0])
        journal = {(d, s, t // 1000) for d, s, t in db.execute("SELECT * FROM journal")}
    return depth, journal


async def _until(check: Callable[[], Any], what: str, limit_s: float = 20.0) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if result := await asyncio.to_thread(check):
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "maintainpro.cli.main", "edge", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


async def test_outage_and_kill_lose_nothing_and_double_nothing(
    tmp_path: Path,
    broker: Mosquitto,
    pki: Pki,
    peers: tuple[Plc, Plant],
    session_factory: sessionmaker[Session],
) -> None:
    plc, plant = peers
    specs = _device_specs(plc, plant)
    _register(session_factory, specs)
    (tmp_path / "agent-password").write_text(AGENT_PASSWORD + "\n")
    queue_path = tmp_path / "agent" / "queue.db"
    config = tmp_path / "edge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "agent": "gw1",
                "uplink": {
                    "url": f"mqtts://127.0.0.1:{broker.port}",
                    "ca_file": str(pki.ca),
                    "username": "gw1",
                    "password_file": "agent-password",
                },
                "queue": {
                    "path": "agent/queue.db",
                    "max_messages_per_s": MAX_MESSAGES_PER_S,
                    "batch_size": BATCH_SIZE,
                    "journal": True,
                },
                "status_interval_s": 0.5,
                "log_json": False,
                "devices": specs,
            }
        )
    )

    # The hub: its real MQTT subscriber and pipeline, plus the edge status subscriber.
    options = MqttOptions.from_url(
        f"mqtts://127.0.0.1:{broker.port}",
        ca_file=pki.ca,
        username="hub",
        password=HUB_PASSWORD,
        client_id=unique("hub"),
        reconnect_first_s=0.1,
        reconnect_cap_s=0.5,
    )
    pipeline = IngestPipeline(session_factory)
    arrivals: list[tuple[float, int]] = []
    first_seen: dict[int, list[int]] = {}
    seen: set[tuple[int, int]] = set()

    def on_stored(rows: Any) -> None:
        fresh = 0
        for row in cast(list[ReadingRow], rows):
            if (row.sensor_id, row.ts) not in seen:
                seen.add((row.sensor_id, row.ts))
                first_seen.setdefault(row.sensor_id, []).append(row.ts)
                fresh += 1
        arrivals.append((time.monotonic(), fresh))

    pipeline.listeners.append(on_stored)
    hub = MqttConnector(options)
    status = EdgeStatusSubscriber(options, session_factory)
    tasks = [
        asyncio.create_task(pipeline.run()),
        asyncio.create_task(hub.run(pipeline)),
        asyncio.create_task(status.run()),
    ]
    agent = None
    try:
        async with asyncio.timeout(10):
            await hub.wait_ready()

        agent = _start_agent(config, tmp_path / "agent.log")
        await _until(
            lambda: len({(d, s) for d, s, _ in _stored(session_factory)}) == 4,
            "readings of all four sensors",
        )
        await asyncio.sleep(1.5)

        # The outage: the broker goes away; the agent keeps collecting, and is killed once.
        broker.stop()
        outage_start = dt.datetime.now(dt.UTC)
        await asyncio.sleep(1.5)
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        killed_at = dt.datetime.now(dt.UTC)
        agent = _start_agent(config, tmp_path / "agent.log")
        depth_before = _queue(queue_path)[0]
        await _until(lambda: _queue(queue_path)[0] > depth_before + 50, "the restarted agent")
        await asyncio.sleep(1.0)
        backlog = _queue(queue_path)[0]
        broker.start()
        outage_end = dt.datetime.now(dt.UTC)
        back_at = time.monotonic()
        end_ms = int(outage_end.timestamp() * 1000)

        # Everything taken before the broker returned reaches the hub: the drain.
        def drained() -> bool:
            journal = _queue(queue_path)[1]
            wanted = {k for k in journal if k[2] < end_ms}
            return wanted <= set(_stored(session_factory))

        await _until(drained, "the backlog to drain", limit_s=30)
        drain_s = time.monotonic() - back_at
        drained_readings = sum(n for t, n in arrivals if back_at <= t <= back_at + drain_s)

        # Stop the devices, let the agent empty its queue, then compare.
        await plc.stop()
        await plant.stop()
        await _until(lambda: _queue(queue_path)[0] == 0, "an empty agent queue", limit_s=30)
        journal = _queue(queue_path)[1]
        stored = await _until(
            lambda: (s := _stored(session_factory)) and set(s) >= journal and s,
            "the hub to store the journal",
        )
        # Exactly once: every enqueued reading stored, nothing else, no key twice.
        assert len(stored) == len(set(stored))
        assert set(stored) == journal

        # Each sensor's readings reached the hub in time order (duplicates aside).
        for sensor, stamps in first_seen.items():
            assert stamps == sorted(stamps), f"sensor {sensor} arrived out of order"

        # No gaps: Modbus polls every 100 ms; the only longer gap is the agent's restart.
        for sensor in ("temp", "pressure"):
            stamps = sorted(t for d, s, t in stored if d == "plc-1" and s == sensor)
            gaps = [(a, b) for a, b in itertools.pairwise(stamps) if b - a > 1000]
            assert len(gaps) <= 1, gaps
            for a, b in gaps:
                assert a <= killed_at.timestamp() * 1000 <= b
        start_ms = int(outage_start.timestamp() * 1000)
        buffered = [k for k in journal if start_ms <= k[2] < end_ms]
        assert {(d, s) for d, s, _ in buffered} == {
            ("plc-1", "temp"),
            ("plc-1", "pressure"),
            ("opc-1", "temp"),
            ("opc-1", "flow"),
        }

        # The heartbeat reached the hub's EdgeAgent row.
        def reported() -> EdgeAgent | None:
            with session_factory() as session:
                row = session.scalars(select(EdgeAgent).where(EdgeAgent.key == "gw1")).one()
                return row if row.queue_depth == 0 and row.last_heartbeat_at else None

        row = await _until(reported, "a status with an empty queue")
        assert row.dropped_total == 0
        assert set(row.device_states) == {"plc-1", "opc-1"}

        figures = {
            "outage_s": round((outage_end - outage_start).total_seconds(), 1),
            "buffered_during_outage": len(buffered),
            "queue_depth_at_reconnect": backlog,
            "drain_s": round(drain_s, 2),
            "drain_readings_per_s": round(drained_readings / drain_s),
            "stored": len(stored),
        }
        print("edge figures:", json.dumps(figures))
    finally:
        if agent is not None and agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
