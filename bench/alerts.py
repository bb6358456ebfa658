"""Benchmark: alert response time, from a reading's timestamp to the alert and its notification
event committed.

Run from the repository root::

    .venv/bin/python bench/alerts.py --backend sqlite
    .venv/bin/python bench/alerts.py --backend postgresql

Readings go through the real IngestPipeline at a steady rate (alarm sensors plus background
traffic from sensors without rules); the real AlertEngine listens on the pipeline, as in the app.
Each alarm sensor alternates a normal and a critical value, so every other reading raises an
alert (the normal one clears it). The clock stops when the transaction holding the new alert and
its `alert.raised` outbox row commits: from then on the notification is handed off (the outbox
delivery job picks it up). The reading's timestamp is taken when it is submitted, so connector
and network time before the pipeline are not included.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from storage import database, print_header

from maintainpro.core.audit import install_audit
from maintainpro.core.db import build_session_factory
from maintainpro.core.events import OutboxEvent
from maintainpro.iot.alert_engine import AlertEngine
from maintainpro.iot.alerts import Alert, AlertRule
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.readings import SensorReading

CONDITION = {
    "kind": "threshold",
    "direction": "above",
    "levels": [
        {"severity": "warning", "threshold": 7.1},
        {"severity": "critical", "threshold": 11.0},
    ],
    "clear_at": 5.0,
}


class Clock:
    """Response times of alerts whose `alert.raised` event committed in the same transaction."""

    def __init__(self) -> None:
        self.latencies: list[float] = []

    def install(self, factory: Any) -> None:
        """Listen on the session factory the engine uses."""
        event.listen(factory, "after_flush", self._flushed)
        event.listen(factory, "after_commit", self._committed)

    @staticmethod
    def _flushed(session: Session, _context: Any) -> None:
        for obj in session.new:
            if isinstance(obj, Alert) and obj.reading_at is not None:
                session.info.setdefault("bench_alerts", []).append(obj.reading_at)
            elif isinstance(obj, OutboxEvent) and obj.topic == "alert.raised":
                session.info["bench_events"] = session.info.get("bench_events", 0) + 1

    def _committed(self, session: Session) -> None:
        now = dt.datetime.now(dt.UTC)
        alerts = session.info.pop("bench_alerts", [])
        events = session.info.pop("bench_events", 0)
        if alerts and events >= len(alerts):
            self.latencies.extend((now - at).total_seconds() for at in alerts)


def registry(factory: Any, alarm_sensors: int, quiet_sensors: int) -> None:
    """One device with alarm sensors (a rule each) and quiet ones (no rule)."""
    with factory() as session, session.begin():
        device = Device(key="bench", name="Bench", protocol=Protocol.MQTT)
        for i in range(alarm_sensors):
            device.sensors.append(Sensor(key=f"a{i}", type="vibration", unit="mm/s"))
        for i in range(quiet_sensors):
            device.sensors.append(Sensor(key=f"q{i}", type="temperature", unit="°C"))
        session.add(device)
        session.flush()
        for sensor in device.sensors[:alarm_sensors]:
            session.add(AlertRule(name="Vibration", sensor_id=sensor.id, condition=CONDITION))


async def run(factory: Any, args: argparse.Namespace) -> Clock:
    """Feed readings at a steady rate until enough alerts are measured."""
    clock = Clock()
    clock.install(factory)
    pipeline = IngestPipeline(factory)
    engine = AlertEngine(factory)
    pipeline.listeners.append(engine.on_stored)
    tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(engine.run())]
    wanted = args.warmup + args.alerts
    tick = 1.0 / args.ticks_per_s
    step = 0
    started = time.perf_counter()
    try:
        while len(clock.latencies) < wanted:
            now = dt.datetime.now(dt.UTC)
            batch = [
                SensorReading("bench", f"q{i}", 20.0 + (step % 10) * 0.1, now)
                for i in range(args.quiet_sensors)
            ]
            # One alarm sensor per tick, in turn: high readings raise, low ones clear.
            sensor = step % args.alarm_sensors
            high = (step // args.alarm_sensors) % 2 == 0
            batch.append(SensorReading("bench", f"a{sensor}", 14.0 if high else 2.0, now))
            await pipeline.submit(batch)
            step += 1
            await asyncio.sleep(max(0.0, started + step * tick - time.perf_counter()))
            if step > wanted * 4 * args.alarm_sensors:
                raise RuntimeError("alerts are not being raised; is the engine wired?")
        await asyncio.sleep(0.5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - started
    readings = step * (args.quiet_sensors + 1)
    print(f"{readings:,} readings in {elapsed:.1f} s ({readings / elapsed:,.0f}/s), {step} submits")
    return clock


def main() -> None:
    """Measure and print p50/p99."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--alarm-sensors", type=int, default=10)
    parser.add_argument("--quiet-sensors", type=int, default=49, help="background readings/tick")
    parser.add_argument("--ticks-per-s", type=float, default=20.0)
    args = parser.parse_args()
    print_header("Alert response time (reading timestamp -> alert + outbox row committed)")
    print(
        f"backend {args.backend}; {args.ticks_per_s:g} submits/s of {args.quiet_sensors + 1} "
        f"readings = {(args.quiet_sensors + 1) * args.ticks_per_s:,.0f} readings/s; "
        f"an alert every {2 / args.ticks_per_s:.2f} s"
    )
    install_audit()
    with tempfile.TemporaryDirectory() as workdir, database(args.backend, Path(workdir)) as engine:
        factory = build_session_factory(engine)
        registry(factory, args.alarm_sensors, args.quiet_sensors)
        clock = asyncio.run(run(factory, args))
    measured = sorted(clock.latencies[args.warmup : args.warmup + args.alerts])
    ms = [x * 1000 for x in measured]
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    print(
        f"{len(ms)} alerts after {args.warmup} warm-up: p50 {statistics.median(ms):.1f} ms, "
        f"p99 {cuts[98]:.1f} ms, max {ms[-1]:.1f} ms, min {ms[0]:.1f} ms"
    )
    print("goal p99 < 1 s:", "met" if cuts[98] < 1000 else "NOT met")


if __name__ == "__main__":
    main()
