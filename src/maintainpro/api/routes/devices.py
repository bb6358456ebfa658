"""IoT devices and sensors: registry CRUD, YAML import/export, dead letters, connector status."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from maintainpro.api.deps import SessionDep, require
from maintainpro.api.pagination import Page, WindowDep, list_page, paginate
from maintainpro.api.problems import Problem
from maintainpro.core.assets import Asset
from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission
from maintainpro.iot.credentials import CredentialBox
from maintainpro.iot.devices import DeadLetter, Device, DeviceStatus, Protocol, Sensor
from maintainpro.iot.registry import (
    DeviceSpec,
    RegistryError,
    SensorSpec,
    apply_device,
    apply_sensor,
    export_yaml,
    import_yaml,
)

router = APIRouter(tags=["devices"])
Reader = Depends(require(Permission.DEVICES_READ))
Writer = Depends(require(Permission.DEVICES_WRITE))
MAX_IMPORT_BYTES = 512 * 1024


class SensorOut(BaseModel):
    """A sensor."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    key: str
    name: str
    type: str
    unit: str
    min_value: float | None
    max_value: float | None
    calibration_date: dt.date | None
    address: dict[str, Any]
    enabled: bool


class DeviceOut(BaseModel):
    """A device with its sensors and derived status (credentials are never returned)."""

    id: int
    key: str
    name: str
    protocol: Protocol
    endpoint: str
    enabled: bool
    asset_id: int | None
    settings: dict[str, Any]
    heartbeat_timeout_s: int
    has_credentials: bool
    status: DeviceStatus
    connected: bool
    last_seen_at: dt.datetime | None
    last_error: str | None
    last_error_at: dt.datetime | None
    sensors: list[SensorOut]


class DevicePatch(BaseModel):
    """Changes to a device; sensors change through their own routes or a full PUT."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    endpoint: Annotated[str, Field(max_length=500)] | None = None
    enabled: bool | None = None
    asset: Annotated[str, Field(max_length=64)] | None = None
    settings: dict[str, Any] | None = None
    heartbeat_timeout_s: Annotated[int, Field(ge=1, le=7 * 24 * 3600)] | None = None
    credentials: dict[str, str] | None = None


class DeadLetterOut(BaseModel):
    """A refused input with its reason."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    received_at: dt.datetime
    source: str
    device_key: str | None
    sensor_key: str | None
    channel: str | None
    code: str
    reason: str
    payload_size: int
    payload_preview: str | None


class ImportReport(BaseModel):
    """Outcome of a YAML import."""

    applied: bool
    created: int
    updated: int
    problems: list[dict[str, Any]]


def _box(request: Request) -> CredentialBox | None:
    box: CredentialBox | None = request.app.state.credential_box
    return box


def _changed(request: Request) -> None:
    hub = getattr(request.app.state, "iot_hub", None)
    if hub is not None:
        hub.registry_changed()


def device_out(device: Device) -> DeviceOut:
    """Render a device for the API."""
    return DeviceOut(
        id=device.id,
        key=device.key,
        name=device.name,
        protocol=device.protocol,
        endpoint=device.endpoint,
        enabled=device.enabled,
        asset_id=device.asset_id,
        settings=device.settings or {},
        heartbeat_timeout_s=device.heartbeat_timeout_s,
        has_credentials=device.credentials is not None,
        status=device.status_at(utcnow()),
        connected=device.connected,
        last_seen_at=device.last_seen_at,
        last_error=device.last_error,
        last_error_at=device.last_error_at,
        sensors=[SensorOut.model_validate(s) for s in device.sensors],
    )


def _save(request: Request, db: SessionDep, spec: DeviceSpec) -> DeviceOut:
    """Apply a device spec, commit, and tell the running hub."""
    try:
        device = apply_device(db, spec, _box(request))
    except RegistryError as exc:
        raise Problem(422, str(exc)) from exc
    db.commit()
    _changed(request)
    return device_out(device)


def _device(db: SessionDep, key: str) -> Device:
    device = db.scalar(select(Device).where(Device.key == key))
    if device is None:
        raise Problem(404, f"device {key!r} does not exist")
    return device


@router.get("/devices", dependencies=[Reader])
def list_devices(
    db: SessionDep,
    page: WindowDep,
    protocol: Protocol | None = None,
    asset_id: int | None = None,
    enabled: bool | None = None,
) -> Page[DeviceOut]:
    """List devices with their sensors and status."""
    stmt = select(Device).order_by(Device.key)
    if protocol is not None:
        stmt = stmt.where(Device.protocol == protocol)
    if asset_id is not None:
        stmt = stmt.where(Device.asset_id == asset_id)
    if enabled is not None:
        stmt = stmt.where(Device.enabled.is_(enabled))
    rows, total = paginate(db, stmt, page)
    return Page[DeviceOut](
        items=[device_out(d) for d in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/devices", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_device(request: Request, db: SessionDep, body: DeviceSpec) -> DeviceOut:
    """Register a device with its sensors; credentials are encrypted and never shown again."""
    if db.scalar(select(Device.id).where(Device.key == body.key)) is not None:
        raise Problem(409, f"device {body.key!r} exists already")
    return _save(request, db, body)


@router.get("/devices/export", dependencies=[Reader])
def export_devices(db: SessionDep) -> PlainTextResponse:
    """Every device and sensor as YAML (without credentials)."""
    return PlainTextResponse(export_yaml(db), media_type="application/yaml")


@router.post("/devices/import", dependencies=[Writer])
def import_devices(
    request: Request,
    db: SessionDep,
    body: Annotated[str, Body(media_type="application/yaml", max_length=MAX_IMPORT_BYTES)],
) -> ImportReport:
    """Create or update devices from YAML, all or nothing; problems are listed per entry."""
    result = import_yaml(db, body, _box(request))
    if not result.ok:
        db.rollback()
        raise Problem(
            422,
            "the file was not applied: fix the problems listed and import it again",
            title="Import refused",
            problems=[
                {"entry": p.index, "key": p.key, "message": p.message} for p in result.problems
            ],
        )
    db.commit()
    _changed(request)
    return ImportReport(applied=True, created=result.created, updated=result.updated, problems=[])


@router.get("/devices/{key}", dependencies=[Reader])
def get_device(db: SessionDep, key: str) -> DeviceOut:
    """One device."""
    return device_out(_device(db, key))


@router.put("/devices/{key}", dependencies=[Writer])
def replace_device(request: Request, db: SessionDep, key: str, body: DeviceSpec) -> DeviceOut:
    """Replace a device's whole configuration, sensors included."""
    if body.key != key:
        raise Problem(422, "the key in the body must match the key in the path")
    _device(db, key)
    return _save(request, db, body)


@router.patch("/devices/{key}", dependencies=[Writer])
def update_device(request: Request, db: SessionDep, key: str, body: DevicePatch) -> DeviceOut:
    """Change a device: enable or disable it, move it to an asset, change settings."""
    device = _device(db, key)
    current = DeviceSpec.model_validate(
        {
            "key": device.key,
            "name": device.name,
            "protocol": device.protocol,
            "endpoint": device.endpoint,
            "enabled": device.enabled,
            "asset": db.scalar(select(Asset.tag).where(Asset.id == device.asset_id))
            if device.asset_id
            else None,
            "settings": device.settings or {},
            "heartbeat_timeout_s": device.heartbeat_timeout_s,
            "sensors": [SensorSpec.model_validate(s, from_attributes=True) for s in device.sensors],
        }
    )
    merged = current.model_copy(update=body.model_dump(exclude_unset=True))
    try:
        spec = DeviceSpec.model_validate(merged.model_dump())
    except ValueError as exc:
        raise Problem(422, str(exc)) from exc
    return _save(request, db, spec)


@router.delete("/devices/{key}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Writer])
def delete_device(request: Request, db: SessionDep, key: str) -> None:
    """Remove a device and its sensors (their stored readings stay for history)."""
    db.delete(_device(db, key))
    db.commit()
    _changed(request)


@router.put("/devices/{key}/sensors/{sensor_key}", dependencies=[Writer])
def put_sensor(
    request: Request, db: SessionDep, key: str, sensor_key: str, body: SensorSpec
) -> SensorOut:
    """Create or replace one sensor of a device."""
    if body.key != sensor_key:
        raise Problem(422, "the key in the body must match the key in the path")
    device = _device(db, key)
    sensor = next((s for s in device.sensors if s.key == sensor_key), None)
    if sensor is None:
        sensor = Sensor(key=sensor_key)
        device.sensors.append(sensor)
    apply_sensor(sensor, body)
    db.commit()
    _changed(request)
    return SensorOut.model_validate(sensor)


@router.delete(
    "/devices/{key}/sensors/{sensor_key}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Writer],
)
def delete_sensor(request: Request, db: SessionDep, key: str, sensor_key: str) -> None:
    """Remove one sensor of a device."""
    device = _device(db, key)
    sensor = next((s for s in device.sensors if s.key == sensor_key), None)
    if sensor is None:
        raise Problem(404, f"device {key!r} has no sensor {sensor_key!r}")
    device.sensors.remove(sensor)
    db.commit()
    _changed(request)


@router.get("/dead-letters", dependencies=[Reader])
def list_dead_letters(
    db: SessionDep,
    page: WindowDep,
    device_key: str | None = None,
    code: str | None = None,
    source: str | None = None,
) -> Page[DeadLetterOut]:
    """Refused input, newest first, with the reason and the start of the raw payload."""
    stmt = select(DeadLetter).order_by(DeadLetter.id.desc())
    if device_key is not None:
        stmt = stmt.where(DeadLetter.device_key == device_key)
    if code is not None:
        stmt = stmt.where(DeadLetter.code == code)
    if source is not None:
        stmt = stmt.where(DeadLetter.source == source)
    page_ = list_page(db, stmt, page, _DeadLetterRow)
    return Page[DeadLetterOut](
        items=[dead_letter_out(r) for r in page_.items],
        total=page_.total,
        limit=page_.limit,
        offset=page_.offset,
    )


class _DeadLetterRow(BaseModel):
    model_config = ConfigDict(from_attributes=True, arbitrary_types_allowed=True)
    id: int
    received_at: dt.datetime
    source: str
    device_key: str | None
    sensor_key: str | None
    channel: str | None
    code: str
    reason: str
    payload_size: int
    payload: bytes | None


def dead_letter_out(row: _DeadLetterRow) -> DeadLetterOut:
    """A dead letter with a readable preview of its payload (first 1 KiB, never executed)."""
    preview = row.payload[:1024].decode("utf-8", "replace") if row.payload else None
    return DeadLetterOut(
        **row.model_dump(exclude={"payload"}),
        payload_preview=preview,
    )


class ConnectorOut(BaseModel):
    """A connector's statistics."""

    name: str
    protocol: str
    connected: bool
    messages: int
    readings: int
    errors: int
    reconnects: int
    last_error: str | None
    last_error_at: dt.datetime | None
    last_success_at: dt.datetime | None


class IngestOut(BaseModel):
    """The ingest pipeline's counters."""

    received: int
    stored: int
    duplicates: int
    dead_lettered: int
    batches: int
    write_errors: int
    queued: int
    last_batch_size: int
    last_batch_ms: float


class IotStatusOut(BaseModel):
    """What the IoT runtime is doing."""

    running: bool
    ingest: IngestOut | None
    connectors: list[ConnectorOut]


@router.get("/iot/status", dependencies=[Reader])
def iot_status(request: Request) -> IotStatusOut:
    """Per-connector statistics and the ingest pipeline's counters."""
    hub = getattr(request.app.state, "iot_hub", None)
    if hub is None:
        return IotStatusOut(running=False, ingest=None, connectors=[])
    stats = hub.pipeline.stats
    return IotStatusOut(
        running=True,
        ingest=IngestOut(**{f: getattr(stats, f) for f in IngestOut.model_fields}),
        connectors=[
            ConnectorOut(**{f: getattr(c, f) for f in ConnectorOut.model_fields})
            for c in hub.connector_stats
        ],
    )
