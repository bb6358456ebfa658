"""Scale-out as docs/architecture.md plans it: two ingest workers share the device topics
through an MQTT shared subscription on one database; nothing is lost or stored twice."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.iot.connectors.mqtt import MqttConnector, MqttOptions
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.timeseries import readings_table
from mosquitto import LOCAL_BROKER, connect_publisher, forget_session, reading_payload, unique

pytestmark = pytest.mark.integration
MESSAGES = 3000


async def test_two_workers_share_the_load_and_store_everything_once(
    session_factory: sessionmaker[Session],
) -> None:
    root = unique("scale")
    group = unique("grp")
    with session_factory() as session, session.begin():
        device = Device(key="line-1", name="Line 1", protocol=Protocol.MQTT)
        device.sensors.append(Sensor(key="flow", type="flow", unit="m3/h"))
        session.add(device)
    workers = []
    tasks = []
    client_ids = [unique("worker-a"), unique("worker-b")]
    for client_id in client_ids:
        options = MqttOptions(
            host=LOCAL_BROKER[0],
            port=LOCAL_BROKER[1],
            client_id=client_id,
            topic_prefix=root,
            shared_group=group,
            session_expiry_s=60,
        )
        pipeline = IngestPipeline(session_factory, max_delay_s=0.02)
        connector = MqttConnector(options)
        workers.append((connector, pipeline))
        tasks += [
            asyncio.create_task(connector.run(pipeline)),
            asyncio.create_task(pipeline.run()),
        ]
    try:
        for connector, _ in workers:
            async with asyncio.timeout(10):
                await connector.wait_ready()
        publisher = connect_publisher(LOCAL_BROKER[1])
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
        infos = [
            publisher.publish(
                f"{root}/line-1/sensors/flow/data",
                reading_payload(float(i), start + dt.timedelta(seconds=i)),
                qos=1,
            )
            for i in range(MESSAGES)
        ]
        await asyncio.to_thread(lambda: [info.wait_for_publish(20) for info in infos])
        publisher.disconnect()
        publisher.loop_stop()
        for _ in range(600):  # 30 s at most
            if sum(p.stats.stored for _, p in workers) >= MESSAGES:
                break
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client_id in client_ids:
            forget_session(client_id)
    shares = [p.stats.stored for _, p in workers]
    with session_factory() as session:
        rows = session.scalar(select(func.count()).select_from(readings_table))
        distinct = session.scalar(select(func.count(func.distinct(readings_table.c.ts))))
    assert rows == MESSAGES
    assert distinct == MESSAGES
    assert sum(shares) == MESSAGES, "no reading stored twice across the workers"
    assert all(share > 0 for share in shares), f"both workers took part: {shares}"
