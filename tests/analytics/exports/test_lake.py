"""The data lake from a built warehouse: Hive-style day partitions, incremental writes that
replace days without duplicating rows, dimensions whole, Delta versions and time travel."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from analytics.analytics_world import T0
from analytics.exports.conftest import Built, build_warehouse
from analytics.exports.exports_world import add_work_order, export_events, warehouse_rows
from maintainpro.analytics.exports.datasets import get_dataset
from maintainpro.analytics.exports.lake import (
    LakeError,
    delta_history,
    parquet_root,
    read_delta,
    read_partitioned,
    write_partitioned,
)
from maintainpro.analytics.exports.runs import export_lake
from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.warehouse import connect

WO = get_dataset("fact_work_order")


def _lake_rows(lake: Path) -> list[tuple[object, ...]]:
    table = read_partitioned(lake, WO).drop_columns(["dt"]).sort_by("work_order_key")
    return [tuple(r.values()) for r in table.to_pylist()]


def _days(lake: Path) -> list[str]:
    return sorted(p.name for p in parquet_root(lake, WO).iterdir())


def _created_days(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        "SELECT DISTINCT CAST(created_at AS DATE) FROM fact_work_order ORDER BY 1"
    ).fetchall()
    return [f"dt={d.isoformat()}" for (d,) in rows]


def _export(built: Built, lake: Path, lineage: Lineage, **options: Any) -> None:
    connection = connect(built.path, read_only=True)
    try:
        export_lake(connection, WO, lake, lineage, **options)
    finally:
        connection.close()


def test_facts_are_partitioned_by_day_hive_style(
    built: Built, lineage: Lineage, lineage_path: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    _export(built, lake, lineage)
    expected = warehouse_rows(built.path, "fact_work_order", "work_order_key")
    connection = connect(built.path, read_only=True)
    try:
        assert _days(lake) == _created_days(connection)
    finally:
        connection.close()
    assert len(_days(lake)) >= 3
    assert _lake_rows(lake) == expected
    # Each row sits in the folder of the day it was created on.
    for folder in parquet_root(lake, WO).iterdir():
        day = dt.date.fromisoformat(folder.name.removeprefix("dt="))
        rows = pads.dataset(folder, format="parquet").to_table().to_pylist()
        assert rows
        assert {r["created_at"].date() for r in rows} == {day}
    # Big-data tools read it as a Hive-partitioned dataset.
    with duckdb.connect() as reader:
        counted = reader.execute(
            "SELECT count(*), count(DISTINCT dt) FROM read_parquet(?, hive_partitioning = true)",
            [str(parquet_root(lake, WO) / "*" / "*.parquet")],
        ).fetchone()
    assert counted == (len(expected), len(_days(lake)))
    events = export_events(lineage_path)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[1]["outputs"][0]["name"] == str(parquet_root(lake, WO).resolve())


def test_an_incremental_write_adds_new_days_and_never_duplicates(
    built: Built,
    engine: Engine,
    db: Session,
    lineage: Lineage,
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    _export(built, lake, lineage)
    before = _days(lake)
    later = add_work_order(db, built.ids["pump"], created_hours=24 * 9 + 3)
    build_warehouse(engine, built.path, lineage)
    new_day = (T0 + dt.timedelta(days=9)).date()

    _export(built, lake, lineage, since=new_day)
    expected = warehouse_rows(built.path, "fact_work_order", "work_order_key")
    assert later in [r[0] for r in expected]
    assert _days(lake) == sorted([*before, f"dt={new_day.isoformat()}"])
    assert _lake_rows(lake) == expected

    # The same window again changes nothing; a wider one rewrites its days without duplicates.
    _export(built, lake, lineage, since=new_day)
    _export(built, lake, lineage, since=T0.date())
    assert _lake_rows(lake) == expected
    keys = [r[0] for r in _lake_rows(lake)]
    assert len(keys) == len(set(keys))


def test_a_day_whose_rows_are_gone_is_emptied_by_the_write_that_covers_it(
    built: Built, lineage: Lineage, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    stale = parquet_root(lake, WO) / "dt=2026-03-01"
    stale.mkdir(parents=True)
    (stale / "part-0.parquet").write_bytes(b"left over")
    older = parquet_root(lake, WO) / "dt=2025-01-01"
    older.mkdir()
    _export(built, lake, lineage, since=dt.date(2026, 2, 1))
    assert not stale.exists()
    assert older.exists()  # before the window: not this write's business


def test_dimensions_are_written_whole_and_refuse_a_window(
    built: Built, lineage: Lineage, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    assets = get_dataset("dim_asset")
    connection = connect(built.path, read_only=True)
    try:
        result = export_lake(connection, assets, lake, lineage)
        with pytest.raises(LakeError, match="no days"):
            write_partitioned(
                pa.RecordBatchReader.from_batches(assets.arrow_schema(), []),
                assets,
                lake,
                since=T0.date(),
            )
    finally:
        connection.close()
    assert result.rows == 3
    assert [p.name for p in parquet_root(lake, assets).iterdir()] == ["part-0.parquet"]
    assert read_partitioned(lake, assets).num_rows == 3


def test_delta_versions_and_time_travel(
    built: Built,
    engine: Engine,
    db: Session,
    lineage: Lineage,
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    _export(built, lake, lineage, delta=True)
    first = warehouse_rows(built.path, "fact_work_order", "work_order_key")
    add_work_order(db, built.ids["pump"], created_hours=24 * 12)
    build_warehouse(engine, built.path, lineage)
    new_day = (T0 + dt.timedelta(days=12)).date()
    _export(built, lake, lineage, delta=True, since=new_day)
    second = warehouse_rows(built.path, "fact_work_order", "work_order_key")
    assert len(second) == len(first) + 1

    def rows(version: int | None) -> list[tuple[object, ...]]:
        table = read_delta(lake, WO, version=version).drop_columns(["dt"])
        return [tuple(r.values()) for r in table.sort_by("work_order_key").to_pylist()]

    assert rows(None) == second
    assert rows(1) == second
    assert rows(0) == first  # time travel to the version before the incremental write
    history = delta_history(lake, WO)
    assert [h["version"] for h in history] == [1, 0]
    assert history[0]["operationParameters"]["predicate"].startswith("dt >= '")
    # The same window again is a new version with the same rows: nothing is duplicated.
    _export(built, lake, lineage, delta=True, since=new_day)
    assert rows(None) == second
    assert rows(2) == second
