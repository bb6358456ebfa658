"""One warehouse refresh: the ETL jobs, then the cube pre-aggregations that summarise them.

The CLI (`maintainpro warehouse build`) and the hub's scheduled job both run this, so a BI tool
sees the same freshness whichever started it. When ``warehouse_postgres_url`` is set, the same
jobs then load the PostgreSQL warehouse too, with its own watermarks and run records; that load
comes after the DuckDB one has committed and closed its file, and a failure of it is recorded
and logged without touching the DuckDB load.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import duckdb
import pyarrow as pa
from sqlalchemy import Engine

from maintainpro.analytics.jobs import ALL_JOBS, Job
from maintainpro.analytics.lineage import POSTGRES_JOB_PREFIX, lineage_for
from maintainpro.analytics.runs import BuildOptions, Progress, build
from maintainpro.analytics.schema import FACT_PREDICTION
from maintainpro.analytics.semantic.materialise import RefreshResult, refresh
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.warehouse import (
    DuckDbWarehouse,
    RunRecord,
    WarehouseError,
    aware_utc,
    connect,
    naive_utc,
    new_run_id,
    warehouse_file,
)
from maintainpro.analytics.warehouse_pg import PostgresWarehouse, lineage_dataset, where_is
from maintainpro.config import Settings

log = logging.getLogger(__name__)

Store = Literal["duckdb", "postgres"]
STORES: Final[tuple[Store, ...]] = ("duckdb", "postgres")
# Progress of the PostgreSQL load is reported under the job's name with this suffix.
POSTGRES_SUFFIX: Final = " (postgres)"


def configured_stores(settings: Settings) -> tuple[Store, ...]:
    """The stores a refresh loads by default: DuckDB, and PostgreSQL when it is configured."""
    return ("duckdb", "postgres") if settings.warehouse_postgres_url else ("duckdb",)


@dataclass(frozen=True)
class RefreshOutcome:
    """What a refresh did: one record per ETL job and store, one result per pre-aggregation.

    ``postgres_error`` is set when the PostgreSQL load could not run at all (unreachable,
    schema refused); failures of single jobs are in ``postgres_records`` like DuckDB's.
    """

    records: list[RunRecord]
    cubes: list[RefreshResult]
    postgres_records: list[RunRecord] = field(default_factory=list)
    postgres_error: str | None = None

    @property
    def failed_jobs(self) -> list[str]:
        """Names of the ETL jobs that failed on DuckDB."""
        return [r.job for r in self.records if r.status != "completed"]

    @property
    def failed_cubes(self) -> list[str]:
        """Names of the pre-aggregations whose refresh failed."""
        return [c.name for c in self.cubes if c.error]

    @property
    def failed_postgres_jobs(self) -> list[str]:
        """Names of the ETL jobs that failed on PostgreSQL."""
        return [r.job for r in self.postgres_records if r.status != "completed"]


def refresh_warehouse(
    engine: Engine,
    settings: Settings,
    *,
    full: bool = False,
    jobs: tuple[Job, ...] = ALL_JOBS,
    progress: Progress | None = None,
    stores: Collection[Store] | None = None,
) -> RefreshOutcome:
    """Run the ETL jobs into the warehouse file, then refresh the cubes (incrementally); then
    the same jobs into PostgreSQL when configured. ``stores`` limits which are loaded."""
    wanted = configured_stores(settings) if stores is None else tuple(stores)
    records: list[RunRecord] = []
    cubes: list[RefreshResult] = []
    if "duckdb" in wanted:
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
    if "postgres" not in wanted:
        return RefreshOutcome(records, cubes)
    postgres_records, error = refresh_postgres(
        engine, settings, full=full, jobs=jobs, progress=progress
    )
    return RefreshOutcome(records, cubes, postgres_records, error)


def refresh_postgres(
    engine: Engine,
    settings: Settings,
    *,
    full: bool = False,
    jobs: tuple[Job, ...] = ALL_JOBS,
    progress: Progress | None = None,
) -> tuple[list[RunRecord], str | None]:
    """The ETL jobs into the PostgreSQL warehouse: (run records, why it could not run at all).

    Never raises: this store is a copy for BI tools, and its failure must not fail the refresh
    the hub's own channels depend on.
    """
    url = settings.warehouse_postgres_url
    if not url:
        return [], "warehouse_postgres_url is not set"
    relabelled = None
    if progress is not None:
        report = progress

        def relabelled(name: str, state: str, record: RunRecord) -> None:
            report(name + POSTGRES_SUFFIX, state, record)

    where = "the PostgreSQL warehouse"
    try:
        where = where_is(url, settings.warehouse_schema)
        lineage = lineage_for(
            settings,
            warehouse_file(settings),
            warehouse=lineage_dataset(url, settings.warehouse_schema),
            job_prefix=POSTGRES_JOB_PREFIX,
        )
        with PostgresWarehouse(url, settings.warehouse_schema) as target:
            target.claim()
            records = build(
                engine,
                target,
                lineage,
                BuildOptions(base_currency=settings.base_currency, full=full, jobs=jobs),
                progress=relabelled,
            )
            records.append(copy_predictions(warehouse_file(settings), target))
    except Exception as exc:  # noqa: BLE001 - recorded and logged; DuckDB's load stands
        error = f"{type(exc).__name__}: {exc}"[:2000]
        log.warning("postgres warehouse load failed", extra={"where": where, "error": error})
        return [], error
    failed = [r.job for r in records if r.status != "completed"]
    if failed:
        log.warning("postgres warehouse jobs failed", extra={"where": where, "failed": failed})
    return records, None


PREDICTIONS_JOB: Final = "fact_prediction_copy"


def copy_predictions(duck_path: Path, target: PostgresWarehouse) -> RunRecord:
    """Bring fact_prediction from the DuckDB file to PostgreSQL; the run's record.

    The ML jobs write their predictions into the DuckDB file only (they run in the hub, beside
    its channels); no operational table holds them, so the ETL jobs cannot load them. Each
    refresh copies the runs from PostgreSQL's newest ``predicted_at`` on, replacing that run
    whole, so a run re-written in DuckDB arrives once and a repeated copy changes nothing.
    """
    started = dt.datetime.now(dt.UTC)
    record = RunRecord(new_run_id(), PREDICTIONS_JOB, "incremental", None, started, started)
    newest = target.max_value(FACT_PREDICTION, "predicted_at")
    since = aware_utc(newest)
    record.window_start = since
    try:
        rows = _duck_predictions(duck_path, since)
        with target.transaction():
            if since is not None:
                target.delete_since(FACT_PREDICTION, "predicted_at", since)
            written = target.insert(FACT_PREDICTION, rows)
    except (WarehouseError, duckdb.Error) as exc:
        # The file is busy or has no predictions yet: the next refresh copies them.
        record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
    else:
        record.rows_in = record.rows_out = written
        record.status = "completed"
    record.finished_at = dt.datetime.now(dt.UTC)
    target.save_run(record)
    return record


def _duck_predictions(duck_path: Path, since: dt.datetime | None) -> pa.Table:
    """fact_prediction rows of the DuckDB file at or after ``since`` (all when None)."""
    columns = ", ".join(FACT_PREDICTION.column_names)
    if not duck_path.exists():
        # A PostgreSQL-only build before the DuckDB file exists: no predictions were made yet.
        return FACT_PREDICTION.arrow_schema.empty_table()
    connection = connect(duck_path, read_only=True)
    try:
        exists = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
            [FACT_PREDICTION.name],
        ).fetchall()
        if not exists or not exists[0][0]:
            return FACT_PREDICTION.arrow_schema.empty_table()
        where, params = (
            ("", None) if since is None else ("WHERE predicted_at >= ?", [naive_utc(since)])
        )
        query = f"SELECT {columns} FROM {FACT_PREDICTION.name} {where}"  # noqa: S608 - schema names
        return connection.sql(query, params=params).to_arrow_table()
    finally:
        connection.close()


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
            "postgres_jobs": len(outcome.postgres_records),
            "failed_postgres_jobs": outcome.failed_postgres_jobs,
            "postgres_error": outcome.postgres_error,
        },
    )
