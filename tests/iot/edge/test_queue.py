"""The edge agent's durable queue: durability across a crash, the cap, the time to live, order."""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from maintainpro.iot.edge.queue import DurableQueue, to_us
from maintainpro.iot.readings import Quality, SensorReading

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def _readings(count: int, start: int = 0, sensor: str = "temp") -> list[SensorReading]:
    return [
        SensorReading("plc-1", sensor, float(i), T0 + dt.timedelta(milliseconds=i))
        for i in range(start, start + count)
    ]


def test_survives_a_close_without_ack_and_keeps_order(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db", journal=True)
    queue.put(_readings(5))
    queue.put(_readings(5, start=5))
    sent = queue.fetch(limit=3)
    # Sent, never acknowledged, then the process goes away.
    queue.close()

    reopened = DurableQueue(tmp_path / "q.db")
    rows = reopened.fetch(limit=100)
    assert [r.value for r in rows] == [float(i) for i in range(10)]
    assert [r.seq for r in rows[:3]] == [r.seq for r in sent]
    assert rows[0].timestamp == T0
    assert reopened.depth == 10
    reopened.remove(r.seq for r in rows[:4])
    assert [r.value for r in reopened.fetch(limit=100)] == [float(i) for i in range(4, 10)]
    assert len(reopened.journal_keys()) == 10
    reopened.close()


# A child that commits one batch, then dies at once without closing anything.
WRITER = """
import datetime as dt, os, signal, sys
from pathlib import Path
from maintainpro.iot.edge.queue import DurableQueue
from maintainpro.iot.readings import SensorReading
t0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
queue = DurableQueue(Path(sys.argv[1]))
queue.put([SensorReading("plc-1", "temp", float(i), t0 + dt.timedelta(milliseconds=i))
           for i in range(100)])
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writer_loses_nothing_it_committed(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    child = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, "-c", WRITER, str(path)], check=False, timeout=60
    )
    assert child.returncode == -signal.SIGKILL
    queue = DurableQueue(path)
    assert queue.depth == 100
    assert queue.fetch(after_seq=99, limit=5)[0].value == 99.0
    queue.close()


def test_wal_and_full_synchronous(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db")
    assert queue._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert queue._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    queue.close()


def test_cap_drops_the_oldest_and_counts(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db", max_readings=10)
    assert queue.put(_readings(8)) == 0
    assert queue.put(_readings(5, start=8)) == 3
    rows = queue.fetch(limit=100)
    assert [r.value for r in rows] == [float(i) for i in range(3, 13)]
    stats = queue.stats()
    assert (stats.depth, stats.dropped_cap, stats.dropped_total) == (10, 3, 3)
    assert stats.oldest_unsent_at == T0 + dt.timedelta(milliseconds=3)
    queue.close()
    # The counters are on disk too.
    assert DurableQueue(tmp_path / "q.db").stats().dropped_total == 3


def test_byte_cap_keeps_the_file_bounded(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db", max_bytes=256 * 1024)
    for batch in range(200):
        queue.put(_readings(100, start=batch * 100))
    stats = queue.stats()
    assert stats.dropped_cap > 0
    assert queue._used_bytes() < 256 * 1024 * 1.2
    # What remains is the newest, still in order.
    values = [r.value for r in queue.fetch(limit=100_000)]
    assert values == sorted(values)
    assert values[-1] == 19_999.0
    queue.close()


def test_ttl_drops_old_readings(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db", ttl_s=3600)
    old = [SensorReading("plc-1", "temp", 1.0, T0 - dt.timedelta(hours=2))]
    queue.put(old + _readings(3))
    assert queue.expire(T0 + dt.timedelta(minutes=1)) == 1
    stats = queue.stats()
    assert (stats.depth, stats.dropped_ttl, stats.dropped_total) == (3, 1, 1)
    queue.close()


def test_order_metadata_and_quality_are_kept(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db")
    queue.put(
        [
            SensorReading("a", "x", 1.5, T0, Quality.UNCERTAIN, {"status": "0x40"}),
            SensorReading("b", "y", 2.5, T0 + dt.timedelta(microseconds=7)),
        ]
    )
    first, second = queue.fetch()
    assert (first.device, first.quality, first.metadata) == ("a", "uncertain", {"status": "0x40"})
    assert second.ts_us == to_us(T0) + 7
    assert second.metadata is None
    queue.close()
    # The file is an ordinary SQLite database an operator can inspect.
    with sqlite3.connect(tmp_path / "q.db") as db:
        assert db.execute("SELECT count(*) FROM readings").fetchone()[0] == 2
