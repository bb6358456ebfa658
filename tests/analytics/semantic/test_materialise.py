"""Refreshing pre-aggregations: only touched partitions, always equal to a full rebuild; lineage;
staleness; Parquet and .hyper exports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from analytics.semantic.cube_world import PLANT, ask, quiet_lineage, source_of
from analytics.test_lineage import check_run_event
from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.semantic.export import export_pre_aggregations
from maintainpro.analytics.semantic.materialise import RefreshResult, read_states, refresh
from maintainpro.analytics.semantic.model import default_model, parse_model
from maintainpro.analytics.semantic.preaggs import layouts
from maintainpro.analytics.semantic.synthetic import add_work_orders
from maintainpro.analytics.warehouse import DuckDbWarehouse

DAILY = "preagg_work_orders_daily"


def _table(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    return connection.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()  # noqa: S608 - test names


def _snapshot(connection: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    # Doubles are rounded: a sum of inexact doubles (hours from timestamps, in the availability
    # cube) may differ in its last bits with the order DuckDB's threads add them in.
    return {
        layout.table: [
            tuple(round(v, 9) if isinstance(v, float) else v for v in row)
            for row in _table(connection, layout.table)
        ]
        for layout in layouts(default_model())
    }


def _refresh(target: DuckDbWarehouse, *, full: bool = False) -> dict[str, RefreshResult]:
    results = refresh(target.connection, default_model(), quiet_lineage(target.path), full=full)
    assert [r.error for r in results if r.status != "completed"] == []
    return {r.table: r for r in results}


def test_a_refresh_without_changes_recomputes_nothing(cubes: DuckDbWarehouse) -> None:
    before = _snapshot(cubes.connection)
    results = _refresh(cubes)
    assert {r.mode for r in results.values()} == {"unchanged"}
    assert all(r.refreshed == [] for r in results.values())
    assert results[DAILY].partitions == 5  # Nov 2025 .. Mar 2026
    assert _snapshot(cubes.connection) == before


def test_new_and_changed_facts_refresh_only_their_partitions_and_equal_a_full_rebuild(
    cubes: DuckDbWarehouse,
) -> None:
    connection = cubes.connection
    # New work orders on the first days of January 2026 (plant day 61 on), and a change to one
    # December order: only those two months of the work-order tables are touched.
    add_work_orders(connection, PLANT, first=1_000_000, count=30, per_day=1, first_day=61)
    connection.execute(
        "UPDATE fact_work_order SET downtime_hours = downtime_hours + 1 WHERE work_order_key ="
        " (SELECT min(work_order_key) FROM fact_work_order"
        "  WHERE created_at >= TIMESTAMP '2025-12-10')"
    )
    results = _refresh(cubes)
    daily = results[DAILY]
    assert daily.mode == "incremental"
    assert daily.refreshed == [dt.date(2025, 12, 1), dt.date(2026, 1, 1)]
    yearly = results["preagg_work_orders_monthly_status"]
    assert yearly.refreshed == [dt.date(2025, 1, 1), dt.date(2026, 1, 1)]
    assert results["preagg_alerts_daily"].mode == "unchanged"
    assert results["preagg_spend_daily"].mode == "unchanged"
    incremental = _snapshot(connection)
    full = _refresh(cubes, full=True)
    assert full[DAILY].mode == "full"
    assert _snapshot(connection) == incremental
    query = {
        "measures": ["WorkOrders.count", "WorkOrders.downtimeHours"],
        "timeDimensions": [{"dimension": "WorkOrders.createdAt", "granularity": "month"}],
    }
    stored, facts = ask(connection, query), ask(connection, query, base=True)
    assert source_of(stored) == "pre_aggregation"
    assert stored.body["data"] == facts.body["data"]
    january = next(
        r for r in stored.body["data"] if r["WorkOrders.createdAt"].startswith("2026-01")
    )
    assert january["WorkOrders.count"] == 31 * PLANT.work_orders_per_day + 30


def test_a_dimension_change_refreshes_the_partitions_of_its_facts(cubes: DuckDbWarehouse) -> None:
    connection = cubes.connection
    # Asset 1 moves to another line: every month with its facts is recomputed, nothing else.
    connection.execute("UPDATE dim_asset SET line_code = 'S1-L9' WHERE asset_key = 1")
    results = _refresh(cubes)
    months = {
        r[0]
        for r in connection.execute(
            "SELECT DISTINCT CAST(date_trunc('month', created_at) AS DATE) FROM fact_work_order"
            " WHERE asset_key = 1"
        ).fetchall()
    }
    assert set(results[DAILY].refreshed) == months
    assert results["preagg_spend_daily"].mode == "unchanged"
    incremental = _snapshot(connection)
    _refresh(cubes, full=True)
    assert _snapshot(connection) == incremental
    lines = ask(connection, {"measures": ["WorkOrders.count"], "dimensions": ["Assets.line"]})
    assert "S1-L9" in {r["Assets.line"] for r in lines.body["data"]}


def test_facts_removed_from_a_partition_leave_it(cubes: DuckDbWarehouse) -> None:
    connection = cubes.connection
    connection.execute("DELETE FROM fact_work_order WHERE created_at >= TIMESTAMP '2026-03-01'")
    results = _refresh(cubes)
    assert results[DAILY].refreshed == [dt.date(2026, 3, 1)]
    assert results[DAILY].partitions == 4
    left = connection.execute(
        f"SELECT count(*) FROM {DAILY} WHERE _partition = DATE '2026-03-01'"  # noqa: S608 - constant
    ).fetchone()
    assert left == (0,)


def test_a_changed_definition_rebuilds_the_table_whole(cubes: DuckDbWarehouse) -> None:
    connection = cubes.connection
    model = default_model().model_dump(mode="json", exclude_defaults=False)
    work_orders = next(c for c in model["cubes"] if c["name"] == "WorkOrders")
    work_orders["pre_aggregations"] = [work_orders["pre_aggregations"][0]]
    work_orders["pre_aggregations"][0]["grouping"] = [{"rollup": ["Assets.site", "Assets.line"]}]
    changed = parse_model(model)
    results = refresh(connection, changed, quiet_lineage(cubes.path), only=("WorkOrders",))
    assert [(r.table, r.mode) for r in results] == [(DAILY, "full")]
    (layout,) = [x for x in layouts(changed) if x.table == DAILY]
    assert read_states(connection)[DAILY].definition_hash == layout.definition_hash
    # A whole refresh of the changed model drops the table the model no longer has.
    refresh(connection, changed, quiet_lineage(cubes.path))
    assert "preagg_work_orders_monthly_status" not in read_states(connection)


def test_an_etl_run_after_the_refresh_sends_queries_to_the_facts_until_the_next_one(
    cubes: DuckDbWarehouse,
) -> None:
    connection = cubes.connection
    query = {"measures": ["WorkOrders.count"], "dimensions": ["Assets.site"]}
    assert source_of(ask(connection, query)) == "pre_aggregation"
    connection.execute(
        "INSERT INTO etl_runs (run_id, job, mode, started_at, finished_at, status)"
        " VALUES ('r1', 'fact_work_order', 'incremental', now()::TIMESTAMP, now()::TIMESTAMP,"
        " 'completed')"
    )
    stale = ask(connection, query)
    assert source_of(stale) == "base"
    assert "older than the last warehouse load" in stale.body["answeredFrom"]["reason"]
    _refresh(cubes)
    assert source_of(ask(connection, query)) == "pre_aggregation"


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_each_refresh_emits_start_then_complete_and_a_failure_fail(
    cubes: DuckDbWarehouse, file_lineage: Lineage, tmp_path: Path
) -> None:
    connection = cubes.connection
    add_work_orders(connection, PLANT, first=1_000_000, count=3, per_day=1)
    connection.execute("DROP TABLE fact_spend")
    results = refresh(connection, default_model(), file_lineage)
    failed = [r for r in results if r.status == "failed"]
    assert [r.table for r in failed] == ["preagg_spend_daily"]
    events = [
        e for e in _events(tmp_path / "lineage.jsonl") if e["job"]["name"].startswith("cube.")
    ]
    for event in events:
        check_run_event(event)
    by_job: dict[str, list[str]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event["eventType"])
    assert len(by_job) == len(results)
    assert by_job["cube.preagg_spend_daily"] == ["START", "FAIL"]
    assert by_job[f"cube.{DAILY}"] == ["START", "COMPLETE"]
    complete = next(
        e for e in events if e["job"]["name"] == f"cube.{DAILY}" and e["eventType"] == "COMPLETE"
    )
    (output,) = complete["outputs"]
    assert output["name"] == f"main.{DAILY}"
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == results[0].rows
    fields = {f["name"] for f in output["facets"]["schema"]["fields"]}
    assert {"_gid", "_partition", "_bucket", "_site", "Assets__site", "count"} <= fields
    lineage_fields = output["facets"]["columnLineage"]["fields"]
    assert lineage_fields["partsCost"]["inputFields"][0]["field"] == "parts_cost_base"
    assert lineage_fields["Assets__site"]["inputFields"][0]["name"] == "main.dim_asset"
    inputs = {i["name"] for i in complete["inputs"]}
    assert inputs == {"main.fact_work_order", "main.dim_asset"}
    fail = next(e for e in events if e["eventType"] == "FAIL")
    assert "fact_spend" in fail["run"]["facets"]["errorMessage"]["message"]


def test_pre_aggregations_export_to_parquet_and_hyper_with_their_rows(
    cubes: DuckDbWarehouse, tmp_path: Path, file_lineage: Lineage
) -> None:
    connection = cubes.connection
    written = export_pre_aggregations(
        connection, default_model(), tmp_path / "out", file_lineage, only=("WorkOrders.daily",)
    )
    files = {w.format: w for w in written}
    assert set(files) == {"parquet", "hyper"}
    rows = _table(connection, DAILY)
    parquet = pq.read_table(files["parquet"].path)
    assert parquet.num_rows == files["parquet"].rows == len(rows)
    assert parquet.column_names[:4] == ["_gid", "_partition", "_bucket", "_site"]
    assert sorted(tuple(r.values()) for r in parquet.to_pylist()) == sorted(rows)
    tableauhyperapi = pytest.importorskip("tableauhyperapi")
    with (
        tableauhyperapi.HyperProcess(
            tableauhyperapi.Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
            parameters={"log_config": "", "log_dir": str(tmp_path)},
        ) as hyper,
        tableauhyperapi.Connection(hyper.endpoint, str(files["hyper"].path)) as db,
    ):
        name = tableauhyperapi.TableName("Extract", DAILY)
        count = db.execute_scalar_query(f"SELECT count(*) FROM {name}")  # noqa: S608 - test name
        total = db.execute_scalar_query(f'SELECT sum("partsCost") FROM {name} WHERE "_gid" = 31')  # noqa: S608 - test name
    assert count == len(rows)
    expected = connection.execute(
        f'SELECT sum("partsCost") FROM {DAILY} WHERE _gid = 31'  # noqa: S608 - constant
    ).fetchone()
    assert expected is not None
    assert total == expected[0]
    events = _events(tmp_path / "lineage.jsonl")
    exports = [e for e in events if e["job"]["name"].startswith("cube_export.")]
    for event in exports:
        check_run_event(event)
    assert [e["eventType"] for e in exports] == ["START", "COMPLETE", "START", "COMPLETE"]
