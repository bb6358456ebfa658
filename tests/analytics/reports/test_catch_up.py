"""Schedules survive restarts: a schedule whose time passed while the hub was down runs once when
the hub starts (the real app, its lifespan and its supervisor), and then waits for its next time."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from analytics.reports.mail import attachments, messages_to
from analytics.reports.report_world import definition, email_recipient, schedule
from maintainpro.analytics.reports.records import ReportRun, ReportSchedule, RunStatus, RunTrigger
from maintainpro.analytics.reports.runner import ReportJobs
from maintainpro.analytics.reports.scheduler import checked_zone, next_fire
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.users import Role, User
from peers import Inbox

CRON = "0 6 * * *"  # daily at 06:00 Berlin


def test_a_missed_schedule_runs_once_after_a_restart(
    session_factory: sessionmaker[Session], db: Session, smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    admin = User(username="owner", role=Role.ADMIN, password_hash="x")
    db.add(admin)
    db.commit()
    report = definition(db, None, "backlog", name="Daily backlog", owner_id=admin.id)
    email_recipient(db, report, address="hq@plant.example")
    # The hub was down for three days: its 06:00 runs of the last three mornings were missed.
    down_since = utcnow() - dt.timedelta(days=3, hours=1)
    schedule_id = schedule(
        db, report, next_fire(CRON, checked_zone("Europe/Berlin"), down_since), CRON
    )
    running = settings.model_copy(update={"run_background_jobs": True})

    app = create_app(running)
    with TestClient(app):
        # The lifespan queued the catch-up before the jobs started.
        with session_factory() as session:
            (run,) = session.scalars(select(ReportRun)).all()
            moved = session.get(ReportSchedule, schedule_id)
            assert moved is not None
            assert run.trigger is RunTrigger.CATCH_UP
            assert moved.next_run_at is not None
            assert moved.next_run_at > utcnow()
        jobs: ReportJobs = app.state.report_jobs
        assert jobs.wait_finished(run.id, timeout=60) is RunStatus.SUCCEEDED

    zone = checked_zone("Europe/Berlin")
    # It stood for the latest missed morning, and the next one is the first after start.
    assert run.scheduled_for <= utcnow()
    assert next_fire(CRON, zone, run.scheduled_for) > run.created_at
    assert moved.next_run_at == next_fire(CRON, zone, run.created_at)
    (message,) = messages_to(inbox).values()
    assert set(attachments(message)) == {"pdf", "xlsx"}

    # Started again before the next time: nothing more is sent.
    with TestClient(create_app(running)):
        pass
    with session_factory() as session:
        assert len(session.scalars(select(ReportRun)).all()) == 1
        stored = session.scalars(select(ReportRun)).one()
        assert stored.status is RunStatus.SUCCEEDED
    assert len(inbox.messages) == 1
