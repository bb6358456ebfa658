"""Pages for scheduled reports: schedules, their runs, failures and a run-now button.

``/reports`` lists every schedule (and every report without one) with its next run in the
schedule's zone, how the last run went and how many recipients it has; failed runs stand out.
``/reports/{id}`` shows a definition, its schedules and recipients, and its recent runs with
what went to each recipient and the files it kept, to download; "Run now" (reports:write,
CSRF-checked) produces and sends it at once. A user tied to a site sees and downloads only the
files of their site's copies (the warehouse's site rule); every download is audited.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.access import access_ledger, site_scope
from maintainpro.analytics.reports.downloads import fetch_download
from maintainpro.analytics.reports.outputs import may_download
from maintainpro.analytics.reports.records import (
    ReportDefinition,
    ReportOutput,
    ReportRecipient,
    ReportRun,
    ReportSchedule,
    RunStatus,
)
from maintainpro.analytics.reports.runner import ReportJobs, target_text
from maintainpro.api.deps import SessionDep
from maintainpro.config import Settings
from maintainpro.core.assets import Site
from maintainpro.core.users import Permission, User
from maintainpro.supply.portal import download_headers
from maintainpro.web.pages import render
from maintainpro.web.session_auth import CsrfChecked, PageUser, page_permission

router = APIRouter(include_in_schema=False)
CanRead = page_permission(Permission.REPORTS_READ)
CanWrite = page_permission(Permission.REPORTS_WRITE)
RECENT_RUNS: Final = 20
# Statuses that need someone's attention, and those still being worked on.
TROUBLE: Final = frozenset({RunStatus.FAILED})
PENDING: Final = frozenset({RunStatus.RETRYING, RunStatus.QUEUED, RunStatus.RUNNING})


def local_time(value: dt.datetime | None, zone: str) -> str:
    """A UTC time as wall-clock time in a zone, e.g. "2026-03-01 06:00 Europe/Berlin"."""
    if value is None:
        return "—"
    try:
        info = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        info, zone = ZoneInfo("UTC"), "UTC"
    return f"{value.astimezone(info):%Y-%m-%d %H:%M} {zone}"


def size_text(size: int) -> str:
    """Bytes as a person reads them: "812 B", "14.2 KB", "3.1 MB"."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


@dataclass(frozen=True)
class ScheduleRow:
    """One line of the schedules list: a schedule of a report, or a report without one."""

    definition: ReportDefinition
    schedule: ReportSchedule | None
    next_run: str
    last_run: ReportRun | None
    recipients: int

    @property
    def failed(self) -> bool:
        """Whether the last run gave up."""
        return self.last_run is not None and self.last_run.status in TROUBLE


def _latest_runs(db: Session) -> tuple[dict[int, ReportRun], dict[int, ReportRun]]:
    """The newest run of each schedule, and the newest run started by hand of each report."""
    by_schedule: dict[int, ReportRun] = {}
    by_hand: dict[int, ReportRun] = {}
    newest = (
        select(func.max(ReportRun.id))
        .group_by(ReportRun.definition_id, ReportRun.schedule_id)
        .scalar_subquery()
    )
    for run in db.scalars(select(ReportRun).where(ReportRun.id.in_(newest))):
        if run.schedule_id is not None:
            by_schedule[run.schedule_id] = run
        else:
            by_hand[run.definition_id] = run
    return by_schedule, by_hand


def _newer(first: ReportRun | None, second: ReportRun | None) -> ReportRun | None:
    if first is None or second is None:
        return first or second
    return first if first.id > second.id else second


def schedule_rows(db: Session) -> list[ScheduleRow]:
    """Every schedule by report name, and each report without a schedule once."""
    definitions = db.scalars(select(ReportDefinition).order_by(ReportDefinition.name)).all()
    schedules: dict[int, list[ReportSchedule]] = {}
    for schedule in db.scalars(select(ReportSchedule).order_by(ReportSchedule.id)):
        schedules.setdefault(schedule.definition_id, []).append(schedule)
    counts = dict(
        db.execute(
            select(ReportRecipient.definition_id, func.count())
            .where(ReportRecipient.active)
            .group_by(ReportRecipient.definition_id)
        ).all()
    )
    by_schedule, by_hand = _latest_runs(db)
    rows: list[ScheduleRow] = []
    for definition in definitions:
        recipients = int(counts.get(definition.id, 0))
        for schedule in schedules.get(definition.id, []):
            next_run = (
                local_time(schedule.next_run_at, schedule.timezone)
                if schedule.enabled
                else "paused"
            )
            # A run started by hand counts as the last run of every schedule of the report.
            last = _newer(by_schedule.get(schedule.id), by_hand.get(definition.id))
            rows.append(ScheduleRow(definition, schedule, next_run, last, recipients))
        if definition.id not in schedules:
            rows.append(
                ScheduleRow(
                    definition, None, "not scheduled", by_hand.get(definition.id), recipients
                )
            )
    return rows


@router.get("/reports", dependencies=[CanRead])
def reports_page(request: Request, db: SessionDep, user: PageUser) -> HTMLResponse:
    """Every report schedule: source, cron and zone, next run, last run, recipients."""
    rows = schedule_rows(db)
    failing = {row.definition.id: row.definition for row in rows if row.failed}
    return render(
        request,
        "reports.html",
        user,
        rows=rows,
        failing=list(failing.values()),
        pending=PENDING,
        local_time=local_time,
    )


@dataclass(frozen=True)
class RecipientRow:
    """A recipient as the page shows it: where it goes and which site's rows it sees."""

    recipient: ReportRecipient
    target: str
    site: str


def _recipient_rows(db: Session, definition: ReportDefinition) -> list[RecipientRow]:
    sites = {s.id: s.code for s in db.scalars(select(Site))}
    rows = []
    for recipient in db.scalars(
        select(ReportRecipient)
        .where(ReportRecipient.definition_id == definition.id)
        .order_by(ReportRecipient.id)
    ):
        person = db.get(User, recipient.user_id) if recipient.user_id is not None else None
        if recipient.site_id is not None:
            site = sites.get(recipient.site_id, "—")
        elif person is not None and person.site_id is not None:
            site = f"{sites.get(person.site_id, '—')} (the user's site)"
        else:
            site = "every site"
        rows.append(RecipientRow(recipient, target_text(recipient, person), site))
    return rows


def _definition_or_404(db: Session, report_id: int) -> ReportDefinition:
    definition = db.get(ReportDefinition, report_id)
    if definition is None:
        raise HTTPException(404, "no such report")
    return definition


def may_run(user: User, definition: ReportDefinition) -> bool:
    """Whether the user may start the report (the API's rule: site-bound users, own reports)."""
    if Permission.REPORTS_WRITE not in user.permissions:
        return False
    return user.site_id is None or definition.owner_id == user.id


def _site_names(db: Session, runs: list[ReportRun]) -> dict[int, str]:
    wanted = {s for run in runs for e in run.recipients for s in (e.get("sites") or [])}
    if not wanted:
        return {}
    return {s.id: s.code for s in db.scalars(select(Site).where(Site.id.in_(wanted)))}


def retention_text(days: int) -> str:
    """How long kept files stay, as the page says it."""
    if days <= 0:
        return "as long as the run is in the log"
    return f"{days} day{'' if days == 1 else 's'}"


def kept_files(db: Session, runs: list[ReportRun], user: User) -> dict[int, list[ReportOutput]]:
    """The files of each run the user may download (their sites' copies), by run id."""
    if not runs:
        return {}
    scope = site_scope(user)
    found: dict[int, list[ReportOutput]] = {}
    for row in db.scalars(
        select(ReportOutput)
        .where(ReportOutput.run_id.in_([run.id for run in runs]))
        .order_by(ReportOutput.scope_label, ReportOutput.filename, ReportOutput.id)
    ):
        if may_download(scope, row.site_ids):
            found.setdefault(row.run_id, []).append(row)
    return found


@router.get("/reports/{report_id}", dependencies=[CanRead])
def report_page(request: Request, db: SessionDep, user: PageUser, report_id: int) -> HTMLResponse:
    """One report: its definition, schedules, recipients and recent runs with their files."""
    definition = _definition_or_404(db, report_id)
    settings: Settings = request.app.state.settings
    schedules = db.scalars(
        select(ReportSchedule)
        .where(ReportSchedule.definition_id == definition.id)
        .order_by(ReportSchedule.id)
    ).all()
    runs = list(
        db.scalars(
            select(ReportRun)
            .where(ReportRun.definition_id == definition.id)
            .order_by(ReportRun.created_at.desc(), ReportRun.id.desc())
            .limit(RECENT_RUNS)
        )
    )
    owner = db.get(User, definition.owner_id) if definition.owner_id is not None else None
    zone = schedules[0].timezone if schedules else "UTC"
    flash = request.session.pop("report_flash", None)
    return render(
        request,
        "report.html",
        user,
        report=definition,
        owner=owner,
        params=_params_text(definition.params),
        schedules=schedules,
        recipients=_recipient_rows(db, definition),
        runs=runs,
        zone=zone,
        site_names=_site_names(db, runs),
        outputs=kept_files(db, runs, user),
        retention_text=retention_text(settings.report_output_retention_days),
        can_run=may_run(user, definition),
        trouble=TROUBLE,
        pending=PENDING,
        local_time=local_time,
        size_text=size_text,
        flash=flash if isinstance(flash, dict) else None,
    )


def _params_text(params: dict[str, Any]) -> list[tuple[str, str]]:
    """A definition's params as (name, value) lines; nested values as compact JSON."""
    return [
        (key, value if isinstance(value, str) else json.dumps(value, sort_keys=True))
        for key, value in params.items()
    ]


@router.post("/reports/{report_id}/run-now", dependencies=[CsrfChecked, CanWrite])
def run_report_now(
    request: Request, db: SessionDep, user: PageUser, report_id: int
) -> RedirectResponse:
    """Produce and send the report now; back to its page with how the run went."""
    definition = _definition_or_404(db, report_id)
    if not may_run(user, definition):
        raise HTTPException(403, "users of one site run only the reports they own")
    db.rollback()  # the run is written by the report job's own sessions
    factory: sessionmaker[Session] = request.app.state.session_factory
    settings: Settings = request.app.state.settings
    jobs = ReportJobs(
        factory, settings, request.app.state.credential_box, ledger=access_ledger(request.app.state)
    )
    run_id = jobs.run_now(report_id)
    run = db.get(ReportRun, run_id)
    status = run.status if run is not None else RunStatus.FAILED
    if status in TROUBLE:
        message, kind = f"Run {run_id} failed: {run.error if run else 'not recorded'}", "error"
    elif status is RunStatus.RETRYING:
        message, kind = f"Run {run_id} could not reach everyone; it will be retried.", "error"
    else:
        message, kind = f"Run {run_id} {status.value}.", "ok"
    request.session["report_flash"] = {"message": message[:500], "kind": kind}
    return RedirectResponse(f"/reports/{report_id}", status_code=303)


@router.get("/reports/runs/{run_id}/outputs/{output_id}", dependencies=[CanRead])
def download_kept_file(
    request: Request, db: SessionDep, user: PageUser, run_id: int, output_id: int
) -> Response:
    """A run's kept file as a download; another site's file is answered like a missing one."""
    download = fetch_download(
        db, access_ledger(request.app.state), user, run_id, output_id, via="page"
    )
    if download.content is None or download.output is None:
        raise HTTPException(404, "no such file")
    return Response(
        download.content,
        media_type=download.output.media_type,
        headers=download_headers(download.output.filename),
    )
