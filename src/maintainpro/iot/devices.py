"""Device registry: devices, their sensors, connection state, and the dead-letter table."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow


class Protocol(enum.StrEnum):
    """How the hub talks to a device."""

    MQTT = "mqtt"
    COAP = "coap"
    OPCUA = "opcua"
    MODBUS = "modbus"


class DeviceStatus(enum.StrEnum):
    """Connection state as a user sees it."""

    ONLINE = "online"
    OFFLINE = "offline"
    ERROR = "error"
    DISABLED = "disabled"


class SensorType(enum.StrEnum):
    """What a sensor measures; free strings are accepted too (the list is extensible)."""

    TEMPERATURE = "temperature"
    VIBRATION = "vibration"
    PRESSURE = "pressure"
    FLOW = "flow"
    HUMIDITY = "humidity"
    CURRENT = "current"
    SPEED = "speed"
    LEVEL = "level"


class Device(Timestamped, Base):
    """A field device or gateway that produces readings."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    protocol: Mapped[Protocol] = mapped_column(text_enum(Protocol))
    endpoint: Mapped[str] = mapped_column(String(500), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    asset_id: Mapped[int | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL"), index=True
    )
    # Protocol settings (poll period, unit id, security policy, topic filters, JSON paths...).
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Fernet token of a JSON object; write-only through the API, never returned.
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary, info={"audit": "redact"})
    heartbeat_timeout_s: Mapped[int] = mapped_column(Integer, default=120)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), info={"audit": "skip"})
    last_error: Mapped[str | None] = mapped_column(Text, info={"audit": "skip"})
    last_error_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), info={"audit": "skip"})
    connected: Mapped[bool] = mapped_column(Boolean, default=False, info={"audit": "skip"})

    sensors: Mapped[list[Sensor]] = relationship(
        back_populates="device", cascade="all, delete-orphan", order_by="Sensor.id"
    )

    def status_at(self, now: dt.datetime) -> DeviceStatus:
        """Status derived from data and connection state."""
        return derive_status(
            enabled=self.enabled,
            last_seen_at=self.last_seen_at,
            last_error_at=self.last_error_at,
            heartbeat_timeout_s=self.heartbeat_timeout_s,
            now=now,
        )


def derive_status(
    *,
    enabled: bool,
    last_seen_at: dt.datetime | None,
    last_error_at: dt.datetime | None,
    heartbeat_timeout_s: int,
    now: dt.datetime,
) -> DeviceStatus:
    """Online while data arrives within the heartbeat timeout; error when the newest event is
    an error; offline otherwise."""
    if not enabled:
        return DeviceStatus.DISABLED
    if last_error_at is not None and (last_seen_at is None or last_error_at > last_seen_at):
        return DeviceStatus.ERROR
    if last_seen_at is not None and now - last_seen_at <= dt.timedelta(seconds=heartbeat_timeout_s):
        return DeviceStatus.ONLINE
    return DeviceStatus.OFFLINE


class Sensor(Timestamped, Base):
    """One measured quantity of a device."""

    __tablename__ = "sensors"
    __table_args__ = (UniqueConstraint("device_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200), default="")
    type: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(32), default="")
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    calibration_date: Mapped[dt.date | None] = mapped_column(Date)
    # Where the value comes from: an MQTT topic, a CoAP resource, an OPC-UA NodeId or browse
    # path, or a Modbus register-map entry.
    address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    device: Mapped[Device] = relationship(back_populates="sensors")


class DeadLetter(Base):
    """Input that was refused, with the raw payload and the reason, for people to inspect."""

    __tablename__ = "dead_letters"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(64))
    device_key: Mapped[str | None] = mapped_column(String(128), index=True)
    sensor_key: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str | None] = mapped_column(String(500))
    code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload_size: Mapped[int] = mapped_column(Integer, default=0)

    def preview(self, limit: int = 120) -> str:
        """The start of the payload as text, for display (escaped by the page, never run)."""
        return (self.payload or b"")[:limit].decode("utf-8", "replace")


class DeviceEvent(Base):
    """A change of a device's connection (connected, disconnected, error), for its page."""

    __tablename__ = "device_events"
    # Written by the ingest pipeline at machine pace: the audit trail would only repeat it.
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    state: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
