"""Simulated field devices for the demo, on all four protocols, driven by demo/signals.py.

``DemoDevices`` starts them together and stops them together:

* an embedded MQTT broker (amqtt), unless the hub has a broker of its own, and one MQTT client
  per condition-monitoring transmitter publishing JSON readings at QoS 1;
* an OPC-UA server (asyncua) with the compressors' variables;
* a Modbus TCP server (pymodbus) with the chiller (unit 1) and its pump (unit 2) as float32
  holding registers;
* a CoAP device (aiocoap) with observable boiler resources, and a humidity transmitter that
  POSTs to the hub's own CoAP server.

Every value is a pure function of time (``value_at``), refreshed once a second on the second,
with aware UTC timestamps. Protocol libraries are imported when a simulator starts.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol
from urllib.parse import quote

from maintainpro.demo.devices import (
    OPCUA_NAMESPACE,
    OPCUA_NS,
    DemoDevice,
    DemoPorts,
    DemoSensor,
    devices_of,
    value_at,
)
from maintainpro.iot.connectors.base import Backoff
from maintainpro.iot.devices import Protocol as Wire

if TYPE_CHECKING:
    from maintainpro.iot.connectors.mqtt import MqttOptions

__all__ = ["DemoDevices", "DemoDevicesError", "Listener", "PortInUse", "ensure_free"]

log = logging.getLogger(__name__)

# A request the hub does not answer within this long is given up; the next tick sends anew.
REQUEST_TIMEOUT_S: Final = 5.0
# The CoAP resources' Max-Age: the hub re-registers its observation after this plus a grace.
COAP_MAX_AGE_S: Final = 5
CONTENT_JSON: Final = 50
FC_HOLDING: Final = 3


class DemoDevicesError(RuntimeError):
    """The simulated devices cannot start."""


class PortInUse(DemoDevicesError):
    """A port a simulator needs is taken by another program."""

    def __init__(self, listener: Listener, host: str, error: OSError) -> None:
        """Say which port, for what, and why it cannot be used."""
        super().__init__(
            f"port {listener.port}/{listener.transport} on {host} is not available for the "
            f"{listener.what} ({error.strerror or error})"
        )
        self.listener = listener
        self.host = host


@dataclass(frozen=True)
class Listener:
    """A port something listens on: its DemoPorts field, what it is for, TCP or UDP."""

    name: str
    what: str
    transport: Literal["tcp", "udp"]
    port: int


def ensure_free(host: str, listeners: Sequence[Listener]) -> None:
    """Raise PortInUse for the first listener whose port cannot be bound right now."""
    for listener in listeners:
        kind = socket.SOCK_STREAM if listener.transport == "tcp" else socket.SOCK_DGRAM
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, kind) as probe:
            if listener.transport == "tcp":
                # As the servers do, so a port in TIME_WAIT after a restart counts as free.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # No SO_REUSEPORT on UDP: aiocoap sets it, and without this probe a second demo
            # would silently share the port with the first and get half of its datagrams.
            try:
                probe.bind((host, listener.port))
            except OSError as exc:
                raise PortInUse(listener, host, exc) from None


def _reading(device: DemoDevice, sensor: DemoSensor, moment: dt.datetime, start: float) -> float:
    return value_at(device, sensor, moment.timestamp(), start)


def _payload(value: float, moment: dt.datetime) -> bytes:
    return json.dumps({"value": value, "timestamp": moment.isoformat()}).encode()


async def _every(
    interval_s: float,
    step: Callable[[dt.datetime], Awaitable[None]],
    name: str,
    quiet_s: float = 0.0,
) -> None:
    """Call step(moment) on every multiple of interval_s (epoch time); log failures once.

    Failures in the first `quiet_s` seconds are not logged: a device that talks to the hub
    may start before the hub listens.
    """
    failing = False
    quiet_until = time.monotonic() + quiet_s
    while True:
        now = time.time()
        due = (math.floor(now / interval_s) + 1) * interval_s
        await asyncio.sleep(due - now)
        try:
            await step(dt.datetime.fromtimestamp(due, dt.UTC))
        except Exception as exc:  # noqa: BLE001 - a simulator keeps ticking whatever happens
            if time.monotonic() < quiet_until:
                continue
            if not failing:
                log.warning("demo device failed", extra={"device": name, "error": repr(exc)})
            failing = True
        else:
            if failing:
                log.info("demo device recovered", extra={"device": name})
            failing = False


class _Ticking(abc.ABC):
    """A simulator with one task refreshing its values every interval."""

    name = "simulator"
    # Seconds after start during which failures are expected and not logged.
    quiet_s = 0.0

    def __init__(self, interval_s: float, started_at: float) -> None:
        self.interval_s = interval_s
        self.started_at = started_at
        self._task: asyncio.Task[None] | None = None

    def _start_ticking(self) -> None:
        self._task = asyncio.create_task(
            _every(self.interval_s, self.tick, self.name, self.quiet_s), name=f"demo:{self.name}"
        )

    async def _stop_ticking(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @abc.abstractmethod
    async def tick(self, moment: dt.datetime) -> None:
        """Refresh or send the values for this instant."""


# --------------------------------------------------------------------------------------------
# MQTT: transmitters publishing to the broker
# --------------------------------------------------------------------------------------------


class MqttTransmitter(_Ticking):
    """One transmitter: its own MQTT client publishing each sensor's reading at QoS 1."""

    def __init__(
        self,
        device: DemoDevice,
        url: str,
        *,
        topic_root: str = "devices",
        ca_file: str | None = None,
        interval_s: float,
        started_at: float,
    ) -> None:
        super().__init__(interval_s, started_at)
        self.device = device
        self.name = f"mqtt:{device.key}"
        self.url = url
        self.topic_root = topic_root
        self.ca_file = ca_file
        self._client: Any = None
        self._backoff = Backoff(first=1.0, cap=10.0)
        self._retry_at = 0.0

    async def start(self) -> None:
        """Start publishing (connecting on the first tick, so the broker may come later)."""
        self._start_ticking()

    async def stop(self) -> None:
        """Stop publishing and disconnect."""
        await self._stop_ticking()
        await self._disconnect()

    async def _connect(self) -> Any:
        from amqtt.client import MQTTClient

        # Reconnecting is ours (with back-off); amqtt's own gives up after a few tries.
        client = MQTTClient(client_id=self.device.key, config={"auto_reconnect": False})
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                await client.connect(self.url, cafile=self.ca_file)
        except BaseException:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise
        return client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    await client.disconnect()

    async def tick(self, moment: dt.datetime) -> None:
        """Publish one reading per sensor; reconnect with back-off when the broker is away."""
        from amqtt.mqtt.constants import QOS_1

        if self._client is None:
            if time.monotonic() < self._retry_at:
                return
            try:
                self._client = await self._connect()
            except Exception:
                self._retry_at = time.monotonic() + self._backoff.next_delay()
                raise
            self._backoff.reset()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                for sensor in self.device.sensors:
                    value = _reading(self.device, sensor, moment, self.started_at)
                    topic = f"{self.topic_root}/{self.device.key}/sensors/{sensor.key}/data"
                    await self._client.publish(topic, _payload(value, moment), qos=QOS_1)
        except Exception:
            await self._disconnect()
            raise


# --------------------------------------------------------------------------------------------
# OPC-UA: the compressors' controller
# --------------------------------------------------------------------------------------------


def opcua_variable(sensor: DemoSensor) -> str:
    """The variable's name, taken from the sensor's NodeId or browse path in the catalogue."""
    node = sensor.address.get("node")
    if isinstance(node, str):
        return node.rsplit(".", 1)[1]
    return str(sensor.address["browse_path"]).rsplit(":", 1)[1]


class OpcUaServer(_Ticking):
    """An asyncua server with one object per compressor and a Double variable per sensor."""

    name = "opcua"

    def __init__(
        self, devices: Sequence[DemoDevice], url: str, *, interval_s: float, started_at: float
    ) -> None:
        super().__init__(interval_s, started_at)
        self.devices = tuple(devices)
        self.url = url
        self._server: Any = None
        self._nodes: dict[tuple[str, str], Any] = {}

    async def start(self) -> None:
        """Build the address space and listen."""
        from asyncua import ua
        from asyncua.server.server import Server

        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("MaintAInPro demo compressor controller")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await server.register_namespace(OPCUA_NAMESPACE)
        if ns != OPCUA_NS:
            raise RuntimeError(
                f"the demo namespace got index {ns}, the catalogue expects {OPCUA_NS}"
            )
        now = dt.datetime.now(dt.UTC)
        for device in self.devices:
            folder = await server.nodes.objects.add_object(
                ua.NodeId(ua.String(device.asset), ua.Int16(ns)), ua.QualifiedName(device.asset, ns)
            )
            for sensor in device.sensors:
                name = opcua_variable(sensor)
                variable = await folder.add_variable(
                    ua.NodeId(ua.String(f"{device.asset}.{name}"), ua.Int16(ns)),
                    ua.QualifiedName(name, ns),
                    ua.Variant(
                        _reading(device, sensor, now, self.started_at), ua.VariantType.Double
                    ),
                )
                self._nodes[(device.key, sensor.key)] = variable
        await server.start()
        self._server = server
        self._start_ticking()

    async def stop(self) -> None:
        """Stop updating and close every session."""
        await self._stop_ticking()
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def tick(self, moment: dt.datetime) -> None:
        """Write every variable with the instant as its source timestamp."""
        from asyncua import ua

        stamp = ua.DateTime.fromtimestamp(moment.timestamp(), dt.UTC)
        for device in self.devices:
            for sensor in device.sensors:
                value = _reading(device, sensor, moment, self.started_at)
                await self._nodes[(device.key, sensor.key)].write_value(
                    ua.DataValue(
                        ua.Variant(value, ua.VariantType.Double),
                        SourceTimestamp=stamp,
                        ServerTimestamp=stamp,
                    )
                )


# --------------------------------------------------------------------------------------------
# Modbus: the chiller and its pump behind one TCP server
# --------------------------------------------------------------------------------------------


def _unit(device: DemoDevice) -> int:
    return int(device.settings.get("unit_id", 1))


class ModbusServer(_Ticking):
    """A pymodbus TCP server, one unit id per device, values as float32 holding registers."""

    name = "modbus"

    def __init__(
        self,
        devices: Sequence[DemoDevice],
        address: tuple[str, int],
        *,
        interval_s: float,
        started_at: float,
    ) -> None:
        super().__init__(interval_s, started_at)
        self.devices = tuple(devices)
        self.address = address
        self._server: Any = None

    async def start(self) -> None:
        """Lay out the registers and listen."""
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType as SimType
        from pymodbus.simulator import SimData, SimDevice

        units = []
        for device in self.devices:
            size = max(int(s.address["address"]) + 2 for s in device.sensors)
            units.append(
                SimDevice(
                    _unit(device),
                    simdata=[SimData(0, values=[0] * size, datatype=SimType.REGISTERS)],
                )
            )
        server = ModbusTcpServer(units, address=self.address)
        # Values are in place before the first poll can arrive.
        self._server = server
        await self.tick(dt.datetime.now(dt.UTC))
        await server.serve_forever(background=True)
        self._start_ticking()

    async def stop(self) -> None:
        """Close the listener and every client connection."""
        await self._stop_ticking()
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()

    async def tick(self, moment: dt.datetime) -> None:
        """Encode every value into its registers in the sensor's word order."""
        from maintainpro.iot.registers import ByteOrder, DataType, encode_registers

        for device in self.devices:
            for sensor in device.sensors:
                value = _reading(device, sensor, moment, self.started_at)
                words = encode_registers(
                    DataType(sensor.address["data_type"]),
                    ByteOrder(sensor.address.get("order", "ABCD")),
                    value,
                )
                await self._server.async_setValues(
                    _unit(device), FC_HOLDING, int(sensor.address["address"]), list(words)
                )


# --------------------------------------------------------------------------------------------
# CoAP: the boiler gateway (observed by the hub) and a transmitter posting to the hub
# --------------------------------------------------------------------------------------------


def _observable_reading() -> Any:
    import aiocoap
    import aiocoap.resource

    class ObservableReading(aiocoap.resource.ObservableResource):  # type: ignore[misc]
        """One sensor's latest reading as JSON; observers are notified of every change."""

        def __init__(self) -> None:
            super().__init__()
            self.payload = b""

        def set(self, payload: bytes) -> None:
            self.payload = payload
            self.updated_state()

        async def render_get(self, request: Any) -> Any:
            return aiocoap.Message(
                payload=self.payload, content_format=CONTENT_JSON, max_age=COAP_MAX_AGE_S
            )

    return ObservableReading


class CoapDevice(_Ticking):
    """An aiocoap server with an observable resource per sensor of one device."""

    def __init__(
        self,
        device: DemoDevice,
        bind: tuple[str, int],
        *,
        interval_s: float,
        started_at: float,
    ) -> None:
        super().__init__(interval_s, started_at)
        self.device = device
        self.name = f"coap:{device.key}"
        self.bind = bind
        self._context: Any = None
        self._resources: dict[str, Any] = {}

    async def start(self) -> None:
        """Serve the resources."""
        import aiocoap
        import aiocoap.resource

        reading = _observable_reading()
        site = aiocoap.resource.Site()
        for sensor in self.device.sensors:
            resource = reading()
            site.add_resource(str(sensor.address["resource"]).strip("/").split("/"), resource)
            self._resources[sensor.key] = resource
        await self.tick(dt.datetime.now(dt.UTC))
        self._context = await aiocoap.Context.create_server_context(
            site, bind=self.bind, transports=["udp6"]
        )
        self._start_ticking()

    async def stop(self) -> None:
        """Stop serving."""
        await self._stop_ticking()
        context, self._context = self._context, None
        if context is not None:
            await context.shutdown()

    async def tick(self, moment: dt.datetime) -> None:
        """Update every resource, which notifies its observers."""
        for sensor in self.device.sensors:
            value = _reading(self.device, sensor, moment, self.started_at)
            self._resources[sensor.key].set(_payload(value, moment))


class CoapPoster(_Ticking):
    """A device without a server of its own: POSTs each reading to the hub's CoAP server."""

    # The demo starts its devices before the hub, whose CoAP server needs a moment to listen.
    quiet_s = 15.0

    def __init__(
        self,
        device: DemoDevice,
        hub: tuple[str, int],
        *,
        interval_s: float,
        started_at: float,
    ) -> None:
        super().__init__(interval_s, started_at)
        self.device = device
        self.name = f"coap:{device.key}"
        self.hub = hub
        self._context: Any = None

    @property
    def base_uri(self) -> str:
        """The hub's CoAP server as a URI."""
        host, port = self.hub
        return f"coap://{f'[{host}]' if ':' in host else host}:{port}"

    async def start(self) -> None:
        """Open a client context and start posting."""
        import aiocoap

        self._context = await aiocoap.Context.create_client_context(transports=["udp6"])
        self._start_ticking()

    async def stop(self) -> None:
        """Stop posting."""
        await self._stop_ticking()
        context, self._context = self._context, None
        if context is not None:
            await context.shutdown()

    async def tick(self, moment: dt.datetime) -> None:
        """POST one reading per sensor; the hub answers 2.04 once it has stored it."""
        import aiocoap
        from aiocoap.numbers.codes import Code

        for sensor in self.device.sensors:
            value = _reading(self.device, sensor, moment, self.started_at)
            uri = (
                f"{self.base_uri}/devices/{quote(self.device.key)}/sensors/{quote(sensor.key)}/data"
            )
            message = aiocoap.Message(
                code=Code.POST,
                uri=uri,
                payload=_payload(value, moment),
                content_format=CONTENT_JSON,
            )
            request = self._context.request(message)
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    response = await request.response
            finally:
                # Stop retransmitting once we gave up; harmless after a response.
                with contextlib.suppress(Exception):
                    request.response.cancel()
            if not response.code.is_successful():
                raise RuntimeError(f"the hub answered {response.code}")


# --------------------------------------------------------------------------------------------
# All of them together
# --------------------------------------------------------------------------------------------


class Simulator(Protocol):
    """Anything DemoDevices starts and stops: a simulator or the broker."""

    name: str

    async def start(self) -> None:
        """Listen or connect, and start updating values."""

    async def stop(self) -> None:
        """Stop updating and close every connection."""


async def _stop_quietly(simulator: Simulator) -> None:
    # One simulator failing to stop must not keep the others (or the broker) running.
    try:
        await simulator.stop()
    except Exception as exc:  # noqa: BLE001 - logged; shutting down anyway
        log.warning("demo device did not stop cleanly", extra={"error": repr(exc)})


class DemoDevices:
    """Every simulated device (and the embedded broker), started and stopped together."""

    def __init__(
        self,
        ports: DemoPorts = DemoPorts(),
        *,
        mqtt: MqttOptions | None = None,
        hub_coap: tuple[str, int] | None = None,
        interval_s: float = 1.0,
        started_at: float | None = None,
    ) -> None:
        """Simulators on `ports`; with `mqtt` (the hub's broker) no broker is embedded."""
        self.ports = ports
        self.mqtt = mqtt
        self.hub_coap = hub_coap or (ports.host, ports.hub_coap)
        self.interval_s = interval_s
        self.started_at = started_at
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def embeds_broker(self) -> bool:
        """True when the demo runs its own MQTT broker."""
        return self.mqtt is None

    @property
    def listeners(self) -> list[Listener]:
        """The ports the simulators listen on."""
        ports = self.ports
        found = [
            Listener("opcua", "simulated OPC-UA server", "tcp", ports.opcua),
            Listener("modbus", "simulated Modbus TCP server", "tcp", ports.modbus),
            Listener("coap", "simulated CoAP device", "udp", ports.coap),
        ]
        if self.embeds_broker:
            found.insert(0, Listener("mqtt", "embedded MQTT broker", "tcp", ports.mqtt))
        return found

    def describe(self) -> list[tuple[str, str, str]]:
        """(what, where, which assets) for every simulator, for the startup banner."""
        ports = self.ports

        def tags(protocol: Wire, posting: bool = False) -> str:
            chosen = [d for d in devices_of(protocol) if d.posts_to_hub == posting]
            return ", ".join(d.asset for d in chosen)

        broker = "embedded MQTT broker" if self.embeds_broker else "MQTT broker (configured)"
        where = ports.mqtt_url if self.mqtt is None else f"{self.mqtt.host}:{self.mqtt.port}"
        host, port = self.hub_coap
        units = ", ".join(f"{d.asset} (unit {_unit(d)})" for d in devices_of(Wire.MODBUS))
        return [
            (broker, where, tags(Wire.MQTT)),
            ("OPC-UA server", ports.opcua_url, tags(Wire.OPCUA)),
            ("Modbus TCP server", ports.modbus_url, units),
            ("CoAP device (observed)", ports.coap_url, tags(Wire.COAP)),
            ("CoAP posts to the hub", f"coap://{host}:{port}", tags(Wire.COAP, posting=True)),
        ]

    def _mqtt_target(self) -> tuple[str, str, str | None]:
        """(url with credentials, topic root, CA file) the transmitters publish to."""
        options = self.mqtt
        if options is None:
            return self.ports.mqtt_url, "devices", None
        scheme = "mqtts" if options.tls else "mqtt"
        auth = ""
        if options.username is not None:
            auth = quote(options.username, safe="")
            if options.password is not None:
                auth += ":" + quote(options.password, safe="")
            auth += "@"
        host = f"[{options.host}]" if ":" in options.host else options.host
        root = options.topic_prefix.strip("/") or "devices"
        ca_file = str(options.ca_file) if options.ca_file else None
        return f"{scheme}://{auth}{host}:{options.port}", root, ca_file

    def _simulators(self, started_at: float) -> list[Simulator]:
        ports = self.ports
        timing = {"interval_s": self.interval_s, "started_at": started_at}
        url, root, ca_file = self._mqtt_target()
        sims: list[Simulator] = []
        if self.embeds_broker:
            from maintainpro.demo.broker import EmbeddedBroker

            sims.append(EmbeddedBroker(ports.host, ports.mqtt))
        sims += [
            MqttTransmitter(d, url, topic_root=root, ca_file=ca_file, **timing)
            for d in devices_of(Wire.MQTT)
        ]
        sims.append(OpcUaServer(devices_of(Wire.OPCUA), ports.opcua_url, **timing))
        sims.append(ModbusServer(devices_of(Wire.MODBUS), (ports.host, ports.modbus), **timing))
        for device in devices_of(Wire.COAP):
            if device.posts_to_hub:
                sims.append(CoapPoster(device, self.hub_coap, **timing))
            else:
                sims.append(CoapDevice(device, (ports.host, ports.coap), **timing))
        return sims

    async def start(self) -> None:
        """Start everything; on any failure stop what started and raise (PortInUse for ports)."""
        if self._stack is not None:
            raise RuntimeError("the demo devices are running already")
        ensure_free(self.ports.host, self.listeners)
        started_at = self.started_at if self.started_at is not None else time.time()
        async with contextlib.AsyncExitStack() as stack:
            for simulator in self._simulators(started_at):
                try:
                    await simulator.start()
                except OSError as exc:
                    # Taken between the check and the bind, or refused for another reason.
                    raise DemoDevicesError(
                        f"the demo device {simulator.name!r} cannot start: {exc.strerror or exc}"
                    ) from exc
                stack.push_async_callback(_stop_quietly, simulator)
            self._stack = stack.pop_all()
        log.info("demo devices started", extra={"ports": dataclasses.asdict(self.ports)})

    async def stop(self) -> None:
        """Stop every simulator, the broker last."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
            log.info("demo devices stopped")
