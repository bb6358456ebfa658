"""The hub keeps one connector per enabled device in step with the registry."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.iot.connectors.base import ConnectorStats, DeviceConfig, ReadingSink
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.hub import IotHub
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.readings import SensorReading
from maintainpro.iot.timeseries import readings_table


class CountingConnector:
    """A stand-in protocol connector that emits one reading per start and can crash once."""

    instances: list[CountingConnector] = []
    crash_first = False

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self.name = f"fake:{config.key}"
        self.stats = ConnectorStats(self.name, "modbus")
        self.starts = 0
        CountingConnector.instances.append(self)

    async def run(self, sink: ReadingSink) -> None:
        self.starts += 1
        if CountingConnector.crash_first and self.starts == 1:
            raise RuntimeError("driver bug")
        now = dt.datetime.now(dt.UTC)
        await sink.submit(
            [SensorReading(self.config.key, s.key, 1.0, now) for s in self.config.sensors]
        )
        await asyncio.sleep(3600)


async def _until(predicate, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_connectors_follow_the_registry(session_factory: sessionmaker[Session]) -> None:
    CountingConnector.instances = []
    CountingConnector.crash_first = False
    with session_factory() as session, session.begin():
        device = Device(key="plc-1", name="PLC", protocol=Protocol.MODBUS, endpoint="tcp://x:502")
        device.sensors.append(Sensor(key="t", type="temperature"))
        session.add(device)
        session.add(Device(key="node-1", name="MQTT node", protocol=Protocol.MQTT))
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01, registry_refresh_s=0)
    hub = IotHub(
        session_factory,
        pipeline,
        None,
        device_factories={"modbus": CountingConnector},
        refresh_s=60,
    )
    task = asyncio.create_task(hub.run())
    await _until(lambda: pipeline.stats.stored == 1)
    assert [c.config.key for c in CountingConnector.instances] == ["plc-1"]

    with session_factory() as session, session.begin():
        plc = session.scalars(select(Device).where(Device.key == "plc-1")).one()
        plc.sensors.append(Sensor(key="p", type="pressure"))
    hub.registry_changed()
    await _until(lambda: len(CountingConnector.instances) == 2)
    assert [s.key for s in CountingConnector.instances[1].config.sensors] == ["t", "p"]
    # Stored before the device is disabled: readings of a disabled device are dead-lettered.
    await _until(lambda: pipeline.stats.stored == 3)

    with session_factory() as session, session.begin():
        session.scalars(select(Device).where(Device.key == "plc-1")).one().enabled = False
    hub.registry_changed()
    await _until(lambda: not hub.connector_stats)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    with session_factory() as session:
        assert len(session.execute(select(readings_table)).all()) == 3
    assert pipeline.stats.dead_lettered == 0


async def test_a_crashing_connector_is_restarted(session_factory: sessionmaker[Session]) -> None:
    CountingConnector.instances = []
    CountingConnector.crash_first = True
    with session_factory() as session, session.begin():
        device = Device(key="plc-2", name="PLC", protocol=Protocol.MODBUS, endpoint="tcp://x:502")
        device.sensors.append(Sensor(key="t", type="temperature"))
        session.add(device)
    pipeline = IngestPipeline(session_factory, max_delay_s=0.01)
    hub = IotHub(session_factory, pipeline, None, device_factories={"modbus": CountingConnector})
    task = asyncio.create_task(hub.run())
    await _until(
        lambda: bool(CountingConnector.instances) and CountingConnector.instances[0].starts == 2, 8
    )
    stats = CountingConnector.instances[0].stats
    assert stats.errors == 1
    assert stats.last_error == "RuntimeError: driver bug"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
