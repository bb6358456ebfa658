"""Sensor reading value object shared by every IoT ingestion path (MQTT, CoAP, Modbus)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = ["EMPTY_METADATA", "Quality", "SensorReading"]

_ZERO = timedelta(0)

EMPTY_METADATA: Mapping[str, Any] = MappingProxyType({})
"""Shared read-only empty mapping, so readings without metadata allocate nothing."""


class Quality(StrEnum):
    """Quality flag of a reading, after OPC UA's good/uncertain/bad status classes."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class SensorReading:
    """One decoded measurement of one sensor of one device at one instant (UTC)."""

    device_id: str
    sensor_id: str
    value: float
    timestamp: datetime
    quality: Quality = Quality.GOOD
    metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY_METADATA)

    def __post_init__(self) -> None:
        """Refuse naive or non-UTC timestamps: mixing zones in the store corrupts time series."""
        # Only the cheap invariant is checked here; decoders already validated everything else
        # and this constructor sits on the 100k readings/s hot path.
        if self.timestamp.utcoffset() != _ZERO:
            raise ValueError(
                f"SensorReading.timestamp must be timezone-aware UTC, got {self.timestamp!r}"
            )
