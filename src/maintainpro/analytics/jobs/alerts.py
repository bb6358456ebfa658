"""fact_alert: alerts with response times, replaced by alert id when an alert changes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, select

from maintainpro.analytics import schema
from maintainpro.analytics.extract import to_arrow
from maintainpro.analytics.jobs.base import JobResult, Window, changed_since, source
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.analytics.transforms import code, date_key, hours_between, time_key, utc
from maintainpro.analytics.warehouse import WarehouseTarget


def _minutes(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    hours = hours_between(start, end)
    return None if hours is None else hours * 60.0


@dataclass(frozen=True)
class AlertsJob:
    """Alerts changed in the window (raised, acknowledged, cleared, closed, escalated)."""

    name: str = "fact_alert"
    description: str = "Alerts with time to acknowledge and to clear."
    outputs: tuple[WarehouseTable, ...] = (schema.FACT_ALERT,)
    overlap: dt.timedelta = dt.timedelta(minutes=10)

    def run(self, source_db: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Replace the changed alerts' rows."""
        alerts, assets = source("alerts"), source("assets")
        stmt = select(alerts, assets.c.site_id).outerjoin(assets, assets.c.id == alerts.c.asset_id)
        if window.since is not None:
            stmt = stmt.where(changed_since(alerts, window.since))
        rows = []
        for a in source_db.execute(stmt.order_by(alerts.c.id)):
            rows.append(
                (
                    a.id,
                    a.rule_id,
                    a.sensor_id,
                    a.asset_id,
                    a.site_id,
                    a.kind,
                    code(a.severity),
                    a.status,
                    utc(a.raised_at),
                    date_key(a.raised_at),
                    time_key(a.raised_at),
                    utc(a.acknowledged_at),
                    utc(a.cleared_at),
                    utc(a.closed_at),
                    _minutes(a.raised_at, a.acknowledged_at),
                    _minutes(a.raised_at, a.cleared_at),
                    a.escalations,
                    a.work_order_id,
                )
            )
        table = to_arrow(rows, schema.FACT_ALERT.arrow_schema)
        if window.full:
            target.delete_all(schema.FACT_ALERT)
        else:
            target.delete_keys(schema.FACT_ALERT, table)
        return JobResult(rows_in=len(rows), rows_out=target.insert(schema.FACT_ALERT, table))
