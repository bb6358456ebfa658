"""ETL jobs, one small module per fact (dimensions together), run in the order of ALL_JOBS."""

from __future__ import annotations

from typing import Final

from maintainpro.analytics.jobs.alerts import AlertsJob
from maintainpro.analytics.jobs.base import Job, JobResult, Window
from maintainpro.analytics.jobs.compliance import ComplianceJob
from maintainpro.analytics.jobs.dimensions import DIMENSION_JOBS
from maintainpro.analytics.jobs.invoices import InvoicesJob
from maintainpro.analytics.jobs.purchasing import PurchasingJob
from maintainpro.analytics.jobs.sensor_hours import SensorHoursJob
from maintainpro.analytics.jobs.work_orders import WorkOrdersJob

# Dimensions first so that a reader never sees a fact whose dimension row is missing.
ALL_JOBS: Final[tuple[Job, ...]] = (
    *DIMENSION_JOBS,
    SensorHoursJob(),
    AlertsJob(),
    WorkOrdersJob(),
    ComplianceJob(),
    PurchasingJob(),
    InvoicesJob(),
)

__all__ = ["ALL_JOBS", "Job", "JobResult", "Window"]
