"""The ML API: the registry's versions, promoting one (assets:write), and an asset's remaining
useful life with its band, or a problem saying why there is none."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from analytics.ml.ml_plant import NOW, VIB_CRITICAL, ml_plant
from maintainpro.analytics.ml.registry import ModelRecord, ModelRegistry, models_dir
from maintainpro.analytics.ml.training import RUL_TARGET, refresh_rul
from maintainpro.config import Settings
from maintainpro.core.users import Role, User
from support import bearer

MakeUser = Callable[..., tuple[User, str]]
PROBLEM = "application/problem+json"
WINDOW = (NOW - dt.timedelta(days=7), NOW)


def _two_versions(settings: Settings) -> tuple[ModelRecord, ModelRecord]:
    registry = ModelRegistry(models_dir(settings))
    first = registry.register(
        "sensor:7", "robust_z", {"threshold": 4.0}, window=WINDOW, features=["z"], metrics={}
    )
    second = registry.register(
        "sensor:7",
        "robust_z",
        {"threshold": 5.0},
        window=WINDOW,
        features=["z"],
        metrics={"false_alarm_rate": 0.01},
        params={"threshold": 5.0},
    )
    return first, second


@pytest.fixture
def plant_ids(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """One site of the synthetic ML plant, committed."""
    with session_factory() as session, session.begin():
        return ml_plant(session)


def test_models_are_listed_oldest_first_with_the_live_one_marked(
    client: TestClient, settings: Settings, make_user: MakeUser
) -> None:
    headers = bearer(make_user(Role.TECHNICIAN)[1])  # assets:read is enough to list
    empty = client.get("/api/v1/ml/models", headers=headers)
    assert empty.status_code == 200
    assert empty.json() == []
    first, second = _two_versions(settings)
    body = client.get("/api/v1/ml/models", headers=headers).json()
    assert [m["id"] for m in body] == [first.id, second.id]
    assert [(m["version"], m["live"]) for m in body] == [(1, False), (2, True)]
    assert body[1]["metrics"] == {"false_alarm_rate": 0.01}
    assert body[1]["params"] == {"threshold": 5.0}
    assert body[1]["sha256"] == second.sha256
    assert body[0]["window_end"] == NOW.isoformat()


def test_promoting_a_version_changes_the_live_one(
    client: TestClient, settings: Settings, admin_headers: dict[str, str]
) -> None:
    first, second = _two_versions(settings)
    response = client.post(f"/api/v1/ml/models/{first.id}/promote", headers=admin_headers)
    assert response.status_code == 200, response.text
    assert (response.json()["id"], response.json()["live"]) == (first.id, True)
    live = ModelRegistry(models_dir(settings)).live("sensor:7")
    assert live is not None
    assert live.id == first.id
    listed = {
        m["id"]: m["live"] for m in client.get("/api/v1/ml/models", headers=admin_headers).json()
    }
    assert listed == {first.id: True, second.id: False}


def test_promoting_an_unknown_version_is_a_404_problem(
    client: TestClient, settings: Settings, admin_headers: dict[str, str]
) -> None:
    _two_versions(settings)
    response = client.post("/api/v1/ml/models/999/promote", headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["title"] == "Model not found"
    assert body["detail"] == "There is no model 999."
    live = ModelRegistry(models_dir(settings)).live("sensor:7")
    assert live is not None
    assert live.version == 2  # nothing changed


def test_a_technician_may_not_promote(
    client: TestClient, settings: Settings, make_user: MakeUser
) -> None:
    first, _ = _two_versions(settings)
    response = client.post(
        f"/api/v1/ml/models/{first.id}/promote", headers=bearer(make_user(Role.TECHNICIAN)[1])
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)
    live = ModelRegistry(models_dir(settings)).live("sensor:7")
    assert live is not None
    assert live.version == 2


def test_the_rul_of_an_asset_with_an_estimate(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    plant_ids: dict[str, int],
    make_user: MakeUser,
) -> None:
    estimate = refresh_rul(session_factory, settings, NOW)[0]
    response = client.get(
        f"/api/v1/assets/{plant_ids['pump']}/rul", headers=bearer(make_user(Role.TECHNICIAN)[1])
    )
    assert response.status_code == 200, response.text
    body = response.json()
    method = ModelRegistry(models_dir(settings)).live(RUL_TARGET)
    assert method is not None
    assert body["asset_id"] == plant_ids["pump"]
    assert body["sensor_id"] == plant_ids["vibration"]
    assert body["sensor_name"] == "Pump vibration S1"
    assert body["rul_days"] == pytest.approx(estimate.rul_days)
    assert body["low_days"] <= body["rul_days"]
    assert body["high_days"] is None or body["rul_days"] <= body["high_days"]
    assert dt.datetime.fromisoformat(body["computed_at"]) == NOW
    assert dt.datetime.fromisoformat(body["failure_at"]) == estimate.failure_at
    assert (body["threshold"], body["threshold_source"]) == (VIB_CRITICAL, "alert rule")
    assert (body["model_id"], body["model_version"]) == (method.id, method.version)


def test_the_rul_of_an_asset_without_an_estimate_says_why(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    plant_ids: dict[str, int],
    admin_headers: dict[str, str],
) -> None:
    before = client.get(f"/api/v1/assets/{plant_ids['motor']}/rul", headers=admin_headers)
    assert before.status_code == 404
    assert before.json()["reason"] == "the remaining-life job has not run yet"

    refresh_rul(session_factory, settings, NOW)
    flat = client.get(f"/api/v1/assets/{plant_ids['motor']}/rul", headers=admin_headers)
    assert flat.status_code == 404
    assert flat.headers["content-type"].startswith(PROBLEM)
    body = flat.json()
    assert body["title"] == "No estimate"
    assert body["reason"].startswith("no degrading trend: Motor temperature S1")
    assert body["reason"] in body["detail"]
    assert dt.datetime.fromisoformat(body["computed_at"]) == NOW

    idle = client.get(f"/api/v1/assets/{plant_ids['idle']}/rul", headers=admin_headers)
    assert idle.status_code == 404
    assert "critical alert level" in idle.json()["reason"]


def test_the_rul_of_an_unknown_asset_is_a_404_problem(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/assets/9999/rul", headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["detail"] == "asset 9999 does not exist"


def test_the_rul_needs_a_signed_in_reader(client: TestClient) -> None:
    response = client.get("/api/v1/assets/1/rul")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
