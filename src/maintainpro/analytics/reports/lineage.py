"""OpenLineage run events of report runs: START, then COMPLETE or FAIL, like ETL and exports.

Each delivery attempt of a report run is one OpenLineage run (its id derived from the report run
and the attempt), reading the report's source and writing the report's files.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Final

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    documentation_job,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
)

from maintainpro.analytics.lineage import Lineage

JOB_PREFIX: Final = "report."
REPORT_NAMESPACE: Final = "maintainpro-reports"
# A fixed namespace for uuid5, so an attempt's run id is the same in START and its end event.
_RUN_IDS: Final = uuid.UUID("5b7c2e64-3f0d-4c59-9a57-6d1f0b8e2a11")


def attempt_run_id(report_run_id: int, attempt: int) -> str:
    """The OpenLineage run id of one attempt of a report run."""
    return str(uuid.uuid5(_RUN_IDS, f"{report_run_id}:{attempt}"))


def report_event(
    lineage: Lineage,
    state: RunState,
    *,
    definition_id: int,
    name: str,
    source: str,
    run_id: str,
    at: dt.datetime,
    size: int | None = None,
    error: str | None = None,
) -> RunEvent:
    """One run event of a report run attempt."""
    run_facets: dict[str, Any] = {}
    if error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage="python"
        )
    output_facets: dict[str, Any] = {}
    if state == RunState.COMPLETE and size is not None:
        output_facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=0, size=size
            )
        )
    # Saved questions read the warehouse; the built-in reports read the operational tables.
    reads_warehouse = source == "saved_query"
    return RunEvent(
        eventType=state,
        eventTime=at.isoformat(),
        run=Run(runId=run_id, facets=run_facets),
        job=Job(
            namespace=lineage.namespace,
            name=f"{JOB_PREFIX}{definition_id}",
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="MAINTAINPRO", jobType="REPORT"
                ),
                "documentation": documentation_job.DocumentationJobFacet(
                    description=f"{name} ({source})"
                ),
            },
        ),
        producer=lineage.producer,
        inputs=[
            InputDataset(
                namespace=(
                    lineage.warehouse_namespace if reads_warehouse else lineage.source_namespace
                ),
                name="main.cubes" if reads_warehouse else f"report-source.{source}",
            )
        ],
        outputs=[
            OutputDataset(
                namespace=REPORT_NAMESPACE,
                name=f"report-{definition_id}",
                outputFacets=output_facets,
            )
        ],
    )
