"""`maintainpro warehouse ...`: build and refresh the analytics warehouse."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from maintainpro.analytics.jobs import ALL_JOBS
from maintainpro.analytics.kpis import asset_kpis
from maintainpro.analytics.refresh import (
    POSTGRES_SUFFIX,
    Store,
    configured_stores,
    refresh_warehouse,
)
from maintainpro.analytics.warehouse import (
    RunRecord,
    WarehouseError,
    open_read_only,
    read_runs,
    warehouse_file,
)
from maintainpro.analytics.warehouse_pg import PostgresWarehouse, where_is
from maintainpro.cli.context import cli_settings, fail
from maintainpro.config import Settings
from maintainpro.core.db import build_engine

warehouse_app = typer.Typer(help="Analytics warehouse: ETL runs, datasets.", no_args_is_help=True)
out = Console()


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


class Target(StrEnum):
    """Which warehouse store a command works on."""

    DUCKDB = "duckdb"
    POSTGRES = "postgres"
    ALL = "all"


def _stores(settings: Settings, target: Target | None) -> tuple[Store, ...]:
    """The stores a --target names (none given: DuckDB, and PostgreSQL when configured)."""
    if target is None:
        return configured_stores(settings)
    if target is Target.DUCKDB:
        return ("duckdb",)
    if not settings.warehouse_postgres_url:
        raise fail(
            f"--target {target.value} needs warehouse_postgres_url "
            "(MAINTAINPRO_WAREHOUSE_POSTGRES_URL)"
        )
    return ("postgres",) if target is Target.POSTGRES else ("duckdb", "postgres")


TARGET_HELP = (
    "duckdb, postgres or all; default: DuckDB, and PostgreSQL when warehouse_postgres_url is set."
)


@warehouse_app.command("build")
def build_command(
    full: Annotated[
        bool, typer.Option("--full", help="Reload everything instead of from the watermarks.")
    ] = False,
    job: Annotated[
        list[str] | None, typer.Option("--job", help="Run only this job (repeatable).")
    ] = None,
    target: Annotated[Target | None, typer.Option("--target", help=TARGET_HELP)] = None,
) -> None:
    """Load the warehouse from the operational database (incremental unless --full)."""
    settings = cli_settings()
    stores = _stores(settings, target)
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
            names = [j.name for j in jobs] if "duckdb" in stores else []
            names += [j.name + POSTGRES_SUFFIX for j in jobs] if "postgres" in stores else []
            tasks = {n: progress.add_task(n, total=1, status="waiting") for n in names}
            cubes = None
            if "duckdb" in stores:
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

            outcome = refresh_warehouse(
                engine, settings, full=full, jobs=jobs, progress=report, stores=stores
            )
            broken = outcome.failed_cubes
            if cubes is not None:
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
    problems: list[str] = []
    if "duckdb" in stores:
        failed = outcome.failed_jobs
        out.print(f"warehouse {path}: {len(outcome.records) - len(failed)} job(s) completed")
        if failed:
            problems.append(f"{len(failed)} job(s) failed: {', '.join(failed)}")
    if "postgres" in stores and settings.warehouse_postgres_url:
        where = where_is(settings.warehouse_postgres_url, settings.warehouse_schema)
        if outcome.postgres_error is not None:
            problems.append(f"PostgreSQL warehouse {where} not loaded: {outcome.postgres_error}")
        else:
            failed = outcome.failed_postgres_jobs
            done = len(outcome.postgres_records) - len(failed)
            out.print(f"warehouse {where}: {done} job(s) completed")
            if failed:
                problems.append(f"{len(failed)} PostgreSQL job(s) failed: {', '.join(failed)}")
    if problems:
        raise fail("; ".join(problems))


@warehouse_app.command("runs")
def runs_command(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many runs.")] = 20,
    job: Annotated[str | None, typer.Option(help="Only this job.")] = None,
    target: Annotated[Target | None, typer.Option("--target", help=TARGET_HELP)] = None,
) -> None:
    """The latest ETL runs of each store: window, rows in and out, duration, status, error."""
    settings = cli_settings()
    stores = _stores(settings, target)
    if "duckdb" in stores:
        try:
            connection = open_read_only(settings)
        except WarehouseError as exc:
            raise fail(str(exc)) from exc
        try:
            records = read_runs(connection, limit=limit, job=job)
        finally:
            connection.close()
        out.print(_runs_table("Warehouse runs (newest first)", records))
    url = settings.warehouse_postgres_url
    if "postgres" in stores and url:
        where = where_is(url, settings.warehouse_schema)
        try:
            with PostgresWarehouse(url, settings.warehouse_schema) as store:
                records = store.recent_runs(limit=limit, job=job)
        except (WarehouseError, psycopg.Error) as exc:
            raise fail(f"the PostgreSQL warehouse {where} cannot be read: {exc}") from exc
        out.print(_runs_table(f"PostgreSQL warehouse runs, {where} (newest first)", records))


def _runs_table(title: str, records: list[RunRecord]) -> Table:
    table = Table(title=title)
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
    return table


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
