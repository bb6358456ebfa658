"""Notification subscriptions, webhook endpoints and the delivery log (channel-agnostic)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow
from maintainpro.core.users import Role


class Channel(enum.StrEnum):
    """How a notification travels."""

    EMAIL = "email"
    WEBHOOK = "webhook"


class Subscription(Timestamped, Base):
    """Who wants to hear about which events, by site, asset and minimum severity."""

    __tablename__ = "notification_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role | None] = mapped_column(text_enum(Role))
    channel: Mapped[Channel] = mapped_column(text_enum(Channel))
    webhook_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    topics: Mapped[str] = mapped_column(String(500), default="alert.*")
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    min_severity: Mapped[str] = mapped_column(String(16), default="warning")
    # Quiet hours in the subscriber's time zone, e.g. 22:00-06:00; critical alerts still pass
    # unless quiet_blocks_critical is set.
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    quiet_blocks_critical: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookEndpoint(Timestamped, Base):
    """A URL that receives signed JSON events."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    # HMAC-SHA256 key, sealed like device credentials; never returned after creation.
    secret: Mapped[bytes | None] = mapped_column(LargeBinary, info={"audit": "redact"})
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DeliveryStatus(enum.StrEnum):
    """State of one notification delivery."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class Delivery(Base):
    """One notification to one recipient, with every attempt's outcome."""

    __tablename__ = "notification_deliveries"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int | None] = mapped_column(Integer, index=True)
    topic: Mapped[str] = mapped_column(String(100))
    channel: Mapped[Channel] = mapped_column(text_enum(Channel))
    target: Mapped[str] = mapped_column(String(2000))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_subscriptions.id", ondelete="SET NULL")
    )
    status: Mapped[DeliveryStatus] = mapped_column(
        text_enum(DeliveryStatus), default=DeliveryStatus.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    response_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
