"""OpenLineage run events for ETL jobs: START, then COMPLETE or FAIL, with dataset facets.

Events go through openlineage-python's client: to a JSON-lines file by default, to an HTTP
endpoint (Marquez or any OpenLineage receiver) when ``lineage_url`` is set. Inputs carry a
schema facet; outputs carry schema and column-lineage facets built from the warehouse schema,
and on COMPLETE the rows written. A failure to deliver an event is logged and never fails the
ETL run it describes.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.transport import Transport
from sqlalchemy import Table
from sqlalchemy.engine import make_url

from maintainpro.analytics.schema import Column, WarehouseTable, sql_type
from maintainpro.config import Settings
from maintainpro.schema import metadata

log = logging.getLogger(__name__)

DEFAULT_FILE_NAME: Final = "lineage.jsonl"
JOB_PREFIX: Final = "warehouse."
# The jobs loading the PostgreSQL warehouse: other outputs, so other OpenLineage jobs.
POSTGRES_JOB_PREFIX: Final = "warehouse.postgres."
_SUBTYPES: Final = {"identity": "IDENTITY", "transformation": "TRANSFORMATION"}
# Few, quick retries: a lineage server that is down must not hold the ETL up for long.
HTTP_RETRY: Final[dict[str, Any]] = {
    "total": 2,
    "read": 2,
    "connect": 2,
    "backoff_factor": 0.2,
    "status_forcelist": [500, 502, 503, 504],
    "allowed_methods": ["HEAD", "POST"],
}


def producer() -> str:
    """The producer URI events carry: this package and its version."""
    try:
        release = version("maintainpro")
    except PackageNotFoundError:
        release = "dev"
    return f"urn:maintainpro:warehouse:{release}"


def source_namespace(database_url: str) -> tuple[str, str]:
    """(namespace, name prefix) of the operational database, without any credentials.

    PostgreSQL follows the OpenLineage naming spec (``postgres://host:port``, then
    ``database.schema.table``); an SQLite file is named by its absolute path.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        host = url.host or "localhost"
        return f"postgres://{host}:{url.port or 5432}", f"{url.database}.public."
    path = Path(url.database or "memory").expanduser().resolve()
    return f"sqlite://{path}", "main."


def lineage_file(settings: Settings, warehouse_path: Path) -> Path:
    """The JSON-lines file events go to: the setting, else beside the warehouse."""
    return settings.lineage_file or warehouse_path.parent / DEFAULT_FILE_NAME


def build_transport(settings: Settings, warehouse_path: Path) -> Transport:
    """HTTP when ``lineage_url`` is set, else the JSON-lines file."""
    if settings.lineage_url:
        return HttpTransport(HttpConfig(url=settings.lineage_url, timeout=5.0, retry=HTTP_RETRY))
    path = lineage_file(settings, warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


def _schema_facet(fields: Sequence[tuple[str, str, str | None]]) -> Any:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(
                name=name, type=type_, description=description or None, ordinal_position=i
            )
            for i, (name, type_, description) in enumerate(fields, start=1)
        ]
    )


@dataclass(frozen=True)
class LineageJob:
    """What lineage needs to know about an ETL job."""

    name: str
    description: str
    outputs: tuple[WarehouseTable, ...]


class Lineage:
    """Builds and emits the run events of ETL jobs."""

    def __init__(
        self,
        client: OpenLineageClient | None,
        *,
        namespace: str,
        source: tuple[str, str],
        warehouse_path: Path,
        warehouse: tuple[str, str] | None = None,
        job_prefix: str = JOB_PREFIX,
    ) -> None:
        """``client`` None turns lineage off (events are still built, for tests and dry runs).

        ``warehouse`` (namespace, name prefix) names the output datasets of a store other than
        the DuckDB file (the PostgreSQL warehouse); its jobs get their own ``job_prefix``.
        """
        self.client = client
        self.namespace = namespace
        self.source_namespace, self.source_prefix = source
        self.warehouse_namespace, self.warehouse_prefix = warehouse or (
            f"duckdb://{warehouse_path.expanduser().resolve()}",
            "main.",
        )
        self.job_prefix = job_prefix
        self.producer = producer()

    # ----------------------------------------------------------------- datasets

    def _input(self, table: Table, columns: set[str]) -> InputDataset:
        # Only the columns the job reads: lineage names what feeds the warehouse, no more.
        fields = [(c.name, str(c.type), None) for c in table.columns if c.name in columns]
        return InputDataset(
            namespace=self.source_namespace,
            name=self.source_prefix + table.name,
            facets={"schema": _schema_facet(fields)},
        )

    def _input_field(self, source: str, column: Column) -> Any:
        table, field = source.split(".", 1)
        kind = "INDIRECT" if column.how == "aggregation" else "DIRECT"
        subtype = "AGGREGATION" if column.how == "aggregation" else _SUBTYPES[column.how]
        return column_lineage_dataset.InputField(
            namespace=self.source_namespace,
            name=self.source_prefix + table,
            field=field,
            transformations=[column_lineage_dataset.Transformation(type=kind, subtype=subtype)],
        )

    def _output(self, table: WarehouseTable, rows: int | None) -> OutputDataset:
        fields = [(c.name, sql_type(c.type), c.description) for c in table.columns]
        lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
            fields={
                c.name: column_lineage_dataset.Fields(
                    inputFields=[self._input_field(s, c) for s in c.sources]
                )
                for c in table.columns
                if c.sources
            }
        )
        facets: dict[str, Any] = {"schema": _schema_facet(fields)}
        if lineage.fields:
            facets["columnLineage"] = lineage
        output_facets: dict[str, Any] = {}
        if rows is not None:
            output_facets["outputStatistics"] = (
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)
            )
        return OutputDataset(
            namespace=self.warehouse_namespace,
            name=self.warehouse_prefix + table.name,
            facets=facets,
            outputFacets=output_facets,
        )

    def inputs(self, job: LineageJob) -> list[InputDataset]:
        """The operational tables the job reads, with the columns it reads from each."""
        tables = metadata().tables
        read: dict[str, set[str]] = {}
        for table in job.outputs:
            for column in table.columns:
                for source in column.sources:
                    name, field = source.split(".", 1)
                    read.setdefault(name, set()).add(field)
        return [self._input(tables[n], read[n]) for n in sorted(read) if n in tables]

    # ----------------------------------------------------------------- events

    def event(
        self,
        state: RunState,
        job: LineageJob,
        run_id: str,
        *,
        at: dt.datetime,
        window: tuple[dt.datetime | None, dt.datetime],
        rows_out: int | None = None,
        error: BaseException | None = None,
    ) -> RunEvent:
        """One run event of a job."""
        run_facets: dict[str, Any] = {}
        since, until = window
        if since is not None:
            run_facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=since.isoformat(), nominalEndTime=until.isoformat()
            )
        if error is not None:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"{type(error).__name__}: {error}",
                programmingLanguage="python",
                stackTrace="".join(traceback.format_exception(error)),
            )
        single = rows_out if len(job.outputs) == 1 else None
        return RunEvent(
            eventType=state,
            eventTime=at.isoformat(),
            run=Run(runId=run_id, facets=run_facets),
            job=Job(
                namespace=self.namespace,
                name=self.job_prefix + job.name,
                facets={
                    "jobType": job_type_job.JobTypeJobFacet(
                        processingType="BATCH", integration="MAINTAINPRO", jobType="ETL"
                    ),
                    "documentation": documentation_job.DocumentationJobFacet(
                        description=job.description
                    ),
                },
            ),
            producer=self.producer,
            inputs=self.inputs(job),
            outputs=[
                self._output(t, single if state == RunState.COMPLETE else None) for t in job.outputs
            ],
        )

    def emit(self, event: RunEvent) -> None:
        """Send an event; a delivery failure is logged, never raised."""
        if self.client is None:
            return
        try:
            self.client.emit(event)
        except Exception as exc:  # noqa: BLE001 - lineage must never fail the run it describes
            log.warning(
                "lineage event not delivered",
                extra={"job": event.job.name, "state": str(event.eventType), "error": str(exc)},
            )


def lineage_for(
    settings: Settings,
    warehouse_path: Path,
    *,
    enabled: bool = True,
    warehouse: tuple[str, str] | None = None,
    job_prefix: str = JOB_PREFIX,
) -> Lineage:
    """The lineage emitter the settings describe (``warehouse``: see ``Lineage``)."""
    client = (
        OpenLineageClient(transport=build_transport(settings, warehouse_path)) if enabled else None
    )
    return Lineage(
        client,
        namespace=settings.lineage_namespace,
        source=source_namespace(settings.database_url),
        warehouse_path=warehouse_path,
        warehouse=warehouse,
        job_prefix=job_prefix,
    )
