"""Device pages: the registry (status, last data, last error), a device's configuration as
YAML to edit, enable/disable, import and export, and the dead-letter list."""

from __future__ import annotations

from typing import Annotated

import yaml
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select

from maintainpro.api.deps import SessionDep
from maintainpro.core.assets import Asset
from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission
from maintainpro.iot.connectors.base import ConnectorStats
from maintainpro.iot.credentials import CredentialBox
from maintainpro.iot.devices import DeadLetter, Device, DeviceEvent
from maintainpro.iot.edge.hub_status import edge_agents
from maintainpro.iot.edge.publisher import config_statuses
from maintainpro.iot.registry import (
    DeviceSpec,
    RegistryError,
    apply_device,
    device_spec,
    export_yaml,
    import_yaml,
)
from maintainpro.web.pages import render
from maintainpro.web.session_auth import CsrfChecked, PageUser, page_permission

router = APIRouter(include_in_schema=False)
CanRead = page_permission(Permission.DEVICES_READ)
CanWrite = page_permission(Permission.DEVICES_WRITE)
MAX_YAML = 512 * 1024
NEW_DEVICE_TEMPLATE = """key: new-device
name: New device
protocol: modbus            # mqtt, coap, opcua or modbus
endpoint: tcp://192.0.2.10:502
asset:                      # asset tag, e.g. P-101
settings:
  unit: 1
  poll_s: 5
heartbeat_timeout_s: 120
sensors:
  - key: temperature
    type: temperature
    unit: °C
    min_value: -20
    max_value: 150
    address: {function: holding, address: 0, data_type: float32, order: ABCD}
"""


def _box(request: Request) -> CredentialBox | None:
    box: CredentialBox | None = request.app.state.credential_box
    return box


def _changed(request: Request) -> None:
    hub = getattr(request.app.state, "iot_hub", None)
    if hub is not None:
        hub.registry_changed()


def _connector_stats(request: Request) -> list[ConnectorStats]:
    hub = getattr(request.app.state, "iot_hub", None)
    return list(hub.connector_stats) if hub is not None else []


def _device(db: SessionDep, key: str) -> Device:
    device = db.scalar(select(Device).where(Device.key == key))
    if device is None:
        raise HTTPException(404, f"device {key!r} does not exist")
    return device


@router.get("/devices", dependencies=[CanRead])
def devices_page(request: Request, db: SessionDep, user: PageUser) -> HTMLResponse:
    """Every device with its derived status, last data and last error."""
    devices = db.scalars(select(Device).order_by(Device.key)).all()
    assets = dict(db.execute(select(Asset.id, Asset.tag)).all())
    dead = db.scalar(select(func.count()).select_from(DeadLetter)) or 0
    now = utcnow()
    connectors = _connector_stats(request)
    by_name = {c.name: c for c in connectors}
    return render(
        request,
        "devices.html",
        user,
        devices=devices,
        statuses={d.key: d.status_at(now) for d in devices},
        # Per-device connectors are named "<protocol>:<key>"; MQTT shares one hub connection.
        device_stats={d.key: by_name.get(f"{d.protocol.value}:{d.key}") for d in devices},
        connectors=connectors,
        hub_running=getattr(request.app.state, "iot_hub", None) is not None,
        assets=assets,
        dead_letters=dead,
        can_write=Permission.DEVICES_WRITE in user.permissions,
        edge_agents=edge_agents(db, now),
        edge_config=config_statuses(db),
    )


@router.get("/devices/new", dependencies=[CanWrite])
def new_device(request: Request, user: PageUser) -> HTMLResponse:
    """A YAML editor prefilled with an example device."""
    return render(request, "device_edit.html", user, key=None, text=NEW_DEVICE_TEMPLATE, errors=[])


@router.get("/devices/export", dependencies=[CanRead])
def export_devices(db: SessionDep, user: PageUser) -> PlainTextResponse:
    """Download the registry as YAML (no credentials)."""
    return PlainTextResponse(
        export_yaml(db),
        media_type="application/yaml",
        headers={"Content-Disposition": 'attachment; filename="devices.yaml"'},
    )


@router.post("/devices/import", dependencies=[CsrfChecked, CanWrite])
def import_devices(
    request: Request,
    db: SessionDep,
    user: PageUser,
    text: Annotated[str, Form(max_length=MAX_YAML)],
) -> Response:
    """Apply a YAML file all or nothing; problems are shown per entry."""
    result = import_yaml(db, text, _box(request))
    if not result.ok:
        db.rollback()
        errors = [f"entry {p.index} ({p.key or '?'}): {p.message}" for p in result.problems]
        return render(
            request, "device_import.html", user, status_code=422, text=text, errors=errors
        )
    db.commit()
    _changed(request)
    return RedirectResponse("/devices", status_code=303)


@router.get("/devices/import", dependencies=[CanWrite])
def import_form(request: Request, user: PageUser) -> HTMLResponse:
    """The import form."""
    return render(request, "device_import.html", user, text="", errors=[])


@router.get("/devices/dead-letters", dependencies=[CanRead])
def dead_letters_page(
    request: Request, db: SessionDep, user: PageUser, device_key: str | None = None
) -> HTMLResponse:
    """The newest refused inputs with their reasons."""
    stmt = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(200)
    if device_key:
        stmt = stmt.where(DeadLetter.device_key == device_key[:128])
    letters = db.scalars(stmt).all()
    return render(request, "dead_letters.html", user, letters=letters, device_key=device_key)


@router.get("/devices/{key}", dependencies=[CanRead])
def device_page(request: Request, db: SessionDep, user: PageUser, key: str) -> HTMLResponse:
    """A device: status, connection error, sensors, configuration, recent dead letters."""
    device = _device(db, key)
    asset = db.get(Asset, device.asset_id) if device.asset_id else None
    letters = db.scalars(
        select(DeadLetter)
        .where(DeadLetter.device_key == device.key)
        .order_by(DeadLetter.id.desc())
        .limit(20)
    ).all()
    events = db.scalars(
        select(DeviceEvent)
        .where(DeviceEvent.device_id == device.id)
        .order_by(DeviceEvent.at.desc(), DeviceEvent.id.desc())
        .limit(50)
    ).all()
    name = f"{device.protocol.value}:{device.key}"
    return render(
        request,
        "device.html",
        user,
        device=device,
        events=events,
        stats=next((c for c in _connector_stats(request) if c.name == name), None),
        status=device.status_at(utcnow()),
        asset=asset,
        letters=letters,
        can_write=Permission.DEVICES_WRITE in user.permissions,
    )


@router.get("/devices/{key}/edit", dependencies=[CanWrite])
def edit_device(request: Request, db: SessionDep, user: PageUser, key: str) -> HTMLResponse:
    """The device's configuration as YAML to edit."""
    device = _device(db, key)
    tag = (
        db.scalar(select(Asset.tag).where(Asset.id == device.asset_id)) if device.asset_id else None
    )
    text = yaml.safe_dump(device_spec(device, tag), sort_keys=False, allow_unicode=True)
    return render(request, "device_edit.html", user, key=key, text=text, errors=[])


@router.post("/devices/save", dependencies=[CsrfChecked, CanWrite])
def save_device(
    request: Request,
    db: SessionDep,
    user: PageUser,
    text: Annotated[str, Form(max_length=MAX_YAML)],
    original_key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Validate and apply an edited device; errors are shown next to the editor."""
    errors: list[str] = []
    spec: DeviceSpec | None = None
    try:
        document = yaml.safe_load(text)
        spec = DeviceSpec.model_validate(document)
    except yaml.YAMLError as exc:
        errors.append(f"not valid YAML: {exc}")
    except ValidationError as exc:
        errors += [
            f"{'.'.join(str(p) for p in e['loc']) or 'device'}: {e['msg']}" for e in exc.errors()
        ]
    if spec is not None:
        if original_key and spec.key != original_key:
            errors.append("the key of an existing device cannot change; create a new device")
        elif not original_key and db.scalar(select(Device.id).where(Device.key == spec.key)):
            errors.append(f"device {spec.key!r} exists already")
    if spec is not None and not errors:
        try:
            apply_device(db, spec, _box(request))
        except RegistryError as exc:
            errors.append(str(exc))
    if errors or spec is None:
        db.rollback()
        return render(
            request,
            "device_edit.html",
            user,
            status_code=422,
            key=original_key or None,
            text=text,
            errors=errors,
        )
    db.commit()
    _changed(request)
    return RedirectResponse(f"/devices/{spec.key}", status_code=303)


@router.post("/devices/{key}/toggle", dependencies=[CsrfChecked, CanWrite])
def toggle_device(request: Request, db: SessionDep, user: PageUser, key: str) -> Response:
    """Enable or disable a device; its connector starts or stops without a restart."""
    device = _device(db, key)
    device.enabled = not device.enabled
    db.commit()
    _changed(request)
    return RedirectResponse(f"/devices/{key}", status_code=303)
