"""Bytes on disk per stored reading, hot (SQLite / PostgreSQL) and cold (Parquet).

Writes N sensors x M seconds of 1 Hz readings through ``write_readings`` in batches of 5000
(as the ingest pipeline does, rollups included), measures the hot size, compacts everything to
Parquet and measures the cold size. Not a test: run it by hand, e.g.

    .venv/bin/python bench/storage.py --backend sqlite
    .venv/bin/python bench/storage.py --backend postgresql --quick
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import platform
import random
import secrets
import shlex
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from maintainpro.core.db import build_engine
from maintainpro.iot.coldstore import file_count_and_size
from maintainpro.iot.retention import compact_to_parquet
from maintainpro.iot.timeseries import ReadingRow, to_ms, write_readings
from maintainpro.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "MAINTAINPRO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
BATCH = 5000

# Kinds of sensor: (resolution decimals, level, daily swing, noise sigma in resolution steps).
KINDS = (
    ("temperature", 2, 60.0, 4.0, 3.0),
    ("pressure", 3, 6.5, 0.4, 4.0),
    ("vibration", 2, 2.5, 0.8, 12.0),
    ("flow", 1, 120.0, 15.0, 5.0),
    ("current", 2, 35.0, 6.0, 6.0),
)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(),
    }


def print_header(title: str) -> None:
    """Print the benchmark, the exact command and the machine."""
    print(f"# {title}")
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    for key, value in machine().items():
        print(f"{key}: {value}")


@contextlib.contextmanager
def database(backend: str, workdir: Path) -> Iterator[Engine]:
    """A freshly migrated database of the backend, removed afterwards."""
    if backend == "sqlite":
        path = workdir / "bench.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        engine = build_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    name = f"maintainpro_bench_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        engine = build_engine(url)
        with engine.connect() as connection:
            print("postgresql:", connection.execute(text("SHOW server_version")).scalar())
        try:
            yield engine
        finally:
            engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def signal(sensor: int, seconds: int, start_s: int = 0) -> Iterator[float]:
    """A realistic 1 Hz signal: level, daily cycle, slow random walk, noise, quantised."""
    _, decimals, level, swing, sigma = KINDS[sensor % len(KINDS)]
    rng = random.Random(sensor)
    step = 10.0**-decimals
    phase = rng.uniform(0, 2 * math.pi)
    walk = 0.0
    for second in range(start_s, start_s + seconds):
        walk += rng.gauss(0, step * 0.2)
        raw = level + swing * math.sin(2 * math.pi * second / 86_400 + phase) + walk
        yield round(raw + rng.gauss(0, sigma * step), decimals)


def readings(sensors: int, seconds: int, start_ms: int) -> Iterator[list[ReadingRow]]:
    """Batches of readings in arrival order (every sensor once a second)."""
    streams = [signal(s, seconds) for s in range(1, sensors + 1)]
    batch: list[ReadingRow] = []
    for second in range(seconds):
        ts = start_ms + second * 1000
        for index, stream in enumerate(streams):
            batch.append(ReadingRow(index + 1, ts, next(stream), 0))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def load(engine: Engine, batches: Iterator[list[ReadingRow]]) -> tuple[int, float]:
    """Write every batch in its own transaction; returns rows written and seconds taken."""
    total = 0
    started = time.perf_counter()
    for batch in batches:
        with engine.begin() as connection:
            total += write_readings(connection, batch)
    return total, time.perf_counter() - started


def hot_sizes(engine: Engine) -> dict[str, int]:
    """Bytes on disk of the readings and of the rollups (after VACUUM)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        raw = engine.raw_connection()
        try:
            raw.execute("VACUUM")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            sizes = {"file": Path(str(engine.url.database)).stat().st_size}
            with contextlib.suppress(sqlite3.Error):
                for name, size in raw.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
                    if name.startswith("sensor_"):
                        sizes[name] = size
        finally:
            raw.close()
        return sizes
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
        rows = connection.execute(
            text(
                "SELECT 'sensor_readings', coalesce(sum(pg_total_relation_size(relid)), 0) "
                "FROM pg_partition_tree('sensor_readings') "
                "UNION ALL SELECT 'sensor_rollups_1m', pg_total_relation_size('sensor_rollups_1m') "
                "UNION ALL SELECT 'sensor_rollups_1h', pg_total_relation_size('sensor_rollups_1h') "
                "UNION ALL SELECT 'sensor_readings heap', "
                "coalesce(sum(pg_relation_size(relid)), 0) "
                "FROM pg_partition_tree('sensor_readings') WHERE isleaf "
                "UNION ALL SELECT 'sensor_readings indexes', "
                "coalesce(sum(pg_indexes_size(relid)), 0) "
                "FROM pg_partition_tree('sensor_readings') WHERE isleaf "
                "UNION ALL SELECT 'database', pg_database_size(current_database())"
            )
        )
        return {name: int(size) for name, size in rows}


def main() -> None:
    """Run the storage benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="20 sensors x 50,000 s (1 M)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.sensors = 20
    print_header("storage: bytes on disk per reading")
    total = args.sensors * args.seconds
    print(f"backend: {args.backend}; {args.sensors} sensors x {args.seconds} s at 1 Hz = {total:,}")
    with (
        tempfile.TemporaryDirectory(dir=args.workdir) as workdir,
        database(args.backend, Path(workdir)) as engine,
    ):
        start_ms = to_ms(START)
        written, seconds = load(engine, readings(args.sensors, args.seconds, start_ms))
        print(f"written: {written:,} readings in {seconds:.1f} s ({written / seconds:,.0f}/s)")
        sizes = hot_sizes(engine)
        for name, size in sizes.items():
            print(f"hot {name}: {size:,} B = {size / written:.2f} B/reading")
        cold = Path(workdir) / "cold"
        # Compact up to the first of the next month, as a monthly job would: the whole month
        # goes cold, and on PostgreSQL its emptied partition gives its space back.
        last = START + dt.timedelta(seconds=args.seconds)
        next_month = (last.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        now = next_month + dt.timedelta(days=1)
        started = time.perf_counter()
        report = compact_to_parquet(engine, cold, older_than_days=1, now=now)
        took = time.perf_counter() - started
        files, size = file_count_and_size(cold)
        print(
            f"compacted: {report.rows:,} readings in {took:.1f} s into {files} files; "
            f"{report.partitions_emptied} partitions emptied"
        )
        print(f"cold parquet: {size:,} B = {size / written:.3f} B/reading")
        after = hot_sizes(engine)
        print(f"hot after compaction: {after}")


if __name__ == "__main__":
    main()
