"""What shipment tracking remembers: alerts already raised, carrier reports it could not use."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from maintainpro.core.columns import text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow


class AlertKind(enum.StrEnum):
    """What a shipment was followed up for."""

    LATE = "late"
    EXCEPTION = "exception"
    DELIVERED = "delivered"
    # A waiting work order was told this ETA (the key holds the work order and the ETA).
    ETA_NOTE = "eta_note"


class ShipmentAlert(Base):
    """A follow-up done once: the unique key makes a second claim (job or webhook) fail."""

    __tablename__ = "shipment_alerts"
    __table_args__ = (UniqueConstraint("shipment_id", "kind", "key"),)
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[AlertKind] = mapped_column(text_enum(AlertKind))
    # "" for once-per-shipment kinds; the event id or "<work order>@<eta>" for the others.
    key: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CarrierDeadLetter(Base):
    """A signed carrier report (or part of one) that could not be applied, and why."""

    __tablename__ = "carrier_dead_letters"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # generic, easypost, aftership or unknown: the payload shape it was read as.
    format: Mapped[str] = mapped_column(String(32))
    tracking_number: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    # The body as received (cut at MAX_DEAD_LETTER_CHARS in tracking.py), to replay by hand.
    payload: Mapped[str] = mapped_column(Text)
