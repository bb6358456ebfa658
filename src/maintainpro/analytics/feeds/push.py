"""What every push target shares: its filter, its bounded batch buffer, the delivery loop with
retries and back-off, and the status counters the BI connections page shows.

A subclass says how an event becomes an item of a lane (``convert``) and how one batch is sent
(``post``, answering an ``Outcome``). The batch in flight is retried as it is (same id, same
items, same bytes) until it is delivered, refused for good, or ``max_attempts`` failures have
passed; rate-limit answers (429) wait as the server asks and do not use up attempts. Events that
arrive meanwhile are buffered within the bound; ``offer`` never waits.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeVar

from maintainpro.analytics.feeds.batching import Batch, BatchBuffer
from maintainpro.analytics.feeds.events import FeedEvent
from maintainpro.analytics.feeds.filters import FeedFilter
from maintainpro.core.db import utcnow
from maintainpro.supply.erp.http import RetryPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
GAVE_UP: Final = "gave_up"
MAX_ERROR_TEXT: Final = 300
State = Literal["idle", "ok", "retrying", "failing"]


@dataclass(frozen=True, slots=True)
class Delivered:
    """The target took the batch."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Try the same batch again; ``after``: the server's wait; ``throttled``: it was a 429."""

    error: str
    after: float | None = None
    throttled: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    """The target refused the batch for good (``reason`` is the drop counter's key)."""

    reason: str
    error: str


Outcome = Delivered | Retry | Rejected


@dataclass
class TargetStatus:
    """A push target's counters, for the BI connections page."""

    name: str
    kind: str
    state: State = "idle"
    events_sent: int = 0
    batches_sent: int = 0
    requests: int = 0
    errors: int = 0
    retries: int = 0
    throttled: int = 0
    buffered: int = 0
    in_flight: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    last_success_at: dt.datetime | None = None
    last_error: str | None = None
    last_error_at: dt.datetime | None = None


class PushTarget(abc.ABC, Generic[T]):
    """A buffered, retrying sender of feed events to one external target."""

    kind: str = "push"

    def __init__(
        self,
        name: str,
        feed_filter: FeedFilter,
        *,
        max_items: int,
        max_age_s: float,
        max_held: int,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], dt.datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.filter = feed_filter
        self.retry = retry
        self.clock = clock
        self.sleep = sleep
        self._now = now
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._status = TargetStatus(name, self.kind)
        self.buffer: BatchBuffer[T] = BatchBuffer(
            max_items=max_items,
            max_age_s=max_age_s,
            max_held=max_held,
            clock=clock,
            on_drop=self._dropped,
        )
        self._wake = asyncio.Event()
        self._logged_failure = False

    @abc.abstractmethod
    def convert(self, event: FeedEvent) -> tuple[str, T] | None:
        """The lane and item for an event that passed the filter; None to skip it."""

    @abc.abstractmethod
    async def post(self, batch: Batch[T]) -> Outcome:
        """Send one batch once."""

    async def aclose(self) -> None:
        """Release connections."""

    # ------------------------------------------------------------------ intake

    def offer(self, event: FeedEvent) -> None:
        """Take an event if the filter (types, row-level security) lets it through."""
        if not self.filter.accepts(event):
            return
        converted = self.convert(event)
        if converted is None:
            return
        self.buffer.add(*converted)
        if self.buffer.sealed:
            self._wake.set()

    def _dropped(self, reason: str, count: int) -> None:
        dropped = self._status.dropped
        dropped[reason] = dropped.get(reason, 0) + count

    # ------------------------------------------------------------------ delivery

    async def drain(self) -> int:
        """Seal the batches that are due and send every sealed batch; returns batches settled."""
        self.buffer.seal_due()
        settled = 0
        while (batch := self.buffer.pop()) is not None:
            await self.deliver(batch)
            settled += 1
        return settled

    async def deliver(self, batch: Batch[T]) -> bool:
        """Send one batch until it is delivered (True) or given up (False)."""
        status = self._status
        status.in_flight = len(batch.items)
        try:
            while True:
                status.requests += 1
                outcome = await self.post(batch)
                if isinstance(outcome, Delivered):
                    self._succeeded(batch)
                    return True
                self._failed(outcome.error)
                if isinstance(outcome, Rejected):
                    self._dropped(outcome.reason, len(batch.items))
                    return False
                if outcome.throttled:
                    status.throttled += 1
                else:
                    batch.attempts += 1
                    if batch.attempts >= self.retry.max_attempts:
                        self._dropped(GAVE_UP, len(batch.items))
                        log.warning(
                            "feed target gave a batch up",
                            extra={"target": self.name, "items": len(batch.items)},
                        )
                        return False
                status.retries += 1
                status.state = "retrying"
                wait = outcome.after
                if wait is None:
                    wait = self.retry.backoff(max(batch.attempts, 1), self._rng)
                await self.sleep(wait)
        finally:
            status.in_flight = 0

    def _succeeded(self, batch: Batch[T]) -> None:
        status = self._status
        status.events_sent += len(batch.items)
        status.batches_sent += 1
        status.last_success_at = self._now()
        status.state = "ok"
        if self._logged_failure:
            log.info("feed target recovered", extra={"target": self.name})
            self._logged_failure = False

    def _failed(self, error: str) -> None:
        status = self._status
        status.errors += 1
        status.last_error = error[:MAX_ERROR_TEXT]
        status.last_error_at = self._now()
        status.state = "failing"
        if not self._logged_failure:
            # Once per failure streak: a target that is down must not flood the log.
            log.warning("feed target failing", extra={"target": self.name, "error": error})
            self._logged_failure = True

    async def run(self) -> None:
        """Send batches as they seal or fall due, until cancelled (a supervisor service).

        The HTTP client is closed on cancellation (shutdown) only: after any other end the
        supervisor starts ``run`` again with the same client.
        """
        try:
            while True:
                await self.drain()
                wait = self.buffer.next_due_in()
                self._wake.clear()
                if self.buffer.sealed:
                    continue
                try:
                    async with asyncio.timeout(wait if wait is not None else 3600.0):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        except asyncio.CancelledError:
            await self.aclose()
            raise

    def status(self) -> TargetStatus:
        """A snapshot of the counters."""
        snapshot = self._status
        return TargetStatus(
            name=snapshot.name,
            kind=snapshot.kind,
            state=snapshot.state,
            events_sent=snapshot.events_sent,
            batches_sent=snapshot.batches_sent,
            requests=snapshot.requests,
            errors=snapshot.errors,
            retries=snapshot.retries,
            throttled=snapshot.throttled,
            buffered=self.buffer.held,
            in_flight=snapshot.in_flight,
            dropped=dict(snapshot.dropped),
            last_success_at=snapshot.last_success_at,
            last_error=snapshot.last_error,
            last_error_at=snapshot.last_error_at,
        )
