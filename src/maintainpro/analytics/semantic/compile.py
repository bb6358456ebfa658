"""From a query to parameterised DuckDB SQL (pure), over a pre-aggregation or the base facts.

``compile_query`` reads the query JSON, resolves it (``plan``), picks the pre-aggregation that
covers it, if any (``choose``), and renders one statement. Both sources answer through the same
text: the grouping columns, the measures, the row filter of the caller's site scope, the
conditions (values always bound as ``?`` parameters), HAVING for measure filters, ORDER BY
(ties broken by every grouping column, so an answer's order is stable), LIMIT and OFFSET.

A pre-aggregation covers a query when it belongs to the query's cube and holds every measure
used (a distinct count never), every dimension selected or filtered on, and the query's time
dimension at a granularity its buckets add up to, with every date bound on a bucket boundary.
Among the grouping sets that hold the query's dimensions, the one with the fewest rows is read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from maintainpro.analytics.access import SiteRule, scope_predicate
from maintainpro.analytics.semantic.model import (
    ROLLS_UP_TO,
    Cube,
    Granularity,
    Measure,
    MeasureType,
    SemanticModel,
)
from maintainpro.analytics.semantic.plan import (
    DATE_BOUNDS,
    DATE_RANGES,
    PRESENCE,
    Access,
    AnyOf,
    Check,
    DimensionMember,
    MeasureMember,
    Node,
    Operator,
    Plan,
    checks,
    plan_query,
)
from maintainpro.analytics.semantic.preaggs import (
    BUCKET,
    GID,
    SITE,
    Layout,
    measure_columns,
)
from maintainpro.analytics.semantic.query import Query, parse_query
from maintainpro.analytics.semantic.sql import (
    bucket_sql,
    dimension_sql,
    formula,
    measure_sql,
    quote,
    relation,
)
from maintainpro.analytics.semantic.timeranges import is_aligned

STORED_ALIAS: Final = "p"
_SIMPLE: Final[dict[Operator, str]] = {
    Operator.GT: ">",
    Operator.GTE: ">=",
    Operator.LT: "<",
    Operator.LTE: "<=",
}
_PATTERNS: Final[dict[Operator, tuple[str, str, bool]]] = {
    Operator.CONTAINS: ("%", "%", False),
    Operator.NOT_CONTAINS: ("%", "%", True),
    Operator.STARTS_WITH: ("", "%", False),
    Operator.NOT_STARTS_WITH: ("", "%", True),
    Operator.ENDS_WITH: ("%", "", False),
    Operator.NOT_ENDS_WITH: ("%", "", True),
}


class Source(Protocol):
    """Where a plan's rows come from, and how each member reads there."""

    def relation(self) -> str:
        """FROM text (no parameters)."""

    def restrictions(self) -> tuple[list[str], list[Any]]:
        """Conditions every row must meet (site scope, grouping set), with parameters."""

    def dimension(self, member: DimensionMember) -> str:
        """A dimension's value."""

    def bucket(self, member: DimensionMember, granularity: Granularity) -> str:
        """A time dimension's bucket at a granularity."""

    def measure(self, member: MeasureMember) -> str:
        """A measure's aggregate."""


class BaseSource:
    """The cube's own rows (facts joined to the dimension cubes the query uses)."""

    def __init__(self, plan: Plan, scope: frozenset[int] | None) -> None:
        """Read ``plan``'s cubes for a caller with this site scope."""
        self.plan = plan
        self.scope = scope

    def relation(self) -> str:
        """The base cube LEFT JOINed to the cubes the query names."""
        return relation(self.plan.base, self.plan.joined)

    def restrictions(self) -> tuple[list[str], list[Any]]:
        """The caller's site scope on the base cube's rows."""
        sql, params = scope_predicate(self.plan.base.site_rule, self.scope, self.plan.base.name)
        return [sql], params

    def dimension(self, member: DimensionMember) -> str:
        """The dimension's SQL."""
        return dimension_sql(member.owner, member.dimension)

    def bucket(self, member: DimensionMember, granularity: Granularity) -> str:
        """date_trunc of the time dimension."""
        return bucket_sql(self.dimension(member), granularity)

    def measure(self, member: MeasureMember) -> str:
        """The measure aggregated over the rows."""
        return measure_sql(member.owner, member.measure)


class StoredSource:
    """One grouping set of a pre-aggregation, added up again."""

    def __init__(self, layout: Layout, gid: int, scope: frozenset[int] | None) -> None:
        """Read the rows of grouping set ``gid`` for a caller with this site scope."""
        self.layout = layout
        self.gid = gid
        self.scope = scope

    def _column(self, name: str) -> str:
        return f"{quote(STORED_ALIAS)}.{quote(name)}"

    def relation(self) -> str:
        """The pre-aggregation table."""
        return f"{quote(self.layout.table)} AS {quote(STORED_ALIAS)}"

    def restrictions(self) -> tuple[list[str], list[Any]]:
        """The grouping set, and the site scope on the stored site column."""
        rule = SiteRule(column=SITE) if self.layout.has_site else self.layout.cube.site_rule
        sql, params = scope_predicate(rule, self.scope, STORED_ALIAS)
        return [f"{self._column(GID)} = ?", sql], [self.gid, *params]

    def dimension(self, member: DimensionMember) -> str:
        """The stored column (a time dimension reads as its bucket)."""
        if member.is_time:
            return self._column(BUCKET)
        return self._column(f"{member.owner.name}__{member.dimension.name}")

    def bucket(self, member: DimensionMember, granularity: Granularity) -> str:
        """The stored bucket truncated to a coarser granularity."""
        return bucket_sql(self._column(BUCKET), granularity)

    def measure(self, member: MeasureMember) -> str:
        """The stored figures added up again."""
        return self._stored(member.owner, member.measure)

    def _stored(self, cube: Cube, measure: Measure) -> str:
        if measure.type is MeasureType.NUMBER:

            def part(name: str) -> str:
                found = cube.measure(name)
                assert found is not None
                return self._stored(cube, found)

            return formula(measure, part)
        columns = [self._column(c) for c in measure_columns(measure)]
        if measure.type is MeasureType.COUNT:
            # A count of no rows is 0, not NULL, as count(*) over the facts gives.
            return f"coalesce(CAST(sum({columns[0]}) AS BIGINT), 0)"
        if measure.type is MeasureType.AVG:
            return f"(sum({columns[0]}) / NULLIF(CAST(sum({columns[1]}) AS BIGINT), 0))"
        function = {MeasureType.SUM: "sum", MeasureType.MIN: "min", MeasureType.MAX: "max"}
        return f"{function[measure.type]}({columns[0]})"


# --------------------------------------------------------------------------- conditions


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def check_sql(check: Check, expr: str) -> tuple[str, list[Any]]:
    """One condition on ``expr`` with its parameters."""
    op = check.operator
    if op is Operator.SET:
        return f"{expr} IS NOT NULL", []
    if op is Operator.NOT_SET:
        return f"{expr} IS NULL", []
    if op in DATE_RANGES or op in DATE_BOUNDS:
        span = check.spans[0]
        if op is Operator.IN_DATE_RANGE:
            return f"({expr} >= ? AND {expr} < ?)", [span.start, span.end]
        if op is Operator.NOT_IN_DATE_RANGE:
            return f"({expr} < ? OR {expr} >= ?)", [span.start, span.end]
        if op is Operator.BEFORE_DATE:
            return f"{expr} < ?", [span.start]
        if op is Operator.BEFORE_OR_ON_DATE:
            return f"{expr} < ?", [span.end]
        if op is Operator.AFTER_DATE:
            return f"{expr} >= ?", [span.end]
        return f"{expr} >= ?", [span.start]
    values = list(check.values)
    marks = ", ".join("?" * len(values))
    if op is Operator.EQUALS:
        return f"{expr} IN ({marks})", values
    if op is Operator.NOT_EQUALS:
        return f"({expr} NOT IN ({marks}) OR {expr} IS NULL)", values
    if op in _SIMPLE:
        return f"{expr} {_SIMPLE[op]} ?", values
    before, after, negated = _PATTERNS[op]
    matches = " OR ".join(f"{expr} ILIKE ? ESCAPE '\\'" for _ in values)
    params = [f"{before}{_like(str(v))}{after}" for v in values]
    if negated:
        return f"({expr} IS NULL OR NOT ({matches}))", params
    return f"({matches})", params


def node_sql(node: Node, expression: Callable[[Check], str]) -> tuple[str, list[Any]]:
    """A filter tree as one condition; ``expression`` gives the SQL a check compares."""
    if isinstance(node, Check):
        return check_sql(node, expression(node))
    parts = [node_sql(n, expression) for n in node.nodes]
    joiner = " OR " if isinstance(node, AnyOf) else " AND "
    return "(" + joiner.join(p[0] for p in parts) + ")", [v for p in parts for v in p[1]]


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Statement:
    """SQL with ``?`` parameters, and the statement counting all rows (``total``)."""

    sql: str
    params: list[Any]
    count_sql: str
    count_params: list[Any]


def render(plan: Plan, source: Source) -> Statement:
    """The plan as one SELECT over the source."""
    select: list[str] = []
    for i, column in enumerate(plan.columns):
        member = column.member
        if column.kind == "measure":
            assert isinstance(member, MeasureMember)
            select.append(f"{source.measure(member)} AS c{i}")
        elif column.kind == "time":
            assert isinstance(member, DimensionMember)
            assert column.granularity is not None
            select.append(f"{source.bucket(member, column.granularity)} AS c{i}")
        else:
            assert isinstance(member, DimensionMember)
            select.append(f"{source.dimension(member)} AS c{i}")
    where, params = source.restrictions()
    for time in plan.times:
        if time.range is not None:
            value = source.dimension(time.member)
            where.append(f"({value} >= ? AND {value} < ?)")
            params += [time.range.start, time.range.end]

    def expression(check: Check) -> str:
        if isinstance(check.member, MeasureMember):
            return source.measure(check.member)
        return source.dimension(check.member)

    for node in plan.where:
        sql, values = node_sql(node, expression)
        where.append(sql)
        params += values
    text = f"SELECT {', '.join(select)} FROM {source.relation()} WHERE {' AND '.join(where)}"  # noqa: S608 - model text; values bound
    grouped = plan.grouping_count
    if grouped:
        text += " GROUP BY " + ", ".join(str(i + 1) for i in range(grouped))
    having: list[str] = []
    for node in plan.having:
        sql, values = node_sql(node, expression)
        having.append(sql)
        params += values
    if having:
        text += " HAVING " + " AND ".join(having)
    counted = f"SELECT count(*) FROM ({text}) AS q"  # noqa: S608 - built above
    count_params = list(params)
    if plan.order:
        text += " ORDER BY " + ", ".join(
            f"{i + 1} {'DESC' if descending else 'ASC'} NULLS LAST" for i, descending in plan.order
        )
    text += " LIMIT ? OFFSET ?"
    return Statement(text, [*params, plan.limit, plan.offset], counted, count_params)


# --------------------------------------------------------------------------- pre-aggregations


@dataclass(frozen=True)
class StoredState:
    """What the warehouse holds of one pre-aggregation."""

    table: str
    definition_hash: str
    refreshed_at: dt.datetime
    etl_marker: dt.datetime | None
    set_rows: Mapping[int, int]


@dataclass(frozen=True)
class Choice:
    """Which source answers: a pre-aggregation's grouping set, or the base facts and why."""

    layout: Layout | None = None
    gid: int | None = None
    grouping_set: tuple[str, ...] = ()
    reason: str | None = None


def _bound_aligned(check: Check, layout: Layout) -> bool:
    granularity = layout.pre.granularity
    span = check.spans[0]
    if check.operator in DATE_RANGES:
        return span.aligned_to(granularity)
    used = {
        Operator.BEFORE_DATE: span.start,
        Operator.BEFORE_OR_ON_DATE: span.end,
        Operator.AFTER_DATE: span.end,
        Operator.AFTER_OR_ON_DATE: span.start,
    }[check.operator]
    return is_aligned(used, granularity)


def coverage(plan: Plan, layout: Layout) -> frozenset[int] | str:
    """The dimension positions a grouping set must hold to answer the plan, or why the
    pre-aggregation cannot."""
    if layout.cube.name != plan.base.name:
        return "no pre-aggregation of this cube"
    for member in plan.measures_used():
        if member.measure.type is MeasureType.COUNT_DISTINCT:
            return f"{member.name} is a distinct count, computed from the facts"
        if not layout.stores(member.measure):
            return f"{layout.name} does not hold {member.name}"
    time = layout.time
    for entry in plan.times:
        if (
            time is None
            or entry.member.owner.name != plan.base.name
            or entry.member.dimension != time
        ):
            return f"{layout.name} is not bucketed by {entry.member.name}"
        if (
            entry.granularity is not None
            and entry.granularity not in ROLLS_UP_TO[layout.pre.granularity]
        ):
            held = layout.pre.granularity.value
            return f"{layout.name} holds {held}s, not {entry.granularity.value}s"
        if entry.range is not None and not entry.range.aligned_to(layout.pre.granularity):
            return f"the date range does not fall on {layout.pre.granularity.value} boundaries"
    needed: set[int] = set()
    members: list[DimensionMember] = list(plan.dimensions)
    for node in plan.where:
        for check in checks(node):
            assert isinstance(check.member, DimensionMember)
            if check.member.is_time:
                same = time is not None and check.member.owner.name == plan.base.name
                if not same or check.member.dimension != time:
                    return f"{layout.name} is not bucketed by {check.member.name}"
                if check.operator not in PRESENCE and not _bound_aligned(check, layout):
                    return (
                        f"a date filter does not fall on {layout.pre.granularity.value} boundaries"
                    )
            else:
                members.append(check.member)
    for dimension in members:
        if dimension.is_time:
            return f"{dimension.name} is selected as a raw time (use a granularity)"
        position = layout.position(dimension.name)
        if position is None:
            return f"{layout.name} is not grouped by {dimension.name}"
        needed.add(position)
    return frozenset(needed)


def choose(
    plan: Plan,
    layouts: Sequence[Layout],
    states: Mapping[str, StoredState],
    etl_marker: dt.datetime | None = None,
) -> Choice:
    """The cheapest covering grouping set of a built, current pre-aggregation, else why not.

    A pre-aggregation refreshed before the warehouse's last ETL run (``etl_marker``) is not
    read: the facts may have moved on, and an answer never mixes old figures with new ones.
    """
    best: tuple[tuple[int, int], Layout, frozenset[int]] | None = None
    reasons: list[str] = []
    for layout in layouts:
        if layout.cube.name != plan.base.name:
            continue
        needed = coverage(plan, layout)
        if isinstance(needed, str):
            reasons.append(needed)
            continue
        state = states.get(layout.table)
        if state is None or state.definition_hash != layout.definition_hash:
            reasons.append(f"{layout.name} has not been built (run maintainpro cubes refresh)")
            continue
        if state.etl_marker != etl_marker:
            reasons.append(f"{layout.name} is older than the last warehouse load")
            continue
        for grouping_set in layout.sets:
            if needed <= grouping_set:
                # Fewest rows first; on a tie, fewest columns (less to add up on new data).
                cost = (state.set_rows.get(layout.gid(grouping_set), 0), len(grouping_set))
                if best is None or cost < best[0]:
                    best = (cost, layout, grouping_set)
    if best is None:
        return Choice(reason=reasons[0] if reasons else "no pre-aggregation of this cube")
    _, layout, grouping_set = best
    held = tuple(layout.dimensions[i].member for i in sorted(grouping_set))
    return Choice(layout, layout.gid(grouping_set), held)


@dataclass(frozen=True)
class Compiled:
    """A query ready to run: its plan, the chosen source and the statement."""

    query: Query
    plan: Plan
    choice: Choice
    statement: Statement


def compile_query(
    model: SemanticModel,
    raw: Any,
    access: Access,
    *,
    today: dt.date,
    layouts: Sequence[Layout] = (),
    states: Mapping[str, StoredState] | None = None,
    etl_marker: dt.datetime | None = None,
    use_pre_aggregations: bool = True,
) -> Compiled:
    """Query JSON to SQL for this caller; ``QueryError``/``QueryForbidden`` if it cannot be."""
    query = parse_query(raw)
    plan = plan_query(model, query, access, today)
    if use_pre_aggregations:
        choice = choose(plan, layouts, states or {}, etl_marker)
    else:
        choice = Choice(reason="pre-aggregations not used for this query")
    source: Source
    if choice.layout is not None and choice.gid is not None:
        source = StoredSource(choice.layout, choice.gid, access.scope)
    else:
        source = BaseSource(plan, access.scope)
    return Compiled(query, plan, choice, render(plan, source))
