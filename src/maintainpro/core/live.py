"""Live events for the UI: an in-process broadcaster feeding Server-Sent Events streams."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 256


@dataclass(frozen=True)
class LiveEvent:
    """One event as streamed: a sequence number, a type and JSON data."""

    id: int
    type: str
    data: dict[str, Any]

    def sse(self) -> str:
        """The event in text/event-stream framing."""
        body = json.dumps(self.data, separators=(",", ":"), default=str)
        return f"id: {self.id}\nevent: {self.type}\ndata: {body}\n\n"


class Listener:
    """One subscriber's bounded queue; when full the oldest event goes and is counted."""

    def __init__(self, size: int, accept: Callable[[LiveEvent], bool] | None = None) -> None:
        self._queue: collections.deque[LiveEvent] = collections.deque(maxlen=size)
        self._accept = accept
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, event: LiveEvent) -> None:
        """Queue an event without ever waiting (called on the loop thread)."""
        # Filtered here, not in the stream: events a stream does not want never wake it up
        # nor push out the ones it does want.
        if self._accept is not None and not self._accept(event):
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    async def next(self, wait_s: float) -> LiveEvent | None:
        """The next event, or None when nothing arrived within the timeout."""
        if not self._queue:
            self._ready.clear()
            try:
                # asyncio.timeout: wait_for may swallow a cancellation on Python 3.11.
                async with asyncio.timeout(wait_s):
                    await self._ready.wait()
            except TimeoutError:
                return None
        return self._queue.popleft() if self._queue else None


class Broadcaster:
    """Fans events out to every listener; publish() is safe from any thread and never blocks."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._listeners: set[Listener] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)

    @property
    def listeners(self) -> int:
        """How many streams are connected."""
        return len(self._listeners)

    def publish(self, event_type: str, data: dict[str, Any]) -> None:
        """Send an event to every connected stream; without listeners it is simply dropped."""
        loop = self._loop
        if loop is None or not self._listeners:
            return
        event = LiveEvent(next(self._ids), event_type, dict(data))
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fan_out(event)
            return
        try:
            loop.call_soon_threadsafe(self._fan_out, event)
        except RuntimeError:
            # The loop has closed (shutdown); live events are best-effort by design.
            log.debug("live event dropped: event loop closed")

    def _fan_out(self, event: LiveEvent) -> None:
        for listener in list(self._listeners):
            listener.put(event)

    @asynccontextmanager
    async def listen(
        self, accept: Callable[[LiveEvent], bool] | None = None
    ) -> AsyncIterator[Listener]:
        """A listener registered for the block (one per SSE stream); `accept` filters events."""
        self._loop = asyncio.get_running_loop()
        listener = Listener(self._queue_size, accept)
        self._listeners.add(listener)
        try:
            yield listener
        finally:
            self._listeners.discard(listener)
