"""`maintainpro cubes ...`: refresh, query, describe and export the OLAP cubes."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer
from rich.console import Console
from rich.table import Table

from maintainpro.analytics.lineage import lineage_for
from maintainpro.analytics.semantic.export import FORMATS, export_pre_aggregations
from maintainpro.analytics.semantic.load import answer
from maintainpro.analytics.semantic.materialise import RefreshResult, refresh
from maintainpro.analytics.semantic.meta import meta
from maintainpro.analytics.semantic.model import (
    ModelError,
    SemanticModel,
    default_model,
    load_model_file,
)
from maintainpro.analytics.semantic.plan import Access
from maintainpro.analytics.semantic.query import QueryError
from maintainpro.analytics.warehouse import (
    DuckDbWarehouse,
    WarehouseError,
    open_read_only,
    warehouse_file,
)
from maintainpro.cli.context import cli_settings, fail

cubes_app = typer.Typer(
    help="OLAP cubes: pre-aggregations, Cube-style queries, the semantic model.",
    no_args_is_help=True,
)
out = Console()

ModelOption = Annotated[
    Path | None,
    typer.Option("--model", help="A semantic model YAML file instead of the one shipped."),
]


def _model(path: Path | None) -> SemanticModel:
    try:
        return load_model_file(path) if path is not None else default_model()
    except ModelError as exc:
        raise fail(str(exc)) from exc


def _show(result: RefreshResult) -> None:
    if result.status != "completed":
        out.print(f"[red]{result.name}: failed: {result.error}[/]")
        return
    out.print(
        f"{result.name}: {result.mode}, {len(result.refreshed)} of {result.partitions} "
        f"partition(s) recomputed, {result.rows:,} rows, {result.duration_s:.2f} s"
    )


@cubes_app.command("refresh")
def refresh_command(
    full: Annotated[bool, typer.Option("--full", help="Rebuild every table whole.")] = False,
    cube: Annotated[
        list[str] | None,
        typer.Option("--cube", help="Only this cube or Cube.preAggregation (repeatable)."),
    ] = None,
    model_path: ModelOption = None,
) -> None:
    """Build or refresh the pre-aggregations (only the partitions whose facts changed)."""
    settings = cli_settings()
    model = _model(model_path)
    path = warehouse_file(settings)
    if not path.exists():
        raise fail(f"no warehouse at {path}: run `maintainpro warehouse build` first")
    try:
        target = DuckDbWarehouse(path)
    except WarehouseError as exc:
        raise fail(str(exc)) from exc
    try:
        results = refresh(
            target.connection,
            model,
            lineage_for(settings, path),
            full=full,
            only=tuple(cube or ()),
            progress=_show,
        )
    finally:
        target.close()
    if cube and not results:
        raise fail("no pre-aggregation matches --cube")
    failed = [r for r in results if r.status != "completed"]
    if failed:
        raise fail(f"{len(failed)} pre-aggregation(s) failed: {', '.join(r.name for r in failed)}")


def _read_query(text: str | None, file: Path | None) -> Any:
    if (text is None) == (file is None):
        raise fail("give the query as an argument or with --file (- for standard input)")
    try:
        if file is not None:
            text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        assert text is not None
        raw = json.loads(text)
    except (OSError, ValueError) as exc:
        raise fail(f"the query is not readable JSON: {exc}") from exc
    return raw["query"] if isinstance(raw, dict) and set(raw) == {"query"} else raw


@cubes_app.command("query")
def query_command(
    query: Annotated[str | None, typer.Argument(help="The query as JSON.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the query from a file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print Cube's JSON response.")] = False,
    base: Annotated[
        bool, typer.Option("--base", help="Answer from the facts, not a pre-aggregation.")
    ] = False,
    model_path: ModelOption = None,
) -> None:
    """Answer a Cube-style query (every site; the CLI is an administrator's tool)."""
    raw = _read_query(query, file)
    settings = cli_settings()
    model = _model(model_path)
    try:
        connection = open_read_only(settings)
    except (WarehouseError, duckdb.Error) as exc:
        raise fail(str(exc)) from exc
    try:
        result = answer(
            connection,
            model,
            raw,
            Access.unrestricted(),
            today=dt.datetime.now(dt.UTC).date(),
            use_pre_aggregations=not base,
        )
    except QueryError as exc:
        raise fail(str(exc)) from exc
    finally:
        connection.close()
    if as_json:
        out.print_json(json.dumps(result.body))
        return
    rows = result.body["data"]
    table = Table(title=f"{result.cube}: {result.rows} row(s) from {result.source}")
    keys = list(rows[0]) if rows else []
    for key in keys:
        table.add_column(key)
    for row in rows:
        table.add_row(*("" if row[k] is None else str(row[k]) for k in keys))
    out.print(table)
    origin = result.body["answeredFrom"]
    out.print(origin.get("preAggregation") or f"base facts: {origin.get('reason')}")


@cubes_app.command("meta")
def meta_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the /meta JSON.")] = False,
    model_path: ModelOption = None,
) -> None:
    """The cubes: measures, dimensions, hierarchies and pre-aggregations."""
    document = meta(_model(model_path), Access.unrestricted())
    if as_json:
        out.print_json(json.dumps(document))
        return
    for cube in document["cubes"]:
        out.print(f"[bold]{cube['name']}[/] {cube['title']}")
        out.print("  measures:   " + ", ".join(m["name"] for m in cube["measures"]))
        out.print("  dimensions: " + ", ".join(d["name"] for d in cube["dimensions"]))
        for hierarchy in cube["hierarchies"]:
            out.print(f"  hierarchy {hierarchy['name']}: " + " > ".join(hierarchy["levels"]))
        for pre in cube["preAggregations"]:
            out.print(f"  pre-aggregation {pre['name']} ({pre['granularity']})")


@cubes_app.command("export")
def export_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the files to.")],
    fmt: Annotated[
        list[str] | None,
        typer.Option("--format", help=f"One of {', '.join(FORMATS)} (repeatable; default both)."),
    ] = None,
    cube: Annotated[
        list[str] | None, typer.Option("--cube", help="Only this cube or Cube.preAggregation.")
    ] = None,
    model_path: ModelOption = None,
) -> None:
    """Write the pre-aggregations as Parquet and Tableau .hyper files."""
    settings = cli_settings()
    model = _model(model_path)
    formats = tuple(fmt or FORMATS)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise fail(f"unknown format(s): {', '.join(unknown)}; use {', '.join(FORMATS)}")
    try:
        connection = open_read_only(settings)
    except (WarehouseError, duckdb.Error) as exc:
        raise fail(str(exc)) from exc
    path = warehouse_file(settings)
    try:
        files = export_pre_aggregations(
            connection,
            model,
            out_dir,
            lineage_for(settings, path),
            formats=formats,
            only=tuple(cube or ()),
        )
    finally:
        connection.close()
    for written in files:
        if written.skipped:
            out.print(f"[yellow]{written.table}.{written.format}: skipped: {written.skipped}[/]")
        else:
            out.print(f"{written.path}: {written.rows:,} rows")
