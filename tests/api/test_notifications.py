"""Notification API: subscriptions, webhook endpoints (secrets shown once), the log, live events."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conftest import PASSWORD, MakeUser
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.delivery import notification_handlers
from maintainpro.core.events import deliver_pending, emit
from maintainpro.core.live import Broadcaster
from maintainpro.core.notifications import Delivery, WebhookEndpoint
from maintainpro.core.users import Role
from support import bearer

API = "/api/v1/notifications"
ALERT = {
    "alert_id": 4,
    "rule_id": 1,
    "sensor_id": 2,
    "asset_id": None,
    "site_id": None,
    "severity": "critical",
    "title": "P-101 vibration above 11 mm/s",
    "reason": "above limit",
    "value": 11.4,
    "reading_at": "2026-03-02T11:59:30+00:00",
    "url": "/alerts/4",
}


def test_users_manage_their_own_subscriptions(client: TestClient, make_user: MakeUser) -> None:
    tech, token = make_user(Role.TECHNICIAN, email="tech@example.com")
    _other, other_token = make_user(Role.TECHNICIAN)
    body = {
        "topics": "alert.raised, alert.escalated",
        "min_severity": "major",
        "quiet_start": "22:00",
        "quiet_end": "06:00",
        "timezone": "Europe/Berlin",
    }
    created = client.post(f"{API}/subscriptions", json=body, headers=bearer(token))
    assert created.status_code == 201, created.text
    sub = created.json()
    assert (sub["user_id"], sub["channel"], sub["topics"]) == (
        tech.id,
        "email",
        "alert.raised,alert.escalated",
    )
    sid = sub["id"]

    mine = client.get(f"{API}/subscriptions", headers=bearer(token)).json()
    assert [s["id"] for s in mine["items"]] == [sid]
    assert client.get(f"{API}/subscriptions", headers=bearer(other_token)).json()["total"] == 0
    # Someone else's subscription does not exist as far as they can tell.
    assert client.get(f"{API}/subscriptions/{sid}", headers=bearer(other_token)).status_code == 404
    assert (
        client.patch(
            f"{API}/subscriptions/{sid}", json={"active": False}, headers=bearer(other_token)
        ).status_code
        == 404
    )

    patched = client.patch(
        f"{API}/subscriptions/{sid}",
        json={"quiet_start": None, "quiet_end": None, "min_severity": "critical"},
        headers=bearer(token),
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["quiet_start"], patched.json()["min_severity"]) == (None, "critical")
    assert client.delete(f"{API}/subscriptions/{sid}", headers=bearer(token)).status_code == 204
    assert client.get(f"{API}/subscriptions/{sid}", headers=bearer(token)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"role": "technician"},
        {"user_id": 999_999},
        {"channel": "webhook", "webhook_id": 1},
    ],
)
def test_only_admins_subscribe_others_roles_and_webhooks(
    client: TestClient, make_user: MakeUser, body: dict[str, object]
) -> None:
    _, token = make_user(Role.TECHNICIAN)
    answer = client.post(f"{API}/subscriptions", json=body, headers=bearer(token))
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"timezone": "Mars/Olympus"},
        {"quiet_start": "25:00", "quiet_end": "06:00"},
        {"quiet_start": "22:00"},
        {"topics": "alert.<script>"},
        {"min_severity": "apocalyptic"},
        {"role": "technician", "user_id": 1},
        {"site_id": 999_999},
        {"unknown": 1},
    ],
)
def test_subscription_validation(
    client: TestClient, admin_headers: dict[str, str], body: dict[str, object]
) -> None:
    answer = client.post(f"{API}/subscriptions", json=body, headers=admin_headers)
    assert answer.status_code == 422, answer.text


def test_admin_subscribes_a_role(
    client: TestClient, admin_headers: dict[str, str], make_user: MakeUser
) -> None:
    created = client.post(
        f"{API}/subscriptions", json={"role": "technician"}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    assert (created.json()["role"], created.json()["user_id"]) == ("technician", None)
    listed = client.get(f"{API}/subscriptions?role=technician", headers=admin_headers).json()
    assert listed["total"] == 1
    _, supplier = make_user(Role.SUPPLIER)
    assert client.get(f"{API}/subscriptions", headers=bearer(supplier)).status_code == 403


def test_webhook_secret_is_shown_once_and_sealed(
    client: TestClient,
    admin_headers: dict[str, str],
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
) -> None:
    body = {"name": "Ops", "url": "https://hooks.example.com/mp", "secret": "given-secret-123456"}
    created = client.post(f"{API}/webhooks", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"] == "given-secret-123456"
    assert hook["has_secret"] is True
    hid = hook["id"]
    generated = client.post(
        f"{API}/webhooks", json={"name": "Gen", "url": "http://10.0.0.5/x"}, headers=admin_headers
    ).json()
    assert len(generated["secret"]) >= 32

    for answer in (
        client.get(f"{API}/webhooks", headers=admin_headers),
        client.get(f"{API}/webhooks/{hid}", headers=admin_headers),
        client.patch(f"{API}/webhooks/{hid}", json={"active": False}, headers=admin_headers),
    ):
        assert answer.status_code == 200
        assert "given-secret-123456" not in answer.text
        assert '"secret"' not in answer.text
    with session_factory() as session:
        stored = session.get(WebhookEndpoint, hid)
        assert stored is not None
        assert stored.secret is not None
        assert b"given-secret-123456" not in stored.secret
        assert client.app.state.credential_box.open(stored.secret) == {  # type: ignore[attr-defined]
            "secret": "given-secret-123456"
        }

    rotated = client.patch(
        f"{API}/webhooks/{hid}", json={"rotate_secret": True}, headers=admin_headers
    ).json()
    assert rotated["secret"] != "given-secret-123456"

    _, tech = make_user(Role.MAINTENANCE_MANAGER)
    assert client.get(f"{API}/webhooks", headers=bearer(tech)).status_code == 403
    assert client.post(f"{API}/webhooks", json=body, headers=bearer(tech)).status_code == 403
    bad = client.post(
        f"{API}/webhooks", json={"name": "x", "url": "ftp://example.com/"}, headers=admin_headers
    )
    assert bad.status_code == 422
    sub = client.post(
        f"{API}/subscriptions",
        json={"channel": "webhook", "webhook_id": hid, "min_severity": "critical"},
        headers=admin_headers,
    )
    assert sub.status_code == 201, sub.text
    assert client.delete(f"{API}/webhooks/{hid}", headers=admin_headers).status_code == 204
    assert (
        client.get(f"{API}/subscriptions/{sub.json()['id']}", headers=admin_headers).status_code
        == 404
    )


def test_test_notification_and_delivery_log(
    client: TestClient,
    admin_headers: dict[str, str],
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
) -> None:
    _, token = make_user(Role.TECHNICIAN, email="tech@example.com")
    _, no_mail = make_user(Role.TECHNICIAN)
    queued = client.post(f"{API}/test", json={}, headers=bearer(token))
    assert queued.status_code == 202, queued.text
    assert (queued.json()["target"], queued.json()["status"]) == ("tech@example.com", "pending")
    assert client.post(f"{API}/test", json={}, headers=bearer(no_mail)).status_code == 422
    webhook_test = {"channel": "webhook", "webhook_id": 1}
    assert client.post(f"{API}/test", json=webhook_test, headers=bearer(token)).status_code == 403

    hook = client.post(
        f"{API}/webhooks",
        json={"name": "Ops", "url": "https://h.example.com/"},
        headers=admin_headers,
    ).json()
    queued_hook = client.post(
        f"{API}/test", json={"channel": "webhook", "webhook_id": hook["id"]}, headers=admin_headers
    )
    assert queued_hook.status_code == 202
    assert queued_hook.json()["target"] == f"webhook:{hook['id']}"

    mine = client.get(f"{API}/deliveries", headers=bearer(token)).json()
    assert [d["target"] for d in mine["items"]] == ["tech@example.com"]
    everything = client.get(f"{API}/deliveries", headers=admin_headers).json()
    assert everything["total"] == 2
    webhooks = client.get(f"{API}/deliveries?channel=webhook", headers=admin_headers).json()
    assert webhooks["total"] == 1
    pending = client.get(
        f"{API}/deliveries?status=pending&topic=notification.test", headers=admin_headers
    ).json()
    assert pending["total"] == 2
    assert (
        client.get(f"{API}/deliveries?since=2026-01-01T00:00:00", headers=admin_headers).status_code
        == 422
    )
    # Test events do not fan out to subscribers: the outbox holds them as already delivered.
    assert deliver_pending(session_factory, notification_handlers(session_factory)) == 0
    with session_factory() as session:
        assert len(session.scalars(select(Delivery)).all()) == 2


def test_stream_requires_authentication(client: TestClient, make_user: MakeUser) -> None:
    assert client.get("/api/v1/events/stream").status_code == 401
    assert client.get("/api/v1/events/stream", headers=bearer("mpt_nope")).status_code == 401
    _, supplier = make_user(Role.SUPPLIER)
    assert client.get("/api/v1/events/stream", headers=bearer(supplier)).status_code == 403


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def live_server(settings: Settings, engine: object) -> Iterator[tuple[FastAPI, str]]:
    """The app served by uvicorn on a free port in a thread."""
    app = create_app(settings)
    app.state.live_keepalive_s = 0.2
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


def test_alert_event_reaches_a_live_stream(
    live_server: tuple[FastAPI, str],
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
) -> None:
    app, base = live_server
    _, token = make_user(Role.TECHNICIAN)
    with session_factory() as session, session.begin():
        emit(session, "alert.raised", ALERT)
    frames: list[str] = []
    with (
        httpx.Client(base_url=base, timeout=5) as http,
        http.stream("GET", "/api/v1/events/stream", headers=bearer(token)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "retry: 5000"
        # Relay the outbox from this thread: the handler publishes across threads to the loop.
        handlers = notification_handlers(session_factory, app.state.live.publish)
        assert deliver_pending(session_factory, handlers) == 1
        for line in lines:
            frames.append(line)
            if line.startswith("data: {"):
                break
    assert "event: alert.raised" in frames
    data = json.loads(frames[-1].removeprefix("data: "))
    assert data == ALERT


def test_signed_in_page_session_reads_the_stream(
    live_server: tuple[FastAPI, str], make_user: MakeUser
) -> None:
    app, base = live_server
    make_user(Role.TECHNICIAN, username="tess")
    with httpx.Client(base_url=base, timeout=5) as http:
        login = http.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf is not None
        form = {"username": "tess", "password": PASSWORD, "next": "/", "csrf_token": csrf[1]}
        assert http.post("/login", data=form).status_code in (200, 303)
        with http.stream("GET", "/api/v1/events/stream") as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines) == "retry: 5000"
            app.state.live.publish("alert.cleared", {"alert_id": 9})
            frames = []
            for line in lines:
                frames.append(line)
                if line.startswith("data: {"):
                    break
    assert frames[-2:] == ["event: alert.cleared", 'data: {"alert_id":9}']


def test_slow_listener_drops_oldest_and_counts() -> None:
    async def scenario() -> tuple[list[int], int]:
        live = Broadcaster(queue_size=3)
        async with live.listen() as listener:
            for n in range(5):
                live.publish("tick", {"n": n})
            got = []
            while (event := await listener.next(0.01)) is not None:
                got.append(event.data["n"])
            return got, listener.dropped

    assert asyncio.run(scenario()) == ([2, 3, 4], 2)
