"""The OPC-UA connector against real asyncua servers: subscriptions, polling, security, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.iot.connectors.base import Ack, DeviceConfig, Rejected, SensorConfig
from maintainpro.iot.connectors.opcua import (
    OpcUaConnector,
    OpcUaOptions,
    Target,
    error_text,
    parse_browse_path,
    quality_of,
    to_reading,
)
from maintainpro.iot.connectors.opcua_security import (
    TrustStore,
    UntrustedServerError,
    generate_application_certificate,
)
from maintainpro.iot.devices import DeadLetter, Device, Protocol, Sensor
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.readings import Quality, SensorReading
from maintainpro.iot.timeseries import readings_table

NS_URI = "urn:maintainpro:test:plant"
SERVER_URI = "urn:maintainpro:test:opcua-server"
HUB_URI = "urn:maintainpro:test:hub"
USERS = {"operator": "pump-room-7"}
# Fast timings so outages and recoveries happen within the test's budget.
FAST = {"sampling_interval_ms": 50, "publishing_interval_ms": 50, "watchdog_interval_s": 0.5}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OperatorUsers:
    """Server-side user check: only the configured operators get in."""

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, **_: Any
    ) -> User | None:
        """Accept a known user with the right password."""
        if username is not None and USERS.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class PlantServer:
    """A real asyncua server with a pump whose temperature and pressure keep changing."""

    def __init__(
        self,
        port: int,
        *,
        secure: tuple[Path, Path] | None = None,
        offset: float = 0.0,
        refuse_subscriptions: bool = False,
    ) -> None:
        self.port = port
        self.secure = secure
        self.offset = offset
        self.refuse_subscriptions = refuse_subscriptions
        self.url = f"opc.tcp://127.0.0.1:{port}/plant"
        self.ns = 0
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Build the address space and listen."""
        server = Server(user_manager=OperatorUsers()) if self.secure else Server()
        await server.init()
        server.set_endpoint(self.url)
        if self.secure:
            cert, key = self.secure
            await server.set_application_uri(SERVER_URI)
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            server.set_identity_tokens([ua.UserNameIdentityToken])
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if self.refuse_subscriptions:
            server.iserver.max_subscriptions = 0
        self.ns = await server.register_namespace(NS_URI)
        ns = self.ns
        pump = await server.nodes.objects.add_object(ua.NodeId("Pump1", ns), f"{ns}:Pump1")
        self.temp = await pump.add_variable(
            ua.NodeId("Pump1.Temp", ns), f"{ns}:Temperature", 20.0 + self.offset
        )
        self.pressure = await pump.add_variable(
            ua.NodeId("Pump1.Pressure", ns), f"{ns}:Pressure", 1.0 + self.offset
        )
        self.jitter = await pump.add_variable(ua.NodeId("Pump1.Jitter", ns), f"{ns}:Jitter", 5.0)
        self.running = await pump.add_variable(
            ua.NodeId("Pump1.Running", ns), f"{ns}:Running", True
        )
        await pump.add_variable(ua.NodeId("Pump1.Label", ns), f"{ns}:Label", "P-101 feed pump")
        await server.start()
        self._server = server
        self._ticker = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        step = 0
        while True:
            step += 1
            await self.temp.write_value(20.0 + self.offset + step)
            await self.pressure.write_value(1.0 + self.offset + step)
            await self.jitter.write_value(5.0 + (step % 2) / 100)
            await self.running.write_value(step % 2 == 0)
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop ticking and close every connection."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            await self._server.stop()
        self._server = None

    def node(self, name: str) -> str:
        """The NodeId string of a pump variable."""
        return f"ns={self.ns};s=Pump1.{name}"

    def path(self, name: str) -> str:
        """The browse path of a pump variable from the Root folder."""
        return f"0:Objects/{self.ns}:Pump1/{self.ns}:{name}"


@contextlib.asynccontextmanager
async def serving(server: PlantServer) -> AsyncIterator[PlantServer]:
    """Run a server for the block."""
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def running(*coroutines: Any) -> AsyncIterator[None]:
    """Run connectors and pipelines for the block, then cancel them."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=10)
        assert not pending, f"tasks ignored cancellation: {pending}"


class RecordingSink:
    """A sink that keeps what it is given (for tests that need no database)."""

    def __init__(self) -> None:
        self.readings: list[SensorReading] = []
        self.rejected: list[Rejected] = []
        self.states: list[tuple[bool, str | None]] = []

    async def submit(
        self,
        readings: Sequence[SensorReading],
        rejected: Sequence[Rejected] = (),
        ack: Ack | None = None,
    ) -> None:
        """Record readings and refusals."""
        self.readings.extend(readings)
        self.rejected.extend(rejected)

    def connection_state(
        self, device_key: str, *, connected: bool, error: str | None = None
    ) -> None:
        """Record connection changes."""
        self.states.append((connected, error))

    def errors(self) -> list[str]:
        """Every error reported so far."""
        return [error for _, error in self.states if error]


async def until(check: Callable[[], bool], what: str, limit_s: float = 10.0) -> None:
    """Wait for a condition, failing the test if it does not come true in time."""
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def device(key: str, url: str, sensors: dict[str, dict[str, Any]], **settings: Any) -> DeviceConfig:
    """A device snapshot as the runtime hands it to a connector."""
    credentials = settings.pop("credentials", {})
    return DeviceConfig(
        key=key,
        name=key,
        protocol="opcua",
        endpoint=url,
        settings={**FAST, **settings},
        sensors=tuple(SensorConfig(k, address) for k, address in sensors.items()),
        credentials=credentials,
    )


def register(factory: sessionmaker[Session], *configs: DeviceConfig) -> None:
    """Store devices and sensors so the pipeline accepts their readings."""
    with factory() as session, session.begin():
        for config in configs:
            row = Device(
                key=config.key,
                name=config.name,
                protocol=Protocol.OPCUA,
                endpoint=config.endpoint,
                settings=dict(config.settings),
            )
            for sensor in config.sensors:
                row.sensors.append(
                    Sensor(key=sensor.key, type="temperature", address=sensor.address)
                )
            session.add(row)


def stored(factory: sessionmaker[Session], device_key: str, sensor_key: str) -> list[float]:
    """Values stored for a sensor, oldest first."""
    with factory() as session:
        query = (
            select(readings_table.c.value)
            .join(Sensor, Sensor.id == readings_table.c.sensor_id)
            .join(Device, Device.id == Sensor.device_id)
            .where(Device.key == device_key, Sensor.key == sensor_key)
            .order_by(readings_table.c.ts)
        )
        return list(session.scalars(query))


def device_row(factory: sessionmaker[Session], key: str) -> Device:
    """The device as stored."""
    with factory() as session:
        return session.scalars(select(Device).where(Device.key == key)).one()


def certificates(tmp_path: Path) -> dict[str, Path]:
    """A server and a hub application certificate, with a trust store holding the server's."""
    paths = {
        "server_cert": tmp_path / "server" / "cert.der",
        "server_key": tmp_path / "server" / "key.pem",
        "hub_cert": tmp_path / "hub" / "cert.der",
        "hub_key": tmp_path / "hub" / "key.pem",
        "trusted": tmp_path / "trusted",
        "empty": tmp_path / "empty-store",
    }
    generate_application_certificate(
        paths["server_cert"],
        paths["server_key"],
        application_uri=SERVER_URI,
        hostnames=("127.0.0.1", socket.gethostname()),
        common_name="Test OPC-UA server",
        server=True,
    )
    generate_application_certificate(
        paths["hub_cert"],
        paths["hub_key"],
        application_uri=HUB_URI,
        hostnames=(socket.gethostname(),),
    )
    paths["trusted"].mkdir()
    shutil.copy(paths["server_cert"], paths["trusted"] / "plant-server.der")
    paths["empty"].mkdir()
    return paths


def secure_settings(paths: dict[str, Path], store: Path, **extra: Any) -> dict[str, Any]:
    """Settings for Basic256Sha256 SignAndEncrypt with the operator's login."""
    return {
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate": str(paths["hub_cert"]),
        "private_key": str(paths["hub_key"]),
        "trust_store": str(store),
        "credentials": {"username": "operator", "password": USERS["operator"]},
        **extra,
    }


# --- against the database (each runs on SQLite and PostgreSQL) ----------------------------------


async def test_subscribed_and_polled_readings_are_stored(
    session_factory: sessionmaker[Session],
) -> None:
    async with serving(PlantServer(free_port())) as server:
        subscribed = device(
            "pump-sub",
            server.url,
            {
                "temp": {"node": server.node("Temp")},
                "pressure": {"browse_path": server.path("Pressure")},
                "running": {"node": server.node("Running")},
                "jitter": {"node": server.node("Jitter")},
                "label": {"node": server.node("Label")},
                "ghost": {"node": f"ns={server.ns};s=Pump9.Temp"},
                "lost": {"browse_path": f"0:Objects/{server.ns}:Pump9/{server.ns}:Flow"},
            },
            deadband_type="absolute",
            deadband_value=0.5,
        )
        polled = device(
            "pump-poll",
            server.url,
            {
                "temp": {"node": server.node("Temp")},
                "pressure": {"browse_path": server.path("Pressure")},
            },
            mode="poll",
            poll_interval_ms=100,
            timestamps="server",
        )
        register(session_factory, subscribed, polled)
        pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
        sub_connector = OpcUaConnector(subscribed)
        poll_connector = OpcUaConnector(polled)
        async with running(
            pipeline.run(), sub_connector.run(pipeline), poll_connector.run(pipeline)
        ):
            wanted = [
                ("pump-sub", "temp"),
                ("pump-sub", "pressure"),
                ("pump-sub", "running"),
                ("pump-poll", "temp"),
                ("pump-poll", "pressure"),
            ]
            await until(
                lambda: all(len(stored(session_factory, d, s)) >= 3 for d, s in wanted),
                what="readings from both connectors",
            )
            await until(lambda: pipeline.stats.dead_lettered >= 3, what="dead letters")

    assert sub_connector.reading_modes == {
        "temp": "subscribe",
        "pressure": "subscribe",
        "running": "subscribe",
        "jitter": "subscribe",
        "label": "subscribe",
    }
    assert poll_connector.reading_modes == {"temp": "poll", "pressure": "poll"}
    temps = stored(session_factory, "pump-sub", "temp")
    assert temps == sorted(temps)
    assert set(stored(session_factory, "pump-sub", "running")) <= {0.0, 1.0}
    assert len(stored(session_factory, "pump-sub", "jitter")) == 1  # later changes < deadband
    assert stored(session_factory, "pump-poll", "pressure")[0] > 1.0
    with session_factory() as session:
        letters = {
            (d.sensor_key, d.code): d
            for d in session.scalars(select(DeadLetter).where(DeadLetter.device_key == "pump-sub"))
        }
    assert set(letters) == {
        ("label", "non_numeric"),
        ("ghost", "node_not_found"),
        ("lost", "node_not_found"),
    }
    assert letters[("label", "non_numeric")].source == "opcua"
    assert "String, not a single number" in letters[("label", "non_numeric")].reason
    assert letters[("label", "non_numeric")].payload == b"'P-101 feed pump'"
    assert "BadNodeIdUnknown" in letters[("ghost", "node_not_found")].reason
    assert device_row(session_factory, "pump-sub").connected
    assert sub_connector.stats.readings >= 9
    assert sub_connector.stats.errors == 0


async def test_reconnects_and_resubscribes_after_a_server_restart(
    session_factory: sessionmaker[Session],
) -> None:
    port = free_port()
    first = PlantServer(port)
    await first.start()
    config = device("pump-r", first.url, {"temp": {"node": first.node("Temp")}})
    register(session_factory, config)
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    connector = OpcUaConnector(config, first_backoff_s=0.1, max_backoff_s=0.5)
    second = PlantServer(port, offset=1000.0)
    try:
        async with running(pipeline.run(), connector.run(pipeline)):
            await until(lambda: len(stored(session_factory, "pump-r", "temp")) >= 3, what="data")
            await first.stop()
            await until(lambda: not connector.stats.connected, what="the outage to be noticed")
            await until(
                lambda: device_row(session_factory, "pump-r").last_error is not None,
                what="the outage on the device",
            )
            assert not device_row(session_factory, "pump-r").connected
            await asyncio.sleep(0.5)  # a few failed reconnects against a closed port
            await second.start()
            await until(
                lambda: sum(v > 1000 for v in stored(session_factory, "pump-r", "temp")) >= 3,
                what="readings after the restart",
            )
            await until(lambda: device_row(session_factory, "pump-r").connected, what="up")
            assert connector.stats.connected
            assert connector.reading_modes == {"temp": "subscribe"}
            # Read before teardown: stopping the server below is an outage of its own.
            row = device_row(session_factory, "pump-r")
    finally:
        await first.stop()
        await second.stop()

    assert row.last_error is not None
    assert "lost" in row.last_error or "ConnectionRefusedError" in row.last_error
    assert row.last_error_at is not None
    assert row.last_seen_at is not None
    assert row.last_seen_at > row.last_error_at  # online again, the outage still on record
    assert connector.stats.reconnects >= 1
    assert connector.stats.errors >= 1


# --- security, fallback and conversions (no database needed) ------------------------------------


async def test_sign_and_encrypt_with_username_and_password(tmp_path: Path) -> None:
    paths = certificates(tmp_path)
    server = PlantServer(free_port(), secure=(paths["server_cert"], paths["server_key"]))
    async with serving(server):
        good = OpcUaConnector(
            device(
                "pump-secure",
                server.url,
                {"temp": {"node": server.node("Temp")}},
                **secure_settings(paths, paths["trusted"]),
            )
        )
        wrong = OpcUaConnector(
            device(
                "pump-wrong",
                server.url,
                {"temp": {"node": server.node("Temp")}},
                **secure_settings(
                    paths,
                    paths["trusted"],
                    credentials={"username": "operator", "password": "guess"},
                ),
            ),
            first_backoff_s=5.0,
        )
        plain = OpcUaConnector(
            device("pump-plain", server.url, {"temp": {"node": server.node("Temp")}}),
            first_backoff_s=5.0,
        )
        sinks = RecordingSink(), RecordingSink(), RecordingSink()
        async with running(good.run(sinks[0]), wrong.run(sinks[1]), plain.run(sinks[2])):
            await until(lambda: len(sinks[0].readings) >= 3, what="encrypted readings")
            await until(lambda: bool(sinks[1].errors() and sinks[2].errors()), what="refusals")

    assert sinks[0].states[0] == (True, None)
    assert good.stats.connected
    assert not sinks[1].readings
    assert sinks[1].errors()[0].startswith("BadUserAccessDenied: ")
    assert not sinks[2].readings
    assert "No matching endpoints" in sinks[2].errors()[0]  # the server has no unsecured one


async def test_an_untrusted_server_is_refused_and_first_use_trust_is_explicit(
    tmp_path: Path,
) -> None:
    paths = certificates(tmp_path)
    other = tmp_path / "other-store"
    generate_application_certificate(
        other / "tofu-pump-pinned.der", tmp_path / "x.pem", application_uri="urn:someone:else"
    )
    server = PlantServer(free_port(), secure=(paths["server_cert"], paths["server_key"]))
    async with serving(server):
        sensors = {"temp": {"node": server.node("Temp")}}
        refused = OpcUaConnector(
            device("pump-u", server.url, sensors, **secure_settings(paths, paths["empty"])),
            first_backoff_s=5.0,
        )
        tofu_store = tmp_path / "tofu-store"
        tofu = OpcUaConnector(
            device(
                "pump-t",
                server.url,
                sensors,
                **secure_settings(paths, tofu_store, trust_on_first_use=True),
            )
        )
        pinned = OpcUaConnector(
            device(
                "pump-pinned",
                server.url,
                sensors,
                **secure_settings(paths, other, trust_on_first_use=True),
            ),
            first_backoff_s=5.0,
        )
        sinks = RecordingSink(), RecordingSink(), RecordingSink()
        async with running(refused.run(sinks[0]), tofu.run(sinks[1]), pinned.run(sinks[2])):
            await until(lambda: bool(sinks[0].errors() and sinks[2].errors()), what="refusals")
            await until(lambda: len(sinks[1].readings) >= 2, what="readings after first use")

    error = sinks[0].errors()[0]
    assert error.startswith("UntrustedServerError: server certificate CN=Test OPC-UA server")
    assert "is not trusted" in error
    assert str(paths["empty"]) in error
    assert refused.stats.last_error == error
    assert not sinks[0].readings
    assert len(list((paths["empty"] / "rejected").glob("*.der"))) == 1  # kept for inspection
    assert (tofu_store / "tofu-pump-t.der").read_bytes() == paths["server_cert"].read_bytes()
    assert "differs from the certificate trusted on first use" in sinks[2].errors()[0]


async def test_falls_back_to_polling_when_the_server_refuses_subscriptions() -> None:
    async with serving(PlantServer(free_port(), refuse_subscriptions=True)) as server:
        connector = OpcUaConnector(
            device(
                "pump-f",
                server.url,
                {"temp": {"node": server.node("Temp")}},
                poll_interval_ms=50,
            )
        )
        sink = RecordingSink()
        async with running(connector.run(sink)):
            await until(lambda: len({r.value for r in sink.readings}) >= 3, what="polled values")
    assert connector.reading_modes == {"temp": "poll"}
    assert connector.stats.errors == 0


async def test_an_unreachable_server_is_reported_and_retried() -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}/nothing"
    connector = OpcUaConnector(
        device("pump-x", url, {"temp": {"node": "ns=2;s=T"}}), first_backoff_s=0.05
    )
    sink = RecordingSink()
    async with running(connector.run(sink)):
        await until(lambda: connector.stats.reconnects >= 2, what="retries")
    assert sink.states[0][0] is False
    assert "ConnectionRefusedError" in (sink.states[0][1] or "")
    assert not connector.stats.connected


def _target(key: str = "temp") -> Target:
    return Target(
        sensor=SensorConfig(key, {"node": "ns=2;s=T"}),
        channel="ns=2;s=T",
        node_id=ua.NodeId.from_string("ns=2;s=T"),
        sampling_interval_ms=100.0,
        deadband_type="none",
        deadband_value=0.0,
    )


T_SOURCE = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
T_SERVER = T_SOURCE + dt.timedelta(seconds=2)


def _value(value: Any, status: int = 0, variant: ua.VariantType | None = None) -> ua.DataValue:
    return ua.DataValue(
        Value=None if value is None else ua.Variant(value, variant),
        StatusCode=ua.StatusCode(status),
        SourceTimestamp=T_SOURCE.replace(tzinfo=None),
        ServerTimestamp=T_SERVER,
    )


def test_status_codes_map_to_quality() -> None:
    assert quality_of(ua.StatusCode(ua.StatusCodes.Good)) is Quality.GOOD
    assert quality_of(ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)) is Quality.UNCERTAIN
    assert quality_of(ua.StatusCode(ua.StatusCodes.BadSensorFailure)) is Quality.BAD
    assert quality_of(None) is Quality.GOOD


def test_values_become_readings_or_dead_letters() -> None:
    reading = to_reading("d", _target(), _value(21.5))
    assert isinstance(reading, SensorReading)
    assert (reading.value, reading.timestamp, reading.quality) == (21.5, T_SOURCE, Quality.GOOD)
    by_server = to_reading(
        "d", _target(), _value(7, variant=ua.VariantType.Int32), timestamps="server"
    )
    assert isinstance(by_server, SensorReading)
    assert (by_server.value, by_server.timestamp) == (7.0, T_SERVER)
    flag = to_reading("d", _target(), _value(True))
    assert isinstance(flag, SensorReading)
    assert flag.value == 1.0
    doubtful = to_reading("d", _target(), _value(3.0, ua.StatusCodes.UncertainSensorNotAccurate))
    assert isinstance(doubtful, SensorReading)
    assert doubtful.quality is Quality.UNCERTAIN
    assert doubtful.metadata == {"opcua_status": "UncertainSensorNotAccurate"}

    cases = {
        "text": (_value("high"), "non_numeric"),
        "array": (_value([1.0, 2.0]), "non_numeric"),
        "nan": (_value(math.nan), "non_finite"),
        "failed": (_value(None, ua.StatusCodes.BadSensorFailure), "bad_status"),
    }
    for name, (data, code) in cases.items():
        refused = to_reading("d", _target(name), data)
        assert isinstance(refused, Rejected), name
        assert (refused.code, refused.sensor_key, refused.source) == (code, name, "opcua")
    failed = to_reading("d", _target(), _value(None, ua.StatusCodes.BadSensorFailure))
    assert isinstance(failed, Rejected)
    assert "BadSensorFailure" in failed.reason


def test_browse_paths_and_settings_are_checked() -> None:
    path = parse_browse_path("0:Objects/2:Pump1/2:Temperature")
    assert [(e.TargetName.NamespaceIndex, e.TargetName.Name) for e in path.Elements] == [
        (0, "Objects"),
        (2, "Pump1"),
        (2, "Temperature"),
    ]
    assert not path.Elements[0].IsInverse
    with pytest.raises(ValueError, match="empty browse path"):
        parse_browse_path(" / ")

    url = "opc.tcp://plc:4840"
    defaults = OpcUaOptions.from_device(device("d", url, {}, credentials={"username": "u"}))
    assert (defaults.mode, defaults.identity, defaults.timestamps) == (
        "subscribe",
        "username",
        "source",
    )
    bad = [
        ({"mode": "push"}, "'mode' must be one of subscribe, poll"),
        ({"security_policy": "Basic256Sha256"}, "needs the hub's application certificate"),
        (
            {"security_policy": "Basic256Sha256", "certificate": "c", "private_key": "k"},
            "needs 'trust_store'",
        ),
        ({"security_policy": "None", "security_mode": "Sign"}, "security_mode must be None"),
        ({"deadband_type": "percent", "deadband_value": 150}, "percentage"),
        ({"sampling_interval_ms": "fast"}, "must be a number"),
        ({"identity": "certificate"}, "needs user_certificate"),
        ({"identity": "username"}, "needs credentials"),
        ({"sampling_intervall_ms": 10}, "unknown setting"),
    ]
    for settings, message in bad:
        with pytest.raises(ValueError, match=message):
            OpcUaOptions.from_device(device("d", url, {}, **settings))
    with pytest.raises(ValueError, match=r"opc\.tcp://"):
        OpcUaOptions.from_device(device("d", "http://plc", {}))


def test_trust_store_accepts_certificates_issued_by_a_trusted_ca(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Plant CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PLC 7")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    (store_dir / "plant-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (store_dir / "notes.txt").write_text("not a certificate")
    store = TrustStore(store_dir)
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    assert store.check(leaf_der, device_key="plc-7") == leaf
    with pytest.raises(UntrustedServerError, match="expired"):
        store.check(leaf_der, device_key="plc-7", now=now + dt.timedelta(days=60))
    (store_dir / "plant-ca.pem").unlink()
    with pytest.raises(UntrustedServerError, match="CN=PLC 7"):
        store.check(leaf_der, device_key="plc-7")


def test_error_text_names_the_cause() -> None:
    assert error_text(TimeoutError()) == "TimeoutError: no answer in time"
    assert error_text(ConnectionRefusedError("port 4840")) == "ConnectionRefusedError: port 4840"
    from asyncua.ua.uaerrors import UaStatusCodeError

    assert error_text(UaStatusCodeError(ua.StatusCodes.BadUserAccessDenied)).startswith(
        "BadUserAccessDenied"
    )
