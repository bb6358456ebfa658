"""The in-process fan-out of feed events: intake from ingest and the outbox, site resolution,
a bounded replay buffer for ``Last-Event-ID``, and delivery to connections and push targets.

Nothing here ever makes ingest or the outbox wait. Readings arrive on the event loop right after
their batch commit (``on_stored``) and are sampled per sensor; outbox events arrive on the
outbox worker's thread (``outbox_handlers``). Both go into one bounded intake; ``run()`` looks up
the sites it does not know yet (in a worker thread) and then publishes in arrival order. Every
connection has a bounded queue that drops its oldest events when the client falls behind, and
says so; push targets take events through a non-blocking ``offer``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from maintainpro.analytics.feeds.events import (
    FEED_TOPICS,
    FeedEvent,
    Lookup,
    Unplaced,
    make_event,
    outbox_event,
    reading_event,
)
from maintainpro.analytics.feeds.filters import FeedFilter
from maintainpro.analytics.feeds.sites import NOWHERE, Place, SitePlaces
from maintainpro.core.db import utcnow
from maintainpro.core.events import Handler
from maintainpro.iot.timeseries import ReadingRow

log = logging.getLogger(__name__)

DEFAULT_REPLAY: Final = 10_000
DEFAULT_INTAKE: Final = 100_000
MIN_QUEUE: Final = 1_000
TICK_S: Final = 0.2
# Events published per slice before the loop is given back to other tasks.
SLICE: Final = 2_000
RETRY_CAP_S: Final = 30.0


class Sink(Protocol):
    """A push target: takes events without ever waiting (it keeps its own bounded buffer)."""

    name: str

    def offer(self, event: FeedEvent) -> None:
        """Take an event if the target wants it."""
        ...


@dataclass(eq=False)
class Subscription:
    """One connection: its filter, its bounded queue and what it has been sent."""

    filter: FeedFilter
    size: int
    channel: str
    user_id: int | None = None
    username: str | None = None
    connected_at: dt.datetime = field(default_factory=utcnow)
    sent: int = 0
    dropped: int = 0
    gap: bool = False
    _queue: collections.deque[FeedEvent] = field(init=False)
    _ready: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._queue = collections.deque(maxlen=self.size)

    def put(self, event: FeedEvent) -> None:
        """Queue an event (on the loop thread); when full the oldest goes and is counted."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    @property
    def queued(self) -> int:
        """Events waiting to be sent."""
        return len(self._queue)

    async def next(self, wait_s: float) -> FeedEvent | None:
        """The next event, or None when nothing arrived within ``wait_s``."""
        if not self._queue:
            self._ready.clear()
            try:
                async with asyncio.timeout(wait_s):
                    await self._ready.wait()
            except TimeoutError:
                return None
        return self._queue.popleft() if self._queue else None


@dataclass
class StreamStats:
    """Counters of the stream as a whole."""

    received: int = 0
    published: int = 0
    sampled_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    site_lookups_failed: int = 0
    last_published_at: dt.datetime | None = None

    def drop(self, reason: str, count: int = 1) -> None:
        """Count events lost, by reason."""
        self.dropped[reason] = self.dropped.get(reason, 0) + count


class FeedStream:
    """Normalised feed events for every channel; see the module docstring."""

    def __init__(
        self,
        places: SitePlaces,
        *,
        replay: int = DEFAULT_REPLAY,
        reading_interval_s: float = 1.0,
        intake_limit: int = DEFAULT_INTAKE,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.places = places
        self.reading_interval_s = reading_interval_s
        self.queue_size = max(MIN_QUEUE, replay)
        self.stats = StreamStats()
        self._clock = clock
        self._now = now
        # Ids keep growing across restarts (they start at the wall clock in microseconds), so a
        # Last-Event-ID from before a restart is recognised as older than everything kept.
        first = int(now().timestamp() * 1_000_000)
        self._next_id = first
        self._floor = first - 1  # the newest id that can no longer be replayed
        self._ring: collections.deque[FeedEvent] = collections.deque(maxlen=max(replay, 1))
        self._replay = replay
        self._subscriptions: set[Subscription] = set()
        self.sinks: list[Sink] = []
        self._intake: collections.deque[Unplaced] = collections.deque()
        self._intake_limit = intake_limit
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._held: dict[int, ReadingRow] = {}
        self._sent_at: dict[int, float] = {}

    # ------------------------------------------------------------------ intake

    def submit(self, item: Unplaced) -> None:
        """Queue an event from any thread; never waits (the oldest goes when the intake is full)."""
        self.submit_all((item,))

    def submit_all(self, items: Sequence[Unplaced]) -> None:
        """Queue events in order, under one lock (a stored batch of readings at once)."""
        if not items:
            return
        with self._lock:
            self.stats.received += len(items)
            intake = self._intake
            for item in items:
                if len(intake) >= self._intake_limit:
                    intake.popleft()
                    self.stats.drop("intake_full")
                intake.append(item)
        self._poke()

    def _poke(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
            return
        try:
            loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:
            log.debug("feed event left for the next tick: event loop closed")

    def on_stored(self, rows: Sequence[ReadingRow]) -> None:
        """Pipeline listener: take stored readings, at most one per sensor per interval."""
        interval = self.reading_interval_s
        if interval <= 0:
            self.submit_all([reading_event(row) for row in rows])
            return
        now = self._clock()
        due: list[Unplaced] = []
        for row in rows:
            sensor = row.sensor_id
            if now - self._sent_at.get(sensor, -1e18) >= interval and sensor not in self._held:
                self._sent_at[sensor] = now
                due.append(reading_event(row))
                continue
            held = self._held.get(sensor)
            if held is not None:
                self.stats.sampled_out += 1
            if held is None or row.ts >= held.ts:
                self._held[sensor] = row
        self.submit_all(due)

    def flush_held(self) -> int:
        """Send held readings whose sensor's interval has passed; returns how many went."""
        if not self._held:
            return 0
        now = self._clock()
        due = [
            s for s in self._held if now - self._sent_at.get(s, -1e18) >= self.reading_interval_s
        ]
        for sensor in due:
            self._sent_at[sensor] = now
        self.submit_all([reading_event(self._held.pop(sensor)) for sensor in due])
        return len(due)

    def outbox_handlers(self) -> dict[str, list[Handler]]:
        """Outbox handlers for alert and work-order topics (they only queue; never raise)."""

        def handle(topic: str, payload: Mapping[str, Any]) -> None:
            item = outbox_event(topic, payload, self._now())
            if item is not None:
                self.submit(item)

        return {topic: [handle] for topic in FEED_TOPICS}

    # ------------------------------------------------------------------ processing

    async def run(self, tick_s: float = TICK_S) -> None:
        """Place and publish queued events until cancelled (a supervisor service)."""
        self._loop = asyncio.get_running_loop()
        failures = 0
        while True:
            try:
                async with asyncio.timeout(tick_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            self.flush_held()
            try:
                await self.process()
            except Exception as exc:  # noqa: BLE001 - the database may be away; events wait
                failures += 1
                self.stats.site_lookups_failed += 1
                if failures == 1:
                    log.warning("feed site lookup failed", extra={"error": f"{exc}"})
                await asyncio.sleep(min(RETRY_CAP_S, 0.5 * 2 ** min(failures, 10)))
            else:
                if failures:
                    log.info("feed site lookup recovered")
                failures = 0

    async def process(self) -> int:
        """Place every queued event and publish it; returns how many were published.

        When the site lookup fails the events go back to the front of the intake, in order.
        """
        with self._lock:
            items = list(self._intake)
            self._intake.clear()
        if not items:
            return 0
        wanted = {item.lookup for item in items if item.lookup is not None}
        places: dict[Lookup, Place] = {}
        for lookup in wanted:
            cached = self.places.cached(lookup)
            if cached is not None:
                places[lookup] = cached
        missing = wanted - places.keys()
        if missing:
            try:
                places.update(await asyncio.to_thread(self.places.load, missing))
            except BaseException:
                with self._lock:
                    self._intake.extendleft(reversed(items))
                    while len(self._intake) > self._intake_limit:
                        self._intake.pop()
                        self.stats.drop("intake_full")
                raise
        for start in range(0, len(items), SLICE):
            for item in items[start : start + SLICE]:
                place = places.get(item.lookup, NOWHERE) if item.lookup is not None else NOWHERE
                self.publish(item, place)
            await asyncio.sleep(0)
        return len(items)

    def publish(self, item: Unplaced, place: Place) -> FeedEvent:
        """Number an event, keep it for replay and hand it to every connection and target."""
        data = dict(item.data)
        if item.type == "reading":
            data.update(
                device_id=place.device_id,
                asset_id=place.asset_id,
                sensor_key=place.sensor_key,
                unit=place.unit,
            )
        elif item.type == "work_order" and place.asset_id is not None:
            data["asset_id"] = place.asset_id
        site_id = item.site_id if item.lookup is None else place.site_id
        event = make_event(self._next_id, item.type, site_id, item.ts, data)
        self._next_id += 1
        if self._replay > 0:
            if len(self._ring) == self._ring.maxlen:
                self._floor = self._ring[0].id
            self._ring.append(event)
        else:
            self._floor = event.id
        self.stats.published += 1
        self.stats.last_published_at = self._now()
        for subscription in list(self._subscriptions):
            if subscription.filter.accepts(event):
                subscription.put(event)
        for sink in self.sinks:
            try:
                sink.offer(event)
            except Exception:
                log.exception("feed target refused an event", extra={"target": sink.name})
        return event

    # ------------------------------------------------------------------ connections

    @property
    def last_id(self) -> int:
        """The id of the newest event published (or just below the first one to come)."""
        return self._next_id - 1

    @contextmanager
    def subscribe(
        self,
        feed_filter: FeedFilter,
        *,
        channel: str,
        last_event_id: int | None = None,
        user_id: int | None = None,
        username: str | None = None,
    ) -> Iterator[Subscription]:
        """A connection for the block (on the loop thread); replays what followed last_event_id.

        ``gap`` is set when events after ``last_event_id`` are no longer kept (or the id was never
        ours): the client should reload what it shows.
        """
        subscription = Subscription(
            feed_filter, self.queue_size, channel, user_id=user_id, username=username
        )
        if last_event_id is not None:
            subscription.gap = last_event_id < self._floor or last_event_id > self.last_id
            for event in self._ring:
                if event.id > last_event_id and feed_filter.accepts(event):
                    subscription.put(event)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def subscriptions(self) -> list[Subscription]:
        """The open connections."""
        return sorted(self._subscriptions, key=lambda s: s.connected_at)

    @property
    def replay_window(self) -> tuple[int | None, int | None]:
        """The oldest and newest event ids that can be replayed (None, None when empty)."""
        if not self._ring:
            return None, None
        return self._ring[0].id, self._ring[-1].id
