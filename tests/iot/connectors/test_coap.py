"""CoAP both ways against real peers: aiocoap and libcoap clients, servers and DTLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiocoap
import aiocoap.resource
import cbor2
import pytest
from aiocoap.numbers.codes import Code
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.db import utcnow
from maintainpro.iot.connectors.base import DeviceConfig, SensorConfig
from maintainpro.iot.connectors.coap import (
    UnsupportedContentFormat,
    decode_single_payload,
    parse_bind,
    parse_text_number,
)
from maintainpro.iot.connectors.coap_client import CoapDeviceConnector, plan_sensor
from maintainpro.iot.connectors.coap_server import CoapServer
from maintainpro.iot.decode import MalformedPayload, NonFiniteValue, WrongType
from maintainpro.iot.devices import DeadLetter, Device, Protocol, Sensor
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.readings import SensorReading
from maintainpro.iot.timeseries import readings_table

LOCAL = "127.0.0.1"
COAP_CLIENT = shutil.which("coap-client-openssl") or shutil.which("coap-client")
COAP_CLIENT_GNUTLS = shutil.which("coap-client-gnutls")
COAP_SERVER = shutil.which("coap-server-notls") or shutil.which("coap-server")
needs_libcoap = pytest.mark.skipif(
    COAP_CLIENT is None or COAP_SERVER is None, reason="libcoap binaries not installed"
)
PSK_IDENTITY = "pump-1-id"
PSK = "pump-1-secret-key"


def free_udp_port() -> int:
    """A UDP port nobody uses right now on the loopback address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOCAL, 0))
        return int(probe.getsockname()[1])


def _register(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, session.begin():
        for key in ("pump-1", "fan-1", "meter-1"):
            device = Device(key=key, name=key, protocol=Protocol.COAP)
            device.sensors.append(Sensor(key="temp", type="temperature", unit="°C"))
            device.sensors.append(Sensor(key="pressure", type="pressure", unit="bar"))
            session.add(device)


def _values(session_factory: sessionmaker[Session], device: str = "pump-1") -> list[float]:
    with session_factory() as session:
        rows = session.execute(
            select(readings_table.c.value)
            .join(Sensor, Sensor.id == readings_table.c.sensor_id)
            .join(Device, Device.id == Sensor.device_id)
            .where(Device.key == device)
            .order_by(readings_table.c.ts)
        )
        return [row.value for row in rows]


def _letters(session_factory: sessionmaker[Session]) -> list[DeadLetter]:
    with session_factory() as session:
        return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


async def _until(check: Callable[[], bool], within: float = 5.0) -> None:
    """Poll until check() holds; fail after about `within` seconds."""
    for _ in range(round(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {within} s")


def _stored(session_factory: sessionmaker[Session], value: float) -> Callable[[], bool]:
    return lambda: value in _values(session_factory)


def _device(key: str, endpoint: str, *sensors: SensorConfig, **credentials: str) -> DeviceConfig:
    return DeviceConfig(
        key=key,
        name=key,
        protocol="coap",
        endpoint=endpoint,
        settings={},
        sensors=sensors,
        credentials=credentials,
    )


@pytest.fixture
async def pipeline(session_factory: sessionmaker[Session]) -> AsyncIterator[IngestPipeline]:
    """A running ingest pipeline on the test database, with the devices registered."""
    _register(session_factory)
    ingest = IngestPipeline(session_factory, max_delay_s=0.005, registry_refresh_s=0.0)
    task = asyncio.create_task(ingest.run())
    yield ingest
    task.cancel()
    # The pipeline stores what it holds when stopped: let it finish before the database goes.
    await asyncio.gather(task, return_exceptions=True)


async def _serve(server: CoapServer, sink: Any) -> asyncio.Task[None]:
    task = asyncio.create_task(server.run(sink))
    async with asyncio.timeout(5):
        await server.ready.wait()
    return task


@pytest.fixture
async def hub(pipeline: IngestPipeline) -> AsyncIterator[str]:
    """The hub's CoAP server on a free port; yields its base URI."""
    port = free_udp_port()
    server = CoapServer(bind=(LOCAL, port), max_payload_bytes=4096)
    task = await _serve(server, pipeline)
    yield f"coap://{LOCAL}:{port}"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def coap() -> AsyncIterator[Any]:
    """An aiocoap client context, as a device would use."""
    context = await aiocoap.Context.create_client_context(transports=["udp6"])
    yield context
    await context.shutdown()


async def _post(context: Any, uri: str, payload: bytes, content_format: int | None = 50) -> Any:
    message = aiocoap.Message(code=Code.POST, uri=uri, payload=payload)
    if content_format is not None:
        message.opt.content_format = content_format
    async with asyncio.timeout(10):
        return await context.request(message).response


async def _libcoap(*args: str, limit: float = 10.0) -> str:
    """Run a libcoap binary and return what it printed (it exits 0 even on errors)."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(limit):
        output, _ = await process.communicate()
    return output.decode(errors="replace").strip()


# ---------------------------------------------------------------------------------------------
# Payload decoding and settings (pure)
# ---------------------------------------------------------------------------------------------


def test_bind_addresses_and_text_numbers() -> None:
    assert parse_bind("10.1.2.3:5683") == ("10.1.2.3", 5683)
    assert parse_bind("[::1]:15684", 5684) == ("::1", 15684)
    assert parse_bind("::", 5684) == ("::", 5684)
    assert parse_bind("hub.local") == ("hub.local", 5683)
    with pytest.raises(ValueError, match="bad port"):
        parse_bind("127.0.0.1:99999")
    assert parse_text_number(b" -21.5e1\n") == -215.0
    for bad in (b"nan", b"inf", b"21,5", b"0x10", b"", b"1" * 80):
        with pytest.raises(MalformedPayload):
            parse_text_number(bad)
    with pytest.raises(NonFiniteValue):
        parse_text_number(b"1e999")


def test_cbor_is_validated_like_json() -> None:
    now = utcnow()

    def decode(payload: bytes, content_format: int | None) -> SensorReading:
        return decode_single_payload(
            payload, content_format, device_id="d", sensor_id="s", received_at=now
        )

    stamp = now.replace(microsecond=0) - dt.timedelta(minutes=1)
    reading = decode(cbor2.dumps({"value": 1.5, "timestamp": stamp}), 60)
    assert (reading.value, reading.timestamp) == (1.5, stamp)
    assert decode(b"7.25", 0).value == 7.25
    assert decode(b'{"value": 3}', None).value == 3.0  # no content-format: sniffed
    with pytest.raises(NonFiniteValue):
        decode(cbor2.dumps({"value": math.nan}), 60)
    with pytest.raises(WrongType):
        decode(cbor2.dumps({"value": b"\x01"}), 60)
    with pytest.raises(WrongType):
        decode(cbor2.dumps({1: 2}), 60)
    with pytest.raises(MalformedPayload):
        decode(b"\xff\x00", 60)
    with pytest.raises(UnsupportedContentFormat):
        decode(b"<v>1</v>", 41)


def test_sensor_addresses_are_checked() -> None:
    device = _device("d", "coap://10.0.0.5")
    plan = plan_sensor(device, SensorConfig("t", {"resource": "/sensors/temp", "observe": True}))
    assert plan is not None
    assert (plan.uri, plan.observe, plan.poll_s) == ("coap://10.0.0.5/sensors/temp", True, 5.0)
    assert plan_sensor(device, SensorConfig("t", {"poll_s": 5})) is None  # pushed by the device
    with pytest.raises(ValueError, match="resource"):
        plan_sensor(device, SensorConfig("t", {"resource": "/"}))
    with pytest.raises(ValueError, match="poll_s"):
        plan_sensor(device, SensorConfig("t", {"resource": "/x", "poll_s": 0}))
    with pytest.raises(ValueError, match="endpoint"):
        plan_sensor(_device("d", "http://x"), SensorConfig("t", {"resource": "/x"}))


# ---------------------------------------------------------------------------------------------
# (1) The hub's server, aiocoap as the device
# ---------------------------------------------------------------------------------------------


async def test_posted_readings_are_stored_before_the_answer(
    hub: str, coap: Any, session_factory: sessionmaker[Session]
) -> None:
    stamp = utcnow().replace(microsecond=0) - dt.timedelta(seconds=30)
    response = await _post(
        coap,
        f"{hub}/devices/pump-1/sensors/temp/data",
        json.dumps({"value": 21.5, "timestamp": stamp.isoformat()}).encode(),
    )
    assert response.code == Code.CHANGED
    # 2.04 means stored: no waiting here.
    assert _values(session_factory) == [21.5]

    response = await _post(
        coap,
        f"{hub}/devices/pump-1/sensors/pressure/data",
        cbor2.dumps({"value": 2.25, "timestamp": stamp + dt.timedelta(seconds=1)}),
        content_format=60,
    )
    assert response.code == Code.CHANGED
    assert _values(session_factory) == [21.5, 2.25]

    batch = {
        "readings": [
            {
                "sensor_id": "temp",
                "value": 22.0,
                "timestamp": (stamp + dt.timedelta(seconds=2)).isoformat(),
            },
            {"sensor_id": "temp", "value": "hot"},
        ]
    }
    response = await _post(coap, f"{hub}/devices/pump-1/data", cbor2.dumps(batch), 60)
    assert response.code == Code.CHANGED
    summary = json.loads(response.payload)
    assert summary["accepted"] == 1
    assert summary["rejected"][0]["code"] == "wrong_type"
    assert _values(session_factory) == [21.5, 2.25, 22.0]
    letters = _letters(session_factory)
    assert [(d.code, d.channel) for d in letters] == [("wrong_type", "/devices/pump-1/data")]
    assert "readings[1]" in letters[0].reason


async def test_bad_payloads_get_4_00_and_a_dead_letter(
    hub: str, coap: Any, session_factory: sessionmaker[Session]
) -> None:
    uri = f"{hub}/devices/pump-1/sensors/temp/data"
    cases = [
        (b'{"value": 1', 50, "malformed_payload"),
        (b'{"value": NaN}', 50, "non_finite_value"),
        (b'{"value": "21.5"}', 50, "wrong_type"),
        (b'{"value": true}', 50, "wrong_type"),
        (b'{"value": 1, "timestamp": "2026-01-01T00:00:00"}', 50, "bad_timestamp"),
        (cbor2.dumps({"value": math.inf}), 60, "non_finite_value"),
        (b"\xa1\x65value", 60, "malformed_payload"),
    ]
    for payload, content_format, _code in cases:
        response = await _post(coap, uri, payload, content_format)
        assert response.code == Code.BAD_REQUEST, payload
        assert response.payload, "a diagnostic payload says what is wrong"
    response = await _post(coap, uri, b"<value>1</value>", 41)
    assert response.code == Code.UNSUPPORTED_CONTENT_FORMAT

    # Unknown device: decoded fine, refused by the registry, dead-lettered; stored == answered.
    response = await _post(coap, f"{hub}/devices/ghost/sensors/temp/data", b'{"value": 1}')
    assert response.code == Code.CHANGED

    # 4.13 is decided from the first block (Size1) before anything is spooled.
    response = await _post(coap, uri, json.dumps({"value": 1, "pad": "x" * 6000}).encode())
    assert response.code == Code.REQUEST_ENTITY_TOO_LARGE
    assert response.opt.size1 == 4096

    response = await _post(coap, f"{hub}/devices/pump-1/nothing", b"{}")
    assert response.code == Code.NOT_FOUND
    response = await _post(coap, f"{hub}/devices/bad%20id/data", b"{}")
    assert response.code == Code.NOT_FOUND
    async with asyncio.timeout(10):
        got = await coap.request(aiocoap.Message(code=Code.GET, uri=uri)).response
    assert got.code == Code.METHOD_NOT_ALLOWED

    expected = sorted(
        [code for _, _, code in cases]
        + ["unsupported_content_format", "unknown_device", "payload_too_large"]
    )
    await _until(lambda: len(_letters(session_factory)) == len(expected))
    letters = _letters(session_factory)
    assert sorted(d.code for d in letters) == expected
    first = letters[0]
    assert (first.source, first.device_key, first.sensor_key) == ("coap", "pump-1", "temp")
    assert first.payload == b'{"value": 1'
    assert _values(session_factory) == []


async def test_slow_storage_answers_5_03(session_factory: sessionmaker[Session], coap: Any) -> None:
    _register(session_factory)
    stalled = IngestPipeline(session_factory)  # never run: nothing is ever stored
    port = free_udp_port()
    server = CoapServer(bind=(LOCAL, port), ack_timeout_s=0.3)
    task = await _serve(server, stalled)
    try:
        response = await _post(
            coap, f"coap://{LOCAL}:{port}/devices/pump-1/sensors/temp/data", b'{"value": 1}'
        )
        assert response.code == Code.SERVICE_UNAVAILABLE
        assert response.opt.max_age == 5
        assert server.stats.errors == 1
    finally:
        task.cancel()


# ---------------------------------------------------------------------------------------------
# (2) The hub's server, libcoap's coap-client as the device
# ---------------------------------------------------------------------------------------------


@needs_libcoap
async def test_libcoap_client_posts_to_the_hub(
    hub: str, session_factory: sessionmaker[Session], tmp_path: Any
) -> None:
    assert COAP_CLIENT is not None
    uri = f"{hub}/devices/meter-1/sensors/temp/data"
    out = await _libcoap(
        COAP_CLIENT, "-m", "post", "-t", "50", "-e", '{"value": 40.5}', "-B", "5", uri
    )
    assert out == ""  # 2.04 with an empty payload prints nothing
    assert _values(session_factory, "meter-1") == [40.5]

    cbor_file = tmp_path / "reading.cbor"
    cbor_file.write_bytes(cbor2.dumps({"readings": [{"sensor_id": "pressure", "value": 3.5}]}))
    batch_uri = f"{hub}/devices/meter-1/data"
    out = await _libcoap(
        COAP_CLIENT, "-m", "post", "-t", "60", "-f", str(cbor_file), "-B", "5", batch_uri
    )
    assert json.loads(out)["accepted"] == 1
    assert sorted(_values(session_factory, "meter-1")) == [3.5, 40.5]

    out = await _libcoap(
        COAP_CLIENT, "-m", "post", "-t", "50", "-e", '{"value": "x"}', "-B", "5", uri
    )
    assert out.startswith("4.00")
    assert "expected number" in out
    await _until(lambda: len(_letters(session_factory)) == 1)


# ---------------------------------------------------------------------------------------------
# (3) The hub as a client: observing and polling devices
# ---------------------------------------------------------------------------------------------


class _Gauge(aiocoap.resource.ObservableResource):  # type: ignore[misc]
    """A device resource: JSON readings, observable, short Max-Age so observers re-register."""

    def __init__(self, max_age: int = 1) -> None:
        super().__init__()
        self.value = 1.0
        self.max_age = max_age

    def set(self, value: float) -> None:
        self.value = value
        self.updated_state()

    async def render_get(self, request: Any) -> Any:
        payload = json.dumps({"value": self.value, "timestamp": utcnow().isoformat()})
        return aiocoap.Message(payload=payload.encode(), content_format=50, max_age=self.max_age)


class _Text(aiocoap.resource.Resource):  # type: ignore[misc]
    """A plain-text number, polled."""

    def __init__(self) -> None:
        super().__init__()
        self.value = 5

    async def render_get(self, request: Any) -> Any:
        self.value += 1
        return aiocoap.Message(payload=str(self.value).encode(), content_format=0)


async def _device_server(port: int, gauge: _Gauge, text: _Text | None = None) -> Any:
    site = aiocoap.resource.Site()
    site.add_resource(["sensors", "temp"], gauge)
    if text is not None:
        site.add_resource(["sensors", "pressure"], text)
    return await aiocoap.Context.create_server_context(
        site, bind=(LOCAL, port), transports=["udp6"]
    )


async def _run_connector(connector: CoapDeviceConnector, sink: Any) -> asyncio.Task[None]:
    return asyncio.create_task(connector.run(sink))


async def test_hub_observes_and_polls_an_aiocoap_device(
    pipeline: IngestPipeline, session_factory: sessionmaker[Session]
) -> None:
    port = free_udp_port()
    gauge, text = _Gauge(max_age=30), _Text()
    device_server = await _device_server(port, gauge, text)
    connector = CoapDeviceConnector(
        _device(
            "pump-1",
            f"coap://{LOCAL}:{port}",
            SensorConfig("temp", {"resource": "/sensors/temp", "observe": True}),
            SensorConfig("pressure", {"resource": "sensors/pressure", "poll_s": 0.2}),
        )
    )
    task = await _run_connector(connector, pipeline)
    try:
        await _until(lambda: 1.0 in _values(session_factory))
        # Observe delivers the latest state, so a burst may be coalesced: one change at a time.
        for value in (2.0, 3.0):
            gauge.set(value)
            await _until(_stored(session_factory, value))
        await _until(lambda: {6.0, 7.0} <= set(_values(session_factory)))
        assert connector.stats.connected
        assert connector.stats.errors == 0
        with session_factory() as session:
            assert session.scalars(select(Device.connected).where(Device.key == "pump-1")).one()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await device_server.shutdown()


@needs_libcoap
async def test_hub_observes_and_polls_libcoap_coap_server(
    pipeline: IngestPipeline, session_factory: sessionmaker[Session]
) -> None:
    assert COAP_SERVER is not None
    assert COAP_CLIENT is not None
    port = free_udp_port()
    # -d lets clients create resources with PUT; they are observable and serve what was PUT.
    device = await asyncio.create_subprocess_exec(
        COAP_SERVER,
        "-A",
        LOCAL,
        "-p",
        str(port),
        "-d",
        "5",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"coap://{LOCAL}:{port}"
    try:

        async def put(value: str) -> None:
            await _libcoap(
                COAP_CLIENT, "-m", "put", "-t", "0", "-e", value, "-B", "3", f"{base}/sensors/temp"
            )

        await _until_ok(lambda: put("21.5"))
        connector = CoapDeviceConnector(
            _device(
                "fan-1",
                base,
                SensorConfig("temp", {"resource": "/sensors/temp", "observe": True}),
                # /time is the server's clock as text ("Nov 28 10:00:00"): not a number.
                SensorConfig("pressure", {"resource": "/time", "poll_s": 30}),
            )
        )
        task = await _run_connector(connector, pipeline)
        try:
            await _until(lambda: _values(session_factory, "fan-1") == [21.5])
            await put("22.75")
            await _until(lambda: _values(session_factory, "fan-1") == [21.5, 22.75])
            await _until(
                lambda: any(d.channel == f"{base}/time" for d in _letters(session_factory))
            )
            letter = next(d for d in _letters(session_factory) if d.channel == f"{base}/time")
            assert (letter.code, letter.device_key, letter.sensor_key) == (
                "malformed_payload",
                "fan-1",
                "pressure",
            )
            assert connector.stats.connected  # a bad payload is not a broken link
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        device.terminate()
        await device.wait()


async def _until_ok(action: Callable[[], Any], within: float = 5.0) -> None:
    """Retry an async action while a freshly started process is still binding."""
    async with asyncio.timeout(within):
        while True:
            try:
                await action()
                return
            except OSError:
                await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# (4) Faults: the observed device goes away and comes back
# ---------------------------------------------------------------------------------------------


async def test_observation_is_re_established_after_the_device_restarts(
    pipeline: IngestPipeline, session_factory: sessionmaker[Session]
) -> None:
    port = free_udp_port()
    gauge = _Gauge(max_age=1)
    device_server = await _device_server(port, gauge)
    connector = CoapDeviceConnector(
        _device(
            "pump-1",
            f"coap://{LOCAL}:{port}",
            SensorConfig(
                "temp", {"resource": "/sensors/temp", "observe": True, "reobserve_s": 0.5}
            ),
        ),
        request_timeout_s=1.0,
    )
    task = await _run_connector(connector, pipeline)
    try:
        await _until(lambda: 1.0 in _values(session_factory))
        await device_server.shutdown()  # the device goes away (and forgets its observers)

        def lost() -> bool:
            with session_factory() as session:
                row = session.execute(
                    select(Device.connected, Device.last_error).where(Device.key == "pump-1")
                ).one()
            return not row.connected and row.last_error is not None

        await _until(lambda: not connector.stats.connected, within=5)
        await _until(lost, within=5)
        assert connector.stats.errors >= 1

        gauge = _Gauge(max_age=1)
        gauge.value = 50.0
        device_server = await _device_server(port, gauge)  # back, same address
        await _until(lambda: 50.0 in _values(session_factory), within=8)
        gauge.set(51.0)  # a notification, so the observation itself is back
        await _until(lambda: 51.0 in _values(session_factory), within=5)
        assert connector.stats.connected
        assert connector.stats.reconnects >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await device_server.shutdown()


# ---------------------------------------------------------------------------------------------
# DTLS with per-device pre-shared keys
# ---------------------------------------------------------------------------------------------


def _dtls_available() -> bool:
    from aiocoap.defaults import dtls_missing_modules

    return not dtls_missing_modules()


@pytest.mark.skipif(not _dtls_available(), reason="DTLSSocket (aiocoap's tinydtls) not installed")
@pytest.mark.skipif(COAP_CLIENT is None, reason="libcoap coap-client not installed")
async def test_dtls_with_per_device_psk(
    pipeline: IngestPipeline, session_factory: sessionmaker[Session], coap: Any
) -> None:
    assert COAP_CLIENT is not None
    plain, secure = free_udp_port(), free_udp_port()
    server = CoapServer(
        bind=(LOCAL, plain),
        secure_bind=(LOCAL, secure),
        devices=[_device("pump-1", "", psk_identity=PSK_IDENTITY, psk=PSK)],
    )
    task = await _serve(server, pipeline)
    coaps = f"coaps://{LOCAL}:{secure}"
    psk = ("-u", PSK_IDENTITY, "-k", PSK, "-B", "5")
    try:
        body = ("-m", "post", "-t", "50", "-e", '{"value": 7.5}')
        out = await _libcoap(COAP_CLIENT, *body, *psk, f"{coaps}/devices/pump-1/sensors/temp/data")
        assert out == ""  # 2.04, no payload
        assert _values(session_factory) == [7.5]
        stored = [7.5]
        if COAP_CLIENT_GNUTLS is not None:
            body = ("-m", "post", "-t", "50", "-e", '{"value": 8.5}')
            await _libcoap(
                COAP_CLIENT_GNUTLS, *body, *psk, f"{coaps}/devices/pump-1/sensors/pressure/data"
            )
            stored.append(8.5)
            assert _values(session_factory) == stored

        # The PSK of pump-1 does not let it write as fan-1.
        out = await _libcoap(COAP_CLIENT, *body, *psk, f"{coaps}/devices/fan-1/sensors/temp/data")
        assert out.startswith("4.03"), out
        # A device with a PSK may not post in the clear.
        response = await _post(
            coap, f"coap://{LOCAL}:{plain}/devices/pump-1/sensors/temp/data", b'{"value": 1}'
        )
        assert response.code == Code.UNAUTHORIZED
        # A wrong key never gets a session: no answer, nothing stored.
        out = await _libcoap(
            COAP_CLIENT,
            *body,
            "-u",
            PSK_IDENTITY,
            "-k",
            "wrong",
            "-B",
            "2",
            f"{coaps}/devices/pump-1/sensors/temp/data",
        )
        assert "2.04" not in out
        await _until(lambda: len(_letters(session_factory)) == 2)
        assert sorted(d.code for d in _letters(session_factory)) == ["dtls_required", "forbidden"]
        assert _values(session_factory) == stored
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


COAP_SERVER_TLS = shutil.which("coap-server-openssl")


@pytest.mark.skipif(not _dtls_available(), reason="DTLSSocket (aiocoap's tinydtls) not installed")
@pytest.mark.skipif(COAP_SERVER_TLS is None or COAP_CLIENT is None, reason="libcoap not installed")
async def test_hub_observes_a_coaps_device_with_its_psk(
    pipeline: IngestPipeline, session_factory: sessionmaker[Session]
) -> None:
    assert COAP_SERVER_TLS is not None
    assert COAP_CLIENT is not None
    port = free_udp_port()
    # libcoap serves DTLS on port + 1 and accepts any identity with this key.
    device = await asyncio.create_subprocess_exec(
        *(COAP_SERVER_TLS, "-A", LOCAL, "-p", str(port), "-k", PSK, "-d", "5"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        put = ("-m", "put", "-t", "0", "-e", "12.5", "-B", "3")
        await _until_ok(lambda: _libcoap(COAP_CLIENT, *put, f"coap://{LOCAL}:{port}/sensors/temp"))
        connector = CoapDeviceConnector(
            _device(
                "pump-1",
                f"coaps://{LOCAL}:{port + 1}",
                SensorConfig("temp", {"resource": "/sensors/temp", "observe": True}),
                psk_identity=PSK_IDENTITY,
                psk=PSK,
            ),
            request_timeout_s=3.0,
        )
        task = asyncio.create_task(connector.run(pipeline))
        try:
            await _until(_stored(session_factory, 12.5))
            assert connector.stats.connected
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        device.terminate()
        await device.wait()
