"""`maintainpro exports ...`: warehouse files, the data lake, schedules and BI connection files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from deltalake.exceptions import TableNotFoundError
from rich.console import Console
from rich.table import Table

from maintainpro.analytics.exports.connection_files import connection_file, parse_tool
from maintainpro.analytics.exports.datasets import Dataset, UnknownDataset, get_dataset
from maintainpro.analytics.exports.formats import FileFormat, parse_format
from maintainpro.analytics.exports.hyper import HyperUnavailable
from maintainpro.analytics.exports.lake import LakeError, delta_history
from maintainpro.analytics.exports.runs import export_file, export_lake
from maintainpro.analytics.exports.schedules import (
    ScheduleError,
    exports_dir,
    is_due,
    load_definitions,
    load_state,
    run_definitions,
    schedule_file,
)
from maintainpro.analytics.exports.tabular import ExportTooLarge
from maintainpro.analytics.lineage import Lineage, lineage_for
from maintainpro.analytics.odata.model import entity_sets
from maintainpro.analytics.warehouse import WarehouseError, open_read_only, warehouse_file
from maintainpro.cli.context import cli_settings, fail
from maintainpro.config import Settings

exports_app = typer.Typer(
    help="Warehouse exports: files, data lake, schedules, BI connection files.",
    no_args_is_help=True,
)
out = Console()
LAKE_DIR = "lake"


def _dataset(name: str) -> Dataset:
    try:
        return get_dataset(name)
    except UnknownDataset as exc:
        raise fail(f"{exc}: see `maintainpro exports datasets`") from exc


@contextmanager
def _warehouse(settings: Settings) -> Iterator[tuple[duckdb.DuckDBPyConnection, Lineage]]:
    try:
        connection = open_read_only(settings)
    except (WarehouseError, duckdb.Error) as exc:
        raise fail(str(exc)) from exc
    try:
        yield connection, lineage_for(settings, warehouse_file(settings))
    finally:
        connection.close()


def _scope(sites: list[int] | None) -> frozenset[int] | None:
    return frozenset(sites) if sites else None


@exports_app.command("datasets")
def datasets_command() -> None:
    """List the exportable datasets (the OData feed's entity sets)."""
    from maintainpro.analytics.exports.datasets import datasets

    table = Table("dataset", "dated", "site rule", "description")
    for dataset in datasets().values():
        rule = dataset.site_rule
        kind = (
            "shared" if rule.shared else "every site only" if rule.unrestricted_only else "by site"
        )
        table.add_row(
            dataset.name, "yes" if dataset.partitioned else "", kind, dataset.table.description
        )
    out.print(table)


@exports_app.command("file")
def file_command(
    dataset: Annotated[str, typer.Argument(help="dataset name, e.g. fact_work_order")],
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="hyper, qvd, parquet, csv or xlsx")],
    output: Annotated[Path, typer.Option("--out", help="file to write")],
    site: Annotated[
        list[int] | None, typer.Option("--site", help="only this site's rows (repeatable)")
    ] = None,
    since: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="only the days from this one"),
    ] = None,
) -> None:
    """Write one dataset to one file now."""
    chosen = parse_format(fmt)
    if chosen is None:
        raise fail(f"unknown format; use one of {', '.join(f.value for f in FileFormat)}")
    found = _dataset(dataset)
    settings = cli_settings()
    with _warehouse(settings) as (connection, lineage):
        try:
            result = export_file(
                connection,
                found,
                chosen,
                output,
                lineage,
                scope=_scope(site),
                since=since.date() if since else None,
            )
        except (HyperUnavailable, ExportTooLarge, ValueError, OSError) as exc:
            raise fail(str(exc)) from exc
    out.print(f"wrote {result.rows:,} rows to [bold]{output}[/] ({result.size:,} bytes)")


@exports_app.command("lake")
def lake_command(
    dataset: Annotated[str, typer.Argument(help="dataset name, e.g. fact_sensor_hour")],
    delta: Annotated[bool, typer.Option("--delta", help="write a Delta table version")] = False,
    since: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="replace only the days from this one"),
    ] = None,
    lake: Annotated[
        Path | None, typer.Option("--lake", help="lake root (default: <exports>/lake)")
    ] = None,
) -> None:
    """Write a dataset to the data lake (Hive-partitioned Parquet, or Delta with --delta)."""
    found = _dataset(dataset)
    settings = cli_settings()
    root = lake or exports_dir(settings) / LAKE_DIR
    with _warehouse(settings) as (connection, lineage):
        try:
            result = export_lake(
                connection,
                found,
                root,
                lineage,
                delta=delta,
                since=since.date() if since else None,
            )
        except (LakeError, ValueError, OSError) as exc:
            raise fail(str(exc)) from exc
    written = result.lake
    detail = ""
    if written is not None and written.version is not None:
        detail = f", Delta version {written.version}"
    elif written is not None and written.days:
        detail = f", {len(written.days)} day(s) replaced"
    out.print(f"wrote {result.rows:,} rows of {found.name} to [bold]{root}[/]{detail}")


@exports_app.command("delta-history")
def delta_history_command(
    dataset: Annotated[str, typer.Argument(help="dataset name")],
    lake: Annotated[
        Path | None, typer.Option("--lake", help="lake root (default: <exports>/lake)")
    ] = None,
) -> None:
    """Show the versions of a dataset's Delta table (for time travel)."""
    found = _dataset(dataset)
    root = lake or exports_dir(cli_settings()) / LAKE_DIR
    try:
        history = delta_history(root, found)
    except TableNotFoundError as exc:
        raise fail(f"no Delta table for {found.name} under {root}: {exc}") from exc
    table = Table("version", "time (UTC)", "operation", "rows added")
    for commit in history:
        stamp = commit.get("timestamp")
        when = (
            dt.datetime.fromtimestamp(stamp / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            if isinstance(stamp, int | float)
            else "-"
        )
        metrics = commit.get("operationMetrics")
        added = metrics.get("num_added_rows", "-") if isinstance(metrics, dict) else "-"
        table.add_row(str(commit.get("version")), when, str(commit.get("operation")), str(added))
    out.print(table)


@exports_app.command("list")
def list_command() -> None:
    """Show the scheduled exports, their last run and whether they are due."""
    settings = cli_settings()
    try:
        definitions = load_definitions(schedule_file(settings))
    except ScheduleError as exc:
        raise fail(str(exc)) from exc
    if not definitions:
        out.print(f"no scheduled exports ({schedule_file(settings)} is missing or empty)")
        return
    state = load_state(exports_dir(settings))
    now = dt.datetime.now(dt.UTC)
    table = Table("name", "dataset", "format", "cron", "sites", "last run", "status", "due")
    for d in definitions:
        last = state.get(d.name)
        table.add_row(
            d.name,
            d.dataset,
            d.format.value,
            d.cron,
            "all" if d.sites is None else ", ".join(map(str, d.sites)),
            last.last_run_at.strftime("%Y-%m-%d %H:%M") if last else "never",
            (last.status + (f": {last.error}" if last.error else "")) if last else "-",
            "yes" if is_due(d, last, now) else "",
        )
    out.print(table)


@exports_app.command("run")
def run_command(
    names: Annotated[
        list[str] | None, typer.Argument(help="definitions to run now (default: the due ones)")
    ] = None,
) -> None:
    """Run scheduled exports now: the named ones, or every one that is due."""
    settings = cli_settings()
    try:
        definitions = load_definitions(schedule_file(settings))
    except ScheduleError as exc:
        raise fail(str(exc)) from exc
    if names:
        known = {d.name for d in definitions}
        unknown = sorted(set(names) - known)
        if unknown:
            raise fail(f"no scheduled export named {', '.join(unknown)}")
        definitions = [d for d in definitions if d.name in names]
    with _warehouse(settings) as (connection, lineage):
        ran = run_definitions(
            connection, definitions, exports_dir(settings), lineage, due_only=not names
        )
    if not ran:
        out.print("nothing was due")
    for name, state in ran.items():
        if state.status == "completed":
            out.print(f"[green]{name}[/]: {state.rows:,} rows")
        else:
            out.print(f"[red]{name}[/]: {state.error}")
    if any(s.status != "completed" for s in ran.values()):
        raise typer.Exit(code=1)


@exports_app.command("connection-file")
def connection_file_command(
    tool: Annotated[str, typer.Argument(help="powerbi, tableau or qlik")],
    table: Annotated[
        list[str] | None, typer.Option("--table", help="entity set to include (repeatable)")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="file to write")] = None,
) -> None:
    """Make a BI tool's connection file pointing at the OData feed (printed or written)."""
    chosen = parse_tool(tool)
    if chosen is None:
        raise fail("unknown tool; use powerbi, tableau or qlik")
    available = entity_sets()
    selected = list(available.values())
    if table:
        unknown = sorted(set(table) - set(available))
        if unknown:
            raise fail(f"unknown entity set(s): {', '.join(unknown)}")
        selected = [available[n] for n in dict.fromkeys(table)]
    made = connection_file(chosen, cli_settings().public_url, selected, one_table=bool(table))
    if output is None:
        print(made.text, end="")
        return
    output.write_text(made.text, encoding="utf-8")
    out.print(f"wrote [bold]{output}[/]")
