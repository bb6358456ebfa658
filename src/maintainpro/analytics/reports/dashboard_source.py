"""A dashboard as a report: each saved-question tile becomes a section (a table and, for line,
bar and stacked tiles, a chart), each live sensor widget a small table of the latest values.

``params``: ``{"dashboard_id": 3, "use_period": false}``. Without ``use_period`` the dashboard's
own filters apply (its ``dateRange`` replaces the date range of every question's time
dimensions, read relative to the run's local date), so the report shows what the dashboard
shows; with it, every time dimension is limited to the report's period instead.

The report runs as its owner: the dashboard must be one the owner may open, a question the owner
may not open (or whose cubes the owner may not read) is left out with a note, and the recipient's
site scope limits every section, sensors included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.analytics.dashboards.filters import with_member_filters
from maintainpro.analytics.dashboards.records import Dashboard, SavedQuestion
from maintainpro.analytics.dashboards.rules import (
    Filters,
    MemberFilter,
    may_view,
    with_date_range,
)
from maintainpro.analytics.reports.data import (
    Cell,
    ChartKind,
    ChartSpec,
    Column,
    ColumnKind,
    Figure,
    ReportData,
    RunParams,
    SiteScope,
    SourceError,
    Table,
)
from maintainpro.analytics.reports.formatting import slug
from maintainpro.analytics.reports.saved_query import (
    WAREHOUSE_NOTE,
    QueryNotAllowed,
    answer_section,
    open_warehouse,
    with_period,
)
from maintainpro.analytics.semantic.model import default_model
from maintainpro.core.assets import Asset
from maintainpro.core.users import Permission
from maintainpro.iot.devices import Device, Sensor
from maintainpro.iot.timeseries import QUALITY_NAMES, latest_values

OPTIONS: Final = frozenset({"dashboard_id", "use_period"})
# The dashboard chart types the PDF can draw; table, pivot and heatmap tiles come as tables.
CHARTS: Final = {"line": ChartKind.LINE, "bar": ChartKind.BAR, "stacked": ChartKind.STACKED_BAR}
SENSOR_NOTE: Final = (
    "Live sensor tiles show each sensor's latest reading when the report was produced, "
    "whatever the period."
)
SENSOR_COLUMNS: Final = (
    Column("sensor", "Sensor"),
    Column("device", "Device"),
    Column("asset", "Asset"),
    Column("value", "Latest value", ColumnKind.DECIMAL, 3),
    Column("unit", "Unit"),
    Column("at", "Read at", ColumnKind.DATETIME),
    Column("quality", "Quality"),
)
NOT_FOUND: Final = "the dashboard does not exist or is not shared with the report's owner"


def tiles(layout: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The dashboard's items in reading order: top to bottom, then left to right."""
    return sorted(layout, key=lambda item: (int(item.get("y", 0)), int(item.get("x", 0))))


def table_name(position: int, title: str) -> str:
    """A section's table name, unique in the report and safe in a file name: ``03-spend``."""
    return f"{position:02d}-{slug(title)}"


@dataclass
class _Sections:
    """The tables, charts, figures and notes collected tile by tile."""

    tables: list[Table]
    charts: list[ChartSpec]
    summary: list[Figure]
    notes: list[str]


@dataclass(frozen=True)
class DashboardReport:
    """A saved dashboard: its question tiles as sections, its live sensor tiles as tables."""

    name: str = "dashboard"
    title: str = "Dashboard"

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``dashboard_id`` (required, a positive integer) and ``use_period`` (default false)."""
        if set(options) - OPTIONS:
            raise SourceError("dashboard takes the options dashboard_id and use_period")
        dashboard_id = options.get("dashboard_id")
        if isinstance(dashboard_id, bool) or not isinstance(dashboard_id, int) or dashboard_id < 1:
            raise SourceError("dashboard needs dashboard_id, the id of a saved dashboard")
        use_period = options.get("use_period", False)
        if not isinstance(use_period, bool):
            raise SourceError("use_period must be true or false")
        return {"dashboard_id": dashboard_id, "use_period": use_period}

    def run(self, session: Session, params: RunParams, site_scope: SiteScope) -> ReportData:
        """Every tile of the dashboard for the scope, in reading order."""
        options = self.check(params.options)
        dashboard = session.get(Dashboard, options["dashboard_id"])
        if dashboard is None or not _may_open(params, dashboard.owner_id, dashboard.shared_roles):
            raise SourceError(NOT_FOUND)
        date_range = dashboard.filters.get("dateRange")
        members = Filters.model_validate(dashboard.filters or {}).members
        found = _Sections([], [], [], [f"Dashboard: {dashboard.name}."])
        if members:
            found.notes.append(
                "Filters: "
                + "; ".join(
                    f"{m.member} {'is' if m.operator == 'equals' else 'is not'} "
                    + " or ".join(m.values)
                    for m in members
                )
                + "."
            )
        if options["use_period"]:
            found.notes.append("Every question is limited to the report's period.")
        elif date_range is not None:
            shown = date_range if isinstance(date_range, str) else " to ".join(date_range)
            found.notes.append(f"Dates: the dashboard's filter ({shown}).")
        items = tiles(dashboard.layout)
        connection: duckdb.DuckDBPyConnection | None = None
        try:
            for position, item in enumerate(items, start=1):
                if item.get("kind") == "question":
                    if connection is None:
                        connection = open_warehouse(params.settings, "a dashboard")
                        found.notes.append(WAREHOUSE_NOTE)
                    _question(
                        session,
                        connection,
                        params,
                        site_scope,
                        item,
                        position,
                        date_range,
                        members,
                        found,
                    )
                elif item.get("kind") == "sensors":
                    _sensors(session, params, site_scope, item, position, found)
        finally:
            if connection is not None:
                connection.close()
        if any(item.get("kind") == "sensors" for item in items):
            found.notes.append(SENSOR_NOTE)
        return ReportData(
            title=params.title,
            period_start=params.period_start,
            period_end=params.period_end,
            timezone=params.timezone,
            generated_at=params.as_of,
            summary=(Figure("Sections", len(found.tables)), *found.summary),
            tables=tuple(found.tables),
            charts=tuple(found.charts),
            notes=tuple(found.notes),
        )


def _may_open(params: RunParams, owner_id: int | None, shared_roles: list[str]) -> bool:
    if params.owner is None:
        # No owner and no limit (tests, previews from the CLI) opens everything.
        return params.permissions is None
    return may_view(owner_id, shared_roles, params.owner)


def _question(
    session: Session,
    connection: duckdb.DuckDBPyConnection,
    params: RunParams,
    site_scope: SiteScope,
    item: Mapping[str, Any],
    position: int,
    date_range: str | list[str] | None,
    members: Sequence[MemberFilter],
    found: _Sections,
) -> None:
    """One question tile as a section, or a note saying why it is left out."""
    question = session.get(SavedQuestion, int(item["question_id"]))
    if question is None or not _may_open(params, question.owner_id, question.shared_roles):
        found.notes.append(f"Tile {position}: the question is not shared with the report's owner.")
        return
    query: dict[str, Any] = dict(question.query)
    if params.options.get("use_period"):
        query = with_period(query, params.period_start, params.period_end)
    else:
        query = with_date_range(query, date_range)
    permissions = frozenset(Permission) if params.permissions is None else params.permissions
    # Relative ranges ("last 30 days") count back from the run's day where the report is read.
    today = params.as_of.astimezone(ZoneInfo(params.timezone)).date()
    # The dashboard's member filters (site, asset, ...) narrow the tile as on the page; the
    # recipient's site scope still applies on top, so a filter can only narrow, never widen.
    query, skipped = with_member_filters(default_model(), query, members, today)
    if skipped:
        found.notes.append(
            f"{question.name}: the dashboard's filter on {', '.join(skipped)} does not apply "
            "to this question, so it is not narrowed by it."
        )
    try:
        section = answer_section(
            connection,
            query,
            permissions,
            site_scope,
            today,
            name=table_name(position, question.name),
            title=question.name,
            chart=CHARTS.get(question.chart),
        )
    except QueryNotAllowed:
        found.notes.append(
            f"{question.name}: the report's owner may not read this question's data."
        )
        return
    except SourceError as exc:
        found.notes.append(f"{question.name}: cannot be answered ({exc}).")
        return
    found.tables.append(section.table)
    if section.chart is not None:
        found.charts.append(section.chart)
    found.notes.extend(f"{question.name}: {note}" for note in section.notes)
    labelled = [
        Figure(f"{question.name}: {f.label}", f.value, f.kind, f.places, f.unit)
        for f in section.totals
    ]
    found.summary.extend(labelled or [Figure(f"{question.name}: rows", len(section.table.rows))])


def _sensors(
    session: Session,
    params: RunParams,
    site_scope: SiteScope,
    item: Mapping[str, Any],
    position: int,
    found: _Sections,
) -> None:
    """A live sensor tile as a table of each visible sensor's latest reading."""
    wanted = [int(i) for i in item.get("sensor_ids", [])]
    rows = session.execute(
        select(Sensor, Device, Asset)
        .join(Device, Sensor.device_id == Device.id)
        .outerjoin(Asset, Device.asset_id == Asset.id)
        .where(Sensor.id.in_(wanted))
    ).all()
    # A site recipient sees the sensors of its sites' assets only (none of unplaced devices).
    visible = {
        sensor.id: (sensor, device, asset)
        for sensor, device, asset in rows
        if site_scope is None or (asset is not None and asset.site_id in site_scope)
    }
    ordered = [visible[i] for i in dict.fromkeys(wanted) if i in visible]
    cold_dir = params.settings.cold_dir if params.settings is not None else None
    latest = latest_values(session.connection(), list(visible), cold_dir=cold_dir)
    cells: list[tuple[Cell, ...]] = []
    for sensor, device, asset in ordered:
        point = latest.get(sensor.id)
        cells.append(
            (
                sensor.name or sensor.key,
                device.name or device.key,
                asset.tag if asset is not None else None,
                point.value if point is not None else None,
                sensor.unit or None,
                point.ts.astimezone(dt.UTC) if point is not None else None,
                QUALITY_NAMES.get(point.quality, str(point.quality)) if point else None,
            )
        )
    title = str(item.get("title") or "Live sensors")
    found.tables.append(Table(table_name(position, title), title, SENSOR_COLUMNS, tuple(cells)))
    found.summary.append(Figure(f"{title}: sensors", len(cells)))
