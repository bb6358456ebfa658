"""OpenLineage run events of pre-aggregation refreshes and exports, sent through the ETL's emitter.

A refresh reads the warehouse tables of its cube and of the cubes it joins, and writes one
pre-aggregation table: the output carries a schema facet (the column types DuckDB gives the
building query) and a column-lineage facet: dimensions are identity copies, measures
aggregations of the columns they name, the bucket a transformation of the time column, and every
column depends on the grouping and on the measure filters (indirect). COMPLETE adds the rows
written and, as a run facet, which partitions were recomputed.
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import duckdb
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    schema_dataset,
)

from maintainpro.analytics import schema
from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.schema import sql_type
from maintainpro.analytics.semantic.model import COLUMN_PATTERN, COLUMN_REF, SELF, Cube
from maintainpro.analytics.semantic.preaggs import (
    BUCKET,
    GID,
    PARTITION,
    SITE,
    Layout,
    measure_columns,
)

if TYPE_CHECKING:
    from maintainpro.analytics.semantic.materialise import RefreshResult

JOB_PREFIX: Final = "cube."
EXPORT_PREFIX: Final = "cube_export."


def _schema(fields: Iterable[tuple[str, str]]) -> Any:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name=n, type=t, ordinal_position=i)
            for i, (n, t) in enumerate(fields, start=1)
        ]
    )


def _table_schema(table: str) -> Any:
    described = schema.TABLES[table]
    return _schema((c.name, sql_type(c.type)) for c in described.columns)


def output_fields(layout: Layout, connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(column, DuckDB type) of the pre-aggregation, from planning its query (nothing runs).

    When the inputs cannot be planned (a table is missing: the refresh fails), the columns are
    named with the types the model implies.
    """
    try:
        rows = connection.execute(f"DESCRIBE {layout.select_sql()}").fetchall()
    except duckdb.Error:
        return _modelled_fields(layout)
    return [(str(r[0]), str(r[1])) for r in rows]


def _modelled_fields(layout: Layout) -> list[tuple[str, str]]:
    fields = [(GID, "INTEGER"), (PARTITION, "DATE")]
    if layout.time is not None:
        fields.append((BUCKET, "TIMESTAMP"))
    if layout.has_site:
        fields.append((SITE, "BIGINT"))
    kinds = {"string": "VARCHAR", "number": "DOUBLE", "boolean": "BOOLEAN", "time": "TIMESTAMP"}
    fields += [(d.column, kinds[d.dimension.type.value]) for d in layout.dimensions]
    for measure in layout.measures:
        fields += [(name, "NUMERIC") for name in measure_columns(measure)]
    return fields


def _columns(cube: Cube, snippet: str | None) -> list[tuple[Cube, str]]:
    """The (cube, column) pairs a snippet reads, for a cube over a table."""
    if snippet is None or cube.table is None:
        return []
    if COLUMN_PATTERN.match(snippet):
        return [(cube, snippet)]
    return [(cube, column) for owner, column in COLUMN_REF.findall(snippet) if owner == SELF]


def _field(lineage: Lineage, cube: Cube, column: str, kind: str, subtype: str) -> Any:
    assert cube.table is not None
    return column_lineage_dataset.InputField(
        namespace=lineage.warehouse_namespace,
        name=f"main.{cube.table}",
        field=column,
        transformations=[column_lineage_dataset.Transformation(type=kind, subtype=subtype)],
    )


def column_lineage(lineage: Lineage, layout: Layout) -> Any:
    """Which warehouse columns feed each pre-aggregation column, and how."""
    fields: dict[str, list[Any]] = {}
    cube = layout.cube
    time = layout.time
    if time is not None:
        fields[BUCKET] = [
            _field(lineage, c, col, "DIRECT", "TRANSFORMATION")
            for c, col in _columns(cube, time.sql)
        ]
    site = cube.site_rule.column
    if site is not None:
        fields[SITE] = [
            _field(lineage, c, col, "DIRECT", "IDENTITY") for c, col in _columns(cube, site)
        ]
    for stored in layout.dimensions:
        fields[stored.column] = [
            _field(lineage, c, col, "DIRECT", "IDENTITY")
            for c, col in _columns(stored.owner, stored.dimension.sql)
        ]
    for measure in layout.measures:
        sources = [
            _field(lineage, c, col, "DIRECT", "AGGREGATION")
            for c, col in _columns(cube, measure.sql)
        ]
        sources += [
            _field(lineage, c, col, "INDIRECT", "FILTER")
            for condition in measure.filters
            for c, col in _columns(cube, condition)
        ]
        for name in measure_columns(measure):
            fields[name] = sources
    grouped = [
        _field(lineage, s.owner, col, "INDIRECT", "GROUP_BY")
        for s in layout.dimensions
        for _, col in _columns(s.owner, s.dimension.sql)
    ]
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            name: column_lineage_dataset.Fields(inputFields=sources)
            for name, sources in fields.items()
            if sources
        },
        dataset=grouped,
    )


def _inputs(lineage: Lineage, layout: Layout) -> list[InputDataset]:
    tables = list(
        dict.fromkeys(
            [*layout.cube.source_tables, *(t for c in layout.joined for t in c.source_tables)]
        )
    )
    return [
        InputDataset(
            namespace=lineage.warehouse_namespace,
            name=f"main.{t}",
            facets={"schema": _table_schema(t)},
        )
        for t in tables
        if t in schema.TABLES
    ]


def _job(lineage: Lineage, name: str, description: str, job_type: str) -> Job:
    return Job(
        namespace=lineage.namespace,
        name=name,
        facets={
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="MAINTAINPRO", jobType=job_type
            ),
            "documentation": documentation_job.DocumentationJobFacet(description=description),
        },
    )


def _error(error: BaseException) -> Any:
    return error_message_run.ErrorMessageRunFacet(
        message=f"{type(error).__name__}: {error}",
        programmingLanguage="python",
        stackTrace="".join(traceback.format_exception(error)),
    )


def refresh_event(
    lineage: Lineage,
    state: RunState,
    layout: Layout,
    result: RefreshResult,
    connection: duckdb.DuckDBPyConnection,
    *,
    error: BaseException | None = None,
    at: dt.datetime | None = None,
) -> RunEvent:
    """One run event of a pre-aggregation refresh."""
    run_facets: dict[str, Any] = {}
    if error is not None:
        run_facets["errorMessage"] = _error(error)
    output_facets: dict[str, Any] = {}
    if state == RunState.COMPLETE:
        output_facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=result.rows
            )
        )
    facets: dict[str, Any] = {
        "schema": _schema(output_fields(layout, connection)),
        "columnLineage": column_lineage(lineage, layout),
    }
    description = (
        f"Pre-aggregation {layout.name}: {len(layout.sets)} grouping sets, "
        f"{layout.pre.granularity.value} buckets, "
        f"{layout.pre.partition_granularity.value} partitions"
    )
    moment = at or (
        result.started_at
        if state == RunState.START
        else result.started_at + dt.timedelta(seconds=result.duration_s)
    )
    return RunEvent(
        eventType=state,
        eventTime=moment.isoformat(),
        run=Run(runId=result.run_id, facets=run_facets),
        job=_job(lineage, JOB_PREFIX + layout.table, description, "PRE_AGGREGATION"),
        producer=lineage.producer,
        inputs=_inputs(lineage, layout),
        outputs=[
            OutputDataset(
                namespace=lineage.warehouse_namespace,
                name=f"main.{layout.table}",
                facets=facets,
                outputFacets=output_facets,
            )
        ],
    )


def export_event(
    lineage: Lineage,
    state: RunState,
    layout: Layout,
    run_id: str,
    *,
    target: str,
    fields: list[tuple[str, str]],
    at: dt.datetime,
    rows: int | None = None,
    size: int | None = None,
    error: BaseException | None = None,
) -> RunEvent:
    """One run event of a pre-aggregation written to a file (Parquet or .hyper)."""
    run_facets: dict[str, Any] = {"errorMessage": _error(error)} if error is not None else {}
    output_facets: dict[str, Any] = {}
    if state == RunState.COMPLETE:
        output_facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=rows, size=size
            )
        )
    source = f"main.{layout.table}"
    lineage_facet = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            name: column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=lineage.warehouse_namespace,
                        name=source,
                        field=name,
                        transformations=[
                            column_lineage_dataset.Transformation(type="DIRECT", subtype="IDENTITY")
                        ],
                    )
                ]
            )
            for name, _ in fields
        }
    )
    suffix = target.rsplit(".", 1)[-1]
    return RunEvent(
        eventType=state,
        eventTime=at.isoformat(),
        run=Run(runId=run_id, facets=run_facets),
        job=_job(
            lineage,
            f"{EXPORT_PREFIX}{layout.table}.{suffix}",
            f"{layout.name} as {suffix}",
            "EXPORT",
        ),
        producer=lineage.producer,
        inputs=[
            InputDataset(
                namespace=lineage.warehouse_namespace,
                name=source,
                facets={"schema": _schema(fields)},
            )
        ],
        outputs=[
            OutputDataset(
                namespace="file",
                name=target,
                facets={"schema": _schema(fields), "columnLineage": lineage_facet},
                outputFacets=output_facets,
            )
        ],
    )
