"""What a pre-aggregation holds and the SQL that builds it (pure).

A pre-aggregation of a cube is a warehouse table ``preagg_<cube>_<name>`` with one row per
grouping set, time bucket and site:

- ``_gid``: ``GROUPING(d0, d1, ...)`` over the declared dimensions: a bit per dimension, set
  when the row adds that dimension up (the first dimension is the highest bit);
- ``_partition``: the partition (month, say) the row belongs to, refreshed as one unit
  (``0001-01-01`` for rows without a time, and for pre-aggregations without a time dimension);
- ``_bucket``: the time bucket at the pre-aggregation's granularity;
- ``_site``: the cube's site column, in EVERY grouping set, so that a site-bound user's rows
  can be selected before anything is added up (no stored row mixes sites);
- one column per dimension (``Assets__site``), then the measures: count, sum, min and max as
  themselves, an average as ``<name>__sum`` and ``<name>__count``.

The GROUP BY keeps the model's terms as they are: ``GROUP BY _partition, _bucket, _site,
ROLLUP(...), CUBE(...), GROUPING SETS (...)``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from maintainpro.analytics.semantic.model import (
    PLACEHOLDER,
    Cube,
    Dimension,
    DimensionType,
    Grouping,
    Measure,
    MeasureType,
    PreAggregation,
    SemanticModel,
    grouping_sets,
    pre_aggregation_dimensions,
    table_name,
)
from maintainpro.analytics.semantic.sql import (
    aggregate,
    bucket_sql,
    conditions,
    dimension_sql,
    quote,
    relation,
    render,
)

NO_PARTITION: Final = dt.date(1, 1, 1)
GID: Final = "_gid"
PARTITION: Final = "_partition"
BUCKET: Final = "_bucket"
SITE: Final = "_site"
# Bumped when the layout changes, so every stored pre-aggregation is rebuilt once.
LAYOUT_VERSION: Final = "1"


@dataclass(frozen=True)
class StoredDimension:
    """A dimension kept in a pre-aggregation: its cube, definition and column."""

    owner: Cube
    dimension: Dimension

    @property
    def member(self) -> str:
        """The query member name (``Assets.site``)."""
        return f"{self.owner.name}.{self.dimension.name}"

    @property
    def column(self) -> str:
        """The column name (``Assets__site``)."""
        return f"{self.owner.name}__{self.dimension.name}"


def measure_columns(measure: Measure) -> tuple[str, ...]:
    """The columns a stored measure occupies."""
    if measure.type is MeasureType.AVG:
        return (f"{measure.name}__sum", f"{measure.name}__count")
    return (measure.name,)


@dataclass(frozen=True)
class Layout:
    """A pre-aggregation resolved against the model: columns, grouping sets, SQL."""

    cube: Cube
    pre: PreAggregation
    dimensions: tuple[StoredDimension, ...]
    measures: tuple[Measure, ...]
    sets: tuple[frozenset[int], ...]
    joined: tuple[Cube, ...]
    references: tuple[str, ...]  # as the model writes them, in the order of `dimensions`

    @property
    def name(self) -> str:
        """``Cube.name`` for people."""
        return f"{self.cube.name}.{self.pre.name}"

    @property
    def table(self) -> str:
        """The warehouse table."""
        return table_name(self.cube, self.pre)

    @property
    def time(self) -> Dimension | None:
        """The time dimension bucketed, if any."""
        if self.pre.time_dimension is None:
            return None
        return self.cube.dimension(self.pre.time_dimension)

    @property
    def has_site(self) -> bool:
        """Whether rows carry the cube's site (every cube tied to sites)."""
        return self.cube.site_rule.column is not None

    def position(self, member: str) -> int | None:
        """The position of a dimension member (``Assets.site``) among the stored ones."""
        return next((i for i, d in enumerate(self.dimensions) if d.member == member), None)

    def gid(self, grouping_set: frozenset[int]) -> int:
        """GROUPING() of the rows of a grouping set: bits of the dimensions added up."""
        n = len(self.dimensions)
        return sum(1 << (n - 1 - i) for i in range(n) if i not in grouping_set)

    def stores(self, measure: Measure) -> bool:
        """Whether the measure's figures are kept (for a number measure: all its parts)."""
        names = {m.name for m in self.measures}
        if measure.type is MeasureType.NUMBER:
            return all(p in names for p in number_parts(measure))
        return measure.name in names

    # ---------------------------------------------------------------- SQL

    def _inner(self) -> str:
        """The cube's rows with the bucket, site, dimensions and measure inputs as columns."""
        columns: list[str] = []
        time = self.time
        if time is not None:
            value = dimension_sql(self.cube, time)
            partition = bucket_sql(value, self.pre.partition_granularity)
            columns.append(
                f"coalesce(CAST({partition} AS DATE), DATE '{NO_PARTITION.isoformat()}')"
                f" AS {PARTITION}"
            )
            columns.append(f"{bucket_sql(value, self.pre.granularity)} AS {BUCKET}")
        else:
            columns.append(f"DATE '{NO_PARTITION.isoformat()}' AS {PARTITION}")
        site = self.cube.site_rule.column
        if site is not None:
            columns.append(f"{render(site, self.cube)} AS {SITE}")
        columns += [
            f"{dimension_sql(d.owner, d.dimension)} AS d{i}" for i, d in enumerate(self.dimensions)
        ]
        for k, measure in enumerate(self.measures):
            if measure.sql is not None:
                columns.append(f"{render(measure.sql, self.cube)} AS i{k}")
            condition = conditions(measure, self.cube)
            if condition is not None:
                columns.append(f"({condition}) AS f{k}")
        return f"SELECT {', '.join(columns)} FROM {relation(self.cube, self.joined)}"  # noqa: S608 - model text

    def _group_by(self) -> str:
        keys = [PARTITION]
        if self.time is not None:
            keys.append(BUCKET)
        if self.has_site:
            keys.append(SITE)
        by_reference = {ref: i for i, ref in enumerate(self.references)}
        keys += [_term_sql(term, by_reference) for term in self.pre.grouping]
        return ", ".join(keys)

    def _outer_columns(self) -> list[str]:
        dims = [f"d{i}" for i in range(len(self.dimensions))]
        columns = [f"GROUPING({', '.join(dims)}) AS {GID}" if dims else f"0 AS {GID}", PARTITION]
        if self.time is not None:
            columns.append(BUCKET)
        if self.has_site:
            columns.append(SITE)
        columns += [f"d{i} AS {quote(d.column)}" for i, d in enumerate(self.dimensions)]
        for k, measure in enumerate(self.measures):
            value = f"i{k}" if measure.sql is not None else None
            condition = f"f{k}" if measure.filters else None
            names = measure_columns(measure)
            if measure.type is MeasureType.AVG:
                assert value is not None
                total = aggregate(MeasureType.SUM, value, condition)
                count = aggregate(MeasureType.COUNT, value, condition)
                columns += [f"{total} AS {quote(names[0])}", f"{count} AS {quote(names[1])}"]
            else:
                columns.append(f"{aggregate(measure.type, value, condition)} AS {quote(names[0])}")
        return columns

    def select_sql(self, *, partitions: bool = False) -> str:
        """The SELECT building the table; with ``partitions`` only the partitions in the one
        parameter (a DATE list).

        Rows come out ordered by grouping set and time, so that DuckDB's per-row-group minima
        and maxima let a query of one grouping set and a date range skip the rest of the table.
        """
        where = f" WHERE {PARTITION} IN (SELECT unnest(CAST(? AS DATE[])))" if partitions else ""
        order = [GID, PARTITION] + ([BUCKET] if self.time is not None else [])
        return (
            f"SELECT {', '.join(self._outer_columns())} FROM ({self._inner()}) AS s{where} "  # noqa: S608 - model text
            f"GROUP BY {self._group_by()} ORDER BY {', '.join(order)}"
        )

    def fingerprint_sql(self) -> str:
        """Per partition: the rows the pre-aggregation reads and a hash of all of them.

        Any change to an input row that could change the stored figures (a fact, a joined
        dimension's attribute, a row moving between partitions) changes its partition's
        fingerprint; only those partitions are recomputed.
        """
        inner = self._inner()
        return (
            f"SELECT {PARTITION}, count(*) AS n, sum(hash(s)) AS h FROM ({inner}) AS s "  # noqa: S608 - model text
            f"GROUP BY {PARTITION}"
        )

    @functools.cached_property
    def definition_hash(self) -> str:
        """Changes whenever the table's content definition does (then it is rebuilt whole)."""
        text = "\n".join((LAYOUT_VERSION, self.select_sql(), self.fingerprint_sql()))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _term_sql(term: Grouping, position: dict[str, int]) -> str:
    if term.rollup is not None:
        return f"ROLLUP({', '.join(f'd{position[m]}' for m in term.rollup)})"
    if term.cube is not None:
        return f"CUBE({', '.join(f'd{position[m]}' for m in term.cube)})"
    assert term.sets is not None
    sets = ", ".join("(" + ", ".join(f"d{position[m]}" for m in s) + ")" for s in term.sets)
    return f"GROUPING SETS ({sets})"


def number_parts(measure: Measure) -> tuple[str, ...]:
    """The measures a number measure combines."""
    assert measure.sql is not None
    return tuple(dict.fromkeys(PLACEHOLDER.findall(measure.sql)))


def _stored_measures(cube: Cube, names: Sequence[str]) -> tuple[Measure, ...]:
    wanted: list[str] = []
    for name in names:
        measure = cube.measure(name)
        assert measure is not None
        parts = number_parts(measure) if measure.type is MeasureType.NUMBER else (name,)
        wanted += [p for p in parts if p not in wanted]
    found = [cube.measure(n) for n in wanted]
    return tuple(m for m in found if m is not None)


def layout(model: SemanticModel, cube: Cube, pre: PreAggregation) -> Layout:
    """A pre-aggregation of a valid model, resolved."""
    stored: list[StoredDimension] = []
    for reference in pre_aggregation_dimensions(pre):
        resolved = model.resolve(cube, reference)
        assert resolved is not None
        owner, name = resolved
        dimension = owner.dimension(name)
        assert dimension is not None
        assert dimension.type is not DimensionType.TIME
        stored.append(StoredDimension(owner, dimension))
    references = pre_aggregation_dimensions(pre)
    members = {ref: i for i, ref in enumerate(references)}
    joined = tuple(dict.fromkeys(d.owner for d in stored if d.owner.name != cube.name))
    return Layout(
        cube=cube,
        pre=pre,
        dimensions=tuple(stored),
        measures=_stored_measures(cube, pre.measures),
        sets=tuple(grouping_sets(pre, members)),
        joined=joined,
        references=references,
    )


@functools.cache
def layouts(model: SemanticModel) -> tuple[Layout, ...]:
    """Every pre-aggregation of the model, cube by cube (worked out once per model)."""
    return tuple(layout(model, cube, pre) for cube in model.cubes for pre in cube.pre_aggregations)
