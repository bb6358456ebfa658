"""MQTT connector: subscribes the hub to device topics on a broker and feeds the ingest pipeline.

Nothing is lost between the broker and storage: the hub subscribes at QoS 1 on a persistent
session and sends PUBACK only from the acknowledgement the pipeline runs after its commit, so
whatever the hub had received but not stored when it stopped is redelivered by the broker.
Redeliveries are harmless because storage skips a reading it already has.

Threads: paho-mqtt's network I/O runs in one thread of this connector's own, and that thread is
the only one that ever calls the paho client. paho's ``ack()`` is *not* safe to call from another
thread unless paho's own ``loop_start()`` thread runs the loop: without it, ``ack()`` writes to the
socket from the calling thread, racing the network thread. Instead of relying on that, the
asyncio side hands acknowledgements (and subscription changes) to the network thread through
deques, and the network thread hands messages to asyncio through a deque and one wake-up call
per burst. Running the loop ourselves also gives us the connection error text (paho's
``loop_forever`` swallows it), jittered back-off and a thread that cannot die of an exception.

Decisions:

* Acknowledgements are tied to the connection a message arrived on. After a reconnect, an ack for
  a message of the old connection is dropped rather than sent: the broker redelivers that message
  on the new connection (same session), and acking an old packet id could acknowledge a different
  message that reuses it.
* ``mqtt_topic_prefix`` replaces the ``devices`` root (``TopicScheme.with_prefix``):
  ``acme/site1`` gives ``acme/site1/{device_id}/sensors/{sensor_id}/data``.
* A device in its own format names a topic filter and JSON paths in its settings
  (see :class:`DeviceRoute`); its readings carry the device's registry key, never an id from the
  topic, so a device cannot publish readings for another one.
* Decoding failures become dead letters and the message is still acknowledged: it was handled,
  and redelivering it would only fail again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import unquote, urlsplit

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from maintainpro.iot.connectors.base import (
    MAX_BACKOFF_S,
    Ack,
    Backoff,
    ConnectorStats,
    DeviceConfig,
    ReadingSink,
    Rejected,
)
from maintainpro.iot.decode import (
    DEFAULT_OPTIONS,
    DEFAULT_TOPIC_SCHEME,
    BadTopic,
    BatchResult,
    DecodeError,
    DecodeOptions,
    Payload,
    PayloadMapping,
    TopicScheme,
    decode_batch,
    decode_message,
    decode_reading,
    parse_topic,
)
from maintainpro.iot.readings import SensorReading

if TYPE_CHECKING:
    from maintainpro.config import Settings

__all__ = [
    "SOURCE",
    "DeviceRoute",
    "MqttConfigError",
    "MqttConnector",
    "MqttOptions",
    "MqttStats",
]

log = logging.getLogger(__name__)

SOURCE: Final = "mqtt"
"""The ``source`` of dead letters this connector produces."""

DEFAULT_PORT: Final = 1883
DEFAULT_TLS_PORT: Final = 8883
_TLS_SCHEMES: Final = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True, "tls": True}
_MAPPING_FIELDS: Final = frozenset(
    {"value", "timestamp", "quality", "metadata", "readings", "sensor_id", "timestamp_unit"}
)
# A message is decoded and submitted with at most this many others, so one ack closure and one
# pipeline item cover a burst instead of one per message.
_CHUNK: Final = 1000
# While messages await their acknowledgement the network thread polls this often for acks to
# send; when nothing is outstanding it only wakes for traffic, keep-alive and subscription changes.
_ACK_POLL_S: Final = 0.002
_IDLE_POLL_S: Final = 0.1
_ROUTE_CACHE_SIZE: Final = 16_384


class MqttConfigError(ValueError):
    """The connector's or a device's MQTT settings cannot be used."""


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _check_filter(topic_filter: str, what: str) -> str:
    """Return ``topic_filter`` if it is a valid MQTT subscription filter, else raise."""
    if not topic_filter or "\x00" in topic_filter or len(topic_filter.encode()) > 65_535:
        raise MqttConfigError(f"{what}: {topic_filter!r} is not a valid topic filter")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if ("+" in level and level != "+") or ("#" in level and level != "#"):
            raise MqttConfigError(f"{what}: wildcards must fill a whole level in {topic_filter!r}")
        if level == "#" and index != len(levels) - 1:
            raise MqttConfigError(f"{what}: '#' must be the last level in {topic_filter!r}")
    if topic_filter.startswith("$"):
        raise MqttConfigError(f"{what}: {topic_filter!r} is a broker-internal topic")
    return topic_filter


def _matches(levels: tuple[str, ...], topic: list[str]) -> bool:
    """MQTT filter matching on pre-split levels ('+' one level, '#' the rest)."""
    for index, want in enumerate(levels):
        if want == "#":
            return True
        if index >= len(topic) or (want != "+" and want != topic[index]):
            return False
    return len(levels) == len(topic)


@dataclass(frozen=True)
class MqttOptions:
    """How the hub reaches its broker and subscribes; built from Settings by from_settings()."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = "maintainpro-hub"
    protocol: Literal["5", "3.1.1"] = "5"
    shared_group: str | None = None
    topic_prefix: str = ""
    keepalive_s: int = 30
    # MQTT 5: how long the broker keeps the session (and queues messages) while the hub is away.
    session_expiry_s: int = 7 * 24 * 3600
    # MQTT 5: unacknowledged messages the broker may have in flight to the hub. Acks wait for a
    # commit (tens of ms), so a small window would throttle ingest to window / commit time.
    receive_maximum: int = 65_535
    # MQTT 5: larger packets are not sent to the hub at all, which bounds its memory use.
    max_packet_bytes: int = 4 * 1024 * 1024
    # QoS 0 messages are not flow-controlled by the broker; beyond this many waiting to be
    # decoded they are dropped (and counted) rather than growing memory without bound.
    max_pending_qos0: int = 100_000
    reconnect_first_s: float = 0.5
    reconnect_cap_s: float = MAX_BACKOFF_S
    decode: DecodeOptions = DEFAULT_OPTIONS

    def __post_init__(self) -> None:
        """Refuse settings that could only fail later, on the network thread."""
        if not self.host:
            raise MqttConfigError("MQTT host is empty")
        if not 1 <= self.port <= 65_535:
            raise MqttConfigError(f"MQTT port {self.port} is out of range")
        if not self.client_id:
            # A persistent session is found again by its client id; a random one loses it.
            raise MqttConfigError("MQTT client id is required for a persistent session")
        if self.protocol not in ("5", "3.1.1"):
            raise MqttConfigError(f"MQTT protocol must be 5 or 3.1.1, got {self.protocol!r}")
        if self.shared_group is not None and (
            not self.shared_group or any(ch in self.shared_group for ch in "/+#\x00")
        ):
            raise MqttConfigError(f"shared group {self.shared_group!r} is not a valid name")
        if self.key_file is not None and self.cert_file is None:
            raise MqttConfigError("an MQTT client key needs its certificate (mqtt_cert_file)")
        if (self.ca_file or self.cert_file) and not self.tls:
            raise MqttConfigError("CA or client certificate given but the URL is not mqtts://")
        if not 1 <= self.receive_maximum <= 65_535:
            raise MqttConfigError("receive_maximum must be 1..65535")
        if not 0 <= self.session_expiry_s <= 0xFFFFFFFF:
            raise MqttConfigError("session_expiry_s must be 0..4294967295")
        self.scheme()  # validates the prefix

    @classmethod
    def from_url(cls, url: str, **fields: Any) -> MqttOptions:
        """Options from ``mqtt://host:port`` or ``mqtts://host:port`` plus explicit fields."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _TLS_SCHEMES:
            raise MqttConfigError(f"MQTT URL scheme must be mqtt:// or mqtts://, got {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise MqttConfigError("MQTT URL takes only host and port")
        try:
            port = parts.port
        except ValueError:
            raise MqttConfigError(f"MQTT URL has an invalid port: {url!r}") from None
        tls = _TLS_SCHEMES[scheme]
        # Credentials in the URL are accepted as a fallback; explicit settings win.
        if parts.username and fields.get("username") is None:
            fields["username"] = unquote(parts.username)
        if parts.password and fields.get("password") is None:
            fields["password"] = unquote(parts.password)
        return cls(
            host=parts.hostname or "",
            port=port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
            tls=tls,
            **fields,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> MqttOptions:
        """Options from the hub's mqtt_* settings; raise MqttConfigError when MQTT is off."""
        if not settings.mqtt_url:
            raise MqttConfigError("MQTT is not configured (mqtt_url is not set)")
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        protocol: Literal["5", "3.1.1"] = "3.1.1" if settings.mqtt_protocol == "3.1.1" else "5"
        return cls.from_url(
            settings.mqtt_url,
            username=settings.mqtt_username,
            password=password,
            ca_file=settings.mqtt_ca_file,
            cert_file=settings.mqtt_cert_file,
            key_file=settings.mqtt_key_file,
            client_id=settings.mqtt_client_id,
            protocol=protocol,
            shared_group=settings.mqtt_shared_group,
            topic_prefix=settings.mqtt_topic_prefix,
        )

    def scheme(self) -> TopicScheme:
        """The default topic layout, under the configured prefix."""
        prefix = self.topic_prefix.strip("/")
        if not prefix:
            return DEFAULT_TOPIC_SCHEME
        try:
            return TopicScheme.with_prefix(prefix)
        except ValueError as exc:
            raise MqttConfigError(f"topic prefix {self.topic_prefix!r}: {exc}") from None

    def subscription(self, topic_filter: str) -> str:
        """The filter as subscribed: inside the shared group when one is configured."""
        if self.shared_group:
            return f"$share/{self.shared_group}/{topic_filter}"
        return topic_filter


@dataclass(frozen=True)
class DeviceRoute:
    """A device that publishes in its own format: its topic filter, JSON paths and sensor.

    Taken from ``DeviceConfig.settings``::

        {"topic": "acme/line1/+/telemetry",      # MQTT filter the device publishes on
         "mapping": {"value": "data.temp", "timestamp": "ts", "timestamp_unit": "s"},
         "sensor": "temp",        # fixed sensor key, or
         "sensor_level": 2,       # the topic level naming the sensor, or
         "batch": true}           # a readings array with a sensor id per item

    Without ``sensor``, ``sensor_level`` or ``batch``, a filter with exactly one ``+`` takes
    the sensor key from that level.
    """

    device_key: str
    topic_filter: str
    mapping: PayloadMapping
    sensor: str | None = None
    sensor_level: int | None = None

    @property
    def batch(self) -> bool:
        """True when the payload is a readings array (the sensor id is in each item)."""
        return self.sensor is None and self.sensor_level is None

    @classmethod
    def from_config(cls, config: DeviceConfig) -> DeviceRoute | None:
        """The route of a device with its own topic; None for devices on the default topics."""
        settings = config.settings
        topic = settings.get("topic")
        if topic is None:
            return None
        where = f"device {config.key!r}"
        if not isinstance(topic, str):
            raise MqttConfigError(f"{where}: settings.topic must be a string")
        levels = _check_filter(topic, f"{where}: settings.topic").split("/")
        raw_mapping = settings.get("mapping", {})
        if not isinstance(raw_mapping, Mapping):
            raise MqttConfigError(f"{where}: settings.mapping must be an object")
        unknown = set(raw_mapping) - _MAPPING_FIELDS
        if unknown:
            raise MqttConfigError(f"{where}: unknown mapping fields {sorted(unknown)}")
        for name, path in raw_mapping.items():
            if path is not None and not isinstance(path, str):
                raise MqttConfigError(f"{where}: mapping.{name} must be a string or null")
        try:
            mapping = PayloadMapping(**raw_mapping)
        except (TypeError, ValueError) as exc:
            raise MqttConfigError(f"{where}: mapping: {exc}") from None
        sensor = settings.get("sensor")
        level = settings.get("sensor_level")
        batch = settings.get("batch", False)
        if sensor is not None and not isinstance(sensor, str):
            raise MqttConfigError(f"{where}: settings.sensor must be a string")
        if level is not None and (
            type(level) is not int or not 0 <= level < len(levels) or levels[level] != "+"
        ):
            raise MqttConfigError(f"{where}: settings.sensor_level must index a '+' level")
        if batch is not True and sensor is None and level is None:
            wildcards = [i for i, part in enumerate(levels) if part == "+"]
            if len(wildcards) != 1:
                raise MqttConfigError(
                    f"{where}: say where the sensor comes from (settings.sensor, "
                    "settings.sensor_level or settings.batch)"
                )
            level = wildcards[0]
        if batch is True:
            sensor = level = None
        return cls(config.key, topic, mapping, sensor, level)

    def decode(
        self, topic: str, payload: Payload, received_at: dt.datetime, options: DecodeOptions
    ) -> BatchResult:
        """Decode a message of this device; raises DecodeError like the default decoders."""
        if self.batch:
            return decode_batch(
                payload,
                device_id=self.device_key,
                received_at=received_at,
                mapping=self.mapping,
                options=options,
            )
        sensor = self.sensor
        if sensor is None:
            sensor = topic.split("/")[self.sensor_level or 0]
        reading = decode_reading(
            payload,
            device_id=self.device_key,
            sensor_id=sensor,
            received_at=received_at,
            mapping=self.mapping,
            options=options,
        )
        return BatchResult((reading,))


@dataclass
class MqttStats(ConnectorStats):
    """ConnectorStats plus what only MQTT has: dead-lettered input, acks, dropped QoS 0."""

    rejected: int = 0
    acked: int = 0
    stale_acks: int = 0
    dropped_qos0: int = 0
    subscriptions: int = 0


# A message as the network thread hands it over: topic (None if not UTF-8), payload, packet id,
# QoS and the connection it arrived on.
_Inbound = tuple[str | None, bytes | bytearray, int, int, int]
_PendingAck = tuple[int, int, int]


# --------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------


class MqttConnector:
    """Subscribes to device topics, decodes messages, acks them after the pipeline's commit."""

    protocol: Final = "mqtt"

    def __init__(
        self,
        options: MqttOptions,
        devices: Sequence[DeviceConfig] = (),
        *,
        name: str = "mqtt",
    ) -> None:
        """Prepare the connector; nothing connects before run()."""
        self.name = name
        self.options = options
        self.stats = MqttStats(name=name, protocol="mqtt")
        self._scheme = options.scheme()
        self._default_filters = tuple(
            template.replace("{device_id}", "+").replace("{sensor_id}", "+")
            for template in (self._scheme.single, self._scheme.batch)
            if template is not None
        )
        self._routes: tuple[tuple[tuple[str, ...], DeviceRoute], ...] = ()
        self._route_cache: dict[str, DeviceRoute | None] = {}
        self._config_errors: dict[str, str] = {}
        self._desired: frozenset[str] = frozenset()
        self._sink: ReadingSink | None = None
        self.update_devices(devices)
        # Shared between the network thread and the event loop (deque operations are atomic).
        self._inbox: deque[_Inbound] = deque()
        self._acks: deque[_PendingAck] = deque()
        self._signalled = False
        self._stop = threading.Event()
        # Owned by the network thread.
        self._generation = 0
        self._connected = False
        self._received_qos = 0
        self._settled_qos = 0
        self._active: frozenset[str] = frozenset()
        self._resubscribe = False
        self._pending_subacks: dict[int, list[str]] = {}
        self._ready = False
        self._established = False
        # Owned by the event loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._ready_changed = asyncio.Event()
        self._connected_before = False
        self._outage: str | None = None

    # -- public ------------------------------------------------------------------------------

    @property
    def subscriptions(self) -> frozenset[str]:
        """The filters the connector wants subscribed (shared-group prefix included)."""
        return self._desired

    @property
    def ready(self) -> bool:
        """True when connected and every wanted subscription is acknowledged by the broker."""
        return self._ready and self._active == self._desired and not self._resubscribe

    async def wait_ready(self) -> None:
        """Wait until ready (for tests and start-up ordering; bound it with asyncio.timeout)."""
        while not self.ready:
            # Cleared before waiting: the network thread sets it (via the loop) after any
            # change that can make the connector ready, so no change is missed.
            self._ready_changed.clear()
            await self._ready_changed.wait()

    def update_devices(self, configs: Sequence[DeviceConfig]) -> None:
        """Take a new device list: (un)subscribe the difference without reconnecting."""
        routes: list[tuple[tuple[str, ...], DeviceRoute]] = []
        errors: dict[str, str] = {}
        for config in sorted(configs, key=lambda c: c.key):
            try:
                route = DeviceRoute.from_config(config)
            except MqttConfigError as exc:
                errors[config.key] = str(exc)
                continue
            if route is not None:
                routes.append((tuple(route.topic_filter.split("/")), route))
        self._routes = tuple(routes)
        self._route_cache = {}
        filters = {*self._default_filters, *(route.topic_filter for _, route in routes)}
        self._desired = frozenset(self.options.subscription(f) for f in filters)
        self._config_errors = errors
        self._report_config_errors()

    async def run(self, sink: ReadingSink) -> None:
        """Connect, subscribe and feed the sink until cancelled; reconnects by itself."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._sink = sink
        self._stop.clear()
        self._report_config_errors()
        client = self._build_client()
        thread = threading.Thread(
            target=self._network_main, args=(client,), name=f"mqtt-{self.name}", daemon=True
        )
        thread.start()
        try:
            await self._consume(sink)
        finally:
            self._stop.set()
            # The thread notices within one poll interval and sends DISCONNECT (the session and
            # every unacknowledged message stay with the broker).
            await asyncio.shield(asyncio.to_thread(thread.join, 10.0))
            self._loop = None
            self.stats.connected = False

    # -- event loop side ---------------------------------------------------------------------

    async def _consume(self, sink: ReadingSink) -> None:
        """Decode what the network thread received, chunk by chunk, and submit it."""
        wakeup = self._wakeup
        assert wakeup is not None
        inbox = self._inbox
        while True:
            await wakeup.wait()
            wakeup.clear()
            # Cleared before draining: a message appended after this is either drained below or
            # signals again, so none waits for the next burst.
            self._signalled = False
            while inbox:
                chunk = [inbox.popleft() for _ in range(min(_CHUNK, len(inbox)))]
                readings, rejected, acks = self._decode(chunk)
                ack = self._ack_closure(acks) if acks else None
                await sink.submit(readings, rejected, ack, source=SOURCE)
                # submit() returns without suspending while the pipeline's queue has room; under
                # a steady flow this loop would then keep the event loop from the pipeline.
                await asyncio.sleep(0)

    def _ack_closure(self, acks: list[_PendingAck]) -> Ack:
        """An Ack that hands the chunk's packet ids to the network thread."""
        pending = self._acks

        def ack() -> None:
            pending.extend(acks)

        return ack

    def _decode(
        self, chunk: list[_Inbound]
    ) -> tuple[list[SensorReading], list[Rejected], list[_PendingAck]]:
        """Turn a chunk of messages into readings, refusals and the packet ids to ack."""
        received_at = dt.datetime.now(dt.UTC)
        options = self.options.decode
        scheme = self._scheme
        readings: list[SensorReading] = []
        rejected: list[Rejected] = []
        acks: list[_PendingAck] = []
        for topic, payload, mid, qos, generation in chunk:
            if qos:
                acks.append((mid, qos, generation))
            if topic is None:
                rejected.append(
                    Rejected(SOURCE, BadTopic.code, "topic is not valid UTF-8", bytes(payload))
                )
                continue
            route = self._route(topic)
            try:
                if route is None:
                    result = decode_message(
                        topic, payload, received_at=received_at, scheme=scheme, options=options
                    )
                else:
                    result = route.decode(topic, payload, received_at, options)
            except DecodeError as exc:
                rejected.append(
                    Rejected(
                        SOURCE,
                        exc.code,
                        exc.reason,
                        bytes(payload),
                        device_key=self._device_of(topic, route),
                        channel=topic,
                    )
                )
                continue
            readings.extend(result.readings)
            for number, item in enumerate(result.rejected):
                rejected.append(
                    Rejected(
                        SOURCE,
                        item.error.code,
                        f"item {item.index}: {item.reason}",
                        # The payload once per message, not once per bad item of a big batch.
                        bytes(payload) if number == 0 else None,
                        device_key=self._device_of(topic, route),
                        channel=topic,
                    )
                )
        stats = self.stats
        stats.success(len(chunk), len(readings))
        if rejected:
            stats.rejected += len(rejected)
            stats.errors += len(rejected)
        return readings, rejected, acks

    def _route(self, topic: str) -> DeviceRoute | None:
        """The device route whose filter matches the topic (cached), or None for the default."""
        if not self._routes:
            return None
        cache = self._route_cache
        try:
            return cache[topic]
        except KeyError:
            pass
        levels = topic.split("/")
        found = next((route for want, route in self._routes if _matches(want, levels)), None)
        if len(cache) >= _ROUTE_CACHE_SIZE:
            cache.clear()
        cache[topic] = found
        return found

    def _device_of(self, topic: str, route: DeviceRoute | None) -> str | None:
        """The device a refused message came from, when the topic says so."""
        if route is not None:
            return route.device_key
        try:
            return parse_topic(topic, self._scheme).device_id
        except BadTopic:
            return None

    def _report_config_errors(self) -> None:
        """Tell the registry which devices cannot be subscribed and why."""
        sink = self._sink
        for key, error in self._config_errors.items():
            log.warning("mqtt device settings refused", extra={"device": key, "error": error})
            if sink is not None:
                sink.connection_state(key, connected=False, error=error)

    def _connection_changed(self, connected: bool, error: str | None) -> None:
        """Apply a connection change reported by the network thread (event loop thread)."""
        stats = self.stats
        stats.connected = connected
        if connected:
            if self._connected_before:
                stats.reconnects += 1
            self._connected_before = True
            if self._outage is not None:
                log.info("mqtt broker reachable again", extra={"connector": self.name})
            self._outage = None
            return
        if error is not None:
            stats.error(error)
            # Logged when an outage starts or its cause changes, not on every retry.
            if error != self._outage:
                log.warning("mqtt broker connection failed", extra={"error": error})
            self._outage = error

    def _subscription_refused(self, error: str) -> None:
        """Record a subscription the broker refused (an ACL, usually)."""
        self.stats.error(error)
        log.warning("mqtt subscription refused", extra={"error": error})

    # -- network thread ----------------------------------------------------------------------

    def _post(self, callback: Any, *args: Any) -> None:
        """Run callback(*args) on the event loop, if it still runs."""
        loop = self._loop
        if loop is None:
            return
        # The loop may close during shutdown; nothing waits for the callback any more then.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, *args)

    def _build_client(self) -> Client:
        """A paho client with manual acks, the session settings and TLS as configured."""
        options = self.options
        v5 = options.protocol == "5"
        protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            clean_session=None if v5 else False,
            protocol=protocol,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        # A callback raising would otherwise unwind through paho's loop.
        client.suppress_exceptions = True
        if options.username is not None:
            client.username_pw_set(options.username, options.password)
        if options.tls:
            context = ssl.create_default_context(
                cafile=str(options.ca_file) if options.ca_file else None
            )
            if options.cert_file is not None:
                context.load_cert_chain(
                    str(options.cert_file), str(options.key_file) if options.key_file else None
                )
            client.tls_set_context(context)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_subscribe
        return client

    def _connect_properties(self) -> Properties | None:
        """MQTT 5 CONNECT properties: session expiry, receive maximum, maximum packet size."""
        if self.options.protocol != "5":
            return None
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.options.session_expiry_s
        properties.ReceiveMaximum = self.options.receive_maximum
        properties.MaximumPacketSize = self.options.max_packet_bytes
        return properties

    def _network_main(self, client: Client) -> None:
        """Connect, run the paho loop, reconnect with back-off; until stopped. Never raises."""
        options = self.options
        backoff = Backoff(options.reconnect_first_s, options.reconnect_cap_s)
        stop = self._stop
        while not stop.is_set():
            try:
                self._run_connection(client)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
                self._connected = False
                self._ready = False
                self._post(self._connection_changed, False, self._describe(exc))
            if self._established:
                backoff.reset()
            if not stop.is_set():
                stop.wait(backoff.next_delay())
        try:
            client.disconnect()
        except Exception:
            log.debug("mqtt disconnect failed", exc_info=True)

    def _describe(self, exc: Exception) -> str:
        """An operator-readable connection error."""
        where = f"{self.options.host}:{self.options.port}"
        return f"cannot connect to {where}: {type(exc).__name__}: {exc}"

    def _run_connection(self, client: Client) -> None:
        """One connection: connect, then loop (acks, subscriptions, traffic) until it ends."""
        options = self.options
        self._established = False
        if options.protocol == "5":
            client.connect(
                options.host,
                options.port,
                options.keepalive_s,
                clean_start=False,
                properties=self._connect_properties(),
            )
        else:
            client.connect(options.host, options.port, options.keepalive_s)
        stop = self._stop
        acks = self._acks
        while not stop.is_set():
            if acks:
                self._send_acks(client)
            if self._connected and (self._resubscribe or self._active != self._desired):
                self._sync_subscriptions(client)
            outstanding = self._received_qos > self._settled_qos
            rc = client.loop(_ACK_POLL_S if outstanding else _IDLE_POLL_S)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
        if acks:
            self._send_acks(client)

    def _send_acks(self, client: Client) -> None:
        """PUBACK what the pipeline stored; drop acks that belong to an earlier connection."""
        acks = self._acks
        generation = self._generation
        connected = self._connected
        sent = stale = 0
        while acks:
            mid, qos, born = acks.popleft()
            if born == generation and connected:
                client.ack(mid, qos)
                sent += 1
            else:
                stale += 1
        self._settled_qos += sent + stale
        # Only this thread writes these two counters.
        self.stats.acked += sent
        self.stats.stale_acks += stale

    def _sync_subscriptions(self, client: Client) -> None:
        """Subscribe what is wanted and not active, unsubscribe what is no longer wanted."""
        desired = self._desired
        add = sorted(desired if self._resubscribe else desired - self._active)
        remove = sorted(self._active - desired)
        self._resubscribe = False
        if add:
            if self.options.protocol == "5":
                # Retained messages only for new subscriptions, not on every reconnect.
                wanted: list[tuple[str, SubscribeOptions]] = [
                    (f, SubscribeOptions(qos=1, retainHandling=1)) for f in add
                ]
                rc, mid = client.subscribe(wanted)
            else:
                rc, mid = client.subscribe([(f, 1) for f in add])
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                self._pending_subacks[mid] = add
                self._ready = False
        if remove:
            rc, mid = client.unsubscribe(remove)
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                self._pending_subacks[mid] = []
                self._ready = False
        self._active = desired
        self.stats.subscriptions = len(desired)
        self._post(self._ready_changed.set)

    def _on_connect(
        self,
        client: Client,
        userdata: Any,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        """CONNACK: on success subscribe (again); on refusal report why."""
        if reason.is_failure:
            self._post(
                self._connection_changed,
                False,
                f"broker {self.options.host}:{self.options.port} refused the connection: "
                f"{reason.getName()}",
            )
            return
        self._generation += 1
        self._connected = True
        self._established = True
        self._pending_subacks.clear()
        # Subscribe everything again even if the session survived: it may have expired, or
        # the broker restarted without persistence. Subscribing twice is harmless.
        self._resubscribe = True
        self._post(self._connection_changed, True, None)

    def _on_disconnect(
        self,
        client: Client,
        userdata: Any,
        flags: DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        """The connection ended: acks of its messages must not be sent on the next one."""
        self._generation += 1
        was_connected = self._connected
        self._connected = False
        self._ready = False
        if not was_connected:
            return  # a refused CONNACK was reported by _on_connect
        error = None
        if not self._stop.is_set():
            where = f"{self.options.host}:{self.options.port}"
            error = f"connection to {where} lost: {reason.getName()}"
        self._post(self._connection_changed, False, error)

    def _on_subscribe(
        self,
        client: Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        """SUBACK or UNSUBACK: report refused filters; ready once nothing is pending."""
        filters = self._pending_subacks.pop(mid, [])
        for topic_filter, reason in zip(filters, reasons, strict=False):
            if reason.is_failure:
                self._post(
                    self._subscription_refused,
                    f"subscription to {topic_filter!r} refused: {reason.getName()}",
                )
        if not self._pending_subacks and self._connected:
            self._ready = True
            self._post(self._ready_changed.set)

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        """Queue the message for the event loop; wake it once per burst. Never blocks."""
        try:
            topic: str | None = message.topic
        except UnicodeDecodeError:
            topic = None
        qos = message.qos
        if qos:
            self._received_qos += 1
        elif len(self._inbox) >= self.options.max_pending_qos0:
            self.stats.dropped_qos0 += 1
            return
        self._inbox.append((topic, message.payload, message.mid, qos, self._generation))
        if not self._signalled:
            self._signalled = True
            wakeup = self._wakeup
            if wakeup is not None:
                self._post(wakeup.set)
