"""Running one export: read a dataset under a row filter, write a file or the lake, tell lineage.

Each run emits START, then COMPLETE (rows and bytes) or FAIL (the error), and a failure is raised
again for the caller to report. A file appears only whole: it is written under a hidden name in
the destination folder and renamed into place, so a reader (or a BI tool polling the folder)
never opens half a file, and a failed run leaves the previous file as it was.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
from openlineage.client.event_v2 import RunState

from maintainpro.analytics.exports.datasets import Dataset, read_batches
from maintainpro.analytics.exports.formats import SPECS, FileFormat
from maintainpro.analytics.exports.lake import LakeWrite, delta_root, parquet_root
from maintainpro.analytics.exports.lake import write_delta as write_delta_table
from maintainpro.analytics.exports.lake import write_partitioned as write_lake_partitions
from maintainpro.analytics.exports.lineage import FILE_NAMESPACE, ExportJob, Output, export_event
from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.warehouse import new_run_id

Clock = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ExportResult:
    """What one export run did."""

    run_id: str
    rows: int
    size: int | None
    started_at: dt.datetime
    finished_at: dt.datetime
    lake: LakeWrite | None = None


Work = Callable[[], tuple[int, int | None, LakeWrite | None]]


def traced(lineage: Lineage, job: ExportJob, work: Work, *, clock: Clock = _now) -> ExportResult:
    """Run ``work`` between a START and a COMPLETE event, or a FAIL event and the error."""
    run_id = new_run_id()
    started = clock()
    lineage.emit(export_event(lineage, RunState.START, job, run_id, at=started))
    try:
        rows, size, lake = work()
    except Exception as exc:
        lineage.emit(export_event(lineage, RunState.FAIL, job, run_id, at=clock(), error=exc))
        raise
    finished = clock()
    lineage.emit(
        export_event(lineage, RunState.COMPLETE, job, run_id, at=finished, rows=rows, size=size)
    )
    return ExportResult(run_id, rows, size, started, finished, lake)


def _description(dataset: Dataset, what: str, scope: frozenset[int] | None) -> str:
    sites = "every site" if scope is None else "sites " + ", ".join(map(str, sorted(scope)))
    return f"{dataset.name} as {what} ({sites})"


def export_file(
    connection: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    fmt: FileFormat,
    path: Path,
    lineage: Lineage,
    *,
    scope: frozenset[int] | None,
    since: dt.date | None = None,
    job_name: str | None = None,
    output: Output | None = None,
    clock: Clock = _now,
) -> ExportResult:
    """Write a dataset (only the rows the scope may see) to one file, atomically."""
    job = ExportJob(
        name=job_name or f"{dataset.name}.{fmt.value}",
        description=_description(dataset, fmt.value, scope),
        dataset=dataset,
        output=output or Output(FILE_NAMESPACE, str(path.resolve())),
        scope=scope,
    )

    def work() -> tuple[int, int | None, LakeWrite | None]:
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
        try:
            reader = read_batches(connection, dataset, dataset.row_filter(scope), since=since)
            rows = SPECS[fmt].write(reader, partial, dataset.name)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return rows, path.stat().st_size, None

    return traced(lineage, job, work, clock=clock)


def export_lake(
    connection: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    lake: Path,
    lineage: Lineage,
    *,
    delta: bool = False,
    scope: frozenset[int] | None = None,
    since: dt.date | None = None,
    job_name: str | None = None,
    clock: Clock = _now,
) -> ExportResult:
    """Write a dataset to the lake: Hive-partitioned Parquet, or a Delta table version."""
    what = "delta" if delta else "lake"
    root = delta_root(lake, dataset) if delta else parquet_root(lake, dataset)
    job = ExportJob(
        name=job_name or f"{dataset.name}.{what}",
        description=_description(dataset, what, scope),
        dataset=dataset,
        output=Output(FILE_NAMESPACE, str(root.resolve())),
        scope=scope,
    )

    def work() -> tuple[int, int | None, LakeWrite | None]:
        reader = read_batches(
            connection, dataset, dataset.row_filter(scope), since=since, with_day=True
        )
        write = write_delta_table if delta else write_lake_partitions
        result = write(reader, dataset, lake, since=since)
        return result.rows, None, result

    return traced(lineage, job, work, clock=clock)
