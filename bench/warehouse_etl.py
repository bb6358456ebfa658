"""Benchmark: warehouse ETL from scratch, then an incremental run after 1 % new data.

Run from the repository root::

    .venv/bin/python bench/warehouse_etl.py                # full scale: 10 M rows, 100 k WOs
    .venv/bin/python bench/warehouse_etl.py --scale 0.01   # a quick run
    .venv/bin/python bench/warehouse_etl.py --database-url postgresql+psycopg://.../empty_db
    .venv/bin/python bench/warehouse_etl.py --postgres postgresql+psycopg://.../warehouse_db

The warehouse reads sensor data from the operational hourly rollups, so "readings" here are
hourly rollup rows (one row per sensor and hour, each standing for that hour's readings):
2,000 sensors x 5,000 hours at full scale. Work orders come with their status-change events (two
per finished order). The operational data is written straight into a freshly migrated database
(executemany on SQLite, COPY on PostgreSQL) with the application's own schema and ANALYZEd
as a live database would be; the first ETL
run is a full build, then 1 % more of each (new hours for every sensor, new work orders) is added
and the incremental run is timed. The goal for the incremental run is < 5 s. With
``--postgres URL`` the same two runs also load the PostgreSQL warehouse (schema
``--postgres-schema``, default warehouse_bench) and are timed on their own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import Engine, insert

from maintainpro.analytics.lineage import lineage_for
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.warehouse import DuckDbWarehouse, RunRecord, WarehouseTarget
from maintainpro.analytics.warehouse_pg import PostgresWarehouse, lineage_dataset
from maintainpro.config import Settings
from maintainpro.core.db import build_engine
from maintainpro.migrate import upgrade
from maintainpro.schema import metadata

SENSORS_PER_ASSET = 4
FULL_SENSORS = 2_000
FULL_HOURS = 5_000
FULL_WORK_ORDERS = 100_000
HOUR_MS = 3_600_000
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
STATUS_TOPIC = "work_order.status_changed"


def table(name: str) -> Any:
    """An application table by name."""
    return metadata().tables[name]


def seed_plant(engine: Engine, sensors: int) -> list[int]:
    """One site, a line per 50 assets, one device per asset, four sensors per device."""
    # Plant rows were written long before the benchmark's runs, as in a real hub.
    then = START
    assets = max(1, sensors // SENSORS_PER_ASSET)
    with engine.begin() as connection:
        stamps = {"created_at": then, "updated_at": then}
        connection.execute(
            insert(table("sites")), [{"id": 1, "code": "B1", "name": "Bench", **stamps}]
        )
        lines = [
            {
                "id": i + 1,
                "site_id": 1,
                "code": f"L{i + 1}",
                "name": f"Line {i + 1}",
                "kind": "line",
                **stamps,
            }
            for i in range((assets + 49) // 50)
        ]
        connection.execute(insert(table("locations")), lines)
        connection.execute(
            insert(table("assets")),
            [
                {
                    "id": a,
                    "tag": f"A-{a:05d}",
                    "name": f"Asset {a}",
                    "site_id": 1,
                    "location_id": (a - 1) // 50 + 1,
                    **stamps,
                }
                for a in range(1, assets + 1)
            ],
        )
        connection.execute(
            insert(table("devices")),
            [
                {
                    "id": a,
                    "key": f"dev-{a}",
                    "name": f"Device {a}",
                    "protocol": "mqtt",
                    "asset_id": a,
                    **stamps,
                }
                for a in range(1, assets + 1)
            ],
        )
        kinds = [
            ("temperature", "degC", 0.0, 120.0),
            ("vibration", "mm/s", 0.0, 50.0),
            ("pressure", "kPa", 0.0, 1000.0),
            ("current", "A", 0.0, 200.0),
        ]
        rows = []
        for s in range(assets * SENSORS_PER_ASSET):
            kind, unit, low, high = kinds[s % SENSORS_PER_ASSET]
            rows.append(
                {
                    "id": s + 1,
                    "device_id": s // SENSORS_PER_ASSET + 1,
                    "key": kind,
                    "type": kind,
                    "unit": unit,
                    "min_value": low,
                    "max_value": high,
                    **stamps,
                }
            )
        connection.execute(insert(table("sensors")), rows)
    return [s + 1 for s in range(len(rows))]  # the ids given above


def rollup_rows(sensor_ids: list[int], first_hour: int, hours: int) -> Iterator[tuple[Any, ...]]:
    """Hourly rollups: 60 readings an hour around a level per sensor."""
    rng = random.Random(first_hour)
    base_ms = int(START.timestamp() * 1000)
    for sensor in sensor_ids:
        level = 10.0 + sensor % 40
        for h in range(first_hour, first_hour + hours):
            bucket = base_ms + h * HOUR_MS
            low = level + rng.random()
            high = low + 2.0
            yield (sensor, bucket, 60, (low + 1.0) * 60, low, high, bucket + 3_599_000, low + 1.0)


def write_rollups(engine: Engine, rows: Iterator[tuple[Any, ...]]) -> int:
    """Bulk-write rollup rows: executemany on SQLite, COPY on PostgreSQL."""
    raw = engine.raw_connection()
    written = 0
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            copy_sql = "COPY sensor_rollups_1h FROM STDIN"
            with cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
                    written += 1
        else:
            batch: list[tuple[Any, ...]] = []
            sql = "INSERT INTO sensor_rollups_1h VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            for row in rows:
                batch.append(row)
                if len(batch) == 100_000:
                    cursor.executemany(sql, batch)
                    written += len(batch)
                    batch.clear()
            cursor.executemany(sql, batch)
            written += len(batch)
        raw.commit()
    finally:
        raw.close()
    return written


def write_work_orders(
    engine: Engine,
    first_id: int,
    count: int,
    assets: int,
    hours: tuple[int, int],
    *,
    new: bool = False,
) -> int:
    """Work orders created within ``hours``; finished ones with their two status events.

    History was last changed when it happened; ``new`` orders are written now, as the
    application would (updated_at is the wall clock), which is what incremental runs look at.
    """
    now = dt.datetime.now(dt.UTC)
    rng = random.Random(first_id)
    orders, events = [], []
    for i in range(first_id, first_id + count):
        created = START + dt.timedelta(hours=rng.uniform(*hours))
        failure = rng.random() < 0.4
        done = rng.random() < 0.95
        started = created + dt.timedelta(hours=rng.uniform(0.1, 4))
        completed = started + dt.timedelta(hours=rng.uniform(0.5, 8)) if done else None
        orders.append(
            {
                "id": i,
                "title": f"WO {i}",
                "description": "",
                "type": "corrective" if failure else "preventive",
                "priority": "medium",
                "status": "completed" if done else "in_progress",
                "asset_id": rng.randint(1, assets),
                "origin": "manual",
                "created_at": created,
                "updated_at": now if new else completed or started,
                "started_at": started,
                "completed_at": completed,
                "due_at": created + dt.timedelta(days=3),
            }
        )
        moves = [(started, "open", "in_progress")]
        if completed:
            moves.append((completed, "in_progress", "completed"))
        for when, before, after in moves:
            events.append(
                {
                    "topic": STATUS_TOPIC,
                    "payload": {"work_order_id": i, "from": before, "to": after},
                    "created_at": now if new else when,
                    "available_at": when,
                    "delivered_at": when,
                    "attempts": 1,
                }
            )
    with engine.begin() as connection:
        for start in range(0, len(orders), 10_000):
            connection.execute(insert(table("work_orders")), orders[start : start + 10_000])
        for start in range(0, len(events), 20_000):
            connection.execute(insert(table("outbox_events")), events[start : start + 20_000])
    return count


def timed_build(
    engine: Engine, settings: Settings, path: Path, *, full: bool
) -> tuple[float, list[RunRecord]]:
    """One ETL run; returns wall seconds and the run records."""
    began = time.perf_counter()
    with DuckDbWarehouse(path) as target:
        records = _build(engine, settings, path, target, full=full)
    return time.perf_counter() - began, records


def timed_pg_build(
    engine: Engine, settings: Settings, path: Path, url: str, pg_schema: str, *, full: bool
) -> tuple[float, list[RunRecord]]:
    """One ETL run into the PostgreSQL warehouse; returns wall seconds and the run records."""
    began = time.perf_counter()
    with PostgresWarehouse(url, pg_schema) as target:
        records = _build(
            engine, settings, path, target, full=full, dataset=lineage_dataset(url, pg_schema)
        )
    return time.perf_counter() - began, records


def _build(
    engine: Engine,
    settings: Settings,
    path: Path,
    target: WarehouseTarget,
    *,
    full: bool,
    dataset: tuple[str, str] | None = None,
) -> list[RunRecord]:
    lineage = lineage_for(settings, path, warehouse=dataset)
    return build(engine, target, lineage, BuildOptions(base_currency="USD", full=full))


def report(title: str, seconds: float, records: list[RunRecord]) -> dict[str, Any]:
    """Print one run's figures and return them."""
    rows_in = sum(r.rows_in for r in records)
    print(f"\n{title}: {seconds:.2f} s, {rows_in:,} source rows, {rows_in / seconds:,.0f} rows/s")
    for r in records:
        if r.rows_in or (r.duration_s or 0) > 0.5:
            rate = r.rows_in / r.duration_s if r.duration_s else 0
            print(
                f"  {r.job:26} {r.mode:11} in {r.rows_in:>11,} out {r.rows_out:>11,} "
                f"{r.duration_s or 0:8.2f} s {rate:>12,.0f} rows/s {r.status}"
            )
    failed = [r for r in records if r.status != "completed"]
    if failed:
        raise SystemExit(f"failed: {[(r.job, r.error) for r in failed]}")
    return {
        "seconds": round(seconds, 2),
        "rows_in": rows_in,
        "jobs": {
            r.job: {"rows_in": r.rows_in, "seconds": round(r.duration_s or 0, 2)} for r in records
        },
    }


def main() -> None:
    """Generate, build from scratch, add 1 %, build incrementally; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 10 M rows, 100 k WOs")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--workdir", type=Path, help="where files go (default: a temp dir)")
    parser.add_argument("--postgres", help="also load this PostgreSQL warehouse database")
    parser.add_argument("--postgres-schema", default="warehouse_bench", help="its schema")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="warehouse-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{workdir / 'hub.db'}"
    sensors = max(SENSORS_PER_ASSET, int(FULL_SENSORS * min(args.scale, 1.0) ** 0.5))
    hours = max(10, round(FULL_HOURS * FULL_SENSORS * args.scale / sensors))
    work_orders = max(100, int(FULL_WORK_ORDERS * args.scale))
    print(f"database {url.split('@')[-1]}, workdir {workdir}")
    print(
        f"{sensors:,} sensors x {hours:,} h = {sensors * hours:,} rollup rows; {work_orders:,} WOs"
    )

    upgrade(url)
    engine = build_engine(url)
    began = time.perf_counter()
    sensor_ids = seed_plant(engine, sensors)
    written = write_rollups(engine, rollup_rows(sensor_ids, 0, hours))
    assets = len(sensor_ids) // SENSORS_PER_ASSET
    write_work_orders(engine, 1, work_orders, assets, (0, hours))
    # A live database has planner statistics (autovacuum on PostgreSQL); a bulk load has none.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")
    print(f"generated and analysed in {time.perf_counter() - began:.1f} s ({written:,} rows)")

    settings = Settings(database_url=url, lineage_file=workdir / "lineage.jsonl")
    path = workdir / "warehouse.duckdb"
    full_s, full_records = timed_build(engine, settings, path, full=True)
    full = report("full build", full_s, full_records)
    pg: dict[str, Any] = {}
    if args.postgres:
        pg_s, pg_records = timed_pg_build(
            engine, settings, path, args.postgres, args.postgres_schema, full=True
        )
        pg["full"] = report("PostgreSQL full build", pg_s, pg_records)

    extra_hours = max(1, round(hours * 0.01))
    extra_orders = max(1, round(work_orders * 0.01))
    added = write_rollups(engine, rollup_rows(sensor_ids, hours, extra_hours))
    # New work orders are opened in the new hours, as they would be.
    span = (hours, hours + extra_hours)
    write_work_orders(engine, work_orders + 1, extra_orders, assets, span, new=True)
    print(f"\nadded {added:,} rollup rows and {extra_orders:,} work orders (1 %)")
    inc_s, inc_records = timed_build(engine, settings, path, full=False)
    incremental = report("incremental build", inc_s, inc_records)
    if args.postgres:
        pg_s, pg_records = timed_pg_build(
            engine, settings, path, args.postgres, args.postgres_schema, full=False
        )
        pg["incremental"] = report("PostgreSQL incremental build", pg_s, pg_records)
    print(f"\ngoal for the incremental run < 5 s: {'met' if inc_s < 5 else 'NOT met'}")
    with duckdb.connect(str(path), read_only=True) as check:
        facts = check.execute("SELECT count(*) FROM fact_sensor_hour").fetchone()
    size = path.stat().st_size / 1e6
    print(f"fact_sensor_hour rows: {facts[0] if facts else 0:,}; warehouse file {size:,.0f} MB")
    summary = {
        "database": engine.dialect.name,
        "scale": args.scale,
        "rollup_rows": written,
        "work_orders": work_orders,
        "full": full,
        "incremental": incremental,
        "postgres": pg or None,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))
    engine.dispose()


if __name__ == "__main__":
    main()
