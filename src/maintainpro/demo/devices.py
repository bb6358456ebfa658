"""The demo plant's simulated devices: one catalogue for the registry seed and the simulators.

Every device is attached to a seeded asset and speaks one of the four protocols, with its sensors
addressed exactly as the hub's connectors expect (MQTT default topics, OPC-UA NodeIds and browse
paths, Modbus register-map entries, CoAP resources).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.orm import Session

from maintainpro.core.audit import Actor, set_actor
from maintainpro.demo import signals
from maintainpro.demo.alerts import seed_demo_alert_rules
from maintainpro.demo.maintenance import seed_sensor_meters
from maintainpro.demo.signals import Signal
from maintainpro.iot.credentials import CredentialBox
from maintainpro.iot.devices import Device, Protocol
from maintainpro.iot.registry import DeviceSpec, SensorSpec, apply_device

SEED_ACTOR: Final = Actor(user_id=None, name="demo-seed")
OPCUA_NAMESPACE: Final = "urn:maintainpro:demo"
# The first namespace a fresh asyncua server registers gets index 2 (0 and 1 are OPC-UA's own);
# the simulator checks it, so the NodeIds below stay true.
OPCUA_NS: Final = 2
OPCUA_PATH: Final = "/demo"


@dataclass(frozen=True)
class DemoPorts:
    """Where the simulated devices listen; all on one loopback host by default."""

    host: str = "127.0.0.1"
    mqtt: int = 18830
    opcua: int = 48400
    modbus: int = 15020
    coap: int = 56830
    hub_coap: int = 56831

    @property
    def mqtt_url(self) -> str:
        """The embedded broker's URL."""
        return f"mqtt://{self.host}:{self.mqtt}"

    @property
    def opcua_url(self) -> str:
        """The OPC-UA server's endpoint."""
        return f"opc.tcp://{self.host}:{self.opcua}{OPCUA_PATH}"

    @property
    def modbus_url(self) -> str:
        """The Modbus TCP server's endpoint."""
        return f"tcp://{self.host}:{self.modbus}"

    @property
    def coap_url(self) -> str:
        """The CoAP device's endpoint."""
        return f"coap://{self.host}:{self.coap}"

    @property
    def hub_coap_bind(self) -> str:
        """The hub's own CoAP server, where the humidity transmitter posts."""
        return f"{self.host}:{self.hub_coap}"


@dataclass(frozen=True)
class DemoSensor:
    """One simulated sensor: its registry entry and the signal that drives it."""

    key: str
    name: str
    type: str
    unit: str
    min_value: float
    max_value: float
    signal: Signal
    address: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoDevice:
    """One simulated device attached to a seeded asset."""

    key: str
    name: str
    protocol: Protocol
    asset: str
    sensors: tuple[DemoSensor, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)

    def sensor(self, key: str) -> DemoSensor:
        """The sensor with this key."""
        return next(s for s in self.sensors if s.key == key)

    @property
    def posts_to_hub(self) -> bool:
        """True for a CoAP device without resources: it POSTs to the hub's CoAP server."""
        return self.protocol is Protocol.COAP and not any(
            "resource" in s.address for s in self.sensors
        )


def noise_seed(device: DemoDevice, sensor: DemoSensor) -> int:
    """A stable per-sensor noise seed (str hashes change per process; CRC32 does not)."""
    return zlib.crc32(f"{device.key}/{sensor.key}".encode())


def value_at(device: DemoDevice, sensor: DemoSensor, t: float, start: float) -> float:
    """The sensor's simulated value at epoch second t of a simulation started at `start`."""
    return sensor.signal.value(t, start, noise_seed(device, sensor))


def _like(signal: Signal, **changes: float) -> Signal:
    # Sister machines run a little differently, so their charts are not copies of each other.
    return dataclasses.replace(signal, **changes)


def _condition_monitor(
    key: str, asset: str, machine: str, vibration: Signal, temperature: Signal
) -> DemoDevice:
    return DemoDevice(
        key=key,
        name=f"{asset} wireless vibration and temperature transmitter",
        protocol=Protocol.MQTT,
        asset=asset,
        sensors=(
            DemoSensor(
                "vibration",
                f"{machine} vibration velocity (RMS)",
                "vibration",
                "mm/s",
                0.0,
                25.0,
                vibration,
            ),
            DemoSensor(
                "bearing_temp",
                f"{machine} bearing temperature",
                "temperature",
                "°C",
                -20.0,
                120.0,
                temperature,
            ),
        ),
    )


def _compressor(key: str, asset: str, load: float) -> DemoDevice:
    node = f"ns={OPCUA_NS};s={asset}"
    return DemoDevice(
        key=key,
        name=f"{asset} compressor controller (OPC-UA)",
        protocol=Protocol.OPCUA,
        asset=asset,
        sensors=(
            DemoSensor(
                "discharge_pressure",
                "Discharge pressure",
                "pressure",
                "bar",
                0.0,
                13.0,
                signals.DISCHARGE_PRESSURE,
                {"node": f"{node}.DischargePressure"},
            ),
            DemoSensor(
                "discharge_temp",
                "Discharge temperature",
                "temperature",
                "°C",
                0.0,
                120.0,
                signals.COMPRESSOR_DISCHARGE_TEMP,
                {"node": f"{node}.DischargeTemperature"},
            ),
            # Found by browse path rather than NodeId, as many servers are configured.
            DemoSensor(
                "motor_current",
                "Main motor current",
                "current",
                "A",
                0.0,
                100.0,
                _like(signals.MOTOR_CURRENT, base=18.0 * load, cycle_amplitude=6.0 * load),
                {"browse_path": f"0:Objects/{OPCUA_NS}:{asset}/{OPCUA_NS}:MotorCurrent"},
            ),
        ),
    )


def _float32(address: int, order: str = "ABCD") -> dict[str, Any]:
    return {"function": "holding", "address": address, "data_type": "float32", "order": order}


DEVICES: Final[tuple[DemoDevice, ...]] = (
    _condition_monitor(
        "demo-p101",
        "P-101",
        "Pump",
        signals.FAULTY_VIBRATION,
        signals.BEARING_TEMPERATURE,
    ),
    _condition_monitor(
        "demo-m101",
        "M-101",
        "Motor",
        _like(signals.PUMP_VIBRATION, base=1.6),
        _like(signals.BEARING_TEMPERATURE, base=61.0),
    ),
    _condition_monitor(
        "demo-p102",
        "P-102",
        "Pump",
        _like(signals.PUMP_VIBRATION, base=1.9, cycle_period_s=420),
        _like(signals.BEARING_TEMPERATURE, base=47.0),
    ),
    _condition_monitor(
        "demo-m102",
        "M-102",
        "Motor",
        _like(signals.PUMP_VIBRATION, base=1.3, cycle_period_s=200),
        _like(signals.BEARING_TEMPERATURE, base=66.0),
    ),
    _condition_monitor(
        "demo-m201",
        "M-201",
        "Motor",
        _like(signals.PUMP_VIBRATION, base=2.7, noise=0.15),
        _like(signals.BEARING_TEMPERATURE, base=57.0),
    ),
    _condition_monitor(
        "demo-m301",
        "M-301",
        "Motor",
        _like(signals.PUMP_VIBRATION, base=1.5, cycle_period_s=600),
        _like(signals.BEARING_TEMPERATURE, base=58.0),
    ),
    _compressor("demo-ac301", "AC-301", load=1.0),
    # The standby compressor idles unloaded.
    _compressor("demo-ac302", "AC-302", load=0.35),
    DemoDevice(
        key="demo-ch301",
        name="CH-301 chiller controller (Modbus unit 1)",
        protocol=Protocol.MODBUS,
        asset="CH-301",
        settings={"unit_id": 1, "poll_interval_s": 1.0},
        sensors=(
            DemoSensor(
                "supply_temp",
                "Chilled-water supply temperature",
                "temperature",
                "°C",
                0.0,
                20.0,
                signals.CHILLED_WATER_TEMP,
                _float32(0),
            ),
            DemoSensor(
                "return_temp",
                "Chilled-water return temperature",
                "temperature",
                "°C",
                0.0,
                25.0,
                _like(signals.CHILLED_WATER_TEMP, base=11.8),
                _float32(2),
            ),
        ),
    ),
    DemoDevice(
        key="demo-p301",
        name="P-301 pump drive (Modbus unit 2)",
        protocol=Protocol.MODBUS,
        asset="P-301",
        settings={"unit_id": 2, "poll_interval_s": 1.0},
        sensors=(
            # Word-swapped, as many PLCs store floats.
            DemoSensor(
                "flow",
                "Chilled-water flow",
                "flow",
                "m³/h",
                0.0,
                80.0,
                signals.CHILLED_WATER_FLOW,
                _float32(0, "CDAB"),
            ),
            DemoSensor(
                "motor_current",
                "Pump motor current",
                "current",
                "A",
                0.0,
                60.0,
                _like(signals.MOTOR_CURRENT, base=24.0, cycle_amplitude=2.0, cycle_period_s=600),
                _float32(2),
            ),
        ),
    ),
    DemoDevice(
        key="demo-bl301",
        name="BL-301 boiler gateway (CoAP)",
        protocol=Protocol.COAP,
        asset="BL-301",
        sensors=(
            DemoSensor(
                "steam_pressure",
                "Steam pressure",
                "pressure",
                "bar",
                0.0,
                16.0,
                signals.BOILER_STEAM_PRESSURE,
                {"resource": "/boiler/steam-pressure", "observe": True},
            ),
            DemoSensor(
                "flue_temp",
                "Flue-gas temperature",
                "temperature",
                "°C",
                0.0,
                350.0,
                signals.BOILER_FLUE_TEMP,
                {"resource": "/boiler/flue-temp", "observe": True},
            ),
        ),
    ),
    DemoDevice(
        key="demo-room-rh",
        name="Compressor room humidity transmitter (CoAP, posts to the hub)",
        protocol=Protocol.COAP,
        asset="AD-301",
        # No resource: the transmitter POSTs its readings to the hub's CoAP server.
        sensors=(
            DemoSensor(
                "humidity",
                "Compressor room relative humidity",
                "humidity",
                "%RH",
                0.0,
                100.0,
                signals.ROOM_HUMIDITY,
            ),
        ),
    ),
)


def devices_of(protocol: Protocol) -> tuple[DemoDevice, ...]:
    """The demo devices speaking one protocol."""
    return tuple(d for d in DEVICES if d.protocol is protocol)


def endpoint_of(device: DemoDevice, ports: DemoPorts) -> str:
    """The endpoint the hub connects to ("" for devices that send to the hub)."""
    if device.protocol is Protocol.OPCUA:
        return ports.opcua_url
    if device.protocol is Protocol.MODBUS:
        return ports.modbus_url
    if device.protocol is Protocol.COAP and not device.posts_to_hub:
        return ports.coap_url
    return ""


def device_spec(device: DemoDevice, ports: DemoPorts) -> DeviceSpec:
    """The registry entry of a demo device for these ports."""
    return DeviceSpec(
        key=device.key,
        name=device.name,
        protocol=device.protocol,
        endpoint=endpoint_of(device, ports),
        asset=device.asset,
        settings=dict(device.settings),
        # Readings arrive every second, so a minute of silence already means something is wrong.
        heartbeat_timeout_s=60,
        sensors=[
            SensorSpec(
                key=s.key,
                name=s.name,
                type=s.type,
                unit=s.unit,
                min_value=s.min_value,
                max_value=s.max_value,
                address=dict(s.address),
            )
            for s in device.sensors
        ],
    )


def seed_demo_devices(
    session: Session, ports: DemoPorts, box: CredentialBox | None = None
) -> list[Device]:
    """Register (or update) every demo device for these ports; safe to run on every start."""
    set_actor(session, SEED_ACTOR)
    # apply_device matches by key, so a second run updates endpoints instead of adding devices.
    devices = [apply_device(session, device_spec(d, ports), box) for d in DEVICES]
    seed_sensor_meters(session)
    seed_demo_alert_rules(session)
    return devices
