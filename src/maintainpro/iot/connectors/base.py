"""The connector interface, the sink connectors feed, statistics and reconnect back-off."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from maintainpro.core.db import utcnow
from maintainpro.iot.readings import SensorReading

MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class Rejected:
    """Input a connector could not turn into readings, for the dead-letter table."""

    source: str
    code: str
    reason: str
    payload: bytes | None = None
    device_key: str | None = None
    sensor_key: str | None = None
    channel: str | None = None


class Ack(Protocol):
    """Called once the readings a message carried are durably stored (or dead-lettered)."""

    def __call__(self) -> None:
        """Acknowledge upstream (MQTT PUBACK, CoAP 2.04, ...)."""


class ReadingSink(Protocol):
    """Where connectors put what they receive: the ingest pipeline."""

    async def submit(
        self,
        readings: Sequence[SensorReading],
        rejected: Sequence[Rejected] = (),
        ack: Ack | None = None,
        source: str = "connector",
    ) -> None:
        """Queue readings (and refusals); ack runs after they are stored."""

    def connection_state(
        self, device_key: str, *, connected: bool, error: str | None = None
    ) -> None:
        """Report a device's connection going up or down, with the error if any."""


class Connector(Protocol):
    """A protocol adapter: runs until cancelled, reconnecting by itself."""

    name: str

    @property
    def stats(self) -> ConnectorStats:
        """Counters for the API and /metrics (read-only here so subclasses may refine them)."""

    async def run(self, sink: ReadingSink) -> None:
        """Connect, receive or poll, feed the sink; reconnect with back-off forever."""


@dataclass
class ConnectorStats:
    """Counters a connector keeps for the API and /metrics."""

    name: str
    protocol: str
    messages: int = 0
    readings: int = 0
    errors: int = 0
    reconnects: int = 0
    connected: bool = False
    last_error: str | None = None
    last_error_at: dt.datetime | None = None
    last_success_at: dt.datetime | None = None

    def success(self, messages: int = 1, readings: int = 0) -> None:
        """Count received messages and readings."""
        self.messages += messages
        self.readings += readings
        self.last_success_at = utcnow()

    def error(self, text: str) -> None:
        """Count an error and remember it."""
        self.errors += 1
        self.last_error = text
        self.last_error_at = utcnow()


class Backoff:
    """Reconnect delays: doubling from `first` up to `cap`, with jitter so devices spread out."""

    def __init__(self, first: float = 0.5, cap: float = MAX_BACKOFF_S) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next_delay(self) -> float:
        """The delay to wait now; the following one doubles."""
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay * (0.8 + 0.4 * random.random())  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        """Back to the first delay after a successful connection."""
        self._next = self.first


@dataclass(frozen=True)
class SensorConfig:
    """A sensor as a connector needs it: its key and where its value comes from."""

    key: str
    address: Mapping[str, Any]
    type: str = ""
    unit: str = ""


@dataclass(frozen=True)
class DeviceConfig:
    """A snapshot of a device's configuration handed to its connector (no ORM objects)."""

    key: str
    name: str
    protocol: str
    endpoint: str
    settings: Mapping[str, Any]
    sensors: tuple[SensorConfig, ...]
    credentials: Mapping[str, str]

    def sensor(self, key: str) -> SensorConfig | None:
        """The sensor with this key, if configured."""
        return next((s for s in self.sensors if s.key == key), None)
