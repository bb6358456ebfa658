"""`maintainpro reports ...`: scheduled reports from the terminal: list, preview, run, the log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from maintainpro.analytics.reports.data import SourceError
from maintainpro.analytics.reports.records import (
    ReportDefinition,
    ReportRun,
    ReportSchedule,
    RunStatus,
)
from maintainpro.analytics.reports.runner import ReportJobs, preview
from maintainpro.cli.context import cli_settings, fail, session_factory
from maintainpro.config import ConfigurationError, Settings
from maintainpro.core.assets import Site
from maintainpro.core.db import utcnow
from maintainpro.iot.credentials import CredentialBox, credential_box

reports_app = typer.Typer(
    help="Scheduled reports: list, preview, run now, the run log.", no_args_is_help=True
)
out = Console()


def _moment(text: str | None) -> dt.datetime:
    if text is None:
        return utcnow()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise fail("--at must be a time such as 2026-03-01T06:00+01:00") from None
    if moment.tzinfo is None:
        raise fail("--at needs an offset (e.g. +01:00 or Z)")
    return moment.astimezone(dt.UTC)


def _when(moment: dt.datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


@reports_app.command("list")
def list_command() -> None:
    """Every report with its source, formats and schedules."""
    factory = session_factory(cli_settings())
    table = Table("id", "name", "source", "formats", "schedules (next run)")
    with factory() as session:
        for definition in session.scalars(select(ReportDefinition).order_by(ReportDefinition.id)):
            schedules = session.scalars(
                select(ReportSchedule).where(ReportSchedule.definition_id == definition.id)
            ).all()
            plans = "; ".join(
                f"{s.cron} {s.timezone} ({_when(s.next_run_at) if s.enabled else 'paused'})"
                for s in schedules
            )
            table.add_row(
                str(definition.id),
                definition.name,
                definition.source,
                ", ".join(definition.formats),
                plans or "-",
            )
    out.print(table)


@reports_app.command("preview")
def preview_command(
    report_id: Annotated[int, typer.Argument(help="the report's id")],
    folder: Annotated[Path, typer.Option("--out", help="folder to write the files to")],
    site: Annotated[str | None, typer.Option("--site", help="one site's copy (site code)")] = None,
    at: Annotated[str | None, typer.Option("--at", help="as if run then (ISO time)")] = None,
) -> None:
    """Write the files a run would send, without sending or recording anything."""
    settings = cli_settings()
    factory = session_factory(settings)
    with factory() as session:
        definition = session.get(ReportDefinition, report_id)
        if definition is None:
            raise fail(f"report {report_id} does not exist")
        scope = None
        if site is not None:
            site_id = session.scalar(select(Site.id).where(Site.code == site))
            if site_id is None:
                raise fail("no site has that code")
            scope = frozenset({site_id})
        try:
            data, files = preview(session, settings, definition, _moment(at), scope)
        except SourceError as exc:
            raise fail(str(exc)) from exc
    folder.mkdir(parents=True, exist_ok=True)
    for produced in files:
        (folder / produced.filename).write_bytes(produced.content)
        out.print(f"{folder / produced.filename} ({len(produced.content):,} bytes)")
    if data.is_empty:
        out.print("[yellow]the report has no rows for this period[/]")


@reports_app.command("run")
def run_command(report_id: Annotated[int, typer.Argument(help="the report's id")]) -> None:
    """Produce and send a report now to all its recipients."""
    settings = cli_settings()
    factory = session_factory(settings)
    try:
        run_id = ReportJobs(factory, settings, _box(settings)).run_now(report_id)
    except LookupError as exc:
        raise fail(str(exc)) from exc
    with factory() as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        out.print(f"run {run.id}: {run.status.value}, {run.size_bytes:,} bytes")
        for entry in run.recipients:
            out.print(f"  {entry['target']}: {entry['status']} {entry.get('error') or ''}")
        if run.status not in (RunStatus.SUCCEEDED, RunStatus.SKIPPED):
            raise typer.Exit(code=1)


@reports_app.command("tick")
def tick_command() -> None:
    """Queue due (and missed) runs and execute every ready one, once (for cron or systemd)."""
    settings = cli_settings()
    jobs = ReportJobs(session_factory(settings), settings, _box(settings))
    queued = jobs.catch_up()
    executed = jobs.run_ready()
    out.print(f"{len(queued)} run(s) queued, {len(executed)} executed")


@reports_app.command("runs")
def runs_command(
    status: Annotated[RunStatus | None, typer.Option("--status", help="only this status")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
) -> None:
    """The newest runs: when, status, attempts, bytes, and why a run failed."""
    factory = session_factory(cli_settings())
    table = Table(
        "run", "report", "trigger", "scheduled for", "status", "attempts", "bytes", "error"
    )
    with factory() as session:
        stmt = select(ReportRun).order_by(ReportRun.id.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(ReportRun.status == status)
        for run in session.scalars(stmt):
            table.add_row(
                str(run.id),
                str(run.definition_id),
                run.trigger.value,
                _when(run.scheduled_for),
                run.status.value,
                str(run.attempts),
                f"{run.size_bytes:,}",
                (run.error or "")[:80],
            )
    out.print(table)


def _box(settings: Settings) -> CredentialBox | None:
    """The credentials box for webhook and SFTP secrets, when a key is configured."""
    try:
        return credential_box(settings)
    except ConfigurationError:
        return None
