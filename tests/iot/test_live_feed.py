"""Live readings: the throttled pipeline listener, stream filters and the connection log."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.api.routes.notifications import event_filter
from maintainpro.core.live import Broadcaster, LiveEvent
from maintainpro.iot.devices import Device, DeviceEvent, Protocol
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.live_feed import LiveFeed
from maintainpro.iot.timeseries import ReadingRow, to_ms

T0 = to_ms(dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC))


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _feed(active: bool = True) -> tuple[LiveFeed, list[dict[str, Any]], Clock]:
    sent: list[dict[str, Any]] = []
    clock = Clock()

    def publish(kind: str, data: dict[str, Any]) -> None:
        assert kind == "reading"
        sent.append(data)

    return LiveFeed(publish, active=lambda: active, clock=clock), sent, clock


def test_first_reading_goes_out_at_once_with_its_fields() -> None:
    feed, sent, _ = _feed()
    feed([ReadingRow(7, T0, 21.5, 1)])
    assert sent == [
        {"sensor_id": 7, "ts": "2026-11-27T10:00:00+00:00", "value": 21.5, "quality": "uncertain"}
    ]


def test_at_most_one_event_per_sensor_per_second_newest_wins() -> None:
    feed, sent, clock = _feed()
    feed([ReadingRow(1, T0, 1.0, 0), ReadingRow(2, T0, 10.0, 0)])
    # Ten readings a second for sensor 1 while the interval has not passed: held, not sent.
    for i in range(1, 10):
        clock.now += 0.1 if i < 9 else 0.0
        feed([ReadingRow(1, T0 + i * 100, 1.0 + i, 0)])
    assert [d["sensor_id"] for d in sent] == [1, 2]
    clock.now += 0.2  # now a second after the first event
    assert feed.flush() == 1
    assert sent[-1]["value"] == 10.0  # the newest of the held readings
    assert feed.flush() == 0  # nothing more held
    assert feed.published == 3


def test_older_reading_in_a_batch_does_not_replace_a_newer_one() -> None:
    feed, sent, clock = _feed()
    feed([ReadingRow(1, T0, 1.0, 0)])
    feed([ReadingRow(1, T0 + 2000, 3.0, 0), ReadingRow(1, T0 + 1000, 2.0, 0)])
    clock.now += 1.0
    feed.flush()
    assert [d["value"] for d in sent] == [1.0, 3.0]


def test_nothing_is_held_while_no_browser_listens() -> None:
    feed, sent, clock = _feed(active=False)
    feed([ReadingRow(1, T0, 1.0, 0)] * 3)
    clock.now += 5
    assert feed.flush() == 0
    assert sent == []
    # The ingest rate still counts what was stored.
    assert feed.rate_per_s() == 3 / 60


def test_rate_forgets_readings_older_than_a_minute() -> None:
    feed, _, clock = _feed(active=False)
    feed([ReadingRow(1, T0, 1.0, 0)] * 120)
    clock.now += 30
    feed([ReadingRow(1, T0, 1.0, 0)] * 60)
    assert feed.rate_per_s() == 3.0
    clock.now += 45
    assert feed.rate_per_s() == 1.0


def test_listener_is_fast_enough_for_big_batches() -> None:
    feed, sent, _ = _feed()
    rows = [ReadingRow(i % 500, T0 + i, float(i), 0) for i in range(50_000)]
    started = time.perf_counter()
    feed(rows)
    assert time.perf_counter() - started < 0.5
    assert len(sent) == 500


def test_run_sends_trailing_readings() -> None:
    feed, sent, clock = _feed()

    async def scenario() -> None:
        feed([ReadingRow(1, T0, 1.0, 0)])
        feed([ReadingRow(1, T0 + 500, 2.0, 0)])
        task = asyncio.create_task(feed.run(tick_s=0.01))
        clock.now += 1.0
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(scenario())
    assert [d["value"] for d in sent] == [1.0, 2.0]


def _event(kind: str, **data: Any) -> LiveEvent:
    return LiveEvent(1, kind, data)


def test_unfiltered_streams_get_alerts_but_not_readings() -> None:
    accept = event_filter(set(), None)
    assert accept(_event("alert.raised", sensor_id=1, asset_id=3))
    assert not accept(_event("reading", sensor_id=1))


def test_filtered_streams_get_their_sensors_and_asset_only() -> None:
    by_sensor = event_filter({1, 2}, None)
    assert by_sensor(_event("reading", sensor_id=2))
    assert not by_sensor(_event("reading", sensor_id=3))
    assert not by_sensor(_event("alert.cleared", alert_id=9))
    by_asset = event_filter({5}, 3)
    assert by_asset(_event("reading", sensor_id=5))
    assert by_asset(_event("alert.raised", sensor_id=None, asset_id=3))
    assert not by_asset(_event("alert.raised", sensor_id=8, asset_id=4))


def test_broadcaster_queues_only_accepted_events() -> None:
    async def scenario() -> list[int]:
        live = Broadcaster(queue_size=2)
        async with live.listen(lambda e: e.data["sensor_id"] == 1) as listener:
            for i in range(10):
                live.publish("reading", {"sensor_id": 2, "i": i})
            live.publish("reading", {"sensor_id": 1, "i": 99})
            first = await listener.next(0.1)
            assert await listener.next(0.01) is None
            assert listener.dropped == 0  # others' events never pushed ours out
            return [first.data["i"]] if first else []

    assert asyncio.run(scenario()) == [99]


async def test_connection_changes_are_logged_once_per_change(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        session.add(Device(key="plc-1", name="PLC", protocol=Protocol.MODBUS))
    pipeline = IngestPipeline(session_factory)

    async def one_batch(connected: bool, error: str | None) -> None:
        before = pipeline.stats.batches
        pipeline.connection_state("plc-1", connected=connected, error=error)
        pipeline.connection_state("ghost", connected=False)  # unknown devices log nothing
        task = asyncio.create_task(pipeline.run())
        for _ in range(300):
            await asyncio.sleep(0.01)
            if pipeline.stats.batches > before:
                break
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    await one_batch(True, None)
    await one_batch(False, "TimeoutError: no answer")
    await one_batch(False, "TimeoutError: no answer")  # a retry repeating the error
    await one_batch(False, None)
    with session_factory() as session:
        events = session.scalars(select(DeviceEvent).order_by(DeviceEvent.id)).all()
        assert [(e.state, e.message) for e in events] == [
            ("connected", None),
            ("error", "TimeoutError: no answer"),
            ("disconnected", None),
        ]
        assert all(e.at.tzinfo is not None for e in events)
