"""Running ETL jobs: windows from watermarks, one transaction per job, records and lineage.

For each job: a run record ("running") and a START event; then, in one warehouse transaction,
the job's load, its new watermark and nothing else; then the record completed (or failed, with
the error) and a COMPLETE (or FAIL) event. A failed job rolls back, so neither its rows nor its
watermark move, and the jobs after it still run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from openlineage.client.event_v2 import RunState
from sqlalchemy import Engine

from maintainpro.analytics.jobs import ALL_JOBS, Job, JobResult, Window
from maintainpro.analytics.lineage import Lineage, LineageJob
from maintainpro.analytics.warehouse import RunRecord, WarehouseTarget, new_run_id

log = logging.getLogger(__name__)

# Called with (job name, "start" | "completed" | "failed", record) so a CLI can show progress.
Progress = Callable[[str, str, RunRecord], None]
Clock = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class BuildOptions:
    """How to run: everything again (full) or from the watermarks, and which jobs."""

    base_currency: str
    full: bool = False
    jobs: Sequence[Job] = ALL_JOBS


def job_window(
    job: Job, watermark: dt.datetime | None, until: dt.datetime, full: bool, base: str
) -> Window:
    """The window a run loads: everything, or from the watermark minus the job's overlap."""
    if full or watermark is None:
        return Window(since=None, until=until, base_currency=base)
    return Window(since=watermark - job.overlap, until=until, base_currency=base)


def run_job(
    job: Job,
    source: Engine,
    target: WarehouseTarget,
    lineage: Lineage,
    *,
    full: bool,
    base_currency: str,
    clock: Clock = _now,
    progress: Progress | None = None,
) -> RunRecord:
    """Run one job and record it; never raises for a failure of the job itself."""
    started = clock()
    watermark = target.get_watermark(job.name)
    window = job_window(job, watermark, started, full, base_currency)
    record = RunRecord(
        run_id=new_run_id(),
        job=job.name,
        mode="full" if window.full else "incremental",
        window_start=window.since,
        window_end=window.until,
        started_at=started,
    )
    described = LineageJob(job.name, job.description, job.outputs)
    span = (window.since, window.until)
    target.save_run(record)
    lineage.emit(lineage.event(RunState.START, described, record.run_id, at=started, window=span))
    if progress:
        progress(job.name, "start", record)
    began = time.perf_counter()
    try:
        # On PostgreSQL the job's several queries share one snapshot (REPEATABLE READ). On
        # SQLite a later query may see rows committed after an earlier one; those carry change
        # times after the run's start and are read again by the next run, so nothing is lost.
        options = (
            {"isolation_level": "REPEATABLE READ"} if source.dialect.name == "postgresql" else {}
        )
        with (
            source.connect().execution_options(**options) as connection,
            connection.begin(),
            target.transaction(),
        ):
            result: JobResult = job.run(connection, target, window)
            target.set_watermark(job.name, result.watermark or window.until, record.run_id)
    except Exception as exc:  # noqa: BLE001 - a failed job is recorded and reported, not raised
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"[:2000]
        record.finished_at = _finish(started, began)
        target.save_run(record)
        log.warning("warehouse job failed", extra={"job": job.name, "error": record.error})
        lineage.emit(
            lineage.event(
                RunState.FAIL,
                described,
                record.run_id,
                at=record.finished_at,
                window=span,
                error=exc,
            )
        )
        if progress:
            progress(job.name, "failed", record)
        return record
    record.status = "completed"
    record.rows_in, record.rows_out = result.rows_in, result.rows_out
    record.rows_rejected = result.rows_rejected
    record.finished_at = _finish(started, began)
    target.save_run(record)
    lineage.emit(
        lineage.event(
            RunState.COMPLETE,
            described,
            record.run_id,
            at=record.finished_at,
            window=span,
            rows_out=result.rows_out,
        )
    )
    if progress:
        progress(job.name, "completed", record)
    return record


def _finish(started: dt.datetime, began: float) -> dt.datetime:
    # Wall-clock start plus monotonic elapsed time: a clock step during the run cannot make
    # the duration negative.
    return started + dt.timedelta(seconds=time.perf_counter() - began)


def build(
    source: Engine,
    target: WarehouseTarget,
    lineage: Lineage,
    options: BuildOptions,
    *,
    clock: Clock = _now,
    progress: Progress | None = None,
) -> list[RunRecord]:
    """Run the jobs in order; returns one record per job."""
    target.ensure_schema()
    return [
        run_job(
            job,
            source,
            target,
            lineage,
            full=options.full,
            base_currency=options.base_currency,
            clock=clock,
            progress=progress,
        )
        for job in options.jobs
    ]
