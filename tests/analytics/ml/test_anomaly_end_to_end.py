"""An anomaly model trained on a normal simulated signal, then live readings through the real
ingest pipeline: an injected anomaly becomes an alert of kind "anomaly", a normal stretch none."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.ml.anomaly import train
from maintainpro.analytics.ml.registry import ModelRegistry
from maintainpro.analytics.ml.scoring import AnomalyScorer, sensor_target
from maintainpro.demo.signals import PUMP_VIBRATION
from maintainpro.iot.alerts import Alert, AlertKind, AlertStatus
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.readings import SensorReading

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
START = T0.timestamp()


def _values(first_s: int, count: int, spike_at: set[int] | None = None) -> list[float]:
    spike_at = spike_at or set()
    return [
        PUMP_VIBRATION.value(START + s, START, seed=7) + (3.0 if s in spike_at else 0.0)
        for s in range(first_s, first_s + count)
    ]


async def _push(
    pipeline: IngestPipeline, scorer: AnomalyScorer, first_s: int, values: list[float]
) -> None:
    stored = asyncio.Event()
    seen: list[int] = []

    def count(rows: object) -> None:
        seen.append(len(rows))  # type: ignore[arg-type]
        if sum(seen) >= len(values):
            stored.set()

    pipeline.listeners.append(count)
    task = asyncio.create_task(pipeline.run())
    readings = [
        SensorReading("pump-9", "vib", v, T0 + dt.timedelta(seconds=first_s + i))
        for i, v in enumerate(values)
    ]
    await pipeline.submit(readings)
    async with asyncio.timeout(60):
        await stored.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await scorer.wait_idle()


async def test_injected_anomaly_becomes_one_alert_and_normal_data_none(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_factory() as session, session.begin():
        device = Device(key="pump-9", name="Pump 9", protocol=Protocol.MQTT)
        device.sensors.append(Sensor(key="vib", type="vibration", unit="mm/s"))
        session.add(device)
        session.flush()
        sensor_id = device.sensors[0].id
    registry = ModelRegistry(tmp_path / "models")
    model = train(np.array(_values(0, 3000)))
    registry.register(
        sensor_target(sensor_id),
        model.kind,
        model,
        window=(T0, T0 + dt.timedelta(seconds=3000)),
        features=list(model.feature_names),
        metrics={},
    )
    scorer = AnomalyScorer(session_factory, registry)
    task = asyncio.create_task(scorer.run())

    def anomaly_alerts() -> list[Alert]:
        with session_factory() as session:
            return list(session.scalars(select(Alert).where(Alert.kind == AlertKind.ANOMALY)))

    try:
        # A normal stretch after training: no alert.
        pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
        pipeline.listeners.append(scorer.on_stored)
        await _push(pipeline, scorer, 3000, _values(3000, 400))
        assert anomaly_alerts() == []

        # An injected anomaly: +3 mm/s (about 35 noise sigmas) for eight seconds.
        pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
        pipeline.listeners.append(scorer.on_stored)
        await _push(pipeline, scorer, 3400, _values(3400, 200, spike_at=set(range(3500, 3508))))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    found = anomaly_alerts()
    assert len(found) == 1, [a.title for a in found]
    alert = found[0]
    assert alert.sensor_id == sensor_id
    assert alert.rule_id is None
    assert alert.reading_at is not None
    assert T0 + dt.timedelta(seconds=3500) <= alert.reading_at <= T0 + dt.timedelta(seconds=3508)
    # Back to normal for long enough: the alert clears itself.
    assert alert.status == AlertStatus.CLEARED
