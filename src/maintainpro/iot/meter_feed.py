"""Meters fed by sensors: pure arithmetic turning readings into meter increments, and the
ingest listener that applies it to `Meter` rows.

Runtime hours count the time during which the value is above the threshold (sample and hold:
an interval counts when the reading that starts it is above); cycles count rising edges through
the threshold; a totaliser integrates the value over time (trapezoid) times a factor. Intervals
longer than `max_gap_s` are not counted, because nobody knows what happened during them. Readings
at or before the saved state's last timestamp are ignored, so redeliveries and restarts never
count twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.schedules import Meter, MeterReading
from maintainpro.iot.alerts import MeterSource, MeterSourceKind
from maintainpro.iot.connectors.base import Backoff
from maintainpro.iot.timeseries import QUALITY_CODES, ReadingRow, from_ms

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
BAD_QUALITY = QUALITY_CODES["bad"]


@dataclass(frozen=True)
class FeedSpec:
    """How one sensor drives one meter."""

    kind: MeterSourceKind
    threshold: float = 0.0
    factor: float = 1.0
    max_gap_s: float = 300.0


@dataclass(frozen=True)
class FeedState:
    """What must survive between batches and restarts: the last reading counted."""

    last_ts: int | None = None
    last_value: float | None = None
    # Timestamp of the last MeterReading written, so the history gets at most one row a minute.
    logged_ts: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The state as stored in MeterSource.state."""
        return {"last_ts": self.last_ts, "last_value": self.last_value, "logged_ts": self.logged_ts}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> FeedState:
        """The state read back; an empty or missing state is a fresh start."""
        if not data:
            return cls()
        last_ts, last_value, logged_ts = (
            data.get("last_ts"),
            data.get("last_value"),
            data.get("logged_ts"),
        )
        return cls(
            last_ts=int(last_ts) if last_ts is not None else None,
            last_value=float(last_value) if last_value is not None else None,
            logged_ts=int(logged_ts) if logged_ts is not None else None,
        )


@dataclass(frozen=True)
class Advance:
    """The meter increment of a run of readings and the state after it."""

    increment: float
    state: FeedState
    counted: int


def advance(spec: FeedSpec, state: FeedState, points: Iterable[tuple[int, float]]) -> Advance:
    """Feed (epoch ms, value) readings through a meter source; pure and order-insensitive.

    Readings are sorted; those at or before `state.last_ts` and non-finite values are ignored,
    and of several readings with the same timestamp the first is kept (a redelivery).
    """
    fresh: dict[int, float] = {}
    floor = state.last_ts
    for ts, value in points:
        if (floor is not None and ts <= floor) or not math.isfinite(value) or ts in fresh:
            continue
        fresh[ts] = value
    if not fresh:
        return Advance(0.0, state, 0)
    max_gap_ms = spec.max_gap_s * 1000
    prev_ts, prev_value = state.last_ts, state.last_value
    threshold = spec.threshold
    runtime_ms = 0
    cycles = 0
    area = 0.0  # value x milliseconds
    for ts in sorted(fresh):
        value = fresh[ts]
        if prev_ts is not None and prev_value is not None:
            span = ts - prev_ts
            if spec.kind is MeterSourceKind.CYCLES:
                # An off -> on change proves a start even across a gap, so edges always count.
                if prev_value <= threshold < value:
                    cycles += 1
            elif span <= max_gap_ms:
                if spec.kind is MeterSourceKind.RUNTIME:
                    if prev_value > threshold:
                        runtime_ms += span
                else:
                    area += (prev_value + value) / 2 * span
        prev_ts, prev_value = ts, value
    if spec.kind is MeterSourceKind.RUNTIME:
        increment = runtime_ms / HOUR_MS
    elif spec.kind is MeterSourceKind.CYCLES:
        increment = float(cycles)
    else:
        increment = area / HOUR_MS * spec.factor
    new_state = FeedState(last_ts=prev_ts, last_value=prev_value, logged_ts=state.logged_ts)
    return Advance(increment, new_state, len(fresh))


# --------------------------------------------------------------------------- the listener


@dataclass
class MeterFeedStats:
    """Counters of the meter feed (tests and /iot/status read them)."""

    rows_seen: int = 0
    batches: int = 0
    meters_updated: int = 0
    readings_logged: int = 0
    errors: int = 0


_meters = cast(Table, Meter.__table__)
_sources = cast(Table, MeterSource.__table__)
_meter_readings = cast(Table, MeterReading.__table__)


@dataclass
class MeterFeed:
    """Ingest listener: advances every sensor-fed meter from the readings just stored.

    The listener runs in the event loop, so it only filters and queues; `run()` does the database
    work in a worker thread, one transaction per batch, in the order batches were stored.
    """

    factory: sessionmaker[Session]
    log_interval_s: float = 60.0
    refresh_s: float = 5.0
    stats: MeterFeedStats = field(default_factory=MeterFeedStats)
    _pending: list[ReadingRow] = field(default_factory=list)
    _wake: asyncio.Event | None = None
    _sensors: frozenset[int] | None = None
    _sensors_at: float = 0.0

    def __call__(self, rows: Sequence[ReadingRow]) -> None:
        """Queue the stored readings of metered sensors (called by the pipeline after commit)."""
        sensors = self._sensors
        if sensors is None:
            self._pending.extend(rows)
        elif sensors:
            self._pending.extend(r for r in rows if r.sensor_id in sensors)
        if self._pending:
            self._event().set()

    def _event(self) -> asyncio.Event:
        # Created lazily so the feed can be built outside a running loop (create_app).
        if self._wake is None:
            self._wake = asyncio.Event()
        return self._wake

    async def run(self) -> None:
        """Apply queued readings forever; a failed batch is retried with back-off, not dropped."""
        wake = self._event()
        backoff = Backoff(first=0.2, cap=10.0)
        while True:
            if time.monotonic() - self._sensors_at > self.refresh_s:
                # Also when idle: a meter source added since must start receiving readings.
                await asyncio.to_thread(self._refresh_sensors)
            if not self._pending:
                wake.clear()
                try:
                    # asyncio.timeout: wait_for may swallow a cancellation on Python 3.11.
                    async with asyncio.timeout(self.refresh_s):
                        await wake.wait()
                except TimeoutError:
                    continue
            rows, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.apply, rows)
            except Exception as exc:  # noqa: BLE001 - database outage: keep the rows, retry
                self.stats.errors += 1
                log.error(
                    "meter feed failed; retrying", extra={"error": f"{type(exc).__name__}: {exc}"}
                )
                self._pending = rows + self._pending
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff = Backoff(first=0.2, cap=10.0)

    def _refresh_sensors(self) -> None:
        with self.factory() as session:
            self._sensors = frozenset(session.scalars(select(MeterSource.sensor_id).distinct()))
        self._sensors_at = time.monotonic()

    def apply(self, rows: Sequence[ReadingRow]) -> int:
        """Advance the meters fed by these readings in one transaction; returns meters changed."""
        changed = self._apply(rows)
        # Counted after the commit, so a caller seeing the count also sees the meters.
        self.stats.rows_seen += len(rows)
        if changed:
            self.stats.batches += 1
            self.stats.meters_updated += changed
        return changed

    def _apply(self, rows: Sequence[ReadingRow]) -> int:
        by_sensor: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for row in rows:
            # A bad reading says the instrument failed, not that the machine stopped or ran.
            if row.quality < BAD_QUALITY:
                by_sensor[row.sensor_id].append((row.ts, row.value))
        if not by_sensor:
            return 0
        changed = 0
        log_ms = int(self.log_interval_s * 1000)
        with self.factory() as session, session.begin():
            connection = session.connection()
            sources = connection.execute(
                select(_sources).where(_sources.c.sensor_id.in_(list(by_sensor)))
            ).all()
            if not sources:
                return 0
            meter_ids = [s.meter_id for s in sources]
            current = dict(
                connection.execute(
                    select(_meters.c.id, _meters.c.current_value)
                    .where(_meters.c.id.in_(meter_ids))
                    .with_for_update()
                ).all()
            )
            for source in sources:
                if source.meter_id not in current:
                    continue
                spec = FeedSpec(
                    MeterSourceKind(source.kind),
                    source.threshold,
                    source.factor,
                    source.max_gap_s,
                )
                result = advance(
                    spec, FeedState.from_json(source.state), by_sensor[source.sensor_id]
                )
                if result.counted == 0:
                    continue
                state = result.state
                assert state.last_ts is not None  # counted > 0 means a reading was taken
                value = (current[source.meter_id] or 0.0) + result.increment
                current[source.meter_id] = value
                read_at = from_ms(state.last_ts)
                # Core statements: a meter ticking every batch is bookkeeping, not an audited
                # edit; the MeterReading history below is the record.
                connection.execute(
                    update(_meters)
                    .where(_meters.c.id == source.meter_id)
                    .values(current_value=value, read_at=read_at)
                )
                if state.logged_ts is None or state.last_ts - state.logged_ts >= log_ms:
                    connection.execute(
                        insert(_meter_readings).values(
                            meter_id=source.meter_id,
                            value=value,
                            read_at=read_at,
                            source="sensor",
                        )
                    )
                    state = FeedState(state.last_ts, state.last_value, logged_ts=state.last_ts)
                    self.stats.readings_logged += 1
                connection.execute(
                    update(_sources).where(_sources.c.id == source.id).values(state=state.to_json())
                )
                changed += 1
        return changed
