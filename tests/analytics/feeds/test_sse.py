"""GET /api/v1/stream through a real uvicorn server, read with httpx streaming."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from analytics.feeds.feed_world import (
    T0,
    FeedServer,
    FeedWorld,
    alert_payload,
    emit_alerts,
    wait_for,
)
from analytics.feeds.sse_client import Frame, SseReader, events_of
from conftest import MakeUser
from maintainpro.analytics.access import access_ledger
from maintainpro.analytics.feeds.status import feed_status
from maintainpro.core.events import emit
from maintainpro.core.maintenance import open_work_order
from maintainpro.core.users import Role
from maintainpro.core.work_orders import WorkOrderType
from maintainpro.iot.timeseries import ReadingRow, to_ms
from support import bearer

STREAM = "/api/v1/stream"


def is_alert(alert_id: int) -> Callable[[Frame], bool]:
    """Whether a frame is the feed event of this alert."""
    return lambda f: f.event == "alert" and f.json()["data"]["alert_id"] == alert_id


def connected(reader: SseReader) -> None:
    """Read the opening frame: from here on the connection receives every event."""
    opening = reader.frame()
    assert opening.fields == {"retry": "5000"}
    assert opening.comments == ["connected"]


def at_site_a(world: FeedWorld, *numbers: int) -> list[tuple[int, int, int]]:
    """Alerts of site A's pump."""
    return [(n, world.asset_a, world.site_a) for n in numbers]


def test_a_site_user_never_receives_another_sites_events(
    feed_server: FeedServer,
    world: FeedWorld,
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
) -> None:
    _, local_token = make_user(Role.TECHNICIAN, site_id=world.site_a)
    _, admin_token = make_user(Role.ADMIN)
    stream = feed_server.app.state.feeds.stream
    with (
        httpx.Client(base_url=feed_server.url, timeout=5) as http,
        http.stream("GET", STREAM, headers=bearer(local_token)) as local_response,
        http.stream("GET", STREAM, headers=bearer(admin_token)) as admin_response,
    ):
        assert local_response.status_code == 200
        assert local_response.headers["content-type"].startswith("text/event-stream")
        local, admin = SseReader(local_response), SseReader(admin_response)
        connected(local)
        connected(admin)
        # Site B's events first and site A's alert last: the stream keeps order, so once the
        # local user has that alert, everything before it has been decided.
        stream.on_stored(
            [
                ReadingRow(sensor, to_ms(T0), value, 0)
                for sensor, value in (
                    (world.sensor_a, 1.0),
                    (world.sensor_b, 2.0),
                    (world.sensor_loose, 3.0),
                )
            ]
        )
        with session_factory() as session, session.begin():
            emit(session, "alert.raised", alert_payload(1, world.asset_b, world.site_b))
            open_work_order(
                session, asset_id=world.asset_b, title="Reseal", type=WorkOrderType.CORRECTIVE
            )
            emit(session, "alert.raised", alert_payload(2, world.asset_a, world.site_a))
        assert feed_server.relay_outbox() == 3
        local_events = events_of(local.until(is_alert(2)))
        admin_events = events_of(admin.until(is_alert(2)))
    assert [(e["type"], e["site_id"]) for e in local_events] == [
        ("reading", world.site_a),
        ("alert", world.site_a),
    ]
    assert [(e["type"], e["site_id"]) for e in admin_events] == [
        ("reading", world.site_a),
        ("reading", world.site_b),
        ("reading", None),
        ("alert", world.site_b),
        ("work_order", world.site_b),
        ("alert", world.site_a),
    ]
    reading = local_events[0]
    assert set(reading) == {"id", "type", "site_id", "ts", "data"}
    assert reading["ts"] == T0.isoformat()
    assert reading["data"]["sensor_id"] == world.sensor_a


def test_last_event_id_resumes_where_the_client_left(
    feed_server: FeedServer,
    world: FeedWorld,
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
) -> None:
    _, token = make_user(Role.TECHNICIAN)
    stream = feed_server.app.state.feeds.stream
    with httpx.Client(base_url=feed_server.url, timeout=5) as http:
        with http.stream("GET", STREAM, headers=bearer(token)) as response:
            reader = SseReader(response)
            connected(reader)
            emit_alerts(session_factory, *at_site_a(world, 1, 2, 3))
            feed_server.relay_outbox()
            first = reader.until(is_alert(3))
        ids = [f.fields["id"] for f in first]
        # Two more while the client is away.
        emit_alerts(session_factory, *at_site_a(world, 4, 5))
        feed_server.relay_outbox()
        wait_for(lambda: stream.stats.published == 5)
        headers = {**bearer(token), "Last-Event-ID": ids[1]}
        with http.stream("GET", STREAM, headers=headers) as response:
            reader = SseReader(response)
            connected(reader)
            resumed = reader.until(is_alert(5))
    assert [f.json()["data"]["alert_id"] for f in resumed] == [3, 4, 5]
    assert resumed[0].fields["id"] == ids[2]
    assert all(f.event != "gap" for f in resumed)


def test_an_idle_stream_sends_heartbeats(
    feed_server: FeedServer, world: FeedWorld, make_user: MakeUser
) -> None:
    _, token = make_user(Role.ANALYST)
    with (
        httpx.Client(base_url=feed_server.url, timeout=5) as http,
        http.stream("GET", STREAM, headers=bearer(token)) as response,
    ):
        reader = SseReader(response)
        connected(reader)
        beat = reader.frame()
    assert beat.comments == ["heartbeat"]
    assert beat.fields == {}


def test_a_resume_from_a_forgotten_id_is_told_of_the_gap(
    feed_server: FeedServer, world: FeedWorld, make_user: MakeUser
) -> None:
    _, token = make_user(Role.TECHNICIAN)
    headers = {**bearer(token), "Last-Event-ID": "1"}
    with (
        httpx.Client(base_url=feed_server.url, timeout=5) as http,
        http.stream("GET", STREAM, headers=headers) as response,
    ):
        reader = SseReader(response)
        connected(reader)
        gap = reader.frame()
    assert gap.event == "gap"
    assert gap.json() == {"last_event_id": 1, "oldest_id": None}


def test_unauthenticated_and_refused_connections_are_answered_and_audited(
    feed_server: FeedServer,
    world: FeedWorld,
    make_user: MakeUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, local_token = make_user(Role.TECHNICIAN, site_id=world.site_a)
    _, supplier_token = make_user(Role.SUPPLIER)
    with (
        caplog.at_level(logging.INFO, logger="maintainpro.analytics.access"),
        httpx.Client(base_url=feed_server.url, timeout=5) as http,
    ):
        anonymous = http.get(STREAM)
        unknown = http.get(STREAM, headers=bearer("mpt_not-a-real-token-at-all"))
        other_site = http.get(STREAM, params={"site_id": world.site_b}, headers=bearer(local_token))
        bad_type = http.get(STREAM, params={"type": "<script>"}, headers=bearer(local_token))
        bad_resume = http.get(STREAM, headers={**bearer(local_token), "Last-Event-ID": "x<y"})
        supplier = http.get(STREAM, headers=bearer(supplier_token))
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert unknown.status_code == 401
    assert other_site.status_code == 403
    assert other_site.json()["detail"] == "the stream may only name sites this user may see"
    assert bad_type.status_code == 400
    assert "<script>" not in bad_type.text
    assert bad_resume.status_code == 400
    assert "x<y" not in bad_resume.text
    assert supplier.status_code == 403
    audited = [
        (r.__dict__["status"], r.__dict__["username"])
        for r in caplog.records
        if r.__dict__.get("channel") == "stream.sse"
    ]
    local_name = audited[2][1]
    assert audited == [
        (401, None),
        (401, None),
        (403, local_name),
        (400, local_name),
        (400, local_name),
        (403, None),
    ]
    assert local_name is not None
    assert local_name.startswith("technician")


def test_a_browser_token_in_the_query_works_and_the_connection_is_recorded(
    feed_server: FeedServer,
    world: FeedWorld,
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
) -> None:
    user, token = make_user(Role.MAINTENANCE_MANAGER, site_id=world.site_a)
    params = {"access_token": token, "type": "alert", "site_id": str(world.site_a)}
    app = feed_server.app
    with (
        httpx.Client(base_url=feed_server.url, timeout=5) as http,
        http.stream("GET", STREAM, params=params) as response,
    ):
        reader = SseReader(response)
        connected(reader)
        emit_alerts(session_factory, *at_site_a(world, 1, 2))
        feed_server.relay_outbox()
        received = events_of(reader.until(is_alert(2)))
        (open_connection,) = feed_status(app.state).connections
    assert [e["data"]["alert_id"] for e in received] == [1, 2]
    assert open_connection.username == user.username
    assert open_connection.filters == {
        "type": "alert",
        "site_id": str(world.site_a),
        "scope": str(world.site_a),
    }
    ledger = access_ledger(app.state)
    wait_for(lambda: bool(ledger.connections("stream.sse")))
    (closed,) = ledger.connections("stream.sse")
    assert (closed.username, closed.credential_name) == (user.username, "test")
    assert (closed.rows_served, closed.requests, closed.errors) == (2, 1, 0)
    assert feed_status(app.state).connections == []
    assert [h.username for h in feed_status(app.state).history] == [user.username]
