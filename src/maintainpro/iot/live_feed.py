"""Live readings for the pages: stored readings pushed to the live broadcaster, throttled.

A pipeline listener: it runs right after each batch commit, so it only keeps the newest
reading per sensor in a dict and publishes what is due; it never waits, so ingest never
slows down for browsers. At most one `reading` event per sensor per interval leaves; the
newest value wins and a trailing one is sent by `run()` when the interval has passed.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from typing import Any

from maintainpro.iot.timeseries import QUALITY_NAMES, ReadingRow, from_ms

Publish = Callable[[str, dict[str, Any]], None]
EVENT_TYPE = "reading"
RATE_WINDOW_S = 60


class LiveFeed:
    """Publishes `reading` events {sensor_id, ts, value, quality}, one per sensor per interval."""

    def __init__(
        self,
        publish: Publish,
        *,
        interval_s: float = 1.0,
        active: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publish = publish
        self.interval_s = interval_s
        self.active = active
        self.clock = clock
        self.published = 0
        self._pending: dict[int, ReadingRow] = {}
        self._sent_at: dict[int, float] = {}
        # Stored readings per whole second, for the ingest rate shown on the plant page.
        self._per_second: collections.deque[list[int]] = collections.deque()

    def __call__(self, rows: Sequence[ReadingRow]) -> None:
        """Take a stored batch (called by the ingest pipeline after its commit)."""
        self._count(len(rows))
        if not rows or (self.active is not None and not self.active()):
            return
        pending = self._pending
        for row in rows:
            held = pending.get(row.sensor_id)
            if held is None or row.ts >= held.ts:
                pending[row.sensor_id] = row
        self.flush()

    def flush(self) -> int:
        """Publish every held reading whose sensor has not had an event within the interval."""
        if not self._pending:
            return 0
        now = self.clock()
        due = [
            sensor_id
            for sensor_id in self._pending
            if now - self._sent_at.get(sensor_id, -1e18) >= self.interval_s
        ]
        for sensor_id in due:
            row = self._pending.pop(sensor_id)
            self._sent_at[sensor_id] = now
            self.publish(
                EVENT_TYPE,
                {
                    "sensor_id": row.sensor_id,
                    "ts": from_ms(row.ts).isoformat(),
                    "value": row.value,
                    "quality": QUALITY_NAMES.get(row.quality, "bad"),
                },
            )
        self.published += len(due)
        return len(due)

    async def run(self, tick_s: float = 0.2) -> None:
        """Send trailing readings held back by the throttle, until cancelled."""
        while True:
            await asyncio.sleep(tick_s)
            self.flush()

    def _count(self, n: int) -> None:
        second = int(self.clock())
        counts = self._per_second
        if counts and counts[-1][0] == second:
            counts[-1][1] += n
        else:
            counts.append([second, n])
        while counts and counts[0][0] <= second - RATE_WINDOW_S:
            counts.popleft()

    def rate_per_s(self) -> float:
        """Readings stored per second over the last minute."""
        self._count(0)
        return sum(n for _, n in self._per_second) / RATE_WINDOW_S
