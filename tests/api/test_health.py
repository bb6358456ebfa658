"""Liveness, readiness and the API description."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from maintainpro.app import create_app
from maintainpro.config import Settings


@pytest.fixture
def bare_client(tmp_path: Path) -> Iterator[TestClient]:
    """An app on an empty, unmigrated SQLite file."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", secret_key="x" * 40)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_healthz_answers_without_a_database(bare_client: TestClient) -> None:
    response = bare_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_on_a_migrated_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok"},
    }


def test_readyz_is_503_when_the_schema_is_behind(bare_client: TestClient) -> None:
    response = bare_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"].startswith("at None, need ")


def test_openapi_lists_the_api_paths(bare_client: TestClient) -> None:
    response = bare_client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/auth/token",
        "/api/v1/sites",
        "/api/v1/assets/{asset_id}",
        "/api/v1/work-orders/{work_order_id}/transitions",
        "/api/v1/schedules/generate",
        "/api/v1/meters/{meter_id}/readings",
        "/api/v1/stock/{stock_id}/adjustments",
        "/api/v1/reservations",
        "/api/v1/users",
        "/api/v1/audit",
    ):
        assert path in paths, path
    assert not any(p.startswith("/work-orders") for p in paths)  # pages stay out of the schema


def test_docs_serve_html(bare_client: TestClient) -> None:
    response = bare_client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
