"""The edge agent API: registration, pushing a configuration, its status, the HTTPS pull."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from paho.mqtt.client import Client, MQTTMessage
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from edge_configs import PRESS
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.users import Role
from maintainpro.iot.connectors.mqtt import MqttOptions
from maintainpro.iot.edge.channel import ConfigAck, config_topic
from maintainpro.iot.edge.config import EdgeConfig, decode_config
from maintainpro.iot.edge.publisher import record_ack
from maintainpro.iot.edge.remote import ConfigReceiver
from maintainpro.iot.edge_agents import EdgeAgent
from mosquitto import Mosquitto, broker_config, connect_publisher, free_port
from support import bearer

BASE = "/api/v1/edge-agents"


def _register(client: TestClient, headers: dict[str, str], key: str = "edge-1") -> None:
    created = client.post(BASE, headers=headers, json={"key": key, "name": "Line 1 gateway"})
    assert created.status_code == 201, created.text


def test_register_list_rename_delete(client: TestClient, admin_headers: dict[str, str]) -> None:
    _register(client, admin_headers)
    body = client.get(f"{BASE}/edge-1", headers=admin_headers).json()
    assert body["config_version"] == 0
    assert body["config_state"] == "none"
    assert body["applied_version"] is None
    assert body["has_credentials"] is False
    again = client.post(BASE, headers=admin_headers, json={"key": "edge-1", "name": "x"})
    assert again.status_code == 409
    bad = client.post(BASE, headers=admin_headers, json={"key": "edge 1", "name": "x", "y": 1})
    assert bad.status_code == 422
    patched = client.patch(f"{BASE}/edge-1", headers=admin_headers, json={"enabled": False})
    assert patched.json()["enabled"] is False
    listed = client.get(BASE, headers=admin_headers).json()
    assert listed["total"] == 1
    assert listed["items"][0]["key"] == "edge-1"
    assert client.delete(f"{BASE}/edge-1", headers=admin_headers).status_code == 204
    assert client.get(f"{BASE}/edge-1", headers=admin_headers).status_code == 404


def test_permissions(client: TestClient, admin_headers: dict[str, str], make_user: Any) -> None:
    _register(client, admin_headers)
    reader = bearer(make_user(Role.TECHNICIAN)[1])
    assert client.get(f"{BASE}/edge-1/status", headers=reader).status_code == 200
    denied = client.put(f"{BASE}/edge-1/config", headers=reader, json={"devices": []})
    assert denied.status_code == 403
    assert client.post(BASE, headers=reader, json={"key": "e2", "name": "x"}).status_code == 403
    assert client.get(f"{BASE}/edge-1/config").status_code == 401
    nobody = bearer(make_user(Role.SUPPLIER)[1])
    assert client.get(f"{BASE}/edge-1/config", headers=nobody).status_code == 403


def test_push_without_a_broker_is_stored_for_pulling(
    client: TestClient, admin_headers: dict[str, str], db: Session, tmp_path: Path
) -> None:
    _register(client, admin_headers)
    assert client.get(f"{BASE}/edge-1/config", headers=admin_headers).status_code == 404
    pushed = client.put(
        f"{BASE}/edge-1/config",
        headers=admin_headers,
        json={"devices": [PRESS], "settings": {"poll_s": 5}},
    )
    assert pushed.status_code == 200, pushed.text
    body = pushed.json()
    assert body["version"] == 1
    assert body["published"] is False
    assert "pulls its configuration" in body["publish_error"]
    assert body["unregistered_devices"] == ["press-1"]
    assert body["agent"]["config_state"] == "pending"
    assert body["agent"]["devices"] == ["press-1"]

    pulled = client.get(f"{BASE}/edge-1/config", headers=admin_headers)
    assert pulled.status_code == 200
    assert pulled.headers["x-config-version"] == "1"
    config = decode_config(pulled.content)
    assert config.agent == "edge-1"
    assert config.version == 1
    assert config.settings.poll_s == 5
    assert pulled.headers["etag"] == f'"{json.loads(pulled.content)["sha256"]}"'

    # An agent that pulls hands the bytes to its receiver like a pushed message.
    applied: list[EdgeConfig] = []
    receiver = ConfigReceiver(_unused_options(), "edge-1", applied.append, tmp_path)
    assert receiver.offer(pulled.content).action == "applied"
    assert [c.version for c in applied] == [1]

    second = client.put(f"{BASE}/edge-1/config", headers=admin_headers, json={"devices": []})
    assert second.json()["version"] == 2
    stored = db.scalars(select(EdgeAgent)).one()
    assert stored.config_version == 2
    assert stored.config["devices"] == []


def _unused_options() -> MqttOptions:
    return MqttOptions(port=free_port(), client_id="edge-1-test")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"endpoint": "http://10.0.0.5"}, "endpoint"),
        ({"credentials": {"password": "plc-pass"}}, "credentials are not distributed"),
        ({"asset": "NO-SUCH"}, "asset 'NO-SUCH' does not exist"),
        ({"sensors": [PRESS["sensors"][0], PRESS["sensors"][0]]}, "sensor keys must be unique"),
    ],
)
def test_invalid_configurations_are_refused_and_nothing_changes(
    client: TestClient, admin_headers: dict[str, str], change: dict[str, Any], error: str
) -> None:
    _register(client, admin_headers)
    refused = client.put(
        f"{BASE}/edge-1/config", headers=admin_headers, json={"devices": [PRESS | change]}
    )
    assert refused.status_code == 422
    assert error in refused.text
    assert "plc-pass" not in refused.text
    assert client.get(f"{BASE}/edge-1", headers=admin_headers).json()["config_version"] == 0


def test_duplicate_devices_and_unknown_agents(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    _register(client, admin_headers)
    twice = client.put(
        f"{BASE}/edge-1/config", headers=admin_headers, json={"devices": [PRESS] * 2}
    )
    assert twice.status_code == 422
    assert "device keys must be unique" in twice.text
    missing = client.put(f"{BASE}/nope/config", headers=admin_headers, json={"devices": []})
    assert missing.status_code == 404
    none_yet = client.post(f"{BASE}/edge-1/config/publish", headers=admin_headers)
    assert none_yet.status_code == 409


def test_status_shows_applied_pending_and_rejected(
    client: TestClient, admin_headers: dict[str, str], session_factory: Any
) -> None:
    _register(client, admin_headers)
    client.put(f"{BASE}/edge-1/config", headers=admin_headers, json={"devices": [PRESS]})
    with session_factory() as session, session.begin():
        record_ack(session, "edge-1", ConfigAck(1, "applied"))
    status = client.get(f"{BASE}/edge-1/status", headers=admin_headers).json()
    assert status["config_state"] == "applied"
    assert status["applied_version"] == 1
    client.put(f"{BASE}/edge-1/config", headers=admin_headers, json={"devices": []})
    with session_factory() as session, session.begin():
        record_ack(session, "edge-1", ConfigAck(2, "rejected", "port 502 in use"))
        # A late rejection of what already runs changes nothing.
        assert not record_ack(session, "edge-1", ConfigAck(1, "rejected", "old news"))
    status = client.get(f"{BASE}/edge-1/status", headers=admin_headers).json()
    assert status["config_state"] == "rejected"
    assert status["config_version"] == 2
    assert status["applied_version"] == 1
    assert status["config_error"] == "version 2: port 502 in use"
    assert status["config_error_at"].endswith("Z") or "+00:00" in status["config_error_at"]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto of this test's own."""
    port = free_port()
    config = broker_config(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    instance = Mosquitto(tmp_path, config, (port,))
    instance.start()
    yield instance
    instance.stop()


@pytest.mark.integration
def test_push_publishes_the_same_message_retained(
    settings: Settings, engine: Engine, broker: Mosquitto, make_user: Any
) -> None:
    configured = settings.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{broker.port}"})
    headers = bearer(make_user(Role.ADMIN)[1])
    with TestClient(create_app(configured)) as client:
        _register(client, headers)
        pushed = client.put(f"{BASE}/edge-1/config", headers=headers, json={"devices": [PRESS]})
        assert pushed.json()["published"] is True, pushed.text
        pulled = client.get(f"{BASE}/edge-1/config", headers=headers).content
        republished = client.post(f"{BASE}/edge-1/config/publish", headers=headers)
        assert republished.json()["published"] is True
        _register(client, headers, "edge-2")
        client.put(f"{BASE}/edge-2/config", headers=headers, json={"devices": []})
        assert client.delete(f"{BASE}/edge-2", headers=headers).status_code == 204
    received: list[bytes] = []
    got = threading.Event()

    def on_message(client: Client, userdata: object, message: MQTTMessage) -> None:
        received.append(message.payload)
        got.set()

    subscriber = connect_publisher(broker.port)
    subscriber.on_message = on_message
    subscriber.subscribe(config_topic("edge-1"), qos=1)
    subscriber.subscribe(config_topic("edge-2"), qos=1)
    try:
        assert got.wait(5), "the configuration is retained"
        time.sleep(0.3)  # time for a retained edge-2 message, if any, to arrive
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()
    assert received == [pulled], "edge-2's retained configuration was cleared on delete"
