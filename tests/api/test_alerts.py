"""Alert rules and alerts through the API: CRUD, filters, bulk lifecycle actions, permissions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.events import OutboxEvent
from maintainpro.core.users import Role, User
from maintainpro.iot.alerts import Alert, AlertKind, AlertStatus
from maintainpro.iot.devices import Device, Protocol, Sensor
from support import bearer, plant

MakeUser = Callable[..., tuple[User, str]]
RULES = "/api/v1/alert-rules"
ALERTS = "/api/v1/alerts"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
CONDITION = {
    "levels": [{"severity": "warning", "threshold": 5}, {"severity": "critical", "threshold": 9}],
    "clear_at": 4,
    "duration_s": 30,
}


@pytest.fixture
def ids(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """A plant with a device on the pump and two sensors."""
    with session_factory() as session, session.begin():
        made = plant(session)
        device = Device(key="dev1", name="Box", protocol=Protocol.MQTT, asset_id=made["pump"])
        device.sensors.append(Sensor(key="vib", type="vibration"))
        device.sensors.append(Sensor(key="temp", type="temperature"))
        session.add(device)
        session.flush()
        made["vib"], made["temp"] = device.sensors[0].id, device.sensors[1].id
    return made


def make_alert(factory: sessionmaker[Session], **fields: Any) -> int:
    """Store an alert directly; returns its id."""
    values: dict[str, Any] = {
        "kind": AlertKind.THRESHOLD,
        "severity": "warning",
        "status": AlertStatus.ACTIVE,
        "title": "Vibration",
        "reason": "value 6 > 5",
        "value": 6.0,
        "raised_at": NOW,
        "reading_at": NOW,
    }
    values.update(fields)
    with factory() as session, session.begin():
        alert = Alert(**values)
        session.add(alert)
        session.flush()
        return alert.id


def test_rule_crud_validates_and_normalises(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    body = {
        "name": "Pump vibration",
        "sensor_id": ids["vib"],
        "condition": CONDITION,
        "opens_work_order": True,
        "work_order_parts": [{"part_id": ids["part"], "quantity": "2.500"}],
        "cooldown_s": 600,
    }
    response = client.post(RULES, headers=admin_headers, json=body)
    assert response.status_code == 201, response.text
    rule = response.json()
    assert rule["condition"]["kind"] == "threshold"
    assert rule["condition"]["repeat_count"] == 1
    assert rule["work_order_parts"] == [{"part_id": ids["part"], "quantity": "2.5"}]
    template = client.post(
        RULES,
        headers=admin_headers,
        json={
            "name": "Pump temperatures",
            "sensor_type": "temperature",
            "asset_class": "pump",
            "condition": {"kind": "stale", "after_s": 120},
        },
    )
    assert template.status_code == 201, template.text
    listed = client.get(RULES, headers=admin_headers, params={"template": True}).json()
    assert [r["name"] for r in listed["items"]] == ["Pump temperatures"]
    assert (
        client.get(RULES, headers=admin_headers, params={"sensor_id": ids["vib"]}).json()["total"]
        == 1
    )
    patched = client.patch(
        f"{RULES}/{rule['id']}",
        headers=admin_headers,
        json={"condition": {**CONDITION, "clear_at": 3}, "enabled": False},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["condition"]["clear_at"], patched.json()["enabled"]) == (3, False)
    bad = client.patch(
        f"{RULES}/{rule['id']}", headers=admin_headers, json={"condition": {"kind": "stale"}}
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert "after_s: Field required" in bad.json()["detail"]
    assert client.delete(f"{RULES}/{rule['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"{RULES}/{rule['id']}", headers=admin_headers).status_code == 404


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"condition": {**CONDITION, "clear_at": 7}}, "hysteresis"),
        ({"sensor_id": None}, "either sensor_id or a template selector"),
        ({"sensor_type": "vibration"}, "not both"),
        ({"sensor_id": 9999}, "sensor 9999 does not exist"),
        ({"work_order_parts": [{"part_id": 9999, "quantity": "1"}]}, "part 9999 does not exist"),
        ({"work_order_parts": [{"part_id": 1, "quantity": "1"}]}, "opens_work_order"),
    ],
)
def test_invalid_rules_are_refused(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    change: dict[str, Any],
    message: str,
) -> None:
    body = {"name": "R", "sensor_id": ids["vib"], "condition": CONDITION, **change}
    if "work_order_parts" in change and "9999" not in message:
        body["work_order_parts"] = [{"part_id": ids["part"], "quantity": "1"}]
    response = client.post(RULES, headers=admin_headers, json=body)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_list_filters_and_detail(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    old = make_alert(
        session_factory,
        sensor_id=ids["vib"],
        asset_id=ids["pump"],
        raised_at=NOW - dt.timedelta(days=2),
        status=AlertStatus.CLEARED,
    )
    crit = make_alert(
        session_factory, sensor_id=ids["vib"], asset_id=ids["pump"], severity="critical"
    )
    other = make_alert(session_factory, sensor_id=ids["temp"], asset_id=ids["motor"])

    def listed(**params: Any) -> list[int]:
        response = client.get(ALERTS, headers=admin_headers, params=params)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["items"]]

    assert listed() == [other, crit, old]
    assert listed(status="active") == [other, crit]
    assert listed(status=["cleared", "acknowledged"]) == [old]
    assert listed(severity="critical") == [crit]
    assert listed(asset_id=ids["pump"]) == [crit, old]
    assert listed(sensor_id=ids["temp"]) == [other]
    assert listed(since=(NOW - dt.timedelta(days=1)).isoformat()) == [other, crit]
    assert (
        client.get(
            ALERTS, headers=admin_headers, params={"since": "2026-01-01T00:00:00"}
        ).status_code
        == 422
    )
    assert (
        client.get(ALERTS, headers=admin_headers, params={"severity": "fatal"}).status_code == 422
    )
    detail = client.get(f"{ALERTS}/{crit}", headers=admin_headers).json()
    assert (detail["severity"], detail["notes"]) == ("critical", [])
    assert client.get(f"{ALERTS}/9999", headers=admin_headers).status_code == 404


def test_bulk_lifecycle_records_who_and_when(
    client: TestClient,
    make_user: MakeUser,
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    tech, token = make_user(Role.TECHNICIAN)
    headers = bearer(token)
    first = make_alert(session_factory, asset_id=ids["pump"])
    second = make_alert(session_factory, asset_id=ids["pump"])
    acked = client.post(
        f"{ALERTS}/acknowledge", headers=headers, json={"ids": [first, second], "note": "on it"}
    )
    assert acked.status_code == 200, acked.text
    assert [(a["status"], a["acknowledged_by_id"]) for a in acked.json()] == [
        ("acknowledged", tech.id),
        ("acknowledged", tech.id),
    ]
    noted = client.post(
        f"{ALERTS}/notes", headers=headers, json={"ids": [first], "note": "bearing noise"}
    )
    assert noted.status_code == 200, noted.text
    cleared = client.post(f"{ALERTS}/clear", headers=headers, json={"ids": [first, second]})
    assert [a["status"] for a in cleared.json()] == ["cleared", "cleared"]
    closed = client.post(
        f"{ALERTS}/close", headers=headers, json={"ids": [first], "note": "bearing replaced"}
    )
    assert closed.json()[0]["status"] == "closed"
    assert closed.json()[0]["closed_by_id"] == tech.id
    detail = client.get(f"{ALERTS}/{first}", headers=headers).json()
    assert [(n["action"], n["body"], n["author_id"]) for n in detail["notes"]] == [
        ("acknowledged", "on it", tech.id),
        ("note", "bearing noise", tech.id),
        ("cleared", "", tech.id),
        ("closed", "bearing replaced", tech.id),
    ]
    assert all(n["created_at"] for n in detail["notes"])
    with session_factory() as session:
        events = session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == "alert.cleared")
        ).all()
    assert sorted(e.payload["alert_id"] for e in events) == [first, second]
    assert events[0].payload["site_id"] == ids["site"]


def test_illegal_moves_are_refused_all_or_nothing(
    client: TestClient,
    admin_headers: dict[str, str],
    session_factory: sessionmaker[Session],
) -> None:
    active = make_alert(session_factory)
    closed = make_alert(session_factory, status=AlertStatus.CLOSED)
    response = client.post(f"{ALERTS}/close", headers=admin_headers, json={"ids": [active]})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["refused"] == [{"id": active, "status": "active"}]
    both = client.post(
        f"{ALERTS}/acknowledge", headers=admin_headers, json={"ids": [active, closed]}
    )
    assert both.status_code == 409
    assert both.json()["refused"] == [{"id": closed, "status": "closed"}]
    # Nothing changed, not even the alert that could have moved.
    assert client.get(f"{ALERTS}/{active}", headers=admin_headers).json()["status"] == "active"
    twice = client.post(f"{ALERTS}/acknowledge", headers=admin_headers, json={"ids": [active]})
    assert twice.status_code == 200
    again = client.post(f"{ALERTS}/acknowledge", headers=admin_headers, json={"ids": [active]})
    assert again.status_code == 409
    missing = client.post(f"{ALERTS}/clear", headers=admin_headers, json={"ids": [active, 9999]})
    assert missing.status_code == 404
    assert "9999" in missing.json()["detail"]
    empty_note = client.post(f"{ALERTS}/notes", headers=admin_headers, json={"ids": [active]})
    assert empty_note.status_code == 422
    assert (
        client.post(f"{ALERTS}/clear", headers=admin_headers, json={"ids": []}).status_code == 422
    )


def test_permissions(
    client: TestClient,
    make_user: MakeUser,
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    alert = make_alert(session_factory)
    analyst = bearer(make_user(Role.ANALYST)[1])
    tech = bearer(make_user(Role.TECHNICIAN)[1])
    supplier = bearer(make_user(Role.SUPPLIER)[1])
    rule = {"name": "R", "sensor_id": ids["vib"], "condition": CONDITION}
    assert client.get(ALERTS, headers=analyst).status_code == 200
    assert client.get(RULES, headers=analyst).status_code == 200
    assert client.get(ALERTS, headers=supplier).status_code == 403
    assert client.get(ALERTS).status_code == 401
    assert (
        client.post(f"{ALERTS}/acknowledge", headers=analyst, json={"ids": [alert]}).status_code
        == 403
    )
    assert client.post(RULES, headers=tech, json=rule).status_code == 403
    assert client.post(RULES, headers=analyst, json=rule).status_code == 403
    assert (
        client.post(f"{ALERTS}/acknowledge", headers=tech, json={"ids": [alert]}).status_code == 200
    )
