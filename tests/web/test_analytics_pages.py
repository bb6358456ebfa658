"""The analytics pages and the catalog API: the integration dashboard (BI connections, pipeline
performance, dataset sync), the dataset catalog and a dataset's lineage, permissions, site scope
and escaping. The warehouse is built by the real ETL from two sites."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from analytics.analytics_world import seed
from analytics.exports.exports_world import add_site_b
from maintainpro.analytics.access import AccessEvent, access_ledger, record_access
from maintainpro.analytics.jobs import ALL_JOBS
from maintainpro.analytics.lineage import lineage_for
from maintainpro.analytics.refresh import refresh_warehouse
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.warehouse import DuckDbWarehouse, RunRecord, connect, new_run_id
from maintainpro.analytics.warehouse_pg import PostgresWarehouse, conninfo, where_is
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.users import Role
from page_login import PASSWORD
from support import bearer

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The app's warehouse and lineage file in this test's folder."""
    return settings.model_copy(
        update={
            "warehouse_path": tmp_path / "warehouse.duckdb",
            "lineage_file": tmp_path / "lineage.jsonl",
        }
    )


@pytest.fixture
def ids(db: Session) -> dict[str, int]:
    """Sites A (the analytics world) and B in the operational database."""
    found = dict(seed(db))
    found.update(add_site_b(db))
    return found


@pytest.fixture
def built(engine: Engine, ids: dict[str, int], settings: Settings) -> Path:
    """The warehouse loaded by every ETL job."""
    path = settings.warehouse_path
    assert path is not None
    with DuckDbWarehouse(path) as target:
        records = build(
            engine,
            target,
            lineage_for(settings, path),
            BuildOptions(base_currency="USD", full=True),
        )
    assert {r.status for r in records} == {"completed"}
    return path


def sign_in(client: TestClient, username: str) -> None:
    """Sign the client in through the form."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303


def count(path: Path, sql: str, *params: Any) -> int:
    """One number from the warehouse."""
    connection = connect(path, read_only=True)  # the app's configuration: DuckDB shares instances
    try:
        row = connection.execute(sql, list(params)).fetchall()
    finally:
        connection.close()
    return int(row[0][0])


def row_of(html: str, table_id: str, name: str) -> str:
    """The HTML of the row of a table that links to (or names) a dataset or job."""
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    rows = [r for r in table.split("<tr>") if f">{name}<" in r]
    assert rows, f"no row {name} in {table_id}"
    return rows[0]


def test_a_technician_is_refused_the_dashboard_catalog_and_api(
    client: TestClient, make_user: Any, built: Path
) -> None:
    technician, token = make_user(Role.TECHNICIAN)
    sign_in(client, technician.username)
    figures = client.get("/analytics")
    assert figures.status_code == 200
    assert "PM compliance" in figures.text
    assert "/analytics/integration" not in figures.text  # no link to what they may not open
    for path in ("/analytics/integration", "/analytics/datasets", "/analytics/datasets/dim_site"):
        assert client.get(path, headers={"accept": "text/html"}).status_code == 403, path
    for path in ("/api/v1/datasets", "/api/v1/datasets/dim_site", "/api/v1/etl-runs"):
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith("application/problem+json")


def test_the_dashboard_shows_connections_pipeline_and_sync(
    client: TestClient, make_user: Any, built: Path, settings: Settings
) -> None:
    reader, token = make_user(Role.ANALYST)
    # Real BI traffic: two pages of a feed read, and one refused request.
    ok = client.get("/odata/dim_site", headers=bearer(token))
    assert ok.status_code == 200
    sites = len(ok.json()["value"])
    assert client.get("/odata/fact_work_order?$top=1", headers=bearer(token)).status_code == 200
    bad = client.get("/odata/dim_site?$filter=nonsense eq 1", headers=bearer(token))
    assert bad.status_code == 400
    analyst, _ = make_user(Role.ANALYST)
    sign_in(client, analyst.username)

    page = client.get("/analytics/integration")
    assert page.status_code == 200
    html = page.text
    connection = row_of(html, "bi-connections", reader.username)
    assert ">odata<" in connection
    assert ">failing<" in connection  # the last request was refused
    cells = re.findall(r'class="num">([^<]*)<', connection)
    assert cells == ["3", str(sites + 1), "1"]  # requests, rows served, errors

    for job in ALL_JOBS:
        assert ">completed<" in row_of(html, "etl-jobs", job.name)
    assert 'data-chart-for="etl-durations"' in html
    assert "/static/vendor/plotly.min.js" in html

    fresh = row_of(html, "dataset-sync", "fact_work_order")
    assert ">fresh<" in fresh
    rows = count(built, "SELECT count(*) FROM fact_work_order")
    assert f">{rows:,}<" in fresh
    assert "computed on read" in row_of(html, "dataset-sync", "rollup_sensor_day")
    # Cubes were never refreshed in this warehouse.
    assert ">missing<" in row_of(html, "dataset-sync", "preagg_spend_daily")


def test_scheduled_exports_and_push_targets_appear(
    client: TestClient, make_user: Any, built: Path, settings: Settings
) -> None:
    from maintainpro.analytics.exports.schedules import run_due_exports

    (built.parent / "exports.yaml").write_text(
        "exports:\n"
        "  - {name: sites-csv, dataset: dim_site, format: csv, cron: '0 2 * * *'}\n"
        "  - {name: spend-parquet, dataset: fact_spend, format: parquet, cron: '0 3 * * *'}\n",
        encoding="utf-8",
    )
    ran = run_due_exports(settings)
    assert {name: s.status for name, s in ran.items()} == {
        "sites-csv": "completed",
        "spend-parquet": "completed",
    }
    analyst, _ = make_user(Role.ANALYST)
    sign_in(client, analyst.username)
    html = client.get("/analytics/integration").text
    sites = row_of(html, "scheduled-exports", "sites-csv")
    assert ">completed<" in sites
    assert re.search(r'class="num">2<', sites)  # the two sites, as written to the file
    assert "No push target" in html
    # The catalog shows the scheduled export downstream of the dataset.
    detail = client.get("/analytics/datasets/fact_spend").text
    assert 'data-node="export:spend-parquet"' in detail


def test_escaping_of_what_bi_clients_control(
    client: TestClient, make_user: Any, built: Path
) -> None:
    reader, _ = make_user(Role.ANALYST)
    record_access(
        access_ledger(client.app.state),  # type: ignore[attr-defined]
        AccessEvent(
            channel="odata",
            dataset="dim_site",
            user_id=reader.id,
            username=reader.username,
            credential_id=99,
            credential_name=HOSTILE,
            options={},
            rows=0,
            duration_ms=1.0,
            status=400,
            error=HOSTILE,
        ),
    )
    analyst, _ = make_user(Role.ANALYST)
    sign_in(client, analyst.username)
    html = client.get("/analytics/integration").text
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    missing = client.get("/analytics/datasets/%3Cscript%3E", headers={"accept": "text/html"})
    assert missing.status_code == 404
    assert "<script>" not in missing.text


def test_the_catalog_and_a_dataset_page_with_its_lineage(
    client: TestClient, make_user: Any, built: Path
) -> None:
    analyst, _ = make_user(Role.ANALYST)
    sign_in(client, analyst.username)
    catalog = client.get("/analytics/datasets").text
    spend = row_of(catalog, "catalog", "fact_spend")
    assert ">procurement<" in spend
    assert ">confidential<" in spend
    assert ">maintenance<" in row_of(catalog, "catalog", "fact_work_order")
    assert ">public<" in row_of(catalog, "catalog", "dim_date")
    # A rollup of spend inherits its owner and classification.
    rollup = row_of(catalog, "catalog", "rollup_spend_supplier_month")
    assert ">procurement<" in rollup
    assert ">confidential<" in rollup

    page = client.get("/analytics/datasets/fact_spend")
    assert page.status_code == 200
    html = page.text
    assert '<svg id="lineage-graph"' in html
    for node in (
        "source:supplier_invoice_lines",
        "job:fact_invoice",
        "dataset:fact_spend",
        "dataset:rollup_spend_supplier_month",
        "cube:Spend",
        "dataset:preagg_spend_daily",
        "odata:fact_spend",
    ):
        assert f'data-node="{node}"' in html, node
    assert 'href="/analytics/datasets/rollup_spend_supplier_month"' in html
    # An edge names the columns it carries; a column names its sources.
    assert "supplier_invoice_lines → warehouse.fact_invoice: id, invoice_id, line_total" in html
    assert "supplier_invoice_lines.line_total, purchase_orders.fx_rate" in html


def test_a_site_bound_analyst_counts_only_their_sites_rows(
    client: TestClient, make_user: Any, built: Path, ids: dict[str, int]
) -> None:
    local, token = make_user(Role.ANALYST, site_id=ids["site"])
    _, all_token = make_user(Role.ANALYST)
    mine = count(built, "SELECT count(*) FROM fact_work_order WHERE site_key = ?", ids["site"])
    total = count(built, "SELECT count(*) FROM fact_work_order")
    assert 0 < mine < total

    listed = client.get("/api/v1/datasets", headers=bearer(token)).json()["items"]
    by_name = {d["name"]: d for d in listed}
    assert by_name["fact_work_order"]["rows"] == mine
    assert by_name["fact_spend"]["visible"] is False
    assert by_name["fact_spend"]["rows"] is None
    assert by_name["dim_date"]["rows"] == count(built, "SELECT count(*) FROM dim_date")
    unrestricted = client.get("/api/v1/datasets", headers=bearer(all_token)).json()["items"]
    assert {d["name"]: d for d in unrestricted}["fact_work_order"]["rows"] == total

    sign_in(client, local.username)
    detail = client.get("/analytics/datasets/fact_work_order").text
    assert f'<dd id="row-count">{mine:,}</dd>' in detail
    assert "none for your site" in client.get("/analytics/datasets/fact_spend").text


def test_the_api_gives_datasets_lineage_and_runs(
    client: TestClient, make_user: Any, built: Path
) -> None:
    _, token = make_user(Role.ANALYST)
    detail = client.get("/api/v1/datasets/fact_work_order", headers=bearer(token))
    assert detail.status_code == 200
    body = detail.json()
    assert body["owner"] == "maintenance"
    assert body["classification"] == "internal"
    assert body["refresh_hours"] == 6
    assert body["sync"]["state"] == "fresh"
    assert body["loaded_by"] == "fact_work_order"
    downtime = next(c for c in body["columns"] if c["name"] == "downtime_hours")
    assert downtime["sources"] == [
        "work_orders.type",
        "work_orders.created_at",
        "work_orders.started_at",
        "work_orders.completed_at",
    ]
    edges = {(e["source"], e["target"]): e["columns"] for e in body["lineage"]["edges"]}
    assert "title" not in edges[("source:work_orders", "job:fact_work_order")]
    assert "completed_at" in edges[("source:work_orders", "job:fact_work_order")]
    assert ("dataset:fact_work_order", "odata:fact_work_order") in edges
    assert ("dataset:fact_work_order", "dataset:rollup_work_order_asset_month") in edges

    missing = client.get("/api/v1/datasets/no_such_set", headers=bearer(token))
    assert missing.status_code == 404
    assert "no_such_set" not in missing.json()["detail"]

    runs = client.get("/api/v1/etl-runs?limit=5", headers=bearer(token)).json()
    assert runs["total"] == len(ALL_JOBS)
    assert len(runs["items"]) == 5
    assert {r["status"] for r in runs["items"]} == {"completed"}
    one = client.get("/api/v1/etl-runs?job=fact_alert", headers=bearer(token)).json()
    assert [r["job"] for r in one["items"]] == ["fact_alert"]
    bad = client.get("/api/v1/etl-runs?job=' OR 1=1", headers=bearer(token))
    assert bad.status_code == 422


def test_pages_work_before_the_warehouse_is_built(client: TestClient, make_user: Any) -> None:
    analyst, token = make_user(Role.ANALYST)
    sign_in(client, analyst.username)
    for path in ("/analytics/integration", "/analytics/datasets", "/analytics/datasets/fact_alert"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "the warehouse has not been built yet" in page.text, path
    listed = client.get("/api/v1/datasets", headers=bearer(token)).json()
    assert listed["problem"] == "the warehouse has not been built yet"
    assert {d["name"] for d in listed["items"]} >= {"fact_alert", "preagg_spend_daily"}
    assert client.get("/api/v1/etl-runs", headers=bearer(token)).status_code == 503


# --------------------------------------------------------------------------- PostgreSQL warehouse


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A warehouse schema of this test's own, dropped afterwards."""
    name = f"wh_page_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(conninfo(postgres_url), autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def integration_html(settings: Settings, make_user: Any) -> tuple[str, float]:
    """The integration page of an app on these settings, as an analyst sees it, and its time."""
    analyst, _ = make_user(Role.ANALYST)
    with TestClient(create_app(settings)) as client:
        sign_in(client, analyst.username)
        started = time.monotonic()
        page = client.get("/analytics/integration")
        elapsed = time.monotonic() - started
    assert page.status_code == 200
    return page.text, elapsed


def test_the_postgres_warehouse_card_lists_its_last_loads(
    engine: Engine,
    ids: dict[str, int],
    settings: Settings,
    postgres_url: str,
    pg_schema: str,
    make_user: Any,
) -> None:
    both = settings.model_copy(
        update={"warehouse_postgres_url": postgres_url, "warehouse_schema": pg_schema}
    )
    outcome = refresh_warehouse(engine, both)
    assert outcome.postgres_error is None
    assert outcome.postgres_records
    assert {r.status for r in outcome.postgres_records} == {"completed"}
    # An earlier failed load of one job: the card keeps its error beside the newer success.
    failed_at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    failure = RunRecord(new_run_id(), "fact_alert", "incremental", None, failed_at, failed_at)
    failure.status, failure.error, failure.finished_at = "failed", "disk full on load", failed_at
    with PostgresWarehouse(postgres_url, pg_schema) as store:
        store.save_run(failure)

    html, _ = integration_html(both, make_user)
    assert 'id="postgres-warehouse"' in html
    assert where_is(postgres_url, pg_schema) in html
    assert "unreachable:" not in html
    for record in outcome.postgres_records:
        row = row_of(html, "postgres-loads", record.job)
        assert ">completed<" in row, record.job
        assert record.finished_at is not None
        assert record.finished_at.strftime("%Y-%m-%d %H:%M") in row
        assert f">{record.rows_out:,}<" in row
    assert "disk full on load" in row_of(html, "postgres-loads", "fact_alert")
    assert "disk full on load" not in row_of(html, "postgres-loads", "dim_site")


def test_an_unreachable_postgres_warehouse_is_reported_without_failing_the_page(
    settings: Settings, make_user: Any
) -> None:
    url = "postgresql+psycopg://etl:s3cret-pw@127.0.0.1:1/analytics"
    html, elapsed = integration_html(
        settings.model_copy(update={"warehouse_postgres_url": url}), make_user
    )
    card = html.split('id="postgres-warehouse"', 1)[1].split("</section>", 1)[0]
    assert "postgres://127.0.0.1:1/analytics.warehouse" in card
    assert "unreachable:" in card
    assert "Connection refused" in card or "connection failed" in card
    assert "s3cret-pw" not in html
    assert 'id="postgres-loads"' not in html
    assert elapsed < 10  # the connect timeout bounds it; refused is immediate


def test_no_postgres_warehouse_card_without_the_setting(
    settings: Settings, make_user: Any, built: Path
) -> None:
    assert settings.warehouse_postgres_url is None
    html, _ = integration_html(settings, make_user)
    assert 'id="etl-jobs"' in html
    assert "PostgreSQL warehouse" not in html
    assert 'id="postgres-warehouse"' not in html


def test_a_postgres_warehouse_that_never_answers_times_out(
    settings: Settings, make_user: Any
) -> None:
    # A socket that accepts connections and never speaks: only the connect timeout ends it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        url = f"postgresql://etl@127.0.0.1:{silent.getsockname()[1]}/analytics"
        html, elapsed = integration_html(
            settings.model_copy(update={"warehouse_postgres_url": url}), make_user
        )
    card = html.split('id="postgres-warehouse"', 1)[1].split("</section>", 1)[0]
    assert "unreachable:" in card
    assert "timeout" in card
    assert elapsed < 10


def test_requests_refused_before_a_user_was_known_are_counted_for_the_last_day(
    client: TestClient, make_user: Any, built: Path
) -> None:
    analyst, _ = make_user(Role.ANALYST)
    sign_in(client, analyst.username)
    quiet = client.get("/analytics/integration").text
    assert "No request was refused for want of a valid token" in quiet
    # Someone trying tokens: two refusals now, one two days ago that no longer counts.
    for token in ("mpt_guess-1", "mpt_guess-2"):
        assert client.get("/odata/dim_site", headers=bearer(token)).status_code == 401
    record_access(
        access_ledger(client.app.state),  # type: ignore[attr-defined]
        AccessEvent(
            channel="odata",
            dataset="dim_site",
            user_id=None,
            username=None,
            credential_id=None,
            credential_name=None,
            options={},
            rows=0,
            duration_ms=1.0,
            status=401,
            error="old refusal",
            at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2),
        ),
    )
    html = client.get("/analytics/integration").text
    notice = html.split('id="bi-anonymous-refusals"', 1)[1].split("</p>", 1)[0]
    assert "2 requests refused in the last 24 hours" in notice
    assert "on odata" in notice
    assert "old refusal" not in notice
