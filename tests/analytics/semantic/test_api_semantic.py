"""/api/v1/semantic/load and /meta on a warehouse built by the real ETL from two sites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from analytics.semantic.cube_world import Built
from analytics.test_lineage import check_run_event, events_in
from conftest import MakeUser
from maintainpro.analytics.access import access_ledger
from maintainpro.analytics.semantic.answering import Unanswered, answer_query
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.warehouse import connect
from maintainpro.config import Settings
from maintainpro.core.users import Role
from support import bearer

LOAD = "/api/v1/semantic/load"
META = "/api/v1/semantic/meta"
BY_SITE = {
    "measures": ["WorkOrders.count", "WorkOrders.downtimeHours"],
    "dimensions": ["Assets.site"],
    "timeDimensions": [{"dimension": "WorkOrders.createdAt", "granularity": "month"}],
}
SCRIPT = "<script>alert(1)</script>"


def _expected(path: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    # Opened and closed around the request: one process may not hold the file open twice.
    connection = connect(path, read_only=True)
    try:
        return connection.execute(sql, params or []).fetchall()
    finally:
        connection.close()


def _counts(body: dict[str, Any]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in body["data"]:
        totals[row["Assets.site"]] = totals.get(row["Assets.site"], 0) + row["WorkOrders.count"]
    return totals


def test_load_answers_in_cubes_shape_from_a_pre_aggregation(
    client: TestClient, admin_headers: dict[str, str], built: Built
) -> None:
    response = client.post(LOAD, json={"query": BY_SITE}, headers=admin_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"query", "data", "annotation", "usedPreAggregations", "answeredFrom"}
    assert body["answeredFrom"]["source"] == "pre_aggregation"
    # Either pre-aggregation of work orders covers it; the one with fewer rows answers.
    assert body["answeredFrom"]["preAggregation"] in {
        "WorkOrders.daily",
        "WorkOrders.monthlyStatus",
    }
    assert body["annotation"]["measures"]["WorkOrders.count"]["type"] == "number"
    assert (
        body["annotation"]["timeDimensions"]["WorkOrders.createdAt.month"]["granularity"]["name"]
        == "month"
    )
    expected = _expected(
        built.path,
        "SELECT a.site_code, count(*) FROM fact_work_order w"
        " JOIN dim_asset a USING (asset_key) GROUP BY 1",
    )
    assert _counts(body) == dict(expected)
    assert set(_counts(body)) == {"S1", "S2"}
    # The same query as a GET parameter, and as a bare body.
    again = client.get(LOAD, params={"query": json.dumps(BY_SITE)}, headers=admin_headers)
    assert again.status_code == 200, again.text
    assert again.json()["data"] == body["data"]
    bare = client.post(LOAD, json=BY_SITE, headers=admin_headers)
    assert bare.json()["data"] == body["data"]


def test_a_site_bound_user_gets_its_sites_rows_only_through_totals_too(
    client: TestClient, make_user: MakeUser, built: Built
) -> None:
    _, token_a = make_user(Role.MAINTENANCE_MANAGER, site_id=built.ids["site"])
    _, token_b = make_user(Role.MAINTENANCE_MANAGER, site_id=built.ids["site_b"])
    site_a = client.post(LOAD, json={"query": BY_SITE}, headers=bearer(token_a)).json()
    site_b = client.post(LOAD, json={"query": BY_SITE}, headers=bearer(token_b)).json()
    assert set(_counts(site_a)) == {"S1"}
    assert set(_counts(site_b)) == {"S2"}
    total = {"measures": ["WorkOrders.count", "WorkOrders.downtimeHours"]}
    for token, site in ((token_a, built.ids["site"]), (token_b, built.ids["site_b"])):
        for base in (False, True):
            query = dict(total)
            if base:  # a distinct count sends the query to the facts
                query["measures"] = [*total["measures"], "WorkOrders.assetsAffected"]
            body = client.post(LOAD, json={"query": query}, headers=bearer(token)).json()
            ((count, assets),) = _expected(
                built.path,
                "SELECT count(*), count(DISTINCT asset_key) FROM fact_work_order"
                " WHERE site_key = ?",
                [site],
            )
            (row,) = body["data"]
            assert row["WorkOrders.count"] == count
            if base:
                assert body["answeredFrom"]["source"] == "base"
                assert row["WorkOrders.assetsAffected"] == assets
    spend = client.post(
        LOAD, json={"query": {"measures": ["Spend.amount"]}}, headers=bearer(token_a)
    )
    assert spend.status_code == 403
    assert spend.headers["content-type"].startswith("application/problem+json")


def test_hostile_or_malformed_queries_get_400_without_an_echo(
    client: TestClient, admin_headers: dict[str, str], built: Built
) -> None:
    cases: list[Any] = [
        {"measures": [f"WorkOrders.{SCRIPT}"]},
        {"measures": ["WorkOrders.count"], "dimensions": [f"{SCRIPT}.x"]},
        {"measures": ["WorkOrders.count"], "order": {SCRIPT: "asc"}},
        {"measures": ["WorkOrders.count"], SCRIPT: True},
        {
            "measures": ["WorkOrders.count"],
            "filters": [{"member": "WorkOrders.type", "operator": SCRIPT, "values": ["x"]}],
        },
        {
            "measures": ["WorkOrders.count"],
            "filters": [{"member": "WorkOrders.id", "operator": "gt", "values": [SCRIPT]}],
        },
        "DROP TABLE fact_work_order",
    ]
    for query in cases:
        response = client.post(LOAD, json={"query": query}, headers=admin_headers)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "<script>" not in response.text
        assert "DROP TABLE" not in response.text
        assert response.json()["title"] == "Invalid query"
    not_json = client.get(LOAD, params={"query": "{nope"}, headers=admin_headers)
    assert not_json.status_code == 400
    unknown = client.post(
        LOAD, json={"query": {"measures": ["WorkOrders.nope"]}}, headers=admin_headers
    )
    assert unknown.json()["detail"] == "unknown measure WorkOrders.nope"
    assert client.post(LOAD, json={"query": BY_SITE}).status_code == 401


def test_every_request_is_in_the_access_audit(
    client: TestClient, make_user: MakeUser, built: Built
) -> None:
    user, token = make_user(Role.MAINTENANCE_MANAGER, site_id=built.ids["site"])
    assert client.post(LOAD, json={"query": BY_SITE}, headers=bearer(token)).status_code == 200
    bad = {"measures": ["WorkOrders.nope"]}
    assert client.post(LOAD, json={"query": bad}, headers=bearer(token)).status_code == 400
    (stats,) = access_ledger(client.app.state).connections(channel="cube")
    assert stats.user_id == user.id
    assert stats.requests == 2
    assert stats.errors == 1
    assert stats.rows_served > 0


def test_meta_lists_the_cubes_a_caller_may_read_with_members_and_hierarchies(
    client: TestClient, admin_headers: dict[str, str], make_user: MakeUser, built: Built
) -> None:
    everything = client.get(META, headers=admin_headers).json()
    cubes = {c["name"]: c for c in everything["cubes"]}
    assert {"WorkOrders", "Spend", "Assets", "Parts", "AssetAvailability"} <= set(cubes)
    work_orders = cubes["WorkOrders"]
    measures = {m["name"]: m for m in work_orders["measures"]}
    assert measures["WorkOrders.mttrHours"]["title"] == "Work orders MTTR"
    assert measures["WorkOrders.count"]["aggType"] == "count"
    assert measures["WorkOrders.assetsAffected"]["preAggregated"] is False
    dimensions = {d["name"]: d for d in work_orders["dimensions"]}
    assert dimensions["WorkOrders.createdAt"]["type"] == "time"
    assert {"year", "quarter", "month", "day"} <= {
        g["name"] for g in dimensions["WorkOrders.createdAt"]["granularities"]
    }
    hierarchies = {h["name"]: h["levels"] for h in work_orders["hierarchies"]}
    assert hierarchies["WorkOrders.location"] == ["Assets.site", "Assets.line", "Assets.asset"]
    assert hierarchies["WorkOrders.calendar"][0] == "WorkOrders.createdAt.year"
    assert "Assets" in work_orders["joins"]
    parts = {h["name"]: h["levels"] for h in cubes["Parts"]["hierarchies"]}
    assert parts["Parts.catalogue"] == ["Parts.category", "Parts.part"]

    _, technician = make_user(Role.TECHNICIAN)
    names = {c["name"] for c in client.get(META, headers=bearer(technician)).json()["cubes"]}
    assert "WorkOrders" in names
    assert not names & {"Spend", "PurchaseOrderLines", "Suppliers"}
    _, site_user = make_user(Role.MAINTENANCE_MANAGER, site_id=built.ids["site"])
    names = {c["name"] for c in client.get(META, headers=bearer(site_user)).json()["cubes"]}
    assert "WorkOrders" in names
    assert not names & {"Spend", "PurchaseOrderLines", "Suppliers", "Parts"}


def test_before_the_warehouse_is_built_load_says_so(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.post(LOAD, json={"query": BY_SITE}, headers=admin_headers)
    assert response.status_code == 503
    assert "has not been built" in response.json()["detail"]
    # The model itself is there: a builder can show it before any data.
    assert client.get(META, headers=admin_headers).status_code == 200


def test_the_refresh_after_the_etl_emitted_lineage_for_every_pre_aggregation(
    built: Built, lineage_path: Path
) -> None:
    events = [e for e in events_in(lineage_path) if e["job"]["name"].startswith("cube.")]
    assert events
    for event in events:
        check_run_event(event)
    states: dict[str, list[str]] = {}
    for event in events:
        states.setdefault(event["job"]["name"], []).append(event["eventType"])
    assert set(map(tuple, states.values())) == {("START", "COMPLETE")}
    assert "cube.preagg_work_orders_daily" in states


def test_answer_query_answers_as_load_does_without_http(
    client: TestClient, make_user: MakeUser, settings: Settings, built: Built, tmp_path: Path
) -> None:
    user, token = make_user(Role.MAINTENANCE_MANAGER, site_id=built.ids["site_b"])
    ledger = access_ledger(client.app.state)
    body = answer_query(settings, default_model(), user, BY_SITE, ledger=ledger)
    over_http = client.post(LOAD, json={"query": BY_SITE}, headers=bearer(token)).json()
    assert body["data"] == over_http["data"]
    assert set(_counts(body)) == {"S2"}
    with pytest.raises(Unanswered) as refused:
        answer_query(settings, default_model(), user, {"measures": ["Spend.amount"]}, ledger=ledger)
    assert (refused.value.status, refused.value.title) == (403, "Forbidden")
    bad = {"measures": ["WorkOrders.nope"]}
    with pytest.raises(Unanswered) as unknown:
        answer_query(settings, default_model(), user, bad, ledger=ledger)
    assert (unknown.value.status, unknown.value.detail) == (400, "unknown measure WorkOrders.nope")
    nowhere = settings.model_copy(update={"warehouse_path": tmp_path / "none.duckdb"})
    with pytest.raises(Unanswered) as missing:
        answer_query(nowhere, default_model(), user, BY_SITE, ledger=ledger)
    assert missing.value.status == 503
    assert missing.value.retry_after_s is None
    (stats,) = access_ledger(client.app.state).connections(channel="cube")
    assert stats.user_id == user.id
    assert (stats.requests, stats.errors) == (5, 3)
