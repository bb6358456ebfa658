"""The MQTT connector against real Mosquitto brokers and the real ingest pipeline.

The shared broker at 127.0.0.1:1883 serves the plain tests (each with its own topic root and
client id); TLS, authentication and fault tests start a Mosquitto of their own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import Client
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.iot.connectors.base import Ack, DeviceConfig, Rejected, SensorConfig
from maintainpro.iot.connectors.mqtt import (
    DeviceRoute,
    MqttConfigError,
    MqttConnector,
    MqttOptions,
)
from maintainpro.iot.devices import DeadLetter, Device, Protocol, Sensor
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.readings import SensorReading
from maintainpro.iot.timeseries import readings_table
from mosquitto import (
    LOCAL_BROKER,
    Mosquitto,
    Pki,
    SteadyPublisher,
    broker_config,
    connect_publisher,
    forget_session,
    free_port,
    make_pki,
    password_file,
    reading_payload,
    unique,
)

pytestmark = pytest.mark.integration

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
HUB_PASSWORD = "hub-secret-pw"
DEVICE_PASSWORD = "device-secret-pw"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def register(
    factory: sessionmaker[Session], devices: dict[str, Sequence[str]], **settings: Any
) -> None:
    """Create MQTT devices with their sensors in the registry."""
    with factory() as session, session.begin():
        for key, sensors in devices.items():
            device = Device(key=key, name=key, protocol=Protocol.MQTT, settings=settings)
            for sensor in sensors:
                device.sensors.append(Sensor(key=sensor, type="temperature", unit="°C"))
            session.add(device)


def stored(factory: sessionmaker[Session]) -> int:
    """Rows in the readings table."""
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(readings_table)) or 0)


def dead_letters(factory: sessionmaker[Session]) -> list[DeadLetter]:
    """Every dead letter, oldest first."""
    with factory() as session:
        return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


async def until(condition: Callable[[], bool], within: float = 10.0, what: str = "") -> None:
    """Poll until the condition holds; fail the test with `what` otherwise."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


async def publish(client: Client, messages: Sequence[tuple[str, bytes | str]]) -> None:
    """Publish at QoS 1 and wait for the broker to have every message."""
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]

    def wait() -> None:
        for info in infos:
            info.wait_for_publish(10)

    await asyncio.to_thread(wait)


@asynccontextmanager
async def running(
    connector: MqttConnector, sink: Any, *, ready: bool = True
) -> AsyncIterator[MqttConnector]:
    """Run the connector (and the pipeline, if the sink is one) for the block."""
    tasks = [asyncio.create_task(connector.run(sink))]
    if isinstance(sink, IngestPipeline):
        tasks.append(asyncio.create_task(sink.run()))
    try:
        if ready:
            async with asyncio.timeout(10):
                await connector.wait_ready()
        yield connector
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def client_id() -> Iterator[str]:
    """A client id of this test; its session is removed from the shared broker afterwards."""
    name = unique("hub")
    yield name
    forget_session(name)


@pytest.fixture
def publisher() -> Iterator[Client]:
    """A publisher on the shared broker."""
    client = connect_publisher(LOCAL_BROKER[1])
    yield client
    client.disconnect()
    client.loop_stop()


def local_options(client_id: str, root: str, **fields: Any) -> MqttOptions:
    """Options for the shared broker with a topic root of the test's own."""
    return MqttOptions(
        host=LOCAL_BROKER[0],
        port=LOCAL_BROKER[1],
        client_id=client_id,
        topic_prefix=root,
        session_expiry_s=300,
        **fields,
    )


class RecordingSink:
    """A ReadingSink that keeps what it gets and acknowledges at once (no database)."""

    def __init__(self) -> None:
        self.readings: list[SensorReading] = []
        self.rejected: list[Rejected] = []
        self.states: list[tuple[str, bool, str | None]] = []

    async def submit(
        self,
        readings: Sequence[SensorReading],
        rejected: Sequence[Rejected] = (),
        ack: Ack | None = None,
        source: str = "connector",
    ) -> None:
        """Record and acknowledge."""
        self.readings.extend(readings)
        self.rejected.extend(rejected)
        if ack is not None:
            ack()

    def connection_state(
        self, device_key: str, *, connected: bool, error: str | None = None
    ) -> None:
        """Record a device connection report."""
        self.states.append((device_key, connected, error))


# --------------------------------------------------------------------------------------------
# Configuration (no broker)
# --------------------------------------------------------------------------------------------


def test_options_from_settings() -> None:
    settings = Settings(
        mqtt_url="mqtts://broker.example:8884",
        mqtt_username="hub",
        mqtt_password="pw",
        mqtt_ca_file=Path("/etc/ca.pem"),
        mqtt_protocol="3.1.1",
        mqtt_shared_group="hubs",
        mqtt_topic_prefix="acme/site1",
    )
    options = MqttOptions.from_settings(settings)
    assert (options.host, options.port, options.tls) == ("broker.example", 8884, True)
    assert (options.username, options.password, options.protocol) == ("hub", "pw", "3.1.1")
    assert "pw" not in repr(options)
    assert options.subscription("a/+/data") == "$share/hubs/a/+/data"
    connector = MqttConnector(options)
    assert connector.subscriptions == {
        "$share/hubs/acme/site1/+/sensors/+/data",
        "$share/hubs/acme/site1/+/data",
    }
    assert MqttOptions.from_url("mqtt://localhost").port == 1883
    with pytest.raises(MqttConfigError, match="not configured"):
        MqttOptions.from_settings(Settings())
    with pytest.raises(MqttConfigError, match="scheme"):
        MqttOptions.from_url("http://localhost")
    with pytest.raises(MqttConfigError, match="not mqtts"):
        MqttOptions.from_url("mqtt://localhost", ca_file=Path("ca.pem"))
    with pytest.raises(MqttConfigError, match="shared group"):
        MqttOptions(shared_group="a/b")


def _device(key: str, **settings: Any) -> DeviceConfig:
    return DeviceConfig(
        key=key,
        name=key,
        protocol="mqtt",
        endpoint="",
        settings=settings,
        sensors=(SensorConfig(key="temp", address={}),),
        credentials={},
    )


def test_device_routes_from_settings() -> None:
    route = DeviceRoute.from_config(
        _device("acme-1", topic="acme/line1/+/telemetry", mapping={"value": "data.temp"})
    )
    assert route is not None
    assert (route.sensor_level, route.batch) == (2, False)
    batch = DeviceRoute.from_config(_device("gw", topic="gw/#", batch=True))
    assert batch is not None
    assert batch.batch
    assert DeviceRoute.from_config(_device("plain")) is None
    cases: list[tuple[dict[str, Any], str]] = [
        ({"topic": "a/b+/c"}, "whole level"),
        ({"topic": "a/#/c"}, "last level"),
        ({"topic": "a/b", "mapping": {"valu": "x"}}, "unknown mapping"),
        ({"topic": "a/+/+"}, "where the sensor"),
        ({"topic": "a/+", "sensor_level": 0}, "sensor_level"),
        ({"topic": "a/+", "mapping": {"timestamp_unit": "h"}}, "timestamp_unit"),
    ]
    for settings, message in cases:
        with pytest.raises(MqttConfigError, match=message):
            DeviceRoute.from_config(_device("bad", **settings))


# --------------------------------------------------------------------------------------------
# The shared broker: readings, batches, custom formats, hostile input
# --------------------------------------------------------------------------------------------


async def test_readings_are_stored_and_acknowledged_after_the_commit(
    session_factory: sessionmaker[Session], client_id: str, publisher: Client
) -> None:
    root = unique("t")
    register(session_factory, {"pump-1": ["temp", "vib"]})
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    connector = MqttConnector(local_options(client_id, root))
    async with running(connector, pipeline):
        assert connector.stats.connected
        messages = [
            (
                f"{root}/pump-1/sensors/{sensor}/data",
                reading_payload(20.0 + i, T0 + dt.timedelta(seconds=i)),
            )
            for i in range(25)
            for sensor in ("temp", "vib")
        ]
        await publish(publisher, messages)
        await until(lambda: pipeline.stats.stored == 50, what="50 readings stored")
        await until(lambda: connector.stats.acked == 50, what="50 acks")
    stats = connector.stats
    assert (stats.messages, stats.readings, stats.rejected, stats.errors) == (50, 50, 0, 0)
    assert stats.last_success_at is not None
    assert not stats.connected
    assert stored(session_factory) == 50
    with session_factory() as session:
        device = session.scalars(select(Device).where(Device.key == "pump-1")).one()
        assert device.last_seen_at == T0 + dt.timedelta(seconds=24)


async def test_batch_topic_over_mqtt_311(
    session_factory: sessionmaker[Session], client_id: str, publisher: Client
) -> None:
    root = unique("t")
    register(session_factory, {"gw-1": ["a", "b", "c"]})
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    connector = MqttConnector(local_options(client_id, root, protocol="3.1.1"))
    batches = []
    for n in range(10):
        items = [
            {
                "sensor_id": sensor,
                "value": n * 1.5,
                "timestamp": (T0 + dt.timedelta(seconds=n)).isoformat(),
            }
            for sensor in ("a", "b", "c")
        ]
        items.append({"sensor_id": "b", "value": "NaN?"})  # one bad item per batch
        batches.append((f"{root}/gw-1/data", json.dumps({"readings": items})))
    async with running(connector, pipeline):
        await publish(publisher, batches)
        await until(lambda: connector.stats.acked == 10, what="10 batches acked")
    assert stored(session_factory) == 30
    assert connector.stats.rejected == 10
    letters = dead_letters(session_factory)
    assert {d.code for d in letters} == {"wrong_type"}
    assert {d.device_key for d in letters} == {"gw-1"}
    assert all(d.reason.startswith("item 3:") for d in letters)


async def test_devices_with_their_own_topics_and_json_paths_follow_updates(
    session_factory: sessionmaker[Session], client_id: str, publisher: Client
) -> None:
    root = unique("t")
    register(session_factory, {"acme-7": ["temp", "hum"], "gw-9": ["x", "y"]})
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    connector = MqttConnector(local_options(client_id, root))
    acme = _device(
        "acme-7",
        topic=f"{root}-acme/line1/+/telemetry",
        mapping={"value": "data.temp", "timestamp": "ts", "timestamp_unit": "s"},
    )
    gateway = _device(
        "gw-9",
        topic=f"{root}-gw/#",
        batch=True,
        mapping={"readings": "payload.points", "sensor_id": "name", "value": "v"},
    )
    broken = _device("broken-1", topic=f"{root}/+/+")
    sink_states: list[tuple[str, bool, str | None]] = []
    original = pipeline.connection_state

    def record_state(device_key: str, *, connected: bool, error: str | None = None) -> None:
        sink_states.append((device_key, connected, error))
        original(device_key, connected=connected, error=error)

    pipeline.connection_state = record_state  # type: ignore[method-assign]
    stamp = int(T0.timestamp())
    async with running(connector, pipeline):
        default_only = set(connector.subscriptions)
        connector.update_devices([acme, gateway, broken])
        async with asyncio.timeout(10):
            await connector.wait_ready()
        assert connector.subscriptions == default_only | {f"{root}-acme/line1/+/telemetry"} | {
            f"{root}-gw/#"
        }
        assert sink_states == [("broken-1", False, sink_states[0][2])]
        assert "where the sensor" in str(sink_states[0][2])
        await publish(
            publisher,
            [
                (
                    f"{root}-acme/line1/{sensor}/telemetry",
                    json.dumps({"data": {"temp": 1.0 + i}, "ts": stamp + i}),
                )
                for i in range(5)
                for sensor in ("temp", "hum")
            ]
            + [
                (
                    f"{root}-gw/site/a/b",
                    json.dumps(
                        {"payload": {"points": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]}}
                    ),
                )
            ],
        )
        await until(lambda: pipeline.stats.stored == 12, what="12 readings stored")
        # Removing the devices unsubscribes their filters without reconnecting.
        connector.update_devices([])
        async with asyncio.timeout(10):
            await connector.wait_ready()
        assert connector.subscriptions == default_only
        messages = connector.stats.messages
        await publish(publisher, [(f"{root}-acme/line1/temp/telemetry", b'{"data": {"temp": 1}}')])
        await publish(
            publisher,
            [
                (
                    f"{root}/acme-7/sensors/temp/data",
                    reading_payload(9.0, T0 - dt.timedelta(minutes=1)),
                )
            ],
        )
        await until(lambda: connector.stats.messages > messages, what="the marker message")
        await until(lambda: connector.stats.acked == 12, what="12 acks")
    assert connector.stats.messages == messages + 1
    assert connector.stats.reconnects == 0
    assert stored(session_factory) == 13


async def test_hostile_input_is_dead_lettered_and_the_connector_lives_on(
    session_factory: sessionmaker[Session], client_id: str, publisher: Client
) -> None:
    root = unique("t")
    register(session_factory, {"pump-1": ["temp"]})
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    connector = MqttConnector(local_options(client_id, root))
    single = f"{root}/pump-1/sensors/temp/data"
    hostile: list[tuple[str, bytes | str]] = [
        (single, b"{not json"),
        (single, b""),
        (single, b"\xff\xfe\x00garbage"),
        (single, b'{"value": "21.5"}'),
        (single, b'{"value": true}'),
        (single, b'{"value": NaN}'),
        (single, b'{"value": Infinity}'),
        (single, b'{"value": 1e999}'),
        (single, b'{"value": 1, "timestamp": "yesterday"}'),
        (single, b'{"value": 1, "timestamp": "2026-11-27T10:00:00"}'),
        (single, b"[" * 50_000),
        (single, b'{"value": 1, "pad": "' + b"x" * 200_000 + b'"}'),
        (f"{root}/pump-1/data", b'{"readings": "all of them"}'),
        (f"{root}/pump-1/data", b'{"readings": [1, 2]}'),
        (f"{root}/ghost/sensors/temp/data", reading_payload(1.0, T0)),
        (f"{root}/pump-1/sensors/nope/data", reading_payload(1.0, T0)),
        (f"{root}/pump 1/sensors/temp/data", reading_payload(1.0, T0)),
        (f"{root}/../sensors/temp/data", reading_payload(1.0, T0)),
        (f"{root}//data", reading_payload(1.0, T0)),
        (f"{root}/{'d' * 200}/data", b'{"readings": []}'),
    ]
    async with running(connector, pipeline):
        await publish(publisher, hostile)
        await publish(publisher, [(single, reading_payload(42.0, T0))])
        await until(lambda: connector.stats.acked == len(hostile) + 1, what="every message acked")
        await until(lambda: pipeline.stats.stored == 1, what="the good reading")
        assert connector.stats.connected
    assert stored(session_factory) == 1
    letters = dead_letters(session_factory)
    codes = [d.code for d in letters]
    assert len(letters) == len(hostile) + 1  # one per message, two for the batch [1, 2]
    assert codes.count("malformed_payload") == 4
    assert codes.count("wrong_type") == 5
    assert codes.count("non_finite_value") == 3
    assert codes.count("bad_timestamp") == 2
    assert codes.count("payload_too_large") == 1
    assert codes.count("bad_topic") == 4
    assert codes.count("unknown_device") == codes.count("unknown_sensor") == 1
    big = next(d for d in letters if d.code == "payload_too_large")
    assert big.payload is not None
    assert (big.payload_size, len(big.payload)) == (200_023, 64 * 1024)  # stored truncated
    assert {d.source for d in letters} == {"mqtt"}
    # Refusals by the decoder are the connector's; unknown devices are the pipeline's.
    assert connector.stats.rejected == len(hostile) - 1
    assert pipeline.stats.dead_lettered == len(hostile) + 1


# --------------------------------------------------------------------------------------------
# A broker of our own: TLS, passwords, ACL
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA with server and client certificates."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def secure_broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    """Mosquitto with a TLS+password listener and a TLS+client-certificate listener, plus ACL."""
    passwords = password_file(tmp_path / "passwd", {"hub": HUB_PASSWORD, "dev1": DEVICE_PASSWORD})
    acl = tmp_path / "acl"
    acl.write_text("user hub\ntopic read devices/#\n\nuser dev1\ntopic write devices/dev1/#\n")
    tls = (
        f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
        "tls_version tlsv1.2\n"
    )
    password_port, cert_port = free_port(), free_port()
    config = broker_config(
        f"listener {password_port} 127.0.0.1\n{tls}",
        f"listener {cert_port} 127.0.0.1\n{tls}require_certificate true\n"
        # The certificate's CN ("hub") is the user name the ACL applies to.
        "use_identity_as_username true\n",
        extra=f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n",
    )
    broker = Mosquitto(tmp_path, config, (password_port, cert_port))
    broker.start()
    yield broker
    broker.stop()


def _tls_options(port: int, pki: Pki, **fields: Any) -> MqttOptions:
    return MqttOptions.from_url(
        f"mqtts://127.0.0.1:{port}",
        ca_file=pki.ca,
        client_id=unique("hub"),
        reconnect_first_s=0.1,
        **fields,
    )


async def test_tls_with_password_and_acl(secure_broker: Mosquitto, pki: Pki) -> None:
    sink = RecordingSink()
    options = _tls_options(secure_broker.port, pki, username="hub", password=HUB_PASSWORD)
    device = connect_publisher(
        secure_broker.port, username="dev1", password=DEVICE_PASSWORD, ca=pki.ca
    )
    try:
        connector = MqttConnector(options)
        async with running(connector, sink):
            await publish(
                device,
                [
                    ("devices/dev1/sensors/temp/data", reading_payload(1.0, T0)),
                    # The ACL lets dev1 publish only under its own id: the broker drops this.
                    ("devices/dev2/sensors/temp/data", reading_payload(2.0, T0)),
                    ("devices/dev1/sensors/temp/data", reading_payload(3.0, T0)),
                ],
            )
            await until(lambda: len(sink.readings) == 2, what="two readings")
            await until(lambda: connector.stats.acked == 2, what="two acks")
        assert [r.value for r in sink.readings] == [1.0, 3.0]
        assert {r.device_id for r in sink.readings} == {"dev1"}
        assert (connector.stats.errors, connector.stats.reconnects) == (0, 0)
    finally:
        device.disconnect()
        device.loop_stop()


async def test_tls_with_a_client_certificate(secure_broker: Mosquitto, pki: Pki) -> None:
    sink = RecordingSink()
    options = _tls_options(
        secure_broker.ports[1], pki, cert_file=pki.client_cert, key_file=pki.client_key
    )
    async with running(MqttConnector(options), sink) as connector:
        assert connector.stats.connected


async def test_wrong_password_and_wrong_ca_are_reported(secure_broker: Mosquitto, pki: Pki) -> None:
    sink = RecordingSink()
    wrong = MqttConnector(
        _tls_options(secure_broker.port, pki, username="hub", password="not-the-password")
    )
    async with running(wrong, sink, ready=False):
        await until(lambda: wrong.stats.errors >= 2, what="refusals")
        assert not wrong.stats.connected
    assert "refused the connection" in str(wrong.stats.last_error)
    assert "Not authorized" in str(wrong.stats.last_error) or "password" in str(
        wrong.stats.last_error
    )
    untrusted = MqttConnector(
        MqttOptions.from_url(
            f"mqtts://127.0.0.1:{secure_broker.port}",
            ca_file=pki.other_ca,
            username="hub",
            password=HUB_PASSWORD,
            client_id=unique("hub"),
            reconnect_first_s=0.1,
        )
    )
    async with running(untrusted, sink, ready=False):
        await until(lambda: untrusted.stats.errors >= 1, what="a verification failure")
    assert "CERTIFICATE_VERIFY_FAILED" in str(untrusted.stats.last_error)
    assert sink.readings == []


# --------------------------------------------------------------------------------------------
# Faults: the broker restarts, the hub restarts
# --------------------------------------------------------------------------------------------


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A plain Mosquitto with persistence on, as docs/mqtt.md recommends."""
    port = free_port()
    config = broker_config(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n",
        persistence=True,
        directory=tmp_path,
    )
    broker = Mosquitto(tmp_path, config, (port,))
    broker.start()
    yield broker
    broker.stop()


FAULT_MESSAGES = 2000
FAULT_RATE = 1000.0


async def test_broker_restart_loses_nothing(
    session_factory: sessionmaker[Session], own_broker: Mosquitto
) -> None:
    register(session_factory, {"pump-1": ["temp"]})
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    options = MqttOptions(
        port=own_broker.port, client_id=unique("hub"), reconnect_first_s=0.1, reconnect_cap_s=0.5
    )
    connector = MqttConnector(options)
    client = connect_publisher(own_broker.port)
    publisher = SteadyPublisher(
        client, "devices/pump-1/sensors/temp/data", FAULT_MESSAGES, FAULT_RATE, T0
    )
    try:
        async with running(connector, pipeline):
            publisher.begin()
            await until(lambda: pipeline.stats.stored > 300, what="the first readings")
            await asyncio.to_thread(own_broker.stop)
            await until(lambda: not connector.stats.connected, what="the outage to be seen")
            await asyncio.sleep(0.5)
            await asyncio.to_thread(own_broker.start)
            await asyncio.to_thread(publisher.wait_delivered)
            await until(
                lambda: stored(session_factory) == FAULT_MESSAGES,
                within=20,
                what="every reading",
            )
            assert connector.stats.connected
        assert connector.stats.reconnects >= 1
        assert connector.stats.errors >= 1
        assert "127.0.0.1" in str(connector.stats.last_error)
    finally:
        client.disconnect()
        client.loop_stop()
    assert stored(session_factory) == FAULT_MESSAGES
    assert dead_letters(session_factory) == []


async def test_hub_restart_receives_what_was_published_meanwhile(
    session_factory: sessionmaker[Session], own_broker: Mosquitto
) -> None:
    register(session_factory, {"pump-1": ["temp"]})
    options = MqttOptions(port=own_broker.port, client_id=unique("hub"), reconnect_first_s=0.1)
    client = connect_publisher(own_broker.port)
    publisher = SteadyPublisher(
        client, "devices/pump-1/sensors/temp/data", FAULT_MESSAGES, FAULT_RATE, T0
    )
    first = IngestPipeline(session_factory, max_delay_s=0.01)
    second = IngestPipeline(session_factory, max_delay_s=0.01)
    try:
        async with running(MqttConnector(options), first):
            publisher.begin()
            await until(lambda: first.stats.stored > 300, what="the first readings")
        # The hub is down: readings go on being published into its session.
        stored_while_up = stored(session_factory)
        await asyncio.sleep(0.5)
        async with running(MqttConnector(options), second) as connector:
            await asyncio.to_thread(publisher.wait_delivered)
            await until(
                lambda: stored(session_factory) == FAULT_MESSAGES,
                within=20,
                what="every reading",
            )
        assert connector.stats.reconnects == 0
    finally:
        client.disconnect()
        client.loop_stop()
    assert 300 < stored_while_up < FAULT_MESSAGES
    assert stored(session_factory) == FAULT_MESSAGES
    # Whatever the first hub stored without acknowledging came again and was skipped.
    assert first.stats.stored + second.stats.stored == FAULT_MESSAGES
