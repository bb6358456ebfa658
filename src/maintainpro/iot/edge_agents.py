"""Edge agents as the hub knows them: configuration it pushes, what they report back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from maintainpro.core.columns import Timestamped
from maintainpro.core.db import Base, UTCDateTime


class EdgeAgent(Timestamped, Base):
    """A gateway near the machines that buffers readings and forwards them to the hub."""

    __tablename__ = "edge_agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The configuration the hub wants the agent to run (devices and sensors it serves), with a
    # version that only grows; applied_version is what the agent acknowledged.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    config_version: Mapped[int] = mapped_column(Integer, default=0)
    applied_version: Mapped[int | None] = mapped_column(Integer, info={"audit": "skip"})
    config_error: Mapped[str | None] = mapped_column(Text, info={"audit": "skip"})
    config_error_at: Mapped[dt.datetime | None] = mapped_column(
        UTCDateTime(), info={"audit": "skip"}
    )
    # Reported by the agent's heartbeat.
    last_heartbeat_at: Mapped[dt.datetime | None] = mapped_column(
        UTCDateTime(), info={"audit": "skip"}
    )
    queue_depth: Mapped[int | None] = mapped_column(Integer, info={"audit": "skip"})
    oldest_unsent_at: Mapped[dt.datetime | None] = mapped_column(
        UTCDateTime(), info={"audit": "skip"}
    )
    dropped_total: Mapped[int] = mapped_column(Integer, default=0, info={"audit": "skip"})
    device_states: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, info={"audit": "skip"}
    )
    # Sealed MQTT credentials of the agent (write-only).
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary, info={"audit": "redact"})
