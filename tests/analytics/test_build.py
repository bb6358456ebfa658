"""The star schema built from a seeded operational database (SQLite and PostgreSQL): contents,
incremental loads, idempotence, failures."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from analytics.analytics_world import add_readings, at
from maintainpro.analytics import schema
from maintainpro.analytics.jobs import ALL_JOBS, Job, JobResult, Window
from maintainpro.analytics.jobs.work_orders import WorkOrdersJob
from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.warehouse import (
    DuckDbWarehouse,
    RunRecord,
    WarehouseTarget,
    connect,
    first_row,
)
from maintainpro.core.maintenance import open_work_order
from maintainpro.core.work_orders import WorkOrderType
from maintainpro.supply.purchasing import PurchaseOrder

NO_OVERLAP = tuple(dataclasses.replace(job, overlap=dt.timedelta(0)) for job in ALL_JOBS)


def run(
    engine: Engine,
    warehouse: DuckDbWarehouse,
    lineage: Lineage,
    *,
    full: bool = False,
    jobs: tuple[Job, ...] = ALL_JOBS,
) -> dict[str, RunRecord]:
    """Build and return the records by job, checking each ran."""
    records = build(
        engine, warehouse, lineage, BuildOptions(base_currency="USD", full=full, jobs=jobs)
    )
    assert [r.job for r in records] == [j.name for j in jobs]
    return {r.job: r for r in records}


def rows(warehouse: DuckDbWarehouse, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on the warehouse."""
    return warehouse.connection.execute(sql, list(params)).fetchall()


def snapshot(warehouse: DuckDbWarehouse) -> dict[str, list[tuple[Any, ...]]]:
    """Every dimension and fact table's rows, sorted."""
    return {
        t.name: rows(warehouse, f"SELECT * FROM {t.name} ORDER BY ALL")  # noqa: S608 - schema names
        for t in (*schema.DIMENSIONS, *schema.FACTS)
    }


def test_a_full_build_fills_every_dimension_and_fact(
    engine: Engine, seeded: dict[str, int], warehouse: DuckDbWarehouse, lineage: Lineage
) -> None:
    records = run(engine, warehouse, lineage)
    assert {r.status for r in records.values()} == {"completed"}
    assert {r.mode for r in records.values()} == {"full"}

    # Asset hierarchy: the pump's line L1 sits in area A1; the motor hangs under the pump.
    assets = rows(
        warehouse,
        "SELECT tag, site_code, line_code, area_code, parent_asset_key, asset_class "
        "FROM dim_asset ORDER BY tag",
    )
    assert assets == [
        ("M-1", "S1", "L1", "A1", seeded["pump"], "generic"),
        ("P-1", "S1", "L1", "A1", None, "pump"),
    ]
    # Units normalised: degF becomes °C, the range converted with it.
    (temp,) = rows(
        warehouse,
        "SELECT type, unit, source_unit, min_value, max_value, asset_key FROM dim_sensor "
        "WHERE sensor_key = ?",
        seeded["temp"],
    )
    assert temp[:3] == ("temperature", "°C", "degF")
    assert temp[3] == pytest.approx(0.0, abs=1e-9)
    assert temp[4] == pytest.approx(100.0)
    assert temp[5] == seeded["pump"]

    # Six hours of two sensors; the corrupt bucket (infinite values) is dropped and counted.
    assert records["fact_sensor_hour"].rows_in == 13
    assert records["fact_sensor_hour"].rows_rejected == 1
    assert records["fact_sensor_hour"].rows_out == 12
    (hour2,) = rows(
        warehouse,
        "SELECT reading_count, value_avg, value_min, value_max, unit, out_of_range, date_key, "
        "time_key, hour_start FROM fact_sensor_hour WHERE sensor_key = ? AND time_key = 120",
        seeded["temp"],
    )
    average_f = (2.00 + 2.01 + 2.02 + 2.03) / 4
    assert hour2[0] == 4
    assert hour2[1] == pytest.approx((average_f - 32) * 5 / 9)
    assert hour2[2] == pytest.approx((2.00 - 32) * 5 / 9)
    assert hour2[3] == pytest.approx((2.03 - 32) * 5 / 9)
    # About -16 °C is below the sensor's 0 °C minimum; the vibration values are in range.
    assert hour2[4:8] == ("°C", True, 20260105, 120)
    assert hour2[8] == at(2).replace(tzinfo=None)
    flags = rows(
        warehouse,
        "SELECT DISTINCT out_of_range FROM fact_sensor_hour WHERE sensor_key = ?",
        seeded["vib"],
    )
    assert flags == [(False,)]

    (alert,) = rows(warehouse, "SELECT severity, minutes_to_acknowledge, site_key FROM fact_alert")
    assert alert[0] == "high"
    assert alert[1] == pytest.approx(12.0)
    assert alert[2] == seeded["site"]

    (wo1,) = rows(
        warehouse,
        "SELECT is_failure, hours_to_start, downtime_hours, waiting_for_parts_hours, "
        "labour_hours, parts_cost_base, cost_complete, assignee_key "
        "FROM fact_work_order WHERE work_order_key = ?",
        seeded["wo1"],
    )
    # 2 x 10.00 USD + 1 x 100.00 EUR at 1.08 = 128.00 USD.
    assert wo1 == (True, 2.0, 4.0, 1.5, Decimal("2.50"), Decimal("128.0000"), True, seeded["tech"])
    intervals = rows(
        warehouse,
        "SELECT seq, status, hours FROM fact_work_order_status WHERE work_order_key = ? "
        "ORDER BY seq",
        seeded["wo1"],
    )
    assert intervals == [
        (0, "open", 0.5),
        (1, "waiting_for_parts", 1.5),
        (2, "in_progress", 2.0),
        (3, "completed", None),
    ]
    outcomes = rows(
        warehouse,
        "SELECT work_order_key, outcome FROM fact_schedule_compliance ORDER BY work_order_key",
    )
    assert outcomes == [(seeded["wo3"], "on_time"), (seeded["wo4"], "missed")]

    (line,) = rows(
        warehouse,
        "SELECT line_total, currency, line_total_base, base_currency, received_quantity "
        "FROM fact_po_line",
    )
    assert line == (Decimal("25.0000"), "EUR", Decimal("27.0000"), "USD", Decimal("2.000"))
    (receipt,) = rows(warehouse, "SELECT lead_time_days, days_late, supplier_key FROM fact_receipt")
    assert receipt[0] == pytest.approx((40 - 3) / 24)
    assert receipt[1:] == (0, seeded["supplier"])
    invoices = rows(
        warehouse, "SELECT invoice_number, status, total_base FROM fact_invoice ORDER BY ALL"
    )
    assert invoices == [
        ("INV-1", "matched", Decimal("27.0000")),
        ("INV-2", "rejected", Decimal("27.0000")),
    ]
    spend = rows(warehouse, "SELECT invoice_key, amount, amount_base, part_key FROM fact_spend")
    assert spend == [(seeded["invoice"], Decimal("25.0000"), Decimal("27.0000"), seeded["part"])]

    currencies = rows(warehouse, "SELECT currency_code, minor_units, is_base FROM dim_currency")
    assert sorted(currencies) == [("EUR", 2, False), ("USD", 2, True)]
    monday = rows(
        warehouse, "SELECT day_of_week, day_name, iso_week FROM dim_date WHERE date_key = 20260105"
    )
    assert monday == [(1, "Monday", 2)]
    assert rows(warehouse, "SELECT count(*) FROM dim_time_of_day") == [(1440,)]


def test_an_incremental_run_reads_only_what_changed_and_moves_the_watermarks(
    engine: Engine,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    lineage: Lineage,
    db: Session,
) -> None:
    first = run(engine, warehouse, lineage, jobs=NO_OVERLAP)
    marks = {job: warehouse.get_watermark(job) for job in first}
    # The sensor job's watermark is the newest hour it saw (the corrupt bucket at 6 h).
    assert marks["fact_sensor_hour"] == at(6)

    add_readings(db.connection(), seeded["vib"], range(8, 10))
    open_work_order(db, asset_id=seeded["motor"], title="noise", type=WorkOrderType.CORRECTIVE)
    db.commit()
    second = run(engine, warehouse, lineage, jobs=NO_OVERLAP)

    assert {r.mode for r in second.values()} == {"incremental"}
    assert {r.status for r in second.values()} == {"completed"}
    # The hour at the watermark is read again (it may still be filling), then the new ones.
    sensor = second["fact_sensor_hour"]
    assert (sensor.rows_in, sensor.rows_rejected, sensor.rows_out) == (3, 1, 2)
    assert warehouse.get_watermark("fact_sensor_hour") == at(9)
    assert second["fact_work_order"].rows_in == 1
    # The open preventive order is judged again on every run (pending can turn missed).
    assert second["fact_schedule_compliance"].rows_in == 1
    for job in ("dim_asset", "dim_sensor", "dim_calendar", "fact_alert", "fact_purchasing"):
        assert second[job].rows_in == 0, job
    later = warehouse.get_watermark("fact_work_order")
    earlier = marks["fact_work_order"]
    assert later is not None
    assert earlier is not None
    assert later > earlier
    assert rows(warehouse, "SELECT count(*) FROM fact_work_order") == [(7,)]
    assert rows(warehouse, "SELECT count(*) FROM fact_sensor_hour") == [(14,)]


def test_running_a_window_again_changes_nothing(
    engine: Engine, seeded: dict[str, int], warehouse: DuckDbWarehouse, lineage: Lineage
) -> None:
    run(engine, warehouse, lineage)
    before = snapshot(warehouse)
    # Every job's overlap covers all the seeded data, so this re-reads all of it.
    again = run(engine, warehouse, lineage)
    assert again["fact_work_order"].rows_in == 6
    assert snapshot(warehouse) == before
    run(engine, warehouse, lineage, full=True)
    assert snapshot(warehouse) == before
    for table in (*schema.DIMENSIONS, *schema.FACTS):
        keys = ", ".join(table.key)
        duplicates = rows(
            warehouse,
            f"SELECT {keys}, count(*) FROM {table.name} GROUP BY ALL HAVING count(*) > 1",  # noqa: S608
        )
        assert duplicates == [], table.name


@dataclasses.dataclass(frozen=True)
class Failing:
    """The work-order job, failing after it has written its rows."""

    inner: WorkOrdersJob = dataclasses.field(default_factory=WorkOrdersJob)
    name: str = "fact_work_order"
    description: str = "fails on purpose"
    outputs: tuple[schema.WarehouseTable, ...] = WorkOrdersJob.outputs
    overlap: dt.timedelta = dt.timedelta(0)

    def run(self, source: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Write, then fail."""
        self.inner.run(source, target, window)
        raise RuntimeError("source went away")


def test_a_failed_job_is_recorded_keeps_its_watermark_and_emits_fail(
    engine: Engine,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    lineage: Lineage,
    lineage_path: Path,
    db: Session,
) -> None:
    run(engine, warehouse, lineage, jobs=NO_OVERLAP)
    mark = warehouse.get_watermark("fact_work_order")
    before = snapshot(warehouse)
    open_work_order(db, asset_id=seeded["pump"], title="leak", type=WorkOrderType.CORRECTIVE)
    db.commit()

    jobs = (Failing(), *(j for j in NO_OVERLAP if j.name == "fact_alert"))
    records = run(engine, warehouse, lineage, jobs=jobs)

    failed = records["fact_work_order"]
    assert failed.status == "failed"
    assert failed.error == "RuntimeError: source went away"
    assert records["fact_alert"].status == "completed"  # the jobs after it still ran
    assert warehouse.get_watermark("fact_work_order") == mark
    assert snapshot(warehouse) == before  # the rows it wrote were rolled back
    (stored,) = warehouse.recent_runs(limit=1, job="fact_work_order")
    assert (stored.run_id, stored.status, stored.error) == (
        failed.run_id,
        "failed",
        failed.error,
    )
    events = [json.loads(line) for line in lineage_path.read_text().splitlines()]
    mine = [e for e in events if e["run"]["runId"] == failed.run_id]
    assert [e["eventType"] for e in mine] == ["START", "FAIL"]
    error = mine[1]["run"]["facets"]["errorMessage"]
    assert error["message"] == "RuntimeError: source went away"
    assert error["programmingLanguage"] == "python"
    assert "source went away" in error["stackTrace"]

    # The next good run picks up what the failed one missed.
    recovered = run(engine, warehouse, lineage, jobs=NO_OVERLAP)
    assert recovered["fact_work_order"].rows_in == 1
    assert rows(warehouse, "SELECT count(*) FROM fact_work_order") == [(7,)]


def test_an_order_changed_after_the_last_run_is_loaded_again(
    engine: Engine,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    lineage: Lineage,
    db: Session,
) -> None:
    # Regression: the purchasing job read a watermark with fetchone(), which leaves a DuckDB
    # result open, and registering the changed rows then failed with ResourceInUse.
    run(engine, warehouse, lineage, jobs=NO_OVERLAP)
    order = db.get(PurchaseOrder, seeded["po"])
    assert order is not None
    order.note = "expedite"
    db.commit()
    second = run(engine, warehouse, lineage, jobs=NO_OVERLAP)
    purchasing = second["fact_purchasing"]
    assert (purchasing.status, purchasing.error) == ("completed", None)
    assert purchasing.rows_in >= 1
    table = schema.FACT_PO_LINE.name
    assert rows(warehouse, f"SELECT count(*) FROM {table}") == [(1,)]  # noqa: S608 - schema name


def test_two_readers_open_the_same_warehouse_file(
    engine: Engine, seeded: dict[str, int], warehouse_path: Path, lineage: Lineage
) -> None:
    with DuckDbWarehouse(warehouse_path) as target:
        run(engine, target, lineage)
    first = connect(warehouse_path, read_only=True)
    second = connect(warehouse_path, read_only=True)
    try:
        # The second connection shares the first one's locked configuration instead of failing.
        assert first_row(second.execute("SELECT current_setting('TimeZone')")) == ("UTC",)
        assert first_row(first.execute("SELECT count(*) FROM dim_asset")) == first_row(
            second.execute("SELECT count(*) FROM dim_asset")
        )
    finally:
        first.close()
        second.close()
