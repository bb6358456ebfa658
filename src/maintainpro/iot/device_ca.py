"""The hub's device CA: created on first use, issues client certificates, rotates, scans expiry."""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent, emit
from maintainpro.iot import security
from maintainpro.iot.devices import Device
from maintainpro.iot.edge_agents import EdgeAgent
from maintainpro.iot.security_records import CredentialKind, IssuedCredential

log = logging.getLogger(__name__)

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
CRL_FILE = "crl.pem"
CA_YEARS = 10
EXPIRING_TOPIC = "credential.expiring"
# Some clocks in the field run behind; a certificate valid from "now" would be refused by them.
BACKDATE = dt.timedelta(minutes=5)


class DeviceCaError(RuntimeError):
    """The CA's files are missing, unreadable or do not belong together."""


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key, handed out once."""

    cert: x509.Certificate
    key_pem: bytes
    ca_pem: bytes

    @property
    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return security.cert_pem(self.cert)


def _write_private(path: Path, data: bytes) -> None:
    # O_EXCL + 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class DeviceCa:
    """A directory holding the CA certificate (ca.pem) and its key (ca.key, 0600)."""

    def __init__(self, directory: Path, common_name: str = "MaintAInPro device CA") -> None:
        self.directory = directory
        self.common_name = common_name
        self._loaded: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None

    @property
    def cert_path(self) -> Path:
        """The CA certificate (give it to brokers and devices)."""
        return self.directory / CA_CERT

    @property
    def key_path(self) -> Path:
        """The CA private key."""
        return self.directory / CA_KEY

    @property
    def crl_path(self) -> Path:
        """The certificate revocation list (Mosquitto's crlfile)."""
        return self.directory / CRL_FILE

    def load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The CA certificate and key, created on first use."""
        if self._loaded is not None:
            return self._loaded
        if not self.cert_path.exists() and not self.key_path.exists():
            self._create()
        try:
            cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise DeviceCaError(f"the device CA in {self.directory} cannot be read: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or (
            key.public_key().public_numbers() != cert.public_key().public_numbers()  # type: ignore[union-attr]
        ):
            raise DeviceCaError(f"{self.key_path} is not the key of {self.cert_path}")
        self._loaded = (cert, key)
        return self._loaded

    def _create(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        now = utcnow()
        cert, key = security.make_ca(
            self.common_name,
            not_before=now - BACKDATE,
            not_after=now + dt.timedelta(days=365 * CA_YEARS),
        )
        _write_private(self.key_path, security.key_pem(key))
        self.cert_path.write_bytes(security.cert_pem(cert))
        log.info("device CA created", extra={"path": str(self.directory)})

    def ca_pem(self) -> bytes:
        """The CA certificate as PEM."""
        return security.cert_pem(self.load()[0])

    def issue(
        self,
        common_name: str,
        *,
        not_after: dt.datetime,
        not_before: dt.datetime | None = None,
        server_names: tuple[str, ...] = (),
    ) -> IssuedCertificate:
        """A certificate for a client (CN = device key) or, with server names, a broker."""
        ca_cert, ca_key = self.load()
        start = not_before if not_before is not None else utcnow() - BACKDATE
        if not_after <= start:
            # An already expired certificate is allowed (tests, drills) but must be well formed.
            start = not_after - dt.timedelta(days=1)
        cert, key = security.issue_certificate(
            ca_cert,
            ca_key,
            common_name,
            not_before=start,
            not_after=not_after,
            server_names=server_names,
        )
        return IssuedCertificate(cert=cert, key_pem=security.key_pem(key), ca_pem=self.ca_pem())

    def write_crl(self, revoked: list[tuple[int, dt.datetime]], now: dt.datetime) -> Path:
        """Write the CRL of the given (serial, revoked at) pairs atomically."""
        ca_cert, ca_key = self.load()
        crl = security.make_crl(ca_cert, ca_key, revoked, now=now)
        tmp = self.crl_path.with_name(f".{CRL_FILE}.tmp")
        tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        os.replace(tmp, self.crl_path)
        return self.crl_path


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def in_force(now: dt.datetime) -> list[ColumnElement[bool]]:
    """SQL conditions of a credential that authenticates right now."""
    return [
        IssuedCredential.active.is_(True),
        or_(IssuedCredential.revoked_at.is_(None), IssuedCredential.revoked_at > now),
        or_(IssuedCredential.not_after.is_(None), IssuedCredential.not_after > now),
    ]


def issue_client_certificate(
    session: Session,
    ca: DeviceCa,
    *,
    device: Device | None = None,
    agent: EdgeAgent | None = None,
    days: int = 365,
    not_after: dt.datetime | None = None,
    grace: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> tuple[IssuedCredential, IssuedCertificate]:
    """Issue a client certificate (CN = device key or edge username) and record it.

    Certificates the holder already has stay valid until now + grace (rotation); without a
    grace they stay valid until they expire or are revoked.
    """
    if (device is None) == (agent is None):
        raise ValueError("give exactly one of device or agent")
    now = now or utcnow()
    cn = device.key if device is not None else security.agent_username(agent.key)  # type: ignore[union-attr]
    security.check_username(cn)
    issued = ca.issue(cn, not_after=not_after or now + dt.timedelta(days=days))
    if grace is not None:
        for old in _holder_credentials(session, CredentialKind.CLIENT_CERTIFICATE, device, agent):
            if old.active and (old.revoked_at is None or old.revoked_at > now + grace):
                old.revoked_at = now + grace
    record = IssuedCredential(
        kind=CredentialKind.CLIENT_CERTIFICATE,
        device_id=device.id if device is not None else None,
        edge_agent_id=agent.id if agent is not None else None,
        username=cn,
        serial=security.serial_text(issued.cert),
        fingerprint=security.fingerprint(issued.cert),
        not_after=issued.cert.not_valid_after_utc,
        active=True,
    )
    session.add(record)
    session.flush()
    log.info(
        "client certificate issued",
        extra={"cn": cn, "serial": record.serial, "not_after": record.not_after.isoformat()},  # type: ignore[union-attr]
    )
    return record, issued


def _holder_credentials(
    session: Session, kind: CredentialKind, device: Device | None, agent: EdgeAgent | None
) -> list[IssuedCredential]:
    query = select(IssuedCredential).where(
        IssuedCredential.kind == kind, holder_filter(device, agent)
    )
    return list(session.scalars(query))


def holder_filter(device: Device | None, agent: EdgeAgent | None) -> ColumnElement[bool]:
    """The condition selecting the credentials of a device or of an edge agent."""
    if device is not None:
        return IssuedCredential.device_id == device.id
    if agent is not None:
        return IssuedCredential.edge_agent_id == agent.id
    raise ValueError("give a device or an agent")


def finish_revocations(session: Session, now: dt.datetime | None = None) -> list[IssuedCredential]:
    """Deactivate credentials whose revocation time (end of a rotation grace) has come."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(IssuedCredential).where(
                IssuedCredential.active.is_(True),
                IssuedCredential.revoked_at.is_not(None),
                IssuedCredential.revoked_at <= now,
            )
        )
    )
    for record in due:
        record.active = False
    return due


def revoked_serials(session: Session) -> list[tuple[int, dt.datetime]]:
    """(serial, revoked at) of every revoked client certificate, for the CRL."""
    rows = session.execute(
        select(IssuedCredential.serial, IssuedCredential.revoked_at).where(
            IssuedCredential.kind == CredentialKind.CLIENT_CERTIFICATE,
            IssuedCredential.revoked_at.is_not(None),
            IssuedCredential.serial.is_not(None),
        )
    )
    return [(int(serial, 16), at) for serial, at in rows if serial and at is not None]


def scan_expiring(
    session: Session, *, within_days: int, now: dt.datetime | None = None
) -> list[IssuedCredential]:
    """Certificates in force that expire within the window; one `credential.expiring` event
    per certificate (not repeated on later scans)."""
    now = now or utcnow()
    horizon = now + dt.timedelta(days=within_days)
    expiring = list(
        session.scalars(
            select(IssuedCredential)
            .where(
                *in_force(now),
                IssuedCredential.not_after.is_not(None),
                IssuedCredential.not_after <= horizon,
            )
            .order_by(IssuedCredential.not_after)
        )
    )
    if not expiring:
        return []
    # The outbox is the memory of what was announced; scanning only the window keeps it cheap.
    announced = {
        event.payload.get("credential_id")
        for event in session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.topic == EXPIRING_TOPIC,
                OutboxEvent.created_at >= now - dt.timedelta(days=within_days + 1),
            )
        )
    }
    for record in expiring:
        if record.id in announced or record.not_after is None:
            continue
        emit(
            session,
            EXPIRING_TOPIC,
            {
                "credential_id": record.id,
                "kind": record.kind.value,
                "device_id": record.device_id,
                "edge_agent_id": record.edge_agent_id,
                "username": record.username,
                "serial": record.serial,
                "not_after": record.not_after.isoformat(),
                "days_left": max(0, (record.not_after - now).days),
                "severity": "warning",
            },
        )
    return expiring
