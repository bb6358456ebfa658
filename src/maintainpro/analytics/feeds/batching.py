"""Batches for push targets: items collected per lane, sealed at a size or an age, held within a
bound (pure apart from the clock it is given).

A lane is where a batch goes (a Power BI table; the one stream of a webhook). A lane's batch is
sealed when it holds ``max_items`` or when its first item is ``max_age_s`` old, whichever comes
first. At most ``max_held`` items are held, open and sealed together (the batch being sent is not
counted: it belongs to the sender until it is delivered or given up). Past that the oldest sealed
batch is dropped, or the new item when only open lanes hold items, and the loss is counted with
its reason; adding never waits.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

T = TypeVar("T")
BUFFER_FULL: Final = "buffer_full"


@dataclass
class Batch(Generic[T]):
    """Items for one lane, sent together; ``id`` stays the same across retries."""

    lane: str
    items: list[T]
    opened_at: float
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0


class BatchBuffer(Generic[T]):
    """Open batches per lane and sealed batches waiting to be sent, in order."""

    def __init__(
        self,
        *,
        max_items: int,
        max_age_s: float,
        max_held: int,
        clock: Callable[[], float],
        on_drop: Callable[[str, int], None],
    ) -> None:
        if max_items < 1 or max_age_s <= 0 or max_held < max_items:
            raise ValueError("a batch buffer needs max_items >= 1, max_age_s > 0, max_held >= it")
        self.max_items = max_items
        self.max_age_s = max_age_s
        self.max_held = max_held
        self._clock = clock
        self._on_drop = on_drop
        self._open: dict[str, Batch[T]] = {}
        self._sealed: collections.deque[Batch[T]] = collections.deque()
        self._held = 0

    @property
    def held(self) -> int:
        """Items held, open and sealed."""
        return self._held

    @property
    def sealed(self) -> int:
        """Batches ready to be sent."""
        return len(self._sealed)

    def add(self, lane: str, item: T) -> bool:
        """Add an item; False when it had to be dropped because the buffer is full."""
        while self._held >= self.max_held and self._sealed:
            oldest = self._sealed.popleft()
            self._held -= len(oldest.items)
            self._on_drop(BUFFER_FULL, len(oldest.items))
        if self._held >= self.max_held:
            self._on_drop(BUFFER_FULL, 1)
            return False
        batch = self._open.get(lane)
        if batch is None:
            batch = self._open[lane] = Batch(lane, [], self._clock())
        batch.items.append(item)
        self._held += 1
        if len(batch.items) >= self.max_items:
            self._seal(lane)
        return True

    def _seal(self, lane: str) -> None:
        self._sealed.append(self._open.pop(lane))

    def seal_due(self) -> int:
        """Seal every open batch whose first item is at least ``max_age_s`` old."""
        now = self._clock()
        due = [lane for lane, b in self._open.items() if now - b.opened_at >= self.max_age_s]
        for lane in due:
            self._seal(lane)
        return len(due)

    def seal_all(self) -> int:
        """Seal every open batch, due or not (before a shutdown)."""
        lanes = list(self._open)
        for lane in lanes:
            self._seal(lane)
        return len(lanes)

    def pop(self) -> Batch[T] | None:
        """The oldest sealed batch, handed to the sender (no longer counted as held)."""
        if not self._sealed:
            return None
        batch = self._sealed.popleft()
        self._held -= len(batch.items)
        return batch

    def next_due_in(self) -> float | None:
        """Seconds until the oldest open batch is due; None when no batch is open."""
        if not self._open:
            return None
        oldest = min(b.opened_at for b in self._open.values())
        return max(0.0, oldest + self.max_age_s - self._clock())
