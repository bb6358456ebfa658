"""Scheduled reports: definitions, their cron schedules and recipients, run-now, the run log.

Reading needs ``reports:read`` (administrators, maintenance managers, analysts, procurement) and
writing ``reports:write`` (administrators, maintenance managers, analysts). A user tied to a site
works within it: the recipients they add see that site only, and they change only the
definitions they own. A saved question or a dashboard as the source must be one its author may
read or open. A run's kept files are listed and downloaded under the site rule of the warehouse:
a site-bound user gets only the files of their sites (others answer 404), and every download is
recorded in the BI access audit.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.access import access_ledger, site_scope
from maintainpro.analytics.dashboards.records import Dashboard
from maintainpro.analytics.dashboards.rules import may_view
from maintainpro.analytics.reports.dashboard_source import DashboardReport
from maintainpro.analytics.reports.data import SourceError
from maintainpro.analytics.reports.delivery import SftpTarget
from maintainpro.analytics.reports.downloads import fetch_download
from maintainpro.analytics.reports.outputs import visible_outputs
from maintainpro.analytics.reports.periods import PeriodName
from maintainpro.analytics.reports.records import (
    RecipientKind,
    ReportDefinition,
    ReportOutput,
    ReportRecipient,
    ReportRun,
    ReportSchedule,
    RunStatus,
    RunTrigger,
)
from maintainpro.analytics.reports.runner import ReportJobs
from maintainpro.analytics.reports.saved_query import QueryNotAllowed, SavedQuery, check_query
from maintainpro.analytics.reports.scheduler import ScheduleError, checked_cron, checked_zone
from maintainpro.analytics.reports.scheduler import first_run as first_fire
from maintainpro.analytics.reports.sources import built_in_sources, checked_params
from maintainpro.api.deps import SessionDep, require
from maintainpro.api.fields import FreeText, Name
from maintainpro.api.pagination import Page, WindowDep, list_page
from maintainpro.api.problems import Problem
from maintainpro.config import Settings
from maintainpro.core.assets import Site
from maintainpro.core.db import utcnow
from maintainpro.core.notifications import WebhookEndpoint
from maintainpro.core.users import Permission, User
from maintainpro.iot.credentials import CredentialBox
from maintainpro.supply.portal import download_headers
from maintainpro.supply.sftp import SftpConfigError

router = APIRouter(tags=["reports"])
Writer = Annotated[User, Depends(require(Permission.REPORTS_WRITE))]
Reader = Depends(require(Permission.REPORTS_READ))
ReaderUser = Annotated[User, Reader]
Format = Literal["pdf", "xlsx", "csv"]
MAX_PARAMS = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# --- bodies ----------------------------------------------------------------------------------


def _small_params(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_PARAMS:
        raise ValueError(f"params may hold at most {MAX_PARAMS} entries")
    return value


class ReportFields(BaseModel):
    """Fields shared by creating and changing a report definition."""

    model_config = ConfigDict(extra="forbid")
    description: FreeText | None = None
    params: dict[str, Any] | None = None
    formats: Annotated[list[Format], Field(min_length=1, max_length=3)] | None = None
    skip_when_empty: bool | None = None

    @field_validator("formats")
    @classmethod
    def _distinct(cls, value: list[Format] | None) -> list[Format] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("each format once")
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _small_params(value)


class ReportIn(ReportFields):
    """A new report definition: a source (see GET /report-sources), its params and formats."""

    name: Name
    source: Annotated[str, StringConstraints(max_length=64)]
    formats: Annotated[list[Format], Field(min_length=1, max_length=3)] | None = ["pdf", "xlsx"]

    @model_validator(mode="after")
    def _source(self) -> ReportIn:
        try:
            self.params = checked_params(self.source, self.params or {})
        except SourceError as exc:
            raise ValueError(str(exc)) from None
        return self


class ReportPatch(ReportFields):
    """Changes to a definition (the source stays; params are checked against it)."""

    name: Name | None = None


class ScheduleFields(BaseModel):
    """A cron expression (five fields) read in an IANA time zone."""

    model_config = ConfigDict(extra="forbid")
    cron: Annotated[str, StringConstraints(max_length=100)] | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None
    enabled: bool | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        try:
            return None if value is None else checked_cron(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        try:
            return None if value is None else checked_zone(value).key
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None


class ScheduleIn(ScheduleFields):
    """A new schedule; the time zone defaults to UTC."""

    cron: Annotated[str, StringConstraints(max_length=100)]
    timezone: Annotated[str, StringConstraints(max_length=64)] = "UTC"


HostKey = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class SftpIn(BaseModel):
    """An SFTP folder to drop files into; the password or private key is stored sealed."""

    model_config = ConfigDict(extra="forbid")
    host: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-:\[\]]{1,255}$")]
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._\-@]{1,128}$")]
    host_keys: Annotated[list[HostKey], Field(min_length=1, max_length=10)]
    folder: Annotated[str, StringConstraints(min_length=1, max_length=255)] = "reports"
    password: SecretStr | None = None
    private_key: SecretStr | None = None
    passphrase: SecretStr | None = None

    @field_validator("host_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        if any(_CONTROL.search(key) for key in value):
            raise ValueError("host keys are single lines")
        return value

    def secrets(self) -> dict[str, str]:
        """The credentials to seal."""
        found = {
            "password": self.password,
            "private_key": self.private_key,
            "passphrase": self.passphrase,
        }
        return {k: v.get_secret_value() for k, v in found.items() if v is not None}

    def target(self) -> SftpTarget:
        """Where the files go, checked like the SFTP client will use it."""
        target = SftpTarget(
            host=self.host,
            username=self.username,
            host_keys=tuple(self.host_keys),
            port=self.port,
            folder=self.folder,
        )
        try:
            target.config(self.secrets())
        except SftpConfigError as exc:
            # The SFTP module's messages name the rule, never the value.
            raise ValueError(str(exc)) from None
        return target


class RecipientIn(BaseModel):
    """Who gets the report: an e-mail address or user, a webhook endpoint, or an SFTP folder.

    ``site_id`` limits the copy to one site's rows; without it, the user's site applies (a user
    of every site, or a plain address, gets every site).
    """

    model_config = ConfigDict(extra="forbid")
    kind: RecipientKind
    address: EmailStr | None = None
    user_id: int | None = None
    webhook_id: int | None = None
    sftp: SftpIn | None = None
    site_id: int | None = None
    active: bool = True

    @model_validator(mode="after")
    def _shape(self) -> RecipientIn:
        if self.kind is RecipientKind.EMAIL:
            if self.webhook_id is not None or self.sftp is not None:
                raise ValueError("an e-mail recipient has an address or a user only")
            if self.address is None and self.user_id is None:
                raise ValueError("an e-mail recipient needs an address or a user_id")
        elif self.kind is RecipientKind.WEBHOOK:
            if self.webhook_id is None or self.address or self.sftp is not None:
                raise ValueError("a webhook recipient names webhook_id only")
        elif self.sftp is None or self.address or self.webhook_id is not None:
            raise ValueError("an sftp recipient needs sftp settings only")
        if self.sftp is not None:
            self.sftp.target()
        return self


class RecipientPatch(BaseModel):
    """Pause, resume or re-scope a recipient."""

    model_config = ConfigDict(extra="forbid")
    active: bool | None = None
    site_id: int | None = None


# --- responses -------------------------------------------------------------------------------


class ScheduleOut(BaseModel):
    """A schedule."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    definition_id: int
    cron: str
    timezone: str
    enabled: bool
    next_run_at: dt.datetime | None
    last_run_at: dt.datetime | None


class RecipientOut(BaseModel):
    """A recipient (credentials are never shown)."""

    id: int
    definition_id: int
    kind: RecipientKind
    address: str | None
    user_id: int | None
    webhook_id: int | None
    sftp: dict[str, Any] | None
    has_credentials: bool
    site_id: int | None
    active: bool


class ReportOut(BaseModel):
    """A definition with its schedules and recipients."""

    id: int
    name: str
    description: str
    source: str
    params: dict[str, Any]
    formats: list[str]
    skip_when_empty: bool
    owner_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    schedules: list[ScheduleOut]
    recipients: list[RecipientOut]


class RunOut(BaseModel):
    """One run: when, why, how it went, what went where."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    definition_id: int
    schedule_id: int | None
    trigger: RunTrigger
    scheduled_for: dt.datetime
    status: RunStatus
    attempts: int
    next_attempt_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    recipients: list[dict[str, Any]]
    size_bytes: int
    error: str | None
    created_at: dt.datetime


class OutputOut(BaseModel):
    """A file a run produced for one recipient scope; ``download`` is None when it was not kept."""

    id: int
    run_id: int
    scope_label: str
    site_ids: list[int] | None
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    kept: bool
    not_kept_reason: str | None
    created_at: dt.datetime
    download: str | None


def output_out(row: ReportOutput) -> OutputOut:
    """A kept file as the API lists it."""
    kept = row.not_kept_reason is None
    return OutputOut(
        id=row.id,
        run_id=row.run_id,
        scope_label=row.scope_label,
        site_ids=row.site_ids,
        filename=row.filename,
        media_type=row.media_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        kept=kept,
        not_kept_reason=row.not_kept_reason,
        created_at=row.created_at,
        download=f"/api/v1/reports/runs/{row.run_id}/outputs/{row.id}" if kept else None,
    )


class SourceOut(BaseModel):
    """A report source and the periods it can cover."""

    name: str
    title: str
    periods: list[str]


def _recipient_out(recipient: ReportRecipient) -> RecipientOut:
    return RecipientOut(
        id=recipient.id,
        definition_id=recipient.definition_id,
        kind=recipient.kind,
        address=recipient.address,
        user_id=recipient.user_id,
        webhook_id=recipient.webhook_id,
        sftp=recipient.sftp,
        has_credentials=recipient.secrets is not None,
        site_id=recipient.site_id,
        active=recipient.active,
    )


def _report_out(db: Session, definition: ReportDefinition) -> ReportOut:
    schedules = db.scalars(
        select(ReportSchedule)
        .where(ReportSchedule.definition_id == definition.id)
        .order_by(ReportSchedule.id)
    ).all()
    recipients = db.scalars(
        select(ReportRecipient)
        .where(ReportRecipient.definition_id == definition.id)
        .order_by(ReportRecipient.id)
    ).all()
    return ReportOut(
        id=definition.id,
        name=definition.name,
        description=definition.description,
        source=definition.source,
        params=definition.params,
        formats=definition.formats,
        skip_when_empty=definition.skip_when_empty,
        owner_id=definition.owner_id,
        created_at=definition.created_at,
        updated_at=definition.updated_at,
        schedules=[ScheduleOut.model_validate(s) for s in schedules],
        recipients=[_recipient_out(r) for r in recipients],
    )


# --- helpers ---------------------------------------------------------------------------------


def _definition(db: Session, report_id: int) -> ReportDefinition:
    definition = db.get(ReportDefinition, report_id)
    if definition is None:
        raise Problem(404, f"report {report_id} does not exist")
    return definition


def _changeable(user: User, definition: ReportDefinition) -> None:
    if user.site_id is not None and definition.owner_id != user.id:
        raise Problem(403, "users of one site change only the reports they own")


def _name_free(db: Session, name: str, except_id: int | None = None) -> None:
    taken = db.scalar(select(ReportDefinition.id).where(ReportDefinition.name == name))
    if taken is not None and taken != except_id:
        raise Problem(409, "a report with this name exists already", title="Conflict")


def _readable(db: Session, user: User, source: str, params: dict[str, Any]) -> None:
    # A saved question must not read cubes its author may not read: reports go to others.
    if source == DashboardReport.name:
        dashboard = db.get(Dashboard, params.get("dashboard_id"))
        if dashboard is None or not may_view(dashboard.owner_id, dashboard.shared_roles, user):
            raise Problem(
                422, "params.dashboard_id names no dashboard you may open", title="Invalid request"
            )
        return
    if source != SavedQuery.name:
        return
    try:
        check_query(params.get("query"), user.permissions, site_scope(user))
    except QueryNotAllowed as exc:
        raise Problem(403, str(exc)) from None
    except SourceError as exc:
        raise Problem(422, str(exc), title="Invalid request") from None


def _box(request: Request) -> CredentialBox:
    box: CredentialBox | None = request.app.state.credential_box
    if box is None:
        raise Problem(409, "SFTP credentials need a credentials key (MAINTAINPRO_CREDENTIALS_KEY)")
    return box


def _site_for(db: Session, user: User, site_id: int | None) -> int | None:
    if site_id is not None and db.get(Site, site_id) is None:
        raise Problem(422, "site_id names no site", title="Invalid request")
    if user.site_id is None:
        return site_id
    if site_id is not None and site_id != user.site_id:
        raise Problem(403, "users of one site send reports of their own site only")
    return user.site_id


# --- sources and definitions -----------------------------------------------------------------


@router.get("/report-sources", dependencies=[Reader])
def list_sources() -> list[SourceOut]:
    """The built-in reports a definition can use."""
    periods = [p.value for p in PeriodName]
    return [
        SourceOut(name=s.name, title=s.title, periods=periods) for s in built_in_sources().values()
    ]


@router.get("/reports", dependencies=[Reader])
def list_reports(db: SessionDep, page: WindowDep) -> Page[ReportOut]:
    """Every report definition, by name."""
    rows = db.scalars(
        select(ReportDefinition)
        .order_by(ReportDefinition.name)
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(ReportDefinition)) or 0
    return Page[ReportOut](
        items=[_report_out(db, d) for d in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/reports", status_code=status.HTTP_201_CREATED)
def create_report(db: SessionDep, user: Writer, body: ReportIn) -> ReportOut:
    """Define a report; schedules and recipients are added to it afterwards."""
    _name_free(db, body.name)
    _readable(db, user, body.source, body.params or {})
    definition = ReportDefinition(
        name=body.name,
        description=body.description or "",
        source=body.source,
        params=body.params or {},
        formats=list(body.formats or ["pdf", "xlsx"]),
        skip_when_empty=bool(body.skip_when_empty),
        owner_id=user.id,
    )
    db.add(definition)
    db.commit()
    return _report_out(db, definition)


@router.get("/reports/{report_id}", dependencies=[Reader])
def get_report(db: SessionDep, report_id: int) -> ReportOut:
    """One definition with its schedules and recipients."""
    return _report_out(db, _definition(db, report_id))


@router.patch("/reports/{report_id}")
def update_report(db: SessionDep, user: Writer, report_id: int, body: ReportPatch) -> ReportOut:
    """Rename a definition or change its params, formats or skip-when-empty."""
    definition = _definition(db, report_id)
    _changeable(user, definition)
    if body.name is not None:
        _name_free(db, body.name, except_id=definition.id)
        definition.name = body.name
    if body.description is not None:
        definition.description = body.description
    if body.params is not None:
        try:
            definition.params = checked_params(definition.source, body.params)
        except SourceError as exc:
            raise Problem(422, str(exc), title="Invalid request") from None
        _readable(db, user, definition.source, definition.params)
    if body.formats is not None:
        definition.formats = list(body.formats)
    if body.skip_when_empty is not None:
        definition.skip_when_empty = body.skip_when_empty
    db.commit()
    return _report_out(db, definition)


@router.delete("/reports/{report_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_report(db: SessionDep, user: Writer, report_id: int) -> Response:
    """Remove a definition with its schedules, recipients and run history."""
    definition = _definition(db, report_id)
    _changeable(user, definition)
    db.delete(definition)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- schedules -------------------------------------------------------------------------------


@router.post("/reports/{report_id}/schedules", status_code=status.HTTP_201_CREATED)
def add_schedule(db: SessionDep, user: Writer, report_id: int, body: ScheduleIn) -> ScheduleOut:
    """Run the report on a cron schedule in a time zone; it first fires at the next match."""
    definition = _definition(db, report_id)
    _changeable(user, definition)
    enabled = body.enabled is not False
    schedule = ReportSchedule(
        definition_id=definition.id,
        cron=body.cron,
        timezone=body.timezone,
        enabled=enabled,
        next_run_at=first_fire(body.cron, body.timezone, utcnow()) if enabled else None,
    )
    db.add(schedule)
    db.commit()
    return ScheduleOut.model_validate(schedule)


def _schedule(db: Session, schedule_id: int) -> ReportSchedule:
    schedule = db.get(ReportSchedule, schedule_id)
    if schedule is None:
        raise Problem(404, f"report schedule {schedule_id} does not exist")
    return schedule


@router.patch("/report-schedules/{schedule_id}")
def update_schedule(
    db: SessionDep, user: Writer, schedule_id: int, body: ScheduleFields
) -> ScheduleOut:
    """Change the cron expression or zone, or pause and resume; the next run is worked out
    afresh (a resumed schedule does not catch up on the time it was paused)."""
    schedule = _schedule(db, schedule_id)
    _changeable(user, _definition(db, schedule.definition_id))
    if body.cron is not None:
        schedule.cron = body.cron
    if body.timezone is not None:
        schedule.timezone = body.timezone
    if body.enabled is not None:
        schedule.enabled = body.enabled
    schedule.next_run_at = (
        first_fire(schedule.cron, schedule.timezone, utcnow()) if schedule.enabled else None
    )
    db.commit()
    return ScheduleOut.model_validate(schedule)


@router.delete("/report-schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_schedule(db: SessionDep, user: Writer, schedule_id: int) -> Response:
    """Remove a schedule (its runs stay in the log)."""
    schedule = _schedule(db, schedule_id)
    _changeable(user, _definition(db, schedule.definition_id))
    db.delete(schedule)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- recipients ------------------------------------------------------------------------------


@router.post("/reports/{report_id}/recipients", status_code=status.HTTP_201_CREATED)
def add_recipient(
    request: Request, db: SessionDep, user: Writer, report_id: int, body: RecipientIn
) -> RecipientOut:
    """Send the report to someone; a site-bound caller's recipients get that site only."""
    definition = _definition(db, report_id)
    _changeable(user, definition)
    if body.user_id is not None:
        person = db.get(User, body.user_id)
        if person is None:
            raise Problem(422, "user_id names no user", title="Invalid request")
        if body.address is None and not person.email:
            raise Problem(422, "that user has no e-mail address", title="Invalid request")
    if body.webhook_id is not None and db.get(WebhookEndpoint, body.webhook_id) is None:
        raise Problem(422, "webhook_id names no webhook endpoint", title="Invalid request")
    recipient = ReportRecipient(
        definition_id=definition.id,
        kind=body.kind,
        address=str(body.address) if body.address is not None else None,
        user_id=body.user_id,
        webhook_id=body.webhook_id,
        site_id=_site_for(db, user, body.site_id),
        active=body.active,
    )
    if body.sftp is not None:
        recipient.sftp = body.sftp.target().as_json()
        secrets = body.sftp.secrets()
        recipient.secrets = _box(request).seal(secrets) if secrets else None
    db.add(recipient)
    db.commit()
    return _recipient_out(recipient)


def _recipient(db: Session, recipient_id: int) -> ReportRecipient:
    recipient = db.get(ReportRecipient, recipient_id)
    if recipient is None:
        raise Problem(404, f"report recipient {recipient_id} does not exist")
    return recipient


@router.patch("/report-recipients/{recipient_id}")
def update_recipient(
    db: SessionDep, user: Writer, recipient_id: int, body: RecipientPatch
) -> RecipientOut:
    """Pause or resume a recipient, or change its site filter."""
    recipient = _recipient(db, recipient_id)
    _changeable(user, _definition(db, recipient.definition_id))
    if body.active is not None:
        recipient.active = body.active
    if "site_id" in body.model_fields_set:
        recipient.site_id = _site_for(db, user, body.site_id)
    db.commit()
    return _recipient_out(recipient)


@router.delete("/report-recipients/{recipient_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_recipient(db: SessionDep, user: Writer, recipient_id: int) -> Response:
    """Stop sending the report to a recipient."""
    recipient = _recipient(db, recipient_id)
    _changeable(user, _definition(db, recipient.definition_id))
    db.delete(recipient)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- runs ------------------------------------------------------------------------------------


@router.post("/reports/{report_id}/run-now", status_code=status.HTTP_201_CREATED)
def run_now(request: Request, db: SessionDep, user: Writer, report_id: int) -> RunOut:
    """Produce and send the report now, for the period ending today; returns the run.

    A delivery that fails is retried by the hub's report job like any scheduled run.
    """
    definition = _definition(db, report_id)
    _changeable(user, definition)
    db.rollback()  # the run is written by the report job's own sessions
    factory: sessionmaker[Session] = request.app.state.session_factory
    settings: Settings = request.app.state.settings
    jobs = ReportJobs(
        factory, settings, request.app.state.credential_box, ledger=access_ledger(request.app.state)
    )
    run_id = jobs.run_now(definition.id)
    run = db.get(ReportRun, run_id)
    assert run is not None
    return RunOut.model_validate(run)


@router.get("/report-runs", dependencies=[Reader])
def list_runs(
    db: SessionDep,
    page: WindowDep,
    status_: Annotated[RunStatus | None, Query(alias="status")] = None,
    report_id: int | None = None,
) -> Page[RunOut]:
    """The run log, newest first; e.g. ?status=failed for what needs attention."""
    stmt = select(ReportRun).order_by(ReportRun.created_at.desc(), ReportRun.id.desc())
    if status_ is not None:
        stmt = stmt.where(ReportRun.status == status_)
    if report_id is not None:
        stmt = stmt.where(ReportRun.definition_id == report_id)
    return list_page(db, stmt, page, RunOut)


@router.get("/report-runs/{run_id}", dependencies=[Reader])
def get_run(db: SessionDep, run_id: int) -> RunOut:
    """One run with what went to each recipient."""
    run = db.get(ReportRun, run_id)
    if run is None:
        raise Problem(404, f"report run {run_id} does not exist")
    return RunOut.model_validate(run)


def _run(db: Session, run_id: int) -> ReportRun:
    run = db.get(ReportRun, run_id)
    if run is None:
        raise Problem(404, f"report run {run_id} does not exist")
    return run


@router.get("/reports/runs/{run_id}/outputs")
def list_outputs(db: SessionDep, user: ReaderUser, run_id: int) -> list[OutputOut]:
    """The files the run produced that the caller may download (their sites' copies only)."""
    _run(db, run_id)
    return [output_out(row) for row in visible_outputs(db, run_id, site_scope(user))]


@router.get("/reports/runs/{run_id}/outputs/{output_id}")
def download_output(
    request: Request, db: SessionDep, user: ReaderUser, run_id: int, output_id: int
) -> Response:
    """One kept file, as a download; 404 for a file of sites the caller may not see."""
    download = fetch_download(
        db, access_ledger(request.app.state), user, run_id, output_id, via="api"
    )
    if download.content is None or download.output is None:
        raise Problem(404, download.reason)
    return Response(
        download.content,
        media_type=download.output.media_type,
        headers=download_headers(download.output.filename),
    )
