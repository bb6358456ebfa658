"""Generated broker files and hub-issued certificates against a real Mosquitto of the test's own."""

from __future__ import annotations

import datetime as dt
import queue
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.iot import issuing
from maintainpro.iot.broker_auth import (
    BrokerAccounts,
    atomic_write,
    hub_users,
    render_files,
    write_broker_files,
)
from maintainpro.iot.device_ca import DeviceCa
from maintainpro.iot.devices import Device, Protocol
from maintainpro.iot.security_records import IssuedCredential
from mosquitto import Mosquitto, broker_config, free_port, unique

pytestmark = pytest.mark.integration

HUB_PASSWORD = "hub-password-for-tests"


def attempt(
    port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    tls: tuple[Path, Path, Path] | None = None,
    timeout: float = 5.0,
) -> Client | None:
    """A connected client with its loop running, or None if the broker refused it."""
    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=unique("c"),
        protocol=MQTTProtocolVersion.MQTTv311,
    )
    outcome: queue.Queue[bool] = queue.Queue()
    client.on_connect = lambda c, u, f, reason, p: outcome.put(not reason.is_failure)
    client.on_disconnect = lambda c, u, f, reason, p: outcome.put(False)
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        ca, cert, key = tls
        client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key))
    try:
        client.connect("127.0.0.1", port)
    except (OSError, ssl.SSLError):
        return None
    client.loop_start()
    try:
        ok = outcome.get(timeout=timeout)
    except queue.Empty:
        ok = False
    if not ok:
        client.loop_stop()
        client.disconnect()
        return None
    return client


def close(*clients: Client | None) -> None:
    """Disconnect whatever connected."""
    for client in clients:
        if client is not None:
            client.disconnect()
            client.loop_stop()


@pytest.fixture
def broker_settings(tmp_path: Path) -> Settings:
    """Settings naming broker files in the test's directory."""
    return Settings(
        mqtt_username="hub",
        mqtt_password=HUB_PASSWORD,
        mqtt_password_file=tmp_path / "passwd",
        mqtt_acl_file=tmp_path / "acl",
        mqtt_broker_pid_file=tmp_path / "mosquitto.pid",
        device_ca_dir=tmp_path / "ca",
    )


@pytest.fixture
def broker(tmp_path: Path, broker_settings: Settings) -> Iterator[Mosquitto]:
    """A Mosquitto using the generated files (written empty first), with a pid file."""
    write_broker_files_empty(broker_settings)
    port = free_port()
    listener = (
        f"listener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {broker_settings.mqtt_password_file}\n"
        f"acl_file {broker_settings.mqtt_acl_file}\n"
    )
    server = Mosquitto(tmp_path, broker_config(listener), [port])
    server.start()
    assert server.process is not None
    assert broker_settings.mqtt_broker_pid_file is not None
    broker_settings.mqtt_broker_pid_file.write_text(str(server.process.pid))
    yield server
    server.stop()


def write_broker_files_empty(settings: Settings) -> None:
    """Files with only the hub account, so the broker starts before any device exists."""
    passwords, acl = render_files(BrokerAccounts(), hub_users(settings))
    assert settings.mqtt_password_file is not None
    assert settings.mqtt_acl_file is not None
    atomic_write(settings.mqtt_password_file, passwords)
    atomic_write(settings.mqtt_acl_file, acl)


def until(condition: object, within: float = 8.0) -> bool:
    """Poll a callable until it is true or the time is up."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_acl_confines_devices_and_revocation_refuses_after_reload(
    session_factory: sessionmaker[Session], broker: Mosquitto, broker_settings: Settings
) -> None:
    with session_factory() as session, session.begin():
        one = Device(key="pump-1", name="Pump", protocol=Protocol.MQTT)
        two = Device(key="fan-2", name="Fan", protocol=Protocol.MQTT)
        session.add_all([one, two])
        session.flush()
        first = issuing.issue_mqtt_password(session, device=one)
        second = issuing.issue_mqtt_password(session, device=two)
    with session_factory() as session:
        assert write_broker_files(session, broker_settings).reloaded
    assert broker_settings.mqtt_password_file is not None
    assert first.values["password"] not in broker_settings.mqtt_password_file.read_text()

    hub = device = None
    try:
        hub = attempt(broker.port, username="hub", password=HUB_PASSWORD)
        assert hub is not None, broker.log()
        received: queue.Queue[str] = queue.Queue()

        def on_message(client: Client, userdata: object, message: MQTTMessage) -> None:
            received.put(message.topic)

        hub.on_message = on_message
        hub.subscribe("devices/#", qos=1)
        time.sleep(0.3)
        assert attempt(broker.port, username="pump-1", password="wrong") is None
        device = attempt(broker.port, **first.values)
        assert device is not None
        # The foreign topic first: if the broker let it through it would arrive before ours.
        device.publish("devices/fan-2/sensors/t/data", b"1", qos=1).wait_for_publish(5)
        device.publish("devices/pump-1/sensors/t/data", b"2", qos=1).wait_for_publish(5)
        assert received.get(timeout=5) == "devices/pump-1/sensors/t/data"
        time.sleep(0.3)
        assert received.empty(), "a device wrote to another device's topic"

        with session_factory() as session, session.begin():
            record = session.get(IssuedCredential, first.record.id)
            assert record is not None
            issuing.revoke(session, record, None)
        with session_factory() as session:
            assert write_broker_files(session, broker_settings).reloaded
        # SIGHUP is handled in the broker's loop: wait for the refusal.
        assert until(lambda: attempt(broker.port, **first.values, timeout=1) is None), broker.log()
        other = attempt(broker.port, **second.values)
        assert other is not None, "the other device is unaffected"
        close(other)
    finally:
        close(hub, device)


def test_mutual_tls_with_hub_certificates(
    session_factory: sessionmaker[Session], tmp_path: Path, broker_settings: Settings
) -> None:
    ca = DeviceCa(broker_settings.device_ca_dir)
    server = ca.issue(
        "127.0.0.1",
        not_after=utcnow() + dt.timedelta(days=1),
        server_names=("127.0.0.1", "localhost"),
    )
    (tmp_path / "server.pem").write_bytes(server.cert_pem)
    (tmp_path / "server.key").write_bytes(server.key_pem)
    assert ca.key_path.stat().st_mode & 0o777 == 0o600
    with session_factory() as session, session.begin():
        good = Device(key="pump-1", name="Pump", protocol=Protocol.MQTT)
        old = Device(key="old-3", name="Old", protocol=Protocol.MQTT)
        session.add_all([good, old])
        session.flush()
        valid = issuing.issue_certificate(session, ca, device=good, days=30)
        expired = issuing.issue_certificate(
            session, ca, device=old, not_after=utcnow() - dt.timedelta(hours=1)
        )
    files = {}
    for name, secret in (("good", valid), ("expired", expired)):
        cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
        cert.write_text(secret.values["certificate_pem"])
        key.write_text(secret.values["private_key_pem"])
        files[name] = (ca.cert_path, cert, key)
    port = free_port()
    listener = (
        f"listener {port} 127.0.0.1\ncafile {ca.cert_path}\ncertfile {tmp_path / 'server.pem'}\n"
        f"keyfile {tmp_path / 'server.key'}\nrequire_certificate true\n"
        "use_identity_as_username true\nallow_anonymous false\n"
    )
    mosquitto = Mosquitto(tmp_path, broker_config(listener), [port])
    mosquitto.start()
    try:
        client = attempt(port, tls=files["good"])
        assert client is not None, mosquitto.log()
        close(client)
        assert attempt(port, tls=files["expired"]) is None
    finally:
        mosquitto.stop()
