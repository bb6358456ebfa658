"""One warehouse refresh: the ETL jobs, then the cube pre-aggregations that summarise them.

The CLI (`maintainpro warehouse build`) and the hub's scheduled job both run this, so a BI tool
sees the same freshness whichever started it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from maintainpro.analytics.jobs import ALL_JOBS, Job
from maintainpro.analytics.lineage import lineage_for
from maintainpro.analytics.runs import BuildOptions, Progress, build
from maintainpro.analytics.semantic.materialise import RefreshResult, refresh
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.warehouse import DuckDbWarehouse, RunRecord, warehouse_file
from maintainpro.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshOutcome:
    """What a refresh did: one record per ETL job and one result per pre-aggregation."""

    records: list[RunRecord]
    cubes: list[RefreshResult]

    @property
    def failed_jobs(self) -> list[str]:
        """Names of the ETL jobs that failed."""
        return [r.job for r in self.records if r.status != "completed"]

    @property
    def failed_cubes(self) -> list[str]:
        """Names of the pre-aggregations whose refresh failed."""
        return [c.name for c in self.cubes if c.error]


def refresh_warehouse(
    engine: Engine,
    settings: Settings,
    *,
    full: bool = False,
    jobs: tuple[Job, ...] = ALL_JOBS,
    progress: Progress | None = None,
) -> RefreshOutcome:
    """Run the ETL jobs into the warehouse file, then refresh the cubes (incrementally)."""
    path = warehouse_file(settings)
    lineage = lineage_for(settings, path)
    with DuckDbWarehouse(path) as target:
        records = build(
            engine,
            target,
            lineage,
            BuildOptions(base_currency=settings.base_currency, full=full, jobs=jobs),
            progress=progress,
        )
        # Cube pre-aggregations follow the facts they summarise; until they are refreshed,
        # queries fall back to the (slower) base facts.
        cubes = refresh(target.connection, default_model(), lineage, full=full)
    return RefreshOutcome(records, cubes)


def scheduled_refresh(engine: Engine, settings: Settings) -> None:
    """The supervisor's job: an incremental refresh; failures are logged, never raised."""
    outcome = refresh_warehouse(engine, settings)
    log.info(
        "warehouse refreshed",
        extra={
            "jobs": len(outcome.records),
            "failed_jobs": outcome.failed_jobs,
            "cubes": len(outcome.cubes),
            "failed_cubes": outcome.failed_cubes,
        },
    )
