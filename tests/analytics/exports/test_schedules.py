"""Scheduled exports: the YAML definitions and their checks, when a definition is due, running
the due ones (a failure stops no other), the state kept between runs, the supervisor's job."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from pyqvd import QvdTable

from analytics.exports.conftest import Built
from analytics.exports.exports_world import export_events
from maintainpro.analytics.exports.datasets import get_dataset
from maintainpro.analytics.exports.lake import parquet_root, read_partitioned
from maintainpro.analytics.exports.schedules import (
    STATE_FILE,
    ScheduleError,
    exports_dir,
    is_due,
    load_state,
    output_path,
    parse_definitions,
    run_definitions,
    run_due_exports,
    schedule_file,
)
from maintainpro.analytics.lineage import Lineage
from maintainpro.config import Settings

NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def test_definitions_are_read_from_yaml() -> None:
    (hourly, lake) = parse_definitions(
        """
exports:
  - name: work-orders-tableau
    dataset: fact_work_order
    format: hyper
    cron: "0 * * * *"
    sites: [3, 1]
  - name: readings-lake
    dataset: fact_sensor_hour
    format: lake
    cron: "*/15 * * * *"
    lookback_days: 2
"""
    )
    assert hourly.scope == frozenset({1, 3})
    assert hourly.format.file_format is not None
    assert lake.scope is None
    assert lake.format.file_format is None
    assert lake.next_run(NOON) == NOON + dt.timedelta(minutes=15)
    assert parse_definitions("") == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("exports: [{name: a, dataset: fact_alert, format: csv, cron: 'every hour'}]", "cron"),
        ("exports: [{name: a, dataset: no_such, format: csv, cron: '0 * * * *'}]", "dataset"),
        ("exports: [{name: a, dataset: fact_alert, format: pdf, cron: '0 * * * *'}]", "format"),
        ("exports: [{name: ../up, dataset: fact_alert, format: csv, cron: '0 * * * *'}]", "name"),
        (
            "exports: [{name: a, dataset: fact_alert, format: csv, cron: '0 * * * *', "
            "lookback_days: 1}]",
            "lake and delta",
        ),
        (
            "exports: [{name: a, dataset: dim_asset, format: lake, cron: '0 * * * *', "
            "lookback_days: 1}]",
            "no days",
        ),
        (
            "exports: [{name: a, dataset: fact_alert, format: csv, cron: '0 * * * *'}, "
            "{name: a, dataset: fact_alert, format: qvd, cron: '0 * * * *'}]",
            "unique",
        ),
        ("exports: [{name: a, dataset: fact_alert, format: csv, cron: '0 * * * *', x: 1}]", "x"),
        ("exports: [unclosed", "not valid YAML"),
    ],
)
def test_an_invalid_schedule_is_refused_with_the_reason(document: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_definitions(document)


def test_a_definition_is_due_when_its_cron_fires_after_the_last_run() -> None:
    (hourly,) = parse_definitions(
        "exports: [{name: h, dataset: fact_alert, format: csv, cron: '0 * * * *'}]"
    )
    assert is_due(hourly, None, NOON)  # never run
    from maintainpro.analytics.exports.schedules import RunState

    ran = RunState(last_run_at=NOON, status="completed")
    assert not is_due(hourly, ran, NOON + dt.timedelta(minutes=59))
    assert is_due(hourly, ran, NOON + dt.timedelta(hours=1))
    (off,) = parse_definitions(
        "exports: [{name: h, dataset: fact_alert, format: csv, cron: '0 * * * *', enabled: false}]"
    )
    assert not is_due(off, None, NOON)


SCHEDULE = """
exports:
  - name: site-a-orders
    dataset: fact_work_order
    format: qvd
    cron: "0 * * * *"
    sites: [{site_a}]
  - name: too-big
    dataset: fact_alert
    format: xlsx
    cron: "0 * * * *"
  - name: orders-lake
    dataset: fact_work_order
    format: lake
    cron: "0 3 * * *"
    lookback_days: 1
"""


class Clock:
    """A settable clock."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_due_definitions_run_and_a_failure_stops_none_of_the_others(
    built: Built,
    reader: duckdb.DuckDBPyConnection,
    lineage: Lineage,
    lineage_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("maintainpro.analytics.exports.tabular.XLSX_MAX_ROWS", 0)
    definitions = parse_definitions(SCHEDULE.format(site_a=built.site_a))
    root = tmp_path / "exports"
    clock = Clock(NOON)

    ran = run_definitions(reader, definitions, root, lineage, clock=clock)
    assert {n: s.status for n, s in ran.items()} == {
        "site-a-orders": "completed",
        "too-big": "failed",
        "orders-lake": "completed",
    }
    assert "do not fit a worksheet" in (ran["too-big"].error or "")
    orders = QvdTable.from_qvd(str(output_path(root, definitions[0])))
    assert {v.calculation_value for v in orders.get("site_key")} == {built.site_a}
    assert ran["site-a-orders"].rows == orders.shape[0] == 6
    assert not output_path(root, definitions[1]).exists()
    lake = output_path(root, definitions[2])
    wo = get_dataset("fact_work_order")
    assert read_partitioned(lake, wo).num_rows == 7
    assert sorted(p.name for p in parquet_root(lake, wo).iterdir())[0].startswith("dt=")

    # Lineage names each run after its definition; the failed one ends in FAIL.
    events = {(e["job"]["name"], e["eventType"]) for e in export_events(lineage_path)}
    assert ("export.schedule.site-a-orders", "COMPLETE") in events
    assert ("export.schedule.too-big", "FAIL") in events

    # The state survives: nothing is due again within the hour.
    state = load_state(root)
    assert state["too-big"].status == "failed"
    assert state["site-a-orders"].last_success_at == NOON
    assert json.loads((root / STATE_FILE).read_text())["orders-lake"]["rows"] == 7
    clock.now = NOON + dt.timedelta(minutes=30)
    assert run_definitions(reader, definitions, root, lineage, clock=clock) == {}

    # An hour on, the hourly ones run again; the lake waits for 03:00.
    clock.now = NOON + dt.timedelta(hours=1)
    again = run_definitions(reader, definitions, root, lineage, clock=clock)
    assert set(again) == {"site-a-orders", "too-big"}


def test_a_lake_definition_replaces_only_the_days_from_its_lookback(
    built: Built,
    reader: duckdb.DuckDBPyConnection,
    lineage: Lineage,
    tmp_path: Path,
) -> None:
    (lake_definition,) = parse_definitions(
        "exports: [{name: l, dataset: fact_work_order, format: lake, cron: '0 3 * * *', "
        "lookback_days: 1}]"
    )
    root = tmp_path / "exports"
    first_run = dt.datetime(2026, 1, 7, 3, 0, tzinfo=dt.UTC)  # two days after the world's T0
    run_definitions(reader, [lake_definition], root, lineage, clock=Clock(first_run))
    lake = output_path(root, lake_definition)
    wo = get_dataset("fact_work_order")
    days = parquet_root(lake, wo)

    def files() -> dict[str, int]:
        # A replaced day is a new file: its inode changes.
        return {p.name: (p / "part-0.parquet").stat().st_ino for p in days.iterdir()}

    before = files()
    run_definitions(
        reader, [lake_definition], root, lineage, clock=Clock(first_run + dt.timedelta(days=1))
    )
    after = files()
    assert set(after) == set(before)
    # The window starts a day before the last success (2026-01-07): 2026-01-06 on.
    kept = {d for d in before if d < "dt=2026-01-06"}
    assert kept
    assert {d for d in before if before[d] == after[d]} == kept
    assert read_partitioned(lake, wo).num_rows == 7


def test_the_supervisor_job_runs_the_configured_schedule(
    built: Built, settings: Settings, lineage_path: Path
) -> None:
    assert run_due_exports(settings) == {}  # no schedule file yet
    schedule_file(settings).write_text(
        "exports: [{name: spend, dataset: fact_spend, format: parquet, cron: '0 * * * *'}]"
    )
    ran = run_due_exports(settings)
    assert ran["spend"].status == "completed"
    written = exports_dir(settings) / "spend" / "fact_spend.parquet"
    assert pq.read_table(written).num_rows == ran["spend"].rows == 1
    assert run_due_exports(settings) == {}  # just ran; next at the top of the hour


def test_the_supervisor_job_waits_for_a_warehouse(settings: Settings, tmp_path: Path) -> None:
    empty = settings.model_copy(update={"warehouse_path": tmp_path / "none" / "w.duckdb"})
    schedule_file(empty).parent.mkdir(parents=True)
    schedule_file(empty).write_text(
        "exports: [{name: spend, dataset: fact_spend, format: csv, cron: '0 * * * *'}]"
    )
    assert run_due_exports(empty) == {}
    assert not exports_dir(empty).exists()
