"""The transactional outbox: events commit with the change and are retried until delivered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent, backoff, deliver_pending, emit


def test_rolled_back_change_leaves_no_event(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        emit(session, "work_order.opened", {"work_order_id": 1})
        session.rollback()
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_failing_handler_is_retried_with_backoff(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, session.begin():
        emit(session, "alert.raised", {"alert_id": 9})
        emit(session, "other.topic", {"x": 1})
    seen: list[Mapping[str, Any]] = []
    fail = {"on": True}

    def handler(topic: str, payload: Mapping[str, Any]) -> None:
        if fail["on"]:
            raise ConnectionError("smtp down")
        seen.append(payload)

    now = utcnow()
    assert deliver_pending(session_factory, {"alert.raised": [handler]}, now=now) == 1
    with session_factory() as session:
        failed = session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == "alert.raised")
        ).one()
        assert failed.delivered_at is None
        assert failed.attempts == 1
        assert failed.last_error == "ConnectionError: smtp down"
        assert failed.available_at > now
    fail["on"] = False
    assert deliver_pending(session_factory, {"alert.raised": [handler]}, now=now) == 0, (
        "not due yet"
    )
    later = now + dt.timedelta(minutes=5)
    assert deliver_pending(session_factory, {"alert.raised": [handler]}, now=later) == 1
    assert seen == [{"alert_id": 9}]
    assert deliver_pending(session_factory, {"alert.raised": [handler]}, now=later) == 0


def test_backoff_doubles_and_caps() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [2, 4, 8]
    assert backoff(50) == dt.timedelta(minutes=30)
