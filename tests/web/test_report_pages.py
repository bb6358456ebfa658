"""The report pages: schedules with next and last runs, a failure after its retries shown on the
list, the report page and the API, run-now with CSRF, who may see and run what, escaping, and
each run's kept files to download under the site rule."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from analytics.reports.conftest import Clock
from analytics.reports.report_world import (
    RUN_AT,
    World,
    build,
    definition,
    email_recipient,
    schedule,
)
from maintainpro.analytics.access import access_ledger
from maintainpro.analytics.access_log import BiAccessRecord
from maintainpro.analytics.reports.records import ReportOutput, ReportRun, RunStatus
from maintainpro.analytics.reports.runner import MAX_ATTEMPTS, ReportJobs
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.users import Role, User
from maintainpro.web.report_pages import size_text
from peers import Inbox, free_port, smtp_peer
from support import bearer

MakeUser = Callable[..., tuple[User, str]]
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HTML = {"Accept": "text/html"}
HOSTILE = "<script>alert('report')</script>"


@pytest.fixture
def world(db: Session) -> World:
    """The two-site report world, committed."""
    return build(db)


def csrf_of(page: str) -> str:
    """The form token of a page's HTML."""
    match = CSRF.search(page)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


def sign_in_as(client: TestClient, make_user: MakeUser, role: Role) -> User:
    user, _ = make_user(role)
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return user


def failed_after_retries(
    factory: sessionmaker[Session], settings: Settings, report: int, schedule_id: int
) -> int:
    """The scheduled run of a report whose only recipient's mail server is down, driven through
    every retry until it gives up; its id."""
    down = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_starttls": False}
    )
    clock = Clock(RUN_AT)
    jobs = ReportJobs(factory, down, clock=clock)
    assert jobs.tick() == 1
    with factory() as session:
        (run,) = session.scalars(select(ReportRun).where(ReportRun.definition_id == report))
        run_id = run.id
        assert run.schedule_id == schedule_id
    for _ in range(MAX_ATTEMPTS - 1):
        with factory() as session:
            waiting = session.get(ReportRun, run_id)
            assert waiting is not None
            assert waiting.status is RunStatus.RETRYING
            assert waiting.next_attempt_at is not None
            clock.now = waiting.next_attempt_at
        assert jobs.tick() == 1
    return run_id


def test_the_list_shows_schedules_and_a_run_that_failed_after_its_retries(
    client: TestClient,
    make_user: MakeUser,
    db: Session,
    world: World,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    daily = definition(db, world, "backlog", name="Backlog daily")
    later = RUN_AT.replace(day=2)  # 2 March 05:00 UTC, 06:00 in Berlin
    schedule(db, daily, later, cron="0 6 * * *")
    email_recipient(db, daily, address="hq@plant.example")
    email_recipient(db, daily, user_id=world.manager_a)
    definition(db, world, "spend", name=f"Spend {HOSTILE}")
    monthly = definition(db, world, "pm_compliance", name="PM monthly")
    monthly_schedule = schedule(db, monthly, RUN_AT)
    email_recipient(db, monthly, address="planner@plant.example")
    run_id = failed_after_retries(session_factory, settings, monthly, monthly_schedule)

    sign_in_as(client, make_user, Role.ANALYST)
    page = client.get("/reports")
    assert page.status_code == 200
    text = page.text
    assert '<a href="/reports" aria-current="page">Reports</a>' in text  # the nav entry
    assert "<code>0 6 * * *</code> · Europe/Berlin" in text
    assert "2026-03-02 06:00 Europe/Berlin" in text
    assert "not scheduled" in text
    # The failure stands out: an alert naming the report, and its row marked.
    alert = text[text.index('role="alert"') : text.index("</div>", text.index('role="alert"'))]
    assert f'<a href="/reports/{monthly}">PM monthly</a>' in alert
    assert "Backlog daily" not in alert
    rows = re.findall(r"<tr( class=\"run-failed\")?>\s*<td><a href=\"/reports/(\d+)\">", text)
    marked = {int(report) for flag, report in rows if flag}
    assert marked == {monthly}
    daily_row = text[text.index(f'href="/reports/{daily}"') :].split("</tr>")[0]
    assert "<td>2</td>" in daily_row  # two recipients
    assert "never run" in daily_row
    # Names are text, not markup.
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(&#39;report&#39;)&lt;/script&gt;" in text

    detail = client.get(f"/reports/{monthly}")
    assert detail.status_code == 200
    run_row = detail.text[detail.text.index(f'id="run-{run_id}"') :].split("</tr>")[0]
    assert 'class="run-failed"' in run_row
    assert "badge-failed" in run_row
    assert f"<td>{MAX_ATTEMPTS}</td>" in run_row
    assert "planner@plant.example" in run_row
    assert f"{MAX_ATTEMPTS} attempts" in run_row
    assert "ConnectionRefusedError" in run_row  # the reason, per recipient
    # The same run through the API.
    headers = bearer(make_user(Role.ANALYST)[1])
    failed = client.get("/api/v1/report-runs", params={"status": "failed"}, headers=headers)
    assert [r["id"] for r in failed.json()["items"]] == [run_id]
    assert failed.json()["items"][0]["attempts"] == MAX_ATTEMPTS


def test_who_sees_and_runs_reports(
    client: TestClient, make_user: MakeUser, db: Session, world: World
) -> None:
    report = definition(db, world, "backlog", name="Backlog")
    sign_in_as(client, make_user, Role.TECHNICIAN)
    assert 'href="/reports"' not in client.get("/").text
    assert client.get("/reports", headers=HTML).status_code == 403
    assert client.get(f"/reports/{report}", headers=HTML).status_code == 403

    sign_in_as(client, make_user, Role.PROCUREMENT)
    assert 'href="/reports"' in client.get("/").text
    page = client.get(f"/reports/{report}")
    assert page.status_code == 200
    assert "Run now" not in page.text
    posted = client.post(
        f"/reports/{report}/run-now", data={"csrf_token": csrf_of(page.text)}, headers=HTML
    )
    assert posted.status_code == 403
    assert db.scalar(select(func.count()).select_from(ReportRun)) == 0

    sign_in_as(client, make_user, Role.ANALYST)
    assert "Run now" in client.get(f"/reports/{report}").text
    assert client.get("/reports/999999", headers=HTML).status_code == 404


@pytest.fixture
def mail_client(settings: Settings) -> Iterator[tuple[TestClient, Inbox]]:
    """The app sending mail to a local SMTP server."""
    with smtp_peer() as (inbox, port):
        mailing = settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
        )
        with TestClient(create_app(mailing)) as client:
            yield client, inbox


def test_run_now_needs_the_form_token_then_sends_and_shows_the_run(
    mail_client: tuple[TestClient, Inbox], make_user: MakeUser, db: Session, world: World
) -> None:
    client, inbox = mail_client
    report = definition(db, world, "backlog", name="Backlog now", formats=("xlsx",))
    email_recipient(db, report, user_id=world.manager_b)
    sign_in_as(client, make_user, Role.ANALYST)
    page = client.get(f"/reports/{report}")
    forged = client.post(f"/reports/{report}/run-now", data={"csrf_token": "x"}, headers=HTML)
    assert forged.status_code == 403
    assert db.scalar(select(func.count()).select_from(ReportRun)) == 0
    assert inbox.messages == []

    token = csrf_of(page.text)
    sent = client.post(
        f"/reports/{report}/run-now", data={"csrf_token": token}, follow_redirects=False
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/reports/{report}"
    (run,) = db.scalars(select(ReportRun)).all()
    assert run.status is RunStatus.SUCCEEDED
    assert len(inbox.messages) == 1
    shown = client.get(f"/reports/{report}").text
    assert f"Run {run.id} succeeded." in shown
    run_row = shown[shown.index(f'id="run-{run.id}"') :].split("</tr>")[0]
    assert "manager-b@plant.example" in run_row
    assert "badge-sent" in run_row
    assert "sites SB" in run_row
    (filename,) = run.recipients[0]["files"]
    assert filename in run_row
    assert size_text(run.size_bytes) in run_row
    # The message is shown once.
    assert f"Run {run.id} succeeded." not in client.get(f"/reports/{report}").text


def sign_in_with_site(client: TestClient, make_user: MakeUser, role: Role, site_id: int) -> User:
    """Sign in as a new user of one site."""
    user, _ = make_user(role, site_id=site_id)
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return user


FILE_LINK = re.compile(r'<a href="(/reports/runs/(\d+)/outputs/(\d+))" download>([^<]+)</a>')


def test_each_run_lists_its_kept_files_to_download_by_site(
    mail_client: tuple[TestClient, Inbox],
    make_user: MakeUser,
    db: Session,
    world: World,
    session_factory: sessionmaker[Session],
) -> None:
    client, inbox = mail_client
    report = definition(db, world, "backlog", name="Backlog kept", formats=("pdf", "csv"))
    email_recipient(db, report, user_id=world.manager_a)
    email_recipient(db, report, user_id=world.manager_b)
    email_recipient(db, report, address="hq@plant.example")
    sign_in_as(client, make_user, Role.ANALYST)
    page = client.get(f"/reports/{report}")
    sent = client.post(
        f"/reports/{report}/run-now",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    (run,) = db.scalars(select(ReportRun)).all()
    with session_factory() as session:
        kept = {
            row.id: (row.scope_label, row.filename)
            for row in session.scalars(select(ReportOutput).where(ReportOutput.run_id == run.id))
        }
    assert {label for label, _ in kept.values()} == {"SA", "SB", "all sites"}

    shown = client.get(f"/reports/{report}").text
    assert "Files are not kept" not in shown
    run_row = shown[shown.index(f'id="run-{run.id}"') :].split("</tr>")[0]
    links = {int(oid): name for _, _, oid, name in FILE_LINK.findall(run_row)}
    assert links == {oid: name for oid, (_, name) in kept.items()}  # all of them, unrestricted

    # Site A's manager sees and downloads site A's files only.
    client.cookies.clear()
    sign_in_with_site(client, make_user, Role.MAINTENANCE_MANAGER, world.site_a)
    shown = client.get(f"/reports/{report}").text
    run_row = shown[shown.index(f'id="run-{run.id}"') :].split("</tr>")[0]
    found = FILE_LINK.findall(run_row)
    assert {int(oid) for _, _, oid, _ in found} == {
        oid for oid, (label, _) in kept.items() if label == "SA"
    }
    href, _, _, name = found[0]
    got = client.get(href)
    assert got.status_code == 200
    assert got.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert got.headers["x-content-type-options"] == "nosniff"
    mail = {rcpts[0]: message for rcpts, message in inbox.messages}
    sent_copy = {
        part.get_filename(): part.get_payload(decode=True)
        for part in mail["manager-a@plant.example"].walk()
        if part.get_filename()
    }
    assert got.content == sent_copy[name]
    for other, (label, _) in kept.items():
        if label != "SA":
            refused = client.get(f"/reports/runs/{run.id}/outputs/{other}", headers=HTML)
            assert refused.status_code == 404, label
    # The delivery through the page and the downloads are audited.
    access_ledger(client.app.state).flush()  # type: ignore[attr-defined]
    with session_factory() as session:
        channels = [
            (r.channel, r.status)
            for r in session.scalars(select(BiAccessRecord).order_by(BiAccessRecord.id))
        ]
    assert channels.count(("report", 200)) == 3
    assert channels.count(("report_download", 200)) == 1
    refusals = sum(1 for label, _ in kept.values() if label != "SA")
    assert channels.count(("report_download", 404)) == refusals
