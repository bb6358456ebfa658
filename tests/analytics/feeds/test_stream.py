"""The feed stream on a real database: readings from the ingest pipeline and outbox events,
placed at their site, filtered by row-level security, sampled, replayed and bounded."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from analytics.feeds.feed_world import T0, alert_payload, seed
from maintainpro.analytics.feeds.events import EVENT_TYPES, FeedEvent, Unplaced
from maintainpro.analytics.feeds.filters import FeedFilter
from maintainpro.analytics.feeds.sites import NOWHERE, SitePlaces
from maintainpro.analytics.feeds.stream import FeedStream, Subscription
from maintainpro.core.assets import Asset
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.core.events import deliver_pending, emit
from maintainpro.core.maintenance import open_work_order, transition_work_order
from maintainpro.core.work_orders import WorkOrderStatus, WorkOrderType
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.readings import SensorReading
from maintainpro.iot.timeseries import ReadingRow, to_ms

EVERYTHING = FeedFilter(types=frozenset(EVENT_TYPES), sites=None, scope=None)


def site_bound(site_id: int) -> FeedFilter:
    """What a user tied to one site gets when asking for everything."""
    return FeedFilter(types=frozenset(EVENT_TYPES), sites=None, scope=frozenset({site_id}))


async def take(subscription: Subscription, count: int) -> list[FeedEvent]:
    """The next ``count`` events of a subscription (each awaited, 5 s at most)."""
    taken = []
    for _ in range(count):
        event = await subscription.next(5.0)
        assert event is not None, f"only {len(taken)} of {count} events arrived"
        taken.append(event)
    return taken


def unbound_places() -> SitePlaces:
    """Places that never reach a database (for events whose site is already known)."""
    return SitePlaces(sessionmaker())


def alert_item(number: int, site_id: int | None) -> Unplaced:
    """An alert event whose site is known, so publishing it needs no lookup."""
    return Unplaced("alert", T0, {"event": "raised", "alert_id": number}, site_id=site_id)


async def test_stored_readings_are_placed_at_their_site(
    session_factory: sessionmaker[Session],
) -> None:
    world = seed(session_factory)
    stream = FeedStream(SitePlaces(session_factory), reading_interval_s=0)
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    pipeline.listeners.append(stream.on_stored)
    tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(stream.run())]
    try:
        with (
            stream.subscribe(EVERYTHING, channel="test") as admin,
            stream.subscribe(site_bound(world.site_a), channel="test") as local,
        ):
            await pipeline.submit(
                [
                    SensorReading("dev-b", "temp", 30.0, T0),
                    SensorReading("dev-loose", "temp", 1.0, T0),
                    SensorReading("dev-a", "temp", 20.5, T0),
                ]
            )
            seen = await take(admin, 3)
            # Fan-out is synchronous: once the admin has all three, the local queue is complete.
            mine = await take(local, 1)
            assert local.queued == 0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    by_sensor = {e.data["sensor_id"]: e for e in seen}
    assert {s: e.site_id for s, e in by_sensor.items()} == {
        world.sensor_a: world.site_a,
        world.sensor_b: world.site_b,
        world.sensor_loose: None,
    }
    reading = by_sensor[world.sensor_a]
    assert reading.type == "reading"
    assert reading.ts == T0
    assert reading.data == {
        "sensor_id": world.sensor_a,
        "value": 20.5,
        "quality": "good",
        "device_id": world.device_a,
        "asset_id": world.asset_a,
        "sensor_key": "temp",
        "unit": "°C",
    }
    assert [e.data["sensor_id"] for e in mine] == [world.sensor_a]


async def test_alert_and_work_order_events_come_from_the_outbox(
    session_factory: sessionmaker[Session],
) -> None:
    world = seed(session_factory)
    with session_factory() as session, session.begin():
        order, _ = open_work_order(
            session, asset_id=world.asset_b, title="Reseal", type=WorkOrderType.CORRECTIVE
        )
        transition_work_order(session, order, WorkOrderStatus.ON_HOLD, reason="no crane")
        emit(session, "alert.raised", alert_payload(1, world.asset_a, world.site_a))
        # An alert payload without a site: the feed looks the asset's site up.
        emit(session, "alert.escalated", alert_payload(2, world.asset_b, None))
        emit(session, "purchase_order.sent", {"order_id": 9})
    stream = FeedStream(SitePlaces(session_factory))
    assert await asyncio.to_thread(deliver_pending, session_factory, stream.outbox_handlers()) == 5
    with stream.subscribe(EVERYTHING, channel="test") as admin:
        assert await stream.process() == 4
        seen = await take(admin, 4)
    opened, held, raised, escalated = seen
    assert (opened.type, opened.site_id) == ("work_order", world.site_b)
    assert opened.data == {
        "event": "opened",
        "work_order_id": order.id,
        "asset_id": world.asset_b,
        "origin": "manual",
    }
    assert held.data["event"] == "status_changed"
    assert (held.data["from"], held.data["to"], held.site_id) == ("open", "on_hold", world.site_b)
    assert (raised.type, raised.site_id, raised.data["event"]) == ("alert", world.site_a, "raised")
    assert raised.data["title"] == "alert 1"
    assert "site_id" not in raised.data
    assert (escalated.site_id, escalated.data["event"]) == (world.site_b, "escalated")
    assert [e.id for e in seen] == sorted(e.id for e in seen)


async def test_readings_are_sampled_per_sensor_and_the_newest_wins(
    session_factory: sessionmaker[Session],
) -> None:
    world = seed(session_factory)
    now = [100.0]
    stream = FeedStream(SitePlaces(session_factory), reading_interval_s=1.0, clock=lambda: now[0])

    def row(seconds: int, value: float) -> ReadingRow:
        return ReadingRow(world.sensor_a, to_ms(T0 + dt.timedelta(seconds=seconds)), value, 0)

    with stream.subscribe(EVERYTHING, channel="test") as admin:
        stream.on_stored([row(0, 1.0), row(2, 3.0), row(1, 2.0)])
        stream.on_stored([ReadingRow(world.sensor_b, to_ms(T0), 9.0, 0)])
        await stream.process()
        first = await take(admin, 2)
        assert stream.flush_held() == 0  # the interval has not passed
        now[0] += 1.0
        assert stream.flush_held() == 1
        await stream.process()
        trailing = await take(admin, 1)
    assert [(e.data["sensor_id"], e.data["value"]) for e in first] == [
        (world.sensor_a, 1.0),
        (world.sensor_b, 9.0),
    ]
    assert trailing[0].data["value"] == 3.0  # the newest held reading, not the last to arrive
    assert stream.stats.sampled_out == 1


async def test_a_moved_asset_changes_site_once_the_cached_answer_expires(
    session_factory: sessionmaker[Session],
) -> None:
    world = seed(session_factory)
    now = [0.0]
    places = SitePlaces(session_factory, ttl_s=60.0, clock=lambda: now[0])
    stream = FeedStream(places, reading_interval_s=0)
    sites = []
    with stream.subscribe(EVERYTHING, channel="test") as admin:
        for step in (0.0, 10.0, 51.0):
            now[0] += step
            stream.on_stored([ReadingRow(world.sensor_a, to_ms(T0), 1.0, 0)])
            await stream.process()
            sites.extend(e.site_id for e in await take(admin, 1))
            if step == 0.0:
                with session_factory() as session, session.begin():
                    session.execute(
                        update(Asset).where(Asset.id == world.asset_a).values(site_id=world.site_b)
                    )
    assert sites == [world.site_a, world.site_a, world.site_b]
    assert places.lookups == 2


async def test_a_failed_lookup_keeps_the_events_in_order(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    world = seed(session_factory)
    # A database without the tables: every lookup fails.
    broken = build_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    stream = FeedStream(SitePlaces(build_session_factory(broken)), reading_interval_s=0)
    stream.submit(alert_item(1, world.site_a))
    stream.on_stored([ReadingRow(world.sensor_b, to_ms(T0), 1.0, 0)])
    with pytest.raises(OperationalError, match="no such table"):
        await stream.process()
    broken.dispose()
    stream.places = SitePlaces(session_factory)
    with stream.subscribe(EVERYTHING, channel="test") as admin:
        assert await stream.process() == 2
        seen = await take(admin, 2)
    assert [(e.type, e.site_id) for e in seen] == [
        ("alert", world.site_a),
        ("reading", world.site_b),
    ]


def test_resume_replays_what_followed_and_reports_a_gap() -> None:
    stream = FeedStream(unbound_places(), replay=3)
    published = [stream.publish(alert_item(n, 1), NOWHERE) for n in range(5)]
    ids = [e.id for e in published]
    assert ids == list(range(ids[0], ids[0] + 5))
    with stream.subscribe(EVERYTHING, channel="test", last_event_id=ids[2]) as caught_up:
        assert not caught_up.gap
        assert caught_up.queued == 2
    with stream.subscribe(EVERYTHING, channel="test", last_event_id=ids[0]) as behind:
        # ids[1] was pushed out of the three kept: the client missed it.
        assert behind.gap
        assert behind.queued == 3
    with stream.subscribe(EVERYTHING, channel="test", last_event_id=ids[-1] + 100) as stranger:
        assert stranger.gap
        assert stranger.queued == 0
    assert stream.replay_window == (ids[2], ids[4])


def test_ids_of_a_restarted_stream_are_newer_than_the_old_ones() -> None:
    first = FeedStream(unbound_places(), now=lambda: T0)
    old = first.publish(alert_item(1, 1), NOWHERE).id
    later = FeedStream(unbound_places(), now=lambda: T0 + dt.timedelta(seconds=1))
    new = later.publish(alert_item(1, 1), NOWHERE).id
    assert new > old
    with later.subscribe(EVERYTHING, channel="test", last_event_id=old) as resumed:
        assert resumed.gap  # what the old process sent after `old` is gone


async def test_a_slow_connection_loses_its_oldest_events_and_is_told() -> None:
    stream = FeedStream(unbound_places(), replay=0)
    with stream.subscribe(EVERYTHING, channel="test") as slow:
        for n in range(stream.queue_size + 5):
            stream.publish(alert_item(n, 1), NOWHERE)
        assert slow.dropped == 5
        first = await slow.next(0.1)
    assert first is not None
    assert first.data["alert_id"] == 5


async def test_the_intake_is_bounded_and_counts_what_it_drops() -> None:
    stream = FeedStream(unbound_places(), intake_limit=2)
    for n in range(3):
        stream.submit(alert_item(n, 1))
    with stream.subscribe(EVERYTHING, channel="test") as admin:
        assert await stream.process() == 2
        kept = await take(admin, 2)
    assert [e.data["alert_id"] for e in kept] == [1, 2]
    assert stream.stats.dropped == {"intake_full": 1}
    assert stream.stats.received == 3


def test_row_level_security_and_filters_decide_together() -> None:
    stream = FeedStream(unbound_places())
    at_a = stream.publish(alert_item(1, 1), NOWHERE)
    at_b = stream.publish(alert_item(2, 2), NOWHERE)
    nowhere = stream.publish(alert_item(3, None), NOWHERE)
    local = site_bound(1)
    assert [local.accepts(e) for e in (at_a, at_b, nowhere)] == [True, False, False]
    assert [EVERYTHING.accepts(e) for e in (at_a, at_b, nowhere)] == [True, True, True]
    only_b = FeedFilter(types=frozenset(EVENT_TYPES), sites=frozenset({2}), scope=None)
    assert [only_b.accepts(e) for e in (at_a, at_b, nowhere)] == [False, True, False]
    readings_only = FeedFilter(types=frozenset({"reading"}), sites=None, scope=None)
    assert not readings_only.accepts(at_a)
