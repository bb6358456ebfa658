"""OpenLineage run events of exports: START, then COMPLETE or FAIL, sent through the ETL's emitter.

An export reads one warehouse dataset and writes one output (a file, a lake folder, a Delta
table or an HTTP download). The output carries a schema facet, a column-lineage facet (each
column an identity copy of the warehouse column; a site-scoped export adds the row filter as
dataset-level lineage) and, on COMPLETE, the rows and bytes written.
"""

from __future__ import annotations

import datetime as dt
import traceback
from dataclasses import dataclass
from typing import Any, Final

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    schema_dataset,
)

from maintainpro.analytics.exports.datasets import Dataset
from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.schema import sql_type

JOB_PREFIX: Final = "export."
FILE_NAMESPACE: Final = "file"  # OpenLineage's naming for a local file system


@dataclass(frozen=True)
class Output:
    """Where an export's output goes, named as OpenLineage names datasets."""

    namespace: str
    name: str


@dataclass(frozen=True)
class ExportJob:
    """What lineage needs to know about one export."""

    name: str
    description: str
    dataset: Dataset
    output: Output
    scope: frozenset[int] | None = None


def _schema(dataset: Dataset) -> Any:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(
                name=c.name,
                type=sql_type(c.type),
                description=c.description or None,
                ordinal_position=i,
            )
            for i, c in enumerate(dataset.table.columns, start=1)
        ]
    )


def _field(lineage: Lineage, dataset: Dataset, column: str, kind: str, subtype: str) -> Any:
    return column_lineage_dataset.InputField(
        namespace=lineage.warehouse_namespace,
        name=f"main.{dataset.name}",
        field=column,
        transformations=[column_lineage_dataset.Transformation(type=kind, subtype=subtype)],
    )


def _filter_column(job: ExportJob) -> str | None:
    rule = job.dataset.site_rule
    if job.scope is None or rule.shared:
        return None
    if rule.column is not None:
        return rule.column
    return rule.via[0] if rule.via is not None else None


def _column_lineage(lineage: Lineage, job: ExportJob) -> Any:
    dataset = job.dataset
    filtered = _filter_column(job)
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            c.name: column_lineage_dataset.Fields(
                inputFields=[_field(lineage, dataset, c.name, "DIRECT", "IDENTITY")]
            )
            for c in dataset.table.columns
        },
        dataset=[_field(lineage, dataset, filtered, "INDIRECT", "FILTER")] if filtered else [],
    )


def export_event(
    lineage: Lineage,
    state: RunState,
    job: ExportJob,
    run_id: str,
    *,
    at: dt.datetime,
    rows: int | None = None,
    size: int | None = None,
    error: BaseException | None = None,
) -> RunEvent:
    """One run event of an export."""
    run_facets: dict[str, Any] = {}
    if error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=f"{type(error).__name__}: {error}",
            programmingLanguage="python",
            stackTrace="".join(traceback.format_exception(error)),
        )
    output_facets: dict[str, Any] = {}
    if state == RunState.COMPLETE:
        output_facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=rows, size=size
            )
        )
    return RunEvent(
        eventType=state,
        eventTime=at.isoformat(),
        run=Run(runId=run_id, facets=run_facets),
        job=Job(
            namespace=lineage.namespace,
            name=JOB_PREFIX + job.name,
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="MAINTAINPRO", jobType="EXPORT"
                ),
                "documentation": documentation_job.DocumentationJobFacet(
                    description=job.description
                ),
            },
        ),
        producer=lineage.producer,
        inputs=[
            InputDataset(
                namespace=lineage.warehouse_namespace,
                name=f"main.{job.dataset.name}",
                facets={"schema": _schema(job.dataset)},
            )
        ],
        outputs=[
            OutputDataset(
                namespace=job.output.namespace,
                name=job.output.name,
                facets={
                    "schema": _schema(job.dataset),
                    "columnLineage": _column_lineage(lineage, job),
                },
                outputFacets=output_facets,
            )
        ],
    )
