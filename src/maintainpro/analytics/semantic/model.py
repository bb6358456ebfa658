"""The semantic model: cubes with measures, dimensions, hierarchies, joins and pre-aggregations.

The model is YAML in Cube's shape (``cubes:`` with ``measures``, ``dimensions``, ``joins``,
``hierarchies``, ``pre_aggregations``), read into frozen pydantic objects and checked against the
warehouse schema: every table and column a snippet names exists, every reference resolves, and a
pre-aggregation holds only measures that can be added up again (count, sum, min, max, avg kept
as sum and count; a ``number`` measure through its parts). A model that fails a check is refused
whole with a ``ModelError`` naming where (``cubes[WorkOrders].measures[mttr]: ...``).

SQL snippets are trusted text from whoever ships the model, never from a query: a bare column
name (``downtime_hours``) or an expression naming columns as ``{CUBE}.column`` and, in a join,
``{Other}.column``. A ``number`` measure combines other measures of its cube as ``{name}``.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping
from importlib.resources import files
from itertools import combinations, product
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from maintainpro.analytics import schema
from maintainpro.analytics.access import ALL_SITES_ONLY, SiteRule, rule_for
from maintainpro.core.users import Permission

DEFAULT_MODEL: Final = "default_model.yaml"
# Names become SQL aliases and pre-aggregation column names (cube__member), so no double
# underscore, and at most 63 characters (PostgreSQL's identifier limit, for a future target).
NAME_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*$"
MAX_NAME: Final = 63
COLUMN_PATTERN: Final = re.compile(r"^[a-z_][a-z0-9_]*$")
PLACEHOLDER: Final = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")
COLUMN_REF: Final = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}\.([a-z_][a-z0-9_]*)")
MAX_TITLE: Final = 120
SELF: Final = "CUBE"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=MAX_NAME)]
Snippet = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE)]


class ModelError(ValueError):
    """The semantic model is not valid; the message says where and why."""


class MeasureType(enum.StrEnum):
    """How a measure aggregates (Cube's measure types)."""

    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    COUNT_DISTINCT = "countDistinct"
    NUMBER = "number"  # a formula over other measures of the cube


ADDITIVE: Final = frozenset(
    {MeasureType.COUNT, MeasureType.SUM, MeasureType.AVG, MeasureType.MIN, MeasureType.MAX}
)


class DimensionType(enum.StrEnum):
    """The kind of value a dimension has."""

    STRING = "string"
    NUMBER = "number"
    TIME = "time"
    BOOLEAN = "boolean"


class Granularity(enum.StrEnum):
    """Time buckets, finest first."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


# Which query granularities a bucket of each granularity can be rolled up into.
ROLLS_UP_TO: Final[dict[Granularity, frozenset[Granularity]]] = {
    Granularity.HOUR: frozenset(Granularity),
    Granularity.DAY: frozenset(Granularity) - {Granularity.HOUR},
    Granularity.WEEK: frozenset({Granularity.WEEK}),
    Granularity.MONTH: frozenset({Granularity.MONTH, Granularity.QUARTER, Granularity.YEAR}),
    Granularity.QUARTER: frozenset({Granularity.QUARTER, Granularity.YEAR}),
    Granularity.YEAR: frozenset({Granularity.YEAR}),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Measure(_Frozen):
    """A figure of a cube: an aggregate of a column, or a formula over other measures."""

    name: Name
    type: MeasureType
    sql: Snippet | None = None
    title: Title | None = None
    description: str = ""
    format: Literal["currency", "percent", "hours", "days", "number"] | None = None
    # Conditions on the cube's rows (trusted SQL), all of which a row must meet to count.
    filters: tuple[Snippet, ...] = ()

    @property
    def additive(self) -> bool:
        """Whether partial results can be combined (so a pre-aggregation can hold it)."""
        return self.type in ADDITIVE


class Dimension(_Frozen):
    """An attribute rows can be grouped and filtered by."""

    name: Name
    type: DimensionType
    sql: Snippet
    title: Title | None = None
    description: str = ""
    primary_key: bool = False


class Join(_Frozen):
    """A many-to-one join from a cube to another cube (each row finds at most one)."""

    cube: Name
    relationship: Literal["many_to_one"] = "many_to_one"
    sql: Snippet


class Hierarchy(_Frozen):
    """A drill path: levels from coarse to fine (``site > line > asset``)."""

    name: Name
    title: Title | None = None
    levels: tuple[str, ...] = Field(min_length=2, max_length=8)


class Grouping(_Frozen):
    """One term of a pre-aggregation's GROUP BY: ROLLUP, CUBE or explicit GROUPING SETS."""

    rollup: tuple[str, ...] | None = None
    cube: tuple[str, ...] | None = None
    sets: tuple[tuple[str, ...], ...] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Grouping:
        given = [k for k in ("rollup", "cube", "sets") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a grouping is exactly one of rollup, cube or sets")
        return self

    @property
    def members(self) -> tuple[str, ...]:
        """The dimension references it names, in order of first appearance."""
        if self.rollup is not None:
            return self.rollup
        if self.cube is not None:
            return self.cube
        assert self.sets is not None
        return tuple(dict.fromkeys(m for s in self.sets for m in s))


class PreAggregation(_Frozen):
    """Measures grouped by dimensions (and a time bucket), kept as a warehouse table."""

    name: Name
    measures: tuple[str, ...] = Field(min_length=1)
    time_dimension: str | None = None
    granularity: Granularity = Granularity.DAY
    partition_granularity: Granularity = Granularity.MONTH
    grouping: tuple[Grouping, ...] = ()


class Cube(_Frozen):
    """A table (or query) of the warehouse with its measures, dimensions and joins."""

    name: Name
    title: Title | None = None
    description: str = ""
    table: str | None = None
    sql: Snippet | None = None
    # For a `sql` cube: the warehouse tables the query reads (lineage) and its site column.
    sources: tuple[str, ...] = ()
    site_column: str | None = None
    permissions: frozenset[Permission] = Field(min_length=1)
    joins: tuple[Join, ...] = ()
    measures: tuple[Measure, ...] = ()
    dimensions: tuple[Dimension, ...] = ()
    hierarchies: tuple[Hierarchy, ...] = ()
    pre_aggregations: tuple[PreAggregation, ...] = ()

    @model_validator(mode="after")
    def _source(self) -> Cube:
        if (self.table is None) == (self.sql is None):
            raise ValueError("a cube reads exactly one of table or sql")
        if self.table is not None and (self.sources or self.site_column):
            raise ValueError("sources and site_column are for sql cubes; a table cube has both")
        if self.sql is not None and not self.sources:
            raise ValueError("a sql cube lists the warehouse tables it reads in sources")
        return self

    @property
    def display_title(self) -> str:
        """The title, else the name."""
        return self.title or self.name

    @property
    def site_rule(self) -> SiteRule:
        """How rows are tied to a site (``analytics.access``): the table's rule, else declared."""
        if self.table is not None:
            return rule_for(schema.TABLES[self.table])
        if self.site_column is not None:
            return SiteRule(column=self.site_column)
        return ALL_SITES_ONLY

    @property
    def source_tables(self) -> tuple[str, ...]:
        """The warehouse tables the cube itself reads."""
        return (self.table,) if self.table is not None else self.sources

    def measure(self, name: str) -> Measure | None:
        """The measure of that name."""
        return next((m for m in self.measures if m.name == name), None)

    def dimension(self, name: str) -> Dimension | None:
        """The dimension of that name."""
        return next((d for d in self.dimensions if d.name == name), None)

    def join(self, cube: str) -> Join | None:
        """The join to that cube, if this cube has one."""
        return next((j for j in self.joins if j.cube == cube), None)


class SemanticModel(_Frozen):
    """The whole model: cubes, checked against each other and against the warehouse schema."""

    cubes: tuple[Cube, ...]

    @model_validator(mode="after")
    def _consistent(self) -> SemanticModel:
        # Imported here: the checks need these classes, the model needs the checks.
        from maintainpro.analytics.semantic.checks import check_model

        problems = list(check_model(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def cube(self, name: str) -> Cube | None:
        """The cube of that name."""
        return self._by_name.get(name)

    @functools.cached_property
    def _by_name(self) -> dict[str, Cube]:
        return {c.name: c for c in self.cubes}

    def resolve(self, cube: Cube, reference: str) -> tuple[Cube, str] | None:
        """A pre-aggregation or hierarchy reference (``member``, ``CUBE.member`` or
        ``Other.member``) as (cube, member name); None if it names no cube."""
        owner_name, dot, member = reference.rpartition(".")
        if not dot:
            return cube, reference
        if owner_name in (SELF, cube.name):
            return cube, member
        owner = self.cube(owner_name)
        if owner is None or cube.join(owner_name) is None:
            return None
        return owner, member


# --------------------------------------------------------------------------- grouping sets


def grouping_sets(pre: PreAggregation, members: Mapping[str, int]) -> list[frozenset[int]]:
    """The grouping sets the GROUP BY terms expand to, as sets of dimension positions.

    ``members`` maps each reference to its position in the pre-aggregation's dimension list.
    Terms multiply out as SQL does: ``ROLLUP(a, b), CUBE(c)`` gives {a,b,c}, {a,b}, {a,c} ...
    """
    per_term: list[list[frozenset[int]]] = []
    for term in pre.grouping:
        if term.rollup is not None:
            cols = [members[m] for m in term.rollup]
            per_term.append([frozenset(cols[:i]) for i in range(len(cols), -1, -1)])
        elif term.cube is not None:
            cols = [members[m] for m in term.cube]
            per_term.append(
                [frozenset(c) for k in range(len(cols), -1, -1) for c in combinations(cols, k)]
            )
        else:
            assert term.sets is not None
            per_term.append([frozenset(members[m] for m in s) for s in term.sets])
    sets = [frozenset().union(*combo) for combo in product(*per_term)] if per_term else []
    return list(dict.fromkeys(sets)) or [frozenset()]


def pre_aggregation_dimensions(pre: PreAggregation) -> tuple[str, ...]:
    """The dimension references of a pre-aggregation, in order of first appearance."""
    return tuple(dict.fromkeys(m for term in pre.grouping for m in term.members))


def level_member(model: SemanticModel, cube: Cube, level: str) -> str | None:
    """The full member name of a hierarchy level (``Assets.site``, ``WorkOrders.createdAt.year``),
    or None when the level names nothing."""
    head, dot, tail = level.partition(".")
    own = cube.dimension(head)
    if dot and own is not None and own.type is DimensionType.TIME:
        if tail in {g.value for g in Granularity}:
            return f"{cube.name}.{head}.{tail}"
        return None
    resolved = model.resolve(cube, level)
    if resolved is None:
        return None
    owner, member = resolved
    if owner.dimension(member) is None:
        return None
    return f"{owner.name}.{member}"


def table_name(cube: Cube, pre: PreAggregation) -> str:
    """The warehouse table holding a pre-aggregation: preagg_<cube>_<name>, snake case."""
    return f"preagg_{_snake(cube.name)}_{_snake(pre.name)}"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


# --------------------------------------------------------------------------- loading


def _where(loc: Iterable[Any], raw: Any) -> str:
    # Name list items by their `name` when they have one: "cubes[WorkOrders].measures[mttr]".
    text = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            label = item.get("name") if isinstance(item, dict) else None
            plain = isinstance(label, str) and re.match(NAME_PATTERN, label)
            text += f"[{label if plain else part}]"
            node = item
        else:
            text += ("." if text else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return text


def parse_model(data: Any, *, source: str = "model") -> SemanticModel:
    """A model from parsed YAML/JSON data; ``ModelError`` listing every problem if invalid."""
    try:
        return SemanticModel.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_input=False):
            message = error["msg"].removeprefix("Value error, ")
            # The model's own checks already say where; a field error gets its location.
            lines.append(f"{_where(error['loc'], data)}: {message}" if error["loc"] else message)
        raise ModelError(f"{source} is not a valid semantic model: " + "; ".join(lines)) from None


def load_model(text: str, *, source: str = "model") -> SemanticModel:
    """A model from YAML text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModelError(f"{source} is not valid YAML: {exc}") from None
    return parse_model(data, source=source)


def load_model_file(path: Path) -> SemanticModel:
    """A model from a YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"cannot read the semantic model {path}: {exc.strerror}") from None
    return load_model(text, source=str(path))


@functools.cache
def default_model() -> SemanticModel:
    """The model shipped with the package (read once per process)."""
    text = files(__package__).joinpath(DEFAULT_MODEL).read_text(encoding="utf-8")
    return load_model(text, source=DEFAULT_MODEL)
