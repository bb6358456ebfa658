"""Database errors that reach the API: a busy SQLite is a 503 to retry, anything else a 500."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from maintainpro.api.routes import assets as asset_routes

PROBLEM = "application/problem+json"


def _fail_listing_sites(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(asset_routes, "list_page", fail)


@pytest.mark.parametrize(
    "error",
    [
        OperationalError(
            "UPDATE sites SET name=?", ("x",), sqlite3.OperationalError("database is locked")
        ),
        sqlite3.OperationalError("database is locked"),
    ],
    ids=["through-sqlalchemy", "from-sqlite3"],
)
def test_a_locked_database_is_a_503_to_retry(
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    _fail_listing_sites(monkeypatch, error)
    response = client.get("/api/v1/sites", headers=admin_headers)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["status"] == 503
    assert body["title"] == "Database busy"
    assert body["detail"] == "the database is busy; retry"
    assert body["instance"] == "/api/v1/sites"
    assert "UPDATE" not in response.text


def test_other_operational_errors_stay_internal_errors(
    client: TestClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_listing_sites(
        monkeypatch,
        OperationalError("SELECT * FROM gone", {}, sqlite3.OperationalError("no such table: gone")),
    )
    response = client.get("/api/v1/sites", headers=admin_headers)
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "retry-after" not in response.headers
    assert response.json()["detail"] == "an internal error occurred; it has been logged"
    assert "gone" not in response.text  # the database's message is logged, not answered
