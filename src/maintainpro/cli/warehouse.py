"""`maintainpro warehouse ...`: build and refresh the analytics warehouse."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from maintainpro.analytics.jobs import ALL_JOBS
from maintainpro.analytics.kpis import asset_kpis
from maintainpro.analytics.refresh import refresh_warehouse
from maintainpro.analytics.warehouse import (
    RunRecord,
    WarehouseError,
    open_read_only,
    read_runs,
    warehouse_file,
)
from maintainpro.cli.context import cli_settings, fail
from maintainpro.core.db import build_engine

warehouse_app = typer.Typer(help="Analytics warehouse: ETL runs, datasets.", no_args_is_help=True)
out = Console()


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


@warehouse_app.command("build")
def build_command(
    full: Annotated[
        bool, typer.Option("--full", help="Reload everything instead of from the watermarks.")
    ] = False,
    job: Annotated[
        list[str] | None, typer.Option("--job", help="Run only this job (repeatable).")
    ] = None,
) -> None:
    """Load the warehouse from the operational database (incremental unless --full)."""
    settings = cli_settings()
    jobs = ALL_JOBS
    if job:
        known = {j.name: j for j in ALL_JOBS}
        unknown = sorted(set(job) - set(known))
        if unknown:
            raise fail(f"unknown job(s): {', '.join(unknown)}; known: {', '.join(known)}")
        jobs = tuple(j for j in ALL_JOBS if j.name in job)
    path = warehouse_file(settings)
    engine = build_engine(settings.database_url)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=out) as progress:
            tasks = {j.name: progress.add_task(j.name, total=1, status="waiting") for j in jobs}
            cubes = progress.add_task("cube pre-aggregations", total=1, status="waiting")

            def report(name: str, state: str, record: RunRecord) -> None:
                if state == "start":
                    progress.update(tasks[name], status=f"{record.mode}…")
                    return
                detail = (
                    f"{record.rows_out:,} rows written"
                    if state == "completed"
                    else f"[red]failed: {record.error}[/]"
                )
                progress.update(tasks[name], completed=1, status=detail)

            outcome = refresh_warehouse(engine, settings, full=full, jobs=jobs, progress=report)
            broken = outcome.failed_cubes
            progress.update(
                cubes,
                completed=1,
                status=f"{len(outcome.cubes) - len(broken)} refreshed"
                + (f", [red]{len(broken)} failed[/]" if broken else ""),
            )
    except WarehouseError as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    records = outcome.records
    failed = [r for r in records if r.status != "completed"]
    out.print(f"warehouse {path}: {len(records) - len(failed)} job(s) completed")
    if failed:
        raise fail(f"{len(failed)} job(s) failed: {', '.join(r.job for r in failed)}")


@warehouse_app.command("runs")
def runs_command(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many runs.")] = 20,
    job: Annotated[str | None, typer.Option(help="Only this job.")] = None,
) -> None:
    """The latest ETL runs: window, rows in and out, duration, status, error."""
    settings = cli_settings()
    try:
        connection = open_read_only(settings)
    except WarehouseError as exc:
        raise fail(str(exc)) from exc
    try:
        records = read_runs(connection, limit=limit, job=job)
    finally:
        connection.close()
    table = Table(title="Warehouse runs (newest first)")
    for name in ("started (UTC)", "job", "mode", "rows in", "rows out", "rejected", "s", "status"):
        table.add_column(name, justify="right" if name in {"rows in", "rows out", "s"} else "left")
    for r in records:
        status = r.status if r.error is None else f"{r.status}: {r.error}"
        table.add_row(
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.job,
            r.mode,
            f"{r.rows_in:,}",
            f"{r.rows_out:,}",
            f"{r.rows_rejected:,}",
            _number(r.duration_s, 2),
            status,
        )
    out.print(table)


@warehouse_app.command("kpis")
def kpis_command(
    asset: Annotated[str | None, typer.Option("--asset", help="Asset tag (code).")] = None,
) -> None:
    """Maintenance KPIs per asset over the loaded period."""
    settings = cli_settings()
    try:
        connection = open_read_only(settings)
    except WarehouseError as exc:
        raise fail(str(exc)) from exc
    try:
        rows = asset_kpis(connection, tag=asset)
    finally:
        connection.close()
    if asset is not None and not rows:
        raise fail(f"no KPIs for asset {asset!r}: unknown tag, or the warehouse is not built")
    table = Table(title=f"Maintenance KPIs ({settings.base_currency})")
    headers = (
        "asset",
        "site",
        "failures",
        "MTBF h",
        "MTTR h",
        "avail. %",
        "PM on time %",
        "backlog",
        "backlog age d",
        "cost",
        "parts wait h",
    )
    for header in headers:
        table.add_column(header, justify="left" if header in {"asset", "site"} else "right")
    for k in rows:
        table.add_row(
            k.tag,
            k.site_code,
            str(k.failures),
            _number(k.mtbf_hours),
            _number(k.mttr_hours),
            _number(None if k.availability is None else k.availability * 100),
            _number(None if k.pm_compliance is None else k.pm_compliance * 100),
            str(k.backlog_orders),
            _number(k.backlog_avg_age_days),
            f"{k.cost_base:,.2f}",
            _number(k.parts_waiting_hours),
        )
    out.print(table)
