"""Every lineage event the hub emits validates against the OpenLineage 2-0-2 JSON schema.

ETL runs (START, COMPLETE, and FAIL for a job that breaks), exports (file written, and one that
fails) and cube refreshes are run for real with the file transport; each line of the lineage file
is checked against the vendored core spec and the schema of each of its facets
(``openlineage_spec``), offline.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.event_v2 import RunState
from openlineage.client.serde import Serde
from sqlalchemy import Connection, Engine

from analytics.openlineage_spec import SpecViolation, check_event, events_in, problems
from analytics.semantic.cube_world import PLANT
from maintainpro.analytics import schema
from maintainpro.analytics.exports.datasets import get_dataset
from maintainpro.analytics.exports.formats import FileFormat
from maintainpro.analytics.exports.runs import export_file
from maintainpro.analytics.jobs import ALL_JOBS, JobResult, Window
from maintainpro.analytics.lineage import Lineage, LineageJob, lineage_for
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.analytics.semantic.materialise import refresh
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.semantic.synthetic import populate
from maintainpro.analytics.warehouse import DuckDbWarehouse, WarehouseTarget, connect
from maintainpro.config import Settings


def _by_run(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for event in events:
        runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
    return runs


def test_every_etl_event_validates(
    engine: Engine,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    lineage: Lineage,
    lineage_path: Path,
) -> None:
    records = build(engine, warehouse, lineage, BuildOptions(base_currency="USD"))
    assert [r.status for r in records] == ["completed"] * len(ALL_JOBS)
    events = events_in(lineage_path)
    assert len(events) == 2 * len(ALL_JOBS)
    for event in events:
        check_event(event)
    runs = _by_run(events)
    assert set(runs) == {r.run_id for r in records}
    assert all(states == ["START", "COMPLETE"] for states in runs.values())
    # The facets the spec check covered are all there: schema and column lineage on outputs,
    # the row count on COMPLETE, the window on incremental-capable jobs.
    complete = [e for e in events if e["eventType"] == "COMPLETE"]
    output_facets = {k for e in complete for d in e["outputs"] for k in d["facets"]}
    assert {"schema", "columnLineage"} <= output_facets
    assert any("outputStatistics" in d["outputFacets"] for e in complete for d in e["outputs"])


@dataclass(frozen=True)
class BrokenJob:
    """A job that reads its source and then fails, as a job with a bug would."""

    name: str = "dim_site"
    description: str = "Sites (broken on purpose)."
    outputs: tuple[WarehouseTable, ...] = (schema.DIM_SITE,)
    overlap: dt.timedelta = field(default=dt.timedelta(0))

    def run(self, source: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Fail after the transaction has begun."""
        raise RuntimeError("source table vanished mid-run")


def test_a_failing_job_emits_a_valid_fail_event(
    engine: Engine,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    lineage: Lineage,
    lineage_path: Path,
) -> None:
    (record,) = build(
        engine, warehouse, lineage, BuildOptions(base_currency="USD", jobs=(BrokenJob(),))
    )
    assert record.status == "failed"
    start, fail = events_in(lineage_path)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert start["run"]["runId"] == fail["run"]["runId"] == record.run_id
    check_event(start)
    check_event(fail)
    error = fail["run"]["facets"]["errorMessage"]
    assert error["message"] == "RuntimeError: source table vanished mid-run"
    assert error["programmingLanguage"] == "python"
    assert "source table vanished mid-run" in error["stackTrace"]


def test_export_events_validate_for_a_file_and_a_failure(
    engine: Engine,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    warehouse_path: Path,
    settings: Settings,
    tmp_path: Path,
) -> None:
    quiet = Lineage(None, namespace="t", source=("sqlite:///x", "main."), warehouse_path=Path("w"))
    build(engine, warehouse, quiet, BuildOptions(base_currency="USD"))
    warehouse.close()
    exports_file = tmp_path / "exports-lineage.jsonl"
    lineage = lineage_for(
        settings.model_copy(update={"lineage_file": exports_file}), warehouse_path
    )
    connection = connect(warehouse_path, read_only=True)
    try:
        result = export_file(
            connection,
            get_dataset("fact_work_order"),
            FileFormat.CSV,
            tmp_path / "orders.csv",
            lineage,
            scope=frozenset({seeded["site"]}),
        )
        with pytest.raises(FileNotFoundError):
            export_file(
                connection,
                get_dataset("dim_site"),
                FileFormat.PARQUET,
                tmp_path / "no-such-folder" / "sites.parquet",
                lineage,
                scope=None,
            )
    finally:
        connection.close()
    events = events_in(exports_file)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "START", "FAIL"]
    for event in events:
        check_event(event)
    statistics = events[1]["outputs"][0]["outputFacets"]["outputStatistics"]
    assert statistics["rowCount"] == result.rows
    assert events[3]["run"]["facets"]["errorMessage"]["message"].startswith("FileNotFoundError")


def test_cube_refresh_events_validate(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "warehouse.duckdb"
    lineage_file = tmp_path / "cubes.jsonl"
    lineage = lineage_for(settings.model_copy(update={"lineage_file": lineage_file}), path)
    with DuckDbWarehouse(path) as target:
        target.ensure_schema()
        populate(target.connection, PLANT)
        results = refresh(target.connection, default_model(), lineage)
    assert {r.status for r in results} == {"completed"}
    events = events_in(lineage_file)
    assert len(events) == 2 * len(results)
    for event in events:
        check_event(event)


def _event() -> dict[str, Any]:
    """A FAIL event of the site job, as the ETL builds it, parsed from its JSON."""
    job = next(j for j in ALL_JOBS if j.name == "dim_site")
    quiet = Lineage(None, namespace="t", source=("sqlite:///x", "main."), warehouse_path=Path("w"))
    at = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    event = quiet.event(
        RunState.FAIL,
        LineageJob(job.name, job.description, job.outputs),
        "0b0f7f4c-8d5a-4a4e-9c44-2b0b1f7c1c11",
        at=at,
        window=(at, at),
        error=ValueError("x"),
    )
    parsed: dict[str, Any] = json.loads(Serde.to_json(event))
    return parsed


def _drop(path: tuple[str, ...]) -> Any:
    def change(event: dict[str, Any]) -> None:
        node = event
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


def _set(path: tuple[str, ...], value: Any) -> Any:
    def change(event: dict[str, Any]) -> None:
        node = event
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_drop(("run", "runId")), "'runId' is a required property"),
        (_set(("eventType",), "FINISHED"), "'FINISHED' is not one of"),
        (_drop(("job", "namespace")), "'namespace' is a required property"),
        (_drop(("run", "facets", "errorMessage", "programmingLanguage")), "programmingLanguage"),
        (_drop(("job", "facets", "jobType", "_producer")), "'_producer' is a required property"),
        (_set(("job", "facets", "documentation", "description"), 7), "7 is not of type 'string'"),
        (_set(("run", "facets", "nominalTime"), {"_producer": "p"}), "_schemaURL"),
        (_set(("schemaURL",), "https://example.com/mine.json"), "not the 2-0-2 RunEvent"),
    ],
)
def test_the_check_rejects_what_the_spec_forbids(change: Any, expected: str) -> None:
    event = _event()
    assert problems(event) == []
    broken = copy.deepcopy(event)
    change(broken)
    with pytest.raises(SpecViolation, match=expected):
        check_event(broken)
