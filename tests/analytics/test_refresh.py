"""The warehouse refresh the hub schedules: ETL jobs, then cube pre-aggregations."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from maintainpro.analytics.jobs import ALL_JOBS
from maintainpro.analytics.refresh import refresh_warehouse, scheduled_refresh
from maintainpro.analytics.warehouse import connect, first_row
from maintainpro.app import create_app
from maintainpro.config import Settings


def test_a_refresh_loads_the_facts_and_then_the_cubes(
    engine: Engine, seeded: dict[str, int], settings: Settings, tmp_path: Path
) -> None:
    configured = settings.model_copy(
        update={"warehouse_path": tmp_path / "w.duckdb", "lineage_file": tmp_path / "l.jsonl"}
    )
    outcome = refresh_warehouse(engine, configured)
    assert [r.job for r in outcome.records] == [j.name for j in ALL_JOBS]
    assert (outcome.failed_jobs, outcome.failed_cubes) == ([], [])
    assert outcome.cubes
    connection = connect(tmp_path / "w.duckdb", read_only=True)
    try:
        for result in outcome.cubes:
            row = first_row(connection.execute(f"SELECT count(*) FROM {result.table}"))  # noqa: S608 - our table names
            assert row is not None
        work_orders = first_row(connection.execute("SELECT count(*) FROM fact_work_order"))
        assert work_orders is not None
        assert work_orders[0] > 0
    finally:
        connection.close()
    # The scheduled form runs the same refresh again, incrementally, without raising.
    scheduled_refresh(engine, configured)
    assert "COMPLETE" in (tmp_path / "l.jsonl").read_text()


def test_the_app_schedules_the_refresh_and_the_exports(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"run_background_jobs": True}))
    names = {status.name for status in app.state.supervisor.statuses}
    assert {"warehouse-refresh", "bi-exports"} <= names
    off = settings.model_copy(
        update={"run_background_jobs": True, "warehouse_refresh_interval_s": 0}
    )
    names = {status.name for status in create_app(off).state.supervisor.statuses}
    assert "warehouse-refresh" not in names
    assert "bi-exports" in names
