"""The edge agent: the hub's connectors near the machines, a durable queue, paced forwarding.

Flow::

    Modbus / OPC-UA / CoAP / local MQTT ─> QueueSink.submit ─> DurableQueue.put (fsynced)
        ─> ack to the connector (local MQTT PUBACK) ─> Forwarder ─> hub broker (QoS 1)
        ─> PUBACK ─> DurableQueue.remove

Drain policy (documented in docs/edge.md): one queue, oldest first, so each sensor's readings
reach the hub in the order they were taken, also across an outage. Sending is paced by one
budget, ``max_messages_per_s``, shared by backlog and fresh readings alike: fresh readings join
the end of the queue and go out as soon as the backlog ahead of them has gone. Per-sensor order
wins over freshness; how far behind the agent is shows in its status (oldest unsent reading).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from maintainpro.iot.connectors.base import (
    Ack,
    Backoff,
    Connector,
    DeviceConfig,
    Rejected,
    SensorConfig,
)
from maintainpro.iot.edge.queue import DurableQueue, QueuedReading, QueueStats
from maintainpro.iot.edge.settings import AgentSettings
from maintainpro.iot.edge.uplink import Uplink
from maintainpro.iot.readings import SensorReading
from maintainpro.iot.registry import DeviceSpec

__all__ = [
    "EdgeAgent",
    "QueueSink",
    "batch_payload",
    "device_configs",
    "split_payloads",
    "status_topic",
]

log = logging.getLogger(__name__)

DeviceConnectorFactory = Callable[[DeviceConfig], Connector]
# The hub refuses MQTT payloads over 64 KiB (DecodeOptions.max_payload_bytes); some headroom.
MAX_PAYLOAD_BYTES = 60_000


def status_topic(agent: str) -> str:
    """Where an agent publishes its heartbeat and status."""
    return f"edge/{agent}/status"


def device_configs(specs: Sequence[DeviceSpec]) -> dict[str, DeviceConfig]:
    """Connector snapshots of the enabled devices (credentials come from the agent's file)."""
    return {
        spec.key: DeviceConfig(
            key=spec.key,
            name=spec.name,
            protocol=spec.protocol.value,
            endpoint=spec.endpoint,
            settings=dict(spec.settings),
            sensors=tuple(
                SensorConfig(key=s.key, address=dict(s.address), type=s.type, unit=s.unit)
                for s in spec.sensors
                if s.enabled
            ),
            credentials=dict(spec.credentials or {}),
        )
        for spec in specs
        if spec.enabled
    }


def _iso(timestamp: dt.datetime) -> str:
    return timestamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def batch_payload(rows: Sequence[QueuedReading]) -> bytes:
    """The hub's batch JSON for one device's readings, original timestamps kept (µs)."""
    items: list[dict[str, Any]] = []
    for row in rows:
        item: dict[str, Any] = {
            "sensor_id": row.sensor,
            "value": row.value,
            "timestamp": _iso(row.timestamp),
            "quality": row.quality,
        }
        if row.metadata:
            item["metadata"] = row.metadata
        items.append(item)
    return json.dumps({"readings": items}, separators=(",", ":")).encode()


def split_payloads(
    rows: Sequence[QueuedReading], max_bytes: int = MAX_PAYLOAD_BYTES
) -> list[tuple[Sequence[QueuedReading], bytes]]:
    """One device's rows as batch messages, halved until each fits the hub's payload limit."""
    payload = batch_payload(rows)
    if len(payload) <= max_bytes or len(rows) == 1:
        # A single reading too large (huge metadata) goes anyway: the hub dead-letters it
        # with its raw payload, which is better than blocking the queue behind it.
        return [(rows, payload)]
    half = len(rows) // 2
    return split_payloads(rows[:half], max_bytes) + split_payloads(rows[half:], max_bytes)


@dataclass
class DeviceState:
    """What the status reports about one device."""

    protocol: str
    connected: bool | None = None
    error: str | None = None
    changed_at: dt.datetime | None = None
    readings: int = 0
    last_reading_at: dt.datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """The status message's form."""
        return {
            "protocol": self.protocol,
            "connected": self.connected,
            "error": self.error,
            "changed_at": _iso(self.changed_at) if self.changed_at else None,
            "readings": self.readings,
            "last_reading_at": _iso(self.last_reading_at) if self.last_reading_at else None,
        }


@dataclass
class AgentCounters:
    """Counters of the agent itself."""

    rejected: int = 0
    sent_messages: int = 0
    sent_readings: int = 0
    acked_readings: int = 0
    resends: int = 0
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class QueueSink:
    """The ReadingSink connectors feed on the agent: commit to the queue, then acknowledge."""

    def __init__(self, queue: DurableQueue, states: dict[str, DeviceState]) -> None:
        self.queue = queue
        self.states = states
        self.counters = AgentCounters()
        self.new_data = asyncio.Event()

    async def submit(
        self,
        readings: Sequence[SensorReading],
        rejected: Sequence[Rejected] = (),
        ack: Ack | None = None,
        source: str = "connector",
    ) -> None:
        """Queue readings of configured devices durably; ack only after the commit."""
        states = self.states
        # Non-finite values would make the whole batch message invalid JSON at the hub.
        keep = [r for r in readings if r.device_id in states and math.isfinite(r.value)]
        refused = len(readings) - len(keep) + len(rejected)
        if refused:
            # The agent has no dead-letter table; the hub's would be the place, but forwarding
            # garbage upstream costs bandwidth. Counted and logged (rarely) instead.
            self.counters.rejected += refused
            for item in rejected[:3]:
                log.warning(
                    "edge input refused",
                    extra={"source": item.source, "code": item.code, "reason": item.reason},
                )
        if keep:
            await asyncio.to_thread(self.queue.put, keep)
            for reading in keep:
                state = states[reading.device_id]
                state.readings += 1
                if state.last_reading_at is None or reading.timestamp > state.last_reading_at:
                    state.last_reading_at = reading.timestamp
            self.new_data.set()
        if ack is not None:
            ack()

    def connection_state(
        self, device_key: str, *, connected: bool, error: str | None = None
    ) -> None:
        """Remember a device's connection state for the status heartbeat."""
        state = self.states.get(device_key)
        if state is None:
            return
        if state.connected != connected or state.error != error:
            state.changed_at = dt.datetime.now(dt.UTC)
        state.connected = connected
        state.error = error


@dataclass
class _Running:
    config: DeviceConfig
    task: asyncio.Task[None]


class EdgeAgent:
    """Runs connectors into a durable queue and forwards the queue to the hub."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        device_factories: Mapping[str, DeviceConnectorFactory] | None = None,
    ) -> None:
        """Open the queue and prepare the uplink; nothing connects before run()."""
        self.settings = settings
        q = settings.queue
        self.queue = DurableQueue(
            q.path,
            max_readings=q.max_readings,
            max_bytes=int(q.max_mb * 1024 * 1024) if q.max_mb is not None else None,
            ttl_s=q.ttl_hours * 3600 if q.ttl_hours is not None else None,
            journal=q.journal,
        )
        self.topic_prefix = settings.uplink.topic_prefix.strip("/") or "devices"
        self.status_topic = status_topic(settings.agent)
        offline = json.dumps({"agent": settings.agent, "online": False}).encode()
        self.uplink = Uplink(settings.uplink_options(), will=(self.status_topic, offline))
        self.states: dict[str, DeviceState] = {}
        self.sink = QueueSink(self.queue, self.states)
        self._factories = dict(device_factories) if device_factories else _default_factories()
        self._wanted: dict[str, DeviceConfig] = {}
        self._running: dict[str, _Running] = {}
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._local: Any = None
        self._local_task: asyncio.Task[None] | None = None
        self.apply_devices(settings.devices)

    # -- configuration ------------------------------------------------------------------------

    def apply_devices(self, specs: list[DeviceSpec]) -> None:
        """Take a new device list: connectors of changed devices restart, the rest (queue,
        uplink, unchanged devices) keep running. Safe to call from any thread.

        Device secrets never travel in a pushed configuration: a device without credentials
        takes those of the same key in the agent's own file.
        """
        local = {d.key: d.credentials for d in self.settings.devices if d.credentials}
        configs = device_configs(
            [
                s.model_copy(update={"credentials": local[s.key]})
                if s.credentials is None and s.key in local
                else s
                for s in specs
            ]
        )
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self._set_wanted, configs)
        else:
            self._set_wanted(configs)

    def _set_wanted(self, configs: dict[str, DeviceConfig]) -> None:
        self._wanted = configs
        for key, config in configs.items():
            state = self.states.get(key)
            if state is None or state.protocol != config.protocol:
                self.states[key] = DeviceState(config.protocol)
        for key in list(self.states):
            if key not in configs:
                del self.states[key]
        self._changed.set()

    async def _reconcile(self) -> None:
        wanted = self._wanted
        for key in list(self._running):
            running = self._running[key]
            if wanted.get(key) != running.config:
                running.task.cancel()
                await asyncio.gather(running.task, return_exceptions=True)
                del self._running[key]
                log.info("edge device stopped", extra={"device": key})
        for key, config in wanted.items():
            factory = self._factories.get(config.protocol)
            if key in self._running or factory is None:
                continue
            connector = factory(config)
            task = asyncio.create_task(self._keep_running(connector), name=f"device:{key}")
            self._running[key] = _Running(config, task)
            log.info("edge device started", extra={"device": key, "protocol": config.protocol})
        mqtt_devices = [c for c in wanted.values() if c.protocol == "mqtt"]
        if self._local is not None:
            self._local.update_devices(mqtt_devices)
        elif mqtt_devices:
            self._start_local_mqtt(mqtt_devices)

    def _start_local_mqtt(self, devices: list[DeviceConfig]) -> None:
        local = self.settings.local_mqtt
        if local is None:
            for config in devices:
                self.sink.connection_state(
                    config.key, connected=False, error="no local_mqtt broker configured"
                )
            return
        from maintainpro.iot.connectors.mqtt import MqttConnector, MqttOptions

        options = MqttOptions.from_url(
            local.url,
            username=local.username,
            password=local.password.get_secret_value() if local.password else None,
            ca_file=local.ca_file,
            protocol=local.protocol,
            client_id=local.client_id or f"maintainpro-edge-{self.settings.agent}",
        )
        self._local = MqttConnector(options, devices, name="mqtt:local")
        self._local_task = asyncio.create_task(self._keep_running(self._local), name="mqtt:local")

    async def _keep_running(self, connector: Connector) -> None:
        # Connectors reconnect by themselves; this only survives a connector bug.
        backoff = Backoff(first=1.0, cap=60.0)
        while True:
            try:
                await connector.run(self.sink)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("edge connector crashed; restarting", extra={"name": connector.name})
            await asyncio.sleep(backoff.next_delay())

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run connectors, uplink, forwarding and the heartbeat until cancelled."""
        self._loop = asyncio.get_running_loop()
        tasks = [
            asyncio.create_task(self.uplink.run(), name="uplink"),
            asyncio.create_task(self._forward(), name="forward"),
            asyncio.create_task(self._heartbeat(), name="heartbeat"),
        ]
        log.info(
            "edge agent started",
            extra={"agent": self.settings.agent, "queued": self.queue.depth},
        )
        try:
            while True:
                await self._reconcile()
                await self._changed.wait()
                self._changed.clear()
        finally:
            others = [*tasks, *(r.task for r in self._running.values())]
            if self._local_task is not None:
                others.append(self._local_task)
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            self._running.clear()
            self._local = self._local_task = None
            self.queue.close()
            log.info("edge agent stopped", extra={"agent": self.settings.agent})

    async def _forward(self) -> None:
        """Send the queue oldest first at the paced rate; remove what the broker acknowledged."""
        q = self.settings.queue
        uplink = self.uplink
        rate = q.max_messages_per_s
        # A budget of one second's messages at most, so a quiet spell cannot build up a burst.
        tokens = 1.0
        refilled = time.monotonic()
        generation = -1
        cursor = 0
        inflight: dict[int, tuple[list[int], float]] = {}
        while True:
            if not uplink.connected:
                await uplink.wait_connected()
            if uplink.generation != generation:
                # A new connection: whatever was in flight on the old one is sent again.
                generation = uplink.generation
                if inflight:
                    self.sink.counters.resends += sum(len(s) for s, _ in inflight.values())
                inflight.clear()
                cursor = 0
            done: list[int] = []
            acked = uplink.acked
            while acked:
                born, mid = acked.popleft()
                entry = inflight.pop(mid, None) if born == generation else None
                if entry is not None:
                    done.extend(entry[0])
            if done:
                await asyncio.to_thread(self.queue.remove, done)
                self.sink.counters.acked_readings += len(done)
            now = time.monotonic()
            if inflight and now - min(t for _, t in inflight.values()) > q.ack_timeout_s:
                log.warning("uplink acknowledgement overdue; reconnecting")
                uplink.drop_connection()
                await uplink.wait_disconnected()
                continue
            tokens = min(max(rate, 1.0), tokens + (now - refilled) * rate)
            refilled = now
            sent_any = False
            while uplink.connected and tokens >= 1.0 and len(inflight) < q.max_inflight:
                rows = await asyncio.to_thread(self.queue.fetch, cursor, q.batch_size)
                if not rows:
                    break
                groups: dict[str, list[QueuedReading]] = {}
                for row in rows:
                    groups.setdefault(row.device, []).append(row)
                published = True
                for device, group in groups.items():
                    topic = f"{self.topic_prefix}/{device}/data"
                    for part, payload in split_payloads(group):
                        sent = uplink.publish(topic, payload)
                        if sent is None:
                            published = False
                            break
                        inflight[sent] = ([r.seq for r in part], time.monotonic())
                        tokens -= 1.0
                        self.sink.counters.sent_messages += 1
                        self.sink.counters.sent_readings += len(part)
                    if not published:
                        break
                if not published:
                    break
                cursor = rows[-1].seq
                sent_any = True
            if sent_any:
                continue
            # Nothing to do until an ack, new data, a connection change or the next token.
            wait = max(0.005, (1.0 - tokens) / rate) if tokens < 1.0 else 0.5
            uplink.wakeup.clear()
            self.sink.new_data.clear()
            if uplink.acked:
                continue
            waiters = [
                asyncio.ensure_future(uplink.wakeup.wait()),
                asyncio.ensure_future(self.sink.new_data.wait()),
            ]
            try:
                await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def _heartbeat(self) -> None:
        """Publish the status every status_interval_s and apply the queue's time to live."""
        while True:
            now = dt.datetime.now(dt.UTC)
            try:
                await asyncio.to_thread(self.queue.expire, now)
                stats = await asyncio.to_thread(self.queue.stats)
            except Exception:
                log.exception("edge queue housekeeping failed")
                await asyncio.sleep(self.settings.status_interval_s)
                continue
            # Retained: a hub (re)starting learns every agent's last state at once instead of
            # waiting an interval; the agent's timestamp in it tells how old that state is.
            mid = self.uplink.publish(
                self.status_topic, json.dumps(self.status(stats, now)).encode(), retain=True
            )
            # While the uplink is down, try again soon so the hub hears from us when it returns.
            await asyncio.sleep(self.settings.status_interval_s if mid is not None else 0.5)

    def status(self, stats: QueueStats, now: dt.datetime) -> dict[str, Any]:
        """The heartbeat's content: queue depth and age, drops, per-device states."""
        counters = self.sink.counters
        return {
            "agent": self.settings.agent,
            "online": True,
            "at": _iso(now),
            "started_at": _iso(counters.started_at),
            "queue_depth": stats.depth,
            "oldest_unsent_at": _iso(stats.oldest_unsent_at) if stats.oldest_unsent_at else None,
            "dropped_total": stats.dropped_total,
            "dropped_cap": stats.dropped_cap,
            "dropped_ttl": stats.dropped_ttl,
            "enqueued_total": stats.enqueued_total,
            "sent_readings": counters.sent_readings,
            "acked_readings": counters.acked_readings,
            "resends": counters.resends,
            "rejected": counters.rejected,
            "uplink": {"connects": self.uplink.connects, "last_error": self.uplink.last_error},
            "devices": {key: state.as_json() for key, state in sorted(self.states.items())},
        }


def _default_factories() -> dict[str, DeviceConnectorFactory]:
    """The hub's per-device connectors; protocol libraries load only when the agent starts."""
    from maintainpro.iot.connectors.coap_client import CoapDeviceConnector
    from maintainpro.iot.connectors.modbus import ModbusConnector
    from maintainpro.iot.connectors.opcua import OpcUaConnector

    return {"modbus": ModbusConnector, "opcua": OpcUaConnector, "coap": CoapDeviceConnector}
