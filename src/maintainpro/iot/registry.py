"""Device registry services shared by the API, the CLI and the demo: validated specs,
create/update, YAML import and export (credentials are write-only and never exported)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.assets import Asset
from maintainpro.iot.connectors.base import DeviceConfig, SensorConfig
from maintainpro.iot.credentials import CredentialBox
from maintainpro.iot.devices import Device, Protocol, Sensor

DeviceKey = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
]
"""An id as devices send it in topics and paths."""

SensorTypeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
"""A sensor type: temperature, vibration, pressure, flow, humidity or any lower-case word."""

ENDPOINT_SCHEMES: dict[Protocol, tuple[str, ...]] = {
    Protocol.MQTT: ("", "mqtt://", "mqtts://"),
    # A CoAP device that only POSTs to the hub has no endpoint of its own.
    Protocol.COAP: ("", "coap://", "coaps://"),
    Protocol.OPCUA: ("opc.tcp://",),
    Protocol.MODBUS: ("tcp://", "rtu://"),
}
MAX_JSON_KEYS = 64


def _small_json(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_JSON_KEYS or len(repr(value)) > 16_384:
        raise ValueError("too large: at most 64 keys and 16 KiB")
    return value


class SensorSpec(BaseModel):
    """A sensor as configured by a person or a file."""

    model_config = ConfigDict(extra="forbid")
    key: DeviceKey
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    type: SensorTypeName
    unit: Annotated[str, StringConstraints(max_length=32)] = ""
    min_value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    max_value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    calibration_date: dt.date | None = None
    address: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True

    _address = field_validator("address")(_small_json)

    @field_validator("max_value")
    @classmethod
    def _range(cls, value: float | None, info: Any) -> float | None:
        low = info.data.get("min_value")
        if value is not None and low is not None and value <= low:
            raise ValueError("max_value must be above min_value")
        return value


class DeviceSpec(BaseModel):
    """A device as configured by a person or a file."""

    model_config = ConfigDict(extra="forbid")
    key: DeviceKey
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    protocol: Protocol
    endpoint: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    enabled: bool = True
    asset: Annotated[str, StringConstraints(max_length=64)] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    heartbeat_timeout_s: Annotated[int, Field(ge=1, le=7 * 24 * 3600)] = 120
    credentials: dict[str, str] | None = None
    sensors: Annotated[list[SensorSpec], Field(max_length=1000)] = Field(default_factory=list)

    _settings = field_validator("settings")(_small_json)

    @field_validator("endpoint")
    @classmethod
    def _scheme(cls, value: str, info: Any) -> str:
        protocol = info.data.get("protocol")
        if protocol is None:
            return value
        schemes = ENDPOINT_SCHEMES[protocol]
        if not any(value.startswith(s) for s in schemes if s) and not ("" in schemes and not value):
            raise ValueError(
                f"a {protocol.value} endpoint starts with {' or '.join(s for s in schemes if s)}"
            )
        return value

    @field_validator("sensors")
    @classmethod
    def _unique_sensors(cls, value: list[SensorSpec]) -> list[SensorSpec]:
        keys = [s.key for s in value]
        if len(keys) != len(set(keys)):
            raise ValueError("sensor keys must be unique within a device")
        return value


class RegistryError(ValueError):
    """A registry change that cannot be applied."""


def _asset_id(session: Session, tag: str | None) -> int | None:
    if tag is None:
        return None
    asset_id = session.scalar(select(Asset.id).where(Asset.tag == tag))
    if asset_id is None:
        raise RegistryError(f"asset {tag!r} does not exist")
    return asset_id


def apply_device(session: Session, spec: DeviceSpec, box: CredentialBox | None) -> Device:
    """Create or replace a device and its sensors from a spec (matched by key)."""
    device = session.scalar(select(Device).where(Device.key == spec.key))
    if device is None:
        device = Device(key=spec.key, name=spec.name, protocol=spec.protocol)
        session.add(device)
    device.name = spec.name
    device.protocol = spec.protocol
    device.endpoint = spec.endpoint
    device.enabled = spec.enabled
    device.asset_id = _asset_id(session, spec.asset)
    device.settings = spec.settings
    device.heartbeat_timeout_s = spec.heartbeat_timeout_s
    if spec.credentials is not None:
        if box is None:
            raise RegistryError("credentials cannot be stored: no credentials key is configured")
        device.credentials = box.seal(spec.credentials)
    existing = {s.key: s for s in device.sensors}
    wanted = {s.key for s in spec.sensors}
    for sensor in list(device.sensors):
        if sensor.key not in wanted:
            device.sensors.remove(sensor)
    for sensor_spec in spec.sensors:
        sensor = existing.get(sensor_spec.key) or Sensor(key=sensor_spec.key)
        apply_sensor(sensor, sensor_spec)
        if sensor.key not in existing:
            device.sensors.append(sensor)
    session.flush()
    return device


def apply_sensor(sensor: Sensor, spec: SensorSpec) -> None:
    """Copy a sensor spec onto a sensor row."""
    sensor.name = spec.name
    sensor.type = spec.type
    sensor.unit = spec.unit
    sensor.min_value = spec.min_value
    sensor.max_value = spec.max_value
    sensor.calibration_date = spec.calibration_date
    sensor.address = spec.address
    sensor.enabled = spec.enabled


def device_spec(device: Device, asset_tag: str | None) -> dict[str, Any]:
    """A device as a plain mapping for export (no credentials, no state)."""
    return {
        "key": device.key,
        "name": device.name,
        "protocol": device.protocol.value,
        "endpoint": device.endpoint,
        "enabled": device.enabled,
        "asset": asset_tag,
        "settings": device.settings or {},
        "heartbeat_timeout_s": device.heartbeat_timeout_s,
        "sensors": [
            {
                "key": s.key,
                "name": s.name,
                "type": s.type,
                "unit": s.unit,
                "min_value": s.min_value,
                "max_value": s.max_value,
                "calibration_date": s.calibration_date,
                "address": s.address or {},
                "enabled": s.enabled,
            }
            for s in device.sensors
        ],
    }


def export_yaml(session: Session) -> str:
    """Every device and sensor as a YAML document that import_yaml accepts."""
    tags = dict(session.execute(select(Asset.id, Asset.tag)).all())
    devices = session.scalars(select(Device).order_by(Device.key)).all()
    document = {"devices": [device_spec(d, tags.get(d.asset_id or -1)) for d in devices]}
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


@dataclass(frozen=True)
class ImportProblem:
    """Why one entry of an import file was refused."""

    index: int
    key: str | None
    message: str


@dataclass(frozen=True)
class ImportResult:
    """What an import did, or why it did nothing."""

    created: int
    updated: int
    problems: Sequence[ImportProblem]

    @property
    def ok(self) -> bool:
        """True when the file was applied."""
        return not self.problems


def parse_yaml(text: str) -> tuple[list[DeviceSpec], list[ImportProblem]]:
    """Validate an import file entirely before anything is applied."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [], [ImportProblem(0, None, f"not valid YAML: {exc}")]
    if not isinstance(document, Mapping) or not isinstance(document.get("devices"), list):
        return [], [ImportProblem(0, None, "expected a mapping with a 'devices' list")]
    specs: list[DeviceSpec] = []
    problems: list[ImportProblem] = []
    seen: set[str] = set()
    for index, entry in enumerate(document["devices"], start=1):
        key = entry.get("key") if isinstance(entry, Mapping) else None
        try:
            spec = DeviceSpec.model_validate(entry)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            problems.append(ImportProblem(index, str(key) if key else None, details))
            continue
        if spec.key in seen:
            problems.append(ImportProblem(index, spec.key, "the key appears twice in the file"))
        seen.add(spec.key)
        specs.append(spec)
    return specs, problems


def import_yaml(session: Session, text: str, box: CredentialBox | None) -> ImportResult:
    """Apply an import file all or nothing: any problem and nothing changes."""
    specs, problems = parse_yaml(text)
    if problems:
        return ImportResult(0, 0, problems)
    existing = set(session.scalars(select(Device.key)).all())
    try:
        with session.begin_nested():
            for index, spec in enumerate(specs, start=1):
                try:
                    apply_device(session, spec, box)
                except RegistryError as exc:
                    problems.append(ImportProblem(index, spec.key, str(exc)))
            if problems:
                raise _Abort
    except _Abort:
        return ImportResult(0, 0, problems)
    created = sum(1 for s in specs if s.key not in existing)
    return ImportResult(created, len(specs) - created, [])


class _Abort(Exception):
    """Rolls back the savepoint of a failed import."""


def device_config(device: Device, box: CredentialBox | None) -> DeviceConfig:
    """The snapshot a connector receives."""
    credentials = box.open(device.credentials) if box is not None else {}
    return DeviceConfig(
        key=device.key,
        name=device.name,
        protocol=device.protocol.value,
        endpoint=device.endpoint,
        settings=dict(device.settings or {}),
        sensors=tuple(
            SensorConfig(key=s.key, address=dict(s.address or {}), type=s.type, unit=s.unit)
            for s in device.sensors
            if s.enabled
        ),
        credentials=credentials,
    )
