"""Sites, locations and assets through the API: CRUD, filters, pagination and the hierarchy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.assets import Asset, Location
from maintainpro.core.users import Role, User
from support import bearer, plant

MakeUser = Callable[..., tuple[User, str]]


@pytest.fixture
def ids(db: Session) -> dict[str, int]:
    made = plant(db)
    db.commit()
    return made


def count(factory: sessionmaker[Session], model: type[Any]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def asset_body(site_id: int, tag: str, **extra: Any) -> dict[str, Any]:
    return {"tag": tag, "name": f"Asset {tag}", "site_id": site_id, **extra}


def test_site_is_created_read_changed_and_listed(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/sites", headers=admin_headers, json={"code": "NORTH", "name": "North plant"}
    )
    assert created.status_code == 201
    site = created.json()
    assert site["timezone"] == "UTC"
    changed = client.patch(
        f"/api/v1/sites/{site['id']}",
        headers=admin_headers,
        json={"name": "North works", "timezone": "Europe/Berlin"},
    )
    assert changed.status_code == 200
    fetched = client.get(f"/api/v1/sites/{site['id']}", headers=admin_headers).json()
    assert fetched["name"] == "North works"
    assert fetched["timezone"] == "Europe/Berlin"
    listing = client.get("/api/v1/sites", headers=admin_headers).json()
    assert [s["code"] for s in listing["items"]] == ["NORTH"]
    assert listing["total"] == 1


def test_duplicate_site_code_is_409_and_adds_nothing(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {"code": "DUP", "name": "First"}
    assert client.post("/api/v1/sites", headers=admin_headers, json=body).status_code == 201
    response = client.post("/api/v1/sites", headers=admin_headers, json=body)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    listing = client.get("/api/v1/sites", headers=admin_headers).json()
    assert listing["total"] == 1


def test_locations_filter_by_site_and_kind(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    other = client.post(
        "/api/v1/sites", headers=admin_headers, json={"code": "S2", "name": "Other"}
    ).json()
    client.post(
        "/api/v1/locations",
        headers=admin_headers,
        json={"site_id": other["id"], "code": "ST2", "name": "Store 2", "kind": "storeroom"},
    )
    stores = client.get(
        "/api/v1/locations", headers=admin_headers, params={"kind": "storeroom"}
    ).json()
    assert sorted(loc["code"] for loc in stores["items"]) == ["ST", "ST2"]
    of_site = client.get(
        "/api/v1/locations",
        headers=admin_headers,
        params={"site_id": ids["site"], "kind": "storeroom"},
    ).json()
    assert [loc["code"] for loc in of_site["items"]] == ["ST"]


def test_location_under_a_parent_of_the_same_site(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    response = client.post(
        "/api/v1/locations",
        headers=admin_headers,
        json={"site_id": ids["site"], "parent_id": ids["line"], "code": "C1", "name": "Cell"},
    )
    assert response.status_code == 201
    assert response.json()["parent_id"] == ids["line"]


def test_location_with_unknown_parent_is_422(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    before = count(session_factory, Location)
    response = client.post(
        "/api/v1/locations",
        headers=admin_headers,
        json={"site_id": ids["site"], "parent_id": 9999, "code": "C1", "name": "Cell"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert count(session_factory, Location) == before


def test_location_with_parent_on_another_site_is_422(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    other = client.post(
        "/api/v1/sites", headers=admin_headers, json={"code": "S2", "name": "Other"}
    ).json()
    response = client.post(
        "/api/v1/locations",
        headers=admin_headers,
        json={"site_id": other["id"], "parent_id": ids["line"], "code": "C1", "name": "Cell"},
    )
    assert response.status_code == 422


def test_location_on_unknown_site_is_422(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/locations", headers=admin_headers, json={"site_id": 777, "code": "X", "name": "X"}
    )
    assert response.status_code == 422
    assert "site 777" in response.json()["detail"]


def test_asset_is_created_with_defaults_and_read_back(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    created = client.post(
        "/api/v1/assets",
        headers=admin_headers,
        json=asset_body(
            ids["site"],
            "FAN-7",
            location_id=ids["line"],
            parent_id=ids["pump"],
            install_date="2021-03-04",
        ),
    )
    assert created.status_code == 201
    asset = created.json()
    assert asset["criticality"] == "medium"
    assert asset["status"] == "operational"
    assert asset["asset_class"] == "generic"
    fetched = client.get(f"/api/v1/assets/{asset['id']}", headers=admin_headers).json()
    assert fetched["parent_id"] == ids["pump"]
    assert fetched["install_date"] == "2021-03-04"


def test_assets_filter_by_parent_status_criticality_and_class(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    client.post(
        "/api/v1/assets",
        headers=admin_headers,
        json=asset_body(
            ids["site"], "V-1", status="down", criticality="critical", asset_class="valve"
        ),
    )

    def tags(**params: Any) -> list[str]:
        page = client.get("/api/v1/assets", headers=admin_headers, params=params).json()
        return sorted(a["tag"] for a in page["items"])

    assert tags(parent_id=ids["pump"]) == ["M-1"]
    assert tags(status="down") == ["V-1"]
    assert tags(criticality="critical") == ["V-1"]
    assert tags(asset_class="pump") == ["P-1"]
    assert tags(site_id=ids["site"], location_id=ids["line"]) == ["M-1", "P-1"]


def test_asset_search_matches_tag_or_name_case_insensitively(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    by_name = client.get("/api/v1/assets", headers=admin_headers, params={"q": "moTOR"}).json()
    assert [a["tag"] for a in by_name["items"]] == ["M-1"]
    by_tag = client.get("/api/v1/assets", headers=admin_headers, params={"q": "p-1"}).json()
    assert [a["tag"] for a in by_tag["items"]] == ["P-1"]


def test_asset_list_pages_with_total(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    for n in range(5):
        client.post("/api/v1/assets", headers=admin_headers, json=asset_body(ids["site"], f"X-{n}"))
    first = client.get("/api/v1/assets", headers=admin_headers, params={"limit": 3}).json()
    second = client.get(
        "/api/v1/assets", headers=admin_headers, params={"limit": 3, "offset": 3}
    ).json()
    assert first["total"] == second["total"] == 7
    assert (first["limit"], first["offset"]) == (3, 0)
    assert len(first["items"]) == 3
    assert len(second["items"]) == 3
    assert {a["id"] for a in first["items"]}.isdisjoint({a["id"] for a in second["items"]})


def test_page_window_out_of_bounds_is_422(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}):
        response = client.get("/api/v1/assets", headers=admin_headers, params=params)
        assert response.status_code == 422, params


def test_asset_with_unknown_parent_is_422_and_not_created(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    before = count(session_factory, Asset)
    response = client.post(
        "/api/v1/assets", headers=admin_headers, json=asset_body(ids["site"], "O-1", parent_id=999)
    )
    assert response.status_code == 422
    assert "parent asset 999" in response.json()["detail"]
    assert count(session_factory, Asset) == before


def test_asset_made_parent_of_its_own_parent_is_422(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    # The motor sits under the pump; putting the pump under the motor would make a loop.
    response = client.patch(
        f"/api/v1/assets/{ids['pump']}", headers=admin_headers, json={"parent_id": ids["motor"]}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    pump = client.get(f"/api/v1/assets/{ids['pump']}", headers=admin_headers).json()
    assert pump["parent_id"] is None


def test_asset_as_its_own_parent_is_422(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    response = client.patch(
        f"/api/v1/assets/{ids['pump']}", headers=admin_headers, json={"parent_id": ids["pump"]}
    )
    assert response.status_code == 422


def test_asset_deep_cycle_is_422(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    grandchild = client.post(
        "/api/v1/assets",
        headers=admin_headers,
        json=asset_body(ids["site"], "B-1", parent_id=ids["motor"]),
    ).json()
    response = client.patch(
        f"/api/v1/assets/{ids['pump']}", headers=admin_headers, json={"parent_id": grandchild["id"]}
    )
    assert response.status_code == 422


def test_asset_patch_changes_only_the_given_fields(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    before = client.get(f"/api/v1/assets/{ids['pump']}", headers=admin_headers).json()
    response = client.patch(
        f"/api/v1/assets/{ids['pump']}",
        headers=admin_headers,
        json={"status": "degraded", "manufacturer": "Grundfos", "parent_id": None},
    )
    assert response.status_code == 200
    after = response.json()
    assert after["status"] == "degraded"
    assert after["manufacturer"] == "Grundfos"
    assert after["name"] == before["name"]
    assert after["location_id"] == before["location_id"]


def test_asset_location_on_another_site_is_422(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    other = client.post(
        "/api/v1/sites", headers=admin_headers, json={"code": "S2", "name": "Other"}
    ).json()
    response = client.post(
        "/api/v1/assets",
        headers=admin_headers,
        json=asset_body(other["id"], "Z-1", location_id=ids["line"]),
    )
    assert response.status_code == 422


def test_duplicate_asset_tag_is_409(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    response = client.post(
        "/api/v1/assets", headers=admin_headers, json=asset_body(ids["site"], "P-1")
    )
    assert response.status_code == 409


def test_unknown_asset_is_404_problem(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.get("/api/v1/assets/4242", headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "asset 4242 does not exist"


def test_technician_cannot_change_an_asset(
    client: TestClient, make_user: MakeUser, ids: dict[str, int]
) -> None:
    _, token = make_user(Role.TECHNICIAN)
    response = client.patch(
        f"/api/v1/assets/{ids['pump']}", headers=bearer(token), json={"status": "down"}
    )
    assert response.status_code == 403
