"""The device registry API: CRUD, write-only encrypted credentials, YAML import/export."""

from __future__ import annotations

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintainpro.core.users import Role
from maintainpro.iot.devices import DeadLetter, Device
from support import bearer, plant

MODBUS_DEVICE = {
    "key": "press-1",
    "name": "Hydraulic press PLC",
    "protocol": "modbus",
    "endpoint": "tcp://10.0.0.5:502",
    "settings": {"unit": 1, "poll_s": 2},
    "credentials": {"username": "plc", "password": "s3cret-plc-pass"},
    "sensors": [
        {
            "key": "oil-temp",
            "type": "temperature",
            "unit": "°C",
            "min_value": -20,
            "max_value": 120,
            "address": {"function": "holding", "address": 0, "data_type": "float32"},
        },
        {"key": "pressure", "type": "pressure", "unit": "bar", "address": {"address": 2}},
    ],
}


def test_create_read_and_credentials_are_write_only(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    created = client.post("/api/v1/devices", headers=admin_headers, json=MODBUS_DEVICE)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["has_credentials"] is True
    assert "credentials" not in body
    assert "s3cret-plc-pass" not in created.text
    assert body["status"] == "offline"
    assert [s["key"] for s in body["sensors"]] == ["oil-temp", "pressure"]
    stored = db.scalars(select(Device)).one()
    assert stored.credentials is not None
    assert b"s3cret-plc-pass" not in stored.credentials, "encrypted at rest"
    fetched = client.get("/api/v1/devices/press-1", headers=admin_headers)
    assert "s3cret" not in fetched.text
    assert (
        client.post("/api/v1/devices", headers=admin_headers, json=MODBUS_DEVICE).status_code == 409
    )


def test_disable_and_edit_sensors(client: TestClient, admin_headers: dict[str, str]) -> None:
    client.post("/api/v1/devices", headers=admin_headers, json=MODBUS_DEVICE)
    patched = client.patch(
        "/api/v1/devices/press-1", headers=admin_headers, json={"enabled": False}
    )
    assert patched.status_code == 200
    assert patched.json()["status"] == "disabled"
    assert patched.json()["has_credentials"] is True, "a patch keeps the stored credentials"
    sensor = {"key": "flow", "type": "flow", "unit": "l/min", "address": {"address": 10}}
    put = client.put("/api/v1/devices/press-1/sensors/flow", headers=admin_headers, json=sensor)
    assert put.status_code == 200
    gone = client.delete("/api/v1/devices/press-1/sensors/pressure", headers=admin_headers)
    assert gone.status_code == 204
    keys = [
        s["key"]
        for s in client.get("/api/v1/devices/press-1", headers=admin_headers).json()["sensors"]
    ]
    assert keys == ["oil-temp", "flow"]


def test_bad_devices_are_refused(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    bad_cases = [
        {**MODBUS_DEVICE, "endpoint": "http://x"},
        {**MODBUS_DEVICE, "key": "a/b"},
        {**MODBUS_DEVICE, "key": "x; DROP TABLE devices; --"},
        {**MODBUS_DEVICE, "protocol": "zigbee"},
        {
            **MODBUS_DEVICE,
            "sensors": [{"key": "t", "type": "temperature", "min_value": 5, "max_value": 1}],
        },
        {
            **MODBUS_DEVICE,
            "sensors": [{"key": "t", "type": "temperature"}, {"key": "t", "type": "flow"}],
        },
        {**MODBUS_DEVICE, "asset": "NO-SUCH-ASSET"},
        {**MODBUS_DEVICE, "surprise": 1},
    ]
    for case in bad_cases:
        response = client.post("/api/v1/devices", headers=admin_headers, json=case)
        assert response.status_code == 422, (case, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert db.scalar(select(func.count()).select_from(Device)) == 0


def test_technician_reads_but_cannot_configure(
    client: TestClient, make_user, admin_headers: dict[str, str]
) -> None:
    client.post("/api/v1/devices", headers=admin_headers, json=MODBUS_DEVICE)
    _, token = make_user(Role.TECHNICIAN)
    assert client.get("/api/v1/devices", headers=bearer(token)).status_code == 200
    refused = client.patch(
        "/api/v1/devices/press-1", headers=bearer(token), json={"enabled": False}
    )
    assert refused.status_code == 403


def test_yaml_export_import_round_trip_and_all_or_nothing(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    ids = plant(db)
    db.commit()
    assert ids["pump"]
    client.post("/api/v1/devices", headers=admin_headers, json={**MODBUS_DEVICE, "asset": "P-1"})
    exported = client.get("/api/v1/devices/export", headers=admin_headers)
    assert exported.status_code == 200
    document = yaml.safe_load(exported.text)
    assert document["devices"][0]["asset"] == "P-1"
    assert "credentials" not in exported.text
    assert "s3cret" not in exported.text

    document["devices"][0]["name"] = "Renamed press"
    document["devices"].append(
        {
            "key": "vib-1",
            "name": "Vibration node",
            "protocol": "mqtt",
            "sensors": [{"key": "rms", "type": "vibration"}],
        }
    )
    headers = {**admin_headers, "content-type": "application/yaml"}
    imported = client.post(
        "/api/v1/devices/import", headers=headers, content=yaml.safe_dump(document)
    )
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"applied": True, "created": 1, "updated": 1, "problems": []}
    press = client.get("/api/v1/devices/press-1", headers=admin_headers).json()
    assert press["name"] == "Renamed press"
    assert press["has_credentials"] is True

    document["devices"][1]["name"] = "Would change"
    document["devices"].append(
        {"key": "broken", "name": "x", "protocol": "opcua", "endpoint": "tcp://x"}
    )
    refused = client.post(
        "/api/v1/devices/import", headers=headers, content=yaml.safe_dump(document)
    )
    assert refused.status_code == 422
    problems = refused.json()["problems"]
    assert [p["entry"] for p in problems] == [3]
    assert "opc.tcp://" in problems[0]["message"]
    vib = client.get("/api/v1/devices/vib-1", headers=admin_headers).json()
    assert vib["name"] == "Vibration node", "a refused import applies nothing"
    garbage = client.post("/api/v1/devices/import", headers=headers, content="devices: [unclosed")
    assert garbage.status_code == 422


def test_dead_letters_are_listed_with_a_safe_preview(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    db.add(
        DeadLetter(
            source="mqtt",
            device_key="ghost",
            code="malformed_payload",
            reason="not JSON",
            payload=b"<script>alert(1)</script>" + b"x" * 5000,
            payload_size=5025,
        )
    )
    db.commit()
    listed = client.get("/api/v1/dead-letters?code=malformed_payload", headers=admin_headers)
    assert listed.status_code == 200
    item = listed.json()["items"][0]
    assert item["reason"] == "not JSON"
    assert item["payload_size"] == 5025
    assert len(item["payload_preview"]) == 1024


def test_iot_status_reports_the_pipeline(settings, make_user) -> None:  # type: ignore[no-untyped-def]
    from maintainpro.app import create_app

    _, token = make_user(Role.ANALYST)
    running = settings.model_copy(update={"run_background_jobs": True})
    with TestClient(create_app(running)) as live:
        status_ = live.get("/api/v1/iot/status", headers=bearer(token)).json()
        assert status_["running"] is True
        assert status_["ingest"]["stored"] == 0
        assert status_["connectors"] == []
    with TestClient(create_app(settings)) as idle:
        assert idle.get("/api/v1/iot/status", headers=bearer(token)).json()["running"] is False
