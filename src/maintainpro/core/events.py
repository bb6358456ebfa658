"""Transactional outbox: domain events written in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from maintainpro.core.db import Base, UTCDateTime, utcnow

log = logging.getLogger(__name__)

Handler = Callable[[str, Mapping[str, Any]], None]
MAX_BACKOFF = dt.timedelta(minutes=30)


class OutboxEvent(Base):
    """A domain event waiting to be delivered to its handlers."""

    __tablename__ = "outbox_events"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


def emit(session: Session, topic: str, payload: Mapping[str, Any]) -> OutboxEvent:
    """Record an event; it is delivered only if the surrounding transaction commits."""
    event = OutboxEvent(topic=topic, payload=dict(payload))
    session.add(event)
    return event


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next try: doubling from 2 s, capped at 30 minutes."""
    return min(dt.timedelta(seconds=2 ** min(attempts, 20)), MAX_BACKOFF)


def deliver_pending(
    factory: sessionmaker[Session],
    handlers: Mapping[str, list[Handler]],
    *,
    now: dt.datetime | None = None,
    limit: int = 100,
) -> int:
    """Hand due events to their handlers; failures are retried later with back-off.

    Returns the number of events delivered. Delivery is at-least-once: a handler must tolerate
    seeing an event again after a crash between the handler and the commit.
    """
    when = now or utcnow()
    delivered = 0
    with factory() as session, session.begin():
        due = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.delivered_at.is_(None), OutboxEvent.available_at <= when)
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for item in due:
            try:
                for handler in handlers.get(item.topic, []):
                    handler(item.topic, item.payload)
            except Exception as exc:  # noqa: BLE001 - a failing handler is retried, never fatal
                item.attempts += 1
                item.last_error = f"{type(exc).__name__}: {exc}"
                item.available_at = when + backoff(item.attempts)
                log.warning(
                    "outbox delivery failed",
                    extra={"event_id": item.id, "topic": item.topic, "error": item.last_error},
                )
                continue
            item.attempts += 1
            item.delivered_at = when
            delivered += 1
    return delivered
