"""Sensor-fed meters through the real ingest pipeline, down to the preventive work order."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.maintenance import generate_due_work_orders
from maintainpro.core.schedules import MaintenanceSchedule, Meter, MeterKind, MeterReading
from maintainpro.core.work_orders import WorkOrder
from maintainpro.iot.alerts import MeterSource, MeterSourceKind
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.meter_feed import FeedSpec, FeedState, MeterFeed, advance
from maintainpro.iot.readings import SensorReading
from maintainpro.iot.timeseries import ReadingRow, readings_table, to_ms
from support import plant

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
# Not a whole number of minutes, so the crossing does not hinge on float rounding.
START_HOURS = 490.004
DUE = 500.0
LEAD = 5.0


def _motor(session_factory: sessionmaker[Session]) -> tuple[int, int]:
    with session_factory() as session, session.begin():
        ids = plant(session)
        device = Device(key="drive-1", name="Drive", protocol=Protocol.MQTT, asset_id=ids["motor"])
        sensor = Sensor(key="current", name="Motor current", type="current", unit="A")
        device.sensors.append(sensor)
        session.add(device)
        meter = Meter(
            asset_id=ids["motor"],
            name="Runtime (sensor)",
            unit="h",
            kind=MeterKind.COUNTER,
            current_value=START_HOURS,
        )
        session.add(meter)
        session.flush()
        session.add(
            MeterSource(
                meter_id=meter.id,
                sensor_id=sensor.id,
                kind=MeterSourceKind.RUNTIME,
                threshold=2.0,
                max_gap_s=300,
            )
        )
        session.add(
            MaintenanceSchedule(
                asset_id=ids["motor"],
                name="Motor 500 h service",
                meter_id=meter.id,
                meter_interval=500.0,
                meter_lead=LEAD,
                next_due_meter=DUE,
            )
        )
        return meter.id, sensor.id


def _current(minute: int) -> float:
    """Runs 2 h, stops 1 h (0.4 A standstill draw), and so on; offline 90 min after 4 h."""
    return 0.4 if minute % 180 >= 120 else 11.5 + (minute % 7) * 0.1


def _readings() -> list[SensorReading]:
    minutes = [m for m in range(12 * 60) if not 240 <= m < 330]
    return [
        SensorReading("drive-1", "current", _current(m), T0 + dt.timedelta(minutes=m))
        for m in minutes
    ]


async def _settle(pipeline: IngestPipeline, feed: MeterFeed, total: int) -> None:
    for _ in range(1000):
        if pipeline.stats.stored >= total and feed.stats.rows_seen >= total:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("readings did not reach the meter feed")


def _open_orders(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session, session.begin():
        generate_due_work_orders(session, now=T0)
        return len(session.scalars(select(WorkOrder)).all())


async def test_a_simulated_motors_current_readings_accumulate_runtime_hours_and_trigger_its_500_hour_pm_at_the_right_reading(  # noqa: E501
    session_factory: sessionmaker[Session],
) -> None:
    meter_id, _ = _motor(session_factory)
    readings = _readings()
    spec = FeedSpec(MeterSourceKind.RUNTIME, threshold=2.0, max_gap_s=300)
    # The reading at which the expected runtime first reaches 500 - lead.
    expected = START_HOURS
    state = FeedState()
    hours_after: list[float] = []
    for reading in readings:
        step = advance(spec, state, [(to_ms(reading.timestamp), reading.value)])
        state, expected = step.state, expected + step.increment
        hours_after.append(expected)
    due_at = next(i for i, h in enumerate(hours_after) if h >= DUE - LEAD)

    pipeline = IngestPipeline(session_factory, max_delay_s=0.002)
    feed = MeterFeed(session_factory)
    pipeline.listeners.append(feed)
    tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(feed.run())]
    try:
        # Far from due: big batches. Near it: one reading at a time, checking after each.
        sent = 0
        while sent < due_at - 2:
            chunk = readings[sent : min(sent + 60, due_at - 2)]
            await pipeline.submit(chunk)
            sent += len(chunk)
            await _settle(pipeline, feed, sent)
            assert _open_orders(session_factory) == 0
        for index in range(due_at - 2, due_at + 2):
            await pipeline.submit([readings[index]])
            sent += 1
            await _settle(pipeline, feed, sent)
            with session_factory() as session:
                meter = session.get(Meter, meter_id)
                assert meter is not None
                assert meter.current_value == pytest.approx(hours_after[index])
                assert meter.read_at == readings[index].timestamp
            assert _open_orders(session_factory) == (1 if index >= due_at else 0)
        await pipeline.submit(readings[sent:])
        await _settle(pipeline, feed, len(readings))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    with session_factory() as session:
        meter = session.get(Meter, meter_id)
        assert meter is not None
        assert meter.current_value == pytest.approx(hours_after[-1])
        # The 90-minute outage and the standstills are not runtime.
        assert hours_after[-1] - START_HOURS < 12 * 60 * 2 / 3 / 60
        order = session.scalars(select(WorkOrder)).one()
        assert order.title == "Motor 500 h service"
        history = session.scalars(
            select(MeterReading).where(MeterReading.meter_id == meter_id)
        ).all()
        assert {r.source for r in history} == {"sensor"}
        # At most one history row a minute of readings, and values only grow.
        stamps = sorted(r.read_at for r in history)
        assert all(b - a >= dt.timedelta(minutes=1) for a, b in itertools.pairwise(stamps))
        values = [r.value for r in sorted(history, key=lambda r: r.read_at)]
        assert values == sorted(values)


async def test_redelivered_readings_do_not_count_twice(
    session_factory: sessionmaker[Session],
) -> None:
    meter_id, _ = _motor(session_factory)
    readings = _readings()[:120]
    pipeline = IngestPipeline(session_factory, max_delay_s=0.002)
    feed = MeterFeed(session_factory)
    pipeline.listeners.append(feed)
    tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(feed.run())]
    try:
        await pipeline.submit(readings)
        await _settle(pipeline, feed, len(readings))
        # A restarted feed sees the same readings again, e.g. replayed by the broker.
        replay = await asyncio.to_thread(_stored_rows, session_factory)
        await asyncio.to_thread(MeterFeed(session_factory).apply, replay)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    with session_factory() as session:
        meter = session.get(Meter, meter_id)
        assert meter is not None
        assert meter.current_value == pytest.approx(START_HOURS + 119 / 60)


def _stored_rows(session_factory: sessionmaker[Session]) -> list[ReadingRow]:
    with session_factory() as session:
        return [
            ReadingRow(r.sensor_id, r.ts, r.value, r.quality)
            for r in session.execute(select(readings_table))
        ]


def test_the_app_runs_the_meter_feed_and_the_prediction_job(settings: Settings) -> None:
    running = settings.model_copy(update={"run_background_jobs": True})
    with TestClient(create_app(running)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        names = {s.name for s in state.supervisor.statuses}
        assert {"meter-feed", "predictions"} <= names
        assert any(isinstance(listener, MeterFeed) for listener in state.iot_hub.pipeline.listeners)


async def test_a_meter_source_added_while_running_starts_counting(
    session_factory: sessionmaker[Session],
) -> None:
    meter_id, sensor_id = _motor(session_factory)
    with session_factory() as session, session.begin():
        source = session.scalars(select(MeterSource)).one()
        session.delete(source)
    pipeline = IngestPipeline(session_factory, max_delay_s=0.002)
    feed = MeterFeed(session_factory, refresh_s=0.05)
    pipeline.listeners.append(feed)
    tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(feed.run())]
    try:
        await asyncio.sleep(0.1)  # the feed has seen that no sensor is metered
        with session_factory() as session, session.begin():
            session.add(
                MeterSource(
                    meter_id=meter_id,
                    sensor_id=sensor_id,
                    kind=MeterSourceKind.RUNTIME,
                    threshold=2,
                )
            )
        await asyncio.sleep(0.2)
        readings = _readings()[:61]
        await pipeline.submit(readings)
        for _ in range(400):
            with session_factory() as session:
                meter = session.get(Meter, meter_id)
                assert meter is not None
                if meter.current_value != START_HOURS:
                    break
            await asyncio.sleep(0.01)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert meter.current_value == pytest.approx(START_HOURS + 1.0)
