"""Time-series storage on both backends: duplicates, rollups, partitions, queries, CSV, the
cold tier and retention."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select, text

from maintainpro.iot import coldstore
from maintainpro.iot.retention import RetentionPolicy, apply_retention, compact_to_parquet
from maintainpro.iot.rollups import HOUR_MS, ROLLUPS, hour_rollups, minute_rollups
from maintainpro.iot.timeseries import (
    Bucket,
    ReadingRow,
    Series,
    ensure_partitions,
    export_csv,
    from_ms,
    latest_values,
    partitions,
    prepare_partitions,
    query_readings,
    readings_table,
    to_ms,
    write_readings,
)

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
T0_MS = to_ms(T0)


def write(engine: Engine, rows: Sequence[ReadingRow], batch: int = 5000) -> int:
    """Write rows in batches, one transaction each, as the ingest pipeline does."""
    added = 0
    for offset in range(0, len(rows), batch):
        with engine.begin() as connection:
            added += write_readings(connection, rows[offset : offset + batch])
    return added


def stored(engine: Engine) -> dict[tuple[int, int], float]:
    """Every stored reading: (sensor, ts) -> value."""
    with engine.connect() as connection:
        c = readings_table.c
        return {(s, ts): v for s, ts, v in connection.execute(select(c.sensor_id, c.ts, c.value))}


def rollup_rows(engine: Engine, name: str) -> dict[tuple[int, int], tuple[object, ...]]:
    """A rollup table as (sensor, bucket) -> (count, sum, min, max, last_ts, last_value)."""
    table = ROLLUPS[name][1]
    c = table.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                c.sensor_id,
                c.bucket,
                c.reading_count,
                c.value_sum,
                c.value_min,
                c.value_max,
                c.last_ts,
                c.last_value,
            )
        )
        return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def brute_rollups(
    readings: dict[tuple[int, int], float], width: int
) -> dict[tuple[int, int], tuple[object, ...]]:
    """The rollups computed from scratch."""
    groups: dict[tuple[int, int], list[tuple[int, float]]] = defaultdict(list)
    for (sensor, ts), value in readings.items():
        groups[(sensor, ts - ts % width)].append((ts, value))
    result = {}
    for key, items in groups.items():
        values = [v for _, v in items]
        last_ts, last_value = max(items)
        result[key] = (len(items), math.fsum(values), min(values), max(values), last_ts, last_value)
    return result


def assert_rollups_match(engine: Engine, readings: dict[tuple[int, int], float]) -> None:
    """Rollup tables equal a brute-force computation over the stored readings."""
    for name, (width, _) in ROLLUPS.items():
        actual = rollup_rows(engine, name)
        expected = brute_rollups(readings, width)
        assert actual.keys() == expected.keys(), name
        for key, want in expected.items():
            got = actual[key]
            assert got[0] == want[0], (name, key)
            assert math.isclose(got[1], want[1], rel_tol=1e-9, abs_tol=1e-6), (name, key)  # type: ignore[arg-type]
            assert got[2:] == want[2:], (name, key)


def clear(engine: Engine) -> None:
    """Empty the time-series tables (for tests running several examples)."""
    with engine.begin() as connection:
        for table in (readings_table, minute_rollups, hour_rollups):
            connection.execute(delete(table))


def series_rows(
    sensor: int, start_ms: int, count: int, step_ms: int, base: float = 20.0
) -> list[ReadingRow]:
    """A regular series with a deterministic, wiggly value quantised to 0.01."""
    return [
        ReadingRow(
            sensor, start_ms + i * step_ms, round(base + math.sin(i / 50) + (i % 7) / 100, 2), 0
        )
        for i in range(count)
    ]


# --------------------------------------------------------------------------- writes, rollups


def test_duplicates_are_stored_once_and_counted_once(engine: Engine) -> None:
    rows = [ReadingRow(1, T0_MS + i * 1000, float(i), 0) for i in range(10)]
    assert write(engine, rows) == 10
    # Redelivery: part of the old batch again, with one new reading and a repeat inside it.
    again = [
        *rows[:4],
        ReadingRow(1, T0_MS + 10_000, 10.0, 0),
        ReadingRow(1, T0_MS + 10_000, 99.0, 2),
    ]
    assert write(engine, again) == 1
    readings = stored(engine)
    assert len(readings) == 11
    assert readings[(1, T0_MS + 10_000)] == 10.0
    assert_rollups_match(engine, readings)
    minute = rollup_rows(engine, "1m")[(1, T0_MS)]
    assert minute[0] == 11
    assert minute[4:] == (T0_MS + 10_000, 10.0)


def test_empty_batch_writes_nothing(engine: Engine) -> None:
    with engine.begin() as connection:
        assert write_readings(connection, []) == 0
    assert stored(engine) == {}


reading_strategy = st.tuples(
    st.integers(min_value=1, max_value=3),
    # About three hours around T0, in whole seconds so that duplicates are frequent.
    st.integers(min_value=-3600, max_value=2 * 3600).map(lambda s: T0_MS + s * 1000),
    st.integers(min_value=-10_000, max_value=10_000).map(lambda n: n / 100),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=st.lists(st.lists(reading_strategy, max_size=40), min_size=1, max_size=6))
def test_rollups_match_brute_force(
    engine: Engine, batches: list[list[tuple[int, int, float]]]
) -> None:
    clear(engine)
    expected: dict[tuple[int, int], float] = {}
    for batch in batches:
        added = write(engine, [ReadingRow(s, ts, v, 0) for s, ts, v in batch])
        fresh = 0
        for s, ts, v in batch:
            if (s, ts) not in expected:
                expected[(s, ts)] = v  # the first copy wins, later ones are duplicates
                fresh += 1
        assert added == fresh
    assert stored(engine) == expected
    assert_rollups_match(engine, expected)


# --------------------------------------------------------------------------- partitions


def _partition_of(engine: Engine, sensor: int, ts: int) -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(
                text(
                    "SELECT tableoid::regclass::text FROM sensor_readings "
                    "WHERE sensor_id = :s AND ts = :ts"
                ),
                {"s": sensor, "ts": ts},
            ).scalar_one()
        )


def test_partitions_are_created_for_old_and_future_months(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("range partitions exist on PostgreSQL only")
    old = to_ms(dt.datetime(2001, 3, 15, tzinfo=dt.UTC))
    future = to_ms(dt.datetime.now(dt.UTC) + dt.timedelta(days=5 * 366))
    rows = [ReadingRow(1, old, 1.0, 0), ReadingRow(1, future, 2.0, 0), ReadingRow(2, old, 3.0, 0)]
    assert write(engine, rows) == 3
    assert _partition_of(engine, 1, old) == "sensor_readings_p200103"
    future_month = from_ms(future).strftime("%Y%m")
    assert _partition_of(engine, 1, future) == f"sensor_readings_p{future_month}"
    with engine.connect() as connection:
        assert "2001-03" in partitions(connection)
    assert_rollups_match(engine, stored(engine))


def test_rows_in_the_default_partition_move_into_a_new_month(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("range partitions exist on PostgreSQL only")
    stray = to_ms(dt.datetime(1999, 7, 4, tzinfo=dt.UTC))
    with engine.begin() as connection:
        # Written around the API, as a manual import might: it lands in DEFAULT.
        connection.execute(
            text(
                "INSERT INTO sensor_readings (sensor_id, ts, value, quality) VALUES (5, :ts, 1, 0)"
            ),
            {"ts": stray},
        )
    assert _partition_of(engine, 5, stray) == "sensor_readings_default"
    assert write(engine, [ReadingRow(5, stray + 1000, 2.0, 0), ReadingRow(5, stray, 9.0, 0)]) == 1
    assert _partition_of(engine, 5, stray) == "sensor_readings_p199907"
    assert _partition_of(engine, 5, stray + 1000) == "sensor_readings_p199907"


def test_concurrent_writers_create_a_new_month_once(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("range partitions exist on PostgreSQL only")
    month_start = to_ms(dt.datetime(1998, 2, 1, tzinfo=dt.UTC))
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer(sensor: int) -> None:
        try:
            barrier.wait()
            write(engine, series_rows(sensor, month_start, 50, 1000))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(stored(engine)) == 200
    assert _partition_of(engine, 4, month_start) == "sensor_readings_p199802"


def test_partitions_are_prepared_ahead(engine: Engine) -> None:
    with engine.begin() as connection:
        made = prepare_partitions(connection, dt.datetime(2041, 12, 20, tzinfo=dt.UTC), 2)
        again = ensure_partitions(connection, ["2042-01"])
        known = partitions(connection)
    if engine.dialect.name == "postgresql":
        assert made == [
            "sensor_readings_p204112",
            "sensor_readings_p204201",
            "sensor_readings_p204202",
        ]
        assert again == []
        assert {"2041-12", "2042-01", "2042-02"} <= set(known)
    else:
        assert made == again == known == []


# --------------------------------------------------------------------------- queries


def _query(engine: Engine, sensor: int, start: dt.datetime, end: dt.datetime, n: int) -> Series:
    with engine.connect() as connection:
        return query_readings(connection, sensor, start, end, n)


def _assert_buckets_exact(
    series: Series, readings: dict[tuple[int, int], float], sensor: int
) -> None:
    assert series.bucket is not None
    width = int(series.bucket.total_seconds() * 1000)
    groups: dict[int, list[float]] = defaultdict(list)
    lo = to_ms(series.buckets[0].start) if series.buckets else 0
    hi = to_ms(series.buckets[-1].start) + width if series.buckets else 0
    for (s, ts), v in readings.items():
        if s == sensor and lo <= ts < hi:
            groups[ts - ts % width].append(v)
    expected = [
        Bucket(from_ms(b), min(vs), max(vs), math.fsum(vs) / len(vs), len(vs))
        for b, vs in sorted(groups.items())
    ]
    assert [(b.start, b.min, b.max, b.count) for b in series.buckets] == [
        (b.start, b.min, b.max, b.count) for b in expected
    ]
    for got, want in zip(series.buckets, expected, strict=True):
        assert math.isclose(got.avg, want.avg, rel_tol=1e-9)


def test_small_ranges_return_raw_points(engine: Engine) -> None:
    rows = series_rows(1, T0_MS, 100, 1000) + series_rows(2, T0_MS, 100, 1000, base=5)
    write(engine, rows)
    series = _query(engine, 1, T0, T0 + dt.timedelta(seconds=50), 2000)
    assert series.resolution == "raw"
    assert series.bucket is None
    assert len(series) == 50
    assert [p.ts for p in series.points] == [T0 + dt.timedelta(seconds=i) for i in range(50)]
    assert [p.value for p in series.points] == [r.value for r in rows[:50]]
    # Exactly max_points still fits.
    assert _query(engine, 1, T0, T0 + dt.timedelta(seconds=100), 100).resolution == "raw"


def test_downsampling_picks_the_finest_resolution_that_fits(engine: Engine) -> None:
    # One reading every 10 s for three days, starting mid-hour.
    start = T0 + dt.timedelta(minutes=17, seconds=3)
    rows = series_rows(7, to_ms(start), 3 * 8640, 10_000)
    write(engine, rows)
    readings = {(r.sensor_id, r.ts): r.value for r in rows}
    end = start + dt.timedelta(days=3)

    cases = [
        # (range, max_points, expected resolution, expected bucket width)
        (dt.timedelta(hours=2), 500, "raw-buckets", dt.timedelta(seconds=15)),
        (dt.timedelta(hours=6), 200, "1m", dt.timedelta(minutes=2)),
        (dt.timedelta(days=3), 2000, "1m", dt.timedelta(minutes=5)),
        (dt.timedelta(days=3), 100, "1h", dt.timedelta(hours=1)),
        (dt.timedelta(days=3), 10, "1h", dt.timedelta(hours=12)),
        (dt.timedelta(days=3), 1, "1h", None),  # a week or two, as the weeks fall
    ]
    for span, max_points, resolution, width in cases:
        series = _query(engine, 7, start, start + span, max_points)
        assert series.resolution == resolution, (span, max_points)
        assert width is None or series.bucket == width, (span, max_points)
        assert 0 < len(series) <= max_points
        _assert_buckets_exact(series, readings, 7)
    assert sum(b.count for b in _query(engine, 7, start, end, 1).buckets) == len(rows)


def test_rollups_thinned_by_retention_fall_back_to_a_coarser_tier(engine: Engine) -> None:
    rows = series_rows(3, T0_MS, 3 * 360, 10_000)  # three hours at 0.1 Hz
    write(engine, rows)
    with engine.begin() as connection:
        connection.execute(delete(readings_table).where(readings_table.c.ts < T0_MS + HOUR_MS))
        connection.execute(delete(minute_rollups).where(minute_rollups.c.bucket < T0_MS + HOUR_MS))
    series = _query(engine, 3, T0, T0 + dt.timedelta(hours=3), 100)
    assert series.resolution == "1h"
    assert [b.count for b in series.buckets] == [360, 360, 360]


def test_queries_refuse_naive_datetimes(engine: Engine) -> None:
    with engine.connect() as connection, pytest.raises(ValueError, match="naive"):
        query_readings(connection, 1, dt.datetime(2026, 1, 1), T0)


def test_latest_values(engine: Engine) -> None:
    write(engine, [*series_rows(1, T0_MS, 30, 1000), ReadingRow(2, T0_MS - 5000, 7.5, 1)])
    with engine.connect() as connection:
        latest = latest_values(connection, [2, 1, 99, 1])
    assert set(latest) == {1, 2}
    assert latest[1].ts == T0 + dt.timedelta(seconds=29)
    assert latest[2] == (T0 - dt.timedelta(seconds=5), 7.5, 1)
    with engine.connect() as connection:
        many = latest_values(connection, range(1, 250))
    assert set(many) == {1, 2}


def test_export_csv_streams_chunks(engine: Engine) -> None:
    write(engine, [*series_rows(1, T0_MS, 25, 1000), ReadingRow(2, T0_MS + 1, -1.5, 2)])
    with engine.connect() as connection:
        chunks = list(
            export_csv(connection, [2, 1], T0, T0 + dt.timedelta(seconds=20), chunk_rows=8)
        )
    assert len(chunks) > 1
    table = list(csv.reader(io.StringIO("".join(chunks))))
    assert table[0] == ["sensor_id", "timestamp", "value", "quality"]
    assert table[1] == ["2", "2026-11-27T10:00:00.001Z", "-1.5", "bad"]
    assert table[2][:2] == ["1", "2026-11-27T10:00:00.000Z"]
    assert len(table) == 1 + 1 + 20
    assert all(row[3] == "good" for row in table[2:])


# --------------------------------------------------------------------------- cold tier, retention

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
START = dt.datetime(2026, 8, 30, tzinfo=dt.UTC)  # three months and a bit before NOW
DENSE = dt.datetime(2026, 9, 10, 12, 0, 3, tzinfo=dt.UTC)


def _history(engine: Engine) -> list[ReadingRow]:
    # Two sensors, one reading every 10 minutes from START to NOW; one bad-quality reading.
    count = int((NOW - START).total_seconds() // 600)
    rows = series_rows(1, to_ms(START), count, 600_000) + series_rows(
        2, to_ms(START) + 5, count, 600_000, base=-3
    )
    rows[10] = rows[10]._replace(quality=2)
    # A dense stretch (1 Hz, 500 s, clear of the 10-minute points) so that queries bucket raw rows.
    rows += series_rows(1, to_ms(DENSE), 500, 1000, base=50)
    write(engine, rows)
    return rows


def _snapshot(engine: Engine, cold_dir: Path | None) -> dict[str, object]:
    """Everything the query API says about the data."""
    with engine.connect() as connection:
        return {
            "raw": [
                query_readings(connection, s, START, NOW, 100_000, cold_dir=cold_dir)
                for s in (1, 2)
            ],
            "edge": query_readings(
                connection,
                1,
                dt.datetime(2026, 9, 30, 23, tzinfo=dt.UTC),
                dt.datetime(2026, 10, 1, 1, tzinfo=dt.UTC),
                cold_dir=cold_dir,
            ),
            "buckets": [
                query_readings(connection, 1, START, NOW, n, cold_dir=cold_dir)
                for n in (5000, 300, 20)
            ],
            "latest": latest_values(connection, [1, 2], cold_dir=cold_dir),
            "csv": "".join(export_csv(connection, [2, 1], START, NOW, cold_dir=cold_dir)),
        }


def _dense(engine: Engine, cold_dir: Path | None) -> Series:
    with engine.connect() as connection:
        return query_readings(
            connection, 1, DENSE, DENSE + dt.timedelta(minutes=10), 100, cold_dir=cold_dir
        )


def test_compaction_round_trip(engine: Engine, tmp_path: Path) -> None:
    rows = _history(engine)
    before = _snapshot(engine, None)
    assert before["raw"][0].resolution == "raw"  # type: ignore[index]
    assert [s.resolution for s in before["buckets"]] == ["1m", "1h", "1h"]  # type: ignore[attr-defined]
    dense_before = _dense(engine, None)
    assert dense_before.resolution == "raw-buckets"
    rollups_before = rollup_rows(engine, "1m"), rollup_rows(engine, "1h")

    cold = tmp_path / "cold"
    report = compact_to_parquet(engine, cold, older_than_days=30, now=NOW)
    cutoff = to_ms(NOW) - 30 * 86_400_000
    moved = [r for r in rows if r.ts < cutoff]
    assert report.rows == len(moved)
    assert report.duplicates == 0
    assert report.files_written == 2 * 3  # Aug, Sep, Oct for each sensor
    with engine.connect() as connection:
        oldest_hot = connection.execute(select(func.min(readings_table.c.ts))).scalar_one()
    assert oldest_hot >= cutoff
    assert coldstore.months(cold, 1) == ["2026-08", "2026-09", "2026-10"]
    if engine.dialect.name == "postgresql":
        # August and September are wholly cold: their partitions give their space back.
        assert report.partitions_emptied >= 2
        with engine.connect() as connection:
            size = connection.execute(
                text("SELECT pg_total_relation_size('sensor_readings_p202609')")
            ).scalar_one()
        assert size <= 128 * 1024
    assert not [p for p in cold.rglob("*") if p.name.endswith(".tmp")]
    # The files stand on their own: sorted, typed, a sensor id in every row.
    table = pq.read_table(coldstore.month_path(cold, 1, "2026-09"))
    assert set(table["sensor_id"].to_pylist()) == {1}
    assert table["ts"].to_pylist() == sorted(table["ts"].to_pylist())

    assert _snapshot(engine, cold) == before
    assert (rollup_rows(engine, "1m"), rollup_rows(engine, "1h")) == rollups_before
    # Raw buckets of cold rows are computed in Arrow: the same buckets, sums may differ in ulps.
    dense_after = _dense(engine, cold)
    assert [(b.start, b.min, b.max, b.count) for b in dense_after.buckets] == [
        (b.start, b.min, b.max, b.count) for b in dense_before.buckets
    ]
    for got, want in zip(dense_after.buckets, dense_before.buckets, strict=True):
        assert math.isclose(got.avg, want.avg, rel_tol=1e-12)

    # Running again moves nothing; a later run moves the next days and merges into October.
    assert compact_to_parquet(engine, cold, older_than_days=30, now=NOW).rows == 0
    later = compact_to_parquet(engine, cold, older_than_days=20, now=NOW)
    assert later.rows == len([r for r in rows if cutoff <= r.ts < cutoff + 10 * 86_400_000])
    assert _snapshot(engine, cold) == before


def test_redelivered_compacted_readings_are_not_counted_twice(
    engine: Engine, tmp_path: Path
) -> None:
    rows = series_rows(1, to_ms(START), 500, 60_000)
    write(engine, rows)
    truth = stored(engine)
    cold = tmp_path / "cold"
    compact_to_parquet(engine, cold, older_than_days=1, now=NOW)
    # The hot table no longer has them, so a redelivery is inserted (and counted) again ...
    assert write(engine, rows[100:150]) == 50
    # ... until the next compaction finds them in the file and takes them out of the rollups.
    report = compact_to_parquet(engine, cold, older_than_days=1, now=NOW)
    assert report.duplicates == 50
    assert report.rows == 0
    assert stored(engine) == {}
    assert_rollups_match(engine, truth)


def test_a_failed_file_write_changes_nothing(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = series_rows(1, to_ms(START), 200, 60_000)
    write(engine, rows)
    cold = tmp_path / "cold"

    def broken(table: pa.Table, where: Path, **kwargs: object) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(coldstore.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        compact_to_parquet(engine, cold, older_than_days=1, now=NOW)
    monkeypatch.undo()
    # No file, no temp file, and the rows are still in the hot table.
    assert [p.name for p in cold.rglob("*") if p.is_file()] == [".lock"]
    assert len(stored(engine)) == 200
    # A stale temp file from a crash is ignored by readers and removed by the next run.
    stale = coldstore.sensor_dir(cold, 1) / ".2026-08.parquet.dead.tmp"
    stale.write_bytes(b"junk")
    assert compact_to_parquet(engine, cold, older_than_days=1, now=NOW).rows == 200
    assert not stale.exists()
    assert coldstore.months(cold, 1) == ["2026-08"]


def test_cold_files_are_small_and_exact(tmp_path: Path) -> None:
    ts = [1_700_000_000_000 + i * 1000 for i in range(50_000)]
    values = [round(20 + math.sin(i / 500) + ((i * 7919) % 11 - 5) / 100, 2) for i in range(50_000)]
    rows = pa.table(
        [pa.array(ts, pa.int64()), pa.array(values), pa.array([0] * len(ts), pa.int8())],
        schema=coldstore.READ_SCHEMA,
    )
    path = tmp_path / "x.parquet"
    size = coldstore.write_atomically(path, 9, rows)
    assert size / len(ts) < 2.0
    assert coldstore.read_month(path)["value"].to_pylist() == values
    # Values that are not short decimals fall back to float64 and still round-trip exactly.
    odd = rows.set_column(1, "value", pa.array([v / 3 for v in values]))
    coldstore.write_atomically(path, 9, odd)
    assert coldstore.read_month(path)["value"].to_pylist() == [v / 3 for v in values]
    assert coldstore.decimal_scale(pa.array([1.5, float("nan")])) is None
    assert coldstore.decimal_scale(pa.array([1.25, -3.0])) == 2


def test_retention_per_resolution(engine: Engine, tmp_path: Path) -> None:
    rows = _history(engine)
    cold = tmp_path / "cold"
    compact_to_parquet(engine, cold, older_than_days=60, now=NOW)
    policy = RetentionPolicy(raw_days=75, minute_days=40, hour_days=80)
    with engine.begin() as connection:
        report = apply_retention(connection, policy, NOW, cold_dir=cold)
    day = 86_400_000
    now_ms = to_ms(NOW)
    raw_cutoff = now_ms - 75 * day
    kept = {(r.sensor_id, r.ts): r.value for r in rows if r.ts >= raw_cutoff}
    assert report.raw_rows + report.cold_rows == len(rows) - len(kept)
    assert report.cold_files == 2  # August for both sensors
    assert coldstore.months(cold, 1) == ["2026-09"]
    with engine.connect() as connection:
        series = query_readings(connection, 1, START, NOW, 100_000, cold_dir=cold)
        minutes = connection.execute(select(func.min(minute_rollups.c.bucket))).scalar_one()
        hours = connection.execute(select(func.min(hour_rollups.c.bucket))).scalar_one()
        months = partitions(connection)
    assert [to_ms(p.ts) for p in series.points] == sorted(t for s, t in kept if s == 1)
    assert minutes >= now_ms - 40 * day - 60_000
    assert minutes < now_ms - 40 * day + 600_000
    assert hours >= now_ms - 80 * day - 3_600_000
    assert hours < now_ms - 80 * day + 3_600_000
    if engine.dialect.name == "postgresql":
        # August lies wholly beyond raw retention: its (emptied) partition is dropped.
        assert "2026-08" not in months
    # Nothing older than a resolution's period survives; everything younger does.
    with engine.begin() as connection:
        again = apply_retention(connection, policy, NOW, cold_dir=cold)
    assert (again.raw_rows, again.cold_rows, again.minute_rows, again.hour_rows) == (0, 0, 0, 0)


def test_retention_drops_whole_partitions(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("partitions exist on PostgreSQL only")
    old = to_ms(dt.datetime(2003, 5, 2, tzinfo=dt.UTC))
    write(engine, [ReadingRow(1, old, 1.0, 0), ReadingRow(1, to_ms(NOW), 2.0, 0)])
    with engine.begin() as connection:
        assert "2003-05" in partitions(connection)
        report = apply_retention(connection, RetentionPolicy(raw_days=365), NOW)
        assert "2003-05" not in partitions(connection)
    assert report.raw_partitions >= 1
    assert set(stored(engine)) == {(1, to_ms(NOW))}


def test_retention_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="raw_days"):
        RetentionPolicy(raw_days=0)


def test_cold_store_lock_file_is_plain(tmp_path: Path) -> None:
    with coldstore.locked(tmp_path / "c"):
        assert (tmp_path / "c" / ".lock").exists()
    assert os.listdir(tmp_path / "c") == [".lock"]


def test_housekeeping_pass_compacts_and_keeps_data_queryable(
    engine: Engine, tmp_path: Path
) -> None:
    from maintainpro.config import Settings
    from maintainpro.iot.retention import maintain_timeseries

    now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    old = now - dt.timedelta(days=60)
    sensor = 7
    rows = [
        ReadingRow(sensor, to_ms(old + dt.timedelta(seconds=i)), float(i), 0) for i in range(500)
    ]
    with engine.begin() as connection:
        write_readings(connection, rows)
    settings = Settings(cold_dir=tmp_path / "cold", compact_after_days=30)
    summary = maintain_timeseries(engine, settings, now)
    assert summary.startswith("compacted 500 readings into 1 files")
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(readings_table)) == 0
        series = query_readings(
            connection, sensor, old, old + dt.timedelta(hours=1), cold_dir=settings.cold_dir
        )
    assert [p.value for p in series.points] == [float(i) for i in range(500)]
