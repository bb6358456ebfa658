"""The WebSocket /api/v1/stream/ws through a real uvicorn server, with the websockets client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from analytics.feeds.feed_world import FeedServer, FeedWorld, emit_alerts, wait_for
from conftest import MakeUser
from maintainpro.analytics.access import access_ledger
from maintainpro.core.users import Role
from page_login import login
from support import bearer

PATH = "/api/v1/stream/ws"


@contextmanager
def socket(
    server: FeedServer, token: str | None = None, **params: str
) -> Iterator[ClientConnection]:
    """A WebSocket to the feed; the token goes in the Authorization header when given."""
    url = server.url.replace("http://", "ws://") + PATH
    if params:
        url += "?" + urlencode(params)
    headers = bearer(token) if token else None
    with connect(url, additional_headers=headers, proxy=None, open_timeout=5) as connection:
        yield connection


def receive(connection: ClientConnection) -> dict[str, Any]:
    """The next message, decoded (5 s at most)."""
    message: dict[str, Any] = json.loads(connection.recv(timeout=5))
    return message


def until_alert(connection: ClientConnection, alert_id: int) -> list[dict[str, Any]]:
    """Messages up to and including the feed event of this alert."""
    messages = []
    while True:
        messages.append(receive(connection))
        last = messages[-1]
        if last["type"] == "alert" and last["data"]["alert_id"] == alert_id:
            return messages


def await_subscribers(server: FeedServer, count: int) -> None:
    """Wait until the server has registered the sockets (accept comes before subscribing)."""
    stream = server.app.state.feeds.stream
    wait_for(lambda: len(stream.subscriptions()) >= count)


def test_sockets_get_the_events_of_their_sites_only(
    feed_server: FeedServer,
    world: FeedWorld,
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
) -> None:
    _, local_token = make_user(Role.TECHNICIAN, site_id=world.site_a)
    _, admin_token = make_user(Role.ADMIN)
    with socket(feed_server, local_token) as local, socket(feed_server, admin_token) as admin:
        await_subscribers(feed_server, 2)
        emit_alerts(
            session_factory, (1, world.asset_b, world.site_b), (2, world.asset_a, world.site_a)
        )
        feed_server.relay_outbox()
        local_messages = until_alert(local, 2)
        admin_messages = until_alert(admin, 2)
    events = [m for m in local_messages if m["type"] != "heartbeat"]
    assert [(e["data"]["alert_id"], e["site_id"]) for e in events] == [(2, world.site_a)]
    assert [m["data"]["alert_id"] for m in admin_messages if m["type"] == "alert"] == [1, 2]


def test_an_idle_socket_gets_heartbeats(
    feed_server: FeedServer, world: FeedWorld, make_user: MakeUser
) -> None:
    _, token = make_user(Role.ANALYST)
    with socket(feed_server, token) as connection:
        beat = receive(connection)
    assert beat["type"] == "heartbeat"
    assert beat["ts"].endswith("+00:00")


@pytest.mark.parametrize(
    ("token", "params", "status"),
    [
        (None, {}, 401),
        ("mpt_not-a-real-token-at-all", {}, 401),
        (None, {"access_token": "mpt_not-a-real-token-at-all"}, 401),
        (None, {"type": "everything"}, 401),  # the credential is checked first
    ],
)
def test_a_socket_without_a_usable_token_is_refused_with_401(
    feed_server: FeedServer, token: str | None, params: dict[str, str], status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused, socket(feed_server, token, **params):
        pass
    response = refused.value.response
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert json.loads(response.body)["status"] == status


def test_a_site_user_may_not_ask_for_another_site(
    feed_server: FeedServer, world: FeedWorld, make_user: MakeUser
) -> None:
    _, token = make_user(Role.TECHNICIAN, site_id=world.site_a)
    with (
        pytest.raises(InvalidStatus) as refused,
        socket(feed_server, token, site_id=str(world.site_b)),
    ):
        pass
    assert refused.value.response.status_code == 403


def test_a_browser_token_resumes_and_the_connection_is_recorded(
    feed_server: FeedServer,
    world: FeedWorld,
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
) -> None:
    user, token = make_user(Role.TECHNICIAN)
    stream = feed_server.app.state.feeds.stream
    emit_alerts(session_factory, *((n, world.asset_a, world.site_a) for n in (1, 2, 3)))
    feed_server.relay_outbox()
    wait_for(lambda: stream.stats.published == 3)
    first, _ = stream.replay_window
    with socket(feed_server, access_token=token, type="alert", last_event_id=str(first)) as ws:
        replayed = until_alert(ws, 3)
    assert [m["data"]["alert_id"] for m in replayed] == [2, 3]
    ledger = access_ledger(feed_server.app.state)
    wait_for(lambda: bool(ledger.connections("stream.ws")))
    (record,) = ledger.connections("stream.ws")
    assert (record.username, record.rows_served, record.errors) == (user.username, 2, 0)


def session_cookie(server: FeedServer, make_user: MakeUser) -> str:
    """Sign a new technician in through the login form; the session cookie as a header value."""
    with httpx.Client(base_url=server.url, timeout=5) as http:
        login(http, make_user, Role.TECHNICIAN)  # an httpx client does what a TestClient does
        return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


def test_the_pages_session_opens_a_socket_from_our_own_origin_only(
    feed_server: FeedServer, world: FeedWorld, make_user: MakeUser
) -> None:
    cookie = session_cookie(feed_server, make_user)
    url = feed_server.url.replace("http://", "ws://") + PATH
    ours = {"Cookie": cookie, "Origin": feed_server.url}
    with connect(url, additional_headers=ours, proxy=None, open_timeout=5) as connection:
        assert receive(connection)["type"] == "heartbeat"
    foreign = {"Cookie": cookie, "Origin": "https://elsewhere.example"}
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(url, additional_headers=foreign, proxy=None, open_timeout=5),
    ):
        pass
    assert refused.value.response.status_code == 401
