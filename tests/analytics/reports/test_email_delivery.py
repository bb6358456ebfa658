"""A scheduled report by e-mail to a real SMTP server: each site manager gets their site, the
head office everything; a readable PDF and a correct XLSX; skip-when-empty; one run per due
time and one execution per run, whatever the number of workers."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from analytics.reports.conftest import Clock
from analytics.reports.mail import attachments, messages_to, sheet_rows, summary_of, text_of
from analytics.reports.report_world import (
    RUN_AT,
    World,
    definition,
    email_recipient,
    schedule,
)
from maintainpro.analytics.reports.records import (
    ReportRecipient,
    ReportRun,
    ReportSchedule,
    RunStatus,
    RunTrigger,
)
from maintainpro.analytics.reports.runner import ReportJobs, claim, enqueue_due
from maintainpro.config import Settings
from maintainpro.core.assets import Site
from peers import Inbox

UTC = dt.UTC
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _run(factory: sessionmaker[Session]) -> ReportRun:
    with factory() as session:
        return session.scalars(select(ReportRun)).one()


def test_each_manager_gets_their_site_and_head_office_gets_all(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    inbox, settings = smtp
    report = definition(db, world, "pm_compliance", name="PM compliance February")
    schedule_id = schedule(db, report, next_run_at=RUN_AT)
    email_recipient(db, report, user_id=world.manager_a)
    email_recipient(db, report, user_id=world.manager_b)
    email_recipient(db, report, address="hq@plant.example")
    jobs = ReportJobs(session_factory, settings, clock=Clock(RUN_AT + dt.timedelta(seconds=20)))

    assert jobs.tick() == 1

    mail = messages_to(inbox)
    assert set(mail) == {"manager-a@plant.example", "manager-b@plant.example", "hq@plant.example"}
    site_a = mail["manager-a@plant.example"]
    assert (
        site_a["Subject"] == "PM compliance February: 2026-02-01 to 2026-02-28 (Europe/Berlin) [SA]"
    )
    assert site_a["From"] == "reports@plant.example"
    # The inline summary: the site's figures (1 on time, 1 late, 1 missed: 33.3 %).
    body = text_of(site_a)
    assert "Sites: SA" in body
    summary = summary_of(body)
    assert (summary["PM compliance"], summary["Late"], summary["Pending"]) == ("33.3 %", "1", "0")
    files = attachments(site_a)
    assert set(files) == {"pdf", "xlsx"}
    pdf_name, pdf = files["pdf"]
    assert pdf_name == "pm-compliance-february_2026-03-01_sa.pdf"
    assert pdf.startswith(b"%PDF-")
    for text in (b"PM compliance February", b"33.3 %", b"PA-2", b"Monthly check PA-2"):
        assert text in pdf, text
    assert b"PB-1" not in pdf  # site B's asset
    xlsx_name, xlsx = files["xlsx"]
    assert xlsx_name.endswith("_sa.xlsx")
    part_types = {p.get_filename(): p.get_content_type() for p in site_a.walk() if p.get_filename()}
    assert part_types[xlsx_name] == XLSX_TYPE
    assert sheet_rows(xlsx, "Compliance by site") == [
        ("Site", "On time", "Late", "Missed", "Pending", "Compliance %"),
        ("SA", 1, 1, 1, 0, 33.3),
    ]
    occurrences = sheet_rows(xlsx, "Occurrences")
    late = next(r for r in occurrences if r[6] == "late")
    # Due 10 Feb 10:00 UTC = 11:00 in Berlin, as a real date; 10.0 days late as a number.
    assert late[:5] == ("SA", "PA-2", "Monthly check PA-2", late[3], dt.datetime(2026, 2, 10, 11))
    assert isinstance(late[3], int)
    assert late[7] == 10.0

    head_office = mail["hq@plant.example"]
    assert summary_of(text_of(head_office))["PM compliance"] == "50.0 %"
    assert sheet_rows(attachments(head_office)["xlsx"][1], "Compliance by site")[1:] == [
        ("SA", 1, 1, 1, 0, 33.3),
        ("SB", 1, 0, 0, 1, 100.0),
    ]
    assert b"PB-1" in attachments(head_office)["pdf"][1]
    assert "Sites:" not in text_of(head_office)

    run = _run(session_factory)
    assert (run.status, run.trigger, run.attempts) == (RunStatus.SUCCEEDED, RunTrigger.SCHEDULE, 1)
    assert (run.scheduled_for, run.period_start.isoformat()) == (
        RUN_AT,
        "2026-01-31T23:00:00+00:00",
    )
    sent = {e["target"]: e for e in run.recipients}
    assert {t: e["status"] for t, e in sent.items()} == dict.fromkeys(mail, "sent")
    assert sent["manager-a@plant.example"]["sites"] == [world.site_a]
    assert sent["hq@plant.example"]["sites"] is None
    total = sum(len(p.get_payload(decode=True)) for _, m in inbox.messages for p in m.walk()
                if p.get_filename())  # fmt: skip
    assert run.size_bytes == total
    with session_factory() as session:
        moved = session.get(ReportSchedule, schedule_id)
        assert moved is not None
        # Next: 1 April 06:00 Berlin, summer time by then (04:00 UTC).
        assert moved.next_run_at == dt.datetime(2026, 4, 1, 4, tzinfo=UTC)
        assert moved.last_run_at == RUN_AT


def test_skip_when_empty_per_recipient_and_for_the_whole_run(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    inbox, settings = smtp
    quiet = Site(code="SC", name="Site C")
    db.add(quiet)
    db.commit()
    report = definition(db, world, "pm_compliance", skip_when_empty=True)
    email_recipient(db, report, user_id=world.manager_a)
    email_recipient(db, report, address="site-c@plant.example", site_id=quiet.id)
    jobs = ReportJobs(session_factory, settings, clock=Clock(RUN_AT))

    first = jobs.run_now(report)

    assert set(messages_to(inbox)) == {"manager-a@plant.example"}
    with session_factory() as session:
        run = session.get(ReportRun, first)
        assert run is not None
        assert run.status is RunStatus.SUCCEEDED
        assert [e["status"] for e in run.recipients] == ["sent", "skipped"]
    # Only the quiet site left: the whole run is skipped and nothing is sent.
    inbox.messages.clear()
    with session_factory() as session, session.begin():
        for recipient in session.scalars(select(ReportRecipient)):
            recipient.active = recipient.site_id == quiet.id
    second = jobs.run_now(report)
    assert inbox.messages == []
    with session_factory() as session:
        run = session.get(ReportRun, second)
        assert run is not None
        assert run.status is RunStatus.SKIPPED


def test_an_empty_report_is_still_sent_without_skip_when_empty(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    inbox, settings = smtp
    report = definition(db, world, "supplier_scorecards", name="Scorecards")
    email_recipient(db, report, user_id=world.manager_a)  # site-bound: no supplier rows
    ReportJobs(session_factory, settings, clock=Clock(RUN_AT)).run_now(report)
    body = text_of(messages_to(inbox)["manager-a@plant.example"])
    assert "Nothing to report for this period." in body
    assert "only recipients who see every site receive them" in body


def test_one_run_per_due_time_and_one_execution_per_run(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    inbox, settings = smtp
    report = definition(db, world, "backlog", name="Backlog")
    schedule(db, report, next_run_at=RUN_AT)
    email_recipient(db, report, address="hq@plant.example")
    now = RUN_AT + dt.timedelta(seconds=5)
    # Two hub processes notice the same due time: one run between them.
    assert len(enqueue_due(session_factory, now)) == 1
    assert enqueue_due(session_factory, now) == []
    # Two workers race for the run: one executes it, the other finds it taken.
    workers = [ReportJobs(session_factory, settings, clock=Clock(now)) for _ in range(2)]
    start = threading.Barrier(2)
    done: list[list[int]] = []

    def work(jobs: ReportJobs) -> None:
        start.wait()
        done.append(jobs.run_ready())

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(d) for d in done) == [0, 1]
    assert len(inbox.messages) == 1
    run = _run(session_factory)
    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 1)
    assert not claim(session_factory, run.id, now)  # finished runs are never taken again


def test_a_schedule_without_a_next_run_starts_from_now_without_a_run(
    session_factory: sessionmaker[Session], db: Session, world: World
) -> None:
    report = definition(db, world, "backlog", name="Backlog")
    schedule_id = schedule(db, report, next_run_at=None, cron="0 6 * * 1")
    assert enqueue_due(session_factory, RUN_AT) == []
    with session_factory() as session:
        started = session.get(ReportSchedule, schedule_id)
        assert started is not None
        # Sunday 1 March 06:00 Berlin -> Monday 2 March 06:00 (05:00 UTC).
        assert started.next_run_at == dt.datetime(2026, 3, 2, 5, tzinfo=UTC)
