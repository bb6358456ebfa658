"""Benchmark: the edge agent's durable queue and its drain to a broker.

Run from the repository root::

    .venv/bin/python bench/edge.py

1. Enqueue: ``DurableQueue.put`` (WAL, synchronous=FULL: one fsync per call) with batches of
   1, 10 and 100 readings; readings/s and commits/s.
2. Drain: a queue pre-filled with a backlog (10 devices x 5 sensors) is forwarded by a real
   ``EdgeAgent`` to a Mosquitto of its own (free port, persistence off), once unpaced and once
   at the default pacing (50 messages/s of up to 200 readings); a subscriber counts what
   arrives. The clock runs from the agent's start until the queue is empty (every PUBACK in).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from maintainpro.iot.edge.agent import EdgeAgent
from maintainpro.iot.edge.queue import DurableQueue
from maintainpro.iot.edge.settings import AgentSettings
from maintainpro.iot.readings import SensorReading
from mosquitto import Mosquitto, broker_config, free_port


def readings(count: int, start: dt.datetime) -> list[SensorReading]:
    """Readings of 10 devices x 5 sensors, a millisecond apart."""
    return [
        SensorReading(
            f"dev-{i % 10}", f"s{(i // 10) % 5}", float(i), start + dt.timedelta(milliseconds=i)
        )
        for i in range(count)
    ]


def bench_enqueue(directory: Path) -> None:
    """Readings/s and commits/s of put() per batch size."""
    start = dt.datetime.now(dt.UTC)
    for batch in (1, 10, 100):
        queue = DurableQueue(directory / f"enqueue-{batch}.db")
        data = readings(2000 if batch == 1 else 20_000, start)
        began = time.perf_counter()
        for index in range(0, len(data), batch):
            queue.put(data[index : index + batch])
        elapsed = time.perf_counter() - began
        commits = len(data) / batch
        print(
            f"enqueue batch {batch:>3}: {len(data) / elapsed:>9,.0f} readings/s, "
            f"{commits / elapsed:>6,.0f} commits/s"
        )
        queue.close()


class Counter:
    """A subscriber counting readings."""

    def __init__(self, port: int) -> None:
        self.readings = 0
        self.messages = 0
        self._lock = threading.Lock()
        self.client = Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("devices/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Client, userdata: object, message: MQTTMessage) -> None:
        with self._lock:
            self.messages += 1
            self.readings += message.payload.count(b'"sensor_id"')

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


async def bench_drain(directory: Path, port: int, backlog: int, rate: float) -> None:
    """Time an agent draining a pre-filled queue at a given pacing."""
    path = directory / f"drain-{rate}.db"
    queue = DurableQueue(path)
    data = readings(backlog, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    for index in range(0, len(data), 5000):
        queue.put(data[index : index + 5000])
    queue.close()
    counter = Counter(port)
    settings = AgentSettings.model_validate(
        {
            "agent": "bench",
            "uplink": {"url": f"mqtt://127.0.0.1:{port}"},
            "queue": {"path": str(path), "max_messages_per_s": rate, "batch_size": 200},
            "status_interval_s": 60,
        }
    )
    agent = EdgeAgent(settings)
    began = time.perf_counter()
    task = asyncio.create_task(agent.run())
    while agent.queue.depth:  # noqa: ASYNC110 - polling a counter, no event to wait on
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - began
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.5)
    counter.close()
    label = "unpaced" if rate >= 1e6 else f"{rate:g} msg/s"
    print(
        f"drain {backlog:,} readings, {label:>10}: {elapsed:6.1f} s, "
        f"{backlog / elapsed:>8,.0f} readings/s, {counter.messages / elapsed:>6,.0f} msg/s; "
        f"received {counter.readings:,}"
    )


def main() -> None:
    """Run both parts."""
    version = subprocess.run(
        ["/usr/sbin/mosquitto", "-h"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    print(f"python {sys.version.split()[0]}, {version}")
    directory = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    try:
        bench_enqueue(directory)
        port = free_port()
        broker = Mosquitto(
            directory, broker_config(f"listener {port} 127.0.0.1\nallow_anonymous true\n"), [port]
        )
        broker.start()
        try:
            asyncio.run(bench_drain(directory, port, 200_000, 1e6))
            asyncio.run(bench_drain(directory, port, 20_000, 50))
        finally:
            broker.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
