"""The Modbus connector against a real pymodbus TCP server, storing through the real pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import pytest
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from maintainpro.iot.connectors.base import DeviceConfig, SensorConfig
from maintainpro.iot.connectors.modbus import (
    ModbusConnector,
    ModbusEndpoint,
    ModbusSettings,
    build_register_map,
    check_device,
    parse_endpoint,
)
from maintainpro.iot.devices import DeadLetter, Device, Protocol, Sensor
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.registers import ByteOrder, DataType, RegisterFunction, encode_registers
from maintainpro.iot.timeseries import readings_table

T = TypeVar("T")

FC_COILS, FC_HOLDING, FC_INPUT = 1, 3, 4
FAST = {"poll_interval_s": 0.1, "timeout_s": 0.5, "retries": 0, "reconnect_max_s": 0.4}

# The simulated PLC's map: two float32 in both word orders, a scaled int16, a counter the
# tests change, a float64 input register and a coil.
HOLDING = [
    *encode_registers(DataType.FLOAT32, ByteOrder.ABCD, 21.5),  # 0-1
    *encode_registers(DataType.FLOAT32, ByteOrder.CDAB, 63.25),  # 2-3
    *encode_registers(DataType.INT16, ByteOrder.ABCD, -123),  # 4
    1500,  # 5
]
INPUT = list(encode_registers(DataType.FLOAT64, ByteOrder.ABCD, 12345.678))  # 0-3
SENSORS: dict[str, dict[str, Any]] = {
    "temp_abcd": {"function": "holding", "address": 0, "data_type": "float32"},
    "temp_cdab": {"function": "holding", "address": 2, "data_type": "float32", "order": "CDAB"},
    "pressure": {"function": "holding", "address": 4, "data_type": "int16", "scale": 0.1},
    "speed": {"function": "holding", "address": 5, "scale": 0.5, "offset": 10},
    "energy": {"function": "input", "address": 0, "data_type": "float64"},
    "running": {"function": "coil", "address": 0},
}
EXPECTED = {
    "temp_abcd": 21.5,
    "temp_cdab": 63.25,
    "pressure": -12.3,
    "speed": 760.0,
    "energy": 12345.678,
    "running": 1.0,
}


class SimulatedPlc:
    """A pymodbus TCP server on a free local port that records every request it receives."""

    def __init__(self) -> None:
        self.device = SimDevice(
            0,
            simdata=(
                [SimData(0, values=[True, False], datatype=SimType.BITS)],
                [SimData(0, values=[False], datatype=SimType.BITS)],
                [SimData(0, values=HOLDING, datatype=SimType.REGISTERS)],
                [SimData(0, values=INPUT, datatype=SimType.REGISTERS)],
            ),
        )
        self.requests: list[tuple[int, int, int]] = []
        self.port = 0
        self.server: ModbusTcpServer | None = None

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.requests.append((pdu.function_code, pdu.address, pdu.count))
        return pdu

    async def start(self) -> None:
        """Listen (again) on the same port; the registers start from the initial map."""
        self.server = ModbusTcpServer(
            self.device, address=("127.0.0.1", self.port), trace_pdu=self._trace
        )
        await self.server.serve_forever(background=True)
        self.port = cast(asyncio.Server, self.server.transport).sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every client connection."""
        if self.server is not None:
            await self.server.shutdown()  # type: ignore[no-untyped-call]
            self.server = None

    async def write_holding(self, address: int, words: Sequence[int]) -> None:
        """Change registers as the process would."""
        assert self.server is not None
        await self.server.async_setValues(1, FC_HOLDING, address, list(words))


@pytest.fixture
async def plc() -> AsyncIterator[SimulatedPlc]:
    simulated = SimulatedPlc()
    await simulated.start()
    yield simulated
    await simulated.stop()


def _register(
    factory: sessionmaker[Session],
    port: int,
    sensors: dict[str, dict[str, Any]],
    settings: dict[str, Any] | None = None,
    endpoint: str | None = None,
) -> DeviceConfig:
    """Register the device and its sensors, return the snapshot the connector gets."""
    with factory() as session, session.begin():
        device = Device(
            key="plc-1",
            name="PLC 1",
            protocol=Protocol.MODBUS,
            endpoint=endpoint or f"tcp://127.0.0.1:{port}",
            settings={**FAST, **(settings or {})},
        )
        for key, address in sensors.items():
            device.sensors.append(Sensor(key=key, type="process", address=address))
        session.add(device)
    with factory() as session:
        device = session.scalars(
            select(Device).options(selectinload(Device.sensors)).where(Device.key == "plc-1")
        ).one()
        return DeviceConfig(
            key=device.key,
            name=device.name,
            protocol=device.protocol.value,
            endpoint=device.endpoint,
            settings=dict(device.settings),
            sensors=tuple(SensorConfig(s.key, dict(s.address), s.type) for s in device.sensors),
            credentials={},
        )


@contextlib.asynccontextmanager
async def _running(connector: ModbusConnector, pipeline: IngestPipeline) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(connector.run(pipeline))]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _eventually(check: Callable[[], T | None], what: str) -> T:
    """Wait up to 10 s until ``check`` (run in a thread: it may query the database) is true."""
    for _ in range(200):
        if result := await asyncio.to_thread(check):
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _stored(factory: sessionmaker[Session]) -> dict[str, list[tuple[int, float]]]:
    """Every stored (epoch ms, value) per sensor key, oldest first."""
    with factory() as session:
        rows = session.execute(
            select(Sensor.key, readings_table.c.ts, readings_table.c.value)
            .join(Sensor, Sensor.id == readings_table.c.sensor_id)
            .order_by(readings_table.c.ts)
        ).all()
    result: dict[str, list[tuple[int, float]]] = {}
    for key, ts, value in rows:
        result.setdefault(key, []).append((ts, value))
    return result


def _device(factory: sessionmaker[Session]) -> Device:
    with factory() as session:
        return session.scalars(select(Device).where(Device.key == "plc-1")).one()


def _device_if(
    factory: sessionmaker[Session], condition: Callable[[Device], object]
) -> Device | None:
    device = _device(factory)
    return device if condition(device) else None


def _latest(factory: sessionmaker[Session], keys: Iterable[str]) -> dict[str, float] | None:
    stored = _stored(factory)
    if not all(stored.get(key) for key in keys):
        return None
    return {key: stored[key][-1][1] for key in keys}


# --------------------------------------------------------------------------------------------
# Configuration (pure)
# --------------------------------------------------------------------------------------------


def test_endpoints() -> None:
    assert parse_endpoint("tcp://10.0.0.5") == ModbusEndpoint("tcp", "10.0.0.5", 502)
    assert parse_endpoint("tcp://[::1]:1502").port == 1502
    assert str(parse_endpoint("tcp://[::1]:1502")) == "tcp://[::1]:1502"
    rtu = parse_endpoint("rtu:///dev/ttyUSB0?baudrate=9600&parity=e&stopbits=2")
    assert rtu == ModbusEndpoint("rtu", "/dev/ttyUSB0", baudrate=9600, parity="E", stopbits=2)
    assert parse_endpoint("rtu://COM3").host == "COM3"
    for bad, message in [
        ("tcp://:502", "no host"),
        ("tcp://plc:99999", "port"),
        ("tcp://plc/x?unit=2", "no path or parameters"),
        ("rtu:///dev/ttyS0?baud=9600", "unknown parameter 'baud'"),
        ("rtu:///dev/ttyS0?parity=X", "parity"),
        ("rtu://", "no serial port"),
        ("udp://plc:502", "expected tcp://"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_endpoint(bad)


def test_settings() -> None:
    assert ModbusSettings.from_mapping({}) == ModbusSettings()
    settings = ModbusSettings.from_mapping({"unit_id": 7, "poll_interval_s": 2, "max_gap": 3})
    assert (settings.unit_id, settings.poll_interval_s, settings.max_gap) == (7, 2.0, 3)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"poll_period": 1}, "unknown Modbus setting.*'poll_period'"),
        ({"unit_id": 300}, "'unit_id' = 300 outside 0..255"),
        ({"unit_id": True}, "'unit_id' must be an integer"),
        ({"timeout_s": "3"}, "'timeout_s' must be a number"),
        ({"poll_interval_s": 0}, "outside"),
        ({"max_count": 2}, "'max_count' = 2 outside 4..2000"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            ModbusSettings.from_mapping(bad)


def test_register_map_refuses_bad_entries_clearly_and_plans_the_rest() -> None:
    sensors = [SensorConfig(key, address) for key, address in SENSORS.items()]
    bad: dict[str, dict[str, Any]] = {
        "no_function": {"address": 3},
        "typo_type": {"function": "holding", "address": 9, "data_type": "float"},
        "bits_as_int": {"function": "coil", "address": 1, "data_type": "int16"},
        "far": {"function": "holding", "address": 70000},
        "float_address": {"function": "holding", "address": 1.0},
        "extra": {"function": "holding", "address": 1, "scal": 2},
        "bad_scale": {"function": "holding", "address": 1, "scale": "x"},
        "late_float": {"function": "input", "address": 65535, "data_type": "float32"},
    }
    sensors += [SensorConfig(key, address) for key, address in bad.items()]
    sensors.append(SensorConfig("speed", {"function": "holding", "address": 9}))
    register_map = build_register_map(sensors)
    assert {spec.sensor_id for spec in register_map.specs} == set(SENSORS)
    assert set(register_map.problems) == {*bad, "speed"}
    problems = register_map.problems
    assert problems["no_function"] == "sensor 'no_function': needs 'function' and 'address'"
    assert "data_type 'float' is not one of int16, uint16" in problems["typo_type"]
    assert (
        problems["bits_as_int"]
        == "sensor 'bits_as_int': coil values are bits; data_type must be bool"
    )
    assert "address 70000 is not an integer in 0..65535" in problems["far"]
    assert "address 1.0 is not an integer" in problems["float_address"]
    assert "unknown key(s) 'scal'" in problems["extra"]
    assert "scale must be a number" in problems["bad_scale"]
    assert "runs past address 65535" in problems["late_float"]
    assert "configured twice" in problems["speed"]
    # Adjacent registers share one request per function.
    plan = {(r.function, r.address, r.count) for r in register_map.requests}
    assert plan == {
        (RegisterFunction.HOLDING, 0, 6),
        (RegisterFunction.INPUT, 0, 4),
        (RegisterFunction.COIL, 0, 1),
    }
    gapped = [*sensors[:2], SensorConfig("far_reg", {"function": "holding", "address": 10})]
    assert len(build_register_map(gapped).requests) == 2
    assert len(build_register_map(gapped, ModbusSettings(max_gap=6)).requests) == 1


def test_check_device_lists_every_problem() -> None:
    def config(endpoint: str, settings: dict[str, Any]) -> DeviceConfig:
        sensors = (SensorConfig("a", {"function": "coil", "address": -1}),)
        return DeviceConfig("d", "D", "modbus", endpoint, settings, sensors, {})

    assert check_device(config("tcp://plc", {})) == [
        "sensor 'a': address -1 is not an integer in 0..65535"
    ]
    assert check_device(config("plc:502", {})) == [
        "endpoint 'plc:502': expected tcp://host:port or rtu:///dev/serial-port?baudrate=..."
    ]
    assert "unknown Modbus setting" in check_device(config("tcp://plc", {"unit": 1}))[0]


# --------------------------------------------------------------------------------------------
# Against a real server, through the real pipeline (SQLite and PostgreSQL)
# --------------------------------------------------------------------------------------------


async def test_polls_engineering_values_one_request_per_block(
    session_factory: sessionmaker[Session], plc: SimulatedPlc
) -> None:
    config = _register(session_factory, plc.port, SENSORS)
    connector = ModbusConnector(config)
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    async with _running(connector, pipeline):
        latest = await _eventually(lambda: _latest(session_factory, SENSORS), "first readings")
        assert latest == pytest.approx(EXPECTED)
        # The process changes: the next polls store the new values.
        await plc.write_holding(5, [1750])
        await plc.write_holding(0, encode_registers(DataType.FLOAT32, ByteOrder.ABCD, -4.75))
        await _eventually(
            lambda: (_latest(session_factory, SENSORS) or {}).get("speed") == 885.0, "new speed"
        )
        assert (_latest(session_factory, SENSORS) or {})["temp_abcd"] == -4.75

    stored = _stored(session_factory)
    # Every sensor of a poll carries that poll's time; polls are ~100 ms apart.
    stamps = [{ts for ts, _ in stored[key]} for key in SENSORS]
    assert all(s == stamps[0] for s in stamps)
    assert len(stamps[0]) >= 2
    # One request per data table and poll: 6 holding registers, 4 input registers, 1 coil.
    assert set(plc.requests) == {(FC_HOLDING, 0, 6), (FC_INPUT, 0, 4), (FC_COILS, 0, 1)}
    polls = plc.requests.count((FC_HOLDING, 0, 6))
    assert plc.requests.count((FC_INPUT, 0, 4)) == plc.requests.count((FC_COILS, 0, 1)) == polls
    device = _device(session_factory)
    assert device.connected
    assert device.last_error is None
    assert device.last_seen_at is not None
    assert device.last_seen_at.tzinfo is not None
    assert abs(device.last_seen_at - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)
    assert connector.stats.connected
    assert connector.stats.errors == 0
    assert connector.stats.messages >= 3 * polls - 3
    assert connector.stats.readings >= len(SENSORS)


async def test_device_side_errors_spare_the_other_values(
    session_factory: sessionmaker[Session], plc: SimulatedPlc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="maintainpro.iot.connectors.modbus")
    sensors = {**SENSORS, "ghost": {"function": "holding", "address": 40}}
    connector = ModbusConnector(_register(session_factory, plc.port, sensors))
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    async with _running(connector, pipeline):
        await _eventually(lambda: _latest(session_factory, SENSORS), "readings")
        device = await _eventually(
            lambda: _device_if(session_factory, lambda d: d.last_error), "device error"
        )
        # The transmitter fails: its float turns NaN (a common device-side fault signal).
        await plc.write_holding(0, [0x7FC0, 0x0000, *HOLDING[2:5], 1234])
        await _eventually(
            lambda: (_latest(session_factory, SENSORS) or {}).get("speed") == 627.0, "new speed"
        )
        await _eventually(lambda: connector.stats.errors >= 6, "several failed polls")
    # The illegal address is on the device; the other blocks are still read.
    assert device.last_error == "holding 40..40: Modbus exception 2 (illegal data address)"
    assert device.connected
    assert "ghost" not in _stored(session_factory)
    assert (FC_HOLDING, 40, 1) in plc.requests
    # The NaN is dead-lettered once for the fault, not at every poll; its neighbours are stored.
    with session_factory() as session:
        letters = session.scalars(select(DeadLetter)).all()
    assert [(d.source, d.code, d.sensor_key) for d in letters] == [
        ("modbus", "non_finite_value", "temp_abcd")
    ]
    assert letters[0].channel == "holding:0+6"
    assert letters[0].payload == b"32704 0 0 17021 65413 1234"
    assert _stored(session_factory)["temp_cdab"][-1][1] == 63.25
    # Both problems logged once each although they repeat at every poll.
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("modbus device refused a read") == 1
    assert messages.count("modbus value not decodable") == 1


async def test_outage_is_reported_once_and_readings_resume(
    session_factory: sessionmaker[Session], plc: SimulatedPlc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="maintainpro.iot.connectors.modbus")
    connector = ModbusConnector(_register(session_factory, plc.port, SENSORS))
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    async with _running(connector, pipeline):
        await _eventually(lambda: _latest(session_factory, SENSORS), "readings before")
        await plc.stop()
        down = await _eventually(
            lambda: _device_if(session_factory, lambda d: d.last_error and not d.connected),
            "device shown disconnected",
        )
        # Several reconnect attempts fail during the outage...
        await _eventually(lambda: connector.stats.errors >= 3, "failed reconnects")
        assert not connector.stats.connected
        before = len(_stored(session_factory)["speed"])
        await plc.start()  # same port, registers back to the initial map
        await plc.write_holding(5, [2000])
        await _eventually(
            lambda: (_latest(session_factory, SENSORS) or {}).get("speed") == 1010.0,
            "readings after the outage",
        )
        up = await _eventually(lambda: _device_if(session_factory, lambda d: d.connected), "up")
    assert down.last_error is not None
    assert down.last_error_at is not None
    assert down.status_at(dt.datetime.now(dt.UTC)).value == "error"
    assert len(_stored(session_factory)["speed"]) > before
    assert up.last_seen_at is not None
    assert up.last_seen_at > down.last_error_at
    assert connector.stats.reconnects == 1
    messages = [r.getMessage() for r in caplog.records]
    # ...but the outage and the recovery are logged once each.
    assert messages.count("modbus device unreachable; retrying with back-off") == 1
    assert messages.count("modbus device reachable again") == 1


async def test_wrong_port_is_reported_on_the_device(
    session_factory: sessionmaker[Session], plc: SimulatedPlc
) -> None:
    await plc.stop()  # nothing listens on that port now
    connector = ModbusConnector(_register(session_factory, plc.port, SENSORS))
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    async with _running(connector, pipeline):
        device = await _eventually(
            lambda: _device_if(session_factory, lambda d: d.last_error), "device error"
        )
    assert (
        device.last_error
        == f"cannot connect to tcp://127.0.0.1:{plc.port} (refused, or no answer within 0.5 s)"
    )
    assert not device.connected
    assert _stored(session_factory) == {}


async def test_bad_entries_are_dead_lettered_and_shown_while_good_ones_are_read(
    session_factory: sessionmaker[Session], plc: SimulatedPlc
) -> None:
    sensors = {
        "temp_abcd": SENSORS["temp_abcd"],
        "typo": {"function": "holding", "address": 2, "data_type": "float"},
        "bits_as_int": {"function": "coil", "address": 0, "data_type": "int16"},
    }
    connector = ModbusConnector(_register(session_factory, plc.port, sensors))
    assert set(connector.register_map.problems) == {"typo", "bits_as_int"}
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    async with _running(connector, pipeline):
        await _eventually(lambda: _latest(session_factory, ["temp_abcd"]), "good readings")
        device = await _eventually(
            lambda: _device_if(session_factory, lambda d: d.last_error), "device error"
        )
    assert device.last_error is not None
    assert device.last_error.startswith("register map: sensor 'typo': data_type 'float'")
    assert "sensor 'bits_as_int': coil values are bits" in device.last_error
    with session_factory() as session:
        letters = session.scalars(select(DeadLetter).order_by(DeadLetter.sensor_key)).all()
    assert [(d.source, d.code, d.device_key, d.sensor_key) for d in letters] == [
        ("modbus", "bad_register_map", "plc-1", "bits_as_int"),
        ("modbus", "bad_register_map", "plc-1", "typo"),
    ]
    assert set(_stored(session_factory)) == {"temp_abcd"}


async def test_unusable_configuration_is_reported_not_raised(
    session_factory: sessionmaker[Session],
) -> None:
    config = _register(session_factory, 0, SENSORS, settings={"unit": 3}, endpoint="plc:502")
    connector = ModbusConnector(config)  # the hub builds connectors in a loop: must not raise
    assert connector.config_error is not None
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    async with _running(connector, pipeline):
        device = await _eventually(
            lambda: _device_if(session_factory, lambda d: d.last_error), "device error"
        )
    assert device.last_error == (
        "configuration: endpoint 'plc:502': expected tcp://host:port or "
        "rtu:///dev/serial-port?baudrate=..."
    )
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(readings_table)) == 0
