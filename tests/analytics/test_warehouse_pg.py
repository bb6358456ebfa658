"""The PostgreSQL warehouse: the same jobs load the same rows as into DuckDB, the KPI views give
the same figures, runs are idempotent and incremental, and its failures stay its own."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from analytics.analytics_world import KPI_PERIOD, add_readings, at
from maintainpro.analytics import schema
from maintainpro.analytics.lineage import POSTGRES_JOB_PREFIX
from maintainpro.analytics.pg_copy import copy_format
from maintainpro.analytics.refresh import PREDICTIONS_JOB, RefreshOutcome, refresh_warehouse
from maintainpro.analytics.warehouse import (
    DuckDbWarehouse,
    RunRecord,
    WarehouseError,
    connect,
    naive_utc,
)
from maintainpro.analytics.warehouse_pg import PostgresWarehouse, conninfo, pg_type
from maintainpro.cli.main import app
from maintainpro.config import Settings
from maintainpro.iot.alerts import Alert, AlertKind, AlertStatus

Row = tuple[Any, ...]
DATA_TABLES = [t for t in schema.TABLES.values() if t.kind != "meta"]
KPI_VIEWS = ("kpi_asset", "kpi_site")


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A schema name of this test's own, dropped afterwards."""
    name = f"wh_test_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(conninfo(postgres_url), autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def both(settings: Settings, postgres_url: str, pg_schema: str, tmp_path: Path) -> Settings:
    """Settings loading the DuckDB file and the PostgreSQL schema."""
    return settings.model_copy(
        update={
            "warehouse_postgres_url": postgres_url,
            "warehouse_schema": pg_schema,
            "lineage_file": tmp_path / "lineage.jsonl",
        }
    )


def _key(row: Row) -> tuple[Any, ...]:
    # Nulls sort first without being compared to values.
    return tuple((v is not None, v if v is not None else 0) for v in row)


def full_rows(table: schema.WarehouseTable, **columns: list[Any]) -> pa.Table:
    """Rows for a table: the given columns, every other one null."""
    count = len(next(iter(columns.values())))
    return pa.table(
        {c: columns.get(c, [None] * count) for c in table.column_names},
        schema=table.arrow_schema,
    )


def duck_rows(settings: Settings, sql: str, params: list[Any] | None = None) -> list[Row]:
    """Rows from the DuckDB file, sorted."""
    connection = connect(settings.warehouse_path or Path(), read_only=True)
    try:
        return sorted(connection.execute(sql, params or []).fetchall(), key=_key)
    finally:
        connection.close()


def duck_columns(settings: Settings, sql: str) -> list[str]:
    """Column names of a DuckDB query."""
    connection = connect(settings.warehouse_path or Path(), read_only=True)
    try:
        return [d[0] for d in connection.execute(sql).description]
    finally:
        connection.close()


def pg_rows(settings: Settings, sql: str, params: list[Any] | None = None) -> list[Row]:
    """Rows from the PostgreSQL schema, sorted."""
    with PostgresWarehouse(settings.warehouse_postgres_url or "", settings.warehouse_schema) as pg:
        return sorted(pg.connection.execute(sql, params or []).fetchall(), key=_key)


def pg_columns(settings: Settings, sql: str) -> list[str]:
    """Column names of a PostgreSQL query."""
    with PostgresWarehouse(settings.warehouse_postgres_url or "", settings.warehouse_schema) as pg:
        cursor = pg.connection.execute(sql)
        return [d.name for d in cursor.description or []]


def snapshot(settings: Settings) -> dict[str, list[Row]]:
    """Every data table of the PostgreSQL warehouse."""
    return {t.name: pg_rows(settings, f"SELECT * FROM {t.name}") for t in DATA_TABLES}  # noqa: S608 - schema names


def assert_same_rows(duck: list[Row], pg: list[Row]) -> None:
    """Equal row for row; floats equal to the last few bits (sums may add in another order)."""
    assert len(duck) == len(pg)
    for left, right in zip(duck, pg, strict=True):
        assert len(left) == len(right)
        for a, b in zip(left, right, strict=True):
            if isinstance(a, float) and isinstance(b, float):
                assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9), (left, right)
            else:
                assert a == b, (left, right)


def assert_loaded(outcome: RefreshOutcome) -> None:
    """Both stores loaded every job without error."""
    assert outcome.postgres_error is None
    assert (outcome.failed_jobs, outcome.failed_postgres_jobs) == ([], [])
    # PostgreSQL's runs are DuckDB's jobs plus the copy of DuckDB's ML predictions.
    copied = [r.job for r in outcome.postgres_records]
    assert copied == [*(r.job for r in outcome.records), PREDICTIONS_JOB]


def test_both_stores_hold_the_same_rows(
    engine: Engine, seeded: dict[str, int], both: Settings
) -> None:
    outcome = refresh_warehouse(engine, both)
    assert_loaded(outcome)
    filled = 0
    for table in DATA_TABLES:
        sql = f"SELECT {', '.join(table.column_names)} FROM {table.name}"  # noqa: S608 - schema names
        duck, pg = duck_rows(both, sql), pg_rows(both, sql)
        assert_same_rows(duck, pg)
        filled += bool(pg)
    # Everything the world has data for arrived (the model predictions are not ETL output).
    assert filled >= len(DATA_TABLES) - 1
    # Both stores recorded their own completed run of every job.
    runs = "SELECT job, status, rows_in, rows_out, rows_rejected FROM etl_runs"
    copied = [r for r in pg_rows(both, runs) if r[0] != PREDICTIONS_JOB]
    assert duck_rows(both, runs) == copied
    jobs = {r.job for r in outcome.records}
    assert {r[0] for r in pg_rows(both, "SELECT job FROM etl_watermarks")} == jobs


def test_the_tables_have_the_mapped_types_and_key_indexes(
    engine: Engine, seeded: dict[str, int], both: Settings
) -> None:
    refresh_warehouse(engine, both, stores=["postgres"])
    columns = pg_rows(
        both,
        "SELECT table_name, column_name, "
        "CASE WHEN data_type = 'numeric' "
        "THEN format('numeric(%%s,%%s)', numeric_precision, numeric_scale) "
        "WHEN data_type = 'timestamp without time zone' THEN 'timestamp' ELSE data_type END "
        "FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name NOT LIKE 'kpi%%'",
        [both.warehouse_schema],
    )
    expected = sorted(
        ((t.name, c.name, pg_type(c.type)) for t in schema.TABLES.values() for c in t.columns),
        key=_key,
    )
    assert columns == expected
    indexes = pg_rows(
        both,
        "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = %s",
        [both.warehouse_schema],
    )
    assert {name for name, _ in indexes} == set(schema.TABLES)
    sensor_indexes = sorted(
        d.split(" USING btree ")[1] for n, d in indexes if n == "fact_sensor_hour"
    )
    # The natural key, and the hour on its own for the incremental runs' delete_since.
    assert sensor_indexes == ["(hour_start)", "(sensor_key, hour_start)"]


def test_the_kpi_views_give_the_duckdb_figures(
    engine: Engine, seeded: dict[str, int], both: Settings
) -> None:
    assert_loaded(refresh_warehouse(engine, both))
    for view in (*KPI_VIEWS, "kpi_period"):
        assert pg_columns(both, f"SELECT * FROM {view}") == duck_columns(  # noqa: S608 - view names
            both,
            f"SELECT * FROM {view}",  # noqa: S608 - view names
        )
    # Each store's period ends where its own last work-order load did: compare over the same
    # period by handing PostgreSQL's period to DuckDB's macros.
    ((start, end),) = pg_rows(both, "SELECT period_start, period_end FROM kpi_period")
    assert start == naive_utc(at(10))
    for view, macro in (("kpi_asset", "kpi_assets"), ("kpi_site", "kpi_sites")):
        pg = pg_rows(both, f"SELECT * FROM {view}")  # noqa: S608 - view names
        duck = duck_rows(both, f"SELECT * FROM {macro}(?, ?)", [start, end])  # noqa: S608 - macro names
        assert pg
        assert_same_rows(duck, pg)
    # The functions take any period, as the macros do; the hand-worked one of the world first.
    period = [naive_utc(KPI_PERIOD[0]), naive_utc(KPI_PERIOD[1])]
    for macro in ("kpi_assets", "kpi_sites"):
        sql = f"SELECT * FROM {macro}"  # noqa: S608 - macro names
        pg = pg_rows(both, sql + "(%s, %s)", period)
        assert_same_rows(duck_rows(both, sql + "(?, ?)", period), pg)
    pump = pg_rows(
        both,
        "SELECT failures, mttr_hours, availability, pm_compliance, cost_base "
        "FROM kpi_assets(%s, %s) WHERE tag = 'P-1'",
        period,
    )
    assert pump == [(2, 3.0, 0.92, 0.5, Decimal("128.0000"))]


def test_a_second_run_changes_nothing(
    engine: Engine, seeded: dict[str, int], both: Settings
) -> None:
    assert_loaded(refresh_warehouse(engine, both))
    before = snapshot(both)
    again = refresh_warehouse(engine, both)
    assert_loaded(again)
    assert {r.mode for r in again.postgres_records} == {"incremental"}
    assert snapshot(both) == before
    # Two completed runs of every job, each store keeping its own.
    counts = pg_rows(both, "SELECT job, count(*) FROM etl_runs GROUP BY job")
    assert {n for _, n in counts} == {2}


def test_an_incremental_run_appends_the_new_rows(
    engine: Engine, seeded: dict[str, int], both: Settings, db: Session
) -> None:
    assert_loaded(refresh_warehouse(engine, both))
    before = snapshot(both)
    # Three new hours on the temperature sensor, and a new alert.
    add_readings(db.connection(), seeded["temp"], range(7, 10))
    db.add(
        Alert(
            sensor_id=seeded["vib"],
            device_id=seeded["device"],
            asset_id=seeded["pump"],
            kind=AlertKind.THRESHOLD,
            severity="LOW",
            status=AlertStatus.ACTIVE,
            title="Rough running",
            raised_at=at(8),
        )
    )
    db.commit()
    outcome = refresh_warehouse(engine, both)
    assert_loaded(outcome)
    by_job = {r.job: r for r in outcome.postgres_records}
    assert by_job["fact_sensor_hour"].mode == "incremental"
    # The alert job re-reads what changed since its watermark less a small overlap.
    assert by_job["fact_alert"].rows_out >= 1
    after = snapshot(both)
    for table in DATA_TABLES:
        sql = f"SELECT {', '.join(table.column_names)} FROM {table.name}"  # noqa: S608 - schema names
        assert_same_rows(duck_rows(both, sql), pg_rows(both, sql))
    hours = schema.FACT_SENSOR_HOUR
    added = [r for r in after[hours.name] if r not in before[hours.name]]
    hour = hours.column_names.index("hour_start")
    assert sorted(r[hour] for r in added) == [naive_utc(at(h)) for h in range(7, 10)]
    assert all(r in after[hours.name] for r in before[hours.name])
    assert len(after["fact_alert"]) == len(before["fact_alert"]) + 1
    unchanged = [t.name for t in DATA_TABLES if t.name not in {hours.name, "fact_alert"}]
    assert {n: after[n] for n in unchanged} == {n: before[n] for n in unchanged}


def test_an_unreachable_postgres_leaves_duckdb_loaded_and_says_why(
    engine: Engine,
    seeded: dict[str, int],
    both: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = both.model_copy(
        update={"warehouse_postgres_url": "postgresql+psycopg://postgres@127.0.0.1:1/test"}
    )
    with caplog.at_level(logging.WARNING, logger="maintainpro.analytics.refresh"):
        outcome = refresh_warehouse(engine, nowhere)
    assert outcome.postgres_error is not None
    assert "cannot be reached" in outcome.postgres_error
    assert "127.0.0.1:1" in outcome.postgres_error
    assert outcome.failed_jobs == []
    assert outcome.postgres_records == []
    assert duck_rows(both, "SELECT count(*) FROM fact_work_order") == [(6,)]
    failures = [r for r in caplog.records if r.getMessage() == "postgres warehouse load failed"]
    assert failures
    assert failures[0].__dict__["error"] == outcome.postgres_error


@pytest.mark.parametrize(
    ("url", "reason"),
    [("mysql://bi@db/warehouse", "postgresql:// URL"), ("not a url", "Could not parse")],
)
def test_a_wrong_postgres_url_is_reported_not_raised(
    engine: Engine, both: Settings, url: str, reason: str
) -> None:
    outcome = refresh_warehouse(engine, both.model_copy(update={"warehouse_postgres_url": url}))
    assert outcome.postgres_error is not None
    assert reason in outcome.postgres_error
    assert outcome.failed_jobs == []


def test_a_second_load_at_the_same_time_is_turned_away(
    engine: Engine, seeded: dict[str, int], both: Settings
) -> None:
    with PostgresWarehouse(both.warehouse_postgres_url or "", both.warehouse_schema) as first:
        first.claim()
        outcome = refresh_warehouse(engine, both)
    assert outcome.postgres_error is not None
    assert "another load" in outcome.postgres_error
    assert outcome.failed_jobs == []
    # Once the first loader has gone, the next refresh loads.
    assert_loaded(refresh_warehouse(engine, both))


def test_a_failing_postgres_job_is_recorded_there_and_duckdb_is_untouched(
    engine: Engine, seeded: dict[str, int], both: Settings
) -> None:
    # A table someone made by hand with a type the alerts cannot go into.
    with psycopg.connect(conninfo(both.warehouse_postgres_url or ""), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {both.warehouse_schema}")
        admin.execute(f"CREATE TABLE {both.warehouse_schema}.fact_alert (alert_key date)")
    outcome = refresh_warehouse(engine, both)
    assert outcome.postgres_error is None
    assert outcome.failed_postgres_jobs == ["fact_alert"]
    assert outcome.failed_jobs == []
    assert duck_rows(both, "SELECT count(*) FROM fact_alert") == [(1,)]
    (failed,) = pg_rows(both, "SELECT error FROM etl_runs WHERE status = 'failed'")
    assert failed[0] is not None
    assert "alert" in failed[0]
    # The failed job's watermark did not move; the others completed and did.
    marks = {r[0] for r in pg_rows(both, "SELECT job FROM etl_watermarks")}
    assert "fact_alert" not in marks
    assert "fact_work_order" in marks


@pytest.mark.parametrize(
    "name",
    [
        'warehouse"; DROP SCHEMA public CASCADE; --',
        "Warehouse",
        "ware house",
        "9lives",
        "x" * 64,
        "",
        "warehouse.public",
    ],
)
def test_hostile_schema_names_are_refused_by_the_setting(name: str) -> None:
    with pytest.raises(ValidationError, match="warehouse_schema"):
        Settings(warehouse_schema=name)


@pytest.mark.parametrize("name", ["pg_catalog", "pg_temp", "information_schema", "public"])
def test_postgresql_own_schemas_are_refused_before_connecting(name: str) -> None:
    # Valid for the setting's pattern, refused by the warehouse (no server is asked).
    with pytest.raises(WarehouseError, match="refused"):
        PostgresWarehouse("postgresql://nobody@127.0.0.1:1/none", name)


def test_strings_nulls_and_special_values_survive_copy(postgres_url: str, pg_schema: str) -> None:
    tricky = ["", 'quote " and , comma', "line\nbreak", "back\\slash", "é ü 中", None]
    sensors = full_rows(
        schema.DIM_SENSOR,
        sensor_key=list(range(1, 7)),
        device_key=tricky,
        min_value=[0.1, 1 / 3, -0.0, 1e300, 5e-324, None],
        enabled=[True, False, None, True, False, True],
    )
    with PostgresWarehouse(postgres_url, pg_schema) as pg:
        pg.ensure_schema()
        with pg.transaction():
            assert pg.insert(schema.DIM_SENSOR, sensors) == 6
        rows = pg.connection.execute(
            "SELECT device_key, min_value, enabled, sensor_code FROM dim_sensor ORDER BY sensor_key"
        ).fetchall()
        assert [r[0] for r in rows] == tricky
        assert [r[1] for r in rows] == sensors["min_value"].to_pylist()
        assert [r[2] for r in rows] == sensors["enabled"].to_pylist()
        assert {r[3] for r in rows} == {None}
        pg.delete_keys(schema.DIM_SENSOR, pa.table({"sensor_key": [2, 2, 5, 99]}))
        assert pg.count(schema.DIM_SENSOR) == 4
        pg.delete_since(schema.FACT_ALERT, "raised_at", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        with pytest.raises(WarehouseError, match="no column"):
            pg.max_value(schema.DIM_SENSOR, "nope; DROP TABLE dim_sensor")
        assert pg.max_value(schema.DIM_SENSOR, "sensor_key") == 6


def test_every_binary_type_and_null_round_trips(postgres_url: str, pg_schema: str) -> None:
    # fact_alert and dim_date have no DECIMAL column, so they go as binary COPY; nulls in
    # different columns on different rows give rows of several layouts in one batch.
    assert copy_format(schema.FACT_ALERT.arrow_schema) == "binary"
    assert copy_format(schema.DIM_DATE.arrow_schema) == "binary"
    assert copy_format(schema.FACT_WORK_ORDER.arrow_schema) == "csv"
    moments = [dt.datetime(1969, 7, 20, 20, 17, 40, 123456), dt.datetime(2026, 1, 5), None]
    alerts = full_rows(
        schema.FACT_ALERT,
        alert_key=[1, -(2**63), 2**63 - 1],
        rule_id=[None, 7, None],
        kind=["threshold", None, ""],
        raised_at=moments,
        acknowledged_at=[None, moments[0], moments[1]],
        date_key=[-(2**31), 2**31 - 1, None],
        minutes_to_acknowledge=[float("inf"), None, -1.5],
        escalations=[0, None, 3],
    )
    days = full_rows(
        schema.DIM_DATE,
        date_key=[19991231, 20000101, 20991231],
        date=[dt.date(1999, 12, 31), dt.date(2000, 1, 1), None],
        month_name=["December", "January", None],
        is_weekend=[False, None, True],
    )
    with PostgresWarehouse(postgres_url, pg_schema) as pg:
        pg.ensure_schema()
        for table, rows in ((schema.FACT_ALERT, alerts), (schema.DIM_DATE, days)):
            assert pg.insert(table, rows) == 3
            stored = pg.connection.execute(
                sql.SQL("SELECT {} FROM {} ORDER BY 1").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names),
                    sql.Identifier(table.name),
                )
            ).fetchall()
            expected = sorted((tuple(r.values()) for r in rows.to_pylist()), key=lambda r: r[0])
            assert stored == expected


def _load_then_fail(pg: PostgresWarehouse) -> None:
    with pg.transaction():
        pg.insert(schema.DIM_SITE, full_rows(schema.DIM_SITE, site_key=[1], code=["S1"]))
        pg.set_watermark("dim_site", dt.datetime.now(dt.UTC), "run")
        raise RuntimeError("boom")


def test_a_rolled_back_transaction_leaves_nothing(postgres_url: str, pg_schema: str) -> None:
    with PostgresWarehouse(postgres_url, pg_schema) as pg:
        pg.ensure_schema()
        with pytest.raises(RuntimeError, match="boom"):
            _load_then_fail(pg)
        assert pg.count(schema.DIM_SITE) == 0
        assert pg.get_watermark("dim_site") is None
        with pytest.raises(WarehouseError, match="outside"), pg.transaction():
            pg.save_run(RunRecord("r", "j", "full", None, at(1), at(1)))


def test_postgres_runs_send_lineage_in_a_postgres_namespace(
    engine: Engine, seeded: dict[str, int], both: Settings, postgres_url: str
) -> None:
    assert_loaded(refresh_warehouse(engine, both))
    events = [json.loads(line) for line in (both.lineage_file or Path()).read_text().splitlines()]
    pg = [e for e in events if e["job"]["name"].startswith(POSTGRES_JOB_PREFIX)]
    assert {e["eventType"] for e in pg} == {"START", "COMPLETE"}
    outputs = {(o["namespace"], o["name"]) for e in pg for o in e["outputs"]}
    database = postgres_url.rsplit("/", 1)[1]
    assert ("postgres://127.0.0.1:5432", f"{database}.{both.warehouse_schema}.fact_alert") in (
        outputs
    )
    duck = [e for e in events if e["job"]["name"] == "warehouse.fact_alert"]
    assert {o["namespace"] for e in duck for o in e["outputs"]} == {
        f"duckdb://{(both.warehouse_path or Path()).resolve()}"
    }


def test_the_cli_builds_and_lists_each_store(
    engine: Engine,
    seeded: dict[str, int],
    both: Settings,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "WAREHOUSE_PATH": str(both.warehouse_path),
        "LINEAGE_FILE": str(both.lineage_file),
        "WAREHOUSE_POSTGRES_URL": both.warehouse_postgres_url or "",
        "WAREHOUSE_SCHEMA": both.warehouse_schema,
    }
    for name, value in env.items():
        monkeypatch.setenv(f"MAINTAINPRO_{name}", value)
    runner = CliRunner()
    only_pg = runner.invoke(app, ["warehouse", "build", "--target", "postgres"])
    assert only_pg.exit_code == 0, only_pg.output
    assert "fact_alert (postgres)" in only_pg.output
    # PostgreSQL runs the 14 ETL jobs and the copy of DuckDB's ML predictions.
    assert f"{both.warehouse_schema}: 15 job(s) completed" in only_pg.output
    assert not (both.warehouse_path or Path()).exists()

    built = runner.invoke(app, ["warehouse", "build"])
    assert built.exit_code == 0, built.output
    assert "warehouse.duckdb: 14 job(s) completed" in built.output
    assert f"{both.warehouse_schema}: 15 job(s) completed" in built.output

    runs = runner.invoke(app, ["warehouse", "runs", "--job", "fact_alert"])
    assert runs.exit_code == 0, runs.output
    assert "PostgreSQL warehouse runs" in runs.output
    assert runs.output.count("completed") == 3  # one DuckDB run, two PostgreSQL runs
    duck_only = runner.invoke(app, ["warehouse", "runs", "--target", "duckdb"])
    assert "PostgreSQL" not in duck_only.output

    monkeypatch.delenv("MAINTAINPRO_WAREHOUSE_POSTGRES_URL")
    refused = runner.invoke(app, ["warehouse", "build", "--target", "all"])
    assert refused.exit_code == 1
    assert "needs warehouse_postgres_url" in refused.output


def test_duckdb_is_read_back_unchanged_by_a_postgres_only_build(
    engine: Engine, seeded: dict[str, int], both: Settings
) -> None:
    first = refresh_warehouse(engine, both, stores=["duckdb"])
    assert first.postgres_records == []
    before = duck_rows(both, "SELECT run_id FROM etl_runs")
    outcome = refresh_warehouse(engine, both, stores=["postgres"])
    assert outcome.records == []
    assert outcome.failed_postgres_jobs == []
    assert duck_rows(both, "SELECT run_id FROM etl_runs") == before


def _predictions(settings: Settings, run_at: dt.datetime, values: list[float]) -> None:
    """One RUL run (one row per value) written to the DuckDB file as the ML job does."""
    table = schema.FACT_PREDICTION
    rows = [
        {
            "predicted_at": naive_utc(run_at),
            "date_key": int(run_at.strftime("%Y%m%d")),
            "kind": "rul",
            "model_id": 1,
            "model_version": 1,
            "sensor_key": sensor,
            "asset_key": 10 + sensor,
            "site_key": 1,
            "value": value,
            "low": value - 1.0,
            "high": None,
            "threshold": 90.0,
            "threshold_source": "alert rule",
            "failure_at": naive_utc(run_at + dt.timedelta(days=value)),
        }
        for sensor, value in enumerate(values, start=1)
    ]
    with DuckDbWarehouse(settings.warehouse_path) as warehouse:  # type: ignore[arg-type]
        warehouse.ensure_schema()
        with warehouse.transaction():
            warehouse.connection.execute(
                "DELETE FROM fact_prediction WHERE predicted_at = ?", [naive_utc(run_at)]
            )
            warehouse.insert(table, pa.Table.from_pylist(rows, table.arrow_schema))


def test_ml_predictions_reach_postgres_and_a_rewritten_run_replaces_its_rows(
    engine: Engine, seeded: dict[str, int], both: Settings
) -> None:
    first, second = at(3), at(5)
    _predictions(both, first, [12.5, 30.0])
    assert_loaded(refresh_warehouse(engine, both))
    sql_text = "SELECT predicted_at, sensor_key, value, high FROM fact_prediction"
    assert sorted(pg_rows(both, sql_text)) == sorted(duck_rows(both, sql_text))
    assert len(pg_rows(both, sql_text)) == 2
    # A new run, and the same run written again with other values (the job re-ran).
    _predictions(both, second, [11.0])
    _predictions(both, second, [10.0, 28.0, 3.5])
    outcome = refresh_warehouse(engine, both)
    assert_loaded(outcome)
    copy = next(r for r in outcome.postgres_records if r.job == PREDICTIONS_JOB)
    # From PostgreSQL's newest run (the first) on: both runs, the first replacing itself.
    assert copy.rows_out == 5
    assert sorted(pg_rows(both, sql_text)) == sorted(duck_rows(both, sql_text))
    assert len(pg_rows(both, sql_text)) == 5
    # Nothing new: the newest run is copied again and replaces itself, still five rows.
    assert_loaded(refresh_warehouse(engine, both))
    assert sorted(pg_rows(both, sql_text)) == sorted(duck_rows(both, sql_text))
