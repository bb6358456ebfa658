"""Time-series storage of sensor readings: one row per (sensor, millisecond), stored once.

Writes go to the hot table (clustered by sensor and time on SQLite, monthly range partitions
on PostgreSQL) and are merged into per-minute and per-hour rollups in the same transaction.
Queries read the hot table, the rollups and the Parquet cold tier (``coldstore``) through one
API; timestamps are aware UTC datetimes at this boundary and epoch milliseconds inside.
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import io
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, NamedTuple, cast

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    SmallInteger,
    Table,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from maintainpro.core.db import Base
from maintainpro.iot import coldstore
from maintainpro.iot.rollups import HOUR_MS, MINUTE_MS, ROLLUPS, InsertedReading, merge_rollups

QUALITY_CODES = {"good": 0, "uncertain": 1, "bad": 2}
QUALITY_NAMES = {code: name for name, code in QUALITY_CODES.items()}

EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
DAY_MS: Final = 86_400_000

# Clustered by (sensor, time): on SQLite a WITHOUT ROWID table is the B-tree of its primary key,
# so a sensor's history is contiguous on disk and a duplicate is refused by the key itself.
# On PostgreSQL the migration creates it partitioned by month (see PARENT_DDL in 0002_iot).
readings_table = Table(
    "sensor_readings",
    Base.metadata,
    Column("sensor_id", Integer, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, primary_key=True, autoincrement=False),
    Column("value", Float, nullable=False),
    Column("quality", SmallInteger, nullable=False, default=0),
    sqlite_with_rowid=False,
)

PARTITION_PREFIX: Final = "sensor_readings_p"
DEFAULT_PARTITION: Final = "sensor_readings_default"

ReturningInsert = SqliteInsert | PgInsert
Resolution = Literal["raw", "raw-buckets", "1m", "1h"]
Tier = Literal["raw", "1m", "1h"]


class ReadingRow(NamedTuple):
    """A reading as stored: sensor primary key, epoch milliseconds (UTC), value, quality code."""

    sensor_id: int
    ts: int
    value: float
    quality: int


# --------------------------------------------------------------------------- time conversion


def to_ms(moment: dt.datetime) -> int:
    """Epoch milliseconds of an aware datetime (exact, no float rounding)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: timestamps must be timezone-aware")
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> dt.datetime:
    """The aware UTC datetime of epoch milliseconds."""
    return EPOCH + dt.timedelta(milliseconds=ms)


# --------------------------------------------------------------------------- writes


def write_readings(connection: Connection, rows: Sequence[ReadingRow]) -> int:
    """Insert a batch in the caller's transaction; duplicates are skipped. Returns rows added.

    The rows actually inserted are merged into the rollups in the same transaction, so a
    duplicate (already stored) is never counted twice.
    """
    if not rows:
        return 0
    dialect = connection.dialect.name
    if dialect == "sqlite":
        added = _write_sqlite_fast(connection, rows)
        if added is not None:
            return added
    values = [row._asdict() for row in rows]
    stmt: ReturningInsert
    if dialect == "sqlite":
        stmt = sqlite_insert(readings_table).on_conflict_do_nothing()
    elif dialect == "postgresql":
        ensure_partitions(connection, _months_of(row.ts for row in rows))
        stmt = pg_insert(readings_table).on_conflict_do_nothing()
    else:
        raise RuntimeError(f"unsupported database {dialect}")
    c = readings_table.c
    # RETURNING yields only the rows actually inserted, which rowcount does not report reliably
    # for batched inserts on either backend; the rollups need exactly those rows.
    result = connection.execute(stmt.returning(c.sensor_id, c.ts, c.value), values)
    inserted = [(sensor_id, ts, value) for sensor_id, ts, value in result]
    merge_rollups(connection, inserted)
    return len(inserted)


_SQLITE_INSERT = (
    "INSERT OR IGNORE INTO sensor_readings (sensor_id, ts, value, quality) VALUES (?, ?, ?, ?)"
)


def _write_sqlite_fast(connection: Connection, rows: Sequence[ReadingRow]) -> int | None:
    """The common case on SQLite: no row of the batch is stored yet.

    A plain executemany is several times faster than a compiled INSERT … RETURNING. It runs in
    a savepoint; if any row turns out to be a duplicate (a redelivery), the savepoint is rolled
    back and None tells the caller to take the exact RETURNING path, so rollups still count
    only rows actually inserted.
    """
    savepoint = connection.begin_nested()
    result = connection.exec_driver_sql(_SQLITE_INSERT, list(rows))
    if result.rowcount != len(rows):
        savepoint.rollback()
        return None
    savepoint.commit()
    # Rows are (sensor_id, ts, value, quality); the rollups read only the first three items, so
    # the rows go in as they are instead of being copied into 3-tuples (a hot path).
    merge_rollups(connection, cast("Sequence[InsertedReading]", rows))
    return len(rows)


def _months_of(timestamps: Iterable[int]) -> set[str]:
    # Distinct days first: integer division is cheap, datetime arithmetic per row is not.
    days = {ts // DAY_MS for ts in timestamps}
    return {coldstore.month_of(day * DAY_MS) for day in days}


def partition_name(month: str) -> str:
    """The PostgreSQL partition of a month key ("YYYY-MM")."""
    return PARTITION_PREFIX + month.replace("-", "")


def ensure_partitions(connection: Connection, months: Iterable[str]) -> list[str]:
    """Create missing monthly partitions on PostgreSQL (no-op on SQLite); returns those made.

    Rows that had fallen into the DEFAULT partition for such a month are moved into the new
    partition first; otherwise attaching it would fail and block that month for good.
    """
    wanted = sorted(set(months))
    if connection.dialect.name != "postgresql" or not wanted:
        return []
    names = [partition_name(month) for month in wanted]
    missing = _missing_tables(connection, names)
    if not missing:
        return []
    # Held until the transaction ends, so partition creators queue up one behind the other.
    # It must be a lock on a relation: acquiring one makes PostgreSQL process catalog
    # invalidations, so the re-check below sees a partition that the previous holder made
    # (after an advisory lock it would not, and CREATE TABLE would fail). SHARE UPDATE
    # EXCLUSIVE is what ATTACH takes anyway and does not block inserts or reads.
    connection.exec_driver_sql("LOCK TABLE sensor_readings IN SHARE UPDATE EXCLUSIVE MODE")
    created = []
    for month in wanted:
        name = partition_name(month)
        if name not in missing or not _missing_tables(connection, [name]):
            continue
        low, high = coldstore.month_bounds(month)
        connection.exec_driver_sql(
            f"CREATE TABLE {name} (LIKE sensor_readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        connection.exec_driver_sql(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE ts >= {low} AND ts < {high} "  # noqa: S608 - integers and our own names
            "RETURNING sensor_id, ts, value, quality) "
            f"INSERT INTO {name} (sensor_id, ts, value, quality) SELECT * FROM moved"
        )
        # ATTACH (unlike CREATE ... PARTITION OF) does not lock out readers of the parent; the
        # partitioned primary key and BRIN index are attached or built on the new table.
        connection.exec_driver_sql(
            f"ALTER TABLE sensor_readings ATTACH PARTITION {name} "
            f"FOR VALUES FROM ({low}) TO ({high})"
        )
        created.append(name)
    return created


def _missing_tables(connection: Connection, names: Sequence[str]) -> set[str]:
    rows = connection.execute(
        text(
            "SELECT name FROM unnest(CAST(:names AS text[])) AS name "
            "WHERE to_regclass(name) IS NULL"
        ),
        {"names": list(names)},
    )
    return {name for (name,) in rows}


def prepare_partitions(
    connection: Connection, now: dt.datetime, months_ahead: int = 2
) -> list[str]:
    """Create this month's and the next months' partitions ahead of the data (PostgreSQL)."""
    moment = now.astimezone(dt.UTC)
    wanted = []
    for step in range(months_ahead + 1):
        index = moment.year * 12 + moment.month - 1 + step
        wanted.append(f"{index // 12:04d}-{index % 12 + 1:02d}")
    return ensure_partitions(connection, wanted)


def partitions(connection: Connection) -> list[str]:
    """Month keys of the existing monthly partitions (PostgreSQL; empty on SQLite)."""
    if connection.dialect.name != "postgresql":
        return []
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'sensor_readings'::regclass"
        )
    )
    found = []
    for (name,) in rows:
        if name.startswith(PARTITION_PREFIX):
            digits = name.removeprefix(PARTITION_PREFIX)
            found.append(f"{digits[:4]}-{digits[4:]}")
    return sorted(found)


# --------------------------------------------------------------------------- query results


class RawPoint(NamedTuple):
    """One stored reading."""

    ts: dt.datetime
    value: float
    quality: int


@dataclass(frozen=True, slots=True)
class Bucket:
    """The readings of one time bucket [start, start + width) summarised."""

    start: dt.datetime
    min: float
    max: float
    avg: float
    count: int


@dataclass(frozen=True)
class Series:
    """A sensor's readings over a range: raw points, or buckets when they would not fit."""

    sensor_id: int
    start: dt.datetime
    end: dt.datetime
    resolution: Resolution
    bucket: dt.timedelta | None = None
    points: list[RawPoint] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)

    def __len__(self) -> int:
        """Number of points or buckets."""
        return len(self.points) if self.resolution == "raw" else len(self.buckets)


# --------------------------------------------------------------------------- queries


def _nice_widths() -> Iterator[int]:
    # Bucket widths people read easily, aligned to the clock; all of 1 min and up are
    # multiples of the 1-minute rollup, all of 1 h and up of the hourly one.
    yield from (1, 2, 5, 10, 20, 50, 100, 200, 500)
    yield from (s * 1000 for s in (1, 2, 5, 10, 15, 30))
    yield from (m * MINUTE_MS for m in (1, 2, 5, 10, 15, 30))
    yield from (h * HOUR_MS for h in (1, 2, 3, 6, 12))
    yield from (d * DAY_MS for d in (1, 2))
    week = 7 * DAY_MS
    for power in itertools.count():
        yield week * 2**power


def _bucket_count(start_ms: int, end_ms: int, width: int) -> int:
    return (end_ms - 1) // width - start_ms // width + 1


def _choose_width(start_ms: int, end_ms: int, max_points: int, at_least: int = 1) -> int:
    for width in _nice_widths():
        aligned = width >= at_least and width % at_least == 0
        if aligned and _bucket_count(start_ms, end_ms, width) <= max_points:
            return width
    raise AssertionError("unreachable: widths grow without bound")


def query_readings(
    connection: Connection,
    sensor_id: int,
    start: dt.datetime,
    end: dt.datetime,
    max_points: int = 2000,
    *,
    cold_dir: Path | None = None,
) -> Series:
    """Readings of a sensor with start <= ts < end, hot and cold alike.

    Raw points when at most ``max_points`` exist; otherwise buckets of the finest clock-aligned
    width giving at most ``max_points`` buckets, computed from raw rows (widths under a minute),
    the 1-minute rollups or the hourly ones. Bucketed results cover whole buckets, so the first
    and last may include readings just outside [start, end).
    """
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    start_ms, end_ms = to_ms(start), to_ms(end)
    if end_ms <= start_ms:
        return Series(sensor_id, start, end, "raw")
    if _raw_fits(connection, sensor_id, start_ms, end_ms, max_points, cold_dir):
        points = [
            RawPoint(from_ms(ts), value, quality)
            for ts, value, quality in _raw_rows(connection, sensor_id, start_ms, end_ms, cold_dir)
        ]
        return Series(sensor_id, start, end, "raw", points=points)

    width = _choose_width(start_ms, end_ms, max_points)
    tier = _usable_tier(
        _tier_for(width), _oldest_by_tier(connection, sensor_id, cold_dir), start_ms
    )
    if tier != _tier_for(width):
        width = _choose_width(start_ms, end_ms, max_points, at_least=_TIER_WIDTH[tier])
    origin = start_ms - start_ms % width
    stop = _ceil_to(end_ms, width)
    if tier == "raw":
        partials = _raw_buckets(connection, sensor_id, origin, stop, width, cold_dir)
    else:
        table = ROLLUPS[tier][1]
        partials = _rollup_buckets(connection, table, sensor_id, origin, stop, width)
    buckets = [
        Bucket(from_ms(origin + index * width), low, high, total / count, count)
        for index, (low, high, total, count) in sorted(partials.items())
        if count > 0
    ]
    resolution: Resolution = "raw-buckets" if tier == "raw" else tier
    return Series(
        sensor_id,
        start,
        end,
        resolution,
        bucket=dt.timedelta(milliseconds=width),
        buckets=buckets,
    )


_TIERS: Final[tuple[Tier, ...]] = ("raw", "1m", "1h")
_TIER_WIDTH: Final[dict[Tier, int]] = {"raw": 1, "1m": MINUTE_MS, "1h": HOUR_MS}


def _tier_for(width: int) -> Tier:
    if width % HOUR_MS == 0:
        return "1h"
    if width % MINUTE_MS == 0:
        return "1m"
    return "raw"


def _usable_tier(tier: Tier, oldest: dict[Tier, int | None], start_ms: int) -> Tier:
    # Retention may have thinned a finer tier while a coarser one still reaches back further:
    # a tier serves the query only if its data starts (to the hour) where the hourly data, or
    # the range, starts. Otherwise the next coarser tier answers rather than leave a hole.
    hourly = oldest["1h"]
    floor = max(start_ms, hourly) if hourly is not None else start_ms
    floor -= floor % HOUR_MS
    for candidate in _TIERS[_TIERS.index(tier) :]:
        first = oldest[candidate]
        if candidate == "1h" or (first is not None and first - first % HOUR_MS <= floor):
            return candidate
    return "1h"


def _ceil_to(value: int, width: int) -> int:
    return -(-value // width) * width


def _raw_fits(
    connection: Connection,
    sensor_id: int,
    start_ms: int,
    end_ms: int,
    max_points: int,
    cold_dir: Path | None,
) -> bool:
    # Whole rollup buckets inside the range give a lower bound for free; only when it does not
    # already exceed the limit are raw rows counted, and then never more than max_points + 1.
    for width, table in (ROLLUPS["1h"], ROLLUPS["1m"]):
        low = _ceil_to(start_ms, width)
        high = end_ms - end_ms % width
        if low >= high:
            continue
        bound = connection.execute(
            select(func.coalesce(func.sum(table.c.reading_count), 0)).where(
                table.c.sensor_id == sensor_id, table.c.bucket >= low, table.c.bucket < high
            )
        ).scalar_one()
        if bound > max_points:
            return False
    c = readings_table.c
    limited = (
        select(literal(1))
        .select_from(readings_table)
        .where(c.sensor_id == sensor_id, c.ts >= start_ms, c.ts < end_ms)
        .limit(max_points + 1)
        .subquery()
    )
    count = connection.execute(select(func.count()).select_from(limited)).scalar_one()
    if cold_dir is not None and count <= max_points:
        count += coldstore.read_range(cold_dir, sensor_id, start_ms, end_ms).num_rows
    return bool(count <= max_points)


def _hot_rows(
    connection: Connection, sensor_id: int, start_ms: int, end_ms: int
) -> list[tuple[int, float, int]]:
    c = readings_table.c
    rows = connection.execute(
        select(c.ts, c.value, c.quality)
        .where(c.sensor_id == sensor_id, c.ts >= start_ms, c.ts < end_ms)
        .order_by(c.ts)
    )
    return [(ts, value, quality) for ts, value, quality in rows]


def _raw_rows(
    connection: Connection, sensor_id: int, start_ms: int, end_ms: int, cold_dir: Path | None
) -> list[tuple[int, float, int]]:
    hot = _hot_rows(connection, sensor_id, start_ms, end_ms)
    if cold_dir is None:
        return hot
    cold = coldstore.to_rows(coldstore.read_range(cold_dir, sensor_id, start_ms, end_ms))
    return list(_merge_unique(iter(cold), iter(hot)))


def _merge_unique(
    first: Iterator[tuple[int, float, int]], second: Iterator[tuple[int, float, int]]
) -> Iterator[tuple[int, float, int]]:
    # A row may sit in both tiers for a moment (compaction crashed between rename and commit,
    # or a redelivery of a compacted reading); it is shown once.
    previous: int | None = None
    for row in heapq.merge(first, second, key=lambda row: row[0]):
        if row[0] != previous:
            previous = row[0]
            yield row


# index -> (min, max, sum, count)
_Partials = dict[int, tuple[float, float, float, int]]


def _combine(into: _Partials, index: int, low: float, high: float, total: float, n: int) -> None:
    known = into.get(index)
    if known is None:
        into[index] = (low, high, total, n)
    else:
        into[index] = (min(known[0], low), max(known[1], high), known[2] + total, known[3] + n)


def _raw_buckets(
    connection: Connection,
    sensor_id: int,
    origin: int,
    stop: int,
    width: int,
    cold_dir: Path | None,
) -> _Partials:
    c = readings_table.c
    # Floor division (ts >= origin, so truncation is the floor): "/" would be true division.
    index = ((c.ts - origin) // width).label("b")
    rows = connection.execute(
        select(index, func.min(c.value), func.max(c.value), func.sum(c.value), func.count())
        .where(c.sensor_id == sensor_id, c.ts >= origin, c.ts < stop)
        .group_by(index)
    )
    partials: _Partials = {}
    for b, low, high, total, n in rows:
        _combine(partials, int(b), low, high, total, n)
    if cold_dir is not None:
        cold = coldstore.read_range(cold_dir, sensor_id, origin, stop)
        if cold.num_rows:
            keyed = cold.append_column(
                "b", pc.divide(pc.subtract(cold["ts"], origin), pa.scalar(width, pa.int64()))
            )
            grouped = keyed.group_by("b").aggregate(
                [("value", "min"), ("value", "max"), ("value", "sum"), ("value", "count")]
            )
            for row in grouped.to_pylist():
                _combine(
                    partials,
                    row["b"],
                    row["value_min"],
                    row["value_max"],
                    row["value_sum"],
                    row["value_count"],
                )
    return partials


def _rollup_buckets(
    connection: Connection, table: Table, sensor_id: int, origin: int, stop: int, width: int
) -> _Partials:
    c = table.c
    index = ((c.bucket - origin) // width).label("b")
    rows = connection.execute(
        select(
            index,
            func.min(c.value_min),
            func.max(c.value_max),
            func.sum(c.value_sum),
            func.sum(c.reading_count),
        )
        .where(c.sensor_id == sensor_id, c.bucket >= origin, c.bucket < stop)
        .group_by(index)
    )
    return {int(b): (low, high, total, int(n)) for b, low, high, total, n in rows}


def _oldest_by_tier(
    connection: Connection, sensor_id: int, cold_dir: Path | None
) -> dict[Tier, int | None]:
    c = readings_table.c
    hot = connection.execute(select(func.min(c.ts)).where(c.sensor_id == sensor_id)).scalar()
    cold = coldstore.oldest_ts(cold_dir, sensor_id) if cold_dir is not None else None
    raw = min((ts for ts in (hot, cold) if ts is not None), default=None)
    oldest: dict[Tier, int | None] = {"raw": raw}
    for name in ("1m", "1h"):
        table = ROLLUPS[name][1]
        oldest[name] = connection.execute(
            select(func.min(table.c.bucket)).where(table.c.sensor_id == sensor_id)
        ).scalar()
    return oldest


def latest_values(
    connection: Connection, sensor_ids: Iterable[int], *, cold_dir: Path | None = None
) -> dict[int, RawPoint]:
    """The newest reading of each sensor (sensors without any reading are left out)."""
    wanted = list(dict.fromkeys(sensor_ids))
    found: dict[int, RawPoint] = {}
    c = readings_table.c
    # One index probe per sensor, sent as one statement per 100 sensors (SQLite caps the
    # number of terms of a compound SELECT).
    for offset in range(0, len(wanted), 100):
        chunk = wanted[offset : offset + 100]
        arms = [
            select(c.sensor_id, c.ts, c.value, c.quality)
            .where(c.sensor_id == sensor_id)
            .order_by(c.ts.desc())
            .limit(1)
            .subquery()
            for sensor_id in chunk
        ]
        statement = union_all(*(select(arm) for arm in arms)) if len(arms) > 1 else select(arms[0])
        for sensor_id, ts, value, quality in connection.execute(statement):
            found[sensor_id] = RawPoint(from_ms(ts), value, quality)
    if cold_dir is not None:
        for sensor_id in wanted:
            if sensor_id in found:
                continue
            keys = coldstore.months(cold_dir, sensor_id)
            if keys:
                table = coldstore.read_month(coldstore.month_path(cold_dir, sensor_id, keys[-1]))
                if table.num_rows:
                    ts, value, quality = coldstore.to_rows(table.slice(table.num_rows - 1))[0]
                    found[sensor_id] = RawPoint(from_ms(ts), value, quality)
    return found


CSV_HEADER: Final = ("sensor_id", "timestamp", "value", "quality")


def format_ts(ts_ms: int) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as CSV exports write timestamps."""
    return from_ms(ts_ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def export_csv(
    connection: Connection,
    sensor_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    *,
    cold_dir: Path | None = None,
    chunk_rows: int = 10_000,
) -> Iterator[str]:
    """Stream readings with start <= ts < end as CSV text chunks, sensor by sensor, in time order.

    The generator reads as it goes: consume it while the connection is open.
    """
    start_ms, end_ms = to_ms(start), to_ms(end)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    pending = 1
    for sensor_id in sensor_ids:
        for ts, value, quality in _stream_rows(
            connection, sensor_id, start_ms, end_ms, cold_dir, chunk_rows
        ):
            writer.writerow(
                (sensor_id, format_ts(ts), repr(value), QUALITY_NAMES.get(quality, quality))
            )
            pending += 1
            if pending >= chunk_rows:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                pending = 0
    if buffer.tell():
        yield buffer.getvalue()


def _stream_rows(
    connection: Connection,
    sensor_id: int,
    start_ms: int,
    end_ms: int,
    cold_dir: Path | None,
    chunk_rows: int,
) -> Iterator[tuple[int, float, int]]:
    c = readings_table.c
    # Statement-level option: Connection.execution_options would change the caller's connection.
    result = connection.execute(
        select(c.ts, c.value, c.quality)
        .where(c.sensor_id == sensor_id, c.ts >= start_ms, c.ts < end_ms)
        .order_by(c.ts)
        .execution_options(yield_per=chunk_rows)
    )
    hot = ((ts, value, quality) for ts, value, quality in result)
    if cold_dir is None:
        yield from hot
        return
    cold = (
        row
        for key in coldstore.months(cold_dir, sensor_id)
        if coldstore.month_bounds(key)[0] < end_ms and start_ms < coldstore.month_bounds(key)[1]
        for row in coldstore.to_rows(
            coldstore.read_month(coldstore.month_path(cold_dir, sensor_id, key), start_ms, end_ms)
        )
    )
    yield from _merge_unique(cold, hot)
