"""The cold tier: raw readings in Parquet files, one per sensor and month, written atomically.

Layout: ``<root>/sensor_id=<id>/<YYYY-MM>.parquet``, rows sorted by time. This module only
handles files; moving rows out of the database is ``retention.compact_to_parquet``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SCALE_KEY: Final = b"maintainpro.value_scale"
# Largest integer a float64 holds exactly; scaled values beyond it would not round-trip.
_EXACT_INT: Final = 2**53
_MAX_SCALE: Final = 6
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

COLUMNS: Final = ("ts", "value", "quality")
READ_SCHEMA: Final = pa.schema(
    [("ts", pa.int64()), ("value", pa.float64()), ("quality", pa.int8())]
)


class MergeResult(NamedTuple):
    """What merging new rows into a month file did."""

    path: Path
    rows: int
    duplicates: pa.Table
    size: int


def month_of(ts_ms: int) -> str:
    """The month key ("YYYY-MM") of an epoch-millisecond timestamp."""
    moment = _EPOCH + dt.timedelta(milliseconds=ts_ms)
    return f"{moment.year:04d}-{moment.month:02d}"


def month_bounds(key: str) -> tuple[int, int]:
    """First millisecond of a month and of the next one."""
    year, month = (int(part) for part in key.split("-"))
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    return _ms(start), _ms(end)


def _ms(moment: dt.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def sensor_dir(root: Path, sensor_id: int) -> Path:
    """The directory holding one sensor's month files."""
    return root / f"sensor_id={sensor_id}"


def month_path(root: Path, sensor_id: int, key: str) -> Path:
    """The file of one sensor and month."""
    return sensor_dir(root, sensor_id) / f"{key}.parquet"


def months(root: Path, sensor_id: int) -> list[str]:
    """Month keys with a cold file for a sensor, oldest first."""
    directory = sensor_dir(root, sensor_id)
    if not directory.is_dir():
        return []
    # Temporary files start with a dot and are never read.
    return sorted(
        p.name.removesuffix(".parquet")
        for p in directory.iterdir()
        if p.name.endswith(".parquet") and not p.name.startswith(".")
    )


def sensors(root: Path) -> list[int]:
    """Sensors with a cold directory."""
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        prefix, _, number = entry.name.partition("=")
        if prefix == "sensor_id" and number.isdigit() and entry.is_dir():
            found.append(int(number))
    return sorted(found)


def read_month(path: Path, start_ms: int | None = None, end_ms: int | None = None) -> pa.Table:
    """Rows of one file (optionally only start <= ts < end) as ts, value (float64), quality."""
    filters: list[tuple[str, str, int]] = []
    if start_ms is not None:
        filters.append(("ts", ">=", start_ms))
    if end_ms is not None:
        filters.append(("ts", "<", end_ms))
    table = pq.read_table(path, columns=list(COLUMNS), filters=filters or None)
    return _decode(table)


def read_range(root: Path, sensor_id: int, start_ms: int, end_ms: int) -> pa.Table:
    """A sensor's cold rows with start <= ts < end, sorted by time."""
    parts = [
        read_month(month_path(root, sensor_id, key), start_ms, end_ms)
        for key in months(root, sensor_id)
        if _overlaps(key, start_ms, end_ms)
    ]
    if not parts:
        return READ_SCHEMA.empty_table()
    return pa.concat_tables(parts)


def _overlaps(key: str, start_ms: int, end_ms: int) -> bool:
    low, high = month_bounds(key)
    return low < end_ms and start_ms < high


def oldest_ts(root: Path, sensor_id: int) -> int | None:
    """The earliest cold timestamp of a sensor, from the oldest file's footer statistics."""
    keys = months(root, sensor_id)
    if not keys:
        return None
    metadata = pq.ParquetFile(month_path(root, sensor_id, keys[0])).metadata
    if metadata.num_rows == 0:
        return None
    # Rows are sorted by time, so the first row group's minimum is the file's.
    column = metadata.schema.to_arrow_schema().get_field_index("ts")
    statistics = metadata.row_group(0).column(column).statistics
    if statistics is not None and statistics.has_min_max:
        return int(statistics.min)
    table = read_month(month_path(root, sensor_id, keys[0]))
    return int(pc.min(table["ts"]).as_py())


def _decode(table: pa.Table) -> pa.Table:
    metadata = table.schema.metadata or {}
    value = table["value"]
    if SCALE_KEY in metadata:
        scale = 10.0 ** int(metadata[SCALE_KEY])
        # Division (not multiplication by 10**-k) reproduces the exact float that was checked
        # when the file was written.
        value = pc.divide(pc.cast(value, pa.float64()), scale)
    return pa.table([table["ts"], value, pc.cast(table["quality"], pa.int8())], schema=READ_SCHEMA)


def decimal_scale(values: pa.Array | pa.ChunkedArray) -> int | None:
    """The smallest k such that every value is exactly n / 10**k for an integer n, if any.

    Sensors report at a fixed resolution (0.01 °C, 0.1 bar): stored as scaled integers with
    delta encoding their values take well under a byte each, against 4-8 bytes as floats.
    """
    if len(values) == 0:
        return 0
    for k in range(_MAX_SCALE + 1):
        factor = 10.0**k
        scaled = pc.round(pc.multiply(values, factor))
        largest = pc.max(pc.abs(scaled)).as_py()
        if largest is None or largest >= _EXACT_INT:
            return None
        if pc.all(pc.equal(pc.divide(scaled, factor), values)).as_py():
            return k
    return None


def encode(sensor_id: int, rows: pa.Table) -> tuple[pa.Table, dict[str, str]]:
    """The table as written (scaled-integer values where exact) and its column encodings."""
    value = rows["value"]
    scale = decimal_scale(value)
    metadata: dict[bytes, bytes] = {}
    if scale is None:
        encoding = "BYTE_STREAM_SPLIT"
    else:
        value = pc.cast(pc.round(pc.multiply(value, 10.0**scale)), pa.int64())
        metadata[SCALE_KEY] = str(scale).encode()
        encoding = "DELTA_BINARY_PACKED"
    table = pa.table(
        {
            # The sensor id is constant per file (dictionary-encoded to a few bytes) but
            # keeps every file self-describing when copied elsewhere.
            "sensor_id": pa.array([sensor_id] * rows.num_rows, pa.int32()),
            "ts": rows["ts"],
            "value": value,
            "quality": pc.cast(rows["quality"], pa.int8()),
        }
    ).replace_schema_metadata(metadata)
    return table, {"ts": "DELTA_BINARY_PACKED", "value": encoding}


def write_atomically(path: Path, sensor_id: int, rows: pa.Table) -> int:
    """Write rows (sorted by ts) to path: temp file, fsync, rename, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table, encodings = encode(sensor_id, rows)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(
            table,
            temp,
            compression="zstd",
            compression_level=9,
            use_dictionary=["sensor_id", "quality"],
            column_encoding=encodings,
            write_statistics=True,
        )
        _fsync_file(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    _fsync_dir(path.parent.parent)
    return path.stat().st_size


def merge_month(root: Path, sensor_id: int, key: str, new_rows: pa.Table) -> MergeResult:
    """Merge rows into a sensor's month file; rows whose ts is already there are dropped.

    The dropped rows are returned: they had been counted in the rollups a second time.
    """
    path = month_path(root, sensor_id, key)
    tagged_new = new_rows.append_column("origin", pa.array([1] * new_rows.num_rows, pa.int8()))
    if path.exists():
        existing = read_month(path)
        tagged_old = existing.append_column("origin", pa.array([0] * existing.num_rows, pa.int8()))
        combined = pa.concat_tables([tagged_old, tagged_new])
    else:
        combined = tagged_new
    combined = combined.sort_by([("ts", "ascending"), ("origin", "ascending")])
    repeated = _repeated_ts(combined["ts"])
    duplicates = combined.filter(repeated).select(list(COLUMNS))
    kept = combined.filter(pc.invert(repeated)).select(list(COLUMNS))
    size = write_atomically(path, sensor_id, kept)
    return MergeResult(path, kept.num_rows, duplicates, size)


def _repeated_ts(ts: pa.ChunkedArray) -> pa.Array:
    # After sorting by (ts, origin) a row repeating its predecessor's ts is the newer copy.
    flat = ts.combine_chunks()
    if len(flat) < 2:
        return pa.array([False] * len(flat))
    same = pc.equal(flat.slice(1), flat.slice(0, len(flat) - 1))
    return pa.concat_arrays([pa.array([False]), same])


def rewrite_from(root: Path, sensor_id: int, key: str, cutoff_ms: int) -> int:
    """Drop rows older than cutoff from a month file (the file goes when nothing is left).

    Returns the number of rows removed.
    """
    path = month_path(root, sensor_id, key)
    table = read_month(path)
    kept = table.filter(pc.greater_equal(table["ts"], cutoff_ms))
    if kept.num_rows == 0:
        remove(path)
    elif kept.num_rows < table.num_rows:
        write_atomically(path, sensor_id, kept)
    return int(table.num_rows - kept.num_rows)


def remove(path: Path) -> None:
    """Delete a cold file durably."""
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def remove_stale_temp_files(root: Path) -> int:
    """Delete temp files left by a crash (call only while holding the cold-store lock)."""
    removed = 0
    for sensor in sensors(root):
        for entry in sensor_dir(root, sensor).iterdir():
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)
                removed += 1
    return removed


def file_count_and_size(root: Path) -> tuple[int, int]:
    """Number of cold files and their total size in bytes."""
    count = size = 0
    for sensor in sensors(root):
        for key in months(root, sensor):
            count += 1
            size += month_path(root, sensor, key).stat().st_size
    return count, size


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the cold store's lock: one compaction or retention run changes files at a time."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # A rename or unlink is durable only once the directory entry itself is on disk.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def to_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Rows of a read table as (ts, value, quality) tuples."""
    columns = [table[name].to_pylist() for name in COLUMNS]
    return list(zip(*columns, strict=True))
