"""A query resolved against the model (pure): members, filters, order, access.

Every member name is looked up in the model (``Cube.member``), every operator checked against
the member's type and every value converted to the type it is compared with; filter values are
kept as Python values and later bound as parameters, never written into SQL. Measures come
from one cube (the base); dimensions from it or from cubes it joins. The caller's permissions
and site scope decide which cubes it may read (``analytics.access``).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from maintainpro.analytics.access import can_read
from maintainpro.analytics.semantic.model import (
    Cube,
    Dimension,
    DimensionType,
    Granularity,
    Measure,
    SemanticModel,
)
from maintainpro.analytics.semantic.query import (
    DEFAULT_LIMIT,
    AndGroup,
    Condition,
    Filter,
    OrGroup,
    Query,
    QueryError,
    QueryForbidden,
    shown,
)
from maintainpro.analytics.semantic.timeranges import TimeRange, date_range, day_span
from maintainpro.core.users import Permission

MAX_DIGITS: Final = 38


@dataclass(frozen=True)
class Access:
    """Who asks: the permissions of their role and the sites they may see (None: all)."""

    permissions: frozenset[Permission]
    scope: frozenset[int] | None

    @classmethod
    def unrestricted(cls) -> Access:
        """Every permission, every site (the CLI, benchmarks, tests of the SQL)."""
        return cls(frozenset(Permission), None)

    def may_read(self, cube: Cube) -> bool:
        """Whether the cube opens for these permissions and this scope."""
        return bool(cube.permissions & self.permissions) and can_read(cube.site_rule, self.scope)


@dataclass(frozen=True)
class DimensionMember:
    """A dimension of a cube, as a query names it."""

    owner: Cube
    dimension: Dimension

    @property
    def name(self) -> str:
        """``Cube.dimension``."""
        return f"{self.owner.name}.{self.dimension.name}"

    @property
    def is_time(self) -> bool:
        """Whether it is a time dimension."""
        return self.dimension.type is DimensionType.TIME


@dataclass(frozen=True)
class MeasureMember:
    """A measure of a cube, as a query names it."""

    owner: Cube
    measure: Measure

    @property
    def name(self) -> str:
        """``Cube.measure``."""
        return f"{self.owner.name}.{self.measure.name}"


@dataclass(frozen=True)
class TimeMember:
    """A time dimension of the query: bucketed, limited to a range, or both."""

    member: DimensionMember
    granularity: Granularity | None
    range: TimeRange | None

    @property
    def key(self) -> str:
        """The data key of its bucket: ``WorkOrders.createdAt.month``."""
        assert self.granularity is not None
        return f"{self.member.name}.{self.granularity.value}"


class Operator(enum.StrEnum):
    """Cube's filter operators."""

    EQUALS = "equals"
    NOT_EQUALS = "notEquals"
    CONTAINS = "contains"
    NOT_CONTAINS = "notContains"
    STARTS_WITH = "startsWith"
    NOT_STARTS_WITH = "notStartsWith"
    ENDS_WITH = "endsWith"
    NOT_ENDS_WITH = "notEndsWith"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    SET = "set"
    NOT_SET = "notSet"
    IN_DATE_RANGE = "inDateRange"
    NOT_IN_DATE_RANGE = "notInDateRange"
    BEFORE_DATE = "beforeDate"
    BEFORE_OR_ON_DATE = "beforeOrOnDate"
    AFTER_DATE = "afterDate"
    AFTER_OR_ON_DATE = "afterOrOnDate"


Op = Operator
PRESENCE: Final = frozenset({Op.SET, Op.NOT_SET})
COMPARISONS: Final = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE})
TEXT_MATCHES: Final = frozenset(
    {
        Op.CONTAINS,
        Op.NOT_CONTAINS,
        Op.STARTS_WITH,
        Op.NOT_STARTS_WITH,
        Op.ENDS_WITH,
        Op.NOT_ENDS_WITH,
    }
)
DATE_RANGES: Final = frozenset({Op.IN_DATE_RANGE, Op.NOT_IN_DATE_RANGE})
DATE_BOUNDS: Final = frozenset(
    {Op.BEFORE_DATE, Op.BEFORE_OR_ON_DATE, Op.AFTER_DATE, Op.AFTER_OR_ON_DATE}
)
EQUALITY: Final = frozenset({Op.EQUALS, Op.NOT_EQUALS})
ALLOWED: Final[dict[str, frozenset[Operator]]] = {
    DimensionType.STRING: EQUALITY | TEXT_MATCHES | PRESENCE,
    DimensionType.NUMBER: EQUALITY | COMPARISONS | PRESENCE,
    DimensionType.BOOLEAN: EQUALITY | PRESENCE,
    DimensionType.TIME: DATE_RANGES | DATE_BOUNDS | PRESENCE,
    "measure": EQUALITY | COMPARISONS | PRESENCE,
}


@dataclass(frozen=True)
class Check:
    """One condition: a member, an operator and converted values (time: the spans named)."""

    member: DimensionMember | MeasureMember
    operator: Operator
    values: tuple[Any, ...] = ()
    spans: tuple[TimeRange, ...] = ()


@dataclass(frozen=True)
class AnyOf:
    """Any of the nodes holds."""

    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class AllOf:
    """All of the nodes hold."""

    nodes: tuple[Node, ...]


Node = Check | AnyOf | AllOf


def checks(node: Node) -> list[Check]:
    """Every condition in a filter tree."""
    if isinstance(node, Check):
        return [node]
    return [c for n in node.nodes for c in checks(n)]


@dataclass(frozen=True)
class OutputColumn:
    """A column of the answer: its data keys, kind and member."""

    keys: tuple[str, ...]
    kind: Literal["dimension", "time", "measure"]
    member: DimensionMember | MeasureMember
    granularity: Granularity | None = None


@dataclass(frozen=True)
class Plan:
    """A query resolved: what to select from which cubes, how to filter, order and cut."""

    base: Cube
    joined: tuple[Cube, ...]
    dimensions: tuple[DimensionMember, ...]
    times: tuple[TimeMember, ...]
    measures: tuple[MeasureMember, ...]
    where: tuple[Node, ...]
    having: tuple[Node, ...]
    order: tuple[tuple[int, bool], ...]  # (column index, descending)
    limit: int
    offset: int
    total: bool

    @property
    def columns(self) -> list[OutputColumn]:
        """Grouping columns (dimensions, then time buckets), then measures."""
        columns = [OutputColumn((d.name,), "dimension", d) for d in self.dimensions]
        columns += [
            OutputColumn((t.key, t.member.name), "time", t.member, t.granularity)
            for t in self.bucketed
        ]
        columns += [OutputColumn((m.name,), "measure", m) for m in self.measures]
        return columns

    @property
    def bucketed(self) -> list[TimeMember]:
        """The time dimensions with a granularity (one column each)."""
        return [t for t in self.times if t.granularity is not None]

    @property
    def grouping_count(self) -> int:
        """How many leading columns are grouped by."""
        return len(self.dimensions) + len(self.bucketed)

    def measures_used(self) -> list[MeasureMember]:
        """Measures selected or filtered on."""
        used = list(self.measures)
        for node in self.having:
            used += [c.member for c in checks(node) if isinstance(c.member, MeasureMember)]
        return used


# --------------------------------------------------------------------------- resolving


def _split(name: str) -> tuple[str, str]:
    cube, dot, member = name.partition(".")
    if not dot or "." in member:
        raise QueryError(f"unknown member {shown(name)}: members are written Cube.member")
    return cube, member


def resolve_dimension(model: SemanticModel, name: str) -> DimensionMember:
    """A dimension by its query name; ``QueryError`` if there is none."""
    cube_name, member = _split(name)
    cube = model.cube(cube_name)
    dimension = cube.dimension(member) if cube else None
    if cube is None or dimension is None:
        raise QueryError(f"unknown dimension {shown(name)}")
    return DimensionMember(cube, dimension)


def resolve_measure(model: SemanticModel, name: str) -> MeasureMember:
    """A measure by its query name; ``QueryError`` if there is none."""
    cube_name, member = _split(name)
    cube = model.cube(cube_name)
    measure = cube.measure(member) if cube else None
    if cube is None or measure is None:
        raise QueryError(f"unknown measure {shown(name)}")
    return MeasureMember(cube, measure)


def _member(model: SemanticModel, name: str) -> DimensionMember | MeasureMember:
    cube_name, member = _split(name)
    cube = model.cube(cube_name)
    if cube is not None:
        if (measure := cube.measure(member)) is not None:
            return MeasureMember(cube, measure)
        if (dimension := cube.dimension(member)) is not None:
            return DimensionMember(cube, dimension)
    raise QueryError(f"unknown member {shown(name)}")


def _granularity(text: str | None) -> Granularity | None:
    if text is None:
        return None
    try:
        return Granularity(text)
    except ValueError:
        names = ", ".join(g.value for g in Granularity)
        raise QueryError(f"unknown granularity: use one of {names}") from None


def _number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QueryError("a value compared with a number is a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise QueryError("a value compared with a number is a number") from None
    if not number.is_finite() or len(number.as_tuple().digits) > MAX_DIGITS:
        raise QueryError("a number value is not finite or has too many digits")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise QueryError("a value compared with a yes/no dimension is true or false")


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QueryError("a value compared with text is a string")
    return str(value)


def _condition(model: SemanticModel, condition: Condition, today: dt.date) -> Check:
    member = _member(model, condition.target)
    kind: str = "measure" if isinstance(member, MeasureMember) else member.dimension.type
    try:
        operator = Operator(condition.operator)
    except ValueError:
        raise QueryError(f"unknown filter operator on {member.name}") from None
    if operator not in ALLOWED[kind]:
        raise QueryError(f"the operator {operator.value} does not apply to {member.name}")
    raw = list(condition.values or [])
    if any(v is None for v in raw):
        raise QueryError(f"a filter on {member.name} has a null value (use set or notSet)")
    if operator in PRESENCE:
        if raw:
            raise QueryError(f"{operator.value} takes no values ({member.name})")
        return Check(member, operator)
    wanted = {**dict.fromkeys(DATE_RANGES, 2), **dict.fromkeys(DATE_BOUNDS | COMPARISONS, 1)}
    count = wanted.get(operator)
    if (count is not None and len(raw) != count) or not raw:
        expected = f"exactly {count}" if count else "at least one"
        raise QueryError(f"{operator.value} on {member.name} takes {expected} value(s)")
    if operator in DATE_RANGES:
        span = date_range([_text(v) for v in raw], today)
        return Check(member, operator, spans=(span,))
    if operator in DATE_BOUNDS:
        return Check(member, operator, spans=(day_span(_text(raw[0])),))
    convert = {"measure": _number, DimensionType.NUMBER: _number, DimensionType.BOOLEAN: _boolean}
    values = tuple(convert.get(kind, _text)(v) for v in raw)
    return Check(member, operator, values=values)


def _node(model: SemanticModel, item: Filter, today: dt.date) -> Node:
    if isinstance(item, OrGroup):
        return AnyOf(tuple(_node(model, f, today) for f in item.any_of))
    if isinstance(item, AndGroup):
        return AllOf(tuple(_node(model, f, today) for f in item.all_of))
    return _condition(model, item, today)


def _split_filters(nodes: list[Node]) -> tuple[tuple[Node, ...], tuple[Node, ...]]:
    where: list[Node] = []
    having: list[Node] = []
    for node in nodes:
        kinds = {isinstance(c.member, MeasureMember) for c in checks(node)}
        if len(kinds) > 1:
            raise QueryError("a filter group cannot mix measures and dimensions")
        (having if True in kinds else where).append(node)
    return tuple(where), tuple(having)


def _base(
    measures: list[MeasureMember], owners: list[Cube], model: SemanticModel
) -> tuple[Cube, tuple[Cube, ...]]:
    cubes = list(dict.fromkeys([m.owner for m in measures] + owners))
    measure_cubes = {m.owner.name for m in measures}
    if len(measure_cubes) > 1:
        raise QueryError("measures come from one cube per query")
    candidates = [measures[0].owner] if measures else cubes
    for base in candidates:
        others = [c for c in cubes if c.name != base.name]
        if all(base.join(c.name) is not None for c in others):
            return base, tuple(others)
    names = ", ".join(sorted(c.name for c in cubes))
    raise QueryError(f"the cubes {names} cannot be combined: no join between them")


def _order(query: Query, columns: list[OutputColumn]) -> tuple[tuple[int, bool], ...]:
    index: dict[str, int] = {}
    for i, column in enumerate(columns):
        for key in column.keys:
            index.setdefault(key, i)
    pairs = query.order_pairs()
    chosen: list[tuple[int, bool]] = []
    if pairs is None:
        grouped = [i for i, c in enumerate(columns) if c.kind != "measure"]
        measures = [i for i, c in enumerate(columns) if c.kind == "measure"]
        time = [i for i, c in enumerate(columns) if c.kind == "time"]
        if time:
            chosen.append((time[0], False))
        elif measures:
            chosen.append((measures[0], True))
        elif grouped:
            chosen.append((grouped[0], False))
    else:
        for member, direction in pairs:
            if member not in index:
                raise QueryError(f"order names {shown(member)}, which the query does not select")
            chosen.append((index[member], direction == "desc"))
    # Then every grouping column, so equal sort keys still come out in one stable order.
    taken = {i for i, _ in chosen}
    chosen += [(i, False) for i, c in enumerate(columns) if c.kind != "measure" and i not in taken]
    return tuple(dict.fromkeys(chosen))


def plan_query(model: SemanticModel, query: Query, access: Access, today: dt.date) -> Plan:
    """Resolve a parsed query; ``QueryError`` (400) or ``QueryForbidden`` (403) if it cannot be
    answered for this caller."""
    measures = [resolve_measure(model, name) for name in dict.fromkeys(query.measures)]
    dimensions = [resolve_dimension(model, name) for name in dict.fromkeys(query.dimensions)]
    times: list[TimeMember] = []
    for entry in query.time_dimensions:
        member = resolve_dimension(model, entry.dimension)
        if not member.is_time:
            raise QueryError(f"{member.name} is not a time dimension")
        span = date_range(entry.date_range, today) if entry.date_range is not None else None
        times.append(TimeMember(member, _granularity(entry.granularity), span))
    nodes = [_node(model, f, today) for f in query.filters]
    where, having = _split_filters(nodes)
    if not measures and not dimensions and not any(t.granularity for t in times):
        raise QueryError("a query asks for at least one measure, dimension or time granularity")
    owners = [d.owner for d in dimensions] + [t.member.owner for t in times]
    owners += [c.member.owner for n in nodes for c in checks(n)]
    base, joined = _base(measures, owners, model)
    for cube in (base, *joined):
        if not access.may_read(cube):
            raise QueryForbidden(f"you may not read the cube {cube.name}")
    draft = Plan(
        base=base,
        joined=joined,
        dimensions=tuple(dimensions),
        times=tuple(times),
        measures=tuple(measures),
        where=where,
        having=having,
        order=(),
        limit=query.limit or DEFAULT_LIMIT,
        offset=query.offset,
        total=query.total,
    )
    for used in draft.measures_used():
        if used.owner.name != base.name:
            raise QueryError(f"a measure filter names {used.name}, not a measure of {base.name}")
    return replace(draft, order=_order(query, draft.columns))
