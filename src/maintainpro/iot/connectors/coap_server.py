"""The hub's CoAP server: devices POST readings, answered only once they are stored.

Resources (ids as in MQTT topics, ``[A-Za-z0-9_.:-]{1,128}``)::

    POST /devices/{device_id}/sensors/{sensor_id}/data   one reading: JSON, CBOR or a text number
    POST /devices/{device_id}/data                       {"readings": [...]}: JSON or CBOR

2.04 Changed is sent after the ingest pipeline acknowledged the readings (stored, or refused by
the registry and dead-lettered); if that takes longer than ``ack_timeout_s`` the answer is 5.03
with Max-Age, the device retries and the pipeline drops the duplicates. Undecodable payloads get
4.00 with a diagnostic payload and a dead letter; oversized ones 4.13; other paths 4.04.

On the secure port (DTLS, pre-shared keys from the device registry) a device may only post for
itself, and a device that has a PSK must use the secure port. See docs/coap.md for the DTLS
limitations of aiocoap's experimental server transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Final

import aiocoap
import aiocoap.resource
from aiocoap import error as coap_error
from aiocoap.numbers.codes import Code

from maintainpro.core.db import utcnow
from maintainpro.iot.connectors.base import (
    Backoff,
    ConnectorStats,
    DeviceConfig,
    ReadingSink,
    Rejected,
)
from maintainpro.iot.connectors.coap import (
    COAP_PORT,
    COAPS_PORT,
    CONTENT_JSON,
    CONTENT_TEXT,
    UnsupportedContentFormat,
    decode_batch_payload,
    decode_single_payload,
    parse_bind,
)
from maintainpro.iot.decode import (
    DEFAULT_MAPPING,
    DEFAULT_OPTIONS,
    BadTopic,
    DecodeError,
    DecodeOptions,
    PayloadMapping,
    PayloadTooLarge,
    validate_id,
)
from maintainpro.iot.readings import SensorReading

__all__ = ["CoapServer", "PskStore", "psk_of"]

log = logging.getLogger(__name__)

SOURCE: Final = "coap"
# How long a device is told to wait before retrying when storage is slow (Max-Age, seconds).
RETRY_AFTER_S: Final = 5
# Cap on rejected batch items described in a 2.04 answer; the dead letters keep them all.
_MAX_REPORTED: Final = 20
_MAX_DIAGNOSTIC: Final = 400
# aiocoap's DTLS server binds to the given port plus this offset (5684 - 5683).
_DTLS_PORT_OFFSET: Final = COAPS_PORT - COAP_PORT
# aiocoap's DTLS server never forgets a client (see docs/coap.md); beyond this many the
# least recently active are closed so memory stays bounded.
MAX_DTLS_SESSIONS: Final = 256


def psk_of(device: DeviceConfig) -> tuple[bytes, bytes] | None:
    """The (identity, key) a device authenticates with, if its credentials carry one."""
    identity = device.credentials.get("psk_identity")
    key_text = device.credentials.get("psk")
    key_hex = device.credentials.get("psk_hex")
    if not identity or not (key_text or key_hex):
        return None
    key = bytes.fromhex(key_hex) if key_hex else (key_text or "").encode()
    return identity.encode(), key


class PskStore:
    """Per-device DTLS pre-shared keys; read at every handshake, so updates apply at once.

    aiocoap's DTLS server asks ``find_dtls_psk(identity)`` and reports what it returns second as
    the connection's authenticated claim; that claim is the device key.
    """

    def __init__(self, devices: Iterable[DeviceConfig] = ()) -> None:
        self._by_identity: dict[bytes, tuple[bytes, str]] = {}
        self._devices: frozenset[str] = frozenset()
        self.update(devices)

    def __bool__(self) -> bool:
        """Always true: aiocoap replaces a falsy credentials object with an empty map."""
        return True

    def update(self, devices: Iterable[DeviceConfig]) -> None:
        """Replace the keys with those of these devices (the hub passes the enabled ones)."""
        by_identity: dict[bytes, tuple[bytes, str]] = {}
        for device in devices:
            pair = psk_of(device)
            if pair is None:
                continue
            identity, key = pair
            if identity in by_identity:
                log.error(
                    "duplicate PSK identity; later device ignored",
                    extra={"device": device.key, "other": by_identity[identity][1]},
                )
                continue
            by_identity[identity] = (key, device.key)
        self._by_identity = by_identity
        self._devices = frozenset(device for _, device in by_identity.values())

    def find_dtls_psk(self, identity: bytes) -> tuple[bytes, str]:
        """The key and device key for a PSK identity; KeyError if unknown."""
        return self._by_identity[bytes(identity)]

    def requires_dtls(self, device_key: str) -> bool:
        """True when the device has a PSK and so must not post in the clear."""
        return device_key in self._devices


def _message(code: Any, text: str | None = None, **options: Any) -> Any:
    """A response with an optional UTF-8 diagnostic payload."""
    if text is None:
        return aiocoap.Message(code=code, **options)
    return aiocoap.Message(
        code=code,
        payload=text[:_MAX_DIAGNOSTIC].encode(),
        content_format=CONTENT_TEXT,
        **options,
    )


class _Refusal(Exception):
    """A request refused before decoding, with the CoAP code and the dead-letter code."""

    def __init__(self, code: Any, letter_code: str | None, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.letter_code = letter_code
        self.reason = reason


class _Route:
    """Where a request goes: the device, the sensor (None for a batch) and the path text."""

    def __init__(self, device: str, sensor: str | None, path: str) -> None:
        self.device = device
        self.sensor = sensor
        self.path = path


def _route(path: Sequence[str]) -> _Route | None:
    """Match the URI path; None if it is not a data resource, BadTopic for a bad id."""
    text = "/" + "/".join(path)
    if len(path) == 5 and path[0] == "devices" and path[2] == "sensors" and path[4] == "data":
        return _Route(validate_id(path[1], "device_id"), validate_id(path[3], "sensor_id"), text)
    if len(path) == 3 and path[0] == "devices" and path[2] == "data":
        return _Route(validate_id(path[1], "device_id"), None, text)
    return None


class _DataSite(aiocoap.resource.Resource):  # type: ignore[misc]  # aiocoap is untyped
    """The root resource: parses the path itself so ids can be any valid id."""

    def __init__(self, server: CoapServer, sink: ReadingSink) -> None:
        super().__init__()
        self._server = server
        self._sink = sink

    async def render_to_pipe(self, pipe: Any) -> None:
        """Refuse oversized bodies before aiocoap spools their blocks into memory."""
        request = pipe.request
        limit = self._server.max_payload_bytes
        block1 = request.opt.block1
        declared = request.opt.size1
        received = len(request.payload) + (block1.start if block1 is not None else 0)
        if received > limit or (declared is not None and declared > limit):
            size = max(received, declared or 0)
            reason = f"payload is at least {size} bytes, limit is {limit}"
            self._server.stats.error(reason)
            await self._dead_letter_for(request, "payload_too_large", reason, payload=None)
            pipe.add_response(
                _message(Code.REQUEST_ENTITY_TOO_LARGE, reason, size1=limit), is_last=True
            )
            return
        await super().render_to_pipe(pipe)

    async def needs_blockwise_assembly(self, request: Any) -> bool:
        """Let aiocoap assemble Block1 uploads (their size is checked first)."""
        return True

    async def render(self, request: Any) -> Any:
        """Route, authorise, decode, queue, wait for storage, answer."""
        try:
            route = _route(tuple(request.opt.uri_path))
        except BadTopic as exc:
            self._server.stats.error(exc.reason)
            return _message(Code.NOT_FOUND, exc.reason)
        if route is None:
            return _message(Code.NOT_FOUND, "no such resource")
        if request.code != Code.POST:
            return _message(Code.METHOD_NOT_ALLOWED, "use POST")
        try:
            self._authorise(request, route)
            return await self._ingest(request, route)
        except _Refusal as refusal:
            self._server.stats.error(refusal.reason)
            if refusal.letter_code is not None:
                await self._dead_letter(route, refusal.letter_code, refusal.reason, request.payload)
            return _message(refusal.code, refusal.reason)

    def _authorise(self, request: Any, route: _Route) -> None:
        """On DTLS a device posts only for itself; a device with a PSK must use DTLS."""
        remote = request.remote
        if getattr(remote, "scheme", "coap") == "coaps":
            claims = list(getattr(remote, "authenticated_claims", ()) or ())
            if route.device not in claims:
                raise _Refusal(
                    Code.FORBIDDEN,
                    "forbidden",
                    f"the PSK identity used does not belong to device {route.device!r}",
                )
        elif self._server.psk.requires_dtls(route.device):
            raise _Refusal(
                Code.UNAUTHORIZED,
                "dtls_required",
                f"device {route.device!r} has a pre-shared key; use coaps on the secure port",
            )

    async def _ingest(self, request: Any, route: _Route) -> Any:
        server = self._server
        payload = bytes(request.payload)
        content_format = request.opt.content_format
        received_at = utcnow()
        rejected: list[Rejected] = []
        try:
            if route.sensor is not None:
                readings: Sequence[SensorReading] = (
                    decode_single_payload(
                        payload,
                        None if content_format is None else int(content_format),
                        device_id=route.device,
                        sensor_id=route.sensor,
                        received_at=received_at,
                        mapping=server.mapping,
                        options=server.options,
                    ),
                )
            else:
                result = decode_batch_payload(
                    payload,
                    None if content_format is None else int(content_format),
                    device_id=route.device,
                    received_at=received_at,
                    mapping=server.mapping,
                    options=server.options,
                )
                readings = result.readings
                for number, item in enumerate(result.rejected):
                    rejected.append(
                        Rejected(
                            source=SOURCE,
                            code=item.error.code,
                            reason=f"readings[{item.index}]: {item.reason}",
                            # One copy of the batch is enough to investigate every bad item.
                            payload=payload if number == 0 else None,
                            device_key=route.device,
                            channel=route.path,
                        )
                    )
        except DecodeError as exc:
            code = Code.BAD_REQUEST
            if isinstance(exc, PayloadTooLarge):
                code = Code.REQUEST_ENTITY_TOO_LARGE
            elif isinstance(exc, UnsupportedContentFormat):
                code = Code.UNSUPPORTED_CONTENT_FORMAT
            raise _Refusal(code, exc.code, exc.reason) from None

        loop = asyncio.get_running_loop()
        stored: asyncio.Future[None] = loop.create_future()

        def ack() -> None:
            # The pipeline may call this from another thread; futures are not thread-safe.
            with contextlib.suppress(RuntimeError):  # loop closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, stored)

        try:
            async with asyncio.timeout(server.ack_timeout_s):
                await self._sink.submit(readings, rejected, ack)
                await stored
        except TimeoutError:
            reason = f"readings not stored within {server.ack_timeout_s:g} s; retry later"
            server.stats.error(reason)
            return _message(Code.SERVICE_UNAVAILABLE, reason, max_age=RETRY_AFTER_S)
        server.stats.success(readings=len(readings))
        if route.sensor is not None:
            return aiocoap.Message(code=Code.CHANGED)
        summary = {
            "accepted": len(readings),
            "rejected": [
                {"code": r.code, "reason": r.reason[:200]} for r in rejected[:_MAX_REPORTED]
            ],
            "rejected_total": len(rejected),
        }
        return aiocoap.Message(
            code=Code.CHANGED,
            payload=json.dumps(summary).encode(),
            content_format=CONTENT_JSON,
        )

    async def _dead_letter_for(
        self, request: Any, code: str, reason: str, payload: bytes | None
    ) -> None:
        """Dead-letter a refusal of a data resource (other paths are just scanned, not used)."""
        try:
            route = _route(tuple(request.opt.uri_path))
        except BadTopic:
            return
        if route is not None:
            await self._dead_letter(route, code, reason, payload)

    async def _dead_letter(
        self, route: _Route, code: str, reason: str, payload: bytes | None
    ) -> None:
        letter = Rejected(
            source=SOURCE,
            code=code,
            reason=reason,
            payload=payload or None,
            device_key=route.device,
            sensor_key=route.sensor,
            channel=route.path,
        )
        try:
            # Bounded: a full queue must not hold the answer to a bad request forever.
            async with asyncio.timeout(self._server.ack_timeout_s):
                await self._sink.submit((), (letter,))
        except TimeoutError:
            log.warning("dead letter dropped: ingest queue full", extra={"code": code})


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class CoapServer:
    """The hub's CoAP server as a connector: plain UDP and, optionally, DTLS with PSKs."""

    def __init__(
        self,
        *,
        bind: tuple[str, int] | None,
        secure_bind: tuple[str, int] | None = None,
        devices: Iterable[DeviceConfig] = (),
        ack_timeout_s: float = 10.0,
        max_payload_bytes: int = 64 * 1024,
        mapping: PayloadMapping = DEFAULT_MAPPING,
        options: DecodeOptions = DEFAULT_OPTIONS,
        name: str = "coap-server",
    ) -> None:
        if bind is None and secure_bind is None:
            raise ValueError("the CoAP server needs a bind address, a secure one, or both")
        if secure_bind is not None:
            if secure_bind[1] <= _DTLS_PORT_OFFSET:
                raise ValueError("the secure CoAP port must be above 1")
            from aiocoap.defaults import dtls_missing_modules

            missing = dtls_missing_modules()
            if missing:
                raise RuntimeError(
                    f"coaps_bind needs the Python package(s) {', '.join(missing)} "
                    "(pip install DTLSSocket; building it needs autoconf, automake, libtool)"
                )
        self.name = name
        self.stats = ConnectorStats(name=name, protocol="coap")
        self.bind = bind
        self.secure_bind = secure_bind
        self.psk = PskStore(devices)
        self.ack_timeout_s = ack_timeout_s
        self.max_payload_bytes = max_payload_bytes
        self.mapping = mapping
        # A payload over the server's limit is answered 4.13 before decoding; keep the decoder
        # limit in step so the two never disagree.
        self.options = DecodeOptions(
            max_payload_bytes=max_payload_bytes,
            max_batch=options.max_batch,
            min_timestamp=options.min_timestamp,
            max_future=options.max_future,
            naive_timestamps_utc=options.naive_timestamps_utc,
        )
        self.ready = asyncio.Event()

    @classmethod
    def from_settings(
        cls, coap_bind: str | None, coaps_bind: str | None, devices: Iterable[DeviceConfig] = ()
    ) -> CoapServer | None:
        """Build the server from the coap_bind/coaps_bind settings; None when both are off."""
        if not coap_bind and not coaps_bind:
            return None
        return cls(
            bind=parse_bind(coap_bind, COAP_PORT) if coap_bind else None,
            secure_bind=parse_bind(coaps_bind, COAPS_PORT) if coaps_bind else None,
            devices=devices,
        )

    def update_devices(self, devices: Iterable[DeviceConfig]) -> None:
        """Reload the pre-shared keys after a registry change."""
        self.psk.update(devices)

    async def run(self, sink: ReadingSink) -> None:
        """Serve until cancelled; a failed bind is retried with back-off."""
        backoff = Backoff(first=1.0)
        while True:
            contexts: list[Any] = []
            try:
                site = _DataSite(self, sink)
                if self.bind is not None:
                    contexts.append(
                        await aiocoap.Context.create_server_context(
                            site, bind=self.bind, transports=["udp6"]
                        )
                    )
                if self.secure_bind is not None:
                    host, port = self.secure_bind
                    contexts.append(
                        await aiocoap.Context.create_server_context(
                            site,
                            bind=(host, port - _DTLS_PORT_OFFSET),
                            transports=["tinydtls_server"],
                            server_credentials=self.psk,
                        )
                    )
                self.stats.connected = True
                backoff.reset()
                self.ready.set()
                log.info(
                    "CoAP server listening",
                    extra={"bind": self.bind, "secure_bind": self.secure_bind},
                )
                await self._housekeeping(contexts)
            except OSError as exc:
                text = f"{type(exc).__name__}: {exc}"
                self.stats.error(text)
                self.stats.reconnects += 1
                log.error("CoAP server cannot bind; retrying", extra={"error": text})
                await asyncio.sleep(backoff.next_delay())
            finally:
                self.stats.connected = False
                self.ready.clear()
                for context in contexts:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(context.shutdown())

    async def _housekeeping(self, contexts: Sequence[Any]) -> None:
        """Run forever, capping the DTLS server's per-client sessions."""
        while True:
            await asyncio.sleep(30)
            for context in contexts:
                _trim_dtls_sessions(context)


def _trim_dtls_sessions(context: Any) -> None:
    """Close the least recently active DTLS sessions beyond MAX_DTLS_SESSIONS.

    aiocoap 0.4.x keeps one session per client address until a fatal alert; clients that go
    away (or close with a warning-level close_notify, as libcoap does) are never removed.
    """
    for interface in getattr(context, "request_interfaces", ()):
        messages = getattr(getattr(interface, "token_interface", None), "message_interface", None)
        pool = getattr(messages, "_pool", None)
        connections = getattr(pool, "_connections", None)
        if connections is None:
            continue
        while len(connections) > MAX_DTLS_SESSIONS:
            _, oldest = next(iter(connections.items()))
            try:
                oldest._inject_error(coap_error.LibraryShutdown("idle DTLS session closed"))
            except Exception:  # noqa: BLE001 - private API of an experimental transport
                log.warning("could not close an idle DTLS session")
                connections.pop(next(iter(connections)), None)
