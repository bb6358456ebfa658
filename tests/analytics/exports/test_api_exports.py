"""GET /api/v1/exports/{dataset}.{format} and /api/v1/bi/connection-files/{tool} through the
whole app: the caller's rows only, permissions, hostile names and formats answered as
problem+json, the access audit, lineage naming the download."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from tableauhyperapi import Connection, HyperProcess, Telemetry

from analytics.exports.conftest import Built
from analytics.exports.exports_world import export_events, warehouse_rows
from maintainpro.analytics.access import access_ledger
from maintainpro.core.users import Role
from support import bearer

PROBLEM = "application/problem+json"


def _csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def test_an_administrator_downloads_every_sites_rows(
    client: TestClient, built: Built, admin_headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/exports/fact_work_order.csv", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == ('attachment; filename="fact_work_order.csv"')
    rows = _csv(response.content)
    expected = warehouse_rows(built.path, "fact_work_order", "work_order_key")
    assert [int(r["work_order_key"]) for r in rows] == [r[0] for r in expected]
    assert {int(r["site_key"]) for r in rows} == {built.site_a, built.site_b}
    assert response.headers["x-row-count"] == str(len(expected))


def test_a_site_a_user_never_receives_site_b_rows_in_any_format(
    client: TestClient, built: Built, make_user: object, tmp_path: Path
) -> None:
    _, token = make_user(Role.MAINTENANCE_MANAGER, site_id=built.site_a)  # type: ignore[operator]
    headers = bearer(token)
    site_a_orders = [
        r[0]
        for r in warehouse_rows(
            built.path, "fact_work_order", "work_order_key", f"site_key = {built.site_a}"
        )
    ]

    parquet = client.get("/api/v1/exports/fact_work_order.parquet", headers=headers)
    assert parquet.status_code == 200, parquet.text
    (tmp_path / "wo.parquet").write_bytes(parquet.content)
    table = pq.read_table(tmp_path / "wo.parquet")
    assert table.column("work_order_key").to_pylist() == site_a_orders
    assert set(table.column("site_key").to_pylist()) == {built.site_a}

    hyper = client.get("/api/v1/exports/fact_work_order.hyper", headers=headers)
    assert hyper.status_code == 200, hyper.text
    (tmp_path / "wo.hyper").write_bytes(hyper.content)
    with (
        HyperProcess(
            Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}
        ) as process,
        Connection(process.endpoint, str(tmp_path / "wo.hyper")) as db,
    ):
        keys = db.execute_list_query(
            'SELECT work_order_key, site_key FROM "Extract"."fact_work_order" ORDER BY 1'
        )
    assert [k for k, _ in keys] == site_a_orders
    assert {s for _, s in keys} == {built.site_a}

    statuses = client.get("/api/v1/exports/fact_work_order_status.csv", headers=headers)
    assert {int(r["work_order_key"]) for r in _csv(statuses.content)} <= set(site_a_orders)
    assets = client.get("/api/v1/exports/dim_asset.csv", headers=headers)
    assert sorted(r["tag"] for r in _csv(assets.content)) == ["M-1", "P-1"]

    # Data of no site (suppliers) is for users of every site only.
    refused = client.get("/api/v1/exports/dim_supplier.csv", headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM


def test_a_role_reads_only_the_datasets_its_permissions_open(
    client: TestClient, built: Built, make_user: object
) -> None:
    _, token = make_user(Role.TECHNICIAN)  # type: ignore[operator]
    spend = client.get("/api/v1/exports/fact_spend.csv", headers=bearer(token))
    assert spend.status_code == 403
    assert "technician" in spend.json()["detail"]
    assert client.get("/api/v1/exports/fact_alert.csv", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/exports/fact_alert.csv").status_code == 401


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("fact_work_order.exe", 400),
        ("fact_work_order.CSV.exe", 404),
        ("fact_alert.PDF", 400),
        ("no_such_table.csv", 404),
        ("fact_work_order", 404),
        ("%3Cscript%3Ealert(1)%3C%2Fscript%3E.csv", 404),
        ("..%2F..%2Fetc%2Fpasswd.csv", 404),
        ("etl_runs.csv", 404),  # bookkeeping is no dataset
        ("x" * 101 + ".csv", 422),
    ],
)
def test_hostile_names_and_formats_are_refused_as_problems(
    client: TestClient, admin_headers: dict[str, str], path: str, status: int
) -> None:
    response = client.get(f"/api/v1/exports/{path}", headers=admin_headers)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    told = f"{problem['title']} {problem['detail']}"
    for echoed in ("script", "passwd", "exe", "xxxx"):
        assert echoed not in told
    assert "<" not in response.text  # the instance is the path, percent-encoded


def test_since_narrows_dated_datasets_and_is_refused_for_the_others(
    client: TestClient, built: Built, admin_headers: dict[str, str]
) -> None:
    later = client.get(
        "/api/v1/exports/fact_work_order.csv?since=2026-01-07", headers=admin_headers
    )
    assert later.status_code == 200
    days = {r["created_at"][:10] for r in _csv(later.content)}
    assert days
    assert min(days) >= "2026-01-07"
    whole = client.get("/api/v1/exports/dim_asset.csv?since=2026-01-07", headers=admin_headers)
    assert whole.status_code == 400
    assert whole.headers["content-type"] == PROBLEM


def test_an_unbuilt_warehouse_is_a_503(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.get("/api/v1/exports/fact_alert.qvd", headers=admin_headers)
    assert response.status_code == 503
    assert "not been built" in response.json()["detail"]


def test_every_download_is_audited_and_traced(
    client: TestClient,
    built: Built,
    admin_headers: dict[str, str],
    lineage_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="maintainpro.analytics.access")
    ok = client.get("/api/v1/exports/fact_alert.xlsx", headers=admin_headers)
    assert ok.status_code == 200
    bad = client.get("/api/v1/exports/fact_alert.pdf", headers=admin_headers)
    assert bad.status_code == 400
    (stats,) = access_ledger(client.app.state).connections(channel="export")  # type: ignore[attr-defined]
    assert stats.requests == 2
    assert stats.errors == 1
    assert stats.rows_served == 1
    assert stats.last_status == 400
    audited = [r for r in caplog.records if r.getMessage() == "bi feed access"]
    assert [(r.dataset, r.status) for r in audited] == [  # type: ignore[attr-defined]
        ("fact_alert", 200),
        ("fact_alert", 400),
    ]
    complete = [e for e in export_events(lineage_path) if e["eventType"] == "COMPLETE"]
    (output,) = complete[-1]["outputs"]
    assert output["namespace"] == "http://127.0.0.1:8000"
    assert output["name"] == "/api/v1/exports/fact_alert.xlsx"


def test_connection_files_list_the_callers_tables(
    client: TestClient, make_user: object, admin_headers: dict[str, str]
) -> None:
    powerbi = client.get("/api/v1/bi/connection-files/powerbi", headers=admin_headers)
    assert powerbi.status_code == 200
    assert powerbi.headers["content-disposition"] == 'attachment; filename="maintainpro.pbids"'
    details = powerbi.json()["connections"][0]["details"]
    assert details == {"protocol": "odata", "address": {"url": "http://127.0.0.1:8000/odata/"}}

    tableau = client.get("/api/v1/bi/connection-files/tableau", headers=admin_headers)
    relations = SafeET.fromstring(tableau.content).findall(".//relation[@type='table']")
    admin_tables = {r.get("name") for r in relations}
    assert {"fact_work_order", "fact_spend", "dim_part", "rollup_sensor_day"} <= admin_tables

    _, token = make_user(Role.TECHNICIAN, site_id=None)  # type: ignore[operator]
    qlik = client.get("/api/v1/bi/connection-files/qlik", headers=bearer(token))
    assert qlik.status_code == 200
    assert "[fact_work_order]:" in qlik.text
    assert "fact_spend" not in qlik.text  # a technician has no supply:read

    one = client.get("/api/v1/bi/connection-files/pbids?tables=fact_alert", headers=admin_headers)
    url = json.loads(one.content)["connections"][0]["details"]["address"]["url"]
    assert url == "http://127.0.0.1:8000/odata/fact_alert"

    assert client.get("/api/v1/bi/connection-files/excel", headers=admin_headers).status_code == 404
    for tables in ("nope", "fact_alert,<b>", ""):
        refused = client.get(
            f"/api/v1/bi/connection-files/tableau?tables={tables}", headers=admin_headers
        )
        assert refused.status_code == 400
        assert "<b>" not in refused.text
    _, supplier = make_user(Role.SUPPLIER)  # type: ignore[operator]
    assert (
        client.get("/api/v1/bi/connection-files/tableau", headers=bearer(supplier)).status_code
        == 403
    )


def test_a_site_bound_user_gets_no_table_of_every_site_only(
    client: TestClient, built: Built, make_user: object
) -> None:
    _, token = make_user(Role.MAINTENANCE_MANAGER, site_id=built.site_a)  # type: ignore[operator]
    tableau = client.get("/api/v1/bi/connection-files/tableau", headers=bearer(token))
    tables = {r.get("name") for r in SafeET.fromstring(tableau.content).iter("relation")}
    assert "fact_work_order" in tables
    assert "dim_date" in tables  # shared
    assert "dim_supplier" not in tables
    assert "fact_spend" not in tables
