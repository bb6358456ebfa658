"""Bad and hostile input: always a 4xx problem document, and never a change to the data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.assets import Asset, Site
from maintainpro.core.audit import AuditEntry
from maintainpro.core.schedules import MaintenanceSchedule, Meter
from maintainpro.core.work_orders import WorkOrder
from support import plant

SQL = "1; DROP TABLE assets; --"
SCRIPT = "<script>alert(1)</script>"
PROBLEM = "application/problem+json"


@pytest.fixture
def ids(db: Session) -> dict[str, int]:
    made = plant(db)
    db.commit()
    return made


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    """Rows of the tables bad input could touch, and the audit log."""
    with factory() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Site, Asset, WorkOrder, MaintenanceSchedule, Meter, AuditEntry)
        }


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def test_wrong_types_are_422_and_change_nothing(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    before = counts(session_factory)
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/assets", {"tag": "A-9", "name": "A", "site_id": "first"}),
        ("/api/v1/assets", {"tag": "A-9", "name": "A", "site_id": ids["site"], "criticality": 5}),
        ("/api/v1/assets", {"tag": ["A-9"], "name": "A", "site_id": ids["site"]}),
        ("/api/v1/sites", {"code": "S9", "name": {"en": "Nine"}}),
        ("/api/v1/work-orders", {"asset_id": ids["pump"], "title": "X", "priority": "asap"}),
        ("/api/v1/work-orders", {"asset_id": ids["pump"], "title": "X", "parts": "bearing"}),
        (
            "/api/v1/meters",
            {"asset_id": ids["pump"], "name": "M", "unit": "h", "current_value": "x"},
        ),
    ]
    for path, body in bodies:
        assert_problem(client.post(path, headers=admin_headers, json=body), 422)
    assert counts(session_factory) == before


def test_unknown_ids_in_paths_are_404(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    for method, path in (
        ("GET", "/api/v1/sites/999"),
        ("PATCH", "/api/v1/assets/999"),
        ("GET", "/api/v1/work-orders/999"),
        ("GET", "/api/v1/work-orders/999/notes"),
        ("GET", "/api/v1/schedules/999"),
        ("GET", "/api/v1/meters/999/readings"),
        ("GET", "/api/v1/parts/999"),
        ("PATCH", "/api/v1/stock/999"),
        ("POST", "/api/v1/reservations/999/release"),
        ("GET", "/api/v1/users/999"),
    ):
        body = {} if method != "GET" else None
        response = client.request(method, path, headers=admin_headers, json=body)
        assert_problem(response, 404)


def test_unknown_references_in_bodies_are_422_and_change_nothing(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    before = counts(session_factory)
    for path, body in (
        ("/api/v1/assets", {"tag": "A-9", "name": "A", "site_id": 999}),
        ("/api/v1/assets", {"tag": "A-9", "name": "A", "site_id": ids["site"], "location_id": 9}),
        ("/api/v1/work-orders", {"asset_id": 999, "title": "X"}),
        ("/api/v1/meters", {"asset_id": 999, "name": "M", "unit": "h"}),
        (
            "/api/v1/schedules",
            {"asset_id": 999, "name": "S", "interval_count": 1, "interval_unit": "days"},
        ),
        ("/api/v1/stock", {"part_id": 999, "location_id": ids["store"]}),
        ("/api/v1/users", {"username": "x1", "password": "p" * 12, "role": "admin", "site_id": 99}),
    ):
        assert_problem(client.post(path, headers=admin_headers, json=body), 422)
    assert counts(session_factory) == before


def test_extra_fields_are_refused(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    before = counts(session_factory)
    response = client.post(
        "/api/v1/sites", headers=admin_headers, json={"code": "S9", "name": "Nine", "owner": "x"}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["body", "owner"]
    patch = client.patch(
        f"/api/v1/assets/{ids['pump']}", headers=admin_headers, json={"colour": "red"}
    )
    assert_problem(patch, 422)
    assert counts(session_factory) == before


def test_oversized_body_is_413_problem(
    client: TestClient, admin_headers: dict[str, str], session_factory: sessionmaker[Session]
) -> None:
    before = counts(session_factory)
    body = {"code": "BIG", "name": "Big", "address": "x" * (65 * 1024)}
    assert_problem(client.post("/api/v1/sites", headers=admin_headers, json=body), 413)
    assert counts(session_factory) == before


def test_oversized_chunked_body_is_413_problem(
    client: TestClient, admin_headers: dict[str, str], session_factory: sessionmaker[Session]
) -> None:
    before = counts(session_factory)
    text = json.dumps({"code": "BIG", "name": "Big", "address": "x" * (65 * 1024)}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(text), 4096):
            yield text[start : start + 4096]

    response = client.post(
        "/api/v1/sites",
        headers={**admin_headers, "Content-Type": "application/json"},
        content=chunks(),
    )
    assert_problem(response, 413)
    assert counts(session_factory) == before


def test_body_under_the_limit_is_read_and_validated(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {"code": "BIG", "name": "Big", "address": "x" * (60 * 1024)}
    response = client.post("/api/v1/sites", headers=admin_headers, json=body)
    assert_problem(response, 422)  # too long for an address, but not refused for its size


def test_sql_in_codes_and_tags_is_422(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    before = counts(session_factory)
    for path, body in (
        ("/api/v1/sites", {"code": SQL, "name": "S"}),
        ("/api/v1/assets", {"tag": SQL, "name": "A", "site_id": ids["site"]}),
        ("/api/v1/parts", {"number": SQL, "name": "P"}),
        ("/api/v1/locations", {"site_id": ids["site"], "code": "X", "name": "X", "kind": SQL}),
    ):
        assert_problem(client.post(path, headers=admin_headers, json=body), 422)
    assert counts(session_factory) == before


def test_sql_in_a_search_matches_nothing_and_drops_nothing(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    for path in ("/api/v1/assets", "/api/v1/parts"):
        response = client.get(path, headers=admin_headers, params={"q": SQL})
        assert response.status_code == 200
        assert response.json()["items"] == []
    response = client.get("/api/v1/assets", headers=admin_headers, params={"q": "' OR '1'='1"})
    assert response.json()["total"] == 0
    assert client.get("/api/v1/assets", headers=admin_headers).json()["total"] == 2


def test_sql_in_a_path_id_is_422(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    for path in ("/api/v1/assets/", "/api/v1/work-orders/", "/api/v1/users/"):
        assert_problem(client.get(path + SQL, headers=admin_headers), 422)
    assert client.get("/api/v1/assets", headers=admin_headers).json()["total"] == 2


def test_markup_in_names_is_422(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    before = counts(session_factory)
    for path, body in (
        ("/api/v1/sites", {"code": "S9", "name": SCRIPT}),
        ("/api/v1/assets", {"tag": "A-9", "name": SCRIPT, "site_id": ids["site"]}),
        ("/api/v1/assets", {"tag": "A-9", "name": "A", "site_id": ids["site"], "model": "<b>x"}),
        ("/api/v1/work-orders", {"asset_id": ids["pump"], "title": SCRIPT}),
        ("/api/v1/work-orders", {"asset_id": ids["pump"], "title": "javascript:alert(1)"}),
        ("/api/v1/parts", {"number": "P-9", "name": "<img src=x onerror=alert(1)>"}),
    ):
        assert_problem(client.post(path, headers=admin_headers, json=body), 422)
    assert counts(session_factory) == before


def test_markup_in_descriptions_is_kept_verbatim(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    text = f"Noise above 80 dB & rising {SCRIPT}"
    created = client.post(
        "/api/v1/work-orders",
        headers=admin_headers,
        json={"asset_id": ids["pump"], "title": "Noise", "description": text},
    )
    assert created.status_code == 201
    fetched = client.get(f"/api/v1/work-orders/{created.json()['id']}", headers=admin_headers)
    assert fetched.json()["description"] == text


def test_control_characters_in_free_text_are_422(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    response = client.post(
        "/api/v1/work-orders",
        headers=admin_headers,
        json={"asset_id": ids["pump"], "title": "Noise", "description": "bell\x07"},
    )
    assert_problem(response, 422)


def test_naive_datetimes_are_422(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    before = counts(session_factory)
    naive = "2030-01-01T08:00:00"
    wo = {"asset_id": ids["pump"], "title": "X", "due_at": naive}
    assert_problem(client.post("/api/v1/work-orders", headers=admin_headers, json=wo), 422)
    schedule = {
        "asset_id": ids["pump"],
        "name": "S",
        "interval_count": 1,
        "interval_unit": "days",
        "starts_at": naive,
    }
    assert_problem(client.post("/api/v1/schedules", headers=admin_headers, json=schedule), 422)
    assert counts(session_factory) == before


def test_malformed_json_is_422_problem(
    client: TestClient, admin_headers: dict[str, str], session_factory: sessionmaker[Session]
) -> None:
    before = counts(session_factory)
    for raw in ('{"code": "S9", "name": ', "not json", '{"code": "S9", "name": "N",}'):
        response = client.post(
            "/api/v1/sites",
            headers={**admin_headers, "Content-Type": "application/json"},
            content=raw,
        )
        assert_problem(response, 422)
    assert counts(session_factory) == before


def test_validation_errors_do_not_echo_hostile_input(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    responses = [
        client.post("/api/v1/sites", headers=admin_headers, json={"code": SQL, "name": SCRIPT}),
        client.post(
            "/api/v1/sites", headers=admin_headers, json={"code": "S9", "name": "N", SCRIPT: 1}
        ),
        client.get("/api/v1/work-orders", headers=admin_headers, params={"status": SCRIPT}),
        client.get("/api/v1/assets/<script>alert(1)", headers=admin_headers),
        client.get(f"/api/v1/assets/{SQL}", headers=admin_headers),
    ]
    for response in responses:
        assert_problem(response, 422)
        assert "<script" not in response.text
        assert "DROP TABLE" not in response.text


def test_numbers_beyond_the_database_range_are_422_not_500(
    client: TestClient, admin_headers: dict[str, str], session_factory: sessionmaker[Session]
) -> None:
    huge = 10**20
    before = counts(session_factory)
    assert_problem(client.get(f"/api/v1/assets/{huge}", headers=admin_headers), 422)
    params = {"site_id": huge}
    assert_problem(client.get("/api/v1/assets", headers=admin_headers, params=params), 422)
    body = {"tag": "A-9", "name": "A", "site_id": huge}
    assert_problem(client.post("/api/v1/assets", headers=admin_headers, json=body), 422)
    assert counts(session_factory) == before


def test_nul_characters_are_4xx_not_500(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    search = client.get("/api/v1/assets", headers=admin_headers, params={"q": "pu\x00mp"})
    assert search.status_code in (200, 422)  # SQLite can search for NUL; PostgreSQL cannot
    if search.status_code == 200:
        assert search.json()["items"] == []
    token = client.post("/api/v1/auth/token", json={"username": "a\x00b", "password": "x"})
    assert token.status_code in (401, 422)
    assert token.headers["content-type"].startswith(PROBLEM)


def test_null_for_a_required_field_is_422_and_changes_nothing(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    before = counts(session_factory)
    for path, body in (
        (f"/api/v1/sites/{ids['site']}", {"name": None}),
        (f"/api/v1/assets/{ids['pump']}", {"status": None}),
        (f"/api/v1/parts/{ids['part']}", {"currency": None}),
        (f"/api/v1/stock/{ids['stock']}", {"reorder_point": None}),
    ):
        assert_problem(client.patch(path, headers=admin_headers, json=body), 422)
    assert counts(session_factory) == before
    assert client.get(f"/api/v1/assets/{ids['pump']}", headers=admin_headers).json()["status"] == (
        "operational"
    )
