"""Checks of a semantic model against itself and the warehouse schema (pure).

Every table and column a snippet names must exist, every reference (joins, number measures,
hierarchy levels, pre-aggregation members) resolve, and a pre-aggregation hold only measures
that can be added up again. Each problem is one line saying where and why
(``cubes[WorkOrders].measures[mttr]: ...``); ``SemanticModel`` refuses a model with any.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from maintainpro.analytics import schema
from maintainpro.analytics.semantic.model import (
    COLUMN_PATTERN,
    COLUMN_REF,
    PLACEHOLDER,
    ROLLS_UP_TO,
    SELF,
    Cube,
    DimensionType,
    Granularity,
    Measure,
    MeasureType,
    PreAggregation,
    SemanticModel,
    level_member,
    pre_aggregation_dimensions,
    table_name,
)

# Snippets are trusted, but a stray statement separator or comment is always a mistake.
FORBIDDEN_SQL: Final = (";", "--", "/*", "*/")
MAX_CUBE_DIMENSIONS: Final = 6
MAX_GROUPING_SETS: Final = 256


def _bad_sql(snippet: str) -> str | None:
    for token in FORBIDDEN_SQL:
        if token in snippet:
            return f"SQL may not contain {token!r}"
    return None


def _columns(table: str | None) -> frozenset[str] | None:
    if table is None or table not in schema.TABLES:
        return None
    return frozenset(schema.TABLES[table].column_names)


def _check_snippet(
    model: SemanticModel, cube: Cube, snippet: str, where: str, *, others: Iterable[str] = ()
) -> Iterator[str]:
    bad = _bad_sql(snippet)
    if bad:
        yield f"{where}: {bad}"
        return
    allowed = {SELF, *others}
    for name in PLACEHOLDER.findall(snippet):
        if name not in allowed:
            yield f"{where}: {{{name}}} is not {{CUBE}}" + (" or a joined cube" if others else "")
    refs = [(SELF, snippet)] if COLUMN_PATTERN.match(snippet) else COLUMN_REF.findall(snippet)
    for owner_name, column in refs:
        owner = cube if owner_name == SELF else model.cube(owner_name)
        known = _columns(owner.table) if owner is not None else None
        if known is not None and column not in known:
            yield f"{where}: {owner.table} has no column {column}"  # type: ignore[union-attr]


def _check_cube(model: SemanticModel, cube: Cube) -> Iterator[str]:
    here = f"cubes[{cube.name}]"
    if cube.table is not None and cube.table not in schema.TABLES:
        yield f"{here}.table: the warehouse has no table {cube.table}"
    for source in cube.sources:
        if source not in schema.TABLES:
            yield f"{here}.sources: the warehouse has no table {source}"
    if cube.sql is not None and (bad := _bad_sql(cube.sql)):
        yield f"{here}.sql: {bad}"
    if cube.site_column is not None and not COLUMN_PATTERN.match(cube.site_column):
        yield f"{here}.site_column: not a column name"
    names = [m.name for m in cube.measures] + [d.name for d in cube.dimensions]
    lowered = [n.lower() for n in names]
    for name in sorted({n for n in names if lowered.count(n.lower()) > 1}):
        yield f"{here}: the name {name} is used twice (names are case-insensitive)"
    for join in cube.joins:
        other = model.cube(join.cube)
        if other is None:
            yield f"{here}.joins[{join.cube}]: no such cube"
            continue
        if other.name == cube.name:
            yield f"{here}.joins[{join.cube}]: a cube cannot join itself"
        yield from _check_snippet(
            model, cube, join.sql, f"{here}.joins[{join.cube}].sql", others=[join.cube]
        )
    for dim in cube.dimensions:
        yield from _check_snippet(model, cube, dim.sql, f"{here}.dimensions[{dim.name}].sql")
    for measure in cube.measures:
        yield from _check_measure(model, cube, measure, f"{here}.measures[{measure.name}]")
    for hierarchy in cube.hierarchies:
        for level in hierarchy.levels:
            if level_member(model, cube, level) is None:
                yield f"{here}.hierarchies[{hierarchy.name}]: unknown level {level}"
    for pre in cube.pre_aggregations:
        yield from _check_pre_aggregation(model, cube, pre, f"{here}.pre_aggregations[{pre.name}]")


def _check_measure(model: SemanticModel, cube: Cube, measure: Measure, where: str) -> Iterator[str]:
    for condition in measure.filters:
        yield from _check_snippet(model, cube, condition, f"{where}.filters")
    if measure.type is MeasureType.NUMBER:
        if measure.sql is None:
            yield f"{where}: a number measure needs sql combining other measures"
            return
        if bad := _bad_sql(measure.sql):
            yield f"{where}: {bad}"
        if measure.filters:
            yield f"{where}: a number measure takes its filters from the measures it combines"
        refs = PLACEHOLDER.findall(measure.sql)
        if not refs:
            yield f"{where}: a number measure names the measures it combines as {{name}}"
        for ref in refs:
            part = cube.measure(ref)
            if part is None:
                yield f"{where}: no measure {ref} in the cube"
            elif part.type is MeasureType.NUMBER:
                yield f"{where}: {ref} is itself a number measure (combine base measures)"
        if COLUMN_REF.search(measure.sql):
            yield f"{where}: a number measure combines measures, not columns"
        return
    if measure.sql is None:
        if measure.type is not MeasureType.COUNT:
            yield f"{where}: a {measure.type.value} measure needs sql"
        return
    yield from _check_snippet(model, cube, measure.sql, f"{where}.sql")


def _check_pre_aggregation(
    model: SemanticModel, cube: Cube, pre: PreAggregation, where: str
) -> Iterator[str]:
    if cube.site_rule.via is not None:
        yield f"{where}: the cube is scoped through another table; it cannot be pre-aggregated"
    for name in pre.measures:
        measure = cube.measure(name)
        if measure is None:
            yield f"{where}.measures: no measure {name} in the cube"
        elif measure.type is MeasureType.COUNT_DISTINCT:
            yield f"{where}.measures: {name} is a distinct count, which cannot be added up again"
    if pre.time_dimension is not None:
        time = cube.dimension(pre.time_dimension)
        if time is None or time.type is not DimensionType.TIME:
            yield f"{where}.time_dimension: {pre.time_dimension} is not a time dimension"
        partition = pre.partition_granularity
        if partition not in ROLLS_UP_TO[pre.granularity] or partition is Granularity.WEEK:
            yield (
                f"{where}.partition_granularity: partitions must be whole {pre.granularity.value}s"
                " (and not weeks)"
            )
    seen: set[str] = set()
    for term in pre.grouping:
        if term.cube is not None and len(term.cube) > MAX_CUBE_DIMENSIONS:
            yield f"{where}.grouping: a cube term takes at most {MAX_CUBE_DIMENSIONS} dimensions"
        members = term.members
        for member in members:
            if member in seen:
                yield f"{where}.grouping: {member} appears in two grouping terms"
            seen.add(member)
            resolved = model.resolve(cube, member)
            dim = resolved[0].dimension(resolved[1]) if resolved else None
            if dim is None:
                yield f"{where}.grouping: {member} is not a dimension of the cube or a joined cube"
            elif dim.type is DimensionType.TIME:
                yield f"{where}.grouping: {member} is a time dimension (use time_dimension)"
    dims = pre_aggregation_dimensions(pre)
    if len({model.resolve(cube, d) for d in dims}) != len(dims):
        yield f"{where}.grouping: a dimension is named twice"
    count = 1
    for term in pre.grouping:
        if term.rollup is not None:
            count *= len(term.rollup) + 1
        elif term.cube is not None:
            count *= 2 ** len(term.cube)
        elif term.sets is not None:
            count *= len(term.sets)
    if count > MAX_GROUPING_SETS:
        yield f"{where}.grouping: {count} grouping sets (at most {MAX_GROUPING_SETS})"


def check_model(model: SemanticModel) -> Iterator[str]:
    """Every problem of the model, one line each."""
    if not model.cubes:
        yield "cubes: the model has no cubes"
    names = [c.name.lower() for c in model.cubes]
    for cube in model.cubes:
        if names.count(cube.name.lower()) > 1:
            yield f"cubes[{cube.name}]: two cubes have this name (names are case-insensitive)"
    tables: dict[str, str] = {}
    for cube in model.cubes:
        for pre in cube.pre_aggregations:
            table = table_name(cube, pre)
            if table in tables:
                yield f"cubes[{cube.name}].pre_aggregations[{pre.name}]: table of {tables[table]}"
            tables[table] = f"{cube.name}.{pre.name}"
        yield from _check_cube(model, cube)
