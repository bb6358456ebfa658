"""Device security API: secrets shown once, revocation, provisioning keys (uses, lifetime)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.config import Settings
from maintainpro.core.audit import AuditEntry
from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent
from maintainpro.core.users import Role
from maintainpro.iot.credentials import CredentialBox
from maintainpro.iot.devices import Device, Protocol
from maintainpro.iot.security import verify_mosquitto_hash
from maintainpro.iot.security_records import IssuedCredential, ProvisioningKey
from support import bearer

API = "/api/v1"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test settings with broker files, CA and OPC-UA PKI in the test's directory."""
    return settings.model_copy(
        update={
            "mqtt_username": "hub",
            "mqtt_password_file": tmp_path / "passwd",
            "mqtt_acl_file": tmp_path / "acl",
            "device_ca_dir": tmp_path / "ca",
            "opcua_pki_dir": tmp_path / "opcua",
        }
    )


@pytest.fixture
def devices(db: Session) -> None:
    """An MQTT device and a CoAP device."""
    db.add_all(
        [
            Device(key="pump-1", name="Pump", protocol=Protocol.MQTT),
            Device(key="coap-2", name="Sensor", protocol=Protocol.COAP),
        ]
    )
    db.commit()


def _box(settings: Settings) -> CredentialBox:
    assert settings.credentials_key is not None
    return CredentialBox(settings.credentials_key.get_secret_value().encode())


@pytest.mark.usefixtures("devices")
def test_mqtt_password_shown_once_and_rotated(
    client: TestClient, admin_headers: dict[str, str], db: Session, settings: Settings
) -> None:
    url = f"{API}/devices/pump-1/credentials"
    first = client.post(url, headers=admin_headers, json={"kind": "mqtt_password"})
    assert first.status_code == 201, first.text
    assert first.headers["cache-control"] == "no-store"
    password = first.json()["secret"]["password"]
    assert first.json()["secret"]["username"] == "pump-1"
    listed = client.get(url, headers=admin_headers)
    assert listed.status_code == 200
    assert password not in listed.text
    assert "secret_hash" not in listed.text
    record = db.scalars(select(IssuedCredential)).one()
    assert record.secret_hash
    assert verify_mosquitto_hash(password, record.secret_hash)
    assert settings.mqtt_password_file is not None
    assert settings.mqtt_acl_file is not None
    assert settings.mqtt_password_file.read_text().startswith("hub:$7$")
    assert "pump-1:$7$" in settings.mqtt_password_file.read_text()
    assert password not in settings.mqtt_password_file.read_text()
    assert "topic write devices/pump-1/#" in settings.mqtt_acl_file.read_text()
    second = client.post(url, headers=admin_headers, json={"kind": "mqtt_password"})
    new_hash = db.scalars(
        select(IssuedCredential.secret_hash).where(IssuedCredential.active.is_(True))
    ).one()
    assert new_hash is not None
    assert verify_mosquitto_hash(second.json()["secret"]["password"], new_hash)
    assert settings.mqtt_password_file.read_text().count("pump-1:") == 1
    assert new_hash in settings.mqtt_password_file.read_text()
    audit = db.scalars(select(AuditEntry).where(AuditEntry.entity == "issued_credentials")).all()
    assert audit
    assert all(password not in str(entry.after) for entry in audit)


@pytest.mark.usefixtures("devices")
def test_certificate_issue_and_revoke(
    client: TestClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    issued = client.post(
        f"{API}/devices/pump-1/credentials",
        headers=admin_headers,
        json={"kind": "client_certificate", "days": 10},
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    cert = x509.load_pem_x509_certificate(body["secret"]["certificate_pem"].encode())
    assert cert.subject.rfc4514_string() == "CN=pump-1"
    assert "PRIVATE KEY" in body["secret"]["private_key_pem"]
    assert body["credential"]["serial"] == format(cert.serial_number, "X")
    listed = client.get(f"{API}/devices/pump-1/credentials", headers=admin_headers)
    assert "PRIVATE KEY" not in listed.text
    expiring = client.get(f"{API}/credentials/expiring?days=30", headers=admin_headers).json()
    assert [c["id"] for c in expiring] == [body["credential"]["id"]]
    assert settings.mqtt_acl_file is not None
    assert "devices/pump-1/#" in settings.mqtt_acl_file.read_text()
    revoked = client.post(
        f"{API}/credentials/{body['credential']['id']}/revoke", headers=admin_headers
    )
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    assert "pump-1" not in settings.mqtt_acl_file.read_text()
    crl = x509.load_pem_x509_crl((settings.device_ca_dir / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


@pytest.mark.usefixtures("devices")
def test_rotation_keeps_the_old_certificate_for_the_grace(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    url = f"{API}/devices/pump-1/credentials"
    client.post(url, headers=admin_headers, json={"kind": "client_certificate"})
    client.post(url, headers=admin_headers, json={"kind": "client_certificate", "grace_hours": 2})
    old, new = db.scalars(select(IssuedCredential).order_by(IssuedCredential.id)).all()
    assert old.active
    assert new.active
    assert new.revoked_at is None
    assert old.revoked_at is not None
    assert dt.timedelta(hours=1.9) < old.revoked_at - utcnow() <= dt.timedelta(hours=2)


@pytest.mark.usefixtures("devices")
def test_coap_psk_sealed_for_the_coap_server(
    client: TestClient, admin_headers: dict[str, str], db: Session, settings: Settings
) -> None:
    issued = client.post(
        f"{API}/devices/coap-2/credentials", headers=admin_headers, json={"kind": "coap_psk"}
    )
    assert issued.status_code == 201, issued.text
    secret = issued.json()["secret"]
    device = db.scalars(select(Device).where(Device.key == "coap-2")).one()
    assert device.credentials is not None
    assert secret["psk_hex"].encode() not in device.credentials
    assert _box(settings).open(device.credentials) == secret
    assert secret["psk_hex"] not in client.get(f"{API}/devices/coap-2", headers=admin_headers).text
    wrong = client.post(
        f"{API}/devices/pump-1/credentials", headers=admin_headers, json={"kind": "coap_psk"}
    )
    assert wrong.status_code == 409
    client.post(
        f"{API}/credentials/{issued.json()['credential']['id']}/revoke", headers=admin_headers
    )
    db.expire_all()
    assert _box(settings).open(db.get(Device, device.id).credentials) == {}  # type: ignore[union-attr]


@pytest.mark.usefixtures("devices")
def test_provisioning_key_uses_lifetime_and_once(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    created = client.post(
        f"{API}/provisioning-keys", headers=admin_headers, json={"label": "line 1", "uses": 1}
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    listed = client.get(f"{API}/provisioning-keys", headers=admin_headers)
    assert key not in listed.text
    assert listed.json()[0]["uses_left"] == 1
    request = {"provisioning_key": key, "device_key": "pump-1", "kind": "mqtt_password"}
    got = client.post(f"{API}/provision", json=request)
    assert got.status_code == 201, got.text
    assert got.json()["secret"]["password"]
    again = client.post(f"{API}/provision", json=request)
    assert again.status_code == 403, "the single use is spent"

    many_key = client.post(
        f"{API}/provisioning-keys", headers=admin_headers, json={"label": "many", "uses": 5}
    ).json()
    many = many_key["key"]
    twice = {"provisioning_key": many, "device_key": "pump-1", "kind": "mqtt_password"}
    assert client.post(f"{API}/provision", json=twice).status_code == 409, "asked once only"
    assert (
        client.post(f"{API}/provision", json={**twice, "kind": "client_certificate"}).status_code
        == 201
    )
    unknown = client.post(f"{API}/provision", json={**twice, "device_key": "nope"})
    assert unknown.status_code == 404
    assert (
        client.post(f"{API}/provision", json={**twice, "provisioning_key": "mpk_guess"}).status_code
        == 403
    )

    expired = client.post(
        f"{API}/provisioning-keys",
        headers=admin_headers,
        json={"label": "old", "expires_in_hours": 1},
    ).json()
    record = db.get(ProvisioningKey, expired["id"])
    assert record is not None
    record.expires_at = utcnow() - dt.timedelta(seconds=1)
    db.commit()
    refused = client.post(
        f"{API}/provision",
        json={"provisioning_key": expired["key"], "device_key": "coap-2", "kind": "coap_psk"},
    )
    assert refused.status_code == 403

    revoked = client.post(
        f"{API}/provisioning-keys", headers=admin_headers, json={"label": "gone"}
    ).json()
    assert (
        client.delete(f"{API}/provisioning-keys/{revoked['id']}", headers=admin_headers).status_code
        == 204
    )
    assert (
        client.post(
            f"{API}/provision",
            json={"provisioning_key": revoked["key"], "device_key": "coap-2", "kind": "coap_psk"},
        ).status_code
        == 403
    )

    actors = set(
        db.scalars(select(AuditEntry.actor).where(AuditEntry.actor.like("provisioning-key:%")))
    )
    assert actors == {
        f"provisioning-key:{created.json()['id']}",
        f"provisioning-key:{many_key['id']}",
    }
    assert all(key not in str(e.after) for e in db.scalars(select(AuditEntry)))


@pytest.mark.usefixtures("devices")
def test_expiry_scan_announces_once(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    client.post(
        f"{API}/devices/pump-1/credentials",
        headers=admin_headers,
        json={"kind": "client_certificate", "days": 5},
    )
    client.post(
        f"{API}/devices/pump-1/credentials",
        headers=admin_headers,
        json={"kind": "client_certificate", "days": 300, "grace_hours": 1000},
    )
    first = client.post(f"{API}/credentials/expiry-scan", headers=admin_headers)
    assert first.status_code == 200
    assert len(first.json()) == 1
    client.post(f"{API}/credentials/expiry-scan", headers=admin_headers)
    events = db.scalars(select(OutboxEvent).where(OutboxEvent.topic == "credential.expiring")).all()
    assert len(events) == 1
    assert events[0].payload["days_left"] in (4, 5)


def test_opcua_certificate_and_trust(
    client: TestClient, admin_headers: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    url = f"{API}/security/opcua/certificate"
    made = client.post(url, headers=admin_headers, json={"application_uri": "urn:test:hub"})
    assert made.status_code == 201, made.text
    assert "PRIVATE" not in made.text
    assert (settings.opcua_pki_dir / "own" / "key.pem").stat().st_mode & 0o777 == 0o600
    assert (
        client.post(url, headers=admin_headers, json={"application_uri": "urn:x"}).status_code
        == 409
    )
    cert = x509.load_der_x509_certificate(
        (settings.opcua_pki_dir / "own" / "cert.der").read_bytes()
    )
    trusted = client.post(
        f"{API}/security/opcua/trusted",
        headers=admin_headers,
        json={"certificate_pem": cert.public_bytes(Encoding.PEM).decode()},
    )
    assert trusted.status_code == 201, trusted.text
    assert Path(trusted.json()["path"]).parent == settings.opcua_pki_dir / "trusted"
    bad = client.post(
        f"{API}/security/opcua/trusted",
        headers=admin_headers,
        json={"certificate_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"},
    )
    assert bad.status_code == 422


def test_writers_only(client: TestClient, make_user: object) -> None:
    _, token = make_user(Role.TECHNICIAN)  # type: ignore[operator]
    assert (
        client.post(
            f"{API}/provisioning-keys", headers=bearer(token), json={"label": "x"}
        ).status_code
        == 403
    )
