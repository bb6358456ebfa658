"""A saved question as a report: a Cube-style query over the semantic model, answered from the
warehouse with the recipient's site scope and no more than the report owner may read.

``params``: ``{"query": {...Cube query...}, "chart": "bar", "use_period": true}``. With
``use_period`` (the default) every time dimension of the query is limited to the report's
period, so "last month's work orders by site" stays last month's on every run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import duckdb
from sqlalchemy.orm import Session

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
from maintainpro.analytics.reports.supply_sources import NO_SITE_NOTE
from maintainpro.analytics.semantic.compile import compile_query
from maintainpro.analytics.semantic.load import prepare
from maintainpro.analytics.semantic.load import run as run_query
from maintainpro.analytics.semantic.model import DimensionType, MeasureType, default_model
from maintainpro.analytics.semantic.plan import Access, MeasureMember, OutputColumn, Plan
from maintainpro.analytics.semantic.query import QueryError, QueryForbidden
from maintainpro.analytics.semantic.results import cube_title, member_title
from maintainpro.analytics.warehouse import WarehouseError, open_read_only
from maintainpro.config import Settings
from maintainpro.core.users import Permission

OPTIONS: Final = frozenset({"query", "chart", "use_period"})
MAX_SERIES: Final = 4
# Counts and sums add up over rows; averages, minimums and ratios do not.
_TOTALLED: Final = frozenset({MeasureType.COUNT, MeasureType.SUM})
# Checking a query's members needs a "today" only for relative date ranges.
_CHECK_DAY: Final = dt.date(2000, 1, 1)


class QueryNotAllowed(SourceError):
    """The query reads a cube the person may not read."""


def check_query(
    query: Any, permissions: frozenset[Permission], site_scope: SiteScope
) -> dict[str, Any]:
    """The query, if it names known members this person may read; SourceError otherwise."""
    try:
        compile_query(default_model(), query, Access(permissions, site_scope), today=_CHECK_DAY)
    except QueryForbidden as exc:
        raise QueryNotAllowed(str(exc)) from None
    except QueryError as exc:
        raise SourceError(f"query: {exc}") from None
    assert isinstance(query, dict)
    return query


def with_period(query: Mapping[str, Any], start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """The query with every time dimension limited to [start, end) (the warehouse is naive UTC)."""
    first = start.astimezone(dt.UTC).replace(tzinfo=None)
    last = (end - dt.timedelta(microseconds=1)).astimezone(dt.UTC).replace(tzinfo=None)
    limited = dict(query)
    limited["timeDimensions"] = [
        {**dict(t), "dateRange": [first.isoformat(), last.isoformat()]}
        for t in query.get("timeDimensions") or []
    ]
    return limited


def _kind(column: OutputColumn) -> tuple[ColumnKind, int]:
    member = column.member
    if isinstance(member, MeasureMember):
        if member.measure.type in (MeasureType.COUNT, MeasureType.COUNT_DISTINCT):
            return ColumnKind.INTEGER, 0
        return ColumnKind.DECIMAL, 2
    if column.kind == "time" or member.dimension.type is DimensionType.TIME:
        return ColumnKind.DATETIME, 0
    if member.dimension.type is DimensionType.NUMBER:
        return ColumnKind.DECIMAL, 2
    return ColumnKind.TEXT, 0


def _titles(columns: list[OutputColumn]) -> list[str]:
    """Each member's own title ("Site", "Work orders"), with its cube's where two would clash."""

    def own(column: OutputColumn, qualified: bool) -> str:
        member = column.member
        inner = member.measure if isinstance(member, MeasureMember) else member.dimension
        title = member_title(inner)
        if qualified:
            title = f"{cube_title(member.owner)} {title}"
        return f"{title} ({column.granularity.value})" if column.granularity is not None else title

    short = [own(c, False) for c in columns]
    return [own(c, short.count(t) > 1) for c, t in zip(columns, short, strict=True)]


def _cell(value: Any) -> Cell:
    if isinstance(value, dt.datetime):
        # The warehouse keeps naive UTC.
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or isinstance(value, str | int | float | Decimal | dt.date):
        return value
    return str(value)


def readable_plan(
    query: Mapping[str, Any], permissions: frozenset[Permission], today: dt.date
) -> Plan:
    """The query's plan when these permissions may read every cube it names; QueryNotAllowed
    (or SourceError for a query the model does not read) otherwise."""
    try:
        return compile_query(default_model(), query, Access(permissions, None), today=today).plan
    except QueryForbidden as exc:
        raise QueryNotAllowed(str(exc)) from None
    except QueryError as exc:
        raise SourceError(f"query: {exc}") from None


@dataclass(frozen=True)
class Section:
    """One answered query: its table, its chart, its totals and what to say about it."""

    table: Table
    chart: ChartSpec | None
    totals: tuple[Figure, ...]
    notes: tuple[str, ...]


def answer_section(
    connection: duckdb.DuckDBPyConnection,
    query: Mapping[str, Any],
    permissions: frozenset[Permission],
    site_scope: SiteScope,
    today: dt.date,
    *,
    name: str,
    title: str,
    chart: ChartKind | None,
) -> Section:
    """A query answered for a scope as one table (and a chart when ``chart`` is given).

    QueryNotAllowed when the permissions may not read a cube of the query at all; a cube that
    has no site rows for the scope gives no rows and a note instead.
    """
    model = default_model()
    # What the owner may read decides whether the query can run at all ...
    plan = readable_plan(query, permissions, today)
    # ... and the recipient's sites what it holds: a cube no site's user may read (the
    # procurement facts) gives a site recipient no rows rather than an error.
    rows: list[tuple[Any, ...]] = []
    notes: list[str] = []
    try:
        compiled = prepare(connection, model, query, Access(permissions, site_scope), today=today)
        rows = run_query(connection, compiled)
    except QueryForbidden:
        notes.append(NO_SITE_NOTE)
    except QueryError as exc:
        raise SourceError(f"query: {exc}") from None
    plan_columns = plan.columns
    kinds = [_kind(c) for c in plan_columns]
    columns = tuple(
        Column(f"c{i}", column_title, kind, places)
        for i, (column_title, (kind, places)) in enumerate(
            zip(_titles(plan_columns), kinds, strict=True)
        )
    )
    table = Table(name, title, columns, tuple(tuple(_cell(v) for v in row) for row in rows))
    measures = [i for i, c in enumerate(plan_columns) if c.kind == "measure"]
    groups = [i for i, c in enumerate(plan_columns) if c.kind != "measure"]
    spec = None
    if chart is not None and measures and groups:
        spec = ChartSpec(
            title,
            chart,
            name,
            columns[groups[0]].key,
            tuple(columns[i].key for i in measures[:MAX_SERIES]),
        )
    totals: list[Figure] = []
    for i in measures:
        member = plan_columns[i].member
        assert isinstance(member, MeasureMember)
        if member.measure.type in _TOTALLED:
            values = [row[i] for row in rows if isinstance(row[i], int | float | Decimal)]
            total = sum((Decimal(str(v)) for v in values), Decimal(0))
            kind, places = kinds[i]
            shown: Cell = int(total) if kind is ColumnKind.INTEGER else total
            totals.append(Figure(f"{columns[i].title} (total)", shown, kind, places))
    return Section(table, spec, tuple(totals), tuple(notes))


def open_warehouse(settings: Settings | None, what: str) -> duckdb.DuckDBPyConnection:
    """The warehouse, read-only; SourceError without settings, RuntimeError (retried) when it
    cannot be opened."""
    if settings is None:
        raise SourceError(f"{what} needs the warehouse settings")
    try:
        return open_read_only(settings)
    except (WarehouseError, duckdb.Error) as exc:
        # Retried: the warehouse may be rebuilding.
        raise RuntimeError(f"the warehouse cannot be opened: {exc}") from exc


WAREHOUSE_NOTE: Final = "Answered from the analytics warehouse as of its last load."


@dataclass(frozen=True)
class SavedQuery:
    """A saved question (a Cube-style query) run through the semantic model."""

    name: str = "saved_query"
    title: str = "Saved question"

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``query`` (required), ``chart`` (bar, line, ...; default bar), ``use_period``."""
        if set(options) - OPTIONS:
            raise SourceError("saved_query takes the options query, chart and use_period")
        if "query" not in options:
            raise SourceError("saved_query needs a query (a Cube-style query object)")
        chart = options.get("chart", ChartKind.BAR.value)
        if chart not in {k.value for k in ChartKind}:
            raise SourceError("chart must be one of " + ", ".join(k.value for k in ChartKind))
        use_period = options.get("use_period", True)
        if not isinstance(use_period, bool):
            raise SourceError("use_period must be true or false")
        query = check_query(options["query"], frozenset(Permission), None)
        return {"query": query, "chart": chart, "use_period": use_period}

    def run(self, session: Session, params: RunParams, site_scope: SiteScope) -> ReportData:
        """The query's answer for the scope, as one table and a chart."""
        options = self.check(params.options)
        query = options["query"]
        if options["use_period"]:
            query = with_period(query, params.period_start, params.period_end)
        permissions = frozenset(Permission) if params.permissions is None else params.permissions
        # Checked before the warehouse is opened: a refusal is final, a closed warehouse is not.
        readable_plan(query, permissions, params.as_of.date())
        connection = open_warehouse(params.settings, "a saved question")
        try:
            section = answer_section(
                connection,
                query,
                permissions,
                site_scope,
                params.as_of.date(),
                name="answer",
                title=params.title,
                chart=ChartKind(options["chart"]),
            )
        finally:
            connection.close()
        return ReportData(
            title=params.title,
            period_start=params.period_start,
            period_end=params.period_end,
            timezone=params.timezone,
            generated_at=params.as_of,
            summary=(Figure("Rows", len(section.table.rows)), *section.totals),
            tables=(section.table,),
            charts=(section.chart,) if section.chart is not None else (),
            notes=(WAREHOUSE_NOTE, *section.notes),
        )
