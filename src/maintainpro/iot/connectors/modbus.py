"""Modbus connector: polls one device's register map over TCP (or RTU) and feeds the pipeline.

One connector per device. The device's sensors carry the register map (``Sensor.address``),
the device's settings carry unit id, poll period, timeouts and read planning. Failures are
reported HA-coordinator style: an outage is logged and sent to the sink once when it starts
and once when it ends, while the connector keeps retrying with back-off underneath.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlsplit

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient, ModbusBaseClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from maintainpro.core.db import utcnow
from maintainpro.iot.connectors.base import (
    MAX_BACKOFF_S,
    Backoff,
    ConnectorStats,
    DeviceConfig,
    ReadingSink,
    Rejected,
    SensorConfig,
)
from maintainpro.iot.readings import SensorReading
from maintainpro.iot.registers import (
    MAX_READ_COUNT,
    ByteOrder,
    DataType,
    ReadRequest,
    RegisterFunction,
    RegisterSpec,
    plan_reads,
)

__all__ = [
    "DEFAULT_PORT",
    "SOURCE",
    "DeviceUnreachable",
    "ModbusConnector",
    "ModbusEndpoint",
    "ModbusError",
    "ModbusExceptionResponse",
    "ModbusSettings",
    "RegisterMap",
    "build_register_map",
    "check_device",
    "parse_endpoint",
    "read_range",
    "register_spec",
]

log = logging.getLogger(__name__)

SOURCE: Final = "modbus"
"""The ``source`` of dead letters this connector produces."""

DEFAULT_PORT: Final = 502

# Modbus application protocol v1.1b3, section 7.
EXCEPTION_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x01: "illegal function",
        0x02: "illegal data address",
        0x03: "illegal data value",
        0x04: "server device failure",
        0x05: "acknowledge",
        0x06: "server device busy",
        0x08: "memory parity error",
        0x0A: "gateway path unavailable",
        0x0B: "gateway target device failed to respond",
    }
)

# A gateway answering these is up, but the device behind it is not: that is an outage.
_GATEWAY_CODES: Final = frozenset({0x0A, 0x0B})

_PARITIES: Final = frozenset({"N", "E", "O", "M", "S"})


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ModbusError(Exception):
    """Base of the errors this module raises while talking to a device."""


class DeviceUnreachable(ModbusError):
    """No connection, or no answer within the timeout and retries."""


class ModbusExceptionResponse(ModbusError):
    """The device answered a read with a Modbus exception (illegal address, busy, ...)."""

    def __init__(self, function: RegisterFunction, address: int, count: int, code: int) -> None:
        """Describe the failed read and the device's exception code."""
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(
            f"{function} {address}..{address + count - 1}: Modbus exception {code} ({name})"
        )
        self.function = function
        self.address = address
        self.count = count
        self.code = code


# --------------------------------------------------------------------------------------------
# Configuration: endpoint, settings, register map (pure, usable by API validation)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModbusEndpoint:
    """Where a device is: a TCP host and port, or a serial port with its line settings."""

    transport: Literal["tcp", "rtu"]
    host: str
    port: int = DEFAULT_PORT
    baudrate: int = 19200
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1

    def __str__(self) -> str:
        """The endpoint as a URL (line settings left out)."""
        if self.transport == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"tcp://{host}:{self.port}"
        return f"rtu://{self.host}"


def _int_param(name: str, text: str, low: int, high: int) -> int:
    """Parse an integer query parameter within bounds."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} {value} outside {low}..{high}")
    return value


def parse_endpoint(endpoint: str) -> ModbusEndpoint:
    """Parse ``tcp://host[:port]`` or ``rtu:///dev/ttyUSB0?baudrate=19200&parity=E``."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"endpoint {endpoint!r}: port is not a number in 0..65535") from None
        if not parts.hostname:
            raise ValueError(f"endpoint {endpoint!r}: no host (expected tcp://host:502)")
        if parts.query or parts.path not in ("", "/"):
            raise ValueError(f"endpoint {endpoint!r}: tcp endpoints take no path or parameters")
        return ModbusEndpoint("tcp", parts.hostname, port or DEFAULT_PORT)
    if parts.scheme == "rtu":
        # rtu:///dev/ttyUSB0 puts the device in the path, rtu://COM3 in the network location.
        device = parts.netloc + parts.path
        if not device:
            raise ValueError(f"endpoint {endpoint!r}: no serial port (rtu:///dev/ttyUSB0)")
        line: dict[str, Any] = {}
        for name, text in parse_qsl(parts.query, keep_blank_values=True):
            if name == "baudrate":
                line[name] = _int_param(name, text, 50, 4_000_000)
            elif name == "bytesize":
                line[name] = _int_param(name, text, 5, 8)
            elif name == "stopbits":
                line[name] = _int_param(name, text, 1, 2)
            elif name == "parity":
                if text.upper() not in _PARITIES:
                    raise ValueError(f"endpoint {endpoint!r}: parity must be N, E, O, M or S")
                line[name] = text.upper()
            else:
                raise ValueError(
                    f"endpoint {endpoint!r}: unknown parameter {name!r} "
                    "(known: baudrate, bytesize, parity, stopbits)"
                )
        return ModbusEndpoint("rtu", device, **line)
    raise ValueError(
        f"endpoint {endpoint!r}: expected tcp://host:port or rtu:///dev/serial-port?baudrate=..."
    )


def _number(
    settings: Mapping[str, Any], key: str, default: float, low: float, high: float
) -> float:
    """A finite number setting within bounds (bools refused: JSON true is not a period)."""
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"setting {key!r} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"setting {key!r} = {value} outside {low:g}..{high:g}")
    return float(value)


def _integer(settings: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    """An integer setting within bounds."""
    value = settings.get(key, default)
    if type(value) is not int:
        raise ValueError(f"setting {key!r} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"setting {key!r} = {value} outside {low}..{high}")
    return value


@dataclass(frozen=True)
class ModbusSettings:
    """A Modbus device's protocol settings (``Device.settings``), validated."""

    unit_id: int = 1
    poll_interval_s: float = 5.0
    timeout_s: float = 3.0
    retries: int = 2
    max_gap: int = 0
    max_count: int | None = None
    reconnect_max_s: float = MAX_BACKOFF_S

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> ModbusSettings:
        """Validate plain settings; unknown keys are refused so a typo is not silently ignored."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(
                f"unknown Modbus setting(s) {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(known))})"
            )
        max_count = settings.get("max_count")
        return cls(
            # 0 is broadcast on serial lines but many TCP devices answer on it; 248..255 are
            # used by TCP gateways for themselves.
            unit_id=_integer(settings, "unit_id", 1, 0, 255),
            poll_interval_s=_number(settings, "poll_interval_s", 5.0, 0.05, 86_400),
            timeout_s=_number(settings, "timeout_s", 3.0, 0.05, 60),
            retries=_integer(settings, "retries", 2, 0, 10),
            max_gap=_integer(settings, "max_gap", 0, 0, 124),
            # At least 4 so a float64 always fits into one request.
            max_count=None if max_count is None else _integer(settings, "max_count", 0, 4, 2000),
            reconnect_max_s=_number(settings, "reconnect_max_s", MAX_BACKOFF_S, 0.1, 3600),
        )


_ADDRESS_KEYS: Final = frozenset(
    {"function", "address", "data_type", "order", "scale", "offset", "bit"}
)


def _choice(key: str, value: object, allowed: Iterable[str]) -> str:
    """A string setting that must be one of ``allowed``."""
    options = tuple(allowed)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{key} {value!r} is not one of {', '.join(options)}")
    return value


def register_spec(sensor: SensorConfig) -> RegisterSpec:
    """Build a sensor's RegisterSpec from its ``address`` mapping; ValueError says what is wrong."""
    entry = sensor.address
    try:
        unknown = sorted(set(entry) - _ADDRESS_KEYS)
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(_ADDRESS_KEYS))})"
            )
        if "function" not in entry or "address" not in entry:
            raise ValueError("needs 'function' and 'address'")
        function = RegisterFunction(
            _choice("function", entry["function"], (f.value for f in RegisterFunction))
        )
        address = entry["address"]
        if type(address) is not int or not 0 <= address <= 0xFFFF:
            raise ValueError(f"address {address!r} is not an integer in 0..65535")
        bits = function in (RegisterFunction.COIL, RegisterFunction.DISCRETE)
        # Bits can only be bools; registers default to the plainest type.
        default_type = DataType.BOOL if bits else DataType.UINT16
        data_type = _choice(
            "data_type", entry.get("data_type", default_type.value), (t.value for t in DataType)
        )
        order = _choice("order", entry.get("order", "ABCD"), (o.value for o in ByteOrder))
        numbers = {}
        for key, default in (("scale", 1.0), ("offset", 0.0)):
            value = entry.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number, got {value!r}")
            numbers[key] = float(value)
        bit = entry.get("bit")
        if bit is not None and type(bit) is not int:
            raise ValueError(f"bit must be an integer in 0..15, got {bit!r}")
        return RegisterSpec(
            sensor.key,
            function,
            address,
            DataType(data_type),
            ByteOrder(order),
            numbers["scale"],
            numbers["offset"],
            bit,
        )
    except ValueError as exc:
        # RegisterSpec prefixes its own messages with its name; the sensor prefix replaces it.
        reason = str(exc).removeprefix(f"RegisterSpec {sensor.key!r}: ")
        raise ValueError(f"sensor {sensor.key!r}: {reason}") from None


@dataclass(frozen=True)
class RegisterMap:
    """A device's usable register specs, their read plan, and the entries refused (key -> why)."""

    specs: tuple[RegisterSpec, ...]
    requests: tuple[ReadRequest, ...]
    problems: Mapping[str, str] = field(default_factory=dict)


def build_register_map(
    sensors: Iterable[SensorConfig], settings: ModbusSettings = ModbusSettings()
) -> RegisterMap:
    """Validate every sensor's register entry and plan the reads of the good ones."""
    specs: list[RegisterSpec] = []
    problems: dict[str, str] = {}
    seen: set[str] = set()
    for sensor in sensors:
        if sensor.key in seen:
            problems[sensor.key] = f"sensor {sensor.key!r}: configured twice"
            continue
        seen.add(sensor.key)
        try:
            specs.append(register_spec(sensor))
        except ValueError as exc:
            problems[sensor.key] = str(exc)
    requests = plan_reads(specs, max_gap=settings.max_gap, max_count=settings.max_count)
    return RegisterMap(tuple(specs), requests, MappingProxyType(problems))


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _client(
    endpoint: ModbusEndpoint, timeout_s: float, retries: int, name: str
) -> ModbusBaseClient:
    """A pymodbus client without its own reconnect loop (the connector owns reconnecting)."""
    if endpoint.transport == "tcp":
        return AsyncModbusTcpClient(
            endpoint.host,
            port=endpoint.port,
            name=name,
            timeout=timeout_s,
            retries=retries,
            reconnect_delay=0,
        )
    try:
        return AsyncModbusSerialClient(
            endpoint.host,
            framer=FramerType.RTU,
            baudrate=endpoint.baudrate,
            bytesize=endpoint.bytesize,
            parity=endpoint.parity,
            stopbits=endpoint.stopbits,
            name=name,
            timeout=timeout_s,
            retries=retries,
            reconnect_delay=0,
        )
    except RuntimeError as exc:  # pyserial missing: pymodbus refuses to build the client
        raise DeviceUnreachable(str(exc)) from None


async def _connect(client: ModbusBaseClient, endpoint: ModbusEndpoint, timeout_s: float) -> None:
    """Open the connection or raise DeviceUnreachable."""
    # pymodbus logs the OSError itself and only returns False, so the reason here is generic.
    if not await client.connect():
        raise DeviceUnreachable(
            f"cannot connect to {endpoint} (refused, or no answer within {timeout_s:g} s)"
        )


async def _read(
    client: ModbusBaseClient, function: RegisterFunction, address: int, count: int, unit_id: int
) -> list[int]:
    """One read request; exception responses raise ModbusExceptionResponse."""
    if not client.connected:
        raise DeviceUnreachable("connection lost (closed by the device or the network)")
    response: ModbusPDU
    try:
        if function is RegisterFunction.HOLDING:
            response = await client.read_holding_registers(address, count=count, device_id=unit_id)
        elif function is RegisterFunction.INPUT:
            response = await client.read_input_registers(address, count=count, device_id=unit_id)
        elif function is RegisterFunction.COIL:
            response = await client.read_coils(address, count=count, device_id=unit_id)
        else:
            response = await client.read_discrete_inputs(address, count=count, device_id=unit_id)
    except ModbusException as exc:  # timeouts after retries, connection dropped mid-request
        raise DeviceUnreachable(f"{type(exc).__name__}: {exc}") from None
    if response.isError():
        code = int(getattr(response, "exception_code", 0))
        failure = ModbusExceptionResponse(function, address, count, code)
        if code in _GATEWAY_CODES:
            raise DeviceUnreachable(str(failure))
        raise failure
    if function in (RegisterFunction.COIL, RegisterFunction.DISCRETE):
        # Bits come back padded to whole bytes.
        return [int(bit) for bit in response.bits[:count]]
    return list(response.registers)


async def read_range(
    endpoint: ModbusEndpoint,
    function: RegisterFunction,
    address: int,
    count: int,
    *,
    unit_id: int = 1,
    timeout_s: float = 3.0,
    retries: int = 1,
) -> list[int]:
    """Read ``count`` registers (or bits, as 0/1) once, for commissioning a device."""
    limit = MAX_READ_COUNT[function]
    if not 1 <= count <= limit:
        raise ValueError(f"count {count} outside 1..{limit} for {function}")
    if address + count - 1 > 0xFFFF:
        raise ValueError(f"addresses {address}..{address + count - 1} run past 65535")
    client = _client(endpoint, timeout_s, retries, "probe")
    try:
        await _connect(client, endpoint, timeout_s)
        return await _read(client, function, address, count, unit_id)
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------


def _block_key(request: ReadRequest) -> str:
    """A read request's identity for tracking its failures across polls."""
    return f"{request.function}:{request.address}+{request.count}"


def check_device(device: DeviceConfig) -> list[str]:
    """Every problem of a Modbus device's endpoint, settings and register map (empty: fine)."""
    try:
        parse_endpoint(device.endpoint)
        settings = ModbusSettings.from_mapping(device.settings)
        return list(build_register_map(device.sensors, settings).problems.values())
    except ValueError as exc:
        return [str(exc)]


class ModbusConnector:
    """Polls one Modbus device's register map and feeds the readings to the sink.

    Configuration problems never raise (the hub builds connectors in a loop over every device):
    an unusable endpoint or settings leave ``config_error`` set and the connector reports it and
    idles; bad sensor entries land in ``register_map.problems`` and the other sensors are polled.
    """

    def __init__(self, device: DeviceConfig) -> None:
        """Validate the device's configuration and plan its reads (no I/O)."""
        self.device = device
        self.name = f"{SOURCE}:{device.key}"
        self.stats = ConnectorStats(name=self.name, protocol=SOURCE)
        self.endpoint: ModbusEndpoint | None = None
        self.settings = ModbusSettings()
        self.register_map = RegisterMap((), ())
        self.config_error: str | None = None
        try:
            self.endpoint = parse_endpoint(device.endpoint)
            self.settings = ModbusSettings.from_mapping(device.settings)
            self.register_map = build_register_map(device.sensors, self.settings)
        except ValueError as exc:
            self.config_error = f"configuration: {exc}"
        # None until the first poll: tells "first contact" apart from "recovered".
        self._reachable: bool | None = None
        self._block_errors: dict[str, str] = {}
        self._value_errors: dict[str, str] = {}

    async def run(self, sink: ReadingSink) -> None:
        """Poll forever; reconnect with back-off; report outages and recoveries once each."""
        endpoint = self.endpoint
        if endpoint is None or self.config_error is not None:
            error = self.config_error or "configuration: no endpoint"
            log.error("modbus device not polled", extra={"device": self.device.key, "error": error})
            self.stats.error(error)
            sink.connection_state(self.device.key, connected=False, error=error)
            await asyncio.Event().wait()  # a config change replaces this connector
            return
        await self._report_map_problems(sink)
        if not self.register_map.requests:
            log.warning("modbus device has nothing to poll", extra={"device": self.device.key})
            await asyncio.Event().wait()
        cap = self.settings.reconnect_max_s
        backoff = Backoff(first=min(0.5, cap), cap=cap)
        while True:
            try:
                client = _client(
                    endpoint, self.settings.timeout_s, self.settings.retries, self.name
                )
            except DeviceUnreachable as exc:
                self._went_down(sink, str(exc))
                await asyncio.sleep(backoff.next_delay())
                continue
            try:
                await _connect(client, endpoint, self.settings.timeout_s)
                await self._poll_forever(client, sink, backoff)
            except DeviceUnreachable as exc:
                self._went_down(sink, str(exc))
            except OSError as exc:  # serial port vanished, socket errors pymodbus lets through
                self._went_down(sink, f"{type(exc).__name__}: {exc}")
            finally:
                client.close()
            await asyncio.sleep(backoff.next_delay())

    async def _poll_once(self, client: ModbusBaseClient, sink: ReadingSink) -> int:
        """Read every planned block once, submit the readings; returns how many were read."""
        polled_at = utcnow()
        readings: list[SensorReading] = []
        rejected: list[Rejected] = []
        block_errors: dict[str, str] = {}
        value_errors: dict[str, str] = {}
        answered = 0  # requests that got registers back (exception responses not counted)
        for request in self.register_map.requests:
            try:
                words = await _read(
                    client, request.function, request.address, request.count, self.settings.unit_id
                )
            except ModbusExceptionResponse as exc:
                block_errors[_block_key(request)] = str(exc)
                continue
            answered += 1
            result = request.decode(words)
            readings.extend(result.readings(self.device.key, polled_at))
            for item in result.rejected:
                spec = request.specs[item.index]
                value_errors[spec.sensor_id] = item.reason
                if self._value_errors.get(spec.sensor_id) != item.reason:
                    rejected.append(
                        Rejected(
                            source=SOURCE,
                            code=item.error.code,
                            reason=item.reason,
                            payload=" ".join(map(str, words)).encode(),
                            device_key=self.device.key,
                            sensor_key=spec.sensor_id,
                            channel=_block_key(request),
                        )
                    )
        first_contact = self._reachable is None
        changed = self._came_up()
        news = self._track_block_errors(block_errors)
        if first_contact and self.register_map.problems:
            news.insert(0, "register map: " + "; ".join(self.register_map.problems.values()))
        self._track_value_errors(value_errors)
        if changed or news:
            # One call per poll: the sink keeps only a device's latest state until it writes.
            sink.connection_state(self.device.key, connected=True, error="; ".join(news) or None)
        if readings or rejected:
            await sink.submit(readings, rejected)
        if answered:
            self.stats.success(messages=answered, readings=len(readings))
        return len(readings)

    async def _poll_forever(
        self, client: ModbusBaseClient, sink: ReadingSink, backoff: Backoff
    ) -> None:
        """Poll at a fixed rate until the device stops answering (DeviceUnreachable)."""
        loop = asyncio.get_running_loop()
        period = self.settings.poll_interval_s
        next_at = loop.time()
        while True:
            await self._poll_once(client, sink)
            backoff.reset()
            next_at += period
            now = loop.time()
            if next_at < now:
                # A slow device or a long pause: skip the missed ticks instead of bursting.
                next_at += math.ceil((now - next_at) / period) * period
            await asyncio.sleep(next_at - now)

    async def _report_map_problems(self, sink: ReadingSink) -> None:
        """Log and dead-letter each refused register entry."""
        problems = self.register_map.problems
        if not problems:
            return
        for sensor_key, reason in problems.items():
            log.error(
                "modbus register map entry refused",
                extra={"device": self.device.key, "sensor": sensor_key, "error": reason},
            )
            self.stats.error(reason)
        # The device shows them with its first contact (poll_once), not here: a state sent
        # now would be overwritten by that one before the sink writes it.
        await sink.submit(
            (),
            [
                Rejected(
                    source=SOURCE,
                    code="bad_register_map",
                    reason=reason,
                    device_key=self.device.key,
                    sensor_key=sensor_key,
                )
                for sensor_key, reason in problems.items()
            ],
        )

    def _went_down(self, sink: ReadingSink, error: str) -> None:
        """Count the failure; log and report it only when the outage starts."""
        self.stats.error(error)
        self.stats.connected = False
        if self._reachable is False:
            log.debug("modbus device still unreachable", extra={"device": self.device.key})
            return
        self._reachable = False
        log.warning(
            "modbus device unreachable; retrying with back-off",
            extra={"device": self.device.key, "endpoint": str(self.endpoint), "error": error},
        )
        sink.connection_state(self.device.key, connected=False, error=error)

    def _came_up(self) -> bool:
        """Note the device answered; True on first contact and on each recovery."""
        self.stats.connected = True
        if self._reachable is True:
            return False
        if self._reachable is False:
            self.stats.reconnects += 1
            log.info("modbus device reachable again", extra={"device": self.device.key})
        self._reachable = True
        return True

    def _track_block_errors(self, current: dict[str, str]) -> list[str]:
        """Count every failed block; log a block's failure when it starts or ends.

        Returns the failures that are new since the last poll, for the device's error.
        """
        for text in current.values():
            self.stats.error(text)
        new = [text for key, text in current.items() if self._block_errors.get(key) != text]
        for text in new:
            log.warning(
                "modbus device refused a read", extra={"device": self.device.key, "error": text}
            )
        for key in self._block_errors.keys() - current.keys():
            log.info("modbus block readable again", extra={"device": self.device.key, "block": key})
        self._block_errors = current
        return new

    def _track_value_errors(self, current: dict[str, str]) -> None:
        """Count undecodable values (NaN floats...); log each sensor's fault once."""
        for sensor_key, reason in current.items():
            self.stats.error(reason)
            if self._value_errors.get(sensor_key) != reason:
                log.warning(
                    "modbus value not decodable",
                    extra={"device": self.device.key, "sensor": sensor_key, "error": reason},
                )
        self._value_errors = current
