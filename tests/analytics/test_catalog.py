"""The dataset catalog: what it lists, its policies, lineage graphs, freshness and row counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from analytics.exports.exports_world import add_site_b
from maintainpro.analytics import kpis, schema
from maintainpro.analytics.catalog import (
    Catalog,
    CatalogError,
    LoadRecord,
    build_catalog,
    catalog_for,
    freshness,
    parse_policies,
    policies_at,
    read_status,
    shipped_policies,
    summarise_runs,
)
from maintainpro.analytics.exports.schedules import parse_definitions
from maintainpro.analytics.jobs import ALL_JOBS
from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.odata.model import entity_sets
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.semantic.materialise import refresh
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.semantic.preaggs import layouts
from maintainpro.analytics.warehouse import DuckDbWarehouse, RunRecord
from maintainpro.config import Settings

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def shipped() -> Catalog:
    """The catalog with the shipped policies and no scheduled exports."""
    return build_catalog(shipped_policies(), default_model())


def test_every_table_view_entity_set_and_cube_table_is_catalogued() -> None:
    names = set(shipped().datasets)
    expected = (
        set(schema.TABLES)
        | set(kpis.VIEWS)
        | set(entity_sets())
        | {layout.table for layout in layouts(default_model())}
    )
    assert names == expected


def test_shipped_policies_mark_money_and_people_confidential() -> None:
    catalog = shipped()
    confidential = {d.name for d in catalog if d.classification == "confidential"}
    assert {"fact_spend", "fact_invoice", "fact_po_line", "dim_user"} <= confidential
    # Derived from confidential inputs: confidential too, owned by the inputs' owner.
    for name in ("rollup_spend_supplier_month", "preagg_spend_daily"):
        dataset = catalog.get(name)
        assert dataset is not None
        assert (dataset.owner, dataset.classification) == ("procurement", "confidential")
    assert {d.classification for d in catalog if d.name in ("dim_date", "dim_time_of_day")} == {
        "public"
    }
    work_orders = catalog.get("fact_work_order")
    assert work_orders is not None
    assert (work_orders.owner, work_orders.refresh) == ("maintenance", dt.timedelta(hours=6))
    # A rollup is expected as often as its most frequently refreshed input.
    sensor_day = catalog.get("rollup_sensor_day")
    assert sensor_day is not None
    assert sensor_day.refresh == dt.timedelta(hours=2)


def test_an_override_file_changes_fields_per_dataset(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "defaults: {refresh_hours: 12}\n"
        "datasets:\n"
        "  fact_work_order: {owner: reliability}\n"
        "  fact_sensor_hour: {classification: confidential}\n"
        "  rollup_spend_supplier_month: {classification: public}\n",
        encoding="utf-8",
    )
    catalog = build_catalog(policies_at(path), default_model())
    orders = catalog.get("fact_work_order")
    assert orders is not None
    # Only the owner changed: the shipped refresh interval and classification stay.
    assert (orders.owner, orders.classification, orders.refresh.total_seconds()) == (
        "reliability",
        "internal",
        6 * 3600,
    )
    receipts = catalog.get("fact_receipt")  # not in either file: the new default interval
    assert receipts is not None
    assert receipts.refresh == dt.timedelta(hours=12)
    # Classification flows downstream and cannot be lowered below an input's.
    day = catalog.get("rollup_sensor_day")
    spend = catalog.get("rollup_spend_supplier_month")
    assert day is not None
    assert spend is not None
    assert day.classification == "confidential"
    assert spend.classification == "confidential"
    assert policies_at(tmp_path / "absent.yaml") == shipped_policies()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "datasets:\n  fact_spend: {classification: secret}\n",
            "datasets.fact_spend.classification",
        ),
        ("datasets:\n  fact_spend: {steward: me}\n", "steward"),
        ("defaults: {refresh_hours: -1}\n", "defaults.refresh_hours"),
        ("datasets:\n  fact_spend: {owner: '<b>x</b>'}\n", "datasets.fact_spend.owner"),
        ("datasets: [", "not valid YAML"),
    ],
)
def test_a_bad_policy_file_is_refused_with_where(text: str, expected: str) -> None:
    with pytest.raises(CatalogError, match=expected):
        parse_policies(text)


def _acyclic(edges: list[tuple[str, str]]) -> bool:
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        if state.get(node) == 1:
            return False
        if state.get(node) == 2:
            return True
        state[node] = 1
        ok = all(visit(n) for n in graph.get(node, []))
        state[node] = 2
        return ok

    return all(visit(n) for n in list(graph))


def test_lineage_reaches_operational_columns_and_publications() -> None:
    exports = parse_definitions(
        "exports:\n  - {name: spend-lake, dataset: fact_spend, format: lake, cron: '0 * * * *'}\n"
    )
    catalog = build_catalog(shipped_policies(), default_model(), exports)
    for dataset in catalog:
        graph = catalog.lineage(dataset.name)
        ids = {n.id for n in graph.nodes}
        assert graph.focus in ids
        assert all(e.source in ids and e.target in ids for e in graph.edges)
        assert _acyclic([(e.source, e.target) for e in graph.edges]), dataset.name

    graph = catalog.lineage("preagg_spend_daily")
    edges = {(e.source, e.target): e.columns for e in graph.edges}
    assert ("source:supplier_invoice_lines", "job:fact_invoice") in edges
    assert edges[("source:supplier_invoice_lines", "job:fact_invoice")] == (
        "id",
        "invoice_id",
        "line_total",
    )
    assert ("job:fact_invoice", "dataset:fact_spend") in edges
    assert ("dataset:fact_spend", "cube:Spend") in edges
    assert ("dataset:dim_supplier", "cube:Spend") in edges  # a joined cube's table
    assert ("cube:Spend", "dataset:preagg_spend_daily") in edges
    assert ("dataset:preagg_spend_daily", "api:semantic") in edges

    spend = catalog.lineage("fact_spend")
    targets = {e.target for e in spend.edges if e.source == "dataset:fact_spend"}
    assert {
        "odata:fact_spend",
        "export:spend-lake",
        "dataset:rollup_spend_supplier_month",
        "cube:Spend",
    } <= targets
    # Upstream of fact_spend there is nothing of the work-order side.
    assert not any(n.id == "source:work_orders" for n in spend.nodes)


def test_freshness_against_the_refresh_interval() -> None:
    hour = dt.timedelta(hours=1)
    done = LoadRecord(NOW - 2 * hour, NOW - 2 * hour, "completed")
    assert freshness(done, 3 * hour, NOW).state == "fresh"
    stale = freshness(done, hour, NOW)
    assert (stale.state, stale.age) == ("stale", 2 * hour)
    broken = LoadRecord(NOW - 2 * hour, NOW - 0.1 * hour, "failed", "RuntimeError: x")
    failed = freshness(broken, 3 * hour, NOW)
    assert (failed.state, failed.last_success, failed.last_error) == (
        "failed",
        NOW - 2 * hour,
        "RuntimeError: x",
    )
    assert freshness(None, hour, NOW).state == "never"
    assert freshness(LoadRecord(None, NOW, "failed"), hour, NOW).state == "failed"
    assert freshness(done, hour, NOW, exists=False).state == "missing"


def _run(job: str, status: str, start: float, seconds: float, rows: int) -> RunRecord:
    began = NOW + dt.timedelta(minutes=start)
    return RunRecord(
        run_id=f"{job}-{start}",
        job=job,
        mode="incremental",
        window_start=None,
        window_end=began,
        started_at=began,
        finished_at=began + dt.timedelta(seconds=seconds),
        rows_out=rows,
        status=status,
    )


def test_run_summaries_per_job() -> None:
    runs = [  # newest first, as read_runs gives them
        _run("fact_alert", "failed", 30, 1.0, 0),
        _run("dim_site", "completed", 20, 0.5, 4),
        _run("fact_alert", "completed", 10, 2.0, 500),
        _run("fact_alert", "completed", 0, 4.0, 100),
    ]
    summary = {s.job: s for s in summarise_runs(runs)}
    assert [s.job for s in summarise_runs(runs)] == ["dim_site", "fact_alert"]  # ETL order
    alerts = summary["fact_alert"]
    assert (alerts.last.status, alerts.runs, alerts.failures) == ("failed", 3, 1)
    assert alerts.mean_duration_s == pytest.approx((1.0 + 2.0 + 4.0) / 3)
    assert alerts.rows_per_s == pytest.approx(250.0)  # the last completed run: 500 rows in 2 s
    assert alerts.last_success == NOW + dt.timedelta(minutes=10, seconds=2)


def test_status_counts_rows_per_scope_and_tracks_loads(
    engine: Engine,
    db: Session,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    lineage: Lineage,
) -> None:
    site_b = add_site_b(db)["site_b"]
    catalog = shipped()
    before = read_status(warehouse.connection, catalog, scope=None, now=NOW)
    assert {s.freshness.state for s in before.values()} == {"missing"}

    records = build(engine, warehouse, lineage, BuildOptions(base_currency="USD", full=True))
    finished = max(r.finished_at for r in records if r.finished_at)
    now = finished + dt.timedelta(minutes=5)
    everyone = read_status(warehouse.connection, catalog, scope=None, now=now)
    site_a = read_status(warehouse.connection, catalog, scope=frozenset({seeded["site"]}), now=now)

    def rows(sql: str, *params: int) -> int:
        return int(warehouse.connection.execute(sql, list(params)).fetchall()[0][0])

    total = rows("SELECT count(*) FROM fact_work_order")
    by_site = "SELECT count(*) FROM fact_work_order WHERE site_key = ?"
    mine = rows(by_site, seeded["site"])
    assert rows(by_site, site_b) > 0
    assert (everyone["fact_work_order"].rows, site_a["fact_work_order"].rows) == (total, mine)
    # Scoped through fact_work_order: only site A's status intervals.
    mine_status = rows(
        "SELECT count(*) FROM fact_work_order_status WHERE work_order_key IN "
        "(SELECT work_order_key FROM fact_work_order WHERE site_key = ?)",
        seeded["site"],
    )
    assert site_a["fact_work_order_status"].rows == mine_status
    assert (site_a["fact_spend"].visible, site_a["fact_spend"].rows) == (False, None)
    assert everyone["fact_spend"].rows == rows("SELECT count(*) FROM fact_spend")
    assert site_a["dim_date"].rows == rows("SELECT count(*) FROM dim_date")  # shared

    fresh = everyone["fact_alert"].freshness
    alert_run = next(r for r in records if r.job == "fact_alert")
    assert (fresh.state, fresh.last_success) == ("fresh", alert_run.finished_at)
    assert everyone["rollup_sensor_day"].rows is None  # computed on read
    assert everyone["rollup_sensor_day"].freshness.state == "fresh"
    assert everyone["kpi_asset"].exists
    assert everyone["preagg_work_orders_daily"].freshness.state == "missing"
    # Much later, without a new run, the 2-hour facts are stale and the daily ones not yet.
    later = read_status(
        warehouse.connection, catalog, scope=None, now=finished + dt.timedelta(hours=3)
    )
    assert later["fact_alert"].freshness.state == "stale"
    assert later["fact_receipt"].freshness.state == "fresh"
    assert later["rollup_sensor_day"].freshness.state == "stale"

    # Cube tables are fresh once refreshed.
    refresh(warehouse.connection, default_model(), lineage)
    cubes = read_status(warehouse.connection, catalog, scope=None, now=dt.datetime.now(dt.UTC))
    assert cubes["preagg_work_orders_daily"].freshness.state == "fresh"
    assert cubes["preagg_work_orders_daily"].rows == rows(
        "SELECT count(*) FROM preagg_work_orders_daily"
    )


def test_a_failed_job_marks_its_datasets_failed(
    engine: Engine,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    lineage: Lineage,
) -> None:
    build(engine, warehouse, lineage, BuildOptions(base_currency="USD", full=True))
    alerts = next(j for j in ALL_JOBS if j.name == "fact_alert")

    class Broken:
        name = alerts.name
        description = alerts.description
        outputs = alerts.outputs
        overlap = alerts.overlap

        def run(self, *args: object) -> None:
            raise RuntimeError("alerts table locked")

    build(engine, warehouse, lineage, BuildOptions(base_currency="USD", jobs=(Broken(),)))  # type: ignore[arg-type]
    status = read_status(warehouse.connection, shipped(), scope=None, now=dt.datetime.now(dt.UTC))
    failed = status["fact_alert"].freshness
    assert failed.state == "failed"
    assert failed.last_error == "RuntimeError: alerts table locked"
    assert failed.last_success is not None  # the previous run's rows are still there
    assert status["fact_work_order"].freshness.state == "fresh"


def test_a_broken_override_is_reported_and_the_shipped_policies_apply(
    settings: Settings, tmp_path: Path
) -> None:
    configured = settings.model_copy(update={"warehouse_path": tmp_path / "warehouse.duckdb"})
    (tmp_path / "catalog.yaml").write_text(
        "datasets:\n  fact_spend: {classification: public, colour: red}\n", encoding="utf-8"
    )
    loaded = catalog_for(configured)
    (notice,) = loaded.notices
    assert "datasets.fact_spend.colour" in notice
    assert "the shipped policies apply" in notice
    spend = loaded.catalog.get("fact_spend")
    assert spend is not None
    assert spend.classification == "confidential"


def test_predictions_are_as_fresh_as_the_newest_model_run(warehouse: DuckDbWarehouse) -> None:
    warehouse.ensure_schema()
    catalog = shipped()
    empty = read_status(warehouse.connection, catalog, scope=None, now=NOW)
    assert empty["fact_prediction"].freshness.state == "never"
    run_at = NOW - dt.timedelta(hours=1)
    warehouse.connection.execute(
        "INSERT INTO fact_prediction (predicted_at, kind, sensor_key, value) VALUES (?, ?, ?, ?)",
        [run_at.replace(tzinfo=None), "rul", 7, 12.5],
    )
    status = read_status(warehouse.connection, catalog, scope=None, now=NOW)
    fresh = status["fact_prediction"].freshness
    assert (fresh.state, fresh.last_success) == ("fresh", run_at)
    # No model run for longer than its refresh interval: stale.
    later = NOW + catalog.datasets["fact_prediction"].refresh
    assert (
        read_status(warehouse.connection, catalog, scope=None, now=later)[
            "fact_prediction"
        ].freshness.state
        == "stale"
    )
