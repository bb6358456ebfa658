"""Test helpers for MQTT: a private Mosquitto per test, a test CA, password files, publishers."""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
LOCAL_BROKER = ("127.0.0.1", 1883)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Mosquitto:
    """A Mosquitto broker of the test's own, in a directory of its own, on free ports."""

    def __init__(self, directory: Path, config: str, ports: Iterable[int]) -> None:
        self.directory = directory
        self.ports = tuple(ports)
        self.config_file = directory / "mosquitto.conf"
        self.config_file.write_text(config)
        self.log_file = directory / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The first listener's port."""
        return self.ports[0]

    def start(self) -> None:
        """Start the broker and wait for every listener."""
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config
                [MOSQUITTO, "-c", str(self.config_file)],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for port in self.ports:
            wait_for_port(port)

    def stop(self) -> None:
        """Stop it the way an init system does (SIGTERM: persistence is saved)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log(self) -> str:
        """The broker's log so far, for assertion messages."""
        return self.log_file.read_text(errors="replace")


def broker_config(
    *listeners: str, persistence: bool = False, directory: Path | None = None, extra: str = ""
) -> str:
    """A mosquitto.conf with the hub's recommended limits and the given listener blocks."""
    lines = [
        # Started as root, Mosquitto would switch to the "mosquitto" user, which cannot write
        # the test's directory; as anyone else the option is ignored.
        f"user {getpass.getuser()}",
        "per_listener_settings false",
        "max_queued_messages 1000000",
        "max_inflight_messages 0",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if persistence and directory is not None:
        lines += ["persistence true", f"persistence_location {directory}/", "autosave_interval 1"]
    return "\n".join([*lines, extra, *listeners]) + "\n"


@dataclass(frozen=True)
class Pki:
    """Files of a test CA, a server certificate for 127.0.0.1 and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    name: str,
    usage: x509.ObjectIdentifier,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(directory: Path) -> Pki:
    """Generate a CA, a server certificate for 127.0.0.1/localhost, a client certificate,
    and an unrelated CA (to prove verification fails with the wrong one)."""
    ca, ca_key = _ca("MaintAInPro test CA")
    other, _ = _ca("Some other CA")
    server, server_key = _leaf(ca, ca_key, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, True)
    client, client_key = _leaf(ca, ca_key, "hub", ExtendedKeyUsageOID.CLIENT_AUTH, False)
    pem = serialization.Encoding.PEM
    files = {
        "ca.pem": ca.public_bytes(pem),
        "other-ca.pem": other.public_bytes(pem),
        "server.pem": server.public_bytes(pem),
        "server.key": _key_pem(server_key),
        "client.pem": client.public_bytes(pem),
        "client.key": _key_pem(client_key),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
        os.chmod(directory / name, 0o600 if name.endswith(".key") else 0o644)
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.pem",
    )


def password_file(path: Path, users: dict[str, str]) -> Path:
    """A Mosquitto password file made with mosquitto_passwd -b (hashed, as in production)."""
    path.touch(mode=0o600)
    for user, password in users.items():
        subprocess.run(  # noqa: S603 - fixed binary, test values
            [MOSQUITTO_PASSWD, "-b", str(path), user, password], check=True, capture_output=True
        )
    return path


def unique(prefix: str) -> str:
    """A topic root / client id nobody else uses on the shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def reading_payload(value: float, timestamp: dt.datetime) -> bytes:
    """The JSON a device publishes for one reading."""
    stamp = timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"value": value, "timestamp": stamp, "quality": "good"}).encode()


def connect_publisher(
    port: int,
    client_id: str | None = None,
    *,
    host: str = "127.0.0.1",
    username: str | None = None,
    password: str | None = None,
    ca: Path | None = None,
) -> Client:
    """A paho publisher (QoS 1 capable, large in-flight window), loop running."""
    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or unique("pub"),
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=True,
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    if username is not None:
        client.username_pw_set(username, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
    # Retry quickly while a broker restarts: the test waits on it.
    client.reconnect_delay_set(1, 1)
    client.connect(host, port)
    client.loop_start()
    return client


def forget_session(client_id: str, port: int = LOCAL_BROKER[1]) -> None:
    """Connect with a clean start and no expiry, so the broker drops a test's session."""
    client = Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0
    try:
        client.connect("127.0.0.1", port, clean_start=True, properties=properties)
        client.loop(0.2)
        client.disconnect()
    except OSError:
        pass


class SteadyPublisher:
    """Publishes numbered QoS 1 readings at a steady rate in a thread, across broker outages."""

    def __init__(
        self,
        client: Client,
        topic: str,
        count: int,
        rate: float,
        start: dt.datetime,
    ) -> None:
        self.client = client
        self.topic = topic
        self.count = count
        self.rate = rate
        self.start = start
        self.published = 0
        self.acked = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        client.on_publish = self._on_publish

    def _on_publish(
        self, client: Client, userdata: object, mid: int, reason: object, properties: object
    ) -> None:
        # paho reports each message once, after the broker's PUBACK (also after a resend).
        self.acked += 1

    def begin(self) -> None:
        """Start publishing."""
        self._thread.start()

    def _run(self) -> None:
        began = time.monotonic()
        for index in range(self.count):
            delay = began + index / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            payload = reading_payload(float(index), self.start + dt.timedelta(milliseconds=index))
            # paho queues while disconnected and resends unacknowledged messages on reconnect.
            self.client.publish(self.topic, payload, qos=1)
            self.published = index + 1

    def join(self, timeout: float = 30.0) -> None:
        """Wait until every message was handed to paho."""
        self._thread.join(timeout)

    def wait_delivered(self, timeout: float = 30.0) -> None:
        """Wait until the broker acknowledged every message."""
        deadline = time.monotonic() + timeout
        while self.acked < self.count:
            if time.monotonic() > deadline:
                raise TimeoutError("publisher still has unacknowledged messages")
            time.sleep(0.02)
