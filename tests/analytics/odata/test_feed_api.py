"""The feed over HTTP on a warehouse built from two sites: sign-in, permissions, paging, row-level
security and the access record (SQLite and PostgreSQL as the operational database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import xmlschema
from fastapi.testclient import TestClient

from analytics.odata.conftest import Reader, basic
from maintainpro.analytics.access import access_ledger
from maintainpro.analytics.odata.model import entity_sets
from support import bearer

SMALL_PAGES = {"Prefer": "odata.maxpagesize=2"}


def walk(client: TestClient, url: str, headers: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    """Every row of a collection, following next links; returns the rows and the pages read."""
    rows: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        response = client.get(next_url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["value"]
        pages += 1
        next_url = body.get("@odata.nextLink")
        if next_url is not None:
            assert len(next_url) < 2048
            parts = urlsplit(next_url)
            next_url = f"{parts.path}?{parts.query}"
        assert pages < 500
    return rows, pages


def site_keys(rows: list[dict[str, Any]]) -> set[int]:
    """The site keys present in rows."""
    return {int(r["site_key"]) for r in rows}


def test_the_service_document_and_metadata_list_what_the_user_may_read(
    client: TestClient, built: Path, readers: dict[str, Reader]
) -> None:
    response = client.get("/odata/", headers=readers["all"].headers)
    assert response.status_code == 200
    assert response.headers["odata-version"] == "4.0"
    body = response.json()
    assert body["@odata.context"] == "http://testserver/odata/$metadata"
    names = {entry["name"] for entry in body["value"]}
    assert names == set(entity_sets())  # an analyst of no site reads every set
    without_slash = client.get("/odata", headers=readers["all"].headers, follow_redirects=False)
    assert without_slash.status_code == 200
    assert without_slash.json() == body

    # A site-bound analyst does not see the sets that hold every site's rows.
    site_bound = {
        e["name"] for e in client.get("/odata/", headers=readers["a"].headers).json()["value"]
    }
    assert {"fact_sensor_hour", "dim_date"} <= site_bound
    assert not {"fact_spend", "dim_supplier", "rollup_spend_supplier_month"} & site_bound
    # A technician has no supply:read.
    technician = {
        e["name"] for e in client.get("/odata/", headers=readers["tech_a"].headers).json()["value"]
    }
    assert "fact_po_line" not in technician
    assert "fact_work_order" in technician

    metadata = client.get("/odata/$metadata", headers=readers["a"].headers)
    assert metadata.status_code == 200
    assert metadata.headers["content-type"].startswith("application/xml")
    assert 'EntitySet Name="fact_sensor_hour"' in metadata.text
    assert 'EntitySet Name="fact_spend"' not in metadata.text
    xmlschema.XMLSchema(str(Path(__file__).parent / "schemas" / "edmx.xsd")).validate(metadata.text)


def test_tokens_sign_in_by_basic_or_bearer_and_nothing_else_does(
    client: TestClient, built: Path, readers: dict[str, Reader]
) -> None:
    token = readers["all"].token
    for headers in (basic(token), bearer(token), basic("", username=token)):
        response = client.get("/odata/dim_site", headers=headers)
        assert response.status_code == 200
        assert {r["code"] for r in response.json()["value"]} == {"S1", "S2"}
    for headers in (
        {},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Digest abc"},
        basic("mpt_unknown-token-value"),
        bearer("mpt_unknown-token-value"),
        basic("correct horse battery", username=readers["all"].user.username),
    ):
        response = client.get("/odata/dim_site", headers=headers)
        assert response.status_code == 401
        # BI tools prompt for credentials on a Basic challenge.
        challenges = response.headers.get_list("www-authenticate")
        assert any(c.startswith('Basic realm="MaintAInPro OData"') for c in challenges)
        assert set(response.json()["error"]) == {"code", "message"}


def test_a_revoked_token_is_refused(
    client: TestClient, built: Path, readers: dict[str, Reader]
) -> None:
    reader = readers["all"]
    assert client.get("/odata/dim_site", headers=reader.headers).status_code == 200
    tokens = client.get("/api/v1/auth/tokens", headers=bearer(reader.token)).json()
    for token in tokens:
        revoked = client.delete(f"/api/v1/auth/tokens/{token['id']}", headers=bearer(reader.token))
        assert revoked.status_code == 200
    assert client.get("/odata/dim_site", headers=reader.headers).status_code == 401


def test_permissions_and_site_rules_close_sets(
    client: TestClient, built: Path, readers: dict[str, Reader]
) -> None:
    # Supplier accounts are refused outright, as on the REST API: the portal is their channel.
    for path in ("/odata/", "/odata/$metadata", "/odata/fact_work_order"):
        supplier = client.get(path, headers=readers["supplier"].headers)
        assert supplier.status_code == 403
        assert "/portal" in supplier.json()["error"]["message"]
    technician = client.get("/odata/fact_spend", headers=readers["tech_a"].headers)
    assert technician.status_code == 403
    site_bound = client.get("/odata/fact_spend", headers=readers["a"].headers)
    assert site_bound.status_code == 403
    assert client.get("/odata/fact_spend/$count", headers=readers["a"].headers).status_code == 403
    assert client.get("/odata/no_such_set", headers=readers["all"].headers).status_code == 404


SITE_SETS = sorted(name for name, s in entity_sets().items() if s.site_rule.column == "site_key")


def test_site_users_never_receive_another_sites_rows(
    client: TestClient, built: Path, readers: dict[str, Reader], world: dict[str, int]
) -> None:
    both_sites = set()
    for name in SITE_SETS:
        everything, _ = walk(client, f"/odata/{name}", readers["all"].headers)
        both_sites |= site_keys(everything)
        for reader, own, other in (("a", "site_a", "site_b"), ("b", "site_b", "site_a")):
            headers = {**readers[reader].headers, **SMALL_PAGES}
            rows, _ = walk(client, f"/odata/{name}", headers)
            assert site_keys(rows) <= {world[own]}, name
            assert len(rows) == sum(1 for r in everything if int(r["site_key"]) == world[own])
            # A filter asking for the other site, or for everything, widens nothing.
            for widening in (
                f"site_key eq {world[other]}",
                f"site_key eq {world[other]} or true",
                f"site_key ne {world[own]} or site_key eq null",
                "not (site_key eq -1)",
            ):
                widened, _ = walk(client, f"/odata/{name}?$filter={widening}", headers)
                assert site_keys(widened) <= {world[own]}, name
                counted = client.get(
                    f"/odata/{name}/$count?$filter={widening}", headers=readers[reader].headers
                )
                assert counted.status_code == 200
                assert int(counted.text) == len(widened)
            counted = client.get(f"/odata/{name}?$count=true&$top=0", headers=headers).json()
            assert counted["@odata.count"] == len(rows)
    # The sets held rows of both sites, so the checks above had something to keep out.
    assert {world["site_a"], world["site_b"]} <= both_sites


def test_work_order_status_rows_follow_their_work_orders_site(
    client: TestClient, built: Path, readers: dict[str, Reader]
) -> None:
    orders_a, _ = walk(client, "/odata/fact_work_order", readers["a"].headers)
    statuses_a, _ = walk(client, "/odata/fact_work_order_status", readers["a"].headers)
    every_status, _ = walk(client, "/odata/fact_work_order_status", readers["all"].headers)
    keys_a = {r["work_order_key"] for r in orders_a}
    assert statuses_a
    assert {r["work_order_key"] for r in statuses_a} <= keys_a
    assert len(statuses_a) == sum(1 for r in every_status if r["work_order_key"] in keys_a)
    assert len(statuses_a) < len(every_status)


def test_paging_walks_every_row_once_in_a_stable_order(
    client: TestClient, built: Path, readers: dict[str, Reader]
) -> None:
    headers = readers["all"].headers
    whole = client.get("/odata/fact_sensor_hour?$count=true", headers=headers).json()
    assert "@odata.nextLink" not in whole
    total = whole["@odata.count"]
    assert total == len(whole["value"]) >= 10
    query = "/odata/fact_sensor_hour?$orderby=value_avg desc,unit&$count=true"
    preferred = client.get(query, headers={**headers, "Prefer": "odata.maxpagesize=3"})
    assert preferred.headers["preference-applied"] == "odata.maxpagesize=3"
    rows, pages = walk(client, query, {**headers, **{"Prefer": "odata.maxpagesize=3"}})
    assert pages == -(-total // 3)
    keys = [(r["sensor_key"], r["hour_start"]) for r in rows]
    assert len(keys) == len(set(keys)) == total
    values = [r["value_avg"] for r in rows]
    assert values == sorted(values, reverse=True)
    # $top and $skip: a window of the same order, paged too.
    window, _ = walk(
        client,
        "/odata/fact_sensor_hour?$orderby=value_avg desc,unit&$skip=2&$top=5",
        {**headers, **{"Prefer": "odata.maxpagesize=2"}},
    )
    assert [(r["sensor_key"], r["hour_start"]) for r in window] == keys[2:7]


def test_select_filter_and_formats(
    client: TestClient, built: Path, readers: dict[str, Reader], world: dict[str, int]
) -> None:
    headers = readers["all"].headers
    response = client.get(
        "/odata/dim_asset?$select=tag,site_key&$filter=startswith(tag,'P-') and site_key eq "
        f"{world['site_b']}",
        headers=headers,
    )
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#dim_asset(tag,site_key)")
    assert body["value"] == [{"tag": "P-2", "site_key": world["site_b"]}]
    assert response.headers["content-type"].startswith("application/json;odata.metadata=minimal")

    po = client.get(
        "/odata/fact_po_line?$select=line_total,po_line_key,ordered_at",
        headers={
            **headers,
            "Accept": "application/json;odata.metadata=none;IEEE754Compatible=true",
        },
    ).json()
    assert "@odata.context" not in po
    line = po["value"][0]
    assert line["line_total"] == "25.0000"
    assert isinstance(line["po_line_key"], str)
    assert line["ordered_at"].endswith("Z")

    dates = client.get(
        "/odata/dim_date?$filter=date ge 2026-01-05 and date lt 2026-01-07&$orderby=date",
        headers=headers,
    ).json()["value"]
    assert [d["date"] for d in dates] == ["2026-01-05", "2026-01-06"]
    months = client.get(
        "/odata/fact_work_order?$filter=year(created_at) eq 2026 and month(created_at) eq 1"
        " and created_at lt 2026-01-05T10:30:00%2B01:00&$count=true&$top=0",
        headers=headers,
    ).json()
    # Before 09:30 UTC: site B's orders at 3 h and 7 h, not site A's at 10 h.
    assert months["@odata.count"] == 2


HOSTILE: list[tuple[str, int]] = [
    ("$filter=name eq 'x' or 1", 400),
    ("$filter=nosuch eq 1", 400),
    ("$filter=tag eq 'x'; DROP TABLE dim_asset; --'", 400),
    ("$filter=tag eq 'unterminated", 400),
    ("$filter=" + "(" * 60 + "true" + ")" * 60, 400),
    ("$filter=tag gt 5", 400),
    ("$filter=contains(asset_key,'1')", 400),
    ("$filter=read_csv('/etc/passwd') eq 1", 400),
    ("$filter=asset_key eq 1e999", 400),
    ('$select=tag,"name"', 400),
    ("$select=nosuch", 400),
    ("$orderby=tag sideways", 400),
    ("$orderby=tag,tag", 400),
    ("$top=-1", 400),
    ("$top=99999999999", 400),
    ("$skip=abc", 400),
    ("$count=yes", 400),
    ("$skiptoken=k.bm90LWpzb24", 400),
    ("$skiptoken=z.AAAA", 400),
    ("$skiptoken=c.nosuchcursor", 400),
    ("$top=1&$top=2", 400),
    ("$unknown=1", 400),
    ("$expand=site", 501),
    ("$format=xml", 406),
]


def test_hostile_options_get_an_odata_error_that_echoes_nothing(
    client: TestClient, built: Path, readers: dict[str, Reader]
) -> None:
    for query, status in HOSTILE:
        response = client.get(f"/odata/dim_asset?{query}", headers=readers["all"].headers)
        assert response.status_code == status, (query, response.text)
        error = response.json()["error"]
        assert set(error) == {"code", "message"}
        for echoed in ("DROP", "passwd", "unterminated", "sideways", "nosuchcursor"):
            assert echoed not in error["message"]


def test_every_access_is_recorded_per_connection(
    client: TestClient,
    built: Path,
    readers: dict[str, Reader],
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = readers["a"].headers
    caplog.set_level("INFO", logger="maintainpro.analytics.access")
    served = client.get("/odata/fact_sensor_hour?$filter=unit eq 'mm/s'", headers=headers).json()
    client.get("/odata/fact_sensor_hour?$filter=bad bad", headers=headers)
    client.get("/odata/dim_site", headers=basic("mpt_wrong-wrong-wrong"))
    stats = access_ledger(client.app.state).connections("odata")  # type: ignore[attr-defined]
    mine = [s for s in stats if s.user_id == readers["a"].user.id]
    assert len(mine) == 1
    assert (mine[0].requests, mine[0].errors) == (2, 1)
    assert mine[0].rows_served == len(served["value"]) > 0
    assert (mine[0].credential_name, mine[0].last_status) == ("test", 400)
    lines = [r for r in caplog.records if r.getMessage() == "bi feed access"]
    assert [r.__dict__["status"] for r in lines] == [200, 400, 401]
    first = lines[0]
    assert first.__dict__["dataset"] == "fact_sensor_hour"
    assert first.__dict__["options"] == {"$filter": "unit eq 'mm/s'"}
    assert first.__dict__["rows"] == len(served["value"])
    assert json.dumps(first.__dict__["options"])  # plain JSON for the log line


def test_without_a_built_warehouse_the_feed_says_so(
    client: TestClient, world: dict[str, int], readers: dict[str, Reader]
) -> None:
    response = client.get("/odata/dim_site", headers=readers["all"].headers)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "WarehouseMissing"
