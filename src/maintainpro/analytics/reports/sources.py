"""The report sources a definition can name, and checking a definition's parameters.

A definition's ``params`` hold ``period`` (see ``periods.PeriodName``) and the source's own
options. Sources follow ``data.ReportSource``: the five built-in maintenance and procurement
reports, saved questions (``saved_query``, a Cube-style query over the semantic model) and
saved dashboards (``dashboard``, each tile a section).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from maintainpro.analytics.reports.dashboard_source import DashboardReport
from maintainpro.analytics.reports.data import ReportSource, SourceError
from maintainpro.analytics.reports.maintenance_sources import Backlog, BadActors, PmCompliance
from maintainpro.analytics.reports.periods import PeriodName
from maintainpro.analytics.reports.saved_query import SavedQuery
from maintainpro.analytics.reports.supply_sources import Spend, SupplierScorecards

DEFAULT_PERIOD: Final = PeriodName.PREVIOUS_MONTH


def built_in_sources() -> dict[str, ReportSource]:
    """Every source by name."""
    sources: tuple[ReportSource, ...] = (
        PmCompliance(),
        BadActors(),
        Backlog(),
        SupplierScorecards(),
        Spend(),
        SavedQuery(),
        DashboardReport(),
    )
    return {source.name: source for source in sources}


def source_for(name: str) -> ReportSource:
    """The source of that name; SourceError for an unknown one (the name is not repeated)."""
    source = built_in_sources().get(name)
    if source is None:
        raise SourceError("unknown report source; see GET /api/v1/report-sources")
    return source


def split_params(params: Mapping[str, Any]) -> tuple[PeriodName, dict[str, Any]]:
    """The period and the source's own options of a definition's params."""
    options = dict(params)
    raw = options.pop("period", DEFAULT_PERIOD.value)
    try:
        period = PeriodName(raw)
    except ValueError:
        raise SourceError(
            "period must be one of " + ", ".join(p.value for p in PeriodName)
        ) from None
    return period, options


def checked_params(source_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A definition's params validated against its source, defaults filled in."""
    source = source_for(source_name)
    period, options = split_params(params)
    return {"period": period.value, **source.check(options)}
