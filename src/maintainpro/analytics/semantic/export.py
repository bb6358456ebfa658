"""Pre-aggregations written out as files: Parquet, and Tableau .hyper when the Hyper API is there.

The writers are the exports' own (``analytics.exports.parquet`` and ``.hyper``). Rows go out in
a fixed order (grouping set, partition, bucket, site, dimensions), so exporting the same table
twice gives the same file. A file appears only whole: it is written under a hidden name and
renamed into place. Each file is one OpenLineage run (START, then COMPLETE or FAIL).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
from openlineage.client.event_v2 import RunState

from maintainpro.analytics.exports.hyper import HyperUnavailable, write_hyper
from maintainpro.analytics.exports.parquet import write_parquet
from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.semantic.model import SemanticModel
from maintainpro.analytics.semantic.preaggs import BUCKET, GID, PARTITION, SITE, Layout, layouts
from maintainpro.analytics.semantic.refresh_lineage import export_event
from maintainpro.analytics.semantic.sql import quote
from maintainpro.analytics.warehouse import new_run_id

FORMATS: Final = ("parquet", "hyper")
BATCH_ROWS: Final = 65_536
Writer = Callable[[pa.RecordBatchReader, Path, str], int]
WRITERS: Final[dict[str, Writer]] = {"parquet": write_parquet, "hyper": write_hyper}
Clock = Callable[[], dt.datetime]


class NotBuilt(LookupError):
    """The pre-aggregation has not been refreshed yet, so there is nothing to export."""


@dataclass(frozen=True)
class ExportedFile:
    """One file written (or skipped, with the reason)."""

    table: str
    format: str
    path: Path
    rows: int = 0
    skipped: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _order(layout: Layout) -> str:
    keys = [GID, PARTITION]
    if layout.time is not None:
        keys.append(BUCKET)
    if layout.has_site:
        keys.append(SITE)
    keys += [quote(d.column) for d in layout.dimensions]
    return ", ".join(f"{k} NULLS FIRST" for k in keys)


def export_layout(
    connection: duckdb.DuckDBPyConnection,
    layout: Layout,
    fmt: str,
    directory: Path,
    lineage: Lineage,
    *,
    clock: Clock = _now,
) -> ExportedFile:
    """Write one pre-aggregation as one file in ``directory``; raises what the writer raised."""
    path = directory / f"{layout.table}.{fmt}"
    exists = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [layout.table]
    ).fetchall()
    if not exists[0][0]:
        raise NotBuilt(f"{layout.name} has not been built: run maintainpro cubes refresh")
    sql = f"SELECT * FROM {quote(layout.table)} ORDER BY {_order(layout)}"  # noqa: S608 - model name
    relation = connection.sql(sql)
    fields = [(str(n), str(t)) for n, t in zip(relation.columns, relation.types, strict=True)]
    run_id = new_run_id()
    target = str(path.resolve())
    lineage.emit(
        export_event(
            lineage, RunState.START, layout, run_id, target=target, fields=fields, at=clock()
        )
    )
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        rows = WRITERS[fmt](relation.to_arrow_reader(BATCH_ROWS), partial, layout.table)
        os.replace(partial, path)
    except Exception as exc:
        lineage.emit(
            export_event(
                lineage,
                RunState.FAIL,
                layout,
                run_id,
                target=target,
                fields=fields,
                at=clock(),
                error=exc,
            )
        )
        raise
    finally:
        partial.unlink(missing_ok=True)
    lineage.emit(
        export_event(
            lineage,
            RunState.COMPLETE,
            layout,
            run_id,
            target=target,
            fields=fields,
            at=clock(),
            rows=rows,
            size=path.stat().st_size,
        )
    )
    return ExportedFile(layout.table, fmt, path, rows)


def export_pre_aggregations(
    connection: duckdb.DuckDBPyConnection,
    model: SemanticModel,
    directory: Path,
    lineage: Lineage,
    *,
    formats: Sequence[str] = FORMATS,
    only: Sequence[str] = (),
    clock: Clock = _now,
) -> list[ExportedFile]:
    """Every built pre-aggregation (or ``only`` these) in each format; a format whose library is
    missing (.hyper without tableauhyperapi) is skipped and says so."""
    unknown = sorted(set(formats) - set(WRITERS))
    if unknown:
        raise ValueError(f"unknown export format(s): {', '.join(unknown)}")
    directory.mkdir(parents=True, exist_ok=True)
    chosen = [x for x in layouts(model) if not only or x.name in only or x.cube.name in only]
    written: list[ExportedFile] = []
    for layout in chosen:
        for fmt in formats:
            path = directory / f"{layout.table}.{fmt}"
            try:
                written.append(
                    export_layout(connection, layout, fmt, directory, lineage, clock=clock)
                )
            except HyperUnavailable as exc:
                written.append(ExportedFile(layout.table, fmt, path, skipped=str(exc)))
            except NotBuilt as exc:
                written.append(ExportedFile(layout.table, fmt, path, skipped=str(exc)))
    return written
