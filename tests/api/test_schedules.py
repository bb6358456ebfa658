"""Schedules, generation of preventive work, meters and meter readings through the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.schedules import MaintenanceSchedule, MeterReading
from support import plant

PAST = "2024-01-01T06:00:00+00:00"


@pytest.fixture
def ids(db: Session) -> dict[str, int]:
    made = plant(db)
    db.commit()
    return made


def count(factory: sessionmaker[Session], model: type[Any]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def create(client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    response = client.post(f"/api/v1/{path}", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def meter(client: TestClient, headers: dict[str, str], asset_id: int, **extra: Any) -> Any:
    body = {"asset_id": asset_id, "name": "Runtime", "unit": "h", **extra}
    return create(client, headers, "meters", body)


def test_calendar_schedule_is_first_due_one_interval_after_its_start(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    schedule = create(
        client,
        admin_headers,
        "schedules",
        {
            "asset_id": ids["pump"],
            "name": "Grease bearings",
            "interval_count": 1,
            "interval_unit": "months",
            "starts_at": "2024-01-31T08:00:00+00:00",
        },
    )
    assert dt.datetime.fromisoformat(schedule["next_due_at"]) == dt.datetime(
        2024, 2, 29, 8, tzinfo=dt.UTC
    )
    assert schedule["next_due_meter"] is None
    assert schedule["active"] is True


def test_meter_schedule_is_due_one_interval_above_the_current_reading(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    runtime = meter(client, admin_headers, ids["pump"], current_value=120.0)
    schedule = create(
        client,
        admin_headers,
        "schedules",
        {"asset_id": ids["pump"], "name": "Oil", "meter_id": runtime["id"], "meter_interval": 500},
    )
    assert schedule["next_due_meter"] == 620.0
    assert schedule["next_due_at"] is None


def test_schedule_without_a_complete_trigger_is_422(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    incomplete: list[dict[str, Any]] = [
        {},
        {"interval_count": 3},
        {"interval_unit": "days"},
        {"meter_interval": 100},
        {"interval_count": 0, "interval_unit": "days"},
    ]
    for trigger in incomplete:
        response = client.post(
            "/api/v1/schedules",
            headers=admin_headers,
            json={"asset_id": ids["pump"], "name": "Check", **trigger},
        )
        assert response.status_code == 422, trigger
        assert response.headers["content-type"].startswith("application/problem+json")
    assert count(session_factory, MaintenanceSchedule) == 0


def test_schedule_on_an_unknown_or_foreign_meter_is_422(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    motor_meter = meter(client, admin_headers, ids["motor"])
    for meter_id in (9999, motor_meter["id"]):
        response = client.post(
            "/api/v1/schedules",
            headers=admin_headers,
            json={
                "asset_id": ids["pump"],
                "name": "Oil",
                "meter_id": meter_id,
                "meter_interval": 5,
            },
        )
        assert response.status_code == 422, meter_id
    assert count(session_factory, MaintenanceSchedule) == 0


def test_generate_opens_one_preventive_work_order_per_due_schedule(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    due = create(
        client,
        admin_headers,
        "schedules",
        {
            "asset_id": ids["pump"],
            "name": "Inspect pump",
            "interval_count": 1,
            "interval_unit": "days",
            "starts_at": PAST,
        },
    )
    create(
        client,
        admin_headers,
        "schedules",
        {"asset_id": ids["motor"], "name": "Later", "interval_count": 1, "interval_unit": "weeks"},
    )
    opened = client.post("/api/v1/schedules/generate", headers=admin_headers)
    assert opened.status_code == 200
    orders = opened.json()
    assert len(orders) == 1
    assert orders[0]["schedule_id"] == due["id"]
    assert orders[0]["type"] == "preventive"
    assert orders[0]["origin"] == "schedule"
    assert orders[0]["title"] == "Inspect pump"
    assert orders[0]["asset_id"] == ids["pump"]


def test_generate_never_opens_a_second_order_while_one_is_open(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    create(
        client,
        admin_headers,
        "schedules",
        {
            "asset_id": ids["pump"],
            "name": "Inspect",
            "interval_count": 1,
            "interval_unit": "days",
            "starts_at": PAST,
        },
    )
    first = client.post("/api/v1/schedules/generate", headers=admin_headers).json()
    assert len(first) == 1
    client.post(
        f"/api/v1/work-orders/{first[0]['id']}/transitions",
        headers=admin_headers,
        json={"status": "on_hold", "reason": "line running"},
    )
    again = client.post("/api/v1/schedules/generate", headers=admin_headers).json()
    assert again == []
    listing = client.get(
        "/api/v1/work-orders", headers=admin_headers, params={"origin": "schedule"}
    ).json()
    assert listing["total"] == 1


def test_completing_a_schedule_work_order_rolls_the_due_date_forward(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    schedule = create(
        client,
        admin_headers,
        "schedules",
        {
            "asset_id": ids["pump"],
            "name": "Inspect",
            "interval_count": 1,
            "interval_unit": "weeks",
            "starts_at": PAST,
        },
    )
    order = client.post("/api/v1/schedules/generate", headers=admin_headers).json()[0]
    for status in ("in_progress", "completed"):
        client.post(
            f"/api/v1/work-orders/{order['id']}/transitions",
            headers=admin_headers,
            json={"status": status},
        )
    after = client.get(f"/api/v1/schedules/{schedule['id']}", headers=admin_headers).json()
    now = dt.datetime.now(dt.UTC)
    next_due = dt.datetime.fromisoformat(after["next_due_at"])
    assert now < next_due <= now + dt.timedelta(weeks=1)
    assert next_due.weekday() == dt.datetime.fromisoformat(PAST).weekday()  # fixed rhythm
    assert after["last_completed_at"] is not None
    assert client.post("/api/v1/schedules/generate", headers=admin_headers).json() == []


def test_meter_schedule_is_generated_when_readings_reach_the_due_value(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    runtime = meter(client, admin_headers, ids["pump"], current_value=0.0)
    create(
        client,
        admin_headers,
        "schedules",
        {"asset_id": ids["pump"], "name": "Oil", "meter_id": runtime["id"], "meter_interval": 100},
    )
    readings = f"/api/v1/meters/{runtime['id']}/readings"
    client.post(readings, headers=admin_headers, json={"value": 99.5})
    assert client.post("/api/v1/schedules/generate", headers=admin_headers).json() == []
    client.post(readings, headers=admin_headers, json={"value": 100.0})
    opened = client.post("/api/v1/schedules/generate", headers=admin_headers).json()
    assert [o["title"] for o in opened] == ["Oil"]


def test_paused_schedule_is_not_generated_and_filters_as_inactive(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    schedule = create(
        client,
        admin_headers,
        "schedules",
        {
            "asset_id": ids["pump"],
            "name": "Inspect",
            "interval_count": 1,
            "interval_unit": "days",
            "starts_at": PAST,
        },
    )
    paused = client.patch(
        f"/api/v1/schedules/{schedule['id']}", headers=admin_headers, json={"active": False}
    )
    assert paused.status_code == 200
    assert client.post("/api/v1/schedules/generate", headers=admin_headers).json() == []
    inactive = client.get(
        "/api/v1/schedules", headers=admin_headers, params={"active": "false"}
    ).json()
    assert [s["id"] for s in inactive["items"]] == [schedule["id"]]


def test_counter_reading_going_backwards_is_422_and_not_stored(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    runtime = meter(client, admin_headers, ids["pump"], current_value=50.0)
    response = client.post(
        f"/api/v1/meters/{runtime['id']}/readings", headers=admin_headers, json={"value": 40}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert count(session_factory, MeterReading) == 0
    after = client.get(f"/api/v1/meters/{runtime['id']}", headers=admin_headers).json()
    assert after["current_value"] == 50.0


def test_counter_reset_reading_may_go_backwards(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    runtime = meter(client, admin_headers, ids["pump"], current_value=50.0)
    response = client.post(
        f"/api/v1/meters/{runtime['id']}/readings",
        headers=admin_headers,
        json={"value": 2, "reset": True},
    )
    assert response.status_code == 201
    after = client.get(f"/api/v1/meters/{runtime['id']}", headers=admin_headers).json()
    assert after["current_value"] == 2.0


def test_gauge_reading_may_go_down(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    gauge = meter(client, admin_headers, ids["pump"], kind="gauge", current_value=80.0)
    response = client.post(
        f"/api/v1/meters/{gauge['id']}/readings", headers=admin_headers, json={"value": 65.5}
    )
    assert response.status_code == 201


def test_non_finite_readings_are_422(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    runtime = meter(client, admin_headers, ids["pump"])
    for raw in ("NaN", "Infinity", "-Infinity", '"NaN"', '"inf"', "1e300"):
        response = client.post(
            f"/api/v1/meters/{runtime['id']}/readings",
            headers={**admin_headers, "Content-Type": "application/json"},
            content=f'{{"value": {raw}}}',
        )
        assert response.status_code == 422, raw
    assert count(session_factory, MeterReading) == 0


def test_readings_are_listed_newest_first(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    runtime = meter(client, admin_headers, ids["pump"])
    readings = f"/api/v1/meters/{runtime['id']}/readings"
    for hour, value in ((1, 10.0), (3, 30.0), (2, 20.0)):
        stamp = f"2024-05-01T0{hour}:00:00+00:00"
        body = {"value": value, "read_at": stamp, "reset": True}
        assert client.post(readings, headers=admin_headers, json=body).status_code == 201
    listed = client.get(readings, headers=admin_headers).json()
    assert [r["value"] for r in listed["items"]] == [30.0, 20.0, 10.0]
    current = client.get(f"/api/v1/meters/{runtime['id']}", headers=admin_headers).json()
    assert current["current_value"] == 30.0  # a late reading does not overwrite a newer one
