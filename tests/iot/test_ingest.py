"""The ingest pipeline on a real database: batches, duplicates, dead letters, acks."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.iot.connectors.base import Rejected
from maintainpro.iot.devices import DeadLetter, Device, Protocol, Sensor
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.readings import Quality, SensorReading
from maintainpro.iot.timeseries import readings_table

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)


def _registry(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, session.begin():
        device = Device(key="pump-1", name="Pump 1", protocol=Protocol.MQTT)
        device.sensors.append(
            Sensor(key="temp", type="temperature", unit="°C", min_value=-20, max_value=150)
        )
        device.sensors.append(Sensor(key="vib", type="vibration", unit="mm/s", enabled=False))
        session.add(device)
        session.add(Device(key="off-1", name="Off", protocol=Protocol.MQTT, enabled=False))


def _reading(sensor: str, seconds: int, value: float, device: str = "pump-1") -> SensorReading:
    return SensorReading(device, sensor, value, T0 + dt.timedelta(seconds=seconds))


async def _drain(pipeline: IngestPipeline, until_stored: int) -> None:
    task = asyncio.create_task(pipeline.run())
    for _ in range(400):
        await asyncio.sleep(0.01)
        if (
            pipeline.stats.stored + pipeline.stats.duplicates >= until_stored
            and pipeline.stats.queued == 0
        ):
            break
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_batches_are_stored_once_and_refusals_dead_lettered(
    session_factory: sessionmaker[Session],
) -> None:
    _registry(session_factory)
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    acked: list[int] = []
    good = [_reading("temp", i, 20.0 + i) for i in range(10)]
    await pipeline.submit(good, ack=lambda: acked.append(1))
    await pipeline.submit(good[:3], ack=lambda: acked.append(2))  # redelivered duplicates
    await pipeline.submit(
        [
            _reading("temp", 100, 999.0),  # outside max: stored, flagged uncertain
            _reading("vib", 1, 1.0),  # disabled sensor
            _reading("nope", 1, 1.0),  # unknown sensor
            _reading("temp", 1, 1.0, device="ghost"),  # unknown device
            _reading("temp", 1, 1.0, device="off-1"),  # disabled device
        ],
        rejected=[
            Rejected(source="mqtt", code="malformed_payload", reason="not JSON", payload=b"{")
        ],
    )
    await _drain(pipeline, 11)
    assert sorted(acked) == [1, 2]
    with session_factory() as session:
        rows = session.execute(select(readings_table).order_by(readings_table.c.ts)).all()
        assert len(rows) == 11
        assert rows[-1].value == 999.0
        assert rows[-1].quality == 1
        letters = session.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
        assert sorted(d.code for d in letters) == [
            "device_disabled",
            "malformed_payload",
            "sensor_disabled",
            "unknown_device",
            "unknown_sensor",
        ]
        device = session.scalars(select(Device).where(Device.key == "pump-1")).one()
        assert device.last_seen_at == T0 + dt.timedelta(seconds=100)
    assert pipeline.stats.stored == 11
    assert pipeline.stats.duplicates == 3
    assert pipeline.stats.dead_lettered == 5


async def test_registry_changes_apply_without_restart(
    session_factory: sessionmaker[Session],
) -> None:
    _registry(session_factory)
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01, registry_refresh_s=0.0)
    await pipeline.submit([_reading("flow", 1, 5.0)])
    await _drain(pipeline, 0)
    with session_factory() as session, session.begin():
        device = session.scalars(select(Device).where(Device.key == "pump-1")).one()
        device.sensors.append(Sensor(key="flow", type="flow", unit="m3/h"))
    await pipeline.submit([_reading("flow", 2, 6.0)])
    await _drain(pipeline, 1)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(readings_table)) == 1
        assert session.scalar(select(func.count()).select_from(DeadLetter)) == 1


async def test_connection_errors_reach_the_device_without_data(
    session_factory: sessionmaker[Session],
) -> None:
    _registry(session_factory)
    pipeline = IngestPipeline(session_factory)
    pipeline.connection_state("pump-1", connected=False, error="ConnectionRefusedError: port 502")
    task = asyncio.create_task(pipeline.run())
    for _ in range(300):
        await asyncio.sleep(0.01)
        if pipeline.stats.batches:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    with session_factory() as session:
        device = session.scalars(select(Device).where(Device.key == "pump-1")).one()
        assert device.last_error == "ConnectionRefusedError: port 502"
        assert device.last_error_at is not None
        assert not device.connected
        assert device.status_at(T0).value == "error"


async def test_shutdown_stores_everything_already_handed_over(
    session_factory: sessionmaker[Session],
) -> None:
    # Polled readings live only in the queue: a stop must store them, not drop them.
    _registry(session_factory)
    pipeline = IngestPipeline(session_factory, batch_size=4, max_delay_s=5.0)
    acked: list[int] = []
    for n in range(5):
        await pipeline.submit(
            [_reading("temp", n * 10 + i, float(i)) for i in range(3)],
            ack=lambda n=n: acked.append(n),  # type: ignore[misc]
        )
    pipeline.connection_state("pump-1", connected=True)
    task = asyncio.create_task(pipeline.run())
    await asyncio.sleep(0.05)  # the first batch is being collected (max_delay 5 s) when stopped
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(readings_table)) == 15
        assert session.scalars(select(Device).where(Device.key == "pump-1")).one().connected
    assert sorted(acked) == [0, 1, 2, 3, 4]
    assert pipeline.stats.queued == 0


async def test_shutdown_gives_up_at_the_deadline_when_storage_is_down(
    tmp_path,
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    from sqlalchemy import create_engine

    broken = sessionmaker(bind=create_engine(f"sqlite:///{tmp_path}/missing/dir/x.db"))
    pipeline = IngestPipeline(broken, max_delay_s=0.01, shutdown_timeout_s=0.5)
    acked: list[int] = []
    await pipeline.submit([_reading("temp", 1, 1.0)], ack=lambda: acked.append(1))
    task = asyncio.create_task(pipeline.run())
    await asyncio.sleep(0.1)
    started = asyncio.get_running_loop().time()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert asyncio.get_running_loop().time() - started < 3.0
    assert acked == []  # not stored, so not acknowledged: a broker redelivers it
    assert pipeline.stats.write_errors >= 1
    assert "ingest stopped before everything handed to it was stored" in caplog.text


def test_quality_is_kept() -> None:
    assert Quality.BAD.value == "bad"
