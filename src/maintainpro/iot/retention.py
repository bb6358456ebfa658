"""Data lifecycle of sensor readings: compaction of old raw rows into the Parquet cold tier,
and retention per resolution (raw, 1-minute, 1-hour)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from sqlalchemy import Connection, Engine, delete, func, select

from maintainpro.config import Settings
from maintainpro.iot import coldstore
from maintainpro.iot.rollups import ROLLUPS, subtract_duplicates
from maintainpro.iot.timeseries import (
    DAY_MS,
    DEFAULT_PARTITION,
    partition_name,
    partitions,
    prepare_partitions,
    readings_table,
    to_ms,
)


@dataclass(frozen=True)
class RetentionPolicy:
    """How many days each resolution is kept; None keeps it forever."""

    raw_days: int | None = 730
    minute_days: int | None = 400
    hour_days: int | None = None

    def __post_init__(self) -> None:
        """Refuse zero or negative periods, which would delete everything."""
        for name in ("raw_days", "minute_days", "hour_days"):
            days = getattr(self, name)
            if days is not None and days < 1:
                raise ValueError(f"{name} must be at least 1 day or None")


@dataclass
class RetentionReport:
    """What a retention run removed."""

    raw_rows: int = 0
    raw_partitions: int = 0
    minute_rows: int = 0
    hour_rows: int = 0
    cold_rows: int = 0
    cold_files: int = 0


@dataclass
class CompactionReport:
    """What a compaction run moved to the cold tier."""

    rows: int = 0
    duplicates: int = 0
    files_written: int = 0
    bytes_written: int = 0
    partitions_emptied: int = 0


def sensors_with_readings(connection: Connection) -> Iterator[int]:
    """Sensor ids present in the hot table, by index skip-scan (one probe per sensor)."""
    c = readings_table.c
    previous = -(2**31)
    while True:
        found = connection.execute(
            select(c.sensor_id).where(c.sensor_id > previous).order_by(c.sensor_id).limit(1)
        ).scalar()
        if found is None:
            return
        yield found
        previous = found


def apply_retention(
    connection: Connection,
    policy: RetentionPolicy,
    now: dt.datetime,
    *,
    cold_dir: Path | None = None,
) -> RetentionReport:
    """Delete what each resolution keeps no longer, in the caller's transaction.

    Raw retention covers the hot table and, when given, the cold files (which are removed or
    rewritten at once: files are not transactional).
    """
    report = RetentionReport()
    now_ms = to_ms(now)
    if policy.raw_days is not None:
        cutoff = now_ms - policy.raw_days * DAY_MS
        report.raw_partitions = _drop_old_partitions(connection, cutoff)
        c = readings_table.c
        # Per sensor so that both backends delete by primary-key range instead of a full scan.
        for sensor_id in list(sensors_with_readings(connection)):
            result = connection.execute(
                delete(readings_table).where(c.sensor_id == sensor_id, c.ts < cutoff)
            )
            report.raw_rows += result.rowcount
        if cold_dir is not None:
            report.cold_rows, report.cold_files = _cold_retention(cold_dir, cutoff)
    for days, name in ((policy.minute_days, "1m"), (policy.hour_days, "1h")):
        if days is None:
            continue
        width, table = ROLLUPS[name]
        # Only buckets wholly older than the cutoff go: a partly kept bucket stays complete.
        cutoff = now_ms - days * DAY_MS - width
        removed = connection.execute(delete(table).where(table.c.bucket <= cutoff)).rowcount
        if name == "1m":
            report.minute_rows = removed
        else:
            report.hour_rows = removed
    return report


def _drop_old_partitions(connection: Connection, cutoff_ms: int) -> int:
    # Dropping a whole month is instant and leaves no dead tuples behind, unlike DELETE.
    dropped = 0
    for month in partitions(connection):
        if coldstore.month_bounds(month)[1] <= cutoff_ms:
            name = partition_name(month)
            connection.exec_driver_sql(f"ALTER TABLE sensor_readings DETACH PARTITION {name}")
            connection.exec_driver_sql(f"DROP TABLE {name}")
            dropped += 1
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"DELETE FROM {DEFAULT_PARTITION} WHERE ts < {int(cutoff_ms)}"  # noqa: S608 - int
        )
    return dropped


def _cold_retention(cold_dir: Path, cutoff_ms: int) -> tuple[int, int]:
    rows = files = 0
    with coldstore.locked(cold_dir):
        for sensor_id in coldstore.sensors(cold_dir):
            for key in coldstore.months(cold_dir, sensor_id):
                low, high = coldstore.month_bounds(key)
                path = coldstore.month_path(cold_dir, sensor_id, key)
                if high <= cutoff_ms:
                    rows += coldstore.read_month(path).num_rows
                    coldstore.remove(path)
                    files += 1
                elif low < cutoff_ms:
                    rows += coldstore.rewrite_from(cold_dir, sensor_id, key, cutoff_ms)
    return rows, files


def compact_to_parquet(
    engine: Engine,
    cold_dir: Path,
    *,
    older_than_days: int,
    now: dt.datetime,
) -> CompactionReport:
    """Move raw readings older than N days from the hot table into the cold Parquet files.

    One transaction per sensor and month: the rows are deleted with RETURNING, merged into
    that month's file (temp file, fsync, rename, fsync of the directory) and only then is the
    deletion committed. A crash before the commit leaves the rows in both tiers, which readers
    and the next run de-duplicate; no row is ever only in a file that was not made durable.
    Takes an engine because it commits as it goes, keeping each write lock short.
    """
    if older_than_days < 0:
        raise ValueError("older_than_days must not be negative")
    cutoff = to_ms(now) - older_than_days * DAY_MS
    report = CompactionReport()
    c = readings_table.c
    with coldstore.locked(cold_dir):
        coldstore.remove_stale_temp_files(cold_dir)
        with engine.connect() as connection:
            sensor_ids = list(sensors_with_readings(connection))
        for sensor_id in sensor_ids:
            start = -(2**62)  # any epoch-ms timestamp, even before 1970
            while True:
                with engine.connect() as connection:
                    first = connection.execute(
                        select(func.min(c.ts)).where(
                            c.sensor_id == sensor_id, c.ts >= start, c.ts < cutoff
                        )
                    ).scalar()
                if first is None:
                    break
                month = coldstore.month_of(first)
                low, high = coldstore.month_bounds(month)
                stop = min(high, cutoff)
                with engine.begin() as connection:
                    _compact_month(connection, cold_dir, sensor_id, month, low, stop, report)
                start = stop
    report.partitions_emptied = _truncate_compacted_partitions(engine, cutoff)
    return report


def _truncate_compacted_partitions(engine: Engine, cutoff_ms: int) -> int:
    # A past month gets no new rows, so VACUUM alone would leave its primary-key index at full
    # size until retention drops the partition. TRUNCATE gives the space back; the exclusive
    # lock and the emptiness check in the same transaction make sure that a late reading
    # written meanwhile is never thrown away.
    if engine.dialect.name != "postgresql":
        return 0
    emptied = 0
    with engine.connect() as connection:
        months = [m for m in partitions(connection) if coldstore.month_bounds(m)[1] <= cutoff_ms]
    for month in months:
        name = partition_name(month)
        with engine.begin() as connection:
            connection.exec_driver_sql(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
            if connection.exec_driver_sql(f"SELECT 1 FROM {name} LIMIT 1").first() is None:  # noqa: S608 - our own name
                size = connection.exec_driver_sql(
                    f"SELECT pg_total_relation_size('{name}')"
                ).scalar_one()
                if size > _EMPTY_PARTITION_BYTES:
                    connection.exec_driver_sql(f"TRUNCATE {name}")
                    emptied += 1
    return emptied


# An empty partition with its two indexes takes 56-72 KiB (B-tree metapage, BRIN pages and
# free-space maps); anything bigger is worth truncating.
_EMPTY_PARTITION_BYTES = 128 * 1024


def _compact_month(
    connection: Connection,
    cold_dir: Path,
    sensor_id: int,
    month: str,
    low: int,
    stop: int,
    report: CompactionReport,
) -> None:
    c = readings_table.c
    chunks = []
    # A day at a time keeps Python objects few; the month is held as compact Arrow columns.
    for day_start in range(low, stop, DAY_MS):
        rows = connection.execute(
            delete(readings_table)
            .where(
                c.sensor_id == sensor_id,
                c.ts >= day_start,
                c.ts < min(day_start + DAY_MS, stop),
            )
            .returning(c.ts, c.value, c.quality)
        ).all()
        if rows:
            ts, values, quality = zip(*rows, strict=True)
            chunks.append(
                pa.table(
                    [
                        pa.array(ts, pa.int64()),
                        pa.array(values, pa.float64()),
                        pa.array(quality, pa.int8()),
                    ],
                    schema=coldstore.READ_SCHEMA,
                )
            )
    if not chunks:
        return
    moved = pa.concat_tables(chunks)
    result = coldstore.merge_month(cold_dir, sensor_id, month, moved)
    duplicates = [
        (sensor_id, ts, value) for ts, value, _quality in coldstore.to_rows(result.duplicates)
    ]
    # The rows are durable in the file now; the transaction commits the deletion after this.
    subtract_duplicates(connection, duplicates)
    report.rows += moved.num_rows - len(duplicates)
    report.duplicates += len(duplicates)
    report.files_written += 1
    report.bytes_written += result.size


def maintain_timeseries(engine: Engine, settings: Settings, now: dt.datetime) -> str:
    """One pass of time-series housekeeping: partitions ahead, compaction, retention."""
    with engine.begin() as connection:
        prepare_partitions(connection, now)
    compacted = compact_to_parquet(
        engine, settings.cold_dir, older_than_days=settings.compact_after_days, now=now
    )
    policy = RetentionPolicy(
        raw_days=settings.retention_raw_days,
        minute_days=settings.retention_1m_days,
        hour_days=settings.retention_1h_days,
    )
    with engine.begin() as connection:
        removed = apply_retention(connection, policy, now, cold_dir=settings.cold_dir)
    return (
        f"compacted {compacted.rows} readings into {compacted.files_written} files; "
        f"removed {removed.raw_rows} raw, {removed.minute_rows} 1m, {removed.hour_rows} 1h rows"
    )
