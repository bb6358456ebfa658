"""The demo's simulated devices: believable signals, a clean seed, and live readings over all
four protocols into a real hub (embedded broker, asyncua, pymodbus, aiocoap)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker
from typer.testing import CliRunner

from maintainpro.cli.main import app
from maintainpro.config import Settings
from maintainpro.demo.devices import (
    DEVICES,
    DemoPorts,
    device_spec,
    endpoint_of,
    seed_demo_devices,
    value_at,
)
from maintainpro.demo.plant import seed_demo_plant
from maintainpro.demo.signals import FAULTY_VIBRATION
from maintainpro.demo.simulators import DemoDevices, PortInUse
from maintainpro.iot.connectors.base import DeviceConfig, SensorConfig
from maintainpro.iot.connectors.coap_client import plan_sensor
from maintainpro.iot.connectors.modbus import check_device
from maintainpro.iot.connectors.mqtt import MqttOptions
from maintainpro.iot.connectors.opcua import OpcUaOptions, parse_browse_path
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.hub import build_iot_hub
from maintainpro.iot.timeseries import readings_table
from mosquitto import MOSQUITTO, Mosquitto, broker_config, password_file

LOCAL = "127.0.0.1"
START = 1_780_000_000.0  # any epoch second; signals are pure functions of time
ISO_10816_ALERT = 4.5  # mm/s, class II machines: "unsatisfactory" from here
ISO_10816_DANGER = 7.1  # mm/s: "unacceptable"


def _free(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((LOCAL, 0))
        return int(probe.getsockname()[1])


def free_ports() -> DemoPorts:
    """Ports nobody uses right now: TCP for the servers, UDP for CoAP."""
    tcp, udp = socket.SOCK_STREAM, socket.SOCK_DGRAM
    return DemoPorts(
        host=LOCAL,
        mqtt=_free(tcp),
        opcua=_free(tcp),
        modbus=_free(tcp),
        coap=_free(udp),
        hub_coap=_free(udp),
    )


# -------------------------------------------------------------------------------------------
# Signals and the catalogue (pure)
# -------------------------------------------------------------------------------------------


def test_the_p101_bearing_fault_develops_within_five_minutes() -> None:
    device = next(d for d in DEVICES if d.asset == "P-101")
    vibration = device.sensor("vibration")
    assert vibration.signal is FAULTY_VIBRATION

    def at(second: int) -> float:
        return value_at(device, vibration, START + second, START)

    healthy = [at(s) for s in range(0, 120)]
    assert max(healthy) < ISO_10816_ALERT
    assert any(at(s) > ISO_10816_DANGER for s in range(240, 301))
    assert all(at(s) > 7.0 for s in range(300, 331))
    # A demo left running levels off inside the sensor's range instead of climbing for ever.
    late = [at(s) for s in range(3600, 7200, 7)]
    assert max(late) <= vibration.max_value
    assert min(late) > ISO_10816_DANGER


def test_every_signal_stays_inside_its_sensor_range_for_a_day() -> None:
    for device in DEVICES:
        for sensor in device.sensors:
            values = [
                value_at(device, sensor, START + second, START) for second in range(0, 86_400, 61)
            ]
            assert sensor.min_value <= min(values), (device.key, sensor.key)
            assert max(values) <= sensor.max_value, (device.key, sensor.key)


def _config(ports: DemoPorts, key: str) -> DeviceConfig:
    """The snapshot the hub would hand the device's connector."""
    spec = device_spec(next(d for d in DEVICES if d.key == key), ports)
    return DeviceConfig(
        key=spec.key,
        name=spec.name,
        protocol=spec.protocol.value,
        endpoint=spec.endpoint,
        settings=spec.settings,
        sensors=tuple(SensorConfig(s.key, s.address, s.type, s.unit) for s in spec.sensors),
        credentials={},
    )


def test_every_address_is_one_its_connector_accepts() -> None:
    ports = DemoPorts()
    assert {d.protocol for d in DEVICES} == set(Protocol)
    assert len({d.key for d in DEVICES}) == len(DEVICES)
    for device in DEVICES:
        config = _config(ports, device.key)
        if device.protocol is Protocol.MODBUS:
            assert check_device(config) == [], device.key
        elif device.protocol is Protocol.OPCUA:
            OpcUaOptions.from_device(config)
            for sensor in config.sensors:
                assert set(sensor.address) <= {"node", "browse_path"}
                if "browse_path" in sensor.address:
                    parse_browse_path(sensor.address["browse_path"])
        elif device.protocol is Protocol.COAP:
            plans = [plan_sensor(config, s) for s in config.sensors]
            # Either observed on the device, or posted to the hub (no endpoint, no plan).
            assert all(p is not None and p.observe for p in plans) or (
                all(p is None for p in plans) and config.endpoint == ""
            )
        else:
            assert config.endpoint == ""
    word_swapped = [s for d in DEVICES for s in d.sensors if s.address.get("order") == "CDAB"]
    assert len(word_swapped) == 1


# -------------------------------------------------------------------------------------------
# Seeding the registry
# -------------------------------------------------------------------------------------------


def _seed(factory: sessionmaker[Session], ports: DemoPorts) -> None:
    with factory() as session, session.begin():
        seed_demo_plant(session, "demo-password-123")
        seed_demo_devices(session, ports)


def test_seeding_twice_keeps_one_set_of_devices_on_the_new_ports(
    session_factory: sessionmaker[Session],
) -> None:
    first, second = DemoPorts(), DemoPorts(opcua=48401, modbus=15021, coap=56832)
    _seed(session_factory, first)
    _seed(session_factory, second)
    with session_factory() as session:
        devices = session.scalars(
            select(Device).options(selectinload(Device.sensors)).order_by(Device.key)
        ).all()
        assert [d.key for d in devices] == sorted(d.key for d in DEVICES)
        assert session.scalar(select(func.count(Sensor.id))) == sum(len(d.sensors) for d in DEVICES)
        by_key = {d.key: d for d in devices}
        for demo in DEVICES:
            stored = by_key[demo.key]
            assert stored.endpoint == endpoint_of(demo, second)
            assert stored.asset_id is not None
            for sensor in demo.sensors:
                row = next(s for s in stored.sensors if s.key == sensor.key)
                assert (row.unit, row.min_value, row.max_value) == (
                    sensor.unit,
                    sensor.min_value,
                    sensor.max_value,
                )
                assert row.address == dict(sensor.address)
        assert by_key["demo-ac301"].endpoint == "opc.tcp://127.0.0.1:48401/demo"
        assert by_key["demo-ch301"].endpoint == "tcp://127.0.0.1:15021"


# -------------------------------------------------------------------------------------------
# Ports
# -------------------------------------------------------------------------------------------


async def test_a_taken_tcp_port_fails_clearly_before_anything_starts() -> None:
    ports = free_ports()
    with socket.socket() as squatter:
        squatter.bind((LOCAL, ports.opcua))
        squatter.listen()
        devices = DemoDevices(ports)
        with pytest.raises(PortInUse, match=rf"port {ports.opcua}/tcp .* OPC-UA server"):
            await devices.start()
    # Nothing was left listening: the broker's port is free again at once.
    with socket.socket() as probe:
        probe.bind((LOCAL, ports.mqtt))


async def test_a_taken_udp_port_fails_clearly() -> None:
    ports = free_ports()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((LOCAL, ports.coap))
        with pytest.raises(PortInUse, match=rf"port {ports.coap}/udp .* CoAP device"):
            await DemoDevices(ports).start()


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "demo.db"
    monkeypatch.setenv("MAINTAINPRO_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.delenv("MAINTAINPRO_MQTT_URL", raising=False)
    monkeypatch.delenv("MAINTAINPRO_COAP_BIND", raising=False)
    return path


def test_the_demo_command_names_the_taken_port_and_the_option(cli_database: Path) -> None:
    ports = free_ports()
    with socket.socket() as squatter:
        squatter.bind((LOCAL, ports.modbus))
        squatter.listen()
        taken = ports.modbus
        result = CliRunner().invoke(
            app,
            [
                "demo",
                *("--port", str(_free(socket.SOCK_STREAM))),
                *("--mqtt-port", str(ports.mqtt), "--opcua-port", str(ports.opcua)),
                *("--modbus-port", str(ports.modbus), "--coap-port", str(ports.coap)),
                *("--hub-coap-port", str(ports.hub_coap)),
            ],
        )
    assert result.exit_code == 1
    assert f"port {taken}/tcp" in result.output
    assert "--modbus-port" in result.output
    # Refused before migrating or seeding anything.
    assert not cli_database.exists()


# -------------------------------------------------------------------------------------------
# Live: simulators -> hub -> sensor_readings, on SQLite and PostgreSQL
# -------------------------------------------------------------------------------------------


def _stored(factory: sessionmaker[Session]) -> list[tuple[str, str, str, float, int]]:
    """(protocol, device, sensor, value, quality) of every stored reading."""
    with factory() as session:
        rows = session.execute(
            select(
                Device.protocol,
                Device.key,
                Sensor.key,
                readings_table.c.value,
                readings_table.c.quality,
            )
            .join(Sensor, Sensor.id == readings_table.c.sensor_id)
            .join(Device, Device.id == Sensor.device_id)
        ).all()
    return [(p.value, d, s, v, q) for p, d, s, v, q in rows]


async def test_readings_flow_from_all_four_protocols_within_seconds(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    ports = free_ports()
    _seed(session_factory, ports)
    hub_settings = settings.model_copy(
        update={
            "mqtt_url": ports.mqtt_url,
            "mqtt_protocol": "3.1.1",
            "coap_bind": ports.hub_coap_bind,
        }
    )
    devices = DemoDevices(ports)
    await devices.start()
    hub = build_iot_hub(hub_settings, session_factory, None)
    task = asyncio.create_task(hub.run())
    try:
        rows = await _until_stored(
            session_factory, {(d.key, s.key) for d in DEVICES for s in d.sensors}
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await devices.stop()

    assert {protocol for protocol, *_ in rows} == {"mqtt", "opcua", "modbus", "coap"}
    limits = {(d.key, s.key): (s.min_value, s.max_value) for d in DEVICES for s in d.sensors}
    for _, device, sensor, value, quality in rows:
        low, high = limits[(device, sensor)]
        assert low <= value <= high, (device, sensor, value)
        assert quality == 0, (device, sensor)
    # The CDAB-ordered flow decodes to a believable flow, not to a word-swapped giant.
    flows = [v for _, d, s, v, _ in rows if (d, s) == ("demo-p301", "flow")]
    assert all(30 < v < 55 for v in flows)
    with session_factory() as session:
        seen = session.scalars(select(Device.last_seen_at)).all()
        assert all(moment is not None for moment in seen)


async def _until_stored(
    factory: sessionmaker[Session], wanted: set[tuple[str, str]], seconds: float = 15
) -> list[tuple[str, str, str, float, int]]:
    """Poll until every (device, sensor) in `wanted` has two readings; return all rows."""
    deadline = time.monotonic() + seconds
    while True:
        rows = await asyncio.to_thread(_stored, factory)
        counts: dict[tuple[str, str], int] = {}
        for _, device, sensor, _, _ in rows:
            counts[(device, sensor)] = counts.get((device, sensor), 0) + 1
        missing = sorted(key for key in wanted if counts.get(key, 0) < 2)
        if not missing:
            return rows
        if time.monotonic() > deadline:
            pytest.fail(f"no readings after {seconds:g} s from {missing}")
        await asyncio.sleep(0.25)


@pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="mosquitto is not installed")
async def test_with_a_broker_configured_the_transmitters_use_it_and_none_is_embedded(
    session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    ports = free_ports()
    broker_port = _free(socket.SOCK_STREAM)
    accounts = password_file(tmp_path / "passwd", {"hub": "hub-password-1"})
    broker = Mosquitto(
        tmp_path,
        broker_config(
            f"listener {broker_port} {LOCAL}",
            extra=f"allow_anonymous false\npassword_file {accounts}",
        ),
        [broker_port],
    )
    broker.start()
    _seed(session_factory, ports)
    hub_settings = settings.model_copy(
        update={
            "mqtt_url": f"mqtt://{LOCAL}:{broker_port}",
            "mqtt_username": "hub",
            "mqtt_password": SecretStr("hub-password-1"),
            "mqtt_topic_prefix": "acme/riverside",
            "coap_bind": ports.hub_coap_bind,
        }
    )
    devices = DemoDevices(ports, mqtt=MqttOptions.from_settings(hub_settings))
    assert not devices.embeds_broker
    assert "mqtt" not in {listener.name for listener in devices.listeners}
    await devices.start()
    hub = build_iot_hub(hub_settings, session_factory, None)
    task = asyncio.create_task(hub.run())
    try:
        wanted = {(d.key, s.key) for d in DEVICES if d.protocol is Protocol.MQTT for s in d.sensors}
        await _until_stored(session_factory, wanted)
        # Nothing listens on the demo's own broker port.
        with socket.socket() as probe:
            probe.bind((LOCAL, ports.mqtt))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await devices.stop()
        broker.stop()
