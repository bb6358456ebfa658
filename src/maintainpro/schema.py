"""Every table of the hub, imported in one place so that the metadata knows them all."""

from __future__ import annotations

from sqlalchemy import MetaData

from maintainpro.analytics import access_log
from maintainpro.analytics.dashboards import records as dashboard_records
from maintainpro.analytics.reports import records as report_records
from maintainpro.core import (
    assets,
    audit,
    events,
    inventory,
    notifications,
    schedules,
    users,
    work_orders,
)
from maintainpro.core.db import Base
from maintainpro.iot import alerts, devices, edge_agents, security_records, timeseries
from maintainpro.supply import (
    catalogs,
    contracts,
    erp_records,
    invoices,
    portal_records,
    purchasing,
    rates,
    receiving,
    requisitions,
    shipments,
    suppliers,
    tracking_records,
)
from maintainpro.supply.edi import archive as edi_archive
from maintainpro.supply.edi import partners as edi_partners

MODEL_MODULES = (
    assets,
    audit,
    events,
    inventory,
    schedules,
    users,
    work_orders,
    devices,
    timeseries,
    alerts,
    notifications,
    edge_agents,
    security_records,
    suppliers,
    catalogs,
    contracts,
    rates,
    requisitions,
    purchasing,
    receiving,
    shipments,
    invoices,
    edi_partners,
    edi_archive,
    portal_records,
    erp_records,
    tracking_records,
    report_records,
    dashboard_records,
    access_log,
)


def metadata() -> MetaData:
    """The metadata of every table, for Alembic and for test set-up."""
    return Base.metadata
