"""The ingest pipeline: validate readings against the registry, batch them into storage,
dead-letter what is refused, then acknowledge upstream and notify listeners."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, cast

from sqlalchemy import (
    Connection,
    Insert,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.db import UTCDateTime, utcnow
from maintainpro.iot.connectors.base import Ack, Backoff, Rejected
from maintainpro.iot.devices import DeadLetter, Device, DeviceEvent, Sensor
from maintainpro.iot.readings import SensorReading
from maintainpro.iot.timeseries import EPOCH, QUALITY_CODES, ReadingRow, from_ms, write_readings

log = logging.getLogger(__name__)

MAX_DEAD_LETTER_PAYLOAD = 64 * 1024


class SensorInfo(NamedTuple):
    """What validation needs to know of a sensor."""

    pk: int
    device_pk: int
    enabled: bool
    min_value: float | None
    max_value: float | None


@dataclass(frozen=True)
class Registry:
    """A snapshot of the device registry for validation, keyed by the ids devices send."""

    devices: Mapping[str, tuple[int, bool]]
    sensors: Mapping[tuple[str, str], SensorInfo]
    version: str = ""


def load_registry(session: Session) -> Registry:
    """Read the registry from the database."""
    devices = {
        key: (pk, enabled)
        for key, pk, enabled in session.execute(select(Device.key, Device.id, Device.enabled))
    }
    sensors = {}
    rows = session.execute(
        select(
            Device.key,
            Sensor.key,
            Sensor.id,
            Device.id,
            Sensor.enabled,
            Sensor.min_value,
            Sensor.max_value,
        ).join(Device, Sensor.device_id == Device.id)
    )
    for device_key, sensor_key, pk, device_pk, enabled, low, high in rows:
        sensors[(device_key, sensor_key)] = SensorInfo(pk, device_pk, enabled, low, high)
    return Registry(devices=devices, sensors=sensors, version=registry_version(session))


def registry_version(session: Session) -> str:
    """A cheap fingerprint that changes whenever a device or sensor is added, changed or removed."""
    device_part = session.execute(select(func.count(Device.id), func.max(Device.updated_at))).one()
    sensor_part = session.execute(select(func.count(Sensor.id), func.max(Sensor.updated_at))).one()
    return f"{device_part[0]}:{device_part[1]}:{sensor_part[0]}:{sensor_part[1]}"


class Checked(NamedTuple):
    """The outcome of validating a batch against the registry."""

    rows: list[ReadingRow]
    rejected: list[Rejected]
    seen_devices: dict[int, dt.datetime]


def check_readings(registry: Registry, readings: Sequence[SensorReading], source: str) -> Checked:
    """Keep readings of known, enabled devices and sensors; flag values outside min/max.

    An out-of-range value is stored with quality "uncertain" rather than refused: it may be the
    first sign of a fault, and throwing it away would hide it.
    """
    rows: list[ReadingRow] = []
    rejected: list[Rejected] = []
    last_ms: dict[int, int] = {}
    sensors = registry.sensors
    devices = registry.devices
    uncertain = QUALITY_CODES["uncertain"]
    # This loop runs for every reading the hub receives: lookups are hoisted, timestamps are
    # converted with integer arithmetic (SensorReading guarantees aware UTC), and the detailed
    # refusal reason is worked out only on the rare path.
    for reading in readings:
        info = sensors.get((reading.device_id, reading.sensor_id))
        if info is None or not info.enabled or not devices[reading.device_id][1]:
            rejected.append(_refusal(registry, reading, source))
            continue
        quality = QUALITY_CODES[reading.quality]
        value = reading.value
        if (info.min_value is not None and value < info.min_value) or (
            info.max_value is not None and value > info.max_value
        ):
            quality = max(quality, uncertain)
        delta = reading.timestamp - EPOCH
        ts = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
        rows.append(ReadingRow(info.pk, ts, value, quality))
        if ts > last_ms.get(info.device_pk, -1):
            last_ms[info.device_pk] = ts
    seen = {pk: from_ms(ts) for pk, ts in last_ms.items()}
    return Checked(rows, rejected, seen)


def _refusal(registry: Registry, reading: SensorReading, source: str) -> Rejected:
    device = registry.devices.get(reading.device_id)
    info = registry.sensors.get((reading.device_id, reading.sensor_id))
    if device is None:
        code, reason = "unknown_device", f"device {reading.device_id!r} is not registered"
    elif not device[1]:
        code, reason = "device_disabled", f"device {reading.device_id!r} is disabled"
    elif info is None:
        code = "unknown_sensor"
        reason = f"device {reading.device_id!r} has no sensor {reading.sensor_id!r}"
    else:
        code, reason = "sensor_disabled", f"sensor {reading.sensor_id!r} is disabled"
    return Rejected(
        source=source,
        code=code,
        reason=reason,
        payload=_reading_text(reading),
        device_key=reading.device_id,
        sensor_key=reading.sensor_id,
    )


def _reading_text(reading: SensorReading) -> bytes:
    return (
        f'{{"device_id": "{reading.device_id}", "sensor_id": "{reading.sensor_id}", '
        f'"value": {reading.value!r}, "timestamp": "{reading.timestamp.isoformat()}"}}'
    ).encode()


def store_dead_letters(connection: Connection, rejected: Sequence[Rejected]) -> None:
    """Write refusals with their raw payload (truncated to 64 KiB) and reason."""
    if not rejected:
        return
    now = utcnow()
    connection.execute(
        insert(DeadLetter),
        [
            {
                "received_at": now,
                "source": r.source[:64],
                "device_key": (r.device_key or None) and r.device_key[:128],
                "sensor_key": (r.sensor_key or None) and r.sensor_key[:128],
                "channel": (r.channel or None) and r.channel[:500],
                "code": r.code[:64],
                "reason": r.reason[:2000],
                "payload": r.payload[:MAX_DEAD_LETTER_PAYLOAD] if r.payload else None,
                "payload_size": len(r.payload) if r.payload else 0,
            }
            for r in rejected
        ],
    )


@dataclass
class PipelineStats:
    """Counters of the ingest pipeline for the API and /metrics."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0
    write_errors: int = 0
    last_batch_size: int = 0
    last_batch_ms: float = 0.0
    queued: int = 0


@dataclass
class _Item:
    readings: Sequence[SensorReading]
    rejected: Sequence[Rejected]
    ack: Ack | None
    source: str


_devices = cast(Table, Device.__table__)
_TOUCH_DEVICE = (
    update(_devices)
    .where(_devices.c.id == bindparam("pk"))
    .where(_devices.c.last_seen_at.is_(None) | (_devices.c.last_seen_at < bindparam("seen")))
    .values(last_seen_at=bindparam("seen"))
)


def _log_connection_event(
    key: str, connected: bool, error: str | None, when: dt.datetime
) -> Insert:
    # One INSERT ... SELECT: an unknown device key simply logs nothing.
    state = "connected" if connected else ("error" if error is not None else "disconnected")
    message = error[:2000] if error is not None else None
    row = select(
        Device.id,
        literal(when, UTCDateTime()),
        literal(state, String()),
        literal(message, Text()),
    ).where(Device.key == key)
    return insert(DeviceEvent).from_select(["device_id", "at", "state", "message"], row)


StoredListener = Callable[[Sequence[ReadingRow]], None]


@dataclass
class _Batch:
    readings: list[SensorReading] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    connection_events: dict[str, tuple[bool, str | None, dt.datetime]] = field(default_factory=dict)


class IngestPipeline:
    """Collects readings from every connector and writes them in batches.

    One transaction per batch (never per reading); acknowledgements run only after the commit,
    so an MQTT broker redelivers whatever the hub had not stored when it died. A failed write is
    retried with back-off, never dropped.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        batch_size: int = 5000,
        max_delay_s: float = 0.01,
        queue_limit: int = 200_000,
        registry_refresh_s: float = 2.0,
        shutdown_timeout_s: float = 10.0,
    ) -> None:
        self.factory = factory
        self.shutdown_timeout_s = shutdown_timeout_s
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self.registry_refresh_s = registry_refresh_s
        self.stats = PipelineStats()
        self.listeners: list[StoredListener] = []
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=max(1, queue_limit // 100))
        self._registry: Registry | None = None
        self._registry_checked = 0.0
        self._connection_events: dict[str, tuple[bool, str | None, dt.datetime]] = {}
        self._logged_states: dict[str, tuple[bool, str | None]] = {}
        self._source = "ingest"
        # The batch being collected: kept here, not in a local, so that shutdown can store it.
        self._open = _Batch()

    async def submit(
        self,
        readings: Sequence[SensorReading],
        rejected: Sequence[Rejected] = (),
        ack: Ack | None = None,
        source: str = "connector",
    ) -> None:
        """Queue a message's readings; waits when the queue is full (back-pressure)."""
        self.stats.received += len(readings)
        await self._queue.put(_Item(readings, rejected, ack, source))
        self.stats.queued = self._queue.qsize()

    def connection_state(
        self, device_key: str, *, connected: bool, error: str | None = None
    ) -> None:
        """Record a device connection change; written with the next batch."""
        self._connection_events[device_key] = (connected, error, utcnow())

    def invalidate_registry(self) -> None:
        """Reload the registry before the next batch (after an API change)."""
        self._registry = None

    async def run(self) -> None:
        """Batch and write until cancelled; on cancel, store what was already handed over.

        The next batch is collected while the previous one is being written, so the queue keeps
        draining during a commit; writes still happen one at a time and in order.
        """
        pending: asyncio.Task[None] | None = None
        checkpoints = asyncio.create_task(self._checkpoint_wal())
        try:
            while True:
                batch = await self._collect()
                if pending is not None:
                    # Shielded: a shutdown arriving now must not abandon the write in flight.
                    await asyncio.shield(pending)
                pending = asyncio.create_task(self._commit(batch))
        finally:
            checkpoints.cancel()
            await asyncio.gather(checkpoints, return_exceptions=True)
            await self._drain(pending)

    async def _drain(self, pending: asyncio.Task[None] | None) -> None:
        """Finish the write in flight and store everything still queued, within the deadline.

        Polled readings (Modbus, OPC-UA, CoAP) exist only in this queue, so a shutdown that
        dropped it would lose them; MQTT messages would be redelivered, but late.
        """
        try:
            async with asyncio.timeout(self.shutdown_timeout_s):
                if pending is not None:
                    await pending
                while True:
                    batch, self._open = self._open, _Batch()
                    while len(batch.readings) < self.batch_size:
                        try:
                            self._add(batch, self._queue.get_nowait())
                        except asyncio.QueueEmpty:
                            break
                    batch.connection_events, self._connection_events = self._connection_events, {}
                    if not (batch.readings or batch.rejected or batch.connection_events):
                        break
                    await self._commit(batch)
        except (TimeoutError, asyncio.CancelledError):
            if pending is not None:
                pending.cancel()
            log.error(
                "ingest stopped before everything handed to it was stored",
                extra={
                    "queued_messages": self._queue.qsize(),
                    "collected_readings": len(self._open.readings),
                    "timeout_s": self.shutdown_timeout_s,
                },
            )
            raise
        finally:
            self.stats.queued = self._queue.qsize()

    async def _checkpoint_wal(self, interval_s: float = 1.0) -> None:
        """On SQLite, copy the write-ahead log into the database between commits.

        SQLite otherwise checkpoints inside whichever commit fills the log past 1,000 pages,
        and that commit then takes many times longer: the slow tail of ingest latency. A
        passive checkpoint never blocks the writer or readers.
        """
        bind = self.factory.kw.get("bind")
        if bind is None or bind.dialect.name != "sqlite":
            return

        def checkpoint() -> None:
            with bind.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(checkpoint)
            except Exception as exc:  # noqa: BLE001 - a busy database just waits for the next one
                log.debug("WAL checkpoint skipped", extra={"error": str(exc)})

    async def _commit(self, batch: _Batch) -> None:
        backoff = Backoff(first=0.2, cap=10.0)
        while True:
            try:
                started = time.perf_counter()
                stored_rows = await asyncio.to_thread(self._write, batch)
                break
            except Exception as exc:  # noqa: BLE001 - storage outage: keep the batch, retry
                self.stats.write_errors += 1
                log.error(
                    "ingest write failed; retrying",
                    extra={
                        "error": f"{type(exc).__name__}: {exc}",
                        "size": len(batch.readings),
                    },
                )
                self._registry = None
                await asyncio.sleep(backoff.next_delay())
        self.stats.last_batch_ms = (time.perf_counter() - started) * 1000
        for ack in batch.acks:
            try:
                ack()
            except Exception as exc:  # noqa: BLE001 - an ack failing must not stop ingest
                log.warning("acknowledgement failed", extra={"error": str(exc)})
        for listener in self.listeners:
            try:
                listener(stored_rows)
            except Exception:
                log.exception("reading listener failed")

    async def _collect(self) -> _Batch:
        batch = self._open
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as the item does, and the pipeline would then never stop.
            try:
                async with asyncio.timeout(1.0):
                    first = await self._queue.get()
                break
            except TimeoutError:
                # No data: still write connection changes, or a dead device never shows its error.
                if self._connection_events:
                    batch.connection_events, self._connection_events = self._connection_events, {}
                    self._open = _Batch()
                    return batch
        self._add(batch, first)
        deadline = time.monotonic() + self.max_delay_s
        while len(batch.readings) < self.batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    async with asyncio.timeout(timeout):
                        item = await self._queue.get()
                except TimeoutError:
                    break
            self._add(batch, item)
        self.stats.queued = self._queue.qsize()
        batch.connection_events, self._connection_events = self._connection_events, {}
        self._open = _Batch()
        return batch

    @staticmethod
    def _add(batch: _Batch, item: _Item) -> None:
        batch.readings.extend(item.readings)
        batch.rejected.extend(item.rejected)
        batch.sources.append(item.source)
        if item.ack is not None:
            batch.acks.append(item.ack)

    def _current_registry(self, session: Session) -> Registry:
        now = time.monotonic()
        if self._registry is None or now - self._registry_checked > self.registry_refresh_s:
            self._registry_checked = now
            if self._registry is None or registry_version(session) != self._registry.version:
                self._registry = load_registry(session)
        return self._registry

    def _write(self, batch: _Batch) -> list[ReadingRow]:
        logged: dict[str, tuple[bool, str | None]] = {}
        with self.factory() as session, session.begin():
            registry = self._current_registry(session)
            source = batch.sources[0] if batch.sources else "connector"
            checked = check_readings(registry, batch.readings, source)
            connection = session.connection()
            added = write_readings(connection, checked.rows)
            store_dead_letters(connection, [*batch.rejected, *checked.rejected])
            if checked.seen_devices:
                # One statement for every device of the batch (executemany), not one each.
                connection.execute(
                    _TOUCH_DEVICE,
                    [{"pk": pk, "seen": seen} for pk, seen in checked.seen_devices.items()],
                )
            for key, (connected, error, when) in batch.connection_events.items():
                values: dict[str, object] = {"connected": connected}
                if error is not None:
                    values.update(last_error=error[:2000], last_error_at=when)
                connection.execute(update(Device).where(Device.key == key).values(**values))
                # Connectors repeat the same error on every retry: the log keeps changes only.
                if self._logged_states.get(key) != (connected, error):
                    connection.execute(_log_connection_event(key, connected, error, when))
                    logged[key] = (connected, error)
        self._logged_states.update(logged)
        self.stats.batches += 1
        self.stats.last_batch_size = len(batch.readings)
        self.stats.stored += added
        self.stats.duplicates += len(checked.rows) - added
        self.stats.dead_lettered += len(batch.rejected) + len(checked.rejected)
        return checked.rows
