"""Device pages in the browser shell: list, YAML editor, toggle, import, dead letters."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.users import Role
from maintainpro.iot.devices import DeadLetter, Device

PASSWORD = "correct horse battery"
DEVICE_YAML = """key: boiler-coap
name: Boiler gateway
protocol: coap
endpoint: coap://127.0.0.1:5683
credentials: {psk_identity: boiler, psk: very-secret-key}
sensors:
  - {key: steam, type: pressure, unit: bar, address: {resource: /steam}}
"""


def _login(client: TestClient, username: str) -> str:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": token.group(1),
            "next": "/devices",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    return token_from(client.get("/devices"))


def token_from(page) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_create_edit_toggle_and_see_dead_letters(
    client: TestClient, make_user, db: Session
) -> None:
    make_user(Role.ADMIN, username="ops")
    csrf = _login(client, "ops")
    saved = client.post(
        "/devices/save", data={"text": DEVICE_YAML, "csrf_token": csrf}, follow_redirects=False
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/devices/boiler-coap"
    page = client.get("/devices/boiler-coap")
    assert "Boiler gateway" in page.text
    assert "very-secret-key" not in page.text
    assert "stored (encrypted, never shown)" in page.text

    edit = client.get("/devices/boiler-coap/edit")
    assert "very-secret-key" not in edit.text
    broken = client.post(
        "/devices/save",
        data={
            "text": DEVICE_YAML.replace("protocol: coap", "protocol: zigbee"),
            "csrf_token": csrf,
            "original_key": "boiler-coap",
        },
    )
    assert broken.status_code == 422
    assert "protocol" in broken.text

    toggled = client.post(
        "/devices/boiler-coap/toggle", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert toggled.status_code == 303
    assert db.scalars(select(Device)).one().enabled is False

    db.add(
        DeadLetter(
            source="coap",
            device_key="boiler-coap",
            code="malformed_payload",
            reason="not JSON",
            payload=b"<b>x</b>",
            payload_size=8,
        )
    )
    db.commit()
    letters = client.get("/devices/dead-letters")
    assert "malformed_payload" in letters.text
    assert "<b>x</b>" not in letters.text
    assert "&lt;b&gt;x&lt;/b&gt;" in letters.text


def test_import_shows_problems_and_export_downloads(client: TestClient, make_user) -> None:
    make_user(Role.ADMIN, username="ops")
    csrf = _login(client, "ops")
    bad = "devices:\n  - {key: a, name: A, protocol: opcua, endpoint: tcp://x}\n"
    refused = client.post("/devices/import", data={"text": bad, "csrf_token": csrf})
    assert refused.status_code == 422
    assert "entry 1 (a)" in refused.text
    good = "devices:\n  - {key: a, name: A, protocol: opcua, endpoint: 'opc.tcp://x:4840'}\n"
    assert (
        client.post(
            "/devices/import", data={"text": good, "csrf_token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    exported = client.get("/devices/export")
    assert exported.headers["content-disposition"].startswith("attachment")
    assert "opc.tcp://x:4840" in exported.text


def test_technician_sees_devices_but_cannot_change_them(client: TestClient, make_user) -> None:
    make_user(Role.TECHNICIAN, username="tech")
    csrf = _login(client, "tech")
    assert client.get("/devices").status_code == 200
    refused = client.post("/devices/save", data={"text": DEVICE_YAML, "csrf_token": csrf})
    assert refused.status_code == 403
