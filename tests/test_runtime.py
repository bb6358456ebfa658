"""The supervisor keeps jobs running through failures; the scheduler job opens due work."""

from __future__ import annotations

import asyncio
import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.app import create_app, open_due_preventive_work
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.schedules import IntervalUnit, MaintenanceSchedule
from maintainpro.core.work_orders import Origin, WorkOrder
from maintainpro.runtime import Supervisor
from support import plant


async def test_failing_job_is_retried_and_recovers() -> None:
    calls = {"n": 0}

    def flaky() -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise ConnectionError("database restarting")

    supervisor = Supervisor()
    supervisor.every("flaky", 0.01, flaky)
    supervisor.start()
    for _ in range(200):
        await asyncio.sleep(0.02)
        status = supervisor.statuses[0]
        if status.last_success is not None:
            break
    await supervisor.stop()
    status = supervisor.statuses[0]
    assert status.failures == 2
    assert status.last_error is None, "recovery clears the error"
    assert status.last_success is not None
    assert calls["n"] >= 3


async def test_service_that_crashes_is_restarted() -> None:
    starts = {"n": 0}

    async def connector() -> None:
        starts["n"] += 1
        if starts["n"] == 1:
            raise OSError("broker unreachable")
        await asyncio.sleep(3600)

    supervisor = Supervisor()
    supervisor.service("mqtt", connector)
    supervisor.start()
    for _ in range(300):
        await asyncio.sleep(0.01)
        if starts["n"] >= 2:
            break
    status = supervisor.statuses[0]
    assert starts["n"] == 2
    assert status.running
    assert status.last_error == "OSError: broker unreachable"
    await supervisor.stop()


def test_scheduler_job_opens_due_preventive_work(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with session_factory() as session, session.begin():
        ids = plant(session)
        session.add(
            MaintenanceSchedule(
                asset_id=ids["pump"],
                name="Greasing",
                interval_count=1,
                interval_unit=IntervalUnit.WEEKS,
                next_due_at=utcnow() - dt.timedelta(minutes=5),
            )
        )
    assert open_due_preventive_work(session_factory) == 1
    assert open_due_preventive_work(session_factory) == 0
    with session_factory() as session:
        order = session.scalars(select(WorkOrder)).one()
        assert order.origin is Origin.SCHEDULE
    running = settings.model_copy(update={"run_background_jobs": True})
    with TestClient(create_app(running)) as client:
        supervisor = client.app.state.supervisor  # type: ignore[attr-defined]
        names = {s.name for s in supervisor.statuses}
        assert {"preventive-maintenance", "timeseries-maintenance", "iot"} <= names
        assert client.app.state.iot_hub is not None  # type: ignore[attr-defined]
