"""The hub as a CoAP client: one connector per device, polling or observing its resources.

A sensor's address says where its value lives and how to fetch it::

    {"resource": "/sensors/temp", "observe": true, "poll_s": 5,
     "value_path": "value", "timestamp_path": "timestamp", "reobserve_s": 90}

Only ``resource`` is required; sensors without one are pushed by the device to the hub's CoAP
server and are left alone here, as is a device with no such sensor. Payloads are JSON
``{"value":..., "timestamp":...}`` (the same shape as a single MQTT reading), CBOR of the same
shape, or a plain-text number stamped with the time it arrived. Undecodable payloads are
dead-lettered; the device still counts as connected.

Observations are re-registered when no notification came within the last one's Max-Age (plus
a grace period) or ``reobserve_s``: a device that restarted has forgotten its observers and
would otherwise stay silent for ever. Unreachable devices are retried with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiocoap
from aiocoap import error as coap_error
from aiocoap.numbers.codes import Code

from maintainpro.core.db import utcnow
from maintainpro.iot.connectors.base import (
    Backoff,
    ConnectorStats,
    DeviceConfig,
    ReadingSink,
    Rejected,
    SensorConfig,
)
from maintainpro.iot.connectors.coap import decode_single_payload
from maintainpro.iot.connectors.coap_server import psk_of
from maintainpro.iot.decode import (
    DEFAULT_OPTIONS,
    DecodeError,
    DecodeOptions,
    PayloadMapping,
)
from maintainpro.iot.readings import SensorReading

__all__ = ["CoapDeviceConnector", "SensorPlan", "plan_sensor"]

log = logging.getLogger(__name__)

SOURCE: Final = "coap"
DEFAULT_POLL_S: Final = 5.0
# RFC 7252's default Max-Age, used when a notification carries none.
DEFAULT_MAX_AGE_S: Final = 60.0
# Notifications may be a little late (retransmissions, server load) before we re-register.
OBSERVE_GRACE_S: Final = 5.0


@dataclass(frozen=True)
class SensorPlan:
    """How one sensor is read: its URI, observe or poll, and where the fields are."""

    sensor: SensorConfig
    uri: str
    observe: bool
    poll_s: float
    reobserve_s: float | None
    mapping: PayloadMapping


def plan_sensor(device: DeviceConfig, sensor: SensorConfig) -> SensorPlan | None:
    """Check a sensor's address and build its plan (None: pushed, not fetched); or ValueError."""
    address = sensor.address
    resource = address.get("resource")
    if resource is None:
        # The device POSTs this sensor's readings to the hub's server; nothing to fetch.
        return None
    if not isinstance(resource, str) or not resource.strip("/"):
        raise ValueError(f"sensor {sensor.key!r}: address needs a 'resource' path")
    poll_s = _seconds(sensor, "poll_s", None) or DEFAULT_POLL_S
    reobserve_s = _seconds(sensor, "reobserve_s", None)
    mapping = PayloadMapping(
        value=str(address.get("value_path", "value")),
        timestamp=address.get("timestamp_path", "timestamp"),
    )
    endpoint = device.endpoint.rstrip("/")
    if urlsplit(endpoint).scheme not in ("coap", "coaps"):
        raise ValueError(f"device {device.key!r}: endpoint must be coap:// or coaps://")
    return SensorPlan(
        sensor=sensor,
        uri=f"{endpoint}/{resource.lstrip('/')}",
        observe=bool(address.get("observe", False)),
        poll_s=poll_s,
        reobserve_s=reobserve_s,
        mapping=mapping,
    )


def _seconds(sensor: SensorConfig, name: str, default: float | None) -> float | None:
    """A positive, finite number of seconds from the address, or the default."""
    raw = sensor.address.get(name)
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw < 86_400 * 7:
        raise ValueError(f"sensor {sensor.key!r}: {name} must be a positive number of seconds")
    return float(raw)


class _BadAnswer(Exception):
    """The device answered with an error code (4.xx/5.xx) instead of a value."""


# What a device going away looks like from aiocoap, plus our own per-request timeout.
_LINK_ERRORS: Final = (coap_error.Error, TimeoutError, OSError, _BadAnswer)


class CoapDeviceConnector:
    """Reads one CoAP device: GET on a period or Observe, reconnecting forever."""

    def __init__(
        self,
        device: DeviceConfig,
        *,
        request_timeout_s: float = 10.0,
        options: DecodeOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.device = device
        self.name = f"coap:{device.key}"
        self.stats = ConnectorStats(name=self.name, protocol="coap")
        self.request_timeout_s = request_timeout_s
        self.options = options
        self._health: dict[str, str | None] = {}
        self._reported: tuple[bool, str | None] | None = None

    async def run(self, sink: ReadingSink) -> None:
        """Fetch every sensor's values until cancelled."""
        plans: list[SensorPlan] = []
        problems: list[str] = []
        for sensor in self.device.sensors:
            try:
                plan = plan_sensor(self.device, sensor)
            except ValueError as exc:
                problems.append(str(exc))
                self.stats.error(str(exc))
                log.error(
                    "CoAP sensor not read", extra={"device": self.device.key, "error": str(exc)}
                )
                continue
            if plan is not None:
                plans.append(plan)
        if not plans:
            if problems:
                self._report(sink, problems[0])
            # Push-only device (or nothing valid to fetch): its status comes from what it posts.
            await asyncio.Event().wait()
        context = await self._context()
        try:
            async with asyncio.TaskGroup() as group:
                for plan in plans:
                    group.create_task(self._sensor_loop(context, plan, sink))
        finally:
            self.stats.connected = False
            with contextlib.suppress(Exception):
                await asyncio.shield(context.shutdown())

    async def _context(self) -> Any:
        """A client context of this device's own, with its PSK when the endpoint is coaps."""
        secure = urlsplit(self.device.endpoint).scheme == "coaps"
        transports = ["tinydtls"] if secure else ["udp6"]
        context = await aiocoap.Context.create_client_context(transports=transports)
        pair = psk_of(self.device)
        if secure and pair is not None:
            from aiocoap.credentials import DTLS

            identity, key = pair
            host = urlsplit(self.device.endpoint).netloc
            context.client_credentials[f"coaps://{host}/*"] = DTLS(
                psk=key, client_identity=identity
            )
        return context

    async def _sensor_loop(self, context: Any, plan: SensorPlan, sink: ReadingSink) -> None:
        backoff = Backoff(first=min(1.0, plan.poll_s))
        failed = False
        while True:
            try:
                if plan.observe:
                    first: Any = None
                    async with contextlib.aclosing(self._observe(context, plan)) as answers:
                        async for response in answers:
                            await self._deliver(plan, response, sink)
                            if first is None:
                                first = response
                                failed = self._recovered(plan, sink, failed)
                                backoff.reset()
                    if first is not None and first.opt.observe is None:
                        # The device answered without Observe: poll it instead.
                        await asyncio.sleep(plan.poll_s)
                else:
                    response = await self._get(context, plan.uri)
                    await self._deliver(plan, response, sink)
                    failed = self._recovered(plan, sink, failed)
                    backoff.reset()
                    await asyncio.sleep(plan.poll_s)
            except _LINK_ERRORS as exc:
                text = _describe(exc)
                self.stats.error(f"{plan.sensor.key}: {text}")
                self._health[plan.sensor.key] = text
                self._report(sink, text)
                failed = True
                await asyncio.sleep(backoff.next_delay())

    def _recovered(self, plan: SensorPlan, sink: ReadingSink, failed: bool) -> bool:
        """Mark the sensor healthy; count a reconnect if it had failed."""
        if failed:
            self.stats.reconnects += 1
        self._health[plan.sensor.key] = None
        self._report(sink, None)
        return False

    def _report(self, sink: ReadingSink, error: str | None) -> None:
        """Tell the sink when the device as a whole goes up or down (not on every message)."""
        problems = [text for text in self._health.values() if text is not None]
        connected = not problems and error is None
        shown = problems[0] if problems else error
        state = (connected, shown)
        self.stats.connected = connected
        if state != self._reported:
            self._reported = state
            sink.connection_state(self.device.key, connected=connected, error=shown)

    async def _get(self, context: Any, uri: str) -> Any:
        request = context.request(aiocoap.Message(code=Code.GET, uri=uri))
        try:
            async with asyncio.timeout(self.request_timeout_s):
                response = await request.response
        finally:
            # Stop retransmitting once we gave up; harmless after a response.
            with contextlib.suppress(Exception):
                request.response.cancel()
        _check(response)
        return response

    async def _observe(self, context: Any, plan: SensorPlan) -> AsyncGenerator[Any, None]:
        """Yield the first answer and every notification until the observation goes stale."""
        request = context.request(aiocoap.Message(code=Code.GET, uri=plan.uri, observe=0))
        try:
            async with asyncio.timeout(self.request_timeout_s):
                first = await request.response
            _check(first)
            yield first
            if first.opt.observe is None:
                return
            notifications = aiter(request.observation)
            latest = first
            while True:
                wait = plan.reobserve_s or _max_age(latest) + OBSERVE_GRACE_S
                try:
                    async with asyncio.timeout(wait):
                        latest = await anext(notifications)
                except TimeoutError:
                    # Silent past Max-Age: re-register (the device may have restarted).
                    return
                except StopAsyncIteration:
                    raise coap_error.ObservationCancelled() from None
                _check(latest)
                yield latest
        finally:
            with contextlib.suppress(Exception):
                request.observation.cancel()
            with contextlib.suppress(Exception):
                request.response.cancel()

    async def _deliver(self, plan: SensorPlan, response: Any, sink: ReadingSink) -> None:
        """Decode a response into a reading or a dead letter and hand it to the sink."""
        payload = bytes(response.payload)
        content_format = response.opt.content_format
        readings: list[SensorReading] = []
        rejected: list[Rejected] = []
        try:
            readings.append(
                decode_single_payload(
                    payload,
                    None if content_format is None else int(content_format),
                    device_id=self.device.key,
                    sensor_id=plan.sensor.key,
                    received_at=utcnow(),
                    mapping=plan.mapping,
                    options=self.options,
                )
            )
            self.stats.success(readings=1)
        except DecodeError as exc:
            self.stats.error(f"{plan.sensor.key}: {exc.reason}")
            rejected.append(
                Rejected(
                    source=SOURCE,
                    code=exc.code,
                    reason=exc.reason,
                    payload=payload or None,
                    device_key=self.device.key,
                    sensor_key=plan.sensor.key,
                    channel=plan.uri,
                )
            )
        await sink.submit(readings, rejected)


def _check(response: Any) -> None:
    if not response.code.is_successful():
        diagnostic = bytes(response.payload)[:200].decode("utf-8", "replace")
        raise _BadAnswer(f"{response.code}" + (f": {diagnostic}" if diagnostic else ""))


def _max_age(response: Any) -> float:
    max_age = response.opt.max_age
    return DEFAULT_MAX_AGE_S if max_age is None else float(max_age)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:500]
