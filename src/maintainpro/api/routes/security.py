"""Device security: credentials issued once, revocation, provisioning keys, OPC-UA PKI."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.api.deps import SessionDep, SettingsDep, require
from maintainpro.api.problems import Problem
from maintainpro.config import Settings
from maintainpro.core.audit import Actor, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission
from maintainpro.iot import issuing
from maintainpro.iot.broker_auth import BrokerReloadError
from maintainpro.iot.credentials import CredentialBox
from maintainpro.iot.device_ca import (
    DeviceCa,
    DeviceCaError,
    holder_filter,
    in_force,
    scan_expiring,
)
from maintainpro.iot.devices import Device, Protocol
from maintainpro.iot.edge_agents import EdgeAgent
from maintainpro.iot.security import SecurityFormatError, fingerprint
from maintainpro.iot.security_records import CredentialKind, IssuedCredential, ProvisioningKey

log = logging.getLogger(__name__)
router = APIRouter(tags=["security"])
Reader = Depends(require(Permission.DEVICES_READ))
Writer = Depends(require(Permission.DEVICES_WRITE))
# A response carrying a secret must not be kept by a proxy or the browser.
NO_STORE = {"Cache-Control": "no-store"}

IssuableKind = Literal["mqtt_password", "client_certificate", "coap_psk"]


class CredentialOut(BaseModel):
    """An issued credential without its secret."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: CredentialKind
    device_id: int | None
    edge_agent_id: int | None
    username: str | None
    serial: str | None
    fingerprint: str | None
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None
    active: bool
    created_at: dt.datetime


class IssueRequest(BaseModel):
    """What to issue; certificates may set a lifetime and a grace for the ones they replace."""

    model_config = ConfigDict(extra="forbid")
    kind: IssuableKind
    days: Annotated[int, Field(ge=1, le=3650)] | None = None
    grace_hours: Annotated[float, Field(ge=0, le=24 * 365)] | None = None


class IssuedOut(BaseModel):
    """A credential just issued: the secret is in this answer and nowhere else, ever."""

    credential: CredentialOut
    secret: dict[str, str]


class ProvisioningKeyIn(BaseModel):
    """A new provisioning key: how often and how long it may be used."""

    model_config = ConfigDict(extra="forbid")
    label: Annotated[str, Field(min_length=1, max_length=200)]
    uses: Annotated[int, Field(ge=1, le=100_000)] | None = None
    expires_at: AwareDatetime | None = None
    expires_in_hours: Annotated[float, Field(gt=0, le=24 * 3650)] | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> ProvisioningKeyIn:
        if self.expires_at is not None and self.expires_in_hours is not None:
            raise ValueError("give expires_at or expires_in_hours, not both")
        return self


class ProvisioningKeyOut(BaseModel):
    """A provisioning key without the key."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    label: str
    hint: str
    uses_left: int | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    created_at: dt.datetime


class ProvisioningKeyCreated(ProvisioningKeyOut):
    """A provisioning key just created, with the key (shown once)."""

    key: str


class ProvisionRequest(BaseModel):
    """A device or edge agent asking for its credentials with a provisioning key."""

    model_config = ConfigDict(extra="forbid")
    provisioning_key: Annotated[str, Field(min_length=8, max_length=200)]
    device_key: Annotated[str, Field(max_length=128)] | None = None
    agent_key: Annotated[str, Field(max_length=128)] | None = None
    kind: IssuableKind

    @model_validator(mode="after")
    def _one_holder(self) -> ProvisionRequest:
        if (self.device_key is None) == (self.agent_key is None):
            raise ValueError("give device_key or agent_key")
        return self


class OpcUaCertificateIn(BaseModel):
    """The OPC-UA application certificate to create."""

    model_config = ConfigDict(extra="forbid")
    application_uri: Annotated[str, Field(min_length=1, max_length=300)]
    hostnames: list[Annotated[str, Field(min_length=1, max_length=253)]] = ["localhost"]
    days: Annotated[int, Field(ge=1, le=3650)] = 365
    replace: bool = False


class OpcUaCertificateOut(BaseModel):
    """Where the certificate is and what it is (the private key is never returned)."""

    certificate: str
    private_key: str
    trust_store: str
    fingerprint: str
    not_after: dt.datetime


class TrustedCertificateIn(BaseModel):
    """A server (or CA) certificate to trust, PEM."""

    model_config = ConfigDict(extra="forbid")
    certificate_pem: Annotated[str, Field(min_length=20, max_length=64 * 1024)]


def _box(request: Request) -> CredentialBox | None:
    box: CredentialBox | None = request.app.state.credential_box
    return box


def _device(db: Session, key: str) -> Device:
    device = db.scalar(select(Device).where(Device.key == key))
    if device is None:
        raise Problem(404, f"device {key!r} does not exist")
    return device


def _agent(db: Session, key: str) -> EdgeAgent:
    agent = db.scalar(select(EdgeAgent).where(EdgeAgent.key == key))
    if agent is None:
        raise Problem(404, f"edge agent {key!r} does not exist")
    return agent


def _issue(
    request: Request,
    db: Session,
    settings: Settings,
    kind: str,
    *,
    device: Device | None = None,
    agent: EdgeAgent | None = None,
    days: int | None = None,
    grace_hours: float | None = None,
) -> issuing.Secret:
    try:
        if kind == CredentialKind.MQTT_PASSWORD:
            return issuing.issue_mqtt_password(db, device=device, agent=agent)
        if kind == CredentialKind.COAP_PSK:
            box = _box(request)
            if device is None or box is None:
                raise Problem(409, "a CoAP PSK needs a device and a configured credentials key")
            if device.protocol != Protocol.COAP:
                raise Problem(409, f"device {device.key!r} does not speak CoAP")
            return issuing.issue_coap_psk(db, box, device)
        grace = settings.credential_rotation_grace_hours if grace_hours is None else grace_hours
        return issuing.issue_certificate(
            db,
            DeviceCa(settings.device_ca_dir),
            device=device,
            agent=agent,
            days=days or settings.device_cert_days,
            grace=dt.timedelta(hours=grace),
        )
    except SecurityFormatError as exc:
        raise Problem(422, str(exc)) from exc
    except DeviceCaError as exc:
        raise Problem(500, str(exc)) from exc


def _applied(request: Request, db: Session, settings: Settings, kind: CredentialKind) -> None:
    """After commit: make the broker and the CoAP server see the change at once."""
    if kind in (CredentialKind.MQTT_PASSWORD, CredentialKind.CLIENT_CERTIFICATE):
        try:
            issuing.apply_to_broker(db, settings)
        except (BrokerReloadError, OSError, SecurityFormatError) as exc:
            # The change is committed; the next write retries. Say so rather than pretend.
            log.error("broker files not applied", extra={"error": str(exc)})
            raise Problem(502, f"saved, but the broker could not be updated: {exc}") from exc
    if kind == CredentialKind.COAP_PSK:
        hub = getattr(request.app.state, "iot_hub", None)
        if hub is not None:
            hub.registry_changed()


def _issued(secret: issuing.Secret) -> IssuedOut:
    return IssuedOut(credential=CredentialOut.model_validate(secret.record), secret=secret.values)


@router.post(
    "/devices/{key}/credentials", status_code=status.HTTP_201_CREATED, dependencies=[Writer]
)
def issue_device_credential(
    key: str,
    request: Request,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    body: IssueRequest,
) -> IssuedOut:
    """Issue a credential for a device; the secret is shown in this answer only."""
    device = _device(db, key)
    secret = _issue(
        request,
        db,
        settings,
        body.kind,
        device=device,
        days=body.days,
        grace_hours=body.grace_hours,
    )
    db.commit()
    _applied(request, db, settings, secret.record.kind)
    response.headers.update(NO_STORE)
    return _issued(secret)


@router.post(
    "/edge-agents/{key}/credentials", status_code=status.HTTP_201_CREATED, dependencies=[Writer]
)
def issue_agent_credential(
    key: str,
    request: Request,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    body: IssueRequest,
) -> IssuedOut:
    """Issue an MQTT password or client certificate for an edge agent (shown once)."""
    if body.kind == "coap_psk":
        raise Problem(422, "edge agents use MQTT passwords or client certificates")
    agent = _agent(db, key)
    secret = _issue(
        request,
        db,
        settings,
        body.kind,
        agent=agent,
        days=body.days,
        grace_hours=body.grace_hours,
    )
    db.commit()
    _applied(request, db, settings, secret.record.kind)
    response.headers.update(NO_STORE)
    return _issued(secret)


@router.get("/devices/{key}/credentials", dependencies=[Reader])
def list_device_credentials(key: str, db: SessionDep) -> list[CredentialOut]:
    """Credentials issued to a device (never their secrets), newest first."""
    device = _device(db, key)
    rows = db.scalars(
        select(IssuedCredential)
        .where(IssuedCredential.device_id == device.id)
        .order_by(IssuedCredential.id.desc())
    )
    return [CredentialOut.model_validate(r) for r in rows]


@router.get("/credentials/expiring", dependencies=[Reader])
def expiring_credentials(
    db: SessionDep, settings: SettingsDep, days: int | None = None
) -> list[CredentialOut]:
    """Certificates in force that expire within `days` (default: the warning window)."""
    now = utcnow()
    horizon = now + dt.timedelta(days=days or settings.credential_expiry_warn_days)
    rows = db.scalars(
        select(IssuedCredential)
        .where(*in_force(now), IssuedCredential.not_after <= horizon)
        .order_by(IssuedCredential.not_after)
    )
    return [CredentialOut.model_validate(r) for r in rows]


@router.post("/credentials/expiry-scan", dependencies=[Writer])
def run_expiry_scan(db: SessionDep, settings: SettingsDep) -> list[CredentialOut]:
    """Run the expiry scan now: `credential.expiring` events for newly expiring certificates."""
    found = scan_expiring(db, within_days=settings.credential_expiry_warn_days)
    db.commit()
    return [CredentialOut.model_validate(r) for r in found]


@router.post("/credentials/{credential_id}/revoke", dependencies=[Writer])
def revoke_credential(
    credential_id: int, request: Request, db: SessionDep, settings: SettingsDep
) -> CredentialOut:
    """Revoke a credential at once: the broker files are rewritten and the broker reloaded."""
    record = db.get(IssuedCredential, credential_id)
    if record is None:
        raise Problem(404, f"credential {credential_id} does not exist")
    issuing.revoke(db, record, _box(request))
    db.commit()
    _applied(request, db, settings, record.kind)
    return CredentialOut.model_validate(record)


# --------------------------------------------------------------------------------------------
# Provisioning keys
# --------------------------------------------------------------------------------------------


@router.post("/provisioning-keys", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_provisioning_key(
    db: SessionDep, response: Response, body: ProvisioningKeyIn
) -> ProvisioningKeyCreated:
    """Create a provisioning key; the key is in this answer only."""
    expires_at = body.expires_at
    if body.expires_in_hours is not None:
        expires_at = utcnow() + dt.timedelta(hours=body.expires_in_hours)
    record, key = issuing.create_provisioning_key(
        db, body.label, uses=body.uses, expires_at=expires_at
    )
    db.commit()
    response.headers.update(NO_STORE)
    out = ProvisioningKeyOut.model_validate(record)
    return ProvisioningKeyCreated(**out.model_dump(), key=key)


@router.get("/provisioning-keys", dependencies=[Reader])
def list_provisioning_keys(db: SessionDep) -> list[ProvisioningKeyOut]:
    """Every provisioning key (never the key itself), newest first."""
    rows = db.scalars(select(ProvisioningKey).order_by(ProvisioningKey.id.desc()))
    return [ProvisioningKeyOut.model_validate(r) for r in rows]


@router.delete(
    "/provisioning-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Writer]
)
def revoke_provisioning_key(key_id: int, db: SessionDep) -> None:
    """Revoke a provisioning key (kept for the audit trail)."""
    record = db.get(ProvisioningKey, key_id)
    if record is None:
        raise Problem(404, f"provisioning key {key_id} does not exist")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    db.commit()


@router.post("/provision", status_code=status.HTTP_201_CREATED)
def provision(
    request: Request,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    body: Annotated[ProvisionRequest, Body()],
) -> IssuedOut:
    """A device or edge agent exchanges a provisioning key for its credentials, once."""
    try:
        key = issuing.redeem_provisioning_key(db, body.provisioning_key)
    except issuing.ProvisioningRefused as exc:
        log.warning("provisioning refused", extra={"reason": "bad key"})
        raise Problem(403, str(exc)) from exc
    # Every use is attributed to the key in the audit trail (uses_left and the new credential).
    set_actor(db, Actor(user_id=None, name=f"provisioning-key:{key.id}"))
    device = _device(db, body.device_key) if body.device_key is not None else None
    agent = _agent(db, body.agent_key) if body.agent_key is not None else None
    if agent is not None and body.kind == "coap_psk":
        raise Problem(422, "edge agents use MQTT passwords or client certificates")
    holder_enabled = device.enabled if device is not None else agent.enabled  # type: ignore[union-attr]
    if not holder_enabled:
        raise Problem(409, "the device or agent is disabled")
    # Only once: a second request (another holder of the key) must not take over the identity.
    existing = db.scalar(
        select(IssuedCredential.id).where(
            holder_filter(device, agent),
            IssuedCredential.kind == CredentialKind(body.kind),
            *in_force(utcnow()),
        )
    )
    if existing is not None:
        raise Problem(409, "credentials of this kind were issued already; ask an administrator")
    secret = _issue(
        request,
        db,
        settings,
        body.kind,
        device=device,
        agent=agent,
        grace_hours=0,
    )
    db.commit()
    log.info(
        "provisioned",
        extra={"provisioning_key": key.id, "kind": body.kind, "holder": secret.record.username},
    )
    _applied(request, db, settings, secret.record.kind)
    response.headers.update(NO_STORE)
    return _issued(secret)


# --------------------------------------------------------------------------------------------
# OPC-UA
# --------------------------------------------------------------------------------------------


@router.post(
    "/security/opcua/certificate", status_code=status.HTTP_201_CREATED, dependencies=[Writer]
)
def create_opcua_certificate(
    db: SessionDep, settings: SettingsDep, body: OpcUaCertificateIn
) -> OpcUaCertificateOut:
    """Create the hub's OPC-UA application certificate (key stays on the hub)."""
    pki = issuing.OpcUaPki(settings.opcua_pki_dir)
    try:
        cert = issuing.create_opcua_certificate(
            db,
            pki,
            application_uri=body.application_uri,
            hostnames=tuple(body.hostnames),
            days=body.days,
            replace=body.replace,
        )
    except FileExistsError as exc:
        raise Problem(409, "the application certificate exists; set replace to renew it") from exc
    db.commit()
    return OpcUaCertificateOut(
        certificate=str(pki.certificate),
        private_key=str(pki.private_key),
        trust_store=str(pki.trusted),
        fingerprint=fingerprint(cert),
        not_after=cert.not_valid_after_utc,
    )


@router.post("/security/opcua/trusted", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def trust_opcua_server(settings: SettingsDep, body: TrustedCertificateIn) -> dict[str, str]:
    """Add an OPC-UA server (or CA) certificate to the trust store."""
    try:
        path = issuing.trust_server_certificate(
            issuing.OpcUaPki(settings.opcua_pki_dir), body.certificate_pem.encode()
        )
    except ValueError as exc:
        raise Problem(422, "not a PEM certificate") from exc
    return {"path": str(path)}
