"""OpenLineage run events of ETL runs: shape, facets, file and HTTP transports.

openlineage-python ships no JSON schema files (and jsonschema is not installed), so the
events are checked here against the required parts of the OpenLineage 2-0-2 spec and of the
facets used, written out below.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import Engine

from maintainpro.analytics import schema
from maintainpro.analytics.jobs import ALL_JOBS
from maintainpro.analytics.lineage import Lineage, lineage_for, source_namespace
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.config import Settings

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
SPEC = "https://openlineage.io/spec/"


def _uri(value: Any) -> bool:
    return isinstance(value, str) and bool(urlparse(value).scheme)


def check_facet(facet: dict[str, Any]) -> None:
    """Every facet names its producer and schema (BaseFacet)."""
    assert _uri(facet["_producer"])
    assert facet["_schemaURL"].startswith(SPEC)


def check_run_event(event: dict[str, Any]) -> None:
    """The required fields of a RunEvent and of the facets the warehouse emits."""
    assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
    assert ISO_TIME.match(event["eventTime"])
    assert _uri(event["producer"])
    assert event["schemaURL"].startswith(SPEC)
    assert "RunEvent" in event["schemaURL"]
    uuid.UUID(event["run"]["runId"])
    assert event["job"]["namespace"]
    assert event["job"]["name"]
    for facet in [*event["run"].get("facets", {}).values(), *event["job"]["facets"].values()]:
        check_facet(facet)
    for dataset in [*event["inputs"], *event["outputs"]]:
        assert dataset["namespace"]
        assert dataset["name"]
        for facet in [*dataset["facets"].values(), *dataset.get("outputFacets", {}).values()]:
            check_facet(facet)
        for field in dataset["facets"]["schema"]["fields"]:
            assert isinstance(field["name"], str)
            assert field["name"]
        for field in dataset["facets"].get("columnLineage", {}).get("fields", {}).values():
            assert field["inputFields"]
            for source in field["inputFields"]:
                assert all(source[key] for key in ("namespace", "name", "field"))
                assert {t["type"] for t in source["transformations"]} <= {"DIRECT", "INDIRECT"}
    error = event["run"].get("facets", {}).get("errorMessage")
    if error is not None:
        assert error["message"]
        assert error["programmingLanguage"]


def events_in(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a lineage file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_job_emits_start_then_complete_with_schema_and_column_lineage(
    engine: Engine,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    lineage: Lineage,
    lineage_path: Path,
    database_url: str,
) -> None:
    records = build(engine, warehouse, lineage, BuildOptions(base_currency="USD"))
    events = events_in(lineage_path)
    for event in events:
        check_run_event(event)
    assert len(events) == 2 * len(ALL_JOBS)
    by_run: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_run.setdefault(event["run"]["runId"], []).append(event)
    assert set(by_run) == {r.run_id for r in records}
    for record in records:
        start, complete = by_run[record.run_id]
        assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
        assert start["job"] == complete["job"]
        assert complete["job"]["name"] == f"warehouse.{record.job}"
        assert complete["job"]["namespace"] == "maintainpro"

    namespace, prefix = source_namespace(database_url)
    (work_orders,) = [e for e in events if e["job"]["name"] == "warehouse.fact_work_order"][1:]
    inputs = {d["name"] for d in work_orders["inputs"]}
    assert {prefix + "work_orders", prefix + "outbox_events", prefix + "reservations"} <= inputs
    assert {d["namespace"] for d in work_orders["inputs"]} == {namespace}
    # Inputs list only the columns read: no credentials or hashes named in lineage.
    assert "password" not in json.dumps(events)
    (orders,) = [d for d in work_orders["inputs"] if d["name"] == prefix + "work_orders"]
    read = {f["name"] for f in orders["facets"]["schema"]["fields"]}
    assert {"created_at", "completed_at", "type"} <= read
    assert "title" not in read
    outputs = {d["name"]: d for d in work_orders["outputs"]}
    assert set(outputs) == {"main.fact_work_order", "main.fact_work_order_status"}
    fact = outputs["main.fact_work_order"]
    assert fact["namespace"].startswith("duckdb://")
    fields = [f["name"] for f in fact["facets"]["schema"]["fields"]]
    assert fields == schema.FACT_WORK_ORDER.column_names
    downtime = fact["facets"]["columnLineage"]["fields"]["downtime_hours"]["inputFields"]
    assert {(s["name"], s["field"]) for s in downtime} == {
        (prefix + "work_orders", column)
        for column in ("type", "created_at", "started_at", "completed_at")
    }
    cost = fact["facets"]["columnLineage"]["fields"]["parts_cost_base"]["inputFields"]
    assert {t["subtype"] for s in cost for t in s["transformations"]} == {"AGGREGATION"}

    (sensor_complete,) = [
        e
        for e in events
        if e["job"]["name"] == "warehouse.fact_sensor_hour" and e["eventType"] == "COMPLETE"
    ]
    (output,) = sensor_complete["outputs"]
    statistics = output["outputFacets"]["outputStatistics"]
    assert statistics["rowCount"] == 12
    average = output["facets"]["columnLineage"]["fields"]["value_avg"]["inputFields"]
    assert (prefix + "sensor_rollups_1h", "value_sum") in {(s["name"], s["field"]) for s in average}


class LineageReceiver:
    """A local OpenLineage endpoint that records what is posted to it."""

    def __init__(self, status: int = 201) -> None:
        """Listen on a free loopback port."""
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.paths.append(self.path)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the endpoint."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LineageReceiver:
        """Start serving."""
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[LineageReceiver]:
    """A recording OpenLineage endpoint."""
    with LineageReceiver() as server:
        yield server


def test_events_go_to_the_http_endpoint_when_lineage_url_is_set(
    engine: Engine,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    warehouse_path: Path,
    settings: Settings,
    receiver: LineageReceiver,
    tmp_path: Path,
) -> None:
    configured = settings.model_copy(
        update={"lineage_url": receiver.url, "lineage_file": tmp_path / "unused.jsonl"}
    )
    jobs = tuple(j for j in ALL_JOBS if j.name in {"dim_asset", "fact_alert"})
    records = build(
        engine,
        warehouse,
        lineage_for(configured, warehouse_path),
        BuildOptions(base_currency="USD", jobs=jobs),
    )
    assert set(receiver.paths) == {"/api/v1/lineage"}
    for body in receiver.bodies:
        check_run_event(body)
    posted = [(b["run"]["runId"], b["eventType"], b["job"]["name"]) for b in receiver.bodies]
    assert posted == [
        (r.run_id, state, f"warehouse.{r.job}") for r in records for state in ("START", "COMPLETE")
    ]
    assert not (tmp_path / "unused.jsonl").exists()


def test_an_unreachable_lineage_server_does_not_fail_the_run(
    engine: Engine,
    seeded: dict[str, int],
    warehouse: DuckDbWarehouse,
    warehouse_path: Path,
    settings: Settings,
) -> None:
    with LineageReceiver(status=503) as failing:
        configured = settings.model_copy(update={"lineage_url": failing.url})
        jobs = tuple(j for j in ALL_JOBS if j.name == "dim_site")
        (record,) = build(
            engine,
            warehouse,
            lineage_for(configured, warehouse_path),
            BuildOptions(base_currency="USD", jobs=jobs),
        )
    assert record.status == "completed"
    assert failing.bodies  # it was tried (and retried)


def test_source_namespaces_never_carry_credentials() -> None:
    namespace, prefix = source_namespace("postgresql+psycopg://etl:s3cret@db.example:6432/cmms")
    assert (namespace, prefix) == ("postgres://db.example:6432", "cmms.public.")
    namespace, prefix = source_namespace("sqlite:////var/lib/maintainpro/hub.db")
    assert (namespace, prefix) == ("sqlite:///var/lib/maintainpro/hub.db", "main.")
