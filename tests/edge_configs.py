"""Edge configurations for tests: a valid one, and re-signing for deliberately broken ones."""

from __future__ import annotations

import datetime as dt
from typing import Any

from maintainpro.iot.edge.config import EdgeConfig, EdgeSettings, canonical_json, config_digest
from maintainpro.iot.registry import DeviceSpec

NOW = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)
PRESS: dict[str, Any] = {
    "key": "press-1",
    "name": "Press PLC",
    "protocol": "modbus",
    "endpoint": "tcp://10.0.0.5:502",
    "settings": {"unit": 1, "poll_s": 2},
    "sensors": [
        {"key": "oil-temp", "type": "temperature", "unit": "°C", "min_value": -20.5,
         "max_value": 120, "address": {"address": 0, "data_type": "float32"}},
        {"key": "pressure", "type": "pressure", "unit": "bar", "address": {"address": 2}},
    ],
}  # fmt: skip


def make_config(version: int = 1, **fields: Any) -> EdgeConfig:
    """A valid configuration of agent edge-1."""
    values: dict[str, Any] = {
        "agent": "edge-1",
        "version": version,
        "issued_at": NOW,
        "devices": [DeviceSpec.model_validate(PRESS)],
        "settings": EdgeSettings(poll_s=5),
    }
    return EdgeConfig(**(values | fields))


def reencode(message: dict[str, Any]) -> bytes:
    """A message with a correct digest for whatever the fields say."""
    message = {k: v for k, v in message.items() if k != "sha256"}
    return canonical_json({**message, "sha256": config_digest(message)})
