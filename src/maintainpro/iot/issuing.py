"""Issuing, rotating and revoking device credentials; provisioning keys; OPC-UA certificates.

Shared by the API and the CLI. Secrets are returned to the caller once and never stored in the
clear: MQTT passwords as Mosquitto hashes, CoAP PSKs sealed in Device.credentials (the CoAP
server needs the key itself), certificate private keys not at all.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import utcnow
from maintainpro.iot import security
from maintainpro.iot.broker_auth import BrokerFilesResult, write_broker_files
from maintainpro.iot.connectors.opcua_security import (
    CERT_SUFFIXES,
    generate_application_certificate,
    load_certificate,
)
from maintainpro.iot.credentials import CredentialBox
from maintainpro.iot.device_ca import (
    DeviceCa,
    finish_revocations,
    holder_filter,
    issue_client_certificate,
    revoked_serials,
    scan_expiring,
)
from maintainpro.iot.devices import Device
from maintainpro.iot.edge_agents import EdgeAgent
from maintainpro.iot.security_records import CredentialKind, IssuedCredential, ProvisioningKey

log = logging.getLogger(__name__)

PSK_FIELDS = ("psk_identity", "psk", "psk_hex")


class ProvisioningRefused(Exception):
    """A provisioning request is not allowed; the message is safe to show the caller."""


@dataclass(frozen=True)
class Secret:
    """A credential just issued, with what the holder needs (shown once)."""

    record: IssuedCredential
    values: dict[str, str]


def _retire(
    session: Session,
    kind: CredentialKind,
    now: dt.datetime,
    device: Device | None,
    agent: EdgeAgent | None,
) -> None:
    query = select(IssuedCredential).where(
        IssuedCredential.kind == kind,
        IssuedCredential.active.is_(True),
        holder_filter(device, agent),
    )
    for old in session.scalars(query):
        old.active = False
        old.revoked_at = now


def issue_mqtt_password(
    session: Session,
    *,
    device: Device | None = None,
    agent: EdgeAgent | None = None,
    now: dt.datetime | None = None,
) -> Secret:
    """A new broker password; the previous one stops working when the files are rewritten
    (Mosquitto's password file has one line per username, so there is no overlap)."""
    if (device is None) == (agent is None):
        raise ValueError("give exactly one of device or agent")
    now = now or utcnow()
    username = device.key if device is not None else security.agent_username(agent.key)  # type: ignore[union-attr]
    security.check_username(username)
    _retire(session, CredentialKind.MQTT_PASSWORD, now, device, agent)
    password = security.generate_password()
    record = IssuedCredential(
        kind=CredentialKind.MQTT_PASSWORD,
        device_id=device.id if device is not None else None,
        edge_agent_id=agent.id if agent is not None else None,
        username=username,
        secret_hash=security.mosquitto_hash(password),
        active=True,
    )
    session.add(record)
    session.flush()
    return Secret(record, {"username": username, "password": password})


def issue_coap_psk(
    session: Session, box: CredentialBox, device: Device, *, now: dt.datetime | None = None
) -> Secret:
    """A new DTLS PSK sealed into the device's credentials (the CoAP server reads it there)."""
    now = now or utcnow()
    _retire(session, CredentialKind.COAP_PSK, now, device, None)
    identity, key_hex = security.generate_psk()
    stored = {k: v for k, v in box.open(device.credentials).items() if k not in PSK_FIELDS}
    stored.update({"psk_identity": identity, "psk_hex": key_hex})
    device.credentials = box.seal(stored)
    record = IssuedCredential(
        kind=CredentialKind.COAP_PSK, device_id=device.id, username=identity, active=True
    )
    session.add(record)
    session.flush()
    return Secret(record, {"psk_identity": identity, "psk_hex": key_hex})


def issue_certificate(
    session: Session,
    ca: DeviceCa,
    *,
    device: Device | None = None,
    agent: EdgeAgent | None = None,
    days: int = 365,
    not_after: dt.datetime | None = None,
    grace: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> Secret:
    """A client certificate from the device CA; older ones stay valid for the grace time."""
    record, issued = issue_client_certificate(
        session,
        ca,
        device=device,
        agent=agent,
        days=days,
        not_after=not_after,
        grace=grace,
        now=now,
    )
    return Secret(
        record,
        {
            "certificate_pem": issued.cert_pem.decode(),
            "private_key_pem": issued.key_pem.decode(),
            "ca_pem": issued.ca_pem.decode(),
        },
    )


def revoke(
    session: Session,
    record: IssuedCredential,
    box: CredentialBox | None,
    *,
    now: dt.datetime | None = None,
) -> None:
    """Revoke at once; a CoAP PSK is also removed from the device's sealed credentials."""
    now = now or utcnow()
    record.active = False
    if record.revoked_at is None or record.revoked_at > now:
        record.revoked_at = now
    if record.kind == CredentialKind.COAP_PSK and record.device_id is not None and box:
        device = session.get(Device, record.device_id)
        if device is not None:
            stored = box.open(device.credentials)
            if stored.get("psk_identity") == record.username:
                kept = {k: v for k, v in stored.items() if k not in PSK_FIELDS}
                device.credentials = box.seal(kept) if kept else None


def apply_to_broker(session: Session, settings: Settings) -> BrokerFilesResult | None:
    """After a committed change: rewrite the broker files (and CRL) and reload the broker."""
    ca = DeviceCa(settings.device_ca_dir)
    if ca.cert_path.exists():
        ca.write_crl(revoked_serials(session), utcnow())
    if settings.mqtt_password_file is None and settings.mqtt_acl_file is None:
        return None
    return write_broker_files(session, settings)


# --------------------------------------------------------------------------------------------
# Provisioning keys
# --------------------------------------------------------------------------------------------


def create_provisioning_key(
    session: Session, label: str, *, uses: int | None, expires_at: dt.datetime | None
) -> tuple[ProvisioningKey, str]:
    """A new provisioning key; the key is returned once, only its hash is stored."""
    key = security.generate_provisioning_key()
    record = ProvisioningKey(
        label=label,
        key_hash=security.hash_provisioning_key(key),
        hint=security.key_hint(key),
        uses_left=uses,
        expires_at=expires_at,
    )
    session.add(record)
    session.flush()
    return record, key


def redeem_provisioning_key(
    session: Session, key: str, *, now: dt.datetime | None = None
) -> ProvisioningKey:
    """Use a provisioning key once (row locked where the database can) or refuse."""
    now = now or utcnow()
    record = session.scalars(
        select(ProvisioningKey)
        .where(ProvisioningKey.key_hash == security.hash_provisioning_key(key))
        .with_for_update()
    ).one_or_none()
    # One message for every refusal: a caller learns nothing about which keys exist.
    refused = ProvisioningRefused("the provisioning key is unknown, used up, expired or revoked")
    if record is None or record.revoked_at is not None:
        raise refused
    if record.expires_at is not None and record.expires_at <= now:
        raise refused
    if record.uses_left is not None:
        if record.uses_left <= 0:
            raise refused
        record.uses_left -= 1
    return record


# --------------------------------------------------------------------------------------------
# OPC-UA application certificate and trusted servers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpcUaPki:
    """Where an OPC-UA client keeps its own certificate and the servers it trusts."""

    directory: Path

    @property
    def certificate(self) -> Path:
        """The application certificate (DER): the OPC-UA device setting `certificate`."""
        return self.directory / "own" / "cert.der"

    @property
    def private_key(self) -> Path:
        """Its private key (PEM, 0600): the device setting `private_key`."""
        return self.directory / "own" / "key.pem"

    @property
    def trusted(self) -> Path:
        """The trust store of server certificates: the device setting `trust_store`."""
        return self.directory / "trusted"


def create_opcua_certificate(
    session: Session | None,
    pki: OpcUaPki,
    *,
    application_uri: str,
    hostnames: tuple[str, ...] = ("localhost",),
    days: int = 365,
    replace: bool = False,
) -> x509.Certificate:
    """Create the application certificate (reusing generate_application_certificate) and record
    it for expiry monitoring; refuses to overwrite an existing one unless asked."""
    if pki.certificate.exists() and not replace:
        raise FileExistsError(f"{pki.certificate} exists (replace it explicitly)")
    cert = generate_application_certificate(
        pki.certificate,
        pki.private_key,
        application_uri=application_uri,
        hostnames=hostnames,
        days=days,
    )
    pki.trusted.mkdir(parents=True, exist_ok=True)
    if session is not None:
        session.add(
            IssuedCredential(
                kind=CredentialKind.OPCUA_CERTIFICATE,
                username=application_uri,
                serial=security.serial_text(cert),
                fingerprint=security.fingerprint(cert),
                not_after=cert.not_valid_after_utc,
                active=True,
            )
        )
    return cert


def trust_server_certificate(pki: OpcUaPki, data: bytes) -> Path:
    """Add a server (or CA) certificate, DER or PEM, to the trust store; returns its path."""
    cert = load_certificate(data)
    name = security.fingerprint(cert).replace(":", "").lower()[:40]
    pki.trusted.mkdir(parents=True, exist_ok=True)
    path = pki.trusted / f"{name}{CERT_SUFFIXES[0]}"
    path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return path


def credential_housekeeping(factory: sessionmaker[Session], settings: Settings) -> int:
    """One pass of credential upkeep: end rotation grace periods (and tell the broker at once),
    then warn about certificates close to expiry. Returns the credentials deactivated."""
    with factory() as session, session.begin():
        set_actor(session, SYSTEM)
        ended = finish_revocations(session)
        scan_expiring(session, within_days=settings.credential_expiry_warn_days)
    if ended:
        with factory() as session:
            apply_to_broker(session, settings)
    return len(ended)
