"""The edge agent's durable store-and-forward queue: SQLite in WAL mode with synchronous=FULL.

A reading is committed here before the connector that produced it is told it was taken, and it
leaves only when the hub's broker acknowledged the message carrying it. A power loss or
``kill -9`` therefore loses nothing that was acknowledged; what was sent but not acknowledged is
sent again (at-least-once; the hub stores a duplicate once because storage keys on
(sensor, millisecond)).

Policies:

* Order: rows are numbered as they are committed (``seq``) and sent oldest first, so every
  sensor's readings leave in the order they were taken.
* Disk cap: at most ``max_readings`` rows and about ``max_bytes`` of database pages; beyond that
  the *oldest* rows are dropped (the newest data matters most to a maintenance team), counted in
  ``dropped_total`` and reported in the agent's status.
* Time to live: rows whose reading timestamp is older than ``ttl_s`` are dropped by
  :meth:`DurableQueue.expire` and counted the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maintainpro.iot.readings import SensorReading

__all__ = ["DurableQueue", "QueueStats", "QueuedReading"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# How often (in put() calls) the page-based size cap is checked: page_count is cheap, but not
# free, and the row cap already bounds growth between two checks.
_SIZE_CHECK_EVERY = 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    sensor TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    value REAL NOT NULL,
    quality TEXT NOT NULL,
    metadata TEXT
);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts_us);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    device TEXT NOT NULL,
    sensor TEXT NOT NULL,
    ts_us INTEGER NOT NULL
);
"""


def to_us(timestamp: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact integer arithmetic)."""
    delta = timestamp - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> dt.datetime:
    """The aware UTC datetime of epoch microseconds."""
    return _EPOCH + dt.timedelta(microseconds=value)


@dataclass(frozen=True, slots=True)
class QueuedReading:
    """A reading waiting in the queue, with its position."""

    seq: int
    device: str
    sensor: str
    ts_us: int
    value: float
    quality: str
    metadata: dict[str, Any] | None

    @property
    def timestamp(self) -> dt.datetime:
        """The reading's original timestamp (aware UTC)."""
        return from_us(self.ts_us)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What the status heartbeat reports about the queue."""

    depth: int
    oldest_unsent_at: dt.datetime | None
    dropped_total: int
    dropped_cap: int
    dropped_ttl: int
    enqueued_total: int


def _metadata_text(metadata: Any) -> str | None:
    if not metadata:
        return None
    try:
        return json.dumps(dict(metadata), separators=(",", ":"), allow_nan=False, default=str)
    except (TypeError, ValueError):
        # Metadata is informative only; a reading is never refused because of it.
        return None


class DurableQueue:
    """Readings committed to disk, removed only once the hub's broker acknowledged them."""

    def __init__(
        self,
        path: Path,
        *,
        max_readings: int = 5_000_000,
        max_bytes: int | None = None,
        ttl_s: float | None = 7 * 24 * 3600,
        journal: bool = False,
    ) -> None:
        """Open (or create) the queue file; nothing is lost from an earlier run."""
        if max_readings < 1:
            raise ValueError("max_readings must be at least 1")
        self.path = path
        self.max_readings = max_readings
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.journal = journal
        self._lock = threading.Lock()
        self._puts = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode with explicit BEGIN IMMEDIATE: every put() is one transaction, so a
        # batch of readings is either all on disk or not at all.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is fsynced before put() returns, so a power loss keeps whatever the
        # connector was told was taken (NORMAL could lose the last transactions in WAL mode).
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)
        self._depth = int(self._db.execute("SELECT count(*) FROM readings").fetchone()[0])

    def close(self) -> None:
        """Close the file (rows not removed stay for the next run)."""
        with self._lock:
            self._db.close()

    # -- writing -------------------------------------------------------------------------------

    def put(self, readings: Sequence[SensorReading]) -> int:
        """Commit readings durably (one fsynced transaction); return how many old rows the cap
        dropped to make room."""
        if not readings:
            return 0
        rows = [
            (
                r.device_id,
                r.sensor_id,
                to_us(r.timestamp),
                r.value,
                str(r.quality),
                _metadata_text(r.metadata),
            )
            for r in readings
        ]
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO readings (device, sensor, ts_us, value, quality, metadata) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                if self.journal:
                    db.executemany(
                        "INSERT INTO journal (device, sensor, ts_us) VALUES (?, ?, ?)",
                        [row[:3] for row in rows],
                    )
                self._bump("enqueued_total", len(rows))
                self._depth += len(rows)
                dropped = self._drop_oldest(self._depth - self.max_readings)
                self._puts += 1
                if self.max_bytes is not None and self._puts % _SIZE_CHECK_EVERY == 0:
                    dropped += self._enforce_size()
                if dropped:
                    self._bump("dropped_cap", dropped)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._depth = int(db.execute("SELECT count(*) FROM readings").fetchone()[0])
                raise
        return dropped

    def _drop_oldest(self, count: int) -> int:
        if count <= 0:
            return 0
        cursor = self._db.execute(
            "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings ORDER BY seq LIMIT ?)",
            (count,),
        )
        self._depth -= cursor.rowcount
        return cursor.rowcount

    def _used_bytes(self) -> int:
        page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        pages = int(self._db.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * page_size

    def _enforce_size(self) -> int:
        # Freed pages are reused by later inserts, so the file stops growing at about the cap.
        assert self.max_bytes is not None
        used = self._used_bytes()
        if used <= self.max_bytes or self._depth == 0:
            return 0
        excess = math.ceil(self._depth * (used - self.max_bytes) / used)
        # A little more than the estimate, so the next check does not drop again at once.
        return self._drop_oldest(excess + max(1, self._depth // 100))

    def _bump(self, name: str, amount: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )

    # -- reading and removing -----------------------------------------------------------------

    def fetch(self, after_seq: int = 0, limit: int = 1000) -> list[QueuedReading]:
        """Up to ``limit`` rows after ``after_seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, device, sensor, ts_us, value, quality, metadata FROM readings "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [
            QueuedReading(
                seq, device, sensor, ts, value, quality, json.loads(meta) if meta else None
            )
            for seq, device, sensor, ts, value, quality, meta in rows
        ]

    def remove(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged rows (one fsynced transaction); unknown ids are ignored."""
        ids = [(seq,) for seq in seqs]
        if not ids:
            return 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.total_changes
                db.executemany("DELETE FROM readings WHERE seq = ?", ids)
                removed = db.total_changes - before
                self._depth -= removed
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return removed

    def expire(self, now: dt.datetime) -> int:
        """Drop rows whose reading is older than the time to live; return how many."""
        if self.ttl_s is None:
            return 0
        limit = to_us(now) - int(self.ttl_s * 1_000_000)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                removed = db.execute("DELETE FROM readings WHERE ts_us < ?", (limit,)).rowcount
                if removed:
                    self._bump("dropped_ttl", removed)
                self._depth -= removed
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return removed

    # -- status -------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Rows waiting (sent but unacknowledged ones included)."""
        return self._depth

    def stats(self) -> QueueStats:
        """Depth, age of the oldest unsent reading and the drop counters."""
        with self._lock:
            db = self._db
            oldest = db.execute("SELECT min(ts_us) FROM readings").fetchone()[0]
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
            depth = self._depth
        cap, ttl = int(counters.get("dropped_cap", 0)), int(counters.get("dropped_ttl", 0))
        return QueueStats(
            depth=depth,
            oldest_unsent_at=from_us(int(oldest)) if oldest is not None else None,
            dropped_total=cap + ttl,
            dropped_cap=cap,
            dropped_ttl=ttl,
            enqueued_total=int(counters.get("enqueued_total", 0)),
        )

    def journal_keys(self) -> set[tuple[str, str, int]]:
        """Every (device, sensor, epoch µs) ever enqueued, when the journal is on (audits)."""
        with self._lock:
            rows = self._db.execute("SELECT device, sensor, ts_us FROM journal").fetchall()
        return {(d, s, int(t)) for d, s, t in rows}
